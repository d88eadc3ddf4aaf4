#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: cpu_baseline
short_description: The CPU model and features every host of a group can run, and which host limits which feature
version_added: 0.1.0
description:
  - Takes the domain capabilities of every host of a group (read through each host's libvirt URI, or given as
    XML the play gathered) and computes, with libvirt's C(virConnectBaselineHypervisorCPU) and its
    C(VIR_CONNECT_BASELINE_CPU_MIGRATABLE) flag, the most capable CPU that a guest can have on every one of
    them. A guest defined with it can be moved to any host of the group.
  - Each host's CPU is its C(host-model) CPU from its domain capabilities (what QEMU and KVM offer a guest
    there, as C(virsh domcapabilities) shows it).
  - The result is usable as it is in a domain's definition (RV(cpu_xml), a C(<cpu mode='custom'
    match='exact'>) element) and as data (RV(cpu)).
  - Reports which host limits which feature, that is every feature some host offers and the baseline lacks,
    with the hosts that lack it (RV(limited_features), RV(hosts[].limits)).
  - libvirt computes the baseline with the hypervisor behind O(uri), so the result is also limited to what that
    QEMU and KVM can run, and features every host offers that they cannot provide are listed in
    RV(not_provided).
    Point O(uri) at one of the group's hosts (the default runs it on the host the task runs on).
  - Hosts with CPUs of different vendors (Intel and AMD) or architectures cannot share a CPU model; the
    module fails naming which hosts are which.
  - Never changes anything.
options:
  hosts:
    description:
      - The hosts of the group, each with a O(hosts[].name) and either O(hosts[].uri) or
        O(hosts[].domain_capabilities).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - The name the result uses for this host (an inventory hostname). Defaults to O(hosts[].uri).
        type: str
      uri:
        description:
          - A libvirt URI of the host (e.g. C(qemu+ssh://root@host2/system)), read from the managed host
            the task runs on.
        type: str
      domain_capabilities:
        description:
          - The host's domain capabilities XML (C(virsh domcapabilities), or C(virsh domcapabilities
            --virttype kvm --machine q35) run on it).
        type: str
  virttype:
    description:
      - The domain type (V(kvm), V(qemu)) whose capabilities are read from the hosts given by URI and for
        which libvirt computes the baseline. By default, libvirt's choice (the best one the host offers).
    type: str
  arch:
    description:
      - Guest architecture (e.g. V(x86_64)). By default, the host's own.
    type: str
  machine:
    description:
      - Machine type (e.g. V(q35)). By default, libvirt's default for the architecture.
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
    details: Any host whose libvirt the URIs reach.
notes:
  - libvirt's test driver (C(test:///default)) has no baseline; the baseline needs a QEMU driver.
  - A custom CPU pins the guest to the model and features listed; a guest with the C(host-model) CPU (the
    default of M(phyllome.os.domain)) gets more features but can only move to hosts that offer all of them.
seealso:
  - module: phyllome.os.domain
  - name: libvirt's virConnectBaselineHypervisorCPU
    description: The libvirt API this module calls.
    link: https://libvirt.org/html/libvirt-libvirt-host.html#virConnectBaselineHypervisorCPU
author:
  - Phyllome OS developers (@PhyllomeOS)
'''

EXAMPLES = r'''
- name: The CPU that host1, host2 and host3 can all run, computed on host1
  phyllome.os.cpu_baseline:
    uri: qemu+ssh://root@host1/system
    hosts:
      - {name: host1, uri: "qemu+ssh://root@host1/system"}
      - {name: host2, uri: "qemu+ssh://root@host2/system"}
      - {name: host3, uri: "qemu+ssh://root@host3/system"}
    virttype: kvm
    machine: q35
  delegate_to: host1
  run_once: true
  register: fleet_cpu

- name: Each host reads its own domain capabilities (no SSH between the hosts)
  ansible.builtin.command: virsh -c qemu:///system domcapabilities --virttype kvm --machine q35
  register: domcaps
  changed_when: false

- name: The baseline of every host of the play, computed on the first one
  phyllome.os.cpu_baseline:
    hosts: >-
      {% set group = [] %}{% for host in ansible_play_hosts %}{% set _ = group.append({'name': host,
      'domain_capabilities': hostvars[host].domcaps.stdout}) %}{% endfor %}{{ group }}
    virttype: kvm
    machine: q35
  run_once: true
  register: fleet_cpu

- name: Which host holds the group back
  ansible.builtin.debug:
    msg: "{{ item.name }} lacks {{ item.limits | join(', ') }}"
  loop: "{{ fleet_cpu.hosts }}"
  when: item.limits | length > 0

