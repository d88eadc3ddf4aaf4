# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a host keeps its kernel command line, and how to change it safely.

Four backends, chosen by open_bootloader(backend='auto') in this order:

rpm-ostree      /run/ostree-booted exists. `rpm-ostree kargs` shows the
                arguments of the pending deployment (the booted one when
                nothing is pending); `rpm-ostree kargs --delete=... --append=...`
                stages a new deployment in one transaction.
grubby          grubby is installed and /boot/loader/entries holds BLS
                entries, with no systemd-boot loader.conf (Fedora, RHEL).
                `grubby --update-kernel=ALL|DEFAULT --remove-args --args`
                edits the entries' `options` (and grubenv `kernelopts` on
                Fedora 30-32). With ALL, grubby would also rewrite
                GRUB_CMDLINE_LINUX with its own rules; it runs with
                --no-etc-grub-update (grubby >= 8.40-43) and this module edits
                /etc/default/grub and /etc/kernel/cmdline itself, exactly,
                because grub2-mkconfig rebuilds the entries from the first and
                kernel-install builds new kernels' entries from the second.
kernel-install  /etc/kernel/cmdline exists or systemd-boot is installed. The
                file is edited, then `kernel-install add VERSION IMAGE` runs
                for each installed kernel so their entries (or UKIs) carry it.
grub            /etc/default/grub (Debian, Ubuntu, others). The effective
                GRUB_CMDLINE_LINUX(_DEFAULT) assignment is edited, then
                update-grub or grub(2)-mkconfig -o <grub.cfg> runs.

All reads go through HostFS, all changes through the ActionRecorder (check
mode changes nothing). Files are written atomically with a backup; every
file a step may change is snapshotted first and put back if a command fails
or its result is not the predicted one (_common.files.apply_file_plan).
"""

from __future__ import annotations

from ansible_collections.phyllome.os.plugins.module_utils._boot import formats
from ansible_collections.phyllome.os.plugins.module_utils._boot.backends import BLS_ENTRIES, KERNEL_CMDLINE, GrubBackend, KernelInstallBackend, RpmOstreeBackend
from ansible_collections.phyllome.os.plugins.module_utils._boot.grubby import GrubbyBackend
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import HostStateError, InvalidInput

BACKENDS = ('rpm-ostree', 'grubby', 'kernel-install', 'grub')
KERNELS = ('all', 'default')

BACKEND_CLASSES = (RpmOstreeBackend, GrubbyBackend, KernelInstallBackend, GrubBackend)


def detect_backend(context):
    """The backend `auto` picks for the host, or HostStateError naming what was looked for."""
    for cls in BACKEND_CLASSES:
        if cls.detect(context):
            return cls.name
    raise HostStateError('no supported boot configuration found: no /run/ostree-booted, no grubby with BLS entries '
                         'in %s, no %s or systemd-boot, no %s' % (BLS_ENTRIES, KERNEL_CMDLINE, formats.DEFAULT_GRUB))


def open_bootloader(context, backend='auto', kernels='all'):
    """The backend object for the host (detected with 'auto'), or an error saying why it cannot work."""
    if backend not in ('auto',) + BACKENDS:
        raise InvalidInput('backend must be one of auto, %s; got %r' % (', '.join(BACKENDS), backend))
    if kernels not in KERNELS:
        raise InvalidInput('kernels must be one of %s; got %r' % (', '.join(KERNELS), kernels))
    name = detect_backend(context) if backend == 'auto' else backend
    cls = next(c for c in BACKEND_CLASSES if c.name == name)
    why = cls.unusable(context)
    if why:
        raise HostStateError('the %s backend cannot be used on this host: %s' % (name, why), backend=name)
    return cls(context, kernels)
