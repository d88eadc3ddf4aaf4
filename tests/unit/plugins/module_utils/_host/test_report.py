# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput, LibvirtFailure, MissingLibrary
from ansible_collections.phyllome.os.plugins.module_utils._common.hostfs import HostFS
from ansible_collections.phyllome.os.plugins.module_utils._host import iommu_groups
from ansible_collections.phyllome.os.plugins.module_utils._host import report as hr
from ansible_collections.phyllome.os.plugins.module_utils._host import report_facts
from ansible_collections.phyllome.os.plugins.module_utils._host.cmdline import kernel_args

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason='recorded trees need root to create /dev/kvm with its owner')

# `virsh capabilities` of this project's lab (libvirt 9.0, QEMU 7.2 on Debian 12), trimmed to
# the host's arch and the x86_64 guest with a few of its machines.
CAPABILITIES = """<capabilities>
  <host>
    <uuid>ac4efa12-f993-4ab7-9b28-440b9e5a5107</uuid>
    <cpu>
      <arch>x86_64</arch>
      <model>kvm64</model>
      <vendor>AMD</vendor>
    </cpu>
  </host>
  <guest>
    <os_type>hvm</os_type>
    <arch name='i686'>
      <wordsize>32</wordsize>
      <emulator>/usr/bin/qemu-system-i386</emulator>
      <machine maxCpus='255'>pc-i440fx-7.2</machine>
      <domain type='qemu'/>
    </arch>
  </guest>
  <guest>
    <os_type>hvm</os_type>
    <arch name='x86_64'>
      <wordsize>64</wordsize>
      <emulator>/usr/bin/qemu-system-x86_64</emulator>
      <machine maxCpus='255'>pc-i440fx-7.2</machine>
      <machine canonical='pc-i440fx-7.2' maxCpus='255'>pc</machine>
      <machine maxCpus='288'>pc-q35-7.2</machine>
      <machine canonical='pc-q35-7.2' maxCpus='288'>q35</machine>
      <machine maxCpus='288'>microvm</machine>
      <domain type='qemu'/>
      <domain type='kvm'/>
    </arch>
    <features>
      <acpi default='on' toggle='yes'/>
    </features>
  </guest>
</capabilities>
"""


def verdicts(report):
    return {c['name']: c['verdict'] for c in report['checks']}


def check(report, name):
    return next(c for c in report['checks'] if c['name'] == name)


# ---------------------------------------------------------------- the recorded machines

@needs_root
@pytest.mark.parametrize('tree, expected, overall', [
    ('intel-laptop-iommu-on', {
        'cpu': 'pass', 'kvm_modules': 'pass', 'kvm_device': 'pass', 'nested': 'pass', 'iommu': 'pass',
        'hugepages': 'pass', 'libvirt': 'skip', 'firmware': 'pass', 'swtpm': 'pass'}, 'pass'),
    ('amd-desktop-iommu-off', {
        'cpu': 'pass', 'kvm_modules': 'pass', 'kvm_device': 'pass', 'nested': 'pass', 'iommu': 'warn',
        'hugepages': 'pass', 'libvirt': 'skip', 'firmware': 'pass', 'swtpm': 'pass'}, 'warn'),
    ('no-virt-flags', {
        'cpu': 'fail', 'kvm_modules': 'fail', 'kvm_device': 'fail', 'nested': 'skip', 'iommu': 'warn',
        'hugepages': 'pass', 'libvirt': 'skip', 'firmware': 'fail', 'swtpm': 'fail'}, 'fail'),
])
def test_recorded_machines(host_tree, tree, expected, overall):
    report = hr.build_report(HostFS(host_tree(tree)), 'qemu:///system', query_libvirt=False)
    assert [c['name'] for c in report['checks']] == list(expected)
    assert verdicts(report) == expected
    assert report['verdict'] == overall
    # failures first, then warnings, each naming its check
    assert report['summary'] == ['%s %s: %s' % (c['verdict'], c['name'], c['reason'])
                                 for level in ('fail', 'warn') for c in report['checks'] if c['verdict'] == level]
    json.dumps(report)  # module results must be JSON


