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
