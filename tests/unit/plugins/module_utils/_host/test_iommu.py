# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.hostfs import HostFS
from ansible_collections.phyllome.os.plugins.module_utils._host import iommu
from ansible_collections.phyllome.os.plugins.module_utils._host.cmdline import kernel_args


def test_intel_laptop_with_vt_d_on(host_tree):
    found = iommu.detect_iommu(HostFS(host_tree('intel-laptop-iommu-on')))
    assert found['active'] is True
    assert found['kind'] == 'intel'
    assert found['label'] == 'Intel VT-d (DMAR)'
    assert found['group_count'] == 15
    assert found['firmware_table'] == 'DMAR'
    assert found['interrupt_remapping'] is True
    assert found['passthrough'] is True
    assert found['kernel_args'] == ['intel_iommu=on', 'iommu=pt', 'rd.driver.pre=vfio-pci']
    units = {u['name']: u for u in found['units']}
    assert sorted(units) == ['dmar0', 'dmar1']
    # dmar0 is the graphics unit (the iGPU only), dmar1 covers everything else.
    assert units['dmar0']['devices'] == 1
    assert units['dmar1']['devices'] == 26
    assert units['dmar0']['version'] == '4:0'
    assert units['dmar1']['address'] == 'fed91000'
    assert units['dmar1']['ecap'] == 'f050da'
    assert units['dmar0']['interrupt_remapping_capable'] is True


def test_amd_desktop_with_the_iommu_off_in_firmware(host_tree):
    found = iommu.detect_iommu(HostFS(host_tree('amd-desktop-iommu-off')))
    assert found == {
        'active': False,
        'kind': 'none',
        'label': 'none',
        'units': [],
        'group_count': 0,
        # no IVRS: the firmware setup has the IOMMU off
        'firmware_table': None,
        'interrupt_remapping': False,
        'passthrough': True,
        'kernel_args': ['iommu=pt', 'rd.driver.pre=vfio-pci'],
    }


def test_vt_d_in_firmware_but_not_enabled_by_the_kernel(host_tree):
    found = iommu.detect_iommu(HostFS(host_tree('no-virt-flags')))
    assert (found['active'], found['kind'], found['firmware_table']) == (False, 'none', 'DMAR')
    # no /proc/interrupts in that recording
    assert found['interrupt_remapping'] is None
    assert found['kernel_args'] == []
    assert found['passthrough'] is False


def test_the_command_line_is_read_from_the_tree_unless_given(host_tree):
    fs = HostFS(host_tree('intel-laptop-iommu-on'))
    given = iommu.detect_iommu(fs, kernel_args('ro quiet intel_iommu=off'))
    assert given['kernel_args'] == ['intel_iommu=off']
    assert given['passthrough'] is False


def _tree(host_tree_copy, files=None, symlinks=None, dirs=None):
    return HostFS(host_tree_copy({'files': files or {}, 'symlinks': symlinks or {}, 'dirs': dirs or []}))


def test_amd_vi_units(host_tree_copy):
    fs = _tree(host_tree_copy, files={
        '/sys/devices/pci0000:00/0000:00:00.2/iommu/ivhd0/amd-iommu/cap': '0x00190000',
        '/sys/devices/pci0000:00/0000:00:00.2/iommu/ivhd0/amd-iommu/features': '0x0000000000000000',
        '/sys/firmware/acpi/tables/IVRS': '',
    }, symlinks={
        '/sys/class/iommu/ivhd0': '../../devices/pci0000:00/0000:00:00.2/iommu/ivhd0',
        '/sys/kernel/iommu_groups/0/devices/0000:00:01.0': '../../../../devices/pci0000:00/0000:00:01.0',
        '/sys/kernel/iommu_groups/1/devices/0000:00:01.1': '../../../../devices/pci0000:00/0000:00:01.1',
    }, dirs=['/sys/devices/pci0000:00/0000:00:00.2/iommu/ivhd0/devices'])
    found = iommu.detect_iommu(fs, [])
    assert (found['active'], found['kind'], found['label'], found['group_count']) == (True, 'amd', 'AMD-Vi', 2)
    assert found['firmware_table'] == 'IVRS'
    assert found['units'] == [{'name': 'ivhd0', 'kind': 'amd', 'devices': 0, 'cap': '0x00190000',
                               'features': '0x0000000000000000'}]


