# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PCI devices as sysfs shows them, and names from the system's pci.ids.

Everything is read through a HostFS, so a recorded tree works like the live
/sys. Values keep the kernel's spelling: `vendor` is `0x10de` as
/sys/bus/pci/devices/<address>/vendor prints it.
"""

from __future__ import annotations

import posixpath
import re

from ansible_collections.phyllome.os.plugins.module_utils.errors import InvalidInput

SYSFS_PCI_DEVICES = '/sys/bus/pci/devices'

# Fedora (hwdata), Debian (pci.ids package), then the upstream default.
PCI_IDS_PATHS = ('/usr/share/hwdata/pci.ids', '/usr/share/misc/pci.ids', '/usr/share/pci.ids')

# domain:bus:slot.function; PCI domains above 0xffff exist (Intel VMD).
_ADDRESS_RE = re.compile(r'^([0-9a-f]{4,8}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$')
_SHORT_ADDRESS_RE = re.compile(r'^([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$')
_ID_RE = re.compile(r'^(?:0x)?([0-9a-f]{4})$')
_BLOCK_END_RE = re.compile(r'\n(?=[^\t#])')

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


def is_address(text):
    """True when `text` is a full PCI address (0000:01:00.0), as sysfs names devices."""
    return bool(_ADDRESS_RE.match(text or ''))


def normalize_address(text):
    """The full, lower-case address of `text` (01:00.0 and 0000:01:00.0 both work).

    Raises InvalidInput for anything else.
    """
    value = str(text).strip().lower()
    if _SHORT_ADDRESS_RE.match(value):
        value = '0000:' + value
    match = _ADDRESS_RE.match(value)
    if not match:
        raise InvalidInput('%r is not a PCI address (expected domain:bus:slot.function, e.g. 0000:01:00.0)' % (text,))
    domain = match.group(1)
    if len(domain) < 4:
        domain = domain.rjust(4, '0')
    return '%s:%s:%s.%s' % (domain, match.group(2), match.group(3), match.group(4))


def slot_of(address):
    """domain:bus:slot of an address: the functions of one physical device share it."""
    return address.rsplit('.', 1)[0]


def normalize_id(text):
    """A vendor or device ID as four lower-case hex digits (accepts 10de, 0x10DE)."""
    match = _ID_RE.match(str(text).strip().lower())
    if not match:
        raise InvalidInput('%r is not a PCI or USB ID (four hex digits, e.g. 10de)' % (text,))
    return match.group(1)


def pci_ancestor(sysfs_path):
    """The PCI device closest to a sysfs device path (the controller of a disk, a NIC, a USB bus), or None."""
    for part in reversed(sysfs_path.split('/')):
        if _ADDRESS_RE.match(part):
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
        parent = parent_name if _ADDRESS_RE.match(parent_name) else None
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

    With `ids` (an IdsDatabase), the names from pci.ids are added.
    """
    devices = {}
    for address in fs.listdir(SYSFS_PCI_DEVICES):
        if _ADDRESS_RE.match(address):
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


def read_ids(fs, paths=PCI_IDS_PATHS):
    """An IdsDatabase over the first readable file of `paths` on the host (empty when none is)."""
    for path in paths:
        data = fs.read_bytes(path)
        if data:
            return IdsDatabase(data.decode('utf-8', 'replace'), path)
    return IdsDatabase('', None)


