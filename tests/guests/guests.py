# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one builder of small test guests, shared by every test that boots one.

Kinds (see KINDS and README.md):
  acpi         Debian kernel + busybox initramfs; the power button powers off
  noacpi       same, but the power button is ignored (shutdown timeouts)
  iommu        same, with e1000e + vfio modules, for <iommu model='intel'/>
  debian-disk  Debian 12 on a GRUB (i386-pc) qcow2 disk, with ssh, python3,
               qemu-guest-agent; reached over ssh through the test namespace

Artifacts are cached under tests/guests/cache/ (or $PHYLLOME_TEST_GUESTS_CACHE)
in a directory keyed by a hash of the recipe and of the Debian package
versions, so a second build is instant. Builds run as root.

Python API:  build(kind) -> artifacts, domain_xml(...), wait_for_serial(...),
             create_overlay(...), free_port(), ssh_args(...), inventory_vars(...)
Command line: python3 guests.py --help
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import gzip
import hashlib
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
NETNS = os.environ.get('PHYLLOME_TEST_NETNS', 'phyllome-test')
# the private test libvirtd: `tests/lab/libvirtd.sh uri` says where it answers
LAB_LIBVIRTD = os.path.join(os.path.dirname(HERE), 'lab', 'libvirtd.sh')
SUITE = 'bookworm'
READY = 'PHYLLOME-GUEST-READY'
QEMU_NS = 'http://libvirt.org/schemas/domain/qemu/1.0'
# the ssh NIC is not a libvirt device (see _ssh_nic), so it takes a slot
# libvirt's automatic addressing does not reach in a small domain
SSH_NIC_SLOT = 0x10
SSH_NIC_MAC = '52:54:00:0f:ff:01'
SSH_GUEST_ADDRESS = '10.0.2.15/24'
DISK_SIZE = 2 * 1024 ** 3
# OVMF with SMM (Secure Boot) stops with a #GP exception at 192 MiB under TCG
SECURE_BOOT_MIN_MIB = 256
INSIDE_COMMAND = '_debian-disk-inside'


class GuestError(Exception):
    """A build step or a wait failed; the message says which and why."""


@dataclasses.dataclass(frozen=True)
class Kind:
    """What one guest kind is made of (ARTIFACT_FIELDS are part of the cache key)."""

    name: str
    memory_mib: int
    # direct-kernel kinds: modules loaded in order (dependencies first);
    # optional ones are skipped when the kernel lacks them (vfio_virqfd
    # became part of vfio.ko in 6.2)
    modules: tuple = ()
    optional_modules: tuple = ()
    # what the power button does: poweroff, ignore (logged), none (no acpid)
    power_button: str = 'poweroff'
    iommu_report: bool = False
    # print the guest's block devices, NICs, present CPUs and MemTotal whenever they change
    hotplug_report: bool = False
    # ask for an address on every NIC (busybox udhcpc), so the host's network has a DHCP lease for it
    dhcp: bool = False
    cmdline: str = ''
    # devices the domain XML adds by default
    iommu: bool = False
    e1000e_slots: tuple = ()
    disk: bool = False


# the fields of Kind that the cached artifacts depend on (see _recipe)
ARTIFACT_FIELDS = ('name', 'modules', 'optional_modules', 'power_button', 'iommu_report', 'hotplug_report', 'dhcp',
                   'cmdline', 'disk')

KINDS = {
    'acpi': Kind('acpi', 192, modules=('evdev', 'button')),
    'noacpi': Kind('noacpi', 192, modules=('evdev', 'button'), power_button='ignore'),
    'iommu': Kind(
        'iommu', 256,
        modules=('evdev', 'button', 'e1000e', 'irqbypass', 'vfio', 'vfio_iommu_type1', 'vfio-pci-core', 'vfio-pci'),
        optional_modules=('vfio_virqfd',),
        iommu_report=True, cmdline='intel_iommu=on iommu=pt phyllome.vfio_bind=0000:00:03.0',
        iommu=True, e1000e_slots=(0x02, 0x03)),
    # virtio drivers for the devices a test plugs into the running guest (disk, NIC, balloon)
    'hotplug': Kind('hotplug', 192, modules=('evdev', 'button', 'virtio_pci', 'virtio_blk', 'virtio_net', 'virtio_balloon'),
                    hotplug_report=True),
    # acpi + a virtio NIC that takes a DHCP lease: a guest with an address (inventory plugin, lab)
    'net': Kind('net', 192, modules=('evdev', 'button', 'virtio_pci', 'virtio_net'), dhcp=True),
    'debian-disk': Kind('debian-disk', 512, power_button='none', disk=True),
}

DEBIAN_DISK_PACKAGES = ('linux-image-amd64', 'grub-pc', 'systemd-sysv', 'udev', 'dbus', 'python3', 'qemu-guest-agent',
                        'openssh-server', 'initramfs-tools', 'kmod', 'pciutils')

POWER_BUTTON_SCRIPTS = {
    'poweroff': 'echo "phyllome-guest: power button: powering off" >/dev/console\npoweroff -f\n',
    'ignore': 'echo "phyllome-guest: power button: ignored" >/dev/console\n',
}

# busybox udhcpc's hook: configure the address it was given and say so on the console
UDHCPC_SCRIPT = '''case "$1" in
    bound | renew)
        ip addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        echo "phyllome-guest: dhcp $interface $ip" >/dev/console ;;
esac
'''

