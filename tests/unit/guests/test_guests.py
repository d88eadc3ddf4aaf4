# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the test-guest builder (no root, no network, no libvirtd).

Run: .venv/bin/pytest -q tests/unit/guests (make units runs it too)
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

import pytest


def _load_builder():
    """The builder, tests/guests/guests.py (not a package), imported from its path.

    Not `import guests` from sys.path: plain pytest (importlib mode, see
    tests/unit/pytest.ini) already holds this test directory as the module `guests`.
    """
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'guests', 'guests.py')
    spec = importlib.util.spec_from_file_location('phyllome_test_guests', path)
    module = importlib.util.module_from_spec(spec)
    # registered first: its dataclasses look their module up while they are made
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


guests = _load_builder()

ARTIFACTS = {'kernel': '/c/vmlinuz', 'initrd': '/c/initrd.img', 'cmdline': 'console=ttyS0 panic=-1'}
DISK_ARTIFACTS = {'disk': '/c/disk.qcow2', 'ssh_key': '/c/id_ed25519'}


# -- initramfs -------------------------------------------------------------------

@pytest.mark.skipif(not shutil.which('cpio'), reason='needs cpio(1)')
def test_newc_archive_is_read_by_cpio(tmp_path):
    data = guests.newc_archive([
        ('dev', 0o40755, b''),
        ('dev/console', 0o20600, (5, 1)),
        ('init', 0o100755, b'#!/bin/busybox sh\n'),
        ('etc/odd', 0o100644, b'12345'),  # a length that needs padding
    ])
    listing = subprocess.run(['cpio', '-itv'], input=data, capture_output=True, check=True).stdout.decode()
    lines = listing.splitlines()
    assert [line.split()[-1] for line in lines] == ['dev', 'dev/console', 'init', 'etc/odd']
    assert lines[1].startswith('crw-------') and '5,' in lines[1]
    assert lines[2].startswith('-rwxr-xr-x')
    subprocess.run(['cpio', '-id', '--quiet'], input=data, cwd=tmp_path, check=True)
    assert (tmp_path / 'etc' / 'odd').read_bytes() == b'12345'


def test_newc_archive_is_reproducible():
    entries = [('init', 0o100755, b'x')]
    assert guests.newc_archive(entries) == guests.newc_archive(entries)


def test_parse_modules_dep(tmp_path):
    (tmp_path / 'modules.dep').write_text(
        'kernel/drivers/vfio/pci/vfio-pci.ko: kernel/drivers/vfio/pci/vfio-pci-core.ko kernel/drivers/vfio/vfio.ko\n'
        'kernel/drivers/vfio/vfio.ko:\n'
        'kernel/drivers/input/evdev.ko.xz:\n')
    table = guests._parse_modules_dep(str(tmp_path))  # pylint: disable=protected-access
    assert table['vfio_pci'] == ('kernel/drivers/vfio/pci/vfio-pci.ko', ['vfio_pci_core', 'vfio'])
    assert table['vfio'] == ('kernel/drivers/vfio/vfio.ko', [])
    assert table['evdev'][0] == 'kernel/drivers/input/evdev.ko.xz'


TABLE = {
    'vfio_pci': ('k/vfio-pci.ko', ['vfio_pci_core', 'vfio', 'irqbypass']),
    'vfio_pci_core': ('k/vfio-pci-core.ko', ['vfio', 'irqbypass']),
    'vfio': ('k/vfio.ko', []),
    'irqbypass': ('k/irqbypass.ko', []),
    'evdev': ('k/evdev.ko', []),
}


@pytest.mark.parametrize('wanted, optional, expected', [
    (('evdev',), (), ['k/evdev.ko']),
    # dependencies first, each module once, dash or underscore
    (('vfio-pci', 'vfio'), (), ['k/vfio.ko', 'k/irqbypass.ko', 'k/vfio-pci-core.ko', 'k/vfio-pci.ko']),
    # an optional module the kernel lacks is skipped
    (('evdev',), ('vfio_virqfd',), ['k/evdev.ko']),
])
def test_module_load_order(wanted, optional, expected):
    assert guests._module_load_order(TABLE, wanted, optional) == expected  # pylint: disable=protected-access


def test_module_load_order_missing_module():
    with pytest.raises(guests.GuestError, match='vfio_virqfd not found'):
        guests._module_load_order(TABLE, ('vfio_virqfd',))  # pylint: disable=protected-access


def test_module_load_order_loop():
    table = {'a': ('a.ko', ['b']), 'b': ('b.ko', ['a'])}
    with pytest.raises(guests.GuestError, match='loop'):
        guests._module_load_order(table, ('a',))  # pylint: disable=protected-access


