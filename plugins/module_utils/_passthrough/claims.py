# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The persistent half of pci_passthrough (plan_boot, applied by
_common.files.apply_file_plan) makes the claim survive reboots, one device at a time too, by one of two methods:

driverctl   /etc/driverctl.d/pci-<address> holds `vfio-pci`, the file
            `driverctl set-override` saves. driverctl's udev rule loads it
            when the device appears in the booted system (after the
            initramfs): the host driver may bind first and is then unbound.
            The file is written directly because `driverctl set-override`
            always unbinds and rebinds, even a device already on vfio-pci
            (which blocks while a guest holds it).
modprobe    /etc/modprobe.d/phyllome-vfio.conf: an `install vfio-pci` command
            that writes driver_override of every claimed address (unbinding
            a driver that took one, a built-in driver) before vfio-pci
            loads and binds them, and `softdep <host module> pre: vfio-pci`
            for the modules whose PCI aliases match a claimed device, so that
            loading a host driver loads vfio-pci first. The file goes into
            the initramfs (dracut: install_items + add_drivers and the kernel
            argument rd.driver.pre=vfio-pci, which loads vfio-pci before
            udev; initramfs-tools: a hook that force-loads vfio_pci, and
            mkinitramfs copies /etc/modprobe.d), which is regenerated only
            when one of these files changed or an image is older than them.
            Unlike `options vfio-pci ids=`, this never takes an identical
            card at another address.

The files are written and the initramfs regenerated as one step: if the
regeneration fails, the files are put back (_common.files.apply_file_plan) and
the images rebuilt from them.

"""

from __future__ import annotations

import collections
import fnmatch
import os
import posixpath
import re

from ansible_collections.phyllome.os.plugins.module_utils._boot.context import BootContext, BootPlan, Target
from ansible_collections.phyllome.os.plugins.module_utils._common.device_ids import is_pci_address
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import HostStateError, InvalidInput
from ansible_collections.phyllome.os.plugins.module_utils._host import pci
from ansible_collections.phyllome.os.plugins.module_utils._host.kernels import installed_kernels
from ansible_collections.phyllome.os.plugins.module_utils._passthrough.selection import VFIO_DRIVER

METHODS = ('driverctl', 'modprobe')
DRIVERCTL_DIR = '/etc/driverctl.d'
CLAIM_FILE = '/etc/modprobe.d/phyllome-vfio.conf'
_HEADER = '# Written by phyllome.os.pci_passthrough (persistent: true); edit with that module, not by hand.\n'
# The for-list of the install command holds the claimed addresses.
_INSTALL_RE = re.compile(r'^install\s+vfio[-_]pci\s+for d in ([0-9a-f:. ]*);')

# What the install command runs in the end to load vfio-pci itself. /sbin/modprobe
# exists on merged-/usr systems too, and in dracut and initramfs-tools images.
_MODPROBE = '/sbin/modprobe'
_INSTALL_COMMAND = (
    'install vfio-pci for d in %s; do o=/sys/bus/pci/devices/$d/driver_override; [ -e $o ] || continue; '
    'echo vfio-pci > $o; [ -e /sys/bus/pci/devices/$d/driver ] && echo $d > /sys/bus/pci/devices/$d/driver/unbind; '
    'done; exec ' + _MODPROBE + ' --ignore-install vfio-pci $CMDLINE_OPTS')

_DRACUT_CONF = _HEADER + '''\
# vfio-pci and the claims of %s go into the initramfs; the kernel
# argument rd.driver.pre=vfio-pci loads vfio-pci there before udev loads host drivers.
add_drivers+=" vfio_pci "
install_items+=" %s "
''' % (CLAIM_FILE, CLAIM_FILE)

_INITRAMFS_TOOLS_HOOK = '#!/bin/sh\n' + _HEADER + '''\
# vfio-pci goes into the initramfs and is loaded there (mkinitramfs copies
# %s, which makes it claim its devices first).
PREREQ=""
prereqs() { echo "$PREREQ"; }
case "$1" in
prereqs) prereqs; exit 0 ;;
esac
. /usr/share/initramfs-tools/hook-functions
force_load vfio_pci
''' % CLAIM_FILE

InitramfsGenerator = collections.namedtuple(
    'InitramfsGenerator', 'name command marker config mode text regenerate image kernel_args')
InitramfsGenerator.__doc__ = """How one initramfs generator is told to carry the claim, and rebuilt.

