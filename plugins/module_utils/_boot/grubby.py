# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The grubby backend: BLS entries edited with grubby (Fedora, RHEL).

grubby --update-kernel=ALL|DEFAULT --remove-args --args edits the entries'
`options` (and grubenv `kernelopts` on Fedora 30-32). With ALL it runs with
--no-etc-grub-update and /etc/default/grub and /etc/kernel/cmdline are
edited here, exactly (backends._plan_grub_defaults, _plan_kernel_cmdline_file).
"""

from __future__ import annotations

import posixpath

from ansible_collections.phyllome.os.plugins.module_utils._boot import formats
from ansible_collections.phyllome.os.plugins.module_utils._boot import kernel_args as ka
from ansible_collections.phyllome.os.plugins.module_utils._boot.backends import (
    BLS_ENTRIES,
    GRUB2_ENV,
    GRUBBY_UNSAFE,
    SYSTEMD_BOOT_LOADER_CONF,
    Backend,
    BootEntry,
    _entry_files,
    _plan_grub_defaults,
    _plan_kernel_cmdline_file,
)
from ansible_collections.phyllome.os.plugins.module_utils._boot.context import BootPlan, Target
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import CommandFailed, HostStateError
from ansible_collections.phyllome.os.plugins.module_utils._host import cmdline


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
            if cmdline.has_init_args(entry.options):
                raise HostStateError('%s has a `--` in its options; grubby would put arguments after it, where the '
                                     'kernel passes them to init' % entry.path)
            args = cmdline.kernel_args(entry.options)
            spellings.extend(a.name for a in args if cmdline.arg_key(a) in keys and a.name not in spellings)
            predicted[entry.path] = ' '.join([a.raw for a in args if cmdline.arg_key(a) not in keys] + appended)
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
            values = [a.raw for a in cmdline.kernel_args(semantic[entry.path]) if cmdline.arg_key(a) in keys]
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
            if [a.raw for a in cmdline.kernel_args(entry.options)] != [a.raw for a in cmdline.kernel_args(predicted[entry.path])]:
                raise HostStateError('grubby left %s with options %r where %r was expected; the boot entries were '
                                     'restored. This grubby version edits arguments differently.'
                                     % (entry.path, entry.options, predicted[entry.path]),
                                     path=entry.path, expected=predicted[entry.path], actual=entry.options)
