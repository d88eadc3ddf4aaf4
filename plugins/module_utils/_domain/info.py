# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What phyllome.os.domain_info returns: the summaries of the domains asked for, and the query over them."""

from __future__ import annotations

from ansible_collections.phyllome.os.plugins.module_utils._common.deps import require
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput, LibvirtFailure
from ansible_collections.phyllome.os.plugins.module_utils._domain.live import pending
from ansible_collections.phyllome.os.plugins.module_utils._domain.summary import interface_macs, summary
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import parse_domain
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.domain_client import ACTIVE_STATES


# Who knows a guest's addresses, most trusted first: the guest itself (its
# agent sees every address, static ones too), then the DHCP server of its
# libvirt network, then the host's neighbour table (only guests that talked
# to the host lately, and only IPv4 through libvirt).
ADDRESS_SOURCE_ORDER = ('agent', 'lease', 'arp')


def collect_domains(client, names=None, states=None, with_xml=False, address_sources=ADDRESS_SOURCE_ORDER):
    """Summaries of the domains (all, or those named / in `states`), sorted by name."""
    if names:
        found = [client.lookup(name) for name in names]
        doms = [dom for dom in found if dom is not None]
    else:
        doms = client.list_domains()
    result = []
    for dom in doms:
        state = client.state(dom)
        if states and state not in states:
            continue
        xml = client.xml(dom)
        domain = parse_domain(xml, 'the definition of %s' % client.name(dom))
        addresses, lookup = {}, []
        if state in ACTIVE_STATES:
            addresses, lookup = find_addresses(
                interface_macs(domain), address_sources,
                lambda source, dom=dom: client.interface_addresses(dom, source))
        persistent = client.is_persistent(dom)
        entry = summary(domain, state, client.autostart(dom), persistent, addresses)
        entry['address_lookup'] = lookup
        entry['pending_changes'] = []
        if state in ACTIVE_STATES and persistent:
            stored = parse_domain(client.xml(dom, inactive=True), 'the stored definition of %s' % client.name(dom))
            entry['pending_changes'] = pending(stored, domain)
        entry['restart_required'] = bool(entry['pending_changes'])
        if with_xml:
            entry['xml'] = xml
        result.append(entry)
    return sorted(result, key=lambda entry: entry['name'])


def find_addresses(macs, sources, read):
    """Each NIC's addresses from the first source, in `sources` order, that knows any.

    `read(source)` returns {mac: [address dicts]} or raises LibvirtFailure.
    A source is asked only while some NIC still has no address. Returns
    ({mac: (source, addresses)}, [{'source', 'outcome', 'message'}]) where
    outcome is `answered` (it gave a NIC its addresses), `no_address` (it
    answered, knowing none of the NICs still without one), `unavailable`
    (it could not answer: message says why) or `not_asked`.
    """
    found = {}
    lookup = []
    for source in sources:
        missing = [mac for mac in macs if mac not in found]
        entry = {'source': source, 'outcome': 'not_asked', 'message': None}
        lookup.append(entry)
        if not missing:
            continue
        try:
            known = read(source)
        except LibvirtFailure as exc:
            entry.update(outcome='unavailable', message=exc.msg)
            continue
        answered = [mac for mac in missing if known.get(mac)]
        for mac in answered:
            found[mac] = (source, [dict(address, source=source) for address in known[mac]])
        entry['outcome'] = 'answered' if answered else 'no_address'
    return found, lookup


def query(data, expression):
    """Evaluate a JMESPath expression over `data`; InvalidInput when it does not parse."""
    jmespath = require('jmespath', reason='for the query option')
    try:
        return jmespath.search(expression, data)
    except jmespath.exceptions.JMESPathError as exc:
        raise InvalidInput('query %r is not a valid JMESPath expression: %s' % (expression, exc))
