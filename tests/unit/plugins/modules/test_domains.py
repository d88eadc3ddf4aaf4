# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""domains as Ansible runs it, on libvirt's in-process test driver (test:///default)."""

from __future__ import annotations

import json
import pytest

from ansible_collections.phyllome.os.plugins.modules import domains
from ansible_collections.phyllome.os.tests.unit.plugins.modules.module_runner import run_module

libvirt = pytest.importorskip('libvirt')

URI = 'test:///default'
SECRET = 'Planted-Secret-In-A-List-5e1d'


@pytest.fixture
def prefix(test_driver_prefix):
    return test_driver_prefix


def xml(name, memory=128, password=None):
    graphics = "<devices><graphics type='vnc' port='-1' passwd='%s'/></devices>" % password if password else ''
    return ("<domain type='test'><name>%s</name><memory unit='MiB'>%d</memory><os><type>hvm</type></os>%s</domain>"
            % (name, memory, graphics))


def test_twice_then_no_change_with_check_and_diff(prefix, capsys):
    args = {'uri': URI, 'domains': [{'xml': xml(prefix + '-a', password=SECRET)},
                                    {'name': prefix + '-b', 'model': {'memory': 256}}],
            'defaults': {'state': 'running', 'model': {'networks': [{'type': 'user'}]}}}
    planned = run_module(domains, args, capsys, check_mode=True, diff=True)
    first = run_module(domains, args, capsys, diff=True)
    second = run_module(domains, args, capsys, diff=True)
    for result in (planned, first, second):
        assert SECRET not in json.dumps(result)
    assert planned['changed'] and planned['actions'] == first['actions']
    assert first['created'] == [prefix + '-a', prefix + '-b'] and first['changed']
    headers = [d['after_header'] for d in first['diff']]
    assert headers == ['%s-a (new definition)' % prefix, '%s-b (new definition)' % prefix]
    assert [r['state'] for r in first['results']] == ['running', 'running']
    assert not second['changed'] and second['unchanged'] == [prefix + '-a', prefix + '-b']
    assert second['diff'] == [] and second['actions'] == []


def test_a_bad_item_fails_naming_it_and_changes_nothing(prefix, capsys):
    args = {'uri': URI, 'domains': [{'xml': xml(prefix + '-a')},
                                    {'name': prefix + '-b', 'model': {'vcpus': 3, 'cpu': {'threads': 2}}}]}
    result = run_module(domains, args, capsys)
    assert result['failed'] and not result['changed']
    assert 'domains[1] (%s-b): model.vcpus (3) is not a multiple of sockets x threads' % prefix in result['msg']
    assert prefix + '-a' not in libvirt.open(URI).listDefinedDomains()


def test_a_wrong_type_fails_before_anything(capsys):
    result = run_module(domains, {'uri': URI, 'domains': [{'name': 'x', 'state': 'gone'}]}, capsys)
    assert result['failed'] and 'value of state must be one of' in result['msg']
