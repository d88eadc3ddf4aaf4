# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet_drift filter: glue over _fleet.fingerprint.drift_of_results (composed inputs)."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.phyllome.os.plugins.filter import fleet


def test_fleet_drift_filter():
    drift = fleet.FilterModule().filters()['fleet_drift']({
        'hv1': {'fingerprint_info': {'fingerprint': {'machine.pc-q35-7.2': 'offered'}}},
        'hv2': {'fingerprint_info': {'fingerprint': {}}},
    })
    assert drift['blocking'] == ['machine.pc-q35-7.2']
    assert drift['lines'][1] == 'BLOCK machine.pc-q35-7.2: hv1=offered; hv2=-'
    for bad in (['hv1'], {'hv1': 'x'}):
        with pytest.raises(AnsibleFilterError, match='host ->'):
            fleet.fleet_drift(bad)
