# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt edge for domains: every libvirt call phyllome.os.domain and domain_info make.

Reads return plain data or XML text; mutations are plain methods that the
caller passes to ActionRecorder.apply(), so check mode never reaches them.
libvirt errors become LibvirtFailure carrying libvirt's own message. No XML
is interpreted here (_domain.host, _domain.summary and _domain.compare do that).
"""

from __future__ import annotations

import re
import stat
import time
from urllib.parse import urlparse

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import LibvirtFailure
from ansible_collections.phyllome.os.plugins.module_utils._common.hostfs import HostFS
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.connection import libvirt_module, open_connection, version_string

# libvirt's virDomainState, in libvirt's words (by value), and those of a domain that has a QEMU process.
STATE_NAMES = ('nostate', 'running', 'blocked', 'paused', 'shutdown', 'shutoff', 'crashed', 'pmsuspended')
ACTIVE_STATES = ('running', 'blocked', 'paused', 'shutdown', 'pmsuspended')

# virDomainUndefineFlagsValues, by value: libvirt-python of an older libvirt
# lacks the names of newer flags (TPM came with libvirt 8.9).
UNDEFINE_MANAGED_SAVE = 1
UNDEFINE_SNAPSHOTS_METADATA = 2
UNDEFINE_NVRAM = 4
UNDEFINE_CHECKPOINTS_METADATA = 16
UNDEFINE_TPM = 32
UNDEFINE_ALL = (UNDEFINE_MANAGED_SAVE | UNDEFINE_SNAPSHOTS_METADATA | UNDEFINE_NVRAM
                | UNDEFINE_CHECKPOINTS_METADATA | UNDEFINE_TPM)

# virDomainXMLFlags / virDomainShutdownFlagValues / virDomainCreateFlags.
XML_SECURE = 1
XML_INACTIVE = 2
METADATA_ELEMENT = 2
# virDomainModificationImpact (and the device and memory flags that share it).
AFFECT_LIVE = 1
AFFECT_CONFIG = 2
SHUTDOWN_ACPI_POWER_BTN = 1
START_PAUSED = 1
BLOCK_RESIZE_BYTES = 1
# virConnectBaselineCPUFlags: every feature listed, not only those beyond the model;
# only the features a domain keeps across a migration (no invtsc, no host-only ones).
BASELINE_CPU_EXPAND_FEATURES = 1
BASELINE_CPU_MIGRATABLE = 2
# virConnectCompareCPUFlags FAIL_INCOMPATIBLE: an incompatible CPU is an error (VIR_ERR_CPU_INCOMPATIBLE) whose
# message names the features the hypervisor lacks; virCPUCompareResult otherwise.
COMPARE_CPU_FAIL_INCOMPATIBLE = 1
CPU_COMPARE = {0: 'incompatible', 1: 'identical', 2: 'superset'}
# virDomainGetJobStatsFlags: the last completed job, kept for `virsh domjobinfo --completed` after we read it.
JOB_STATS_COMPLETED = 1
JOB_STATS_KEEP_COMPLETED = 2

# virDomainInterfaceAddressesSource (VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_*), by value:
# the DHCP lease of the domain's libvirt network, the guest agent, the host's ARP table.
ADDRESS_SOURCES = {'lease': 0, 'agent': 1, 'arp': 2}

# Bytes per send or receive on a volume stream (libvirt's own message size).
_STREAM_CHUNK = 256 * 1024

_UNSUPPORTED_FLAGS = re.compile(r'unsupported flags \((0x[0-9a-fA-F]+)\)')


class DomainClient:
    """Domain operations on one libvirt connection."""

    def __init__(self, conn, uri, hostfs=None):
        self.conn = conn
        self.uri = uri
        self.libvirt = libvirt_module()
        # The files of the machine libvirt runs on, when it is this one (see path_exists).
        self.hostfs = hostfs or HostFS('/')
        # What the host offers does not change during a task: read it once per
        # connection, however many domains the task converges.
        self._capabilities = None
        self._domain_capabilities = {}
        # how connect() opened it, for reconnect()
        self._options = {}

    @classmethod
    def connect(cls, uri, readonly=False, keepalive=False):
        client = cls(open_connection(uri, readonly=readonly, keepalive=keepalive), uri)
        client._options = {'readonly': readonly, 'keepalive': keepalive}
        return client

    def reconnect(self):
        """Open the connection again when it was lost (its peer stopped answering); True when it was reopened.

        Handles of the lost connection are dead: look the objects up again.
        Raises LibvirtFailure when the peer still cannot be reached.
        """
        if self.conn is not None and self.conn.isAlive():
            return False
        # Until a new one opens, calls go to the lost one (and fail with libvirt's error).
        conn = open_connection(self.uri, **self._options)
        self.close()
        self.conn = conn
        self._capabilities = None
        self._domain_capabilities = {}
        return True

    def close(self):
        """Close the connection (once; errors closing it are not the task's)."""
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except self.libvirt.libvirtError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False

    @property
    def is_local(self):
        """True when libvirt runs on this machine (no host in the URI), so its paths are ours."""
        return not urlparse(self.uri).hostname

    def _call(self, what, func, *args):
        try:
            return func(*args)
        except self.libvirt.libvirtError as exc:
            raise LibvirtFailure('%s: %s' % (what, exc), uri=self.uri)

    def _error_code(self, exc):
        return exc.get_error_code()

    # --- reads -------------------------------------------------------------

    def lookup(self, name):
        """The domain named `name`, or None."""
        return self._lookup(self.conn.lookupByName, name)

    def lookup_uuid(self, uuid):
        """The domain of UUID `uuid`, or None."""
        return self._lookup(self.conn.lookupByUUIDString, uuid)

    def _lookup(self, func, key):
        try:
            return func(key)
        except self.libvirt.libvirtError as exc:
            if self._error_code(exc) == self.libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise LibvirtFailure('cannot look up domain %s: %s' % (key, exc), uri=self.uri)

    def name(self, dom):
        return dom.name()

    def list_domains(self):
        return self._call('cannot list domains', self.conn.listAllDomains, 0)

    def inactive_xml(self, dom):
        """The stored definition, with secrets (graphics passwords) so a redefinition keeps them."""
        return self._call('cannot read the definition of %s' % dom.name(), dom.XMLDesc, XML_INACTIVE | XML_SECURE)

    def xml(self, dom, inactive=False):
        """The definition without secrets (for reports)."""
        return self._call('cannot read the definition of %s' % dom.name(), dom.XMLDesc, XML_INACTIVE if inactive else 0)

    def state(self, dom):
        if dom is None:
            return 'shutoff'
        state = self._call('cannot read the state of %s' % dom.name(), dom.state)[0]
        return STATE_NAMES[state] if 0 <= state < len(STATE_NAMES) else 'nostate'

    def is_active(self, dom):
        return dom is not None and bool(self._call('cannot read the state of %s' % dom.name(), dom.isActive))

    def domain_id(self, dom):
        """The ID of a running domain (a new one at every start), or None."""
        dom_id = self._call('cannot read the ID of %s' % dom.name(), dom.ID)
        return dom_id if dom_id is not None and dom_id >= 0 else None

    def autostart(self, dom):
        return bool(self._call('cannot read autostart of %s' % dom.name(), dom.autostart))

    def is_persistent(self, dom):
        return bool(self._call('cannot read %s' % dom.name(), dom.isPersistent))

    def uuid(self, dom):
        return dom.UUIDString()

    def version(self):
        """The version of the host's libvirt, as text ('9.0.0')."""
        return version_string(self._call('cannot read the version of libvirt', self.conn.getLibVersion))

    def capabilities(self):
        """The host capabilities XML (read once per connection)."""
        if self._capabilities is None:
            self._capabilities = self._call('cannot read the host capabilities', self.conn.getCapabilities)
        return self._capabilities

    def domain_capabilities(self, arch, machine, virttype):
        """Domain capabilities XML, or None when the driver has none (libvirt's test driver).

        Read once per connection for each (arch, machine, type), a refusal too.
        """
        key = (arch, machine, virttype)
        if key not in self._domain_capabilities:
            try:
                self._domain_capabilities[key] = (self._read_domain_capabilities(arch, machine, virttype), None)
            except LibvirtFailure as exc:
                self._domain_capabilities[key] = (None, exc.msg)
        xml, refusal = self._domain_capabilities[key]
        if refusal is not None:
            raise LibvirtFailure(refusal, uri=self.uri)
        return xml

    def baseline_hypervisor_cpu(self, cpu_xmls, arch=None, machine=None, virttype=None, expand=False):
        """The migratable CPU that every one of `cpu_xmls` can run, as this connection's hypervisor provides it.

        libvirt's virConnectBaselineHypervisorCPU: the result is limited by
        what the QEMU (and KVM) behind this connection can run too, so the
        connection should be one of the hosts the CPUs come from. `expand`
        lists every feature of the model instead of only the extra ones.
        """
        flags = BASELINE_CPU_MIGRATABLE | (BASELINE_CPU_EXPAND_FEATURES if expand else 0)
        try:
            return self.conn.baselineHypervisorCPU(None, arch, machine, virttype, list(cpu_xmls), flags)
        except self.libvirt.libvirtError as exc:
            raise LibvirtFailure('libvirt cannot compute a baseline CPU: %s' % exc, uri=self.uri)

    def compare_hypervisor_cpu(self, cpu_xml, arch=None, machine=None, virttype=None):
        """libvirt's verdict on the guest CPU `cpu_xml` on this connection's hypervisor: (verdict, detail).

        virConnectCompareHypervisorCPU: verdict is 'identical', 'superset' or
        'incompatible'; detail is libvirt's own sentence for an incompatible
        CPU (it names the features the hypervisor lacks), else None.
        """
        try:
            found = self.conn.compareHypervisorCPU(None, arch, machine, virttype, cpu_xml, COMPARE_CPU_FAIL_INCOMPATIBLE)
        except self.libvirt.libvirtError as exc:
            if self._error_code(exc) == self.libvirt.VIR_ERR_CPU_INCOMPATIBLE:
                return 'incompatible', exc.get_error_message()
            raise LibvirtFailure('cannot compare the domain CPU with the hypervisor\'s: %s' % exc, uri=self.uri)
        return CPU_COMPARE.get(found, str(found)), None

    def _read_domain_capabilities(self, arch, machine, virttype):
        try:
            return self.conn.getDomainCapabilities(None, arch, machine, virttype, 0)
        except self.libvirt.libvirtError as exc:
            if self._error_code(exc) == self.libvirt.VIR_ERR_NO_SUPPORT:
                return None
            raise LibvirtFailure('this host cannot run %s domains of machine %s: %s' % (virttype, machine, exc),
                                 uri=self.uri)

    def pool_xmls(self):
        pools = self._call('cannot list storage pools', self.conn.listAllStoragePools, 0)
        return [self._call('cannot read storage pool', pool.XMLDesc, 0) for pool in pools]

    def job_stats(self, dom, completed=False):
        """libvirt's statistics of the domain's current job, or of its last completed one; {} when there is none.

        virDomainGetJobStats: time_elapsed (ms), data_processed, memory_processed,
        disk_processed, disk_total (bytes), downtime (ms)... A completed job's
        statistics stay readable afterwards (KEEP_COMPLETED).
        """
        flags = JOB_STATS_COMPLETED | JOB_STATS_KEEP_COMPLETED if completed else 0
        stats = self._call('cannot read the job statistics of %s' % dom.name(), dom.jobStats, flags)
        # type 0 is VIR_DOMAIN_JOB_NONE.
        return stats if stats and stats.get('type') else {}

    def guest_agent_answers(self, dom):
        """Whether the domain's guest agent answers now (virDomainGetTime, which asks it guest-get-time).

        A libvirt API rather than a raw agent command (virsh qemu-agent-command
        marks the domain tainted). False while the agent is not connected or
        does not answer; other failures (the domain stopped) raise.
        """
        try:
            dom.getTime(0)
        except self.libvirt.libvirtError as exc:
            if self._error_code(exc) in (self.libvirt.VIR_ERR_AGENT_UNRESPONSIVE, self.libvirt.VIR_ERR_AGENT_UNSYNCED):
                return False
            raise LibvirtFailure('cannot reach the guest agent of %s: %s' % (dom.name(), exc), uri=self.uri)
        return True

    def wait_guest_agent(self, dom, timeout, sleep=time.sleep, clock=time.monotonic):
        """Ask the guest agent until it answers, up to `timeout` s: the seconds it took, None when it did not."""
        started = clock()
        while True:
            if self.guest_agent_answers(dom):
                return clock() - started
            left = started + timeout - clock()
            if left <= 0:
                return None
            sleep(min(1.0, left))

    def volume_exists(self, pool_name, volume):
        """Whether libvirt lists the volume in the pool (a read: no refresh, see refresh_pool)."""
        return self.volume_xml(pool_name, volume) is not None

    def volume_xml(self, pool_name, volume):
        """A volume's XML, None when libvirt does not list it in the pool (a read: no refresh)."""
        pool = self._pool(pool_name)
        try:
            vol = pool.storageVolLookupByName(volume)
        except self.libvirt.libvirtError as exc:
            if self._error_code(exc) == self.libvirt.VIR_ERR_NO_STORAGE_VOL:
                return None
            raise LibvirtFailure('cannot look up volume %s in pool %s: %s' % (volume, pool_name, exc), uri=self.uri)
        return self._call('cannot read volume %s in pool %s' % (volume, pool_name), vol.XMLDesc, 0)

    def volume_at_path(self, path):
        """(pool, volume, XML) of the volume whose file is `path`, None when no pool lists it."""
        try:
            vol = self.conn.storageVolLookupByPath(path)
        except self.libvirt.libvirtError:
            return None
        pool = self._call('cannot find the pool of %s' % path, vol.storagePoolLookupByVolume)
        return (self._call('cannot read a storage pool', pool.name), vol.name(),
                self._call('cannot read volume %s' % path, vol.XMLDesc, 0))

    def path_exists(self, path):
        """Whether a disk image exists: on this machine directly, on a remote host through libvirt's pools."""
        if self.is_local:
            return self.hostfs.exists(path)
        try:
            self.conn.storageVolLookupByPath(path)
        except self.libvirt.libvirtError:
            return False
        return True

    def image_start(self, path, length):
        """(first `length` bytes, size in bytes) of an image file on this machine (not through libvirt: a file
        in no storage pool; only for a local libvirt, see path_exists)."""
        found = self.hostfs.stat(path)
        size = found.st_size if found is not None and stat.S_ISREG(found.st_mode) else None
        return self.hostfs.read_bytes(path, default=b'', size=length), size

    def _pool(self, name):
        try:
            return self.conn.storagePoolLookupByName(name)
        except self.libvirt.libvirtError as exc:
            raise LibvirtFailure('storage pool %s: %s' % (name, exc), uri=self.uri)

    def node_device_exists(self, name):
        try:
            self.conn.nodeDeviceLookupByName(name)
        except self.libvirt.libvirtError as exc:
            if self._error_code(exc) == self.libvirt.VIR_ERR_NO_NODE_DEVICE:
                return False
            raise LibvirtFailure('cannot look up host device %s: %s' % (name, exc), uri=self.uri)
        return True

    def usb_device_xmls(self):
        flag = getattr(self.libvirt, 'VIR_CONNECT_LIST_NODE_DEVICES_CAP_USB_DEV', 0)
        devices = self._call('cannot list host USB devices', self.conn.listAllDevices, flag)
        return [self._call('cannot read host device', dev.XMLDesc, 0) for dev in devices]

    def interface_addresses(self, dom, source):
        """{mac: [{'address', 'prefix', 'family'}]} that one source (`agent`, `lease` or `arp`) knows.

        LibvirtFailure when that source cannot answer (no guest agent connected,
        a driver without it); the caller decides what to try next.
        """
        found = self._call('%s addresses of %s' % (source, dom.name()), dom.interfaceAddresses,
                           ADDRESS_SOURCES[source], 0) or {}
        result = {}
        for data in found.values():
            mac = (data.get('hwaddr') or '').lower()
            if not mac:
                continue
            known = result.setdefault(mac, [])
            for addr in data.get('addrs') or []:
                if addr.get('addr') and all(a['address'] != addr['addr'] for a in known):
                    family = 'ipv6' if addr.get('type') == self.libvirt.VIR_IP_ADDR_TYPE_IPV6 else 'ipv4'
                    known.append({'address': addr['addr'], 'prefix': addr.get('prefix'), 'family': family})
        return result

    # --- mutations (through ActionRecorder.apply) -------------------------

    def define(self, xml):
        return self._call('libvirt refused the domain definition', self.conn.defineXML, xml)

    def set_metadata(self, dom, namespace, prefix, xml):
        """Replace the stored definition's <metadata> element of `namespace` (its elements take the namespace)."""
        self._call('cannot set the metadata of %s' % dom.name(), dom.setMetadata, METADATA_ELEMENT, xml, prefix,
                   namespace, AFFECT_CONFIG)

    def start(self, dom, paused=False):
        try:
            dom.createWithFlags(START_PAUSED if paused else 0)
        except self.libvirt.libvirtError as exc:
            if not (paused and _UNSUPPORTED_FLAGS.search(str(exc))):
                raise LibvirtFailure('cannot start domain %s: %s' % (dom.name(), exc), uri=self.uri)
            # A driver that cannot start paused (libvirt's test driver): start, then pause.
            self._call('cannot start domain %s' % dom.name(), dom.create)
            self.suspend(dom)

    def suspend(self, dom):
        self._call('cannot pause domain %s' % dom.name(), dom.suspend)

    def resume(self, dom):
        self._call('cannot resume domain %s' % dom.name(), dom.resume)

    def destroy(self, dom):
        try:
            dom.destroy()
        except self.libvirt.libvirtError as exc:
            # It may have shut down by itself in the meantime.
            if self._error_code(exc) == self.libvirt.VIR_ERR_OPERATION_INVALID and not dom.isActive():
                return
            raise LibvirtFailure('cannot power off domain %s: %s' % (dom.name(), exc), uri=self.uri)

    def shutdown(self, dom, timeout, sleep=time.sleep, clock=time.monotonic):
        """Press the ACPI power button and wait up to `timeout` s; True once the domain is off.

        A paused guest cannot see the button: the caller resumes it first.
        """
        deadline = clock() + timeout
        pressed = False
        while True:
            if not self.is_active(dom):
                return True
            if not pressed:
                self.press_power_button(dom)
                pressed = True
            if clock() >= deadline:
                return False
            sleep(min(0.25, max(0.0, deadline - clock())))

    def press_power_button(self, dom):
        """Press the ACPI power button (a request the guest may ignore); do not wait."""
        flags = SHUTDOWN_ACPI_POWER_BTN
        while True:
            try:
                dom.shutdownFlags(flags)
                return
            except self.libvirt.libvirtError as exc:
                if not self.is_active(dom):
                    return
                # A driver without the ACPI method (libvirt's test driver)
                # gets the plain request: it picks its own method.
                if flags and _UNSUPPORTED_FLAGS.search(str(exc)):
                    flags = 0
                    continue
                raise LibvirtFailure('cannot shut down domain %s: %s' % (dom.name(), exc), uri=self.uri)

    def undefine(self, dom):
        """Undefine with nvram, TPM state, managed save, snapshot and checkpoint metadata.

        Drivers reject flags they do not know (libvirt's test driver, TPM
        before libvirt 8.9) naming them in the error: retry once without them.
        """
        flags = UNDEFINE_ALL
        for attempt in range(2):
            try:
                dom.undefineFlags(flags)
                return
            except self.libvirt.libvirtError as exc:
                match = _UNSUPPORTED_FLAGS.search(str(exc))
                if not match or attempt:
                    raise LibvirtFailure('cannot undefine domain %s: %s' % (dom.name(), exc), uri=self.uri)
                flags &= ~int(match.group(1), 16)

    def set_autostart(self, dom, enabled):
        self._call('cannot set autostart of %s' % dom.name(), dom.setAutostart, 1 if enabled else 0)

    def refresh_pool(self, pool_name):
        """Rescan a pool's storage (it lists files put there behind libvirt's back)."""
        pool = self._pool(pool_name)
        self._call('cannot refresh storage pool %s' % pool_name, pool.refresh, 0)

    def create_volume(self, pool_name, xml):
        pool = self._pool(pool_name)
        return self._call('cannot create a volume in pool %s' % pool_name, pool.createXML, xml, 0)

    def clone_volume(self, pool_name, xml, base_pool, base_volume):
        """Create a volume in `pool_name` as a copy of `base_volume` (virStorageVolCreateXMLFrom)."""
        pool = self._pool(pool_name)
        base = self._volume(base_pool, base_volume)
        return self._call('cannot copy volume %s of pool %s into pool %s' % (base_volume, base_pool, pool_name),
                          pool.createXMLFrom, xml, base, 0)

    def upload_volume(self, pool_name, volume, data):
        """Write `data` at the start of a volume (virStorageVolUpload through a stream)."""
        vol = self._volume(pool_name, volume)
        what = 'cannot write volume %s in pool %s' % (volume, pool_name)
        stream = self._call(what, self.conn.newStream, 0)
        try:
            self._call(what, vol.upload, stream, 0, len(data), 0)
            view = memoryview(data)
            while view:
                sent = self._call(what, stream.send, bytes(view[:_STREAM_CHUNK]))
                if sent <= 0:
                    raise LibvirtFailure('%s: the stream took no data' % what, uri=self.uri)
                view = view[sent:]
            self._call(what, stream.finish)
        except Exception:
            self._abort(stream)
            raise

    def _abort(self, stream):
        """End a failed volume stream; the error that failed it is the one to report."""
        try:
            stream.abort()
        except self.libvirt.libvirtError:
            pass

    def download_volume(self, pool_name, volume, length):
        """The first `length` bytes of a volume (virStorageVolDownload through a stream)."""
        vol = self._volume(pool_name, volume)
        what = 'cannot read volume %s in pool %s' % (volume, pool_name)
        stream = self._call(what, self.conn.newStream, 0)
        chunks = []
        try:
            self._call(what, vol.download, stream, 0, length, 0)
            while True:
                got = self._call(what, stream.recv, _STREAM_CHUNK)
                if not isinstance(got, bytes) or not got:
                    break
                chunks.append(got)
            self._call(what, stream.finish)
        except Exception:
            self._abort(stream)
            raise
        return b''.join(chunks)

    def resize_volume(self, pool_name, volume, capacity):
        """Grow a volume to `capacity` bytes (virStorageVolResize; never asked to shrink)."""
        vol = self._volume(pool_name, volume)
        self._call('cannot resize volume %s in pool %s' % (volume, pool_name), vol.resize, capacity, 0)

    def set_memory_live(self, dom, kib):
        """Set the balloon target of a running domain and its definition's <currentMemory> (KiB)."""
        self._call('cannot set the memory of running domain %s' % dom.name(), dom.setMemoryFlags, kib,
                   AFFECT_LIVE | AFFECT_CONFIG)

    def set_vcpus_live(self, dom, count):
        """Plug or unplug vCPUs of a running domain, and set its definition's <vcpu current=...>."""
        self._call('cannot set the vCPUs of running domain %s' % dom.name(), dom.setVcpusFlags, count,
                   AFFECT_LIVE | AFFECT_CONFIG)

    def attach_device(self, dom, xml):
        """Plug a device into a running domain and add it to its definition (one call, all or nothing)."""
        self._call('cannot attach the device to running domain %s' % dom.name(), dom.attachDeviceFlags, xml,
                   AFFECT_LIVE | AFFECT_CONFIG)

    def detach_device(self, dom, xml):
        """Ask a running domain's guest to release a device, and remove it from the definition.

        libvirt returns once the guest released it or after a few seconds
        with the request still pending; the caller watches the live XML.
        """
        self._call('cannot detach the device from running domain %s' % dom.name(), dom.detachDeviceFlags, xml,
                   AFFECT_LIVE | AFFECT_CONFIG)

    def update_device(self, dom, xml):
        """Change a device of a running domain in place (a CD/DVD medium, a NIC's link state or bandwidth)."""
        self._call('cannot update the device of running domain %s' % dom.name(), dom.updateDeviceFlags, xml,
                   AFFECT_LIVE | AFFECT_CONFIG)

    def block_resize(self, dom, target, capacity):
        """Grow a running domain's disk `target` to `capacity` bytes (virDomainBlockResize: QEMU grows the
        image it holds, and the guest sees the new size)."""
        self._call('cannot resize disk %s of domain %s' % (target, dom.name()), dom.blockResize, target, capacity,
                   BLOCK_RESIZE_BYTES)

    def _volume(self, pool_name, volume):
        pool = self._pool(pool_name)
        return self._call('cannot look up volume %s in pool %s' % (volume, pool_name), pool.storageVolLookupByName,
                          volume)

    def delete_volume(self, pool_name, volume):
        """Delete a volume; a volume (or pool) already gone is fine."""
        try:
            pool = self.conn.storagePoolLookupByName(pool_name)
            vol = pool.storageVolLookupByName(volume)
        except self.libvirt.libvirtError as exc:
            if self._error_code(exc) in (self.libvirt.VIR_ERR_NO_STORAGE_VOL, self.libvirt.VIR_ERR_NO_STORAGE_POOL):
                return False
            raise LibvirtFailure('cannot look up volume %s in pool %s: %s' % (volume, pool_name, exc), uri=self.uri)
        self._call('cannot delete volume %s in pool %s' % (volume, pool_name), vol.delete, 0)
        return True
