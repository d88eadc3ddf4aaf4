# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readiness report of a virtualization host: the verdicts behind host_info.

report_facts.py reads the facts (each reader takes a HostFS); check_*
functions here turn facts into one check each ({name, verdict, reason,
facts}); build_report() runs them all. Nothing here changes the host.
"""

from __future__ import annotations

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput
from ansible_collections.phyllome.os.plugins.module_utils._common.hostfs import SYSTEM_PATH
from ansible_collections.phyllome.os.plugins.module_utils._host import cpu as cpu_utils
from ansible_collections.phyllome.os.plugins.module_utils._host import iommu as iommu_utils
from ansible_collections.phyllome.os.plugins.module_utils._host.report_facts import (
    FIRMWARE_DIRS,
    SWTPM_PROGRAMS,
    find_programs,
    read_cmdline,
    read_firmware,
    read_hugepages,
    read_kvm,
    read_libvirt,
)
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.capabilities import GUEST_ARCH, GUEST_MACHINE

PASS, WARN, FAIL, SKIP = 'pass', 'warn', 'fail', 'skip'
_SEVERITY = {SKIP: 0, PASS: 0, WARN: 1, FAIL: 2}

# Phyllome OS's VM model needs these (phyllome-os.md: "QEMU >= 7.0, libvirt >= 8.6").
MIN_QEMU = (7, 0, 0)
MIN_LIBVIRT = (8, 6, 0)


def make_check(name, verdict, reason, facts=None):
    return {'name': name, 'verdict': verdict, 'reason': reason, 'facts': facts or {}}


def worst(verdicts):
    """The overall verdict: fail over warn over pass; skipped checks do not count."""
    verdict = PASS
    for candidate in verdicts:
        if _SEVERITY[candidate] > _SEVERITY[verdict]:
            verdict = candidate
    return verdict


def version_tuple(text):
    return tuple(int(p) for p in text.split('.')) if text else None


# ---------------------------------------------------------------- checks

def check_cpu(cpu, kvm):
    facts = {k: cpu[k] for k in ('vendor', 'model_name', 'virtualization_flags', 'hypervisor')}
    if not cpu['vendor']:
        return make_check('cpu', FAIL, 'cannot read the CPU vendor from /proc/cpuinfo', facts)
    if cpu['virtualization_flags']:
        flag = cpu['virtualization_flags'][0]
        return make_check('cpu', PASS, '%s CPU with %s (flag %s)' % (
            cpu['vendor'], cpu_utils.extension_of_flag(flag), flag), facts)
    if kvm['device']['present']:
        return make_check('cpu', WARN, (
            'the CPU flags show neither vmx nor svm, yet /dev/kvm exists (modules: %s): KVM here does not rest '
            'on hardware virtualization extensions, and whether KVM guests run cannot be told from files; '
            'if they fail, use domain type qemu (TCG)') % (', '.join(kvm['modules']) or 'none'), facts)
    if cpu['hypervisor']:
        return make_check('cpu', FAIL, (
            'the CPU flags show neither vmx nor svm: this host is a virtual machine whose hypervisor does not '
            'expose nested virtualization; guests can only run under TCG (domain type qemu)'), facts)
    virtualization = cpu_utils.virtualization(cpu['vendor'])
    extension = virtualization['extension'] if virtualization else 'hardware virtualization'
    return make_check('cpu', FAIL, (
        'the CPU flags show neither vmx nor svm: enable %s in the firmware setup (the kernel hides the flag '
        'when the firmware disables it)') % extension, facts)


def check_kvm_modules(kvm):
    modules, vendor_module = kvm['modules'], kvm['vendor_module']
    facts = {'loaded': modules, 'vendor_module': vendor_module}
    if 'kvm' in modules and vendor_module in modules:
        return make_check('kvm_modules', PASS, 'kvm and %s are loaded' % vendor_module, facts)
    if not modules:
        return make_check('kvm_modules', FAIL, 'no KVM module is loaded (kvm, %s)' % (vendor_module or 'kvm_intel/kvm_amd'),
                          facts)
    others = [m for m in modules if m not in ('kvm', vendor_module)]
    if others:
        return make_check('kvm_modules', WARN, '%s loaded instead of %s: KVM is provided by another backend' % (
            ', '.join(modules), vendor_module or 'a CPU vendor module'), facts)
    return make_check('kvm_modules', FAIL, (
        'kvm is loaded but %s is not (it refuses to load when the firmware disables virtualization)'
    ) % (vendor_module or 'no CPU vendor module'), facts)


def _describe_device(device):
    return '%s %s:%s' % (device['permissions'], device['owner'] or device['uid'], device['group'] or device['gid'])


def check_kvm_device(kvm):
    device, user = kvm['device'], kvm['qemu_user']
    facts = {'device': device, 'qemu_user': user}
    if not device['present']:
        return make_check('kvm_device', FAIL, (
            '/dev/kvm does not exist: KVM is unavailable and guests can only run under TCG (domain type qemu), '
            'many times slower'), facts)
    if not device['char_device']:
        return make_check('kvm_device', FAIL, '/dev/kvm is not a character device (%s)' % device['permissions'], facts)
    described = _describe_device(device)
    if not user['found']:
        return make_check('kvm_device', WARN, (
            '/dev/kvm is %s, but the user QEMU runs as (%s) is not in /etc/passwd: is QEMU installed? '
            'Name it with qemu_user') % (described, ', '.join(user['candidates'])), facts)
    if not device['usable_by_qemu_user']:
        return make_check('kvm_device', FAIL, (
            '/dev/kvm is %s and the qemu user %s (groups %s) cannot open it: libvirt then finds KVM unusable, '
            'throws its QEMU capability cache away on every call and re-probes QEMU, so each domain define '
            'takes 40-110 s instead of milliseconds, and KVM guests do not start. Give the node group kvm and '
            'mode 0660 (udev: KERNEL=="kvm", GROUP="kvm", MODE="0660") and put %s in group kvm') % (
            described, user['name'], ', '.join(user['groups']) or '-', user['name']), facts)
    return make_check('kvm_device', PASS, '/dev/kvm (%s:%s) is %s, usable by the qemu user %s' % (
        device['major'], device['minor'], described, user['name']), facts)


def check_nested(kvm):
    nested = kvm['nested']
    if nested['value'] is None:
        return make_check('nested', SKIP, 'no nested virtualization setting: %s is not loaded' % (
            nested['module'] or 'no CPU vendor module'), nested)
    if nested['enabled']:
        return make_check('nested', PASS, 'nested virtualization is on (%s nested=%s)' % (nested['module'], nested['value']),
                          nested)
    return make_check('nested', WARN, (
        'nested virtualization is off (%s nested=%s); Phyllome hosts set "options %s nested=1" in /etc/modprobe.d'
    ) % (nested['module'], nested['value'], nested['module']), nested)


def check_iommu(iommu, cpu, args):
    """args: the kernel's arguments (cmdline.KernelArg), to name what switched the IOMMU off."""
    facts = {k: iommu[k] for k in ('active', 'kind', 'group_count', 'firmware_table', 'interrupt_remapping',
                                   'passthrough', 'kernel_args')}
    problem = iommu_utils.diagnose(iommu, args, cpu['vendor'], cpu['hypervisor'])
    if problem:
        explained = iommu_utils.explain(problem, iommu)
        reason = '%s.' % explained['reason']
        if iommu['active']:
            reason = '%s active, %d IOMMU groups, but %s' % (iommu['label'], iommu['group_count'], reason)
        return make_check('iommu', WARN, ' '.join([reason] + explained['advice']), dict(facts, cause=problem['cause']))
    reason = '%s active, %d IOMMU groups' % (iommu['label'], iommu['group_count'])
    if iommu['interrupt_remapping']:
        reason += ', interrupt remapping on'
    if not iommu['passthrough']:
        reason += '; Phyllome hosts also boot with iommu=pt (host devices skip translation)'
    return make_check('iommu', PASS, reason, facts)


