# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The content digest of sparse streams: equal content, equal digest, however the stream was cut."""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.digest import (
    BLOCK, BackgroundDigest, ContentDigest, digest_script, file_digest)


def digest_of(parts):
    digest = ContentDigest()
    for kind, value in parts:
        if kind == 'data':
            digest.data(value)
        else:
            digest.hole(value)
    return digest.hexdigest(), digest.length


def content(seed, size=5 * BLOCK + 123):
    rnd = random.Random(seed)
    data = bytearray(size)
    for start in range(0, size, 3 * BLOCK // 2):  # data islands between runs of zeros
        island = rnd.randrange(1, BLOCK)
        data[start:start + island] = rnd.randbytes(min(island, size - start))
    return bytes(data)


def cuts(data, seed):
    """The same bytes as a stream of data segments and holes (an all-zero segment becomes a hole)."""
    rnd = random.Random(seed)
    parts, pos = [], 0
    while pos < len(data):
        segment = data[pos:pos + rnd.randrange(1, 2 * BLOCK)]
        parts.append(('hole', len(segment)) if not any(segment) else ('data', segment))
        pos += len(segment)
    return parts


@pytest.mark.parametrize('seed', range(12))
def test_any_cut_of_the_same_content_gives_the_same_digest(seed):
    data = content(seed)
    assert digest_of(cuts(data, seed)) == digest_of([('data', data)])


@pytest.mark.parametrize('change', ['last byte', 'first byte', 'one byte longer', 'one byte shorter'])
def test_a_different_content_gives_another_digest(change):
    data = content(1)
    other = {
        'last byte': data[:-1] + bytes([data[-1] ^ 1]),
        'first byte': bytes([data[0] ^ 1]) + data[1:],
        'one byte longer': data + b'\0',
        'one byte shorter': data[:-1],
    }[change]
    assert digest_of([('data', other)])[0] != digest_of([('data', data)])[0]


def test_a_hole_is_the_same_as_zeros_sent_as_data():
    assert digest_of([('data', b'x'), ('hole', 3 * BLOCK), ('data', b'y')]) == \
        digest_of([('data', b'x' + bytes(3 * BLOCK) + b'y')])


def test_a_hole_of_a_terabyte_costs_nothing():
    digest = ContentDigest()
    digest.hole(1 << 40)
    digest.data(b'end')
    assert digest.length == (1 << 40) + 3


def test_the_digest_is_not_a_plain_sha256_of_the_bytes():
    # It is its own format (block index + non-zero blocks + length): never compared with sha256sum output.
    data = content(2)
    assert digest_of([('data', data)])[0] != hashlib.sha256(data).hexdigest()


def feed(digest, parts):
    for kind, value in parts:
        if kind == 'data':
            digest.data(value)
        else:
            digest.hole(value)
    return digest.hexdigest()


@pytest.mark.parametrize('seed', range(6))
def test_the_background_digest_is_the_content_digest(seed):
    data = content(seed, size=40 * BLOCK + 7)
    parts = cuts(data, seed)
    assert feed(BackgroundDigest(depth=2), parts) == digest_of(parts)[0] == digest_of([('data', data)])[0]


def test_a_closed_background_digest_ends_its_thread():
    digest = BackgroundDigest()
    digest.data(b'x' * BLOCK)
    digest.close()
    assert not digest._thread.is_alive()
    digest.close()  # twice is fine (a failure path after another)


def test_an_error_in_the_background_thread_reaches_the_caller():
    digest = BackgroundDigest(depth=1)
    for dummy in range(4):  # the queue drains on after the error: the caller never blocks
        digest.data(12345)  # not bytes
    with pytest.raises(TypeError):
        digest.hexdigest()


def test_a_block_that_starts_with_zeros_is_data():
    # The zero-block test looks at the first byte first: data after it must still count.
    late = bytearray(BLOCK)
    late[-1] = 1
    assert digest_of([('data', bytes(late))])[0] != digest_of([('hole', BLOCK)])[0]
    assert digest_of([('data', bytes(late))])[0] == digest_of([('hole', BLOCK - 1), ('data', b'\x01')])[0]


def sparse_file(path):
    """A file with holes, data islands, and a run of zeros written as data."""
    rnd = random.Random(3)
    with open(path, 'wb') as f:
        f.truncate(9 * BLOCK * 16 + 77)
        for start in range(0, 9 * BLOCK * 16, 5 * BLOCK):
            f.seek(start + rnd.randrange(BLOCK))
            f.write(rnd.randbytes(rnd.randrange(1, 2 * BLOCK)))
        f.seek(3 * BLOCK)
        f.write(bytes(3 * BLOCK))
    with open(path, 'rb') as f:
        return f.read()


def test_a_files_digest_is_the_content_digest_of_its_bytes(tmp_path):
    content = sparse_file(str(tmp_path / 'disk.img'))
    assert file_digest(str(tmp_path / 'disk.img'), chunk=100000) == digest_of([('data', content)])[0]
    (tmp_path / 'empty').write_bytes(b'')
    assert file_digest(str(tmp_path / 'empty')) == ContentDigest().hexdigest()


def test_the_digest_script_computes_the_same_where_it_runs(tmp_path):
    # What the migrate module sends to the target's python3 over ssh: this module's own text and a main.
    content = sparse_file(str(tmp_path / 'disk.img'))
    done = subprocess.run([sys.executable, '-', str(tmp_path / 'disk.img')], input=digest_script(),
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == digest_of([('data', content)])[0]
    probe = subprocess.run([sys.executable, '-', '--probe', str(tmp_path / 'disk.img')], input=digest_script(),
                           capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == 'readable'
    missing = subprocess.run([sys.executable, '-', '--probe', str(tmp_path / 'nothing')], input=digest_script(),
                             capture_output=True, text=True, check=False)
    assert missing.returncode == 3 and 'No such file or directory' in missing.stderr