# Files written into the debian-disk image (path -> content).
DEBIAN_DISK_FILES = {
    '/etc/hostname': 'phyllome-guest\n',
    '/etc/hosts': '127.0.0.1 localhost\n127.0.1.1 phyllome-guest\n',
    # GRUB and the kernel on the serial port: the test reads both
    '/etc/default/grub': (
        'GRUB_DEFAULT=0\n'
        'GRUB_TIMEOUT=0\n'
        'GRUB_DISTRIBUTOR="Debian"\n'
        'GRUB_CMDLINE_LINUX_DEFAULT=""\n'
        'GRUB_CMDLINE_LINUX="console=ttyS0,115200n8"\n'
        'GRUB_TERMINAL="serial"\n'
        'GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"\n'
        'GRUB_DISABLE_OS_PROBER=true\n'),
    # virtio disk and ext4 are all the initramfs needs: 8 MB instead of 40
    '/etc/initramfs-tools/conf.d/phyllome-guest.conf': 'MODULES=list\nCOMPRESS=zstd\n',
    '/etc/initramfs-tools/modules': 'virtio_pci\nvirtio_blk\nvirtio_scsi\next4\n',
    # the ssh NIC: qemu user networking, fixed MAC, static address (no DHCP wait)
    '/etc/systemd/network/10-phyllome-ssh.network': (
        '[Match]\nMACAddress=%s\n\n[Network]\nAddress=%s\nGateway=10.0.2.2\n' % (SSH_NIC_MAC, SSH_GUEST_ADDRESS)),
    '/etc/systemd/system/phyllome-guest-ready.service': (
        '[Unit]\n'
        'Description=Tell the test on the serial port that the guest is up\n'
        'After=ssh.service qemu-guest-agent.service systemd-networkd.service\n\n'
        '[Service]\n'
        'Type=oneshot\n'
        'ExecStart=/bin/sh -c \'echo "%s kind=debian-disk $(uname -r)" >/dev/ttyS0\'\n\n'
        '[Install]\n'
        'WantedBy=multi-user.target\n' % READY),
    '/etc/ssh/sshd_config.d/phyllome-guest.conf': 'PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n',
}
DEBIAN_DISK_ENABLE = ('systemd-networkd.service', 'phyllome-guest-ready.service')
# timers that would only spend the guest's (emulated) CPU during a test
DEBIAN_DISK_MASK = ('apt-daily.timer', 'apt-daily-upgrade.timer', 'e2scrub_all.timer', 'e2scrub_reap.service',
                    'fstrim.timer', 'systemd-networkd-wait-online.service')
# files a test guest never reads; removing them halves the image
DEBIAN_DISK_PRUNE = ('usr/share/doc', 'usr/share/man', 'usr/share/info', 'usr/share/locale', 'var/cache/apt',
                     'var/lib/apt/lists', 'var/cache/debconf/templates.dat-old')


# -- small utilities -----------------------------------------------------------

def _log(msg):
    print('guests: %s' % msg, file=sys.stderr, flush=True)


def run(cmd, *, cwd=None, input_text=None, env=None):
    """Run cmd (a list) with LANG=C; return stdout, raise GuestError on failure."""
    full_env = dict(os.environ, LANG='C', LC_ALL='C', DEBIAN_FRONTEND='noninteractive')
    full_env.update(env or {})
    proc = subprocess.run(cmd, cwd=cwd, input=input_text, env=full_env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise GuestError('%s failed (rc=%d): %s' % (shlex.join(cmd), proc.returncode,
                                                    (proc.stderr or proc.stdout).strip()[-2000:]))
    return proc.stdout


def cache_root(cache=None):
    """The cache directory: the argument, $PHYLLOME_TEST_GUESTS_CACHE, or tests/guests/cache."""
    # resolved: `make integration` links its copy's cache to the working tree's,
    # and domains must not depend on a copy that the next `make tree` removes
    return os.path.realpath(cache or os.environ.get('PHYLLOME_TEST_GUESTS_CACHE') or os.path.join(HERE, 'cache'))


@contextlib.contextmanager
def _locked(path):
    """Serialise builds of one entry across processes (parallel test runs share the cache)."""
    with open(path, 'a', encoding='utf-8') as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _make_readable(top):
    """libvirt's qemu user (libvirt-qemu) must read kernels, initrds and disks."""
    for root, dirs, files in os.walk(top):
        os.chmod(root, 0o755)
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path) and not name.startswith('id_'):
                os.chmod(path, 0o644)


# -- Debian package facts ------------------------------------------------------

def _apt_field(package, field):
    out = run(['apt-cache', 'show', '--no-all-versions', package])
    match = re.search(r'^%s: (.*)$' % re.escape(field), out, re.M)
    if not match:
        raise GuestError('apt-cache show %s has no %s field' % (package, field))
    return match.group(1).strip()


def kernel_package():
    """(name, version) of the linux-image-6.x-amd64 that linux-image-amd64 depends on."""
    depends = _apt_field('linux-image-amd64', 'Depends')
    match = re.match(r'(linux-image-[0-9][^ ,]*-amd64) \(= ([^)]+)\)', depends)
    if not match:
        raise GuestError('unexpected Depends of linux-image-amd64: %s' % depends)
    return match.group(1), match.group(2)


def installed_version(package):
    return run(['dpkg-query', '-W', '-f=${Version}', package]).strip()


def suite_versions(packages, suite=SUITE):
    """Versions of packages in the suite debootstrap installs from (not -security/-updates)."""
    versions = {}
    for line in run(['apt-cache', 'madison'] + list(packages)).splitlines():
        fields = [field.strip() for field in line.split('|')]
        if len(fields) == 3 and re.search(r' %s/main ' % re.escape(suite), fields[2]):
            versions.setdefault(fields[0], fields[1])
    missing = sorted(set(packages) - set(versions))
    if missing:
        raise GuestError('no version in %s/main for %s (apt-get update?)' % (suite, ', '.join(missing)))
    return versions


