# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._boot.context import BootContext
from ansible_collections.phyllome.os.plugins.module_utils._common.actions import ActionRecorder
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import CommandFailed, HostStateError
from ansible_collections.phyllome.os.plugins.module_utils._common.files import FilePlan, apply_file_plan, restore_files, snapshot_files, write_file_atomic
from ansible_collections.phyllome.os.plugins.module_utils._common.hostfs import HostFS


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


# --- apply_file_plan: a host below tmp_path, an initramfs generator faked ---------------

CLAIM = '/etc/modprobe.d/phyllome-vfio.conf'
HOOK = '/etc/initramfs-tools/hooks/phyllome-vfio'
IMAGE = '/boot/initrd.img-6.1.0-18-amd64'


class Generator:
    """update-initramfs: builds IMAGE from CLAIM, or half-builds it and fails."""

    def __init__(self, root, fail=False):
        self.root, self.fail = root, fail
        self.calls = []

    def __call__(self, argv, data=None, environ_update=None):
        self.calls.append(argv)
        claim = self.root / CLAIM.lstrip('/')
        (self.root / IMAGE.lstrip('/')).write_text('image with %s' % (claim.read_text() if claim.exists() else 'no claim'))
        if self.fail and len(self.calls) == 1:
            return 1, '', 'E: /etc/initramfs-tools/hooks/phyllome-vfio failed with return 1.\n'
        return 0, '', ''


def host_tree(tmp_path):
    for path, text in ((CLAIM, 'old claim\n'), (IMAGE, 'image built last week\n')):
        (tmp_path / path.lstrip('/')).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path.lstrip('/')).write_text(text)
    (tmp_path / 'etc/initramfs-tools/hooks').mkdir(parents=True)
    return tmp_path


def initramfs_plan(verify=None, rerun=False):
    plan = FilePlan()
    plan.writes = [(CLAIM, 'new claim\n'), (HOOK, 'hook\n')]
    plan.commands = [(['update-initramfs', '-u', '-k', 'all'], 'regenerate the initramfs')]
    plan.touched = [IMAGE]
    plan.rerun_on_restore = rerun
    plan.verify = verify
    return plan


def files(root):
    return dict((str(p.relative_to(root)), p.read_text()) for p in sorted(root.rglob('*')) if p.is_file())


def test_apply_file_plan_in_check_mode_records_and_changes_nothing(tmp_path):
    root = host_tree(tmp_path)
    before = files(root)
    runner = Generator(root)
    verified = []
    recorder = ActionRecorder(check_mode=True, run_command=runner)
    apply_file_plan(BootContext(HostFS(str(root)), recorder, backup=False), initramfs_plan(lambda: verified.append(1)))
    assert recorder.actions == ['write %s' % CLAIM, 'write %s' % HOOK, 'regenerate the initramfs']
    assert files(root) == before and runner.calls == [] and verified == []


def test_apply_file_plan_writes_runs_and_verifies(tmp_path):
    root = host_tree(tmp_path)
    runner = Generator(root)
    verified = []
    recorder = ActionRecorder(run_command=runner)
    apply_file_plan(BootContext(HostFS(str(root)), recorder, backup=False), initramfs_plan(lambda: verified.append(1)))
    assert files(root) == {CLAIM[1:]: 'new claim\n', HOOK[1:]: 'hook\n', IMAGE[1:]: 'image with new claim\n'}
    # Below a root other than /, commands run chrooted into it.
    assert runner.calls == [['chroot', str(root), 'update-initramfs', '-u', '-k', 'all']] and verified == [1]


def test_empty_file_plan_does_nothing(tmp_path):
    recorder = ActionRecorder(run_command=Generator(tmp_path))
    apply_file_plan(BootContext(HostFS(str(tmp_path)), recorder), FilePlan())
    assert recorder.actions == [] and not list(tmp_path.iterdir())


@pytest.mark.parametrize('rerun, image', [
    # The generator rebuilt the image before it failed: the snapshot is put
    # back, then (rerun_on_restore) the image is rebuilt from the restored claim.
    (False, 'image built last week\n'),
    (True, 'image with old claim\n'),
])
def test_failed_command_puts_every_file_back(tmp_path, rerun, image):
    root = host_tree(tmp_path)
    before = files(root)
    runner = Generator(root, fail=True)
    recorder = ActionRecorder(run_command=runner)
    with pytest.raises(CommandFailed) as info:
        apply_file_plan(BootContext(HostFS(str(root)), recorder, backup=False), initramfs_plan(rerun=rerun))
    assert info.value.msg.endswith('; the previous files were put back')
    assert info.value.details['restored_files'] == [IMAGE, HOOK, CLAIM]
    # The rerun is not recorded: it is part of the failed step.
    assert len(runner.calls) == (2 if rerun else 1)
    assert recorder.actions[:3] == ['write %s' % CLAIM, 'write %s' % HOOK, 'regenerate the initramfs']
    assert files(root) == dict(before, **{IMAGE[1:]: image})
    # Every file put back (and the image rebuilt from them): nothing is left changed.
    assert not recorder.changed
    undo = 'undo: put back %s, %s, %s' % (IMAGE, HOOK, CLAIM)
    if rerun:
        undo += '; ran again: update-initramfs -u -k all'
    assert recorder.actions[3:] == [undo]


