# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a migration's failure says of its progress (libvirt's job statistics as data)."""

from __future__ import annotations

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._libvirt import migration

# The current job's statistics read just before virDomainAbortJob, in a real live migration at 1 MiB/s
# (libvirt 9.0, QEMU 7.2: the disk mirror had not finished, no memory sent yet).
AT_ABORT = {'operation': 5, 'time_elapsed': 3002, 'data_total': 67108864, 'data_processed': 16777216,
            'data_remaining': 50331648, 'memory_total': 0, 'memory_processed': 0, 'memory_remaining': 0,
            'disk_total': 67108864, 'disk_processed': 16777216, 'disk_remaining': 50331648, 'type': 2}


@pytest.mark.parametrize('stats, words', [
    (AT_ABORT, ', when 16.8 of 67.1 MB had been sent (disks 16.8 of 67.1 MB)'),
    (dict(AT_ABORT, memory_total=201859072, memory_processed=1000000, data_processed=17777216),
     ', when 17.8 of 67.1 MB had been sent (memory 1.0 of 201.9 MB, disks 16.8 of 67.1 MB)'),
    ({}, ''),
    ({'type': 2}, ''),
])
def test_progress_words(stats, words):
    assert migration.progress_words(stats) == words


class Upload:
    """An upload stream whose finish() blocks until abort() (libvirt 9.0 on a full pool), or returns/raises."""

    def __init__(self, blocks=False, error=None):
        import threading
        self.released = threading.Event()
        self.blocks, self.error, self.aborted = blocks, error, False
        if not blocks:
            self.released.set()

    def finish(self):
        self.released.wait(30)
        if self.error is not None:
            raise self.error

    def abort(self):
        self.aborted = True
        self.released.set()


class Target:
    class libvirt:  # the DomainClient's libvirt module: its error class
        libvirtError = RuntimeError

    def _abort(self, stream):
        stream.abort()


def test_an_upload_that_ends_is_not_watched(monkeypatch):
    monkeypatch.setattr(migration, 'FINISH_CHECK_SECONDS', 0.01)
    asked = []
    migration._finish_upload(Target(), Upload(), lambda: asked.append(1), 'copy')
    assert asked == []


def test_an_upload_error_reaches_the_caller(monkeypatch):
    monkeypatch.setattr(migration, 'FINISH_CHECK_SECONDS', 0.01)
    with pytest.raises(RuntimeError, match='Broken pipe'):
        migration._finish_upload(Target(), Upload(error=RuntimeError('Broken pipe')), lambda: None, 'copy')


def test_a_blocked_upload_is_given_up_when_stalled_has_a_reason(monkeypatch):
    monkeypatch.setattr(migration, 'FINISH_CHECK_SECONDS', 0.01)
    upload = Upload(blocks=True)
    reasons = iter([None, None, 'its pool has 0 bytes free: No space left on device'])
    with pytest.raises(migration.LibvirtFailure) as caught:
        migration._finish_upload(Target(), upload, lambda: next(reasons), 'copy of volume v')
    assert caught.value.msg == ('copy of volume v: the upload did not end after 0.01 s: its pool has 0 bytes free: No'
                                ' space left on device')
    assert upload.released.wait(5) and upload.aborted  # aborted from another thread


def test_a_blocked_upload_without_a_reason_is_waited_for(monkeypatch):
    monkeypatch.setattr(migration, 'FINISH_CHECK_SECONDS', 0.01)
    upload = Upload(blocks=True)
    asked = []

    def stalled():
        asked.append(1)
        if len(asked) == 5:
            upload.released.set()  # a slow flush that ends
    migration._finish_upload(Target(), upload, stalled, 'copy')
    assert len(asked) >= 5 and not upload.aborted


# A volume stream pair between two fake libvirts, with libvirt 9.0's file semantics: an upload writes at its
# offset, a hole is lseek + ftruncate (virFDStreamThreadDoWrite); a sparse download hands out data and holes.
class LibvirtError(Exception):
    pass


class FakeLibvirt:
    libvirtError = LibvirtError


class Stream:
    def __init__(self):
        self.parts, self.sent, self.finished, self.aborted = [], None, False, False

    # download side
    def recvFlags(self, size, flags):
        assert flags == migration.RECV_STOP_AT_HOLE
        if not self.parts:
            return b''
        kind, value = self.parts[0]
        if kind == 'hole':
            return migration._AT_HOLE
        self.parts[0] = (kind, value[size:])
        if not self.parts[0][1]:
            self.parts.pop(0)
        return value[:size]

    def recvHole(self, flags):
        return self.parts.pop(0)[1]

    # upload side
    def send(self, data):
        self.sent.write(data)
        return len(data)

    def sendHole(self, length, flags):
        self.sent.hole(length)

    def finish(self):
        self.finished = True

    def abort(self):
        self.aborted = True


