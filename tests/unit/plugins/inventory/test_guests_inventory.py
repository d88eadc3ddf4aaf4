# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The phyllome.os.guests inventory plugin, as Ansible loads it, on libvirt's test:///default driver."""

from __future__ import annotations

import pytest

from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
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
