#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: iommu_info
short_description: List IOMMU groups, their PCI and USB devices, and whether each group can be passed to a guest
version_added: 0.1.0
description:
  - Reads sysfs and procfs (never the kernel log) and reports whether an IOMMU is active and which one
    (Intel VT-d, AMD-Vi, virtio-iommu), whether it remaps interrupts, and the kernel arguments that
    concern it.
  - Lists every IOMMU group with its PCI devices (address, vendor and device IDs, subsystem IDs, class,
    names from the system's C(pci.ids), bound driver, reset methods, bridge, boot VGA, NUMA node).
  - Gives every group a passthrough verdict with its reasons and what to do about it.
    C(viable) means one endpoint that the host does not need. C(needs_whole_group) means several
    endpoints (functions of one card, or devices the platform does not isolate from each other) that
    must all go to the same guest. C(unsafe) means the group holds something the host needs now.
    C(no_endpoints) means the group holds only bridges.
  - A group is C(unsafe) when it holds the controller of a disk that carries C(/), C(/boot),
    C(/boot/efi), C(/usr) or C(/var) (through partitions, LVM, LUKS and MD RAID), the NIC of an IPv4 or
    IPv6 default route (through bridges, bonds and VLANs), the boot VGA when the host has no other
    display, a host bridge, or the ISA/LPC bridge.
  - Lists USB controllers with the USB devices behind them, so that the controller carrying a given
    device (a Bluetooth dongle, say) can be found before the whole controller is passed.
  - Changes nothing on the host.
options:
  root:
    description:
      - Root of the file system to read C(/proc), C(/sys) and C(/usr/share/hwdata) from.
      - C(/) reads the live host. A directory holding a recorded tree (its C(proc/), C(sys/) and
        C(usr/share/) copied from a host, symlinks kept) gives an offline audit of that host, and is
        how tests feed the module recorded machines.
    type: path
    default: /
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - phyllome.os.read_only
attributes:
  platform:
    support: full
    platforms: linux
    details: Reads Linux's sysfs and procfs (of the running host, or of a tree below O(root)).
notes:
  - The module never suggests the ACS override patch (C(pcie_acs_override)). It splits groups by
    pretending that the hardware isolates devices it does not isolate, so that a guest can reach, by
    DMA, the devices that share its group. Moving the card to another slot, or passing the whole group,
    keeps that isolation real.
  - A device the host uses now but could let go of (a disk mounted somewhere else than the system
    mount points, active swap, a NIC that carries routes other than the default one) is reported in
    C(in_use) and in the group's C(notes); it does not make the group unsafe.
  - Names come from C(/usr/share/hwdata/pci.ids) (Fedora), C(/usr/share/misc/pci.ids) (Debian) or
    C(/usr/share/pci.ids), and from the matching C(usb.ids); without those files the names are null.
    Only the vendors present on the host are looked up, so a run stays fast.
author:
  - Phyllome OS developers (@PhyllomeOS)
'''

EXAMPLES = r'''
- name: Read the IOMMU groups of the host
  phyllome.os.iommu_info:
  register: iommu

- name: Stop when the IOMMU is off
  ansible.builtin.assert:
    that: iommu.iommu.active
    fail_msg: "{{ iommu.advice | join(' ') }}"

- name: Show the groups a device can be taken from
  ansible.builtin.debug:
    msg: "group {{ item.group }} ({{ item.verdict }}): {{ item.endpoints | join(', ') }}"
  loop: "{{ iommu.groups | selectattr('verdict', 'in', ['viable', 'needs_whole_group']) }}"
  loop_control:
    label: "{{ item.group }}"

- name: Find the USB controllers that carry a Bluetooth radio
  ansible.builtin.set_fact:
    bluetooth_controllers: "{{ bluetooth_controllers | default([]) + [item.0.address] }}"
  loop: "{{ iommu.usb_controllers | subelements('devices') }}"
  loop_control:
    label: "{{ item.1.name }}"
  when: "'bluetooth' in item.1.classes"

- name: Verdict of the group of a given GPU
  ansible.builtin.debug:
    msg: >-
      {{ (iommu.groups | selectattr('group', 'eq', iommu.pci_devices['0000:01:00.0'].iommu_group)
          | first).reasons | map(attribute='message') | list }}

- name: Audit a host from a recorded copy of its /proc and /sys
  phyllome.os.iommu_info:
    root: /srv/audits/host42
  delegate_to: localhost
'''

RETURN = r'''
iommu:
  description: The IOMMU as the running kernel uses it.
  returned: always
  type: dict
  contains:
    active:
      description: The kernel formed IOMMU groups, so devices are isolated and can be passed.
      type: bool
      sample: true
    kind:
      description: The kind of the first IOMMU unit (V(intel), V(amd), V(virtio), V(other), V(none)).
      type: str
      sample: intel
    label:
      description: The kind in words.
      type: str
      sample: Intel VT-d (DMAR)
    units:
      description: The units registered in C(/sys/class/iommu), with their register values where sysfs shows them.
      type: list
      elements: dict
      sample: [{name: dmar0, kind: intel, devices: 12, interrupt_remapping_capable: true}]
    group_count:
      description: Number of IOMMU groups.
      type: int
      sample: 20
    firmware_table:
      description: The ACPI table announcing an IOMMU (C(DMAR), C(IVRS)), null when the firmware announces none.
      type: str
      sample: DMAR
    interrupt_remapping:
      description: Interrupts are remapped (null when C(/proc/interrupts) does not tell).
      type: bool
      sample: true
    passthrough:
      description: The kernel command line asks for IOMMU passthrough mode (C(iommu=pt)).
      type: bool
      sample: true
    kernel_args:
      description: The arguments of the running kernel's command line that concern the IOMMU and VFIO.
      type: list
      elements: str
      sample: [intel_iommu=on, iommu=pt]
groups:
  description: Every IOMMU group, sorted by number. Empty when the IOMMU is not active.
  returned: always
  type: list
  elements: dict
  contains:
    group:
      description: The group number (C(/sys/kernel/iommu_groups/<group>)).
      type: int
      sample: 14
    type:
      description: The group's DMA domain type (C(DMA), C(DMA-FQ), C(identity) under C(iommu=pt)).
      type: str
      sample: DMA-FQ
    devices:
      description: The group's PCI devices, each as in RV(pci_devices).
      type: list
      elements: dict
    endpoints:
      description: Addresses of the devices that would go to a guest (all but PCI-to-PCI bridges).
      type: list
      elements: str
      sample: ['0000:01:00.0', '0000:01:00.1']
    bridges:
      description: Addresses of the PCI-to-PCI bridges, which stay with the host.
      type: list
      elements: str
      sample: ['0000:00:01.0']
    verdict:
      description: C(viable), C(needs_whole_group), C(unsafe) or C(no_endpoints).
      type: str
      sample: needs_whole_group
    reasons:
      description:
        - Why the group got its verdict, one entry per cause.
        - C(code) is one of C(single_endpoint), C(multifunction), C(shared_group), C(only_bridges), or, for
          C(unsafe), C(boot_disk), C(default_route_nic), C(boot_vga), C(host_bridge), C(isa_bridge).
        - C(devices) lists the addresses concerned; C(message) says it in words.
      type: list
      elements: dict
      sample: [{code: multifunction, devices: ['0000:01:00.0', '0000:01:00.1'],
                message: '01:00.0, 01:00.1 are functions of one device (slot 01:00)'}]
    notes:
      description:
        - Facts that do not change the verdict, shaped like RV(groups[].reasons).
        - C(in_use) (the host uses the device now), C(boot_vga) (the boot VGA, while another display
          remains), C(no_reset) (no reset method), C(vfio_bound) (bound to vfio-pci already).
      type: list
      elements: dict
    advice:
      description: What the user can do, in words.
      type: list
      elements: str
      sample: ['Pass 01:00.0, 01:00.1 together, to the same guest (phyllome.os.pci_passthrough with whole_group).']
pci_devices:
  description:
    - Every PCI device of the host, also when the IOMMU is off, keyed by address. Each value is a dict
      with the keys below.
  returned: always
  type: dict
  contains:
    address:
      description: The PCI address, domain:bus:slot.function.
      type: str
      sample: '0000:01:00.0'
    slot:
      description: domain:bus:slot, shared by the functions of one device.
      type: str
      sample: '0000:01:00'
    parent:
      description: The address of the upstream bridge (a root port, a switch port), null on a root bus.
      type: str
      sample: '0000:00:01.0'
    vendor:
      description: Vendor ID, as sysfs prints it.
      type: str
      sample: '0x10de'
    device:
      description: Device ID, as sysfs prints it.
      type: str
      sample: '0x2520'
    vendor_device:
      description: C(vendor:device) without C(0x), as C(lspci -n) and C(vfio-pci.ids) spell it.
      type: str
      sample: '10de:2520'
    subsystem_vendor:
      description: Subsystem vendor ID (the board maker).
      type: str
      sample: '0x1043'
    subsystem_device:
      description: Subsystem device ID.
      type: str
      sample: '0x1e21'
    class:
      description: Class, subclass and programming interface, as sysfs prints them.
      type: str
      sample: '0x030000'
    revision:
      description: Revision ID.
      type: str
      sample: '0xa1'
    vendor_name:
      description: The vendor's name from C(pci.ids), null when absent.
      type: str
      sample: NVIDIA Corporation
    device_name:
      description: The device's name from C(pci.ids), null when absent.
      type: str
      sample: GA104M [GeForce RTX 3070 Mobile / Max-Q]
    subsystem_vendor_name:
      description: The subsystem vendor's name from C(pci.ids), null when absent.
      type: str
      sample: ASUSTeK Computer Inc.
    subsystem_name:
      description: The subsystem's own entry in C(pci.ids), null when it has none.
      type: str
    class_name:
      description: The subclass (or class) name from C(pci.ids), as C(lspci) shows it.
      type: str
      sample: VGA compatible controller
    driver:
      description: The driver bound now, null when none is.
      type: str
      sample: nvidia
    driver_override:
      description: The driver this device is reserved for (C(driver_override)), null when unset.
      type: str
      sample: vfio-pci
    iommu_group:
      description: The device's IOMMU group, null when it has none (IOMMU off, or a device the IOMMU does not cover).
      type: int
      sample: 1
    numa_node:
      description: The NUMA node of the device, null when the platform does not say.
      type: int
      sample: 0
    bridge:
      description: The device is a PCI-to-PCI (or CardBus) bridge.
      type: bool
      sample: false
    boot_vga:
      description: The firmware initialised this device as the boot display.
      type: bool
      sample: false
    reset_methods:
      description:
        - The reset methods the kernel will use, in order (C(flr), C(pm), C(bus), C(device_specific), ...).
        - An empty list means the device cannot be reset; null means the kernel (older than 5.15) does not say which.
      type: list
      elements: str
      sample: [flr, bus]
    flr:
      description:
        - The config space advertises Function Level Reset. Null when the config space is not readable
          (the module runs unprivileged).
        - The kernel may still refuse it for a known-broken device; RV(pci_devices.reset_methods) is
          what it will use.
      type: bool
      sample: true
    in_use:
      description: What the host uses the device for now (mounted file systems, swap, routes), in words.
      type: list
      elements: str
      sample: ['nvme0n1p3 (btrfs) is mounted at /, /home']
usb_controllers:
  description: USB controllers (PCI class C(0x0c03), and any PCI device a USB bus hangs off) with the devices behind them.
  returned: always
  type: list
  elements: dict
  contains:
    address:
      description: The controller's PCI address.
      type: str
      sample: '0000:0a:00.3'
    type:
      description: C(UHCI), C(OHCI), C(EHCI), C(xHCI) or C(USB4) (null for other devices).
      type: str
      sample: xHCI
    driver:
      description: The controller's driver.
      type: str
      sample: xhci_hcd
    iommu_group:
      description: The controller's IOMMU group.
      type: int
      sample: 11
    verdict:
      description: The verdict of that group (see RV(groups[].verdict)), null without a group.
      type: str
      sample: needs_whole_group
    buses:
      description: The USB bus numbers of the controller (an xHCI has one for USB 2 and one for USB 3).
      type: list
      elements: int
      sample: [3, 4]
    devices:
      description: The USB devices behind the controller, hubs included, root hubs not.
      type: list
      elements: dict
      contains:
        name:
          description: The kernel's name of the device, bus-port path (C(3-2), C(1-14.1)).
          type: str
          sample: 3-2
        busnum:
          description: The USB bus number.
          type: int
          sample: 3
        devnum:
          description: The device number on the bus.
          type: int
          sample: 2
        idVendor:
          description: The USB vendor ID.
          type: str
          sample: 0b05
        idProduct:
          description: The USB product ID.
          type: str
          sample: 190e
        vendor_device:
          description: C(idVendor:idProduct), as C(lsusb) spells it.
          type: str
          sample: 0b05:190e
        manufacturer:
          description: The manufacturer string the device reports, null when it has none.
          type: str
          sample: Realtek
        product:
          description: The product string the device reports, null when it has none.
          type: str
          sample: Bluetooth Radio
        vendor_name:
          description: The vendor's name from C(usb.ids), null when absent.
          type: str
          sample: ASUSTek Computer, Inc.
        product_name:
          description: The product's name from C(usb.ids), null when absent.
          type: str
          sample: USB-BT500
        speed:
          description: The link speed in Mbit/s, as sysfs prints it.
          type: str
          sample: '12'
        version:
          description: The USB version the device reports.
          type: str
          sample: '2.00'
        classes:
          description:
            - The device's and its interfaces' USB classes in words (C(audio), C(hid), C(hub), C(mass_storage),
              C(video), C(wireless_controller), ...), plus C(bluetooth) for a Bluetooth radio.
          type: list
          elements: str
          sample: [wireless_controller, bluetooth]
        hub:
          description: The device is a USB hub.
          type: bool
          sample: false
        drivers:
          description: The drivers bound to the device's interfaces.
          type: list
          elements: str
          sample: [btusb]
advice:
  description:
    - What stops passthrough on this host as a whole (IOMMU off, interrupt remapping off), then what to change, one
      sentence an item; empty when nothing does.
    - The same words as the reason of the C(iommu) check of M(phyllome.os.host_info).
  returned: always
  type: list
  elements: str
  sample:
    - 'No IOMMU: the firmware provides VT-d (ACPI DMAR) but the kernel did not enable it.'
    - 'Add the kernel argument intel_iommu=on (Phyllome OS hosts use intel_iommu=on iommu=pt) with phyllome.os.kernel_cmdline, then reboot.'
pci_ids:
  description: The C(pci.ids) file the names came from, null when the host has none.
  returned: always
  type: str
  sample: /usr/share/hwdata/pci.ids
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import PhyllomeError, fail_from_exception
from ansible_collections.phyllome.os.plugins.module_utils._common.hostfs import HostFS
from ansible_collections.phyllome.os.plugins.module_utils._host.iommu_groups import gather


def main():
    module = AnsibleModule(
        argument_spec=dict(root=dict(type='path', default='/')),
        supports_check_mode=True,
    )
    try:
        result = gather(HostFS(module.params['root']))
    except PhyllomeError as exc:
        fail_from_exception(module, exc)
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
