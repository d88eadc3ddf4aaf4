#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: kernel_cmdline
short_description: Kernel boot arguments on every boot loader a Phyllome host can have
version_added: 0.1.0
description:
  - Makes the configured kernel command line carry the arguments in O(present) and not those in
    O(absent), through the tool that owns it on the host (see O(backend)), and tells whether a reboot is
    needed for the running kernel to have them.
  - Arguments are parsed as the kernel parses them. Spaces separate arguments except inside double
    quotes (C(name="value with spaces")), C(--) ends the kernel's arguments (what follows goes to init
    and is never touched), and in names C(-) and C(_) are the same character, as for the kernel
    (C(vfio-pci.ids) and C(vfio_pci.ids) are one argument). Values are compared exactly, quotes removed.
  - Arguments the task does not name are kept as they are, in order.
  - Files are written through a temporary file and a rename (keeping owner, mode and SELinux context),
    with a backup. Every file a step may change is saved first; if the regeneration command fails, or
    leaves the entries other than predicted, the files are put back and the task fails with the
    command's output. Nothing is left half applied.
options:
  present:
    description:
      - Arguments the command line must carry, each as C(name) or C(name=value); one argument per item
        (quote a value with spaces as C(name="a b")).
      - For a single-valued argument, C(name=value) leaves exactly one occurrence with that value (a
        different value is replaced where it is, duplicates are removed).
      - For a repeatable argument (see O(repeatable)), C(name=value) adds the value when it is missing and
        keeps the others.
      - C(name) alone means the bare flag C(name) (and replaces a valued C(name=...) of a single-valued
        argument).
    type: list
    elements: str
    default: []
  absent:
    description:
      - Arguments the command line must not carry. C(name) removes every occurrence whatever its value;
        C(name=value) removes only the occurrences with that value.
      - An argument both present and absent is an error, as are two values for a single-valued name.
    type: list
    elements: str
    default: []
  repeatable:
    description:
      - Names that may appear several times, in addition to the built-in ones (C(console), C(memmap),
        C(modprobe.blacklist), C(ip), C(nameserver), C(rd.driver.pre), C(rd.driver.post),
        C(rd.driver.blacklist), C(rd.luks.uuid), C(rd.luks.name), C(rd.lvm.lv), C(rd.lvm.vg),
        C(rd.md.uuid), C(rd.route), C(systemd.mount-extra), C(systemd.swap-extra)).
      - C(hugepagesz)/C(hugepages) are positional pairs and single-valued by default; list both here to
        keep several page sizes, and give each pair in order.
    type: list
    elements: str
    default: []
  backend:
    description:
      - Where the command line lives. V(auto) picks the first that applies.
      - V(rpm-ostree) when C(/run/ostree-booted) exists. C(rpm-ostree kargs) shows the pending deployment's
        arguments, C(rpm-ostree kargs --delete=... --append=...) stages a new deployment in one transaction.
      - V(grubby) when grubby is installed and C(/boot/loader/entries) holds BLS entries without a
        systemd-boot C(loader.conf) (Fedora, RHEL). C(grubby --update-kernel=ALL|DEFAULT --remove-args
        --args) edits the entries (and C(kernelopts) in C(/boot/grub2/grubenv) where entries use it). With
        O(kernels=all) the module also edits C(GRUB_CMDLINE_LINUX) in C(/etc/default/grub) (which
        C(grub2-mkconfig) rebuilds entries from) and C(/etc/kernel/cmdline) when it exists (which
        kernel-install gives new kernels), so the arguments survive both; grubby runs with
        C(--no-etc-grub-update) (grubby 8.40-43 of May 2020 or later) because its own edit of that
        file does not follow these rules. The entries are read back afterwards and restored if grubby
        left them other than predicted.
      - V(kernel-install) when C(/etc/kernel/cmdline) exists or systemd-boot is installed. The file is
        edited (created from what kernel-install would use when missing), then
        C(kernel-install add VERSION IMAGE) rebuilds the entry (or UKI) of every installed kernel.
      - V(grub) when C(/etc/default/grub) exists (Debian, Ubuntu). The effective assignment of
        C(GRUB_CMDLINE_LINUX) or C(GRUB_CMDLINE_LINUX_DEFAULT) is edited (the last one grub-mkconfig
        reads, in C(/etc/default/grub) or C(/etc/default/grub.d/*.cfg)); new arguments go to
        C(GRUB_CMDLINE_LINUX), which recovery entries use too. Then C(update-grub), or C(grub-mkconfig -o)
        / C(grub2-mkconfig -o) the existing C(grub.cfg), runs; it also runs when C(grub.cfg) does not carry
        the managed arguments as configured (a hand edit that was never applied).
    type: str
    choices: [auto, rpm-ostree, grubby, kernel-install, grub]
    default: auto
  kernels:
    description:
      - V(all) changes the command line of every installed kernel and of kernels installed later.
      - V(default) changes only the default boot entry (C(grubby --update-kernel=DEFAULT)); other entries
        and kernels installed later keep theirs. Only the grubby backend has per-kernel command lines;
        V(rpm-ostree) always acts on the next (default) deployment, the other backends refuse V(default).
    type: str
    choices: [all, default]
    default: all
  backup:
    description:
      - Keep the previous version of every file changed (C(FILE.PID.DATE@TIME~), which no boot loader
        reads), including the entries and grubenv that grubby rewrites and C(grub.cfg).
      - The loader entries that kernel-install rebuilds are not copied (they may sit on a FAT ESP); like every
        file a step may change, they are restored if the step fails, whatever this option says.
    type: bool
    default: true
  root:
    description:
      - Root of the system to manage. C(/) is the running host.
      - Another directory (an image being built, a mounted system) is read and written below it, and
        commands run in it with C(chroot). Without a C(proc/cmdline) there, nothing is running, so
        RV(cmdline_running) is null and RV(reboot_required) false.
    type: path
    default: /
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads files and runs read-only commands (C(rpm-ostree kargs), C(grubby --info=DEFAULT)); writes no file and runs no command that changes anything.
  diff_mode:
    support: full
    details: Before and after of each file written and of each boot entry or deployment whose command line changes.
  platform:
    support: full
    platforms: linux
    details: A Linux host booted by GRUB, grubby, kernel-install (systemd-boot) or rpm-ostree, or a tree below O(root).
notes:
  - Values that the backend's tools would interpret are refused before anything changes. Always a
    newline, a control character or an unbalanced double quote. For V(grub) and V(grubby), the shell
    and GRUB script characters C($ ` \ ' ; & | < >). For V(grubby) and V(rpm-ostree), also spaces
    and quotes (they split on spaces) and, for V(grubby), C(* ? [ ] ^ + ( ) { }) (it matches
    arguments as regular expressions). For V(kernel-install), C($ ` \).
  - RV(reboot_required) compares, for the names in O(present) and O(absent) only, the configured
    command line of the default boot entry with the running one (C(/proc/cmdline)). A second run after
    the change but before the reboot still reports it; after the reboot it does not.
  - The module never reboots. Reboot with M(ansible.builtin.reboot) when RV(reboot_required) is true.
  - Persistent module settings (C(modules-load.d), C(modprobe.d) options) are the job of
    M(community.general.modprobe) (C(persistent=present)) and M(community.general.kernel_blacklist).
seealso:
  - module: ansible.builtin.reboot
  - module: community.general.modprobe
  - name: The kernel's command-line parameters
    description: Documentation of every kernel argument.
    link: https://docs.kernel.org/admin-guide/kernel-parameters.html
author:
  - Phyllome OS developers (@PhyllomeOS)
'''

EXAMPLES = r'''
- name: IOMMU in passthrough mode and vfio-pci loaded first (Intel host)
  phyllome.os.kernel_cmdline:
    present:
      - intel_iommu=on
      - iommu=pt
      - rd.driver.pre=vfio-pci
  register: kargs

- name: Reboot when the running kernel does not have them yet
  ansible.builtin.reboot:
  when: kargs.reboot_required

- name: Claim two devices for vfio-pci early, whatever the previous list was
  phyllome.os.kernel_cmdline:
    present:
      - vfio-pci.ids=10de:1b80,10de:10f0

- name: A serial console in addition to the screen; no boot splash
  phyllome.os.kernel_cmdline:
    present:
      - console=tty0
      - console=ttyS0,115200n8
    absent:
      - rhgb
      - quiet

- name: Drop one value of a repeatable argument, keep the others
  phyllome.os.kernel_cmdline:
    absent:
      - console=ttyS1

- name: Remove an argument whatever its value
  phyllome.os.kernel_cmdline:
    absent:
      - pcie_acs_override

- name: Try an argument on the default kernel only (Fedora, grubby)
  phyllome.os.kernel_cmdline:
    present:
      - i915.enable_gvt=1
    kernels: default

- name: 1 GiB and 2 MiB huge pages, as two ordered pairs
  phyllome.os.kernel_cmdline:
    present:
      - hugepagesz=1G
      - hugepages=16
      - hugepagesz=2M
      - hugepages=512
    repeatable:
      - hugepagesz
      - hugepages

- name: Show what would change, without changing it
  phyllome.os.kernel_cmdline:
    present:
      - amd_iommu=on
  check_mode: true
  diff: true
'''

RETURN = r'''
backend:
  description: The backend used (detected with O(backend=auto)).
  returned: always
  type: str
  sample: grubby
cmdline_before:
  description:
    - The configured command line of the default boot entry before the task (for V(grub), C(GRUB_CMDLINE_LINUX)
      followed by C(GRUB_CMDLINE_LINUX_DEFAULT); for V(kernel-install), C(/etc/kernel/cmdline); for
      V(rpm-ostree), the pending deployment's arguments).
  returned: always
  type: str
  sample: root=UUID=6b3f0c8e-2f4e-4f6b-9a51-0f3c1d2e4a77 ro rootflags=subvol=root rhgb quiet
cmdline_after:
  description: The same after the task (what it will be, in check mode).
  returned: always
  type: str
  sample: root=UUID=6b3f0c8e-2f4e-4f6b-9a51-0f3c1d2e4a77 ro rootflags=subvol=root rhgb quiet intel_iommu=on iommu=pt
cmdline_running:
  description: The running kernel's command line (C(/proc/cmdline)); null when there is none (an offline O(root)).
  returned: always
  type: str
  sample: BOOT_IMAGE=(hd0,gpt2)/vmlinuz-6.8.9-300.fc40.x86_64 root=UUID=6b3f0c8e-2f4e-4f6b-9a51-0f3c1d2e4a77 ro rhgb quiet
reboot_required:
  description:
    - True when, for the names in O(present) and O(absent), the configured command line differs from the running
      one, so a reboot is needed for the running kernel to match. Stays true on later runs until the reboot.
  returned: always
  type: bool
  sample: true
pending_arguments:
  description: The managed names whose configured values differ from the running ones.
  returned: always
  type: list
  elements: str
  sample: [intel_iommu, iommu]
targets:
  description: What holds a command line, with what changed.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: C(entry) (a BLS boot entry), C(kargs) (the rpm-ostree deployment) or C(file).
      type: str
      sample: entry
    name:
      description: The entry's file, the file written, or V(rpm-ostree).
      type: str
      sample: /boot/loader/entries/8f3e1c2a9b7d4e6f8a0b1c2d3e4f5a6b-6.8.9-300.fc40.x86_64.conf
    changed:
      description: Whether the task changes it.
      type: bool
      sample: true
    default:
      description: It is the default boot entry (entries and kargs only).
      type: bool
      sample: true
    title:
      description: The entry's title (entries only).
      type: str
      sample: Fedora Linux (6.8.9-300.fc40.x86_64) 40 (Workstation Edition)
    kernel:
      description: The entry's kernel image (entries only).
      type: str
      sample: /vmlinuz-6.8.9-300.fc40.x86_64
    cmdline_before:
      description: The entry's command line before, GRUB variables such as C($kernelopts) expanded (entries and kargs only).
      type: str
    cmdline_after:
      description: The entry's command line after (entries and kargs only).
      type: str
backup_files:
  description: The backups made, one per file changed.
  returned: always
  type: list
  elements: str
  sample: [/etc/default/grub.4242.2024-05-20@103107~]
actions:
  description: Every change made (or, in check mode, that would be made), in order, commands included.
  returned: always
  type: list
  elements: str
  sample: [write /etc/default/grub, back up /boot/grub/grub.cfg, /usr/sbin/update-grub]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.phyllome.os.plugins.module_utils._boot.bootloader import BACKENDS, KERNELS, open_bootloader
from ansible_collections.phyllome.os.plugins.module_utils._boot.context import BootContext
from ansible_collections.phyllome.os.plugins.module_utils._boot.kernel_args import KernelArgsRequest, ensure_kernel_args
from ansible_collections.phyllome.os.plugins.module_utils._common.actions import ActionRecorder
from ansible_collections.phyllome.os.plugins.module_utils._common.hostfs import HostFS
from ansible_collections.phyllome.os.plugins.module_utils._common.module_glue import run_and_exit


def main():
    module = AnsibleModule(
        argument_spec=dict(
            present=dict(type='list', elements='str', default=[]),
            absent=dict(type='list', elements='str', default=[]),
            repeatable=dict(type='list', elements='str', default=[]),
            backend=dict(type='str', default='auto', choices=['auto'] + list(BACKENDS)),
            kernels=dict(type='str', default='all', choices=list(KERNELS)),
            backup=dict(type='bool', default=True),
            root=dict(type='path', default='/'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    recorder = ActionRecorder(check_mode=module.check_mode, run_command=module.run_command)

    def converge():
        # Validate the request before looking at the host: a bad item fails the same everywhere.
        request = KernelArgsRequest(params['present'], params['absent'], params['repeatable'])
        context = BootContext(HostFS(params['root']), recorder, atomic_move=module.atomic_move, backup=params['backup'])
        return ensure_kernel_args(open_bootloader(context, params['backend'], params['kernels']), request=request)

    run_and_exit(module, recorder, converge)


if __name__ == '__main__':
    main()
