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
or its result is not the predicted one (actions.apply_file_plan).
"""

from __future__ import annotations

import collections
import os
import posixpath
import time

from ansible_collections.phyllome.os.plugins.module_utils import bootloader_formats as formats
from ansible_collections.phyllome.os.plugins.module_utils import kernel_args as ka
from ansible_collections.phyllome.os.plugins.module_utils.actions import FilePlan, apply_file_plan, backup_file, write_file_atomic
from ansible_collections.phyllome.os.plugins.module_utils.errors import CommandFailed, HostStateError, InvalidInput
from ansible_collections.phyllome.os.plugins.module_utils.kernels import MODULES_DIRS, installed_kernels

BACKENDS = ('rpm-ostree', 'grubby', 'kernel-install', 'grub')
KERNELS = ('all', 'default')

BLS_ENTRIES = '/boot/loader/entries'
GRUB2_ENV = '/boot/grub2/grubenv'
KERNEL_CMDLINE = '/etc/kernel/cmdline'
KERNEL_CMDLINE_VENDOR = '/usr/lib/kernel/cmdline'
SYSTEMD_BOOT_LOADER_CONF = ('/efi/loader/loader.conf', '/boot/efi/loader/loader.conf', '/boot/loader/loader.conf')
LOADER_ENTRY_DIRS = ('/efi/loader/entries', '/boot/efi/loader/entries', BLS_ENTRIES)
COMMAND_DIRS = ('/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin')

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
        """Host path of the first of `names` found as an executable below the root, or None."""
        for name in names:
            for directory in COMMAND_DIRS:
                path = posixpath.join(directory, name)
                real = self.hostfs.path(path)
                if os.path.isfile(real) and os.access(real, os.X_OK):
                    return path
        return None

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
        running = ka.running_cmdline(self.context.hostfs)
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
        if [a.raw for a in ka.kernel_args(actual)] != [a.raw for a in ka.kernel_args(predicted)]:
            # Nothing to copy back: the change is a staged deployment, which
            # `rpm-ostree cleanup -p` drops; an admin decides that.
            raise HostStateError('rpm-ostree staged kernel arguments that differ from the expected ones: expected '
                                 '%r, got %r. `rpm-ostree cleanup -p` drops the pending deployment.' % (predicted, actual),
                                 expected=predicted, actual=actual)


class GrubbyBackend(Backend):
    name = 'grubby'
    unsafe = GRUBBY_UNSAFE
    spaces = False
    reason = 'grubby splits its arguments on spaces and matches them as regular expressions; GRUB expands entries'

    @classmethod
    def detect(cls, context):
        return cls.unusable(context) is None and not any(context.hostfs.exists(p) for p in SYSTEMD_BOOT_LOADER_CONF)

    @classmethod
    def unusable(cls, context):
        if not context.find_command('grubby'):
            return 'grubby is not installed'
        if not _entry_files(context):
            return 'no boot entry in %s' % BLS_ENTRIES
        return None

    def _grubby(self):
        return self.context.find_command('grubby')

    def read_entries(self):
        """[BootEntry] in file name order, options with GRUB variables expanded as GRUB boots them."""
        env = formats.parse_grubenv(self.context.read_text(GRUB2_ENV) or '')
        entries = []
        for path in _entry_files(self.context):
            fields = formats.parse_bls_entry(self.context.read_text(path) or '')
            entries.append(BootEntry(path, fields, formats.expand_grub_variables(formats.bls_options(fields), env)))
        return entries

    def default_entry(self, entries):
        """The entry grubby calls DEFAULT, or None when grubby names none."""
        try:
            info = formats.parse_grubby_info(self.context.query([self._grubby(), '--info=DEFAULT']))
        except CommandFailed:
            return None
        if not info:
            return None
        wanted_id, kernel = info[0].get('id'), info[0].get('kernel')
        for entry in entries:
            if wanted_id and wanted_id in (posixpath.basename(entry.path)[:-len('.conf')], formats.bls_value(entry.fields, 'id')):
                return entry
        for entry in entries:
            linux = formats.bls_value(entry.fields, 'linux')
            if kernel and linux and (kernel == linux or kernel.endswith(linux)):
                return entry
        return None

    def plan(self, request):
        self.check_request(request)
        entries = self.read_entries()
        default = self.default_entry(entries)
        if self.kernels == 'default':
            if default is None:
                raise HostStateError('grubby names no default boot entry (grubby --info=DEFAULT)')
            selected = [default]
        else:
            selected = entries
        predicted = dict((entry.path, entry.options) for entry in entries)
        argv = self._command(selected, request, predicted)
        reference = default or selected[0]
        plan = BootPlan(reference.options, predicted[reference.path])
        for entry in selected:
            plan.targets.append(Target('entry', entry.path, entry.options, predicted[entry.path], default=entry is default,
                                       title=formats.bls_value(entry.fields, 'title'),
                                       kernel=formats.bls_value(entry.fields, 'linux')))
        if argv:
            plan.commands.append((argv, None))
            plan.touched = [entry.path for entry in entries] + ([GRUB2_ENV] if self.context.hostfs.exists(GRUB2_ENV) else [])
            plan.backed_up = plan.touched
            plan.verify = lambda: self._verify(predicted)
        if self.kernels == 'all':
            # What regenerations and new kernels start from (see the module docstring).
            _plan_grub_defaults(self.context, request, plan, required=False)
            _plan_kernel_cmdline_file(self.context, request, plan, create=False)
        return plan

    def _command(self, selected, request, predicted):
        """The grubby argv that brings `selected` to the request (None if none is needed).

        grubby removes every occurrence of the names it is given, then
        appends --args at the end; so every name whose occurrences change
        is removed and given back in full, and `predicted` is updated with
        exactly what grubby will leave.
        """
        semantic = dict((entry.path, ka.edit_cmdline([entry.options], request).after[0]) for entry in selected)
        keys = []
        for entry in selected:
            keys.extend(k for k in ka.touched_keys(entry.options, semantic[entry.path]) if k not in keys)
        if not keys:
            return None
        appended = self._uniform_values(selected, semantic, keys)
        spellings = []
        for entry in selected:
            if ka.has_init_args(entry.options):
                raise HostStateError('%s has a `--` in its options; grubby would put arguments after it, where the '
                                     'kernel passes them to init' % entry.path)
            args = ka.kernel_args(entry.options)
            spellings.extend(a.name for a in args if ka.arg_key(a) in keys and a.name not in spellings)
            predicted[entry.path] = ' '.join([a.raw for a in args if ka.arg_key(a) not in keys] + appended)
        argv = [self._grubby(), '--update-kernel=%s' % ('ALL' if self.kernels == 'all' else 'DEFAULT')]
        if self.kernels == 'all':
            argv.append('--no-etc-grub-update')
        if spellings:
            argv.append('--remove-args=%s' % ' '.join(spellings))
        if appended:
            argv.append('--args=%s' % ' '.join(appended))
        return argv

    @staticmethod
    def _uniform_values(selected, semantic, keys):
        """The arguments to append for `keys`: the same for every entry, or HostStateError."""
        appended = None
        for entry in selected:
            values = [a.raw for a in ka.kernel_args(semantic[entry.path]) if ka.arg_key(a) in keys]
            if appended is None:
                appended = values
            elif values != appended:
                raise HostStateError(
                    'boot entries disagree on %s (%s has %s, another has %s): one grubby command cannot bring them '
                    'all to the requested state. Align the entries first, or use kernels=default.'
                    % (', '.join(keys), entry.path, ' '.join(values) or 'none', ' '.join(appended) or 'none'))
        return appended

    def _verify(self, predicted):
        for entry in self.read_entries():
            if [a.raw for a in ka.kernel_args(entry.options)] != [a.raw for a in ka.kernel_args(predicted[entry.path])]:
                raise HostStateError('grubby left %s with options %r where %r was expected; the boot entries were '
                                     'restored. This grubby version edits arguments differently.'
                                     % (entry.path, entry.options, predicted[entry.path]),
                                     path=entry.path, expected=predicted[entry.path], actual=entry.options)


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


BACKEND_CLASSES = (RpmOstreeBackend, GrubbyBackend, KernelInstallBackend, GrubBackend)


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
            base = ' '.join(a.raw for a in ka.running_kernel_args(context.hostfs) if a.name not in ('BOOT_IMAGE', 'initrd'))
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
