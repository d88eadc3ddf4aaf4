# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt calls of a cold migration that domain_client does not make: volume streams and transient pools.

A volume is copied from one libvirt to another through a download stream on
the source connection pumped into an upload stream on the target one, in
chunks of libvirt's stream packet size: memory stays constant whatever the
image size. Both streams are sparse (VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM /
UPLOAD_SPARSE_STREAM, libvirt 3.4): a hole is sent as its length and stays a
hole on the target. Files that are no volume (the UEFI varstore, the swtpm
state) are reached the same way through a transient directory pool over
their directory, made on the same connections (see docs/decisions/migration.md).
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from xml.sax.saxutils import escape

from ansible_collections.phyllome.os.plugins.module_utils._common.digest import BackgroundDigest
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import LibvirtFailure, PhyllomeError
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.domain_client import _STREAM_CHUNK as CHUNK

# By value: virStorageVolDownloadFlags / virStorageVolUploadFlags SPARSE_STREAM,
# virStreamRecvFlagsValues STOP_AT_HOLE, virStoragePoolCreateFlags WITH_BUILD.
SPARSE_STREAM = 1
RECV_STOP_AT_HOLE = 1
POOL_CREATE_WITH_BUILD = 1
# libvirtd's return of recvFlags at a hole.
_AT_HOLE = -3


def transient_pool_name(directory):
    """A stable name for the transient pool over `directory` (the same on both hosts)."""
    return 'phyllome-migrate-%s' % hashlib.sha256(directory.encode('utf-8')).hexdigest()[:12]


def dir_pool_xml(name, directory, permissions=None):
    """XML of a dir pool over `directory`; permissions: {owner, group, mode} its build gives the directory."""
    perms = ''
    if permissions:
        perms = '<permissions>%s</permissions>' % ''.join(
            '<%s>%s</%s>' % (key, escape(str(permissions[key])), key)
            for key in ('mode', 'owner', 'group') if permissions.get(key) is not None)
    return "<pool type='dir'><name>%s</name><target><path>%s</path>%s</target></pool>" % (
        escape(name), escape(directory), perms)


def start_transient_pool(client, name, xml, build=False):
    """Start a transient pool (gone once destroyed; its files stay); build creates its directory."""
    client._call('cannot open a transient storage pool over %s' % name, client.conn.storagePoolCreateXML, xml,
                 POOL_CREATE_WITH_BUILD if build else 0)


def remove_empty_directory(client, name, directory):
    """rmdir `directory` through libvirt: a dir pool `name` defined over it, deleted (virStoragePoolDelete), undefined.

    Fails (and removes nothing) when the directory is not empty.
    """
    pool = client._call('cannot define a storage pool over %s' % directory, client.conn.storagePoolDefineXML,
                        dir_pool_xml(name, directory), 0)
    try:
        client._call('cannot remove directory %s' % directory, pool.delete, 0)
    finally:
        client._call('cannot undefine storage pool %s' % name, pool.undefine)


def directory_missing(exc):
    """Whether a pool failed to start because its directory does not exist."""
    return 'No such file or directory' in str(exc)


def stop_transient_pool(client, name):
    """Destroy a transient pool (its files stay); one already gone is fine."""
    try:
        pool = client.conn.storagePoolLookupByName(name)
    except client.libvirt.libvirtError:
        return
    client._call('cannot stop storage pool %s' % name, pool.destroy)


def pool_volume_xmls(client, pool_name):
    """{volume name: volume XML} of a pool, refreshed first (files put there behind libvirt's back)."""
    pool = client._pool(pool_name)
    client._call('cannot refresh storage pool %s' % pool_name, pool.refresh, 0)
    volumes = client._call('cannot list the volumes of pool %s' % pool_name, pool.listAllVolumes, 0)
    return dict((vol.name(), client._call('cannot read volume %s' % vol.name(), vol.XMLDesc, 0)) for vol in volumes)


def pool_available(client, pool_name):
    """Free bytes of a pool now (refreshed first: libvirt's figure is the one of its last refresh), or None."""
    pool = client._pool(pool_name)
    client._call('cannot refresh storage pool %s' % pool_name, pool.refresh, 0)
    info = client._call('cannot read storage pool %s' % pool_name, pool.info)
    return info[3] if info and len(info) > 3 else None


def no_space(exc):
    """Whether a failed copy ran out of space on the target (ENOSPC, as libvirt words it)."""
    return 'No space left on device' in str(exc)


