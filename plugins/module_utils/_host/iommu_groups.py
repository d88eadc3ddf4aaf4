# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""IOMMU groups, what the host uses now, and a passthrough verdict per group.

VFIO hands a guest whole IOMMU groups: every endpoint of a group must be
bound to vfio-pci (PCI-to-PCI bridges may stay with the host). A group is
therefore only as passable as the device in it that the host can least do
without. The verdicts:

- viable: one endpoint, nothing the host needs;
- needs_whole_group: several endpoints (functions of one card, or devices
  the platform does not isolate) that must go to the same guest together;
- unsafe: the group holds something the host needs (the boot disk's
  controller, the NIC of the default route, the only display, a host or
  ISA bridge);
- no_endpoints: only bridges, nothing to pass.
"""

from __future__ import annotations

import posixpath
import re

from ansible_collections.phyllome.os.plugins.module_utils._common.device_ids import is_pci_address
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import NotFound
from ansible_collections.phyllome.os.plugins.module_utils._host import pci, pci_ids
from ansible_collections.phyllome.os.plugins.module_utils._host import usb
from ansible_collections.phyllome.os.plugins.module_utils._host.cmdline import running_kernel_args
from ansible_collections.phyllome.os.plugins.module_utils._host.cpu import read_cpu
from ansible_collections.phyllome.os.plugins.module_utils._host.iommu import SYSFS_IOMMU_GROUPS, detect_iommu, diagnose, explain, group_numbers

VERDICT_VIABLE = 'viable'
VERDICT_WHOLE_GROUP = 'needs_whole_group'
VERDICT_UNSAFE = 'unsafe'
VERDICT_NO_ENDPOINTS = 'no_endpoints'

# Mount points whose file systems the host cannot run or boot without.
SYSTEM_MOUNT_POINTS = frozenset(('/', '/boot', '/boot/efi', '/efi', '/usr', '/var', '/sysroot'))

# Uses of a device by the host. The first group makes its IOMMU group unsafe;
# the others only mean "not now": they end when the host lets go.
USE_BOOT_DISK = 'boot_disk'
USE_DEFAULT_ROUTE = 'default_route'
USE_MOUNTED = 'mounted'
USE_SWAP = 'swap'
USE_ROUTE = 'route'
BLOCKING_USES = frozenset((USE_BOOT_DISK, USE_DEFAULT_ROUTE))

_OCTAL_ESCAPE = re.compile(r'\\([0-7]{3})')
_RTF_UP = 0x0001
_RTF_REJECT = 0x0200


# ---------------------------------------------------------------------------
# Groups
# ---------------------------------------------------------------------------

def read_groups(fs):
    """{group number: [PCI addresses]} from /sys/kernel/iommu_groups, sorted."""
    groups = {}
    for number in group_numbers(fs):
        members = fs.listdir('%s/%d/devices' % (SYSFS_IOMMU_GROUPS, number))
        groups[number] = [m for m in members if is_pci_address(m)]
    return groups


def group_type(fs, number):
    """The group's default domain type (DMA, DMA-FQ, identity with iommu=pt), or None."""
    return fs.read_text('%s/%d/type' % (SYSFS_IOMMU_GROUPS, number))


# ---------------------------------------------------------------------------
# What the host uses now
# ---------------------------------------------------------------------------

def _unescape(text):
    # /proc/*/mountinfo escapes blanks and backslashes as octal (\040).
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), text)


def read_mounts(fs):
    """Mounted file systems: dicts with major_minor (None from /proc/mounts), mount_point, fstype, source."""
    mounts = []
    lines = fs.read_lines('/proc/self/mountinfo')
    if lines:
        for line in lines:
            left, sep, right = line.partition(' - ')
            fields, tail = left.split(), right.split()
            if not sep or len(fields) < 5 or len(tail) < 2:
                continue
            mounts.append({'major_minor': fields[2], 'mount_point': _unescape(fields[4]),
                           'fstype': tail[0], 'source': _unescape(tail[1])})
        return mounts
    for line in fs.read_lines('/proc/mounts'):
        fields = line.split()
        if len(fields) >= 3:
            mounts.append({'major_minor': None, 'mount_point': _unescape(fields[1]),
                           'fstype': fields[2], 'source': _unescape(fields[0])})
    return mounts


