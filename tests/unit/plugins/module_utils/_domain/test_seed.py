# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cloud-init NoCloud seed: its files, and the ISO 9660 image, read back by an independent reader."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput
from ansible_collections.phyllome.os.plugins.module_utils._domain.seed import digest, iso_image, seed_files

USER_DATA = '#cloud-config\nusers:\n  - name: admin\n    passwd: "$6$secret"\n'


def read_iso(image):
    """(label, {name as Linux's map=normal shows it: file bytes}) of a one-directory ISO 9660 image.

    Written from ECMA-119, not from the builder: offsets and the name
    translation of Linux's isofs_name_translate().
    """
    pvd = image[16 * 2048:17 * 2048]
    assert pvd[0:1] == b'\x01' and pvd[1:6] == b'CD001' and pvd[6] == 1
    assert image[17 * 2048:17 * 2048 + 6] == b'\xffCD001'
    block = struct.unpack('<H', pvd[128:130])[0]
    assert block == 2048 and struct.unpack('>H', pvd[130:132])[0] == 2048
    total = struct.unpack('<I', pvd[80:84])[0]
    assert total == struct.unpack('>I', pvd[84:88])[0] and total * 2048 == len(image)
    label = pvd[40:72].decode('ascii').rstrip(' ')
    root = pvd[156:190]
    extent, size = struct.unpack('<I', root[2:6])[0], struct.unpack('<I', root[10:14])[0]
    assert root[25] & 2  # a directory
    directory = image[extent * 2048:extent * 2048 + size]
    files = {}
    offset = 0
    while offset < len(directory) and directory[offset]:
        length = directory[offset]
        record = directory[offset:offset + length]
        start = struct.unpack('<I', record[2:6])[0]
        assert start == struct.unpack('>I', record[6:10])[0]
        data_length = struct.unpack('<I', record[10:14])[0]
        identifier = record[33:33 + record[32]]
        if identifier not in (b'\x00', b'\x01'):
            name = identifier.decode('ascii').lower()
            if name.endswith('.;1'):
                name = name[:-3]
            files[name] = image[start * 2048:start * 2048 + data_length]
        offset += length
    # The path table names the root directory too.
    path_table_l = struct.unpack('<I', pvd[140:144])[0]
    assert struct.unpack('<I', image[path_table_l * 2048 + 2:path_table_l * 2048 + 6])[0] == extent
    return label, files


def test_files_with_their_defaults():
    files = seed_files(USER_DATA, None, None, 'web1')
    assert sorted(files) == ['meta-data', 'user-data']
    assert files['user-data'] == USER_DATA.encode()
    assert json.loads(files['meta-data']) == {'instance-id': 'web1', 'local-hostname': 'web1'}


def test_given_meta_data_wins_and_dicts_do_not_depend_on_key_order():
    one = seed_files('', {'local-hostname': 'www', 'instance-id': 'i-2'}, {'version': 2, 'ethernets': {}}, 'web1')
    two = seed_files('', {'instance-id': 'i-2', 'local-hostname': 'www'}, {'ethernets': {}, 'version': 2}, 'web1')
    assert one == two
    assert json.loads(one['meta-data']) == {'instance-id': 'i-2', 'local-hostname': 'www'}
    assert seed_files('', None, 'version: 1\n', 'x')['network-config'] == b'version: 1\n'


@pytest.mark.parametrize('args, message', [
    (({'a': 1}, None, None), 'user_data must be text'),
    (('', 'instance-id: x', None), 'meta_data must be a dictionary'),
    (('', None, ['eth0']), 'network_config must be text or a dictionary'),
])
def test_bad_values(args, message):
    with pytest.raises(InvalidInput, match=message):
        seed_files(*(args + ('web1',)))


def test_the_image_reads_back():
    files = seed_files(USER_DATA, None, {'version': 2}, 'web1')
    image = iso_image(files)
    label, found = read_iso(image)
    assert label == 'cidata'
    assert found == files
    assert len(image) % 2048 == 0


def test_the_image_is_deterministic_and_its_digest_follows_its_content():
    files = seed_files(USER_DATA, None, None, 'web1')
    image = iso_image(files)
    assert iso_image(dict(reversed(list(files.items())))) == image
    assert digest(image) == 'sha256:' + hashlib.sha256(image).hexdigest()
    assert digest(iso_image(seed_files(USER_DATA + '# more\n', None, None, 'web1'))) != digest(image)


def test_large_and_empty_files():
    files = {'user-data': b'x' * 5000, 'meta-data': b'', 'network-config': b'y' * 2048}
    label, found = read_iso(iso_image(files))
    assert found == files


def test_names_an_image_cannot_hold():
    with pytest.raises(ValueError):
        iso_image({'user data': b''})


def _kernel_reads_iso9660():
    with open('/proc/filesystems') as f:
        if 'iso9660' in f.read():
            return True
    return subprocess.run(['modprobe', '-q', 'isofs'], check=False).returncode == 0


@pytest.mark.skipif(os.geteuid() != 0, reason='mounting a loop device needs root')
def test_linux_mounts_the_image_and_shows_the_nocloud_names(tmp_path):
    if not _kernel_reads_iso9660():
        pytest.skip('this kernel has no iso9660 file system (isofs)')
    files = seed_files(USER_DATA, None, {'version': 2}, 'web1')
    path = tmp_path / 'seed.iso'
    path.write_bytes(iso_image(files))
    mountpoint = tmp_path / 'mnt'
    mountpoint.mkdir()
    subprocess.run(['mount', '-o', 'loop,ro', '-t', 'iso9660', str(path), str(mountpoint)], check=True)
    try:
        assert sorted(os.listdir(str(mountpoint))) == ['meta-data', 'network-config', 'user-data']
        for name, data in files.items():
            assert (mountpoint / name).read_bytes() == data
    finally:
        subprocess.run(['umount', str(mountpoint)], check=True)


@pytest.mark.skipif(not shutil.which('blkid'), reason='no blkid (util-linux)')
def test_blkid_sees_an_iso9660_file_system_labelled_cidata(tmp_path):
    path = tmp_path / 'seed.iso'
    path.write_bytes(iso_image(seed_files(USER_DATA, None, None, 'web1')))
    found = subprocess.run(['blkid', '-p', '-o', 'export', str(path)], check=True, stdout=subprocess.PIPE,
                           universal_newlines=True).stdout.split()
    assert 'TYPE=iso9660' in found and 'LABEL=cidata' in found
