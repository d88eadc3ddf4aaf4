# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files changed safely: atomic writes with backups, and file plans that put everything back on failure.

Every write of a host file goes through write_file_atomic(); a step that
writes files and runs commands on them (a boot configuration, an initramfs)
is a FilePlan carried out by apply_file_plan() through the recorder.
"""

from __future__ import annotations

import os
import tempfile

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import CommandFailed, HostStateError, PhyllomeError


def write_file_atomic(path, content, mode=None, backup_suffix=None, atomic_move=None):
    """Write `content` (str or bytes) to `path` through a temporary file and a rename.

    The data and the directory are synced, so after a crash the file is the
old one or the new one. Keeps owner and mode of an existing file (or uses
`mode` for a new one).
    `atomic_move` is AnsibleModule.atomic_move when the caller has one (it
    also keeps the SELinux context); os.replace otherwise. With
    `backup_suffix`, the previous file is kept as path + suffix, and its name
    is returned.
    """
    if isinstance(content, str):
        content = content.encode('utf-8')
    directory = os.path.dirname(path) or '.'
    previous = None
    try:
        previous = os.stat(path)
    except OSError:
        pass
    backup = None
    if previous is not None and backup_suffix:
        backup = backup_file(path, backup_suffix)
    fd, tmp = _mkstemp(directory, os.path.basename(path))
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        if previous is not None:
            os.chmod(tmp, previous.st_mode & 0o7777)
            try:
                os.chown(tmp, previous.st_uid, previous.st_gid)
            except OSError:
                pass
        elif mode is not None:
            os.chmod(tmp, mode)
        else:
            os.chmod(tmp, 0o644)
        if atomic_move is not None:
            atomic_move(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _sync_directory(directory)
    return backup


def backup_file(path, suffix):
    """Copy `path` to path + suffix, with the same mode (and owner when allowed); return the copy's name.

    For files that a command rewrites (so write_file_atomic cannot keep the
    previous version itself), and for write_file_atomic's own backups. The
    copy is written to a temporary file, synced, then renamed, and the
    directory synced: after a crash the backup is whole or absent, never
    half written.
    """
    previous = os.stat(path)
    backup = path + suffix
    directory = os.path.dirname(path) or '.'
    fd, tmp = _mkstemp(directory, os.path.basename(backup))
    try:
        with os.fdopen(fd, 'wb') as dst, open(path, 'rb') as src:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        os.chmod(tmp, previous.st_mode & 0o7777)
        try:
            os.chown(tmp, previous.st_uid, previous.st_gid)
        except OSError:
            pass
        os.replace(tmp, backup)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _sync_directory(directory)
    return backup


def _sync_directory(directory):
    """fsync a directory, so that a rename in it survives a crash (best effort where not allowed)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class FilePlan:
    """Files to write and commands to run as one step: if any part fails, every file is put back.

    writes: [(host path, text)] written through the context, in order (text
    None removes the file, for contexts that allow it).
    commands: [(argv, description)] run after the writes.
    touched: files the commands rewrite (snapshotted, put back on failure).
    backed_up: those of them to keep a copy of on disk first.
    rerun_on_restore: the commands build files from the written ones (boot
    entries, an initramfs): after a failure, once the files are put back,
    the commands that had started run again so what they built matches.
    verify: a callable run after the commands (outside check mode) that
    raises a PhyllomeError when the result is not the predicted one.
    """

    def __init__(self):
        self.writes = []
        self.commands = []
        self.touched = []
        self.backed_up = []
        self.rerun_on_restore = False
        self.verify = None

    @property
    def empty(self):
        return not self.writes and not self.commands