def network_names(client):
    """Names of the networks libvirt knows (defined or transient)."""
    return sorted(net.name() for net in client._call('cannot list networks', client.conn.listAllNetworks, 0))


class CopyResult:
    """What a stream carried: data bytes sent, bytes left as holes, seconds, the content digest.

    readback: the content digest of the target's copy read back (copy_volume's
    verify), else None; verify_wait: the seconds the read-back went on after
    the copy's last byte had been written.
    """

    def __init__(self, data_bytes, hole_bytes, seconds, digest, readback=None, verify_wait=None):
        self.data_bytes = data_bytes
        self.hole_bytes = hole_bytes
        self.seconds = seconds
        self.digest = digest
        self.readback = readback
        self.verify_wait = verify_wait


# Seconds between two looks at a blocked upload's end (see _finish_upload).
FINISH_CHECK_SECONDS = 10

# Bytes of one upload stream when the copy is verified. libvirt says a stream's bytes are in the target's file
# only when its upload ends, so a verified copy is sent as successive uploads at growing offsets, and each
# segment is read back while the next one is sent: the read-back overlaps the copy, and only the last segment's
# is waited for. Not verified, the copy is one stream.
VERIFY_SEGMENT = 128 * 1024 * 1024


class _UploadStuck(LibvirtFailure):
    """The upload's virStreamFinish blocked and `stalled` said why it will not end."""


def _finish_upload(target, upload, stalled, what):
    """upload.finish(), given up when it blocks and stalled() has a reason (libvirt 9.0 may then wait forever).

    With libvirt 9.0, the end of an upload into a pool that ran out of space
    sometimes never comes: the daemon answers keepalives but not the finish.
    The call runs in a thread of its own; every FINISH_CHECK_SECONDS it has
    not returned, stalled() is asked (e.g. whether the target pool is full)
    and a reason ends the wait: the stream is aborted from another thread
    (never waited for) and _UploadStuck raised.
    """
    outcome = []

    def finish():
        try:
            upload.finish()
            outcome.append(None)
        except BaseException as exc:  # pylint: disable=broad-except  # handed to the caller's thread
            outcome.append(exc)
    thread = threading.Thread(target=finish, name='upload-finish', daemon=True)
    thread.start()
    while True:
        thread.join(FINISH_CHECK_SECONDS if stalled is not None else None)
        if not thread.is_alive():
            break
        reason = stalled()
        if reason:
            threading.Thread(target=target._abort, args=(upload,), name='upload-abort', daemon=True).start()
            raise _UploadStuck('%s: the upload did not end after %s s: %s' % (what, FINISH_CHECK_SECONDS, reason))
    if outcome[0] is not None:
        raise outcome[0]


class ReadBack:
    """Reads written segments of a volume back from its libvirt, in order, in a thread of its own.

    add(offset, length) queues a segment whose upload has ended;
    hexdigest() waits for the last one and returns the ContentDigest of
    all of them together, which equals the source's when the target holds
    the same bytes. A failed read is raised by the next add() or by
    hexdigest(). close() stops it without a result (after a failure).
    """

    def __init__(self, client, pool_name, volume):
        self._client = client
        self._vol = client._volume(pool_name, volume)
        self._what = 'read-back of volume %s in pool %s' % (volume, pool_name)
        self._digest = BackgroundDigest()
        self._queue = queue.Queue()  # (offset, length) pairs: a few ints per segment, never the data
        self._error = None
        self._stopped = False
        # libvirt refuses to open a stream on a volume while another stream on it is being opened ("volume ... is
        # still in use": in_use is held while the stream is set up, not while it runs): the copy's uploads and
        # the read-back's downloads take turns to open theirs.
        self.opening = threading.Lock()
        self._thread = threading.Thread(target=self._work, name='read-back', daemon=True)
        self._thread.start()

    def add(self, offset, length):
        if self._error is not None:
            raise self._error
        self._queue.put((offset, length))

    def hexdigest(self):
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._digest.hexdigest()

    def close(self):
        """Stop after the segment being read (not waited for: its stream may be as stuck as the copy's)."""
        self._stopped = True
        self._queue.put(None)

    def _work(self):
        try:
            while not self._stopped:
                segment = self._queue.get()
                if segment is None:
                    break
                read_volume(self._client, self._vol, segment[0], segment[1], self._digest, self._what, self.opening)
        except PhyllomeError as exc:
            self._error = exc
        except Exception as exc:  # pylint: disable=broad-except  # handed to the copy's thread
            self._error = LibvirtFailure('%s: %s' % (self._what, exc), uri=self._client.uri)
        finally:
            if self._error is not None or self._stopped:
                self._digest.close()


