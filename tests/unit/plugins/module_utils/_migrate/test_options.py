# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migrate module's option checks, before any connection is opened."""

from __future__ import annotations

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.actions import ActionRecorder
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput
from ansible_collections.phyllome.os.plugins.module_utils._migrate import cold


def params(**changes):
    found = dict((key, spec.get('default')) for key, spec in cold.argument_spec().items())
    found.update(name='vm1', target_uri='qemu+ssh://root@host2/system')
    found.update(changes)
    return found


def never_connect(uri):
    raise AssertionError('connected to %s' % uri)


@pytest.mark.parametrize('changes, words', [
    ({'mode': 'cold', 'migrate_uri': 'tcp://192.0.2.2'}, 'migrate_uri apply to mode=live only'),
    ({'mode': 'cold', 'bandwidth': 100, 'timeout': 60}, 'bandwidth, timeout apply to mode=live only'),
    ({'mode': 'live', 'bandwidth': 0}, 'bandwidth must be more than 0'),
    ({'mode': 'live', 'timeout': -1}, 'timeout must be more than 0'),
    ({'mode': 'live', 'target_uri': 'qemu:///system'}, 'source_uri and target_uri are the same'),
    ({'mode': 'live', 'guest_agent_timeout': 60}, 'guest_agent_timeout applies to mode=cold only'),
    ({'mode': 'cold', 'guest_agent_timeout': 0}, 'guest_agent_timeout must be more than 0'),
])
def test_bad_options_are_refused_before_any_connection(changes, words):
    recorder = ActionRecorder(check_mode=False)
    with pytest.raises(InvalidInput, match=words):
        cold.run(params(**changes), recorder, never_connect)
    assert recorder.actions == []