@needs_root
def test_intel_laptop_facts(host_tree):
    host = hr.build_report(HostFS(host_tree('intel-laptop-iommu-on')), 'qemu:///system', False)['host']
    assert host['cpu'] == {
        'vendor': 'GenuineIntel', 'model_name': '11th Gen Intel(R) Core(TM) i7-11850H @ 2.50GHz', 'family': 6,
        'model': 141, 'stepping': 1, 'logical_cpus': 16, 'virtualization_flags': ['vmx'], 'hypervisor': False}
    assert host['kvm']['modules'] == ['kvm', 'kvm_intel']
    assert host['kvm']['nested'] == {'module': 'kvm_intel', 'value': 'Y', 'enabled': True}
    device = host['kvm']['device']
    assert (device['major'], device['minor'], device['mode'], device['permissions']) == (10, 232, '0666', 'crw-rw-rw-')
    assert (device['owner'], device['group'], device['usable_by_qemu_user']) == ('root', 'kvm', True)
    assert host['kvm']['qemu_user'] == {'name': 'qemu', 'found': True, 'source': 'default', 'uid': 107, 'gid': 107,
                                        'gids': [36, 107], 'groups': ['kvm', 'qemu']}
    assert host['cmdline']['args'][-3:] == ['intel_iommu=on', 'iommu=pt', 'rd.driver.pre=vfio-pci']
    assert host['cmdline']['raw'].startswith('BOOT_IMAGE=(hd0,gpt2)/vmlinuz-6.11.8-200.fc40.x86_64 ')
    assert host['swtpm'] == {'swtpm': '/usr/bin/swtpm', 'swtpm_setup': '/usr/bin/swtpm_setup'}
    assert host['libvirt'] == {'checked': False, 'uri': 'qemu:///system'}
    enrolled = next(d for d in host['firmware']['descriptors'] if d['name'] == '30-edk2-ovmf-4m-qcow2-x64-sb-enrolled.json')
    assert enrolled == {
        'name': '30-edk2-ovmf-4m-qcow2-x64-sb-enrolled.json',
        'path': '/usr/share/qemu/firmware/30-edk2-ovmf-4m-qcow2-x64-sb-enrolled.json',
        'description': 'OVMF with SB+SMM, SB enabled, MS certs enrolled',
        'interface_types': ['uefi'], 'device': 'flash', 'mode': 'split',
        'executable': '/usr/share/edk2/ovmf/OVMF_CODE_4M.secboot.qcow2', 'format': 'qcow2',
        'nvram_template': '/usr/share/edk2/ovmf/OVMF_VARS_4M.secboot.qcow2',
        'targets': [{'architecture': 'x86_64', 'machines': ['pc-q35-*']}],
        'features': ['acpi-s3', 'enrolled-keys', 'requires-smm', 'secure-boot', 'verbose-dynamic'],
        'secure_boot': True, 'enrolled_keys': True, 'requires_smm': True, 'x86_64_q35': True,
        'executable_present': True,
    }
    firmware = check(hr.build_report(HostFS(host_tree('intel-laptop-iommu-on')), 'x', False), 'firmware')['facts']
    # SEV/TDX builds are stateless and microvm's sits in memory: not for a VM with its own NVRAM.
    assert firmware['uefi'] == [
        '30-edk2-ovmf-4m-qcow2-x64-sb-enrolled.json', '31-edk2-ovmf-2m-raw-x64-sb-enrolled.json',
        '40-edk2-ovmf-4m-qcow2-x64-sb.json', '41-edk2-ovmf-2m-raw-x64-sb.json',
        '50-edk2-ovmf-4m-qcow2-x64-nosb.json', '51-edk2-ovmf-2m-raw-x64-nosb.json']
    assert firmware['secure_boot'] == ['30-edk2-ovmf-4m-qcow2-x64-sb-enrolled.json', '31-edk2-ovmf-2m-raw-x64-sb-enrolled.json']


@needs_root
def test_amd_desktop_facts(host_tree):
    report = hr.build_report(HostFS(host_tree('amd-desktop-iommu-off')), 'qemu:///system', False)
    host = report['host']
    assert host['cpu']['logical_cpus'] == 12 and host['cpu']['virtualization_flags'] == ['svm']
    assert host['kvm']['nested'] == {'module': 'kvm_amd', 'value': '1', 'enabled': True}
    assert host['hugepages']['requested'] == [{'size_kb': 1048576, 'count': 16}]
    assert host['hugepages']['sizes'] == [{'size_kb': 2048, 'total': 0, 'free': 0},
                                          {'size_kb': 1048576, 'total': 16, 'free': 16}]
    assert host['hugepages']['default_size_kb'] == 1048576
    assert check(report, 'hugepages')['reason'] == 'hugepages reserved: 16 x 1048576 kB (16 free)'
    assert check(report, 'iommu')['reason'] == (
        'no IOMMU: the firmware announces none (no ACPI IVRS table). '
        'Enable AMD-Vi (labelled IOMMU in most firmware setups) in the firmware setup, then reboot.')


