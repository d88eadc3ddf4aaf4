# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""domain_info's summary of a domain, read from XML a real libvirtd stored."""

from __future__ import annotations

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput
from ansible_collections.phyllome.os.plugins.module_utils._domain import info
from ansible_collections.phyllome.os.plugins.module_utils._domain import summary as domain_summary
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import parse, parse_domain
from ansible_collections.phyllome.os.tests.unit.plugins.module_utils._domain import domain_cases


def stored(case):
    return parse_domain(domain_cases.read(domain_cases.libvirt_path(case)))


def test_windows11_summary():
    addresses = {'52:54:00:6b:3c:11': [{'address': '192.168.122.50', 'prefix': 24, 'family': 'ipv4',
                                        'source': 'lease'}]}
    data = domain_summary.summary(stored('windows11'), 'running', True, True, addresses)
    assert (data['name'], data['state'], data['autostart'], data['domain_type']) == ('win11', 'running', True, 'kvm')
    assert data['machine'].startswith('pc-q35-')
    assert (data['vcpus'], data['memory_mib'], data['current_memory_mib']) == (4, 8192, 8192)
    assert (data['firmware'], data['secure_boot']) == ('efi', True)
    assert data['tpm'] == {'model': 'tpm-crb', 'backend': 'emulator', 'version': '2.0'}
    assert [(d['target'], d['device'], d['bus'], d['readonly']) for d in data['disks']] == [
        ('vda', 'disk', 'virtio', False), ('sda', 'cdrom', 'sata', True), ('sdb', 'cdrom', 'sata', True)]
    assert data['interfaces'] == [{'mac': '52:54:00:6b:3c:11', 'type': 'network', 'source': 'default',
                                   'model': 'virtio', 'addresses': addresses['52:54:00:6b:3c:11']}]
    assert data['graphics'] == [{'type': 'spice', 'listen': 'none', 'port': None}]
    assert data['created_volumes'] == []


def test_passthrough_summary():
    data = domain_summary.summary(stored('passthrough'), 'shutoff', False, True)
    assert data['hostdevs'] == [
        {'type': 'pci', 'managed': True, 'address': '0000:01:00.0', 'vendor': None, 'product': None},
        {'type': 'pci', 'managed': True, 'address': '0000:01:00.1', 'vendor': None, 'product': None},
        {'type': 'usb', 'managed': True, 'address': None, 'vendor': '0x046d', 'product': '0xc52b'},
        {'type': 'usb', 'managed': True, 'address': '3:4', 'vendor': None, 'product': None},
    ]
    assert data['disks'][0]['type'] == 'block' and data['disks'][0]['path'].startswith('/dev/disk/by-id/')


def test_virtiofs_and_bios_summaries():
    data = domain_summary.summary(stored('virtiofs'), 'shutoff', False, True)
    assert [f['target'] for f in data['filesystems']] == ['projects', 'isos']
    assert data['disks'][0]['pool'] == 'default' and data['disks'][0]['volume'] == 'devbox.qcow2'
    assert [i['type'] for i in data['interfaces']] == ['network', 'user']
    assert data['graphics'][0]['listen'] == '127.0.0.1'
    bios = domain_summary.summary(stored('other-bios'), 'shutoff', False, True)
    assert (bios['firmware'], bios['secure_boot'], bios['tpm']) == ('bios', False, None)


def test_loader_means_efi():
    dom = parse("<domain><os><loader readonly='yes' secure='yes' type='pflash'>/x.fd</loader></os></domain>")
    assert domain_summary.firmware(dom) == ('efi', True)


def test_query():
    data = {'domains': [{'name': 'a', 'state': 'running'}, {'name': 'b', 'state': 'shutoff'}]}
    assert info.query(data, "domains[?state=='running'].name") == ['a']
    with pytest.raises(InvalidInput, match='not a valid JMESPath'):
        info.query(data, 'domains[?')
