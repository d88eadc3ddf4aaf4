# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which differences a running domain can take at once, and how (see docs/decisions/live-changes.md).

classify() takes the differences of compare.merge() (desired vs stored
definition) and says, for each, its class:

- `live`: libvirt can apply it to the running guest and to the definition
  in one call (memory within <memory>, vCPUs within <vcpu>, attaching and
  detaching disks, NICs and hostdevs, a CD/DVD or floppy medium, a NIC's
  link state and bandwidth); the Change carries the LiveOp that does it;
- `next_boot`: it goes into the definition and the guest sees it at its
  next boot (everything else).

Nothing needs a new domain: libvirt redefines any part of a definition in
place, and the one part it cannot change, the uuid, is refused before
(manager._check_identity), so there is no third class.

pending() compares a running domain's stored definition with its live one,
with the same comparison, to say what waits for the next boot.
Plain data in, plain data out: no libvirt here.
"""

from __future__ import annotations

from ansible_collections.phyllome.os.plugins.module_utils._domain.compare import compare, match_devices
from ansible_collections.phyllome.os.plugins.module_utils._domain.secrets import describe
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import element_quantity, local_tag, to_string

LIVE, NEXT_BOOT = 'live', 'next_boot'

# What became of a change (Change.done).
APPLIED = 'applied'        # running guest and definition
DEFINED = 'defined'        # in the definition only: the guest sees it at its next boot (or start)
WAITING = 'waiting'        # asked of the guest, which has not released the device yet
NOT_DONE = 'not_done'      # until the manager decides (never in a result)

# Devices libvirt's QEMU driver attaches and detaches on a running guest.
HOTPLUG_DEVICES = ('disk', 'interface', 'hostdev')
# Children of a device that virDomainUpdateDeviceFlags changes on a running guest.
UPDATABLE = {
    'disk': ('source',),               # a CD/DVD or floppy medium (only those)
    'interface': ('link', 'bandwidth'),
}
_MEDIA_DEVICES = ('cdrom', 'floppy')


class LiveOp:
    """One libvirt call on a running domain: kind memory (KiB), vcpus (count), attach, detach, update (XML)."""

    def __init__(self, kind, value, what):
        self.kind = kind
        self.value = value
        self.what = what      # 'disk vdb', 'memory', ...
        self.device = None    # the device element (attach, detach, update)

    def describe(self, domain):
        if self.kind == 'memory':
            return 'set the memory of running domain %s to %d MiB (live and in its definition)' % (
                domain, self.value // 1024)
        if self.kind == 'vcpus':
            return 'set the vCPUs of running domain %s to %d (live and in its definition)' % (domain, self.value)
        verb = {'attach': 'attach', 'detach': 'detach', 'update': 'update'}[self.kind]
        joint = {'attach': 'to', 'detach': 'from', 'update': 'of'}[self.kind]
        return '%s %s %s running domain %s (live and in its definition)' % (verb, self.what, joint, domain)

    def __repr__(self):
        return 'LiveOp(%s %s)' % (self.kind, self.what)


class Change:
    """One difference with its class and, once acted on, what became of it."""

    def __init__(self, difference, cls, op=None, reason=None):
        self.difference = difference
        self.cls = cls
        self.op = op          # shared by the differences of one device update
        self.reason = reason  # why it is not live (when the classifier knows)
        self.done = NOT_DONE

    def as_dict(self):
        return {'change': describe(self.difference), 'path': self.difference.path, 'class': self.cls,
                'done': self.done, 'reason': self.reason}

    def __repr__(self):
        return 'Change(%s, %s, %s)' % (self.difference, self.cls, self.done)


def classify(differences, desired, current):
    """[Change] for compare.merge()'s differences between `desired` and the stored definition `current`.

    `current` is the stored definition before the merge (its <memory>,
    <vcpu> and balloon say what a running guest can take).
    """
    changes = []
    by_device = {}
    for difference in differences:
        plugged = len(difference.parts) == 2 and difference.change in ('added', 'removed')
        if difference.device is not None and not plugged:
            # Inside a device both sides have: one update per device, if every difference allows it.
            by_device.setdefault(id(difference.device[1]), []).append(difference)
            continue
        changes.append(_classify_one(difference, differences, desired, current))
    for group in by_device.values():
        changes.extend(_classify_update(group))
    order = dict((id(d), i) for i, d in enumerate(differences))
    return sorted(changes, key=lambda c: order[id(c.difference)])


def _classify_one(difference, differences, desired, current):
    parts = difference.parts
    top = parts[0].split('[', 1)[0] if parts else ''
    if top == 'currentMemory' and difference.change == 'changed' and len(parts) == 1:
        return _classify_memory(difference, differences, desired, current)
    if top == 'vcpu' and len(parts) == 1:
        return _classify_vcpus(difference, differences, desired)
    if difference.device is not None and len(parts) == 2:
        return _classify_plug(difference)
    return Change(difference, NEXT_BOOT)


def _classify_memory(difference, differences, desired, current):
    if any(d.parts == ('memory',) for d in differences):
        return Change(difference, NEXT_BOOT, reason='<memory> (the most the guest can have) changes too')
    if current.find('devices/memballoon') is None or current.find('devices/memballoon').get('model') == 'none':
        return Change(difference, NEXT_BOOT, reason='the domain has no memory balloon device')
    if current.find('cpu/numa/cell') is not None or current.find('devices/memory') is not None:
        return Change(difference, NEXT_BOOT, reason='the memory of NUMA cells and memory devices')
    wanted = element_quantity(desired.find('currentMemory'))
    most = element_quantity(current.find('memory'))
    if wanted is None or most is None or wanted > most:
        return Change(difference, NEXT_BOOT, reason='more than <memory> (the most the guest can have)')
    return Change(difference, LIVE, LiveOp('memory', wanted // 1024, 'memory'))


def _classify_vcpus(difference, differences, desired):
    vcpu_changes = [d for d in differences if d.parts == ('vcpu',)]
    if any(d.attribute != 'current' for d in vcpu_changes):
        return Change(difference, NEXT_BOOT, reason='the number of possible vCPUs (<vcpu>) changes')
    vcpu = desired.find('vcpu')
    count = vcpu.get('current') or vcpu.text
    return Change(difference, LIVE, LiveOp('vcpus', int(count.strip()), 'vcpus'))


def _classify_plug(difference):
    want, have = difference.device
    dev = want if difference.change == 'added' else have
    tag = local_tag(dev)
    if tag not in HOTPLUG_DEVICES:
        return Change(difference, NEXT_BOOT, reason='libvirt does not plug a %s into a running guest' % tag)
    what = difference.parts[-1].replace('[', ' ').rstrip(']')
    op = LiveOp('attach' if difference.change == 'added' else 'detach', None, what)
    op.device = have
    return Change(difference, LIVE, op)


def _classify_update(group):
    _want, have = group[0].device
    tag = local_tag(have)
    allowed = UPDATABLE.get(tag, ())
    if tag == 'disk' and have.get('device') not in _MEDIA_DEVICES:
        allowed = ()
    inside = [d.parts[2].split('[', 1)[0] for d in group if len(d.parts) > 2]
    # A medium change may switch the disk's type (file, block) too; nothing else of the device itself.
    device_attrs = [d.attribute for d in group if len(d.parts) == 2]
    live = bool(allowed) and all(part in allowed for part in inside) and \
        all(attr == 'type' and tag == 'disk' for attr in device_attrs)
    if not live:
        return [Change(d, NEXT_BOOT) for d in group]
    op = LiveOp('update', None, group[0].parts[1].replace('[', ' ').rstrip(']'))
    op.device = have
    return [Change(d, LIVE, op) for d in group]


def live_ops(changes):
    """The LiveOps of `changes`, each once, in the order they run: detach, attach, update, memory, vcpus."""
    seen, ops = set(), []
    for change in changes:
        if change.cls == LIVE and change.op is not None and id(change.op) not in seen:
            seen.add(id(change.op))
            ops.append(change.op)
    rank = {'detach': 0, 'attach': 1, 'update': 2, 'memory': 3, 'vcpus': 4}
    return sorted(ops, key=lambda op: rank[op.kind])


def device_xml(op):
    return to_string(op.device)


def device_present(device, domain):
    """Whether `domain` (a live definition) still has `device` (matched by its identity, as compare does)."""
    devices = domain.find('devices')
    if devices is None:
        return False
    pairs, _left = match_devices([device], list(devices), strong_only=True)
    return pairs[0][1] is not None


# --- what waits for the next boot ---------------------------------------------

# Parts of a stored definition that a running guest never sees: the balloon's current size (the guest's driver
# reaches the target in its own time), and what libvirt keeps for its users (metadata, such as this collection's
# record, which a define of a running domain writes into the stored definition only; title, description).
_NOT_PENDING = ('currentMemory', 'metadata', 'title', 'description')


def pending(stored, live):
    """What of the stored definition a running domain does not run yet: [{'change', 'path'}].

    The same comparison as the module's, with the stored definition in the
    role of the request and the live XML in that of libvirt's copy (what the
    live XML adds by itself, aliases, runtime paths, is no difference), and
    without what the guest never sees (_NOT_PENDING).
    """
    result = []
    for difference in compare(stored, live):
        if difference.parts[:1] and difference.parts[0].split('[', 1)[0] in _NOT_PENDING:
            continue
        if _cpu_expanded_at_start(difference, stored):
            continue
        result.append({'change': describe(difference), 'path': difference.path})
    return result


def _cpu_expanded_at_start(difference, stored):
    """True for what libvirt writes into a running domain's <cpu> when QEMU starts: the CPU it checked
    (check='full'), the features of the model, and for host-model the model and vendor it chose (mode custom)."""
    parts = difference.parts
    if not parts or parts[0] != 'cpu':
        return False
    if parts == ('cpu',) and difference.attribute == 'check':
        return True
    child = parts[1].split('[', 1)[0] if len(parts) > 1 else None
    if child == 'feature' and difference.change == 'removed':
        return True
    cpu = stored.find('cpu')
    if cpu is None or cpu.get('mode') != 'host-model':
        return False
    return (parts == ('cpu',) and difference.attribute == 'mode') or child in ('vendor', 'model')
