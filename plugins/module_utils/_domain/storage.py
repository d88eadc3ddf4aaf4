# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The volumes behind a model's disks: what to create, what to grow.

A model disk whose volume is missing becomes a new volume: empty (a size), a
copy of a base volume (clone_volume: libvirt's virStorageVolCreateXMLFrom) or
a qcow2 overlay whose <backingStore> is a base volume (backing_volume). The
base is named as virsh names a volume: a name in a pool, or an absolute path
(a volume of whichever pool holds the file; an overlay's base may also be a
file in no pool, whose format comes from its first bytes unless
backing_format states it). A volume that exists is never replaced nor
overwritten (but for the cloud-init seed, data derived from the task); a
larger size grows it (virStorageVolResize), a smaller one is a warning. Plain
data in, plain data out: the manager reads the volume XML through the client
and applies the plan through the recorder.
"""

from __future__ import annotations

import struct

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput
from ansible_collections.phyllome.os.plugins.module_utils._common.units import format_bytes, quantity_bytes
from ansible_collections.phyllome.os.plugins.module_utils._domain.host import volume_xml
from ansible_collections.phyllome.os.plugins.module_utils._domain.seed import digest as seed_digest
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import parse, sub, text_of, to_string

# A volume larger than this is no cloud-init seed the module wrote (a few
# sectors of text): it is never read, nor replaced.
SEED_MAX_BYTES = 64 * 1024 * 1024

# Formats libvirt reports for a volume whose format it does not know: a
# backing file of such a format would be probed by QEMU, which is unsafe.
_UNKNOWN_FORMATS = ('', 'none', 'auto', 'unknown')


# The start of a qcow2 image (QEMU's docs/interop/qcow2.txt): magic, then its virtual size at byte 24.
QCOW2_MAGIC = b'QFI\xfb'
# Formats QEMU reads but this module does not make overlays on: named when found, never taken for raw.
_OTHER_MAGIC = ((b'KDMV', 'vmdk'), (b'vhdxfile', 'vhdx'), (b'QEVM', 'qed'), (b'conectix', 'vpc'),
                (b'<<< ', 'vdi'))


class NewVolume:
    """A volume to create in `pool`: empty, a copy of `base` or an overlay on it.

    base: (pool, volume) of the base image, (None, path) for an image file in
    no storage pool; copy: whether the volume is a copy
    of it (else an overlay, or nothing); grow_to: bytes to grow a copy to
    once made (a copy starts at its base's capacity).
    """

    def __init__(self, pool, name, xml, base=None, copy=False, grow_to=None, upload=None, replace=False):
        self.pool = pool
        self.name = name
        self.xml = xml
        self.base = base
        self.copy = copy
        self.grow_to = grow_to
        # A cloud-init seed: the image to write once created, and whether an
        # older seed of that name goes first.
        self.upload = upload
        self.replace = replace

    def action(self):
        if self.upload is not None:
            return 'create volume %s in pool %s for the cloud-init seed (%s bytes)' % (
                self.name, self.pool, len(self.upload))
        if self.base is None:
            return 'create volume %s in pool %s' % (self.name, self.pool)
        how = 'a copy of' if self.copy else 'a qcow2 overlay on'
        if self.base[0] is None:
            return 'create volume %s in pool %s as %s %s' % (self.name, self.pool, how, self.base[1])
        return 'create volume %s in pool %s as %s volume %s in pool %s' % (
            self.name, self.pool, how, self.base[1], self.base[0])

    def replace_action(self):
        return 'delete volume %s in pool %s (a cloud-init seed with other content: it is written anew)' % (
            self.name, self.pool)

    def upload_action(self):
        return 'write the cloud-init seed into volume %s in pool %s (%s, %d bytes)' % (
            self.name, self.pool, seed_digest(self.upload), len(self.upload))

    def grow_action(self):
        return 'grow volume %s in pool %s to %s' % (self.name, self.pool, format_bytes(self.grow_to))

    def __repr__(self):
        return 'NewVolume(%r)' % self.action()


class Resize:
    """An existing volume to grow to `capacity` bytes (from `current`).

    live_target: the disk of the running domain that has the volume open
    (QEMU grows it then, virDomainBlockResize), None when no QEMU holds it.
    """

    def __init__(self, pool, name, capacity, current, live_target=None):
        self.pool = pool
        self.name = name
        self.capacity = capacity
        self.current = current
        self.live_target = live_target

    def action(self):
        how = ' (disk %s of the running domain)' % self.live_target if self.live_target else ''
        return 'grow volume %s in pool %s from %s to %s%s' % (
            self.name, self.pool, format_bytes(self.current), format_bytes(self.capacity), how)


def creates(disk):
    """Whether a model disk asks for its volume to be created when missing."""
    return bool(disk.get('size') is not None or disk.get('clone_volume') or disk.get('backing_volume'))


def base_of(disk, pool):
    """(pool, volume) of a model disk's base image, (None, path) for an absolute path, or None.

    The base's pool defaults to `pool`.
    """
    for kind in ('clone', 'backing'):
        volume = disk.get(kind + '_volume')
        if volume:
            if volume.startswith('/'):
                return None, volume
            return disk.get(kind + '_pool') or pool, volume
    return None


def image_facts(path, header, size, stated, where):
    """{name, path, format, capacity} of an image file in no storage pool, as volume_facts gives them.

    header: the file's first bytes (512 are enough); size: its size in bytes;
    stated: the format the task states (backing_format), None to read it from
    the header - qcow2 by its magic, else raw. A stated raw wins over a qcow2
    header (a raw disk whose guest wrote one); a stated qcow2 needs the magic.
    """
    found = 'qcow2' if header[:4] == QCOW2_MAGIC else None
    if found is None:
        for magic, name in _OTHER_MAGIC:
            if header.startswith(magic):
                found = name
                break
    fmt = stated or found or 'raw'
    if fmt == 'qcow2':
        if found != 'qcow2' or len(header) < 32:
            raise InvalidInput('%s: %s is not a qcow2 image (no qcow2 header)' % (where, path))
        capacity = struct.unpack('>Q', header[24:32])[0]
    elif fmt == 'raw' and (stated or found is None):
        if size is None:
            raise InvalidInput('%s: %s is not a regular file; a raw base is an image file' % (where, path))
        capacity = size
    else:
        raise InvalidInput('%s: %s is a %s image; an overlay is made on a raw or qcow2 base (qemu-img convert'
                           ' it, or state backing_format: raw if it is a raw disk)' % (where, path, found))
    return {'name': path.rsplit('/', 1)[-1], 'path': path, 'format': fmt, 'capacity': capacity}


def volume_facts(xml):
    """{name, path, format, capacity} of a storage volume's XML."""
    volume = parse(xml, 'storage volume XML')
    fmt = volume.find('target/format')
    capacity = volume.find('capacity')
    return {
        'name': text_of(volume, 'name'),
        'path': text_of(volume, 'target/path'),
        'format': (fmt.get('type') or '') if fmt is not None else '',
        # libvirt's volume sizes are in bytes unless a unit says otherwise.
        'capacity': quantity_bytes(capacity.text, capacity.get('unit'), 'bytes') if capacity is not None else None,
    }


def overlay_xml(name, size, base_path, base_format):
    """XML of a new qcow2 volume of `size` bytes on top of the image at `base_path` (format stated)."""
    volume = parse(volume_xml(name, size, 'qcow2'), 'storage volume XML')
    backing = sub(volume, 'backingStore')
    sub(backing, 'path', text=base_path)
    sub(backing, 'format', {'type': base_format})
    return to_string(volume)


def plan_new(pool, name, disk, base_xml, where, base=None, base_facts=None):
    """The NewVolume for a missing volume of model disk `disk` (resolved: size in bytes, format).

    base_xml: the XML of the disk's base volume (base_of), None when it has none
    or when the base does not exist (an error then). base: (pool, volume) of
    a base given by path that a pool holds (base_xml is then that volume's).
    base_facts: image_facts of a base file in no pool, instead of base_xml.
    """
    if base is None:
        base = base_of(disk, pool)
    if base is None:
        return NewVolume(pool, name, volume_xml(name, disk['size'], disk['format']))
    if disk.get('clone_volume') and base[0] is None:
        raise InvalidInput('%s: %s is in no storage pool, and libvirt copies only volumes of a pool: give it as'
                           ' backing_volume (an overlay on it), or define a dir pool for its directory'
                           % (where, base[1]))
    if base_facts is not None:
        facts = base_facts
    elif base_xml is None:
        raise InvalidInput('%s: the base volume %s does not exist in pool %s' % (where, base[1], base[0]))
    else:
        facts = volume_facts(base_xml)
        if disk.get('backing_format'):
            # Stated by the task: it wins over what libvirt made of the file.
            facts['format'] = disk['backing_format']
    if facts['capacity'] is None:
        raise InvalidInput('%s: libvirt does not say the capacity of the base volume %s in pool %s'
                           % (where, base[1], base[0]))
    size = disk.get('size') or facts['capacity']
    if size < facts['capacity']:
        raise InvalidInput('%s: size %s is smaller than the base volume %s (%s); a disk made from it is at'
                           ' least as large' % (where, format_bytes(size), base[1], format_bytes(facts['capacity'])))
    if disk.get('clone_volume'):
        # libvirt copies (converting to `format` when the base's differs), then the copy grows.
        grow_to = size if size > facts['capacity'] else None
        return NewVolume(pool, name, volume_xml(name, facts['capacity'], disk['format']), base=base, copy=True,
                         grow_to=grow_to)
    if facts['format'] in _UNKNOWN_FORMATS or not facts['path']:
        raise InvalidInput('%s: libvirt does not know the format (or path) of the base volume %s in pool %s; an'
                           ' overlay states its backing format (QEMU must not guess it)' % (where, base[1], base[0]))
    return NewVolume(pool, name, overlay_xml(name, size, facts['path'], facts['format']), base=base)


def plan_grow(pool, name, disk, current_xml, where):
    """(Resize or None, warning or None) for an existing volume of a model disk with a size."""
    if disk.get('size') is None:
        return None, None
    current = volume_facts(current_xml)['capacity']
    if current is None or current == disk['size']:
        return None, None
    if disk['size'] < current:
        return None, ('%s: volume %s in pool %s is %s, larger than size %s; it is left as it is (a volume is never'
                      ' shrunk)' % (where, name, pool, format_bytes(current), format_bytes(disk['size'])))
    return Resize(pool, name, disk['size'], current), None


def plan_seed(pool, name, image, current_xml, read, where):
    """The NewVolume that makes volume `name` hold the seed `image`, None when it does already.

    current_xml: the volume's XML, None when it does not exist. read(length):
    the volume's first bytes (a read through libvirt, check mode too).
    """
    if current_xml is None:
        return NewVolume(pool, name, volume_xml(name, len(image), 'raw'), upload=image)
    facts = volume_facts(current_xml)
    if facts['capacity'] is not None and facts['capacity'] > SEED_MAX_BYTES:
        raise InvalidInput('%s: volume %s in pool %s is %s, not a cloud-init seed this module wrote; it is left'
                           ' alone (give cloud_init.volume another name)'
                           % (where, name, pool, format_bytes(facts['capacity'])))
    if facts['capacity'] == len(image) and read(len(image)) == image:
        return None
    return NewVolume(pool, name, volume_xml(name, len(image), 'raw'), upload=image, replace=True)
