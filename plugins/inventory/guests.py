# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
name: guests
short_description: The VMs of libvirt hosts, with their addresses, grouped by host, state and OS family
version_added: 0.1.0
description:
  - Lists the domains (VMs) of every libvirt host of O(hosts) and of the inventory group O(group) as inventory
    hosts, named after the domain.
  - Groups them by the libvirt host they are defined on (C(host_<host>)), by power state in libvirt's words
    (C(state_running), C(state_shutoff), ...) and by OS family from the domain's osinfo metadata
    (C(os_linux), C(os_windows), C(os_bsd), C(os_other), C(os_unknown) without that metadata); O(prefix)
    goes before each group name.
  - Each guest's host variables are C(phyllome_guest) (what M(phyllome.os.domain_info) returns for the
    domain), C(phyllome_guest_host) and C(phyllome_guest_uri) (the libvirt host and its URI), and
    C(ansible_host) when its address is known. The address comes, per NIC, from the first source of
    O(address_sources) that knows one (the guest agent, the DHCP lease of the NIC's libvirt network, the
    host's ARP table), as M(phyllome.os.domain_info) looks it up; C(ansible_host) is the first IPv4 address,
    else the first IPv6 address that is not link-local.
  - A domain that several hosts define (a guest that moved by cold migration, still defined on its old
    host) is named C(<domain>@<host>) on each.
  - A host that cannot be reached is left out with a warning; the others are listed.
  - The configuration file's name ends with C(phyllome_guests.yml) or C(phyllome_guests.yaml).
extends_documentation_fragment:
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
options:
  plugin:
    description: The name of this plugin; the configuration file is for it.
    required: true
    type: str
    choices: [phyllome.os.guests]
  hosts:
    description:
      - The libvirt hosts, each a URI (C(qemu+ssh://root@host1/system)) or a dictionary with C(uri) and
        C(name). The name (used in group names and C(phyllome_guest_host)) defaults to the URI's host, or
        C(localhost) for a local URI.
      - The URIs are opened from the controller.
      - O(hosts), O(group) or both; a host of both is listed once per entry.
    type: list
    elements: raw
    default: []
  group:
    description:
      - The libvirt hosts are the hosts of this inventory group (and of its children), as the inventory sources
        given before this file define them (C(ansible-inventory -i hosts.yml -i lab.phyllome_guests.yml)), for
        example C(phyllome_hosts), the group that C(playbooks/site.yml) converges.
      - Each host is named as in that inventory; its URI is O(uri) evaluated with its variables, else built
        from the variables Ansible connects with (see O(transport)).
      - A group that the earlier sources do not define is an error.
    type: str
  transport:
    description:
      - How the URI of a host of O(group) reaches its libvirt, when O(uri) is not given.
      - V(ssh) is C(qemu+ssh://[ansible_user@]ansible_host[:ansible_port]/system), with the host's
        C(ansible_ssh_private_key_file) as the C(keyfile) parameter; C(ansible_host) defaults to the inventory
        name.
      - V(tls) is C(qemu+tls://ansible_host/system) (the host role's TLS listener; the controller needs a client
        certificate where libvirt looks for it).
    type: str
    choices: [ssh, tls]
    default: ssh
  uri:
    description:
      - A Jinja2 expression, evaluated with the variables of each host of O(group) (as O(compose) values are),
        giving its libvirt URI. Overrides O(transport).
      - For example V("'qemu+ssh://admin@' ~ inventory_hostname ~ '.example.org/system?no_verify=1'").
    type: str
  states:
    description: Only domains in these power states (libvirt's words).
    type: list
    elements: str
    choices: [running, blocked, paused, shutdown, shutoff, crashed, pmsuspended, nostate]
  address_sources:
    description:
      - Where to look for the guests' addresses, in this order (see M(phyllome.os.domain_info)). An empty
        list looks up none (and gives no C(ansible_host)). Leave V(agent) out to never wait for a guest
        agent that does not answer.
    type: list
    elements: str
    choices: [agent, lease, arp]
    default: [agent, lease, arp]
  prefix:
    description: Put before the name of each group this plugin makes (with an underscore).
    type: str
    default: ''
requirements:
  - libvirt-python and lxml on the controller
notes:
  - The peer plugin community.libvirt.libvirt lists domains without addresses.
seealso:
  - module: phyllome.os.domain_info
author:
  - Phyllome OS developers (@PhyllomeOS)
'''

EXAMPLES = r'''
# lab.phyllome_guests.yml: the running guests of two hosts, reached at the address libvirt knows
plugin: phyllome.os.guests
hosts:
  - qemu+ssh://root@host1/system
  - {name: host2, uri: "qemu+ssh://root@192.0.2.12/system"}
states: [running]
# Cache for an hour in a JSON file (Ansible's inventory cache)
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/phyllome-guests
cache_timeout: 3600
# A group per guest's number of vCPUs, and a variable from its summary
keyed_groups:
  - key: phyllome_guest.vcpus
    prefix: vcpus
compose:
  guest_firmware: phyllome_guest.firmware

# hypervisors.phyllome_guests.yml: the guests of every host that site.yml converges, reached the way
# Ansible reaches the hosts (ansible_host, ansible_user, ansible_port, the SSH key):
#   ansible-inventory -i inventory/hosts.yml -i hypervisors.phyllome_guests.yml --graph
#   plugin: phyllome.os.guests
#   group: phyllome_hosts

# The same over libvirt's TLS listener, or any URI computed from each host's variables
#   plugin: phyllome.os.guests
#   group: phyllome_hosts
#   uri: "'qemu+tls://' ~ inventory_hostname ~ '.example.org/system'"
'''

from ansible.errors import AnsibleParserError
from ansible.inventory.helpers import get_group_vars
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.display import Display
from ansible.utils.vars import combine_vars

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import PhyllomeError
from ansible_collections.phyllome.os.plugins.module_utils._domain.info import collect_domains
from ansible_collections.phyllome.os.plugins.module_utils._fleet.guests import host_name, inventory as guests_inventory, libvirt_uri
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.domain_client import DomainClient

display = Display()


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):

    NAME = 'phyllome.os.guests'

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(('phyllome_guests.yml', 'phyllome_guests.yaml'))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache=cache)
        self._read_config_data(path)
        key = self.get_cache_key(path)
        use_cache = self.get_option('cache') and cache
        hosts = None
        if use_cache:
            try:
                hosts = self._cache[key]
            except KeyError:
                hosts = None
        if hosts is None:
            hosts = self._read_hosts()
            if self.get_option('cache'):
                self._cache[key] = hosts
        self._populate(guests_inventory(hosts, self.get_option('prefix')))

    def _host_entries(self):
        entries = []
        for index, entry in enumerate(self.get_option('hosts') or []):
            if isinstance(entry, str):
                entry = {'uri': entry}
            if not isinstance(entry, dict) or not isinstance(entry.get('uri'), str):
                raise AnsibleParserError('hosts[%d] must be a libvirt URI or a dictionary with uri and name' % index)
            entries.append({'uri': entry['uri'], 'name': str(entry.get('name') or host_name(entry['uri']))})
        if self.get_option('group'):
            entries.extend(self._group_entries(self.get_option('group')))
        if not entries:
            raise AnsibleParserError('phyllome.os.guests needs hosts (libvirt URIs) or group (an inventory group)')
        return entries

    def _group_entries(self, name):
        """The libvirt hosts of the inventory group `name`, each with the URI its variables give."""
        group = self.inventory.groups.get(name)
        if group is None:
            raise AnsibleParserError(
                'group %s is not in the inventory: give the inventory that defines it before this file '
                '(ansible-inventory -i hosts.yml -i this.phyllome_guests.yml)' % name)
        entries = []
        for host in sorted(group.get_hosts(), key=lambda h: h.name):
            hostvars = combine_vars(get_group_vars(host.get_groups()), host.get_vars())
            if self.get_option('uri'):
                uri = self._compose(self.get_option('uri'), hostvars)
                if not isinstance(uri, str) or not uri:
                    raise AnsibleParserError('uri gives no URI for %s: %r' % (host.name, uri))
            else:
                uri = libvirt_uri(hostvars, self.get_option('transport'))
            entries.append({'uri': str(uri), 'name': host.name})
        return entries

    def _read_hosts(self):
        """Every host's domains, as domain_info summarises them (plain data: what the cache keeps)."""
        hosts = []
        for entry in self._host_entries():
            try:
                # Read-write: the guest agent answers only such connections; nothing is changed.
                with DomainClient.connect(entry['uri']) as client:
                    domains = collect_domains(client, states=self.get_option('states'),
                                              address_sources=self.get_option('address_sources'))
            except PhyllomeError as exc:
                display.warning('phyllome.os.guests: %s left out: %s' % (entry['name'], exc.msg))
                continue
            hosts.append(dict(entry, domains=domains))
        return hosts

    def _populate(self, data):
        strict = self.get_option('strict')
        for group in data['groups']:
            self.inventory.add_group(group)
        for name, hostvars in data['guests'].items():
            self.inventory.add_host(name)
            for var, value in hostvars.items():
                self.inventory.set_variable(name, var, value)
            self._set_composite_vars(self.get_option('compose'), hostvars, name, strict=strict)
            self._add_host_to_composed_groups(self.get_option('groups'), hostvars, name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option('keyed_groups'), hostvars, name, strict=strict)
        for group, members in data['groups'].items():
            for name in members:
                self.inventory.add_child(group, name)
