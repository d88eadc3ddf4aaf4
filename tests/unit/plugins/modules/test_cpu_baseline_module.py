# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""phyllome.os.cpu_baseline refuses what it cannot baseline before it talks to libvirt.

The baseline itself is libvirt's (the cpu_baseline integration target runs it).
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.phyllome.os.plugins.modules import cpu_baseline
from ansible_collections.phyllome.os.tests.unit.plugins.modules.module_runner import run_module

DOMCAPS = os.path.normpath(os.path.join(os.path.dirname(__file__), '..', '..', '..', 'fixtures', 'domcaps'))


def recorded(name):
    with open(os.path.join(DOMCAPS, name), encoding='utf-8') as f:
        return f.read()


@pytest.mark.parametrize('hosts, message', [
    ([{'name': 'a'}], 'hosts[0] needs exactly one of uri and domain_capabilities'),
    ([{'domain_capabilities': '<domainCapabilities/>'}], 'hosts[0] needs a name when it gives domain_capabilities'),
    ([{'name': 'intel', 'domain_capabilities': recorded('intel-skylake-qemu-4.2.xml')},
      {'name': 'amd', 'domain_capabilities': recorded('amd-epyc-rome-qemu-7.2.xml')}],
     'the hosts have different CPU vendors (AMD: amd; Intel: intel): no CPU model runs on both'),
])
def test_refused_without_a_connection(capsys, hosts, message):
    # An unreachable URI: a refusal that needed the connection would fail differently.
    result = run_module(cpu_baseline, {'hosts': hosts, 'uri': 'qemu+unix:///system?socket=/nonexistent'}, capsys)
    assert result['failed'] is True and not result.get('changed')
    assert result['msg'].startswith(message)
