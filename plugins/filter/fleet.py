# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet_drift filter: the hosts' fingerprints and guests compared (glue over _fleet.fingerprint)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.phyllome.os.plugins.module_utils._fleet.fingerprint import drift_of_results


def fleet_drift(hosts):
    if not isinstance(hosts, dict) or not all(isinstance(v, dict) for v in hosts.values()):
        raise AnsibleFilterError('fleet_drift expects a dict of host -> {fingerprint_info, variables, guests}')
    return drift_of_results(dict((str(k), v) for k, v in hosts.items()))


class FilterModule:
    def filters(self):
        return {'fleet_drift': fleet_drift}
