# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.actions import COMMAND_ENVIRON, ActionRecorder
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import CommandFailed


class FakeRunner:
    def __init__(self, rc=0, out='', err=''):
        self.calls = []
        self.rc, self.out, self.err = rc, out, err

    def __call__(self, argv, data=None, environ_update=None):
        self.calls.append((argv, environ_update))
        return self.rc, self.out, self.err


@pytest.mark.parametrize('check_mode', [True, False])
def test_apply_records_and_acts_only_outside_check_mode(check_mode):
    done = []
    recorder = ActionRecorder(check_mode=check_mode)
    result = recorder.apply('set memory to 2 GiB', lambda x: done.append(x) or 'ok', 2048)
    assert recorder.actions == ['set memory to 2 GiB']
    assert recorder.changed
    assert done == ([] if check_mode else [2048])
    assert result == (None if check_mode else 'ok')


def test_nothing_recorded_means_unchanged():
    assert not ActionRecorder().changed


def test_run_in_check_mode_runs_nothing():
    runner = FakeRunner()
    recorder = ActionRecorder(check_mode=True, run_command=runner)
    assert recorder.run(['update-grub']) == (None, '', '')
    assert runner.calls == []
    assert recorder.actions == ['update-grub']


def test_run_uses_c_locale_and_raises_on_failure():
    runner = FakeRunner(rc=1, err='grub2-mkconfig: error: disk not found\n')
    recorder = ActionRecorder(run_command=runner)
    with pytest.raises(CommandFailed) as info:
        recorder.run(['grub2-mkconfig', '-o', '/boot/grub2/grub.cfg'], description='regenerate grub.cfg')
    assert info.value.rc == 1
    assert 'disk not found' in info.value.msg
    assert runner.calls[0][1] == COMMAND_ENVIRON
    assert recorder.actions == ['regenerate grub.cfg']


def test_query_runs_in_check_mode_and_is_not_recorded():
    runner = FakeRunner(out='options root=UUID=1 ro\n')
    recorder = ActionRecorder(check_mode=True, run_command=runner)
    assert recorder.query(['grubby', '--info=ALL'])[1] == 'options root=UUID=1 ro\n'
    assert not recorder.changed


def test_query_without_runner_is_a_programming_error():
    with pytest.raises(RuntimeError):
        ActionRecorder().query(['true'])


def test_an_undone_action_is_no_change_but_stays_in_the_list():
    recorder = ActionRecorder()
    first = recorder.mark()
    recorder.apply('create volume a', lambda: None)
    recorder.apply('create volume b', lambda: None)
    assert recorder.undo(first, 'delete volume a', lambda: None) is True
    assert recorder.changed
    recorder.undone_since(first, 'put back everything')
    assert not recorder.changed
    assert recorder.actions == ['create volume a', 'create volume b', 'undo: delete volume a',
                                'undo: put back everything']


def test_an_undo_that_fails_leaves_the_change_standing():
    recorder = ActionRecorder()
    recorder.apply('create volume a', lambda: None)

    def fail():
        raise CommandFailed('rm failed', rc=1)
    assert recorder.undo(0, 'delete volume a', fail) is False
    assert recorder.changed and recorder.actions[-1] == 'undo FAILED: delete volume a: rm failed'


def test_a_failed_all_or_nothing_call_is_no_change():
    recorder = ActionRecorder()
    recorder.apply('define domain a', lambda: None)
    recorder.failed_unchanged(0)
    assert not recorder.changed and recorder.actions == ['define domain a']
