# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_fleet.guests: the guests of libvirt hosts as inventory data, from what libvirt's test driver holds."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._fleet import guests


@pytest.fixture(scope='module')
def test_driver_domains():
    """domain_info's summaries of the domains of libvirt's test:///default driver."""
    pytest.importorskip('libvirt')
    from ansible_collections.phyllome.os.plugins.module_utils._domain.info import collect_domains
    from ansible_collections.phyllome.os.plugins.module_utils._libvirt.domain_client import DomainClient
    with DomainClient.connect('test:///default') as client:
        return collect_domains(client)


@pytest.mark.parametrize('uri, name', [
    ('qemu+ssh://root@host1.example/system', 'host1.example'),
    ('qemu+tls://192.0.2.7/system', '192.0.2.7'),
    ('qemu:///system', 'localhost'),
    ('test:///default', 'localhost'),
])
def test_host_name(uri, name):
    assert guests.host_name(uri) == name


def test_group_name():
    assert guests.group_name('', 'host', 'lab-1.example') == 'host_lab_1_example'
    assert guests.group_name('fleet', 'state', 'running') == 'fleet_state_running'


def nic(*addresses):
    return {'addresses': [{'address': a} for a in addresses]}


@pytest.mark.parametrize('interfaces, address', [
    ([nic('fe80::1', '2001:db8::5'), nic('192.0.2.9')], '192.0.2.9'),
    ([nic('fe80::1', '2001:db8::5')], '2001:db8::5'),
    ([nic('fe80::1')], None),
    ([], None),
])
def test_guest_address_prefers_ipv4_then_a_routable_ipv6(interfaces, address):
    assert guests.guest_address({'interfaces': interfaces}) == address


def test_inventory_of_the_test_driver(test_driver_domains):
    data = guests.inventory([{'name': 'hv1', 'uri': 'test:///default', 'domains': test_driver_domains}])
    assert sorted(data['guests']) == ['test']
    hostvars = data['guests']['test']
    # The test driver's guest agent reports this address for its domain "test".
    assert hostvars['ansible_host'] == '192.168.122.3'
    assert (hostvars['phyllome_guest_host'], hostvars['phyllome_guest_uri']) == ('hv1', 'test:///default')
    assert hostvars['phyllome_guest']['state'] == 'running'
    assert data['groups'] == {'host_hv1': ['test'], 'state_running': ['test'], 'os_unknown': ['test']}


def test_a_domain_on_two_hosts_is_named_after_each(test_driver_domains):
    moved = copy.deepcopy(test_driver_domains)
    moved[0].update(state='shutoff', os={'id': 'http://debian.org/debian/12', 'family': 'linux'})
    for nic_ in moved[0]['interfaces']:
        nic_['addresses'] = []
    data = guests.inventory([{'name': 'hv1', 'uri': 'test:///default', 'domains': test_driver_domains},
                             {'name': 'hv2', 'uri': 'test:///default', 'domains': moved}], prefix='fleet')
    assert sorted(data['guests']) == ['test@hv1', 'test@hv2']
    assert 'ansible_host' not in data['guests']['test@hv2']
    assert data['groups'] == {'fleet_host_hv1': ['test@hv1'], 'fleet_state_running': ['test@hv1'],
                              'fleet_os_unknown': ['test@hv1'], 'fleet_host_hv2': ['test@hv2'],
                              'fleet_state_shutoff': ['test@hv2'], 'fleet_os_linux': ['test@hv2']}


@pytest.mark.parametrize('hostvars, transport, uri', [
    ({'inventory_hostname': 'hv1'}, 'ssh', 'qemu+ssh://hv1/system'),
    ({'inventory_hostname': 'hv1', 'ansible_host': '192.0.2.11', 'ansible_user': 'root', 'ansible_port': 2222,
      'ansible_ssh_private_key_file': '/home/me/.ssh/id_ed25519'}, 'ssh',
     'qemu+ssh://root@192.0.2.11:2222/system?keyfile=/home/me/.ssh/id_ed25519'),
    ({'inventory_hostname': 'hv1', 'ansible_host': '2001:db8::11', 'ansible_ssh_user': 'ad min'}, 'ssh',
     'qemu+ssh://ad%20min@[2001:db8::11]/system'),
    ({'inventory_hostname': 'hv1', 'ansible_host': 'hv1.example.org', 'ansible_user': 'root'}, 'tls',
     'qemu+tls://hv1.example.org/system'),
])
def test_a_hosts_libvirt_uri_comes_from_how_ansible_reaches_it(hostvars, transport, uri):
    assert guests.libvirt_uri(hostvars, transport) == uri
