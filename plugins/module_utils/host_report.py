# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readiness report of a virtualization host: the facts and verdicts behind host_info.

Readers take a HostFS and return plain facts; check_* functions turn facts
into one check each ({name, verdict, reason, facts}); build_report() runs
them all. Nothing here changes the host.
"""

from __future__ import annotations

import json
import os
import posixpath
import stat as stat_module
# The capabilities XML comes from the host's own libvirtd and is small; the
# standard library parser is enough and keeps this read-only module free of
# the lxml dependency.
import xml.etree.ElementTree as ET

from ansible_collections.phyllome.os.plugins.module_utils import cpu as cpu_utils
from ansible_collections.phyllome.os.plugins.module_utils.capabilities import GUEST_ARCH, GUEST_MACHINE, parse_capabilities
from ansible_collections.phyllome.os.plugins.module_utils import iommu as iommu_utils
from ansible_collections.phyllome.os.plugins.module_utils import libvirt_client
from ansible_collections.phyllome.os.plugins.module_utils.errors import InvalidInput, LibvirtFailure, MissingLibrary
from ansible_collections.phyllome.os.plugins.module_utils.kernel_args import arg_key, kernel_args, running_cmdline

PASS, WARN, FAIL, SKIP = 'pass', 'warn', 'fail', 'skip'
_SEVERITY = {SKIP: 0, PASS: 0, WARN: 1, FAIL: 2}

# Phyllome OS's VM model needs these (phyllome-os.md: "QEMU >= 7.0, libvirt >= 8.6").
MIN_QEMU = (7, 0, 0)
MIN_LIBVIRT = (8, 6, 0)

# The user QEMU runs as when /etc/libvirt/qemu.conf does not say: Fedora's, then Debian's.
QEMU_USERS = ('qemu', 'libvirt-qemu')

# Where QEMU looks for firmware descriptors, lowest precedence first
# (QEMU's docs/interop/firmware.json; a same-named file in a later directory
# replaces an earlier one, an empty one hides it).
FIRMWARE_DIRS = ('/usr/share/qemu/firmware', '/etc/qemu/firmware')

# libvirtd's search path for helper programs such as swtpm.
SYSTEM_PATH = ('/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin')
SWTPM_PROGRAMS = ('swtpm', 'swtpm_setup')


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


# ---------------------------------------------------------------- kernel command line

def read_cmdline(fs):
    """/proc/cmdline as written and as the kernel's arguments (kernel_args.KernelArg, before any `--`)."""
    raw = running_cmdline(fs)
    return {'raw': raw, 'parsed': kernel_args(raw)}


# ---------------------------------------------------------------- users and groups

def parse_passwd(text):
    """name -> {uid, gid} from /etc/passwd content."""
    users = {}
    for line in (text or '').splitlines():
        parts = line.split(':')
        if len(parts) >= 4 and parts[2].isdigit() and parts[3].isdigit():
            users.setdefault(parts[0], {'uid': int(parts[2]), 'gid': int(parts[3])})
    return users


def parse_group(text):
    """name -> {gid, members} from /etc/group content."""
    groups = {}
    for line in (text or '').splitlines():
        parts = line.split(':')
        if len(parts) >= 4 and parts[2].isdigit():
            members = [m for m in parts[3].split(',') if m]
            groups.setdefault(parts[0], {'gid': int(parts[2]), 'members': members})
    return groups


def read_accounts(fs):
    """(users, groups) of the tree's /etc/passwd and /etc/group, not of the machine running this."""
    return parse_passwd(fs.read_text('/etc/passwd')), parse_group(fs.read_text('/etc/group'))


def names_by_id(table, field):
    """id -> name for a parse_passwd/parse_group table; the first name listed for an id wins, as with getpwuid()."""
    return {entry[field]: name for name, entry in reversed(list(table.items()))}