class Writer:
    """An open file of a FakeVolume at an offset, written as libvirt's stream thread writes it."""

    def __init__(self, volume, offset):
        self.volume, self.pos = volume, offset
        volume.uploads.append(offset)

    def write(self, data):
        data = self.volume.corrupt(self.pos, data)
        end = self.pos + len(data)
        if len(self.volume.bytes) < end:
            self.volume.bytes.extend(bytes(end - len(self.volume.bytes)))
        self.volume.bytes[self.pos:end] = data
        self.pos = end

    def hole(self, length):
        self.pos += length
        del self.volume.bytes[self.pos:]  # ftruncate(fd, pos)
        self.volume.bytes.extend(bytes(self.pos - len(self.volume.bytes)))


class FakeVolume:
    def __init__(self, content=b'', corrupt=None, fail_download=False):
        self.bytes = bytearray(content)
        self.uploads, self.downloads = [], []
        self.corrupt = corrupt or (lambda pos, data: data)
        self.fail_download = fail_download

    def download(self, stream, offset, length, flags):
        assert flags == migration.SPARSE_STREAM
        if self.fail_download:
            raise LibvirtError('Unable to read volume: Input/output error')
        self.downloads.append((offset, length))
        end = offset + length if length else len(self.bytes)
        pos = offset
        while pos < end:  # data and holes in runs of 4 KiB pages, as SEEK_DATA/SEEK_HOLE find them
            page = bytes(self.bytes[pos:min(pos + 4096, end)])
            kind = 'hole' if not any(page) else 'data'
            if stream.parts and stream.parts[-1][0] == kind:
                last = stream.parts[-1][1]
                stream.parts[-1] = (kind, last + len(page) if kind == 'hole' else last + page)
            else:
                stream.parts.append((kind, len(page) if kind == 'hole' else page))
            pos += len(page)

    def upload(self, stream, offset, length, flags):
        assert flags == migration.SPARSE_STREAM and length == 0
        stream.sent = Writer(self, offset)


class Client:
    libvirt = FakeLibvirt
    uri = 'test:///fake'

    def __init__(self, volume):
        self.volume = volume
        self.streams = []
        self.conn = self

    def newStream(self, flags):
        self.streams.append(Stream())
        return self.streams[-1]

    def _volume(self, pool, name):
        return self.volume

    def _call(self, what, func, *args):
        return func(*args)

    def _abort(self, stream):
        stream.abort()


def image(size, seed=7):
    """Bytes with data islands and runs of zeros (holes once copied), some across segment boundaries."""
    import random
    rnd = random.Random(seed)
    data = bytearray(size)
    for start in range(0, size, 40000):
        island = min(rnd.randrange(1, 30000), size - start)
        data[start:start + island] = rnd.randbytes(island)
    return bytes(data)


def copy(source_bytes, target=None, verify=True):
    source = Client(FakeVolume(source_bytes))
    target = target or Client(FakeVolume(bytes(len(source_bytes))))
    return migration.copy_volume(source, 'a', 'v', target, 'b', 'v', verify=verify), target


def test_a_verified_copy_is_sent_and_read_back_in_segments(monkeypatch):
    monkeypatch.setattr(migration, 'VERIFY_SEGMENT', 64 * 1024)
    content = image(5 * 64 * 1024 + 1234)
    result, target = copy(content)
    assert bytes(target.volume.bytes) == content
    assert target.volume.uploads == [0, 65536, 131072, 196608, 262144, 327680]
    assert target.volume.downloads == [(0, 65536), (65536, 65536), (131072, 65536), (196608, 65536),
                                       (262144, 65536), (327680, 1234)]
    assert all(s.finished for s in target.streams)
    assert result.readback == result.digest and result.verify_wait >= 0
    assert result.data_bytes + result.hole_bytes == len(content) and result.hole_bytes > 0


def test_a_copy_without_verify_is_one_stream_and_no_read_back():
    content = image(300000)
    result, target = copy(content, verify=False)
    assert bytes(target.volume.bytes) == content
    assert target.volume.uploads == [0] and target.volume.downloads == []
    assert result.readback is None and result.verify_wait is None


def test_a_byte_changed_on_the_target_changes_the_read_back(monkeypatch):
    monkeypatch.setattr(migration, 'VERIFY_SEGMENT', 64 * 1024)
    content = image(200000)

    def corrupt(pos, data):
        if pos <= 120000 < pos + len(data):  # the first byte of an island: data
            data = bytearray(data)
            data[120000 - pos] ^= 1
        return bytes(data)
    result, _target = copy(content, Client(FakeVolume(bytes(len(content)), corrupt=corrupt)))
    assert result.readback != result.digest


def test_a_read_back_that_fails_fails_the_copy_and_ends_its_streams(monkeypatch):
    monkeypatch.setattr(migration, 'VERIFY_SEGMENT', 64 * 1024)
    target = Client(FakeVolume(bytes(200000), fail_download=True))
    with pytest.raises(migration.LibvirtFailure, match='read-back of volume v in pool b: .*Input/output error'):
        copy(image(200000), target)
    assert target.streams[-1].aborted or target.streams[-1].finished


def test_an_empty_volume_is_one_upload_that_ends():
    result, target = copy(b'')
    assert target.volume.uploads == [0] and target.streams[0].finished
    assert result.readback == result.digest and result.data_bytes == result.hole_bytes == 0
