# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A cold migration's rollback when the target stopped answering: it waits for it, or says what is left there."""

from __future__ import annotations

from ansible_collections.phyllome.os.plugins.module_utils._common.actions import ActionRecorder
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import LibvirtFailure
from ansible_collections.phyllome.os.plugins.module_utils._migrate import cold

PARAMS = {'name': 'vm1', 'mode': 'cold', 'verify': True, 'source_uri': 'qemu:///system', 'target_uri': 'qemu+ssh://host2/system'}


class Target:
    """Answers again after `down` reconnect attempts; its undo steps work only once it answers."""

    def __init__(self, down):
        self.down, self.attempts, self.removed = down, 0, []

    def reconnect(self):
        self.attempts += 1
        if self.attempts <= self.down:
            raise LibvirtFailure('cannot connect to libvirt at qemu+ssh://host2/system: Network is unreachable')
        return True

    def delete_volume(self, pool, name):
        if self.attempts <= self.down:
            raise LibvirtFailure('cannot look up volume %s in pool %s: internal error: client socket is closed'
                                 % (name, pool))
        self.removed.append(name)


def rollback(monkeypatch, down):
    monkeypatch.setattr(cold.time, 'sleep', lambda seconds: None)
    now = [0.0]

    def clock():
        now[0] += cold.RECONNECT_PAUSE
        return now[0]
    recorder = ActionRecorder()
    target = Target(down)
    migration = cold.Migration(None, target, PARAMS, recorder, clock=clock)
    recorder.apply('create volume vm1.qcow2', lambda: None)
    migration.undo.append((0, 'delete volume vm1.qcow2 in pool default on host2', target.delete_volume,
                           ('default', 'vm1.qcow2')))
    return migration._roll_back()[1], target, recorder


def test_the_target_back_in_time_is_cleaned(monkeypatch):
    left, target, recorder = rollback(monkeypatch, down=3)
    assert left == [] and target.removed == ['vm1.qcow2'] and not recorder.changed
    assert recorder.actions[-1] == 'undo: delete volume vm1.qcow2 in pool default on host2'


def test_a_target_that_stays_away_is_named_with_what_is_left(monkeypatch):
    left, target, recorder = rollback(monkeypatch, down=1000)
    assert target.attempts == cold.RECONNECT_SECONDS // cold.RECONNECT_PAUSE
    assert left == ['cannot reach qemu+ssh://host2/system again within %d s: cannot connect to libvirt at '
                    'qemu+ssh://host2/system: Network is unreachable' % cold.RECONNECT_SECONDS,
                    'delete volume vm1.qcow2 in pool default on host2']
    assert recorder.changed and target.removed == []


def test_check_mode_never_reconnects():
    recorder = ActionRecorder(check_mode=True)
    target = Target(down=1000)
    assert cold.Migration(None, target, PARAMS, recorder)._roll_back() == ([], []) and target.attempts == 0
