# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every module documents its attributes the same way, on ansible.builtin's action_common_attributes."""

from __future__ import annotations

import glob
import importlib
import os
import re

import pytest
import yaml

PLUGINS = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..', 'plugins', 'modules')
MODULES = sorted(os.path.basename(path)[:-3] for path in glob.glob(os.path.join(PLUGINS, '*.py'))
                 if not path.endswith('__init__.py'))


def test_every_module_is_here():
    assert {'domain', 'domain_info', 'host_info', 'iommu_info', 'kernel_cmdline', 'network', 'pci_passthrough',
            'storage_pool'} <= set(MODULES)


def documentation(name):
    module = importlib.import_module('ansible_collections.phyllome.os.plugins.modules.' + name)
    doc = yaml.safe_load(module.DOCUMENTATION)
    # The attributes may come from one of our doc fragments (network, storage_pool).
    for fragment in doc.get('extends_documentation_fragment') or []:
        if fragment.startswith('phyllome.os.'):
            frag = importlib.import_module('ansible_collections.phyllome.os.plugins.doc_fragments.' + fragment.split('.')[-1])
            extra = yaml.safe_load(frag.ModuleDocFragment.DOCUMENTATION)
            for key, value in extra.items():
                if isinstance(value, dict):
                    doc.setdefault(key, {})
                    doc[key] = dict(value, **doc[key])
    return doc, module.DOCUMENTATION


@pytest.mark.parametrize('name', MODULES)
def test_attributes_extend_action_common_attributes(name):
    doc, dummy = documentation(name)
    assert 'ansible.builtin.action_common_attributes' in doc['extends_documentation_fragment']
    attributes = doc['attributes']
    assert set(attributes) >= {'check_mode', 'diff_mode', 'platform'}
    for key, attribute in attributes.items():
        # The fragment says what the attribute is; a module says how it supports it (details).
        assert 'description' not in attribute, '%s: %s has a description instead of details' % (name, key)
        assert attribute.get('support') in ('full', 'partial', 'none'), (name, key)
    assert attributes['platform']['platforms'] in ('posix', 'linux')


@pytest.mark.parametrize('name', MODULES)
def test_choices_are_written_as_values(name):
    doc, text = documentation(name)
    values = set()

    def collect(options):
        for option in (options or {}).values():
            for choice in option.get('choices') or []:
                if isinstance(choice, str):
                    values.add(choice)
            collect(option.get('suboptions'))
    collect(doc.get('options'))
    written_as_code = sorted(v for v in values if re.search(r'\bC\(%s\)' % re.escape(v), text))
    assert written_as_code == [], 'write option values as V(...), not C(...)'