def debian_mirror(suite=SUITE, sources_dir='/etc/apt/sources.list.d', sources_list='/etc/apt/sources.list'):
    """The Debian mirror apt already uses for `suite` (deb822 .sources or one-line format)."""
    paths = [os.path.join(sources_dir, name) for name in sorted(os.listdir(sources_dir))] if os.path.isdir(sources_dir) else []
    paths.append(sources_list)
    for path in paths:
        if not os.path.isfile(path):
            continue
        with open(path, encoding='utf-8') as handle:
            text = handle.read()
        if path.endswith('.sources'):
            for stanza in re.split(r'\n\s*\n', text):
                fields = dict(re.findall(r'^([A-Za-z-]+):\s*(.*)$', stanza, re.M))
                if 'deb' in fields.get('Types', '').split() and suite in fields.get('Suites', '').split():
                    return fields['URIs'].split()[0]
        else:
            for line in text.splitlines():
                words = re.sub(r'\[[^]]*\]', '', line).split()
                if len(words) >= 3 and words[0] == 'deb' and words[2] == suite:
                    return words[1]
    raise GuestError('no "deb" source for %s in %s or %s' % (suite, sources_dir, sources_list))


def _apt_download(package, version, dest):
    """apt-get download into dest; on a miss, refresh the lists once and retry."""
    name = '%s_%s_amd64.deb' % (package, version.split(':')[-1])
    path = os.path.join(dest, name)
    os.makedirs(dest, exist_ok=True)
    # kinds built in parallel share the kernel package
    with _locked(os.path.join(dest, '.lock')):
        if os.path.exists(path):
            return path
        cmd = ['apt-get', '-q', '-o', 'APT::Sandbox::User=root', 'download', '%s=%s' % (package, version)]
        try:
            run(cmd, cwd=dest)
        except GuestError:
            run(['apt-get', '-q', 'update'])
            run(cmd, cwd=dest)
    if not os.path.exists(path):
        raise GuestError('apt-get download did not produce %s' % path)
    return path


# -- the recipe hash -----------------------------------------------------------

def _recipe(kind):
    """Everything an artifact is made from, except package versions.

    Only the fields of Kind that shape the artifacts: memory or NIC slots
    change the domain XML, not what is cached.
    """
    spec = KINDS[kind]
    parts = [repr({name: getattr(spec, name) for name in ARTIFACT_FIELDS})]
    if spec.disk:
        parts += [repr(DEBIAN_DISK_PACKAGES), repr(DEBIAN_DISK_FILES), repr(DEBIAN_DISK_ENABLE), repr(DEBIAN_DISK_MASK),
                  repr(DEBIAN_DISK_PRUNE), repr(DISK_SIZE), inspect.getsource(_debian_disk_inside),
                  inspect.getsource(_chroot_dev)]
    else:
        with open(os.path.join(HERE, 'init.sh'), encoding='utf-8') as handle:
            parts.append(handle.read())
        parts += [repr(POWER_BUTTON_SCRIPTS), inspect.getsource(_initramfs_entries), inspect.getsource(newc_archive),
                  inspect.getsource(_module_load_order)]
    return '\n'.join(parts)


def _packages(kind):
    """The Debian package versions an artifact of `kind` is made from."""
    if KINDS[kind].disk:
        versions = suite_versions(DEBIAN_DISK_PACKAGES)
        versions['debootstrap (host)'] = installed_version('debootstrap')
        return versions
    name, version = kernel_package()
    return {name: version, 'busybox-static (host)': installed_version('busybox-static')}


def cache_key(kind, packages):
    digest = hashlib.sha256(_recipe(kind).encode())
    digest.update(json.dumps(packages, sort_keys=True).encode())
    return digest.hexdigest()[:16]


# -- direct-kernel kinds: kernel + busybox initramfs ---------------------------

