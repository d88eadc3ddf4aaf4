# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.hostfs import HostFS


@pytest.fixture
def tree(tmp_path):
    """A small recorded sysfs: a device with relative links, an absolute link, a loop, odd attribute values."""
    root = tmp_path / 'root'
    dev = root / 'sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0'
    dev.mkdir(parents=True)
    (root / 'sys/bus/pci/devices').mkdir(parents=True)
    (root / 'sys/bus/pci/drivers/vfio-pci').mkdir(parents=True)
    (root / 'sys/kernel/iommu_groups/7/devices').mkdir(parents=True)
    (dev / 'vendor').write_text('0x10de\n')
    (dev / 'numa_node').write_text('-1\n')
    (dev / 'class').write_text('0x030000\n')
    (dev / 'label').write_text('not a number\n')
    (dev / 'empty').write_text('')
    os.symlink('../../../devices/pci0000:00/0000:00:01.0/0000:01:00.0', str(root / 'sys/bus/pci/devices/0000:01:00.0'))
    os.symlink('../../../../bus/pci/drivers/vfio-pci', str(dev / 'driver'))
    os.symlink('../../../../kernel/iommu_groups/7', str(dev / 'iommu_group'))
    # An absolute link, as /sys/class/... never has but /etc/alternatives does: it must stay in the tree.
    (root / 'etc').mkdir()
    os.symlink('/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0', str(root / 'etc/gpu'))
    # A link that climbs above the root: clamped at the root like chroot would.
    os.symlink('../../../../../../../../etc', str(root / 'sys/bus/escape'))
    os.symlink('loop-b', str(root / 'etc/loop-a'))
    os.symlink('loop-a', str(root / 'etc/loop-b'))
    return HostFS(str(root))


def test_path_maps_host_paths_below_the_root(tree):
    assert tree.path('/sys/bus') == os.path.join(tree.root, 'sys/bus')
    assert tree.path('sys/bus/../kernel') == os.path.join(tree.root, 'sys/kernel')
    assert not tree.is_live
    assert HostFS('/').path('/proc/cmdline') == '/proc/cmdline'
    assert HostFS('/').is_live


@pytest.mark.parametrize('path, expected', [
    # relative links, through a link to a directory
    ('/sys/bus/pci/devices/0000:01:00.0', '/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0'),
    ('/sys/bus/pci/devices/0000:01:00.0/vendor', '/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/vendor'),
    ('/sys/bus/pci/devices/0000:01:00.0/driver', '/sys/bus/pci/drivers/vfio-pci'),
    ('/sys/bus/pci/devices/0000:01:00.0/iommu_group', '/sys/kernel/iommu_groups/7'),
    # an absolute link resolves inside the recorded root, not on this machine
    ('/etc/gpu/class', '/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/class'),
    # `..` past the root stops at the root
    ('/sys/bus/escape/gpu', '/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0'),
    # paths that do not exist resolve to themselves
    ('/sys/bus/pci/devices/0000:02:00.0', '/sys/bus/pci/devices/0000:02:00.0'),
])
def test_resolve_follows_links_inside_the_root(tree, path, expected):
    assert tree.resolve(path) == expected
    if tree.exists(path):
        assert tree.exists(tree.resolve(path))


def test_resolve_refuses_link_loops(tree):
    with pytest.raises(OSError, match='too many levels'):
        tree.resolve('/etc/loop-a')


def test_readlink_and_link_name(tree):
    assert tree.readlink('/sys/bus/pci/devices/0000:01:00.0/driver') == '../../../../bus/pci/drivers/vfio-pci'
    assert tree.link_name('/sys/bus/pci/devices/0000:01:00.0/driver') == 'vfio-pci'
    assert tree.link_name('/sys/bus/pci/devices/0000:01:00.0/iommu_group') == '7'
    assert tree.readlink('/sys/bus/pci/devices/0000:01:00.0/vendor') is None
    assert tree.link_name('/sys/missing') is None


@pytest.mark.parametrize('name, base, expected', [
    ('vendor', 0, 0x10de),
    ('vendor', 16, 0x10de),
    ('class', 0, 0x030000),
    ('numa_node', 0, -1),
    ('numa_node', 10, -1),
    ('label', 0, 'default'),
    ('empty', 0, 'default'),
    ('missing', 0, 'default'),
])
def test_read_int(tree, name, base, expected):
    path = '/sys/bus/pci/devices/0000:01:00.0/' + name
    assert tree.read_int(path, default='default', base=base) == expected


def test_read_int_decimal_base_rejects_hex(tree):
    assert tree.read_int('/sys/bus/pci/devices/0000:01:00.0/vendor', base=10) is None