def _block_name_by_dm_name(fs, name):
    for entry in fs.listdir('/sys/class/block'):
        if entry.startswith('dm-') and fs.read_text('/sys/class/block/%s/dm/name' % entry) == name:
            return entry
    return None


def block_device_name(fs, major_minor=None, source=None):
    """The kernel name (sda2, nvme0n1p3, dm-0) of a mount's block device, or None.

    major:minor from mountinfo is exact, except on btrfs, whose mounts carry an
    anonymous 0:N; then the source path (/dev/sda3, /dev/mapper/luks-...) tells.
    """
    if major_minor and not major_minor.startswith('0:'):
        name = fs.link_name('/sys/dev/block/' + major_minor)
        if name:
            return name
    if not source or not source.startswith('/dev/'):
        return None
    name = posixpath.basename(fs.resolve(source)) if fs.lexists(source) else posixpath.basename(source)
    if fs.lexists('/sys/class/block/' + name):
        return name
    if source.startswith('/dev/mapper/'):
        return _block_name_by_dm_name(fs, source[len('/dev/mapper/'):])
    return None


def block_pci_addresses(fs, name, _depth=0):
    """PCI devices (controllers) that a block device lives on, through dm/md slaves."""
    if _depth > 16:
        return set()
    slaves = fs.listdir('/sys/class/block/%s/slaves' % name)
    if slaves:
        found = set()
        for slave in slaves:
            found |= block_pci_addresses(fs, slave, _depth + 1)
        return found
    path = pci.link_target(fs, '/sys/class/block/' + name)
    address = pci.pci_ancestor(path) if path else None
    return {address} if address else set()


def net_pci_addresses(fs, interface, _depth=0):
    """PCI devices behind a network interface, through bridges, bonds and VLANs (lower_* links)."""
    if _depth > 16:
        return set()
    path = pci.link_target(fs, '/sys/class/net/' + interface)
    address = pci.pci_ancestor(path) if path else None
    if address:
        return {address}
    found = set()
    for entry in fs.listdir('/sys/class/net/' + interface):
        if entry.startswith('lower_'):
            found |= net_pci_addresses(fs, entry[len('lower_'):], _depth + 1)
    return found


def routed_interfaces(fs):
    """{interface: True when it carries a default route, False for other routes} (IPv4 and IPv6)."""
    interfaces = {}
    for line in fs.read_lines('/proc/net/route')[1:]:
        fields = line.split()
        if len(fields) < 8 or not int(fields[3], 16) & _RTF_UP or int(fields[3], 16) & _RTF_REJECT:
            continue
        default = fields[1] == '00000000' and fields[7] == '00000000'
        interfaces[fields[0]] = interfaces.get(fields[0], False) or default
    for line in fs.read_lines('/proc/net/ipv6_route'):
        fields = line.split()
        if len(fields) < 10 or fields[9] == 'lo':
            continue
        flags = int(fields[8], 16)
        if not flags & _RTF_UP or flags & _RTF_REJECT:
            continue
        destination = fields[0]
        default = destination == '0' * 32 and fields[1] == '00'
        # Every interface that is up has link-local and multicast routes: they say nothing.
        if not default and (destination.startswith('fe80') or destination.startswith('ff')):
            continue
        interfaces[fields[9]] = interfaces.get(fields[9], False) or default
    return interfaces


def _swap_devices(fs):
    names = []
    for line in fs.read_lines('/proc/swaps')[1:]:
        fields = line.split()
        if len(fields) >= 2 and fields[1] == 'partition':
            names.append(_unescape(fields[0]))
    return names