@needs_root
def test_no_virt_flags_reasons(host_tree):
    report = hr.build_report(HostFS(host_tree('no-virt-flags')), 'qemu:///system', False)
    assert 'enable Intel VT-x in the firmware setup' in check(report, 'cpu')['reason']
    assert check(report, 'kvm_device')['facts']['device'] == {'path': '/dev/kvm', 'present': False, 'char_device': False}
    assert check(report, 'iommu')['reason'] == (
        'no IOMMU: the firmware provides VT-d (ACPI DMAR) but the kernel did not enable it. Add the kernel argument '
        'intel_iommu=on (Phyllome OS hosts use intel_iommu=on iommu=pt) with phyllome.os.kernel_cmdline, then reboot.')
    assert report['host']['kvm']['qemu_user'] == {'name': None, 'found': False, 'source': 'default',
                                                  'candidates': ['qemu', 'libvirt-qemu']}
    assert report['host']['firmware'] == {'descriptors': []}


def test_root_must_be_a_directory(tmp_path):
    with pytest.raises(InvalidInput, match='is not a directory'):
        hr.build_report(HostFS(str(tmp_path / 'missing')), 'qemu:///system', False)


# ---------------------------------------------------------------- /dev/kvm and the qemu user

@needs_root
@pytest.mark.parametrize('mode, gid, verdict', [
    # This project's own machine ships /dev/kvm root:root 0600.
    ('0600', 0, 'fail'),
    ('0660', 0, 'fail'),
    ('0660', 36, 'pass'),
    ('0666', 0, 'pass'),
    ('0606', 36, 'fail'),
])
def test_kvm_device_against_the_qemu_user(host_spec, host_tree_copy, mode, gid, verdict):
    spec = host_spec('intel-laptop-iommu-on')
    spec['char_devices']['/dev/kvm'].update(mode=mode, gid=gid)
    found = check(hr.build_report(HostFS(host_tree_copy(spec)), 'qemu:///system', False), 'kvm_device')
    assert found['verdict'] == verdict
    if verdict == 'fail':
        assert '40-110 s' in found['reason'] and 'the qemu user qemu (groups kvm, qemu) cannot open it' in found['reason']


@needs_root
def test_kvm_device_that_is_no_character_device(host_spec, host_tree_copy):
    spec = host_spec('intel-laptop-iommu-on')
    del spec['char_devices']['/dev/kvm']
    spec['files']['/dev/kvm'] = ''
    found = check(hr.build_report(HostFS(host_tree_copy(spec)), 'qemu:///system', False), 'kvm_device')
    assert found['verdict'] == 'fail'
    assert found['reason'] == '/dev/kvm is not a character device (-rw-r--r--)'


@needs_root
def test_kvm_device_without_a_qemu_user(host_spec, host_tree_copy):
    spec = host_spec('intel-laptop-iommu-on')
    spec['files']['/etc/passwd'] = 'root:x:0:0:Super User:/root:/bin/bash\n'
    found = check(hr.build_report(HostFS(host_tree_copy(spec)), 'qemu:///system', False), 'kvm_device')
    assert found['verdict'] == 'warn'
    assert 'the user QEMU runs as (qemu, libvirt-qemu) is not in /etc/passwd' in found['reason']
    assert found['facts']['device']['usable_by_qemu_user'] is None


PASSWD = 'root:x:0:0:root:/root:/bin/bash\nqemu:x:107:107:qemu user:/:/sbin/nologin\n' \
         'libvirt-qemu:x:64055:108:Libvirt Qemu,,,:/var/lib/libvirt:/usr/sbin/nologin\nbuilder:x:1001:1001::/home/b:/bin/sh\n'
GROUP = 'root:x:0:\nkvm:x:36:qemu\nqemu:x:107:\nkvm2:x:108:\nbuilder:x:1001:\nlibvirt-qemu:x:64055:libvirt-qemu\n'


