# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.phyllome.os.plugins.module_utils.actions import (
    COMMAND_ENVIRON,
    ActionRecorder,
    write_file_atomic,
)
from ansible_collections.phyllome.os.plugins.module_utils.errors import CommandFailed


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


def test_write_file_atomic_keeps_mode_and_makes_backup(tmp_path):
    path = tmp_path / 'grub'
    path.write_text('GRUB_CMDLINE_LINUX="quiet"\n')
    os.chmod(path, 0o600)
    backup = write_file_atomic(str(path), 'GRUB_CMDLINE_LINUX="quiet iommu=pt"\n', backup_suffix='.bak')
    assert path.read_text() == 'GRUB_CMDLINE_LINUX="quiet iommu=pt"\n'
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert backup == str(path) + '.bak'
    assert (tmp_path / 'grub.bak').read_text() == 'GRUB_CMDLINE_LINUX="quiet"\n'
    # no temporary file is left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ['grub', 'grub.bak']


def test_write_file_atomic_new_file_mode_and_custom_move(tmp_path):
    moves = []

    def atomic_move(src, dest):
        moves.append(dest)
        os.replace(src, dest)

    path = tmp_path / 'vfio.conf'
    assert write_file_atomic(str(path), b'vfio-pci\n', mode=0o640, atomic_move=atomic_move) is None
    assert path.read_bytes() == b'vfio-pci\n'
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert moves == [str(path)]


def test_write_file_atomic_failure_leaves_original(tmp_path):
    path = tmp_path / 'cmdline'
    path.write_text('root=/dev/vda1\n')

    def broken_move(src, dest):
        raise OSError('read-only file system')

    with pytest.raises(OSError):
        write_file_atomic(str(path), 'root=/dev/vda1 iommu=pt\n', atomic_move=broken_move)
    assert path.read_text() == 'root=/dev/vda1\n'
    assert [p.name for p in tmp_path.iterdir()] == ['cmdline']
