# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report of playbooks/report.yml as text and as self-contained HTML pages.

Input: one dict per host, as the phyllome.os.report role builds it -
C(host), C(page) (its file name), C(generated), C(uri), and the results of
host_info, iommu_info and domain_info (each possibly C(failed) with C(msg)).

Pages must open from a file on an air-gapped laptop: CSS inline, no script,
no external URL at all, and a Content-Security-Policy that forbids loading
anything should a value ever slip through. Every value goes through
html.escape (attributes quoted); nothing from a host is trusted.
"""

from __future__ import annotations

import html
from urllib.parse import quote

from ansible_collections.phyllome.os.plugins.module_utils._fleet.fingerprint import show

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:1.5em;color:#1d2327;
background:#fbfbfa;font-size:14px}
h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid #d0d4d6}
.meta{color:#5b6670;margin:0 0 1em}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #d9dde0;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#eef1f3;font-weight:600}
code{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:.92em}
.v{display:inline-block;padding:.05em .5em;border-radius:.8em;font-weight:600;font-size:.9em;white-space:nowrap}
.v-pass,.v-viable,.v-running,.v-answered{background:#d8f0dc;color:#17612a}
.v-warn,.v-differs,.v-missing,.v-undeclared,.v-needs_whole_group,.v-paused,.v-no_address,.v-pmsuspended,.v-shutdown{background:#fbefc9;color:#7a5300}
.v-fail,.v-block,.v-unsafe,.v-crashed,.v-unavailable,.v-error{background:#f8d7d5;color:#8a1c14}
.v-skip,.v-no_endpoints,.v-shutoff,.v-not_asked,.v-unknown,.v-nostate,.v-blocked{background:#e8eaec;color:#3c454d}
.small{color:#5b6670;font-size:.9em}ul{margin:0;padding-left:1.2em}
.error{background:#f8d7d5;border:1px solid #e0a9a4;padding:.5em .8em}
"""


def esc(value):
    """A value as HTML text (None as an empty string)."""
    return html.escape('' if value is None else str(value), quote=True)


def badge(verdict):
    word = 'unknown' if verdict in (None, '') else str(verdict)
    css = ''.join(c if c.isalnum() or c == '_' else '-' for c in word)
    return '<span class="v v-%s">%s</span>' % (css, esc(word.replace('_', ' ')))


def page_name(host):
    """The file name of a host's page: its inventory name, with anything unsafe in a file name replaced."""
    safe = ''.join(c if c.isalnum() or c in '._-' else '_' for c in str(host))
    return (safe.lstrip('.') or '_') + '.html'


def _page(title, body):
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            '<meta http-equiv="Content-Security-Policy" content="%s">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<title>%s</title>\n<style>%s</style></head>\n<body>\n%s\n</body></html>\n'
            % (esc(CSP), esc(title), STYLE, body))


def _table(headers, rows, empty):
    if not rows:
        return '<p class="small">%s</p>' % esc(empty)
    head = ''.join('<th>%s</th>' % esc(h) for h in headers)
    body = ''.join('<tr>%s</tr>' % ''.join('<td>%s</td>' % cell for cell in row) for row in rows)
    return '<table><thead><tr>%s</tr></thead><tbody>%s</tbody></table>' % (head, body)


def _list(items):
    items = [item for item in items if item]
    return '<ul>%s</ul>' % ''.join('<li>%s</li>' % item for item in items) if items else ''


def _failed(result, key):
    """The error of a probe that failed (or never ran), else None.

    The role registers a failed probe without failing the host, so a result
    without its `key` (checks, groups, domains) is a failure too.
    """
    if not isinstance(result, dict) or not result:
        return 'not gathered'
    if result.get('failed') or result.get('unreachable') or key not in result:
        return result.get('msg') or 'no result'
    return None


def _error(what, message):
    return '<p class="error">%s: %s</p>' % (esc(what), esc(message))


# --- the parts of a host's report, as data (shared by the console and the pages) ---

def domain_rows(report):
    """The host's domains as a list of dicts ready to show."""
    result = report.get('domain_info') or {}
    return [] if _failed(result, 'domains') else list(result.get('domains') or [])


def iommu_groups(report):
    result = report.get('iommu_info') or {}
    return [] if _failed(result, 'groups') else list(result.get('groups') or [])


