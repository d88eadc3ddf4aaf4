# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.hostfs import HostFS
from ansible_collections.phyllome.os.plugins.module_utils._host.kernels import InstalledKernel, installed_kernels


def make_tree(root, files):
    for path in files:
        real = os.path.join(root, path.lstrip('/'))
        if path.endswith('/'):
            os.makedirs(real, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(real), exist_ok=True)
        with open(real, 'w') as f:
            f.write('x\n')


@pytest.mark.parametrize('files, expected', [
    # Fedora: merged /usr, the image beside the modules (kernel-install copies it to /boot).
    (['/usr/lib/modules/6.8.5-301.fc40.x86_64/vmlinuz', '/usr/lib/modules/6.8.5-301.fc40.x86_64/modules.dep',
      '/boot/vmlinuz-6.8.5-301.fc40.x86_64'],
     [InstalledKernel('6.8.5-301.fc40.x86_64', '/usr/lib/modules/6.8.5-301.fc40.x86_64',
                      '/usr/lib/modules/6.8.5-301.fc40.x86_64/vmlinuz', True)]),
    # Debian without merged /usr: images in /boot; a removed kernel's leftover modules, never indexed.
    (['/lib/modules/6.1.0-18-amd64/modules.dep', '/boot/vmlinuz-6.1.0-18-amd64', '/lib/modules/6.1.0-13-amd64/'],
     [InstalledKernel('6.1.0-13-amd64', '/lib/modules/6.1.0-13-amd64', None, False),
      InstalledKernel('6.1.0-18-amd64', '/lib/modules/6.1.0-18-amd64', '/boot/vmlinuz-6.1.0-18-amd64', True)]),
    # /usr/lib/modules is the one read when both exist as directories.
    (['/usr/lib/modules/6.1.0-18-amd64/modules.dep', '/lib/modules/5.10.0-28-amd64/modules.dep'],
     [InstalledKernel('6.1.0-18-amd64', '/usr/lib/modules/6.1.0-18-amd64', None, True)]),
    ([], []),
])
def test_installed_kernels(tmp_path, files, expected):
    make_tree(str(tmp_path), files)
    assert installed_kernels(HostFS(str(tmp_path))) == expected