def check_hugepages(hugepages):
    if not hugepages['readable']:
        return make_check('hugepages', WARN, 'cannot read HugePages_* from /proc/meminfo', hugepages)
    actual = {s['size_kb']: s['total'] for s in hugepages['sizes']}
    if hugepages['default_size_kb'] not in actual:
        actual[hugepages['default_size_kb']] = hugepages['total']
    short = ['%d x %d kB requested, %s allocated' % (r['count'], r['size_kb'], actual.get(r['size_kb']))
             for r in hugepages['requested'] if (actual.get(r['size_kb']) or 0) < r['count']]
    if short:
        return make_check('hugepages', WARN, (
            'the kernel could not reserve the hugepages the command line asks for (%s): memory was too '
            'fragmented or too small') % '; '.join(short), hugepages)
    reserved = ['%d x %d kB (%s free)' % (s['total'], s['size_kb'], s['free']) for s in hugepages['sizes'] if s['total']]
    if reserved:
        return make_check('hugepages', PASS, 'hugepages reserved: %s' % ', '.join(reserved), hugepages)
    return make_check('hugepages', PASS, (
        'no hugepages reserved (optional: the VM model backs memory with memfd); transparent hugepages: %s'
    ) % (hugepages['transparent_hugepage'] or 'unknown'), hugepages)


