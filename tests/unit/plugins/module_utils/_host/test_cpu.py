# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.hostfs import HostFS
from ansible_collections.phyllome.os.plugins.module_utils._host import cpu


def processor(number, stepping=1):
    """One logical CPU of a KVM guest on an EPYC host, in the kernel's format (flags trimmed)."""
    return (
        'processor\t: %d\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n'
        'model name\t: AMD EPYC 7713 64-Core Processor\nstepping\t: %d\n'
        'flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep hypervisor lahf_lm cmp_legacy svm cr8_legacy abm\n'
        'bugs\t\t: sysret_ss_attrs null_seg spectre_v1 spectre_v2\n' % (number, stepping))


GUEST_CPUINFO = '\n'.join(processor(n) for n in range(2))


def test_parse_cpuinfo_of_a_guest():
    assert cpu.parse_cpuinfo(GUEST_CPUINFO) == {
        'vendor': 'AuthenticAMD', 'model_name': 'AMD EPYC 7713 64-Core Processor', 'family': 25, 'model': 1,
        'stepping': 1, 'logical_cpus': 2, 'virtualization_flags': ['svm'], 'hypervisor': True}


def test_parse_cpuinfo_of_nothing():
    assert cpu.parse_cpuinfo('') == {'vendor': None, 'model_name': None, 'family': None, 'model': None, 'stepping': None,
                                     'logical_cpus': 0, 'virtualization_flags': [], 'hypervisor': False}


def test_only_the_first_processor_gives_the_fields():
    # The first block speaks for the CPU; every block counts as a logical CPU.
    found = cpu.parse_cpuinfo('\n'.join([processor(0, stepping=2), processor(1, stepping=7), processor(2)]))
    assert (found['stepping'], found['logical_cpus']) == (2, 3)


@pytest.mark.parametrize('recorded, vendor, flags, hypervisor', [
    ('intel-laptop-iommu-on', 'GenuineIntel', ['vmx'], False),
    ('amd-desktop-iommu-off', 'AuthenticAMD', ['svm'], False),
    # the firmware locked VMX off: the kernel hides the flag
    ('no-virt-flags', 'GenuineIntel', [], False),
])
def test_read_cpu_of_the_recorded_machines(host_tree, recorded, vendor, flags, hypervisor):
    found = cpu.read_cpu(HostFS(host_tree(recorded)))
    assert (found['vendor'], found['virtualization_flags'], found['hypervisor']) == (vendor, flags, hypervisor)


def test_read_cpu_of_a_tree_without_cpuinfo(tmp_path):
    assert cpu.read_cpu(HostFS(str(tmp_path)))['vendor'] is None


@pytest.mark.parametrize('vendor, kind, virtualization', [
    ('GenuineIntel', 'intel', {'flag': 'vmx', 'extension': 'Intel VT-x', 'kvm_module': 'kvm_intel'}),
    ('AuthenticAMD', 'amd', {'flag': 'svm', 'extension': 'AMD-V', 'kvm_module': 'kvm_amd'}),
    ('HygonGenuine', 'amd', {'flag': 'svm', 'extension': 'AMD-V', 'kvm_module': 'kvm_amd'}),
    ('CentaurHauls', None, None),
    (None, None, None),
])
def test_vendor_kind_and_virtualization(vendor, kind, virtualization):
    assert cpu.vendor_kind(vendor) == kind
    assert cpu.virtualization(vendor) == virtualization


@pytest.mark.parametrize('flag, extension', [('vmx', 'Intel VT-x'), ('svm', 'AMD-V'), ('hypervisor', None)])
def test_extension_of_flag(flag, extension):
    assert cpu.extension_of_flag(flag) == extension