def newc_archive(entries):
    """A cpio archive in the kernel's "newc" format from (path, mode, data) entries.

    Written here rather than with cpio(1) so that the initramfs needs no
    mknod (for /dev/console) and is byte-for-byte reproducible.
    """
    out = bytearray()

    def member(name, mode, data, rdev=(0, 0)):
        name_bytes = name.encode() + b'\0'
        fields = (len(out) // 4 + 1, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_bytes), 0)
        out.extend(b'070701' + b''.join(b'%08X' % field for field in fields) + name_bytes)
        out.extend(b'\0' * (-len(out) % 4))
        out.extend(data)
        out.extend(b'\0' * (-len(out) % 4))

    for path, mode, data in entries:
        if isinstance(data, tuple):
            member(path, mode, b'', rdev=data)
        else:
            member(path, mode, data)
    member('TRAILER!!!', 0, b'')
    return bytes(out)


def _parse_modules_dep(modules_dir):
    """{module name: (path, [dependency names])} from depmod's modules.dep."""
    def module_name(path):
        return re.sub(r'\.ko(\.[a-z]+)?$', '', os.path.basename(path)).replace('-', '_')

    table = {}
    with open(os.path.join(modules_dir, 'modules.dep'), encoding='utf-8') as handle:
        for line in handle:
            path, _sep, deps = line.partition(':')
            table[module_name(path)] = (path.strip(), [module_name(dep) for dep in deps.split()])
    return table


def _module_load_order(table, wanted, optional=()):
    """Module paths in load order: each module after everything it depends on."""
    order = []

    def visit(name, trail):
        if name in trail:
            raise GuestError('module dependency loop: %s' % ' -> '.join(trail + (name,)))
        path, deps = table[name]
        for dep in deps:
            visit(dep, trail + (name,))
        if path not in order:
            order.append(path)

    for name in wanted + tuple(optional):
        key = name.replace('-', '_')
        if key in table:
            visit(key, ())
        elif name not in optional:
            raise GuestError('kernel module %s not found in modules.dep' % name)
    return order


def _initramfs_entries(spec, modules_dir, busybox='/bin/busybox'):
    """(path, mode, data) entries of the initramfs of a direct-kernel kind."""
    order = _module_load_order(_parse_modules_dep(modules_dir), spec.modules, spec.optional_modules)
    with open(busybox, 'rb') as handle:
        busybox_data = handle.read()
    with open(os.path.join(HERE, 'init.sh'), 'rb') as handle:
        init = b'#!/bin/busybox sh\n' + handle.read()
    conf = 'KIND=%s\nPOWER_BUTTON=%s\nIOMMU_REPORT=%s\nHOTPLUG_REPORT=%s\nDHCP=%s\n' % (
        spec.name, spec.power_button, 'yes' if spec.iommu_report else 'no', 'yes' if spec.hotplug_report else 'no',
        'yes' if spec.dhcp else 'no')
    entries = [(d, 0o40755, b'') for d in ('bin', 'dev', 'etc', 'lib', 'lib/modules', 'proc', 'run', 'sys', 'tmp')]
    entries += [
        # the kernel opens /dev/console for init before anything mounts devtmpfs
        ('dev/console', 0o20600, (5, 1)),
        ('bin/busybox', 0o100755, busybox_data),
        ('init', 0o100755, init),
        ('etc/guest.conf', 0o100644, conf.encode()),
        ('etc/modules', 0o100644, ''.join(os.path.basename(path) + '\n' for path in order).encode()),
    ]
    for path in order:
        with open(os.path.join(modules_dir, path), 'rb') as handle:
            entries.append(('lib/modules/' + os.path.basename(path), 0o100644, handle.read()))
    if spec.power_button != 'none':
        entries += [('etc/acpi', 0o40755, b''), ('etc/acpi/PWRF', 0o40755, b''),
                    ('etc/acpi/PWRF/00000080', 0o100755,
                     b'#!/bin/busybox sh\n' + POWER_BUTTON_SCRIPTS[spec.power_button].encode())]
    if spec.dhcp:
        entries += [('etc/udhcpc.script', 0o100755, b'#!/bin/busybox sh\n' + UDHCPC_SCRIPT.encode())]
    return entries


def _build_direct_kernel(spec, packages, cache, out):
    (package, version), = [(name, ver) for name, ver in packages.items() if name.startswith('linux-image-')]
    deb = _apt_download(package, version, os.path.join(cache, 'downloads'))
    kernel_version = package[len('linux-image-'):]
    with tempfile.TemporaryDirectory(prefix='kernel-', dir=cache) as tree:
        run(['dpkg-deb', '-x', deb, tree])
        # the package ships no modules.dep (its postinst runs depmod)
        run(['busybox', 'depmod', '-b', tree, kernel_version])
        modules_dir = os.path.join(tree, 'lib', 'modules', kernel_version)
        archive = newc_archive(_initramfs_entries(spec, modules_dir))
        shutil.copyfile(os.path.join(tree, 'boot', 'vmlinuz-' + kernel_version), os.path.join(out, 'vmlinuz'))
    with open(os.path.join(out, 'initrd.img'), 'wb') as handle:
        with gzip.GzipFile(fileobj=handle, mode='wb', mtime=0) as compressed:
            compressed.write(archive)
    return {'kernel': 'vmlinuz', 'initrd': 'initrd.img', 'kernel_version': kernel_version,
            'cmdline': ' '.join(filter(None, ('console=ttyS0 panic=-1', spec.cmdline)))}


# -- debian-disk ---------------------------------------------------------------

def _chroot_dev(root, loop, part, uuid):
    """A private /dev for the chroot: the loop device, its partition and by-uuid.

    grub-install needs the disk node, and update-grub writes root=UUID=
    only when /dev/disk/by-uuid/<uuid> exists (no udev runs here). A tmpfs
    keeps these nodes out of the machine's own /dev.
    """
    dev = os.path.join(root, 'dev')
    run(['mount', '-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', dev])
    for node in ('null', 'zero', 'full', 'random', 'urandom', 'tty', loop[len('/dev/'):], part[len('/dev/'):]):
        info = os.stat('/dev/' + node)
        os.mknod(os.path.join(dev, node), info.st_mode, info.st_rdev)
    os.makedirs(os.path.join(dev, 'disk', 'by-uuid'))
    os.symlink('../../' + os.path.basename(part), os.path.join(dev, 'disk', 'by-uuid', uuid))
    os.symlink('/proc/self/fd', os.path.join(dev, 'fd'))


def _debian_disk_inside(work, mirror, pubkey, debootstrap_cache):
    """Build work/disk.raw. Runs inside `unshare -m --propagation private`.

    libvirtd was started through `ip netns exec`, which gave it a mount
    namespace of its own: a mount made in the machine's namespace would be
    copied into it and keep the loop device busy. A private namespace also
    drops every mount if this process dies.
    """
    raw = os.path.join(work, 'disk.raw')
    root = os.path.join(work, 'root')
    os.makedirs(root)
    with open(raw, 'wb') as handle:
        handle.truncate(DISK_SIZE)
    # 1 MiB before the partition: room for GRUB's core.img (i386-pc)
    run(['sfdisk', '-q', raw], input_text='label: dos\nstart=2048, type=83, bootable\n')
    loop = run(['losetup', '--find', '--show', raw]).strip()
    part = loop + 'p1'
    try:
        if not os.path.exists(part):
            # this machine's kernel has no dos partition parser: tell it by hand
            run(['partx', '-a', loop])
        run(['mkfs.ext4', '-q', '-L', 'phyllome-root', part])
        uuid = run(['blkid', '-s', 'UUID', '-o', 'value', part]).strip()
        run(['mount', part, root])
        run(['debootstrap', '--variant=minbase', '--include=' + ','.join(DEBIAN_DISK_PACKAGES),
             '--cache-dir=' + debootstrap_cache, SUITE, root, mirror])
        files = dict(DEBIAN_DISK_FILES)
        files['/etc/fstab'] = 'UUID=%s / ext4 errors=remount-ro 0 1\n' % uuid
        with open(pubkey, encoding='utf-8') as handle:
            files['/root/.ssh/authorized_keys'] = handle.read()
        for path, content in files.items():
            target = root + path
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, 'w', encoding='utf-8') as handle:
                handle.write(content)
        os.chmod(root + '/root/.ssh', 0o700)
        os.chmod(root + '/root/.ssh/authorized_keys', 0o600)
        run(['chroot', root, 'systemctl', 'enable'] + list(DEBIAN_DISK_ENABLE))
        run(['chroot', root, 'systemctl', 'mask'] + list(DEBIAN_DISK_MASK))
        for path in DEBIAN_DISK_PRUNE:
            target = os.path.join(root, path)
            if os.path.isdir(target):
                shutil.rmtree(target)
                os.makedirs(target)
            elif os.path.exists(target):
                os.unlink(target)
        run(['mount', '-t', 'proc', 'proc', root + '/proc'])
        run(['mount', '-t', 'sysfs', 'sysfs', root + '/sys'])
        _chroot_dev(root, loop, part, uuid)
        run(['chroot', root, 'update-initramfs', '-u', '-k', 'all'])
        run(['chroot', root, 'grub-install', '--target=i386-pc', loop])
        run(['chroot', root, 'update-grub'])
        for mount in ('dev', 'sys', 'proc'):
            run(['umount', os.path.join(root, mount)])
        # freed blocks become holes in disk.raw, which qemu-img then skips
        run(['fstrim', root])
        run(['umount', root])
    finally:
        subprocess.run(['umount', '-R', root], capture_output=True, check=False)
        subprocess.run(['partx', '-d', loop], capture_output=True, check=False)
        subprocess.run(['losetup', '-d', loop], capture_output=True, check=False)