# -- apt sources -----------------------------------------------------------------

def test_debian_mirror_deb822(tmp_path):
    (tmp_path / 'a.sources').write_text(
        'Types: deb\nURIs: https://packages.example/apt\nSuites: other\nComponents: main\n\n')
    (tmp_path / 'debian.sources').write_text(
        'Types: deb\nURIs: http://deb.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n'
        'Types: deb\nURIs: http://deb.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n')
    assert guests.debian_mirror('bookworm', str(tmp_path), str(tmp_path / 'none')) == 'http://deb.example/debian'


def test_debian_mirror_one_line_format(tmp_path):
    (tmp_path / 'sources.list').write_text(
        '# deb http://commented.example/debian bookworm main\n'
        'deb-src http://src.example/debian bookworm main\n'
        'deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main contrib\n')
    assert guests.debian_mirror('bookworm', str(tmp_path / 'no-dir'), str(tmp_path / 'sources.list')) \
        == 'http://mirror.example/debian'


def test_debian_mirror_missing(tmp_path):
    with pytest.raises(guests.GuestError, match='no "deb" source for bookworm'):
        guests.debian_mirror('bookworm', str(tmp_path), str(tmp_path / 'sources.list'))


# -- cache -----------------------------------------------------------------------

def test_cache_key_follows_recipe_and_packages():
    packages = {'linux-image-6.1.0-1-amd64': '6.1.1-1'}
    key = guests.cache_key('acpi', packages)
    assert key == guests.cache_key('acpi', dict(packages))
    assert key != guests.cache_key('acpi', {'linux-image-6.1.0-1-amd64': '6.1.1-2'})
    assert key != guests.cache_key('noacpi', packages)


def test_cache_key_ignores_what_only_the_domain_xml_uses(monkeypatch):
    packages = {'pkg': '1'}
    key = guests.cache_key('iommu', packages)
    monkeypatch.setitem(guests.KINDS, 'iommu', guests.dataclasses.replace(
        guests.KINDS['iommu'], memory_mib=1024, e1000e_slots=(4,)))
    assert guests.cache_key('iommu', packages) == key
    monkeypatch.setitem(guests.KINDS, 'iommu', guests.dataclasses.replace(
        guests.KINDS['iommu'], optional_modules=()))
    assert guests.cache_key('iommu', packages) != key


def test_build_caches_and_cleans_up_failures(tmp_path, monkeypatch):
    calls = []

    def fake_build(spec, packages, cache, out):
        calls.append(spec.name)
        if spec.name == 'noacpi':
            raise guests.GuestError('broken')
        with open(os.path.join(out, 'vmlinuz'), 'w', encoding='utf-8') as handle:
            handle.write('k')
        return {'kernel': 'vmlinuz', 'initrd': 'initrd.img', 'cmdline': 'c', 'kernel_version': 'v'}

    monkeypatch.setattr(guests, '_packages', lambda kind: {'pkg': '1'})
    monkeypatch.setattr(guests, '_build_direct_kernel', fake_build)
    first = guests.build('acpi', str(tmp_path / 'cache'))
    second = guests.build('acpi', str(tmp_path / 'cache'))
    assert calls == ['acpi']
    assert first['built'] and not second['built']
    assert second['kernel'] == os.path.join(first['dir'], 'vmlinuz')
    assert oct(os.stat(second['kernel']).st_mode & 0o777) == '0o644'
    with pytest.raises(guests.GuestError, match='broken'):
        guests.build('noacpi', str(tmp_path / 'cache'))
    # the failed build left nothing but its lock
    assert sorted(os.listdir(tmp_path / 'cache')) == ['.acpi.lock', '.noacpi.lock', os.path.basename(first['dir'])]


def test_build_unknown_kind():
    with pytest.raises(guests.GuestError, match="unknown guest kind 'windows'"):
        guests.build('windows')


# -- domain XML ------------------------------------------------------------------

def _xml(*args, **kwargs):
    return ET.fromstring(guests.domain_xml(*args, **kwargs))


LIBVIRT_DOMAIN_RNG = '/usr/share/libvirt/schemas/domain.rng'


@functools.lru_cache(maxsize=None)
def _domain_schema():
    etree = pytest.importorskip('lxml.etree')
    if not os.path.exists(LIBVIRT_DOMAIN_RNG):
        pytest.skip('libvirt schemas not installed')
    return etree, etree.RelaxNG(etree.parse(LIBVIRT_DOMAIN_RNG))


def _validate(text):
    """libvirt's own RelaxNG schema of domain XML (what virt-xml-validate checks)."""
    etree, schema = _domain_schema()
    assert schema.validate(etree.fromstring(text.encode())), schema.error_log


