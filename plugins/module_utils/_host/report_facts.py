# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The facts behind host_info's readiness report: each reader takes a HostFS (or a libvirt URI) and returns plain data.

report.py judges them. Nothing here changes the host.
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

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import LibvirtFailure, MissingLibrary
from ansible_collections.phyllome.os.plugins.module_utils._common.units import kernel_size_kb
from ansible_collections.phyllome.os.plugins.module_utils._host import cpu as cpu_utils
from ansible_collections.phyllome.os.plugins.module_utils._host.cmdline import arg_key, kernel_args, running_cmdline
from ansible_collections.phyllome.os.plugins.module_utils._libvirt import connection as libvirt_client
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.capabilities import GUEST_ARCH, GUEST_MACHINE, parse_capabilities

# The user QEMU runs as when /etc/libvirt/qemu.conf does not say: Fedora's, then Debian's.
QEMU_USERS = ('qemu', 'libvirt-qemu')

# Where QEMU looks for firmware descriptors, lowest precedence first
# (QEMU's docs/interop/firmware.json; a same-named file in a later directory
# replaces an earlier one, an empty one hides it).
FIRMWARE_DIRS = ('/usr/share/qemu/firmware', '/etc/qemu/firmware')

SWTPM_PROGRAMS = ('swtpm', 'swtpm_setup')


# ---------------------------------------------------------------- kernel command line

def read_cmdline(fs):
    """/proc/cmdline as written and as the kernel's arguments (cmdline.KernelArg, before any `--`)."""
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


# libvirt's parser (virconf.c) takes both, without escapes: a string ends at its next quote of the same kind.
_QUOTES = ('"', "'")


def _quote_state(quote, char):
    """The quote a string is open with after `char` ('' outside any string)."""
    if quote:
        return '' if char == quote else quote
    return char if char in _QUOTES else ''


def _conf_value(raw):
    """A libvirt config value as data: "text" or 'text' as text, a number as int, [ ... ] as a list."""
    raw = raw.strip()
    if raw.startswith('['):
        return [_conf_value(item) for item in _split_list(raw.strip('[] \t\n')) if item.strip()]
    if raw[:1] in _QUOTES and raw.endswith(raw[0]) and len(raw) > 1:
        return raw[1:-1]
    try:
        return int(raw)
    except ValueError:
        return raw


def _split_list(text):
    items, current, quote = [], '', ''
    for char in text:
        quote = _quote_state(quote, char)
        if char == ',' and not quote:
            items.append(current)
            current = ''
        else:
            current += char
    return items + [current]


def _strip_comment(line):
    quote = ''
    for index, char in enumerate(line):
        quote = _quote_state(quote, char)
        if char == '#' and not quote:
            return line[:index]
    return line


def parse_libvirt_conf(text):
    """The settings of a libvirt daemon config file (qemu.conf, libvirtd.conf): key -> value, comments left out.

    Values as libvirt reads them: quoted strings, integers, and lists in
    brackets, which may span lines.
    """
    settings = {}
    pending = None
    for line in (text or '').splitlines():
        line = _strip_comment(line).strip()
        if pending is not None:
            pending[1] += ' ' + line
            if ']' in line:
                settings[pending[0]] = _conf_value(pending[1])
                pending = None
            continue
        key, sep, value = line.partition('=')
        if not sep or not key.strip():
            continue
        value = value.strip()
        if value.startswith('[') and ']' not in value:
            pending = [key.strip(), value]
            continue
        settings[key.strip()] = _conf_value(value)
    return settings


def read_qemu_conf(fs):
    """The settings of /etc/libvirt/qemu.conf (parse_libvirt_conf); `user` and `group` are None when not set."""
    settings = parse_libvirt_conf(fs.read_text('/etc/libvirt/qemu.conf', default=''))
    for key in ('user', 'group'):
        settings[key] = None if settings.get(key) is None else str(settings[key])
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

def requested_hugepages(args, default_kb):
    """(size_kb, count) pairs the command line asks for: hugepages= counts for the preceding hugepagesz=."""
    requests, size = {}, None
    for arg in args:
        key, value = arg_key(arg), arg.value or ''
        if key == 'default_hugepagesz':
            default_kb = kernel_size_kb(value) or default_kb
        elif key == 'hugepagesz':
            size = kernel_size_kb(value)
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

def find_programs(fs, names):
    """name -> absolute path of the first executable file of that name on libvirtd's search path, or None."""
    return dict((name, fs.find_program(name)) for name in names)


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