@pytest.mark.parametrize('conf, name, expected', [
    # defaults: Fedora's qemu first
    ('', None, {'name': 'qemu', 'source': 'default', 'uid': 107, 'gids': [36, 107]}),
    # qemu.conf wins over the defaults; its group replaces the primary group
    ('user = "libvirt-qemu"\ngroup = "kvm"\n', None,
     {'name': 'libvirt-qemu', 'source': '/etc/libvirt/qemu.conf', 'uid': 64055, 'gids': [36, 64055]}),
    ('user = "+1001"   # by uid\n', None, {'name': 'builder', 'source': '/etc/libvirt/qemu.conf', 'uid': 1001, 'gids': [1001]}),
    ('user = "+0"\n', None, {'name': 'root', 'source': '/etc/libvirt/qemu.conf', 'uid': 0, 'gids': [0]}),
    ('#user = "root"\n', None, {'name': 'qemu', 'source': 'default', 'uid': 107, 'gids': [36, 107]}),
    # the option wins over everything
    ('user = "qemu"\n', 'builder', {'name': 'builder', 'source': 'option', 'uid': 1001, 'gids': [1001]}),
    ('', '64055', {'name': 'libvirt-qemu', 'source': 'option', 'uid': 64055, 'gids': [108, 64055]}),
])
def test_resolve_qemu_user(host_tree_copy, conf, name, expected):
    fs = HostFS(host_tree_copy({'files': {'/etc/passwd': PASSWD, '/etc/group': GROUP, '/etc/libvirt/qemu.conf': conf}}))
    user = report_facts.resolve_qemu_user(fs, name)
    assert {k: user[k] for k in expected} == expected
    assert user['found']


def test_resolve_qemu_user_not_found(host_tree_copy):
    fs = HostFS(host_tree_copy({'files': {'/etc/passwd': PASSWD, '/etc/group': GROUP}}))
    assert report_facts.resolve_qemu_user(fs, 'nobody-here') == {'name': 'nobody-here', 'found': False, 'source': 'option',
                                                                 'candidates': ['nobody-here']}


class FakeStat:
    def __init__(self, mode, uid, gid):
        self.st_mode, self.st_uid, self.st_gid = stat.S_IFCHR | mode, uid, gid


@pytest.mark.parametrize('mode, owner, group, uid, gids, expected', [
    (0o600, 0, 0, 0, [0], True),            # root opens anything
    (0o600, 0, 0, 107, [107], False),
    (0o660, 0, 36, 107, [36, 107], True),
    (0o640, 0, 36, 107, [36], False),       # read only
    (0o606, 0, 36, 107, [36], False),       # group bits decide for a group member, not other bits
    (0o066, 107, 36, 107, [36], False),     # owner bits decide for the owner
    (0o666, 0, 36, 5000, [5000], True),
])
def test_can_open_rw(mode, owner, group, uid, gids, expected):
    assert report_facts.can_open_rw(FakeStat(mode, owner, group), uid, set(gids)) is expected


# ---------------------------------------------------------------- CPU, modules, nested

CPU_INTEL = {'vendor': 'GenuineIntel', 'model_name': 'x', 'virtualization_flags': ['vmx'], 'hypervisor': False}


def kvm_facts(present=True, modules=('kvm', 'kvm_intel'), vendor_module='kvm_intel'):
    return {'device': {'present': present}, 'modules': list(modules), 'vendor_module': vendor_module}


@pytest.mark.parametrize('cpu, kvm, verdict, words', [
    (CPU_INTEL, kvm_facts(), 'pass', 'GenuineIntel CPU with Intel VT-x (flag vmx)'),
    (dict(CPU_INTEL, vendor='AuthenticAMD', virtualization_flags=['svm']), kvm_facts(), 'pass', 'AMD-V (flag svm)'),
    # this project's machine: an AMD VM without svm, yet /dev/kvm from another backend (kvm_pvm)
    (dict(CPU_INTEL, vendor='AuthenticAMD', virtualization_flags=[], hypervisor=True),
     kvm_facts(modules=('kvm', 'kvm_pvm'), vendor_module='kvm_amd'), 'warn', 'yet /dev/kvm exists (modules: kvm, kvm_pvm)'),
    (dict(CPU_INTEL, virtualization_flags=[], hypervisor=True), kvm_facts(present=False, modules=()), 'fail',
     'a virtual machine whose hypervisor does not expose nested virtualization'),
    (dict(CPU_INTEL, vendor='AuthenticAMD', virtualization_flags=[]), kvm_facts(present=False, modules=()), 'fail',
     'enable AMD-V in the firmware setup'),
    (dict(CPU_INTEL, vendor=None), kvm_facts(), 'fail', 'cannot read the CPU vendor'),
])
def test_check_cpu(cpu, kvm, verdict, words):
    found = hr.check_cpu(cpu, kvm)
    assert found['verdict'] == verdict and words in found['reason']