def copy_volume(source, source_pool, source_volume, target, target_pool, target_volume, clock=time.monotonic,
                stalled=None, verify=False):
    """Stream a volume's bytes from `source` into an existing volume on `target` (overwritten from offset 0).

    source, target: DomainClient. Returns a CopyResult; a failure aborts the
    streams and raises LibvirtFailure naming the volume. stalled: called
    while an upload's end blocks, a reason to give up or None
    (_finish_upload). verify: read the copy back from the target as it is
    written, in VERIFY_SEGMENT segments (CopyResult.readback).
    """
    what = 'copy of volume %s (pool %s) to pool %s' % (source_volume, source_pool, target_pool)
    started = clock()
    download = source._call(what, source.conn.newStream, 0)
    digest = BackgroundDigest()
    readback = upload = None
    data = holes = 0
    segment_start = 0  # offset of the open upload's first byte
    try:
        svol = source._volume(source_pool, source_volume)
        tvol = target._volume(target_pool, target_volume)
        svol.download(download, 0, 0, SPARSE_STREAM)
        if verify:
            readback = ReadBack(target, target_pool, target_volume)
        for chunk, hole in _received(download, what):
            left = hole if chunk is None else len(chunk)
            while left:
                if upload is None:
                    upload = target._call(what, target.conn.newStream, 0)
                    segment_start = data + holes
                    if readback is None:
                        tvol.upload(upload, segment_start, 0, SPARSE_STREAM)
                    else:
                        with readback.opening:
                            tvol.upload(upload, segment_start, 0, SPARSE_STREAM)
                room = left if readback is None else min(left, segment_start + VERIFY_SEGMENT - data - holes)
                if chunk is None:
                    upload.sendHole(room, 0)
                    digest.hole(room)
                    holes += room
                else:
                    piece, chunk = (chunk, None) if room == len(chunk) else (chunk[:room], chunk[room:])
                    _send_all(upload, piece)
                    digest.data(piece)
                    data += room
                left -= room
                if readback is not None and data + holes - segment_start == VERIFY_SEGMENT:
                    _finish_upload(target, upload, stalled, what)
                    upload = None
                    readback.add(segment_start, VERIFY_SEGMENT)
        download.finish()
        if upload is None and data + holes == 0:
            # An empty volume: one upload all the same, so that libvirt ends it as it ends every upload.
            upload = target._call(what, target.conn.newStream, 0)
            tvol.upload(upload, 0, 0, SPARSE_STREAM)
        if upload is not None:
            _finish_upload(target, upload, stalled, what)
            upload = None
            if readback is not None and data + holes > segment_start:
                readback.add(segment_start, data + holes - segment_start)
        copied = clock()
        result = CopyResult(data, holes, copied - started, digest.hexdigest())
        if readback is not None:
            result.readback = readback.hexdigest()
            result.verify_wait = clock() - copied
        return result
    except source.libvirt.libvirtError as exc:
        _stop(digest, readback)
        source._abort(download)
        if upload is not None:
            target._abort(upload)
        raise LibvirtFailure('%s failed after %d bytes: %s' % (what, data + holes, exc))
    except _UploadStuck:
        _stop(digest, readback)
        raise
    except BaseException:
        _stop(digest, readback)
        source._abort(download)
        if upload is not None:
            target._abort(upload)
        raise


def _stop(digest, readback):
    digest.close()
    if readback is not None:
        readback.close()


def read_volume(client, vol, offset, length, digest, what, opening=None):
    """Feed `digest` the bytes of `vol` from `offset` (`length` of them, 0: to its end) through a sparse download.

    opening: a lock held while the stream is opened (see ReadBack.opening).
    """
    stream = client._call(what, client.conn.newStream, 0)
    try:
        if opening is None:
            vol.download(stream, offset, length, SPARSE_STREAM)
        else:
            with opening:
                vol.download(stream, offset, length, SPARSE_STREAM)
        for chunk, hole in _received(stream, what):
            if chunk is None:
                digest.hole(hole)
            else:
                digest.data(chunk)
        stream.finish()
    except client.libvirt.libvirtError as exc:
        client._abort(stream)
        raise LibvirtFailure('%s: %s' % (what, exc), uri=client.uri)
    except BaseException:
        client._abort(stream)
        raise


def volume_digest(client, pool_name, volume):
    """The ContentDigest of a volume's bytes, read through a sparse download stream."""
    what = 'checksum of volume %s in pool %s' % (volume, pool_name)
    digest = BackgroundDigest()
    try:
        read_volume(client, client._volume(pool_name, volume), 0, 0, digest, what)
    except BaseException:
        digest.close()
        raise
    return digest.hexdigest()


