# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloud-init's NoCloud seed: the files, and the ISO 9660 image that carries them.

cloud-init's NoCloud data source looks for a file system labelled `cidata`
holding `user-data`, `meta-data` and, optionally, `network-config` (what
cloud-localds and virt-install --cloud-init write with genisoimage). The image
is written here, in Python, because the hosts this runs on need not have
genisoimage or xorriso: a plain ISO 9660 image (no Rock Ridge, no Joliet),
one root directory, the names written as `USER-DATA.;1`; Linux's iso9660
driver shows them as `user-data` (its default map=normal lowercases names and
drops the `.;1` ending), and blkid reports LABEL=cidata TYPE=iso9660.

The same files give the same bytes (no clock, no random value: fixed dates),
so the image's SHA-256 digest says whether a seed volume holds what a task
asks, and is all that any output shows of it (user-data often holds passwords
and keys).
"""

from __future__ import annotations

import hashlib
import json
import struct

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput

LABEL = 'cidata'
SECTOR = 2048
# The file names of a NoCloud seed, in the order cloud-init documents them.
FILES = ('user-data', 'meta-data', 'network-config')

# A fixed date for every record (1970-01-01 00:00:00 UTC), so that the image
# depends only on the files: directory records take years since 1900.
_RECORD_DATE = bytes((70, 1, 1, 0, 0, 0, 0))
# "Not specified" (ISO 9660 8.4.26.1): sixteen '0' digits and a zero offset.
_VOLUME_DATE = b'0' * 16 + b'\x00'
_SYSTEM_AREA = 16                 # sectors before the first volume descriptor
_PATH_TABLE_L = 18                # sector of the little-endian path table
_PATH_TABLE_M = 19                # of the big-endian one
_ROOT = 20                        # sector of the root directory
_FIRST_FILE = 21


def seed_files(user_data, meta_data, network_config, name):
    """{file name: bytes} of a NoCloud seed for domain `name`.

    user_data: text (a #cloud-config document, a script, MIME multi-part),
    given as is. meta_data: a dict, or None; instance-id and local-hostname
    default to the domain name (cloud-init runs its once-per-instance modules
    again when instance-id changes). network_config: text, a dict or None (no
    file then). Dicts are written as JSON, which YAML readers take as is, with
    sorted keys so that the bytes do not depend on the order of the task's keys.
    """
    if user_data is None:
        user_data = ''
    if not isinstance(user_data, str):
        raise InvalidInput('cloud_init.user_data must be text (a #cloud-config document, a script, ...)')
    if not isinstance(meta_data or {}, dict):
        raise InvalidInput('cloud_init.meta_data must be a dictionary')
    meta = dict(meta_data or {})
    meta.setdefault('instance-id', name)
    meta.setdefault('local-hostname', name)
    files = {
        'user-data': user_data.encode('utf-8'),
        'meta-data': _document(meta),
    }
    if network_config is not None:
        if not isinstance(network_config, (str, dict)):
            raise InvalidInput('cloud_init.network_config must be text or a dictionary')
        files['network-config'] = _document(network_config)
    return files


def _document(value):
    if isinstance(value, str):
        return value.encode('utf-8')
    return (json.dumps(value, sort_keys=True, indent=2) + '\n').encode('utf-8')


def iso_image(files, label=LABEL):
    """An ISO 9660 image (bytes) with `files` ({name: bytes}) in its root directory, labelled `label`.

    Names are lower-case NoCloud names (letters, digits, '-', '_'); they are
    recorded in upper case with the `.;1` ending ISO 9660 asks for.
    """
    identifiers = []
    for name in files:
        if not name or len(name) > 30 or not all(c.isalnum() or c in '-_' for c in name) or not name.isascii():
            raise ValueError('%r cannot be a file name in this image' % name)
        identifiers.append((name.upper().encode('ascii') + b'.;1', files[name]))
    # ISO 9660 9.3: a directory's records are sorted by file identifier.
    identifiers.sort()
    extents = []
    sector = _FIRST_FILE
    for identifier, data in identifiers:
        extents.append((identifier, sector, data))
        sector += _sectors(len(data))
    total = sector

    root = _record(b'\x00', _ROOT, SECTOR, directory=True)
    directory = root + _record(b'\x01', _ROOT, SECTOR, directory=True)
    for identifier, start, data in extents:
        directory += _record(identifier, start, len(data))
    if len(directory) > SECTOR:
        raise ValueError('too many files for a one-sector directory')

    # The path table: the root alone (its parent is itself, directory number 1).
    path_l = struct.pack('<BBIH', 1, 0, _ROOT, 1) + b'\x00\x00'
    path_m = struct.pack('>BBIH', 1, 0, _ROOT, 1) + b'\x00\x00'

    image = bytearray(total * SECTOR)
    _put(image, _SYSTEM_AREA, _primary_descriptor(label, total, len(path_l), root))
    _put(image, _SYSTEM_AREA + 1, b'\xff' + b'CD001' + b'\x01')
    _put(image, _PATH_TABLE_L, path_l)
    _put(image, _PATH_TABLE_M, path_m)
    _put(image, _ROOT, directory)
    for _identifier, start, data in extents:
        _put(image, start, data)
    return bytes(image)


def _sectors(size):
    return (size + SECTOR - 1) // SECTOR


def _put(image, sector, data):
    image[sector * SECTOR:sector * SECTOR + len(data)] = data


def _both16(value):
    return struct.pack('<H', value) + struct.pack('>H', value)


def _both32(value):
    return struct.pack('<I', value) + struct.pack('>I', value)


def _record(identifier, extent, size, directory=False):
    """A directory record (ISO 9660 9.1), padded to an even length."""
    body = (b'\x00' + _both32(extent) + _both32(size) + _RECORD_DATE + bytes((2 if directory else 0, 0, 0))
            + _both16(1) + bytes((len(identifier),)) + identifier)
    if (len(body) + 1) % 2:
        body += b'\x00'
    return bytes((len(body) + 1,)) + body


def _text(value, size):
    return value.encode('ascii').ljust(size, b' ')[:size]


def _primary_descriptor(label, total, path_table_size, root):
    """The primary volume descriptor (ISO 9660 8.4)."""
    return (b'\x01' + b'CD001' + b'\x01' + b'\x00'
            + _text('', 32)                 # system identifier
            + _text(label, 32)              # volume identifier: blkid's LABEL
            + b'\x00' * 8
            + _both32(total)                # volume space size, in sectors
            + b'\x00' * 32
            + _both16(1) + _both16(1)       # volume set size, volume sequence number
            + _both16(SECTOR)
            + _both32(path_table_size)
            + struct.pack('<I', _PATH_TABLE_L) + b'\x00' * 4
            + struct.pack('>I', _PATH_TABLE_M) + b'\x00' * 4
            + root                          # the root directory's record (34 bytes)
            + _text('', 128)                # volume set identifier
            + _text('', 128)                # publisher
            + _text('', 128)                # data preparer
            + _text('', 128)                # application
            + _text('', 37 * 3)             # copyright, abstract, bibliographic files
            + _VOLUME_DATE * 4              # creation, modification, expiration, effective
            + b'\x01' + b'\x00')            # file structure version


def digest(image):
    """The image's digest as outputs show it: 'sha256:<hex>'."""
    return 'sha256:' + hashlib.sha256(image).hexdigest()
