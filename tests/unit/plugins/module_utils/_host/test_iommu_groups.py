# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import copy
import os

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import NotFound
from ansible_collections.phyllome.os.plugins.module_utils._common.hostfs import HostFS
from ansible_collections.phyllome.os.plugins.module_utils._host import iommu_groups as ig
from ansible_collections.phyllome.os.plugins.module_utils._host import pci
from ansible_collections.phyllome.os.tests.unit.conftest import FIXTURES

AMD = 'amd-desktop-chipset-group'
SERVER = 'server-clean-groups'
LAPTOP = 'intel-laptop-iommu-on'


@pytest.fixture(scope='module')
def reports(host_tree):
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = ig.gather(HostFS(host_tree(name)))
        return cache[name]
    return get


def verdicts(report):
    return dict((g['group'], (g['verdict'], sorted(set(r['code'] for r in g['reasons'])))) for g in report['groups'])


# The expected verdict of every group, machine by machine: each line is what an
# admin who knows the platform would say about that group.
EXPECTED = {
    AMD: {
        0: ('unsafe', ['host_bridge']),                     # dummy host bridge alone
        1: ('viable', ['single_endpoint']),                 # GPP bridge + the Windows NVMe
        2: ('unsafe', ['boot_disk', 'default_route_nic']),  # the chipset: USB, SATA (boot), NIC, Wi-Fi
        3: ('unsafe', ['host_bridge']),
        4: ('unsafe', ['host_bridge']),
        5: ('unsafe', ['boot_vga']),                        # the only GPU
        6: ('unsafe', ['host_bridge']),
        7: ('unsafe', ['host_bridge']),
        8: ('unsafe', ['host_bridge']),
        9: ('viable', ['single_endpoint']),
        10: ('unsafe', ['host_bridge']),
        11: ('needs_whole_group', ['multifunction']),      # PSP, xHCI, HD audio: functions of 0a:00
        12: ('unsafe', ['isa_bridge']),                     # SMBus + LPC
        13: ('unsafe', ['host_bridge']),                    # data fabric
    },
    SERVER: {
        0: ('unsafe', ['host_bridge']),
        1: ('viable', ['single_endpoint']),
        2: ('viable', ['single_endpoint']),
        3: ('unsafe', ['host_bridge']),
        4: ('needs_whole_group', ['multifunction']),       # PCH xHCI + thermal
        5: ('viable', ['single_endpoint']),                 # unused SATA controller
        6: ('unsafe', ['boot_vga']),                        # BMC VGA, the only display (the A2 has no outputs)
        7: ('unsafe', ['isa_bridge']),
        8: ('no_endpoints', ['only_bridges']),
        9: ('unsafe', ['boot_disk']),                       # LVM root on nvme0n1p3
        10: ('no_endpoints', ['only_bridges']),
        11: ('viable', ['single_endpoint']),
        12: ('no_endpoints', ['only_bridges']),
        13: ('unsafe', ['default_route_nic']),
        14: ('viable', ['single_endpoint']),                # the free X710 port
        15: ('no_endpoints', ['only_bridges']),
        16: ('viable', ['single_endpoint']),                # NVIDIA A2
        17: ('no_endpoints', ['only_bridges']),
        18: ('viable', ['single_endpoint']),                # ConnectX-6 port 0: routed, but not the default route
        19: ('viable', ['single_endpoint']),
    },
    LAPTOP: {
        0: ('viable', ['single_endpoint']),                 # iGPU: boot VGA, but the dGPU remains
        1: ('unsafe', ['host_bridge']),
        2: ('needs_whole_group', ['shared_group']),         # dGPU + its audio + data NVMe, no ACS on 00:01.x
        3: ('viable', ['single_endpoint']),
        4: ('unsafe', ['boot_disk']),
        5: ('no_endpoints', ['only_bridges']),
        6: ('no_endpoints', ['only_bridges']),
        7: ('viable', ['single_endpoint']),
        8: ('needs_whole_group', ['multifunction']),       # Thunderbolt xHCI + NHI
        9: ('viable', ['single_endpoint']),
        10: ('unsafe', ['default_route_nic']),              # xHCI + the Wi-Fi that carries the default route
        11: ('needs_whole_group', ['multifunction']),
        12: ('viable', ['single_endpoint']),
        13: ('viable', ['single_endpoint']),
        14: ('unsafe', ['isa_bridge']),                     # LPC + HD audio + SMBus + SPI
    },
}


