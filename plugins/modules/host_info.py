#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: host_info
short_description: Readiness report of a virtualization host, as data
version_added: 0.1.0
description:
  - Checks what a host needs to run Phyllome OS virtual machines, like C(virt-host-validate), and returns
    each check as data with a C(pass), C(warn), C(fail) or C(skip) verdict, a reason in words and the raw
    facts behind it, plus an overall verdict.
  - "Checks: C(cpu) (VT-x/AMD-V flags), C(kvm_modules) (C(kvm), C(kvm_intel)/C(kvm_amd)), C(kvm_device)
    (C(/dev/kvm) exists, is a character device and the user QEMU runs as may open it), C(nested)
    (nested virtualization), C(iommu) (an IOMMU is active for device passthrough), C(hugepages),
    C(libvirt) (libvirt and QEMU versions, domain types offered), C(firmware) (UEFI firmware descriptors,
    Secure Boot) and C(swtpm) (TPM 2.0 emulation)."
  - A C(/dev/kvm) the qemu user cannot open is a C(fail) even though QEMU itself may probe KVM fine as root;
    libvirt then discards its QEMU capability cache on every call and re-probes QEMU, so that each domain
    define takes tens of seconds.
  - Whether KVM guests really start cannot be told from files. A host whose CPU flags lack C(vmx) and
    C(svm) but that has a C(/dev/kvm) (another KVM backend, such as PVM) gets a C(warn).
  - Reads C(/proc), C(/sys), C(/dev), C(/etc) and C(/usr/share/qemu/firmware) below O(root), so a recorded
    tree of another machine can be audited offline. Never changes anything.
options:
  root:
    description:
      - The root of the file system tree to read, C(/) for the host itself.
      - Point it at a copy of another machine's C(/proc), C(/sys), C(/dev) and C(/etc) to audit it offline.
    type: path
    default: /
  libvirt:
    description:
      - Whether to ask libvirt at O(uri) for its version, the QEMU version and the domain types it offers.
      - By default libvirt is asked only when O(root=/); a recorded tree has no daemon of its own.
      - With V(false) the C(libvirt) check reports C(skip).
      - When the libvirt Python binding is missing or the daemon does not answer, the C(libvirt) check
        reports C(warn) or C(fail) with the reason; the module itself does not fail.
    type: bool
  qemu_user:
    description:
      - The user QEMU runs as, to check that it may open C(/dev/kvm).
      - By default the C(user) setting of C(/etc/libvirt/qemu.conf), else C(qemu) (Fedora) or
        C(libvirt-qemu) (Debian), whichever exists in C(/etc/passwd) below O(root).
      - Also accepts C(+UID), as C(qemu.conf) does.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - phyllome.os.read_only
  - phyllome.os.libvirt
attributes:
  platform:
    support: full
    platforms: linux
    details: Reads Linux's procfs and sysfs.
notes:
  - The C(libvirt) check opens a read-only connection. On a host whose C(/dev/kvm) the qemu user cannot
    open, that first call can itself take tens of seconds while libvirt re-probes QEMU.
  - The IOMMU is detected from sysfs and procfs only (C(/sys/class/iommu), C(/sys/kernel/iommu_groups),
    the ACPI tables in C(/sys/firmware/acpi/tables), the irq chips in C(/proc/interrupts)), never from the
    kernel log.
seealso:
  - name: virt-host-validate
    description: libvirt's own host validation tool.
    link: https://libvirt.org/manpages/virt-host-validate.html
  - name: QEMU firmware descriptors
    description: The format of the files in C(/usr/share/qemu/firmware).
    link: https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/firmware.json
author:
  - Phyllome OS developers (@PhyllomeOS)
'''

EXAMPLES = r'''
- name: Report whether the host is ready
  phyllome.os.host_info:
  register: host_report

- name: Stop here when the host cannot run Phyllome VMs
  ansible.builtin.assert:
    that: host_report.verdict != 'fail'
    fail_msg: "{{ host_report.summary | join('; ') }}"

