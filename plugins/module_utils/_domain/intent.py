# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the domain module was asked, remembered in the domain's own <metadata>.

After each define, the module records two digests in an element of its own
namespace: one of the request (the desired XML, and whether a model owns its
sections) and one of the definition libvirt stored right after that define.
The next run whose request and stored definition have the same digests
changes nothing and needs no comparison. When one of them differs, the
semantic comparison decides; what libvirt did not keep at the recorded
define (a setting this libvirt ignores), listed in the record with the value
asked, is not a change by itself (it is in every later define, and libvirt
drops it again). See docs/decisions/domain-idempotence.md.

The digests never see a secret: graphics passwords are masked before
hashing (a password is short enough to be found again from an unsalted
digest), and a request that carries one is always compared.
"""

from __future__ import annotations

import copy
import hashlib

from ansible_collections.phyllome.os.plugins.module_utils._domain.secrets import SECRET_ATTRIBUTES
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import etree, to_string

INTENT_NS = 'https://github.com/PhyllomeOS/phyllome.os/domain-intent/1'
INTENT_PREFIX = 'phyllome-intent'
_INTENT_TAG = '{%s}intent' % INTENT_NS


class Intent:
    """The record of the module's last define of a domain.

    request: digest of what the module was asked.
    stored: digest of the definition libvirt stored right after that define.
    ignored: [(path, attribute, value)]: what libvirt did not keep of the
    request at that define (attribute None for an element, value the asked
    one, None for an element).
    """

    def __init__(self, request, stored, ignored=()):
        self.request = request
        self.stored = stored
        self.ignored = list(ignored)

    def __eq__(self, other):
        return isinstance(other, Intent) and (self.request, self.stored, self.ignored) == (
            other.request, other.stored, other.ignored)

    def __repr__(self):
        return 'Intent(%r, %r, %r)' % (self.request, self.stored, self.ignored)


def read_intent(domain):
    """The Intent recorded in `domain`'s <metadata>, or None."""
    found = domain.find('metadata/%s' % _INTENT_TAG)
    if found is None or not found.get('request') or not found.get('stored'):
        return None
    ignored = [(i.get('path'), i.get('attribute'), i.get('value'))
               for i in found.findall('{%s}ignored' % INTENT_NS) if i.get('path')]
    return Intent(found.get('request'), found.get('stored'), ignored)


def intent_metadata(intent):
    """The record as virDomainSetMetadata takes it: no namespace (libvirt gives every element ours)."""
    et = etree()
    elem = et.Element('intent', request=intent.request, stored=intent.stored)
    for path, attribute, value in intent.ignored:
        child = et.SubElement(elem, 'ignored', path=path)
        if attribute:
            child.set('attribute', attribute)
        if value is not None:
            child.set('value', value)
    return et.tostring(elem, encoding='unicode')


def without_intent(domain):
    """A copy of `domain` without our record (and without a <metadata> that only held it)."""
    copied = copy.deepcopy(domain)
    metadata = copied.find('metadata')
    if metadata is not None:
        for found in metadata.findall(_INTENT_TAG):
            metadata.remove(found)
        if not len(metadata) and not (metadata.text or '').strip():
            copied.remove(metadata)
    return copied


def _digest(domain, prefix=''):
    masked = without_intent(domain)
    for node in masked.iter():
        if not isinstance(node.tag, str):
            continue
        for name in SECRET_ATTRIBUTES:
            if node.get(name) is not None:
                node.set(name, '')
    return 'sha256:' + hashlib.sha256((prefix + to_string(masked)).encode('utf-8')).hexdigest()


def request_digest(desired, owned):
    """Digest of a request: the desired XML, and the sections a model owns."""
    return _digest(desired, 'owned: %s\n' % ' '.join(sorted(owned)))


def stored_digest(stored):
    """Digest of libvirt's stored (inactive) definition, our record left out."""
    return _digest(stored)


def difference_key(difference):
    """(path, attribute, asked value) of a compare.Difference, as recorded in ignored; None for a secret."""
    if difference.attribute in SECRET_ATTRIBUTES:
        return None  # never recorded, so never passed over: a password libvirt drops stays a change
    value = difference.after if difference.change == 'changed' else None
    return (difference.path, difference.attribute, None if value is None else str(value))


def ignored_words(keys):
    """Ignored settings as element or attribute paths ('devices/interface[...]/filterref', '.../address/@bus')."""
    return ', '.join('%s/@%s' % (path, attribute) if attribute else path for path, attribute, _value in keys)
