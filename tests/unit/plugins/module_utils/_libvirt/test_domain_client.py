# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt edge for domains, on libvirt's in-process test driver."""

from __future__ import annotations

import uuid as uuid_module

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import LibvirtFailure
from ansible_collections.phyllome.os.plugins.module_utils._libvirt import domain_client
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.domain_client import DomainClient

libvirt = pytest.importorskip('libvirt')

URI = 'test:///default'
XML = ("<domain type='test'><name>%s</name><memory>131072</memory><vcpu>1</vcpu>"
       "<os><type arch='x86_64'>hvm</type></os></domain>")


@pytest.fixture
def client():
    client = DomainClient.connect(URI)
    yield client
    client.conn.close()


@pytest.fixture
def dom(client):
    dom = client.define(XML % ('client-%s' % uuid_module.uuid4().hex[:8]))
    yield dom
    try:
        if dom.isActive():
            dom.destroy()
        dom.undefine()
    except libvirt.libvirtError:
        pass


def test_lookup(client, dom):
    assert client.lookup(dom.name()).UUIDString() == dom.UUIDString()
    assert client.lookup('no-such-domain') is None
    assert client.lookup_uuid(dom.UUIDString()).name() == dom.name()
    assert client.lookup_uuid(str(uuid_module.uuid4())) is None


def test_state_and_lifecycle(client, dom):
    assert client.state(dom) == 'shutoff' and client.domain_id(dom) is None
    client.start(dom)
    assert client.state(dom) == 'running' and client.domain_id(dom) > 0
    client.suspend(dom)
    assert client.state(dom) == 'paused'
    # A paused domain is resumed before the power button: paused guests cannot see it.
    assert client.shutdown(dom, 10, sleep=lambda s: None) is True
    assert client.state(dom) == 'shutoff'
    client.start(dom, paused=True)
    assert client.state(dom) == 'paused'
    client.destroy(dom)
    client.destroy(dom)  # already off: fine
    assert client.state(dom) == 'shutoff'


def test_undefine_drops_flags_the_driver_does_not_know(client, dom):
    name = dom.name()
    client.undefine(dom)
    assert client.lookup(name) is None


def test_undefine_flags():
    assert domain_client.UNDEFINE_ALL == (libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                                          | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                                          | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
                                          | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
                                          | libvirt.VIR_DOMAIN_UNDEFINE_TPM)


def test_autostart(client, dom):
    client.set_autostart(dom, True)
    assert client.autostart(dom) is True
    client.set_autostart(dom, False)
    assert client.autostart(dom) is False


def test_errors_carry_libvirt_words(client):
    with pytest.raises(LibvirtFailure, match='libvirt refused the domain definition: .*'):
        client.define("<domain type='test'><name>x</name></domain>")


def test_domain_capabilities_of_a_driver_without_them(client):
    assert client.domain_capabilities('x86_64', 'q35', 'kvm') is None


@pytest.mark.parametrize('source', ['agent', 'lease', 'arp'])
def test_interface_addresses(client, source):
    # the test driver answers every source with the same made-up address
    addresses = client.interface_addresses(client.lookup('test'), source)
    assert addresses == {'aa:bb:cc:dd:ee:ff': [{'address': '192.168.122.3', 'prefix': 24, 'family': 'ipv4'}]}


def test_address_sources_are_libvirts():
    assert domain_client.ADDRESS_SOURCES == {
        'agent': libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT,
        'lease': libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
        'arp': libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP}


def test_interface_addresses_of_an_inactive_domain_fail(client, dom):
    with pytest.raises(LibvirtFailure, match='lease addresses of %s: ' % dom.name()):
        client.interface_addresses(dom, 'lease')


def test_volumes(client):
    name = 'client-%s.raw' % uuid_module.uuid4().hex[:8]
    assert client.volume_exists('default-pool', name) is False
    client.create_volume('default-pool', "<volume><name>%s</name><capacity>1024</capacity></volume>" % name)
    assert client.volume_exists('default-pool', name) is True
    assert client.delete_volume('default-pool', name) is True
    assert client.delete_volume('default-pool', name) is False
    with pytest.raises(LibvirtFailure, match='storage pool no-such-pool'):
        client.volume_exists('no-such-pool', name)