- name: Show only what is wrong
  ansible.builtin.debug:
    msg: "{{ host_report.checks | rejectattr('verdict', 'in', ['pass', 'skip']) | list }}"

- name: Audit a recorded tree of another machine, without asking this host's libvirt
  phyllome.os.host_info:
    root: /srv/audits/laptop-42
    libvirt: false

- name: Use the session daemon and a custom QEMU user
  phyllome.os.host_info:
    uri: qemu:///session
    qemu_user: builder
'''

RETURN = r'''
verdict:
  description: The overall verdict, the worst of the checks' (C(fail) over C(warn) over C(pass); C(skip) does not count).
  returned: always
  type: str
  sample: warn
summary:
  description: "One line per failed check, then one per warning, as C(<verdict> <name>: <reason>)."
  returned: always
  type: list
  elements: str
  sample:
    - "warn iommu: no IOMMU: the firmware provides VT-d (ACPI DMAR) but the kernel did not enable it. Add the kernel argument
      intel_iommu=on (Phyllome OS hosts use intel_iommu=on iommu=pt) with phyllome.os.kernel_cmdline, then reboot."
checks:
  description: Every check, in a fixed order (cpu, kvm_modules, kvm_device, nested, iommu, hugepages, libvirt, firmware, swtpm).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The check's name.
      type: str
      sample: kvm_device
    verdict:
      description: C(pass), C(warn), C(fail), or C(skip) when the check could not be evaluated.
      type: str
      sample: pass
    reason:
      description: What was found, and what to do about it, in words.
      type: str
      sample: /dev/kvm (10:232) is crw-rw-rw- root:kvm, usable by the qemu user qemu
    facts:
      description: The raw facts the verdict rests on (a subset of RV(host)).
      type: dict
