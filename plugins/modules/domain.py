#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: domain
short_description: Declarative, idempotent libvirt domains (VMs) on the Phyllome VM model
version_added: 0.1.0
description:
  - Defines, updates in place, starts, pauses, shuts down and removes a libvirt domain.
  - "Say what the VM is in one of two ways: O(model), the Phyllome VM model as plain options with defaults
    per guest OS family, or O(xml), a full or partial domain XML you already have."
  - Idempotence is semantic. The desired XML is compared with the domain's stored (inactive) definition;
    what libvirt fills in by itself (uuid, MAC addresses, PCI and drive addresses, aliases, the controllers
    and default devices it adds, the versioned machine type such as C(pc-q35-7.2) for C(q35), default
    attributes, memory written in another unit) never counts as a change. Devices are matched by what
    identifies them (a disk by its target, a NIC by its MAC or network, a hostdev by its host address), not by
    their order, and a device that is no longer wanted counts as a change.
  - "After each define, the module records in the domain's C(<metadata>) one element of its own namespace,
    C(<phyllome-intent:intent xmlns:phyllome-intent=\"https://github.com/PhyllomeOS/phyllome.os/domain-intent/1\">):
    a SHA-256 digest of what the task asked (C(request)), one of the definition libvirt stored right after
    that define (C(stored)), and the parts of the request libvirt did not keep (C(<ignored path=... attribute=...
    value=...>)). A later run whose request and stored definition match both digests changes nothing without
    comparing (a cheap second run); otherwise the comparison above decides, and a change made outside the module
    (C(virsh edit)) is reported as drift (C(... (drift: changed outside this module))) and undone. The element
    travels with the domain XML (C(virsh dumpxml), migration); it is never copied from an O(xml) into another
    domain. Graphics passwords are left out of both digests (a request with one is compared on every run), and
    never recorded."
  - "When libvirt does not store part of a definition as given (a setting this libvirt ignores, such as a
    C(<filterref>) on a hostdev NIC or a topology C(clusters) on an older libvirt), the task warns once, at the
    define where it happened, naming the libvirt version and the element and attribute paths
    (C(cpu/topology/@clusters)). The next runs do not report it as a change while they ask for the same value;
    check mode cannot know it in advance and does not warn."
  - "A domain the module did not define (no record) is compared as above; when it matches, nothing is written
    to it."
  - A change updates the domain in place with one C(virDomainDefineXML) call, keeping its uuid, MAC addresses,
    device addresses, UEFI variables (nvram) and TPM state.
  - "A running domain (O(apply=live), the default) takes at once what libvirt can change in a running guest,
    each in one call that changes the guest and the stored definition together: memory up to C(<memory>)
    (the balloon, C(virDomainSetMemoryFlags)), vCPUs up to C(<vcpu>) (C(virDomainSetVcpusFlags)), disks, NICs
    and USB and PCI hostdevs attached and detached (C(virDomainAttachDeviceFlags), C(virDomainDetachDeviceFlags)),
    a CD/DVD or floppy medium, a NIC's link state and bandwidth (C(virDomainUpdateDeviceFlags)). The rest of the
    change is stored with the define and waits for the next boot; RV(restart_required) says so until then, and
    O(apply=restart) restarts it. RV(differences) gives each difference its class (V(live) or V(next_boot))
    and what was done. A change the hypervisor refuses on the running guest is stored for the next
    boot instead, with libvirt's reason (check mode cannot know a refusal in advance and predicts V(live))."
  - "With O(model), sections the model writes belong to it: a section or device the model no longer
    produces (the C(memoryBacking) once the last virtiofs share is gone, a TPM after O(model.tpm=false))
    is removed. With O(xml), a top-level section you leave out is left alone (a partial XML with only
    C(<memory>) changes only the memory); the sections you give are compared as with the model, and
    C(<devices>) lists all devices the domain should have (apart from those libvirt adds itself)."
  - Domain type and machine come from the host's domain capabilities (C(virsh domcapabilities)), V(kvm) when
    the host offers it, else V(qemu) (TCG), or O(domain_type). UEFI firmware is chosen by libvirt's firmware
    auto-selection (C(os firmware='efi') with the C(secure-boot) and C(enrolled-keys) features), never by a
    hard-coded path.
  - Check mode never calls a mutating libvirt API; it reports the same changes and actions a real run makes.
