# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The boot loader backends but grubby's (see bootloader.py for how one is chosen), and what they share.

Each backend reads the host through its BootContext, plans a BootPlan for a
KernelArgsRequest, and applies it with _common.files.apply_file_plan (every
file put back when a step fails).
"""

from __future__ import annotations

import collections
import posixpath

from ansible_collections.phyllome.os.plugins.module_utils._boot import formats
from ansible_collections.phyllome.os.plugins.module_utils._boot import kernel_args as ka
from ansible_collections.phyllome.os.plugins.module_utils._boot.context import BootPlan, Target
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import HostStateError, InvalidInput
from ansible_collections.phyllome.os.plugins.module_utils._common.files import apply_file_plan
from ansible_collections.phyllome.os.plugins.module_utils._host import cmdline
from ansible_collections.phyllome.os.plugins.module_utils._host.kernels import MODULES_DIRS, installed_kernels

BLS_ENTRIES = '/boot/loader/entries'
GRUB2_ENV = '/boot/grub2/grubenv'
KERNEL_CMDLINE = '/etc/kernel/cmdline'
KERNEL_CMDLINE_VENDOR = '/usr/lib/kernel/cmdline'
SYSTEMD_BOOT_LOADER_CONF = ('/efi/loader/loader.conf', '/boot/efi/loader/loader.conf', '/boot/loader/loader.conf')
LOADER_ENTRY_DIRS = ('/efi/loader/entries', '/boot/efi/loader/entries', BLS_ENTRIES)

# Characters that GRUB's script parser (grub.cfg, BLS `options` that GRUB
# expands) or the shell reading /etc/default/grub would interpret.
GRUB_UNSAFE = '$`\\\';&|<>'
# grubby word-splits its --args, and matches names and values as sed
# regular expressions: no spaces or quotes, no globbing or regex operators.
GRUBBY_UNSAFE = GRUB_UNSAFE + '*?[]^+(){}'
# kernel-install copies /etc/kernel/cmdline into entries that GRUB's blscfg
# may expand too (Fedora), and into UKIs.
KERNEL_INSTALL_UNSAFE = '$`\\'
RPM_OSTREE_UNSAFE = '$`\\'

BootEntry = collections.namedtuple('BootEntry', 'path fields options')
BootEntry.__doc__ = """A BLS entry: its file, its fields, its command line with GRUB variables expanded."""


class Backend:
    """Common behaviour; subclasses set name/unsafe characters and implement detect, unusable, plan."""

    name = None
    unsafe = ''
    spaces = True
    reason = ''

    def __init__(self, context, kernels='all'):
        self.context = context
        self.kernels = kernels

    @classmethod
    def detect(cls, context):
        raise NotImplementedError

    @classmethod
    def unusable(cls, context):
        """Why this backend cannot work on the host (None when it can)."""
        raise NotImplementedError

    def running_cmdline(self):
        running = cmdline.running_cmdline(self.context.hostfs)
        return running.strip() if running is not None else None

    def check_request(self, request):
        request.check_carriable(self.name, self.unsafe, self.spaces, self.reason)

    def refuse_default_kernel(self, where):
        if self.kernels == 'default':
            raise InvalidInput('kernels=default is only possible with the grubby backend (rpm-ostree acts on the '
                               'default deployment anyway): the %s backend keeps one command line, %s, for every '
                               'kernel' % (self.name, where))

    def plan(self, request):
        raise NotImplementedError

    def apply(self, plan):
        """Carry out `plan` through the recorder; on any failure restore what changed and re-raise."""
        apply_file_plan(self.context, plan)


class RpmOstreeBackend(Backend):
    name = 'rpm-ostree'
    unsafe = RPM_OSTREE_UNSAFE
    spaces = False
    reason = 'ostree splits arguments on spaces and GRUB expands the entries'

    @classmethod
    def detect(cls, context):
        return context.hostfs.exists('/run/ostree-booted')

    @classmethod
    def unusable(cls, context):
        if not cls.detect(context):
            return '/run/ostree-booted does not exist: this host was not booted by ostree'
        if not context.find_command('rpm-ostree'):
            return 'rpm-ostree is not installed'
        return None

    def read_kargs(self):
        return self.context.query([self.context.find_command('rpm-ostree'), 'kargs']).strip()

    def plan(self, request):
        self.check_request(request)
        before = self.read_kargs()
        edit = ka.edit_cmdline([before], request, in_place=False)
        after = edit.after[0]
        plan = BootPlan(before, after)
        plan.targets.append(Target('kargs', 'rpm-ostree', before, after, default=True))
        if edit.changed:
            argv = [self.context.find_command('rpm-ostree'), 'kargs']
            argv += ['--delete=%s' % raw for raw in edit.removed] + ['--append=%s' % raw for raw in edit.added]
            plan.commands.append((argv, None))
            plan.verify = lambda: self._verify(after)
        return plan

    def _verify(self, predicted):
        actual = self.read_kargs()
        if [a.raw for a in cmdline.kernel_args(actual)] != [a.raw for a in cmdline.kernel_args(predicted)]:
            # Nothing to copy back: the change is a staged deployment, which
            # `rpm-ostree cleanup -p` drops; an admin decides that.
            raise HostStateError('rpm-ostree staged kernel arguments that differ from the expected ones: expected '
                                 '%r, got %r. `rpm-ostree cleanup -p` drops the pending deployment.' % (predicted, actual),
                                 expected=predicted, actual=actual)


class KernelInstallBackend(Backend):
    name = 'kernel-install'
    unsafe = KERNEL_INSTALL_UNSAFE
    reason = 'GRUB expands BLS entries built from /etc/kernel/cmdline'

    @classmethod
    def detect(cls, context):
        return context.hostfs.exists(KERNEL_CMDLINE) or any(context.hostfs.exists(p) for p in SYSTEMD_BOOT_LOADER_CONF)

    @classmethod
    def unusable(cls, context):
        if not context.find_command('kernel-install'):
            return 'kernel-install is not installed'
        return None

    def plan(self, request):
        self.refuse_default_kernel(KERNEL_CMDLINE)
        self.check_request(request)
        plan = BootPlan(None, None)
        edit = _plan_kernel_cmdline_file(self.context, request, plan, create=True)
        plan.cmdline_before, plan.cmdline_after = edit.before[0].strip(), edit.after[0].strip()
        if edit.changed:
            # kernel-install needs an image to add; modules alone are left over from a removed kernel.
            kernels = [kernel for kernel in installed_kernels(self.context.hostfs) if kernel.image]
            if not kernels:
                raise HostStateError('no installed kernel found in %s: nothing would use %s' % (' or '.join(MODULES_DIRS), KERNEL_CMDLINE))
            command = self.context.find_command('kernel-install')
            for kernel in kernels:
                plan.commands.append(([command, 'add', kernel.version, kernel.image], None))
            # Restored on failure, but not copied: they may sit on the ESP
            # (FAT), and kernel-install rebuilds them from the file anyway.
            plan.touched = _loader_entry_files(self.context)
            # What kernel-install had begun to rebuild is rebuilt from the restored file.
            plan.rerun_on_restore = True
        return plan


class GrubBackend(Backend):
    name = 'grub'
    unsafe = GRUB_UNSAFE
    reason = "the shell reading /etc/default/grub or GRUB's script parser would interpret it"

    @classmethod
    def detect(cls, context):
        return context.hostfs.exists(formats.DEFAULT_GRUB)

    @classmethod
    def unusable(cls, context):
        if not cls.detect(context):
            return '%s does not exist' % formats.DEFAULT_GRUB
        if not cls.regenerate_command(context):
            return 'neither update-grub nor grub-mkconfig nor grub2-mkconfig is installed'
        return None

    @staticmethod
    def grub_cfg(context):
        for directory in ('/boot/grub', '/boot/grub2'):
            if context.hostfs.is_dir(directory):
                return directory + '/grub.cfg'
        return '/boot/grub/grub.cfg'

    @classmethod
    def regenerate_command(cls, context):
        update_grub = context.find_command('update-grub')
        if update_grub:
            return [update_grub]
        mkconfig = context.find_command('grub-mkconfig', 'grub2-mkconfig')
        return [mkconfig, '-o', cls.grub_cfg(context)] if mkconfig else None

    def plan(self, request):
        self.refuse_default_kernel('GRUB_CMDLINE_LINUX')
        self.check_request(request)
        plan = BootPlan(None, None)
        edit = _plan_grub_defaults(self.context, request, plan, required=True)
        plan.cmdline_before, plan.cmdline_after = _joined(edit.before), _joined(edit.after)
        grub_cfg = self.grub_cfg(self.context)
        stale = self._stale(grub_cfg, plan.cmdline_after, request)
        if edit.changed or stale:
            description = None
            if not edit.changed:
                description = 'regenerate %s: it does not carry %s as configured' % (grub_cfg, ', '.join(stale))
            plan.commands.append((self.regenerate_command(self.context), description))
            plan.touched = plan.backed_up = [grub_cfg]
        return plan

    def _stale(self, grub_cfg, configured, request):
        """Managed arguments that grub.cfg's first linux line does not carry as /etc/default/grub says."""
        text = self.context.read_text(grub_cfg)
        if not text or request.is_empty():
            return []
        for line in text.splitlines():
            words = line.strip().split(None, 2)
            if words and words[0] in ('linux', 'linuxefi', 'linux16') and len(words) > 1:
                return ka.pending_arguments(configured, words[2] if len(words) > 2 else '', request)
        return []


