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
