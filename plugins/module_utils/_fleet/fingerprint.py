# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's fingerprint (what should not differ between Phyllome OS hosts) and the drift of a fleet.

A fingerprint is a flat dict: one key per thing that can differ
(`kernel_arg.intel_iommu`, `cpu.feature.avx512f`, `qemu_conf.vnc_listen`,
`version.qemu`, ...), so comparing hosts is comparing dicts, and a table row
is one key. `compose` builds it from the facts fingerprint_info reads;
`fleet_drift` compares the hosts' fingerprints (and the guests' drift of
each host) and says which differences block migration. Plain data in and out.
"""

from __future__ import annotations

import hashlib
import json
import re

# Kernel arguments that name the host's own disks, images or identity: they
# always differ between hosts, so they are not part of the fingerprint.
HOST_SPECIFIC_ARGS = frozenset([
    'BOOT_IMAGE', 'root', 'initrd', 'resume', 'rd.luks.uuid', 'rd.lvm.lv', 'rd.lvm.vg', 'rd.md.uuid', 'ostree',
    'systemd.machine_id', 'hostname', 'ip', 'rootflags', 'rootfstype',
])

# Differences that stop a guest from moving between the hosts: libvirt
# refuses a guest CPU the target cannot run, a machine type the target's
# QEMU does not have, and a firmware the target does not ship.
BLOCKING = (
    ('cpu.', 'a guest CPU of one host may not run on the other (phyllome.os.cpu_baseline computes one that runs on all)'),
    ('machine.', "a guest of this machine type cannot start on a host whose QEMU lacks it"),
    ('firmware.', 'a UEFI guest needs the same firmware (and varstore template) on the target'),
)

# Host role variables that name the host's own identity: they differ between
# hosts by design (libvirt refuses to migrate between two hosts with one host
# UUID; each host's TLS certificates carry its own name, and its own keys), so
# they are not part of the fingerprint. The CA certificate and the DNs let in
# are the fleet's, and stay in it.
HOST_SPECIFIC_VARIABLES = frozenset([
    'phyllome_host_libvirt_host_uuid',
    'phyllome_host_libvirt_tls_server_cert', 'phyllome_host_libvirt_tls_server_key',
    'phyllome_host_libvirt_tls_client_cert', 'phyllome_host_libvirt_tls_client_key',
])

# Variable names whose values are never shown: their digest is compared instead.
_SECRET = re.compile(r'(password|passphrase|secret|token|private|(^|_)key$|_keys?_)', re.IGNORECASE)


def _kernel_arg_value(arg):
    return True if arg.value is None else arg.value


def kernel_arg_entries(args):
    """`kernel_arg.<name>` entries of parsed kernel arguments (cmdline.kernel_args); a bare flag is True.

    A repeated argument (`console=tty0 console=ttyS0`) keeps every value, in order.
    """
    entries = {}
    for arg in args:
        if arg.name in HOST_SPECIFIC_ARGS:
            continue
        key = 'kernel_arg.%s' % arg.name
        value = _kernel_arg_value(arg)
        if key in entries:
            previous = entries[key]
            entries[key] = (previous if isinstance(previous, list) else [previous]) + [value]
        else:
            entries[key] = value
    return entries


def masked(name, value):
    """A variable's value as the fingerprint keeps it: a secret's digest, never the secret."""
    if value is None or not _SECRET.search(name):
        return value
    text = json.dumps(value, sort_keys=True, default=str)
    return 'sha256:%s (not shown)' % hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]


def _plain(value):
    """A value comparable with == and shown as JSON: dicts and lists as themselves, anything else as text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return dict((str(k), _plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def firmware_entry(descriptor):
    """What a firmware descriptor offers a q35 guest, as one comparable text."""
    flags = [f for f in ('secure-boot', 'enrolled-keys', 'requires-smm') if f in (descriptor.get('features') or [])]
    return '%s%s' % (descriptor.get('executable'), ' (%s)' % ', '.join(flags) if flags else '')


def compose(cmdline_args=(), cpu=None, domain_types=(), machines=(), firmware=(), versions=None, units=(),
            qemu_conf=None, variables=None):
    """A host's fingerprint from what was read on it.

    cmdline_args: parsed kernel arguments; cpu: the host-model CPU
    (cpu_baseline.host_model_cpu) or None; domain_types: kvm, qemu; machines: the machine types QEMU
    offers; firmware: host_info's firmware descriptors; versions: name ->
    version text; units: the libvirt units enabled; qemu_conf: key -> value
    of qemu.conf's settings; variables: the host role's variables as the
    play sees them (secrets masked).
    """
    fingerprint = kernel_arg_entries(cmdline_args)
    if cpu:
        fingerprint['cpu.vendor'] = cpu.get('vendor')
        fingerprint['cpu.model'] = cpu.get('model')
        for feature in cpu.get('features') or []:
            fingerprint['cpu.feature.%s' % feature['name']] = feature.get('policy') or 'require'
    if domain_types:
        fingerprint['cpu.domain_types'] = sorted(domain_types)
    for machine in machines:
        fingerprint['machine.%s' % machine] = 'offered'
    for descriptor in firmware:
        if descriptor.get('x86_64_q35') and not descriptor.get('error'):
            fingerprint['firmware.%s' % descriptor['name']] = firmware_entry(descriptor)
    for name, version in sorted((versions or {}).items()):
        fingerprint['version.%s' % name] = version
    for unit in units:
        fingerprint['libvirt_unit.%s' % unit] = 'enabled'
    for key, value in sorted((qemu_conf or {}).items()):
        fingerprint['qemu_conf.%s' % key] = value
    fingerprint.update(variable_entries(variables))
    return fingerprint


def variable_entries(variables):
    """`var.<name>` entries of the role's variables, secrets masked, the host's own identity left out."""
    return dict(('var.%s' % name, _plain(masked(name, value))) for name, value in sorted((variables or {}).items())
                if name not in HOST_SPECIFIC_VARIABLES)


def severity(key):
    """'block' when a difference of `key` stops migration, with why; else 'warn'."""
    for prefix, why in BLOCKING:
        if key.startswith(prefix):
            return 'block', why
    return 'warn', None


def category(key):
    return key.split('.', 1)[0]


def compare(fingerprints):
    """The keys whose values differ between hosts, in key order.

    `fingerprints` maps host -> fingerprint. A key a host lacks counts as
    None there (a kernel argument set on one host only differs). Each
    difference: key, category, severity, why (for blocking ones) and values
    (host -> value, every host).
    """
    hosts = sorted(fingerprints)
    keys = sorted(set().union(*[set(fp) for fp in fingerprints.values()])) if fingerprints else []
    differences = []
    for key in keys:
        values = dict((host, fingerprints[host].get(key)) for host in hosts)
        distinct = []
        for value in values.values():
            if value not in distinct:
                distinct.append(value)
        if len(distinct) > 1:
            level, why = severity(key)
            differences.append({'key': key, 'category': category(key), 'severity': level, 'why': why,
                                'values': values})
    return differences


def guest_drift(domains_result):
    """A host's guests that differ from the inventory, from phyllome.os.domains' check-mode result.

    Returns missing (declared, not defined), differ (declared, defined
    otherwise: name and changes, in the module's words), undeclared (defined,
    declared nowhere) and failed (name and msg).
    """
    drift = {'missing': [], 'differ': [], 'undeclared': [], 'failed': []}
    # a failure registered under failed_when: false has failed false, a msg and no results
    if 'results' not in domains_result:
        drift['failed'].append({'name': None, 'msg': domains_result.get('msg') or 'phyllome.os.domains failed'})
    for entry in domains_result.get('results') or []:
        status = entry.get('status')
        if status == 'created':
            drift['missing'].append(entry['name'])
        elif status == 'updated':
            changes = [d.get('change') for d in entry.get('differences') or [] if d.get('change')]
            drift['differ'].append({'name': entry['name'],
                                    'changes': changes or list(entry.get('changes') or entry.get('actions') or [])})
        elif status == 'undeclared':
            drift['undeclared'].append(entry['name'])
        elif status in ('failed', 'not attempted'):
            drift['failed'].append({'name': entry.get('name'), 'msg': entry.get('msg') or status})
    return drift


def fleet_drift(fingerprints, guests=None, errors=None):
    """The drift of a fleet: the hosts' differences and each host's guests.

    fingerprints: host -> fingerprint; guests: host -> guest_drift() or a
    {failed, msg} result; errors: host -> why its fingerprint is missing.
    Returns hosts, differences (compare()), blocking and warning (their
    keys), guests (hosts with guest drift only) and errors.
    """
    differences = compare(fingerprints)
    guest_report = {}
    for host, drift in sorted((guests or {}).items()):
        if any(drift.get(k) for k in ('missing', 'differ', 'undeclared', 'failed')):
            guest_report[host] = drift
    return {
        'hosts': sorted(set(fingerprints) | set(errors or {})),
        'differences': differences,
        'blocking': [d['key'] for d in differences if d['severity'] == 'block'],
        'warning': [d['key'] for d in differences if d['severity'] == 'warn'],
        'guests': guest_report,
        'errors': dict(sorted((errors or {}).items())),
    }


def show(value):
    """A fingerprint value in a table cell: '-' for absent, JSON for lists and dicts."""
    if value is None:
        return '-'
    if value is True:
        return 'set'
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def table_lines(drift):
    """The drift as console lines: a header, one line per difference, then the guests."""
    hosts = [h for h in drift['hosts'] if h not in drift['errors']]
    lines = []
    if drift['differences']:
        lines.append('%d difference%s between %s (%d block migration)' % (
            len(drift['differences']), '' if len(drift['differences']) == 1 else 's', ', '.join(hosts),
            len(drift['blocking'])))
        for diff in drift['differences']:
            lines.append('%s %s: %s' % (
                'BLOCK' if diff['severity'] == 'block' else 'warn ', diff['key'],
                '; '.join('%s=%s' % (host, show(diff['values'].get(host))) for host in hosts)))
    else:
        lines.append('no difference between %s' % (', '.join(hosts) or 'no host'))
    for host, why in drift['errors'].items():
        lines.append('error %s: no fingerprint: %s' % (host, why))
    for host, guests in drift['guests'].items():
        for name in guests.get('missing') or []:
            lines.append('guest %s/%s: declared, not defined' % (host, name))
        for entry in guests.get('differ') or []:
            lines.append('guest %s/%s: differs from the inventory (converging would do: %s)' % (
                host, entry['name'], '; '.join(entry['changes']) or 'power state'))
        for name in guests.get('undeclared') or []:
            lines.append('guest %s/%s: defined, declared nowhere' % (host, name))
        for entry in guests.get('failed') or []:
            lines.append('guest %s/%s: not compared: %s' % (host, entry['name'] or '*', entry['msg']))
    return lines


def _gathered(result):
    """A registered task result that ran and succeeded (not skipped, failed or unreachable)."""
    return isinstance(result, dict) and not (result.get('skipped') or result.get('failed') or result.get('unreachable'))


def drift_of_results(hosts):
    """fleet_drift() from what a play registered per host, with its console lines (`lines`).

    `hosts` maps host -> {fingerprint_info (the module's registered result),
    variables (the host role's variables), guests (phyllome.os.domains'
    check-mode result; left out or skipped: not compared)}.
    """
    fingerprints, errors, guests = {}, {}, {}
    for host, data in hosts.items():
        info = data.get('fingerprint_info')
        if _gathered(info) and isinstance(info.get('fingerprint'), dict):
            fingerprints[host] = dict(info['fingerprint'], **variable_entries(data.get('variables')))
        else:
            errors[host] = (info or {}).get('msg') or 'fingerprint_info did not run'
        result = data.get('guests')
        if isinstance(result, dict) and not result.get('skipped'):
            guests[host] = guest_drift(result)
    drift = fleet_drift(fingerprints, guests, errors)
    drift['lines'] = table_lines(drift)
    return drift
