#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: domain_info
short_description: libvirt domains (VMs) as data, with their devices and IP addresses
version_added: 0.1.0
description:
  - Lists all domains, or those named or in the given states, each with a summary parsed from its definition
    (power state, vCPUs, memory, firmware, Secure Boot, TPM, disks, NICs, hostdevs, virtiofs shares, graphics,
    autostart) and, optionally, its XML.
  - The IP addresses of an active domain's NICs come, per NIC, from the first source that knows any (in
    O(address_sources) order; by default the QEMU guest agent, then the DHCP lease of the NIC's libvirt
    network, then the host's ARP table), and each NIC says which source answered
    (RV(domains[].interfaces[].address_source)); RV(domains[].address_lookup) says what each source said.
  - O(query) selects from the result with a JMESPath expression.
  - Never changes anything.
options:
  names:
    description:
      - Only these domains. Names that do not exist are left out of the result.
    type: list
    elements: str
    aliases: [name]
  states:
    description:
      - Only domains in these power states (libvirt's words).
    type: list
    elements: str
    choices: [running, blocked, paused, shutdown, shutoff, crashed, pmsuspended, nostate]
  xml:
    description:
      - Also return each domain's XML (the running configuration of a running domain, else its stored
        definition; graphics passwords are never included).
    type: bool
    default: false
  address_sources:
    description:
      - Where to look for the IP addresses of an active domain's NICs, in this order; a NIC takes the
        addresses of the first source that knows any, and a source is asked only while some NIC has none.
      - V(agent) asks the QEMU guest agent inside the guest (needs its channel in the domain and the agent
        running; it knows static addresses and IPv6 too). V(lease) reads the DHCP leases of the libvirt
        network a NIC of type C(network) is on. V(arp) reads the host's ARP table (IPv4 only, and only
        guests that talked to the host lately).
      - An empty list looks up no address. A guest whose agent is connected but does not answer costs
        libvirt's guest agent timeout; leave V(agent) out to never wait for one.
    type: list
    elements: str
    choices: [agent, lease, arp]
    default: [agent, lease, arp]
  query:
    description:
      - A JMESPath expression evaluated over the result (a dictionary with the key C(domains)); its result is
        returned as RV(query_result).
      - Needs the C(jmespath) Python library (C(python3-jmespath)) on the managed host.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - phyllome.os.read_only
  - phyllome.os.libvirt
requirements:
  - lxml (the C(python3-lxml) package) on the managed host
attributes:
  platform:
    support: full
    platforms: posix
    details: Any host whose libvirt the URI reaches.
seealso:
  - module: phyllome.os.domain
author:
  - Phyllome OS developers (@PhyllomeOS)
'''

EXAMPLES = r'''
- name: All domains
  phyllome.os.domain_info:
  register: vms

- name: The running ones, with their IPv4 addresses
  phyllome.os.domain_info:
    states: [running]
    query: "domains[].{name: name, ipv4: interfaces[].addresses[?family=='ipv4'].address | []}"
  register: running

- name: Addresses from the DHCP leases only (no guest agent call)
  phyllome.os.domain_info:
    states: [running]
    address_sources: [lease]
  register: leased

- name: One domain's XML
  phyllome.os.domain_info:
    names: [win11]
    xml: true
  register: win11

- name: Which domains have a PCI device passed through
  phyllome.os.domain_info:
    query: "domains[?hostdevs[?type=='pci']].name"
  register: passthrough