@pytest.mark.parametrize('modules, vendor_module, verdict', [
    (['kvm', 'kvm_intel'], 'kvm_intel', 'pass'),
    (['kvm', 'kvm_amd'], 'kvm_amd', 'pass'),
    (['kvm'], 'kvm_intel', 'fail'),
    ([], 'kvm_amd', 'fail'),
    (['kvm', 'kvm_pvm'], 'kvm_amd', 'warn'),
    (['kvm', 'kvm_intel'], None, 'warn'),
])
def test_check_kvm_modules(modules, vendor_module, verdict):
    assert hr.check_kvm_modules(kvm_facts(modules=modules, vendor_module=vendor_module))['verdict'] == verdict


@pytest.mark.parametrize('value, verdict', [('Y', 'pass'), ('1', 'pass'), ('N', 'warn'), ('0', 'warn'), (None, 'skip')])
def test_check_nested(value, verdict):
    nested = {'module': 'kvm_amd', 'value': value, 'enabled': None if value is None else value in ('Y', '1')}
    found = hr.check_nested({'nested': nested})
    assert found['verdict'] == verdict
    if verdict == 'warn':
        assert 'options kvm_amd nested=1' in found['reason']


# ---------------------------------------------------------------- IOMMU verdicts

def iommu_facts(**changes):
    facts = {'active': False, 'kind': 'none', 'label': 'none', 'group_count': 0, 'firmware_table': None,
             'interrupt_remapping': None, 'passthrough': False, 'kernel_args': []}
    facts.update(changes)
    return facts


@pytest.mark.parametrize('facts, cpu, cmdline, verdict, cause, reason', [
    (iommu_facts(active=True, kind='amd', label='AMD-Vi', group_count=31, interrupt_remapping=True, passthrough=True),
     dict(CPU_INTEL, vendor='AuthenticAMD'), 'iommu=pt', 'pass', None, 'AMD-Vi active, 31 IOMMU groups, interrupt remapping on'),
    (iommu_facts(active=True, kind='intel', label='Intel VT-d (DMAR)', group_count=9, interrupt_remapping=True),
     CPU_INTEL, 'intel_iommu=on', 'pass', None,
     'Intel VT-d (DMAR) active, 9 IOMMU groups, interrupt remapping on; Phyllome hosts also boot with iommu=pt '
     '(host devices skip translation)'),
    (iommu_facts(active=True, kind='intel', label='Intel VT-d (DMAR)', group_count=9, interrupt_remapping=False),
     CPU_INTEL, 'intel_iommu=on intremap=off', 'warn', 'interrupt_remapping_off',
     'Intel VT-d (DMAR) active, 9 IOMMU groups, but interrupt remapping is off: VFIO refuses to attach a group to a '
     'guest unless vfio_iommu_type1.allow_unsafe_interrupts=1, which lets a guest forge interrupts. Enable interrupt '
     'remapping (x2APIC in the firmware setup; no intremap=off) rather than allowing unsafe interrupts.'),
    # switched off, and intel_iommu=on missing as well
    (iommu_facts(firmware_table='DMAR'), CPU_INTEL, 'ro intel_iommu=off', 'warn', 'disabled_by_argument',
     'no IOMMU: the kernel argument intel_iommu=off switches it off, so no device can be passed. Remove the kernel '
     'argument intel_iommu=off (phyllome.os.kernel_cmdline), then reboot. Add the kernel argument intel_iommu=on'),
    (iommu_facts(firmware_table='IVRS'), dict(CPU_INTEL, vendor='AuthenticAMD'), 'amd_iommu=off', 'warn',
     'disabled_by_argument',
     'no IOMMU: the kernel argument amd_iommu=off switches it off, so no device can be passed. Remove the kernel '
     'argument amd_iommu=off (phyllome.os.kernel_cmdline), then reboot.'),
    (iommu_facts(firmware_table='IVRS'), dict(CPU_INTEL, vendor='AuthenticAMD'), 'ro', 'warn', 'no_groups',
     'no IOMMU: the firmware announces one (ACPI IVRS) but the kernel formed no IOMMU groups. Until the kernel'),
    (iommu_facts(), CPU_INTEL, 'ro', 'warn', 'firmware',
     'no IOMMU: the firmware announces none (no ACPI DMAR table). Enable VT-d in the firmware setup, then reboot. '
     'Add the kernel argument intel_iommu=on'),
    (iommu_facts(), dict(CPU_INTEL, hypervisor=True), 'ro', 'warn', 'virtual_machine',
     'no IOMMU: this host is a virtual machine without a virtual IOMMU, so no device can be passed. Its hypervisor '
     'must give this host a virtual IOMMU (an intel-iommu or virtio-iommu device)'),
])
def test_check_iommu(facts, cpu, cmdline, verdict, cause, reason):
    found = hr.check_iommu(facts, cpu, kernel_args(cmdline))
    assert found['verdict'] == verdict
    assert found['reason'].startswith(reason)
    assert found['facts'].get('cause') == cause