def host_usage(fs):
    """What the host uses each PCI device for right now: {address: [{'use': code, 'message': str}]}."""
    usage = {}

    def add(addresses, use, message):
        for address in sorted(addresses):
            entries = usage.setdefault(address, [])
            if not any(e['use'] == use and e['message'] == message for e in entries):
                entries.append({'use': use, 'message': message})

    # One message per block device and use, naming all its mount points (bind
    # mounts repeat the same device many times).
    mounted = {}
    for mount in read_mounts(fs):
        name = block_device_name(fs, mount['major_minor'], mount['source'])
        if name:
            use = USE_BOOT_DISK if mount['mount_point'] in SYSTEM_MOUNT_POINTS else USE_MOUNTED
            mounted.setdefault((name, mount['fstype'], use), []).append(mount['mount_point'])
    for (name, fstype, use), points in sorted(mounted.items()):
        add(block_pci_addresses(fs, name), use, '%s (%s) is mounted at %s' % (name, fstype, ', '.join(points)))
    for source in _swap_devices(fs):
        name = block_device_name(fs, None, source)
        if name:
            add(block_pci_addresses(fs, name), USE_SWAP, '%s is active swap' % name)
    for interface, default in sorted(routed_interfaces(fs).items()):
        addresses = net_pci_addresses(fs, interface)
        if default:
            add(addresses, USE_DEFAULT_ROUTE, '%s carries the default route' % interface)
        else:
            add(addresses, USE_ROUTE, '%s carries routes' % interface)
    return usage


# ---------------------------------------------------------------------------
# Verdicts
# ---------------------------------------------------------------------------

def _short(address):
    # Advice reads better with 01:00.0 than 0000:01:00.0 in the common domain.
    return address[5:] if address.startswith('0000:') else address


def _names(addresses):
    return ', '.join(_short(a) for a in addresses)


def _label(device):
    name = device.get('device_name') or device.get('class_name')
    if name:
        return '%s (%s)' % (_short(device['address']), name)
    return '%s [%s, class %s]' % (_short(device['address']), device['vendor_device'], device['class'])


def _entry(code, addresses, message):
    return {'code': code, 'devices': list(addresses), 'message': message}


def _blockers(members, devices, usage, displays):
    """Reasons why the host cannot give this group away."""
    reasons = []
    member_set = set(members)
    for address in members:
        device = devices.get(address)
        if device is None:
            continue
        code = pci.class_code(device)
        if code == pci.CLASS_HOST_BRIDGE:
            reasons.append(_entry('host_bridge', [address],
                                  '%s is a host bridge: it belongs to the host' % _label(device)))
        elif code == pci.CLASS_ISA_BRIDGE:
            reasons.append(_entry('isa_bridge', [address],
                                  '%s is the ISA/LPC bridge, which carries platform devices the host relies on '
                                  '(TPM, keyboard and embedded controllers)' % _label(device)))
        uses = [u['message'] for u in usage.get(address, []) if u['use'] == USE_BOOT_DISK]
        if uses:
            reasons.append(_entry('boot_disk', [address], '%s holds the host\'s system disk: %s' % (
                _label(device), '; '.join(uses))))
        uses = [u['message'] for u in usage.get(address, []) if u['use'] == USE_DEFAULT_ROUTE]
        if uses:
            reasons.append(_entry('default_route_nic', [address], '%s is the host\'s network: %s' % (
                _label(device), '; '.join(uses))))
        if device['boot_vga'] and not [d for d in displays if d not in member_set]:
            reasons.append(_entry('boot_vga', [address],
                                  '%s is the boot VGA and the host has no other display' % _label(device)))
    return reasons


