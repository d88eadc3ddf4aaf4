# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module as Ansible runs it, on a recorded Debian server (root option), commands faked."""

from __future__ import annotations

import pytest

from ansible.module_utils import basic

from ansible_collections.phyllome.os.plugins.module_utils._passthrough import claims
from ansible_collections.phyllome.os.plugins.modules import pci_passthrough
from ansible_collections.phyllome.os.tests.unit.plugins.modules.module_runner import run_module as run_main
from ansible_collections.phyllome.os.tests.unit.plugins.module_utils._passthrough.vfio_host import claim_file, debian_host


def run_module(args, host, capsys, monkeypatch, check_mode=False, diff=False):
    monkeypatch.setattr(basic.AnsibleModule, 'run_command', lambda self, argv, **kw: host.runner(argv, **kw))
    return run_main(pci_passthrough, dict(args, root=host.root), capsys, check_mode=check_mode, diff=diff)


@pytest.fixture
def debian(tmp_path, host_spec):
    return debian_host(tmp_path, host_spec)


def test_check_mode_with_diff(debian, capsys, monkeypatch):
    before = debian.snapshot()
    result = run_module({'devices': ['0000:32:00.1'], 'persistent': True}, debian, capsys, monkeypatch,
                        check_mode=True, diff=True)
    assert debian.snapshot() == before and debian.runner.calls == []
    assert result['changed'] is True
    assert result['devices'] == ['0000:32:00.1'] and result['previous_drivers'] == {'0000:32:00.1': 'i40e'}
    assert result['drivers'] == {'0000:32:00.1': 'vfio-pci'} and result['reboot_required'] is False
    assert result['actions'][-1] == 'regenerate the initramfs: /usr/sbin/update-initramfs -u -k all'
    assert [d['before_header'] for d in result['diff']] == ['PCI drivers', claims.CLAIM_FILE, '/etc/initramfs-tools/hooks/phyllome-vfio']


def test_boot_claim_then_nothing_to_do(debian, capsys, monkeypatch):
    args = {'devices': ['32:00.1'], 'ids': ['8086:1572'], 'runtime': False, 'persistent': True}
    first = run_module(args, debian, capsys, monkeypatch)
    assert first['changed'] is True and 'diff' not in first
    assert debian.read(claims.CLAIM_FILE) == claim_file(['0000:32:00.1'], ['i40e'])
    assert first['reboot_required'] is True and first['boot_claims'] == ['0000:32:00.1']
    second = run_module(args, debian, capsys, monkeypatch)
    assert second['changed'] is False and second['actions'] == [] and second['reboot_required'] is True


@pytest.mark.parametrize('args, message', [
    # The boot NVMe (mounted /) is never taken, not even with force.
    ({'devices': ['18:00.0'], 'force': True, 'runtime': False, 'persistent': True}, 'using now'),
    ({'devices': ['32:00.1'], 'ids': ['8086:0b60'], 'persistent': True}, 'none of 32:00.1 has the ID 8086:0b60'),
    ({'devices': ['0000:17:02.0']}, 'is a PCI bridge'),
    ({'devices': ['32:00.1'], 'runtime': False}, 'nothing to do'),
    # Binding needs the running kernel, which a recorded tree is not.
    ({'devices': ['32:00.1']}, 'acts on the running kernel'),
])
def test_bad_requests_fail_and_change_nothing(debian, capsys, monkeypatch, args, message):
    before = debian.snapshot()
    result = run_module(args, debian, capsys, monkeypatch)
    assert result['failed'] is True and message in result['msg']
    assert result['changed'] is False and result['actions'] == []
    assert debian.snapshot() == before and debian.runner.calls == []


def test_failed_regeneration_is_reported_with_its_output(debian, capsys, monkeypatch):
    # It fails once; run again on the restored files, it builds.
    calls = []
    debian.runner.effects['update-initramfs'] = lambda argv: calls.append(argv) or (
        (1, '', 'E: mkinitramfs failure cpio 141\n') if len(calls) == 1 else (0, '', ''))
    result = run_module({'devices': ['32:00.1'], 'runtime': False, 'persistent': True}, debian, capsys, monkeypatch)
    assert result['failed'] is True and result['rc'] == 1
    assert result['msg'] == ('/usr/sbin/update-initramfs failed (rc=1): E: mkinitramfs failure cpio 141; '
                             'the previous files were put back')
    assert result['restored_files'] == ['/etc/initramfs-tools/hooks/phyllome-vfio', claims.CLAIM_FILE]
    # Everything was put back and the initramfs built again from it: the
    # task reports no change, and the undo among its actions.
    assert result['actions'][-1] == ('undo: put back /etc/initramfs-tools/hooks/phyllome-vfio, %s; ran again: '
                                     '/usr/sbin/update-initramfs -u -k all' % claims.CLAIM_FILE)
    assert result['changed'] is False and len(calls) == 2
    assert not debian.exists(claims.CLAIM_FILE)


def test_a_regeneration_that_fails_again_leaves_the_task_changed(debian, capsys, monkeypatch):
    debian.runner.effects['update-initramfs'] = lambda argv: (1, '', 'E: mkinitramfs failure cpio 141\n')
    result = run_module({'devices': ['32:00.1'], 'runtime': False, 'persistent': True}, debian, capsys, monkeypatch)
    assert result['failed'] is True and result['changed'] is True
    assert not any(a.startswith('undo') for a in result['actions'])
