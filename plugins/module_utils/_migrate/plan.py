# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan of a cold migration, from data only: what moves, where it goes, and every refusal before a change.

Input: the source domain's stored XML, the facts of the volumes behind its
disks, and what the target offers (pools, networks, machine types, firmware,
TPM emulation). Output: a ColdPlan (the disks with their target pools and
paths, the UEFI varstore and TPM state directories, the domain XML rewritten
for the target, the steps in order, the bytes to copy), or an error naming
what prevents the move. No libvirt here (_migrate.cold reads and applies).
"""

from __future__ import annotations

import copy
import posixpath

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import HostStateError, InvalidInput
from ansible_collections.phyllome.os.plugins.module_utils._common.units import format_bytes, quantity_bytes
from ansible_collections.phyllome.os.plugins.module_utils._domain.devices import disk_source, hostdev_source
from ansible_collections.phyllome.os.plugins.module_utils._domain.storage import volume_facts
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import parse, parse_domain, text_of, to_string

# Where a system libvirtd keeps swtpm state (cfg->swtpmStorageDir): <dir>/<uuid>/tpm2 or tpm1.2.
SWTPM_STORAGE_DIR = '/var/lib/libvirt/swtpm'
# Where it keeps a UEFI varstore that the definition does not place (cfg->nvramDir/<name>_VARS.fd): libvirt
# 9.0 selects the firmware at start, so a stored definition often has no <nvram> yet.
NVRAM_DIR = '/var/lib/libvirt/qemu/nvram'
# The mode libvirt gives the directories above a domain's swtpm state (qemu_tpm.c creates them 0711: others may
# pass through, not list), where a storage pool build would leave its default 0755.
SWTPM_PARENT_MODE = '0711'
# The virtio-serial port name of the QEMU guest agent's channel.
GUEST_AGENT_CHANNEL = 'org.qemu.guest_agent.0'
# Room a target pool must have beyond the disks' data before a copy starts: 1 % of it (rounded up to a MiB) plus
# 16 MiB (the file system's own blocks for the new files, and what else writes there while the copy runs).
SPACE_MARGIN_PERCENT = 1
SPACE_MARGIN_BYTES = 16 * 1024 ** 2
# A target pool with less free space than this after a copy has filled up during it: libvirt 9.0 can report an
# upload that ran out of space as complete (docs/decisions/migration.md), so such a copy is not trusted.
FULL_BELOW = 1024 ** 2


class TargetFacts:
    """What the target offers, as data.

    pools: {name: directory, or None when not directory-backed};
    volumes: the (pool, volume) pairs that already exist there among those
    the plan would create; networks: names; machine_offered: whether the
    domain's machine type is listed; context: the HostContext of the target's
    domain capabilities for the domain's arch, machine and type, None when
    they refuse (refusal says why); loaders: the firmware paths they list;
    available: {pool: free bytes} of the pools the plan writes to.
    """

    def __init__(self, pools, networks, machine_offered=True, context=None, refusal=None, loaders=(), volumes=(),
                 available=None):
        self.pools = pools
        self.available = available or {}
        self.networks = set(networks)
        self.machine_offered = machine_offered
        self.context = context
        self.refusal = refusal
        self.loaders = set(loaders)
        self.volumes = set(volumes)


def source_volume(xml):
    """Facts of a source volume's XML: name, path, format, capacity, allocation, physical, backing, permissions."""
    facts = volume_facts(xml)
    volume = parse(xml, 'storage volume XML')
    for key in ('allocation', 'physical'):
        elem = volume.find(key)
        facts[key] = quantity_bytes(elem.text, elem.get('unit'), 'bytes') if elem is not None else None
    facts['backing'] = text_of(volume, 'backingStore/path')
    facts['permissions'] = _permissions(volume.find('target/permissions'))
    return facts


def pool_permissions(pool_xml):
    """{mode, owner, group} of a pool's directory, as its XML says."""
    return _permissions(parse(pool_xml, 'storage pool XML').find('target/permissions'))


def _permissions(elem):
    if elem is None:
        return None
    found = dict((key, text_of(elem, key)) for key in ('mode', 'owner', 'group'))
    return found if any(found.values()) else None


# What the result says of a disk (its permissions stay inside).
_RESULT_KEYS = ('target', 'source_pool', 'source_path', 'target_pool', 'target_path', 'volume', 'format', 'capacity',
                'allocation', 'physical')