def _notes(members, devices, usage, displays, passable):
    """Facts worth knowing that do not change the verdict."""
    notes = []
    member_set = set(members)
    no_reset, vfio_bound = [], []
    for address in members:
        device = devices.get(address)
        if device is None:
            continue
        uses = [u['message'] for u in usage.get(address, []) if u['use'] not in BLOCKING_USES]
        if uses:
            notes.append(_entry('in_use', [address], '%s is in use: %s; the host must let go of it before it can '
                                'be bound to vfio-pci' % (_short(address), '; '.join(uses))))
        if device['boot_vga'] and [d for d in displays if d not in member_set]:
            notes.append(_entry('boot_vga', [address],
                                '%s is the boot VGA: the firmware and the early boot console use it; once '
                                'passed, the host displays on %s' % (
                                    _short(address), _names([d for d in displays if d not in member_set]))))
        # Only worth saying where a guest could get the device.
        if passable and not device['bridge'] and device['reset_methods'] == []:
            no_reset.append(address)
        if device['driver'] == 'vfio-pci':
            vfio_bound.append(address)
    if no_reset:
        notes.append(_entry('no_reset', no_reset, '%s %s no reset method: a guest may find %s unusable after it '
                            'reboots' % (_names(no_reset), _have(no_reset), _them(no_reset))))
    if vfio_bound:
        notes.append(_entry('vfio_bound', vfio_bound, '%s %s bound to vfio-pci already' % (
            _names(vfio_bound), 'is' if len(vfio_bound) == 1 else 'are')))
    return notes


def _have(addresses):
    return 'has' if len(addresses) == 1 else 'have'


def _them(addresses):
    return 'it' if len(addresses) == 1 else 'them'


def _advice(verdict, reasons, endpoints, bridges, devices):
    advice = []
    if verdict == VERDICT_VIABLE:
        advice.append('Pass %s to a guest (phyllome.os.pci_passthrough, or a managed hostdev).' % _names(endpoints))
    elif verdict == VERDICT_WHOLE_GROUP:
        advice.append('Pass %s together, to the same guest (phyllome.os.pci_passthrough with whole_group).'
                      % _names(endpoints))
        if any(r['code'] == 'shared_group' for r in reasons):
            advice.append('To pass one of them alone, move its card to a slot whose group holds nothing else '
                          '(slots wired to the CPU usually are; those behind the chipset usually are not).')
    elif verdict == VERDICT_UNSAFE:
        codes = set(r['code'] for r in reasons)
        needed = set(a for r in reasons for a in r['devices'])
        others = [a for a in endpoints if a not in needed]
        if others:
            advice.append('%s cannot be passed while %s this group with what the host needs; a card can move '
                          'to a slot whose IOMMU group holds nothing the host needs.' % (
                              _names(others), 'it shares' if len(others) == 1 else 'they share'))
        else:
            advice.append('Nothing in this group can be passed: keep it with the host.')
        if 'boot_disk' in codes:
            advice.append('Give guests storage through virtio disks rather than this controller.')
        if 'default_route_nic' in codes:
            advice.append('Give guests network through a virtio NIC on a bridge or macvtap; to pass this NIC, '
                          'first move the host\'s default route to another one.')
        if 'boot_vga' in codes:
            advice.append('The host needs a display of its own before this GPU can go: another GPU (or the '
                          'integrated one, enabled in the firmware) for the host.')
        if 'isa_bridge' in codes:
            advice.append('On-board devices that share the ISA/LPC bridge\'s group (often audio and SMBus) stay '
                          'with the host: use a USB or PCIe device for the guest, or virtio sound.')
        usb_controllers = [a for a in others if pci.class_code(devices[a]) == pci.CLASS_USB]
        if usb_controllers:
            advice.append('USB devices behind %s can still reach a guest one by one (a USB hostdev by vendor and '
                          'product), though the controller cannot.' % _names(usb_controllers))
    if bridges and verdict in (VERDICT_VIABLE, VERDICT_WHOLE_GROUP):
        advice.append('The bridges %s stay with the host.' % _names(bridges))
    return advice


