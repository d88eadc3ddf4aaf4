#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: network
short_description: libvirt virtual networks, defined, started and autostarted in one task
version_added: 0.1.0
description:
  - Makes a libvirt network exist with a definition (O(xml)), active or not (O(active)), started with the host
    or not (O(autostart)), or removes it (O(state=absent)).
  - The definition is compared with the one libvirt stores as a subset, not as text. What O(xml) says must be
    there, with the same values; what libvirt fills in and O(xml) leaves out (the uuid, the bridge's MAC and
    name, ...) is no difference, and is kept when the network is redefined. So the same task reports no change on
    the next run, and a real difference (an address, a DHCP range, the forward mode) is corrected.
  - A redefinition changes the stored definition. An active network keeps running with the old one until it is
    stopped and started again (its guests lose their link meanwhile), so the module does not restart it and
    returns RV(restart_required).
  - Without O(xml), an existing network is only started, stopped or (un)set to autostart.
options:
  xml:
    description:
      - The network's definition, a C(<network>) document. Needed to create it.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - phyllome.os.libvirt
  - phyllome.os.libvirt_object
seealso:
  - module: phyllome.os.storage_pool
  - name: libvirt network XML format
    description: Every element of a network definition.
    link: https://libvirt.org/formatnetwork.html
author:
  - Phyllome OS developers (@PhyllomeOS)
'''

EXAMPLES = r'''
- name: libvirt's default NAT network, started now and with the host
  phyllome.os.network:
    name: default
    xml: |
      <network>
        <name>default</name>
        <forward mode='nat'/>
        <bridge name='virbr0' stp='on' delay='0'/>
        <ip address='192.168.122.1' netmask='255.255.255.0'>
          <dhcp>
            <range start='192.168.122.2' end='192.168.122.254'/>
          </dhcp>
        </ip>
      </network>
    active: true
    autostart: true

- name: Stop a network and keep it from starting with the host
  phyllome.os.network:
    name: lab
    active: false
    autostart: false

- name: Remove it
  phyllome.os.network:
    name: lab
    state: absent
'''

RETURN = r'''
name:
  description: The network's name.
  returned: always
  type: str
  sample: default
exists:
  description: Whether the network is defined after the task.
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
  sample: [{path: "/network/ip[@address='192.168.122.1']/dhcp/range/@end", wanted: 192.168.122.100, stored: 192.168.122.254}]
restart_required:
  description: The definition changed while the network runs; it applies once the network is stopped and started.
  returned: always
  type: bool
actions:
  description: The steps taken (in check mode, the steps a real run takes).
  returned: always
  type: list
  elements: str
  sample: [define network default, start network default, autostart network default]
'''

from ansible_collections.phyllome.os.plugins.module_utils._libvirt.objects import run_module


def main():
    run_module('network')


if __name__ == '__main__':
    main()
