# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import sys

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common import deps
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import MissingLibrary


def test_require_returns_the_module():
    assert deps.require('json') is json


@pytest.mark.parametrize('name, pypi, package', [
    ('libvirt', 'libvirt-python', 'python3-libvirt'),
    ('lxml.etree', 'lxml', 'python3-lxml'),
    ('jmespath', 'jmespath', 'python3-jmespath'),
    ('phyllome_no_such_library', 'phyllome_no_such_library', 'phyllome_no_such_library'),
])
def test_a_missing_library_names_its_distribution_package(monkeypatch, name, pypi, package):
    # None in sys.modules makes the import fail as if it were not installed.
    monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingLibrary) as info:
        deps.require(name, reason='to talk to libvirt')
    exc = info.value
    assert (exc.library, exc.package, exc.reason) == (pypi, package, 'to talk to libvirt')
    assert exc.msg == 'missing library %s' % pypi
    assert 'ImportError' in exc.exception or 'ModuleNotFoundError' in exc.exception


def test_available(monkeypatch):
    assert deps.available('json') is True
    monkeypatch.setitem(sys.modules, 'phyllome_absent', None)
    assert deps.available('phyllome_absent') is False


def test_the_optional_libraries_are_not_imported_at_load_time():
    with open(deps.__file__) as f:
        imports = [line.split() for line in f if line.startswith(('import ', 'from '))]
    assert not [words for words in imports if words[1].split('.')[0] in ('libvirt', 'lxml', 'jmespath')]
