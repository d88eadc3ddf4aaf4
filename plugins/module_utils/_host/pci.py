# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PCI devices as sysfs shows them (their names come from pci_ids).

Everything is read through a HostFS, so a recorded tree works like the live
/sys. Values keep the kernel's spelling: `vendor` is `0x10de` as
/sys/bus/pci/devices/<address>/vendor prints it.
"""

from __future__ import annotations

import posixpath

from ansible_collections.phyllome.os.plugins.module_utils._common.device_ids import is_pci_address

SYSFS_PCI_DEVICES = '/sys/bus/pci/devices'


# Class codes (class << 8 | subclass) the collection reasons about.
CLASS_HOST_BRIDGE = 0x0600
CLASS_ISA_BRIDGE = 0x0601
# PCI-to-PCI, CardBus and semi-transparent bridges: what the kernel's
# pci_is_bridge() sees as bridges (header types 1 and 2).
BRIDGE_CLASSES = frozenset((0x0604, 0x0607, 0x0609))
# Display controllers that drive a screen (a 3D controller, 0x0302, has no outputs).
DISPLAY_CLASSES = frozenset((0x0300, 0x0301, 0x0380))
CLASS_USB = 0x0c03
CLASS_BASE_NETWORK = 0x02
CLASS_BASE_STORAGE = 0x01
CLASS_BASE_DISPLAY = 0x03

# Programming interfaces of USB controllers (class 0x0c03).
USB_CONTROLLER_TYPES = {0x00: 'UHCI', 0x10: 'OHCI', 0x20: 'EHCI', 0x30: 'xHCI', 0x40: 'USB4'}

# Config space: the standard capabilities all live in the first 256 bytes.
_CONFIG_HEADER_SIZE = 0x40
_CONFIG_STANDARD_SIZE = 0x100
_CAP_ID_PCI_EXPRESS = 0x10
_CAP_ID_ADVANCED_FEATURES = 0x13
_PCIE_DEVCAP_FLR = 1 << 28
_AF_CAP_FLR = 0x02


def slot_of(address):
    """domain:bus:slot of an address: the functions of one physical device share it."""
    return address.rsplit('.', 1)[0]


def pci_ancestor(sysfs_path):
    """The PCI device closest to a sysfs device path (the controller of a disk, a NIC, a USB bus), or None."""
    for part in reversed(sysfs_path.split('/')):
        if is_pci_address(part):
            return part
    return None


def link_target(fs, link):
    """The absolute host path a sysfs symlink points to, without following further links.

    sysfs links are relative and point straight at the device directory, so
    one readlink is enough; a full resolve per device would cost a stat per
    path component.
    """
    target = fs.readlink(link)
    if target is None:
        return None
    return posixpath.normpath(posixpath.join(posixpath.dirname(link), target))


def device_sysfs_path(fs, address):
    """/sys/devices/... directory of the device at `address`, or None when it does not exist."""
    return link_target(fs, posixpath.join(SYSFS_PCI_DEVICES, address))


def class_code(device):
    """class << 8 | subclass of a device dict (0x0604 for a PCI bridge)."""
    return int(device['class'], 16) >> 8


def is_bridge(device):
    return class_code(device) in BRIDGE_CLASSES


def is_display(device):
    return class_code(device) in DISPLAY_CLASSES


def flr_capable(config):
    """Whether config space bytes advertise Function Level Reset, or None when they do not tell.

    FLR shows in the PCI Express capability (Device Capabilities bit 28) or in
    the Advanced Features capability of conventional PCI functions. Unprivileged
    readers get only the 64-byte header, which does not tell.
    """
    if not config or len(config) < _CONFIG_STANDARD_SIZE:
        return None
    status = config[0x06] | (config[0x07] << 8)
    if not status & 0x10:
        # No capability list: neither capability can be there.
        return False
    pointer = config[0x34] & 0xfc
    seen = set()
    while pointer >= _CONFIG_HEADER_SIZE and pointer not in seen and pointer + 8 <= len(config):
        seen.add(pointer)
        cap_id = config[pointer]
        if cap_id == _CAP_ID_PCI_EXPRESS:
            devcap = int.from_bytes(config[pointer + 4:pointer + 8], 'little')
            if devcap & _PCIE_DEVCAP_FLR:
                return True
        elif cap_id == _CAP_ID_ADVANCED_FEATURES:
            if config[pointer + 3] & _AF_CAP_FLR:
                return True
        pointer = config[pointer + 1] & 0xfc
    return False


def _hex_attr(fs, path, width):
    """A sysfs hex attribute (0x10de) in the kernel's spelling, or None."""
    value = fs.read_int(path, base=16)
    if value is None:
        return None
    return '0x%0*x' % (width, value)


