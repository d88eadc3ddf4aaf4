# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one table of phyllome.os.domain's options.

Each model option is declared once, here, with its type, its default (which
may depend on the guest's OS family) and the part of the domain XML it owns.
Options are grouped: a group's options together produce one part of the XML
(model.py has one builder per group) and the group says how that part is
compared with what libvirt stored (compare.py reads COMPARE_RULES).
The module's argument spec is generated from the same table.
"""

from __future__ import annotations

from ansible_collections.phyllome.os.plugins.module_utils._common.device_ids import format_usb_address, normalize_id, normalize_pci_address, parse_usb_address
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput
from ansible_collections.phyllome.os.plugins.module_utils._common.units import parse_size
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import local_tag

FAMILIES = ('linux', 'windows', 'other')
# libvirt's <cpu match=...> and <feature policy=...> values.
CPU_MATCHES = ('exact', 'minimum', 'strict')
CPU_FEATURE_POLICIES = ('force', 'require', 'optional', 'disable', 'forbid')
STATES = ('present', 'running', 'shutdown', 'paused', 'absent')

# Versioned machine types libvirt stores for an alias (q35 -> pc-q35-7.2).
_MACHINE_FAMILIES = {'q35': 'pc-q35-', 'pc': 'pc-i440fx-'}

# pcie-root-port controllers of a q35 model: virt-install's number (14, not 16: QEMU 6.1 failed with 15 or
# more, qemu#641). libvirt puts the model's devices on them; those left free take hot-plugged devices.
PCIE_ROOT_PORTS = 14


class Option:
    """One option: argument spec, default (fixed or per OS family) and sub-options."""

    def __init__(self, name, type='str', default=None, family_default=None, choices=None,
                 elements=None, options=None, required=False, aliases=None, no_log=False):
        self.name = name
        self.type = type
        self.default = default
        # {family: value}: applied after argument parsing, once the family is known.
        self.family_default = family_default
        self.choices = choices
        self.elements = elements
        self.options = options or ()
        self.required = required
        self.aliases = aliases
        self.no_log = no_log

    def argument_spec(self):
        spec = {'type': self.type}
        if self.default is not None:
            spec['default'] = self.default
        if self.choices:
            spec['choices'] = list(self.choices)
        if self.elements:
            spec['elements'] = self.elements
        if self.required:
            spec['required'] = True
        if self.aliases:
            spec['aliases'] = list(self.aliases)
        if self.no_log:
            spec['no_log'] = True
        if self.options:
            spec['options'] = dict((o.name, o.argument_spec()) for o in self.options)
        return spec


class CompareRule:
    """How a container element of the domain XML is compared with libvirt's copy.

    strict: children present in libvirt's copy but not in the desired XML are
    differences (a feature switched off, a timer removed), except those
    `implicit` says libvirt adds by itself.
    implicit: {child tag: predicate(current_child, desired_container) -> bool}.
    owned_attributes: attributes that count as removed when the desired XML
    leaves them out (other attributes left out are libvirt defaults).
    """

    def __init__(self, strict=True, implicit=None, owned_attributes=()):
        self.strict = strict
        self.implicit = implicit or {}
        self.owned_attributes = tuple(owned_attributes)

    def is_implicit(self, current_child, desired_container):
        predicate = self.implicit.get(local_tag(current_child))
        if predicate is None:
            return False
        if predicate is True:
            return True
        return bool(predicate(current_child, desired_container))


class OptionGroup:
    """Options that together produce one part of the domain XML.

    owns: top-level children of <domain> the group writes. In model mode they
    belong to the model: one of them present in libvirt's copy but not built
    (memoryBacking once virtiofs is gone) is a difference.
    compare: {container path: CompareRule} for the XML the group writes.
    """

    def __init__(self, name, options, owns=(), compare=None):
        self.name = name
        self.options = tuple(options)
        self.owns = tuple(owns)
        self.compare = compare or {}


def _desired_has_no(tag):
    return lambda _current, desired: desired.find(tag) is None


def _efi_firmware(_current, desired):
    # libvirt fills <loader>/<nvram> (and, in newer releases, the firmware
    # feature list) from its firmware auto-selection for os firmware='efi'.
    return desired.get('firmware') == 'efi' or desired.find('loader') is not None


def _default_boot(current, desired):
    return current.get('dev') == 'hd' and desired.find('boot') is None


def _cpu_model_filled(_current, desired):
    return desired.get('mode') in ('host-model', 'host-passthrough', 'maximum')


# --- the model options -----------------------------------------------------

_DISK_OPTIONS = (
    Option('path'),
    Option('pool'),
    Option('volume'),
    Option('size', type='raw'),
    Option('format', choices=('raw', 'qcow2')),
    # A missing volume made from a base volume (_domain/storage.py).
    Option('clone_volume'),
    Option('clone_pool'),
    Option('backing_volume'),
    Option('backing_pool'),
    Option('backing_format', choices=('raw', 'qcow2')),
    Option('device', default='disk', choices=('disk', 'cdrom')),
    Option('bus', choices=('virtio', 'sata', 'scsi', 'usb')),
    Option('target'),
    Option('cache', choices=('default', 'none', 'writethrough', 'writeback', 'directsync', 'unsafe')),
    Option('discard', choices=('unmap', 'ignore')),
    Option('readonly', type='bool', default=False),
    Option('boot_order', type='int'),
)

# cloud-init's NoCloud seed (_domain/seed.py), a read-only CD-ROM the model adds.
_CLOUD_INIT_OPTIONS = (
    # Passwords and keys: Ansible masks the whole text in every output.
    Option('user_data', no_log=True),
    Option('meta_data', type='dict'),
    Option('network_config', type='raw'),
    Option('pool'),
    Option('volume'),
    Option('bus', default='sata', choices=('sata', 'scsi')),
)

_NETWORK_OPTIONS = (
    Option('type', default='network', choices=('network', 'bridge', 'direct', 'user', 'passt')),
    Option('source'),
    Option('mac'),
    Option('model'),
    Option('boot_order', type='int'),
)

_HOSTDEV_OPTIONS = (
    Option('type', default='pci', choices=('pci', 'usb')),
    Option('address'),
    Option('vendor'),
    Option('product'),
    Option('managed', type='bool', default=True),
    Option('boot_order', type='int'),
)

_FILESYSTEM_OPTIONS = (
    Option('source', required=True),
    Option('target', required=True),
    Option('readonly', type='bool', default=False),
)

OS_OPTION = Option('os', default='linux', choices=FAMILIES)

MODEL_GROUPS = (
    OptionGroup(
        'platform', [OS_OPTION],
        owns=('features', 'clock', 'pm', 'on_poweroff', 'on_reboot', 'on_crash'),
        compare={
            'features': CompareRule(),
            'features/hyperv': CompareRule(),
            'clock': CompareRule(),
            'pm': CompareRule(),
        }),
    OptionGroup(
        'memory', [
            Option('memory', type='raw', family_default={'linux': 2048, 'windows': 4096, 'other': 1024}),
            # <memory>, the most the guest can have without a restart; <currentMemory> is `memory`.
            Option('max_memory', type='raw'),
        ],
        owns=('memory', 'currentMemory')),
    OptionGroup(
        'cpu', [
            Option('vcpus', type='int', default=2),
            # <vcpu current=vcpus>max_vcpus</vcpu>: vCPUs that can be added to the running guest.
            Option('max_vcpus', type='int'),
            Option('cpu', type='dict', options=(
                Option('mode', choices=('host-model', 'host-passthrough', 'maximum', 'custom')),
                # A custom CPU, as phyllome.os.cpu_baseline's `cpu` gives it (libvirt's words).
                Option('model'),
                Option('match', choices=CPU_MATCHES),
                Option('fallback', choices=('allow', 'forbid')),
                Option('vendor'),
                Option('features', type='list', elements='dict', options=(
                    Option('name', required=True),
                    Option('policy', default='require', choices=CPU_FEATURE_POLICIES),
                )),
                Option('sockets', type='int', default=1),
                Option('cores', type='int'),
                Option('threads', type='int', default=1),
            )),
        ],
        owns=('vcpu', 'cpu'),
        compare={
            'cpu': CompareRule(implicit={'model': _cpu_model_filled}),
            # Without `current`, every vCPU is online.
            'vcpu': CompareRule(owned_attributes=('current',)),
        }),
    OptionGroup(
        'firmware', [
            Option('machine', default='q35'),
            Option('firmware', default='efi', choices=('efi', 'bios')),
            Option('secure_boot', type='bool', family_default={'linux': False, 'windows': True, 'other': False}),
        ],
        owns=('os',),
        compare={
            'os': CompareRule(
                owned_attributes=('firmware',),
                implicit={
                    'type': _desired_has_no('type'),
                    'loader': _efi_firmware,
                    'nvram': _efi_firmware,
                    'firmware': _efi_firmware,
                    'boot': _default_boot,
                }),
            'os/firmware': CompareRule(),
        }),
    OptionGroup(
        'controllers', [
            # At least this many <controller type='pci' model='pcie-root-port'/>; None: PCIE_ROOT_PORTS on q35.
            Option('pcie_root_ports', type='int'),
        ],
        owns=('devices',)),
    OptionGroup(
        'memory_backing', [
            Option('memory_backing', type='dict', options=(
                Option('source', choices=('memfd', 'file', 'anonymous')),
                Option('access', choices=('shared', 'private')),
                Option('hugepages', type='bool', default=False),
                Option('hugepage_size', type='raw'),
            )),
        ],
        owns=('memoryBacking',),
        compare={'memoryBacking': CompareRule()}),
    OptionGroup('tpm', [Option('tpm', type='bool', family_default={'linux': True, 'windows': True, 'other': False})],
                owns=('devices',)),
    OptionGroup('disks', [
        Option('disks', type='list', elements='dict', default=[], options=_DISK_OPTIONS),
        Option('cloud_init', type='dict', options=_CLOUD_INIT_OPTIONS),
    ], owns=('devices',)),
    OptionGroup('networks', [Option('networks', type='list', elements='dict', options=_NETWORK_OPTIONS)],
                owns=('devices',)),
    OptionGroup('hostdevs', [Option('hostdevs', type='list', elements='dict', default=[], options=_HOSTDEV_OPTIONS)],
                owns=('devices',)),
    OptionGroup('filesystems', [Option('filesystems', type='list', elements='dict', default=[], options=_FILESYSTEM_OPTIONS)],
                owns=('devices',)),
    OptionGroup(
        'display', [
            Option('graphics', type='dict', options=(
                Option('type', default='spice', choices=('spice', 'vnc', 'none')),
                Option('listen'),
                Option('gl', type='bool', default=False),
            )),
            Option('video', choices=('virtio', 'qxl', 'vga', 'bochs', 'ramfb', 'cirrus', 'none')),
            Option('sound', choices=('none', 'ich9', 'ich6', 'ac97')),
        ],
        owns=('devices',)),
    OptionGroup(
        'guest_devices', [
            Option('balloon', type='bool', family_default={'linux': True, 'windows': False, 'other': False}),
            Option('rng', type='bool', family_default={'linux': True, 'windows': True, 'other': False}),
            Option('guest_agent', type='bool', family_default={'linux': True, 'windows': True, 'other': False}),
        ],
        owns=('devices',)),
    # Applied last, on top of everything the other groups built.
    OptionGroup('extra_xml', [Option('extra_xml', type='list', elements='str', default=[])]),
)

MODEL_OPTIONS = tuple(option for group in MODEL_GROUPS for option in group.options)

# Container path -> CompareRule, for model mode and for `xml` mode alike.
COMPARE_RULES = dict((path, rule) for group in MODEL_GROUPS for path, rule in group.compare.items())

# Top-level <domain> children the model owns.
MODEL_OWNED_TAGS = frozenset(tag for group in MODEL_GROUPS for tag in group.owns)

# Everything but the model: how to reach libvirt, what to do, how to stop.
MODULE_OPTIONS = (
    Option('name'),
    Option('state', default='present', choices=STATES),
    Option('autostart', type='bool'),
    Option('model', type='dict', options=MODEL_OPTIONS),
    Option('xml'),
    Option('domain_type', choices=('kvm', 'qemu')),
    Option('apply', default='live', choices=('live', 'next_boot', 'restart')),
    Option('detach_timeout', type='int', default=30),
    Option('shutdown_timeout', type='int', default=120),
    Option('force', type='bool', default=False),
    Option('remove_storage', type='bool', default=False),
)


def argument_spec(common=None):
    """The module's argument spec: `common` (e.g. the uri option) plus the table."""
    spec = dict(common or {})
    for option in MODULE_OPTIONS:
        spec[option.name] = option.argument_spec()
    return spec


MUTUALLY_EXCLUSIVE = [('model', 'xml')]
REQUIRED_ONE_OF = [('name', 'xml')]


# --- resolving what the user gave into the values the builder reads --------

def resolve_model(model, name=None):
    """Apply per-family defaults and check a model's values; return a new dict.

    Sizes become bytes; lists of devices get their per-family defaults.
    name: the domain's, which names the cloud-init seed volume by default.
    Raises InvalidInput on values that contradict each other.
    """
    family = (model or {}).get('os') or 'linux'
    values = apply_defaults(MODEL_OPTIONS, model or {}, family)
    values['memory'] = parse_size(values['memory'], 'MiB', 'model.memory')
    if values['memory'] % 1024:
        raise InvalidInput('model.memory must be a whole number of KiB')
    if values.get('max_memory') is None:
        values['max_memory'] = values['memory']
    else:
        values['max_memory'] = parse_size(values['max_memory'], 'MiB', 'model.max_memory')
        if values['max_memory'] % 1024 or values['max_memory'] < values['memory']:
            raise InvalidInput('model.max_memory must be a whole number of KiB, at least model.memory')
    if values.get('max_vcpus') is None:
        values['max_vcpus'] = values['vcpus']
    elif values['max_vcpus'] < values['vcpus']:
        raise InvalidInput('model.max_vcpus (%d) is less than model.vcpus (%d)' % (values['max_vcpus'], values['vcpus']))
    # The topology describes every possible vCPU.
    values['cpu'] = _resolve_cpu(values.get('cpu'), values['max_vcpus'])
    if values['firmware'] == 'bios' and values['secure_boot']:
        raise InvalidInput('model.secure_boot needs firmware: efi')
    values['pcie_root_ports'] = _resolve_pcie_root_ports(values.get('pcie_root_ports'), values['machine'])
    # A section left out is None here (apply_defaults made it {} with its defaults); {} asks for a seed.
    given = (model or {}).get('cloud_init') is not None
    values['cloud_init'] = _resolve_cloud_init(values['cloud_init'], values.get('disks') or [], name) if given else None
    disks = list(values.get('disks') or [])
    if values['cloud_init'] is not None:
        seed = values['cloud_init']
        disks.append({'device': 'cdrom', 'pool': seed['pool'], 'volume': seed['volume'], 'bus': seed['bus'],
                      'cloud_init_seed': True})
    values['disks'] = _resolve_disks([apply_defaults(_DISK_OPTIONS, d, family) for d in disks], family)
    if values.get('networks') is None:
        # The Phyllome model's NIC: virtio on libvirt's NAT network 'default'.
        values['networks'] = [apply_defaults(_NETWORK_OPTIONS, {'source': 'default'}, family)]
    values['networks'] = [_resolve_network(n, family) for n in values['networks']]
    values['hostdevs'] = [_resolve_hostdev(h) for h in values.get('hostdevs') or []]
    values['filesystems'] = _resolve_filesystems(values.get('filesystems') or [])
    values['memory_backing'] = _resolve_memory_backing(values.get('memory_backing'), bool(values['filesystems']))
    values['graphics'] = _resolve_graphics(values.get('graphics'))
    headless = values['graphics']['type'] == 'none'
    if values.get('video') is None:
        values['video'] = 'none' if headless else {'other': 'vga'}.get(family, 'virtio')
    if values.get('sound') is None:
        values['sound'] = 'none' if headless or family == 'other' else 'ich9'
    if values['graphics'].get('gl') and values['video'] != 'virtio':
        raise InvalidInput('model.graphics.gl needs video: virtio')
    return values


def apply_defaults(options, values, family):
    """A copy of `values` with each option's default (fixed or per family) filled in, recursively.

    AnsibleModule fills fixed defaults too; doing it here keeps resolve_model
    usable on plain dicts (tests, other callers) with the same result.
    """
    result = dict(values)
    for option in options:
        value = result.get(option.name)
        if value is None:
            if option.family_default is not None:
                value = option.family_default[family]
            elif option.default is not None:
                value = list(option.default) if isinstance(option.default, list) else option.default
        if option.options and option.type == 'dict' and value is None:
            # A sub-section left out is the sub-section with its defaults.
            value = {}
        if option.options and isinstance(value, dict):
            value = apply_defaults(option.options, value, family)
        elif option.options and isinstance(value, list):
            value = [apply_defaults(option.options, item, family) for item in value]
        result[option.name] = value
    return result


def _resolve_cpu(cpu, vcpus):
    cpu = dict(cpu or {})
    if vcpus < 1:
        raise InvalidInput('model.vcpus must be at least 1')
    if cpu.get('mode') is None:
        cpu['mode'] = 'custom' if cpu.get('model') else 'host-model'
    if cpu['mode'] == 'custom' and not cpu.get('model'):
        raise InvalidInput('model.cpu.mode custom needs model.cpu.model (a CPU model name such as EPYC)')
    if cpu['mode'] == 'custom':
        # A named model with libvirt's strict defaults: the guest gets exactly this CPU or does not start.
        cpu['match'] = cpu.get('match') or 'exact'
        cpu['fallback'] = cpu.get('fallback') or 'forbid'
    else:
        given = [key for key in ('model', 'match', 'fallback', 'vendor') if cpu.get(key)]
        if given:
            raise InvalidInput('model.cpu.%s is only used with mode: custom (mode is %s)' % (given[0], cpu['mode']))
    features = [dict(f, policy=f.get('policy') or 'require') for f in cpu.get('features') or []]
    names = [f.get('name') for f in features]
    if not all(names):
        raise InvalidInput('model.cpu.features: every feature needs a name')
    twice = sorted(set(n for n in names if names.count(n) > 1))
    if twice:
        raise InvalidInput('model.cpu.features names a feature twice: %s' % ', '.join(twice))
    for feature in features:
        if feature['policy'] not in CPU_FEATURE_POLICIES:
            raise InvalidInput('model.cpu.features %s: policy must be one of %s, not %s'
                               % (feature['name'], ', '.join(CPU_FEATURE_POLICIES), feature['policy']))
    cpu['features'] = features
    sockets = cpu.get('sockets') or 1
    threads = cpu.get('threads') or 1
    cores = cpu.get('cores')
    if cores is None:
        if vcpus % (sockets * threads):
            raise InvalidInput('model.vcpus (%d) is not a multiple of sockets x threads (%d x %d)'
                               % (vcpus, sockets, threads))
        cores = vcpus // (sockets * threads)
    if sockets * cores * threads != vcpus:
        raise InvalidInput('model.cpu topology %d sockets x %d cores x %d threads does not match vcpus %d'
                           % (sockets, cores, threads, vcpus))
    cpu.update(sockets=sockets, cores=cores, threads=threads)
    return cpu


def machine_matches(wanted, stored):
    """True when libvirt's stored machine type is `wanted` or its versioned expansion."""
    if wanted == stored:
        return True
    prefix = _MACHINE_FAMILIES.get(wanted, wanted + '-')
    return stored.startswith(prefix) and stored[len(prefix):][:1].isdigit()


def _resolve_pcie_root_ports(ports, machine):
    q35 = machine_matches('q35', machine)
    if ports is None:
        return PCIE_ROOT_PORTS if q35 else 0
    if ports < 0:
        raise InvalidInput('model.pcie_root_ports must be 0 or more')
    if ports and not q35:
        # Other machines have no PCI Express root: an i440fx (pc) guest hot-plugs into its PCI root bus's slots.
        raise InvalidInput('model.pcie_root_ports is for q35 machines, not %s' % machine)
    return ports


_DISK_PREFIX = {'virtio': 'vd', 'sata': 'sd', 'scsi': 'sd', 'usb': 'sd'}


def _resolve_disks(disks, family):
    resolved = []
    for index, disk in enumerate(disks):
        disk = dict(disk)
        where = 'model.disks[%d]' % index
        has_path = bool(disk.get('path'))
        has_volume = bool(disk.get('volume'))
        if has_path and (has_volume or disk.get('pool')):
            raise InvalidInput('%s: give either path, or pool and volume, not both' % where)
        if disk.get('pool') and not has_volume:
            raise InvalidInput('%s: pool needs volume' % where)
        if has_volume and not disk.get('pool'):
            disk['pool'] = 'default'
        if disk['device'] == 'disk' and not (has_path or has_volume):
            raise InvalidInput('%s: a disk needs path, or pool and volume' % where)
        if disk.get('size') is not None:
            if disk['device'] == 'cdrom':
                raise InvalidInput('%s: a cdrom cannot be created (size is for disks to create)' % where)
            disk['size'] = parse_size(disk['size'], 'GiB', where + '.size')
        _check_base(disk, where)
        if disk.get('bus') is None:
            disk['bus'] = 'sata' if disk['device'] == 'cdrom' or family == 'other' else 'virtio'
        if disk['device'] == 'cdrom':
            if disk['bus'] == 'virtio':
                raise InvalidInput('%s: a cdrom cannot be on bus virtio (use sata or scsi)' % where)
            disk['readonly'] = True
        if disk.get('format') is None:
            disk['format'] = 'raw'
        resolved.append(disk)
    _assign_targets(resolved)
    return resolved


def _resolve_cloud_init(cloud_init, disks, name):
    """The seed's options with its volume's pool and name filled in.

    Its volume goes in the pool of the first model disk that has one (else
    'default') and is named <domain>-cidata.iso, as virt-install names its own.
    """
    seed = dict(cloud_init)
    if seed.get('pool') is None:
        pools = [d.get('pool') or 'default' for d in disks if d.get('volume')]
        seed['pool'] = pools[0] if pools else 'default'
    if seed.get('volume') is None:
        if not name:
            raise InvalidInput('model.cloud_init needs the domain name (or cloud_init.volume)')
        seed['volume'] = '%s-cidata.iso' % name
    if '/' in seed['volume']:
        raise InvalidInput('model.cloud_init.volume %r is a volume name, not a path' % seed['volume'])
    if seed.get('bus') is None:
        seed['bus'] = 'sata'
    for disk in disks:
        if (disk.get('pool') or 'default', disk.get('volume')) == (seed['pool'], seed['volume']):
            raise InvalidInput('model.cloud_init: volume %s in pool %s is also a disk of model.disks'
                               % (seed['volume'], seed['pool']))
    return seed


def _check_base(disk, where):
    """A disk made from a base volume: a copy (clone_volume) or a qcow2 overlay (backing_volume).

    The base is a volume name in a pool, or an absolute path (as virsh takes a volume).
    """
    for kind in ('clone', 'backing'):
        if disk.get(kind + '_pool') and not disk.get(kind + '_volume'):
            raise InvalidInput('%s: %s_pool needs %s_volume' % (where, kind, kind))
        if disk.get(kind + '_pool') and disk[kind + '_volume'].startswith('/'):
            raise InvalidInput('%s: %s_volume %s is a path, which needs no %s_pool'
                               % (where, kind, disk[kind + '_volume'], kind))
    if disk.get('backing_format') and not disk.get('backing_volume'):
        raise InvalidInput('%s: backing_format needs backing_volume' % where)
    if not (disk.get('clone_volume') or disk.get('backing_volume')):
        return
    if disk.get('clone_volume') and disk.get('backing_volume'):
        raise InvalidInput('%s: give clone_volume (a copy) or backing_volume (an overlay), not both' % where)
    if disk['device'] == 'cdrom':
        raise InvalidInput('%s: a cdrom is not made from a base volume' % where)
    if disk.get('backing_volume'):
        if disk.get('format') not in (None, 'qcow2'):
            raise InvalidInput('%s: an overlay (backing_volume) is a qcow2 volume, not %s' % (where, disk['format']))
        disk['format'] = 'qcow2'


def _assign_targets(disks):
    taken = set(d['target'] for d in disks if d.get('target'))
    if len(taken) != len([d for d in disks if d.get('target')]):
        raise InvalidInput('model.disks: two disks have the same target')
    for disk in disks:
        if disk.get('target'):
            continue
        prefix = _DISK_PREFIX[disk['bus']]
        index = 0
        while True:
            name = prefix + _disk_letters(index)
            if name not in taken:
                break
            index += 1
        disk['target'] = name
        taken.add(name)


def _disk_letters(index):
    """0 -> a, 25 -> z, 26 -> aa: libvirt's disk name suffixes."""
    letters = ''
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord('a') + rest) + letters
    return letters


