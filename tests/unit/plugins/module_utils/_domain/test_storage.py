# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planning the volumes of model disks: copies, overlays, growth (no libvirt)."""

from __future__ import annotations

import struct

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput
from ansible_collections.phyllome.os.plugins.module_utils._domain import storage
from ansible_collections.phyllome.os.plugins.module_utils._domain.options import resolve_model
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import parse, text_of

GIB = 1024 ** 3


def base_xml(capacity=4 * GIB, fmt='qcow2', path='/pool/base.qcow2'):
    target = '<path>%s</path>' % path if path else ''
    if fmt is not None:
        target += "<format type='%s'/>" % fmt
    return ("<volume type='file'><name>base.qcow2</name><capacity unit='bytes'>%d</capacity>"
            "<target>%s</target></volume>" % (capacity, target))


def disk(**options):
    values = {'pool': 'images', 'volume': 'vm.qcow2'}
    values.update(options)
    return resolve_model({'disks': [values], 'networks': []})['disks'][0]


def test_an_empty_volume_as_before():
    new = storage.plan_new('images', 'vm.raw', disk(volume='vm.raw', size='2G'), None, 'disk vda')
    assert new.action() == 'create volume vm.raw in pool images'
    volume = parse(new.xml)
    assert text_of(volume, 'capacity') == str(2 * GIB)
    assert volume.find('target/format').get('type') == 'raw'
    assert new.base is None and new.grow_to is None


def test_an_overlay_states_its_backing_path_and_format():
    new = storage.plan_new('images', 'vm.qcow2', disk(backing_volume='base.qcow2'), base_xml(), 'disk vda')
    assert new.action() == 'create volume vm.qcow2 in pool images as a qcow2 overlay on volume base.qcow2 in pool images'
    volume = parse(new.xml)
    assert volume.find('target/format').get('type') == 'qcow2'
    assert text_of(volume, 'backingStore/path') == '/pool/base.qcow2'
    assert volume.find('backingStore/format').get('type') == 'qcow2'
    assert text_of(volume, 'capacity') == str(4 * GIB)
    assert not new.copy


def test_an_overlay_of_a_raw_base_says_raw_and_may_be_larger():
    request = disk(backing_volume='base.raw', backing_pool='bases', size='10G')
    new = storage.plan_new('images', 'vm.qcow2', request, base_xml(fmt='raw', path='/b/base.raw'), 'disk vda')
    assert new.base == ('bases', 'base.raw')
    volume = parse(new.xml)
    assert volume.find('backingStore/format').get('type') == 'raw'
    assert text_of(volume, 'capacity') == str(10 * GIB)


def test_a_copy_takes_the_base_capacity_then_grows():
    request = disk(volume='vm.raw', clone_volume='base.qcow2', size='6G')
    assert request['format'] == 'raw'
    new = storage.plan_new('images', 'vm.raw', request, base_xml(), 'disk vda')
    assert new.copy and new.base == ('images', 'base.qcow2')
    assert new.action() == 'create volume vm.raw in pool images as a copy of volume base.qcow2 in pool images'
    volume = parse(new.xml)
    # The copy's own format is the disk's: libvirt converts when the base's differs.
    assert volume.find('target/format').get('type') == 'raw'
    assert text_of(volume, 'capacity') == str(4 * GIB)
    assert new.grow_to == 6 * GIB
    assert new.grow_action() == 'grow volume vm.raw in pool images to 6 GiB'


def test_a_copy_of_the_base_size_does_not_grow():
    new = storage.plan_new('images', 'vm.qcow2', disk(clone_volume='base.qcow2', format='qcow2'), base_xml(), 'x')
    assert new.grow_to is None


@pytest.mark.parametrize('request_options, base, message', [
    ({'backing_volume': 'base.qcow2'}, None, 'base volume base.qcow2 does not exist in pool images'),
    ({'clone_volume': 'base.qcow2', 'clone_pool': 'bases'}, None, 'does not exist in pool bases'),
    ({'backing_volume': 'base.qcow2', 'size': '1G'}, base_xml(), r'size 1 GiB is smaller than the base volume base.qcow2 \(4 GiB\)'),
    ({'clone_volume': 'base.qcow2', 'size': '1G'}, base_xml(), 'smaller than the base'),
    ({'backing_volume': 'base.img'}, base_xml(fmt=None), 'does not know the format'),
    ({'backing_volume': 'base.img'}, base_xml(fmt='none'), 'does not know the format'),
])
def test_bad_bases(request_options, base, message):
    with pytest.raises(InvalidInput, match=message):
        storage.plan_new('images', 'vm.qcow2', disk(**request_options), base, 'disk vda')


