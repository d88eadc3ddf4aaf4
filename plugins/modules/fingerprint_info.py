#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: fingerprint_info
short_description: A host's fingerprint, what should not differ between the hosts of a fleet
version_added: 0.1.0
description:
  - Reads what two Phyllome OS hosts should share so that guests can move between them, and returns it as a
    flat dict, one key per thing that can differ, so that the hosts of a fleet compare key by key
    (C(playbooks/drift.yml) does, with the filter P(phyllome.os.fleet_drift#filter)).
  - "Keys: C(kernel_arg.<name>) (the running kernel's arguments, except those that name the host's own disks and
    identity such as C(root), C(BOOT_IMAGE), C(initrd), C(resume)); C(cpu.vendor), C(cpu.model),
    C(cpu.feature.<name>) (libvirt's host-model CPU for x86_64 q35 guests, from the domain capabilities) and
    C(cpu.domain_types); C(machine.<type>) (every machine type QEMU offers x86_64 guests); C(firmware.<descriptor>)
    (the UEFI firmware descriptors offered to q35 guests: executable, Secure Boot, enrolled keys, SMM);
    C(version.libvirt), C(version.qemu), C(version.kernel), C(version.edk2), C(version.swtpm) (the last two from
    the package database, C(dpkg) or C(rpm)); C(libvirt_unit.<unit>) (the libvirt daemons and sockets enabled in
    systemd); C(qemu_conf.<key>) (the settings of C(/etc/libvirt/qemu.conf)). The filter
    P(phyllome.os.fleet_drift#filter) adds the host role's variables on the controller (C(var.<name>))."
  - Never changes anything.
options:
  root:
    description:
      - The root of the file system tree to read (C(/proc), C(/etc), C(/usr/share/qemu/firmware), the package
        database), C(/) for the host itself. libvirt is asked at O(uri) either way.
    type: path
    default: /
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - phyllome.os.read_only
  - phyllome.os.libvirt
attributes:
  platform:
    support: full
    platforms: linux
    details:
      - Reads Linux's procfs and systemd's unit links.
      - Asks libvirt over a read-write connection, the only kind on which libvirt gives domain capabilities (nothing
        is changed).
notes:
  - A driver without domain capabilities (libvirt's C(test:///default)) gives no C(cpu.model) nor
    C(cpu.feature.*) keys; RV(notes) says so.
seealso:
  - module: phyllome.os.host_info
  - module: phyllome.os.cpu_baseline
    description: The CPU every host of a group can run, when C(cpu.*) keys differ.
author:
  - Phyllome OS developers (@PhyllomeOS)
'''

EXAMPLES = r'''
- name: Read each host's fingerprint
  phyllome.os.fingerprint_info:
  register: fingerprint

- name: Compare the hosts, print what differs
  ansible.builtin.debug:
    msg: "{{ (dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, 'fingerprint')
      | map('community.general.dict_kv', 'fingerprint_info'))) | phyllome.os.fleet_drift).lines }}"
  run_once: true
'''

RETURN = r'''
fingerprint:
  description: The host's fingerprint, key -> value (text, number, list, or true for a bare kernel argument).
  returned: always
  type: dict
  sample:
    kernel_arg.intel_iommu: "on"
    kernel_arg.iommu: pt
    cpu.vendor: AMD
    cpu.model: EPYC-Rome
    cpu.feature.x2apic: require
    cpu.domain_types: [kvm, qemu]
    machine.pc-q35-7.2: offered
    firmware.60-edk2-ovmf-x64-ms.json: /usr/share/OVMF/OVMF_CODE_4M.ms.fd (secure-boot, enrolled-keys, requires-smm)
    version.libvirt: 9.0.0
    version.qemu: 7.2.0
    version.kernel: 6.1.0-28-amd64
    version.edk2: 2022.11-6+deb12u1
    version.swtpm: 0.7.1-1.3
    libvirt_unit.libvirtd.service: enabled
    qemu_conf.vnc_listen: 127.0.0.1
notes:
  description: What could not be read, in words (no domain capabilities, no package database).
  returned: always
  type: list
  elements: str
  sample: ["the Test driver has no domain capabilities: no host-model CPU"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import PhyllomeError, fail_from_exception
from ansible_collections.phyllome.os.plugins.module_utils._common.hostfs import HostFS
from ansible_collections.phyllome.os.plugins.module_utils._fleet.fingerprint_facts import gather
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.connection import uri_argument_spec


def main():
    module = AnsibleModule(
        argument_spec=dict(
            uri_argument_spec(),
            root=dict(type='path', default='/'),
        ),
        supports_check_mode=True,
    )
    fs = HostFS(module.params['root'])
    tool = 'dpkg' if module.get_bin_path('dpkg-query') else ('rpm' if module.get_bin_path('rpm') else None)

    def run(cmd):
        return module.run_command(cmd, environ_update={'LANG': 'C', 'LC_ALL': 'C'})

    try:
        result = gather(fs, module.params['uri'], run, tool)
    except PhyllomeError as exc:
        fail_from_exception(module, exc)
    if tool is None:
        result['notes'].append('neither dpkg-query nor rpm found: no edk2 or swtpm version')
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