def _build_debian_disk(cache, out):
    key = os.path.join(out, 'id_ed25519')
    run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'phyllome-test-guest', '-f', key])
    debootstrap_cache = os.path.join(cache, 'downloads', 'debootstrap')
    os.makedirs(debootstrap_cache, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='disk-', dir=cache) as work:
        args = json.dumps({'work': work, 'mirror': debian_mirror(), 'pubkey': key + '.pub',
                           'debootstrap_cache': debootstrap_cache})
        run(['unshare', '-m', '--propagation', 'private', sys.executable, os.path.abspath(__file__),
             INSIDE_COMMAND, args])
        run(['qemu-img', 'convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', 'compression_type=zstd',
             os.path.join(work, 'disk.raw'), os.path.join(out, 'disk.qcow2')])
    return {'disk': 'disk.qcow2', 'disk_format': 'qcow2', 'ssh_key': 'id_ed25519', 'ssh_user': 'root',
            'ssh_guest_address': SSH_GUEST_ADDRESS.split('/', maxsplit=1)[0]}


# -- build ---------------------------------------------------------------------

def _absolute(manifest, directory):
    """The manifest with its artifact file names made absolute."""
    result = dict(manifest, dir=directory)
    for field in ('kernel', 'initrd', 'disk', 'ssh_key'):
        if field in result:
            result[field] = os.path.join(directory, result[field])
    return result


def build(kind, cache=None):
    """Build `kind` unless cached; return its artifacts (absolute paths) and facts.

    The result has: kind, key, dir, packages, built (False when cached),
    seconds, and per kind: kernel, initrd, cmdline, kernel_version (direct
    kernel) or disk, disk_format, ssh_key, ssh_user (debian-disk).
    """
    if kind not in KINDS:
        raise GuestError('unknown guest kind %r (known: %s)' % (kind, ', '.join(KINDS)))
    start = time.monotonic()
    cache = cache_root(cache)
    os.makedirs(cache, exist_ok=True)
    os.chmod(cache, 0o755)
    packages = _packages(kind)
    key = cache_key(kind, packages)
    entry = os.path.join(cache, '%s-%s' % (kind, key))
    manifest_path = os.path.join(entry, 'manifest.json')
    with _locked(os.path.join(cache, '.%s.lock' % kind)):
        built = not os.path.exists(manifest_path)
        if built:
            _log('building %s (%s) in %s' % (kind, key, entry))
            out = tempfile.mkdtemp(prefix='.%s-' % kind, dir=cache)
            try:
                spec = KINDS[kind]
                facts = _build_debian_disk(cache, out) if spec.disk else _build_direct_kernel(spec, packages, cache, out)
                manifest = dict(facts, kind=kind, key=key, packages=packages,
                                build_seconds=round(time.monotonic() - start, 1))
                with open(os.path.join(out, 'manifest.json'), 'w', encoding='utf-8') as handle:
                    json.dump(manifest, handle, indent=2, sort_keys=True)
                _make_readable(out)
                if spec.disk:
                    # tests boot overlays; nothing may write to the base
                    os.chmod(os.path.join(out, facts['disk']), 0o444)
                # a complete entry appears at once, or not at all
                os.rename(out, entry)
            except BaseException:
                shutil.rmtree(out, ignore_errors=True)
                raise
        with open(manifest_path, encoding='utf-8') as handle:
            manifest = json.load(handle)
    result = _absolute(manifest, entry)
    result.update(built=built, seconds=round(time.monotonic() - start, 1))
    _log('%s %s: %s' % (kind, 'built' if built else 'cached', entry))
    return result


