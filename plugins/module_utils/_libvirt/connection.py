# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt edge: opening connections and translating libvirt errors.

Only this module (and what it grows into) calls libvirt-python; the rest of
module_utils works on XML and plain data.
"""

from __future__ import annotations

import threading
from urllib.parse import parse_qsl, urlsplit

from ansible_collections.phyllome.os.plugins.module_utils._common.deps import require
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import LibvirtFailure

# The connection every module that talks to libvirt takes, documented once in
# plugins/doc_fragments/libvirt.py (extends_documentation_fragment: phyllome.os.libvirt).
DEFAULT_URI = 'qemu:///system'

# With keepalive, a peer that stops answering (its link down in the middle of
# a copy) is given up after about INTERVAL * (COUNT + 1) seconds, and the call
# waiting for it fails; without, the call waits for TCP to give up (~15 min).
KEEPALIVE_INTERVAL = 5
KEEPALIVE_COUNT = 5

_event_loop = []


def ssh_command(uri):
    """The ssh command line that libvirt's ssh transport starts for `uri`, to run a command there; None otherwise.

    Built as libvirt 9.0 builds it (virNetSocketNewConnectSSH): the `command`
    parameter as the ssh binary, the URI's port and user, `keyfile`,
    `no_verify`; always BatchMode (a module cannot answer a prompt). Only
    the `ssh` transport runs an ssh binary (libssh and libssh2 are
    libraries inside libvirt).
    """
    parts = urlsplit(uri)
    if parts.scheme.partition('+')[2] != 'ssh' or not parts.hostname:
        return None
    params = dict(parse_qsl(parts.query))
    argv = [params.get('command') or 'ssh']
    if parts.port:
        argv += ['-p', str(parts.port)]
    if parts.username:
        argv += ['-l', parts.username]
    if params.get('keyfile'):
        argv += ['-i', params['keyfile']]
    argv += ['-T', '-e', 'none', '-o', 'BatchMode=yes']
    if params.get('no_verify') == '1':
        argv += ['-o', 'StrictHostKeyChecking=no']
    return argv + ['--', parts.hostname]


def uri_argument_spec():
    """The `uri` option's argument spec, as the libvirt doc fragment documents it (a new dict each call)."""
    return {'uri': {'type': 'str', 'default': DEFAULT_URI}}


def libvirt_module():
    """The libvirt Python module, imported on first use."""
    libvirt = require('libvirt', reason='to talk to libvirt')
    # libvirt prints every error to stderr by default; the errors reach the
    # user through the exceptions instead.
    libvirt.registerErrorHandler(_ignore_error, None)
    return libvirt


def _ignore_error(_ctx, _err):
    return None


def _run_event_loop(libvirt):
    """libvirt's default event loop, in a thread of its own (once a process): keepalive needs one."""
    if _event_loop:
        return
    libvirt.virEventRegisterDefaultImpl()

    def loop():
        while True:
            libvirt.virEventRunDefaultImpl()
    thread = threading.Thread(target=loop, name='libvirt-event-loop', daemon=True)
    thread.start()
    _event_loop.append(thread)


def open_connection(uri, readonly=False, keepalive=False):
    """Open a libvirt connection to `uri`; raise LibvirtFailure with libvirt's words.

    keepalive: give up on a peer that stops answering (KEEPALIVE_*) rather than wait for TCP.
    """
    libvirt = libvirt_module()
    if keepalive:
        _run_event_loop(libvirt)
    try:
        if readonly:
            conn = libvirt.openReadOnly(uri)
        else:
            conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise LibvirtFailure('cannot connect to libvirt at %s: %s' % (uri, exc), uri=uri)
    if conn is None:
        raise LibvirtFailure('cannot connect to libvirt at %s' % uri, uri=uri)
    if keepalive:
        try:
            conn.setKeepAlive(KEEPALIVE_INTERVAL, KEEPALIVE_COUNT)
        except libvirt.libvirtError:
            pass  # a driver without a daemon (test:///) has no peer to lose
    return conn


def version_string(number):
    """libvirt's packed version number (major * 1e6 + minor * 1e3 + micro) as text."""
    if number is None:
        return None
    number = int(number)
    return '%d.%d.%d' % (number // 1000000, (number // 1000) % 1000, number % 1000)


def hypervisor_facts(conn):
    """Driver name, packed libvirt and hypervisor versions, and the capabilities XML of `conn`."""
    libvirt = libvirt_module()
    try:
        return {
            'driver': conn.getType(),
            'libvirt_version': conn.getLibVersion(),
            'hypervisor_version': conn.getVersion(),
            'capabilities': conn.getCapabilities(),
        }
    except libvirt.libvirtError as exc:
        raise LibvirtFailure('cannot read the hypervisor capabilities: %s' % exc)
