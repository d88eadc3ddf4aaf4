# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""USB controllers and the USB devices behind them, from /sys/bus/usb/devices.

Passing a whole USB controller to a guest takes every device behind it, so
finding "the controller with my Bluetooth dongle" means mapping each USB
device to the PCI controller above it. Attribute names keep the kernel's
spelling (idVendor, idProduct, busnum, devnum).
"""

from __future__ import annotations

import posixpath

from ansible_collections.phyllome.os.plugins.module_utils._host import pci

SYSFS_USB_DEVICES = '/sys/bus/usb/devices'

# Fedora (hwdata), Debian (usb.ids package; /usr/share/misc/usb.ids links to
# the copy usbutils updates).
USB_IDS_PATHS = ('/usr/share/hwdata/usb.ids', '/usr/share/misc/usb.ids', '/var/lib/usbutils/usb.ids')

# Base classes from usb.org's defined class codes, in words a filter can use.
USB_CLASSES = {
    0x01: 'audio', 0x02: 'communications', 0x03: 'hid', 0x05: 'physical', 0x06: 'image',
    0x07: 'printer', 0x08: 'mass_storage', 0x09: 'hub', 0x0a: 'cdc_data', 0x0b: 'smart_card',
    0x0d: 'content_security', 0x0e: 'video', 0x0f: 'personal_healthcare', 0x10: 'audio_video',
    0x11: 'billboard', 0x12: 'usb_type_c_bridge', 0xdc: 'diagnostic', 0xe0: 'wireless_controller',
    0xef: 'miscellaneous', 0xfe: 'application_specific', 0xff: 'vendor_specific',
}
# Wireless controller / RF / Bluetooth programming interface.
_BLUETOOTH = (0xe0, 0x01, 0x01)
_CLASS_HUB = 0x09


def _hex(fs, path):
    return fs.read_int(path, base=16)


def _text(fs, path):
    value = fs.read_text(path)
    return value.strip() if value is not None else None


def _class_triple(fs, base, prefix):
    return (_hex(fs, '%s/%sClass' % (base, prefix)), _hex(fs, '%s/%sSubClass' % (base, prefix)),
            _hex(fs, '%s/%sProtocol' % (base, prefix)))


def _classes(triples):
    """Class words of a device from its own and its interfaces' class triples."""
    words = []
    for triple in triples:
        word = USB_CLASSES.get(triple[0])
        if word and word not in words:
            words.append(word)
        if triple == _BLUETOOTH and 'bluetooth' not in words:
            words.append('bluetooth')
    return words


def read_devices(fs, ids=None):
    """USB devices (root hubs excluded) as dicts, each with the PCI address of its controller."""
    entries = fs.listdir(SYSFS_USB_DEVICES)
    interfaces = {}
    for entry in entries:
        if ':' in entry:
            interfaces.setdefault(entry.split(':', 1)[0], []).append(entry)
    devices = []
    for entry in entries:
        if ':' in entry or entry.startswith('usb'):
            continue
        base = posixpath.join(SYSFS_USB_DEVICES, entry)
        path = pci.link_target(fs, base)
        triples = [_class_triple(fs, base, 'bDevice')]
        drivers = []
        for interface in interfaces.get(entry, []):
            interface_base = posixpath.join(SYSFS_USB_DEVICES, interface)
            triples.append(_class_triple(fs, interface_base, 'bInterface'))
            driver = fs.link_name(interface_base + '/driver')
            if driver and driver not in drivers:
                drivers.append(driver)
        vendor = _text(fs, base + '/idVendor')
        product = _text(fs, base + '/idProduct')
        device = {
            'name': entry,
            'controller': pci.pci_ancestor(path) if path else None,
            'busnum': fs.read_int(base + '/busnum', base=10),
            'devnum': fs.read_int(base + '/devnum', base=10),
            'idVendor': vendor,
            'idProduct': product,
            'vendor_device': '%s:%s' % (vendor, product),
            'manufacturer': _text(fs, base + '/manufacturer'),
            'product': _text(fs, base + '/product'),
            'speed': _text(fs, base + '/speed'),
            'version': _text(fs, base + '/version'),
            'classes': _classes(triples),
            'hub': triples[0][0] == _CLASS_HUB,
            'drivers': sorted(drivers),
        }
        devices.append(device)
    if ids is not None:
        ids.preload(d['idVendor'] for d in devices if d['idVendor'])
        for device in devices:
            device['vendor_name'] = ids.vendor_name(device['idVendor'])
            device['product_name'] = ids.device_name(device['idVendor'], device['idProduct'])
    return sorted(devices, key=lambda d: (d['busnum'] or 0, d['name']))


def _root_hubs(fs):
    """{bus number: PCI address of its controller} from the usbN root hubs."""
    buses = {}
    for entry in fs.listdir(SYSFS_USB_DEVICES):
        if entry.startswith('usb') and entry[3:].isdigit():
            path = pci.link_target(fs, posixpath.join(SYSFS_USB_DEVICES, entry))
            buses[int(entry[3:])] = pci.pci_ancestor(path) if path else None
    return buses


def read_controllers(fs, pci_devices, ids=None):
    """USB controllers (PCI class 0x0c03 and any PCI device a USB bus hangs off) with their devices.

    pci_devices: {address: device dict} as pci.read_devices() returns.
    """
    controllers = {}

    def controller(address):
        if address not in controllers:
            device = pci_devices.get(address, {})
            code = int(device.get('class', '0x000000'), 16)
            controllers[address] = {
                'address': address,
                'type': pci.USB_CONTROLLER_TYPES.get(code & 0xff) if code >> 8 == pci.CLASS_USB else None,
                'driver': device.get('driver'),
                'iommu_group': device.get('iommu_group'),
                'buses': [],
                'devices': [],
            }
        return controllers[address]

    for address, device in pci_devices.items():
        if pci.class_code(device) == pci.CLASS_USB:
            controller(address)
    for bus, address in sorted(_root_hubs(fs).items()):
        if address:
            controller(address)['buses'].append(bus)
    for device in read_devices(fs, ids):
        if device['controller']:
            controller(device['controller'])['devices'].append(device)
    return [controllers[a] for a in sorted(controllers)]
