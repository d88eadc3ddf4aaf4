# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The guests of a group of libvirt hosts as inventory data: behind the phyllome.os.guests inventory plugin.

Each host's domains come as domain_info summarises them (_domain.info.collect_domains);
this module names them, groups them by host, power state and OS family, and
picks the address Ansible connects to. Plain data in and out.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import quote, urlparse


def host_name(uri):
    """The name of a libvirt host in the inventory, from its URI: the URI's host, or localhost."""
    return urlparse(uri).hostname or 'localhost'


def libvirt_uri(hostvars, transport='ssh'):
    """The libvirt URI of an inventory host, from the variables Ansible connects with.

    C(qemu+ssh://) (or C(qemu+tls://)) to ansible_host (else the inventory name), with ansible_user and
    ansible_port for SSH, and the SSH key (ansible_ssh_private_key_file) as libvirt's keyfile parameter.
    """
    address = str(hostvars.get('ansible_host') or hostvars['inventory_hostname'])
    if ':' in address:
        address = '[%s]' % address
    if transport == 'tls':
        return 'qemu+tls://%s/system' % address
    user = hostvars.get('ansible_user') or hostvars.get('ansible_ssh_user')
    port = hostvars.get('ansible_port') or hostvars.get('ansible_ssh_port')
    key = hostvars.get('ansible_ssh_private_key_file') or hostvars.get('ansible_private_key_file')
    return 'qemu+ssh://%s%s%s/system%s' % (
        '%s@' % quote(str(user), safe='') if user else '', address, ':%d' % int(port) if port else '',
        '?keyfile=%s' % quote(str(key), safe='/') if key else '')


def group_name(*parts):
    """An inventory group name (Ansible's rule: letters, digits and underscores)."""
    return re.sub(r'[^A-Za-z0-9_]', '_', '_'.join(p for p in parts if p))


def guest_address(guest):
    """The address Ansible should connect to: the first IPv4 address of the guest's NICs, else the
    first IPv6 address that is not link-local (a link-local one needs an interface name); None when
    no source knew one."""
    found = [a['address'] for nic in guest['interfaces'] for a in nic['addresses']]
    for address in found:
        if ipaddress.ip_address(address).version == 4:
            return address
    for address in found:
        if not ipaddress.ip_address(address).is_link_local:
            return address
    return None


def inventory(hosts, prefix=''):
    """The inventory of `hosts` ([{name, uri, domains}], domains as collect_domains returns them).

    Returns {'guests': {inventory_hostname: hostvars}, 'groups': {group: [inventory_hostname]}}.
    A guest is named after its domain; a name that several hosts define
    (a guest moved by cold migration stays defined on its old host until
    removed) is <domain>@<host> on each of them.
    """
    count = {}
    for host in hosts:
        for guest in host['domains']:
            count[guest['name']] = count.get(guest['name'], 0) + 1
    guests, groups = {}, {}
    for host in hosts:
        for guest in host['domains']:
            name = guest['name'] if count[guest['name']] == 1 else '%s@%s' % (guest['name'], host['name'])
            hostvars = {'phyllome_guest': guest, 'phyllome_guest_host': host['name'],
                        'phyllome_guest_uri': host['uri']}
            address = guest_address(guest)
            if address:
                hostvars['ansible_host'] = address
            guests[name] = hostvars
            family = (guest.get('os') or {}).get('family') or 'unknown'
            for group in (group_name(prefix, 'host', host['name']), group_name(prefix, 'state', guest['state']),
                          group_name(prefix, 'os', family)):
                groups.setdefault(group, []).append(name)
    return {'guests': guests, 'groups': groups}