def read_qemu_conf(fs):
    """The `user` and `group` settings of /etc/libvirt/qemu.conf (None when commented out)."""
    settings = {'user': None, 'group': None}
    for line in fs.read_lines('/etc/libvirt/qemu.conf'):
        key, sep, value = line.partition('=')
        key = key.strip()
        if sep and key in settings:
            settings[key] = value.split('#', 1)[0].strip().strip('"')
    return settings


def _find(table, spec, field):
    """(name, entry) of a user or group given as a name, '+N' or N, the way libvirt reads qemu.conf."""
    if spec.startswith('+') and spec[1:].isdigit():
        number = int(spec[1:])
    elif spec in table:
        return spec, table[spec]
    elif spec.isdigit():
        number = int(spec)
    else:
        return None, None
    for name, entry in table.items():
        if entry[field] == number:
            return name, entry
    return spec, {field: number}


def resolve_qemu_user(fs, name=None, accounts=None):
    """The user (and groups) QEMU processes run as, from qemu.conf, the `name` option or the defaults.

    gids are those libvirt checks /dev/kvm access with: the qemu.conf group
    (else the user's primary group) plus every group listing the user.
    """
    users, groups = accounts or read_accounts(fs)
    conf = read_qemu_conf(fs)
    if name:
        candidates, source = [name], 'option'
    elif conf['user']:
        candidates, source = [conf['user']], '/etc/libvirt/qemu.conf'
    else:
        candidates, source = list(QEMU_USERS), 'default'
    found = [_find(users, candidate, 'uid') for candidate in candidates]
    user, entry = next(((u, e) for u, e in found if e is not None), (None, None))
    if entry is None:
        return {'name': candidates[0] if source != 'default' else None, 'found': False,
                'source': source, 'candidates': candidates}
    gid = entry.get('gid')
    if conf['group']:
        _group, group_entry = _find(groups, conf['group'], 'gid')
        gid = group_entry['gid'] if group_entry else gid
    gids = {gid} if gid is not None else set()
    gids.update(g['gid'] for g in groups.values() if user in g['members'])
    names = names_by_id(groups, 'gid')
    return {
        'name': user, 'found': True, 'source': source, 'uid': entry['uid'], 'gid': gid,
        'gids': sorted(gids), 'groups': [names.get(g, str(g)) for g in sorted(gids)],
    }


# ---------------------------------------------------------------- KVM

def can_open_rw(st, uid, gids):
    """Whether a process with uid/gids may open a file of stat `st` for reading and writing."""
    if uid == 0:
        return True
    if st.st_uid == uid:
        bits = (st.st_mode >> 6) & 0o7
    elif st.st_gid in gids:
        bits = (st.st_mode >> 3) & 0o7
    else:
        bits = st.st_mode & 0o7
    return bits & 0o6 == 0o6


def read_kvm_device(fs, qemu_user, accounts):
    st = fs.stat('/dev/kvm')
    device = {'path': '/dev/kvm', 'present': st is not None, 'char_device': False}
    if st is None:
        return device
    users, groups = names_by_id(accounts[0], 'uid'), names_by_id(accounts[1], 'gid')
    device.update({
        'char_device': stat_module.S_ISCHR(st.st_mode),
        'major': os.major(st.st_rdev) if stat_module.S_ISCHR(st.st_mode) else None,
        'minor': os.minor(st.st_rdev) if stat_module.S_ISCHR(st.st_mode) else None,
        'mode': '%04o' % stat_module.S_IMODE(st.st_mode),
        'permissions': stat_module.filemode(st.st_mode),
        'uid': st.st_uid, 'gid': st.st_gid,
        'owner': users.get(st.st_uid), 'group': groups.get(st.st_gid),
    })
    if qemu_user.get('found'):
        device['usable_by_qemu_user'] = can_open_rw(st, qemu_user['uid'], set(qemu_user['gids']))
    else:
        device['usable_by_qemu_user'] = None
    return device


def read_kvm_modules(fs):
    """Loaded KVM modules (a built-in kvm shows up in /sys/module too)."""
    return [m for m in fs.listdir('/sys/module') if m == 'kvm' or m.startswith('kvm_')]


