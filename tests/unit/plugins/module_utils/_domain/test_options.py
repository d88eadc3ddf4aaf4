# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The domain option table: argument spec, per-family defaults, checks of the model's values."""

from __future__ import annotations

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput
from ansible_collections.phyllome.os.plugins.module_utils._domain import options as domain_options
from ansible_collections.phyllome.os.plugins.module_utils._domain.options import (
    MODEL_GROUPS,
    argument_spec,
    resolve_model,
)

GiB = 1024 ** 3


def test_argument_spec_comes_from_the_table():
    spec = argument_spec({'uri': {'type': 'str', 'default': 'qemu:///system'}})
    assert spec['uri']['default'] == 'qemu:///system'
    model = spec['model']['options']
    assert set(model) == set(o.name for g in MODEL_GROUPS for o in g.options)
    assert model['disks']['type'] == 'list' and model['disks']['elements'] == 'dict'
    assert model['disks']['options']['device'] == {'type': 'str', 'default': 'disk', 'choices': ['disk', 'cdrom']}
    # Per-family defaults are not argument-spec defaults: they depend on model.os.
    assert 'default' not in model['secure_boot'] and 'default' not in model['memory']
    assert spec['state']['choices'] == list(domain_options.STATES)


def test_argument_spec_validates_with_ansible():
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    validator = ArgumentSpecValidator(argument_spec(), mutually_exclusive=domain_options.MUTUALLY_EXCLUSIVE,
                                      required_one_of=domain_options.REQUIRED_ONE_OF)
    result = validator.validate({'name': 'vm', 'model': {'os': 'windows', 'disks': [{'path': '/a'}]}})
    assert result.error_messages == []
    assert result.validated_parameters['model']['disks'][0]['bus'] is None
    assert result.validated_parameters['model']['disks'][0]['device'] == 'disk'
    bad = validator.validate({'name': 'vm', 'model': {'os': 'windows', 'colour': 'red'}})
    assert 'colour' in ' '.join(bad.error_messages)
    both = validator.validate({'name': 'vm', 'model': {}, 'xml': '<domain/>'})
    assert 'mutually exclusive' in ' '.join(both.error_messages)


@pytest.mark.parametrize('family, expected', [
    ('linux', {'memory': 2 * GiB, 'secure_boot': False, 'tpm': True, 'balloon': True, 'rng': True,
               'guest_agent': True, 'video': 'virtio', 'sound': 'ich9'}),
    ('windows', {'memory': 4 * GiB, 'secure_boot': True, 'tpm': True, 'balloon': False, 'rng': True,
                 'guest_agent': True, 'video': 'virtio', 'sound': 'ich9'}),
    ('other', {'memory': GiB, 'secure_boot': False, 'tpm': False, 'balloon': False, 'rng': False,
               'guest_agent': False, 'video': 'vga', 'sound': 'none'}),
])
def test_family_defaults(family, expected):
    values = resolve_model({'os': family})
    assert dict((k, values[k]) for k in expected) == expected
    assert values['firmware'] == 'efi' and values['machine'] == 'q35'
    assert values['networks'] == [{'type': 'network', 'source': 'default', 'mac': None,
                                   'model': 'e1000e' if family == 'other' else 'virtio', 'boot_order': None}]


def test_user_values_win_over_family_defaults():
    values = resolve_model({'os': 'windows', 'secure_boot': False, 'balloon': True, 'memory': '6G', 'networks': []})
    assert values['secure_boot'] is False and values['balloon'] is True
    assert values['memory'] == 6 * GiB
    assert values['networks'] == []