def stale_entries(cache=None):
    """Cache entries whose key no current recipe produces (after a recipe or package change)."""
    cache = cache_root(cache)
    if not os.path.isdir(cache):
        return []
    current = {'%s-%s' % (kind, cache_key(kind, _packages(kind))) for kind in KINDS}
    return sorted(os.path.join(cache, name) for name in os.listdir(cache)
                  if os.path.isfile(os.path.join(cache, name, 'manifest.json')) and name not in current)


# -- using a guest -------------------------------------------------------------

def create_overlay(base, path):
    """A fresh qcow2 overlay on a cached base disk: tests write here, never to the base."""
    run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, path])
    os.chmod(path, 0o644)
    return path


def free_port(netns=NETNS):
    """A TCP port free on 127.0.0.1 inside netns (where QEMU's hostfwd listens)."""
    probe = 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    return int(run(['ip', 'netns', 'exec', netns, sys.executable, '-c', probe]).strip())


def _ssh_options(port, key, netns):
    return ['-o', 'ProxyCommand=ip netns exec %s socat - TCP:127.0.0.1:%d' % (netns, port),
            '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
            '-o', 'IdentitiesOnly=yes', '-o', 'ConnectTimeout=10', '-i', key]


def ssh_args(port, key, netns=NETNS, user='root'):
    """ssh command line (without the remote command) to a debian-disk guest."""
    return ['ssh'] + _ssh_options(port, key, netns) + ['-p', str(port), '%s@127.0.0.1' % user]


def inventory_vars(port, key, netns=NETNS, user='root'):
    """Ansible host vars that reach a debian-disk guest through the test namespace."""
    common = [opt for opt in _ssh_options(port, key, netns) if opt not in ('-i', key)]
    return {
        'ansible_host': '127.0.0.1',
        'ansible_port': port,
        'ansible_user': user,
        'ansible_ssh_private_key_file': key,
        'ansible_ssh_common_args': ' '.join(opt if opt.startswith('-') else shlex.quote(opt) for opt in common),
        'ansible_python_interpreter': '/usr/bin/python3',
    }


def wait_for_serial(path, pattern, timeout=120.0, offset=0, interval=0.2):
    """Wait until a line of the serial log at `path` (from `offset`) matches `pattern`.

    Returns (line, end_offset): pass end_offset back in to wait for the next
    occurrence (e.g. the ready line after a reboot). On timeout, GuestError
    carries the log's last lines.
    """
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        data = b''
        if os.path.exists(path):
            with open(path, 'rb') as handle:
                handle.seek(offset)
                data = handle.read()
        position = 0
        # only complete lines; a console also writes bare \r (progress lines)
        for raw_line in data.split(b'\n')[:-1]:
            position += len(raw_line) + 1
            line = raw_line.decode('utf-8', 'replace').strip('\r')
            if regex.search(line):
                return line, offset + position
        if time.monotonic() >= deadline:
            tail = data.decode('utf-8', 'replace').splitlines()[-20:]
            raise GuestError('no line matching %r in %s after %.0f s; last lines:\n%s'
                             % (pattern, path, timeout, '\n'.join(tail)))
        time.sleep(interval)


def test_uri():
    """The URI of the private test libvirtd of tests/lab/libvirtd.sh (never the machine's qemu:///system)."""
    return run([LAB_LIBVIRTD, 'uri']).strip()


def wait_for_state(name, state, timeout=60.0, uri=None, interval=0.2):
    """Wait until `virsh domstate name` says `state` (e.g. "shut off"); return the seconds waited.

    uri: the libvirt URI; default: the private test libvirtd's.
    """
    uri = uri or test_uri()
    start = time.monotonic()
    current = None
    while True:
        current = run(['virsh', '-c', uri, 'domstate', name]).strip()
        if current == state:
            return round(time.monotonic() - start, 1)
        if time.monotonic() - start >= timeout:
            raise GuestError('domain %s is %r, not %r, after %.0f s' % (name, current, state, timeout))
        time.sleep(interval)


# -- domain XML ----------------------------------------------------------------

def _sub(parent, tag, text=None, **attrs):
    elem = ET.SubElement(parent, tag, {k.rstrip('_'): str(v) for k, v in attrs.items()})
    if text is not None:
        elem.text = str(text)
    return elem


def _pci_address(parent, slot):
    _sub(parent, 'address', type='pci', domain='0x0000', bus='0x00', slot='0x%02x' % slot, function='0x0')


def _ssh_nic(domain, port, iommu):
    """QEMU user networking with hostfwd 127.0.0.1:port -> guest:22.

    libvirt 9.0 has <portForward> only for the passt backend, and its user
    (slirp) interfaces take no hostfwd, hence <qemu:commandline>. hostfwd
    listens in QEMU's network namespace: the test namespace libvirtd runs in.
    restrict=on: the guest reaches nothing; forwarded ports still work.
    """
    netdev = 'user,id=phyllome-ssh,restrict=on,hostfwd=tcp:127.0.0.1:%d-:22' % port
    device = 'virtio-net-pci,netdev=phyllome-ssh,mac=%s,bus=pcie.0,addr=0x%x' % (SSH_NIC_MAC, SSH_NIC_SLOT)
    if iommu:
        # On the root bus the device is transitional (legacy virtio), which
        # cannot go through an IOMMU: QEMU refuses to start. Modern only.
        device += ',disable-legacy=on,iommu_platform=on'
    commandline = _sub(domain, '{%s}commandline' % QEMU_NS)
    for arg in ('-netdev', netdev, '-device', device):
        _sub(commandline, '{%s}arg' % QEMU_NS, value=arg)


