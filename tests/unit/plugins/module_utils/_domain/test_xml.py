# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Domain XML helpers: parsing, sizes, libvirt's number spellings, our metadata."""

from __future__ import annotations

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput
from ansible_collections.phyllome.os.plugins.module_utils._domain import xml as domain_xml


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


@pytest.mark.parametrize('a, b, same', [
    ('0x02', '2', True), ('0x0000', '0', True), ('0x1f', '31', True), ('08', '8', True),
    ('0x02', '0x03', False), ('on', 'on', False), (None, '0', False),
])
def test_same_number(a, b, same):
    assert domain_xml.same_number(a, b) is same


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


def test_a_rewritten_record_stays_where_it_was():
    dom = domain_xml.parse("<domain><name>a</name><metadata><app:x xmlns:app='urn:app'/></metadata></domain>")
    domain_xml.write_metadata(dom, {'volumes': [('p', 'v')]})
    dom.find('metadata').append(domain_xml.parse("<app:y xmlns:app='urn:other'/>"))
    domain_xml.write_metadata(dom, {'volumes': [('p', 'w')]})
    assert [domain_xml.local_tag(c) for c in dom.find('metadata')] == ['x', 'domain', 'y']
