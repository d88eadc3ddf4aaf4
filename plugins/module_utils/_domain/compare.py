# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Semantic comparison of a desired domain XML with libvirt's stored (inactive) XML.

What the desired XML says must hold in libvirt's copy; what libvirt filled in
by itself (uuid, MAC addresses, PCI addresses, aliases, controllers it added,
the expanded machine version, default attributes) never counts as a
difference. Devices are matched by identity (a disk by its target, a NIC by
its MAC or network, a hostdev by its host address), not by position, and a
device that is no longer wanted counts.

One walker does both jobs: compare() lists the differences, merge() applies
them to a copy of libvirt's XML, so that the merged definition keeps the uuid,
MACs, device addresses, nvram path and TPM state, and compares equal to the
desired XML by construction.
"""

from __future__ import annotations

import copy
import decimal

from ansible_collections.phyllome.os.plugins.module_utils._common.device_ids import parse_usb_address
from ansible_collections.phyllome.os.plugins.module_utils._common.units import format_bytes, quantity_bytes
from ansible_collections.phyllome.os.plugins.module_utils._domain.devices import disk_source, hostdev_source, interface_source
from ansible_collections.phyllome.os.plugins.module_utils._domain.options import COMPARE_RULES, CompareRule, machine_matches
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import cpu_set, element_quantity, local_tag, same_number, to_string

# libvirt's element order, used to keep merged XML readable (libvirt itself
# does not care about the order of these elements).
DOMAIN_ORDER = (
    'name', 'uuid', 'genid', 'title', 'description', 'metadata', 'maxMemory', 'memory', 'currentMemory',
    'blkiotune', 'memtune', 'memoryBacking', 'vcpu', 'vcpus', 'iothreads', 'iothreadids', 'defaultiothread', 'cputune',
    'numatune', 'resource', 'sysinfo', 'bootloader', 'bootloader_args', 'os', 'idmap', 'features', 'cpu',
    'clock', 'on_poweroff', 'on_reboot', 'on_crash', 'on_lockfailure', 'pm', 'perf', 'devices', 'seclabel',
    'keywrap', 'launchSecurity',
)
DEVICE_ORDER = (
    'emulator', 'disk', 'controller', 'lease', 'filesystem', 'interface', 'smartcard', 'serial', 'parallel',
    'console', 'channel', 'input', 'tpm', 'graphics', 'sound', 'audio', 'video', 'hostdev', 'redirdev',
    'redirfilter', 'hub', 'watchdog', 'memballoon', 'rng', 'panic', 'shmem', 'memory', 'iommu', 'vsock',
    'crypto', 'pstore',
)


# --- device identity -------------------------------------------------------

def _attr(elem, path, name):
    found = elem.find(path)
    return None if found is None else found.get(name)


def _disk_target(dev):
    target = _attr(dev, 'target', 'dev')
    return ('target', target) if target else None


def _interface_mac(dev):
    mac = _attr(dev, 'mac', 'address')
    return ('mac', mac.lower()) if mac else None


def _interface_source(dev):
    return (dev.get('type'), interface_source(dev))


def _hostdev_source(dev):
    kind = dev.get('type')
    found = hostdev_source(dev)
    if kind == 'usb' and found['vendor'] and found['product']:
        return ('usb', int(found['vendor'], 16), int(found['product'], 16))
    if found['address'] is None:
        return None
    if kind == 'usb':
        return ('usb-address',) + parse_usb_address(found['address'])
    return (kind, found['address'])


def _filesystem_target(dev):
    target = _attr(dev, 'target', 'dir')
    return ('target', target) if target else None


def _channel_target(dev):
    target = dev.find('target')
    if target is None:
        return None
    return (target.get('type'), target.get('name'))


def _char_target(dev):
    target = dev.find('target')
    if target is None or target.get('port') is None:
        return None
    return ('port', int(target.get('port'), 0))


def _console_type(dev):
    return (_attr(dev, 'target', 'type'),)


def _controller_index(dev):
    if dev.get('index') is None:
        return None
    return (dev.get('type'), int(dev.get('index'), 0))


def _controller_model(dev):
    return (dev.get('type'), dev.get('model'))


def _controller_family(dev):
    # A USB controller may change its model in place; a PCI controller's model is what it is (a
    # pcie-root-port never becomes the SATA or USB controller, nor a pcie-to-pci-bridge).
    return _controller_model(dev) if dev.get('type') == 'pci' else (dev.get('type'),)


def _raw_protocol(current, _desired):
    # <protocol type='raw'/>: the default of a character device's TCP source.
    return current.get('type') == 'raw'


def _video_model(dev):
    # The primary video is the one that says so, else the first one.
    model = dev.find('model')
    if model is None:
        return None
    primary = model.get('primary') == 'yes'
    parent = dev.getparent()
    if model.get('primary') is None and parent is not None:
        videos = [v for v in parent if local_tag(v) == 'video']
        primary = videos[0] is dev and not any(v.find("model[@primary='yes']") is not None for v in videos)
    return (model.get('type'), primary)


def _by(attribute):
    return lambda dev: (dev.get(attribute),)


def _single(_dev):
    return ('single',)


class DeviceKind:
    """How devices of one kind are told apart, and what libvirt adds inside them.

    strong: identity that is unique (a disk's target, a NIC's MAC).
    weak: identity that may repeat (a NIC's network); tried after strong.
    positional: remaining devices of the kind pair up in order; a function instead of True
    pairs only devices for which it gives the same value.
    implicit_children: children libvirt adds to a device by itself.
    """

    def __init__(self, strong=None, weak=None, positional=False, implicit_children=(), label=None):
        self.strong = strong
        self.weak = weak
        self.positional = positional
        # {tag: True or predicate(current_child, desired_device)}
        implicit = dict((tag, True) for tag in ('address', 'alias'))
        if isinstance(implicit_children, dict):
            implicit.update(implicit_children)
        else:
            implicit.update((tag, True) for tag in implicit_children)
        self.implicit_children = implicit
        self.label = label


def _disk_label(dev):
    return _attr(dev, 'target', 'dev')


def _interface_label(dev):
    mac = _attr(dev, 'mac', 'address')
    source = _interface_source(dev)[1]
    return mac or ('%s %s' % (dev.get('type'), source) if source else dev.get('type'))


def _hostdev_label(dev):
    key = _hostdev_source(dev)
    if key is None:
        return dev.get('type')
    if key[0] == 'usb':
        return 'usb %04x:%04x' % key[1:]
    return ' '.join(str(part) for part in key)


DEVICE_KINDS = {
    'disk': DeviceKind(strong=_disk_target, weak=disk_source, label=_disk_label, implicit_children={
        'driver': True, 'backingStore': True,
        # A CD-ROM is read-only: libvirt says so with <readonly/>.
        'readonly': lambda _current, desired: desired.get('device') == 'cdrom'}),
    'interface': DeviceKind(strong=_interface_mac, weak=_interface_source, positional=True,
                            implicit_children=('mac', 'target', 'model'), label=_interface_label),
    'hostdev': DeviceKind(strong=_hostdev_source, implicit_children=('driver',), label=_hostdev_label),
    'filesystem': DeviceKind(strong=_filesystem_target, weak=disk_source, implicit_children=('binary',),
                             label=lambda dev: _attr(dev, 'target', 'dir')),
    'controller': DeviceKind(strong=_controller_index, weak=_controller_model, positional=_controller_family,
                             # <master>: a USB companion controller's link to its EHCI.
                             implicit_children=('model', 'target', 'driver', 'master'),
                             label=lambda dev: '%s %s' % (dev.get('type'), dev.get('index', dev.get('model') or ''))),
    'input': DeviceKind(weak=lambda dev: (dev.get('type'), dev.get('bus')), positional=False,
                        label=lambda dev: '%s %s' % (dev.get('type'), dev.get('bus'))),
    'graphics': DeviceKind(strong=_by('type'), implicit_children=('listen', 'image', 'streaming', 'mouse'),
                           label=lambda dev: dev.get('type')),
    # libvirt moves the primary video first: pair by model and primary flag before position.
    'video': DeviceKind(weak=_video_model, positional=True, implicit_children=('driver',),
                        label=lambda dev: _attr(dev, 'model', 'type')),
    'sound': DeviceKind(weak=_by('model'), positional=True, implicit_children=('audio', 'codec'),
                        label=lambda dev: dev.get('model')),
    'audio': DeviceKind(strong=_by('id'), label=lambda dev: dev.get('id')),
    'channel': DeviceKind(strong=_channel_target, implicit_children={'source': True, 'protocol': _raw_protocol},
                          label=lambda dev: _attr(dev, 'target', 'name') or dev.get('type')),
    # A console twin of a serial port shares its <log>.
    'console': DeviceKind(weak=_console_type, positional=True, label=lambda dev: _attr(dev, 'target', 'type'),
                          implicit_children={'target': True, 'source': True, 'log': True, 'protocol': _raw_protocol}),
    'serial': DeviceKind(strong=_char_target, positional=True, label=lambda dev: _attr(dev, 'target', 'port'),
                         implicit_children={'target': True, 'source': True, 'protocol': _raw_protocol}),
    'parallel': DeviceKind(strong=_char_target, positional=True,
                           implicit_children={'target': True, 'protocol': _raw_protocol}),
    'rng': DeviceKind(weak=_by('model'), positional=True, label=lambda dev: dev.get('model')),
    'watchdog': DeviceKind(weak=_by('model'), positional=True, label=lambda dev: dev.get('model')),
    # The default size (4 MiB) and, for a doorbell, msi.
    'shmem': DeviceKind(strong=_by('name'), implicit_children=('model', 'size', 'msi'), label=lambda dev: dev.get('name')),
    # A D-Bus redirdev gets its channel name.
    'redirdev': DeviceKind(positional=True, implicit_children={
        'protocol': _raw_protocol, 'source': lambda _current, desired: desired.find('source') is None}),
    'smartcard': DeviceKind(positional=True, implicit_children={'protocol': _raw_protocol}),
    'memory': DeviceKind(positional=True),
    'emulator': DeviceKind(strong=_single),
    'tpm': DeviceKind(strong=_single, label=lambda dev: dev.get('model')),
    'memballoon': DeviceKind(strong=_single, label=lambda dev: dev.get('model')),
    'iommu': DeviceKind(strong=_single, label=lambda dev: dev.get('model')),
    'vsock': DeviceKind(strong=_single),
    'panic': DeviceKind(weak=_by('model'), positional=True),
}
_GENERIC_KIND = DeviceKind(positional=True)


def device_kind(dev):
    return DEVICE_KINDS.get(local_tag(dev), _GENERIC_KIND)


def _has(devices, tag, predicate=None):
    return any(local_tag(d) == tag and (predicate is None or predicate(d)) for d in devices)


def _implicit_device(dev, desired_devices):
    """True for a device libvirt adds by itself, when the desired XML did not ask for it."""
    tag = local_tag(dev)
    if tag == 'controller':
        # Controllers follow from the other devices (PCIe root ports, USB, SATA, virtio-serial).
        return True
    if tag == 'input':
        return dev.get('bus') == 'ps2'
    # libvirt adds these when the XML has none (a USB hub where USB
    # addresses need one, such as port 1.1).
    if tag in ('memballoon', 'video', 'audio', 'emulator', 'hub'):
        return not _has(desired_devices, tag)
    if tag == 'watchdog':
        return dev.get('model') == 'itco' and not _has(desired_devices, 'watchdog')
    if tag == 'console':
        # A <serial> gets a console twin on the serial port.
        return _attr(dev, 'target', 'type') == 'serial' and _has(desired_devices, 'serial')
    if tag == 'serial':
        # A console on the serial port gets a <serial> twin.
        return _has(desired_devices, 'console', lambda c: _attr(c, 'target', 'type') in (None, 'serial'))
    return False


# Defaults of the address attributes libvirt fills in, per address type.
_ADDRESS_DEFAULTS = {
    'pci': ('domain', 'bus', 'slot', 'function'),
    'drive': ('controller', 'bus', 'target', 'unit'),
}


def _address_key(dev):
    """A device's own address (PCI slot, drive unit, ...) as written, in a form both sides share; None without one."""
    address = dev.find('address')
    if address is None or not address.get('type'):
        return None
    kind = address.get('type')
    names = _ADDRESS_DEFAULTS.get(kind)
    if names is None:
        names = sorted(name for name in address.attrib if name != 'type')
    values = []
    for name in names:
        value = address.get(name, '0' if kind in _ADDRESS_DEFAULTS else None)
        values.append(_as_number(value))
    return (kind,) + tuple(values)


def _as_number(value):
    if value is None:
        return None
    try:
        return int(value, 0) if value.lower().startswith('0x') else int(value, 10)
    except ValueError:
        return value


def _user_alias(dev):
    """A user alias (ua-...) names a device for good; libvirt's own aliases are not in the inactive XML."""
    name = _attr(dev, 'alias', 'name')
    return ('alias', name) if name and name.startswith('ua-') else None


def _pair_cost(desired, candidate):
    walker = _Walker()
    walker.element(desired, copy.deepcopy(candidate), (), device=device_kind(desired))
    return len(walker.differences)


def match_devices(desired, current, strong_only=False):
    """Pair desired devices with current ones: [(desired, current or None)], [unmatched current].

    Identities are tried from the strongest: a user alias, the device's own
    address when the desired XML gives one, the kind's unique identity (a
    disk's target, a NIC's MAC, a hostdev's source), then a weak one (a NIC's
    network), then position. Where several current devices share the
    identity (USB companion controllers share an index), the one that
    already matches best wins.
    """
    pairs = {}
    free = list(current)
    passes = ('alias', 'address', 'strong') if strong_only else ('alias', 'address', 'strong', 'weak', 'positional')
    for name in passes:
        for dev in desired:
            if id(dev) in pairs:
                continue
            kind = device_kind(dev)
            if name == 'positional':
                if not kind.positional:
                    continue
                key_of = None if kind.positional is True else kind.positional
                key = None if key_of is None else key_of(dev)
            else:
                key_of = {'alias': _user_alias, 'address': _address_key}.get(name) or getattr(kind, name)
                if key_of is None:
                    continue
                key = key_of(dev)
                if key is None:
                    continue
            found = [cand for cand in free if cand.tag == dev.tag and (key_of is None or key_of(cand) == key)]
            if not found:
                continue
            best = found[0]
            if len(found) > 1 and key_of is not None:
                best = min(found, key=lambda cand: _pair_cost(dev, cand))
            pairs[id(dev)] = best
            free.remove(best)
    return [(dev, pairs.get(id(dev))) for dev in desired], free


# Attributes that name one child among siblings of the same tag.
_CHILD_KEYS = ('name', 'id', 'vcpu', 'iothread', 'cellid')
_NAMED_SETS = frozenset(('timer', 'feature'))


def _child_key(elem):
    # Children named by an attribute (timers, CPU and firmware features, NUMA
    # cells and their distances, vCPU pins) pair up by it; others by position
    # among siblings of the same tag.
    for name in _CHILD_KEYS:
        if elem.get(name) is not None:
            return (elem.tag, name, elem.get(name))
    return (elem.tag, None, None)


def _match_children(desired, current):
    desired = [c for c in desired if isinstance(c.tag, str)]
    current = [c for c in current if isinstance(c.tag, str)]
    free = list(current)
    found = {}
    # A child that is alone of its tag on both sides pairs whatever its key
    # (a disk's <driver>, a network disk's <source name=...>); not so the
    # members of a named set (timers, features).
    for child in desired:
        if child.tag in _NAMED_SETS:
            continue
        same = [c for c in current if c.tag == child.tag]
        if len(same) == 1 and sum(1 for c in desired if c.tag == child.tag) == 1:
            found[id(child)] = same[0]
            free.remove(same[0])
    for child in desired:
        if id(child) in found:
            continue
        key = _child_key(child)
        for cand in free:
            if _child_key(cand) == key:
                found[id(child)] = cand
                free.remove(cand)
                break
    # A child without a key pairs with the next one of its tag (libvirt
    # gave it a name or id: a disk <driver> gets name='qemu').
    for child in desired:
        if id(child) in found or _child_key(child)[1] is not None:
            continue
        for cand in free:
            if cand.tag == child.tag:
                found[id(child)] = cand
                free.remove(cand)
                break
    return [(child, found.get(id(child))) for child in desired], free


# --- differences -----------------------------------------------------------

class Difference:
    """One difference between desired and stored XML, readable as words."""

    def __init__(self, path, change, attribute=None, before=None, after=None, parts=(), device=None):
        self.path = path
        self.change = change  # 'added', 'removed' or 'changed'
        self.attribute = attribute
        self.before = before
        self.after = after
        # The path as a tuple of labels ('devices', 'disk[vdb]', 'source'); () for the domain itself.
        self.parts = tuple(parts)
        # For a difference in a device: (desired device or None, stored device or None); after
        # merge(), the stored side is the merged device (an added one: the copy merge appended).
        self.device = device

    def __str__(self):
        if self.change in ('added', 'removed'):
            if self.attribute:
                return '%s: %s %s' % (self.path, self.attribute, self.change)
            return '%s %s' % (self.path, self.change)
        if self.attribute:
            return '%s: %s changed from %s to %s' % (
                self.path, self.attribute, _show(self.before, True), _show(self.after, True))
        return '%s changed from %s to %s' % (self.path, _show(self.before), _show(self.after))

    def __repr__(self):
        return 'Difference(%r)' % str(self)


def _show(value, quote=False):
    if value is None:
        return 'unset'
    return "'%s'" % value if quote else str(value)


# --- the walker ------------------------------------------------------------

class _Walker:
    """Walks desired and current XML together; records differences, optionally applies them.

    apply: change `current` in place to satisfy `desired`.
    prune: remove what is no longer wanted (strict containers, unwanted
    devices); off when layering extra XML onto a model.
    owned: top-level tags the desired XML is authoritative for (model mode).
    strong_only: pair devices only by unique identity (extra XML fragments add
    devices unless they name an existing one).
    """

    def __init__(self, apply=False, prune=True, owned=frozenset(), strong_only=False):
        self.apply = apply
        self.prune = prune
        self.owned = owned
        self.strong_only = strong_only
        self.differences = []
        self.root = None
        self.device = None  # (desired, current) of the device being walked

    def note(self, path, change, attribute=None, before=None, after=None, device=None):
        self.differences.append(Difference('/'.join(path) or 'domain', change, attribute, before, after,
                                           parts=path, device=device or self.device))

    def walk_domain(self, desired, current):
        self.root = current
        self.element(desired, current, (), rule=CompareRule(
            strict=bool(self.owned), implicit=dict((tag, True) for tag in _all_tags(current) - self.owned)))

    def element(self, desired, current, path, rule=None, device=None):
        if device is not None:
            rule = CompareRule(implicit=device.implicit_children)
        elif rule is None:
            rule = COMPARE_RULES.get('/'.join(p.split('[', 1)[0] for p in path))
        self._attributes(desired, current, path, rule)
        self._text(desired, current, path)
        if path == ('devices',):
            self._devices(desired, current, path)
        else:
            self._children(desired, current, path, rule)

    def _attributes(self, desired, current, path, rule):
        if _plain_path(path) == 'seclabel' and desired.get('model') is None and current.get('model') == 'none':
            # A seclabel for the host's default security driver, on a host without one.
            return
        wanted, stored = _attribute_values(desired), _attribute_values(current)
        for name, value in wanted.items():
            have = stored.get(name)
            if _attr_equal(path, desired, name, value, have):
                continue
            if have is None and _not_stored_attribute(path, desired, name):
                continue
            if _runtime_value(path, desired, name) or _rewritten_value(path, desired, name) \
                    or self._derived_attribute(path, desired, name, have):
                continue
            self.note(path, 'changed', name, _plain(current, name), _plain(desired, name))
            if self.apply:
                current.set(name, desired.get(name))
                if name in ('size', 'memory') and desired.get('unit'):
                    current.set('unit', desired.get('unit'))
        for name in (rule.owned_attributes if rule else ()):
            if path == ('os',) and name == 'firmware' and desired.find('loader') is not None:
                continue  # newer libvirt names the firmware of a loader given by path
            if name not in desired.attrib and name in current.attrib:
                self.note(path, 'changed', name, current.get(name), None)
                if self.apply and self.prune:
                    del current.attrib[name]

    def _text(self, desired, current, path):
        text = (desired.text or '').strip()
        if not text or len(desired):
            return
        have = (current.text or '').strip()
        want_q, have_q = element_quantity(desired), element_quantity(current)
        if want_q is not None:
            if want_q == have_q or self._memory_derived(path, want_q, have_q):
                return
            before = format_bytes(have_q) if have_q is not None else (have or None)
            self.note(path, 'changed', None, before, format_bytes(want_q))
            if self.apply:
                current.text = desired.text
                if desired.get('unit'):
                    current.set('unit', desired.get('unit'))
                elif current.get('unit'):
                    del current.attrib['unit']
            return
        if _text_equal(desired, text, have):
            return
        self.note(path, 'changed', None, have or None, text)
        if self.apply:
            current.text = desired.text

    def _derived_attribute(self, path, desired, name, have):
        """True when libvirt derived the stored value from the rest of the definition."""
        plain = _plain_path(path)
        if plain == 'vcpu' and name == 'placement' and have == 'auto' and desired.get('cpuset') is None:
            # vCPUs follow numad's memory placement.
            return self.root.find("numatune/memory[@placement='auto']") is not None
        if plain == 'cpu/numa/cell' and name == 'cpus' and have is not None and desired.getparent() is not None:
            # vCPUs that no cell names go to the first cell.
            vcpu = self.root.find('vcpu')
            if vcpu is None or not (vcpu.text or '').strip().isdigit():
                return False
            named = set()
            for cell in desired.getparent().findall('cell'):
                named |= cpu_set(cell.get('cpus')) or set()
            spare = set(range(int(vcpu.text))) - named
            first = desired.getparent().find('cell') is desired
            return first and bool(spare) and cpu_set(have) == (cpu_set(desired.get('cpus')) or set()) | spare
        return False

    def _memory_derived(self, path, want, have):
        """True when libvirt computed the stored size itself: with NUMA cells or
        memory devices, <memory> is their sum, and <currentMemory> at most that."""
        if path not in (('memory',), ('currentMemory',)) or self.root is None:
            return False
        if self.root.find('cpu/numa/cell') is None and self.root.find('devices/memory') is None:
            return False
        if path == ('memory',):
            return True
        memory = self.root.find('memory')
        return have is not None and want > have and memory is not None and element_quantity(memory) == have

    def _children(self, desired, current, path, rule):
        pairs, left = _match_children(desired, current)
        if path == ('cputune',):
            handled = self._schedulers(desired, current, path)
            pairs = [(want, have) for want, have in pairs if want.tag not in handled]
            left = [have for have in left if have.tag not in handled]
        for want, have in pairs:
            label = _child_label(want)
            if have is None and _not_stored_child(path, want, desired):
                continue
            if have is None:
                self.note(path + (label,), 'added')
                if self.apply:
                    current.append(copy.deepcopy(want))
                continue
            self.element(want, have, path + (label,))
        if rule is not None and rule.strict:
            for have in left:
                if rule.is_implicit(have, desired) or _libvirt_added_child(path, have, desired):
                    continue
                self.note(path + (_child_label(have),), 'removed')
                if self.apply and self.prune:
                    current.remove(have)
        if self.apply and not path:
            sort_children(current, DOMAIN_ORDER)

    def _schedulers(self, desired, current, path):
        """vCPU and I/O thread schedulers, compared per vCPU and per thread
        (libvirt stores '0-1' as two elements, 0 and 1). Returns the tags handled."""
        handled = set()
        for tag, attribute in _SCHEDULER_SETS:
            wanted = [c for c in desired if c.tag == tag]
            if not wanted:
                continue
            handled.add(tag)
            stored = [c for c in current if c.tag == tag]
            if _per_member(wanted, attribute) == _per_member(stored, attribute):
                continue
            self.note(path + (tag,), 'changed', attribute, ' '.join(c.get(attribute, '') for c in stored) or None,
                      ' '.join(c.get(attribute, '') for c in wanted))
            if self.apply:
                anchor = stored[0].getprevious() if stored else None
                for child in stored:
                    current.remove(child)
                for child in reversed(wanted):
                    if anchor is not None:
                        anchor.addnext(copy.deepcopy(child))
                    else:
                        current.append(copy.deepcopy(child))
        return handled

    def _devices(self, desired, current, path):
        wanted = [d for d in desired if isinstance(d.tag, str)]
        pairs, left = match_devices(wanted, [d for d in current if isinstance(d.tag, str)], self.strong_only)
        for want, have in pairs:
            kind = device_kind(want)
            label = _device_label(want, kind)
            if have is None:
                added = copy.deepcopy(want)
                self.note(path + (label,), 'added', device=(want, added))
                if self.apply:
                    current.append(added)
                continue
            self.device = (want, have)
            try:
                self.element(want, have, path + (label,), device=kind)
            finally:
                self.device = None
        for have in left:
            if _implicit_device(have, wanted):
                continue
            self.note(path + (_device_label(have, device_kind(have)),), 'removed', device=(None, have))
            if self.apply and self.prune:
                current.remove(have)
        if self.apply:
            sort_children(current, DEVICE_ORDER)


# --- what libvirt does by itself ------------------------------------------
# The QEMU driver fills in, normalises and drops parts of a definition. What
# follows is what it does, with the path (device labels left out) where it
# does it; the comparison leaves these alone, so that a second run of a
# definition libvirt accepted reports no change.

def _plain_path(path):
    return '/'.join(part.split('[', 1)[0] for part in path)


def _cpu_model_filled_in(_current, desired):
    # Without a model, libvirt stores its default one (mode custom, qemu64).
    return desired.find('model') is None


# {container path: {child tag: True or predicate(current_child, desired_container)}}:
# children libvirt adds to a container whose other children are compared strictly.
def _smm_for_secure_boot(_current, desired_features):
    # Secure Boot firmware needs SMM: firmware auto-selection switches it on.
    domain = desired_features.getparent()
    if domain is None or domain.find('os') is None:
        return False
    os_elem = domain.find('os')
    return (os_elem.get('firmware') == 'efi' and os_elem.find("firmware/feature[@name='secure-boot'][@enabled='no']") is None) \
        or os_elem.find("loader[@secure='yes']") is not None


LIBVIRT_ADDED_CHILDREN = {
    'cpu': {'model': _cpu_model_filled_in},
    'features': {'smm': _smm_for_secure_boot},
    # Firmware auto-selection lists the features of the firmware it chose
    # (secure-boot beside the asked enrolled-keys).
    'os/firmware': {'feature': True},
}


def _libvirt_added_child(path, current_child, desired_container):
    predicate = LIBVIRT_ADDED_CHILDREN.get(_plain_path(path), {}).get(local_tag(current_child))
    if predicate is None:
        return False
    return predicate is True or bool(predicate(current_child, desired_container))


# {path: attributes}: runtime-only values libvirt leaves out of the inactive
# definition (a running domain's id, a block job's chain indexes, the port
# of a network connection, a channel's connection state).
NOT_STORED_ATTRIBUTES = {
    '': ('id',),
    'devices/interface/source': ('portid',),
    'devices/channel/target': ('state',),
}


# {path: {attribute: value}}: values libvirt takes as its default and then
# leaves out.
DEFAULT_ATTRIBUTES = {
    'devices/graphics': {'autoport': 'no'},
    'devices/video/model': {'primary': 'no'},
    'devices/disk/target': {'tray': 'closed'},
    'devices/redirfilter/usbdev': {'class': '-1', 'vendor': '-1', 'product': '-1', 'version': '-1'},
}


def _not_stored_attribute(path, elem, name):
    plain = _plain_path(path)
    if name in NOT_STORED_ATTRIBUTES.get(plain, ()):
        return True
    if DEFAULT_ATTRIBUTES.get(plain, {}).get(name) == elem.get(name):
        return True
    if plain == 'vcpu' and name == 'current' and same_number(elem.get(name), (elem.text or '').strip()):
        return True  # every vCPU online: libvirt leaves current out
    if plain == 'os/bootmenu' and name == 'timeout' and elem.get('enable') == 'no':
        return True  # no menu, no timeout
    if plain == 'numatune/memory' and name == 'nodeset' and elem.get('placement') == 'auto':
        return True  # numad chooses the nodes
    if plain == 'devices/disk' and name == 'snapshot' and elem.get('snapshot') == 'no' \
            and (elem.get('device') == 'cdrom' or elem.find('readonly') is not None):
        return True  # a read-only disk is never snapshotted
    # <source index=...> and <backingStore index=...> number a disk's chain at run time.
    return name == 'index' and plain.startswith('devices/disk/') and local_tag(elem) in ('source', 'backingStore')


def _rewritten_value(path, elem, name):
    plain = _plain_path(path)
    if plain == 'devices/console/target' and name == 'port' and elem.get('type') == 'virtio':
        return True  # libvirt numbers virtio consoles by their place after the serial one
    if plain == 'devices/controller' and name == 'model' and elem.get('model') == 'auto':
        return True  # libvirt resolves model='auto' to the model it picks
    # An empty CD-ROM or floppy drive is stored as type file, whatever the type asked.
    return (plain == 'devices/disk' and name == 'type' and elem.get('device') in ('cdrom', 'floppy')
            and disk_source(elem) is None)


def _runtime_value(path, elem, name):
    # With autoport, the port is picked at start (the inactive XML says -1).
    return _plain_path(path) == 'devices/graphics' and name in ('port', 'tlsPort') and elem.get('autoport') == 'yes'


# memtune's "unlimited" (VIR_DOMAIN_MEMORY_PARAM_UNLIMITED KiB): libvirt leaves it out.
_UNLIMITED = 9007199254740991 * 1024


def _generated_channel_path(child, desired_channel):
    # libvirt's own socket of a virtio channel, .../domain-<id>-<name>/<target
    # name>, is generated again at every start and left out of the definition.
    path = child.get('path') or ''
    parts = path.rsplit('/', 2)
    target = desired_channel.find('target')
    return (len(parts) == 3 and parts[1].startswith('domain-') and target is not None
            and parts[2] == target.get('name'))


def _not_stored_child(path, child, desired_container):
    """True for a desired child that libvirt does not keep in the inactive definition."""
    plain, tag = _plain_path(path), local_tag(child)
    if plain == 'devices/disk' and tag == 'mirror':
        return True  # a block job in progress
    if plain == 'seclabel' and tag == 'imagelabel':
        return True  # the label of a running domain's images
    if tag == 'seclabel' and plain.startswith('devices/') and child.get('labelskip') == 'yes' \
            and not len(child) and child.get('relabel') is None:
        return True  # set at run time
    if plain == 'devices/channel' and tag == 'source' and (
            not child.get('path') or _generated_channel_path(child, desired_container)):
        return True  # a socket path libvirt generates at start
    if plain == 'memtune' and (element_quantity(child) or 0) >= _UNLIMITED:
        return True
    if tag == 'memtune' and len(child) and all((element_quantity(c) or 0) >= _UNLIMITED for c in child):
        return True
    if plain == 'metadata' and (_namespace(child) is None or any(
            _namespace(earlier) == _namespace(child) for earlier in child.itersiblings(preceding=True))):
        return True  # libvirt keeps the first element of each namespace, and none without one
    if tag == 'coalesce' and all(frames.get('max') in (None, '0') for frames in child.iter('frames')):
        return True  # no coalescing is the default
    if plain.startswith('devices/') and tag == 'protocol' and child.get('type') == 'raw':
        return True  # the default protocol of a character device
    if plain == 'cpu' and tag == 'model' and not (child.text or '').strip() \
            and desired_container.get('mode') in ('host-model', 'host-passthrough', 'maximum'):
        return True  # <model fallback=.../> means nothing without a named model
    return False


def _namespace(elem):
    return elem.tag[1:].split('}', 1)[0] if isinstance(elem.tag, str) and elem.tag.startswith('{') else None


def _all_tags(elem):
    return set(child.tag for child in elem if isinstance(child.tag, str))


def _child_label(elem):
    tag = local_tag(elem)
    if elem.get('name'):
        return '%s[%s]' % (tag, elem.get('name'))
    return tag


def _device_label(dev, kind):
    tag = local_tag(dev)
    label = kind.label(dev) if kind.label else None
    return '%s[%s]' % (tag, label) if label else tag


def sort_children(parent, order):
    rank = dict((tag, index) for index, tag in enumerate(order))
    children = list(parent)
    # A tag not in `order` stays right after the child it follows.
    keys, last = [], -1
    for child in children:
        last = rank.get(local_tag(child), last)
        keys.append(last)
    position = dict((id(child), key) for child, key in zip(children, keys))
    ordered = sorted(children, key=lambda c: position[id(c)])
    if ordered != children:
        for child in children:
            parent.remove(child)
        parent.extend(ordered)


def _attribute_values(elem):
    """Attributes as compared: a size with a unit becomes bytes, a quantity's unit is not compared alone."""
    values = dict(elem.attrib)
    # <page size=.. unit=..>, a NUMA <cell memory=.. unit=..>: the size in bytes.
    # KiB without a unit.
    quantity = 'size' if 'size' in values else 'memory' if 'memory' in values else None
    if quantity and ('unit' in values or local_tag(elem) in ('cell', 'page')):
        size = quantity_bytes(values[quantity], values.pop('unit', None))
        if size is not None:
            values[quantity] = str(size)
    elif element_quantity(elem) is not None:
        values.pop('unit', None)
    return values


def _plain(elem, name):
    value = elem.get(name)
    if name in ('size', 'memory') and value is not None and elem.get('unit'):
        return '%s %s' % (value, elem.get('unit'))
    return value


def _attr_equal(path, elem, name, want, have):
    if have is None:
        return False
    if want == have or same_number(want, have):
        return True
    tag = local_tag(elem)
    if name in _SET_ATTRIBUTES and cpu_set(want) is not None:
        return cpu_set(want) == cpu_set(have)  # '1-2,5,7' is '1-2,5-7,^6'
    if tag == 'model' and name == 'type':
        return want.lower() == have.lower()
    if tag == 'usbdev' and name == 'version':
        return _decimal(want) is not None and _decimal(want) == _decimal(have)  # 9.4 is 9.40
    if tag == 'mac' and name == 'address':
        return want.lower() == have.lower()
    if tag == 'source' and name == 'name' and elem.get('protocol') == 'iscsi' and '/' not in want:
        return want + '/0' == have  # LUN 0 unless given
    if tag == 'type' and name == 'machine' and path[:1] == ('os',):
        return machine_matches(want, have)
    return False


def _text_equal(elem, want, have):
    if want == have:
        return True
    if local_tag(elem) == 'uuid':
        return want.lower() == have.lower()
    return same_number(want, have)


def _decimal(value):
    try:
        return decimal.Decimal(value)
    except (decimal.InvalidOperation, ValueError):
        return None


# cputune's schedulers: (tag, the attribute with the set of vCPUs or threads).
_SCHEDULER_SETS = (('vcpusched', 'vcpus'), ('iothreadsched', 'iothreads'))


def _per_member(elements, attribute):
    """{vCPU or thread: its other attributes} of scheduler elements."""
    result = {}
    for elem in elements:
        rest = tuple(sorted((k, v) for k, v in elem.attrib.items() if k != attribute))
        for member in cpu_set(elem.get(attribute)) or ():
            result[member] = rest
    return result


# Attributes that hold a CPU, node, vCPU or I/O thread set.
_SET_ATTRIBUTES = frozenset(('cpuset', 'nodeset', 'cpus', 'vcpus', 'iothreads'))


# --- public API ------------------------------------------------------------

def compare(desired, current, owned=frozenset()):
    """Differences between desired and libvirt's inactive XML, as a list of Difference.

    owned: top-level tags the desired XML is authoritative for (MODEL_OWNED_TAGS
    for a model; empty for user XML, where a section left out is not managed).
    """
    walker = _Walker(owned=owned)
    walker.walk_domain(desired, current)
    return walker.differences


def merge(desired, current, owned=frozenset()):
    """A copy of `current` changed to satisfy `desired`; keeps what libvirt filled in.

    Returns (merged element, differences).
    """
    merged = copy.deepcopy(current)
    walker = _Walker(apply=True, owned=owned)
    walker.walk_domain(desired, merged)
    _drop_conflicting_boot(desired, merged)
    return merged, walker.differences


def _drop_conflicting_boot(desired, merged):
    # libvirt adds <os><boot dev='hd'/> to a domain without per-device boot
    # order, and refuses the two together: a merge that brings a device with
    # <boot order=...> back drops the one libvirt added.
    if desired.find('os/boot') is not None or merged.find('devices/*/boot') is None:
        return
    for boot in merged.findall('os/boot'):
        boot.getparent().remove(boot)


def overlay(fragment, base):
    """Layer a partial domain XML onto `base` in place (extra_xml onto a model).

    Adds and changes, never removes; a device in the fragment changes a device
    of `base` only when it names the same one (a disk's target, a NIC's MAC).
    """
    walker = _Walker(apply=True, prune=False, strong_only=True)
    walker.walk_domain(fragment, base)
    return base


def unified_xml(elem):
    """Text of a domain XML for diffs and results, with graphics passwords masked."""
    if elem is None:
        return ''
    masked = copy.deepcopy(elem)
    for node in masked.iter():
        if isinstance(node.tag, str) and node.get('passwd') is not None:
            node.set('passwd', '********')
    return to_string(masked)