def test_virtio_iommu_in_a_guest(host_tree_copy):
    fs = _tree(host_tree_copy, symlinks={
        '/sys/class/iommu/virtio0': '../../devices/pci0000:00/0000:00:03.0/virtio0/iommu/virtio0',
        '/sys/kernel/iommu_groups/0/devices/0000:00:04.0': '../../../../devices/pci0000:00/0000:00:04.0',
    }, dirs=['/sys/devices/pci0000:00/0000:00:03.0/virtio0/iommu/virtio0/devices'])
    found = iommu.detect_iommu(fs, [])
    assert (found['kind'], found['label'], found['active']) == ('virtio', 'virtio-iommu', True)


def test_groups_without_a_registered_unit_still_count(host_tree_copy):
    fs = _tree(host_tree_copy, dirs=['/sys/kernel/iommu_groups/0/devices', '/sys/kernel/iommu_groups/1/devices'])
    found = iommu.detect_iommu(fs, [])
    assert (found['active'], found['kind'], found['group_count']) == (True, 'other', 2)


@pytest.mark.parametrize('name, target, kind', [
    ('dmar3', '../../devices/virtual/iommu/dmar3', 'intel'),
    ('ivhd1', '../../devices/pci0000:40/0000:40:00.2/iommu/ivhd1', 'amd'),
    ('virtio1', None, 'virtio'),
    ('viommu', '../../devices/pci0000:00/0000:00:02.0/virtio2/iommu/viommu', 'virtio'),
    ('smmu3.0x0000000009050000', '../../devices/platform/9050000.smmuv3/iommu/smmu3.0x0000000009050000', 'other'),
])
def test_unit_kind(name, target, kind):
    assert iommu.unit_kind(name, target) == kind


@pytest.mark.parametrize('lines, expected', [
    (['  24:  1  0  IR-IO-APIC   5-edge  ACPI:Ged'], True),
    (['  28:  0  0  IR-PCI-MSIX-0000:00:14.3   0-edge  iwlwifi'], True),
    (['  24:  1  0  IO-APIC   5-edge  ACPI:Ged', '  28:  0  0 PCI-MSIX-0000:00:01.0   0-edge  virtio0-config'], False),
    (['  30:  0  0 PCI-MSI-0000:00:1f.2   0-edge  ahci'], False),
    (['NMI:  0  0  Non-maskable interrupts'], None),
    ([], None),
])
def test_interrupt_remapping_from_irq_chips(host_tree_copy, lines, expected):
    files = {'/proc/interrupts': '\n'.join(['           CPU0       CPU1'] + lines)} if lines else {}
    assert iommu.interrupt_remapping_enabled(_tree(host_tree_copy, files=files)) is expected


@pytest.mark.parametrize('cmdline, passthrough', [
    ('iommu=pt', True),
    ('intel_iommu=on,sm_on iommu=pt', True),
    ('iommu.passthrough=1', True),
    ('iommu.passthrough=on', True),
    ('iommu.passthrough=0', False),
    ('iommu.passthrough=1 iommu.passthrough=0', False),
    ('iommu=nopt', False),
    ('ro quiet', False),
    ('-- iommu=pt', False),
])
def test_requested_passthrough(cmdline, passthrough):
    assert iommu.requested_passthrough(kernel_args(cmdline)) is passthrough


@pytest.mark.parametrize('cmdline, kind, off, on', [
    ('intel_iommu=off', 'intel', 'intel_iommu=off', None),
    ('intel_iommu=on,igfx_off', 'intel', None, 'intel_iommu=on'),
    ('intel_iommu=on', 'amd', None, None),
    ('amd_iommu=off', 'amd', 'amd_iommu=off', None),
    ('amd_iommu=off', 'intel', None, None),
    ('iommu=off', 'amd', 'iommu=off', None),
    ('ro quiet', 'intel', None, None),
])
def test_disabled_by_and_enabled_by(cmdline, kind, off, on):
    args = kernel_args(cmdline)
    assert iommu.disabled_by(args, kind) == off
    assert iommu.enabled_by(args, kind) == on


