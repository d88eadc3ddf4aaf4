# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel command line as the kernel reads it, and the running one (/proc/cmdline).

Parsing follows the kernel's own rules (lib/cmdline.c next_arg() and
kernel/params.c parse_args()):

- arguments are separated by whitespace outside double quotes; a quote
  anywhere toggles quoting, so `name="value with spaces"` and
  `"name=value with spaces"` are one argument each;
- the name ends at the first `=`; the kernel drops one leading quote of the
  value (and of the whole argument) and the closing quote at its end, so
  `a="b"` and `a=b` carry the same value;
- a bare `--` ends the kernel's arguments: what follows goes to init and is
  never matched or edited here;
- in names, `-` and `_` are the same character (parameq() in
  kernel/params.c, also used for __setup/early parameters; systemd's
  /proc/cmdline reader does the same), so `vfio-pci.ids` and `vfio_pci.ids`
  are one argument. Values are compared exactly.
"""

from __future__ import annotations

import collections

# The kernel's isspace() for ASCII.
SPACE = ' \t\n\v\f\r'

KernelArg = collections.namedtuple('KernelArg', 'raw name value')
KernelArg.__doc__ = """One argument: its text as written, its name, its unquoted value (None for a bare flag)."""


def normalize_name(name):
    """The name under which the kernel matches an argument (`-` and `_` are equal)."""
    return name.replace('-', '_')


def arg_key(arg):
    return normalize_name(arg.name)


def is_end_marker(arg):
    return arg.value is None and arg.name == '--'


def parse_arg(raw):
    """Split one argument (as tokenize() cut it) into name and value, like next_arg()."""
    quoted = raw.startswith('"')
    content = raw[1:] if quoted else raw
    equals = content.find('=')
    if equals < 0:
        name = content
        if quoted and name.endswith('"'):
            name = name[:-1]
        return KernelArg(raw, name, None)
    name = content[:equals]
    value = content[equals + 1:]
    value_quoted = value.startswith('"')
    if value_quoted:
        value = value[1:]
    # The kernel clears the argument's last character when it is a quote and
    # the value or the whole argument was opened by one.
    if (value_quoted or quoted) and content.endswith('"') and value.endswith('"'):
        value = value[:-1]
    return KernelArg(raw, name, value)


def tokenize(text):
    """[(start, end, KernelArg)] for every argument of `text`, `--` and what follows included."""
    tokens = []
    pos = 0
    length = len(text)
    while True:
        while pos < length and text[pos] in SPACE:
            pos += 1
        if pos >= length:
            return tokens
        start = pos
        in_quote = False
        if text[pos] == '"':
            in_quote = True
            pos += 1
        while pos < length:
            char = text[pos]
            if char in SPACE and not in_quote:
                break
            if char == '"':
                in_quote = not in_quote
            pos += 1
        tokens.append((start, pos, parse_arg(text[start:pos])))


def running_cmdline(fs):
    """The running kernel's command line as /proc/cmdline (below HostFS `fs`) holds it, or None without one."""
    return fs.read_text('/proc/cmdline')


def running_kernel_args(fs):
    """The running kernel's arguments (KernelArg, those before a bare `--`); [] without a /proc/cmdline."""
    return kernel_args(running_cmdline(fs))


def kernel_args(text):
    """The arguments the kernel parses from `text` (those before a bare `--`)."""
    args = []
    for dummy, dummy, arg in tokenize(text or ''):
        if is_end_marker(arg):
            break
        args.append(arg)
    return args


def has_init_args(text):
    """True when `text` has a bare `--` (what follows it goes to init)."""
    return any(is_end_marker(arg) for dummy, dummy, arg in tokenize(text or ''))


def values_by_key(text, keys):
    """{key: [values in order]} of the arguments of `text` whose key is in `keys`."""
    found = dict((key, []) for key in keys)
    for arg in kernel_args(text):
        key = arg_key(arg)
        if key in found:
            found[key].append(arg.value)
    return found