def test_check_iommu_and_iommu_info_give_the_same_words(host_tree):
    # host_info's reason and iommu_info's advice both come from iommu.explain().
    fs = HostFS(host_tree('amd-desktop-iommu-off'))
    reason = check(hr.build_report(fs, 'qemu:///system', False), 'iommu')['reason']
    advice = iommu_groups.gather(fs)['advice']
    assert reason[:1].upper() + reason[1:] == ' '.join(advice)


# ---------------------------------------------------------------- hugepages

@pytest.mark.parametrize('cmdline, requested', [
    ('hugepages=512', [{'size_kb': 2048, 'count': 512}]),
    ('hugepagesz=1G hugepages=4 hugepagesz=2M hugepages=512',
     [{'size_kb': 1048576, 'count': 4}, {'size_kb': 2048, 'count': 512}]),
    # default_hugepagesz applies to a hugepages= without its own size, wherever it stands
    ('hugepages=8 default_hugepagesz=1G', [{'size_kb': 1048576, 'count': 8}]),
    ('ro quiet', []),
])
def test_requested_hugepages(cmdline, requested):
    assert report_facts.requested_hugepages(kernel_args(cmdline), 2048) == requested


def hugepage_tree(host_tree_copy, cmdline, nr_1g, meminfo=True):
    files = {'/proc/cmdline': cmdline,
             '/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages': str(nr_1g),
             '/sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages': str(nr_1g),
             '/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages': '0',
             '/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages': '0',
             '/sys/kernel/mm/transparent_hugepage/enabled': 'always madvise [never]'}
    if meminfo:
        files['/proc/meminfo'] = ('MemTotal:       16216220 kB\nHugePages_Total:       0\nHugePages_Free:        0\n'
                                  'HugePages_Rsvd:        0\nHugePages_Surp:        0\nHugepagesize:       2048 kB\n')
    return HostFS(host_tree_copy({'files': files}))


@pytest.mark.parametrize('nr_1g, verdict, reason', [
    (3, 'warn', '4 x 1048576 kB requested, 3 allocated'),
    (4, 'pass', 'hugepages reserved: 4 x 1048576 kB (4 free)'),
])
def test_check_hugepages_against_the_command_line(host_tree_copy, nr_1g, verdict, reason):
    fs = hugepage_tree(host_tree_copy, 'ro hugepagesz=1G hugepages=4', nr_1g)
    found = hr.check_hugepages(report_facts.read_hugepages(fs, kernel_args(fs.read_text('/proc/cmdline'))))
    assert found['verdict'] == verdict and reason in found['reason']
    assert found['facts']['transparent_hugepage'] == 'never'


def test_check_hugepages_without_meminfo(host_tree_copy):
    fs = hugepage_tree(host_tree_copy, 'ro', 0, meminfo=False)
    assert hr.check_hugepages(report_facts.read_hugepages(fs, []))['verdict'] == 'warn'


# ---------------------------------------------------------------- firmware descriptors and swtpm

def descriptor(features, machines=('pc-q35-*',), executable='/usr/share/OVMF/CODE.fd', mode=None, device='flash'):
    mapping = {'device': device, 'executable': {'filename': executable, 'format': 'raw'},
               'nvram-template': {'filename': '/usr/share/OVMF/VARS.fd', 'format': 'raw'}}
    if mode:
        mapping['mode'] = mode
    return json.dumps({'description': 'test', 'interface-types': ['uefi'], 'mapping': mapping,
                       'targets': [{'architecture': 'x86_64', 'machines': list(machines)}], 'features': features,
                       'tags': []})


SB = ['acpi-s3', 'enrolled-keys', 'requires-smm', 'secure-boot']