options:
  name:
    description:
      - Name of the domain. Required with O(model); with O(xml) it may come from the XML's C(<name>) instead,
        and must agree with it when both are given.
      - Alone (no O(model), no O(xml)), the task manages the power state, autostart or removal of an existing
        domain.
    type: str
  state:
    description:
      - V(present) defines (or updates) the domain and leaves its power state as it is.
      - V(running) also starts it, or resumes it when paused.
      - V(paused) starts it paused, or pauses it.
      - V(shutdown) presses its ACPI power button and waits up to O(shutdown_timeout) seconds for it to turn
        off; then powers it off when O(force=true), else fails with the domain still running.
      - V(absent) stops the domain (ACPI first, powered off once O(shutdown_timeout) is over) and undefines
        it together with its UEFI variables (nvram), TPM state, managed save image and snapshot and
        checkpoint metadata. Disk images stay, unless O(remove_storage=true).
    type: str
    default: present
    choices: [present, running, shutdown, paused, absent]
  autostart:
    description:
      - Whether libvirt starts the domain when the host boots. Left as it is when not given.
    type: bool
  domain_type:
    description:
      - The domain type, instead of the one the host's domain capabilities suggest (V(kvm) when offered, else
        V(qemu)). V(qemu) runs guests under QEMU's TCG emulation (slow, but works without KVM).
      - Also overrides the C(type) of an O(xml) domain.
    type: str
    choices: [kvm, qemu]
  apply:
    description:
      - What to do when the definition of a running domain changed.
      - V(live) applies to the running guest what it can take at once (see the notes above; memory and vCPUs
        within their maximum, devices plugged in and out, media, NIC link and bandwidth), in the same call as to
        the stored definition, and stores the rest for the next boot. It is the default because a task states
        what the VM should be, and an admin expects a running VM to be it where the hypervisor allows, as
        C(virsh setmem), virt-manager and Proxmox do (the collection's C(docs/decisions/live-changes.md)).
      - V(next_boot) stores everything; the guest sees it at its next boot, and RV(restart_required) is V(true)
        until then (also on later runs).
      - V(restart) applies what it can live, as V(live) does; when something still waits for the next boot, it
        shuts the domain down (as O(state=shutdown) does, honouring O(shutdown_timeout) and O(force)) and starts
        it again, in the state O(state) asks for.
    type: str
    default: live
    choices: [live, next_boot, restart]
  detach_timeout:
    description:
      - Seconds to wait, with O(apply=live), for the guest to release a device taken out of the definition
        (libvirt asks the guest OS, which may take its time or refuse).
      - A device still in the guest at the end is already gone from the stored definition; RV(differences) says
        V(waiting) and RV(restart_required) is V(true) (it goes at the next boot at the latest).
    type: int
    default: 30
  shutdown_timeout:
    description:
      - Seconds to wait for the guest to turn off after the ACPI power button, for O(state=shutdown),
        O(state=absent) and O(apply=restart).
      - V(0) does not wait. With O(force=true) the domain is powered off at once; without it, the power button
        is pressed and the task ends there (the guest turns off in its own time, or not; RV(state) says where
        it is).
      - A paused domain is resumed first, since a paused guest cannot see the power button.
    type: int
    default: 120
  force:
    description:
      - Power the domain off (C(virDomainDestroy)) when it has not shut down within O(shutdown_timeout).
      - Without it, a guest that ignores the power button makes the task fail. O(state=absent) always powers
        off a domain that did not shut down in time.
      - The action names the whole policy (it ends with C(then power off)), whether the guest obeyed the button
        or had to be powered off, so check mode lists the same actions as the real run.
    type: bool
    default: false
  remove_storage:
    description:
      - With O(state=absent), also delete the storage volumes this module created for the domain (disks
        given with O(model.disks[].size), O(model.disks[].clone_volume) or O(model.disks[].backing_volume) that
        did not exist, and the cloud-init seed of O(model.cloud_init)). Disks that existed before are never
        deleted.
    type: bool
    default: false
  xml:
    description:
      - A full or partial domain XML (C(<domain>...</domain>)), for instance from C(virsh dumpxml) or a
        template. Mutually exclusive with O(model).
      - Sections left out are not managed. A C(<uuid>) that differs from the existing domain's is an error.
    type: str
  model:
    description:
      - The Phyllome VM model. Mutually exclusive with O(xml).
      - "Every guest gets: q35, UEFI (libvirt's firmware auto-selection), a V(host-model) CPU with the given
        topology, ACPI/APIC, a C(utc) clock (C(localtime) for Windows) with C(rtc catchup), C(pit delay),
        C(hpet) off, suspend to memory and disk off, virtio disks and NICs, SPICE graphics that listen on
        nothing (or VNC on loopback), a virtio video card, V(ich9) sound, and by family: Linux a virtio
        console, virtio keyboard and tablet, the QEMU guest agent and SPICE agent channels, a TPM 2.0
        C(tpm-crb) emulator, a virtio RNG from C(/dev/urandom) and a virtio balloon; Windows the same with
        Secure Boot (with SMM), a USB tablet, C(hypervclock), the Hyper-V enlightenments C(relaxed), C(vapic),
        C(spinlocks) (4096), C(vpindex), C(runtime), C(synic), C(stimer) (direct), C(reset), C(frequencies),
        C(reenlightenment) and C(tlbflush) (on V(kvm) domains only, QEMU's TCG refuses them) and no balloon;
        V(other) emulated devices only (SATA disks, e1000e NIC, VGA) and no TPM."
    type: dict
    suboptions:
      os:
        description:
          - The guest's OS family, which chooses the defaults below.
        type: str
        default: linux
        choices: [linux, windows, other]
      memory:
        description:
          - Memory of the guest (C(<currentMemory>)). A number is MiB; a size with a unit (V(4G), V(512M),
            V(8 GiB)) is read with binary units.
          - Default V(2048) (Linux), V(4096) (Windows), V(1024) (other).
          - A running guest with a memory balloon (O(model.balloon)) gets a new value at once, up to
            O(model.max_memory).
        type: raw
      max_memory:
        description:
          - The most memory the guest can have without a restart (C(<memory>)), in the units of O(model.memory).
          - Default O(model.memory). A change of it waits for the next boot.
        type: raw
      vcpus:
        description:
          - Number of virtual CPUs online (C(<vcpu current=...>)). A running guest gets more or fewer at once, up
            to O(model.max_vcpus).
        type: int
        default: 2
      max_vcpus:
        description:
          - The most vCPUs the guest can have without a restart (C(<vcpu>)); the CPU topology (O(model.cpu))
            describes these.
          - Default O(model.vcpus). A change of it waits for the next boot.
        type: int
      cpu:
        description:
          - CPU model and topology. O(model.cpu.sockets) x O(model.cpu.cores) x O(model.cpu.threads) must equal
            O(model.max_vcpus) (by default O(model.vcpus)); O(model.cpu.cores) defaults to what makes it so.
        type: dict
        suboptions:
          mode:
            description:
              - libvirt's CPU mode. V(host-model) (the default) is migratable between similar hosts;
                V(host-passthrough) gives the host CPU as is; V(custom) uses O(model.cpu.model), a named
                model shared by a fleet of different hosts; V(maximum) everything the hypervisor can do.
              - Default V(custom) when O(model.cpu.model) is given, else V(host-model).
              - The C(cpu) that M(phyllome.os.cpu_baseline) returns (a custom model, its vendor and features) is a
                valid O(model.cpu) as it is (topology options may be added beside it); a guest with it can move
                to any host of the group (the role C(phyllome.os.guests) does this with C(phyllome_guests_cpu=fleet)).
            type: str
            choices: [host-model, host-passthrough, maximum, custom]
          model:
            description:
              - A named CPU model (C(virsh cpu-models x86_64)), for example V(EPYC) or V(Skylake-Client-IBRS);
                only with O(model.cpu.mode=custom).
            type: str
          match:
            description:
              - How strictly the guest's CPU must match the model (C(<cpu match=...>)); only with
                O(model.cpu.mode=custom). Default V(exact).
            type: str
            choices: [exact, minimum, strict]
          fallback:
            description:
              - Whether libvirt may fall back to another model when the hypervisor cannot run this one
                (C(<model fallback=...>)); only with O(model.cpu.mode=custom). Default V(forbid).
            type: str
            choices: [allow, forbid]
          vendor:
            description:
              - The CPU vendor the guest requires (C(<vendor>), V(Intel), V(AMD)); only with
                O(model.cpu.mode=custom).
            type: str
          features:
            description:
              - CPU features added to or taken from the model (C(<feature policy=... name=.../>)), in any mode;
                each named once. Compared by name; a feature the definition has and this list lacks is removed.
            type: list
            elements: dict
            suboptions:
              name:
                description: The feature's name, as libvirt spells it (C(virsh domcapabilities)), e.g. V(ssbd).
                type: str
                required: true
              policy:
                description:
                  - libvirt's policy. V(require) (the guest needs it, the host must offer it), V(disable) (the
                    guest never sees it), V(force), V(optional), V(forbid).
                type: str
                default: require
                choices: [force, require, optional, disable, forbid]
          sockets:
            description: Sockets.
            type: int
            default: 1
          cores:
            description: Cores per socket.
            type: int
          threads:
            description: Threads per core.
            type: int
            default: 1
      machine:
        description:
          - The machine type. An alias (V(q35), V(pc)) is stored by libvirt as the current versioned type
            (C(pc-q35-7.2)), which is then kept.
        type: str
        default: q35
      pcie_root_ports:
        description:
          - "The number of PCI Express root ports (C(<controller type='pci' model='pcie-root-port'/>)) of a
            q35 machine, as virt-install adds them (its C(--controller num_pcie_root_ports=N), 14 by default). libvirt
            plugs the model's PCI Express devices into them (a virtio disk, NIC, balloon, RNG, the USB and
            virtio-serial controllers...) and adds more of its own when they run out; the ports left free take
            the disks, NICs and hostdevs attached to the running guest (O(apply=live)): slots of the root bus
            itself take none. The Linux model's own devices use about 8 of them."
          - A domain with at least this many root ports (libvirt's own included) has what it needs. A higher
            number adds ports, which the running guest gets at its next boot. A lower one removes none (a
            port may hold a device).
          - Default V(14) on a q35 machine. Other machines (V(pc)) have none, their PCI root bus takes
            hot-plugged devices itself. V(0) leaves the ports to libvirt (one free port, for one hot-plugged
            device).
        type: int
      firmware:
        description:
          - V(efi) (UEFI, chosen by libvirt's firmware auto-selection) or V(bios) (SeaBIOS).
        type: str
        default: efi
        choices: [efi, bios]
      secure_boot:
        description:
          - UEFI Secure Boot with Microsoft's keys enrolled, and SMM to protect the UEFI variables.
          - Default V(true) for Windows, V(false) otherwise.
        type: bool
      tpm:
        description:
          - An emulated TPM 2.0 (C(tpm-crb), swtpm). Its state lives with the domain until O(state=absent).
          - Default V(true) for Linux and Windows, V(false) for other.
        type: bool
      disks:
        description:
          - Disks and CD/DVD drives.
          - A disk is an existing image or block device (O(model.disks[].path)) or a storage volume
            (O(model.disks[].pool), O(model.disks[].volume)). A missing volume (or a missing image in a
            directory that a storage pool owns) is created when the disk says how - empty and sparse
            (O(model.disks[].size)), a copy of a base volume (O(model.disks[].clone_volume)) or a qcow2 overlay
            on a base volume (O(model.disks[].backing_volume)) - so that a guest can start from a prepared
            image without an installer.
          - A volume that exists is never replaced nor overwritten, whatever these options say. A larger
            O(model.disks[].size) grows it in place; a smaller one is a warning (a volume is never shrunk).
          - On a local libvirt, an O(model.disks[].path) that does not exist (and is not to be created) is an
            error; on a remote one (C(qemu+ssh://)) only libvirt's storage pools are asked.
        type: list
        elements: dict
        default: []
        suboptions:
          path:
            description:
              - Path of the image file, ISO or block device (C(/dev/...)) on the libvirt host.
            type: str
          pool:
            description:
              - Storage pool of O(model.disks[].volume). Default V(default).
            type: str
          volume:
            description:
              - Name of a storage volume in O(model.disks[].pool).
            type: str
          size:
            description:
              - Size of the volume to create when it does not exist. A number is GiB; units as for
                O(model.memory).
              - For a copy or an overlay, default the base volume's capacity; a size smaller than the base's is
                an error.
              - An existing volume (in a storage pool) smaller than this is grown to it, by libvirt
                (C(virStorageVolResize)) or, when the running domain has it open, by QEMU
                (C(virDomainBlockResize)), so that the guest sees the new size at once. A larger volume is left as
                it is, with a warning.
            type: raw
          format:
            description:
              - Image format, which libvirt never guesses (that would be unsafe). Default V(raw), V(qcow2) for an
                overlay (O(model.disks[].backing_volume)), which is always qcow2.
              - A copy (O(model.disks[].clone_volume)) is written in this format, converted by libvirt when the
                base's differs.
            type: str
            choices: [raw, qcow2]
          clone_volume:
            description:
              - The base volume to copy when the disk's volume does not exist (libvirt's
                C(virStorageVolCreateXMLFrom), as C(virsh vol-clone) and C(virsh vol-create-from) do). The copy
                is independent of its base, which may go afterwards.
              - The copy starts at the base's capacity and grows to O(model.disks[].size) when that is larger.
              - "As virsh takes a volume: a name in O(model.disks[].clone_pool), or the absolute path of an image
                file that a storage pool holds (C(/var/lib/libvirt/images/debian-12.qcow2): the volume of that
                pool). libvirt copies only volumes: a file in no pool is an error; make an overlay on it
                (O(model.disks[].backing_volume)), or define a dir pool for its directory."
              - Mutually exclusive with O(model.disks[].backing_volume).
            type: str
          clone_pool:
            description:
              - Storage pool of O(model.disks[].clone_volume). Default the pool the new volume goes in.
            type: str
          backing_volume:
            description:
              - The base volume of a new qcow2 overlay, created when the disk's volume does not exist; its
                C(<backingStore>) names the base's path and format (taken from libvirt's description of the base
                volume, never probed by QEMU). Writes go to the overlay; the base must stay, unchanged, as long
                as the overlay is used.
              - "As virsh takes a volume (C(virsh vol-create-as --backing-vol)): a name in
                O(model.disks[].backing_pool), or the absolute path of a base image on the host (as
                C(virt-install --disk backing_store=) takes it) - the volume of the pool that holds the file, or a
                file in no storage pool (a base kept outside libvirt's pools)."
              - The base's format is O(model.disks[].backing_format) when given; else libvirt's description of the
                volume, and for a file in no pool its first bytes (V(qcow2) by its header, else V(raw); other formats
                are an error). A base whose format libvirt does not know is an error.
              - A path that does not exist is an error, before anything changes.
            type: str
          backing_pool:
            description:
              - Storage pool of O(model.disks[].backing_volume). Default the pool the new volume goes in. Not with a
                path.
            type: str
          backing_format:
            description:
              - The format of the base image of an overlay (C(virsh vol-create-as --backing-vol-format),
                C(virt-install --disk backing_format=)), written in the overlay's C(<backingStore>). Default the
                format found (see O(model.disks[].backing_volume)).
              - State V(raw) for a raw image that a guest used as its disk (its content might look like another
                format's header).
            type: str
            choices: [raw, qcow2]
          device:
            description:
              - V(disk), or V(cdrom) (read-only; O(model.disks[].path) may be left out for an empty drive).
            type: str
            default: disk
            choices: [disk, cdrom]
          bus:
            description:
              - Default V(virtio) for disks (V(sata) for the V(other) family), V(sata) for CD/DVD drives.
                V(scsi) adds a virtio-scsi controller.
            type: str
            choices: [virtio, sata, scsi, usb]
          target:
            description:
              - The device name in the guest's configuration (V(vda), V(sdb)). Default the next free name of
                the bus, in order. It identifies the disk between runs.
            type: str
          cache:
            description: QEMU's cache mode.
            type: str
            choices: [default, none, writethrough, writeback, directsync, unsafe]
          discard:
            description: Pass the guest's discard (TRIM) requests to the image (V(unmap)) or not (V(ignore)).
            type: str
            choices: [unmap, ignore]
          readonly:
            description: A read-only disk. CD/DVD drives always are.
            type: bool
            default: false
          boot_order:
            description:
              - Boot priority (1 first). When any disk, NIC or hostdev has one, the model's default boot order
                (disk, then CD/DVD) is not used.
            type: int
      cloud_init:
        description:
          - "A cloud-init NoCloud seed for guests that start from a cloud image without an installer: an ISO 9660
            volume labelled C(cidata) holding C(user-data), C(meta-data) and, when given, C(network-config) (what
            C(cloud-localds) and C(virt-install --cloud-init) make), attached as a read-only CD-ROM. cloud-init
            reads it at the guest's boot."
          - The image is written by the module itself (no C(genisoimage) or C(xorriso) needed on the host), in
            the volume O(model.cloud_init.volume) of O(model.cloud_init.pool), through libvirt
            (C(virStorageVolUpload)). The same options give the same image, byte for byte.
          - The seed volume is data the module derives from these options, not a disk of the guest. Each run reads
            it back; when it holds anything else (other options, or a change made outside the module) it is
            deleted and written anew, and a running domain gets RV(restart_required) (cloud-init reads the seed
            at boot; a shutdown and a start, or O(apply=restart)). A volume of that name larger than 64 MiB is
            no seed and is an error, left as it is.
          - "Never shown in any result, diff, action or message: what the task returns of the seed is RV(cloud_init)
            (its digest and sizes). O(model.cloud_init.user_data) is a C(no_log) option."
          - Remove the option to detach the seed; its volume stays (O(remove_storage) deletes it with the domain).
        type: dict
        suboptions:
          user_data:
            description:
              - The C(user-data) file, as cloud-init reads it - a C(#cloud-config) document, a script
                (C(#!/bin/sh)), a MIME multi-part archive - written as given. Default empty.
              - To write it from YAML data, use C("{{ '#cloud-config\n' ~ (config | to_nice_yaml) }}").
              - It usually holds passwords and keys; it is never shown (Ansible's C(no_log)).
            type: str
          meta_data:
            description:
              - The C(meta-data) file, as a dictionary (written as JSON, which cloud-init reads as YAML), with
                cloud-init's keys.
              - C(instance-id) and C(local-hostname) default to the domain name. cloud-init runs its
                once-per-instance modules again when C(instance-id) changes.
            type: dict
          network_config:
            description:
              - The C(network-config) file (cloud-init's network configuration, version 1 or 2), as text or as a
                dictionary (written as JSON). Without it there is no such file, and cloud-init configures the
                first NIC with DHCP.
            type: raw
          pool:
            description:
              - Storage pool of the seed volume. Default the pool of the first disk of O(model.disks) that is a
                volume, else V(default).
            type: str
          volume:
            description:
              - Name of the seed volume. Default C(<name>-cidata.iso).
            type: str
          bus:
            description: Bus of the seed's CD-ROM drive.
            type: str
            default: sata
            choices: [sata, scsi]
      networks:
        description:
          - Network interfaces. Default one virtio NIC on libvirt's network V(default). V([]) for none.
          - A NIC without O(model.networks[].mac) keeps the MAC libvirt gave it.
        type: list
        elements: dict
        suboptions:
          type:
            description:
              - V(network) (a libvirt network), V(bridge) (a host bridge), V(direct) (macvtap on a host
                interface), V(user) (QEMU's user networking) or V(passt) (libvirt 9.2 or later).
            type: str
            default: network
            choices: [network, bridge, direct, user, passt]
          source:
            description:
              - The libvirt network (default V(default)), the host bridge or the host interface.
            type: str
          mac:
            description: The MAC address. Changing it replaces the NIC.
            type: str
          model:
            description: NIC model. Default V(virtio) (V(e1000e) for the V(other) family).
            type: str
          boot_order:
            description: Boot priority (network boot).
            type: int
      hostdevs:
        description:
          - Host devices passed through to the guest (VFIO). libvirt detaches a V(managed) device from its
            host driver when the domain starts and gives it back when it stops.
          - A PCI address or USB bus:device that does not exist on the host is an error. Pass all endpoints
            of an IOMMU group to the same guest (see M(phyllome.os.iommu_info)).
        type: list
        elements: dict
        default: []
        suboptions:
          type:
            description: V(pci) or V(usb).
            type: str
            default: pci
            choices: [pci, usb]
          address:
            description:
              - PCI address (V(0000:01:00.0) or V(01:00.0)), or USB V(BUS:DEVICE) (V(3:4), as C(lsusb) prints
                them; they change when the device is plugged elsewhere).
            type: str
          vendor:
            description: USB vendor id (V(046d)), with O(model.hostdevs[].product), instead of an address.
            type: str
          product:
            description: USB product id (V(c52b)).
            type: str
          managed:
            description: Let libvirt bind the device to vfio-pci when the domain starts.
            type: bool
            default: true
          boot_order:
            description: Boot priority.
            type: int
      filesystems:
        description:
          - Host directories shared with the guest through virtiofs (C(mount -t virtiofs TARGET /mnt)).
          - They need shared memory, so O(model.memory_backing) defaults to memfd, shared.
        type: list
        elements: dict
        default: []
        suboptions:
          source:
            description: The host directory.
            type: str
            required: true
          target:
            description: The mount tag in the guest.
            type: str
            required: true
          readonly:
            description: Read-only share (needs a libvirt whose virtiofs supports it; libvirt 9.0 refuses it).
            type: bool
            default: false
      memory_backing:
        description:
          - How guest memory is backed. Default none, or V(memfd) shared when there are
            O(model.filesystems).
        type: dict
        suboptions:
          source:
            description: Memory source.
            type: str
            choices: [memfd, file, anonymous]
          access:
            description: V(shared) (needed by virtiofs and vhost-user) or V(private).
            type: str
            choices: [shared, private]
          hugepages:
            description: Back guest memory with huge pages (reserve them on the host first).
            type: bool
            default: false
          hugepage_size:
            description: Huge page size (V(2M), V(1G)); default the host's default size.
            type: raw
      graphics:
        description:
          - The graphical console.
        type: dict
        suboptions:
          type:
            description: V(spice), V(vnc), or V(none) for a headless guest (no video card, no sound).
            type: str
            default: spice
            choices: [spice, vnc, none]
          listen:
            description:
              - Where it listens. SPICE defaults to V(none) (reachable only through libvirt, as virt-manager
                and virt-viewer do), VNC to V(127.0.0.1). Give V(0.0.0.0) only if you mean the network.
            type: str
          gl:
            description: OpenGL acceleration (SPICE with C(listen none), virtio video with 3D). Needs a
              host GPU render node.
            type: bool
            default: false
      video:
        description:
          - Video card model. Default V(virtio) (V(vga) for the V(other) family; V(none) when headless).
        type: str
        choices: [virtio, qxl, vga, bochs, ramfb, cirrus, none]
      sound:
        description:
          - Sound card. Default V(ich9) for Linux and Windows with graphics, else V(none).
        type: str
        choices: [none, ich9, ich6, ac97]
      balloon:
        description:
          - A virtio memory balloon. Default V(true) for Linux only.
        type: bool
      rng:
        description:
          - A virtio RNG fed from the host's C(/dev/urandom). Default V(true) except for other.
        type: bool
      guest_agent:
        description:
          - The QEMU guest agent channel (C(org.qemu.guest_agent.0)), used for IP addresses, fs freeze and
            clean shutdowns. Default V(true) except for other.
        type: bool
      extra_xml:
        description:
          - XML fragments layered onto what the model builds, for anything the options do not cover.
          - Each fragment is a C(<domain>) with the sections to add or change, or one section (C(<os>),
            C(<features>), ...), or one device (C(<serial>), C(<watchdog>), ...).
          - A fragment adds and changes, never removes. A device changes a model device only when it names
            the same one (a disk's target, a NIC's MAC); otherwise it is added.
        type: list
        elements: str
        default: []
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - phyllome.os.libvirt
requirements:
  - lxml (the C(python3-lxml) package) on the managed host
attributes:
  check_mode:
    support: full
    details: Reads the domain and the host, compares, and reports the changes and actions without calling
      any mutating libvirt API; the actions are those the real run takes.
  diff_mode:
    support: full
    details:
      - A diff of the stored definition and the new one (graphics passwords masked).
      - When the domain runs and does not run all of the new definition yet, a second diff of its live XML
        (C(virsh dumpxml)) and the stored definition.
  platform:
    support: full
    platforms: posix
    details: Any host whose libvirt the URI reaches; the libvirt QEMU driver or libvirt's test driver.
notes:
  - Changing the name makes another domain; to rename, use C(virsh domrename).
  - Changing O(model.firmware) or O(model.secure_boot) of an existing domain keeps its UEFI variables (nvram),
    which were made from the previous firmware's template; start it once with C(virsh start --reset-nvram) to
    get fresh ones (Secure Boot keys enrolled or not).
  - Hyper-V enlightenments are left out of V(qemu) (TCG) domains, where QEMU refuses them.
  - The power state reported in RV(state) uses libvirt's words (V(running), V(paused), V(shutoff), ...).
seealso:
  - module: phyllome.os.domain_info
  - name: libvirt domain XML format
    description: Every element the O(xml) and O(model.extra_xml) options accept.
    link: https://libvirt.org/formatdomain.html
author:
  - Phyllome OS developers (@PhyllomeOS)
'''

EXAMPLES = r'''
- name: A Linux VM on the Phyllome model, with a new 40 GiB disk, running
  phyllome.os.domain:
    name: fedora
    model:
      os: linux
      memory: 4G
      vcpus: 4
      disks:
        - pool: default
          volume: fedora.qcow2
          format: qcow2
          size: 40G
        - device: cdrom
          path: /var/lib/libvirt/isos/Fedora-Workstation-Live-x86_64.iso
    state: running
    autostart: true

- name: A VM from a cloud image without an installer, on a 20 GiB qcow2 overlay (the image stays as it is)
  phyllome.os.domain:
    name: web1
    model:
      disks:
        - volume: web1.qcow2
          backing_volume: debian-12-genericcloud-amd64.qcow2
          size: 20G
    state: running

- name: A cloud image that configures itself at first boot (cloud-init NoCloud seed on a CD-ROM)
  phyllome.os.domain:
    name: web3
    model:
      disks:
        - volume: web3.qcow2
          backing_volume: debian-12-genericcloud-amd64.qcow2
          size: 20G
      cloud_init:
        user_data: |
          #cloud-config
          users:
            - name: admin
              groups: [sudo]
              shell: /bin/bash
              ssh_authorized_keys:
                - "{{ lookup('ansible.builtin.file', '~/.ssh/id_ed25519.pub') }}"
        network_config:
          version: 2
          ethernets:
            id0:
              match: {name: "en*"}
              dhcp4: true
    state: running

- name: An overlay on a base image given by its path (in a storage pool or not), its format stated
  phyllome.os.domain:
    name: web4
    model:
      disks:
        - volume: web4.qcow2
          backing_volume: /srv/images/debian-12-genericcloud-amd64.qcow2
          backing_format: qcow2
          size: 20G
    state: running

- name: The same on a copy of the image (independent of it), made once; size 40G later grows it in place
  phyllome.os.domain:
    name: web2
    model:
      disks:
        - volume: web2.qcow2
          format: qcow2
          clone_volume: debian-12-genericcloud-amd64.qcow2
          size: 20G
    state: running

- name: A Windows 11 VM (Secure Boot with SMM, TPM 2.0, Hyper-V enlightenments by default)
  phyllome.os.domain:
    name: win11
    model:
      os: windows
      memory: 8G
      vcpus: 4
      cpu:
        cores: 2
        threads: 2
      disks:
        - path: /var/lib/libvirt/images/win11.raw
          size: 64G
        - device: cdrom
          path: /var/lib/libvirt/isos/Win11_23H2_English_x64.iso
        - device: cdrom
          path: /var/lib/libvirt/isos/virtio-win.iso

- name: A gaming VM with a GPU (both functions of its IOMMU group) and a USB receiver passed through
  phyllome.os.domain:
    name: gaming
    model:
      os: windows
      memory: 16G
      vcpus: 8
      cpu:
        mode: host-passthrough
        cores: 4
        threads: 2
      memory_backing:
        hugepages: true
      graphics:
        type: none
      disks:
        - path: /dev/disk/by-id/nvme-Samsung_SSD_980_PRO_2TB_S6B0NL0T123456
          cache: none
      networks:
        - type: bridge
          source: br0
      hostdevs:
        - address: "0000:01:00.0"
        - address: "0000:01:00.1"
        - type: usb
          vendor: "046d"
          product: c52b

- name: The CPU every host of the group can run, so that the VM can move to any of them
  phyllome.os.cpu_baseline:
    hosts:
      - {name: hv1, uri: "qemu+ssh://root@hv1/system"}
      - {name: hv2, uri: "qemu+ssh://root@hv2/system"}
  register: fleet_cpu

- name: A VM with that CPU (a custom model, its vendor, the features beyond the model's), 2 cores
  phyllome.os.domain:
    name: roaming
    model:
      vcpus: 2
      cpu: "{{ fleet_cpu.cpu }}"

- name: A named CPU model with one feature more and one less
  phyllome.os.domain:
    name: pinned
    model:
      cpu:
        model: Skylake-Client-IBRS
        vendor: Intel
        features:
          - {name: ssbd, policy: require}
          - {name: hle, policy: disable}

- name: A headless development VM sharing a host directory through virtiofs, with a fixed MAC
  phyllome.os.domain:
    name: devbox
    model:
      memory: 2048
      graphics:
        type: none
      disks:
        - volume: devbox.qcow2
          format: qcow2
          size: 20
      networks:
        - source: default
          mac: "52:54:00:12:34:56"
      filesystems:
        - source: /srv/projects
          target: projects

- name: Anything the options do not cover, through extra_xml (direct kernel boot, a serial log)
  phyllome.os.domain:
    name: microvm
    model:
      memory: 256
      vcpus: 1
      firmware: bios
      tpm: false
      networks: []
      graphics:
        type: none
      extra_xml:
        - |
          <os>
            <kernel>/var/lib/libvirt/boot/vmlinuz</kernel>
            <initrd>/var/lib/libvirt/boot/initrd.img</initrd>
            <cmdline>console=ttyS0</cmdline>
          </os>
        - <serial type='file'><source path='/var/log/libvirt/qemu/microvm.serial'/><target port='0'/></serial>

- name: A domain from an XML template you already have
  phyllome.os.domain:
    xml: "{{ lookup('ansible.builtin.template', 'router.xml.j2') }}"
    state: running

- name: Give a running VM more memory at once (within <memory>) and a second vCPU (within <vcpu>)
  phyllome.os.domain:
    name: router
    xml: <domain><currentMemory unit='GiB'>3</currentMemory><vcpu current='2'>4</vcpu></domain>
  register: router
  # router.differences: [{path: currentMemory, class: live, done: applied, ...}, {path: vcpu, ...}]

- name: Give a running VM more memory than its maximum, and restart it so that it sees it
  phyllome.os.domain:
    name: router
    xml: <domain><memory unit='GiB'>2</memory><currentMemory unit='GiB'>2</currentMemory></domain>
    apply: restart
    shutdown_timeout: 60
    force: true

- name: Shut a VM down cleanly, powering it off after 5 minutes
  phyllome.os.domain:
    name: fedora
    state: shutdown
    shutdown_timeout: 300
    force: true

- name: Remove a VM with its UEFI variables, TPM state and the volumes this module created for it
  phyllome.os.domain:
    name: devbox
    state: absent
    remove_storage: true
'''

RETURN = r'''
name:
  description: The domain's name.
  returned: always
  type: str
  sample: fedora
uuid:
  description: The domain's uuid. Null in check mode for a domain that is not defined yet, and after removal.
  returned: always
  type: str
  sample: 9bbff2c8-8f80-4964-aa03-f7dc602013e4
state:
  description:
    - The domain's power state after the task, in libvirt's words (V(running), V(paused), V(shutoff),
      V(shutdown) while shutting down, V(crashed), V(pmsuspended), V(blocked)), or V(absent).
    - In check mode, the state the task would reach.
  returned: always
  type: str
  sample: running
xml:
  description:
    - The domain's stored (inactive) definition after the task, as libvirt returns it (graphics passwords
      masked). In check mode, the definition the task would store.
    - Null after removal.
  returned: always
  type: str
  sample: "<domain type=\"kvm\">\n  <name>fedora</name>\n  ...\n</domain>\n"
restart_required:
  description:
    - Whether the domain runs with an older definition than the stored one and needs a restart (a shutdown
      and a start, not a guest reboot) to see it. Stays V(true) on later runs until it was restarted.
    - V(false) when every change was applied to the running guest (O(apply=live)).
  returned: always
  type: bool
  sample: false
cloud_init:
  description:
    - The cloud-init seed of O(model.cloud_init), null without it. Its content is never returned.
  returned: always
  type: dict
  contains:
    pool:
      description: Storage pool of the seed volume.
      type: str
      sample: default
    volume:
      description: The seed volume.
      type: str
      sample: web3-cidata.iso
    sha256:
      description: SHA-256 digest of the seed image (the volume's content), prefixed C(sha256:).
      type: str
      sample: "sha256:775b6be09da9489c11f1eeceb6b15fcfa3d4bc2b88b6260cc0a862ec2b6bf9da"
    size:
      description: Size of the seed image, in bytes.
      type: int
      sample: 49152
    files:
      description: Size in bytes of each file of the seed, by name.
      type: dict
      sample: {"meta-data": 58, "network-config": 89, "user-data": 231}
differences:
  description:
    - Each difference between the request and the stored definition, with its class and what the task did
      (or, in check mode, would do) with it. Empty when the definition already matched.
  returned: always
  type: list
  elements: dict
  contains:
    change:
      description: The difference in words, as in RV(changes).
      type: str
    path:
      description: Where in the domain XML (C(currentMemory), C(devices/disk[vdb]), C(os/type)).
      type: str
    class:
      description:
        - V(live) when libvirt can apply it to the running guest, V(next_boot) when the guest sees it only at its
          next boot. No difference needs a new domain (libvirt changes any part of a definition in place), and
          another uuid for an existing name is refused (an error) before anything changes.
        - For a domain that is not running, everything is V(next_boot) (it sees it when it starts).
      type: str
      choices: [live, next_boot]
    done:
      description:
        - V(applied) to the running guest and the stored definition; V(defined) in the stored definition only
          (the guest sees it at its next boot, or start); V(waiting) when the guest has not released a detached
          device within O(detach_timeout) (already out of the definition).
      type: str
      choices: [applied, defined, waiting]
    reason:
      description: Why a change is not live (libvirt's own words when the running guest refused it), else null.
      type: str
  sample:
    - {change: currentMemory changed from 2 GiB to 3 GiB, path: currentMemory, class: live, done: applied,
       reason: null}
    - {change: "devices/disk[vdb] added", path: "devices/disk[vdb]", class: live, done: applied, reason: null}
    - {change: "os/type: machine changed from 'pc-q35-7.2' to 'pc-q35-8.2'", path: os/type, class: next_boot,
       done: defined, reason: null}
changes:
  description:
    - What changed in the definition, in words. Empty when the definition already matched.
    - "A difference that undoes a change made outside the module since its last define ends with
      C((drift: changed outside this module))."
    - A changed graphics password is named (C(passwd changed)) without its values; no password appears in
      any result, diff, action or message (they join Ansible's C(no_log) values).
  returned: always
  type: list
  elements: str
  sample:
    - memory changed from 2 GiB to 4 GiB
    - "devices/disk[vdb] added"
    - "devices/interface[52:54:00:4d:ca:bb]/source: network changed from 'default' to 'lan'"
    - "devices/tpm[tpm-crb] removed"
actions:
  description:
    - What the task did (or, in check mode, would do), in order.
    - "After a failure, the steps undone are listed as C(undo: ...), and C(changed) says whether anything is
      left changed (nothing, after a full rollback)."
  returned: always
  type: list
  elements: str
  sample:
    - create volume fedora.qcow2 in pool default
    - define domain fedora
    - start domain fedora
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.phyllome.os.plugins.module_utils._common.actions import ActionRecorder
from ansible_collections.phyllome.os.plugins.module_utils._common.module_glue import run_and_exit
from ansible_collections.phyllome.os.plugins.module_utils._domain.manager import run_domain
from ansible_collections.phyllome.os.plugins.module_utils._domain.options import (
    MUTUALLY_EXCLUSIVE,
    REQUIRED_ONE_OF,
    argument_spec,
)
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.connection import uri_argument_spec
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.domain_client import DomainClient


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(uri_argument_spec()),
        mutually_exclusive=MUTUALLY_EXCLUSIVE,
        required_one_of=REQUIRED_ONE_OF,
        supports_check_mode=True,
    )
    recorder = ActionRecorder(check_mode=module.check_mode)
    run_and_exit(module, recorder, _converge, module, recorder)


def _converge(module, recorder):
    with DomainClient.connect(module.params['uri']) as client:
        result = run_domain(module.params, client, recorder)
    for warning in result.pop('warnings'):
        module.warn(warning)
    live_diff = result.pop('live_diff')
    if live_diff is not None:
        result['diff'] = [result['diff'], live_diff]
    return result


if __name__ == '__main__':
    main()