def _joined(segments):
    return ' '.join(s.strip() for s in segments if s.strip())


def _entry_files(context):
    return [posixpath.join(BLS_ENTRIES, name) for name in context.hostfs.listdir(BLS_ENTRIES) if name.endswith('.conf')]


def _loader_entry_files(context):
    files = []
    for directory in LOADER_ENTRY_DIRS:
        files.extend(posixpath.join(directory, n) for n in context.hostfs.listdir(directory) if n.endswith('.conf'))
    return files


def _plan_grub_defaults(context, request, plan, required):
    """Edit GRUB_CMDLINE_LINUX(_DEFAULT) into `plan`; return the CmdlineEdit (None when there is no file)."""
    hostfs = context.hostfs
    if not hostfs.exists(formats.DEFAULT_GRUB):
        if required:
            raise HostStateError('%s does not exist' % formats.DEFAULT_GRUB)
        return None
    paths = [formats.DEFAULT_GRUB] + [posixpath.join(formats.DEFAULT_GRUB_DIR, n)
                                      for n in hostfs.listdir(formats.DEFAULT_GRUB_DIR) if n.endswith('.cfg')]
    defaults = formats.GrubDefaults([(path, context.read_text(path) or '') for path in paths])
    edit = ka.edit_cmdline(defaults.segments(), request, append_to=0)
    changed = defaults.render(edit.after)
    holders = [formats.DEFAULT_GRUB] + [a.path for a in defaults.assignments.values()]
    for path in sorted(set(holders) | set(changed)):
        text = defaults.files[path]
        if path in changed:
            plan.writes.append((path, changed[path]))
        plan.targets.append(Target('file', path, text, changed.get(path, text)))
    return edit


def _plan_kernel_cmdline_file(context, request, plan, create):
    """Edit /etc/kernel/cmdline into `plan`; return the CmdlineEdit (None when absent and not `create`).

    When the file does not exist, kernel-install uses /usr/lib/kernel/cmdline,
    else the running command line without BOOT_IMAGE= and initrd=; the file
    is created from that same base.
    """
    text = context.read_text(KERNEL_CMDLINE)
    if text is None:
        if not create:
            return None
        base = context.read_text(KERNEL_CMDLINE_VENDOR)
        if base is None:
            base = ' '.join(a.raw for a in cmdline.running_kernel_args(context.hostfs) if a.name not in ('BOOT_IMAGE', 'initrd'))
        line, ending = base.strip(), '\n'
    else:
        line = text.rstrip('\n')
        ending = text[len(line):] or '\n'
    edit = ka.edit_cmdline([line], request)
    new = edit.after[0] + ending if edit.changed else text
    if edit.changed:
        plan.writes.append((KERNEL_CMDLINE, new))
    if new is not None:
        plan.targets.append(Target('file', KERNEL_CMDLINE, text or '', new))
    return edit
