# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_fleet.cpu_baseline on domain capabilities recorded on real Intel and AMD hosts (tests/fixtures/domcaps/)."""

from __future__ import annotations

import os

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput
from ansible_collections.phyllome.os.plugins.module_utils._fleet import cpu_baseline as cb

DOMCAPS = os.path.normpath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'fixtures', 'domcaps'))


def recorded(name):
    with open(os.path.join(DOMCAPS, name), encoding='utf-8') as f:
        return f.read()


HASWELL = recorded('intel-haswell-qemu-2.12.xml')
SKYLAKE = recorded('intel-skylake-qemu-4.2.xml')
ROME = recorded('amd-epyc-rome-qemu-7.2.xml')


@pytest.mark.parametrize('text, model, vendor, machine, first, count', [
    (HASWELL, 'Haswell-noTSX', 'Intel', 'pc-q35-2.12', 'vme', 11),
    (SKYLAKE, 'Skylake-Client-IBRS', 'Intel', 'pc-q35-4.2', 'ss', 15),
    (ROME, 'EPYC-Rome', 'AMD', 'pc-q35-7.2', 'x2apic', 24),
])
def test_host_model_cpu_of_recorded_hosts(text, model, vendor, machine, first, count):
    cpu = cb.host_model_cpu(text, 'h')
    assert (cpu['model'], cpu['vendor'], cpu['machine'], cpu['arch'], cpu['domain_type']) == (
        model, vendor, machine, 'x86_64', 'kvm')
    assert cpu['features'][0] == {'name': first, 'policy': 'require'}
    assert len(cpu['features']) == count


def test_cpu_xml_is_a_custom_exact_cpu_that_parses_back():
    cpu = cb.host_model_cpu(SKYLAKE, 'h')
    text = cb.cpu_xml(cpu)
    assert text.startswith('<cpu mode="custom" match="exact">\n  <model fallback="forbid">Skylake-Client-IBRS</model>\n'
                           '  <vendor>Intel</vendor>\n  <feature policy="require" name="ss"/>\n')
    back = cb.parse_cpu(text)
    assert (back['mode'], back['match'], back['model'], back['fallback'], back['vendor']) == (
        'custom', 'exact', 'Skylake-Client-IBRS', 'forbid', 'Intel')
    assert back['features'] == cpu['features']
    # The host-specific maxphysaddr of the EPYC host's host-model is not part of a CPU to share.
    assert 'maxphysaddr' not in cb.cpu_xml(cb.host_model_cpu(ROME, 'h'))


def test_enabled_features_leave_disabled_ones_out():
    cpu = cb.parse_cpu("<cpu><model>Conroe</model><feature policy='require' name='avx'/>"
                       "<feature policy='disable' name='pni'/><feature name='sse4.2'/></cpu>")
    assert cb.enabled_features(cpu) == {'avx', 'sse4.2'}


def test_intel_and_amd_hosts_are_refused_by_name():
    group = [{'name': n, 'domain_capabilities': t} for n, t in
             (('hv1', HASWELL), ('hv2', ROME), ('hv3', SKYLAKE))]
    with pytest.raises(InvalidInput) as err:
        cb.fleet_group(group)
    assert str(err.value).startswith('the hosts have different CPU vendors (AMD: hv2; Intel: hv1, hv3): '
                                     'no CPU model runs on both')


def test_one_vendor_passes():
    group = cb.fleet_group([{'name': 'hv1', 'domain_capabilities': HASWELL},
                            {'name': 'hv2', 'domain_capabilities': SKYLAKE}])
    assert [(h['name'], h['cpu']['model']) for h in group] == [('hv1', 'Haswell-noTSX'), ('hv2', 'Skylake-Client-IBRS')]


@pytest.mark.parametrize('hosts, message', [
    ([], 'hosts is empty'),
    ([{'name': 'a', 'domain_capabilities': HASWELL}, {'name': 'a', 'domain_capabilities': SKYLAKE}],
     'hosts must have distinct names; given twice: a'),
    ([{'name': 'a', 'domain_capabilities': '<domainCapabilities>'}], 'the domain capabilities of a is not well-formed'),
    ([{'name': 'a', 'domain_capabilities': '<capabilities/>'}], 'must have <domainCapabilities> as their root'),
    # The recorded Skylake host as a domain type without a host-model CPU (TCG on an old libvirt).
    ([{'name': 'a', 'domain_capabilities': SKYLAKE.replace("<mode name='host-model' supported='yes'>",
                                                           "<mode name='host-model' supported='no'>")}],
     'a offers no host-model CPU in its domain capabilities (domain type kvm)'),
])
def test_bad_groups(hosts, message):
    with pytest.raises(InvalidInput) as err:
        cb.fleet_group(hosts)
    assert message in str(err.value)


def test_limits_names_the_host_that_lacks_each_feature():
    # The features each recorded Intel host lists beyond its model, compared
    # as if both models were the same: what one lists and the other does not.
    haswell = cb.enabled_features(cb.host_model_cpu(HASWELL, 'h'))
    skylake = cb.enabled_features(cb.host_model_cpu(SKYLAKE, 'h'))
    found = cb.limits(haswell & skylake, {'haswell': haswell, 'skylake': skylake})
    assert found['by_feature']['clflushopt'] == ['haswell']
    assert found['by_feature']['f16c'] == ['skylake']
    assert 'ss' not in found['by_feature']  # both have it
    assert found['by_host']['haswell'] == sorted(skylake - haswell)
    assert found['by_host']['skylake'] == sorted(haswell - skylake)
    assert found['not_provided'] == []


def test_limits_a_feature_every_host_has_is_not_provided_by_the_hypervisor():
    found = cb.limits({'sse2'}, {'a': {'sse2', 'avx'}, 'b': {'sse2', 'avx', 'avx2'}})
    assert found == {'by_feature': {'avx2': ['a']}, 'by_host': {'a': ['avx2'], 'b': []}, 'not_provided': ['avx']}