@pytest.mark.parametrize('files, verdict, uefi, secure', [
    ({'/usr/share/qemu/firmware/40-sb.json': descriptor(SB), '/usr/share/qemu/firmware/60-plain.json': descriptor([])},
     'pass', ['40-sb.json', '60-plain.json'], ['40-sb.json']),
    # secure boot without enrolled keys is not what Windows 11 needs
    ({'/usr/share/qemu/firmware/50-sb.json': descriptor(['requires-smm', 'secure-boot'])}, 'warn', ['50-sb.json'], []),
    # an empty file in /etc/qemu/firmware masks the packaged descriptor of that name
    ({'/usr/share/qemu/firmware/40-sb.json': descriptor(SB), '/usr/share/qemu/firmware/60-plain.json': descriptor([]),
      '/etc/qemu/firmware/40-sb.json': ''}, 'warn', ['60-plain.json'], []),
    # ... and a non-empty one replaces it
    ({'/usr/share/qemu/firmware/40-sb.json': descriptor([]), '/etc/qemu/firmware/40-sb.json': descriptor(SB)},
     'pass', ['40-sb.json'], ['40-sb.json']),
    # a descriptor whose image is missing does not count
    ({'/usr/share/qemu/firmware/40-sb.json': descriptor(SB, executable='/usr/share/OVMF/GONE.fd')}, 'fail', [], []),
    # i440fx only, stateless, memory-mapped: not for a q35 VM with its own NVRAM
    ({'/usr/share/qemu/firmware/40.json': descriptor(SB, machines=('pc-i440fx-*',)),
      '/usr/share/qemu/firmware/60-sev.json': descriptor(['amd-sev'], mode='stateless'),
      '/usr/share/qemu/firmware/70-mem.json': descriptor([], device='memory')}, 'fail', [], []),
    ({'/usr/share/qemu/firmware/40-broken.json': '{"description": '}, 'fail', [], []),
    ({}, 'fail', [], []),
])
def test_check_firmware(host_tree_copy, files, verdict, uefi, secure):
    files = dict(files, **{'/usr/share/OVMF/CODE.fd': '', '/usr/share/OVMF/VARS.fd': ''})
    fs = HostFS(host_tree_copy({'files': files}))
    found = hr.check_firmware(report_facts.read_firmware(fs))
    assert (found['verdict'], found['facts']['uefi'], found['facts']['secure_boot']) == (verdict, uefi, secure)


def test_unreadable_descriptor_is_reported(host_tree_copy):
    fs = HostFS(host_tree_copy({'files': {'/usr/share/qemu/firmware/40-broken.json': '[1, 2]'}}))
    assert report_facts.read_firmware(fs)['descriptors'] == [{
        'name': '40-broken.json', 'path': '/usr/share/qemu/firmware/40-broken.json',
        'error': 'invalid descriptor: not a JSON object'}]


@pytest.mark.parametrize('files, verdict, found', [
    ({'/usr/bin/swtpm': {'content': '', 'mode': '0755'}, '/usr/bin/swtpm_setup': {'content': '', 'mode': '0755'}},
     'pass', {'swtpm': '/usr/bin/swtpm', 'swtpm_setup': '/usr/bin/swtpm_setup'}),
    ({'/usr/local/bin/swtpm': {'content': '', 'mode': '0755'}, '/usr/bin/swtpm': {'content': '', 'mode': '0755'},
      '/usr/sbin/swtpm_setup': {'content': '', 'mode': '0755'}},
     'pass', {'swtpm': '/usr/local/bin/swtpm', 'swtpm_setup': '/usr/sbin/swtpm_setup'}),
    # not executable: not a program
    ({'/usr/bin/swtpm': {'content': '', 'mode': '0644'}, '/usr/bin/swtpm_setup': {'content': '', 'mode': '0755'}},
     'fail', {'swtpm': None, 'swtpm_setup': '/usr/bin/swtpm_setup'}),
    ({}, 'fail', {'swtpm': None, 'swtpm_setup': None}),
])
def test_check_swtpm(host_tree_copy, files, verdict, found):
    fs = HostFS(host_tree_copy({'files': files, 'dirs': ['/usr/bin']}))
    programs = report_facts.find_programs(fs, report_facts.SWTPM_PROGRAMS)
    assert programs == found
    assert hr.check_swtpm(programs)['verdict'] == verdict


# ---------------------------------------------------------------- libvirt

class FakeConn:
    def __init__(self, libvirt_version=9000000, qemu_version=7002022, driver='QEMU', capabilities=CAPABILITIES):
        self.values = (driver, libvirt_version, qemu_version, capabilities)
        self.closed = False

    def getType(self):
        return self.values[0]

    def getLibVersion(self):
        return self.values[1]

    def getVersion(self):
        return self.values[2]

    def getCapabilities(self):
        return self.values[3]

    def close(self):
        self.closed = True


def opener(conn=None, error=None):
    def open_connection(uri, readonly=False):
        assert readonly, 'host_info only reads'
        if error:
            raise error
        return conn
    return open_connection