class _CountingPool:
    """Wraps a storage pool and counts refresh() calls."""

    def __init__(self, pool):
        self._pool = pool
        self.refreshed = 0

    def refresh(self, flags=0):
        self.refreshed += 1
        return self._pool.refresh(flags)

    def __getattr__(self, name):
        return getattr(self._pool, name)


def test_a_missing_volume_is_a_read_and_a_refresh_is_asked_for(client, monkeypatch):
    # volume_exists never rescans (virStoragePoolRefresh changes libvirt's
    # state): the manager records refresh_pool through the recorder.
    pool = _CountingPool(client.conn.storagePoolLookupByName('default-pool'))
    monkeypatch.setattr(client, '_pool', lambda name: pool)
    assert client.volume_exists('default-pool', 'absent-%s.raw' % uuid_module.uuid4().hex[:8]) is False
    assert pool.refreshed == 0
    client.refresh_pool('default-pool')
    assert pool.refreshed == 1


@pytest.mark.parametrize('uri, local', [
    ('qemu:///system', True), ('qemu:///session', True), ('test:///default', True),
    ('qemu+ssh://root@host1/system', False), ('qemu+tls://host1.example.com/system', False),
])
def test_is_local(uri, local):
    assert DomainClient(None, uri).is_local is local


class _Guest:
    """A domain whose guest answers the power button after `polls` state checks (never when None)."""

    def __init__(self, polls):
        self.polls = polls
        self.pressed = 0

    def name(self):
        return 'guest'

    def state(self):
        return [1, 1]

    def isActive(self):
        if self.polls is None:
            return True
        self.polls -= 1
        return self.polls > 0

    def shutdownFlags(self, flags):
        assert flags == domain_client.SHUTDOWN_ACPI_POWER_BTN
        self.pressed += 1


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.mark.parametrize('polls, result, elapsed', [(3, True, 0.5), (None, False, 30.0)])
def test_shutdown_waits_then_reports(polls, result, elapsed):
    client = DomainClient(None, URI)
    guest, clock = _Guest(polls), _Clock()
    assert client.shutdown(guest, 30, sleep=clock.sleep, clock=clock) is result
    assert guest.pressed == 1
    assert clock.now == pytest.approx(elapsed)


class CountingConnection:
    """A libvirt connection that counts the capability reads (everything else is the real connection's)."""

    def __init__(self, conn):
        self._conn = conn
        self.reads = []

    def __getattr__(self, name):
        value = getattr(self._conn, name)
        if name not in ('getCapabilities', 'getDomainCapabilities'):
            return value

        def counted(*args):
            self.reads.append((name,) + args[1:4])
            return value(*args)
        return counted


def test_capabilities_are_read_once_per_connection():
    conn = CountingConnection(libvirt.open(URI))
    client = DomainClient(conn, URI)
    try:
        assert client.capabilities() == client.capabilities()
        for dummy in range(3):
            assert client.domain_capabilities('x86_64', 'q35', 'kvm') is None
        assert client.domain_capabilities('x86_64', 'pc', 'kvm') is None
        assert conn.reads == [('getCapabilities',), ('getDomainCapabilities', 'x86_64', 'q35', 'kvm'),
                              ('getDomainCapabilities', 'x86_64', 'pc', 'kvm')]
    finally:
        conn.close()


def test_a_refused_domain_capabilities_read_is_refused_again_without_asking(monkeypatch):
    client = DomainClient.connect(URI)
    calls = []

    def refuse(*args):
        calls.append(args)
        raise libvirt.libvirtError('invalid argument: KVM is not supported by this QEMU binary')
    monkeypatch.setattr(client.conn, 'getDomainCapabilities', refuse)
    try:
        for dummy in range(2):
            with pytest.raises(LibvirtFailure) as exc:
                client.domain_capabilities('x86_64', 'q35', 'kvm')
            assert 'cannot run kvm domains of machine q35' in exc.value.msg
        assert len(calls) == 1
    finally:
        client.close()