def test_kernel_args_match_dashes_and_underscores_alike():
    args = kernel_args('ro vfio-pci.ids=10de:25a0,10de:2291 vfio_iommu_type1.allow_unsafe_interrupts=1 quiet rd.driver.pre=vfio-pci')
    assert iommu.iommu_kernel_args(args) == [
        'vfio-pci.ids=10de:25a0,10de:2291', 'vfio_iommu_type1.allow_unsafe_interrupts=1', 'rd.driver.pre=vfio-pci']


def found(**changes):
    facts = {'active': False, 'kind': 'none', 'firmware_table': None, 'interrupt_remapping': None}
    facts.update(changes)
    return facts


def problem(cause, kind, argument=None, missing_argument=None):
    return {'cause': cause, 'kind': kind, 'argument': argument, 'missing_argument': missing_argument}


@pytest.mark.parametrize('facts, cmdline, vendor, hypervisor, expected', [
    (found(active=True, kind='intel', interrupt_remapping=True), 'intel_iommu=on', 'GenuineIntel', False, None),
    (found(active=True, kind='amd', interrupt_remapping=None), '', 'AuthenticAMD', False, None),
    (found(active=True, kind='intel', interrupt_remapping=False), 'intel_iommu=on intremap=off', 'GenuineIntel', False,
     problem('interrupt_remapping_off', 'intel')),
    # an argument that switches it off names itself, whatever the firmware says; Intel's also needs intel_iommu=on
    (found(firmware_table='DMAR'), 'intel_iommu=off', 'GenuineIntel', False,
     problem('disabled_by_argument', 'intel', 'intel_iommu=off', 'intel_iommu=on')),
    (found(), 'iommu=off', 'AuthenticAMD', True, problem('disabled_by_argument', 'amd', 'iommu=off')),
    (found(), '', 'AuthenticAMD', True, problem('virtual_machine', 'amd')),
    (found(), '', 'GenuineIntel', True, problem('virtual_machine', 'intel', None, 'intel_iommu=on')),
    (found(), 'iommu=pt', 'AuthenticAMD', False, problem('firmware', 'amd')),
    (found(), 'iommu=pt', 'HygonGenuine', False, problem('firmware', 'amd')),
    (found(), 'intel_iommu=on', 'GenuineIntel', False, problem('firmware', 'intel')),
    (found(), 'ro', 'GenuineIntel', False, problem('firmware', 'intel', None, 'intel_iommu=on')),
    (found(), 'ro', None, False, problem('firmware', None)),
    (found(firmware_table='DMAR'), 'ro quiet', 'GenuineIntel', False, problem('not_enabled', 'intel', None, 'intel_iommu=on')),
    # the firmware table tells the kind even when the vendor is unknown
    (found(firmware_table='IVRS'), '', None, False, problem('no_groups', 'amd')),
    (found(firmware_table='DMAR'), 'intel_iommu=on', 'GenuineIntel', False, problem('no_groups', 'intel')),
])
def test_diagnose(facts, cmdline, vendor, hypervisor, expected):
    assert iommu.diagnose(facts, kernel_args(cmdline), vendor, hypervisor) == expected


def test_diagnose_the_recorded_machines(host_tree):
    laptop = HostFS(host_tree('intel-laptop-iommu-on'))
    assert iommu.diagnose(iommu.detect_iommu(laptop), [], 'GenuineIntel') is None
    desktop = HostFS(host_tree('amd-desktop-iommu-off'))
    assert iommu.diagnose(iommu.detect_iommu(desktop), kernel_args(desktop.read_text('/proc/cmdline')),
                          'AuthenticAMD') == problem('firmware', 'amd')


