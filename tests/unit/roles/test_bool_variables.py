# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Boolean inputs passed as `-e name=false` are read as false.

`ansible-playbook -e phyllome_host_firewall=false` (the key=value form, an
AWX or ansible-runner extra var written as a string) hands the role the
string "false". A role's argument spec checks that it can be read as a bool,
but ansible-core does not hand the converted value back to the role: with
2.17 a bare `when: phyllome_host_firewall` on "false" is true (a non-empty
string), with 2.19 it fails ("Conditionals must have a boolean result").
So every expression of the roles and playbooks reads a bool input through
`| bool` (or tests it with `is none`/`is defined` first), as the report role
and the playbooks did already. Passed on whole as a module's argument
(`verify: "{{ phyllome_migrate_verify | default(true) }}"`), it is left to
the module's argument spec, which converts it. This test reads every Jinja expression and
finds the ones that do not; test_host_extra_vars.py runs the host role's
input handling with string booleans on the ansible-core it runs under.

Run: PYTHONPATH=.build/collections .venv/bin/pytest -q tests/unit/roles (make units runs it too)
"""

from __future__ import annotations

import functools
import glob
import os
import re

import pytest
import yaml

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..'))

# The keys whose value is a bare Jinja expression (no {{ }}).
EXPRESSION_KEYS = ('when', 'that', 'failed_when', 'changed_when', 'until')
JINJA = re.compile(r'\{\{(.*?)\}\}|\{%(.*?)%\}', re.S)
# What may follow a bool input: the bool filter (after a default), or a test that does not read its truth.
# Jinja's string literals, where a name is only text.
LITERAL = re.compile(r"'[^']*'|\"[^\"]*\"")
# A value that is one variable, passed on whole (to a module's argument, which converts it).
PASSED_ON = re.compile(r'^\s*\{\{\s*[A-Za-z_]\w*\s*(\|\s*default\([^()]*\)\s*)?\}\}\s*$')
READ_AS_BOOL = r'\s*(\|\s*default\([^()]*\)\s*)?\|\s*bool\b|\s+is\s+(not\s+)?(none|defined|undefined)\b'


def _load(path):
    with open(path, encoding='utf-8') as f:
        return yaml.safe_load(f)


def bool_inputs():
    """(name, where it is declared) of every top-level bool input of the roles' and playbooks' argument specs."""
    found = []
    for path in sorted(glob.glob(os.path.join(ROOT, 'roles', '*', 'meta', 'argument_specs.yml'))):
        for entry in (_load(path)['argument_specs'] or {}).values():
            found += [(name, path) for name, spec in (entry.get('options') or {}).items() if spec.get('type') == 'bool']
    playbooks = _load(os.path.join(ROOT, 'playbooks', 'vars', 'argument_specs.yml'))['phyllome_playbook_argument_specs']
    for entry in playbooks.values():
        found += [(name, 'playbooks') for name, spec in (entry.get('options') or {}).items() if spec.get('type') == 'bool']
    return found


def _strings(node, key=None):
    """(key, string) of every string in a YAML document, with the key it is the value of."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, k)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item, key)
    elif isinstance(node, str):
        yield key, node


@functools.lru_cache(maxsize=None)
def expressions():
    """(file, expression) of every Jinja expression in the roles' tasks, handlers, vars and templates, and the playbooks."""
    found = []
    files = [p for pattern in ('roles/*/tasks/*.yml', 'roles/*/handlers/*.yml', 'roles/*/vars/*.yml', 'playbooks/*.yml')
             for p in glob.glob(os.path.join(ROOT, pattern))]
    for path in sorted(files):
        for key, text in _strings(_load(path)):
            if key in EXPRESSION_KEYS and '{{' not in text:
                found.append((path, text))
            elif key not in EXPRESSION_KEYS and PASSED_ON.match(text):
                continue
            found += [(path, a or b) for a, b in JINJA.findall(text)]
    for path in sorted(glob.glob(os.path.join(ROOT, 'roles', '*', 'templates', '*.j2'))):
        with open(path, encoding='utf-8') as f:
            found += [(path, a or b) for a, b in JINJA.findall(f.read())]
    return tuple((path, LITERAL.sub("''", text)) for path, text in found)


def test_the_scan_sees_the_inputs_and_expressions():
    names = [entry[0] for entry in bool_inputs()]
    assert 'phyllome_host_firewall' in names and 'phyllome_report_html' in names and 'host_report_fail_on_fail' in names
    assert any('phyllome_host_firewall' in entry[1] for entry in expressions())


@pytest.mark.parametrize('name, declared', bool_inputs(), ids=[entry[0] for entry in bool_inputs()])
def test_a_bool_input_is_read_through_the_bool_filter(name, declared):
    bare = re.compile(r'(?<![\w.])%s\b(?!%s)' % (re.escape(name), READ_AS_BOOL))
    unread = ['%s: {{ %s }}' % (os.path.relpath(path, ROOT), text.strip())
              for path, text in expressions() if bare.search(text)]
    assert not unread, '%s (type bool in %s) is used without | bool:\n%s' % (
        name, os.path.relpath(declared, ROOT), '\n'.join(unread))


@pytest.mark.parametrize('text, flagged', [
    ('phyllome_host_firewall and x', True),
    ("phyllome_host_firewall | ternary('a', 'b')", True),
    ('not phyllome_host_firewall', True),
    ('phyllome_host_firewall | bool and x', False),
    ('phyllome_host_firewall|bool', False),
    ('phyllome_host_firewall | default(true) | bool', False),
    ('phyllome_host_firewall is not none', False),
    ('phyllome_host_firewall_ports | length', False),
    ('__phyllome_host_firewall == "nftables"', False),
    ('phyllome_host_firewall | booleanish', True),
    ("'set phyllome_host_firewall to false' ~ x", False),
])
def test_what_the_scan_flags(text, flagged):
    bare = re.compile(r'(?<![\w.])phyllome_host_firewall\b(?!%s)' % READ_AS_BOOL)
    assert bool(bare.search(LITERAL.sub("''", text))) is flagged
