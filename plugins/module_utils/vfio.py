# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Giving PCI devices to vfio-pci and back, now (the runtime half of pci_passthrough).

Binding follows the kernel's driver_override protocol, one device at a time:

    echo vfio-pci     > /sys/bus/pci/devices/<address>/driver_override
    echo <address>    > /sys/bus/pci/devices/<address>/driver/unbind
    echo <address>    > /sys/bus/pci/drivers_probe

driver_override (unlike vfio-pci's new_id) names one device, so a second
identical card stays with its driver, and the override keeps a later
rescan or hotplug from handing the device back. Giving a device back clears
the override, unbinds it from vfio-pci and probes again.

Selection and safety come first: devices are selected by address (IDs only
filter given addresses), a group must go whole, an unsafe group (see
iommu_groups) is refused unless forced, and a device the host uses now is
refused even when forced.

The persistent half (plan_boot, applied by actions.apply_file_plan) makes
the claim survive reboots, one device at a time too, by one of two methods:

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
regeneration fails, the files are put back (actions.apply_file_plan) and
the images rebuilt from them.
"""

from __future__ import annotations

import collections
import fnmatch
import os
import posixpath
import re

from ansible_collections.phyllome.os.plugins.module_utils import bootloader, iommu, iommu_groups, pci
from ansible_collections.phyllome.os.plugins.module_utils.actions import apply_file_plan
from ansible_collections.phyllome.os.plugins.module_utils.errors import HostStateError, InvalidInput, NotFound
from ansible_collections.phyllome.os.plugins.module_utils.kernel_args import apply_kernel_args, plan_kernel_args
from ansible_collections.phyllome.os.plugins.module_utils.kernels import installed_kernels

VFIO_DRIVER = 'vfio-pci'
# Drivers under which the kernel still counts a group as viable for VFIO.
_VFIO_SAFE_DRIVERS = frozenset((VFIO_DRIVER, 'pci-stub', None))
SYSFS_DRIVERS_PROBE = '/sys/bus/pci/drivers_probe'
STATES = ('vfio', 'host')


def read_host(fs):
    """(devices, host usage, assessed groups by number) of the host under fs."""
    devices = pci.read_devices(fs, pci.read_ids(fs))
    usage = iommu_groups.host_usage(fs)
    groups = dict((g['group'], g) for g in iommu_groups.assess(fs, devices, usage))
    return devices, usage, groups


def select(devices, groups, addresses=(), ids=(), whole_group=False):
    """The sorted addresses a request designates.

    addresses: PCI addresses (short forms accepted); ids: vendor:device IDs
    that filter `addresses`, never the whole host (binding by ID alone is how
    roles grab every identical card); whole_group: add every endpoint of the
    groups of the selected devices.
    """
    if not addresses:
        raise InvalidInput('name the devices by address: vendor:device IDs only filter the given addresses, '
                           'so that an identical card elsewhere is never taken')
    wanted = []
    for text in addresses:
        address = pci.normalize_address(text)
        if address not in devices:
            raise NotFound('no PCI device at %s' % address, address=address)
        if address not in wanted:
            wanted.append(address)
    if ids:
        id_set = set()
        for text in ids:
            vendor, sep, device = str(text).partition(':')
            if not sep:
                raise InvalidInput('%r is not a vendor:device ID (e.g. 10de:2520)' % (text,))
            id_set.add('%s:%s' % (pci.normalize_id(vendor), pci.normalize_id(device)))
        wanted = [a for a in wanted if devices[a]['vendor_device'] in id_set]
        if not wanted:
            raise NotFound('none of %s has the ID %s' % (', '.join(addresses), ', '.join(sorted(id_set))))
    if whole_group:
        for address in list(wanted):
            group = groups.get(devices[address]['iommu_group'])
            if group is None:
                continue
            for member in group['endpoints']:
                if member not in wanted:
                    wanted.append(member)
    for address in wanted:
        if devices[address]['bridge']:
            raise InvalidInput('%s is a PCI bridge: bridges stay with the host (pass the devices behind it)'
                               % address)
    return sorted(wanted)


def check_claim(devices, usage, groups, selected, force=False):
    """Raise unless the devices `selected` can be given to vfio-pci now."""
    in_use = [(a, u['message']) for a in selected for u in usage.get(a, [])]
    if in_use:
        # Not even with force: taking a device from under a mounted file
        # system or a live route breaks the host at once.
        raise HostStateError('refusing to take devices the host is using now: %s' % '; '.join(
            '%s (%s)' % use for use in in_use), devices=sorted(set(a for a, _message in in_use)))
    for address in selected:
        number = devices[address]['iommu_group']
        if number is None or number not in groups:
            raise HostStateError('%s is in no IOMMU group: the IOMMU is off or does not cover it, so VFIO cannot '
                                 'isolate it (see phyllome.os.iommu_info)' % address, address=address)
    for number in sorted(set(devices[a]['iommu_group'] for a in selected)):
        group = groups[number]
        left = [a for a in group['endpoints'] if a not in selected and devices[a]['driver'] not in _VFIO_SAFE_DRIVERS]
        if left:
            raise HostStateError(
                'IOMMU group %d also holds %s, bound to host drivers; a group goes to a guest whole: select them '
                'too (whole_group)' % (number, ', '.join('%s (%s)' % (a, devices[a]['driver']) for a in left)),
                group=number, devices=left)
        if group['verdict'] == iommu_groups.VERDICT_UNSAFE and not force:
            offending = sorted(set(d for r in group['reasons'] for d in r['devices']))
            raise HostStateError(
                'IOMMU group %d is unsafe to pass: %s. Use force to pass it anyway' % (
                    number, '; '.join(r['message'] for r in group['reasons'])),
                group=number, devices=offending)


def _sysfs_write(fs, path, value):
    """Write one sysfs attribute (the kernel acts on the write); raise HostStateError with its words."""
    try:
        with open(fs.path(path), 'w') as f:
            f.write(value)
    except (OSError, IOError) as exc:
        raise HostStateError('writing %r to %s failed: %s' % (value.strip(), path, exc), path=path)


def plan_device(device, state):
    """The sysfs writes that move one device to `state` (vfio or host): [(description, path, value)]."""
    address = device['address']
    base = posixpath.join(pci.SYSFS_PCI_DEVICES, address)
    steps = []
    if state == 'vfio':
        if device['driver'] == VFIO_DRIVER and device['driver_override'] == VFIO_DRIVER:
            return steps
        if device['driver_override'] != VFIO_DRIVER:
            steps.append(('set driver_override of %s to vfio-pci' % address, base + '/driver_override', VFIO_DRIVER))
        if device['driver'] != VFIO_DRIVER:
            if device['driver']:
                steps.append(('unbind %s from %s' % (address, device['driver']), base + '/driver/unbind', address))
            steps.append(('probe %s (binds vfio-pci)' % address, SYSFS_DRIVERS_PROBE, address))
    else:
        if device['driver_override'] is None and device['driver'] != VFIO_DRIVER:
            return steps
        if device['driver_override'] is not None:
            # An empty write clears the override.
            steps.append(('clear driver_override of %s' % address, base + '/driver_override', '\n'))
        if device['driver'] == VFIO_DRIVER:
            steps.append(('unbind %s from vfio-pci' % address, base + '/driver/unbind', address))
            steps.append(('probe %s (binds its host driver)' % address, SYSFS_DRIVERS_PROBE, address))
    return steps


def apply(fs, recorder, devices, selected, state, write=None):
    """Move the `selected` devices to `state` through the recorder; return the result dict.

    write(fs, path, value) performs a sysfs write (tests give a fake kernel).
    Returns devices, previous_drivers and drivers (after; predicted in check
    mode).
    """
    if state not in STATES:
        raise InvalidInput('state must be vfio or host, not %r' % (state,))
    previous = dict((a, devices[a]['driver']) for a in selected)
    plans = dict((a, plan_device(devices[a], state)) for a in selected)
    if write is None:
        if any(plans.values()) and not fs.is_live and not recorder.check_mode:
            raise InvalidInput('binding devices acts on the running kernel, which %s is not: use root=/, check mode, '
                               'or runtime=false' % fs.root)
        write = _sysfs_write
    if state == 'vfio' and any(plans.values()) and not fs.is_dir('/sys/bus/pci/drivers/' + VFIO_DRIVER):
        # --ignore-install: the boot claim's install command would also take
        # every device claimed for the next boot, now.
        recorder.run(['modprobe', '--ignore-install', VFIO_DRIVER], description='load the vfio-pci module')
    for address in selected:
        for description, path, value in plans[address]:
            recorder.apply(description, write, fs, path, value)
    after = {}
    for address in selected:
        if recorder.check_mode or not plans[address]:
            after[address] = VFIO_DRIVER if state == 'vfio' else _predicted_host_driver(devices[address])
            continue
        driver = fs.link_name(posixpath.join(pci.SYSFS_PCI_DEVICES, address, 'driver'))
        if state == 'vfio' and driver != VFIO_DRIVER:
            raise HostStateError('vfio-pci did not take %s (driver now: %s); see the kernel log' % (address, driver),
                                 address=address, driver=driver)
        after[address] = driver
    return {'devices': list(selected), 'previous_drivers': previous, 'drivers': after}


def _predicted_host_driver(device):
    # Without probing, the host driver a released device gets is unknown,
    # unless it never left it.
    return device['driver'] if device['driver'] != VFIO_DRIVER else None


# ---------------------------------------------------------------------------
# At boot: the persistent claim
# ---------------------------------------------------------------------------

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


class ClaimContext(bootloader.BootContext):
    """The BootContext of the claim files: no backups (the files are ours, wholly generated), a write of
    None removes the file, and `modes` gives the mode a file must have (hooks must be executable)."""

    def __init__(self, hostfs, recorder, atomic_move=None):
        super().__init__(hostfs, recorder, atomic_move=atomic_move, backup=False)
        self.modes = {}

    def write(self, path, text, description=None):
        real = self.hostfs.path(path)
        if text is None:
            self.recorder.apply(description or 'remove %s' % path, os.unlink, real)
            return
        directory = posixpath.dirname(path)
        if not self.hostfs.is_dir(directory):
            self.recorder.apply('create directory %s' % directory, os.makedirs, self.hostfs.path(directory), 0o755)
        before = self.hostfs.stat(path)
        super().write(path, text, description)
        mode = self.modes.get(path)
        # A new file gets 0644 (BootContext.write); an existing one keeps its mode.
        if mode is not None and (before.st_mode & 0o7777 if before else 0o644) != mode:
            self.recorder.apply('set mode %04o on %s' % (mode, path), os.chmod, real, mode)


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
        if name.startswith('pci-') and pci.is_address(name[4:]):
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
    plan.targets.append(bootloader.Target('file', path, current or '', text or ''))
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
    made them. Returns (bootloader.BootPlan, info); info holds method,
    initramfs (the generator's name, or None when untouched), claims (the
    addresses vfio-pci claims at boot afterwards) and kernel_args (what the
    command line needs for them).
    """
    fs = context.hostfs
    method = pick_method(context, method)
    plan = bootloader.BootPlan(None, None)
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


def iommu_kernel_args(fs):
    """intel_iommu=on (Intel VT-d: off by default in many kernels) and iommu=pt (no translation for the host's own DMA)."""
    found = iommu.detect_iommu(fs)
    args = ['intel_iommu=on'] if found['kind'] == 'intel' or found['firmware_table'] == 'DMAR' else []
    return args + ['iommu=pt']


def ensure(context, addresses, ids=(), whole_group=False, state='vfio', force=False, runtime=True, persistent=False,
           method='auto', kernel_args=True, iommu_args=False, write=None):
    """Everything pci_passthrough does: select, check, bind now, claim at boot, kernel arguments.

    context: a ClaimContext (host files, recorder, atomic_move). Checks and
    plans everything (including the boot loader) before the first change.
    Returns the module's result (devices, previous_drivers, drivers, method,
    initramfs, boot_claims, files, kernel_cmdline, reboot_required, diff).
    """
    fs, recorder = context.hostfs, context.recorder
    if state not in STATES:
        raise InvalidInput('state must be vfio or host, not %r' % (state,))
    if not runtime and not persistent:
        raise InvalidInput('runtime and persistent are both false: nothing to do')
    devices, usage, groups = read_host(fs)
    selected = select(devices, groups, addresses, ids, whole_group)
    if state == 'vfio':
        check_claim(devices, usage, groups, selected, force)
    plan, planned_args = None, None
    info = {'method': None, 'initramfs': None, 'claims': None, 'kernel_args': []}
    if persistent:
        plan, info = plan_boot(context, devices, selected, state, method)
        present = list(info['kernel_args']) if kernel_args and state == 'vfio' else []
        if iommu_args:
            present.extend(iommu_kernel_args(fs))
        if present:
            # Planned now, applied last: a boot loader that refuses the edit
            # (a computed GRUB_CMDLINE_LINUX, entries that disagree...) fails
            # the task before the device is bound or a claim file written.
            boot = bootloader.open_bootloader(bootloader.BootContext(fs, recorder, atomic_move=context.atomic_move))
            planned_args = plan_kernel_args(boot, present=present)
    if runtime:
        result = apply(fs, recorder, devices, selected, state, write)
    else:
        now = dict((a, devices[a]['driver']) for a in selected)
        result = {'devices': list(selected), 'previous_drivers': now, 'drivers': dict(now)}
    diff = [_drivers_diff(result['previous_drivers'], result['drivers'])] if result['previous_drivers'] != result['drivers'] else []
    kernel_cmdline = None
    if persistent:
        apply_file_plan(context, plan)
        diff.extend(plan.diffs())
        if planned_args is not None:
            kernel_cmdline = apply_kernel_args(planned_args)
            diff.extend(kernel_cmdline.pop('diff'))
    # The running system differs from what the next boot gives: a device is
    # not yet where the boot claim puts it, or the command line is pending.
    waiting = [a for a in selected if (result['drivers'][a] == VFIO_DRIVER) != (state == 'vfio')]
    result.update({
        'method': info['method'],
        'initramfs': info['initramfs'],
        'boot_claims': info['claims'],
        'files': [target.name for target in plan.targets if target.changed] if plan else [],
        'kernel_cmdline': kernel_cmdline,
        'reboot_required': bool(persistent and waiting) or bool(kernel_cmdline and kernel_cmdline['reboot_required']),
        'diff': diff,
    })
    return result


def _drivers_diff(before, after):
    def text(drivers):
        return ''.join('%s: %s\n' % (address, drivers[address] or '(none)') for address in sorted(drivers))
    return {'before_header': 'PCI drivers', 'after_header': 'PCI drivers', 'before': text(before), 'after': text(after)}
