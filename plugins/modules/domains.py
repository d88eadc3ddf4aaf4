#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: domains
short_description: A host's libvirt domains (VMs), a whole list in one task
version_added: 0.1.0
description:
  - Converges a list of domains on one libvirt connection in one task, each as M(phyllome.os.domain) would (the
    same options, the same semantic comparison, in-place updates, power states, check and diff mode), at the
    cost of one task instead of one per domain.
  - "Every item is checked before anything changes: first its options (those of M(phyllome.os.domain), with
    O(defaults) merged under it), then what the host says about it (its XML, disks, host devices, uuid), by
    planning every item as check mode does. One bad item fails the task, naming the item
    (C(domains[3] (web1))), and nothing is changed."
  - Then the items whose plan has something to do are converged, in the order of the list (an item with nothing
    to do is not touched again), and then the undeclared domains are removed when O(undeclared=remove).
    The first failure stops the task there; the failure lists, per domain, what was done (RV(results[].status),
    RV(results[].actions)), which domain failed and why, and which domains were not attempted (with the actions
    they would have taken).
  - Domains that the list does not name are left alone (O(undeclared=ignore)), listed (V(report)) or removed
    (V(remove)).
options:
  defaults:
    description:
      - Options given to every item of O(domains) that leaves them out (any option of an item but C(name) and
        C(xml)), for instance C(state), C(autostart), C(domain_type) or a common C(model).
      - "An item's own value wins. Dictionaries merge key by key (C(model), C(model.cpu), C(model.graphics)...: an
        item's C(model: {memory: 4G}) keeps the default C(model.os)); lists (C(model.disks),
        C(model.networks)...) are replaced whole."
      - The C(model) given here goes only under an item's own C(model). An item with C(xml) says what the domain
        is another way, and an item with neither only names an existing domain (its power state, autostart,
        removal), as in M(phyllome.os.domain)."
      - O(domains[].shutdown_timeout), O(domains[].force) and O(domains[].remove_storage) given here also say how O(undeclared=remove) removes a
        domain.
    type: dict
  undeclared:
    description:
      - What to do with the domains defined on the host that no item of O(domains) names.
      - V(ignore) leaves them alone and does not list them.
      - V(report) lists them in RV(undeclared) and RV(results) (status V(undeclared)), and changes nothing.
      - V(remove) removes them as M(phyllome.os.domain) with O(domains[].state=absent) does (nvram, TPM state,
        snapshot metadata; their disks stay unless C(remove_storage) in O(defaults)). A running domain is
        removed (shut down, powered off after C(shutdown_timeout)) only with C(force=true) in O(defaults);
        without it, it is left running and listed in RV(undeclared). Transient domains are never removed. In
        check mode, RV(removed) and the actions say what would be removed.
    type: str
    choices: [ignore, report, remove]
    default: ignore
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - phyllome.os.libvirt
  - phyllome.os.domain_items
requirements:
  - lxml (the C(python3-lxml) package) on the managed host
attributes:
  check_mode:
    support: full
    details: Plans every domain as M(phyllome.os.domain) does in check mode, calling no mutating libvirt API; the
      results and actions are those of the real run.
  diff_mode:
    support: full
    details:
      - One diff per changed domain, each headed with the domain's name (graphics passwords masked).
      - A running domain that does not run all of its new definition yet has a second one, of its live XML and
        the stored definition.
  platform:
    support: full
    platforms: posix
    details: Any host whose libvirt the URI reaches; the libvirt QEMU driver or libvirt's test driver.
notes:
  - Items are converged one after the other on one connection; with many items and nothing to do, the task costs
    little more than one M(phyllome.os.domain) task (see the benchmark in the collection's docs).
  - An item's disk created by an earlier item of the same list (the same path, with a size only in the earlier
    one) does not exist yet when the items are planned, and fails the planning; give its size in both.
seealso:
  - module: phyllome.os.domain
  - module: phyllome.os.domain_info
author:
  - Phyllome OS developers (@PhyllomeOS)
'''

EXAMPLES = r'''
- name: A host's guests in one task, Linux defaults shared, one from an XML template; list the others
  phyllome.os.domains:
    defaults:
      state: running
      autostart: true
      model:
        os: linux
        networks:
          - type: bridge
            source: br0
    domains:
      - name: web
        model:
          memory: 2G
          disks:
            - volume: web.qcow2
              format: qcow2
              size: 20G
      - name: db
        model:
          memory: 8G
          vcpus: 4
          disks:
            - volume: db.qcow2
              format: qcow2
              size: 100G
      - xml: "{{ lookup('ansible.builtin.template', 'router.xml.j2') }}"
      - name: old-test
        state: absent
        remove_storage: true
    undeclared: report
  register: guests