def counts(items, key):
    found = {}
    for item in items:
        found[item.get(key)] = found.get(item.get(key), 0) + 1
    return found


def nic_addresses(nic):
    """'a/24, b/64 (agent)' or '' for a NIC."""
    addresses = ['%s/%s' % (a.get('address'), a.get('prefix')) if a.get('prefix') is not None else str(a.get('address'))
                 for a in nic.get('addresses') or []]
    if not addresses:
        return ''
    return '%s (%s)' % (', '.join(addresses), nic.get('address_source') or nic['addresses'][0].get('source'))


def host_verdict(report):
    result = report.get('host_info') or {}
    return 'error' if _failed(result, 'checks') else result.get('verdict')


def summary_lines(report):
    """The console summary of one host: a few lines of plain text."""
    host = report.get('host')
    lines = []
    info = report.get('host_info') or {}
    if _failed(info, 'checks'):
        lines.append('%s: host_info failed: %s' % (host, _failed(info, 'checks')))
    else:
        by_verdict = counts(info.get('checks') or [], 'verdict')
        lines.append('%s: readiness %s (%s)' % (host, info.get('verdict'), ', '.join(
            '%d %s' % (by_verdict[v], v) for v in ('pass', 'warn', 'fail', 'skip') if by_verdict.get(v))))
        lines.extend('  %s' % line for line in info.get('summary') or [])
    iommu = report.get('iommu_info') or {}
    if _failed(iommu, 'groups'):
        lines.append('  iommu_info failed: %s' % _failed(iommu, 'groups'))
    else:
        groups = iommu_groups(report)
        state = iommu.get('iommu') or {}
        by_verdict = counts(groups, 'verdict')
        lines.append('  IOMMU: %s, %d groups%s' % (
            state.get('label') or state.get('kind') or 'none' if state.get('active') else 'not active', len(groups),
            (' (%s)' % ', '.join('%d %s' % (n, v) for v, n in sorted(by_verdict.items()))) if groups else ''))
    domains = report.get('domain_info') or {}
    if _failed(domains, 'domains'):
        lines.append('  domain_info failed: %s' % _failed(domains, 'domains'))
    else:
        rows = domain_rows(report)
        by_state = counts(rows, 'state')
        lines.append('  domains: %d%s' % (len(rows), (' (%s)' % ', '.join(
            '%d %s' % (n, s) for s, n in sorted(by_state.items()))) if rows else ''))
        for dom in rows:
            nics = '; '.join(nic_addresses(nic) or '%s: no address' % nic.get('mac') for nic in dom.get('interfaces') or [])
            lines.append('    %s: %s, %s%s%s%s' % (
                dom.get('name'), dom.get('state'), dom.get('firmware'), ' + Secure Boot' if dom.get('secure_boot') else '',
                ', TPM %s' % dom['tpm'].get('model') if dom.get('tpm') else '', ('; ' + nics) if nics else ''))
    if report.get('page_path'):
        lines.append('  page: %s' % report['page_path'])
    return lines


# --- the host page ---

def _checks_section(report):
    info = report.get('host_info') or {}
    if _failed(info, 'checks'):
        return _error('host_info failed', _failed(info, 'checks'))
    rows = [[esc(c.get('name')), badge(c.get('verdict')), esc(c.get('reason'))] for c in info.get('checks') or []]
    return _table(['check', 'verdict', 'what was found'], rows, 'no checks')


def _device(dev):
    names = ' '.join(filter(None, [dev.get('vendor_name'), dev.get('device_name')]))
    return '<code>%s</code> %s%s%s' % (
        esc(dev.get('address')), esc(dev.get('class_name') or ''), (': ' + esc(names)) if names else '',
        ' <span class="small">(driver %s)</span>' % esc(dev.get('driver')) if dev.get('driver') else '')