def domain_xml(kind, name, artifacts, serial, *, memory_mib=None, vcpus=1, firmware='bios', secure_boot=False,
               tpm=False, iommu=None, e1000e_slots=None, cmdline_extra='', disk=None, ssh_port=None,
               max_memory_mib=None, max_vcpus=None, balloon=False, root_ports=0):
    """Libvirt domain XML (type='qemu', q35) for a guest of `kind`.

    artifacts: build(kind)'s result. serial: file the serial console is
    written to (created by libvirt). firmware: 'bios' or 'efi'; secure_boot
    (efi only) selects the firmware with Microsoft keys enrolled and turns
    SMM on; tpm adds a tpm-crb TPM 2.0 (swtpm emulator). iommu and
    e1000e_slots default to the kind's. debian-disk needs disk (an overlay
    from create_overlay) and takes ssh_port (from free_port). For hotplug
    tests: max_memory_mib (<memory>; memory_mib is then <currentMemory>),
    max_vcpus (<vcpu current=vcpus>), balloon (a virtio memballoon instead
    of none) and root_ports (spare pcie-root-ports to plug devices into).
    """
    spec = KINDS[kind]
    iommu = spec.iommu if iommu is None else iommu
    e1000e_slots = spec.e1000e_slots if e1000e_slots is None else e1000e_slots
    if spec.disk and not disk:
        raise GuestError('a debian-disk domain needs disk= (an overlay, never the cached base)')
    if secure_boot and firmware != 'efi':
        raise GuestError('secure_boot needs firmware="efi"')
    ET.register_namespace('qemu', QEMU_NS)
    domain = ET.Element('domain', type='qemu')
    _sub(domain, 'name', name)
    if not memory_mib:
        memory_mib = max(spec.memory_mib, SECURE_BOOT_MIN_MIB) if secure_boot else spec.memory_mib
    _sub(domain, 'memory', max_memory_mib or memory_mib, unit='MiB')
    if max_memory_mib:
        _sub(domain, 'currentMemory', memory_mib, unit='MiB')
    if max_vcpus and max_vcpus > vcpus:
        _sub(domain, 'vcpu', max_vcpus, current=str(vcpus))
    else:
        _sub(domain, 'vcpu', vcpus)
    os_elem = _sub(domain, 'os', **({'firmware': 'efi'} if firmware == 'efi' else {}))
    _sub(os_elem, 'type', 'hvm', arch='x86_64', machine='q35')
    if firmware == 'efi':
        fw = _sub(os_elem, 'firmware')
        _sub(fw, 'feature', enabled='yes' if secure_boot else 'no', name='secure-boot')
        if secure_boot:
            _sub(fw, 'feature', enabled='yes', name='enrolled-keys')
            _sub(os_elem, 'loader', secure='yes')
    if not spec.disk:
        _sub(os_elem, 'kernel', artifacts['kernel'])
        _sub(os_elem, 'initrd', artifacts['initrd'])
        _sub(os_elem, 'cmdline', ' '.join(filter(None, (artifacts['cmdline'], cmdline_extra))))
    else:
        _sub(os_elem, 'boot', dev='hd')
    features = _sub(domain, 'features')
    _sub(features, 'acpi')
    if secure_boot:
        _sub(features, 'smm', state='on')
    if iommu:
        # interrupt remapping needs the IOAPIC in QEMU (split irqchip)
        _sub(features, 'ioapic', driver='qemu')
    _sub(domain, 'on_poweroff', 'destroy')
    # a direct-kernel guest that panics (panic=-1) ends instead of looping
    _sub(domain, 'on_reboot', 'restart' if spec.disk else 'destroy')
    _sub(domain, 'on_crash', 'destroy')
    devices = _sub(domain, 'devices')
    if spec.disk:
        disk_elem = _sub(devices, 'disk', type='file', device='disk')
        driver = _sub(disk_elem, 'driver', name='qemu', type='qcow2')
        if iommu:
            # a virtio device ignores a vIOMMU unless told; the guest driver would not
            driver.set('iommu', 'on')
        _sub(disk_elem, 'source', file=disk)
        _sub(disk_elem, 'target', dev='vda', bus='virtio')
        controller = _sub(devices, 'controller', type='virtio-serial', index='0')
        if iommu:
            _sub(controller, 'driver', iommu='on')
        channel = _sub(devices, 'channel', type='unix')
        _sub(channel, 'target', type='virtio', name='org.qemu.guest_agent.0')
    _sub(devices, 'controller', type='usb', model='none')
    # numbered after pcie-root (0); libvirt puts its own devices into the first free ones
    for index in range(1, root_ports + 1):
        _sub(devices, 'controller', type='pci', index=str(index), model='pcie-root-port')
    for slot in e1000e_slots:
        interface = _sub(devices, 'interface', type='user')
        _sub(interface, 'model', type='e1000e')
        _pci_address(interface, slot)
    serial_elem = _sub(devices, 'serial', type='file')
    _sub(serial_elem, 'source', path=serial, append='off')
    _sub(serial_elem, 'target', port='0')
    if tpm:
        tpm_elem = _sub(devices, 'tpm', model='tpm-crb')
        _sub(tpm_elem, 'backend', type='emulator', version='2.0')
    if iommu:
        iommu_elem = _sub(devices, 'iommu', model='intel')
        _sub(iommu_elem, 'driver', intremap='on')
    _sub(devices, 'memballoon', model='virtio' if balloon else 'none')
    if ssh_port:
        if not spec.disk:
            raise GuestError('ssh_port is for the debian-disk kind')
        _ssh_nic(domain, int(ssh_port), iommu)
    ET.indent(domain)
    return ET.tostring(domain, encoding='unicode') + '\n'


# -- command line --------------------------------------------------------------

