# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What fingerprint_info reads on a host, each reader taking a HostFS, a command runner or a libvirt URI.

fingerprint.compose turns the readings into the host's fingerprint. Nothing
here changes the host: the commands are package queries.
"""

from __future__ import annotations

import posixpath
import re

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import LibvirtFailure
from ansible_collections.phyllome.os.plugins.module_utils._fleet.cpu_baseline import host_model_cpu
from ansible_collections.phyllome.os.plugins.module_utils._fleet.fingerprint import compose
from ansible_collections.phyllome.os.plugins.module_utils._host.cmdline import running_kernel_args
from ansible_collections.phyllome.os.plugins.module_utils._host.report_facts import read_firmware, read_qemu_conf
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.capabilities import (
    GUEST_ARCH, GUEST_MACHINE, machine_types, parse_capabilities)
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.connection import hypervisor_facts, version_string
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.domain_client import DomainClient

# Versions read from the package database: the name in the fingerprint, then
# the packages that ship it (Fedora's name first, then Debian's).
PACKAGES = (
    ('edk2', ('edk2-ovmf', 'ovmf')),
    ('swtpm', ('swtpm',)),
)

# libvirt's units (the monolithic libvirtd, the modular virt*d, their sockets, virtlogd, virtlockd).
_LIBVIRT_UNIT = re.compile(r'^(libvirt|virt)[a-z0-9-]*\.(service|socket)$')
_SYSTEMD_DIR = '/etc/systemd/system'


def read_enabled_units(fs):
    """The libvirt units enabled on the host (links in /etc/systemd/system/*.wants), sorted."""
    units = set()
    for wants in fs.listdir(_SYSTEMD_DIR):
        if wants.endswith('.wants'):
            units.update(name for name in fs.listdir(posixpath.join(_SYSTEMD_DIR, wants)) if _LIBVIRT_UNIT.match(name))
    return sorted(units)


def package_query(tool, root, name):
    """The command that prints the installed version of package `name` ('dpkg' or 'rpm'), for a root tree."""
    if tool == 'dpkg':
        return ['dpkg-query', '--admindir=%s' % posixpath.join(root, 'var/lib/dpkg'), '-W',
                '-f=${db:Status-Abbrev}|${Version}', name]
    return ['rpm', '--root', root, '-q', '--qf', '%{VERSION}-%{RELEASE}', name]


def parse_package_version(tool, rc, stdout):
    """The version a package query printed, or None when the package is not installed."""
    if rc != 0:
        return None
    if tool == 'dpkg':
        status, sep, version = stdout.strip().partition('|')
        return version.strip() if sep and status.startswith('ii') else None
    return stdout.strip() or None


def read_package_versions(tool, root, run):
    """name -> version of PACKAGES (None when not installed, or no package tool); `run(cmd)` returns (rc, out, err)."""
    versions = {}
    for name, packages in PACKAGES:
        versions[name] = None
        if tool is None:
            continue
        for package in packages:
            rc, out, dummy = run(package_query(tool, root, package))
            version = parse_package_version(tool, rc, out)
            if version:
                versions[name] = version
                break
    return versions


def read_libvirt(uri, connect=DomainClient.connect):
    """libvirt and QEMU versions, the domain types, machine types and host-model CPU that `uri` offers x86_64 guests.

    The CPU is None (with a note) when the driver has no domain capabilities.
    """
    # Read-write: libvirt refuses domain capabilities on a read-only connection; nothing is changed.
    with connect(uri) as client:
        raw = hypervisor_facts(client.conn)
        caps = parse_capabilities(raw['capabilities'], arch=GUEST_ARCH)
        virttype = 'kvm' if 'kvm' in caps['domain_types'] else (caps['domain_types'] or ['qemu'])[0]
        facts = {
            'versions': {'libvirt': version_string(raw['libvirt_version']),
                         'qemu': version_string(raw['hypervisor_version'])},
            'domain_types': caps['domain_types'],
            'machines': machine_types(raw['capabilities'], GUEST_ARCH),
            'cpu': None,
            'notes': [],
        }
        try:
            domcaps = client.domain_capabilities(GUEST_ARCH, GUEST_MACHINE, virttype)
        except LibvirtFailure as exc:
            domcaps, facts['notes'] = None, ['no domain capabilities: %s' % exc.msg]
        if domcaps is None:
            facts['notes'] = facts['notes'] or ['the %s driver has no domain capabilities: no host-model CPU' % raw['driver']]
        else:
            facts['cpu'] = host_model_cpu(domcaps, uri)
    return facts


def gather(fs, uri, run, package_tool, connect=DomainClient.connect):
    """The host's fingerprint and notes on what could not be read."""
    libvirt = read_libvirt(uri, connect=connect)
    versions = dict(libvirt['versions'])
    versions['kernel'] = (fs.read_text('/proc/sys/kernel/osrelease') or '').strip() or None
    versions.update(read_package_versions(package_tool, fs.root, run))
    fingerprint = compose(
        cmdline_args=running_kernel_args(fs),
        cpu=libvirt['cpu'],
        domain_types=libvirt['domain_types'],
        machines=libvirt['machines'],
        firmware=read_firmware(fs)['descriptors'],
        versions=versions,
        units=read_enabled_units(fs),
        qemu_conf=dict((k, v) for k, v in read_qemu_conf(fs).items() if v is not None),
    )
    return {'fingerprint': fingerprint, 'notes': libvirt['notes']}
