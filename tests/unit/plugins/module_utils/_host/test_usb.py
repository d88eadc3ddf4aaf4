# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.hostfs import HostFS
from ansible_collections.phyllome.os.plugins.module_utils._host import pci
from ansible_collections.phyllome.os.plugins.module_utils._host import pci_ids
from ansible_collections.phyllome.os.plugins.module_utils._host import usb

AMD = 'amd-desktop-chipset-group'
SERVER = 'server-clean-groups'


def controllers_of(root, with_ids=True):
    fs = HostFS(root)
    ids = pci_ids.read_ids(fs, usb.USB_IDS_PATHS) if with_ids else None
    return usb.read_controllers(fs, pci.read_devices(fs), ids)


def test_controllers_and_their_devices(host_tree):
    controllers = controllers_of(host_tree(AMD))
    assert [(c['address'], c['type'], c['driver'], c['iommu_group'], c['buses']) for c in controllers] == [
        ('0000:02:00.0', 'xHCI', 'xhci_hcd', 2, [1, 2]),
        ('0000:0a:00.3', 'xHCI', 'xhci_hcd', 11, [3, 4]),
    ]
    chipset, cpu = controllers
    receiver, bluetooth = chipset['devices']
    assert receiver == dict(receiver, **{
        'name': '1-3', 'busnum': 1, 'devnum': 2, 'idVendor': '046d', 'idProduct': 'c52b',
        'vendor_device': '046d:c52b', 'manufacturer': 'Logitech', 'product': 'USB Receiver',
        'vendor_name': 'Logitech, Inc.', 'product_name': 'Unifying Receiver', 'speed': '12',
        'version': '2.00', 'classes': ['hid'], 'hub': False, 'drivers': ['usbhid'],
    })
    # The AX200's Bluetooth has no string descriptors: usb.ids names it.
    assert (bluetooth['manufacturer'], bluetooth['product'], bluetooth['product_name']) == \
        (None, None, 'AX200 Bluetooth')
    assert bluetooth['classes'] == ['wireless_controller', 'bluetooth']
    [dongle] = cpu['devices']
    assert (dongle['name'], dongle['vendor_device'], dongle['drivers']) == ('3-2', '0b05:190e', ['btusb'])


def test_find_the_controller_with_a_bluetooth_dongle(host_tree):
    # The question iommu_info answers: which controllers carry a Bluetooth radio, and can they go?
    found = [(c['address'], d['name']) for c in controllers_of(host_tree(AMD))
             for d in c['devices'] if 'bluetooth' in d['classes']]
    assert found == [('0000:02:00.0', '1-9'), ('0000:0a:00.3', '3-2')]


def test_hubs_and_devices_behind_them(host_tree):
    [controller] = controllers_of(host_tree(SERVER))
    assert [(d['name'], d['hub'], d['classes']) for d in controller['devices']] == [
        ('1-14', True, ['hub']),
        ('1-14.1', False, ['hid']),
    ]
    # usb.ids is optional: the server's tree has none.
    assert controller['devices'][1]['product_name'] is None


def test_without_ids_database(host_tree):
    devices = usb.read_devices(HostFS(host_tree(AMD)))
    assert 'vendor_name' not in devices[0]
    assert [d['name'] for d in devices] == ['1-3', '1-9', '3-2']


def test_controller_without_buses_and_bus_on_another_device(host_tree_copy, fixture_module):
    machine = fixture_module('sysfs_tree').Machine('an EHCI without devices, a USB bus on a class-0x0c80 device')
    machine.pci('0000:00:1a.0', 0x8086, 0x1e2d, 0x0c0320, driver='ehci-pci', group=4)
    machine.pci('0000:00:1d.0', 0x8086, 0x1e26, 0x0c8000, driver='dwc3-pci', group=5)
    machine.usb_bus(3, '0000:00:1d.0')
    machine.usb_device('3-1', 0x0781, 0x5581, 'SanDisk', 'Ultra', interfaces=(((8, 6, 0x50), 'usb-storage'),),
                       speed=480)
    controllers = usb.read_controllers(HostFS(host_tree_copy(machine.spec())),
                                       pci.read_devices(HostFS(host_tree_copy(machine.spec()))))
    assert [(c['address'], c['type'], c['buses'], [d['classes'] for d in c['devices']]) for c in controllers] == [
        ('0000:00:1a.0', 'EHCI', [], []),
        ('0000:00:1d.0', None, [3], [['mass_storage']]),
    ]


@pytest.mark.parametrize('triples, expected', [
    ([(0xe0, 1, 1)], ['wireless_controller', 'bluetooth']),
    # A Bluetooth radio that says so only in its interfaces.
    ([(0, 0, 0), (0xe0, 1, 1), (0xe0, 1, 1)], ['wireless_controller', 'bluetooth']),
    ([(0xef, 2, 1), (0x0e, 1, 0), (0x0e, 2, 0), (0x01, 1, 0)], ['miscellaneous', 'video', 'audio']),
    ([(0, 0, 0), (0xff, 0xff, 0xff)], ['vendor_specific']),
    ([(None, None, None)], []),
])
def test_classes(triples, expected):
    assert usb._classes(triples) == expected
