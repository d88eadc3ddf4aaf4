# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.phyllome.os.plugins.modules import host_info
from ansible_collections.phyllome.os.tests.unit.plugins.modules.module_runner import run_module as run_main


def run_module(capsys, args):
    return run_main(host_info, args, capsys)


def test_a_recorded_tree_is_reported_without_asking_libvirt(capsys, host_tree):
    result = run_module(capsys, {'root': host_tree('amd-desktop-iommu-off')})
    assert result['changed'] is False
    assert not result.get('failed')
    assert result['verdict'] == 'warn'
    assert [c['name'] for c in result['checks'] if c['verdict'] == 'warn'] == ['iommu']
    assert result['host']['libvirt'] == {'checked': False, 'uri': 'qemu:///system'}
    assert result['summary'] == ['warn iommu: ' + next(c['reason'] for c in result['checks'] if c['name'] == 'iommu')]


def test_check_mode_gives_the_same_report(capsys, host_tree):
    root = host_tree('no-virt-flags')
    normal = run_module(capsys, {'root': root})
    checked = run_module(capsys, {'root': root, '_ansible_check_mode': True})
    for result in (normal, checked):
        result.pop('invocation', None)
    assert checked == normal
    assert normal['verdict'] == 'fail'


def test_libvirt_can_be_asked_for_a_tree(capsys, host_tree):
    pytest.importorskip('libvirt')
    result = run_module(capsys, {'root': host_tree('amd-desktop-iommu-off'), 'libvirt': True, 'uri': 'test:///default'})
    libvirt_check = next(c for c in result['checks'] if c['name'] == 'libvirt')
    assert libvirt_check['verdict'] == 'warn'
    assert libvirt_check['facts']['driver'] == 'TEST'


def test_a_root_that_is_no_directory_fails_clearly(capsys, tmp_path):
    result = run_module(capsys, {'root': str(tmp_path / 'nowhere')})
    assert result['failed'] is True
    assert result['msg'] == 'root %s is not a directory' % (tmp_path / 'nowhere')
    assert 'checks' not in result
