# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The O(domains) option of phyllome.os.domains, made from phyllome.os.domain's own option docs.

An item of phyllome.os.domains takes exactly the options of phyllome.os.domain,
so its documentation is not written twice: this fragment reads the options of
plugins/modules/domain.py's DOCUMENTATION (the one copy of their prose) when
Ansible loads it (ansible-doc, sanity's validate-modules, antsibull-docs all
import doc fragments, while a module's DOCUMENTATION must stay a literal), and
nests them under O(domains). The item's argument spec is made the same way from
the option table (_domain/domain_set.item_argument_spec), and a unit test checks
that the two agree.

What changes on the way: an item's options have no default of their own (left
out, they come from O(defaults), then from phyllome.os.domain's default, which
the description states), and references to other options and return values
point into the list (O(model.memory) becomes O(domains[].model.memory)).
"""

from __future__ import annotations

import ast
import os
import re

import yaml

_DOMAIN_MODULE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'modules', 'domain.py')

_OPTION_REF = re.compile(r'\bO\(([a-z_][^)]*)\)')
_RETURN_REF = re.compile(r'\bRV\(([a-z_][^)]*)\)')

_DOMAINS_DESCRIPTION = [
    'The domains, each with the options of M(phyllome.os.domain) (the same names, values and behaviour), over'
    ' one connection (O(uri)).',
    'An option an item leaves out comes from O(defaults), else from M(phyllome.os.domain)\'s default'
    ' (the descriptions below say which).',
    'Two items cannot name the same domain.',
]


def domain_options(path=_DOMAIN_MODULE):
    """The options of phyllome.os.domain's DOCUMENTATION, read without importing the module."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == 'DOCUMENTATION' for t in node.targets):
            return yaml.safe_load(node.value.value)['options']
    raise ValueError('%s has no DOCUMENTATION' % path)


def _value(value):
    if isinstance(value, bool):
        return 'V(%s)' % ('true' if value else 'false')
    if value == []:
        return 'V([])'
    return 'V(%s)' % value


def _lines(description):
    return list(description) if isinstance(description, list) else [description]


def as_items(options):
    """`options` as suboptions of a list item: no defaults (stated in words), references into the list."""
    result = {}
    for name, option in options.items():
        option = dict(option)
        lines = [_RETURN_REF.sub(r'RV(results[].\1)', _OPTION_REF.sub(r'O(domains[].\1)', line))
                 for line in _lines(option['description'])]
        if 'default' in option:
            lines.append('Default %s (unless O(defaults) gives one).' % _value(option.pop('default')))
        option['description'] = lines
        if 'suboptions' in option:
            option['suboptions'] = as_items(option['suboptions'])
        result[name] = option
    return result


def documentation():
    """The fragment's YAML: the O(domains) option."""
    domains = {
        'description': _DOMAINS_DESCRIPTION,
        'type': 'list',
        'elements': 'dict',
        'required': True,
        'suboptions': as_items(domain_options()),
    }
    return yaml.safe_dump({'options': {'domains': domains}}, sort_keys=False, default_flow_style=False, width=110)


class ModuleDocFragment:
    """The O(domains) option of phyllome.os.domains (DOCUMENTATION, set below)."""


# Set after the class: sanity's yamllint reads the literals of a fragment's
# class body, and this one is made when Ansible loads the fragment.
ModuleDocFragment.DOCUMENTATION = documentation()