@pytest.mark.parametrize('machine', sorted(EXPECTED))
def test_verdicts(reports, machine):
    assert verdicts(reports(machine)) == EXPECTED[machine]


def test_unsafe_reasons_name_the_devices(reports):
    chipset = reports(AMD)['groups'][2]
    by_code = dict((r['code'], r) for r in chipset['reasons'])
    assert by_code['boot_disk']['devices'] == ['0000:02:00.1']
    # One reason per device, naming every system mount it carries.
    message = by_code['boot_disk']['message']
    for part in ('sda3 (btrfs) is mounted at /', 'sda2 (ext4) is mounted at /boot', 'sda1 (vfat) is mounted at /boot/efi'):
        assert part in message
    assert by_code['default_route_nic']['devices'] == ['0000:04:00.0']
    assert 'br0 carries the default route' in by_code['default_route_nic']['message']
    assert chipset['endpoints'] == ['0000:02:00.0', '0000:02:00.1', '0000:04:00.0', '0000:05:00.0']
    assert chipset['bridges'] == ['0000:00:01.2', '0000:02:00.2', '0000:03:00.0', '0000:03:08.0', '0000:03:09.0']
    advice = ' '.join(chipset['advice'])
    # What can be done: the xHCI and Wi-Fi are stuck, USB devices can go one by one; no ACS override.
    assert '02:00.0, 05:00.0 cannot be passed' in advice
    assert 'USB devices behind 02:00.0' in advice
    assert 'virtio NIC' in advice and 'virtio disks' in advice
    assert 'acs' not in advice.lower()


def test_whole_group_advice_and_bridges(reports):
    gpu = reports(LAPTOP)['groups'][2]
    assert gpu['endpoints'] == ['0000:01:00.0', '0000:01:00.1', '0000:02:00.0']
    assert gpu['bridges'] == ['0000:00:01.0', '0000:00:01.2']
    assert gpu['advice'][0] == 'Pass 01:00.0, 01:00.1, 02:00.0 together, to the same guest ' \
                               '(phyllome.os.pci_passthrough with whole_group).'
    assert any('move its card' in a for a in gpu['advice'])
    assert gpu['advice'][-1] == 'The bridges 00:01.0, 00:01.2 stay with the host.'
    # A multi-function card alone in its group does not suggest moving it.
    amd_usb = reports(AMD)['groups'][11]
    assert not any('move' in a for a in amd_usb['advice'])


def test_notes(reports):
    amd = reports(AMD)['groups']
    no_reset = [n for n in amd[11]['notes'] if n['code'] == 'no_reset']
    assert no_reset[0]['devices'] == ['0000:0a:00.0', '0000:0a:00.1', '0000:0a:00.3', '0000:0a:00.4']
    # Unsafe groups carry no reset notes: nothing there is to be passed.
    assert not [n for n in amd[0]['notes'] if n['code'] == 'no_reset']
    laptop = reports(LAPTOP)['groups']
    assert [n['code'] for n in laptop[0]['notes']] == ['boot_vga']
    assert 'the host displays on 01:00.0' in laptop[0]['notes'][0]['message']
    assert [n['code'] for n in laptop[4]['notes']] == ['in_use']
    assert '/home' in laptop[4]['notes'][0]['message']
    server = reports(SERVER)['groups']
    in_use = [n['message'] for n in server[18]['notes'] if n['code'] == 'in_use']
    assert in_use == ['cb:00.0 is in use: ens2f0np0 carries routes; the host must let go of it before it can be bound '
                      'to vfio-pci']
    assert [n['message'] for n in server[9]['notes'] if n['code'] == 'in_use'] == [
        '18:00.0 is in use: dm-2 (xfs) is mounted at /var/lib/libvirt/images; dm-1 is active swap; the host must '
        'let go of it before it can be bound to vfio-pci']


