#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: pci_passthrough
short_description: Give PCI devices to vfio-pci for passthrough, now and at boot, or back to the host
version_added: 0.1.0
description:
  - Binds the PCI devices named by address to C(vfio-pci), so that a guest can be given them as
    C(<hostdev>), or gives them back to their host drivers (O(state)).
  - Devices are chosen by PCI address, never by vendor:device ID alone (O(ids) only filters the addresses
    given), so that an identical card at another address keeps its driver.
  - Safe by default. All endpoints of an IOMMU group go together (select them all, or use
    O(whole_group)); a group that M(phyllome.os.iommu_info) calls C(unsafe) (it holds the boot disk's
    controller, the NIC of the default route, the boot display, a host bridge) is refused unless
    O(force=true), and the error names the devices; a device the host uses now (a mounted file system, a
    route, active swap) is refused even with O(force). Bridges always stay with the host.
  - Now (O(runtime)), through the kernel's C(driver_override) of each device (set, unbind, probe), so a
    rescan or hotplug does not hand it back; giving it back clears the override and probes its host
    driver.
  - At boot (O(persistent)), with a claim per device; see O(method). Files are written atomically; if
    the initramfs regeneration fails, they are put back and the images rebuilt.
options:
  devices:
    description:
      - PCI addresses of the devices, as C(0000:03:00.0) or C(03:00.0) (domain 0000).
    type: list
    elements: str
    required: true
  ids:
    description:
      - Vendor:device IDs (C(10de:2520)) that filter O(devices); the task fails when none of them matches.
      - IDs never select devices by themselves.
    type: list
    elements: str
    default: []
  whole_group:
    description:
      - Also take every other endpoint of the IOMMU groups of O(devices) (for example the HDMI audio
        function of a GPU).
    type: bool
    default: false
  state:
    description:
      - V(vfio) binds the devices to C(vfio-pci).
      - V(host) gives them back to their host drivers and, with O(persistent), removes their boot claims,
        whichever O(method) made them. A V(driverctl) override to another driver than C(vfio-pci) is
        kept.
    type: str
    choices: [vfio, host]
    default: vfio
  force:
    description:
      - Pass a group that M(phyllome.os.iommu_info) calls C(unsafe) anyway. A device in use now is
        still refused.
    type: bool
    default: false
  runtime:
    description:
      - Change the running system now (load C(vfio-pci), set C(driver_override), unbind, probe).
      - V(false) only writes the boot configuration (with O(persistent)), for a device whose host driver
        cannot let go of it safely now (a GPU under C(amdgpu)); RV(reboot_required) then says whether a
        reboot is needed.
    type: bool
    default: true
  persistent:
    description:
      - Also claim the devices at boot (or, with O(state=host), remove the claim), so that C(vfio-pci)
        takes them after a reboot.
    type: bool
    default: false
  method:
    description:
      - How the boot claim is made, with O(persistent). V(auto) is V(driverctl) when driverctl is
        installed, else V(modprobe).
      - V(driverctl) writes C(/etc/driverctl.d/pci-ADDRESS) (what C(driverctl set-override) saves).
        driverctl's udev rule applies it when the device appears in the booted system, after the
        initramfs, so the host driver may take the device first and is then unbound from it. The module
        writes the file itself because C(driverctl set-override) always unbinds and rebinds the device,
        which blocks while a guest uses it.
      - >-
        V(modprobe) writes C(/etc/modprobe.d/phyllome-vfio.conf) with an C(install vfio-pci) command
        that sets C(driver_override) of every claimed address (unbinding a built-in driver that took one)
        before C(vfio-pci) binds them, and C(softdep MODULE pre: vfio-pci) for every module whose PCI
        aliases (C(modules.alias) of the installed kernels) match a claimed device, so that C(vfio-pci)
        loads before it. The claim goes into the initramfs. With dracut (Fedora),
        C(/etc/dracut.conf.d/phyllome-vfio.conf) adds C(vfio_pci) and the file, and the kernel argument
        C(rd.driver.pre=vfio-pci) loads C(vfio-pci) before udev (see O(kernel_args)). With initramfs-tools
        (Debian), the hook C(/etc/initramfs-tools/hooks/phyllome-vfio) force-loads C(vfio_pci) (and
        mkinitramfs copies C(/etc/modprobe.d)). The initramfs is regenerated (C(dracut --regenerate-all
        --force) or C(update-initramfs -u -k all)) only when one of these files changes or an image is
        older than them.
      - V(modprobe) is refused where it cannot work, before anything changes. On a kernel with C(vfio-pci)
        built in there is no module load to hook. An rpm-ostree host does not build its initramfs itself.
    type: str
    choices: [auto, driverctl, modprobe]
    default: auto
  kernel_args:
    description:
      - With O(persistent) and O(state=vfio), make the kernel command line carry what the claim needs, through
        the code of M(phyllome.os.kernel_cmdline). That is C(rd.driver.pre=vfio-pci) with O(method=modprobe)
        on dracut hosts. dracut then loads C(vfio-pci) before udev starts, so it claims its devices before
        any host module loads, and takes back those that a built-in driver bound at power-on. Without it,
        C(vfio-pci) loads when the host module of a claimed device does (C(softdep)). Nothing on
        initramfs-tools hosts, where the hook loads it.
      - Arguments are never removed when devices are given back (other claims or tasks may rely on them);
        remove them with M(phyllome.os.kernel_cmdline).
    type: bool
    default: true
  iommu_args:
    description:
      - With O(persistent), also make the command line carry C(intel_iommu=on) (on Intel VT-d hosts; many
        kernels leave it off by default) and C(iommu=pt), the IOMMU arguments of a Phyllome OS host.
      - The IOMMU must already be on for devices to be claimed (they need an IOMMU group); this keeps it on.
    type: bool
    default: false
  root:
    description:
      - Root of the system to read and change. C(/) is the running host.
      - Another directory (a recorded host tree with C(sys/), C(proc/) and C(etc/)) is for tests and
        offline audits. Commands run in it with C(chroot). Binding devices needs the running kernel, so
        there it works in check mode or with O(runtime=false) only.
    type: path
    default: /
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads sysfs and files and runs read-only commands (C(grubby --info), C(rpm-ostree kargs)); binds nothing, writes nothing, regenerates nothing.
  diff_mode:
    support: full
    details: The drivers of the devices before and after, each file written or removed, and the kernel command lines changed.
  platform:
    support: full
    platforms: linux
    details: A Linux host with an IOMMU and the vfio-pci driver; boot-time claims also below O(root).