def _resolve_network(network, family):
    network = dict(network)
    kind = network.get('type') or 'network'
    network['type'] = kind
    if kind == 'network' and not network.get('source'):
        network['source'] = 'default'
    if kind in ('bridge', 'direct') and not network.get('source'):
        raise InvalidInput('model.networks: type %s needs source (the host %s)'
                           % (kind, 'bridge' if kind == 'bridge' else 'interface'))
    if kind in ('user', 'passt') and network.get('source'):
        raise InvalidInput('model.networks: type %s takes no source' % kind)
    if network.get('mac'):
        mac = network['mac'].strip().lower()
        parts = mac.split(':')
        if len(parts) != 6 or not all(len(p) == 2 and all(c in '0123456789abcdef' for c in p) for p in parts):
            raise InvalidInput('model.networks: %r is not a MAC address' % network['mac'])
        if int(parts[0], 16) & 1:
            raise InvalidInput('model.networks: %s is a multicast MAC address' % mac)
        network['mac'] = mac
    if not network.get('model'):
        network['model'] = 'e1000e' if family == 'other' else 'virtio'
    return network


def _resolve_hostdev(hostdev):
    hostdev = dict(hostdev)
    if hostdev['type'] == 'pci':
        if not hostdev.get('address'):
            raise InvalidInput('model.hostdevs: a pci hostdev needs address (e.g. 0000:01:00.0)')
        if hostdev.get('vendor') or hostdev.get('product'):
            raise InvalidInput('model.hostdevs: a pci hostdev is chosen by address, not vendor/product')
        hostdev['address'] = normalize_pci_address(hostdev['address'])
        return hostdev
    by_id = bool(hostdev.get('vendor') or hostdev.get('product'))
    if by_id == bool(hostdev.get('address')):
        raise InvalidInput('model.hostdevs: a usb hostdev needs either vendor and product, or address (BUS:DEVICE)')
    if by_id:
        if not (hostdev.get('vendor') and hostdev.get('product')):
            raise InvalidInput('model.hostdevs: a usb hostdev needs both vendor and product')
        hostdev['vendor'] = _usb_id(hostdev['vendor'])
        hostdev['product'] = _usb_id(hostdev['product'])
    else:
        try:
            hostdev['address'] = format_usb_address(*parse_usb_address(hostdev['address']))
        except InvalidInput as exc:
            raise InvalidInput('model.hostdevs: usb %s' % exc.msg)
    return hostdev