def test_host_usage_through_lvm_and_swap(host_tree):
    usage = ig.host_usage(HostFS(host_tree(SERVER)))
    assert sorted(usage) == ['0000:18:00.0', '0000:32:00.0', '0000:cb:00.0']
    uses = [(u['use'], u['message']) for u in usage['0000:18:00.0']]
    assert ('boot_disk', 'dm-0 (xfs) is mounted at /') in uses
    assert ('swap', 'dm-1 is active swap') in uses
    assert ('mounted', 'dm-2 (xfs) is mounted at /var/lib/libvirt/images') in uses


def test_zram_swap_and_virtual_interfaces_have_no_pci_device(host_tree):
    usage = ig.host_usage(HostFS(host_tree(AMD)))
    assert sorted(usage) == ['0000:02:00.1', '0000:04:00.0']
    # virbr0 carries a route but is virtual, with nothing below it.
    assert ig.net_pci_addresses(HostFS(host_tree(AMD)), 'virbr0') == set()


@pytest.mark.parametrize('major_minor, source, expected', [
    ('8:2', '/dev/sda2', 'sda2'),
    # btrfs: anonymous device number, the source tells.
    ('0:32', '/dev/sda3', 'sda3'),
    ('0:26', 'tmpfs', None),
    (None, '/dev/nvme0n1p1', 'nvme0n1p1'),
    (None, '/dev/nvme9n1p1', None),
])
def test_block_device_name(host_tree, major_minor, source, expected):
    assert ig.block_device_name(HostFS(host_tree(AMD)), major_minor, source) == expected


def test_block_device_name_of_a_mapper_device(host_tree):
    fs = HostFS(host_tree(SERVER))
    assert ig.block_device_name(fs, '253:0', '/dev/mapper/fedora-root') == 'dm-0'
    # /proc/mounts has no device numbers; /dev/mapper is not recorded: the dm name tells.
    assert ig.block_device_name(fs, None, '/dev/mapper/fedora-images') == 'dm-2'
    assert ig.block_pci_addresses(fs, 'dm-2') == {'0000:18:00.0'}


def test_read_mounts_unescapes_and_falls_back(tmp_path):
    proc = tmp_path / 'proc'
    (proc / 'self').mkdir(parents=True)
    (proc / 'mounts').write_text('/dev/sdb1 /mnt/my\\040disk ext4 rw 0 0\n')
    fs = HostFS(str(tmp_path))
    assert ig.read_mounts(fs) == [{'major_minor': None, 'mount_point': '/mnt/my disk', 'fstype': 'ext4',
                                   'source': '/dev/sdb1'}]
    (proc / 'self' / 'mountinfo').write_text(
        '36 35 98:0 /mnt1 /mnt/my\\040disk rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n')
    assert ig.read_mounts(fs) == [{'major_minor': '98:0', 'mount_point': '/mnt/my disk', 'fstype': 'ext3',
                                   'source': '/dev/root'}]


IPV6_DEFAULT_ONLY = [
    'fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 '
    '00000100 00000001 00000000 00000001 eth1',
    'ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 '
    '00000100 00000004 00000000 00000001 eth2',
    '00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 '
    '00000400 00000003 00000000 00000003 eth0',
    '00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 '
    'ffffffff 00000001 00000000 00200200 lo',
]


def test_routed_interfaces(tmp_path):
    (tmp_path / 'proc/net').mkdir(parents=True)
    (tmp_path / 'proc/net/route').write_text(
        'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n'
        'eth3\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n'
        # A route that is not up does not count.
        'eth4\t00000000\t0100A8C0\t0002\t0\t0\t0\t00000000\t0\t0\t0\n')
    (tmp_path / 'proc/net/ipv6_route').write_text('\n'.join(IPV6_DEFAULT_ONLY) + '\n')
    # An IPv6-only default route counts; link-local, multicast and the reject route on lo do not.
    assert ig.routed_interfaces(HostFS(str(tmp_path))) == {'eth0': True, 'eth3': False}