notes:
  - The module never reboots. Reboot with M(ansible.builtin.reboot) when RV(reboot_required) is true.
  - A domain can also let libvirt detach a device when it starts (C(<hostdev managed='yes'>)); this module is
    for devices that must never reach their host driver (a GPU the host would display on) or that should
    stay ready for VFIO between guests.
  - Hosts with C(vfio-pci) built into the kernel (Ubuntu) need O(method=driverctl).
seealso:
  - module: phyllome.os.iommu_info
  - module: phyllome.os.kernel_cmdline
  - module: ansible.builtin.reboot
  - name: VFIO in the kernel documentation
    description: How vfio-pci, IOMMU groups and driver_override fit together.
    link: https://docs.kernel.org/driver-api/vfio.html
author:
  - Phyllome OS developers (@PhyllomeOS)
'''

EXAMPLES = r'''
- name: Give the GPU and its HDMI audio function to vfio-pci, now and at every boot
  phyllome.os.pci_passthrough:
    devices:
      - 0000:0b:00.0
    whole_group: true
    persistent: true
  register: gpu

- name: Reboot when the running system is not yet what the next boot gives
  ansible.builtin.reboot:
  when: gpu.reboot_required

- name: Pass the USB controller that carries the Bluetooth dongle, only if it is the expected one
  phyllome.os.pci_passthrough:
    devices:
      - 0000:0a:00.3
    ids:
      - 1022:149c
    whole_group: true

- name: Claim a GPU that amdgpu must never touch, for the next boot only, with the Phyllome OS IOMMU arguments
  phyllome.os.pci_passthrough:
    devices:
      - 0000:03:00.0
      - 0000:03:00.1
    runtime: false
    persistent: true
    method: modprobe
    iommu_args: true

- name: Give the spare NIC back to the host, now and at boot
  phyllome.os.pci_passthrough:
    devices:
      - 0000:32:00.1
    state: host
    persistent: true

- name: Show what passing a whole group would do, without doing it
  phyllome.os.pci_passthrough:
    devices:
      - 0000:0a:00.3
    whole_group: true
    persistent: true
  check_mode: true
  diff: true
'''

RETURN = r'''
devices:
  description: The addresses the task acted on (after O(ids) filtering and O(whole_group)), sorted.
  returned: always
  type: list
  elements: str
  sample: ['0000:0b:00.0', '0000:0b:00.1']
previous_drivers:
  description: The driver of each device before the task (null when unbound).
  returned: always
  type: dict
  sample: {'0000:0b:00.0': amdgpu, '0000:0b:00.1': snd_hda_intel}