@pytest.mark.parametrize('facts, cause, reason, advice', [
    (found(active=True, kind='amd', interrupt_remapping=False), problem('interrupt_remapping_off', 'amd'),
     'interrupt remapping is off: VFIO refuses to attach a group to a guest unless '
     'vfio_iommu_type1.allow_unsafe_interrupts=1, which lets a guest forge interrupts',
     ['Enable interrupt remapping (x2APIC in the firmware setup; no intremap=off) rather than allowing unsafe interrupts.']),
    (found(firmware_table='DMAR'), problem('disabled_by_argument', 'intel', 'intel_iommu=off', 'intel_iommu=on'),
     'no IOMMU: the kernel argument intel_iommu=off switches it off, so no device can be passed',
     ['Remove the kernel argument intel_iommu=off (phyllome.os.kernel_cmdline), then reboot.',
      'Add the kernel argument intel_iommu=on (Phyllome OS hosts use intel_iommu=on iommu=pt) with '
      'phyllome.os.kernel_cmdline, then reboot.']),
    (found(), problem('virtual_machine', 'amd'),
     'no IOMMU: this host is a virtual machine without a virtual IOMMU, so no device can be passed',
     ['Its hypervisor must give this host a virtual IOMMU (an intel-iommu or virtio-iommu device) before it can pass '
      'devices on.']),
    (found(), problem('firmware', 'amd'), 'no IOMMU: the firmware announces none (no ACPI IVRS table)',
     ['Enable AMD-Vi (labelled IOMMU in most firmware setups) in the firmware setup, then reboot.']),
    (found(), problem('firmware', 'intel'), 'no IOMMU: the firmware announces none (no ACPI DMAR table)',
     ['Enable VT-d in the firmware setup, then reboot.']),
    # an unknown CPU vendor: neither table can be named
    (found(), problem('firmware', None), 'no IOMMU: the firmware announces none (no ACPI DMAR or IVRS table)',
     ['Enable the IOMMU in the firmware setup, then reboot.']),
    (found(firmware_table='DMAR'), problem('not_enabled', 'intel', None, 'intel_iommu=on'),
     'no IOMMU: the firmware provides VT-d (ACPI DMAR) but the kernel did not enable it',
     ['Add the kernel argument intel_iommu=on (Phyllome OS hosts use intel_iommu=on iommu=pt) with '
      'phyllome.os.kernel_cmdline, then reboot.']),
    (found(firmware_table='IVRS'), problem('no_groups', 'amd'),
     'no IOMMU: the firmware announces one (ACPI IVRS) but the kernel formed no IOMMU groups',
     ['Until the kernel forms IOMMU groups no device can be passed: its log (dmesg) says why the IOMMU driver did '
      'not start.']),
])
def test_explain(facts, cause, reason, advice):
    assert iommu.explain(cause, facts) == {'reason': reason, 'advice': advice}


def test_every_cause_has_words_of_its_own():
    reasons = set(iommu.explain(problem(cause, 'amd'), found(firmware_table='IVRS'))['reason'] for cause in iommu.CAUSES)
    assert len(reasons) == len(iommu.CAUSES)
    with pytest.raises(ValueError, match='unknown IOMMU problem'):
        iommu.explain(problem('sunspots', 'amd'), found())


@pytest.mark.parametrize('found, cpu_vendor, kind, args', [
    # A registered unit tells, then the firmware's table, then the CPU vendor.
    ({'kind': 'intel', 'firmware_table': 'DMAR'}, None, 'intel', ['intel_iommu=on', 'iommu=pt']),
    ({'kind': 'none', 'firmware_table': 'DMAR'}, 'AuthenticAMD', 'intel', ['intel_iommu=on', 'iommu=pt']),
    ({'kind': 'amd', 'firmware_table': 'IVRS'}, None, 'amd', ['iommu=pt']),
    ({'kind': 'virtio', 'firmware_table': None}, None, None, ['iommu=pt']),
    ({'kind': 'none', 'firmware_table': None}, 'GenuineIntel', 'intel', ['intel_iommu=on', 'iommu=pt']),
])
def test_one_rule_for_intel_iommu_on(found, cpu_vendor, kind, args):
    # diagnose() (host_info, iommu_info) and pci_passthrough's iommu_args both ask these.
    assert iommu.platform_kind(found, cpu_vendor) == kind
    assert iommu.recommended_kernel_args(found, cpu_vendor) == args
