# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.actions import ActionRecorder
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import CommandFailed
from ansible_collections.phyllome.os.plugins.module_utils._common.module_glue import exit_with_result, run_and_exit

DIFF = [{'before_header': '/etc/default/grub', 'after_header': '/etc/default/grub', 'before': 'a\n', 'after': 'b\n'}]


class Exited(Exception):
    pass


class FakeModule:
    """What the glue uses of AnsibleModule; exit_json and fail_json end the run, as they do."""

    def __init__(self, check_mode=False, diff=False):
        self.check_mode = check_mode
        self._diff = diff
        self.exited = self.failed = None
        self.no_log_values = set()

    def exit_json(self, **result):
        self.exited = result
        raise Exited()

    def fail_json(self, **result):
        self.failed = result
        raise Exited()


def converge(recorder):
    recorder.apply('write /etc/default/grub', lambda: None)
    return {'backend': 'grub', 'diff': list(DIFF)}


@pytest.mark.parametrize('diff_mode', [False, True])
def test_result_with_changed_actions_and_diff_only_in_diff_mode(diff_mode):
    module, recorder = FakeModule(diff=diff_mode), ActionRecorder()
    with pytest.raises(Exited):
        run_and_exit(module, recorder, converge, recorder)
    expected = {'changed': True, 'actions': ['write /etc/default/grub'], 'backend': 'grub'}
    if diff_mode:
        expected['diff'] = DIFF
    assert module.exited == expected and module.failed is None


def fails_after_a_write(recorder):
    recorder.apply('write /etc/default/grub', lambda: None)
    raise CommandFailed('/usr/sbin/update-grub failed (rc=1): out of memory', cmd=['update-grub'], rc=1)


@pytest.mark.parametrize('check_mode, changed', [(False, True), (True, False)])
def test_failure_reports_what_changed_before_it(check_mode, changed):
    module = FakeModule(check_mode=check_mode)
    recorder = ActionRecorder(check_mode=check_mode)
    with pytest.raises(Exited):
        run_and_exit(module, recorder, fails_after_a_write, recorder)
    assert module.exited is None
    assert module.failed['msg'] == '/usr/sbin/update-grub failed (rc=1): out of memory'
    assert module.failed['rc'] == 1 and module.failed['cmd'] == ['update-grub']
    assert module.failed['changed'] is changed and module.failed['actions'] == ['write /etc/default/grub']


def test_exit_with_result_reports_the_recorders_actions():
    module, recorder = FakeModule(), ActionRecorder()
    with pytest.raises(Exited):
        exit_with_result(module, recorder, {'name': 'vm1', 'actions': [], 'diff': {'before': '', 'after': ''}})
    assert module.exited == {'changed': False, 'name': 'vm1', 'actions': []}


def fails_after_a_full_rollback(recorder):
    index = recorder.mark()
    recorder.apply('write /etc/default/grub', lambda: None)
    recorder.undo(index, 'put back /etc/default/grub', lambda: None)
    raise CommandFailed('/usr/sbin/update-grub failed (rc=1): out of memory', cmd=['update-grub'], rc=1)


def test_a_failure_after_a_full_rollback_reports_no_change():
    module, recorder = FakeModule(), ActionRecorder()
    with pytest.raises(Exited):
        run_and_exit(module, recorder, fails_after_a_full_rollback, recorder)
    assert module.failed['changed'] is False
    assert module.failed['actions'] == ['write /etc/default/grub', 'undo: put back /etc/default/grub']


def test_the_recorders_secrets_join_ansibles_no_log_values():
    module, recorder = FakeModule(), ActionRecorder()
    recorder.add_secrets(['s3cret', ''])
    with pytest.raises(Exited):
        run_and_exit(module, recorder, converge, recorder)
    assert module.no_log_values == {'s3cret'}