@pytest.mark.parametrize('memory, size', [(2048, 2 * GiB), ('2G', 2 * GiB), ('2 GiB', 2 * GiB),
                                          ('1536M', 1536 * 1024 ** 2), ('0.5G', GiB // 2)])
def test_memory_units(memory, size):
    assert resolve_model({'memory': memory})['memory'] == size


def test_cpu_topology():
    cpu = resolve_model({'vcpus': 8})['cpu']
    assert (cpu['mode'], cpu['sockets'], cpu['cores'], cpu['threads']) == ('host-model', 1, 8, 1)
    assert resolve_model({'vcpus': 8, 'cpu': {'threads': 2}})['cpu']['cores'] == 4
    assert resolve_model({'vcpus': 4, 'cpu': {'model': 'EPYC'}})['cpu']['mode'] == 'custom'


def test_cpu_custom_defaults_and_features():
    cpu = resolve_model({'cpu': {'model': 'EPYC', 'features': [{'name': 'ssbd'}, {'name': 'svm', 'policy': 'disable'}]}})['cpu']
    assert (cpu['mode'], cpu['match'], cpu['fallback']) == ('custom', 'exact', 'forbid')
    assert cpu['features'] == [{'name': 'ssbd', 'policy': 'require'}, {'name': 'svm', 'policy': 'disable'}]
    # Features also adjust a host CPU; match and fallback are a custom model's.
    cpu = resolve_model({'cpu': {'mode': 'host-model', 'features': [{'name': 'vmx', 'policy': 'disable'}]}})['cpu']
    assert cpu['match'] is None and cpu['features'] == [{'name': 'vmx', 'policy': 'disable'}]


def test_disk_targets_and_buses():
    disks = resolve_model({'disks': [
        {'path': '/a.img'},
        {'path': '/b.img', 'target': 'vda'},
        {'device': 'cdrom', 'path': '/c.iso'},
        {'pool': 'images', 'volume': 'd.qcow2', 'format': 'qcow2', 'size': 20},
        {'volume': 'e.raw', 'size': '512M'},
    ]})['disks']
    assert [(d['target'], d['bus']) for d in disks] == [('vdb', 'virtio'), ('vda', 'virtio'), ('sda', 'sata'),
                                                        ('vdc', 'virtio'), ('vdd', 'virtio')]
    assert disks[2]['readonly'] is True
    assert disks[3]['size'] == 20 * GiB and disks[4]['size'] == 512 * 1024 ** 2
    assert disks[4]['pool'] == 'default' and disks[4]['format'] == 'raw'
    assert resolve_model({'os': 'other', 'disks': [{'path': '/a.img'}]})['disks'][0]['bus'] == 'sata'


def test_many_disks_get_libvirt_names():
    disks = resolve_model({'disks': [{'path': '/d%d.img' % i} for i in range(28)]})['disks']
    assert [d['target'] for d in disks][-3:] == ['vdz', 'vdaa', 'vdab']


def test_hostdevs_are_normalised():
    hostdevs = resolve_model({'hostdevs': [
        {'address': '01:00.0'},
        {'address': '0000:0A:1f.7'},
        {'type': 'usb', 'vendor': '0x046D', 'product': 'c52b'},
        {'type': 'usb', 'address': '003:04'},
    ]})['hostdevs']
    assert [h['address'] for h in hostdevs] == ['0000:01:00.0', '0000:0a:1f.7', None, '3:4']
    assert (hostdevs[2]['vendor'], hostdevs[2]['product']) == ('0x046d', '0xc52b')


def test_graphics_listen_defaults_never_reach_the_network():
    assert resolve_model({})['graphics'] == {'type': 'spice', 'listen': 'none', 'gl': False}
    assert resolve_model({'graphics': {'type': 'vnc'}})['graphics']['listen'] == '127.0.0.1'
    headless = resolve_model({'graphics': {'type': 'none'}})
    assert (headless['video'], headless['sound']) == ('none', 'none')
    assert resolve_model({'graphics': {'type': 'vnc', 'listen': '0.0.0.0'}})['graphics']['listen'] == '0.0.0.0'


@pytest.mark.parametrize('model, message', [
    ({'memory': 'lots'}, 'model.memory must be a size'),
    ({'memory': '4X'}, 'unknown unit'),
    ({'memory': 0}, 'larger than zero'),
    ({'vcpus': 0}, 'at least 1'),
    ({'vcpus': 6, 'cpu': {'threads': 4}}, 'not a multiple'),
    ({'vcpus': 4, 'cpu': {'cores': 3}}, 'does not match vcpus'),
    ({'cpu': {'mode': 'custom'}}, 'needs model.cpu.model'),
    ({'cpu': {'mode': 'host-passthrough', 'model': 'EPYC'}}, 'only used with mode: custom'),
    ({'cpu': {'mode': 'host-model', 'vendor': 'Intel'}}, r'cpu.vendor is only used with mode: custom \(mode is host-model'),
    ({'cpu': {'model': 'EPYC', 'features': [{'name': 'ssbd'}, {'name': 'ssbd', 'policy': 'disable'}]}},
     'names a feature twice: ssbd'),
    ({'cpu': {'model': 'EPYC', 'features': [{'policy': 'require'}]}}, 'every feature needs a name'),
    ({'cpu': {'model': 'EPYC', 'features': [{'name': 'ssbd', 'policy': 'maybe'}]}}, 'policy must be one of'),
    ({'firmware': 'bios', 'secure_boot': True}, 'needs firmware: efi'),
    ({'disks': [{'path': '/a', 'volume': 'b'}]}, 'not both'),
    ({'disks': [{}]}, 'needs path, or pool and volume'),
    ({'disks': [{'pool': 'p'}]}, 'pool needs volume'),
    ({'disks': [{'device': 'cdrom', 'path': '/a.iso', 'bus': 'virtio'}]}, 'cannot be on bus virtio'),
    ({'disks': [{'device': 'cdrom', 'path': '/a.iso', 'size': 1}]}, 'cannot be created'),
    ({'disks': [{'path': '/a', 'target': 'vda'}, {'path': '/b', 'target': 'vda'}]}, 'same target'),
    ({'networks': [{'type': 'bridge'}]}, 'needs source'),
    ({'networks': [{'type': 'user', 'source': 'x'}]}, 'takes no source'),
    ({'networks': [{'mac': '52:54:00:zz:00:01'}]}, 'not a MAC'),
    ({'networks': [{'mac': '01:54:00:00:00:01'}]}, 'multicast'),
    ({'hostdevs': [{}]}, 'needs address'),
    ({'hostdevs': [{'address': '1:2:3'}]}, 'not a PCI address'),
    ({'hostdevs': [{'address': '01:00.0', 'vendor': '10de'}]}, 'chosen by address'),
    ({'hostdevs': [{'type': 'usb'}]}, 'either vendor and product, or address'),
    ({'hostdevs': [{'type': 'usb', 'vendor': '046d'}]}, 'both vendor and product'),
    ({'hostdevs': [{'type': 'usb', 'vendor': 'xyz', 'product': '1234'}]}, 'not a USB vendor'),
    ({'hostdevs': [{'type': 'usb', 'address': 'one:two'}]}, 'BUS:DEVICE'),
    ({'filesystems': [{'source': 'relative', 'target': 't'}]}, 'absolute path'),
    ({'filesystems': [{'source': '/a', 'target': 't'}, {'source': '/b', 'target': 't'}]}, 'same target'),
    ({'filesystems': [{'source': '/a', 'target': 't'}], 'memory_backing': {'access': 'private'}}, 'shared memory'),
    ({'memory_backing': {'hugepage_size': '2M'}}, 'needs hugepages: true'),
    ({'graphics': {'type': 'none', 'listen': '127.0.0.1'}}, 'need a graphics type'),
    ({'graphics': {'type': 'vnc', 'gl': True}}, 'gl needs type: spice'),
    ({'graphics': {'type': 'vnc', 'listen': 'none'}}, 'vnc needs a listen address'),
    ({'graphics': {'gl': True}, 'video': 'qxl'}, 'gl needs video: virtio'),
    ({'pcie_root_ports': -1}, 'must be 0 or more'),
    ({'machine': 'pc', 'pcie_root_ports': 4}, 'for q35 machines, not pc'),
])
def test_bad_values_are_rejected_clearly(model, message):
    with pytest.raises(InvalidInput, match=message):
        resolve_model(model)


@pytest.mark.parametrize('model, ports', [
    ({}, 14),
    ({'machine': 'pc-q35-7.2'}, 14),
    ({'pcie_root_ports': 4}, 4),
    ({'pcie_root_ports': 0}, 0),
    ({'machine': 'pc'}, 0),
    ({'machine': 'pc-i440fx-7.2', 'pcie_root_ports': 0}, 0),
])
def test_pcie_root_ports_per_machine(model, ports):
    assert resolve_model(model)['pcie_root_ports'] == ports


def test_a_cloud_init_seed_is_a_read_only_cdrom_in_the_pool_of_the_first_volume():
    spec = argument_spec()['model']['options']['cloud_init']['options']
    assert spec['user_data'] == {'type': 'str', 'no_log': True}
    resolved = resolve_model({'disks': [{'path': '/a.img'}, {'pool': 'images', 'volume': 'b.qcow2'},
                                        {'device': 'cdrom'}],
                              'cloud_init': {'user_data': '#cloud-config\n'}}, 'web1')
    seed = resolved['disks'][-1]
    assert (seed['pool'], seed['volume'], seed['device'], seed['bus'], seed['readonly'], seed['format']) == (
        'images', 'web1-cidata.iso', 'cdrom', 'sata', True, 'raw')
    assert seed['target'] == 'sdb' and seed['cloud_init_seed'] is True
    assert (resolved['cloud_init']['pool'], resolved['cloud_init']['volume']) == ('images', 'web1-cidata.iso')
    assert resolve_model({'disks': [{'path': '/a.img'}], 'cloud_init': {}}, 'x')['cloud_init']['pool'] == 'default'
    assert resolve_model({'disks': [{'path': '/a.img'}]}, 'x')['cloud_init'] is None
    given = resolve_model({'cloud_init': {'pool': 'seeds', 'volume': 's.iso', 'bus': 'scsi'}}, 'x')['disks'][-1]
    assert (given['pool'], given['volume'], given['bus']) == ('seeds', 's.iso', 'scsi')


@pytest.mark.parametrize('cloud_init, message', [
    ({'volume': 'a/b.iso'}, 'is a volume name, not a path'),
    ({'volume': 'd.qcow2'}, 'is also a disk of model.disks'),
])
def test_bad_cloud_init(cloud_init, message):
    with pytest.raises(InvalidInput, match=message):
        resolve_model({'disks': [{'volume': 'd.qcow2'}], 'cloud_init': cloud_init}, 'x')
