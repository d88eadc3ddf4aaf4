# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.phyllome.os.plugins.filter.libvirt_conf import libvirt_conf_value
from ansible_collections.phyllome.os.plugins.module_utils._host.report_facts import parse_libvirt_conf


@pytest.mark.parametrize('value, text', [
    ('127.0.0.1', '"127.0.0.1"'),
    ('', '""'),
    # libvirt knows no escapes: a double quote goes inside single quotes, as libvirt's own writer puts it
    ('CN="lab 1"', '\'CN="lab 1"\''),
    ("it's", '"it\'s"'),
    ('a # b', '"a # b"'),
    (0, '0'),
    (-1, '-1'),
    (1024, '1024'),
    (True, '1'),
    (False, '0'),
    ([], '[]'),
    (['cpu', 'memory'], '[ "cpu", "memory" ]'),
    (['C=GB,O=Example,CN=*'], '[ "C=GB,O=Example,CN=*" ]'),
    ([1, 'two', True], '[ 1, "two", 1 ]'),
], ids=['string', 'empty', 'double-quote', 'single-quote', 'hash', 'zero', 'negative', 'int', 'true', 'false',
        'empty-list', 'list', 'dn-list', 'mixed-list'])
def test_libvirt_conf_value(value, text):
    assert libvirt_conf_value(value) == text


@pytest.mark.parametrize('value', [
    '127.0.0.1', 'CN="lab 1"', "it's", 'a # b', 5, -3, [], ['a', 'b,c', 'd"e'], ['C=GB,O=Example,CN=*'],
])
def test_what_it_writes_reads_back_the_same(value):
    """A line written with the filter parses (libvirt's syntax, as parse_libvirt_conf reads it) to the value."""
    text = 'key = %s  # a comment\nother = 1\n' % libvirt_conf_value(value)
    assert parse_libvirt_conf(text) == {'key': value, 'other': 1}


@pytest.mark.parametrize('value, message', [
    ('a\nb', 'line break'),
    ('both \' and "', 'both kinds of quotes'),
    (['ok', 'bad\r'], 'line break'),
    (1.5, 'not float'),
    (None, 'not NoneType'),
    ({'a': 1}, 'not dict'),
], ids=['newline', 'both-quotes', 'list-item', 'float', 'none', 'dict'])
def test_values_libvirt_cannot_read_fail(value, message):
    with pytest.raises(AnsibleFilterError, match=message):
        libvirt_conf_value(value)
