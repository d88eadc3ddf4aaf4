# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt_conf_value filter: a value as libvirt's config files (qemu.conf, libvirtd.conf) write it."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def _string(text):
    # libvirt's parser (virconf.c) has no escapes: a string ends at its next
    # quote or at the end of the line. Like libvirt's own writer, double quotes,
    # else single quotes when the text holds a double quote.
    if '\n' in text or '\r' in text:
        raise AnsibleFilterError('libvirt_conf_value: %r holds a line break, which a libvirt config line cannot' % (text,))
    if '"' not in text:
        return '"%s"' % text
    if "'" not in text:
        return "'%s'" % text
    raise AnsibleFilterError('libvirt_conf_value: %r holds both kinds of quotes, which libvirt cannot read back' % (text,))


def libvirt_conf_value(value):
    """The text after `key = `: "string", an integer bare, a boolean 1 or 0, a list [ "a", "b" ]."""
    if isinstance(value, bool):
        return '1' if value else '0'
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, tuple)):
        if not value:
            return '[]'
        return '[ %s ]' % ', '.join(libvirt_conf_value(item) for item in value)
    raise AnsibleFilterError('libvirt_conf_value: libvirt config values are strings, integers, booleans or lists of '
                             'them, not %s (%r)' % (type(value).__name__, value))


class FilterModule:
    def filters(self):
        return {'libvirt_conf_value': libvirt_conf_value}