def check_libvirt(facts):
    if not facts.get('checked'):
        return make_check('libvirt', SKIP, 'libvirt not queried (libvirt=false, or a recorded tree under root)', facts)
    if facts['missing_library']:
        return make_check('libvirt', WARN, 'libvirt not checked: %s' % facts['error'], facts)
    if not facts['reachable']:
        return make_check('libvirt', FAIL, facts['error'], facts)
    if facts['driver'] != 'QEMU':
        return make_check('libvirt', WARN, '%s is a %s driver, not QEMU: requirements not checked' % (
            facts['uri'], facts['driver']), facts)
    if facts.get('error'):
        return make_check('libvirt', FAIL, facts['error'], facts)
    problems = []
    if version_tuple(facts['libvirt_version']) < MIN_LIBVIRT:
        problems.append('libvirt %s is older than %s' % (facts['libvirt_version'], '.'.join(map(str, MIN_LIBVIRT))))
    if version_tuple(facts['hypervisor_version']) < MIN_QEMU:
        problems.append('QEMU %s is older than %s' % (facts['hypervisor_version'], '.'.join(map(str, MIN_QEMU))))
    if not facts['domain_types']:
        problems.append('no %s guests are offered (is qemu-system-x86 installed?)' % facts['arch'])
    elif not facts['machine_offered']:
        problems.append('the %s machine type is not offered for %s' % (facts['machine'], facts['arch']))
    summary = 'libvirt %s, QEMU %s, domain types %s for %s' % (
        facts['libvirt_version'], facts['hypervisor_version'], ', '.join(facts['domain_types']) or 'none', facts['arch'])
    if problems:
        return make_check('libvirt', FAIL, '; '.join(problems) + ' (%s)' % summary, facts)
    if 'kvm' not in facts['domain_types']:
        return make_check('libvirt', WARN, summary + ': no kvm, guests run under TCG only', facts)
    return make_check('libvirt', PASS, summary, facts)