- name: The <cpu> element for the definition of a guest that can move to any host of the group
  ansible.builtin.debug:
    msg: "{{ fleet_cpu.cpu_xml }}"
'''

RETURN = r'''
cpu:
  description:
    - The baseline CPU as data, in libvirt's words; C(features) lists the features beyond the model's own,
      each with its C(policy) (C(require), or C(disable) for a feature of the model that some host lacks).
  returned: success
  type: dict
  sample:
    mode: custom
    match: exact
    model: Skylake-Client-IBRS
    fallback: forbid
    vendor: Intel
    features: [{name: ss, policy: require}, {name: hle, policy: disable}]
cpu_xml:
  description: The baseline CPU as a domain's C(<cpu>) element.
  returned: success
  type: str
  sample: |
    <cpu mode="custom" match="exact">
      <model fallback="forbid">Skylake-Client-IBRS</model>
      <vendor>Intel</vendor>
      <feature policy="require" name="ss"/>
    </cpu>
features:
  description: Every feature a guest with the baseline CPU gets (the model's and the extra ones), sorted.
  returned: success
  type: list
  elements: str
hosts:
  description: Per host, its own CPU and what it holds back.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The host's name (O(hosts[].name)).
      type: str
    model:
      description: The model of the host's C(host-model) CPU.
      type: str
      sample: Skylake-Client-IBRS
    vendor:
      description: Its vendor.
      type: str
      sample: Intel
    machine:
      description: The machine type its domain capabilities are for.
      type: str
      sample: pc-q35-7.2
    limits:
      description: Features another host offers that this one lacks (so the baseline lacks them because of it).
      type: list
      elements: str
      sample: [clflushopt, xsaves]
    domain_capabilities:
      description:
        - The domain capabilities the module read through O(hosts[].uri), for hosts given that way, so that a play
          can read them on each host (its own URI, in parallel) and then compute the group's baseline once from
          them (the role C(phyllome.os.guests) does this with C(phyllome_guests_cpu=fleet)).
      type: str
      returned: for hosts given by O(hosts[].uri)
limited_features:
  description: Every feature some host offers and the baseline lacks, with the hosts that lack it.
  returned: success
  type: dict
  sample: {clflushopt: [host1], xsaves: [host1]}
not_provided:
  description:
    - Features every host offers that the baseline still lacks, so the hypervisor behind O(uri) cannot provide
      them. Empty when O(uri) is one of the hosts.
  returned: success
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput, PhyllomeError, fail_from_exception
from ansible_collections.phyllome.os.plugins.module_utils._fleet.cpu_baseline import fleet_baseline, fleet_group
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.connection import uri_argument_spec
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.domain_client import DomainClient


def gather(hosts, arch, machine, virttype):
    """Each host as {name, domain_capabilities}, reading those given by URI."""
    gathered = []
    for index, host in enumerate(hosts):
        if bool(host.get('uri')) == bool(host.get('domain_capabilities')):
            raise InvalidInput('hosts[%d] needs exactly one of uri and domain_capabilities' % index)
        name = host.get('name') or host.get('uri')
        if not name:
            raise InvalidInput('hosts[%d] needs a name when it gives domain_capabilities' % index)
        domcaps = host.get('domain_capabilities')
        if domcaps is None:
            with DomainClient.connect(host['uri']) as client:
                domcaps = client.domain_capabilities(arch, machine, virttype)
            if domcaps is None:
                raise InvalidInput('%s (%s) has no domain capabilities: its libvirt driver offers no CPU to compare'
                                   % (name, host['uri']))
        gathered.append({'name': name, 'domain_capabilities': domcaps, 'read': not host.get('domain_capabilities')})
    return gathered


def main():
    module = AnsibleModule(
        argument_spec=dict(
            uri_argument_spec(),
            hosts=dict(type='list', elements='dict', required=True, options=dict(
                name=dict(type='str'),
                uri=dict(type='str'),
                domain_capabilities=dict(type='str'),
            )),
            virttype=dict(type='str'),
            arch=dict(type='str'),
            machine=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        gathered = gather(params['hosts'], params['arch'], params['machine'], params['virttype'])
        group = fleet_group(gathered)
        # Read-write: libvirt refuses the baseline on a read-only connection; nothing is changed.
        with DomainClient.connect(params['uri']) as client:
            result = fleet_baseline(group, lambda cpus, expand: client.baseline_hypervisor_cpu(
                cpus, params['arch'], params['machine'], params['virttype'], expand))
    except PhyllomeError as exc:
        fail_from_exception(module, exc)
    for host, read in zip(result['hosts'], gathered):
        if read['read']:
            host['domain_capabilities'] = read['domain_capabilities']
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
