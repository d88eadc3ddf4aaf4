# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a cold move's copies are verified: hashed on the target over libvirt's ssh, else read back through libvirt."""

from __future__ import annotations

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.actions import ActionRecorder
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import HostStateError
from ansible_collections.phyllome.os.plugins.module_utils._migrate import cold

PARAMS = {'name': 'vm1', 'mode': 'cold', 'verify': True, 'source_uri': 'qemu:///system',
          'target_uri': 'qemu+ssh://root@host2/system?keyfile=/root/.ssh/migrate'}
SSH = ['ssh', '-l', 'root', '-i', '/root/.ssh/migrate', '-T', '-e', 'none', '-o', 'BatchMode=yes', '--', 'host2']
PATH = '/var/lib/libvirt/images/my vm.qcow2'
DIGEST = 'ab' * 32


def migration(answers, params=None):
    """A Migration whose commands get `answers` ((rc, out, err) in turn); the argv and stdin they got."""
    ran = []
    params = params or PARAMS

    def run_command(argv, data=None, environ_update=None):
        ran.append((argv, data))
        return answers.pop(0)
    return cold.Migration(None, object(), params, ActionRecorder(run_command=run_command)), ran


def test_a_target_that_can_read_the_copy_hashes_it_there():
    move, ran = migration([(0, 'readable\n', ''), (0, DIGEST + '\n', '')])
    shell = move._target_shell(PATH)
    assert shell == SSH
    assert move._target_shell(PATH) == SSH  # asked once
    found, seconds, how = move._target_digest(shell, PATH, 'default', 'my vm.qcow2')
    assert (found, how) == (DIGEST, 'target') and seconds >= 0
    assert [argv for argv, _data in ran] == [SSH + ['python3', '-', '--probe', "'%s'" % PATH],
                                             SSH + ['python3', '-', "'%s'" % PATH]]
    assert all('def file_digest(' in data for _argv, data in ran)  # the digest module's own text
    assert move.notes == []


def test_a_target_that_cannot_read_it_is_read_back_and_says_why():
    move, ran = migration([(3, '', "[Errno 13] Permission denied: '%s'\n" % PATH)])
    assert move._target_shell(PATH) is None
    assert move._target_shell(PATH) is None and len(ran) == 1
    assert move.notes == ["verify: the copies are read back through libvirt (the target cannot hash %s over ssh:"
                          " [Errno 13] Permission denied: '%s')" % (PATH, PATH)]


def test_a_hash_that_fails_there_is_read_back(monkeypatch):
    monkeypatch.setattr(cold.streams, 'volume_digest', lambda client, pool, volume: DIGEST)
    move, _ran = migration([(255, '', 'Connection closed by 192.0.2.2 port 22\n')])
    found, _seconds, how = move._target_digest(SSH, PATH, 'default', 'my vm.qcow2')
    assert (found, how) == (DIGEST, 'read-back')
    assert move.notes == ['verify: %s is read back through libvirt (hashing it on the target failed: Connection'
                          ' closed by 192.0.2.2 port 22)' % PATH]


@pytest.mark.parametrize('uri', ['qemu+tls://host2/system', 'qemu+unix:///system?socket=/run/t/libvirt-sock'])
def test_other_transports_are_read_back_without_a_command(uri):
    move, ran = migration([], dict(PARAMS, target_uri=uri))
    assert move._target_shell(PATH) is None and ran == [] and move.notes == []


def test_a_copy_that_differs_fails_the_verify_naming_how_it_was_read():
    move, _ran = migration([])
    move.copies = [{'target': PATH, 'sha256': DIGEST, '_readback': ('cd' * 32, 0.5, 'target')}]
    with pytest.raises(HostStateError, match='the copy %s differs from the source .*; hashed on the target over ssh'
                       % PATH):
        move._verify()
    move.copies = [{'target': PATH, 'sha256': DIGEST, '_readback': (DIGEST, 0.5, 'read-back')}]
    move._verify()
    assert move.copies[0]['verified_by'] == 'read-back' and move.verify_seconds == 0.5