def test_xml_acpi_direct_kernel():
    text = guests.domain_xml('acpi', 'g1', ARTIFACTS, '/w/serial.log', cmdline_extra='quiet')
    _validate(text)
    dom = ET.fromstring(text)
    assert dom.get('type') == 'qemu'
    assert dom.findtext('memory') == '192'
    assert dom.find('os/type').get('machine') == 'q35'
    assert dom.findtext('os/kernel') == '/c/vmlinuz'
    assert dom.findtext('os/cmdline') == 'console=ttyS0 panic=-1 quiet'
    assert dom.find('os').get('firmware') is None and dom.find('os/loader') is None
    assert dom.findtext('on_reboot') == 'destroy'
    assert dom.find('devices/serial/source').attrib == {'path': '/w/serial.log', 'append': 'off'}
    assert dom.find('devices/memballoon').get('model') == 'none'
    assert dom.find("devices/controller[@type='usb']").get('model') == 'none'
    assert dom.find('devices/interface') is None and dom.find('devices/tpm') is None
    assert dom.find('devices/iommu') is None


def test_xml_efi_secure_boot_tpm():
    text = guests.domain_xml('acpi', 'g1', ARTIFACTS, '/w/s', firmware='efi', secure_boot=True, tpm=True)
    _validate(text)
    dom = ET.fromstring(text)
    assert dom.find('os').get('firmware') == 'efi'
    features = {f.get('name'): f.get('enabled') for f in dom.findall('os/firmware/feature')}
    assert features == {'secure-boot': 'yes', 'enrolled-keys': 'yes'}
    assert dom.find('os/loader').get('secure') == 'yes'
    assert dom.find('features/smm').get('state') == 'on'
    assert dom.findtext('memory') == str(guests.SECURE_BOOT_MIN_MIB)
    assert dom.find('devices/tpm').get('model') == 'tpm-crb'
    assert dom.find('devices/tpm/backend').attrib == {'type': 'emulator', 'version': '2.0'}


def test_xml_efi_without_secure_boot():
    dom = _xml('acpi', 'g1', ARTIFACTS, '/w/s', firmware='efi', memory_mib=300)
    assert [(f.get('name'), f.get('enabled')) for f in dom.findall('os/firmware/feature')] == [('secure-boot', 'no')]
    assert dom.find('features/smm') is None and dom.find('os/loader') is None
    assert dom.findtext('memory') == '300'


def test_xml_iommu_kind():
    text = guests.domain_xml('iommu', 'g1', ARTIFACTS, '/w/s')
    _validate(text)
    dom = ET.fromstring(text)
    assert dom.find('features/ioapic').get('driver') == 'qemu'
    assert dom.find('devices/iommu').get('model') == 'intel'
    assert dom.find('devices/iommu/driver').get('intremap') == 'on'
    nics = dom.findall('devices/interface')
    assert [n.find('model').get('type') for n in nics] == ['e1000e', 'e1000e']
    assert [n.find('address').get('slot') for n in nics] == ['0x02', '0x03']
    assert all(n.get('type') == 'user' for n in nics)


def test_xml_debian_disk_with_ssh():
    text = guests.domain_xml('debian-disk', 'g1', DISK_ARTIFACTS, '/w/s', disk='/w/o.qcow2', ssh_port=40022)
    _validate(text)
    dom = ET.fromstring(text)
    assert dom.find('os/kernel') is None and dom.find('os/boot').get('dev') == 'hd'
    assert dom.findtext('on_reboot') == 'restart'
    assert dom.find('devices/disk/source').get('file') == '/w/o.qcow2'
    assert dom.find('devices/disk/driver').attrib == {'name': 'qemu', 'type': 'qcow2'}
    channel = dom.find('devices/channel/target')
    assert channel.attrib == {'type': 'virtio', 'name': 'org.qemu.guest_agent.0'}
    args = [a.get('value') for a in dom.findall('{%s}commandline/{%s}arg' % (guests.QEMU_NS, guests.QEMU_NS))]
    assert args[0] == '-netdev' and args[2] == '-device'
    assert 'restrict=on' in args[1].split(',') and 'hostfwd=tcp:127.0.0.1:40022-:22' in args[1].split(',')
    assert 'mac=%s' % guests.SSH_NIC_MAC in args[3] and 'iommu_platform=on' not in args[3]