def _parser():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--cache', help='cache directory (default: $PHYLLOME_TEST_GUESTS_CACHE or tests/guests/cache)')
    sub = parser.add_subparsers(dest='command', required=True)

    cmd = sub.add_parser('build', help='build (or find cached) guests; print their artifacts as JSON')
    cmd.add_argument('kinds', nargs='+', choices=sorted(KINDS))

    cmd = sub.add_parser('xml', help='print the domain XML of a guest (builds it if needed)')
    cmd.add_argument('kind', choices=sorted(KINDS))
    cmd.add_argument('--name', required=True)
    cmd.add_argument('--serial', required=True, help='file the serial console goes to')
    cmd.add_argument('--memory-mib', type=int)
    cmd.add_argument('--vcpus', type=int, default=1)
    cmd.add_argument('--max-memory-mib', type=int, help='<memory>; --memory-mib is then <currentMemory>')
    cmd.add_argument('--max-vcpus', type=int, help='<vcpu current=VCPUS>MAX</vcpu>')
    cmd.add_argument('--balloon', action='store_true', help='a virtio memory balloon (default: none)')
    cmd.add_argument('--root-ports', type=int, default=0, help='spare pcie-root-ports for hotplug')
    cmd.add_argument('--firmware', choices=('bios', 'efi'), default='bios')
    cmd.add_argument('--secure-boot', action='store_true')
    cmd.add_argument('--tpm', action='store_true')
    cmd.add_argument('--iommu', choices=('yes', 'no'), help="default: the kind's")
    cmd.add_argument('--e1000e-slots', help="comma separated PCI slots on bus 0 (default: the kind's; '' for none)")
    cmd.add_argument('--cmdline-extra', default='', help='appended to a direct-kernel guest command line')
    cmd.add_argument('--disk', help='debian-disk: the overlay to boot')
    cmd.add_argument('--ssh-port', type=int, help='debian-disk: hostfwd port on 127.0.0.1 in the test namespace')

    cmd = sub.add_parser('overlay', help='create a fresh qcow2 overlay on the cached debian-disk base')
    cmd.add_argument('path')

    sub.add_parser('free-port', help='print a free TCP port on 127.0.0.1 inside the test namespace')

    for name, text in (('inventory', 'print Ansible host vars (JSON) for a debian-disk guest'),
                       ('ssh', 'run a command in a debian-disk guest over ssh (exit code passed through)')):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument('--port', type=int, required=True)
        cmd.add_argument('--key', help="the guest's ssh key (default: the cached debian-disk's)")
        cmd.add_argument('--netns', default=NETNS)
    cmd.add_argument('remote', nargs=argparse.REMAINDER)

    cmd = sub.add_parser('wait-serial', help='wait for a line of a serial log; print it and the offset as JSON')
    cmd.add_argument('path')
    cmd.add_argument('pattern')
    cmd.add_argument('--timeout', type=float, default=120.0)
    cmd.add_argument('--offset', type=int, default=0)

    cmd = sub.add_parser('wait-state', help='wait until a domain is in a state (virsh domstate); print the seconds')
    cmd.add_argument('name')
    cmd.add_argument('state', help='e.g. "running", "shut off"')
    cmd.add_argument('--timeout', type=float, default=60.0)
    cmd.add_argument('--uri', default=None, help='libvirt URI (default: tests/lab/libvirtd.sh uri)')

    cmd = sub.add_parser('clean', help='remove cache entries no current recipe produces')
    cmd.add_argument('--all', action='store_true', help='remove the whole cache')
    return parser


def _print_json(data):
    print(json.dumps(data, indent=2, sort_keys=True))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [INSIDE_COMMAND]:
        # the privileged half of a debian-disk build, re-run under unshare
        _debian_disk_inside(**json.loads(argv[1]))
        return 0
    args = _parser().parse_args(argv)
    try:
        if args.command == 'build':
            _print_json({kind: build(kind, args.cache) for kind in args.kinds})
        elif args.command == 'xml':
            slots = None
            if args.e1000e_slots is not None:
                slots = tuple(int(slot, 0) for slot in args.e1000e_slots.split(',') if slot)
            iommu = None if args.iommu is None else args.iommu == 'yes'
            sys.stdout.write(domain_xml(
                args.kind, args.name, build(args.kind, args.cache), args.serial, memory_mib=args.memory_mib,
                vcpus=args.vcpus, firmware=args.firmware, secure_boot=args.secure_boot, tpm=args.tpm, iommu=iommu,
                e1000e_slots=slots, cmdline_extra=args.cmdline_extra, disk=args.disk, ssh_port=args.ssh_port,
                max_memory_mib=args.max_memory_mib, max_vcpus=args.max_vcpus, balloon=args.balloon,
                root_ports=args.root_ports))
        elif args.command == 'overlay':
            print(create_overlay(build('debian-disk', args.cache)['disk'], os.path.abspath(args.path)))
        elif args.command == 'free-port':
            print(free_port())
        elif args.command == 'inventory':
            _print_json(inventory_vars(args.port, args.key or build('debian-disk', args.cache)['ssh_key'], args.netns))
        elif args.command == 'ssh':
            key = args.key or build('debian-disk', args.cache)['ssh_key']
            remote = args.remote[1:] if args.remote[:1] == ['--'] else args.remote
            return subprocess.run(ssh_args(args.port, key, args.netns) + remote, check=False).returncode
        elif args.command == 'wait-serial':
            start = time.monotonic()
            line, offset = wait_for_serial(args.path, args.pattern, args.timeout, args.offset)
            _print_json({'line': line, 'offset': offset, 'seconds': round(time.monotonic() - start, 1)})
        elif args.command == 'wait-state':
            _print_json({'state': args.state, 'seconds': wait_for_state(args.name, args.state, args.timeout, args.uri)})
        elif args.command == 'clean':
            targets = [cache_root(args.cache)] if args.all else stale_entries(args.cache)
            for path in targets:
                _log('removing %s' % path)
                shutil.rmtree(path, ignore_errors=True)
    except GuestError as exc:
        print('guests: error: %s' % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