def test_read_libvirt_through_a_connection():
    conn = FakeConn()
    facts = report_facts.read_libvirt('qemu:///system', opener(conn))
    assert conn.closed
    assert facts == {
        'checked': True, 'uri': 'qemu:///system', 'reachable': True, 'error': None, 'missing_library': None,
        'driver': 'QEMU', 'libvirt_version': '9.0.0', 'hypervisor_version': '7.2.22', 'host_arch': 'x86_64',
        'arch': 'x86_64', 'domain_types': ['kvm', 'qemu'], 'emulator': '/usr/bin/qemu-system-x86_64',
        'machine': 'q35', 'machine_offered': True}
    assert hr.check_libvirt(facts) == {
        'name': 'libvirt', 'verdict': 'pass', 'reason': 'libvirt 9.0.0, QEMU 7.2.22, domain types kvm, qemu for x86_64',
        'facts': facts}


@pytest.mark.parametrize('conn, verdict, reason', [
    (FakeConn(libvirt_version=8005000), 'fail', 'libvirt 8.5.0 is older than 8.6.0'),
    (FakeConn(qemu_version=6002000), 'fail', 'QEMU 6.2.0 is older than 7.0.0'),
    (FakeConn(libvirt_version=8006000, qemu_version=7000000), 'pass', 'libvirt 8.6.0, QEMU 7.0.0'),
    (FakeConn(capabilities=CAPABILITIES.replace("<domain type='kvm'/>", '')), 'warn', 'no kvm, guests run under TCG only'),
    (FakeConn(capabilities=CAPABILITIES.replace('>q35<', '>pc-q35-alias<')), 'fail', 'the q35 machine type is not offered'),
    (FakeConn(capabilities='<capabilities><host/></capabilities>'), 'fail', 'no x86_64 guests are offered'),
    (FakeConn(capabilities='<capabilities'), 'fail', 'unreadable capabilities XML'),
    (FakeConn(driver='Test'), 'warn', 'qemu:///system is a Test driver, not QEMU'),
])
def test_check_libvirt(conn, verdict, reason):
    found = hr.check_libvirt(report_facts.read_libvirt('qemu:///system', opener(conn)))
    assert found['verdict'] == verdict and reason in found['reason']


def test_libvirt_unreachable_or_missing_does_not_raise():
    error = LibvirtFailure('cannot connect to libvirt at qemu:///system: Failed to connect socket')
    down = report_facts.read_libvirt('qemu:///system', opener(error=error))
    assert (down['reachable'], down['missing_library']) == (False, None)
    assert hr.check_libvirt(down) == {'name': 'libvirt', 'verdict': 'fail', 'facts': down,
                                      'reason': 'cannot connect to libvirt at qemu:///system: Failed to connect socket'}
    missing = report_facts.read_libvirt('qemu:///system', opener(error=MissingLibrary('libvirt-python', 'python3-libvirt')))
    found = hr.check_libvirt(missing)
    assert found['verdict'] == 'warn'
    assert found['reason'] == 'libvirt not checked: the Python binding of libvirt is not installed (python3-libvirt)'


def test_libvirt_not_queried_is_skipped():
    assert hr.check_libvirt({'checked': False, 'uri': 'qemu:///system'})['verdict'] == 'skip'


def test_read_libvirt_of_the_test_driver():
    pytest.importorskip('libvirt')
    facts = report_facts.read_libvirt('test:///default')
    # libvirt's own words first, should the in-process driver ever refuse.
    assert (facts['reachable'], facts['error']) == (True, None)
    # The test driver offers only i686 guests of domain type 'test'.
    assert (facts['reachable'], facts['driver'], facts['domain_types'], facts['host_arch']) == (True, 'TEST', [], 'i686')
    assert facts['libvirt_version'].count('.') == 2
    found = hr.check_libvirt(facts)
    assert found['verdict'] == 'warn' and 'test:///default is a TEST driver, not QEMU' in found['reason']


def test_build_report_asks_libvirt_only_when_told(host_tree):
    asked = []

    def reader(uri):
        asked.append(uri)
        return report_facts.read_libvirt(uri, opener(FakeConn()))

    fs = HostFS(host_tree('amd-desktop-iommu-off'))
    assert check(hr.build_report(fs, 'qemu:///system', False, libvirt_reader=reader), 'libvirt')['verdict'] == 'skip'
    assert asked == []
    assert check(hr.build_report(fs, 'qemu:///system', True, libvirt_reader=reader), 'libvirt')['verdict'] == 'pass'
    assert asked == ['qemu:///system']


@pytest.mark.parametrize('verdicts_, overall', [
    (['pass', 'skip'], 'pass'), (['skip'], 'pass'), (['pass', 'warn', 'skip'], 'warn'), (['warn', 'fail', 'pass'], 'fail')])
def test_worst(verdicts_, overall):
    assert hr.worst(verdicts_) == overall