@pytest.mark.parametrize('options, message', [
    ({'backing_volume': 'b', 'format': 'raw'}, 'an overlay .backing_volume. is a qcow2 volume, not raw'),
    ({'backing_volume': 'b', 'clone_volume': 'c'}, 'not both'),
    ({'backing_pool': 'p'}, 'backing_pool needs backing_volume'),
    ({'clone_pool': 'p'}, 'clone_pool needs clone_volume'),
    ({'device': 'cdrom', 'path': None, 'pool': None, 'volume': None, 'clone_volume': 'c'}, 'cdrom is not made from'),
])
def test_option_errors(options, message):
    with pytest.raises(InvalidInput, match=message):
        disk(**options)


def test_an_overlay_is_qcow2_by_default():
    assert disk(backing_volume='b')['format'] == 'qcow2'
    assert disk()['format'] == 'raw'


@pytest.mark.parametrize('options, expected', [
    ({}, False),
    ({'size': 1}, True),
    ({'clone_volume': 'b'}, True),
    ({'backing_volume': 'b'}, True),
])
def test_creates(options, expected):
    assert storage.creates(disk(**options)) is expected


def test_grow_only_when_larger():
    current = base_xml(capacity=4 * GIB)
    assert storage.plan_grow('images', 'vm.qcow2', disk(), current, 'disk vda') == (None, None)
    assert storage.plan_grow('images', 'vm.qcow2', disk(size='4G'), current, 'disk vda') == (None, None)
    resize, warning = storage.plan_grow('images', 'vm.qcow2', disk(size='8G'), current, 'disk vda')
    assert warning is None
    assert (resize.capacity, resize.current) == (8 * GIB, 4 * GIB)
    assert resize.action() == 'grow volume vm.qcow2 in pool images from 4 GiB to 8 GiB'
    resize, warning = storage.plan_grow('images', 'vm.qcow2', disk(size='2G'), current, 'disk vda')
    assert resize is None
    assert warning == ('disk vda: volume vm.qcow2 in pool images is 4 GiB, larger than size 2 GiB; it is left as'
                       ' it is (a volume is never shrunk)')


def test_volume_facts_read_units():
    xml = "<volume><name>v</name><capacity unit='KiB'>4</capacity><target><path>/p/v</path></target></volume>"
    assert storage.volume_facts(xml) == {'name': 'v', 'path': '/p/v', 'format': '', 'capacity': 4096}


def seed_volume_xml(capacity):
    return ("<volume type='file'><name>vm-cidata.iso</name><capacity unit='bytes'>%d</capacity>"
            "<target><path>/pool/vm-cidata.iso</path><format type='raw'/></target></volume>" % capacity)


def test_a_missing_seed_is_created_then_written():
    image = b'\x01' * 4096
    new = storage.plan_seed('images', 'vm-cidata.iso', image, None, None, 'cloud_init')
    assert (new.upload, new.replace, new.base) == (image, False, None)
    assert text_of(parse(new.xml), 'capacity') == '4096'
    assert new.action() == 'create volume vm-cidata.iso in pool images for the cloud-init seed (4096 bytes)'
    assert new.upload_action() == ('write the cloud-init seed into volume vm-cidata.iso in pool images'
                                   ' (sha256:%s, 4096 bytes)' % __import__('hashlib').sha256(image).hexdigest())


def test_a_seed_with_the_same_content_is_left_alone_and_one_with_other_content_is_rewritten():
    image = b'\x01' * 4096
    read = []

    def reader(content):
        def read_volume(length):
            read.append(length)
            return content[:length]
        return read_volume
    assert storage.plan_seed('images', 'vm-cidata.iso', image, seed_volume_xml(4096), reader(image), 'c') is None
    assert read == [4096]
    changed = storage.plan_seed('images', 'vm-cidata.iso', image, seed_volume_xml(4096), reader(b'\x02' * 4096), 'c')
    assert changed.replace and changed.upload == image
    # Another size is another content: not even read.
    read[:] = []
    resized = storage.plan_seed('images', 'vm-cidata.iso', image, seed_volume_xml(6144), reader(image), 'c')
    assert resized.replace and read == []
    assert 'written anew' in resized.replace_action()


