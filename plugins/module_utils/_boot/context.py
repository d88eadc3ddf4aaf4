# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host a boot loader backend works on, and what a backend plans.

BootContext: the host's files (HostFS), the recorder, atomic moves and
backups; every command and write of a backend goes through it. Target and
BootPlan: what holds a command line, before and after, and the FilePlan
steps that get there.
"""

from __future__ import annotations

import os
import time

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import CommandFailed
from ansible_collections.phyllome.os.plugins.module_utils._common.files import FilePlan, backup_file, write_file_atomic


class BootContext:
    """The host a backend works on: its files, the recorder, how files are moved into place.

    hostfs: HostFS of the system to manage (its root; commands run there with
    chroot when it is not /). recorder: the task's ActionRecorder.
    atomic_move: AnsibleModule.atomic_move (keeps SELinux contexts).
    backup: keep the previous version of every file changed.
    """

    def __init__(self, hostfs, recorder, atomic_move=None, backup=True):
        self.hostfs = hostfs
        self.recorder = recorder
        self.atomic_move = atomic_move
        self.backup = backup
        self.backup_files = []
        # Ansible's backup naming (file.PID.date@time~) without colons, which
        # FAT refuses: no *.conf or *.cfg glob of a boot loader matches it.
        self._suffix = '.%d.%s' % (os.getpid(), time.strftime('%Y-%m-%d@%H%M%S~'))

    def find_command(self, *names):
        """Host path of the first of `names` found as an executable program below the root, or None."""
        return self.hostfs.find_program(*names)

    def argv(self, argv):
        return list(argv) if self.hostfs.is_live else ['chroot', self.hostfs.root] + list(argv)

    def query(self, argv):
        """Run a read-only command (also in check mode); return its stdout."""
        try:
            return self.recorder.query(self.argv(argv))[1]
        except CommandFailed as exc:
            raise self._named(exc, argv)

    def run(self, argv, description=None):
        try:
            return self.recorder.run(self.argv(argv), description=description)
        except CommandFailed as exc:
            raise self._named(exc, argv)

    @staticmethod
    def _named(exc, argv):
        """The failure under the command's own name rather than chroot's."""
        return CommandFailed('%s failed (rc=%s): %s' % (argv[0], exc.rc, (exc.stderr or exc.stdout).strip()),
                             cmd=exc.cmd, rc=exc.rc, stdout=exc.stdout, stderr=exc.stderr)

    def read_text(self, path):
        data = self.hostfs.read_bytes(path)
        return None if data is None else data.decode('utf-8', 'surrogateescape')

    def _host_path(self, real):
        if self.hostfs.is_live:
            return real
        return '/' + os.path.relpath(real, self.hostfs.root)

    def write(self, path, text, description=None):
        """Record and (outside check mode) write `text` to host file `path`, atomically, with a backup."""
        def do_write():
            backup = write_file_atomic(self.hostfs.path(path), text.encode('utf-8', 'surrogateescape'), mode=0o644,
                                       backup_suffix=self._suffix if self.backup else None,
                                       atomic_move=self.atomic_move)
            if backup:
                self.backup_files.append(self._host_path(backup))
        self.recorder.apply(description or 'write %s' % path, do_write)

    def backup_before_command(self, paths):
        """Keep a copy of the files a command is about to rewrite (the command writes them, not us)."""
        if not self.backup:
            return
        for path in paths:
            if self.hostfs.exists(path):
                real = self.hostfs.path(path)
                self.recorder.apply('back up %s' % path,
                                    lambda real=real: self.backup_files.append(self._host_path(backup_file(real, self._suffix))))


class Target:
    """One thing that holds a command line: a file, a boot entry, or the rpm-ostree deployment."""

    def __init__(self, kind, name, before, after, default=False, title=None, kernel=None):
        self.kind = kind
        self.name = name
        self.before = before
        self.after = after
        self.default = default
        self.title = title
        self.kernel = kernel

    @property
    def changed(self):
        return self.before != self.after

    def as_dict(self):
        result = {'kind': self.kind, 'name': self.name, 'changed': self.changed}
        if self.kind != 'file':
            result.update(cmdline_before=self.before, cmdline_after=self.after, default=self.default)
        if self.kind == 'entry':
            result.update(title=self.title, kernel=self.kernel)
        return result

    def diff(self):
        before, after = self.before or '', self.after or ''
        if self.kind != 'file':
            before, after = before + '\n', after + '\n'
        label = self.name if self.kind == 'file' else '%s (%s)' % (self.name, 'options' if self.kind == 'entry' else 'kargs')
        return {'before_header': label, 'after_header': label, 'before': before, 'after': after}


class BootPlan(FilePlan):
    """What a backend will do: targets with their before/after, and the FilePlan steps to get there."""

    def __init__(self, cmdline_before, cmdline_after):
        super().__init__()
        self.cmdline_before = cmdline_before
        self.cmdline_after = cmdline_after
        self.targets = []

    def diffs(self):
        return [target.diff() for target in self.targets if target.changed]