def assess_group(number, members, devices, usage, displays):
    """The verdict of IOMMU group `number` (members: its PCI addresses) as a dict.

    devices: {address: device dict} of the whole host; usage: host_usage();
    displays: addresses of every display controller of the host.
    """
    members = sorted(members)
    bridges = [a for a in members if a in devices and devices[a]['bridge']]
    endpoints = [a for a in members if a not in bridges]
    reasons = _blockers(members, devices, usage, displays)
    if reasons:
        verdict = VERDICT_UNSAFE
    elif not endpoints:
        verdict = VERDICT_NO_ENDPOINTS
        reasons.append(_entry('only_bridges', bridges, 'the group holds only bridges: nothing to pass'))
    elif len(endpoints) == 1:
        verdict = VERDICT_VIABLE
        reasons.append(_entry('single_endpoint', endpoints, '%s is the only endpoint of the group'
                              % _short(endpoints[0])))
    else:
        verdict = VERDICT_WHOLE_GROUP
        slots = sorted(set(pci.slot_of(a) for a in endpoints))
        if len(slots) == 1:
            reasons.append(_entry('multifunction', endpoints, '%s are functions of one device (slot %s)'
                                  % (_names(endpoints), _short(slots[0]))))
        else:
            reasons.append(_entry('shared_group', endpoints, '%s belong to %d devices that the platform does not '
                                  'isolate from each other (no ACS between them)' % (_names(endpoints), len(slots))))
    return {
        'group': number,
        'devices': [devices[a] for a in members if a in devices],
        'endpoints': endpoints,
        'bridges': bridges,
        'verdict': verdict,
        'reasons': reasons,
        'notes': _notes(members, devices, usage, displays, verdict in (VERDICT_VIABLE, VERDICT_WHOLE_GROUP)),
        'advice': _advice(verdict, reasons, endpoints, bridges, devices),
    }


def assess(fs, devices, usage=None, groups=None):
    """Verdicts of every IOMMU group of the host, sorted by group number."""
    if usage is None:
        usage = host_usage(fs)
    if groups is None:
        groups = read_groups(fs)
    displays = [a for a, d in devices.items() if pci.is_display(d)]
    result = []
    for number, members in groups.items():
        entry = assess_group(number, members, devices, usage, displays)
        entry['type'] = group_type(fs, number)
        result.append(entry)
    return result


# ---------------------------------------------------------------------------
# The whole report (iommu_info)
# ---------------------------------------------------------------------------

def host_advice(iommu, args, cpu):
    """What to change on the host itself before passthrough works (empty when nothing).

    iommu: detect_iommu() facts; args: the kernel's arguments
    (cmdline.KernelArg); cpu: cpu.read_cpu() facts. The problem comes
    first, as a sentence, then what to do about it.
    """
    problem = diagnose(iommu, args, cpu['vendor'], cpu['hypervisor'])
    if problem is None:
        return []
    explained = explain(problem, iommu)
    reason = explained['reason']
    return ['%s%s.' % (reason[:1].upper(), reason[1:])] + explained['advice']


def gather(fs):
    """Everything iommu_info returns, read from the host under `fs`."""
    if not fs.is_dir('/sys'):
        raise NotFound('%s has no sys directory: root must be / or a recorded host tree' % fs.root, root=fs.root)
    # detect_iommu and the advice read the same arguments (cmdline.KernelArg).
    args = running_kernel_args(fs)
    iommu = detect_iommu(fs, args)
    ids = pci_ids.read_ids(fs)
    devices = pci.read_devices(fs, ids)
    usage = host_usage(fs)
    for address, device in devices.items():
        device['in_use'] = [u['message'] for u in usage.get(address, [])]
    groups = assess(fs, devices, usage)
    verdicts = dict((g['group'], g['verdict']) for g in groups)
    controllers = usb.read_controllers(fs, devices, pci_ids.read_ids(fs, usb.USB_IDS_PATHS))
    for controller in controllers:
        controller['verdict'] = verdicts.get(controller['iommu_group'])
    return {
        'iommu': iommu,
        'groups': groups,
        'pci_devices': devices,
        'usb_controllers': controllers,
        'advice': host_advice(iommu, args, read_cpu(fs)),
        'pci_ids': ids.path,
    }