def _iommu_section(report):
    iommu = report.get('iommu_info') or {}
    if _failed(iommu, 'groups'):
        return _error('iommu_info failed', _failed(iommu, 'groups'))
    state = iommu.get('iommu') or {}
    facts = [
        'IOMMU: %s' % ('%s, active' % esc(state.get('label') or state.get('kind')) if state.get('active') else 'not active'),
        'interrupt remapping: %s' % esc({True: 'on', False: 'off'}.get(state.get('interrupt_remapping'), 'unknown')),
        'kernel arguments: %s' % ('<code>%s</code>' % esc(' '.join(state['kernel_args'])) if state.get('kernel_args') else 'none'),
    ]
    rows = []
    for group in iommu_groups(report):
        reasons = [esc(r.get('message')) for r in group.get('reasons') or []]
        notes = ['<span class="small">%s</span>' % esc(n.get('message')) for n in group.get('notes') or []]
        advice = ['<span class="small">%s</span>' % esc(a) for a in group.get('advice') or []]
        rows.append([esc(group.get('group')), badge(group.get('verdict')),
                     _list([_device(dev) for dev in group.get('devices') or []]), _list(reasons + notes + advice)])
    return '<p>%s</p>%s' % (' &middot; '.join(facts), _table(
        ['group', 'verdict', 'devices', 'why'], rows, 'No IOMMU groups: the IOMMU is not active, so no device can be passed.'))


def _disk(disk):
    where = disk.get('path') or ('%s/%s' % (disk.get('pool'), disk.get('volume')) if disk.get('volume') else '')
    return '<code>%s</code> %s %s%s' % (
        esc(disk.get('target')), esc(disk.get('device')), esc(where),
        ' <span class="small">(%s%s)</span>' % (esc(disk.get('format') or ''), ', read-only' if disk.get('readonly') else '')
        if disk.get('format') or disk.get('readonly') else '')


def _nic(nic):
    addresses = nic_addresses(nic)
    return '<code>%s</code> %s %s%s &rarr; %s' % (
        esc(nic.get('mac')), esc(nic.get('type')), esc(nic.get('source') or ''),
        ' <span class="small">(%s)</span>' % esc(nic.get('model')) if nic.get('model') else '',
        esc(addresses) if addresses else '<span class="small">no address found</span>')


def _lookup(dom):
    return _list(['%s %s%s' % (esc(e.get('source')), badge(e.get('outcome')),
                               ' <span class="small">%s</span>' % esc(e['message']) if e.get('message') else '')
                  for e in dom.get('address_lookup') or []])


def _domains_section(report):
    result = report.get('domain_info') or {}
    if _failed(result, 'domains'):
        return _error('domain_info failed', _failed(result, 'domains'))
    rows = []
    for dom in domain_rows(report):
        tpm = dom.get('tpm')
        rows.append([
            '<strong>%s</strong><br><span class="small">%s, %s vCPU, %s MiB%s</span>' % (
                esc(dom.get('name')), esc(' '.join(str(v) for v in (dom.get('domain_type'), dom.get('machine')) if v)),
                esc(dom.get('vcpus')),
                esc(dom.get('memory_mib')), ', autostart' if dom.get('autostart') else ''),
            badge(dom.get('state')),
            esc(dom.get('firmware')) + (' + Secure Boot' if dom.get('secure_boot') else ''),
            esc('%s %s (%s)' % (tpm.get('model'), tpm.get('version') or '', tpm.get('backend'))) if tpm else 'none',
            _list([_disk(d) for d in dom.get('disks') or []]) or 'none',
            _list([_nic(n) for n in dom.get('interfaces') or []]) or 'none',
            _lookup(dom),
        ])
    return _table(['domain', 'state', 'firmware', 'TPM', 'disks', 'NICs and addresses', 'address sources'],
                  rows, 'No domains on this host.')


def host_page(report):
    """The self-contained HTML page of one host."""
    host = report.get('host')
    info = report.get('host_info') or {}
    libvirt = ((info.get('host') or {}).get('libvirt') or {}) if not _failed(info, 'checks') else {}
    versions = ', '.join(filter(None, [
        'libvirt %s' % libvirt['libvirt_version'] if libvirt.get('libvirt_version') else '',
        'QEMU %s' % libvirt['hypervisor_version'] if libvirt.get('hypervisor_version') else '']))
    body = ''.join([
        '<h1>%s %s</h1>' % (esc(host), badge(host_verdict(report))),
        '<p class="meta">Phyllome OS host report &middot; generated %s &middot; libvirt URI <code>%s</code>%s'
        ' &middot; <a href="index.html">all hosts</a></p>' % (
            esc(report.get('generated')), esc(report.get('uri')), (' &middot; ' + esc(versions)) if versions else ''),
        '<h2>Readiness (host_info)</h2>', _checks_section(report),
        '<h2>IOMMU groups (iommu_info)</h2>', _iommu_section(report),
        '<h2>Domains (domain_info)</h2>', _domains_section(report),
    ])
    return _page('%s - Phyllome OS host report' % host, body)


