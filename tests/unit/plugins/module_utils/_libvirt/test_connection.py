# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import sys
import threading

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import LibvirtFailure, MissingLibrary
from ansible_collections.phyllome.os.plugins.module_utils._libvirt import connection


def test_uri_argument_spec_is_a_fresh_dict_each_time():
    spec = connection.uri_argument_spec()
    assert spec == {'uri': {'type': 'str', 'default': 'qemu:///system'}}
    spec['uri']['default'] = 'changed'
    assert connection.uri_argument_spec()['uri']['default'] == connection.DEFAULT_URI


@pytest.mark.parametrize('number, text', [(None, None), (9000000, '9.0.0'), (10010002, '10.10.2'), ('8002003', '8.2.3')])
def test_version_string(number, text):
    assert connection.version_string(number) == text


def test_without_libvirt_python_the_error_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, 'libvirt', None)
    with pytest.raises(MissingLibrary) as info:
        connection.open_connection('test:///default')
    assert info.value.package == 'python3-libvirt'


class FakeLibvirt:
    """What connection.py uses of libvirt-python."""

    class libvirtError(Exception):
        pass

    def __init__(self, result=None, error=None):
        self.result, self.error = result, error
        self.opened = []
        self.handler = 'default'

    def registerErrorHandler(self, handler, ctx):
        self.handler = handler

    def open(self, uri):
        self.opened.append(('rw', uri))
        if self.error:
            raise self.libvirtError(self.error)
        return self.result

    def openReadOnly(self, uri):
        self.opened.append(('ro', uri))
        return self.result


@pytest.fixture
def fake(monkeypatch):
    lib = FakeLibvirt(result='conn')
    monkeypatch.setattr(connection, 'require', lambda name, reason=None: lib)
    return lib


def test_open_connection_read_write_or_read_only(fake):
    assert connection.open_connection('qemu:///system') == 'conn'
    assert connection.open_connection('qemu:///system', readonly=True) == 'conn'
    assert fake.opened == [('rw', 'qemu:///system'), ('ro', 'qemu:///system')]
    # libvirt's own printing of errors to stderr is off: they reach the user as exceptions.
    assert fake.handler is not None and fake.handler(None, None) is None


def test_a_refused_connection_carries_libvirts_words(fake):
    fake.error = 'Failed to connect socket to /run/libvirt/libvirt-sock: No such file or directory'
    with pytest.raises(LibvirtFailure) as info:
        connection.open_connection('qemu:///system')
    assert info.value.msg == ('cannot connect to libvirt at qemu:///system: Failed to connect socket to '
                              '/run/libvirt/libvirt-sock: No such file or directory')
    assert info.value.details == {'uri': 'qemu:///system'}


def test_no_connection_without_an_error_is_a_failure_too(monkeypatch):
    lib = FakeLibvirt(result=None)
    monkeypatch.setattr(connection, 'require', lambda name, reason=None: lib)
    with pytest.raises(LibvirtFailure, match='cannot connect to libvirt at test:///default'):
        connection.open_connection('test:///default')


class FakeConn:
    def getType(self):
        return 'QEMU'

    def getLibVersion(self):
        return 9000000

    def getVersion(self):
        return 7002000

    def getCapabilities(self):
        return '<capabilities/>'


def test_hypervisor_facts(fake):
    assert connection.hypervisor_facts(FakeConn()) == {
        'driver': 'QEMU', 'libvirt_version': 9000000, 'hypervisor_version': 7002000,
        'capabilities': '<capabilities/>'}


def test_the_test_driver_for_real():
    pytest.importorskip('libvirt')
    conn = connection.open_connection('test:///default', readonly=True)
    try:
        assert connection.hypervisor_facts(conn)['driver'] == 'TEST'
    finally:
        conn.close()


class KeepAliveLibvirt(FakeLibvirt):
    """Adds the event loop and keepalive calls."""

    def __init__(self, conn):
        super().__init__(result=conn)
        self.registered = 0
        self.never = threading.Event()

    def virEventRegisterDefaultImpl(self):
        self.registered += 1

    def virEventRunDefaultImpl(self):
        self.never.wait()  # the loop thread sleeps: nothing happens in this test


class KeepAliveConn:
    def __init__(self, error=None):
        self.keepalive, self.error = None, error

    def setKeepAlive(self, interval, count):
        if self.error:
            raise self.error
        self.keepalive = (interval, count)


@pytest.mark.parametrize('fails', [False, True], ids=['remote', 'no-daemon'])
def test_keepalive_runs_one_event_loop_and_asks_for_keepalive(monkeypatch, fails):
    conn = KeepAliveConn()
    lib = KeepAliveLibvirt(conn)
    if fails:
        conn.error = lib.libvirtError('this function is not supported by the connection driver')
    monkeypatch.setattr(connection, 'require', lambda name, reason=None: lib)
    monkeypatch.setattr(connection, '_event_loop', [])
    assert connection.open_connection('qemu+ssh://host2/system', keepalive=True) is conn
    assert connection.open_connection('qemu+ssh://host3/system', keepalive=True) is conn
    assert lib.registered == 1 and len(connection._event_loop) == 1 and connection._event_loop[0].daemon
    assert conn.keepalive == (None if fails else (connection.KEEPALIVE_INTERVAL, connection.KEEPALIVE_COUNT))


def test_without_keepalive_no_event_loop(monkeypatch):
    lib = KeepAliveLibvirt(KeepAliveConn())
    monkeypatch.setattr(connection, 'require', lambda name, reason=None: lib)
    monkeypatch.setattr(connection, '_event_loop', [])
    connection.open_connection('qemu:///system')
    assert lib.registered == 0 and connection._event_loop == [] and lib.result.keepalive is None


@pytest.mark.parametrize('uri, argv', [
    ('qemu+ssh://root@host2/system', ['ssh', '-l', 'root', '-T', '-e', 'none', '-o', 'BatchMode=yes', '--', 'host2']),
    ('qemu+ssh://host2/system', ['ssh', '-T', '-e', 'none', '-o', 'BatchMode=yes', '--', 'host2']),
    ('qemu+ssh://admin@host2:2222/system?keyfile=/root/.ssh/id_migrate&no_verify=1&command=/opt/bin/ssh',
     ['/opt/bin/ssh', '-p', '2222', '-l', 'admin', '-i', '/root/.ssh/id_migrate', '-T', '-e', 'none', '-o',
      'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '--', 'host2']),
    ('qemu+ssh://[fd00::2]/system', ['ssh', '-T', '-e', 'none', '-o', 'BatchMode=yes', '--', 'fd00::2']),
])
def test_ssh_command_is_the_one_of_libvirts_ssh_transport(uri, argv):
    assert connection.ssh_command(uri) == argv


@pytest.mark.parametrize('uri', [
    'qemu:///system', 'qemu+tls://host2/system', 'qemu+tcp://host2/system', 'qemu+libssh2://host2/system',
    'qemu+libssh://host2/system', 'qemu+unix:///system?socket=/run/x/libvirt-sock', 'qemu+ssh:///system',
])
def test_no_ssh_command_without_the_ssh_transport(uri):
    assert connection.ssh_command(uri) is None