command: the tool that detects it and regenerates (with the `regenerate`
arguments, for every installed kernel); marker: a file that must exist too;
config: the file written (with `text`, `mode`); image: the image of a kernel
version (to find images older than the claim); kernel_args: what the
command line needs for the claim to be early.
"""

# In detection order.
INITRAMFS_GENERATORS = (
    InitramfsGenerator('dracut', 'dracut', None, '/etc/dracut.conf.d/phyllome-vfio.conf', 0o644, _DRACUT_CONF,
                       ('--regenerate-all', '--force'), '/boot/initramfs-%s.img', ('rd.driver.pre=vfio-pci',)),
    InitramfsGenerator('initramfs-tools', 'update-initramfs', '/usr/share/initramfs-tools/hook-functions',
                       '/etc/initramfs-tools/hooks/phyllome-vfio', 0o755, _INITRAMFS_TOOLS_HOOK,
                       ('-u', '-k', 'all'), '/boot/initrd.img-%s', ()),
)


class ClaimContext(BootContext):
    """The BootContext of the claim files: no backups (the files are ours, wholly generated), a write of
    None removes the file, and `modes` gives the mode a file must have (hooks must be executable)."""

    def __init__(self, hostfs, recorder, atomic_move=None):
        super().__init__(hostfs, recorder, atomic_move=atomic_move, backup=False)
        self.modes = {}
        # Directories made for the files (host paths), which a failed step removes again.
        self.created_directories = []

    def write(self, path, text, description=None):
        real = self.hostfs.path(path)
        if text is None:
            self.recorder.apply(description or 'remove %s' % path, os.unlink, real)
            return
        directory = posixpath.dirname(path)
        if not self.hostfs.is_dir(directory):
            self.recorder.apply('create directory %s' % directory, self._make_directory, directory)
        before = self.hostfs.stat(path)
        super().write(path, text, description)
        mode = self.modes.get(path)
        # A new file gets 0644 (BootContext.write); an existing one keeps its mode.
        if mode is not None and (before.st_mode & 0o7777 if before else 0o644) != mode:
            self.recorder.apply('set mode %04o on %s' % (mode, path), os.chmod, real, mode)

    def _make_directory(self, directory):
        """os.makedirs for a host directory, remembering each level it made (deepest last)."""
        missing = []
        path = directory
        while path not in ('/', '') and not self.hostfs.is_dir(path):
            missing.insert(0, path)
            path = posixpath.dirname(path)
        os.makedirs(self.hostfs.path(directory), 0o755)
        self.created_directories.extend(missing)


def indexed_kernels(fs):
    """The InstalledKernels below fs that depmod has run for: those whose modules.alias says what takes a device."""
    return [kernel for kernel in installed_kernels(fs) if kernel.depmod]


def pci_aliases(fs, kernels):
    """Sorted (pattern, module) of the PCI aliases of the `kernels`' modules.alias, vfio's own left out."""
    aliases = set()
    for kernel in kernels:
        for line in fs.read_lines(posixpath.join(kernel.modules, 'modules.alias')):
            words = line.split()
            if len(words) == 3 and words[0] == 'alias' and words[1].startswith('pci:') and not words[2].startswith('vfio'):
                aliases.add((words[1], words[2]))
    return sorted(aliases)


def host_modules(fs, address, aliases):
    """The loadable modules that would take the device at `address` (matched on its modalias, as modprobe does)."""
    modalias = fs.read_text(posixpath.join(pci.SYSFS_PCI_DEVICES, address, 'modalias'))
    if not modalias:
        return []
    return sorted(set(module for pattern, module in aliases if fnmatch.fnmatchcase(modalias, pattern)))


def vfio_builtin_kernels(fs, kernels):
    """Versions of the `kernels` that have vfio-pci built in (no module load for an install command to hook)."""
    return [kernel.version for kernel in kernels
            if any(line.endswith('/vfio-pci.ko') for line in fs.read_lines(posixpath.join(kernel.modules, 'modules.builtin')))]


def read_modprobe_claims(fs):
    """Sorted addresses that CLAIM_FILE has vfio-pci claim at boot ([] without the file)."""
    for line in fs.read_lines(CLAIM_FILE):
        match = _INSTALL_RE.match(line)
        if match:
            return sorted(set(match.group(1).split()))
    return []


def read_driverctl_claims(fs):
    """{address: driver} of the PCI overrides driverctl keeps in DRIVERCTL_DIR."""
    claims = {}
    for name in fs.listdir(DRIVERCTL_DIR):
        if name.startswith('pci-') and is_pci_address(name[4:]):
            claims[name[4:]] = (fs.read_text(posixpath.join(DRIVERCTL_DIR, name)) or '').strip()
    return claims


def render_modprobe_claims(addresses, modules):
    """CLAIM_FILE's content for `addresses` and the host `modules` to order after vfio-pci (None: no file)."""
    if not addresses:
        return None
    lines = [_HEADER.rstrip('\n'),
             '# vfio-pci claims these PCI devices by address when it loads: it sets their driver_override (and',
             '# unbinds a driver, a built-in one, that took a device first), then binds them.',
             _INSTALL_COMMAND % ' '.join(addresses)]
    if modules:
        lines.append('# Loading a module that would take one of them loads vfio-pci first.')
        lines.extend('softdep %s pre: vfio-pci' % module for module in modules)
    return '\n'.join(lines) + '\n'


def detect_generator(context):
    """The InitramfsGenerator of the host, or None."""
    for generator in INITRAMFS_GENERATORS:
        if context.find_command(generator.command) and (generator.marker is None or context.hostfs.exists(generator.marker)):
            return generator
    return None