def test_a_large_volume_is_no_seed_and_is_never_read():
    with pytest.raises(InvalidInput, match='is 20 GiB, not a cloud-init seed'):
        storage.plan_seed('images', 'vm.qcow2', b'', seed_volume_xml(20 * GIB), None, 'cloud_init')


def qcow2_header(capacity):
    return QCOW2_HEADER_START + b'\x00' * 16 + struct.pack('>Q', capacity) + b'\x00' * 480


QCOW2_HEADER_START = b'QFI\xfb\x00\x00\x00\x03'


def test_a_base_by_path_is_a_volume_of_its_pool_or_a_file():
    assert storage.base_of(disk(backing_volume='/srv/images/base.qcow2'), 'images') == (None, '/srv/images/base.qcow2')
    assert storage.base_of(disk(clone_volume='/srv/images/base.qcow2'), 'images') == (None, '/srv/images/base.qcow2')
    assert storage.base_of(disk(backing_volume='base.qcow2'), 'images') == ('images', 'base.qcow2')


def test_an_overlay_on_a_file_in_no_pool_states_the_format_its_header_shows():
    facts = storage.image_facts('/srv/base.qcow2', qcow2_header(3 * GIB), 200 * 1024, None, 'disk vda')
    assert facts == {'name': 'base.qcow2', 'path': '/srv/base.qcow2', 'format': 'qcow2', 'capacity': 3 * GIB}
    request = disk(backing_volume='/srv/base.qcow2')
    new = storage.plan_new('images', 'vm.qcow2', request, None, 'disk vda', base=(None, '/srv/base.qcow2'),
                           base_facts=facts)
    assert new.action() == 'create volume vm.qcow2 in pool images as a qcow2 overlay on /srv/base.qcow2'
    volume = parse(new.xml)
    assert text_of(volume, 'backingStore/path') == '/srv/base.qcow2'
    assert volume.find('backingStore/format').get('type') == 'qcow2'
    assert text_of(volume, 'capacity') == str(3 * GIB)
    raw = storage.image_facts('/srv/base.raw', b'\x00' * 512, 2 * GIB, None, 'disk vda')
    assert (raw['format'], raw['capacity']) == ('raw', 2 * GIB)


def test_a_stated_format_wins_or_is_refused():
    # A raw disk whose guest wrote a qcow2 header: raw, as stated.
    raw = storage.image_facts('/srv/disk.raw', qcow2_header(GIB), 8 * GIB, 'raw', 'disk vda')
    assert (raw['format'], raw['capacity']) == ('raw', 8 * GIB)
    with pytest.raises(InvalidInput, match='is not a qcow2 image'):
        storage.image_facts('/srv/disk.raw', b'\x00' * 512, GIB, 'qcow2', 'disk vda')
    with pytest.raises(InvalidInput, match='is a vmdk image'):
        storage.image_facts('/srv/disk.vmdk', b'KDMV' + b'\x00' * 508, GIB, None, 'disk vda')
    with pytest.raises(InvalidInput, match='not a regular file'):
        storage.image_facts('/dev/sdz', b'\x00' * 512, None, None, 'disk vda')
    # libvirt's description of a pool volume gives way to a stated format too.
    request = disk(backing_volume='base.qcow2', backing_format='raw')
    new = storage.plan_new('images', 'vm.qcow2', request, base_xml(), 'disk vda')
    assert parse(new.xml).find('backingStore/format').get('type') == 'raw'


def test_a_copy_of_a_file_in_no_pool_is_refused():
    request = disk(clone_volume='/srv/base.qcow2', format='qcow2')
    with pytest.raises(InvalidInput, match='libvirt copies only volumes of a pool'):
        storage.plan_new('images', 'vm.qcow2', request, None, 'disk vda', base=(None, '/srv/base.qcow2'))


@pytest.mark.parametrize('options, message', [
    ({'backing_volume': '/srv/base.qcow2', 'backing_pool': 'images'}, 'is a path, which needs no backing_pool'),
    ({'clone_volume': '/srv/base.qcow2', 'clone_pool': 'images'}, 'is a path, which needs no clone_pool'),
    ({'backing_format': 'raw', 'size': '1G'}, 'backing_format needs backing_volume'),
])
def test_path_option_errors(options, message):
    with pytest.raises(InvalidInput, match=message):
        disk(**options)