class ColdPlan:
    """What a cold migration copies and defines; `actions` are the steps in order (check mode's answer)."""

    def __init__(self, name, uuid, disks, nvram, tpm_dir, xml, interfaces):
        self.name = name
        self.uuid = uuid
        self.disks = disks
        self.nvram = nvram
        self.tpm_dir = tpm_dir
        self.xml = xml
        self.interfaces = interfaces

    @property
    def bytes_to_copy(self):
        """Bytes the disks occupy on the source (what crosses the link; holes do not)."""
        return sum(_written(d) for d in self.disks)

    def as_result(self):
        """The plan for the module's result (no XML: the stored one may hold secrets)."""
        return {
            'disks': [dict((k, d[k]) for k in _RESULT_KEYS) for d in self.disks],
            'nvram': self.nvram,
            'tpm_state_dir': self.tpm_dir,
            'networks': self.interfaces,
            'bytes_to_copy': self.bytes_to_copy,
        }


def plan_cold(domain_xml, source_volumes, target, storage_map=None, network_map=None):
    """A ColdPlan for the domain of `domain_xml` (its stored definition) to the target, or raise.

    source_volumes: {disk source path: source_volume() facts plus `pool`},
    for every disk file a source pool lists. Raises InvalidInput (options:
    a missing map) or HostStateError (the domain or the target cannot do it),
    naming every problem found, before anything changes.
    """
    storage_map = storage_map or {}
    network_map = network_map or {}
    domain = parse_domain(domain_xml, 'the stored definition')
    name = text_of(domain, 'name')
    problems = []
    missing_maps = []
    problems.extend(_hostdev_refusals(domain))
    disks = []
    for dev in domain.findall('devices/disk'):
        disk = _disk_plan(dev, source_volumes, target, storage_map, problems, missing_maps)
        if disk is not None:
            disks.append(disk)
    problems.extend(_space_refusals(disks, target))
    interfaces = []
    for nic in domain.findall('devices/interface'):
        if nic.get('type') != 'network':
            continue
        source = nic.find('source')
        network = source.get('network') if source is not None else None
        wanted = network_map.get(network, network)
        if wanted not in target.networks:
            if network in network_map:
                problems.append('network %s (network_map of %s) does not exist on the target' % (wanted, network))
            else:
                missing_maps.append('network %s does not exist on the target: map it to one there with network_map'
                                    % network)
        interfaces.append({'mac': _mac(nic), 'source_network': network,
                           'target_network': wanted})
    problems.extend(_target_refusals(domain, target))
    if missing_maps:
        raise InvalidInput('%s cannot move: %s' % (name, '; '.join(missing_maps + problems)))
    if problems:
        raise HostStateError('%s cannot move: %s' % (name, '; '.join(problems)))
    nvram = _nvram_path(domain, name)
    tpm_dir = _tpm_state_dir(domain)
    return ColdPlan(name, text_of(domain, 'uuid'), disks, nvram, tpm_dir,
                    rewrite_xml(domain_xml, disks, network_map), interfaces)


def _mac(nic):
    mac = nic.find('mac')
    return mac.get('address') if mac is not None else None


def _hostdev_refusals(domain):
    refusals = []
    for dev in domain.findall('devices/hostdev'):
        found = hostdev_source(dev)
        ident = found['address'] or ':'.join(v for v in (found['vendor'], found['product']) if v) or '?'
        refusals.append('it has the host device %s (%s hostdev) of this host' % (ident, dev.get('type')))
    return refusals


def _disk_plan(dev, source_volumes, target, storage_map, problems, missing_maps):
    where = 'disk %s' % _target_dev(dev)
    source = disk_source(dev)
    if source is None:
        return None  # an empty CD-ROM drive
    kind, pool_attr, value = source
    if kind == 'volume':
        problems.append('%s names volume %s of pool %s: give disks as files (libvirt resolves the path)'
                        % (where, value, pool_attr))
        return None
    if kind != 'file':
        noun = {'dev': 'block device', 'dir': 'directory', 'name': 'network disk'}[kind]
        problems.append('%s is a %s (%s), which cannot be copied' % (where, noun, value))
        return None
    facts = source_volumes.get(value)
    if facts is None:
        problems.append('%s: %s is in no storage pool of the source; define a pool over its directory' % (where, value))
        return None
    if facts.get('backing'):
        problems.append('%s: %s is an overlay on %s; copy chains are not supported: flatten it first (qemu-img'
                        ' convert, or virsh blockpull)' % (where, value, facts['backing']))
        return None
    pool = storage_map.get(facts['pool'], facts['pool'])
    if pool not in target.pools:
        if facts['pool'] in storage_map:
            problems.append('%s: pool %s (storage_map of %s) does not exist on the target' % (where, pool, facts['pool']))
        else:
            missing_maps.append('%s: pool %s does not exist on the target: map it to one there with storage_map'
                                % (where, facts['pool']))
        return None
    directory = target.pools[pool]
    if directory is None:
        problems.append('%s: target pool %s is not directory-backed' % (where, pool))
        return None
    if (pool, facts['name']) in target.volumes:
        problems.append('%s: volume %s already exists in pool %s of the target (never overwritten)'
                        % (where, facts['name'], pool))
        return None
    return {'target': _target_dev(dev), 'source_pool': facts['pool'], 'source_path': value, 'volume': facts['name'],
            'target_pool': pool, 'target_path': posixpath.join(directory, facts['name']), 'format': facts['format'],
            'capacity': facts['capacity'], 'allocation': facts['allocation'],
            'physical': facts['physical'] if facts['physical'] is not None else facts['capacity'],
            'permissions': facts.get('permissions')}


