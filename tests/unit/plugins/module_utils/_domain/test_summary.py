# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""domain_info's summary of a domain, read from XML a real libvirtd stored."""

from __future__ import annotations

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput, LibvirtFailure
from ansible_collections.phyllome.os.plugins.module_utils._domain import info
from ansible_collections.phyllome.os.plugins.module_utils._domain import summary as domain_summary
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import parse, parse_domain
from ansible_collections.phyllome.os.tests.unit.plugins.module_utils._domain import domain_cases


def stored(case):
    return parse_domain(domain_cases.read(domain_cases.libvirt_path(case)))


def test_windows11_summary():
    found = [{'address': '192.168.122.50', 'prefix': 24, 'family': 'ipv4', 'source': 'lease'}]
    addresses = {'52:54:00:6b:3c:11': ('lease', found)}
    data = domain_summary.summary(stored('windows11'), 'running', True, True, addresses)
    assert (data['name'], data['state'], data['autostart'], data['domain_type']) == ('win11', 'running', True, 'kvm')
    assert data['machine'].startswith('pc-q35-')
    assert (data['vcpus'], data['memory_mib'], data['current_memory_mib']) == (4, 8192, 8192)
    assert (data['firmware'], data['secure_boot']) == ('efi', True)
    assert data['tpm'] == {'model': 'tpm-crb', 'backend': 'emulator', 'version': '2.0'}
    assert [(d['target'], d['device'], d['bus'], d['readonly']) for d in data['disks']] == [
        ('vda', 'disk', 'virtio', False), ('sda', 'cdrom', 'sata', True), ('sdb', 'cdrom', 'sata', True)]
    assert data['interfaces'] == [{'mac': '52:54:00:6b:3c:11', 'type': 'network', 'source': 'default',
                                   'model': 'virtio', 'addresses': found, 'address_source': 'lease'}]
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
    assert [(i['addresses'], i['address_source']) for i in data['interfaces']] == [([], None)] * 2
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


def test_interface_macs():
    dom = parse("<domain><devices><interface type='network'><mac address='52:54:00:AA:00:01'/></interface>"
                "<interface type='user'/><interface type='bridge'><mac address='52:54:00:aa:00:02'/></interface>"
                "</devices></domain>")
    assert domain_summary.interface_macs(dom) == ['52:54:00:aa:00:01', '52:54:00:aa:00:02']


MAC_A, MAC_B = '52:54:00:aa:00:01', '52:54:00:aa:00:02'
V4 = {'address': '192.168.122.10', 'prefix': 24, 'family': 'ipv4'}
V4_B = {'address': '192.168.122.11', 'prefix': 24, 'family': 'ipv4'}
V6 = {'address': 'fe80::5054:ff:feaa:1', 'prefix': 64, 'family': 'ipv6'}
NO_AGENT = LibvirtFailure('agent addresses of vm: Guest agent is not responding: QEMU guest agent is not connected')


