# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.phyllome.os.plugins.filter.guests import guests_cpu, guests_defaults, guests_pci_devices

GPU_XML = """<domain type='kvm'><name>gpu</name><devices>
  <hostdev mode='subsystem' type='pci' managed='yes'>
    <source><address domain='0x0000' bus='0x0b' slot='0x00' function='0x1'/></source>
  </hostdev>
  <hostdev mode='subsystem' type='usb'><source><vendor id='0x046d'/><product id='0xc52b'/></source></hostdev>
</devices></domain>"""


@pytest.mark.parametrize('defaults, expected', [
    (None, {'state': 'running'}),
    ({}, {'state': 'running'}),
    ({'autostart': True}, {'state': 'running', 'autostart': True}),
    # the inventory's state wins
    ({'state': 'shutdown', 'model': {'memory': 512}}, {'state': 'shutdown', 'model': {'memory': 512}}),
], ids=['none', 'empty', 'other-keys', 'own-state'])
def test_the_defaults_under_every_guest(defaults, expected):
    given = None if defaults is None else dict(defaults)
    assert guests_defaults(given) == expected
    # the input is left as it was
    assert given == defaults


def test_the_defaults_are_a_dict():
    with pytest.raises(AnsibleFilterError, match='expects a dict'):
        guests_defaults(['state', 'running'])


@pytest.mark.parametrize('guests, defaults, expected', [
    ([], None, []),
    # model hostdevs: pci by default, short addresses normalised, each once, sorted
    ([{'name': 'a', 'model': {'hostdevs': [{'address': '0b:00.0'}, {'type': 'usb', 'address': '3:4'}]}},
      {'name': 'b', 'model': {'hostdevs': [{'type': 'pci', 'address': '0000:0B:00.0'}, {'address': '0000:03:00.0'}]}}],
     {}, ['0000:03:00.0', '0000:0b:00.0']),
    # the xml's hostdevs (usb ones left out)
    ([{'xml': GPU_XML}], {}, ['0000:0b:00.1']),
    # the defaults' model hostdevs go under an item's own model only, and its own list replaces them
    ([{'name': 'a', 'model': {'memory': 512}}, {'name': 'b', 'model': {'hostdevs': []}}, {'name': 'c'}, {'xml': '<domain/>'}],
     {'model': {'hostdevs': [{'address': '01:00.0'}]}}, ['0000:01:00.0']),
    # a guest to remove names nothing, its own state or the defaults'
    ([{'name': 'a', 'state': 'absent', 'model': {'hostdevs': [{'address': '01:00.0'}]}},
      {'name': 'b', 'model': {'hostdevs': [{'address': '02:00.0'}]}},
      {'name': 'c', 'state': 'running', 'model': {'hostdevs': [{'address': '03:00.0'}]}}],
     {'state': 'absent'}, ['0000:03:00.0']),
], ids=['none', 'model', 'xml', 'defaults', 'absent'])
def test_the_pci_devices_the_guests_name(guests, defaults, expected):
    assert guests_pci_devices(guests, defaults) == expected


@pytest.mark.parametrize('guests, message', [
    ({'name': 'a'}, 'expects a list of guests'),
    (['a'], 'phyllome_guests[0]: a guest is a dict'),
    ([{'name': 'a'}, {'name': 'b', 'model': {'hostdevs': [{'address': 'gpu'}]}}],
     "phyllome_guests[1] (b): hostdev 'gpu' is not a PCI address"),
    ([{'name': 'x', 'xml': '<domain>'}], 'phyllome_guests[0] (x): its xml is not well-formed'),
])
def test_what_it_cannot_read_is_named(guests, message):
    with pytest.raises(AnsibleFilterError, match=None) as exc:
        guests_pci_devices(guests)
    assert message in str(exc.value)


FLEET = {'mode': 'custom', 'match': 'exact', 'model': 'Haswell-noTSX', 'fallback': 'forbid', 'vendor': 'Intel',
         'features': [{'name': 'ss', 'policy': 'require'}]}


def test_guests_cpu_gives_the_cpu_to_guests_without_their_own():
    guests = [
        {'name': 'plain', 'model': {}},
        {'name': 'topology', 'model': {'vcpus': 4, 'cpu': {'threads': 2}}},
        {'name': 'own-mode', 'model': {'cpu': {'mode': 'host-passthrough'}}},
        {'name': 'own-model', 'model': {'cpu': {'model': 'EPYC'}}},
        {'name': 'own-features', 'model': {'cpu': {'features': [{'name': 'vmx', 'policy': 'disable'}]}}},
        {'name': 'xml', 'xml': '<domain/>'},
        {'name': 'bare'},
    ]
    result = guests_cpu(guests, {}, FLEET)
    assert result[0] == {'name': 'plain', 'model': {'cpu': FLEET}}
    assert result[1]['model'] == {'vcpus': 4, 'cpu': dict(FLEET, threads=2)}
    assert result[2:] == guests[2:]
    assert guests[0] == {'name': 'plain', 'model': {}}  # the input is left as it is
    assert guests_cpu(guests[:1], {}, 'host-passthrough') == [{'name': 'plain', 'model': {'cpu': {'mode': 'host-passthrough'}}}]


def test_guests_cpu_leaves_guests_alone_when_the_defaults_define_a_cpu():
    guests = [{'name': 'a', 'model': {'cpu': {'cores': 2}}}]
    assert guests_cpu(guests, {'model': {'cpu': {'mode': 'host-passthrough'}}}, FLEET) == guests
    # A topology in the defaults defines no CPU.
    assert guests_cpu(guests, {'model': {'cpu': {'threads': 2}}}, FLEET)[0]['model']['cpu']['model'] == 'Haswell-noTSX'


@pytest.mark.parametrize('guests, cpu, message', [
    ([], 'fleet', 'fleet is the baseline phyllome.os.cpu_baseline computes'),
    ([], 'host', 'one of host-model, host-passthrough, maximum or a dict'),
    ([], {'cores': 2}, 'a mode or a model'),
    ({'name': 'a'}, 'host-model', 'expects a list of guests'),
    (['a'], 'host-model', r'phyllome_guests\[0\]: a guest is a dict'),
])
def test_guests_cpu_refuses(guests, cpu, message):
    with pytest.raises(AnsibleFilterError, match=message):
        guests_cpu(guests, {}, cpu)