def test_failed_verify_puts_files_back_and_says_so(tmp_path):
    root = host_tree(tmp_path)
    before = files(root)

    def verify():
        raise HostStateError('the image does not carry the claim')
    with pytest.raises(HostStateError) as info:
        apply_file_plan(BootContext(HostFS(str(root)), ActionRecorder(run_command=Generator(root)), backup=False),
                        initramfs_plan(verify))
    assert info.value.msg == 'the image does not carry the claim; the previous files were put back'
    assert files(root) == before


def test_os_error_becomes_host_state_error_naming_what_was_restored(tmp_path):
    root = host_tree(tmp_path)
    before = files(root)

    class FullDisk(BootContext):
        def write(self, path, text, description=None):
            if path == HOOK:
                raise OSError(28, 'No space left on device')
            super().write(path, text, description)
    with pytest.raises(HostStateError) as info:
        apply_file_plan(FullDisk(HostFS(str(root)), ActionRecorder(run_command=Generator(root)), backup=False),
                        initramfs_plan())
    assert info.value.msg == ('writing the boot configuration failed: [Errno 28] No space left on device; '
                              'restored %s' % CLAIM)
    assert info.value.details['restored_files'] == [CLAIM]
    assert files(root) == before


def test_directories_a_failed_step_created_go_too(tmp_path):
    from ansible_collections.phyllome.os.plugins.module_utils._passthrough.claims import ClaimContext
    root = host_tree(tmp_path)
    (root / 'etc/initramfs-tools/hooks').rmdir()
    before = files(root)
    recorder = ActionRecorder(run_command=Generator(root, fail=True))
    with pytest.raises(CommandFailed):
        apply_file_plan(ClaimContext(HostFS(str(root)), recorder), initramfs_plan())
    assert files(root) == before and not (root / 'etc/initramfs-tools/hooks').exists()
    assert 'create directory /etc/initramfs-tools/hooks' in recorder.actions
    assert not recorder.changed


def read_only(src, dest):
    raise OSError(30, 'Read-only file system')


def test_restore_files_removes_new_files_and_names_those_it_cannot_put_back(tmp_path):
    fs = HostFS(str(tmp_path))
    (tmp_path / 'grub').write_text('old\n')
    snapshot = snapshot_files(fs, ['/grub', '/new'])
    assert snapshot == {'/grub': b'old\n', '/new': None}
    (tmp_path / 'new').write_text('created\n')
    (tmp_path / 'grub').write_text('edited\n')
    assert restore_files(fs, snapshot) == (['/grub', '/new'], {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ['grub'] and (tmp_path / 'grub').read_text() == 'old\n'
    (tmp_path / 'grub').write_text('edited\n')
    assert restore_files(fs, snapshot, atomic_move=read_only) == ([], {'/grub': '[Errno 30] Read-only file system'})
    assert restore_files(fs, {'/grub': b'edited\n'}) == ([], {})


def test_a_backup_is_synced_and_appears_whole_or_not_at_all(tmp_path, monkeypatch):
    from ansible_collections.phyllome.os.plugins.module_utils._common import files
    path = tmp_path / 'grub'
    path.write_text('GRUB_CMDLINE_LINUX="quiet"\n')
    os.chmod(str(path), 0o600)
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(files.os, 'fsync', lambda fd: synced.append(fd) or real_fsync(fd))
    backup = files.backup_file(str(path), '.bak')
    assert backup == str(path) + '.bak' and open(backup).read() == 'GRUB_CMDLINE_LINUX="quiet"\n'
    assert os.stat(backup).st_mode & 0o777 == 0o600
    assert len(synced) >= 2  # the copy's data, then its directory entry

    def disk_full(fd):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(files.os, 'fsync', disk_full)
    os.unlink(backup)
    with pytest.raises(OSError):
        files.backup_file(str(path), '.bak')
    # No half-written backup, no temporary file left.
    assert sorted(os.listdir(str(tmp_path))) == ['grub']
