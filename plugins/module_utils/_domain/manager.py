# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The flow of phyllome.os.domain: read, build, compare, plan, act, report.

run_domain() takes the module's parameters, a DomainClient and an
ActionRecorder. It reads the domain, builds the desired XML (from the model
or the user's XML), checks it against the host, compares it semantically with
the stored definition, and applies storage, definition, autostart and power
state changes through the recorder, so that check mode reports the same plan
without calling a single mutating libvirt API.
"""

from __future__ import annotations

import copy
import posixpath
import sys
import time

from ansible_collections.phyllome.os.plugins.module_utils._common.device_ids import parse_usb_address
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import HostStateError, InvalidInput, LibvirtFailure, NotFound
from ansible_collections.phyllome.os.plugins.module_utils._domain import host as domain_host
from ansible_collections.phyllome.os.plugins.module_utils._domain import summary as domain_summary
from ansible_collections.phyllome.os.plugins.module_utils._domain import intent as domain_intent
from ansible_collections.phyllome.os.plugins.module_utils._domain import live as domain_live
from ansible_collections.phyllome.os.plugins.module_utils._domain import seed as domain_seed
from ansible_collections.phyllome.os.plugins.module_utils._domain import storage as domain_storage
from ansible_collections.phyllome.os.plugins.module_utils._domain.compare import compare, merge, unified_xml
from ansible_collections.phyllome.os.plugins.module_utils._domain.model import HostContext, build_domain
from ansible_collections.phyllome.os.plugins.module_utils._domain.options import MODEL_OWNED_TAGS, resolve_model
from ansible_collections.phyllome.os.plugins.module_utils._domain.secrets import describe, secrets_in_element, secrets_in_params
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import (
    new_element,
    parse_domain,
    read_metadata,
    text_of,
    to_string,
    write_metadata,
)
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.capabilities import parse_capabilities
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.domain_client import ACTIVE_STATES


class _Plan:
    """What one run decided, and what it reports."""

    def __init__(self, name):
        self.name = name
        self.dom = None
        self.current = None      # stored definition (element), None for a new domain
        self.definition = None   # what to define (element), None when nothing changes
        self.changes = []        # the differences, in words
        self.classified = []     # [live.Change]: each difference, its class and what became of it
        self.active_id = None    # the ID of the running domain, None when it is not running
        self.live = False        # apply what a running guest can take at once
        self.metadata = None     # the collection's record (xml.read_metadata) to write with the definition
        self.live_xml = None     # the running guest's XML (without secrets), when a restart may be due
        self.new_volumes = []    # [storage.NewVolume] to create before defining
        self.resizes = []        # [storage.Resize] of existing volumes, after defining
        self.seed = None         # the cloud-init seed as results show it: volume, digest, sizes
        self.restart_required = False
        self.request = None      # digest of the request (intent.request_digest)
        self.intent = None       # the record of the module's last define (intent.Intent)
        self.owned = frozenset()
        self.desired = None
        self.drift = False       # the stored definition changed since the module's last define
        self.warnings = []


def run_domain(params, client, recorder, sleep=time.sleep, clock=time.monotonic):
    """Converge one domain to `params`; return the module result (without `changed`)."""
    # Before anything can fail: an error message must not show them either.
    recorder.add_secrets(secrets_in_params(params))
    _check_params(params)
    removing = params['state'] == 'absent'
    # What the domain should be does not matter when it is to go.
    desired = None if removing else _desired_xml(params, client)
    recorder.add_secrets(secrets_in_element(desired))
    owned = MODEL_OWNED_TAGS if params.get('model') is not None else frozenset()
    if desired is not None:
        # XML copied off a domain this module manages carries its record: not part of the request.
        desired = domain_intent.without_intent(desired)
    if desired is not None:
        name = text_of(desired, 'name')
    else:
        name = params['name'] or text_of(parse_domain(params['xml'], 'xml'), 'name')
        if not name:
            raise InvalidInput('xml has no <name>: give name')
    plan = _Plan(name)
    if desired is not None:
        # Before the host fills in a missing type: the request as the task gives it.
        plan.request = domain_intent.request_digest(desired, owned)
        plan.desired, plan.owned = desired, owned
    plan.dom = client.lookup(name)
    if plan.dom is not None:
        plan.current = parse_domain(client.inactive_xml(plan.dom), 'the stored definition of %s' % name)
        recorder.add_secrets(secrets_in_element(plan.current))
    elif desired is not None and not desired.get('type'):
        # A new domain from XML without a type: the host's best. An existing
        # domain keeps its type (a partial XML leaves it out).
        os_type = desired.find('os/type')
        machine = os_type.get('machine') if os_type is not None and os_type.get('machine') else 'q35'
        desired.set('type', resolve_host(client, None, machine).domain_type)

    if removing:
        _remove(plan, params, client, recorder, sleep, clock)
        return _result(plan, client, recorder, removed=True)

    active_id = plan.active_id = client.domain_id(plan.dom) if client.is_active(plan.dom) else None
    plan.live = active_id is not None and params['apply'] in ('live', 'restart')
    if desired is None:
        if plan.dom is None:
            raise NotFound('domain %s is not defined; give model or xml to define it' % name, name=name)
        plan.restart_required = _pending_restart(plan.current, active_id) is not None
    else:
        _check_identity(desired, plan, client)
        _check_host_devices(desired, client)
        _plan_storage(desired, params, plan, client, recorder)
        _plan_definition(desired, owned, plan, active_id)
        _define(plan, client, recorder, params, sleep, clock)
    _read_live(plan, client)

    _set_autostart(plan, params, client, recorder)
    _converge_state(plan, params, client, recorder, sleep, clock)
    return _result(plan, client, recorder, wanted_state=params['state'])


def _check_params(params):
    if params['state'] == 'absent' and params.get('autostart'):
        raise InvalidInput('state absent conflicts with autostart: true')
    if params['shutdown_timeout'] < 0:
        raise InvalidInput('shutdown_timeout must be 0 or more seconds')
    if params.get('detach_timeout', 0) < 0:
        raise InvalidInput('detach_timeout must be 0 or more seconds')
    if params.get('xml') is not None and params.get('model') is not None:
        raise InvalidInput('model and xml are mutually exclusive')


# --- the desired definition -------------------------------------------------

def _desired_xml(params, client):
    """The desired domain element, or None when the task only names a domain."""
    if params.get('model') is not None:
        if not params.get('name'):
            raise InvalidInput('a model needs name')
        model = resolve_model(params['model'], params['name'])
        host = resolve_host(client, params.get('domain_type'), model['machine'])
        return build_domain(params['name'], model, host)
    if params.get('xml') is not None:
        desired = parse_domain(params['xml'], 'xml')
        xml_name = text_of(desired, 'name')
        if xml_name and params.get('name') and xml_name != params['name']:
            raise InvalidInput('name %s differs from the <name> in xml (%s)' % (params['name'], xml_name))
        if not xml_name:
            if not params.get('name'):
                raise InvalidInput('xml has no <name>: give name')
            desired.insert(0, new_element('name', text=params['name']))
        if params.get('domain_type'):
            desired.set('type', params['domain_type'])
        return desired
    return None


def resolve_host(client, domain_type, machine):
    """HostContext for `machine`: KVM when the host offers it, else QEMU's TCG, or `domain_type`."""
    host = parse_capabilities(client.capabilities())
    arch = host['arch']
    if domain_type:
        domcaps = client.domain_capabilities(arch, machine, domain_type)
    else:
        domcaps = None
        for candidate in ('kvm', 'qemu'):
            try:
                domcaps = client.domain_capabilities(arch, machine, candidate)
            except LibvirtFailure:
                if candidate == 'qemu':
                    raise
                continue
            break
    if domcaps is None:
        # A driver without domain capabilities (libvirt's test driver): take
        # what its capabilities list, and assume nothing about firmware.
        types = host['domain_types']
        return HostContext(domain_type=domain_type or (types[0] if types else 'kvm'), arch=arch)
    return domain_host.host_context(domcaps, arch)


def _check_identity(desired, plan, client):
    wanted = text_of(desired, 'uuid')
    if not wanted:
        return
    if plan.dom is not None and client.uuid(plan.dom).lower() != wanted.lower():
        raise InvalidInput('domain %s already exists with uuid %s, but the definition asks for uuid %s;'
                           ' leave uuid out or use another name' % (plan.name, client.uuid(plan.dom), wanted))
    other = client.lookup_uuid(wanted)
    if other is not None and client.name(other) != plan.name:
        raise InvalidInput('uuid %s already belongs to domain %s' % (wanted, client.name(other)))


def _check_host_devices(desired, client):
    usb = None
    for dev in domain_summary.hostdevs(desired):
        if dev['type'] == 'pci' and dev['address']:
            if not client.node_device_exists(domain_host.pci_nodedev_name(dev['address'])):
                raise InvalidInput('hostdev %s: no PCI device at this address on the host' % dev['address'])
        elif dev['type'] == 'usb' and dev['address']:
            if usb is None:
                usb = [domain_host.usb_device_address(x) for x in client.usb_device_xmls()]
            bus, device = parse_usb_address(dev['address'])
            if (bus, device) not in usb:
                raise InvalidInput('hostdev usb %s: no USB device at bus %d device %d on the host'
                                   % (dev['address'], bus, device))


def _plan_storage(desired, params, plan, client, recorder):
    """Check every disk source; plan the volumes to create and to grow (model disks, _domain/storage.py).

    A volume libvirt does not list but whose file is in the pool's directory
    (put there behind libvirt's back) gets a pool refresh, through the
    recorder (virStoragePoolRefresh changes libvirt's state), in check mode
    too as a prediction.
    """
    requests = {}
    model = None
    if params.get('model') is not None:
        model = resolve_model(params['model'], params.get('name'))
        for disk in model['disks']:
            requests[disk.get('path') or (disk['pool'], disk.get('volume'))] = disk
    pool_xmls = None
    # A running guest's QEMU holds its images open: it grows those (virDomainBlockResize).
    live = _LiveDisks(plan, client)
    for disk in domain_summary.disks(desired):
        target = disk['target']
        where = 'disk %s' % target
        if disk['volume']:
            key = (disk['pool'], disk['volume'])
            request = requests.get(key) or {}
            current = client.volume_xml(disk['pool'], disk['volume'])
            if request.get('cloud_init_seed'):
                _plan_seed(plan, disk['pool'], disk['volume'], model['cloud_init'], current, client, where)
                continue
            if current is not None:
                _plan_grow(plan, disk['pool'], disk['volume'], request, current, where, live.target(key))
                continue
            if _volume_on_disk(client, disk['pool'], disk['volume']):
                recorder.apply("refresh storage pool %s (volume %s is on disk but not in libvirt's list)"
                               % (disk['pool'], disk['volume']), client.refresh_pool, disk['pool'])
                continue
            if not domain_storage.creates(request):
                raise InvalidInput('disk %s: volume %s does not exist in pool %s (give size, clone_volume or'
                                   ' backing_volume to create it)' % (target, disk['volume'], disk['pool']))
            plan.new_volumes.append(_new_volume(client, disk['pool'], disk['volume'], request, where))
        elif disk['path'] and disk['type'] in ('file', 'block'):
            request = requests.get(disk['path']) or {}
            if client.path_exists(disk['path']):
                if request.get('size') is not None:
                    found = client.volume_at_path(disk['path'])
                    if found is None:
                        plan.warnings.append('%s: %s is in no storage pool: its size is not checked (it is never'
                                             ' grown)' % (where, disk['path']))
                    else:
                        _plan_grow(plan, found[0], found[1], request, found[2], where, live.target(disk['path']))
                continue
            if not domain_storage.creates(request):
                raise InvalidInput('disk %s: %s does not exist (give size to create it in a storage pool)'
                                   % (target, disk['path']))
            if pool_xmls is None:
                pool_xmls = client.pool_xmls()
            found = domain_host.pool_for_path(pool_xmls, disk['path'])
            if found is None:
                raise InvalidInput('disk %s: no storage pool has the directory of %s; create the image,'
                                   ' or a dir pool for that directory' % (target, disk['path']))
            plan.new_volumes.append(_new_volume(client, found[0], found[1], request, where))


def _plan_seed(plan, pool, name, cloud_init, current_xml, client, where):
    """Plan the cloud-init seed volume: written when missing or when its content is not the task's.

    Only the image's digest and sizes are shown: user-data holds passwords and keys.
    """
    files = domain_seed.seed_files(cloud_init.get('user_data'), cloud_init.get('meta_data'),
                                   cloud_init.get('network_config'), plan.name)
    image = domain_seed.iso_image(files)
    plan.seed = {
        'pool': pool,
        'volume': name,
        'sha256': domain_seed.digest(image),
        'size': len(image),
        'files': dict((file_name, len(data)) for file_name, data in sorted(files.items())),
    }
    volume = domain_storage.plan_seed(pool, name, image, current_xml,
                                      lambda length: client.download_volume(pool, name, length), where)
    if volume is not None:
        plan.new_volumes.append(volume)
        plan.changes.append('cloud-init seed %s in pool %s %s (%s)' % (
            name, pool, 'written anew' if volume.replace else 'created', plan.seed['sha256']))


def _new_volume(client, pool, name, request, where):
    base = domain_storage.base_of(request, pool)
    if base is None or base[0] is not None:
        base_xml = client.volume_xml(*base) if base is not None else None
        return domain_storage.plan_new(pool, name, request, base_xml, where)
    # A base image by path: the volume of the pool that holds the file, else the file itself.
    path = base[1]
    found = client.volume_at_path(path)
    if found is not None:
        return domain_storage.plan_new(pool, name, request, found[2], where, base=found[:2])
    if not client.path_exists(path):
        raise InvalidInput('%s: the base image %s does not exist%s' % (
            where, path, '' if client.is_local else ' in any storage pool of the libvirt host'))
    facts = None
    if not request.get('clone_volume'):
        header, size = client.image_start(path, 512)
        facts = domain_storage.image_facts(path, header, size, request.get('backing_format'), where)
    return domain_storage.plan_new(pool, name, request, None, where, base=base, base_facts=facts)


class _LiveDisks:
    """The targets of the running domain's disks by (pool, volume) or path, read only when a volume is to grow."""

    def __init__(self, plan, client):
        self.plan = plan
        self.client = client
        self.disks = None

    def target(self, key):
        """A function returning the target of `key`'s disk in the running domain, or None."""
        return lambda: self._read().get(key)

    def _read(self):
        if self.disks is None:
            self.disks = {}
            if self.plan.dom is not None and self.client.is_active(self.plan.dom):
                live = parse_domain(self.client.xml(self.plan.dom), 'the live definition of %s' % self.plan.name)
                for disk in domain_summary.disks(live):
                    self.disks[(disk['pool'], disk['volume']) if disk['volume'] else disk['path']] = disk['target']
        return self.disks


def _plan_grow(plan, pool, name, request, current_xml, where, live_target):
    """Plan the growth of an existing volume; live_target() names the running domain's disk that has it open."""
    resize, warning = domain_storage.plan_grow(pool, name, request, current_xml, where)
    if resize is not None:
        resize.live_target = live_target()
        plan.resizes.append(resize)
    if warning is not None:
        plan.warnings.append(warning)


def _volume_on_disk(client, pool, volume):
    """Whether a directory pool's directory has the file of `volume` (a read; False for other pools)."""
    for pool_xml in client.pool_xmls():
        name, directory = domain_host.pool_directory(pool_xml)
        if name == pool:
            return directory is not None and client.path_exists(posixpath.join(directory, volume))
    return False


def _plan_definition(desired, owned, plan, active_id):
    """Decide the definition to store (None when nothing changes) and whether a restart is due."""
    if plan.current is None:
        plan.definition = desired
        plan.changes.append('domain %s defined' % plan.name)
        # A new domain starts with a clean record, even from XML copied off another domain.
        metadata = {'volumes': [], 'restart_pending_id': None, 'removed_tpm': None}
    else:
        metadata = read_metadata(plan.current)
        merged, differences = _merge(desired, owned, plan)
        if differences or plan.new_volumes:
            plan.definition = merged if merged is not None else copy.deepcopy(plan.current)
            suffix = ' (drift: changed outside this module)' if plan.drift else ''
            plan.changes.extend(describe(d) + suffix for d in differences)
        _classify(plan, differences, desired)
    pending = _pending_restart(plan.current, active_id)
    if plan.definition is not None and active_id is not None and _waits_for_boot(plan):
        # The running guest will not see this definition before its next boot.
        pending = active_id
    plan.restart_required = pending is not None
    if plan.definition is None:
        return
    plan.metadata = metadata
    _write_record(plan, pending)


def _classify(plan, differences, desired):
    """Each difference with its class (live.classify) and what the run does with it (Change.done)."""
    if plan.active_id is None:
        # Nothing runs it: the definition is all there is.
        plan.classified = [domain_live.Change(d, domain_live.NEXT_BOOT) for d in differences]
    else:
        plan.classified = domain_live.classify(differences, desired, plan.current)
    for change in plan.classified:
        change.done = domain_live.APPLIED if plan.live and change.cls == domain_live.LIVE else domain_live.DEFINED


def _waits_for_boot(plan):
    """Whether some change of a running domain is in its definition only (or the guest still holds a device)."""
    if not plan.classified:
        # A definition rewritten for new volumes only (a cloud-init seed written anew): the guest reads them at boot.
        return True
    return any(c.done != domain_live.APPLIED for c in plan.classified)


def _write_record(plan, pending):
    """Write the collection's record (volumes, pending restart, removed TPM) into plan.definition."""
    metadata = plan.metadata
    # Remember the volumes this collection created (for remove_storage),
    # forgetting those no disk uses any more.
    used = set()
    for disk in domain_summary.disks(plan.definition):
        if disk['volume']:
            used.add((disk['pool'], disk['volume']))
        elif disk['path']:
            used.add(disk['path'].rsplit('/', 1)[-1])
    volumes = [v for v in metadata['volumes'] if v in used or v[1] in used]
    volumes += [(v.pool, v.name) for v in plan.new_volumes if (v.pool, v.name) not in volumes]
    # libvirt keeps the state of a TPM taken out of a definition (it is there
    # again when the TPM comes back), but removes it only together with a
    # domain that has the TPM: remember it, for state: absent.
    removed_tpm = metadata['removed_tpm']
    if _emulated_tpm(plan.definition) is not None:
        removed_tpm = None
    elif plan.current is not None and _emulated_tpm(plan.current) is not None:
        removed_tpm = _emulated_tpm(plan.current)
    write_metadata(plan.definition, {'volumes': volumes, 'restart_pending_id': pending, 'removed_tpm': removed_tpm})


def _apply_live(plan, client, recorder, params, sleep, clock):
    """Apply the live changes to the running guest, each in one libvirt call that also updates the definition;
    then merge the request into the definition libvirt now stores (the rest, for the next boot).

    A change the hypervisor refuses goes into that definition instead, with libvirt's reason. A detached
    device the guest has not released within detach_timeout is `waiting` (it goes at the next boot at the latest).
    """
    ops = domain_live.live_ops(plan.classified) if plan.live else []
    if not ops:
        return
    for op in ops:
        index = recorder.mark()
        changes = [c for c in plan.classified if c.op is op]
        try:
            released = recorder.apply(op.describe(plan.name), _run_live_op, op, plan, client, params, sleep, clock)
        except LibvirtFailure as exc:
            # libvirt changes neither the guest nor the definition when it refuses.
            recorder.failed_unchanged(index)
            for change in changes:
                change.cls, change.done = domain_live.NEXT_BOOT, domain_live.DEFINED
                change.reason = 'the running guest refused it: %s' % exc.msg
            continue
        if released is False:
            for change in changes:
                change.done = domain_live.WAITING
                change.reason = ('the guest has not released the device within %d s; it goes at the next boot'
                                 ' at the latest' % params['detach_timeout'])
    if recorder.check_mode:
        return
    # What libvirt stores now (with the addresses it gave the attached devices), and the rest of the request on it.
    plan.current = parse_domain(client.inactive_xml(plan.dom), 'the stored definition of %s' % plan.name)
    merged, _differences = merge(plan.desired, plan.current, plan.owned)
    plan.definition = merged
    pending = _pending_restart(plan.current, plan.active_id)
    if _waits_for_boot(plan) or plan.new_volumes:
        pending = plan.active_id
    elif pending is not None:
        # An earlier run left a change for the next boot: still due only while the running guest lacks part of
        # what is to be stored (compared as the request is; this run may have applied or undone it live).
        live = parse_domain(client.xml(plan.dom), 'the live definition of %s' % plan.name)
        if not domain_live.pending(merged, live):
            pending = None
    plan.restart_required = pending is not None
    _write_record(plan, pending)


def _run_live_op(op, plan, client, params, sleep, clock):
    """One live change; for a detach, False when the guest still holds the device at the timeout."""
    if op.kind == 'memory':
        client.set_memory_live(plan.dom, op.value)
    elif op.kind == 'vcpus':
        client.set_vcpus_live(plan.dom, op.value)
    elif op.kind == 'attach':
        client.attach_device(plan.dom, domain_live.device_xml(op))
    elif op.kind == 'update':
        client.update_device(plan.dom, domain_live.device_xml(op))
    else:
        client.detach_device(plan.dom, domain_live.device_xml(op))
        deadline = clock() + params['detach_timeout']
        while True:
            live = parse_domain(client.xml(plan.dom), 'the live definition of %s' % plan.name)
            if not domain_live.device_present(op.device, live):
                return True
            if clock() >= deadline:
                return False
            sleep(0.25)
    return True


def _merge(desired, owned, plan):
    """(merged definition, differences); (None, []) without comparing when the request and the
    stored definition are those of the module's last define."""
    intent = plan.intent = domain_intent.read_intent(plan.current)
    if intent is not None and intent.request == plan.request:
        plan.drift = intent.stored != domain_intent.stored_digest(plan.current)
        # A secret is not in the digests: a request with one is always compared.
        if not plan.drift and not secrets_in_element(desired):
            return None, []
    merged, differences = merge(desired, plan.current, owned)
    return merged, [d for d in differences if not _ignored_before(plan, d)]


def _ignored_before(plan, difference):
    """True for a difference libvirt did not keep at the module's last define (the same value asked)."""
    return plan.intent is not None and domain_intent.difference_key(difference) in plan.intent.ignored


def _emulated_tpm(domain):
    for tpm in domain.findall('devices/tpm'):
        if tpm.find("backend[@type='emulator']") is not None:
            return tpm
    return None


def _pending_restart(current, active_id):
    """The domain ID recorded with an unapplied change, when the domain still runs that boot."""
    if current is None or active_id is None:
        return None
    recorded = read_metadata(current)['restart_pending_id']
    return recorded if recorded == active_id else None


def _define(plan, client, recorder, params, sleep, clock):
    if plan.definition is None and not plan.new_volumes and not plan.resizes:
        return
    created = []
    try:
        for volume in plan.new_volumes:
            if volume.replace:
                # A seed is data this module derives from the task: its older content goes.
                recorder.apply(volume.replace_action(), client.delete_volume, volume.pool, volume.name)
            index = recorder.mark()
            if volume.copy:
                recorder.apply(volume.action(), client.clone_volume, volume.pool, volume.xml, *volume.base)
            else:
                recorder.apply(volume.action(), client.create_volume, volume.pool, volume.xml)
            created.append((index, volume.pool, volume.name))
            if volume.upload is not None:
                recorder.apply(volume.upload_action(), client.upload_volume, volume.pool, volume.name, volume.upload)
            if volume.grow_to is not None:
                recorder.apply(volume.grow_action(), client.resize_volume, volume.pool, volume.name, volume.grow_to)
        if plan.definition is not None:
            _apply_live(plan, client, recorder, params, sleep, clock)
            verb = 'define' if plan.current is None else 'update the definition of'
            dom = recorder.apply('%s domain %s' % (verb, plan.name), _define_and_remember, plan, client)
            if dom is not None:
                plan.dom = dom
    except Exception:
        # libvirt's volume creation and definition are all or nothing: the
        # call that failed changed nothing. Leave no volume behind for a
        # domain that could not be defined.
        if isinstance(sys.exc_info()[1], LibvirtFailure):
            recorder.failed_unchanged(recorder.mark() - 1)
        for index, pool, name in reversed(created):
            recorder.undo(index, 'delete volume %s in pool %s' % (name, pool), client.delete_volume, pool, name)
        raise
    # After the definition: a grown volume cannot be undone, so nothing else may fail after it.
    for resize in plan.resizes:
        if resize.live_target:
            recorder.apply(resize.action(), client.block_resize, plan.dom, resize.live_target, resize.capacity)
        else:
            recorder.apply(resize.action(), client.resize_volume, resize.pool, resize.name, resize.capacity)


def _define_and_remember(plan, client):
    """Define, then record the request and what libvirt stored (domain_intent); warn about what it did not keep."""
    dom = client.define(to_string(plan.definition))
    try:
        stored = parse_domain(client.inactive_xml(dom), 'the stored definition of %s' % plan.name)
        # What this libvirt did not keep of the request (a setting it ignores): said once, here.
        kept_out = [domain_intent.difference_key(d) for d in compare(plan.desired, stored, plan.owned)]
        kept_out = [key for key in kept_out if key is not None]
        known = plan.intent.ignored if plan.intent is not None else []
        new = [key for key in kept_out if key not in known]
        if new:
            plan.warnings.append(
                'libvirt %s did not store these parts of the definition of domain %s as given (it ignores'
                ' them or stores them otherwise): %s. Later runs do not count them as changes while the task'
                ' asks for the same values.' % (client.version(), plan.name, domain_intent.ignored_words(new)))
        record = domain_intent.Intent(plan.request, domain_intent.stored_digest(stored), kept_out)
        client.set_metadata(dom, domain_intent.INTENT_NS, domain_intent.INTENT_PREFIX,
                            domain_intent.intent_metadata(record))
    except LibvirtFailure as exc:
        # The definition stands; without the record, the next run compares.
        plan.warnings.append('domain %s is defined, but its record of this request could not be kept (the next'
                             ' run compares the definitions): %s' % (plan.name, exc))
    return dom


# --- autostart and power state ---------------------------------------------

def _set_autostart(plan, params, client, recorder):
    wanted = params.get('autostart')
    if wanted is None:
        return
    have = client.autostart(plan.dom) if plan.dom is not None and plan.current is not None else False
    if have != wanted:
        recorder.apply('%s autostart of domain %s' % ('enable' if wanted else 'disable', plan.name),
                       client.set_autostart, plan.dom, wanted)


def _converge_state(plan, params, client, recorder, sleep, clock):
    wanted = params['state']
    state = client.state(plan.dom) if plan.current is not None else 'shutoff'
    if plan.restart_required and params['apply'] == 'restart' and state in ACTIVE_STATES:
        _stop(plan, params, client, recorder, sleep, clock, reason='to apply the new definition')
        state = 'shutoff'
        plan.restart_required = False
        if wanted == 'present':
            wanted = 'running'
    if wanted == 'running':
        if state in ('paused', 'pmsuspended'):
            recorder.apply('resume domain %s' % plan.name, client.resume, plan.dom)
        elif state not in ACTIVE_STATES:
            recorder.apply('start domain %s' % plan.name, client.start, plan.dom)
    elif wanted == 'paused':
        if state not in ACTIVE_STATES:
            recorder.apply('start domain %s paused' % plan.name, client.start, plan.dom, True)
        elif state != 'paused':
            recorder.apply('pause domain %s' % plan.name, client.suspend, plan.dom)
    elif wanted == 'shutdown':
        if state in ACTIVE_STATES:
            _stop(plan, params, client, recorder, sleep, clock)
            plan.restart_required = False


def _stop(plan, params, client, recorder, sleep, clock, reason=None, force=None):
    """Stop a running domain as `shutdown_timeout` and `force` say, with the same actions in check mode.

    timeout > 0: the ACPI power button, then wait; when the guest is still
    running at the end, power it off with `force`, else fail (after
    pressing). timeout 0: power off at once with `force`, else press the
    button and do not wait. A paused guest is resumed first (it cannot see
    the button). Each action says the whole policy, so check mode (which
    cannot know whether the guest obeys) predicts the real run's list.
    """
    timeout = params['shutdown_timeout']
    force = params['force'] if force is None else force
    why = ', ' + reason if reason else ''
    if timeout == 0 and force:
        recorder.apply('power off domain %s%s' % (plan.name, why), client.destroy, plan.dom)
        return
    if client.state(plan.dom) == 'paused':
        recorder.apply('resume domain %s (a paused guest cannot see the power button)' % plan.name,
                       client.resume, plan.dom)
    if timeout == 0:
        recorder.apply('press the ACPI power button of domain %s (not waiting%s)' % (plan.name, why),
                       client.press_power_button, plan.dom)
        return
    if force:
        recorder.apply('shut down domain %s (ACPI power button, up to %d s, then power off%s)' % (plan.name, timeout, why),
                       _shutdown_or_power_off, client, plan.dom, timeout, sleep, clock)
        return
    off = recorder.apply('shut down domain %s (ACPI power button, up to %d s%s)' % (plan.name, timeout, why),
                         client.shutdown, plan.dom, timeout, sleep, clock)
    if off is False:
        raise HostStateError('domain %s did not shut down within %d s of the ACPI power button and is still'
                             ' running; set force: true to power it off, or raise shutdown_timeout'
                             % (plan.name, timeout), name=plan.name)


def _shutdown_or_power_off(client, dom, timeout, sleep, clock):
    if not client.shutdown(dom, timeout, sleep, clock):
        client.destroy(dom)


def _remove(plan, params, client, recorder, sleep, clock):
    if plan.dom is None:
        return
    record = read_metadata(plan.current)
    volumes = record['volumes'] if params['remove_storage'] else []
    if client.is_active(plan.dom):
        # A domain to remove is always stopped, forcibly once the timeout is over.
        _stop(plan, params, client, recorder, sleep, clock, force=True)
    if record['removed_tpm'] is not None and _emulated_tpm(plan.current) is None:
        with_tpm = copy.deepcopy(plan.current)
        with_tpm.find('devices').append(record['removed_tpm'])
        recorder.apply('give domain %s back the TPM a change removed, so that its state goes with it' % plan.name,
                       client.define, to_string(with_tpm))
    recorder.apply('undefine domain %s with its nvram, TPM state, managed save and snapshot metadata' % plan.name,
                   client.undefine, plan.dom)
    for pool, name in volumes:
        recorder.apply('delete volume %s in pool %s' % (name, pool), client.delete_volume, pool, name)
    plan.changes.append('domain %s removed' % plan.name)


# --- the result -------------------------------------------------------------

def _result(plan, client, recorder, removed=False, wanted_state=None):
    if removed:
        effective, state = None, 'absent'
    elif recorder.check_mode or plan.dom is None:
        effective = plan.definition if plan.definition is not None else plan.current
        state = _predicted_state(plan, client, wanted_state)
    else:
        effective = parse_domain(client.inactive_xml(plan.dom), 'the stored definition of %s' % plan.name)
        state = client.state(plan.dom)
    shown = effective if effective is not None else plan.current
    after = '' if removed else unified_xml(plan.definition if plan.definition is not None else plan.current)
    return {
        'name': plan.name,
        'uuid': text_of(shown, 'uuid') if shown is not None else None,
        'state': state,
        'xml': unified_xml(effective) if effective is not None else None,
        'restart_required': plan.restart_required,
        'cloud_init': plan.seed,
        'changes': plan.changes,
        'differences': [c.as_dict() for c in plan.classified],
        'warnings': plan.warnings,
        'actions': list(recorder.actions),
        'diff': {
            'before': unified_xml(plan.current),
            'after': after,
            'before_header': '%s (stored definition)' % plan.name,
            'after_header': '%s (%s)' % (plan.name, 'removed' if removed else 'new definition'),
        },
        'live_diff': _live_diff(plan, effective, state) if not removed else None,
    }


def _live_diff(plan, effective, state):
    """The running guest's XML beside the stored definition, when the guest does not run all of it yet."""
    if not plan.restart_required or plan.live_xml is None or effective is None or state not in ACTIVE_STATES:
        return None
    if not domain_live.pending(effective, parse_domain(plan.live_xml, 'the live definition of %s' % plan.name)):
        return None  # what waits is not in the XML (a cloud-init seed written anew)
    return {'before': plan.live_xml, 'after': unified_xml(effective), 'before_header': '%s (running)' % plan.name,
            'after_header': '%s (stored definition, for the next boot)' % plan.name}


def _read_live(plan, client):
    """The running guest's XML, for the second diff, when a restart is due."""
    if plan.restart_required and plan.active_id is not None:
        plan.live_xml = client.xml(plan.dom)


def _predicted_state(plan, client, wanted):
    """The state check mode expects at the end (nothing was started or stopped)."""
    if wanted in ('running', 'paused'):
        return wanted
    if wanted == 'shutdown':
        return 'shutoff'
    return client.state(plan.dom) if plan.current is not None else 'shutoff'