def read_nested(fs, module):
    value = fs.read_text('/sys/module/%s/parameters/nested' % module) if module else None
    return {
        'module': module,
        'value': value,
        'enabled': None if value is None else value.strip() in ('Y', 'y', '1'),
    }


def read_kvm(fs, cpu, qemu_user_name=None):
    virtualization = cpu_utils.virtualization(cpu.get('vendor'))
    vendor_module = virtualization['kvm_module'] if virtualization else None
    accounts = read_accounts(fs)
    qemu_user = resolve_qemu_user(fs, qemu_user_name, accounts)
    return {
        'device': read_kvm_device(fs, qemu_user, accounts),
        'qemu_user': qemu_user,
        'modules': read_kvm_modules(fs),
        'vendor_module': vendor_module,
        'nested': read_nested(fs, vendor_module),
    }


# ---------------------------------------------------------------- hugepages

def size_kb(text):
    """A kernel size (2M, 1G, 2048k, 4096) in kB, or None."""
    text = (text or '').strip()
    units = {'k': 1, 'm': 1024, 'g': 1024 * 1024}
    number, unit = (text[:-1], text[-1].lower()) if text[-1:].lower() in units else (text, None)
    if not number.isdigit():
        return None
    return int(number) * units[unit] if unit else int(number) // 1024


def requested_hugepages(args, default_kb):
    """(size_kb, count) pairs the command line asks for: hugepages= counts for the preceding hugepagesz=."""
    requests, size = {}, None
    for arg in args:
        key, value = arg_key(arg), arg.value or ''
        if key == 'default_hugepagesz':
            default_kb = size_kb(value) or default_kb
        elif key == 'hugepagesz':
            size = size_kb(value)
        elif key == 'hugepages' and value.isdigit():
            requests[size] = int(value)
    return [{'size_kb': s if s is not None else default_kb, 'count': c} for s, c in requests.items()]


def read_hugepages(fs, args):
    meminfo = {}
    for line in fs.read_lines('/proc/meminfo'):
        key, sep, value = line.partition(':')
        if sep and value.split() and value.split()[0].isdigit():
            meminfo[key.strip()] = int(value.split()[0])
    sizes = []
    for entry in fs.listdir('/sys/kernel/mm/hugepages'):
        if entry.startswith('hugepages-') and entry.endswith('kB'):
            base = '/sys/kernel/mm/hugepages/' + entry
            sizes.append({
                'size_kb': int(entry[len('hugepages-'):-2]),
                'total': fs.read_int(base + '/nr_hugepages', base=10),
                'free': fs.read_int(base + '/free_hugepages', base=10),
            })
    sizes.sort(key=lambda s: s['size_kb'])
    thp = fs.read_text('/sys/kernel/mm/transparent_hugepage/enabled')
    default_kb = meminfo.get('Hugepagesize')
    return {
        'readable': 'HugePages_Total' in meminfo,
        'default_size_kb': default_kb,
        'total': meminfo.get('HugePages_Total'),
        'free': meminfo.get('HugePages_Free'),
        'reserved': meminfo.get('HugePages_Rsvd'),
        'surplus': meminfo.get('HugePages_Surp'),
        'sizes': sizes,
        'requested': requested_hugepages(args, default_kb),
        # "always [madvise] never": the bracketed word is the active setting.
        'transparent_hugepage': thp.split('[', 1)[1].split(']', 1)[0] if thp and '[' in thp else thp,
    }


# ---------------------------------------------------------------- UEFI firmware descriptors

def _machine_is_q35(pattern):
    # Descriptors name machine types as glob patterns over versioned names: pc-q35-*.
    return pattern.startswith('pc-q35') or pattern == GUEST_MACHINE


