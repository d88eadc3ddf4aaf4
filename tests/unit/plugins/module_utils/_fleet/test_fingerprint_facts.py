# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_fleet.fingerprint_facts: the readers behind fingerprint_info, on host trees written by the tests.

The trees and command outputs are composed in the formats Debian 12 and
Fedora write (unit links, qemu.conf, dpkg-query and rpm output), not recorded.
libvirt is libvirt's own test driver (test:///default), in process.
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.hostfs import HostFS
from ansible_collections.phyllome.os.plugins.module_utils._fleet import fingerprint_facts as ff
from ansible_collections.phyllome.os.plugins.module_utils._host.report_facts import parse_libvirt_conf, read_qemu_conf

QEMU_CONF = '''# Master configuration file for the QEMU driver.
#vnc_listen = "0.0.0.0"
vnc_listen = "127.0.0.1"   # loopback only
spice_listen = "127.0.0.1"
user = "+107"
cgroup_controllers = [ ]
namespaces = [ "mount",
  "net" ]
security_driver = [ "selinux", "dac" ]
max_processes = 0
log_timestamp = 0
#user = "root"
nonsense line
'''


def write(root, path, text=''):
    full = os.path.join(str(root), path.lstrip('/'))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, 'w') as f:
        f.write(text)


def test_parse_libvirt_conf():
    assert parse_libvirt_conf(QEMU_CONF) == {
        'vnc_listen': '127.0.0.1', 'spice_listen': '127.0.0.1', 'user': '+107', 'cgroup_controllers': [],
        'namespaces': ['mount', 'net'], 'security_driver': ['selinux', 'dac'], 'max_processes': 0,
        'log_timestamp': 0,
    }
    assert parse_libvirt_conf('group = "kvm#1"  # a comment') == {'group': 'kvm#1'}
    assert parse_libvirt_conf(None) == {}


def test_read_qemu_conf(tmp_path):
    write(tmp_path, '/etc/libvirt/qemu.conf', QEMU_CONF)
    conf = read_qemu_conf(HostFS(str(tmp_path)))
    assert conf['user'] == '+107' and conf['group'] is None and conf['namespaces'] == ['mount', 'net']
    assert read_qemu_conf(HostFS(str(tmp_path / 'none'))) == {'user': None, 'group': None}


def test_read_enabled_units(tmp_path):
    base = tmp_path / 'etc/systemd/system'
    for wants, names in (('sockets.target.wants', ['virtqemud.socket', 'virtlogd.socket', 'dbus.socket']),
                         ('multi-user.target.wants', ['virtqemud.service', 'ssh.service', 'libvirt-guests.service']),
                         ('sockets.target.wants.bak', ['libvirtd.socket'])):
        (base / wants).mkdir(parents=True)
        for name in names:
            (base / wants / name).symlink_to('/lib/systemd/system/%s' % name)
    assert ff.read_enabled_units(HostFS(str(tmp_path))) == [
        'libvirt-guests.service', 'virtlogd.socket', 'virtqemud.service', 'virtqemud.socket']


@pytest.mark.parametrize('tool, rc, out, version', [
    ('dpkg', 0, 'ii |2022.11-6+deb12u1', '2022.11-6+deb12u1'),
    ('dpkg', 0, 'rc |2022.11-6', None),  # removed, its configuration left
    ('dpkg', 1, '', None),
    ('rpm', 0, '20241117-5.fc41\n', '20241117-5.fc41'),
    ('rpm', 1, 'package edk2-ovmf is not installed\n', None),
])
def test_parse_package_version(tool, rc, out, version):
    assert ff.parse_package_version(tool, rc, out) == version


def test_read_package_versions_takes_the_first_package_installed():
    calls = []

    def run(cmd):
        calls.append(cmd)
        installed = {'ovmf': 'ii |2022.11-6', 'swtpm': 'ii |0.7.1-1.3'}
        return (0, installed[cmd[-1]], '') if cmd[-1] in installed else (1, '', 'no packages found')

    assert ff.read_package_versions('dpkg', '/', run) == {'edk2': '2022.11-6', 'swtpm': '0.7.1-1.3'}
    assert [c[-1] for c in calls] == ['edk2-ovmf', 'ovmf', 'swtpm']
    assert calls[0][:2] == ['dpkg-query', '--admindir=/var/lib/dpkg']
    assert ff.package_query('rpm', '/srv/tree', 'swtpm') == ['rpm', '--root', '/srv/tree', '-q', '--qf',
                                                             '%{VERSION}-%{RELEASE}', 'swtpm']
    assert ff.read_package_versions(None, '/', run) == {'edk2': None, 'swtpm': None}


def test_gather_on_a_tree_and_the_test_driver(tmp_path):
    pytest.importorskip('libvirt')
    write(tmp_path, '/proc/cmdline', 'BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro intel_iommu=on iommu=pt\n')
    write(tmp_path, '/proc/sys/kernel/osrelease', '6.1.0-28-amd64\n')
    write(tmp_path, '/etc/libvirt/qemu.conf', 'vnc_listen = "127.0.0.1"\n')
    result = ff.gather(HostFS(str(tmp_path)), 'test:///default', lambda cmd: (1, '', ''), 'dpkg')
    got = result['fingerprint']
    assert got['kernel_arg.intel_iommu'] == 'on' and 'kernel_arg.root' not in got
    assert got['version.kernel'] == '6.1.0-28-amd64' and got['version.edk2'] is None
    assert got['qemu_conf.vnc_listen'] == '127.0.0.1'
    assert got['version.libvirt'].count('.') == 2
    # the test driver has no domain capabilities: no CPU, and a note says so
    assert not any(key.startswith('cpu.feature.') for key in got) and result['notes']