class Sources:
    """What each address source knows (a dict) or how it fails (an exception); records who was asked."""

    def __init__(self, **answers):
        self.answers = answers
        self.asked = []

    def __call__(self, source):
        self.asked.append(source)
        answer = self.answers.get(source, {})
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.mark.parametrize('answers, found, outcomes, asked', [
    # the agent knows both NICs: nobody else is asked
    ({'agent': {MAC_A: [V4, V6], MAC_B: [V4_B], '00:00:00:00:00:00': [{'address': '127.0.0.1'}]}},
     {MAC_A: 'agent', MAC_B: 'agent'}, ['answered', 'not_asked', 'not_asked'], ['agent']),
    # no agent: the lease answers for one NIC, ARP for the other
    ({'agent': NO_AGENT, 'lease': {MAC_A: [V4]}, 'arp': {MAC_A: [V4], MAC_B: [V4_B]}},
     {MAC_A: 'lease', MAC_B: 'arp'}, ['unavailable', 'answered', 'answered'], ['agent', 'lease', 'arp']),
    # the agent answers for one NIC only (the other is down inside the guest): the lease fills in the other
    ({'agent': {MAC_A: [V4]}, 'lease': {MAC_A: [V4], MAC_B: [V4_B]}},
     {MAC_A: 'agent', MAC_B: 'lease'}, ['answered', 'answered', 'not_asked'], ['agent', 'lease']),
    # an agent that lists a NIC without addresses has not answered for it
    ({'agent': {MAC_A: [], MAC_B: []}, 'lease': {}, 'arp': {}},
     {}, ['no_address', 'no_address', 'no_address'], ['agent', 'lease', 'arp']),
])
def test_find_addresses_fallback_order(answers, found, outcomes, asked):
    read = Sources(**answers)
    result, lookup = info.find_addresses([MAC_A, MAC_B], info.ADDRESS_SOURCE_ORDER, read)
    assert {mac: entry[0] for mac, entry in result.items()} == found
    assert [entry['outcome'] for entry in lookup] == outcomes
    assert [entry['source'] for entry in lookup] == ['agent', 'lease', 'arp']
    assert read.asked == asked
    for mac, (source, addresses) in result.items():
        assert addresses and all(a['source'] == source for a in addresses)
        assert [dict(a, source=None) for a in addresses] == [dict(a, source=None) for a in answers[source][mac]]
    if isinstance(answers.get('agent'), Exception):
        assert lookup[0]['message'] == NO_AGENT.msg
    else:
        assert lookup[0]['message'] is None


def test_find_addresses_in_the_order_asked():
    read = Sources(agent={MAC_A: [V6]}, lease={MAC_A: [V4]})
    result, lookup = info.find_addresses([MAC_A], ['lease', 'agent'], read)
    assert result == {MAC_A: ('lease', [dict(V4, source='lease')])}
    assert [(e['source'], e['outcome']) for e in lookup] == [('lease', 'answered'), ('agent', 'not_asked')]
    assert info.find_addresses([MAC_A], [], read) == ({}, [])


def test_collect_domains_on_libvirts_test_driver():
    libvirt_client = pytest.importorskip('ansible_collections.phyllome.os.plugins.module_utils._libvirt.domain_client')
    pytest.importorskip('libvirt')
    with libvirt_client.DomainClient.connect('test:///default') as client:
        domains = info.collect_domains(client, names=['test'])
        lease_only = info.collect_domains(client, names=['test'], address_sources=['lease'])
    nic = domains[0]['interfaces'][0]
    assert (nic['mac'], nic['address_source']) == ('aa:bb:cc:dd:ee:ff', 'agent')
    assert nic['addresses'] == [{'address': '192.168.122.3', 'prefix': 24, 'family': 'ipv4', 'source': 'agent'}]
    assert [(e['source'], e['outcome']) for e in domains[0]['address_lookup']] == [
        ('agent', 'answered'), ('lease', 'not_asked'), ('arp', 'not_asked')]
    assert lease_only[0]['interfaces'][0]['address_source'] == 'lease'


@pytest.mark.parametrize('os_id, family', [
    ('http://microsoft.com/win/11', 'windows'),
    ('http://fedoraproject.org/fedora/39', 'linux'),
    ('http://debian.org/debian/12', 'linux'),
    ('http://libosinfo.org/linux/2022', 'linux'),
    ('http://freebsd.org/freebsd/14.0', 'bsd'),
    ('http://haiku-os.org/haiku/r1beta4', 'other'),
    # A publisher's name as a prefix of another's is not a match.
    ('http://microsoft.com.example/x', 'other'),
])
def test_osinfo_family_from_the_metadata_virt_install_writes(os_id, family):
    domain = parse_domain("<domain type='kvm'><name>g</name><metadata>"
                          "<libosinfo:libosinfo xmlns:libosinfo='http://libosinfo.org/xmlns/libvirt/domain/1.0'>"
                          "<libosinfo:os id='%s'/></libosinfo:libosinfo></metadata></domain>" % os_id)
    assert domain_summary.osinfo(domain) == {'id': os_id, 'family': family}
    assert domain_summary.summary(domain, 'shutoff', False, True)['os'] == {'id': os_id, 'family': family}


def test_no_osinfo_metadata():
    assert domain_summary.summary(stored('passthrough'), 'shutoff', False, True)['os'] is None