def read_device(fs, address, sysfs_path=None):
    """One PCI device's attributes as a dict; an attribute the tree lacks reads as None."""
    base = posixpath.join(SYSFS_PCI_DEVICES, address)
    if sysfs_path is None:
        sysfs_path = device_sysfs_path(fs, address)
    parent = None
    if sysfs_path:
        parent_name = posixpath.basename(posixpath.dirname(sysfs_path))
        parent = parent_name if is_pci_address(parent_name) else None
    code = fs.read_int(base + '/class', default=0, base=16)
    group = fs.link_name(base + '/iommu_group')
    numa_node = fs.read_int(base + '/numa_node', base=10)
    override = fs.read_text(base + '/driver_override')
    reset_method = fs.read_text(base + '/reset_method')
    if reset_method is not None:
        reset_methods = reset_method.split()
    elif fs.lexists(base + '/reset'):
        # Kernels before 5.15 show that a reset exists, not which.
        reset_methods = None
    else:
        # The kernel hides both attributes when the device has no reset at all.
        reset_methods = []
    device = {
        'address': address,
        'slot': slot_of(address),
        'parent': parent,
        'vendor': _hex_attr(fs, base + '/vendor', 4),
        'device': _hex_attr(fs, base + '/device', 4),
        'subsystem_vendor': _hex_attr(fs, base + '/subsystem_vendor', 4),
        'subsystem_device': _hex_attr(fs, base + '/subsystem_device', 4),
        'class': '0x%06x' % code,
        'revision': _hex_attr(fs, base + '/revision', 2),
        'driver': fs.link_name(base + '/driver'),
        'driver_override': None if override in (None, '', '(null)') else override,
        'iommu_group': int(group) if group and group.isdigit() else None,
        'numa_node': None if numa_node is None or numa_node < 0 else numa_node,
        'boot_vga': fs.read_text(base + '/boot_vga') == '1',
        'reset_methods': reset_methods,
        'flr': flr_capable(fs.read_bytes(base + '/config', size=_CONFIG_STANDARD_SIZE)),
    }
    device['bridge'] = is_bridge(device)
    device['vendor_device'] = '%s:%s' % (
        (device['vendor'] or '0x????')[2:], (device['device'] or '0x????')[2:])
    return device


def read_devices(fs, ids=None):
    """Every PCI device under /sys/bus/pci/devices: {address: device dict}, sorted by address.

    With `ids` (a pci_ids.IdsDatabase), the names from pci.ids are added.
    """
    devices = {}
    for address in fs.listdir(SYSFS_PCI_DEVICES):
        if is_pci_address(address):
            devices[address] = read_device(fs, address)
    if ids is not None:
        add_names(devices.values(), ids)
    return devices


def add_names(devices, ids):
    """Fill the *_name keys of device dicts from an IdsDatabase (None where it has no entry)."""
    devices = list(devices)
    wanted = set()
    for device in devices:
        for key in ('vendor', 'subsystem_vendor'):
            if device[key]:
                wanted.add(device[key][2:])
    ids.preload(wanted)
    for device in devices:
        vendor = (device['vendor'] or '')[2:]
        product = (device['device'] or '')[2:]
        subvendor = (device['subsystem_vendor'] or '')[2:]
        subdevice = (device['subsystem_device'] or '')[2:]
        device['vendor_name'] = ids.vendor_name(vendor)
        device['device_name'] = ids.device_name(vendor, product)
        device['subsystem_vendor_name'] = ids.vendor_name(subvendor)
        device['subsystem_name'] = ids.subsystem_name(vendor, product, subvendor, subdevice)
        code = class_code(device)
        device['class_name'] = ids.class_name('%02x' % (code >> 8), '%02x' % (code & 0xff))
