# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.hostfs import HostFS
from ansible_collections.phyllome.os.plugins.module_utils._host import pci
from ansible_collections.phyllome.os.plugins.module_utils._host import pci_ids

AMD = 'amd-desktop-chipset-group'


@pytest.mark.parametrize('path, expected', [
    ('/sys/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda2', '0000:00:17.0'),
    # The nearest PCI device wins: the NVMe, not its root port.
    ('/sys/devices/pci0000:00/0000:00:01.1/0000:01:00.0/nvme/nvme0/nvme0n1', '0000:01:00.0'),
    ('/sys/devices/pci0000:00/0000:00:03.0/virtio2/net/eth0', '0000:00:03.0'),
    ('/sys/devices/virtual/block/dm-0', None),
    ('/sys/devices/platform/serial8250/tty/ttyS0', None),
])
def test_pci_ancestor(path, expected):
    assert pci.pci_ancestor(path) == expected


@pytest.fixture(scope='module')
def config_space(fixture_module):
    return fixture_module('sysfs_tree').config_space


def test_flr_from_the_pci_express_capability(config_space):
    assert pci.flr_capable(config_space(0x10de, 0x2520, 0x030000, flr=True)) is True
    assert pci.flr_capable(config_space(0x10de, 0x2520, 0x030000, flr=False)) is False


def test_flr_from_the_advanced_features_capability(config_space):
    cfg = bytearray(config_space(0x8086, 0x1234, 0x040300))
    cfg[0x70:0x72] = bytes((0x13, 0x00))     # the PCIe capability becomes Advanced Features
    cfg[0x73] = 0x03                          # TP and FLR
    assert pci.flr_capable(bytes(cfg)) is True
    cfg[0x73] = 0x01                          # TP only
    assert pci.flr_capable(bytes(cfg)) is False


def test_flr_unknown_without_the_whole_config_space(config_space):
    # Unprivileged readers get the 64-byte header only.
    assert pci.flr_capable(config_space(0x10de, 0x2520, 0x030000, flr=True)[:64]) is None
    assert pci.flr_capable(b'') is None
    assert pci.flr_capable(None) is None


def test_flr_without_capability_list(config_space):
    cfg = bytearray(config_space(0x10de, 0x2520, 0x030000, flr=True))
    cfg[6] = 0
    assert pci.flr_capable(bytes(cfg)) is False


def test_flr_survives_a_capability_loop(config_space):
    cfg = bytearray(config_space(0x10de, 0x2520, 0x030000, flr=False))
    cfg[0x71] = 0x40                          # PCIe capability points back to PM
    assert pci.flr_capable(bytes(cfg)) is False


@pytest.fixture(scope='module')
def amd_devices(host_tree):
    fs = HostFS(host_tree(AMD))
    return pci.read_devices(fs, pci_ids.read_ids(fs))


def test_read_device_gpu(amd_devices):
    gpu = amd_devices['0000:08:00.0']
    assert gpu == dict(gpu, **{
        'address': '0000:08:00.0', 'slot': '0000:08:00', 'parent': '0000:07:00.0',
        'vendor': '0x1002', 'device': '0x73ff', 'vendor_device': '1002:73ff',
        'subsystem_vendor': '0x1462', 'subsystem_device': '0x5022', 'class': '0x030000', 'revision': '0xc1',
        'driver': 'amdgpu', 'driver_override': None, 'iommu_group': 5, 'numa_node': None,
        'boot_vga': True, 'bridge': False, 'reset_methods': ['bus'], 'flr': False,
        'vendor_name': 'Advanced Micro Devices, Inc. [AMD/ATI]',
        'device_name': 'Navi 23 [Radeon RX 6600/6600 XT/6600M]',
        'subsystem_vendor_name': 'Micro-Star International Co., Ltd. [MSI]',
        'subsystem_name': 'RX 6600 MECH 2X', 'class_name': 'VGA compatible controller',
    })


def test_read_device_reset_and_flr(amd_devices):
    nvme = amd_devices['0000:01:00.0']
    assert (nvme['reset_methods'], nvme['flr']) == (['flr', 'bus'], True)
    # The xHCI advertises FLR, but the kernel's quirk took it away: no reset left.
    xhci = amd_devices['0000:0a:00.3']
    assert (xhci['reset_methods'], xhci['flr']) == ([], True)


def test_read_device_bridges_and_ungrouped_devices(amd_devices):
    assert amd_devices['0000:00:01.2']['bridge'] is True
    assert amd_devices['0000:00:01.2']['parent'] is None
    assert amd_devices['0000:03:08.0']['parent'] == '0000:02:00.2'
    # A host bridge is not a PCI-to-PCI bridge.
    assert amd_devices['0000:00:01.0']['bridge'] is False
    # The root complex and the IOMMU itself are in no group on AMD.
    assert amd_devices['0000:00:00.0']['iommu_group'] is None
    assert amd_devices['0000:00:00.2']['iommu_group'] is None
    assert amd_devices['0000:00:00.0']['driver'] is None


def test_read_devices_lists_every_device_sorted(amd_devices, host_tree):
    expected = sorted(os.listdir(os.path.join(host_tree(AMD), 'sys/bus/pci/devices')))
    assert list(amd_devices) == expected
    assert len(expected) == 36