def test_a_driver_that_cannot_compare_cpus_says_so(client):
    # libvirt's test driver has no virConnectCompareHypervisorCPU; the real verdicts are the migrate
    # integration target's (an incompatible CPU between two private libvirtds).
    with pytest.raises(LibvirtFailure, match="cannot compare the domain CPU with the hypervisor's: .*not supported"):
        client.compare_hypervisor_cpu("<cpu><model>qemu64</model></cpu>", 'x86_64', None, 'test')


def test_job_statistics_of_a_driver_without_them_fail(client, dom):
    with pytest.raises(LibvirtFailure, match='cannot read the job statistics of client-'):
        client.job_stats(dom, completed=True)


class _AgentError(libvirt.libvirtError):
    def __init__(self, code):
        libvirt.libvirtError.__init__(self, 'agent says %d' % code)
        self.code = code

    def get_error_code(self):
        return self.code


class _AgentGuest:
    """A domain whose guest agent answers virDomainGetTime after `silent` questions (never when None)."""

    def __init__(self, silent, code=libvirt.VIR_ERR_AGENT_UNRESPONSIVE):
        self.silent = silent
        self.code = code
        self.asked = 0

    def name(self):
        return 'guest'

    def getTime(self, flags):
        self.asked += 1
        if self.silent is None or self.asked <= self.silent:
            raise _AgentError(self.code)
        return {'seconds': 1, 'nseconds': 0}


@pytest.mark.parametrize('silent, waited, asked', [(0, 0.0, 1), (3, 3.0, 4), (None, None, 11)])
def test_wait_guest_agent_asks_once_a_second(silent, waited, asked):
    client = DomainClient(None, URI)
    guest, clock = _AgentGuest(silent), _Clock()
    assert client.wait_guest_agent(guest, 10, sleep=clock.sleep, clock=clock) == waited
    assert guest.asked == asked


def test_an_unsynced_agent_is_asked_again_a_stopped_domain_fails():
    client = DomainClient(None, URI)
    clock = _Clock()
    assert client.wait_guest_agent(_AgentGuest(1, libvirt.VIR_ERR_AGENT_UNSYNCED), 5, sleep=clock.sleep,
                                   clock=clock) == 1.0
    with pytest.raises(LibvirtFailure, match='cannot reach the guest agent of guest: agent says 55'):
        client.wait_guest_agent(_AgentGuest(None, libvirt.VIR_ERR_OPERATION_INVALID), 5, sleep=clock.sleep,
                                clock=clock)


def test_the_guest_agent_of_a_running_domain_answers_a_stopped_one_fails(client, dom):
    # libvirt's test driver answers virDomainGetTime for a running domain as an agent would.
    with pytest.raises(LibvirtFailure, match='cannot reach the guest agent of client-.*not running'):
        client.guest_agent_answers(dom)
    dom.create()
    assert client.guest_agent_answers(dom) is True
    assert client.wait_guest_agent(dom, 5) == pytest.approx(0.0, abs=0.5)


class LostConn:
    """A connection whose peer stopped answering (libvirt closed it)."""
    closed = False

    def isAlive(self):
        return 0

    def close(self):
        self.closed = True


def test_reconnect_keeps_a_live_connection(client):
    conn = client.conn
    assert client.reconnect() is False and client.conn is conn


def test_reconnect_opens_a_lost_connection_again(client):
    lost = client.conn
    client.conn = LostConn()
    try:
        assert client.reconnect() is True
        assert client.conn.isAlive() and client.conn.getType() == 'TEST'
    finally:
        lost.close()


def test_a_failed_reconnect_keeps_the_lost_connection(client, monkeypatch):
    def refused(uri, **options):
        raise LibvirtFailure('cannot connect to libvirt at %s: Network is unreachable' % uri)
    monkeypatch.setattr(domain_client, 'open_connection', refused)
    live, lost = client.conn, LostConn()
    client.conn = lost
    try:
        with pytest.raises(LibvirtFailure, match='Network is unreachable'):
            client.reconnect()
        assert client.conn is lost and not lost.closed
    finally:
        client.conn = live
