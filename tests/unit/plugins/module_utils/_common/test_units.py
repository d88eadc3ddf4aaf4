# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common import units
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput


@pytest.mark.parametrize('value, unit, size', [
    ('1048576', 'KiB', 1024 ** 3),
    ('1048576', None, 1024 ** 3),
    ('1', 'G', 1024 ** 3),
    ('1', 'GB', 1000 ** 3),
    ('512', 'MiB', 512 * 1024 ** 2),
    ('4096', 'bytes', 4096),
    ('x', 'KiB', None),
    ('1', 'furlongs', None),
])
def test_quantity_bytes(value, unit, size):
    assert units.quantity_bytes(value, unit) == size


def test_format_bytes():
    assert units.format_bytes(3 * 1024 ** 3) == '3 GiB'
    assert units.format_bytes(1536 * 1024) == '1536 KiB'
    assert units.format_bytes(1000) == '1000 bytes'


@pytest.mark.parametrize('text, kb', [('2M', 2048), ('1G', 1048576), ('1g', 1048576), ('2048k', 2048), ('2097152', 2048),
                                      ('', None), ('lots', None),
                                      # The kernel's memparse() knows T too; libvirt's decimal MB is not its spelling.
                                      ('1T', 1024 ** 3), ('2MB', None)])
def test_kernel_size_kb(text, kb):
    assert units.kernel_size_kb(text) == kb


@pytest.mark.parametrize('value, default_unit, size', [(4096, 'MiB', 4096 * 1024 ** 2), ('4G', 'MiB', 4 * 1024 ** 3),
                                                       ('512 MiB', 'GiB', 512 * 1024 ** 2), ('1.5', 'GiB', 1536 * 1024 ** 2)])
def test_parse_size(value, default_unit, size):
    assert units.parse_size(value, default_unit, 'size') == size


@pytest.mark.parametrize('value, message', [(True, 'must be a size'), ('lots', 'must be a size'),
                                            ('4 furlongs', 'unknown unit'), (0, 'larger than zero')])
def test_parse_size_rejects(value, message):
    with pytest.raises(InvalidInput, match=message):
        units.parse_size(value, 'MiB', 'size')
