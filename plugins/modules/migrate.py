#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: migrate
short_description: Move a libvirt domain to another host, without shared storage, never losing it
version_added: 0.1.0
description:
  - Moves the domain O(name) from the libvirt of O(source_uri) to the libvirt of O(target_uri). The module runs
    where it can reach both (the controller with C(qemu+ssh://) URIs, or the source host with C(qemu:///system)
    and a C(qemu+ssh://) target); everything goes through the two libvirt connections, no other daemon, no shared
    storage and no SSH between the hosts.
  - O(mode=cold), in this order. Every check first, before any change; the domain cannot move when it has a host
    device (PCI, USB, mdev, SCSI C(hostdev), named in the error), a disk that is no file in a storage pool of the
    source (a block device, a network disk, an overlay on a backing file), a disk whose pool does not exist on the
    target and is not in O(storage_map), a C(network) interface whose network does not exist on the target and is
    not in O(network_map), or when the target lacks its machine type, UEFI firmware (Secure Boot firmware when it
    uses it) or TPM emulation (swtpm), as the target's domain capabilities say, or when a target pool has not
    room for the disks going there (its free space, the pool refreshed first, must hold their data (their
    allocation on the source; holes stay holes) plus a margin of 1% of it, rounded up to a MiB, and 16 MiB). Nothing
    is changed then; the refusal names the pool and the figures, in check mode too.
  - Then a running domain is shut down (the ACPI power button, up to O(shutdown_timeout) seconds; when it does not
    stop, the task fails and the domain keeps running, unless O(force) powers it off). The domain is defined on the
    target with the same uuid, MAC addresses and XML, the disk paths rewritten to the target pools' directories,
    networks renamed by O(network_map), autostart off. Every disk volume is created in its target pool and filled
    through libvirt volume streams (download on the source, upload on the target), chunk by chunk in constant
    memory; sparse streams keep holes as holes. A pool that fills up during a copy (someone else wrote there) fails
    the step C(copy), naming the pool and its free space; since libvirt 9.0 may end an upload that ran out of space
    without an error, the pool's free space is read after each copy and less than 1 MiB free fails the step as
    well; an upload whose end blocks while its pool is full (libvirt 9.0 then waits forever) is given up after 10
    seconds.
    The UEFI varstore (C(nvram)) and the swtpm TPM state are copied the same way, through transient directory pools
    opened over their directories on both hosts and destroyed at the end (the files stay). Each copy is read back
    from the target and its content checksum compared with the source's (O(verify); the source is hashed while it
    streams; the target's copy is hashed there over libvirt's ssh login, or read back through libvirt beside the
    copy). Then autostart is set as on the source, and the domain starts on the target
    when O(start) says so; with O(guest_agent_timeout), the task then waits until its QEMU guest agent answers
    there. The directories of the TPM state that the target lacks are made as libvirt makes them (C(0711) above the
    state directory, which keeps the source's owner and mode).
  - Only then is the domain undefined on the source, with its varstore and TPM state, and its disk volumes
    deleted; with O(keep_source=true) it stays defined there, stopped, with autostart off, so that two hosts never
    run it at once.
  - A failure before the source is touched undoes the target's side in reverse (the domain undefined, with what
    was copied of its varstore and TPM state; the volumes deleted) and starts the source domain again if it ran; the
    error names the step, the undo steps done and any that failed (O(mode=live) too). RV(actions) lists every step
    and every undo.
  - A host that stops answering (its link down in the middle of a copy) is given up after about 30 seconds (libvirt
    keepalive on both connections) rather than when TCP gives up. The undo then opens the target's connection
    again, waiting up to 90 seconds for the target to come back; when it does not, the error says which undo steps
    failed and what is left on the target.
  - Idempotent. A domain that the source no longer has and the target has is V(ok). With O(keep_source=true), a
    domain defined on both with the same uuid, stopped and without autostart on the source, is V(ok). Defined on
    both otherwise, the task fails without changing anything (which copy to keep is the user's choice).
  - Check mode returns the plan (RV(plan)) and the steps, and changes nothing. It lists the varstore and the TPM
    state as one step each; the real run adds the transient pools and volumes it uses for them.
  - O(mode=live) moves a running domain while it runs (libvirt's managed live migration, virDomainMigrate3 with
    C(VIR_MIGRATE_LIVE | PERSIST_DEST | NON_SHARED_DISK)). The same checks as O(mode=cold) come first, plus two;
    the domain must be running, and libvirt's comparison of its C(<cpu>) with the target hypervisor's
    (virConnectCompareHypervisorCPU, on the target connection) must not say C(incompatible); the refusal gives
    libvirt's words (the features the target lacks) and points to a common CPU model for the fleet
    (M(phyllome.os.cpu_baseline)). Then each disk's volume is created empty in its
    target pool with the source's format and capacity (QEMU's drive-mirror writes into existing files), the UEFI
    varstore is copied as in a cold move (libvirt 9.0 does not carry it), and libvirt migrates memory and disks
    over O(migrate_uri), at most O(bandwidth) MiB/s; the swtpm TPM state travels in QEMU's migration stream. After
    O(timeout) seconds the job is aborted (virDomainAbortJob); the error says how many bytes had crossed. A failure
    or an abort deletes what the target got; the domain keeps running on the source. The figures of the move
    (RV(migration)) are libvirt's, from the completed job's statistics on the source (virDomainGetJobStats).
    After the move, the stopped source copy is undefined and its volumes deleted (or kept, O(keep_source)), as
    after a cold move. O(shutdown_timeout), O(force), O(start) and O(verify) do not apply (the domain runs on
    the target; QEMU's mirror is its own check), and O(guest_agent_timeout) is refused.
options:
  name:
    description:
      - The domain's name on the source.
    type: str
    required: true
  source_uri:
    description:
      - libvirt connection URI of the source host, e.g. C(qemu:///system) on the source itself or
        C(qemu+ssh://root@host1/system) from the controller.
    type: str
    default: qemu:///system
  target_uri:
    description:
      - libvirt connection URI of the target host, e.g. C(qemu+ssh://root@host2/system).
    type: str
    required: true
  mode:
    description:
      - V(cold) shuts the domain down and copies it; V(live) moves it while it runs (libvirt live migration with
        storage copy).
    type: str
    choices: [cold, live]
    default: cold
  shutdown_timeout:
    description:
      - Seconds to wait for a running domain to shut down after the ACPI power button.
    type: int
    default: 120
  force:
    description:
      - Power a running domain off when it has not shut down after O(shutdown_timeout) seconds. Without it the task
        fails then, the domain still running and nothing else changed.
    type: bool
    default: false
  storage_map:
    description:
      - Source pool name to target pool name, for disks whose pool does not exist on the target under the same
        name. The volume keeps its name; its path becomes the target pool's directory plus that name.
    type: dict
    default: {}
  network_map:
    description:
      - Source network name to target network name, for C(network) interfaces whose network does not exist on the
        target under the same name.
    type: dict
    default: {}
  keep_source:
    description:
      - Keep the domain, its volumes, varstore and TPM state on the source, stopped and with autostart off.
    type: bool
    default: false
  start:
    description:
      - Start the domain on the target. By default it starts when it was running on the source.
    type: bool
  verify:
    description:
      - Compare the content checksum of every copy on the target with the one of the bytes that left the source,
        before the source is touched. With O(target_uri) on libvirt's C(ssh) transport, a copy larger than 128 MiB
        is hashed on the target itself (its C(python3), run over the same ssh login as libvirt's, reads the file
        libvirt wrote; nothing comes back but the checksum), when that login can read it. Otherwise the copy is
        read back through libvirt and the link (holes are free), beside the copy, segment by segment. What the
        verify takes after the copy is RV(verify_seconds). O(mode=live) does not use it.
    type: bool
    default: true
  migrate_uri:
    description:
      - O(mode=live) only. Where the source's QEMU sends the migration stream and the disks, libvirt's
        C(VIR_MIGRATE_PARAM_URI), e.g. C(tcp://192.0.2.2) for a dedicated migration link; by default the target
        host's own name as its libvirt resolves it.
    type: str
  bandwidth:
    description:
      - O(mode=live) only. Upper limit of the migration, in MiB/s (C(VIR_MIGRATE_PARAM_BANDWIDTH)); by default
        libvirt's.
    type: int
  timeout:
    description:
      - O(mode=live) only. Seconds after which a migration still running is aborted; the domain keeps running on
        the source and the task fails. By default no limit.
    type: int
  guest_agent_timeout:
    description:
      - O(mode=cold) only. After the domain started on the target, wait up to this many seconds for its QEMU guest
        agent to answer (virDomainGetTime, which asks the agent the guest's clock), before the source is touched.
        When it does not answer in time, the task fails and everything is undone (the target's copy powered off
        and removed, the source started again if it ran).
      - The domain must start on the target (O(start), by default when it runs on the source) and have a guest
        agent channel (a C(virtio) channel named C(org.qemu.guest_agent.0), as M(phyllome.os.domain) makes with
        C(guest_agent=true)); otherwise the task fails before any change.
      - Each question may itself wait for libvirt's agent timeout (5 s by default) when the agent is connected
        but silent, so the wait can end up to that much later.
      - By default the agent is not waited for.
    type: int
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads both hosts and returns the plan and the steps without calling any mutating libvirt API. The
      varstore and the TPM state are one step each there; the real run lists the pools and volumes it uses for them.
  diff_mode:
    support: full
    details: The diff names the host that holds the domain before and after.
  platform:
    support: full
    platforms: posix
    details: Wherever both libvirt URIs are reachable (the controller, the source host).
requirements:
  - libvirt-python (the C(python3-libvirt) package on Fedora and Debian) and lxml (C(python3-lxml)) where the
    module runs
  - libvirt 3.4 or later on both hosts (sparse volume streams)
notes:
  - Disks must be files that a storage pool of the source lists (any C(dir), C(fs) or C(netfs) pool; define one
    over a directory of images with M(phyllome.os.storage_pool)). Target pools must be directory-backed.
  - The TPM state is read from C(/var/lib/libvirt/swtpm/<uuid>/), where a system libvirtd keeps it.
  - O(mode=live) needs distinct host UUIDs on the two hosts (libvirt refuses to migrate to the "same host"; give
    cloned machines one each with the C(phyllome_host_libvirt_host_uuid) variable of the C(phyllome.os.host) role,
    libvirt's C(host_uuid)) and the target's migration ports (49152-49215) reachable from the source at
    O(migrate_uri).
  - Copied files take the owner and mode they had on the source (numeric ids); libvirt sets the owner QEMU and
    swtpm need when the domain starts.
seealso:
  - module: phyllome.os.domain
  - module: phyllome.os.storage_pool
  - name: libvirt storage volume streams (virStorageVolDownload, virStorageVolUpload)
    description: The API the copies go through.
    link: https://libvirt.org/html/libvirt-libvirt-storage.html#virStorageVolDownload
author:
  - Phyllome OS developers (@PhyllomeOS)
'''

EXAMPLES = r'''
- name: Move vm1 from host1 to host2, with the controller reaching both
  phyllome.os.migrate:
    name: vm1
    source_uri: qemu+ssh://root@host1/system
    target_uri: qemu+ssh://root@host2/system
    shutdown_timeout: 300
  delegate_to: localhost

- name: Move it into another pool and network, keeping a stopped copy on the source
  phyllome.os.migrate:
    name: vm1
    target_uri: qemu+ssh://root@host2/system
    storage_map:
      default: images
    network_map:
      default: lan
    keep_source: true
    start: true

- name: Move a running VM while it runs, over a dedicated link, at most 500 MiB/s
  phyllome.os.migrate:
    name: vm1
    mode: live
    source_uri: qemu+ssh://root@host1/system
    target_uri: qemu+ssh://root@host2/system
    migrate_uri: tcp://192.0.2.2
    bandwidth: 500
    timeout: 1800

- name: Move it cold, start it on host2 and wait up to 3 minutes for its guest agent before removing it from host1
  phyllome.os.migrate:
    name: vm1
    source_uri: qemu+ssh://root@host1/system
    target_uri: qemu+ssh://root@host2/system
    start: true
    guest_agent_timeout: 180

- name: What would move, and how many bytes (check mode)
  phyllome.os.migrate:
    name: vm1
    target_uri: qemu+ssh://root@host2/system
  check_mode: true
  register: plan
'''

RETURN = r'''
state:
  description: V(migrated) once the target holds the domain (at once when it already did).
  returned: success
  type: str
  sample: migrated
plan:
  description: What moves and where; null when there was nothing to do.
  returned: success
  type: dict
  contains:
    disks:
      description: One per disk, with C(target) (the guest's device name), C(source_pool), C(source_path),
        C(target_pool), C(target_path), C(volume), C(format), C(capacity), C(allocation) (bytes the image takes
        on the source) and C(physical) (the file's size), sizes in bytes.
      type: list
      elements: dict
    nvram:
      description: The UEFI varstore's path (the same on both hosts), or null.
      type: str
    tpm_state_dir:
      description: The directory of the swtpm state (the same on both hosts), or null.
      type: str
    networks:
      description: One per C(network) interface, with C(mac), C(source_network) and C(target_network).
      type: list
      elements: dict
    bytes_to_copy:
      description: The disks' allocation on the source, in bytes (holes are not sent).
      type: int
  sample:
    disks:
      - target: vda
        source_pool: default
        source_path: /var/lib/libvirt/images/vm1.qcow2
        target_pool: default
        target_path: /var/lib/libvirt/images/vm1.qcow2
        volume: vm1.qcow2
        format: qcow2
        capacity: 21474836480
        allocation: 2147483648
        physical: 2148007936
    nvram: /var/lib/libvirt/qemu/nvram/vm1_VARS.fd
    tpm_state_dir: /var/lib/libvirt/swtpm/6f1c1e4e-8a0e-4c8e-9d43-2b8e0f6c2a51/tpm2
    networks:
      - mac: '52:54:00:12:34:56'
        source_network: default
        target_network: default
    bytes_to_copy: 2147483648
copied:
  description: One per file copied, with C(source), C(target), C(bytes) (data sent), C(holes) (bytes left as
    holes), C(seconds), C(mb_per_s), C(sha256) (of the content; see docs/decisions/migration.md), C(verified) and
    C(verified_by) (C(target) when hashed on the target host over ssh, C(read-back) when read back through
    libvirt).
  returned: success
  type: list
  elements: dict
bytes_copied:
  description: Data bytes sent over the link, all copies together (with O(mode=live), the varstore's copy plus
    what libvirt's migration sent, RV(migration.bytes)).
  returned: success
  type: int
copy_seconds:
  description: Seconds spent streaming, all copies together (with O(mode=live), plus RV(migration.seconds)).
  returned: success
  type: float
mb_per_s:
  description: bytes_copied / copy_seconds, in MB/s (10^6 bytes); null when nothing was copied.
  returned: success
  type: float
verify_seconds:
  description: Seconds the verify of the copies (O(verify)) took after their copy had ended (hashing on the
    target, or what is left of the read-back, whose rest overlaps the copy and is inside RV(copy_seconds)); null
    when nothing was verified.
  returned: success
  type: float
verify_notes:
  description: Why copies were read back through libvirt rather than hashed on the target (O(verify) with a
    C(qemu+ssh) O(target_uri) whose login cannot read the copies, or a hash there that failed); empty otherwise.
  returned: success
  type: list
  elements: str
seconds:
  description: Seconds from the first change to the domain defined (and started) on the target.
  returned: when the domain moved
  type: float
migration_seconds:
  description: O(mode=live) only. Seconds the module waited for libvirt's live migration (memory and disks),
    from its call to its return.
  returned: when the domain moved live
  type: float
migration:
  description: O(mode=live) only. What libvirt says its migration job moved (the completed job's statistics on
    the source, virDomainGetJobStats with VIR_DOMAIN_JOB_STATS_COMPLETED, as C(virsh domjobinfo --completed)
    shows them); absent when libvirt kept none.
  returned: when the domain moved live
  type: dict
  contains:
    bytes:
      description: Bytes QEMU sent, memory and disks (libvirt's C(data_processed)).
      type: int
    memory_bytes:
      description: Bytes of memory sent (C(memory_processed)); pages sent again count again.
      type: int
    disk_bytes:
      description: Bytes of the disks mirrored (C(disk_processed)).
      type: int
    seconds:
      description: The job's duration (C(time_elapsed)).
      type: float
    mb_per_s:
      description: bytes / seconds, in MB/s (10^6 bytes).
      type: float
    downtime_ms:
      description: Milliseconds the guest was paused while it switched hosts (C(downtime)).
      type: int
  sample:
    bytes: 150472688
    memory_bytes: 83363824
    disk_bytes: 67108864
    seconds: 1.565
    mb_per_s: 96.1
    downtime_ms: 133
guest_agent_seconds:
  description: Seconds from the start on the target until the guest agent answered (O(guest_agent_timeout)).
  returned: when the domain moved with O(guest_agent_timeout) set (null in check mode)
  type: float
started:
  description: Whether the domain was started on the target.
  returned: when the domain moved
  type: bool
actions:
  description: The steps taken (or, in check mode, that would be), and every undo after a failure.
  returned: always
  type: list
  elements: str
'''

import functools

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.phyllome.os.plugins.module_utils._common.actions import ActionRecorder
from ansible_collections.phyllome.os.plugins.module_utils._common.module_glue import run_and_exit
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.domain_client import DomainClient
from ansible_collections.phyllome.os.plugins.module_utils._migrate.cold import argument_spec, run


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    # run_command: the verify's ssh to the target, which hashes a copy there (a read, never in check mode).
    recorder = ActionRecorder(check_mode=module.check_mode, run_command=module.run_command)
    run_and_exit(module, recorder, run, module.params, recorder, functools.partial(DomainClient.connect, keepalive=True))


if __name__ == '__main__':
    main()