def parse_descriptor(name, path, text):
    """One QEMU firmware descriptor (docs/interop/firmware.json) as facts."""
    entry = {'name': name, 'path': path}
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError('not a JSON object')
    except ValueError as exc:
        entry['error'] = 'invalid descriptor: %s' % exc
        return entry
    mapping = data.get('mapping') or {}
    executable = mapping.get('executable') or {}
    nvram = mapping.get('nvram-template') or {}
    features = list(data.get('features') or [])
    targets = [{'architecture': t.get('architecture'), 'machines': list(t.get('machines') or [])}
               for t in data.get('targets') or [] if isinstance(t, dict)]
    entry.update({
        'description': data.get('description'),
        'interface_types': list(data.get('interface-types') or []),
        'device': mapping.get('device'),
        'mode': mapping.get('mode'),
        'executable': executable.get('filename') or mapping.get('filename'),
        'format': executable.get('format'),
        'nvram_template': nvram.get('filename'),
        'targets': targets,
        'features': features,
        'secure_boot': 'secure-boot' in features,
        'enrolled_keys': 'enrolled-keys' in features,
        'requires_smm': 'requires-smm' in features,
        'x86_64_q35': any(t['architecture'] == GUEST_ARCH and any(_machine_is_q35(m) for m in t['machines'])
                          for t in targets),
    })
    return entry


def read_firmware(fs):
    """The firmware descriptors QEMU and libvirt would consider, in their order of precedence."""
    chosen = {}
    for directory in FIRMWARE_DIRS:
        for name in fs.listdir(directory):
            if name.endswith('.json'):
                chosen[name] = posixpath.join(directory, name)
    descriptors = []
    for name in sorted(chosen):
        path = chosen[name]
        text = fs.read_text(path)
        if text is None or not text.strip():
            continue  # an empty file masks a same-named descriptor
        entry = parse_descriptor(name, path, text)
        if entry.get('executable'):
            entry['executable_present'] = fs.exists(entry['executable'])
        descriptors.append(entry)
    return {'descriptors': descriptors}


# ---------------------------------------------------------------- swtpm

def find_programs(fs, names, path=SYSTEM_PATH):
    """name -> absolute path of the first executable file of that name on `path`, or None."""
    found = {}
    for name in names:
        found[name] = None
        for directory in path:
            candidate = posixpath.join(directory, name)
            st = fs.stat(candidate)
            if st is not None and stat_module.S_ISREG(st.st_mode) and st.st_mode & 0o111:
                found[name] = candidate
                break
    return found


# ---------------------------------------------------------------- libvirt

def read_libvirt(uri, open_connection=libvirt_client.open_connection):
    """What a read-only connection to `uri` tells: versions and the domain types offered.

    Never raises for an unreachable daemon or a missing binding: the facts
    say what went wrong, and check_libvirt turns that into a verdict.
    """
    facts = {'checked': True, 'uri': uri, 'reachable': False, 'error': None, 'missing_library': None}
    try:
        conn = open_connection(uri, readonly=True)
    except MissingLibrary as exc:
        facts['missing_library'] = exc.package
        facts['error'] = 'the Python binding of libvirt is not installed (%s)' % exc.package
        return facts
    except LibvirtFailure as exc:
        facts['error'] = exc.msg
        return facts
    try:
        raw = libvirt_client.hypervisor_facts(conn)
    except LibvirtFailure as exc:
        facts['error'] = exc.msg
        return facts
    finally:
        conn.close()
    facts.update({
        'reachable': True,
        'driver': raw['driver'],
        'libvirt_version': libvirt_client.version_string(raw['libvirt_version']),
        'hypervisor_version': libvirt_client.version_string(raw['hypervisor_version']),
    })
    try:
        facts.update(parse_capabilities(raw['capabilities'], arch=GUEST_ARCH))
    except ET.ParseError as exc:
        facts['error'] = 'unreadable capabilities XML: %s' % exc
    return facts


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
    """args: the kernel's arguments (kernel_args.KernelArg), to name what switched the IOMMU off."""
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
    if not os.path.isdir(fs.root):
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