def _usb_id(value):
    """A USB vendor or product ID as libvirt's XML writes it (0x046d)."""
    try:
        return '0x' + normalize_id(value, 'a USB vendor or product ID')
    except InvalidInput as exc:
        raise InvalidInput('model.hostdevs: %s' % exc.msg)


def _resolve_filesystems(filesystems):
    targets = [f['target'] for f in filesystems]
    if len(set(targets)) != len(targets):
        raise InvalidInput('model.filesystems: two shares have the same target (mount tag)')
    for fs in filesystems:
        if not fs['source'].startswith('/'):
            raise InvalidInput('model.filesystems: source %r must be an absolute path' % fs['source'])
    return [dict(f) for f in filesystems]


def _resolve_memory_backing(backing, virtiofs):
    backing = dict(backing or {})
    if virtiofs:
        # virtiofsd maps guest memory: it must be shared.
        if backing.get('access') == 'private':
            raise InvalidInput('model.memory_backing.access private does not work with filesystems (virtiofs needs shared memory)')
        backing.setdefault('source', None)
        if backing['source'] is None:
            backing['source'] = 'memfd'
        backing['access'] = 'shared'
    if backing.get('hugepage_size') is not None:
        if not backing.get('hugepages'):
            raise InvalidInput('model.memory_backing.hugepage_size needs hugepages: true')
        backing['hugepage_size'] = parse_size(backing['hugepage_size'], 'KiB', 'model.memory_backing.hugepage_size')
    return backing


def _resolve_graphics(graphics):
    graphics = dict(graphics or {})
    kind = graphics.get('type') or 'spice'
    graphics['type'] = kind
    if kind == 'none':
        if graphics.get('listen') or graphics.get('gl'):
            raise InvalidInput('model.graphics: listen and gl need a graphics type (spice or vnc)')
        return graphics
    if graphics.get('gl') and kind != 'spice':
        raise InvalidInput('model.graphics.gl needs type: spice')
    if not graphics.get('listen'):
        # Nothing reachable from the network unless asked: SPICE through
        # libvirt's own channel (virt-manager, virt-viewer), VNC on loopback.
        graphics['listen'] = 'none' if kind == 'spice' else '127.0.0.1'
    if graphics['listen'] == 'none' and kind == 'vnc':
        raise InvalidInput('model.graphics: vnc needs a listen address (default 127.0.0.1)')
    return graphics