def pick_method(context, method='auto'):
    """driverctl when it is installed (auto), else modprobe; an explicit method must be usable."""
    if method not in ('auto',) + METHODS:
        raise InvalidInput('method must be one of auto, %s; got %r' % (', '.join(METHODS), method))
    if method == 'auto':
        return 'driverctl' if context.find_command('driverctl') else 'modprobe'
    if method == 'driverctl' and not context.find_command('driverctl'):
        raise HostStateError('method=driverctl: driverctl is not installed')
    return method


def _plan_file(context, plan, path, text, mode=None):
    """Add the write (or, for None, the removal) of `path` to `plan` when it differs; True when it does."""
    current = context.read_text(path)
    stat = context.hostfs.stat(path)
    wrong_mode = text is not None and mode is not None and stat is not None and stat.st_mode & 0o7777 != mode
    if current == text and not wrong_mode:
        return False
    if mode is not None:
        context.modes[path] = mode
    plan.writes.append((path, text))
    plan.targets.append(Target('file', path, current or '', text or ''))
    return True


def _stale_images(fs, generator, kernels, files):
    """Initramfs images older than the newest of `files` (they were built without the current claim)."""
    times = [st.st_mtime for st in (fs.stat(path) for path in files) if st is not None]
    if not times:
        return []
    images = [generator.image % kernel.version for kernel in kernels]
    return [image for image in images if fs.stat(image) is not None and fs.stat(image).st_mtime < max(times)]


def plan_boot(context, devices, selected, state, method='auto'):
    """The boot configuration that makes the `selected` devices go to `state` at boot.

    Giving devices back (host) removes their claims whatever the method that
    made them. Returns (BootPlan, info); info holds method,
    initramfs (the generator's name, or None when untouched), claims (the
    addresses vfio-pci claims at boot afterwards) and kernel_args (what the
    command line needs for them).
    """
    fs = context.hostfs
    method = pick_method(context, method)
    plan = BootPlan(None, None)
    modprobe_before = read_modprobe_claims(fs)
    driverctl_claims = read_driverctl_claims(fs)
    if state == 'vfio' and method == 'modprobe':
        modprobe_after = sorted(set(modprobe_before) | set(selected))
    elif state == 'host':
        modprobe_after = [a for a in modprobe_before if a not in selected]
    else:
        modprobe_after = modprobe_before
    for address in selected:
        path = posixpath.join(DRIVERCTL_DIR, 'pci-' + address)
        current = driverctl_claims.get(address)
        if state == 'vfio' and method == 'driverctl' and current != VFIO_DRIVER:
            _plan_file(context, plan, path, VFIO_DRIVER + '\n')
            driverctl_claims[address] = VFIO_DRIVER
        elif state == 'host' and current == VFIO_DRIVER:
            # An override to another driver is the admin's, not a claim: kept.
            _plan_file(context, plan, path, None)
            del driverctl_claims[address]
    generator = None
    kernel_args = []
    if modprobe_after != modprobe_before or (method == 'modprobe' and modprobe_after):
        generator = _modprobe_generator(context, adding=bool(set(modprobe_after) - set(modprobe_before)))
        kernels = indexed_kernels(fs)
        aliases = pci_aliases(fs, kernels)
        modules = sorted(set(m for a in modprobe_after if a in devices for m in host_modules(fs, a, aliases)))
        changed = _plan_file(context, plan, CLAIM_FILE, render_modprobe_claims(modprobe_after, modules))
        changed = _plan_file(context, plan, generator.config, generator.text if modprobe_after else None,
                             generator.mode) or changed
        argv = [context.find_command(generator.command)] + list(generator.regenerate)
        stale = [] if changed or not modprobe_after else _stale_images(fs, generator, kernels, [CLAIM_FILE, generator.config])
        if changed:
            plan.commands.append((argv, 'regenerate the initramfs: %s' % ' '.join(argv)))
        elif stale:
            plan.commands.append((argv, 'regenerate the initramfs: %s is older than the claim (%s)'
                                  % (', '.join(stale), ' '.join(argv))))
        # The regeneration may rebuild some images before it fails: they are
        # rebuilt from the restored files.
        plan.rerun_on_restore = True
        if modprobe_after:
            kernel_args = list(generator.kernel_args)
    claims = set(modprobe_after) | set(a for a, driver in driverctl_claims.items() if driver == VFIO_DRIVER)
    return plan, {'method': method, 'initramfs': generator.name if generator else None,
                  'claims': sorted(claims), 'kernel_args': kernel_args}


def _modprobe_generator(context, adding):
    """The host's initramfs generator for the modprobe method; refuse a host where the claim cannot work."""
    fs = context.hostfs
    generator = detect_generator(context)
    if generator is None:
        raise HostStateError('no initramfs generator found (neither dracut nor initramfs-tools): the boot claim '
                             'must go into the initramfs; install one, or use method=driverctl')
    if adding:
        if fs.exists('/run/ostree-booted'):
            raise HostStateError('this host boots an rpm-ostree deployment, whose initramfs is not built here: use '
                                 'method=driverctl')
        builtin = vfio_builtin_kernels(fs, indexed_kernels(fs))
        if builtin:
            raise HostStateError('vfio-pci is built into the kernel %s, so no module load can carry the claim: use '
                                 'method=driverctl' % ', '.join(builtin), kernels=builtin)
    return generator
