#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: storage_pool
short_description: libvirt storage pools, defined, built, started and autostarted in one task
version_added: 0.1.0
description:
  - Makes a libvirt storage pool exist with a definition (O(xml)), built (a C(dir) pool's directory is created
    with the permissions the definition gives), active or not (O(active)), started with the host or not
    (O(autostart)), or removes its definition (O(state=absent); the volumes and the directory stay).
  - The definition is compared with the one libvirt stores as a subset, not as text. What O(xml) says must be
    there, with the same values; what libvirt fills in and O(xml) leaves out (the uuid, capacity, the target's
    permissions, ...) is no difference, and is kept when the pool is redefined. So the same task reports no
    change on the next run, and a real difference (another target path) is corrected.
  - A redefinition changes the stored definition; an active pool uses it once it is stopped and started again,
    which the module does not do; it returns RV(restart_required) instead.
  - Without O(xml), an existing pool is only started, stopped or (un)set to autostart.
options:
  xml:
    description:
      - The pool's definition, a C(<pool>) document. Needed to create it.
    type: str
  build:
    description:
      - Build a pool that this task defines (libvirt's C(pool-build)), before starting it. For a C(dir) pool
        that creates its directory. An existing pool is not built again.
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - phyllome.os.libvirt
  - phyllome.os.libvirt_object
seealso:
  - module: phyllome.os.network
  - name: libvirt storage pool XML format
    description: Every element of a pool definition.
    link: https://libvirt.org/formatstorage.html
author:
  - Phyllome OS developers (@PhyllomeOS)
'''

EXAMPLES = r'''
- name: The ISO directory of a Phyllome host, as an autostarted dir pool
  phyllome.os.storage_pool:
    name: isos
    xml: |
      <pool type='dir'>
        <name>isos</name>
        <target>
          <path>/var/lib/libvirt/isos</path>
        </target>
      </pool>
    active: true
    autostart: true

- name: Forget a pool (its files stay)
  phyllome.os.storage_pool:
    name: old-images
    state: absent
'''

RETURN = r'''
name:
  description: The pool's name.
  returned: always
  type: str
  sample: isos
exists:
  description: Whether the pool is defined after the task.
  returned: always
  type: bool
active:
  description: Whether it is active after the task (predicted in check mode).
  returned: when O(state=present)
  type: bool
autostart:
  description: Whether it starts with the daemon after the task (predicted in check mode).
  returned: when O(state=present)
  type: bool
differences:
  description: Where the stored definition differed from O(xml) before the task (XPath-like path, wanted, stored).
  returned: always
  type: list
  elements: dict
  sample: [{path: /pool/target/path, wanted: /srv/isos, stored: /var/lib/libvirt/isos}]
restart_required:
  description: The definition changed while the pool is active; it applies once the pool is stopped and started.
  returned: always
  type: bool
actions:
  description: The steps taken (in check mode, the steps a real run takes).
  returned: always
  type: list
  elements: str
  sample: [define storage pool isos, build storage pool isos, start storage pool isos, autostart storage pool isos]
'''

from ansible_collections.phyllome.os.plugins.module_utils._libvirt.objects import run_module


def main():
    run_module('pool')


if __name__ == '__main__':
    main()