def test_read_device_old_kernel_and_override(host_tree_copy, fixture_module):
    machine = fixture_module('sysfs_tree').Machine('two devices')
    path = machine.pci('0000:00:02.0', 0x8086, 0x9a49, 0x030000, driver='i915', reset_method='flr bus', flr=True,
                       boot_vga=True, numa_node=0, driver_override='vfio-pci')
    # A 5.10 kernel: `reset` but no `reset_method`.
    del machine.files[path + '/reset_method']
    root = host_tree_copy(machine.spec())
    device = pci.read_device(HostFS(root), '0000:00:02.0')
    assert device['reset_methods'] is None
    assert device['driver_override'] == 'vfio-pci'
    assert device['numa_node'] == 0
    # Without pci.ids no *_name keys are added.
    assert 'vendor_name' not in device


def test_read_device_missing_attributes(tmp_path):
    # A device directory with nothing in it (a partial recording) reads as unknowns, not as an error.
    (tmp_path / 'sys/bus/pci/devices/0000:00:1f.0').mkdir(parents=True)
    device = pci.read_device(HostFS(str(tmp_path)), '0000:00:1f.0')
    assert (device['vendor'], device['driver'], device['iommu_group'], device['flr']) == (None, None, None, None)
    assert device['vendor_device'] == '????:????'


PCI_IDS = (
    '# comment\n'
    '0001  SafeNet (wrong ID)\n'
    '10de  NVIDIA Corporation\n'
    '\t2520  GA106M [GeForce RTX 3060 Mobile / Max-Q]\n'
    '# a comment inside a vendor block\n'
    '\t\t1043 1e21  ROG Strix G15\n'
    '\t2291  GA106 High Definition Audio Controller\n'
    '1043  ASUSTeK Computer Inc.\n'
    '8086  Intel Corporation\n'
    '\t9a49  TigerLake-LP GT2 [Iris Xe Graphics]\n'
    'C 03  Display controller\n'
    '\t00  VGA compatible controller\n'
    '\t\t00  VGA controller\n'
    '\t02  3D controller\n'
    'C 04  Multimedia controller\n'
)


def test_ids_database_lookups():
    ids = pci_ids.IdsDatabase(PCI_IDS, '/x/pci.ids')
    assert ids.vendor_name('10de') == 'NVIDIA Corporation'
    assert ids.device_name('10de', '2520') == 'GA106M [GeForce RTX 3060 Mobile / Max-Q]'
    assert ids.subsystem_name('10de', '2520', '1043', '1e21') == 'ROG Strix G15'
    # The comment line did not end the NVIDIA block.
    assert ids.device_name('10de', '2291') == 'GA106 High Definition Audio Controller'
    assert ids.device_name('10DE', '2291') == 'GA106 High Definition Audio Controller'
    assert ids.vendor_name('8086') == 'Intel Corporation'
    assert ids.device_name('1043', '0001') is None
    assert ids.vendor_name('abcd') is None
    assert ids.subsystem_name('10de', '2291', '1043', '1e21') is None
    assert ids.class_name('03', '02') == '3D controller'
    assert ids.class_name('03', '80') == 'Display controller'
    assert ids.class_name('04', '03') == 'Multimedia controller'
    assert ids.class_name('0c') is None


def test_ids_database_parses_only_the_vendors_asked_for():
    ids = pci_ids.IdsDatabase(PCI_IDS)
    # Unsorted input, found in one forward pass; the one missing vendor is remembered as missing.
    ids.preload(['8086', '10de', 'ffff'])
    assert sorted(ids._blocks) == ['10de', '8086', 'ffff']
    assert ids._blocks['ffff'] is None
    assert ids.vendor_name('8086') == 'Intel Corporation'


def test_ids_database_empty():
    ids = pci_ids.IdsDatabase('')
    assert not ids
    assert ids.vendor_name('10de') is None
    assert ids.class_name('03', '00') is None


def test_read_ids_prefers_hwdata(tmp_path):
    for path, text in (('usr/share/hwdata/pci.ids', '10de  From hwdata\n'),
                       ('usr/share/misc/pci.ids', '10de  From misc\n')):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    ids = pci_ids.read_ids(HostFS(str(tmp_path)))
    assert (ids.path, ids.vendor_name('10de')) == ('/usr/share/hwdata/pci.ids', 'From hwdata')
    (tmp_path / 'usr/share/hwdata/pci.ids').unlink()
    ids = pci_ids.read_ids(HostFS(str(tmp_path)))
    assert (ids.path, ids.vendor_name('10de')) == ('/usr/share/misc/pci.ids', 'From misc')
    (tmp_path / 'usr/share/misc/pci.ids').unlink()
    assert pci_ids.read_ids(HostFS(str(tmp_path))).path is None


def test_device_sysfs_path(host_tree):
    fs = HostFS(host_tree(AMD))
    assert pci.device_sysfs_path(fs, '0000:04:00.0') == \
        '/sys/devices/pci0000:00/0000:00:01.2/0000:02:00.2/0000:03:08.0/0000:04:00.0'
    assert pci.device_sysfs_path(fs, '0000:ff:00.0') is None