'''

RETURN = r'''
domains:
  description: The domains, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name.
      type: str
      sample: win11
    uuid:
      description: uuid.
      type: str
      sample: 2577e116-36de-48ba-bba4-0929aa8039bc
    state:
      description: Power state in libvirt's words.
      type: str
      sample: running
    autostart:
      description: Whether libvirt starts it with the host.
      type: bool
    persistent:
      description: Whether it is defined (false for a transient domain).
      type: bool
    domain_type:
      description: V(kvm), V(qemu), ...
      type: str
      sample: kvm
    arch:
      description: Guest architecture.
      type: str
      sample: x86_64
    machine:
      description: Machine type as stored.
      type: str
      sample: pc-q35-7.2
    vcpus:
      description: Number of virtual CPUs online (C(<vcpu current=...>), else C(<vcpu>)).
      type: int
      sample: 4
    max_vcpus:
      description: The most virtual CPUs it can have without a restart (C(<vcpu>)).
      type: int
      sample: 8
    memory_mib:
      description: Maximum memory, MiB.
      type: int
      sample: 8192
    current_memory_mib:
      description: Current memory (below the maximum when ballooned), MiB.
      type: int
      sample: 8192
    firmware:
      description: C(efi) or C(bios).
      type: str
      sample: efi
    secure_boot:
      description: Whether UEFI Secure Boot is on.
      type: bool
    tpm:
      description: The TPM (C(model), C(backend), C(version)), or null.
      type: dict
      sample: {model: tpm-crb, backend: emulator, version: "2.0"}
    disks:
      description: Disks and CD/DVD drives.
      type: list
      elements: dict
      sample:
        - {target: vda, bus: virtio, device: disk, type: file, path: /var/lib/libvirt/images/win11.raw,
           pool: null, volume: null, format: raw, readonly: false}
    interfaces:
      description: NICs, in device order.
      type: list
      elements: dict
      sample:
        - mac: "52:54:00:6b:3c:11"
          type: network
          source: default
          model: virtio
          addresses: [{address: 192.168.122.50, prefix: 24, family: ipv4, source: lease}]
          address_source: lease
      contains:
        mac:
          description: MAC address, lower case.
          type: str
        type:
          description: The interface type (C(network), C(bridge), C(direct), C(user), C(passt), ...).
          type: str
        source:
          description: The network, bridge or host device it is attached to.
          type: str
        model:
          description: The device model (C(virtio), C(e1000e), ...).
          type: str
        addresses:
          description:
            - For an active domain, the IP addresses of the first source that knew any (C(address),
              C(prefix), C(family) - C(ipv4) or C(ipv6), C(source)). Empty when no source knew one, and for an
              inactive domain.
          type: list
          elements: dict
        address_source:
          description: The source the addresses came from (C(agent), C(lease) or C(arp)), null when none knew one.
          type: str
          sample: agent
    pending_changes:
      description:
        - For a running persistent domain, what its stored definition has that the running guest does not run
          yet (it sees it at its next boot), compared semantically, as M(phyllome.os.domain) compares (C(change)
          in words, C(path) in the XML). Empty when the guest runs its definition, and for a domain that is not
          running or is transient.
        - The balloon's current size is not compared (the guest's driver reaches its target in its own time).
      type: list
      elements: dict
      sample:
        - {change: "os/type: machine changed from 'pc-q35-7.2' to 'pc-q35-8.2'", path: os/type}
    restart_required:
      description: Whether RV(domains[].pending_changes) has anything (a restart, not a guest reboot, applies it).
      type: bool
      sample: false
    address_lookup:
      description:
        - What each source of O(address_sources) said, in that order (empty for an inactive domain), as
          C(source), C(outcome) and C(message).
        - C(outcome) is C(answered) (it gave a NIC its addresses), C(no_address) (it answered, knowing no
          address of the NICs still without one), C(unavailable) (it could not answer; C(message) gives
          libvirt's words, e.g. that the guest agent is not connected) or C(not_asked) (every NIC had its
          addresses already).
      type: list
      elements: dict
      sample:
        - {source: agent, outcome: unavailable, message: "agent addresses of web1: ... QEMU guest agent is not connected"}
        - {source: lease, outcome: answered, message: null}
        - {source: arp, outcome: not_asked, message: null}
    hostdevs:
      description: Host devices passed through (C(type), C(address), C(vendor), C(product), C(managed)).
      type: list
      elements: dict
      sample: [{type: pci, address: "0000:01:00.0", vendor: null, product: null, managed: true}]
    filesystems:
      description: virtiofs shares (C(source), C(target), C(driver), C(readonly)).
      type: list
      elements: dict
    graphics:
      description: Graphical consoles (C(type), C(listen), C(port)).
      type: list
      elements: dict
      sample: [{type: spice, listen: none, port: null}]
    created_volumes:
      description: Storage volumes M(phyllome.os.domain) created for the domain (C(pool), C(volume)).
      type: list
      elements: dict
    os:
      description:
        - The guest OS from the domain's osinfo metadata (which virt-install, virt-manager and GNOME Boxes
          write), as C(id) (the osinfo ID) and C(family) (V(linux), V(windows), V(bsd) or V(other), from the
          ID's publisher); null without that metadata.
      type: dict
      sample: {id: "http://microsoft.com/win/11", family: windows}
    xml:
      description: The domain's XML, with O(xml=true).
      type: str
query_result:
  description: The result of O(query).
  returned: when O(query) is given
  type: raw
  sample: [fedora, win11]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import PhyllomeError, fail_from_exception
from ansible_collections.phyllome.os.plugins.module_utils._domain.info import ADDRESS_SOURCE_ORDER, collect_domains, query
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.connection import uri_argument_spec
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.domain_client import STATE_NAMES, DomainClient


def main():
    module = AnsibleModule(
        argument_spec=dict(
            uri_argument_spec(),
            names=dict(type='list', elements='str', aliases=['name']),
            states=dict(type='list', elements='str', choices=list(STATE_NAMES)),
            xml=dict(type='bool', default=False),
            address_sources=dict(type='list', elements='str', choices=list(ADDRESS_SOURCE_ORDER),
                                 default=list(ADDRESS_SOURCE_ORDER)),
            query=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        # Read-write: the guest agent answers only such connections; nothing is changed.
        with DomainClient.connect(params['uri']) as client:
            domains = collect_domains(client, params['names'], params['states'], params['xml'],
                                      params['address_sources'])
        result = {'domains': domains}
        if params['query'] is not None:
            result['query_result'] = query(result, params['query'])
    except PhyllomeError as exc:
        fail_from_exception(module, exc)
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
