# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module's record of its last define: digests without secrets, the element libvirt keeps."""

from __future__ import annotations

import os

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._domain import intent as domain_intent
from ansible_collections.phyllome.os.plugins.module_utils._domain.compare import compare
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import parse, parse_domain, to_string

CORPUS = os.path.normpath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'fixtures', 'domain_corpus'))

DOMAIN = """<domain type='kvm'><name>a</name><uuid>6b3b9d1e-6c55-4f43-9c55-1a64d1c9d0a1</uuid>
<memory unit='MiB'>1024</memory><devices>
<graphics type='vnc' port='-1' autoport='yes' passwd='%s'/></devices></domain>"""


def _with_intent(domain, record):
    """`domain` with `record` in its <metadata>, as libvirt stores what virDomainSetMetadata gets."""
    stored = parse_domain(to_string(domain))
    element = parse(domain_intent.intent_metadata(record))
    for node in element.iter():
        node.tag = '{%s}%s' % (domain_intent.INTENT_NS, node.tag)
    metadata = stored.find('metadata')
    if metadata is None:
        metadata = parse('<metadata/>')
        stored.find('uuid').addnext(metadata)
    metadata.append(element)
    return stored


def test_digests_do_not_depend_on_the_password_and_never_hold_it():
    one, other = parse_domain(DOMAIN % 'hunter2'), parse_domain(DOMAIN % 'letmein')
    assert domain_intent.stored_digest(one) == domain_intent.stored_digest(other)
    assert domain_intent.request_digest(one, frozenset()) == domain_intent.request_digest(other, frozenset())
    record = domain_intent.Intent(domain_intent.request_digest(one, frozenset()), domain_intent.stored_digest(one))
    assert 'hunter2' not in domain_intent.intent_metadata(record)


def test_digests_change_with_a_meaningful_value_and_with_model_ownership():
    one = parse_domain(DOMAIN % 'x')
    other = parse_domain((DOMAIN % 'x').replace('1024', '2048'))
    assert domain_intent.stored_digest(one) != domain_intent.stored_digest(other)
    assert domain_intent.request_digest(one, frozenset()) != domain_intent.request_digest(one, frozenset(['devices']))


def test_the_record_is_read_back_and_left_out_of_the_stored_digest():
    domain = parse_domain(DOMAIN % 'x')
    record = domain_intent.Intent('sha256:r', domain_intent.stored_digest(domain),
                                  [('devices/interface[52:54:00:00:00:01]/filterref', None, None), ('cpu/topology', 'clusters', '1')])
    stored = _with_intent(domain, record)
    assert domain_intent.read_intent(stored) == record
    # The record is not part of what it describes, and a <metadata> that only held it goes too.
    assert domain_intent.stored_digest(stored) == record.stored
    assert domain_intent.without_intent(stored).find('metadata') is None
    assert domain_intent.read_intent(domain) is None


def test_other_metadata_stays():
    domain = parse_domain((DOMAIN % 'x').replace(
        '<memory', "<metadata><app:x xmlns:app='urn:app'/></metadata><memory"))
    stored = _with_intent(domain, domain_intent.Intent('sha256:r', 'sha256:s'))
    assert domain_intent.without_intent(stored).find('metadata/{urn:app}x') is not None
    assert domain_intent.stored_digest(stored) == domain_intent.stored_digest(domain)


def test_a_secret_is_never_recorded_as_ignored():
    domain = parse_domain(DOMAIN % 'x')
    stored = parse_domain((DOMAIN % 'x').replace(" passwd='x'", ''))
    differences = compare(domain, stored)
    assert [d.attribute for d in differences] == ['passwd']
    assert domain_intent.difference_key(differences[0]) is None


def test_ignored_words_name_elements_and_attributes():
    assert domain_intent.ignored_words([('devices/interface[x]/filterref', None, None), ('cpu/topology', 'clusters', '1')]) == \
        'devices/interface[x]/filterref, cpu/topology/@clusters'


@pytest.mark.parametrize('stem', ['net-hostdev-fail', 'net-vhostuser-fail', 'tap-vhost-incorrect',
                                  'channel-virtio-autoassign'])
def test_what_libvirt_dropped_is_recorded_by_the_keys_the_next_comparison_gives(stem):
    # The corpus cases whose second comparison still differs: the keys the
    # define records are those the comparison of the next run reports, so the
    # module's next run (same request) does not ask again.
    with open(os.path.join(CORPUS, 'input', stem + '.xml')) as handle:
        desired = parse_domain(handle.read())
    with open(os.path.join(CORPUS, 'stored', stem + '.xml')) as handle:
        stored = parse_domain(handle.read())
    recorded = [domain_intent.difference_key(d) for d in compare(desired, stored)]
    assert recorded
    again = [domain_intent.difference_key(d) for d in compare(desired, _with_intent(stored, domain_intent.Intent(
        'sha256:r', domain_intent.stored_digest(stored), recorded)))]
    assert again == recorded
