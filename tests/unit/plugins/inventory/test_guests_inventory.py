# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The phyllome.os.guests inventory plugin, as Ansible loads it, on libvirt's test:///default driver."""

from __future__ import annotations

import pytest

from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.inventory import BaseInventoryPlugin
from ansible.plugins.loader import inventory_loader

pytest.importorskip('libvirt')


def load(tmp_path, text, name='lab.phyllome_guests.yml'):
    path = tmp_path / name
    path.write_text(text)
    return InventoryManager(loader=DataLoader(), sources=[str(path)])


def test_the_plugin_loads_by_its_name():
    plugin = inventory_loader.get('phyllome.os.guests')
    assert plugin is not None
    assert plugin.verify_file('/nonexistent/x.phyllome_guests.yml') is False  # no such file


def test_guests_of_the_test_driver(tmp_path):
    inv = load(tmp_path, 'plugin: phyllome.os.guests\nhosts:\n  - {name: hv1, uri: "test:///default"}\n'
                         'keyed_groups:\n  - {key: phyllome_guest.firmware, prefix: firmware}\n'
                         'compose:\n  guest_firmware: phyllome_guest.firmware\n')
    host = inv.get_host('test')
    assert host is not None
    hostvars = host.get_vars()
    assert hostvars['ansible_host'] == '192.168.122.3'
    assert hostvars['phyllome_guest_host'] == 'hv1'
    assert hostvars['guest_firmware'] == hostvars['phyllome_guest']['firmware'] == 'bios'
    groups = {g.name for g in host.get_groups()}
    assert {'host_hv1', 'state_running', 'os_unknown', 'firmware_bios'} <= groups


def test_states_filter_and_prefix(tmp_path):
    inv = load(tmp_path, 'plugin: phyllome.os.guests\nhosts: ["test:///default"]\nstates: [shutoff]\nprefix: vm\n')
    assert inv.get_host('test') is None
    inv = load(tmp_path, 'plugin: phyllome.os.guests\nhosts: ["test:///default"]\nstates: [running]\nprefix: vm\n')
    assert 'vm_host_localhost' in inv.groups and 'vm_state_running' in inv.groups


def test_an_unreachable_host_is_left_out_and_the_others_listed(tmp_path):
    inv = load(tmp_path, 'plugin: phyllome.os.guests\nhosts:\n  - "qemu+unix:///system?socket=/nonexistent"\n'
                         '  - {name: hv1, uri: "test:///default"}\n')
    assert inv.get_host('test') is not None
    assert 'host_localhost' not in inv.groups


def test_the_cache_answers_without_libvirt(tmp_path):
    cache = tmp_path / 'cache'
    config = ('plugin: phyllome.os.guests\nhosts: ["{uri}"]\ncache: true\ncache_plugin: ansible.builtin.jsonfile\n'
              'cache_connection: %s\ncache_timeout: 3600\n' % cache)
    assert load(tmp_path, config.format(uri='test:///default')).get_host('test') is not None
    assert any(cache.iterdir())
    # The same configuration file (the cache key is its path) now answers from the cache.
    path = tmp_path / 'lab.phyllome_guests.yml'
    text = path.read_text()
    inv = InventoryManager(loader=DataLoader(), sources=[str(path)])
    assert inv.get_host('test').get_vars()['ansible_host'] == '192.168.122.3'
    assert text == path.read_text()


HYPERVISORS = '''all:
  children:
    phyllome_hosts:
      hosts:
        hv1: {ansible_host: 192.0.2.11}
        hv2: {ansible_host: 192.0.2.12}
      vars: {ansible_user: root, lab_uri: "test:///default"}
'''


def test_the_hosts_of_an_inventory_group(tmp_path):
    # The hypervisors come from the inventory given first; each one's URI from its own variables
    # (here all point to the test driver, so its domain is defined on both: named <domain>@<host>).
    (tmp_path / 'hosts.yml').write_text(HYPERVISORS)
    (tmp_path / 'lab.phyllome_guests.yml').write_text('plugin: phyllome.os.guests\ngroup: phyllome_hosts\nuri: lab_uri\n')
    inv = InventoryManager(loader=DataLoader(), sources=[str(tmp_path / 'hosts.yml'), str(tmp_path / 'lab.phyllome_guests.yml')])
    for name in ('hv1', 'hv2'):
        guest = inv.get_host('test@%s' % name)
        assert guest is not None, sorted(inv.hosts)
        assert guest.get_vars()['phyllome_guest_host'] == name
        assert guest.get_vars()['phyllome_guest_uri'] == 'test:///default'
        assert 'host_%s' % name in {g.name for g in guest.get_groups()}
    # the hypervisors themselves are still there
    assert inv.get_host('hv1').get_vars()['ansible_host'] == '192.0.2.11'


def test_the_uri_of_a_group_host_defaults_to_how_ansible_reaches_it(tmp_path):
    (tmp_path / 'hosts.yml').write_text(HYPERVISORS)
    plugin = inventory_loader.get('phyllome.os.guests')
    inv = InventoryManager(loader=DataLoader(), sources=[str(tmp_path / 'hosts.yml')])
    config = tmp_path / 'lab.phyllome_guests.yml'
    config.write_text('plugin: phyllome.os.guests\ngroup: phyllome_hosts\n')
    # Read the configuration as parse() does, without connecting to the (unreachable) hosts.
    BaseInventoryPlugin.parse(plugin, inv._inventory, DataLoader(), str(config), cache=False)
    plugin._read_config_data(str(config))
    assert plugin._group_entries('phyllome_hosts') == [
        {'uri': 'qemu+ssh://root@192.0.2.11/system', 'name': 'hv1'},
        {'uri': 'qemu+ssh://root@192.0.2.12/system', 'name': 'hv2'}]


def test_a_group_the_inventory_lacks_is_an_error(tmp_path):
    from ansible.errors import AnsibleParserError
    plugin = inventory_loader.get('phyllome.os.guests')
    inv = InventoryManager(loader=DataLoader(), sources=[])
    config = tmp_path / 'lab.phyllome_guests.yml'
    config.write_text('plugin: phyllome.os.guests\ngroup: phyllome_hosts\n')
    with pytest.raises(AnsibleParserError, match='group phyllome_hosts is not in the inventory'):
        plugin.parse(inv._inventory, DataLoader(), str(config), cache=False)