def apply_file_plan(context, plan):
    """Carry out a FilePlan through the context's recorder; on any failure put back what changed and re-raise.

    context: the host's files and commands (_boot.context.BootContext): hostfs,
    recorder, atomic_move, write(path, text), backup_before_command(paths),
    run(argv, description) and query(argv). The error raised carries
    restored_files, and unrestored_files when some could not be put back.

    Returns a callable that undoes the step after a later failure (a step
    after this one failed): it puts the files back the same way and returns
    (restored, unrestored).
    """
    if plan.empty:
        return lambda: ([], {})
    recorder = context.recorder
    undo = _Undo(context, plan)
    try:
        for path, text in plan.writes:
            context.write(path, text)
        context.backup_before_command(plan.backed_up)
        for argv, description in plan.commands:
            undo.started.append(argv)
            context.run(argv, description)
        if plan.verify is not None and not recorder.check_mode:
            plan.verify()
    except (PhyllomeError, OSError) as exc:
        restored, unrestored = undo()
        if not isinstance(exc, PhyllomeError):
            exc = HostStateError('writing the boot configuration failed: %s; restored %s'
                                 % (exc, ', '.join(restored) or 'nothing (nothing had changed)'))
        elif restored and 'restored' not in exc.msg:
            exc.msg += '; the previous %s put back' % ('files were' if len(restored) > 1 else 'file was')
        exc.details['restored_files'] = restored
        if unrestored:
            exc.msg += '. COULD NOT PUT BACK %s: check them before rebooting' % ', '.join(
                '%s (%s)' % item for item in sorted(unrestored.items()))
            exc.details['unrestored_files'] = sorted(unrestored)
        raise exc
    return undo


class _Undo:
    """Puts back what one FilePlan changed: its files, the backups and directories it made, what it built."""

    def __init__(self, context, plan):
        self.context, self.plan = context, plan
        self.snapshot = snapshot_files(context.hostfs, [path for path, dummy in plan.writes] + plan.touched)
        self.mark = context.recorder.mark()
        self.backups = list(getattr(context, 'backup_files', None) or [])
        self.directories = list(getattr(context, 'created_directories', None) or [])
        self.started = []

    def __call__(self):
        """Restore the snapshot (and build again); when all is as it was, the step's actions are undone."""
        context, recorder = self.context, self.context.recorder
        if recorder.check_mode:
            return [], {}
        restored, unrestored = restore_files(context.hostfs, self.snapshot, context.atomic_move)
        rebuilt, rebuild_failed = [], False
        if self.plan.rerun_on_restore:
            # Best effort: the original error is the one reported. What the
            # commands build is built again, from the restored files.
            for argv in self.started:
                try:
                    context.query(argv)
                    rebuilt.append(' '.join(argv))
                except CommandFailed:
                    rebuild_failed = True
        # Every file is as it was (and what is built from them built again):
        # take away the step's backups (copies of what is there again) and
        # the directories it made; nothing of the step is left changed.
        if not unrestored and not rebuild_failed and _remove_new(context, self.backups, self.directories):
            what = 'put back %s' % (', '.join(restored) or 'nothing (nothing had changed)')
            if rebuilt:
                what += '; ran again: %s' % '; '.join(rebuilt)
            recorder.undone_since(self.mark, what)
        return restored, unrestored


def _remove_new(context, backups, directories):
    """Remove the backups and directories the context made since (backups, directories); True when all went."""
    fs = context.hostfs
    complete = True
    for path in getattr(context, 'backup_files', None) or []:
        if path in backups:
            continue
        try:
            os.unlink(fs.path(path, follow=False))
        except OSError:
            complete = False
    for path in reversed(getattr(context, 'created_directories', None) or []):
        if path in directories:
            continue
        try:
            os.rmdir(fs.path(path))
        except OSError:
            complete = False
    return complete


def snapshot_files(hostfs, paths):
    """{path: content or None} of host files that a step may change, for restore_files()."""
    return dict((path, hostfs.read_bytes(path)) for path in paths)


def restore_files(hostfs, snapshot, atomic_move=None):
    """Put back every snapshotted file whose content changed (remove those that did not exist).

    Returns (restored paths, {path: error} of those that could not be put
    back); one failure does not stop the others.
    """
    restored, failed = [], {}
    for path, content in sorted(snapshot.items()):
        if hostfs.read_bytes(path) == content:
            continue
        real = hostfs.path(path)
        try:
            if content is None:
                os.unlink(real)
            else:
                write_file_atomic(real, content, atomic_move=atomic_move)
        except OSError as exc:
            failed[path] = str(exc)
            continue
        restored.append(path)
    return restored, failed


def _mkstemp(directory, name):
    return tempfile.mkstemp(prefix='.%s.' % name, suffix='.phyllome-tmp', dir=directory)