def test_xml_debian_disk_behind_an_iommu():
    dom = _xml('debian-disk', 'g1', DISK_ARTIFACTS, '/w/s', disk='/w/o.qcow2', ssh_port=40022, iommu=True,
               e1000e_slots=(2, 3))
    # virtio devices must go through the vIOMMU too, or the guest's DMA breaks
    assert dom.find('devices/disk/driver').get('iommu') == 'on'
    assert dom.find("devices/controller[@type='virtio-serial']/driver").get('iommu') == 'on'
    args = [a.get('value') for a in dom.findall('{%s}commandline/{%s}arg' % (guests.QEMU_NS, guests.QEMU_NS))]
    assert 'iommu_platform=on' in args[3] and 'disable-legacy=on' in args[3]
    assert len(dom.findall('devices/interface')) == 2


@pytest.mark.parametrize('kind, kwargs, message', [
    ('debian-disk', {}, 'needs disk='),
    ('acpi', {'secure_boot': True}, 'secure_boot needs firmware="efi"'),
    ('acpi', {'ssh_port': 2222}, 'ssh_port is for the debian-disk kind'),
])
def test_xml_rejects(kind, kwargs, message):
    with pytest.raises(guests.GuestError, match=message):
        guests.domain_xml(kind, 'g1', ARTIFACTS, '/w/s', **kwargs)


# -- access to the disk guest ----------------------------------------------------

def test_inventory_vars_round_trip_through_shlex():
    hostvars = guests.inventory_vars(40022, '/c/id_ed25519', netns='ns1')
    assert hostvars['ansible_host'] == '127.0.0.1' and hostvars['ansible_port'] == 40022
    assert hostvars['ansible_ssh_private_key_file'] == '/c/id_ed25519'
    common = shlex.split(hostvars['ansible_ssh_common_args'])
    assert common[:2] == ['-o', 'ProxyCommand=ip netns exec ns1 socat - TCP:127.0.0.1:40022']
    assert '-i' not in common
    assert guests.ssh_args(40022, '/c/k', netns='ns1')[-3:] == ['-p', '40022', 'root@127.0.0.1']


# -- serial log ------------------------------------------------------------------

def test_wait_for_serial_offsets(tmp_path):
    log = tmp_path / 'serial.log'
    log.write_bytes(b'[  1.0] boot\r\n\x1b[0m[ OK ] progress\r[ OK ] done\r\nREADY kind=a\r\nmore\r\nREADY kind=a\r\n')
    line, offset = guests.wait_for_serial(str(log), '^READY', timeout=0)
    assert line == 'READY kind=a'
    line, second = guests.wait_for_serial(str(log), '^READY', timeout=0, offset=offset)
    assert line == 'READY kind=a' and second == len(log.read_bytes())
    assert guests.wait_for_serial(str(log), r'\[ OK \] done', timeout=0)[0].endswith('[ OK ] done')


def test_wait_for_serial_waits_for_a_complete_line(tmp_path):
    log = tmp_path / 'serial.log'
    log.write_bytes(b'READY kind')

    def finish():
        time.sleep(0.3)
        with open(log, 'ab') as handle:
            handle.write(b'=a\r\n')

    thread = threading.Thread(target=finish)
    thread.start()
    try:
        assert guests.wait_for_serial(str(log), '^READY kind=a$', timeout=5, interval=0.05)[0] == 'READY kind=a'
    finally:
        thread.join()


def test_wait_for_serial_timeout_shows_the_tail(tmp_path):
    log = tmp_path / 'serial.log'
    log.write_bytes(b'kernel panic\r\n')
    with pytest.raises(guests.GuestError, match='(?s)no line matching.*kernel panic'):
        guests.wait_for_serial(str(log), 'READY', timeout=0.2, interval=0.05)
    with pytest.raises(guests.GuestError, match='no line matching'):
        guests.wait_for_serial(str(tmp_path / 'absent.log'), 'READY', timeout=0.1, interval=0.05)


# -- command line ----------------------------------------------------------------

def test_cli_xml_and_wait_serial(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(guests, 'build', lambda kind, cache=None: dict(ARTIFACTS))
    assert guests.main(['xml', 'iommu', '--name', 'g1', '--serial', '/w/s', '--e1000e-slots', '0x05',
                        '--iommu', 'no']) == 0
    dom = ET.fromstring(capsys.readouterr().out)
    assert [n.find('address').get('slot') for n in dom.findall('devices/interface')] == ['0x05']
    assert dom.find('devices/iommu') is None
    log = tmp_path / 'serial.log'
    log.write_text('x\nREADY\n')
    assert guests.main(['wait-serial', str(log), 'READY', '--timeout', '0']) == 0
    assert json.loads(capsys.readouterr().out)['offset'] == 8
    assert guests.main(['wait-serial', str(log), 'NEVER', '--timeout', '0']) == 1
    assert 'no line matching' in capsys.readouterr().err