def test_net_pci_addresses_through_a_bond_and_a_vlan(host_tree_copy, fixture_module):
    machine = fixture_module('sysfs_tree').Machine('bonded NICs')
    machine.pci('0000:00:1c.0', 0x8086, 0xa190, 0x060400, driver='pcieport')
    machine.pci('0000:01:00.0', 0x8086, 0x1521, 0x020000, parent='0000:00:1c.0', driver='igb')
    machine.pci('0000:01:00.1', 0x8086, 0x1521, 0x020000, parent='0000:00:1c.0', driver='igb')
    machine.netdev('eno1', '0000:01:00.0')
    machine.netdev('eno2', '0000:01:00.1')
    machine.netdev('bond0', lower=('eno1', 'eno2'))
    machine.netdev('bond0.20', lower=('bond0',))
    fs = HostFS(host_tree_copy(machine.spec()))
    assert ig.net_pci_addresses(fs, 'bond0.20') == {'0000:01:00.0', '0000:01:00.1'}
    assert ig.net_pci_addresses(fs, 'eno2') == {'0000:01:00.1'}
    assert ig.net_pci_addresses(fs, 'missing0') == set()


def _without_iommu(spec, firmware_table=True):
    """The same machine with the IOMMU off: no groups, no units, no interrupt remapping."""
    spec = copy.deepcopy(spec)
    spec['symlinks'] = dict((k, v) for k, v in spec['symlinks'].items()
                            if '/iommu_groups' not in k and not k.endswith('/iommu_group')
                            and not k.startswith('/sys/class/iommu') and not k.endswith('/iommu')
                            and '/iommu/' not in k)
    spec['files'] = dict((k, v) for k, v in spec['files'].items()
                         if '/iommu_groups/' not in k and '/iommu/' not in k)
    spec['files']['/proc/interrupts'] = spec['files']['/proc/interrupts'].replace('IR-', '')
    if not firmware_table:
        spec['files'] = dict((k, v) for k, v in spec['files'].items() if '/acpi/tables/' not in k)
    return spec


@pytest.fixture
def amd_spec(host_spec):
    return host_spec(AMD)


@pytest.mark.parametrize('firmware_table, cmdline, cpuinfo, expected', [
    (False, 'ro quiet', 'vendor_id\t: AuthenticAMD\nflags\t\t: svm',
     ['No IOMMU: the firmware announces none (no ACPI IVRS table).',
      'Enable AMD-Vi (labelled IOMMU in most firmware setups) in the firmware setup']),
    (True, 'ro amd_iommu=off', 'vendor_id\t: AuthenticAMD\nflags\t\t: svm',
     ['No IOMMU: the kernel argument amd_iommu=off switches it off', 'Remove the kernel argument amd_iommu=off']),
    (True, 'ro iommu=off', 'vendor_id\t: AuthenticAMD\nflags\t\t: svm',
     ['No IOMMU: the kernel argument iommu=off switches it off', 'Remove the kernel argument iommu=off']),
    # Quotes are the kernel's, not part of the value.
    (True, 'ro amd_iommu="off"', 'vendor_id\t: AuthenticAMD\nflags\t\t: svm',
     ['No IOMMU: the kernel argument amd_iommu=off switches it off', 'Remove the kernel argument amd_iommu=off']),
    # What follows -- goes to init, not to the kernel.
    (True, 'ro intel_iommu=on -- amd_iommu=off', 'vendor_id\t: AuthenticAMD\nflags\t\t: svm',
     ['No IOMMU: the firmware announces one (ACPI IVRS) but the kernel formed no IOMMU groups.',
      'Until the kernel forms IOMMU groups no device can be passed']),
    (False, 'ro', 'vendor_id\t: GenuineIntel\nflags\t\t: vmx',
     ['No IOMMU: the firmware announces none (no ACPI DMAR table).', 'Enable VT-d in the firmware setup',
      'Add the kernel argument intel_iommu=on']),
    (False, 'ro', 'vendor_id\t: GenuineIntel\nflags\t\t: vmx hypervisor',
     ['No IOMMU: this host is a virtual machine without a virtual IOMMU', 'Its hypervisor must give this host',
      'Add the kernel argument intel_iommu=on']),
])
def test_iommu_off(host_tree_copy, amd_spec, firmware_table, cmdline, cpuinfo, expected):
    spec = _without_iommu(amd_spec, firmware_table)
    spec['files']['/proc/cmdline'] = cmdline
    spec['files']['/proc/cpuinfo'] = cpuinfo
    report = ig.gather(HostFS(host_tree_copy(spec)))
    assert report['iommu']['active'] is False
    assert report['groups'] == []
    assert len(report['advice']) == len(expected)
    for advice, words in zip(report['advice'], expected):
        assert advice.startswith(words)
    # Devices, their uses and USB controllers are still listed.
    assert report['pci_devices']['0000:02:00.1']['iommu_group'] is None
    assert report['pci_devices']['0000:02:00.1']['in_use']
    assert [c['verdict'] for c in report['usb_controllers']] == [None, None]