def _drift_section(drift):
    """The fleet's drift (fingerprint.fleet_drift) as a table: one row per difference, one column per host."""
    errors = drift.get('errors') or {}
    hosts = [h for h in drift.get('hosts') or [] if h not in errors]
    differences = drift.get('differences') or []
    parts = ['<h2>Drift between the hosts</h2>', '<p class="meta">%d difference%s, %d blocking migration</p>' % (
        len(differences), '' if len(differences) == 1 else 's', len(drift.get('blocking') or []))]
    rows = [[badge(d.get('severity')) + (
        '<br><span class="small">%s</span>' % esc(d['why']) if d.get('why') else ''), '<code>%s</code>' % esc(d.get('key'))]
        + ['<code>%s</code>' % esc(show(d.get('values', {}).get(h))) for h in hosts] for d in differences]
    parts.append(_table(['severity', 'key'] + hosts, rows, 'No difference between the hosts.'))
    if errors:
        parts.append(_list(['%s: no fingerprint: %s' % (esc(h), esc(why)) for h, why in errors.items()]))
    guest_rows = []
    for host, guests in sorted((drift.get('guests') or {}).items()):
        guest_rows += [[esc(host), esc(name), badge('missing'), 'declared, not defined'] for name in guests.get('missing') or []]
        guest_rows += [[esc(host), esc(e.get('name')), badge('differs'), _list([esc(c) for c in e.get('changes') or []]) or 'power state']
                       for e in guests.get('differ') or []]
        guest_rows += [[esc(host), esc(name), badge('undeclared'), 'defined, declared nowhere'] for name in guests.get('undeclared') or []]
        guest_rows += [[esc(host), esc(e.get('name') or '*'), badge('error'), esc(e.get('msg'))] for e in guests.get('failed') or []]
    parts += ['<h2>Guests against the inventory</h2>',
              _table(['host', 'guest', 'drift', 'what'], guest_rows, 'Every guest is as the inventory declares it.')]
    return ''.join(parts)


def index_page(reports, title='Phyllome OS hosts', generated=None, hosts=None, drift=None):
    """The fleet's index: one row per host, linking to its page; then the fleet's drift, when given.

    `hosts` (all the play's hosts) adds a row for each host that has no report (unreachable, or failed).
    `drift` is fingerprint.fleet_drift's result (playbooks/drift.yml).
    """
    reported = set(str(r.get('host')) for r in reports)
    reports = list(reports) + [{'host': h, 'msg': 'no report: the host was unreachable or failed'}
                               for h in hosts or [] if str(h) not in reported]
    rows = []
    for report in sorted(reports, key=lambda r: str(r.get('host'))):
        if not report.get('page'):
            rows.append([esc(report.get('host')), badge('error'), esc(report.get('msg') or 'no report: unreachable or failed'),
                         '', '', ''])
            continue
        info = report.get('host_info') or {}
        checks = counts(info.get('checks') or [], 'verdict') if not _failed(info, 'checks') else {}
        groups = iommu_groups(report)
        domains = domain_rows(report)
        by_state = counts(domains, 'state')
        rows.append([
            '<a href="%s">%s</a>' % (esc(quote(report['page'])), esc(report.get('host'))),
            badge(host_verdict(report)),
            esc(', '.join('%d %s' % (checks[v], v) for v in ('fail', 'warn', 'pass', 'skip') if checks.get(v))),
            esc('%d (%s)' % (len(groups), ', '.join('%d %s' % (n, v) for v, n in sorted(counts(groups, 'verdict').items())))
                if groups else 'none'),
            esc('%d (%s)' % (len(domains), ', '.join('%d %s' % (n, s) for s, n in sorted(by_state.items())))
                if domains else 'none'),
            esc(report.get('generated')),
        ])
    body = '<h1>%s</h1><p class="meta">%d host%s%s</p>%s' % (
        esc(title), len(rows), '' if len(rows) == 1 else 's', (' &middot; generated %s' % esc(generated)) if generated else '',
        _table(['host', 'readiness', 'checks', 'IOMMU groups', 'domains', 'report of'], rows, 'No hosts.'))
    if drift:
        body += _drift_section(drift)
    return _page(title, body)