class IdsDatabase:
    """Names from a pci.ids or usb.ids file, looking up only the IDs asked for.

    Both files list vendors in ascending ID order, each followed by its
    tab-indented devices and, under those, subsystems; a class section
    (lines `C xx`) follows. The whole file is 1.3 MB and the Intel block
    alone has thousands of lines: building dicts of them costs more than the
    rest of a run. So vendor blocks are found by text search (in ascending
    order, from where the previous one was found), kept as text, and
    searched again for the devices asked for.
    """

    def __init__(self, text, path=None):
        self.path = path
        self._text = '\n' + text if text else ''
        # vendor ID (or 'C xx' for a class) -> (name, block text starting with '\n'), or None
        self._blocks = {}
        # (vendor, device[, subvendor, subdevice]) -> name: hosts repeat IDs (many identical cards).
        self._cache = {}

    def __bool__(self):
        return bool(self._text)

    def preload(self, vendor_ids):
        """Find the blocks of `vendor_ids` (4 hex digits each) in one forward pass over the file."""
        position = 0
        for vendor in sorted(set(v.lower() for v in vendor_ids if v) - set(self._blocks)):
            found = self._text.find('\n%s  ' % vendor, position)
            if found < 0 and position:
                found = self._text.find('\n%s  ' % vendor)
            self._blocks[vendor] = self._block(found) if found >= 0 else None
            if found >= 0:
                position = found

    def _block(self, start):
        """(header name, the indented and comment lines under it) of the header line at `start`."""
        text = self._text
        header_end = text.find('\n', start + 1)
        if header_end < 0:
            header_end = len(text)
        # The block ends at the first line that is neither indented nor a comment.
        following = _BLOCK_END_RE.search(text, header_end)
        end = following.start() if following else len(text)
        name = text[start + 1:header_end].partition('  ')[2].strip() or None
        return name, text[header_end:end]

    def _vendor(self, vendor):
        vendor = (vendor or '').lower()
        if not self._text or not vendor:
            return None
        if vendor not in self._blocks:
            self.preload([vendor])
        return self._blocks[vendor]

    @staticmethod
    def _child(block, prefix):
        """(name, offset of the line end) of the line `prefix  name` in a block, or (None, -1)."""
        found = block.find('\n%s  ' % prefix)
        if found < 0:
            return None, -1
        end = block.find('\n', found + 1)
        if end < 0:
            end = len(block)
        return block[found + 1 + len(prefix):end].strip(), end

    def vendor_name(self, vendor):
        entry = self._vendor(vendor)
        return entry[0] if entry else None

    def device_name(self, vendor, device):
        key = (vendor, device)
        if key not in self._cache:
            self._cache[key] = self._device(vendor, device)[0]
        return self._cache[key]

    def _device(self, vendor, device):
        """(name, end of its line in the vendor block) of a device, or (None, -1)."""
        entry = self._vendor(vendor)
        if not entry or not device:
            return None, -1
        return self._child(entry[1], '\t' + device.lower())

    def subsystem_name(self, vendor, device, subvendor, subdevice):
        key = (vendor, device, subvendor, subdevice)
        if key not in self._cache:
            self._cache[key] = self._subsystem(vendor, device, subvendor, subdevice)
        return self._cache[key]

    def _subsystem(self, vendor, device, subvendor, subdevice):
        name, end = self._device(vendor, device)
        if name is None or not subvendor or not subdevice:
            return None
        # The device's subsystems: the two-tab lines right after its line.
        block = self._vendor(vendor)[1]
        prefix = '\t\t%s %s  ' % (subvendor.lower(), subdevice.lower())
        while end < len(block):
            following = block.find('\n', end + 1)
            if following < 0:
                following = len(block)
            line = block[end + 1:following]
            if line.startswith(prefix):
                return line[len(prefix):].strip()
            if not line.startswith('\t\t') and not line.startswith('#'):
                return None
            end = following
        return None

    def class_name(self, base, sub=None):
        """Name of class `base` (2 hex digits), or of its subclass `sub` when listed."""
        key = ('C', base, sub)
        if key not in self._cache:
            self._cache[key] = self._class(base, sub)
        return self._cache[key]

    def _class(self, base, sub):
        key = 'C ' + base.lower()
        if key not in self._blocks and self._text:
            found = self._text.find('\n%s  ' % key)
            self._blocks[key] = self._block(found) if found >= 0 else None
        entry = self._blocks.get(key)
        if not entry:
            return None
        if sub is not None:
            name = self._child(entry[1], '\t' + sub.lower())[0]
            if name:
                return name
        return entry[0]
