# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report's console lines and HTML pages (plugin_utils/_report.py, filter/report.py)."""

from __future__ import annotations

import html.parser
import re

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.phyllome.os.plugins.filter import report as report_filter
from ansible_collections.phyllome.os.plugins.module_utils._fleet import fingerprint
from ansible_collections.phyllome.os.plugins.plugin_utils import _report

HOSTILE = '<script>alert("x")</script><img src="http://evil.invalid/x.png">&amp;\'"'


def host_report(host='lab1', **overrides):
    report = {
        'host': host,
        'page': _report.page_name(host),
        'page_path': '/tmp/r/%s' % _report.page_name(host),
        'generated': '2026-12-01 12:00 UTC',
        'uri': 'qemu:///system',
        'host_info': {
            'verdict': 'warn', 'summary': ['warn iommu: no IOMMU'],
            'checks': [{'name': 'kvm_device', 'verdict': 'pass', 'reason': '/dev/kvm usable'},
                       {'name': 'iommu', 'verdict': 'warn', 'reason': 'no IOMMU'}],
            'host': {'libvirt': {'libvirt_version': '9.0.0', 'hypervisor_version': '7.2.0'}},
        },
        'iommu_info': {
            'iommu': {'active': True, 'kind': 'intel', 'label': 'Intel VT-d (DMAR)', 'interrupt_remapping': True,
                      'kernel_args': ['intel_iommu=on', 'iommu=pt']},
            'groups': [
                {'group': 1, 'verdict': 'viable',
                 'devices': [{'address': '0000:00:03.0', 'class_name': 'Ethernet controller',
                              'vendor_name': 'Intel Corporation', 'device_name': '82574L', 'driver': 'e1000e'}],
                 'reasons': [{'code': 'single_endpoint', 'message': 'one endpoint'}], 'notes': [], 'advice': []},
                {'group': 2, 'verdict': 'unsafe', 'devices': [{'address': '0000:00:02.0', 'driver': 'e1000e'}],
                 'reasons': [{'code': 'default_route_nic', 'message': 'carries the default route'}], 'notes': [],
                 'advice': ['Keep it.']},
            ],
        },
        'domain_info': {'domains': [{
            'name': 'web1', 'state': 'running', 'domain_type': 'kvm', 'machine': 'pc-q35-7.2', 'vcpus': 2,
            'memory_mib': 2048, 'autostart': True, 'firmware': 'efi', 'secure_boot': True,
            'tpm': {'model': 'tpm-crb', 'backend': 'emulator', 'version': '2.0'},
            'disks': [{'target': 'vda', 'device': 'disk', 'path': '/var/lib/libvirt/images/web1.qcow2', 'format': 'qcow2',
                       'readonly': False}],
            'interfaces': [{'mac': '52:54:00:00:00:01', 'type': 'network', 'source': 'default', 'model': 'virtio',
                            'addresses': [{'address': '192.168.122.10', 'prefix': 24, 'family': 'ipv4', 'source': 'lease'}],
                            'address_source': 'lease'},
                           {'mac': '52:54:00:00:00:02', 'type': 'bridge', 'source': 'br0', 'model': 'virtio',
                            'addresses': [], 'address_source': None}],
            'address_lookup': [{'source': 'agent', 'outcome': 'unavailable', 'message': 'agent not connected'},
                               {'source': 'lease', 'outcome': 'answered', 'message': None},
                               {'source': 'arp', 'outcome': 'no_address', 'message': None}],
        }]},
    }
    report.update(overrides)
    return report


class Audit(html.parser.HTMLParser):
    """Tags, attributes and text of a page."""

    def __init__(self, page):
        super().__init__()
        self.tags, self.attrs, self.text, self.styles = [], [], [], []
        self._in_style = False
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend((tag, name, value) for name, value in attrs)
        self._in_style = tag == 'style'

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        (self.styles if self._in_style else self.text).append(data)


def assert_self_contained(page):
    audit = Audit(page)
    assert not {'script', 'link', 'img', 'iframe', 'object', 'embed', 'svg', 'base', 'form'} & set(audit.tags)
    for tag, name, value in audit.attrs:
        assert name not in ('src', 'srcset', 'style', 'action') and not name.startswith('on'), (tag, name, value)
        if name == 'href':
            # links only to pages beside this one
            assert re.match(r'^[A-Za-z0-9._%-]+\.html$', value), value
    assert 'url(' not in ''.join(audit.styles) and '@import' not in ''.join(audit.styles)
    assert ('meta', 'content', _report.CSP) in audit.attrs
    return audit


def test_host_page_shows_the_three_probes():
    page = _report.host_page(host_report())
    text = ' '.join(' '.join(assert_self_contained(page).text).split())
    for expected in ('lab1', 'warn', 'kvm_device', '/dev/kvm usable', 'Intel VT-d (DMAR), active', 'intel_iommu=on iommu=pt',
                     'viable', 'unsafe', 'carries the default route', '0000:00:03.0', 'Ethernet controller: Intel Corporation 82574L (driver e1000e)',
                     'web1', 'running', 'efi + Secure Boot', 'tpm-crb 2.0 (emulator)', '/var/lib/libvirt/images/web1.qcow2',
                     '192.168.122.10/24 (lease)', 'no address found', 'agent unavailable agent not connected',
                     'libvirt 9.0.0, QEMU 7.2.0'):
        assert expected in text, expected