def _written(disk):
    """Bytes a disk's copy takes on the target: its data (holes stay holes), at most the file's size."""
    return min(disk['allocation'] or 0, disk['physical'] or disk['allocation'] or 0)


def space_margin(data):
    """The room a target pool keeps beyond `data` bytes of copies (SPACE_MARGIN_PERCENT and SPACE_MARGIN_BYTES)."""
    mib = 1024 ** 2
    return -(-data * SPACE_MARGIN_PERCENT // (100 * mib)) * mib + SPACE_MARGIN_BYTES  # the 1 % rounded up to a MiB


def _space_refusals(disks, target):
    needed = {}
    for disk in disks:
        needed[disk['target_pool']] = needed.get(disk['target_pool'], 0) + _written(disk)
    refusals = []
    for pool, size in sorted(needed.items()):
        free = target.available.get(pool)
        if free is not None and size + space_margin(size) > free:
            refusals.append('pool %s of the target has %s free, the disks need %s (%s of data on the source plus a'
                            ' margin of %s: 1%% and 16 MiB)'
                            % (pool, format_bytes(free), format_bytes(size + space_margin(size)), format_bytes(size),
                               format_bytes(space_margin(size))))
    return refusals


def pool_is_full(available):
    """Whether a pool with `available` free bytes (None: unknown) counts as full: less than FULL_BELOW."""
    return available is not None and available < FULL_BELOW


def pool_full_error(pool, volume, available, sent, failure=None, enospc=False):
    """The error of a copy into `pool` that ran out of space, None when the pool still has room after it.

    available: the pool's free bytes just after the copy (refreshed);
    sent: data bytes the stream carried (None when it failed: libvirt's
    error says how far it got); failure: libvirt's error when the upload
    failed (on a full pool its words vary: ENOSPC, or a broken pipe to the
    helper that died of it); enospc: that error says ENOSPC (the pool is
    full then, whatever it says now).
    """
    if not enospc and not pool_is_full(available):
        return None
    words = 'pool %s of the target filled up during the copy of volume %s (%s free' % (
        pool, volume, format_bytes(available) if available is not None else 'unknown')
    words += ' after %s of data were sent)' % format_bytes(sent) if sent is not None else ' now)'
    if failure is not None:
        return '%s: %s' % (words, failure)
    return ('%s; libvirt can report an upload that ran out of space as complete, so this copy is not trusted'
            % words)


def _target_dev(dev):
    elem = dev.find('target')
    return elem.get('dev') if elem is not None else None


def _target_refusals(domain, target):
    refusals = []
    machine = domain.find('os/type').get('machine') if domain.find('os/type') is not None else None
    if not target.machine_offered:
        refusals.append('the target offers no machine type %s' % machine)
    if target.context is None:
        refusals.append('the target cannot run it: %s' % (target.refusal or 'no domain capabilities'))
        return refusals
    ctx = target.context
    os_elem = domain.find('os')
    loader = os_elem.find('loader') if os_elem is not None else None
    if _is_efi(domain) and ctx.firmware is not None and 'efi' not in ctx.firmware:
        refusals.append('the target has no UEFI firmware')
    if loader is not None and loader.text and target.loaders and loader.text.strip() not in target.loaders:
        refusals.append('the target has no firmware %s' % loader.text.strip())
    secure = (loader is not None and loader.get('secure') == 'yes') or (
        os_elem is not None and os_elem.find("firmware/feature[@name='secure-boot'][@enabled='yes']") is not None)
    if secure and ctx.secure_boot is False:
        refusals.append('the target has no Secure Boot firmware')
    for tpm in domain.findall('devices/tpm'):
        backend = tpm.find('backend')
        if backend is not None and backend.get('type') == 'emulator' and ctx.tpm_emulator is False:
            refusals.append('the target has no TPM emulator (swtpm)')
    return refusals


def _is_efi(domain):
    os_elem = domain.find('os')
    loader = os_elem.find('loader') if os_elem is not None else None
    return (os_elem is not None and os_elem.get('firmware') == 'efi') or (
        loader is not None and loader.get('type') == 'pflash')


def _nvram_path(domain, name):
    """The UEFI varstore's path: the definition's <nvram>, else libvirt's default for a UEFI domain; or None."""
    nvram = text_of(domain, 'os/nvram')
    if nvram:
        return nvram
    return posixpath.join(NVRAM_DIR, '%s_VARS.fd' % name) if _is_efi(domain) else None


def _tpm_state_dir(domain):
    """The directory of the swtpm state of the domain's emulated TPM, or None."""
    for tpm in domain.findall('devices/tpm'):
        backend = tpm.find('backend')
        if backend is None or backend.get('type') != 'emulator':
            continue
        version = backend.get('version') or '2.0'
        return posixpath.join(SWTPM_STORAGE_DIR, text_of(domain, 'uuid'), 'tpm2' if version == '2.0' else 'tpm1.2')
    return None


def rewrite_xml(domain_xml, disks, network_map):
    """The definition for the target: disk paths in the target pools' directories, networks mapped; all else kept."""
    domain = copy.deepcopy(parse_domain(domain_xml, 'the stored definition'))
    paths = dict((d['source_path'], d['target_path']) for d in disks)
    for dev in domain.findall('devices/disk'):
        source = dev.find('source')
        if source is not None and source.get('file') in paths:
            source.set('file', paths[source.get('file')])
    for nic in domain.findall("devices/interface[@type='network']/source"):
        if nic.get('network') in network_map:
            nic.set('network', network_map[nic.get('network')])
    return to_string(domain)


def create_volume_action(volume, pool, size):
    return 'create volume %s (%s) in pool %s of the target' % (volume, format_bytes(size or 0), pool)


def copy_action(source_path, target_path, allocation):
    return 'copy %s to %s (%s on the source)' % (source_path, target_path, format_bytes(allocation or 0))


def live_refusals(live_xml):
    """Why a domain cannot move live beyond the cold refusals (live_xml: its running XML, None when it is off)."""
    if live_xml is None:
        return ['it is not running (mode=live moves a running domain; mode=cold moves a stopped one)']
    return []


def cpu_refusal(detail):
    """The refusal after libvirt's CPU comparison with the target answered `detail` (its words or error)."""
    return ('its CPU cannot run on the target (virConnectCompareHypervisorCPU: %s); give the fleet a common CPU'
            ' model (phyllome.os.cpu_baseline) and use it in the domain' % detail)


def has_guest_agent_channel(domain_xml):
    """Whether the domain has the QEMU guest agent's channel (a virtio channel named org.qemu.guest_agent.0)."""
    domain = parse_domain(domain_xml, 'the stored definition')
    return any(target.get('type') == 'virtio' and target.get('name') == GUEST_AGENT_CHANNEL
               for target in domain.findall('devices/channel/target'))


def guest_agent_refusal(domain_xml, start):
    """Why the guest agent cannot be waited for on the target (guest_agent_timeout), None when it can."""
    name = text_of(parse_domain(domain_xml, 'the stored definition'), 'name')
    if not start:
        return ('guest_agent_timeout waits for the guest agent of %s on the target, which needs it started there'
                ' (start: true, the default when it runs on the source)' % name)
    if not has_guest_agent_channel(domain_xml):
        return ('%s has no guest agent channel (a virtio channel named %s), so no agent can answer on the target:'
                ' add one (phyllome.os.domain guest_agent: true) or leave guest_agent_timeout unset'
                % (name, GUEST_AGENT_CHANNEL))
    return None


def mb_per_s(data_bytes, seconds):
    """Throughput in MB/s (10^6 bytes), one decimal; None without a duration."""
    return round(data_bytes / seconds / 1e6, 1) if seconds else None


def live_progress(stats):
    """What libvirt's completed migration job says it moved (virDomainGetJobStats COMPLETED), for the result.

    stats: the job's statistics, {} when libvirt kept none. Returns None then,
    else {bytes, memory_bytes, disk_bytes, seconds, mb_per_s, downtime_ms}:
    bytes is everything QEMU sent (memory and disks), seconds the job's
    elapsed time, downtime_ms how long the guest was paused at the switch.
    """
    if not stats or stats.get('data_processed') is None or stats.get('time_elapsed') is None:
        return None
    seconds = stats['time_elapsed'] / 1000.0
    return {'bytes': stats['data_processed'], 'memory_bytes': stats.get('memory_processed'),
            'disk_bytes': stats.get('disk_processed'), 'seconds': round(seconds, 3),
            'mb_per_s': mb_per_s(stats['data_processed'], seconds), 'downtime_ms': stats.get('downtime')}


def rollback_words(undone, left, source_state, uuid):
    """What the error of a failed migration (cold or live) says of its rollback: what was undone, what is left.

    undone, left: the descriptions of the undo steps that worked and of those
    that failed; source_state: how the source is once everything was undone.
    """
    did = ' (undone: %s)' % '; '.join(undone) if undone else ''
    if left:
        return ('rolled back%s, except: %s; remove what is left of uuid %s before a new attempt'
                % (did, '; '.join(left), uuid))
    return 'rolled back%s: %s, the target holds nothing of it' % (did, source_state)
