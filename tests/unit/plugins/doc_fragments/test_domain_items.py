# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The items of phyllome.os.domains are documented from phyllome.os.domain's docs, and agree with their spec."""

from __future__ import annotations

import yaml

from ansible_collections.phyllome.os.plugins.doc_fragments import domain_items
from ansible_collections.phyllome.os.plugins.module_utils._domain.domain_set import item_argument_spec
from ansible_collections.phyllome.os.plugins.module_utils._domain.options import argument_spec


def documented_items():
    return yaml.safe_load(domain_items.ModuleDocFragment.DOCUMENTATION)['options']['domains']['suboptions']


def same_shape(docs, spec, path=''):
    """Names, types, elements, choices, required and defaults of documented options against a spec."""
    assert set(docs) == set(spec), path
    for name, option in spec.items():
        doc = docs[name]
        where = path + name
        assert doc.get('type', 'str') == option.get('type', 'str'), where
        assert doc.get('elements') == option.get('elements'), where
        assert doc.get('choices') == option.get('choices'), where
        assert bool(doc.get('required')) == bool(option.get('required')), where
        assert doc.get('default') == option.get('default'), where
        if 'options' in option:
            same_shape(doc['suboptions'], option['options'], where + '.')


def test_items_documented_as_their_spec():
    same_shape(documented_items(), item_argument_spec())


def test_domain_documented_as_the_table():
    # The source of the items' docs is domain's own, which must match the option table.
    same_shape(domain_items.domain_options(), argument_spec())


def test_defaults_are_said_in_words_and_references_point_into_the_list():
    items = documented_items()
    assert 'Default V(present) (unless O(defaults) gives one).' in items['state']['description']
    assert 'Default V(2) (unless O(defaults) gives one).' in items['model']['suboptions']['vcpus']['description']
    assert 'Default V([]) (unless O(defaults) gives one).' in items['model']['suboptions']['disks']['description']
    text = yaml.safe_dump(items)
    assert 'O(domains[].model.cpu.cores)' in text and 'RV(results[].restart_required)' in text
    assert 'O(model.' not in text and 'RV(restart_required)' not in text
