# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module as Ansible runs it, on a recorded Debian host (root option), commands faked."""

from __future__ import annotations

import pytest

from ansible.module_utils import basic

from ansible_collections.phyllome.os.plugins.modules import kernel_cmdline
from ansible_collections.phyllome.os.tests.unit.plugins.modules.module_runner import run_module as run_main
from ansible_collections.phyllome.os.tests.unit.plugins.module_utils._boot.bootloader_host import Host, fake_update_grub

IOMMU = ['intel_iommu=on', 'iommu=pt', 'rd.driver.pre=vfio-pci']


def run_module(args, host, capsys, monkeypatch, check_mode=False, diff=False):
    monkeypatch.setattr(basic.AnsibleModule, 'run_command', lambda self, argv, **kw: host.runner(argv, **kw))
    return run_main(kernel_cmdline, dict(args, root=host.root), capsys, check_mode=check_mode, diff=diff)


def test_check_mode_with_diff(tmp_path, capsys, monkeypatch):
    host = Host(tmp_path, 'debian12-grub')
    before = host.snapshot()
    result = run_module({'present': IOMMU, 'absent': ['quiet']}, host, capsys, monkeypatch, check_mode=True, diff=True)
    assert host.snapshot() == before and host.runner.calls == []
    assert result['changed'] is True and result['backend'] == 'grub'
    assert result['actions'][-1].endswith('/usr/sbin/update-grub')
    assert result['diff'][0]['before_header'] == '/etc/default/grub'
    assert result['cmdline_after'] == 'intel_iommu=on iommu=pt rd.driver.pre=vfio-pci'
    assert result['reboot_required'] is True


def test_apply_then_nothing_to_do(tmp_path, capsys, monkeypatch):
    host = Host(tmp_path, 'debian12-grub')
    host.runner.effects['update-grub'] = fake_update_grub(host)
    first = run_module({'present': IOMMU}, host, capsys, monkeypatch)
    assert first['changed'] is True and 'diff' not in first
    assert 'GRUB_CMDLINE_LINUX="intel_iommu=on iommu=pt rd.driver.pre=vfio-pci"' in host.read('/etc/default/grub')
    assert len(first['backup_files']) == 2
    second = run_module({'present': IOMMU}, host, capsys, monkeypatch)
    assert second['changed'] is False and second['actions'] == [] and second['reboot_required'] is True


@pytest.mark.parametrize('args, message', [
    ({'present': ['iommu=pt'], 'absent': ['iommu']}, 'both present'),
    ({'present': ['a=b\nc']}, 'newline'),
    ({'present': ['a=$(reboot)']}, 'grub backend cannot carry'),
    ({'present': ['iommu=pt'], 'kernels': 'default'}, 'kernels=default is only possible'),
])
def test_bad_input_fails_and_changes_nothing(tmp_path, capsys, monkeypatch, args, message):
    host = Host(tmp_path, 'debian12-grub')
    before = host.snapshot()
    result = run_module(args, host, capsys, monkeypatch)
    assert result['failed'] is True and message in result['msg']
    assert result['changed'] is False
    assert host.snapshot() == before and host.runner.calls == []


def test_command_failure_is_reported_with_its_output(tmp_path, capsys, monkeypatch):
    host = Host(tmp_path, 'debian12-grub')
    host.runner.effects['update-grub'] = lambda argv: (1, '', 'grub-mkconfig: error: cannot find a GRUB drive for /dev/vda1.\n')
    original = host.read('/etc/default/grub')
    result = run_module({'present': IOMMU}, host, capsys, monkeypatch)
    assert result['failed'] is True
    assert result['msg'] == ('/usr/sbin/update-grub failed (rc=1): grub-mkconfig: error: cannot find a GRUB drive for '
                             '/dev/vda1.; the previous file was put back')
    assert 'cannot find a GRUB drive' in result['stderr'] and result['rc'] == 1
    assert result['restored_files'] == ['/etc/default/grub']
    assert host.read('/etc/default/grub') == original
