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

from ansible_collections.phyllome.os.plugins.module_utils._common.device_ids import parse_usb_address
from ansible_collections.phyllome.os.plugins.module_utils._common.units import format_bytes, quantity_bytes
from ansible_collections.phyllome.os.plugins.module_utils._domain.devices import disk_source, hostdev_source, interface_source
from ansible_collections.phyllome.os.plugins.module_utils._domain.options import COMPARE_RULES, CompareRule
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import element_quantity, local_tag, same_number, to_string

# libvirt's element order, used to keep merged XML readable (libvirt itself
# does not care about the order of these elements).
DOMAIN_ORDER = (
    'name', 'uuid', 'genid', 'title', 'description', 'metadata', 'maxMemory', 'memory', 'currentMemory',
    'blkiotune', 'memtune', 'memoryBacking', 'vcpu', 'vcpus', 'iothreads', 'iothreadids', 'cputune',
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

# Versioned machine types libvirt stores for an alias (q35 -> pc-q35-7.2).
_MACHINE_FAMILIES = {'q35': 'pc-q35-', 'pc': 'pc-i440fx-'}


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


def _by(attribute):
    return lambda dev: (dev.get(attribute),)


def _single(_dev):
    return ('single',)


class DeviceKind:
    """How devices of one kind are told apart, and what libvirt adds inside them.

    strong: identity that is unique (a disk's target, a NIC's MAC).
    weak: identity that may repeat (a NIC's network); tried after strong.
    positional: remaining devices of the kind pair up in order.
    implicit_children: children libvirt adds to a device by itself.
    """

    def __init__(self, strong=None, weak=None, positional=False, implicit_children=(), label=None):
        self.strong = strong
        self.weak = weak
        self.positional = positional
        self.implicit_children = frozenset(('address', 'alias') + tuple(implicit_children))
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
    'disk': DeviceKind(strong=_disk_target, weak=disk_source, implicit_children=('driver', 'backingStore'),
                       label=_disk_label),
    'interface': DeviceKind(strong=_interface_mac, weak=_interface_source, positional=True,
                            implicit_children=('mac', 'target', 'model'), label=_interface_label),
    'hostdev': DeviceKind(strong=_hostdev_source, implicit_children=('driver',), label=_hostdev_label),
    'filesystem': DeviceKind(strong=_filesystem_target, weak=disk_source, implicit_children=('binary',),
                             label=lambda dev: _attr(dev, 'target', 'dir')),
    'controller': DeviceKind(strong=_controller_index, weak=_controller_model, positional=True,
                             implicit_children=('model', 'target', 'driver'),
                             label=lambda dev: '%s %s' % (dev.get('type'), dev.get('index', ''))),
    'input': DeviceKind(weak=lambda dev: (dev.get('type'), dev.get('bus')), positional=False,
                        label=lambda dev: '%s %s' % (dev.get('type'), dev.get('bus'))),
    'graphics': DeviceKind(strong=_by('type'), implicit_children=('listen', 'image', 'streaming', 'mouse'),
                           label=lambda dev: dev.get('type')),
    'video': DeviceKind(positional=True, implicit_children=('driver',)),
    'sound': DeviceKind(weak=_by('model'), positional=True, implicit_children=('audio', 'codec'),
                        label=lambda dev: dev.get('model')),
    'audio': DeviceKind(strong=_by('id'), label=lambda dev: dev.get('id')),
    'channel': DeviceKind(strong=_channel_target, implicit_children=('source',),
                          label=lambda dev: _attr(dev, 'target', 'name') or dev.get('type')),
    'console': DeviceKind(weak=_console_type, positional=True, implicit_children=('target', 'source'),
                          label=lambda dev: _attr(dev, 'target', 'type')),
    'serial': DeviceKind(strong=_char_target, positional=True, implicit_children=('target', 'source'),
                         label=lambda dev: _attr(dev, 'target', 'port')),
    'parallel': DeviceKind(strong=_char_target, positional=True, implicit_children=('target',)),
    'rng': DeviceKind(weak=_by('model'), positional=True, label=lambda dev: dev.get('model')),
    'watchdog': DeviceKind(weak=_by('model'), positional=True, label=lambda dev: dev.get('model')),
    'shmem': DeviceKind(strong=_by('name'), label=lambda dev: dev.get('name')),
    'redirdev': DeviceKind(positional=True),
    'smartcard': DeviceKind(positional=True),
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
    if tag in ('memballoon', 'video', 'audio', 'emulator'):
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


def match_devices(desired, current, strong_only=False):
    """Pair desired devices with current ones: [(desired, current or None)], [unmatched current]."""
    pairs = {}
    free = list(current)
    passes = ('strong',) if strong_only else ('strong', 'weak', 'positional')
    for name in passes:
        for dev in desired:
            if id(dev) in pairs:
                continue
            kind = device_kind(dev)
            if name == 'positional':
                if not kind.positional:
                    continue
                key_of = None
            else:
                key_of = getattr(kind, name)
                if key_of is None:
                    continue
                key = key_of(dev)
                if key is None:
                    continue
            for cand in free:
                if cand.tag != dev.tag:
                    continue
                if key_of is not None and key_of(cand) != key:
                    continue
                pairs[id(dev)] = cand
                free.remove(cand)
                break
    return [(dev, pairs.get(id(dev))) for dev in desired], free


def _child_key(elem):
    # Children named by an attribute (timers, CPU features, firmware features)
    # pair up by name; others by position among siblings of the same tag.
    return (elem.tag, elem.get('name'))


def _match_children(desired, current):
    by_key = {}
    for child in current:
        if isinstance(child.tag, str):
            by_key.setdefault(_child_key(child), []).append(child)
    pairs = []
    for child in desired:
        if not isinstance(child.tag, str):
            continue
        candidates = by_key.get(_child_key(child))
        pairs.append((child, candidates.pop(0) if candidates else None))
    left = [c for group in by_key.values() for c in group]
    left.sort(key=list(current).index)
    return pairs, left


# --- differences -----------------------------------------------------------

class Difference:
    """One difference between desired and stored XML, readable as words."""

    def __init__(self, path, change, attribute=None, before=None, after=None):
        self.path = path
        self.change = change  # 'added', 'removed' or 'changed'
        self.attribute = attribute
        self.before = before
        self.after = after

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

    def note(self, path, change, attribute=None, before=None, after=None):
        self.differences.append(Difference('/'.join(path) or 'domain', change, attribute, before, after))

    def walk_domain(self, desired, current):
        self.element(desired, current, (), rule=CompareRule(
            strict=bool(self.owned), implicit=dict((tag, True) for tag in _all_tags(current) - self.owned)))

    def element(self, desired, current, path, rule=None, device=None):
        if device is not None:
            rule = CompareRule(implicit=dict((tag, True) for tag in device.implicit_children))
        elif rule is None:
            rule = COMPARE_RULES.get('/'.join(p.split('[', 1)[0] for p in path))
        self._attributes(desired, current, path, rule)
        self._text(desired, current, path)
        if path == ('devices',):
            self._devices(desired, current, path)
        else:
            self._children(desired, current, path, rule)

    def _attributes(self, desired, current, path, rule):
        wanted, stored = _attribute_values(desired), _attribute_values(current)
        for name, value in wanted.items():
            have = stored.get(name)
            if _attr_equal(path, desired, name, value, have):
                continue
            self.note(path, 'changed', name, _plain(current, name), _plain(desired, name))
            if self.apply:
                current.set(name, desired.get(name))
                if name == 'size' and desired.get('unit'):
                    current.set('unit', desired.get('unit'))
        for name in (rule.owned_attributes if rule else ()):
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
            if want_q == have_q:
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

    def _children(self, desired, current, path, rule):
        pairs, left = _match_children(desired, current)
        for want, have in pairs:
            label = _child_label(want)
            if have is None:
                self.note(path + (label,), 'added')
                if self.apply:
                    current.append(copy.deepcopy(want))
                continue
            self.element(want, have, path + (label,))
        if rule is not None and rule.strict:
            for have in left:
                if rule.is_implicit(have, desired):
                    continue
                self.note(path + (_child_label(have),), 'removed')
                if self.apply and self.prune:
                    current.remove(have)
        if self.apply and not path:
            sort_children(current, DOMAIN_ORDER)

    def _devices(self, desired, current, path):
        wanted = [d for d in desired if isinstance(d.tag, str)]
        pairs, left = match_devices(wanted, [d for d in current if isinstance(d.tag, str)], self.strong_only)
        for want, have in pairs:
            kind = device_kind(want)
            label = _device_label(want, kind)
            if have is None:
                self.note(path + (label,), 'added')
                if self.apply:
                    current.append(copy.deepcopy(want))
                continue
            self.element(want, have, path + (label,), device=kind)
        for have in left:
            if _implicit_device(have, wanted):
                continue
            self.note(path + (_device_label(have, device_kind(have)),), 'removed')
            if self.apply and self.prune:
                current.remove(have)
        if self.apply:
            sort_children(current, DEVICE_ORDER)


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
    ordered = sorted(children, key=lambda c: rank.get(local_tag(c), len(order)))
    if ordered != children:
        for child in children:
            parent.remove(child)
        parent.extend(ordered)


def _attribute_values(elem):
    """Attributes as compared: a size with a unit becomes bytes, a quantity's unit is not compared alone."""
    values = dict(elem.attrib)
    if 'size' in values and 'unit' in values:
        size = quantity_bytes(values['size'], values.pop('unit'))
        if size is not None:
            values['size'] = str(size)
    elif element_quantity(elem) is not None:
        values.pop('unit', None)
    return values


def _plain(elem, name):
    value = elem.get(name)
    if name == 'size' and value is not None and elem.get('unit'):
        return '%s %s' % (value, elem.get('unit'))
    return value


def _attr_equal(path, elem, name, want, have):
    if have is None:
        return False
    if want == have or same_number(want, have):
        return True
    tag = local_tag(elem)
    if tag == 'mac' and name == 'address':
        return want.lower() == have.lower()
    if tag == 'type' and name == 'machine' and path[:1] == ('os',):
        return machine_matches(want, have)
    return False


def _text_equal(elem, want, have):
    if want == have:
        return True
    if local_tag(elem) == 'uuid':
        return want.lower() == have.lower()
    return same_number(want, have)


def machine_matches(wanted, stored):
    """True when libvirt's stored machine type is `wanted` or its versioned expansion."""
    if wanted == stored:
        return True
    prefix = _MACHINE_FAMILIES.get(wanted, wanted + '-')
    return stored.startswith(prefix) and stored[len(prefix):][:1].isdigit()


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
    return merged, walker.differences


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