def check_firmware(firmware):
    # A VM keeps its UEFI variables in an NVRAM file: stateless (SEV, TDX) and memory-mapped builds do not fit.
    usable = [d for d in firmware['descriptors']
              if 'uefi' in d.get('interface_types', []) and d.get('x86_64_q35') and d.get('executable_present')
              and d.get('device') == 'flash' and d.get('mode') != 'stateless']
    secure = [d for d in usable if d['secure_boot'] and d['enrolled_keys'] and d['requires_smm']]
    missing = [d['name'] for d in firmware['descriptors'] if d.get('executable_present') is False]
    facts = {'uefi': [d['name'] for d in usable], 'secure_boot': [d['name'] for d in secure], 'missing_executables': missing}
    note = ' (descriptors naming missing files: %s)' % ', '.join(missing) if missing else ''
    if not usable:
        return make_check('firmware', FAIL, (
            'no UEFI firmware for %s/%s among the firmware descriptors in %s: install edk2-ovmf (Fedora) or '
            'ovmf (Debian)%s') % (GUEST_ARCH, GUEST_MACHINE, ' and '.join(FIRMWARE_DIRS), note), facts)
    if not secure:
        return make_check('firmware', WARN, (
            'UEFI firmware found (%s) but none with Secure Boot, enrolled keys and SMM, which Windows 11 '
            'guests need%s') % (', '.join(facts['uefi']), note), facts)
    return make_check('firmware', PASS, 'UEFI firmware for %s/%s: %s; with Secure Boot and enrolled keys: %s%s' % (
        GUEST_ARCH, GUEST_MACHINE, ', '.join(facts['uefi']), ', '.join(facts['secure_boot']), note), facts)


def check_swtpm(programs):
    missing = [name for name, path in sorted(programs.items()) if not path]
    if missing:
        return make_check('swtpm', FAIL, (
            '%s not found in %s: emulated TPM 2.0 devices (part of the VM model) cannot start; '
            'install swtpm and swtpm-tools') % (', '.join(missing), ':'.join(SYSTEM_PATH)), programs)
    return make_check('swtpm', PASS, 'swtpm and swtpm_setup found (%s)' % ', '.join(
        programs[name] for name in SWTPM_PROGRAMS), programs)


# ---------------------------------------------------------------- the report

def build_report(fs, uri, query_libvirt, qemu_user=None, libvirt_reader=read_libvirt):
    """Gather every fact below fs and judge it.

    query_libvirt: whether to ask libvirt at `uri` (a recorded tree under a
    root has no daemon of its own). libvirt_reader is read_libvirt unless a
    test replaces it.
    """
    if not fs.is_dir('/'):
        raise InvalidInput('root %s is not a directory' % fs.root, root=fs.root)
    cmdline = read_cmdline(fs)
    cpu = cpu_utils.read_cpu(fs)
    kvm = read_kvm(fs, cpu, qemu_user)
    host = {
        'root': fs.root,
        'cpu': cpu,
        'kvm': kvm,
        'iommu': iommu_utils.detect_iommu(fs, cmdline['parsed']),
        'cmdline': {'raw': cmdline['raw'], 'args': [arg.raw for arg in cmdline['parsed']]},
        'hugepages': read_hugepages(fs, cmdline['parsed']),
        'libvirt': libvirt_reader(uri) if query_libvirt else {'checked': False, 'uri': uri},
        'firmware': read_firmware(fs),
        'swtpm': find_programs(fs, SWTPM_PROGRAMS),
    }
    checks = [
        check_cpu(cpu, kvm),
        check_kvm_modules(kvm),
        check_kvm_device(kvm),
        check_nested(kvm),
        check_iommu(host['iommu'], cpu, cmdline['parsed']),
        check_hugepages(host['hugepages']),
        check_libvirt(host['libvirt']),
        check_firmware(host['firmware']),
        check_swtpm(host['swtpm']),
    ]
    verdict = worst(c['verdict'] for c in checks)
    summary = ['%s %s: %s' % (c['verdict'], c['name'], c['reason'])
               for level in (FAIL, WARN) for c in checks if c['verdict'] == level]
    return {'host': host, 'checks': checks, 'verdict': verdict, 'summary': summary}