def test_recorded_desktop_with_iommu_off_in_the_firmware(reports):
    report = reports('amd-desktop-iommu-off')
    assert (report['iommu']['active'], report['groups']) == (False, [])
    assert report['advice'] == ['No IOMMU: the firmware announces none (no ACPI IVRS table).',
                                'Enable AMD-Vi (labelled IOMMU in most firmware setups) in the firmware setup, then reboot.']


@pytest.mark.parametrize('name', [AMD, SERVER, LAPTOP])
def test_a_working_iommu_needs_no_host_advice(reports, name):
    assert reports(name)['iommu']['active'] is True
    assert reports(name)['advice'] == []


def test_interrupt_remapping_off(host_tree_copy, amd_spec):
    spec = amd_spec
    spec['files']['/proc/interrupts'] = spec['files']['/proc/interrupts'].replace('IR-', '')
    report = ig.gather(HostFS(host_tree_copy(spec)))
    assert report['iommu']['interrupt_remapping'] is False
    assert report['advice'] == [
        'Interrupt remapping is off: VFIO refuses to attach a group to a guest unless '
        'vfio_iommu_type1.allow_unsafe_interrupts=1, which lets a guest forge interrupts.',
        'Enable interrupt remapping (x2APIC in the firmware setup; no intremap=off) rather than allowing unsafe '
        'interrupts.']


def test_vfio_bound_note_and_shared_group_with_nothing_needed(host_tree_copy, fixture_module):
    machine = fixture_module('sysfs_tree').Machine('two cards behind one bridge without ACS')
    machine.pci('0000:00:1c.0', 0x8086, 0xa190, 0x060400, driver='pcieport', group=3)
    machine.pci('0000:00:1c.4', 0x8086, 0xa194, 0x060400, driver='pcieport', group=3)
    machine.pci('0000:01:00.0', 0x1b21, 0x2142, 0x0c0330, parent='0000:00:1c.0', driver='vfio-pci', group=3,
                reset_method='bus', driver_override='vfio-pci')
    machine.pci('0000:02:00.0', 0x1102, 0x0012, 0x040300, parent='0000:00:1c.4', group=3)
    machine.group_types('DMA')
    fs = HostFS(host_tree_copy(machine.spec()))
    devices = pci.read_devices(fs)
    [group] = ig.assess(fs, devices)
    assert (group['verdict'], group['type']) == ('needs_whole_group', 'DMA')
    assert group['reasons'][0]['code'] == 'shared_group'
    assert [(n['code'], n['devices']) for n in group['notes']] == [
        ('no_reset', ['0000:02:00.0']), ('vfio_bound', ['0000:01:00.0'])]


def test_gather_on_a_wrong_root(tmp_path):
    with pytest.raises(NotFound, match='no sys directory'):
        ig.gather(HostFS(str(tmp_path / 'nothing')))


@pytest.mark.parametrize('name', ['amd-desktop-chipset-group', 'server-clean-groups'])
def test_generated_trees_match_their_generator_and_say_so(fixture_module, name):
    # The YAML in tests/fixtures/hosts/ is sysfs_tree.py's output, word for
    # word; edit the generator, then rewrite it. It says it was generated:
    # "recorded" is for trees that came from a real machine.
    sysfs_tree = fixture_module('sysfs_tree')
    with open(os.path.join(FIXTURES, 'hosts', name + '.yml')) as f:
        text = f.read()
    assert text == sysfs_tree.dump(sysfs_tree.MACHINES[name]().spec())
    header = text.split('\ndescription:')[0]
    assert header.startswith('# Host tree generated by tests/fixtures/sysfs_tree.py')
    assert 'recorded' not in header.lower()
