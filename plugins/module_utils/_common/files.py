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

    Keeps owner and mode of an existing file (or uses `mode` for a new one).
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
    return backup


def backup_file(path, suffix):
    """Copy `path` to path + suffix, with the same mode (and owner when allowed); return the copy's name.

    For files that a command rewrites (so write_file_atomic cannot keep the
    previous version itself).
    """
    previous = os.stat(path)
    backup = path + suffix
    with open(path, 'rb') as src, open(backup, 'wb') as dst:
        dst.write(src.read())
    os.chmod(backup, previous.st_mode & 0o7777)
    try:
        os.chown(backup, previous.st_uid, previous.st_gid)
    except OSError:
        pass
    return backup


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
    """
    if plan.empty:
        return
    recorder = context.recorder
    snapshot = snapshot_files(context.hostfs, [path for path, dummy in plan.writes] + plan.touched)
    started = []
    try:
        for path, text in plan.writes:
            context.write(path, text)
        context.backup_before_command(plan.backed_up)
        for argv, description in plan.commands:
            started.append(argv)
            context.run(argv, description)
        if plan.verify is not None and not recorder.check_mode:
            plan.verify()
    except (PhyllomeError, OSError) as exc:
        restored, unrestored = restore_files(context.hostfs, snapshot, context.atomic_move)
        if plan.rerun_on_restore and not recorder.check_mode:
            # Best effort: the original error is the one reported.
            for argv in started:
                try:
                    context.query(argv)
                except CommandFailed:
                    pass
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
