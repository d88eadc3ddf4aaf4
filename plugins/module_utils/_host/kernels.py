# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernels installed on a host: their versions, module directories and images."""

from __future__ import annotations

import collections
import posixpath

# Merged-/usr systems keep modules in /usr/lib/modules (with /lib a link to
# it); the others in /lib/modules.
MODULES_DIRS = ('/usr/lib/modules', '/lib/modules')

InstalledKernel = collections.namedtuple('InstalledKernel', 'version modules image depmod')
InstalledKernel.__doc__ = """One installed kernel.

version: its release (uname -r); modules: its module directory on the host;
image: its vmlinuz, in the module directory (Fedora, systemd's layout) or
/boot/vmlinuz-VERSION (Debian), None when neither exists (modules a removed
kernel left behind); depmod: whether depmod has indexed its modules
(modules.dep, so modules.alias and modules.builtin are there too).
"""


def installed_kernels(fs):
    """[InstalledKernel] of every version in the host's modules directory (HostFS fs), sorted by version string."""
    directory = next((d for d in MODULES_DIRS if fs.is_dir(d)), None)
    if directory is None:
        return []
    kernels = []
    for version in fs.listdir(directory):
        modules = posixpath.join(directory, version)
        image = next((path for path in (posixpath.join(modules, 'vmlinuz'), '/boot/vmlinuz-%s' % version)
                      if fs.exists(path)), None)
        kernels.append(InstalledKernel(version, modules, image, fs.exists(posixpath.join(modules, 'modules.dep'))))
    return kernels