host:
  description: Everything read from the host.
  returned: always
  type: dict
  contains:
    root:
      description: The root the files were read below.
      type: str
      sample: /
    cpu:
      description: The CPU, from C(/proc/cpuinfo).
      type: dict
      contains:
        vendor:
          description: C(vendor_id), e.g. C(GenuineIntel) or C(AuthenticAMD).
          type: str
        model_name:
          description: C(model name).
          type: str
        family:
          description: C(cpu family).
          type: int
        model:
          description: C(model).
          type: int
        stepping:
          description: C(stepping).
          type: int
        logical_cpus:
          description: Number of C(processor) entries.
          type: int
        virtualization_flags:
          description: The virtualization flags present, C(vmx) (Intel VT-x) and/or C(svm) (AMD-V).
          type: list
          elements: str
        hypervisor:
          description: The C(hypervisor) flag is set, so this host is itself a virtual machine.
          type: bool
    kvm:
      description: KVM's device node, modules and nested setting.
      type: dict
      contains:
        device:
          description:
            - C(/dev/kvm) - C(present), C(char_device), C(major), C(minor), C(mode) (octal), C(permissions)
              (as C(ls -l) shows them), C(uid), C(gid), C(owner), C(group) (names from the tree's
              C(/etc/passwd) and C(/etc/group)), and C(usable_by_qemu_user) (null when the user is unknown).
          type: dict
        qemu_user:
          description:
            - The user QEMU runs as - C(name), C(found), C(source) (C(option), C(/etc/libvirt/qemu.conf) or
              C(default)), C(uid), C(gid), C(gids) and C(groups) (what libvirt checks access with), or
              C(candidates) when none was found.
          type: dict
        modules:
          description: Loaded modules named C(kvm) or C(kvm_*) (from C(/sys/module)).
          type: list
          elements: str
        vendor_module:
          description: The KVM module of this CPU's vendor, C(kvm_intel) or C(kvm_amd).
          type: str
        nested:
          description: C(module), C(value) (of its C(nested) parameter, e.g. C(Y), C(N), C(1), C(0)) and C(enabled).
          type: dict
    iommu:
      description: The IOMMU.
      type: dict
      contains:
        active:
          description: DMA remapping is on, the kernel formed IOMMU groups.
          type: bool
        kind:
          description: V(intel) (VT-d, DMAR), V(amd) (AMD-Vi), V(virtio) (virtio-iommu), V(other) or V(none).
          type: str
        label:
          description: The kind in words.
          type: str
          sample: Intel VT-d (DMAR)
        units:
          description:
            - The units in C(/sys/class/iommu) - C(name), C(kind), C(devices) (how many devices it translates
              for); Intel units add C(version), C(address), C(cap), C(ecap) and C(interrupt_remapping_capable),
              AMD units C(cap) and C(features).
          type: list
          elements: dict
        group_count:
          description: Number of IOMMU groups in C(/sys/kernel/iommu_groups).
          type: int
        firmware_table:
          description: C(DMAR) or C(IVRS) when the firmware's ACPI tables announce an IOMMU (enabled in the firmware setup), else null.
          type: str
        interrupt_remapping:
          description: Interrupt remapping is on (irq chips named C(IR-*) in C(/proc/interrupts)); null when unknown.
          type: bool
        passthrough:
          description: The kernel command line asks for passthrough mode (C(iommu=pt)).
          type: bool
        kernel_args:
          description: The IOMMU- and VFIO-related arguments of the kernel command line.
          type: list
          elements: str
    cmdline:
      description: The running kernel's command line.
      type: dict
      contains:
        raw:
          description: C(/proc/cmdline) as it is.
          type: str
        args:
          description: The kernel's own arguments, split as the kernel splits them and as written (those after a bare C(--) go to init and are left out).
          type: list
          elements: str
    hugepages:
      description:
        - From C(/proc/meminfo) and C(/sys/kernel/mm) - C(readable), C(default_size_kb), C(total), C(free),
          C(reserved), C(surplus), C(sizes) (per page size - C(size_kb), C(total), C(free)), C(requested) (what
          the command line asks for - C(size_kb), C(count)) and C(transparent_hugepage) (the active setting).
      type: dict
    libvirt:
      description:
        - What libvirt at RV(host.libvirt.uri) answered - C(checked), C(uri), C(reachable), C(error),
          C(missing_library), C(driver) (C(QEMU) for qemu:// URIs), C(libvirt_version), C(hypervisor_version)
          (QEMU's), C(host_arch), C(arch), C(domain_types) (e.g. C(kvm), C(qemu)), C(emulator), C(machine)
          and C(machine_offered).
      type: dict
      contains:
        uri:
          description: The URI asked.
          type: str
    firmware:
      description: The firmware descriptors QEMU would use.
      type: dict
      contains:
        descriptors:
          description:
            - One per descriptor file, in precedence order - C(name), C(path), C(description),
              C(interface_types), C(device), C(mode), C(executable), C(executable_present), C(format),
              C(nvram_template), C(targets), C(features), C(secure_boot), C(enrolled_keys), C(requires_smm)
              and C(x86_64_q35) (offered for x86_64 q35 guests); C(error) for an unreadable file.
          type: list
          elements: dict
    swtpm:
      description: The paths of C(swtpm) and C(swtpm_setup) on the system path, null when missing.
      type: dict
      sample: {swtpm: /usr/bin/swtpm, swtpm_setup: /usr/bin/swtpm_setup}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import PhyllomeError, fail_from_exception
from ansible_collections.phyllome.os.plugins.module_utils._common.hostfs import HostFS
from ansible_collections.phyllome.os.plugins.module_utils._host.report import build_report
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.connection import uri_argument_spec


def main():
    module = AnsibleModule(
        argument_spec=dict(
            uri_argument_spec(),
            root=dict(type='path', default='/'),
            libvirt=dict(type='bool'),
            qemu_user=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    fs = HostFS(params['root'])
    query_libvirt = fs.is_live if params['libvirt'] is None else params['libvirt']
    try:
        report = build_report(fs, params['uri'], query_libvirt, qemu_user=params['qemu_user'])
    except PhyllomeError as exc:
        fail_from_exception(module, exc)
    module.exit_json(changed=False, **report)


if __name__ == '__main__':
    main()
