# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What phyllome.os.domain_info returns: the summaries of the domains asked for, and the query over them."""

from __future__ import annotations

from ansible_collections.phyllome.os.plugins.module_utils._common.deps import require
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput
from ansible_collections.phyllome.os.plugins.module_utils._domain.summary import summary
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import parse_domain
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.domain_client import ACTIVE_STATES


def collect_domains(client, names=None, states=None, with_xml=False):
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
        addresses = client.interface_addresses(dom) if state in ACTIVE_STATES else {}
        entry = summary(parse_domain(xml, 'the definition of %s' % client.name(dom)), state,
                        client.autostart(dom), client.is_persistent(dom), addresses)
        if with_xml:
            entry['xml'] = xml
        result.append(entry)
    return sorted(result, key=lambda entry: entry['name'])


def query(data, expression):
    """Evaluate a JMESPath expression over `data`; InvalidInput when it does not parse."""
    jmespath = require('jmespath', reason='for the query option')
    try:
        return jmespath.search(expression, data)
    except jmespath.exceptions.JMESPathError as exc:
        raise InvalidInput('query %r is not a valid JMESPath expression: %s' % (expression, exc))