def test_every_value_is_escaped():
    hostile = host_report(host=HOSTILE, uri=HOSTILE, generated=HOSTILE)
    hostile['host_info']['checks'][0]['reason'] = HOSTILE
    hostile['host_info']['checks'][0]['verdict'] = HOSTILE
    hostile['iommu_info']['groups'][0]['devices'][0]['device_name'] = HOSTILE
    dom = hostile['domain_info']['domains'][0]
    dom.update(name=HOSTILE, state=HOSTILE, machine=HOSTILE)
    dom['interfaces'][0]['addresses'][0]['address'] = HOSTILE
    dom['disks'][0]['path'] = HOSTILE
    dom['address_lookup'][0]['message'] = HOSTILE
    for page in (_report.host_page(hostile), _report.index_page([hostile], title=HOSTILE, generated=HOSTILE)):
        audit = assert_self_contained(page)
        assert '<script>' not in page and 'evil.invalid/x.png">' not in page
        assert HOSTILE in ''.join(audit.text)  # shown as text, intact
    assert _report.page_name(HOSTILE) == '_script_alert__x____script__img_src__http___evil.invalid_x.png___amp___.html'


@pytest.mark.parametrize('host, name', [('lab1', 'lab1.html'), ('web-1.example.org', 'web-1.example.org.html'),
                                        ('../../etc/x', '_.._etc_x.html'), ('..', '_.html'), ('a b/c', 'a_b_c.html')])
def test_page_name_stays_in_the_directory(host, name):
    assert _report.page_name(host) == name


def test_failed_probes_are_shown_not_hidden():
    report = host_report(
        host_info={'failed': True, 'msg': 'python3-libvirt is missing'},
        iommu_info={'changed': False, 'failed': False, 'msg': 'cannot read /sys'},  # registered with failed_when: false
        domain_info={'failed': False, 'msg': 'cannot connect to qemu:///system: no socket'})
    page = _report.host_page(report)
    text = ' '.join(Audit(page).text)
    assert 'host_info failed: python3-libvirt is missing' in text
    assert 'iommu_info failed: cannot read /sys' in text
    assert 'domain_info failed: cannot connect to qemu:///system: no socket' in text
    lines = _report.summary_lines(report)
    assert lines[0] == 'lab1: host_info failed: python3-libvirt is missing'
    assert '  domain_info failed: cannot connect to qemu:///system: no socket' in lines
    assert _report.host_verdict(report) == 'error'


def test_summary_lines():
    assert _report.summary_lines(host_report()) == [
        'lab1: readiness warn (1 pass, 1 warn)',
        '  warn iommu: no IOMMU',
        '  IOMMU: Intel VT-d (DMAR), 2 groups (1 unsafe, 1 viable)',
        '  domains: 1 (1 running)',
        '    web1: running, efi + Secure Boot, TPM tpm-crb; 192.168.122.10/24 (lease); 52:54:00:00:00:02: no address',
        '  page: /tmp/r/lab1.html',
    ]


def test_index_lists_every_host_and_links_its_page():
    page = _report.index_page([host_report('lab2'), host_report('lab1', domain_info={'domains': []})],
                              title='Fleet', generated='now', hosts=['lab1', 'lab2', 'gone'])
    audit = assert_self_contained(page)
    assert [v for t, n, v in audit.attrs if n == 'href'] == ['lab1.html', 'lab2.html']
    text = ' '.join(' '.join(audit.text).split())
    assert 'Fleet' in text and '3 hosts' in text
    assert 'gone error no report: the host was unreachable or failed' in text
    assert 'lab2 warn 1 warn, 1 pass 2 (1 unsafe, 1 viable) 1 (1 running)' in text


def test_index_shows_the_fleet_drift():
    # composed: the drift of two hosts as fleet_drift returns it, one value hostile
    drift = fingerprint.drift_of_results({
        'lab1': {'fingerprint_info': {'fingerprint': {'firmware.60-edk2-x86_64.json': '/usr/share/OVMF/OVMF_CODE_4M.fd',
                                                      'qemu_conf.vnc_listen': '127.0.0.1'}}},
        'lab2': {'fingerprint_info': {'fingerprint': {'qemu_conf.vnc_listen': HOSTILE}},
                 'guests': {'results': [{'name': 'stray', 'status': 'undeclared'},
                                        {'name': 'tiny', 'status': 'updated',
                                         'differences': [{'change': 'memory changed from 200 MiB to 192 MiB'}]}]}},
    })
    page = _report.index_page([host_report('lab1'), host_report('lab2')], drift=drift)
    audit = assert_self_contained(page)
    text = ' '.join(' '.join(audit.text).split())
    assert '2 differences, 1 blocking migration' in text
    assert 'block a UEFI guest needs the same firmware' in text
    assert 'firmware.60-edk2-x86_64.json /usr/share/OVMF/OVMF_CODE_4M.fd -' in text
    assert 'warn qemu_conf.vnc_listen 127.0.0.1' in text
    assert 'lab2 stray undeclared defined, declared nowhere' in text
    assert 'lab2 tiny differs memory changed from 200 MiB to 192 MiB' in text
    assert '<script>' not in page
    # without a drift, no drift section
    assert 'Drift between the hosts' not in _report.index_page([host_report('lab1')])
    assert 'Drift between the hosts' in report_filter.FilterModule().filters()['report_index_page'](
        [host_report()], drift=drift)
    with pytest.raises(AnsibleFilterError, match='fleet_drift'):
        report_filter.report_index_page([host_report()], drift='lab1')


def test_filters():
    filters = report_filter.FilterModule().filters()
    assert filters['report_page_name']('lab1') == 'lab1.html'
    assert filters['report_summary'](host_report())[0].startswith('lab1: readiness warn')
    assert filters['report_host_page'](host_report()).startswith('<!DOCTYPE html>')
    assert 'lab1.html' in filters['report_index_page']([host_report()])
    with pytest.raises(AnsibleFilterError, match='expects a host report'):
        filters['report_host_page']('lab1')
    with pytest.raises(AnsibleFilterError, match='a list of host reports'):
        filters['report_index_page']({'host': 'lab1'})