- name: Say which domains the inventory does not know
  ansible.builtin.debug:
    msg: "Not declared: {{ guests.undeclared | join(', ') }}"
  when: guests.undeclared | length > 0

- name: Keep exactly these domains; remove every other (running ones too, after 60 s of ACPI shutdown)
  phyllome.os.domains:
    domains: "{{ phyllome_guests }}"
    defaults:
      shutdown_timeout: 60
      force: true
    undeclared: remove
'''

RETURN = r'''
results:
  description:
    - One entry per item of O(domains) (in their order), then one per undeclared domain (O(undeclared=report) or
      V(remove)). After a failure, the entries of the items not attempted follow the failed one.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The domain's name.
      type: str
      sample: web
    index:
      description: The item's position in O(domains); null for an undeclared domain.
      type: int
      sample: 0
    status:
      description:
        - V(created), V(updated) (its definition, autostart or power state changed), V(removed), V(unchanged);
          V(undeclared) (not in the list and left alone); after a failure V(failed) or V(not attempted).
      type: str
      sample: created
    changed:
      description: Whether this domain was changed.
      type: bool
    state:
      description: The domain's power state after the task, as in M(phyllome.os.domain)'s result.
      type: str
      sample: running
    uuid:
      description: The domain's uuid (null for a domain check mode would create, and after removal).
      type: str
    restart_required:
      description: Whether the domain runs with an older definition than the stored one (see M(phyllome.os.domain)).
      type: bool
    cloud_init:
      description:
        - The domain's cloud-init seed as M(phyllome.os.domain) returns it (volume, pool, digest, sizes; never its
          content), null when its item has no O(domains[].model.cloud_init).
      type: dict
    changes:
      description: What changed in the definition, in words.
      type: list
      elements: str
    differences:
      description:
        - Each difference with its class (V(live), V(next_boot)), what was done with it (V(applied),
          V(defined), V(waiting)) and why it is not live, as in M(phyllome.os.domain)'s result.
      type: list
      elements: dict
      sample:
        - {change: currentMemory changed from 2 GiB to 3 GiB, path: currentMemory, class: live, done: applied,
           reason: null}
    actions:
      description: What the task did (in check mode, would do) to this domain, in order.
      type: list
      elements: str
      sample: [define domain web, start domain web]
    diff:
      description: The domain's diff (before, after, headers naming the domain); in diff mode only.
      type: dict
    msg:
      description: Why the domain failed (status V(failed)).
      type: str
    planned_actions:
      description: What a domain not attempted after a failure would have had done (status V(not attempted)).
      type: list
      elements: str
    note:
      description: Why an undeclared domain was left alone.
      type: str
created:
  description: Names of the domains defined by the task (in check mode, that it would define).
  returned: always
  type: list
  elements: str
  sample: [web]
updated:
  description: Names of the domains that existed and were changed (definition, autostart or power state).
  returned: always
  type: list
  elements: str
removed:
  description: Names of the domains removed (items with O(domains[].state=absent), undeclared domains).
  returned: always
  type: list
  elements: str
unchanged:
  description: Names of the items with nothing to do.
  returned: always
  type: list
  elements: str
  sample: [db, router]
undeclared:
  description: Names of the domains the list does not name that are still there (empty with O(undeclared=ignore)).
  returned: always
  type: list
  elements: str
restart_required:
  description: Names of the domains that need a restart to run their stored definition.
  returned: always
  type: list
  elements: str
failed_domains:
  description: The domain whose failure stopped the task (empty on success).
  returned: always
  type: list
  elements: str
not_attempted:
  description: The domains not attempted after a failure (empty on success).
  returned: always
  type: list
  elements: str
actions:
  description: Every domain's actions, in the order they were taken.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.phyllome.os.plugins.module_utils._common.module_glue import run_and_exit
from ansible_collections.phyllome.os.plugins.module_utils._domain.domain_set import RecorderSet, argument_spec, run_domains
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.connection import uri_argument_spec
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.domain_client import DomainClient


def main():
    module = AnsibleModule(argument_spec=argument_spec(uri_argument_spec()), supports_check_mode=True)
    recorders = RecorderSet(check_mode=module.check_mode)
    run_and_exit(module, recorders, _converge, module, recorders)


def _converge(module, recorders):
    with DomainClient.connect(module.params['uri']) as client:
        result = run_domains(module.params, client, recorders, diff=module._diff)
    # Each domain's warnings (what libvirt did not keep as asked) are said once, as domain says them.
    for entry in result['results']:
        for warning in entry.pop('warnings', []):
            module.warn(warning)
    return result


if __name__ == '__main__':
    main()
