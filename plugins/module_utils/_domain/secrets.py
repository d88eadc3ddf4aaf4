# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The secrets a domain definition carries (graphics passwords), found and kept out of every output.

libvirt returns them only with VIR_DOMAIN_XML_SECURE (the stored definition
the domain module reads, so that a redefinition keeps them). They are found
in the task's XML text before it is parsed (an unparsable XML must not leak
either) and in the parsed definitions; the recorder collects them and the
end of main() masks them everywhere (module_glue.hide_secrets). The
differences name a changed secret without its values.
"""

from __future__ import annotations

import re

# Attributes whose value is a secret, on any element of a domain XML.
SECRET_ATTRIBUTES = frozenset(['passwd'])

_IN_TEXT = re.compile(r'''\bpasswd\s*=\s*(?:"([^"]*)"|'([^']*)')''')


def secrets_in_text(*texts):
    """Secret attribute values in XML texts (parsed or not), as written and unescaped."""
    found = set()
    for text in texts:
        if not isinstance(text, str):
            continue
        for match in _IN_TEXT.finditer(text):
            value = match.group(1) if match.group(1) is not None else match.group(2)
            if value:
                found.add(value)
                found.add(_unescape(value))
    return found


def _unescape(text):
    """XML's predefined entities replaced (xml.sax.saxutils.unescape would import urllib.request: 10 ms a task)."""
    for entity, char in (('&lt;', '<'), ('&gt;', '>'), ('&quot;', '"'), ('&apos;', "'"), ('&amp;', '&')):
        text = text.replace(entity, char)
    return text


def secrets_in_element(*elements):
    """Secret attribute values of parsed domain elements (None is skipped)."""
    found = set()
    for elem in elements:
        if elem is None:
            continue
        for node in elem.iter():
            if not isinstance(node.tag, str):
                continue
            for name in SECRET_ATTRIBUTES:
                if node.get(name):
                    found.add(node.get(name))
    return found


def secrets_in_params(params):
    """Secrets in the domain module's options: O(xml), O(model.extra_xml) and O(model.cloud_init.user_data)."""
    model = params.get('model') or {}
    texts = [params.get('xml')]
    texts.extend(model.get('extra_xml') or [])
    found = secrets_in_text(*texts)
    # Passwords and keys, somewhere in a document: the whole text is the secret.
    user_data = (model.get('cloud_init') or {}).get('user_data')
    if isinstance(user_data, str) and user_data.strip():
        found.add(user_data)
    return found


def describe(difference):
    """A compare.Difference in words, without the values of a secret attribute."""
    if difference.attribute in SECRET_ATTRIBUTES and difference.change == 'changed':
        return '%s: %s changed' % (difference.path, difference.attribute)
    return str(difference)
