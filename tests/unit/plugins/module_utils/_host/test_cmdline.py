# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._host import cmdline


@pytest.mark.parametrize('text, expected', [
    ('quiet', [('quiet', None)]),
    ('root=UUID=abc ro', [('root', 'UUID=abc'), ('ro', None)]),
    # The value ends at the argument's end; only the first = splits.
    ('rootflags=subvol=root', [('rootflags', 'subvol=root')]),
    # Quoted value, quoted whole argument: the kernel drops the quotes.
    ('acpi_osi="Windows 2009" x', [('acpi_osi', 'Windows 2009'), ('x', None)]),
    ('"acpi_osi=Windows 2009" x', [('acpi_osi', 'Windows 2009'), ('x', None)]),
    ('a="b"', [('a', 'b')]),
    ('a=""', [('a', '')]),
    ('a=', [('a', '')]),
    # A quote inside a value toggles quoting but stays in the value.
    ('a=b"c d"e f', [('a', 'b"c d"e'), ('f', None)]),
    ('"quiet"', [('quiet', None)]),
    # Tabs and newlines separate like spaces; leading/trailing space is skipped.
    ('  a\tb\nc  ', [('a', None), ('b', None), ('c', None)]),
    ('', []),
])
def test_tokenize_like_the_kernel(text, expected):
    assert [(arg.name, arg.value) for dummy, dummy, arg in cmdline.tokenize(text)] == expected


def test_tokenize_keeps_raw_text_and_offsets():
    text = 'a  b="x y"   c'
    tokens = cmdline.tokenize(text)
    assert [text[start:end] for start, end, dummy in tokens] == ['a', 'b="x y"', 'c']
    assert [arg.raw for dummy, dummy, arg in tokens] == ['a', 'b="x y"', 'c']


def test_double_dash_ends_kernel_arguments():
    assert [a.name for a in cmdline.kernel_args('ro quiet -- single console=tty0')] == ['ro', 'quiet']
    # A `--` with a value is an ordinary (odd) argument.
    assert [a.name for a in cmdline.kernel_args('a --=1 b')] == ['a', '--', 'b']


def test_has_init_args():
    assert cmdline.has_init_args('ro -- single')
    assert not cmdline.has_init_args('ro --=1 single')
    assert not cmdline.has_init_args('')


def test_dash_and_underscore_are_one_name():
    assert cmdline.normalize_name('vfio-pci.ids') == cmdline.normalize_name('vfio_pci.ids')
    found = cmdline.values_by_key('vfio_pci.ids=10de:1b80 rd.driver.pre=vfio-pci', ['vfio_pci.ids', 'rd.driver.pre'])
    assert found == {'vfio_pci.ids': ['10de:1b80'], 'rd.driver.pre': ['vfio-pci']}
