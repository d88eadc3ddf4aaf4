# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel command line edits: requests, edits planned then applied through a boot loader backend.

Arguments are parsed as the kernel does (_host.cmdline).

Editing rules (what a careful admin expects, documented in the module):

- `absent: [name]` removes every occurrence of the name, whatever its value;
  `absent: [name=value]` removes only the occurrences with that value;
- `present: [name=value]` on a single-valued argument leaves exactly one
  occurrence with that value (the first occurrence is rewritten in place,
  the others removed); on a repeatable argument (console=, rd.driver.pre=,
  ... see REPEATABLE) it adds the value when missing and keeps the others;
- arguments the request does not name are kept byte for byte, in order,
  with their spacing.

The public entry point for other modules is ensure_kernel_args().
"""

from __future__ import annotations

import collections

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput
from ansible_collections.phyllome.os.plugins.module_utils._host.cmdline import (
    SPACE,
    arg_key,
    is_end_marker,
    kernel_args,
    normalize_name,
    tokenize,
    values_by_key,
)

# Arguments that the kernel, dracut or systemd read once per occurrence, so
# that adding a value must keep the others. Names are in normalized form
# (see normalize_name). hugepages=/hugepagesz= are positional pairs and stay
# single-valued by default: list them in `repeatable` to manage several pairs.
REPEATABLE = frozenset((
    'console',
    'memmap',
    'modprobe.blacklist',
    'rd.driver.pre',
    'rd.driver.post',
    'rd.driver.blacklist',
    'rd.luks.uuid',
    'rd.luks.name',
    'rd.lvm.lv',
    'rd.lvm.vg',
    'rd.md.uuid',
    'rd.route',
    'ip',
    'nameserver',
    'systemd.mount_extra',
    'systemd.swap_extra',
))

# Names that belong to the boot loader, not to the admin: GRUB prepends
# BOOT_IMAGE=, ostree manages ostree=.
RESERVED = frozenset(('BOOT_IMAGE', 'ostree'))


def parse_request_item(item, option):
    """Parse one `present`/`absent` item into a KernelArg, or raise InvalidInput."""
    if not isinstance(item, str):
        raise InvalidInput('%s: %r is not a string' % (option, item))
    for char in item:
        if char in '\n\r' or ord(char) < 32 or ord(char) == 127:
            if char != '\t':
                raise InvalidInput('%s: %r contains a newline or a control character, which no boot loader can carry'
                                   % (option, item))
    text = item.strip(SPACE)
    if not text:
        raise InvalidInput('%s: empty kernel argument' % option)
    if text.count('"') % 2:
        raise InvalidInput('%s: %r has an unbalanced double quote; quote a value as name="value with spaces"'
                           % (option, item))
    tokens = tokenize(text)
    if len(tokens) != 1:
        raise InvalidInput('%s: %r is %d kernel arguments; give one per list item, and quote a value that '
                           'contains spaces as name="value with spaces"' % (option, item, len(tokens)))
    arg = tokens[0][2]
    if not arg.name or any(c in SPACE or c == '"' for c in arg.name):
        raise InvalidInput('%s: %r has no valid argument name' % (option, item))
    if is_end_marker(arg):
        raise InvalidInput('%s: "--" separates init arguments and cannot be managed' % option)
    if arg.name in RESERVED:
        raise InvalidInput('%s: %s= is written by the boot loader itself and cannot be managed' % (option, arg.name))
    return arg


class KernelArgsRequest:
    """What the task asks for: arguments present, arguments absent, repeatable names.

    Raises InvalidInput for malformed items and for contradictions (the same
    argument present and absent, two values for a single-valued name).
    """

    def __init__(self, present=(), absent=(), repeatable=()):
        extra = set()
        for name in repeatable or ():
            if not isinstance(name, str) or not name or '=' in name or any(c in SPACE or c == '"' for c in name):
                raise InvalidInput('repeatable: %r is not an argument name' % (name,))
            extra.add(normalize_name(name))
        self.repeatable = REPEATABLE | frozenset(extra)
        self.present = self._parse(present, 'present')
        self.absent = self._parse(absent, 'absent')
        self._check_conflicts()

    @staticmethod
    def _parse(items, option):
        args = []
        seen = set()
        for item in items or ():
            arg = parse_request_item(item, option)
            if (arg_key(arg), arg.value) not in seen:
                seen.add((arg_key(arg), arg.value))
                args.append(arg)
        return args

    def _check_conflicts(self):
        absent_names = set(arg_key(a) for a in self.absent if a.value is None)
        absent_pairs = set((arg_key(a), a.value) for a in self.absent if a.value is not None)
        for arg in self.present:
            key = arg_key(arg)
            if key in absent_names:
                raise InvalidInput('%s is both present (%s) and absent (every value)' % (arg.name, arg.raw))
            if (key, arg.value) in absent_pairs:
                raise InvalidInput('%s is both present and absent' % arg.raw)
        for key, args in self.present_by_key().items():
            if len(args) > 1 and not self.is_repeatable(key):
                raise InvalidInput('%s takes a single value but present gives %s; list it in `repeatable` if it may '
                                   'appear several times' % (args[0].name, ', '.join(a.raw for a in args)))

    def is_repeatable(self, key):
        return key in self.repeatable

    def present_by_key(self):
        grouped = collections.OrderedDict()
        for arg in self.present:
            grouped.setdefault(arg_key(arg), []).append(arg)
        return grouped

    def managed_keys(self):
        """Normalized names of every argument the request names, in request order."""
        keys = []
        for arg in self.present + self.absent:
            if arg_key(arg) not in keys:
                keys.append(arg_key(arg))
        return keys

    def is_empty(self):
        return not self.present and not self.absent

    def check_carriable(self, backend, forbidden='', spaces=True, reason=''):
        """Raise InvalidInput when a requested argument holds something `backend` cannot carry.

        forbidden: characters the backend's tools would interpret; spaces:
        whether values may contain (quoted) whitespace.
        """
        for arg in self.present + self.absent:
            bad = sorted(set(c for c in arg.raw if c in forbidden))
            if bad:
                raise InvalidInput('%s: the %s backend cannot carry %s%s' % (
                    arg.raw, backend, ' '.join(repr(c) for c in bad), (' (%s)' % reason) if reason else ''))
            if not spaces and (any(c in SPACE for c in arg.raw) or '"' in arg.raw):
                raise InvalidInput('%s: the %s backend cannot carry quoted values or values with spaces' % (arg.raw, backend))


class CmdlineEdit:
    """The result of edit_cmdline(): new segments and what changed."""

    def __init__(self, before, after, added, removed):
        self.before = before
        self.after = after
        self.added = added
        self.removed = removed

    @property
    def changed(self):
        return self.before != self.after


def edit_cmdline(segments, request, append_to=0, in_place=True):
    """Apply `request` to a command line made of one or more text segments.

    Segments are the parts a backend stores separately but the kernel reads
    as one line, in order (GRUB_CMDLINE_LINUX then GRUB_CMDLINE_LINUX_DEFAULT);
    a backend with one line passes one segment. New arguments go at the end
    of segment `append_to` (before a `--`). With in_place=False a changed
    single-valued argument is removed and the new one appended, which is what
    command-driven backends (rpm-ostree kargs) do.
    """
    segments = list(segments)
    parsed = [tokenize(text) for text in segments]
    kernel = []             # (segment, index, arg) of kernel arguments
    marker = None           # (segment, index) of the `--`
    for seg, tokens in enumerate(parsed):
        for index, token in enumerate(tokens):
            arg = token[2]
            if marker is not None:
                continue
            if is_end_marker(arg):
                marker = (seg, index)
                continue
            kernel.append((seg, index, arg))

    removed = set()
    replaced = {}
    appended = []
    for want in request.absent:
        for seg, index, arg in kernel:
            if arg_key(arg) == arg_key(want) and (want.value is None or arg.value == want.value):
                removed.add((seg, index))
    for key, wanted in request.present_by_key().items():
        live = [(seg, index, arg) for seg, index, arg in kernel if arg_key(arg) == key and (seg, index) not in removed]
        if request.is_repeatable(key):
            for want in wanted:
                if not any(arg.value == want.value for dummy, dummy, arg in live):
                    appended.append(want.raw)
            continue
        want = wanted[0]
        keep = next((item for item in live if item[2].value == want.value), None)
        if keep is None and live and in_place:
            keep = live[0]
            replaced[keep[:2]] = want.raw
        elif keep is None:
            appended.append(want.raw)
        for item in live:
            if item is not keep:
                removed.add(item[:2])

    target = append_to
    if marker is not None and marker[0] < target:
        target = marker[0]
    insert_at = marker[1] if marker is not None and marker[0] == target else None
    after = []
    for seg, text in enumerate(segments):
        after.append(_rebuild(text, parsed[seg],
                              dict((i, None) for (s, i) in removed if s == seg),
                              dict((i, raw) for (s, i), raw in replaced.items() if s == seg),
                              appended if seg == target else [], insert_at))
    removed_raws = [parsed[s][i][2].raw for s, i in sorted(removed)]
    removed_raws += [parsed[s][i][2].raw for s, i in sorted(replaced)]
    added = [raw for key, raw in sorted(replaced.items())] + appended
    return CmdlineEdit(segments, after, added, removed_raws)


def _rebuild(text, tokens, removed, replaced, appended, insert_at):
    """Rebuild one segment, keeping untouched arguments and their spacing as they were."""
    if not removed and not replaced and not appended:
        return text
    leading = text[:tokens[0][0]] if tokens else ''
    trailing = text[tokens[-1][1]:] if tokens else text
    pieces = []     # [separator, raw]
    previous_end = None
    for index, (start, end, arg) in enumerate(tokens):
        separator = text[previous_end:start] if previous_end is not None else ''
        previous_end = end
        if index == insert_at:
            for raw in appended:
                pieces.append([' ', raw])
        if index in removed:
            continue
        pieces.append([separator, replaced.get(index, arg.raw)])
    if insert_at is None:
        for raw in appended:
            pieces.append([' ', raw])
    if not pieces:
        return ''
    # Only the first argument goes without a separator (a token that was
    # first before a removal or an insertion now needs one).
    pieces[0][0] = ''
    for piece in pieces[1:]:
        piece[0] = piece[0] or ' '
    return leading + ''.join(sep + raw for sep, raw in pieces) + trailing


def touched_keys(before, after):
    """Keys whose occurrences (raw text, in order) differ between two command lines."""
    def grouped(text):
        result = collections.OrderedDict()
        for arg in kernel_args(text):
            result.setdefault(arg_key(arg), []).append(arg.raw)
        return result
    old, new = grouped(before), grouped(after)
    keys = []
    for key in list(old) + list(new):
        if key not in keys and old.get(key) != new.get(key):
            keys.append(key)
    return keys


def pending_arguments(configured, running, request):
    """Names of managed arguments whose values differ between the configured and the running command line.

    Values are compared in order and unquoted, so `"a=b c"` as GRUB passes it
    and `a="b c"` as it is configured are the same. An empty list means no
    reboot is needed for what the request manages.
    """
    keys = request.managed_keys()
    want = values_by_key(configured, keys)
    have = values_by_key(running, keys)
    names = dict((arg_key(a), a.name) for a in request.present + request.absent)
    return [names[key] for key in keys if want[key] != have[key]]


def ensure_kernel_args(boot, present=(), absent=(), repeatable=(), request=None):
    """Make the boot configuration of a host carry `present` and not `absent`.

    boot: a bootloader backend from bootloader.open_bootloader(), which knows
    the host, the recorder (check mode) and how to read, plan, apply and
    roll back. Returns a dict: backend, changed targets (entries/files),
    cmdline_before/cmdline_after (configured, default boot entry),
    cmdline_running (/proc/cmdline), pending_arguments, reboot_required,
    diff (a list of before/after dicts) and backup_files.

    This is the API other modules use, e.g. pci_passthrough adding
    `rd.driver.pre=vfio-pci`:

        boot = bootloader.open_bootloader(BootContext(HostFS(), recorder, module.atomic_move))
        result = kernel_args.ensure_kernel_args(boot, present=['rd.driver.pre=vfio-pci'])

    A caller that changes other things too plans first and applies last, so
    that a refusal of the boot loader comes before any change:

        planned = kernel_args.plan_kernel_args(boot, present=[...])
        ...  # its own changes
        result = kernel_args.apply_kernel_args(planned)
    """
    return apply_kernel_args(plan_kernel_args(boot, present, absent, repeatable, request))


class PlannedKernelArgs:
    """A boot loader's plan for a kernel-argument request, checked and not yet applied."""

    def __init__(self, boot, request, plan):
        self.boot = boot
        self.request = request
        self.plan = plan


def plan_kernel_args(boot, present=(), absent=(), repeatable=(), request=None):
    """Read the host and plan the edit; raises (InvalidInput, HostStateError...) before any change."""
    if request is None:
        request = KernelArgsRequest(present, absent, repeatable)
    return PlannedKernelArgs(boot, request, boot.plan(request))


def apply_kernel_args(planned):
    """Apply a plan from plan_kernel_args() through the boot loader; return ensure_kernel_args()'s dict."""
    boot, plan = planned.boot, planned.plan
    boot.apply(plan)
    running = boot.running_cmdline()
    pending = pending_arguments(plan.cmdline_after, running, planned.request) if running is not None else []
    return {
        'backend': boot.name,
        'cmdline_before': plan.cmdline_before,
        'cmdline_after': plan.cmdline_after,
        'cmdline_running': running,
        'pending_arguments': pending,
        'reboot_required': bool(pending),
        'targets': [target.as_dict() for target in plan.targets],
        'diff': plan.diffs(),
        'backup_files': list(boot.context.backup_files),
    }
