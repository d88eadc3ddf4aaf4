# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Low-level domain XML helpers shared by the model builder, the comparison and the summary.

Parsing (with a clear error on malformed input), libvirt-style serialisation,
and the value normalisations libvirt applies when it stores a definition
(memory units through _common.units, hexadecimal PCI numbers, MAC case), so
that values written differently but meaning the same compare equal.
"""

from __future__ import annotations

import copy

from ansible_collections.phyllome.os.plugins.module_utils._common.deps import require
from ansible_collections.phyllome.os.plugins.module_utils._common.device_ids import format_pci_address
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput
from ansible_collections.phyllome.os.plugins.module_utils._common.units import quantity_bytes

# Our own metadata, kept in the domain's <metadata> (e.g. the volumes this
# collection created for the domain, so that removing it can remove them).
PHYLLOME_NS = 'https://github.com/PhyllomeOS/phyllome.os/domain/1'
PHYLLOME_PREFIX = 'phyllome'

# Elements whose text is a memory size in KiB unless `unit` says otherwise
# (memory, memory devices, memtune limits, the 64-bit PCI hole, a disk's
# metadata cache); libvirt stores them in its own unit.
QUANTITY_TAGS = frozenset(('memory', 'currentMemory', 'maxMemory', 'size', 'requested', 'current',
                           'hard_limit', 'soft_limit', 'swap_hard_limit', 'min_guarantee', 'pcihole64',
                           'max_size', 'block'))


def etree():
    """lxml.etree, imported on first use."""
    return require('lxml.etree', reason='to read and write domain XML')


def parse(text, what='domain XML'):
    """Parse XML text into an element; raise InvalidInput when it is not well-formed.

    Comments, processing instructions and layout whitespace are dropped: they
    carry no meaning for libvirt.
    """
    et = etree()
    if isinstance(text, str):
        text = text.encode('utf-8')
    parser = et.XMLParser(remove_blank_text=True, remove_comments=True, remove_pis=True,
                          resolve_entities=False, no_network=True)
    try:
        root = et.fromstring(text, parser)
    except et.XMLSyntaxError as exc:
        raise InvalidInput('%s is not well-formed XML: %s' % (what, exc))
    if root is None:
        raise InvalidInput('%s is empty' % what)
    return root


def parse_domain(text, what='domain XML'):
    """Parse a <domain> document; raise InvalidInput when the root is something else."""
    root = parse(text, what)
    if root.tag != 'domain':
        raise InvalidInput('%s must have <domain> as its root element, not <%s>' % (what, root.tag))
    return root


def to_string(elem):
    """Serialise an element with two-space indentation, as libvirt prints it."""
    et = etree()
    elem = copy.deepcopy(elem)
    _strip_layout(elem)
    et.indent(elem, space='  ')
    return et.tostring(elem, encoding='unicode') + '\n'


def _strip_layout(elem):
    for node in elem.iter():
        if len(node) and node.text is not None and not node.text.strip():
            node.text = None
        if node.tail is not None and not node.tail.strip():
            node.tail = None


def new_element(tag, attrib=None, text=None):
    """A new element; attribute values that are None are left out, the others (and text) become strings."""
    elem = etree().Element(tag)
    for key, value in (attrib or {}).items():
        if value is not None:
            elem.set(key, str(value))
    if text is not None:
        elem.text = str(text)
    return elem


def sub(parent, tag, attrib=None, text=None):
    """Append a new_element() to `parent` and return it."""
    child = new_element(tag, attrib, text)
    parent.append(child)
    return child


def local_tag(elem):
    """The tag without its namespace ('{ns}volume' -> 'volume'); None for comments."""
    tag = elem.tag
    if not isinstance(tag, str):
        return None
    return tag.rsplit('}', 1)[-1]


def text_of(elem, path, default=None):
    """Stripped text of the first element at `path` below `elem`, or `default`."""
    found = elem.find(path)
    if found is None or found.text is None:
        return default
    return found.text.strip()


# Quantities whose unit is not KiB when left out.
_DEFAULT_UNITS = {'max_size': 'bytes'}


def element_quantity(elem):
    """Bytes of a quantity element (<memory unit='MiB'>2048</memory>), else None."""
    tag = local_tag(elem)
    if tag not in QUANTITY_TAGS or elem.text is None:
        return None
    return quantity_bytes(elem.text, elem.get('unit'), _DEFAULT_UNITS.get(tag, 'KiB'))


def same_number(a, b):
    """True when two attribute values are the same integer (0x02 and 2, 0x0000 and 0)."""
    na, nb = _as_int(a), _as_int(b)
    return na is not None and na == nb


def _as_int(value):
    if value is None:
        return None
    text = value.strip().lower()
    try:
        if text.startswith('0x'):
            return int(text, 16)
        if text.isdigit():
            return int(text, 10)
    except ValueError:
        return None
    return None


def cpu_set(value):
    """The numbers of a libvirt CPU or node set ('0-3,^2,5'), as a frozenset; None when not one."""
    if value is None:
        return None
    wanted, unwanted = set(), set()
    for part in value.replace(' ', '').split(','):
        if not part:
            continue
        target = unwanted if part.startswith('^') else wanted
        part = part.lstrip('^')
        low, _sep, high = part.partition('-')
        if not low.isdigit() or (high and not high.isdigit()):
            return None
        target.update(range(int(low), int(high or low) + 1))
    return frozenset(wanted - unwanted)


def pci_address_text(elem):
    """'0000:01:00.0' for an <address type='pci'> or hostdev <source><address> element."""
    try:
        parts = [int(elem.get(name, '0'), 0) for name in ('domain', 'bus', 'slot', 'function')]
    except (TypeError, ValueError):
        return None
    return format_pci_address(*parts)


def read_metadata(domain):
    """What phyllome.os keeps in a domain's <metadata>, as a dict.

    volumes: [(pool, volume)] it created for the domain (remove_storage removes them).
    restart_pending_id: the domain ID (a new one at every start) of the boot
    that has not seen the stored definition yet, or None.
    removed_tpm: the <tpm> element a change removed; libvirt keeps the state
    of a removed emulated TPM, and removes it only with a domain that has one.
    """
    found = domain.find('metadata/{%s}domain' % PHYLLOME_NS)
    result = {'volumes': [], 'restart_pending_id': None, 'removed_tpm': None}
    if found is None:
        return result
    result['volumes'] = [(v.get('pool'), v.get('name')) for v in found.findall('{%s}volume' % PHYLLOME_NS)]
    pending = found.find('{%s}restart-pending' % PHYLLOME_NS)
    if pending is not None and (pending.get('domain-id') or '').isdigit():
        result['restart_pending_id'] = int(pending.get('domain-id'))
    removed = found.find('{%s}removed-tpm/tpm' % PHYLLOME_NS)
    if removed is not None:
        result['removed_tpm'] = copy.deepcopy(removed)
    return result


def write_metadata(domain, record):
    """Replace phyllome.os's record in the domain's <metadata> (a dict as read_metadata returns)."""
    et = etree()
    metadata = domain.find('metadata')
    old = metadata.find('{%s}domain' % PHYLLOME_NS) if metadata is not None else None
    place = None
    if old is not None:
        # The new record goes where the old one was (a diff then shows what changed in it, not a move).
        place = metadata.index(old)
        metadata.remove(old)
    volumes = record.get('volumes') or []
    pending = record.get('restart_pending_id')
    removed_tpm = record.get('removed_tpm')
    if not volumes and pending is None and removed_tpm is None:
        if metadata is not None and not len(metadata):
            domain.remove(metadata)
        return
    if metadata is None:
        metadata = et.Element('metadata')
        # libvirt keeps <metadata> right after <uuid>/<name>.
        anchor = domain.find('uuid') if domain.find('uuid') is not None else domain.find('name')
        if anchor is not None:
            anchor.addnext(metadata)
        else:
            domain.insert(0, metadata)
    elem = et.Element('{%s}domain' % PHYLLOME_NS, nsmap={PHYLLOME_PREFIX: PHYLLOME_NS})
    if place is None:
        metadata.append(elem)
    else:
        metadata.insert(place, elem)
    for pool, name in volumes:
        et.SubElement(elem, '{%s}volume' % PHYLLOME_NS, pool=pool, name=name)
    if pending is not None:
        et.SubElement(elem, '{%s}restart-pending' % PHYLLOME_NS, {'domain-id': str(pending)})
    if removed_tpm is not None:
        et.SubElement(elem, '{%s}removed-tpm' % PHYLLOME_NS).append(copy.deepcopy(removed_tpm))
