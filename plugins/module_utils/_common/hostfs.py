# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only access to a host's /proc, /sys, /dev and /etc under a root.

Every reader of host state takes a HostFS, so tests and offline audits can
point it at a recorded tree instead of the live system. Links are resolved
inside the root, as in a chroot: an absolute link in a recorded tree (or a
`..` that climbs past its top) stays in the tree, so no reader of a tree
ever sees a file of the machine it runs on (a tree's link to /etc/shadow
reads the tree's /etc/shadow, or nothing).
"""

from __future__ import annotations

import os
import posixpath
import stat as stat_module

# Where programs are looked up on a host: libvirtd's search path for helpers
# (swtpm), and the directories boot loader tools live in.
SYSTEM_PATH = ('/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin')


class HostFS:
    """A view of a host's files below `root` ('/' for the live host)."""

    def __init__(self, root='/'):
        self.root = os.path.abspath(root or '/')

    def __repr__(self):
        return 'HostFS(%r)' % self.root

    @property
    def is_live(self):
        return self.root == '/'

    def _join(self, path):
        """The file system path of a host path whose components are no links (no resolution)."""
        path = posixpath.normpath('/' + path.lstrip('/'))
        if self.is_live:
            return path
        return os.path.join(self.root, path.lstrip('/'))

    def path(self, path, follow=True):
        """The real file system path of host path `path` (absolute, e.g. /proc/cmdline).

        Below a root, every link on the way is resolved inside the root (the
        last one too unless follow=False), so the path never leaves the tree.
        A link loop gives a path under the root that does not exist.
        """
        if self.is_live:
            return self._join(path)
        try:
            if follow:
                return self._join(self.resolve(path))
            parent, name = posixpath.split(posixpath.normpath('/' + path.lstrip('/')))
            return self._join(posixpath.join(self.resolve(parent), name))
        except OSError:
            return os.path.join(self.root, '.phyllome-link-loop', path.lstrip('/'))

    def exists(self, path):
        return os.path.exists(self.path(path))

    def lexists(self, path):
        return os.path.lexists(self.path(path, follow=False))

    def is_dir(self, path):
        return os.path.isdir(self.path(path))

    def read_text(self, path, default=None):
        """File content with the trailing newline stripped, or `default` when unreadable."""
        try:
            with open(self.path(path), 'rb') as f:
                data = f.read()
        except (OSError, IOError):
            return default
        return data.decode('utf-8', 'replace').rstrip('\n')

    def read_bytes(self, path, default=None, size=-1):
        """Raw file content (at most `size` bytes; all when negative), or `default` when unreadable."""
        try:
            with open(self.path(path), 'rb') as f:
                return f.read(size)
        except (OSError, IOError):
            return default

    def read_lines(self, path):
        text = self.read_text(path)
        return text.splitlines() if text else []

    def read_int(self, path, default=None, base=0):
        """An integer attribute (sysfs style, `0x8086` or `12`), or `default`."""
        text = self.read_text(path)
        if text is None:
            return default
        try:
            return int(text.strip(), base)
        except ValueError:
            return default

    def listdir(self, path):
        """Sorted entries of a directory, or [] when it does not exist."""
        try:
            return sorted(os.listdir(self.path(path)))
        except (OSError, IOError):
            return []

    def readlink(self, path):
        """The raw target of a symlink, or None."""
        try:
            return os.readlink(self.path(path, follow=False))
        except (OSError, IOError):
            return None

    def link_name(self, path):
        """The last component of a symlink's target (e.g. the driver of a device), or None."""
        target = self.readlink(path)
        return posixpath.basename(target.rstrip('/')) if target else None

    def resolve(self, path):
        """The host path `path` points to after following links, kept inside the root."""
        parts = [p for p in posixpath.normpath('/' + path.lstrip('/')).split('/') if p]
        resolved = '/'
        hops = 0
        while parts:
            part = parts.pop(0)
            candidate = posixpath.join(resolved, part)
            real = self._join(candidate)
            target = os.readlink(real) if os.path.islink(real) else None
            if target is None:
                resolved = candidate
                continue
            hops += 1
            if hops > 40:
                raise OSError('too many levels of symbolic links: %s' % path)
            base = '/' if target.startswith('/') else resolved
            parts = [p for p in posixpath.normpath(posixpath.join(base, target)).split('/') if p] + parts
            resolved = '/'
        return resolved

    def stat(self, path):
        """os.stat_result of the file, or None."""
        try:
            return os.stat(self.path(path))
        except (OSError, IOError):
            return None

    def is_char_device(self, path):
        st = self.stat(path)
        return bool(st and stat_module.S_ISCHR(st.st_mode))

    def find_program(self, *names, path=SYSTEM_PATH):
        """Host path of the first of `names` that is an executable file in a directory of `path` (in order), or None."""
        for name in names:
            for directory in path:
                candidate = posixpath.join(directory, name)
                st = self.stat(candidate)
                if st is not None and stat_module.S_ISREG(st.st_mode) and st.st_mode & 0o111:
                    return candidate
        return None