def test_missing_files_give_defaults(tree):
    assert tree.read_text('/proc/cmdline') is None
    assert tree.read_text('/proc/cmdline', default='') == ''
    assert tree.read_lines('/proc/cpuinfo') == []
    assert tree.listdir('/sys/class/iommu') == []
    assert tree.stat('/dev/kvm') is None
    assert not tree.is_char_device('/dev/kvm')
    assert not tree.exists('/dev/kvm')
    assert not tree.is_dir('/sys/class/iommu')


def test_read_text_strips_only_trailing_newlines(tree, tmp_path):
    (tmp_path / 'root/proc').mkdir()
    (tmp_path / 'root/proc/cmdline').write_text('  ro quiet \n\n')
    assert tree.read_text('/proc/cmdline') == '  ro quiet '
    assert tree.read_lines('/proc/cmdline') == ['  ro quiet ']


def test_listdir_is_sorted_and_lexists_sees_dangling_links(tree):
    os.symlink('nowhere', os.path.join(tree.root, 'sys/kernel/iommu_groups/7/devices/0000:01:00.0'))
    os.symlink('nowhere', os.path.join(tree.root, 'sys/kernel/iommu_groups/7/devices/0000:00:01.0'))
    assert tree.listdir('/sys/kernel/iommu_groups/7/devices') == ['0000:00:01.0', '0000:01:00.0']
    assert tree.lexists('/sys/kernel/iommu_groups/7/devices/0000:01:00.0')
    assert not tree.exists('/sys/kernel/iommu_groups/7/devices/0000:01:00.0')


@pytest.mark.skipif(os.geteuid() != 0, reason='mknod of a character device needs root')
def test_is_char_device(tree):
    os.makedirs(os.path.join(tree.root, 'dev'))
    os.mknod(os.path.join(tree.root, 'dev/kvm'), 0o020660, os.makedev(10, 232))
    assert tree.is_char_device('/dev/kvm')
    assert not tree.is_char_device('/sys/bus/pci/devices/0000:01:00.0/vendor')


def test_find_program_takes_the_first_executable_file_on_the_path(tmp_path):
    for directory, mode in (('usr/local/bin', 0o644), ('usr/bin', 0o755), ('bin', 0o755)):
        (tmp_path / directory).mkdir(parents=True)
        program = tmp_path / directory / 'swtpm'
        program.write_text('#!/bin/sh\n')
        program.chmod(mode)
    (tmp_path / 'usr/sbin/swtpm_setup').mkdir(parents=True)
    fs = HostFS(str(tmp_path))
    # Not executable in /usr/local/bin: the next directory's wins.
    assert fs.find_program('swtpm') == '/usr/bin/swtpm'
    # A directory is no program.
    assert fs.find_program('swtpm_setup') is None
    assert fs.find_program('grubby', 'swtpm') == '/usr/bin/swtpm'
    assert fs.find_program('swtpm', path=('/bin',)) == '/bin/swtpm'


def test_no_reader_follows_a_link_out_of_the_root(tree, tmp_path):
    # A recorded tree (or an image mounted for an offline audit) whose links
    # point at this machine's files must not read them.
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'shadow').write_text('root:Planted-Secret-Hash:19000:0:99999:7:::\n')
    os.symlink('/etc/shadow', os.path.join(tree.root, 'etc/shadow'))
    os.symlink(str(outside / 'shadow'), os.path.join(tree.root, 'etc/passwd'))
    os.symlink(str(outside), os.path.join(tree.root, 'etc/outside'))
    os.symlink('../../../../../../../../../../../../..' + str(outside / 'shadow'), os.path.join(tree.root, 'etc/group'))
    for path in ('/etc/shadow', '/etc/passwd', '/etc/group', '/etc/outside/shadow'):
        assert tree.read_text(path) is None, path
        assert tree.read_bytes(path) is None, path
        assert tree.read_lines(path) == [], path
        assert tree.exists(path) is False, path
        assert tree.stat(path) is None, path
        assert tree.is_char_device(path) is False, path
        assert not tree.path(path).startswith(str(outside)), path
        assert tree.path(path).startswith(tree.root + os.sep), path
    assert tree.is_dir('/etc/outside') is False and tree.listdir('/etc/outside') == []
    # The links themselves are there, and say where they point.
    assert tree.lexists('/etc/shadow') and tree.readlink('/etc/shadow') == '/etc/shadow'
    # A file the tree has at the link's target is the one read.
    (outside / 'in-tree').mkdir()
    os.makedirs(os.path.join(tree.root, str(outside).lstrip('/')))
    with open(os.path.join(tree.root, str(outside).lstrip('/'), 'shadow'), 'w') as f:
        f.write('recorded\n')
    assert tree.read_text('/etc/passwd') == 'recorded'
    assert tree.read_text('/etc/outside/shadow') == 'recorded'


def test_a_link_loop_reads_as_missing(tree):
    assert tree.exists('/etc/loop-a') is False
    assert tree.read_text('/etc/loop-a', default='none') == 'none'
    assert tree.lexists('/etc/loop-a') is True