drivers:
  description:
    - The driver of each device after the task (predicted in check mode; with O(runtime=false), the driver now).
    - After O(state=host), null when the host driver is not loaded or was not predictable in check mode.
  returned: always
  type: dict
  sample: {'0000:0b:00.0': vfio-pci, '0000:0b:00.1': vfio-pci}
method:
  description: The boot claim method used (V(driverctl) or V(modprobe)); null without O(persistent).
  returned: always
  type: str
  sample: modprobe
initramfs:
  description: The initramfs generator whose configuration the task managed (C(dracut) or C(initramfs-tools)), or null.
  returned: always
  type: str
  sample: dracut
boot_claims:
  description: Every address C(vfio-pci) claims at boot after the task (by either method); null without O(persistent).
  returned: always
  type: list
  elements: str
  sample: ['0000:0b:00.0', '0000:0b:00.1']
files:
  description: The files the task wrote or removed (would, in check mode).
  returned: always
  type: list
  elements: str
  sample: [/etc/modprobe.d/phyllome-vfio.conf, /etc/dracut.conf.d/phyllome-vfio.conf]
kernel_cmdline:
  description:
    - What the kernel command line change did (the return values of M(phyllome.os.kernel_cmdline), without diff),
      or null when the task needed no argument.
  returned: always
  type: dict
  contains:
    backend:
      description: The boot loader backend.
      type: str
      sample: grubby
    cmdline_before:
      description: The configured command line of the default boot entry before the task.
      type: str
    cmdline_after:
      description: The same after the task.
      type: str
    cmdline_running:
      description: The running kernel's command line.
      type: str
    pending_arguments:
      description: The managed names whose configured values differ from the running ones.
      type: list
      elements: str
      sample: [rd.driver.pre]
    reboot_required:
      description: The command line needs a reboot to be in force.
      type: bool
    targets:
      description: What holds a command line, with what changed (see M(phyllome.os.kernel_cmdline)).
      type: list
      elements: dict
    backup_files:
      description: Backups of the boot loader files changed.
      type: list
      elements: str
reboot_required:
  description:
    - True when the running system differs from what the next boot gives, for what the task manages. That is
      a device not yet where its boot claim puts it (O(runtime=false)), or a kernel argument configured but
      not running.
  returned: always
  type: bool
  sample: false
actions:
  description: Every change made (or, in check mode, that would be made), in order, commands included.
  returned: always
  type: list
  elements: str
  sample:
    - load the vfio-pci module
    - set driver_override of 0000:0b:00.0 to vfio-pci
    - unbind 0000:0b:00.0 from amdgpu
    - probe 0000:0b:00.0 (binds vfio-pci)
    - write /etc/modprobe.d/phyllome-vfio.conf
    - write /etc/dracut.conf.d/phyllome-vfio.conf
    - 'regenerate the initramfs: /usr/bin/dracut --regenerate-all --force'
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.phyllome.os.plugins.module_utils._common.actions import ActionRecorder
from ansible_collections.phyllome.os.plugins.module_utils._common.hostfs import HostFS
from ansible_collections.phyllome.os.plugins.module_utils._common.module_glue import run_and_exit
from ansible_collections.phyllome.os.plugins.module_utils._passthrough.claims import METHODS, ClaimContext
from ansible_collections.phyllome.os.plugins.module_utils._passthrough.selection import STATES
from ansible_collections.phyllome.os.plugins.module_utils._passthrough.vfio import ensure


def main():
    module = AnsibleModule(
        argument_spec=dict(
            devices=dict(type='list', elements='str', required=True),
            ids=dict(type='list', elements='str', default=[]),
            whole_group=dict(type='bool', default=False),
            state=dict(type='str', default='vfio', choices=list(STATES)),
            force=dict(type='bool', default=False),
            runtime=dict(type='bool', default=True),
            persistent=dict(type='bool', default=False),
            method=dict(type='str', default='auto', choices=['auto'] + list(METHODS)),
            kernel_args=dict(type='bool', default=True),
            iommu_args=dict(type='bool', default=False),
            root=dict(type='path', default='/'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    recorder = ActionRecorder(check_mode=module.check_mode, run_command=module.run_command)
    context = ClaimContext(HostFS(params['root']), recorder, atomic_move=module.atomic_move)
    run_and_exit(
        module, recorder, ensure,
        context, params['devices'], ids=params['ids'], whole_group=params['whole_group'], state=params['state'],
        force=params['force'], runtime=params['runtime'], persistent=params['persistent'], method=params['method'],
        kernel_args=params['kernel_args'], iommu_args=params['iommu_args'])


if __name__ == '__main__':
    main()
