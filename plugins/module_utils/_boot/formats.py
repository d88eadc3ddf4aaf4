# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The files and command outputs that hold a host's kernel command line.

One parser per format, pure functions on text (no I/O), so every backend in
bootloader.py shares them and unit tests feed them recorded files:

- Boot Loader Specification entries (/boot/loader/entries/*.conf),
- the GRUB environment block (grubenv, `kernelopts` on Fedora 30-32),
- `grubby --info=...` output,
- /etc/default/grub and /etc/default/grub.d/*.cfg (shell assignments of
  GRUB_CMDLINE_LINUX and GRUB_CMDLINE_LINUX_DEFAULT).
"""

from __future__ import annotations

import collections
import re

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import HostStateError

# --- Boot Loader Specification entries -------------------------------------


def parse_bls_entry(text):
    """{key: [values]} of a BLS type #1 entry (`key value` lines; keys such as initrd may repeat)."""
    fields = collections.OrderedDict()
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith('#'):
            continue
        parts = stripped.split(None, 1)
        fields.setdefault(parts[0], []).append(parts[1] if len(parts) > 1 else '')
    return fields


def bls_options(fields):
    """The entry's command line: its `options` lines joined, as the specification says."""
    return ' '.join(fields.get('options', []))


def bls_value(fields, key, default=None):
    values = fields.get(key)
    return values[0] if values else default


# --- GRUB environment block ------------------------------------------------

_GRUB_VARIABLE = re.compile(r'^\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))$')


def parse_grubenv(text):
    """{name: value} of a grubenv file (`# GRUB Environment Block`, `name=value` lines, `#` padding)."""
    env = collections.OrderedDict()
    for line in (text or '').splitlines():
        if not line or line.startswith('#') or '=' not in line:
            continue
        name, value = line.split('=', 1)
        env[name] = value
    return env


def expand_grub_variables(options, env):
    """`options` with each argument that is a whole GRUB variable ($kernelopts, ${tuned_params}) expanded.

    GRUB expands these when it boots a BLS entry; an unset variable expands
    to nothing. Variables inside a longer word are left alone (none of the
    supported distributions writes them).
    """
    words = []
    for word in options.split():
        match = _GRUB_VARIABLE.match(word)
        if match:
            value = env.get(match.group(1) or match.group(2), '')
            if value.strip():
                words.append(value.strip())
        else:
            words.append(word)
    return ' '.join(words)


# --- grubby --info ---------------------------------------------------------

def parse_grubby_info(text):
    """[{key: value}] of `grubby --info=ALL|DEFAULT|<kernel>` output, one dict per `index=` block."""
    entries = []
    current = None
    for line in (text or '').splitlines():
        if '=' not in line:
            continue
        key, value = line.split('=', 1)
        key = key.strip()
        if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
            value = value[1:-1]
        if key == 'index':
            current = collections.OrderedDict()
            entries.append(current)
        if current is not None:
            current[key] = value
    return entries


# --- /etc/default/grub -----------------------------------------------------

GRUB_CMDLINE_VARIABLES = ('GRUB_CMDLINE_LINUX', 'GRUB_CMDLINE_LINUX_DEFAULT')
DEFAULT_GRUB = '/etc/default/grub'
DEFAULT_GRUB_DIR = '/etc/default/grub.d'

_ASSIGNMENT = re.compile(r'^(?P<lead>[ \t]*(?:export[ \t]+)?)(?P<var>GRUB_CMDLINE_LINUX(?:_DEFAULT)?)=(?P<rest>.*)$')
_UNQUOTED_SAFE = re.compile(r'^[A-Za-z0-9_.,:=/+@%-]+$')
_AFTER_VALUE = re.compile(r'^[ \t]*(#.*)?$')


class UnsupportedShell(Exception):
    """A GRUB_CMDLINE_* assignment that is not a single literal word."""


def _parse_shell_word(rest):
    """(value, quote style, end offset) of the literal shell word at the start of `rest`."""
    if rest.startswith('"'):
        out = []
        index = 1
        while index < len(rest):
            char = rest[index]
            if char == '\\' and index + 1 < len(rest):
                following = rest[index + 1]
                if following in '"\\$`':
                    out.append(following)
                    index += 2
                    continue
                out.append(char)
                index += 1
                continue
            if char == '"':
                return ''.join(out), '"', index + 1
            if char in '$`':
                raise UnsupportedShell('the value is computed by the shell (%s)' % char)
            out.append(char)
            index += 1
        raise UnsupportedShell('the double-quoted value does not end on this line')
    if rest.startswith("'"):
        end = rest.find("'", 1)
        if end < 0:
            raise UnsupportedShell('the single-quoted value does not end on this line')
        return rest[1:end], "'", end + 1
    match = re.match(r'[^\s#;&|<>()"\'`$\\]*', rest)
    end = match.end()
    if end < len(rest) and rest[end] in '"\'`$\\':
        raise UnsupportedShell('the value is not one literal word')
    return match.group(0), '', end


def shell_quote(value, style='"'):
    """`value` as a shell word, in the quote style the line had when that style can carry it."""
    if style == "'" and "'" not in value:
        return "'%s'" % value
    if style == '' and _UNQUOTED_SAFE.match(value):
        return value
    return '"%s"' % re.sub(r'([\\"$`])', r'\\\1', value)


class Assignment:
    """The assignment of one GRUB_CMDLINE_* variable: where it is and what it says."""

    def __init__(self, path, line, lead, var, value, style, suffix, newline):
        self.path = path
        self.line = line
        self.lead = lead
        self.var = var
        self.value = value
        self.style = style
        self.suffix = suffix
        self.newline = newline

    def render(self, value):
        return '%s%s=%s%s%s' % (self.lead, self.var, shell_quote(value, self.style), self.suffix, self.newline)


class GrubDefaults:
    """GRUB_CMDLINE_LINUX and GRUB_CMDLINE_LINUX_DEFAULT as grub-mkconfig sees them.

    files: [(path, text)] in the order grub-mkconfig sources them
    (/etc/default/grub, then /etc/default/grub.d/*.cfg sorted). The last
    assignment of a variable wins, so that is the one edited. Only literal
    values are edited; a value computed by the shell raises HostStateError
    rather than being rewritten by guesswork.
    """

    def __init__(self, files):
        self.files = collections.OrderedDict(files)
        self.assignments = {}
        for path, text in self.files.items():
            for number, line in enumerate(text.splitlines(True)):
                content = line.rstrip('\r\n')
                match = _ASSIGNMENT.match(content)
                if not match:
                    continue
                try:
                    value, style, end = _parse_shell_word(match.group('rest'))
                    suffix = match.group('rest')[end:]
                    if not _AFTER_VALUE.match(suffix):
                        raise UnsupportedShell('something follows the value')
                except UnsupportedShell as exc:
                    raise HostStateError('%s line %d: cannot edit %s safely: %s. Make it a plain quoted string '
                                         '(%s="...") or choose another backend.'
                                         % (path, number + 1, match.group('var'), exc, match.group('var')),
                                         path=path, line=number + 1)
                self.assignments[match.group('var')] = Assignment(
                    path, number, match.group('lead'), match.group('var'), value, style, suffix, line[len(content):])

    def segments(self):
        """[GRUB_CMDLINE_LINUX, GRUB_CMDLINE_LINUX_DEFAULT] values ('' when unset)."""
        return [self.assignments[var].value if var in self.assignments else '' for var in GRUB_CMDLINE_VARIABLES]

    def render(self, values):
        """{path: new text} of the files that change when the variables take `values`."""
        changed = collections.OrderedDict()
        for var, value in zip(GRUB_CMDLINE_VARIABLES, values):
            assignment = self.assignments.get(var)
            if assignment is None:
                if not value:
                    continue
                # Unset: define it at the end of /etc/default/grub.
                text = changed.get(DEFAULT_GRUB, self.files.get(DEFAULT_GRUB, ''))
                if text and not text.endswith('\n'):
                    text += '\n'
                changed[DEFAULT_GRUB] = text + '%s=%s\n' % (var, shell_quote(value))
                continue
            if value == assignment.value:
                continue
            text = changed.get(assignment.path, self.files[assignment.path])
            lines = text.splitlines(True)
            lines[assignment.line] = assignment.render(value)
            changed[assignment.path] = ''.join(lines)
        return changed