def _received(stream, what):
    """(data, None) or (None, hole length) from a sparse download stream until its end, a packet at a time."""
    while True:
        got = stream.recvFlags(CHUNK, RECV_STOP_AT_HOLE)
        if got == _AT_HOLE:
            yield None, stream.recvHole(0)
            continue
        if isinstance(got, int):
            raise LibvirtFailure('%s: the download stream returned %d' % (what, got))
        if not got:
            return
        yield got, None


def _send_all(stream, data):
    # A blocking stream may take part of the buffer; the rest goes next.
    while data:
        sent = stream.send(data)
        if sent < 0:
            raise LibvirtFailure('the upload stream refused data (%d)' % sent)
        data = data[sent:]


# By value (libvirt 9.0): virDomainMigrateFlags LIVE, PERSIST_DEST, NON_SHARED_DISK.
# No UNDEFINE_SOURCE: the migrate module undefines the stopped source copy itself (with its varstore and TPM
# state, and its volumes), or keeps it with keep_source, as after a cold move.
MIGRATE_LIVE = 1 << 0
MIGRATE_PERSIST_DEST = 1 << 3
MIGRATE_NON_SHARED_DISK = 1 << 6
LIVE_FLAGS = MIGRATE_LIVE | MIGRATE_PERSIST_DEST | MIGRATE_NON_SHARED_DISK
# virDomainXMLFlags SECURE | MIGRATABLE: what the target's QEMU must be given.
XML_SECURE_MIGRATABLE = 1 | 8


def progress_words(stats):
    """', when X of Y MB had been sent (memory M of N MB, disks D of E MB)' from a migration job's statistics; '' without them."""
    if not stats or stats.get('data_processed') is None:
        return ''
    words = ', when %.1f of %.1f MB had been sent' % (stats['data_processed'] / 1e6, (stats.get('data_total') or 0) / 1e6)
    parts = ['%s %.1f of %.1f MB' % (what, (stats.get(key + '_processed') or 0) / 1e6, stats[key + '_total'] / 1e6)
             for what, key in (('memory', 'memory'), ('disks', 'disk')) if stats.get(key + '_total')]
    return words + (' (%s)' % ', '.join(parts) if parts else '')


def migratable_xml(client, dom):
    """The running domain's XML as a migration carries it (secrets included: never put in a result)."""
    return client._call('cannot read the running definition', dom.XMLDesc, XML_SECURE_MIGRATABLE)


def migrate_live(source, dom, target, dest_xml, persist_xml, migrate_uri=None, bandwidth=None, timeout=None,
                 clock=time.monotonic):
    """Live-migrate `dom` from `source` to `target` (libvirt's managed direct migration, virDomainMigrate3).

    The disks' contents cross with QEMU's drive-mirror into the target's
    existing files (NON_SHARED_DISK); `dest_xml` is the running definition
    there, `persist_xml` the stored one.
    timeout: seconds after which the job is aborted (virDomainAbortJob): the
    domain keeps running on the source; the error says how far it got (the
    job's statistics read just before the abort: libvirt keeps none of an
    aborted job). Returns the seconds taken.
    """
    libvirt = source.libvirt
    params = {libvirt.VIR_MIGRATE_PARAM_DEST_XML: dest_xml, libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: persist_xml}
    if migrate_uri:
        params[libvirt.VIR_MIGRATE_PARAM_URI] = migrate_uri
    if bandwidth:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = bandwidth
    timer = None
    aborted = []
    if timeout:
        def abort():
            try:
                aborted.append(source.job_stats(dom))
            except LibvirtFailure:
                aborted.append({})
            try:
                dom.abortJob()
            except libvirt.libvirtError:
                pass  # the job ended meanwhile
        timer = threading.Timer(timeout, abort)
        timer.daemon = True
    started = clock()
    try:
        if timer is not None:
            timer.start()
        try:
            dom.migrate3(target.conn, params, LIVE_FLAGS)
        except libvirt.libvirtError as exc:
            if aborted:
                raise LibvirtFailure('the migration did not end within %s s and was aborted%s (it still runs on the'
                                     ' source): %s' % (timeout, progress_words(aborted[0]), exc), uri=source.uri)
            raise LibvirtFailure('live migration failed: %s' % exc, uri=source.uri)
    finally:
        if timer is not None:
            timer.cancel()
    return clock() - started
