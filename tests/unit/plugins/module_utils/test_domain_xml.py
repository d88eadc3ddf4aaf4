# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Domain XML helpers: parsing, sizes, libvirt's number spellings, our metadata."""

from __future__ import annotations

import pytest

from ansible_collections.phyllome.os.plugins.module_utils import domain_xml
from ansible_collections.phyllome.os.plugins.module_utils.errors import InvalidInput


def test_parse_drops_comments_and_layout():
    elem = domain_xml.parse("<domain>\n  <!-- note -->\n  <name>a</name>\n</domain>")
    assert [c.tag for c in elem] == ['name']
    assert domain_xml.to_string(elem) == '<domain>\n  <name>a</name>\n</domain>\n'


@pytest.mark.parametrize('text, message', [
    ('<domain><name>a</domain>', 'not well-formed'),
    ('', 'not well-formed'),
    ('<!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><domain>&e;</domain>', ''),
])
def test_parse_errors(text, message):
    if message:
        with pytest.raises(InvalidInput, match=message):
            domain_xml.parse(text)
    else:
        # External entities are never resolved.
        assert 'root:' not in domain_xml.to_string(domain_xml.parse(text))


def test_parse_domain_wants_a_domain():
    with pytest.raises(InvalidInput, match='must have <domain> as its root element, not <network>'):
        domain_xml.parse_domain('<network/>')


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
    assert domain_xml.quantity_bytes(value, unit) == size


@pytest.mark.parametrize('a, b, same', [
    ('0x02', '2', True), ('0x0000', '0', True), ('0x1f', '31', True), ('08', '8', True),
    ('0x02', '0x03', False), ('on', 'on', False), (None, '0', False),
])
def test_same_number(a, b, same):
    assert domain_xml.same_number(a, b) is same


@pytest.mark.parametrize('text, parsed', [
    ('0000:01:00.0', (0, 1, 0, 0)), ('01:00.1', (0, 1, 0, 1)), ('10000:af:1f.7', None), ('01:00', None),
])
def test_parse_pci_address(text, parsed):
    if parsed is None:
        with pytest.raises(InvalidInput):
            domain_xml.parse_pci_address(text)
    else:
        assert domain_xml.parse_pci_address(text) == parsed


def test_format_bytes():
    assert domain_xml.format_bytes(3 * 1024 ** 3) == '3 GiB'
    assert domain_xml.format_bytes(1536 * 1024) == '1536 KiB'
    assert domain_xml.format_bytes(1000) == '1000 bytes'


def test_metadata_round_trip_keeps_foreign_metadata():
    dom = domain_xml.parse("<domain><name>a</name><uuid>u</uuid><metadata><app:x xmlns:app='urn:app'/></metadata>"
                           "<memory>1</memory></domain>")
    tpm = domain_xml.parse("<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>")
    domain_xml.write_metadata(dom, {'volumes': [('default', 'a.qcow2')], 'restart_pending_id': 7, 'removed_tpm': tpm})
    text = domain_xml.to_string(dom)
    again = domain_xml.parse(text)
    record = domain_xml.read_metadata(again)
    assert (record['volumes'], record['restart_pending_id']) == ([('default', 'a.qcow2')], 7)
    assert domain_xml.to_string(record['removed_tpm']) == domain_xml.to_string(tpm)
    assert again.find('metadata/{urn:app}x') is not None
    domain_xml.write_metadata(again, {})
    assert domain_xml.read_metadata(again) == {'volumes': [], 'restart_pending_id': None, 'removed_tpm': None}
    assert again.find('metadata/{urn:app}x') is not None


def test_metadata_goes_after_uuid_and_disappears_when_empty():
    dom = domain_xml.parse('<domain><name>a</name><uuid>u</uuid><memory>1</memory></domain>')
    domain_xml.write_metadata(dom, {'volumes': [('p', 'v')]})
    assert [c.tag for c in dom] == ['name', 'uuid', 'metadata', 'memory']
    domain_xml.write_metadata(dom, {'volumes': []})
    assert dom.find('metadata') is None
