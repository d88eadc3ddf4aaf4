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
