# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Phyllome VM model builder: goldens per variant and its rules (pure: no libvirt needed).

That libvirt accepts each golden is test_model_libvirt.py, which needs libvirt-python.
"""

from __future__ import annotations

import difflib

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput
from ansible_collections.phyllome.os.plugins.module_utils._domain import model as domain_model
from ansible_collections.phyllome.os.plugins.module_utils._domain import options as domain_options
from ansible_collections.phyllome.os.plugins.module_utils._domain.model import HostContext, build_domain
from ansible_collections.phyllome.os.plugins.module_utils._domain.options import resolve_model
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import to_string
from ansible_collections.phyllome.os.tests.unit.plugins.module_utils._domain import domain_cases


@pytest.mark.parametrize('case', sorted(domain_cases.CASES))
def test_golden(case):
    built = to_string(domain_cases.build(case))
    path = domain_cases.golden_path(case)
    if domain_cases.REGENERATE:
        domain_cases.write(path, built)
    try:
        golden = domain_cases.read(path)
    except IOError:
        pytest.fail('golden %s is missing; run with PHYLLOME_REGENERATE_GOLDEN=1 to write it, then review it' % path)
    if built != golden:
        diff = ''.join(difflib.unified_diff(golden.splitlines(True), built.splitlines(True), path, 'built'))
        pytest.fail('the model no longer builds %s:\n%s' % (path, diff))


def test_every_group_has_a_builder():
    assert set(g.name for g in domain_options.MODEL_GROUPS) == set(domain_model.BUILDERS)


def _build(model, host=None):
    return build_domain('vm', resolve_model(model), host or domain_cases.KVM_HOST)


def test_hyperv_only_for_kvm():
    """QEMU's TCG refuses Hyper-V enlightenments ("kernel doesn't allow setting HyperV VP_INDEX")."""
    assert _build({'os': 'windows'}).find('features/hyperv') is not None
    tcg = _build({'os': 'windows'}, HostContext(domain_type='qemu'))
    assert tcg.find('features/hyperv') is None
    assert tcg.get('type') == 'qemu'
    assert tcg.find("clock/timer[@name='hypervclock']") is not None


def test_windows_defaults():
    dom = _build({'os': 'windows'})
    assert dom.find('features/smm').get('state') == 'on'
    features = dict((f.get('name'), f.get('enabled')) for f in dom.findall('os/firmware/feature'))
    assert features == {'secure-boot': 'yes', 'enrolled-keys': 'yes'}
    assert dom.find('devices/tpm').get('model') == 'tpm-crb'
    assert dom.find('devices/tpm/backend').attrib == {'type': 'emulator', 'version': '2.0'}
    assert dom.find('clock').get('offset') == 'localtime'
    assert dom.find('devices/memballoon').get('model') == 'none'
    assert [e.tag for e in dom.find('features/hyperv')] == [name for name, _x in domain_model.HYPERV_ENLIGHTENMENTS]
    assert dom.find('features/hyperv/stimer/direct').get('state') == 'on'


def test_linux_defaults():
    dom = _build({})
    assert dom.find('os').get('firmware') == 'efi'
    assert dom.find('os/type').get('machine') == 'q35'
    assert dom.find('features/smm') is None
    assert dom.find('cpu').get('mode') == 'host-model'
    assert dom.find('devices/interface/source').get('network') == 'default'
    assert dom.find('devices/graphics/listen').attrib == {'type': 'none'}
    assert dom.find('devices/memballoon').get('model') == 'virtio'
    assert dom.find("devices/channel/target[@name='org.qemu.guest_agent.0']") is not None
    assert dom.find('devices/rng/backend').text == '/dev/urandom'
    assert dom.find('memoryBacking') is None


def test_virtiofs_gets_shared_memfd():
    dom = _build({'filesystems': [{'source': '/srv', 'target': 'srv'}]})
    assert dom.find('memoryBacking/source').get('type') == 'memfd'
    assert dom.find('memoryBacking/access').get('mode') == 'shared'


def test_vnc_listens_on_loopback_by_default():
    dom = _build({'graphics': {'type': 'vnc'}})
    assert dom.find('devices/graphics/listen').attrib == {'type': 'address', 'address': '127.0.0.1'}


def test_device_boot_order_replaces_os_boot():
    dom = _build({'disks': [{'path': '/a.img', 'boot_order': 2}], 'networks': [{'boot_order': 1}]})
    assert dom.find('os/boot') is None
    assert dom.find('devices/disk/boot').get('order') == '2'


def test_empty_cdrom_drive():
    # As AnsibleModule passes it: every sub-option present, unset ones None.
    dom = _build({'disks': [{'device': 'cdrom', 'path': None, 'volume': None, 'pool': None}]})
    cdrom = dom.find('devices/disk')
    assert cdrom.get('device') == 'cdrom' and cdrom.find('source') is None
    assert cdrom.find('readonly') is not None


def test_scsi_disks_get_a_virtio_scsi_controller():
    dom = _build({'disks': [{'path': '/a.img', 'bus': 'scsi'}]})
    assert dom.find("devices/controller[@type='scsi']").get('model') == 'virtio-scsi'
    assert dom.find('devices/disk/target').attrib == {'dev': 'sda', 'bus': 'scsi'}


@pytest.mark.parametrize('host, model, message', [
    (HostContext(firmware=set()), {}, 'no UEFI firmware'),
    (HostContext(firmware={'efi'}, secure_boot=False), {'secure_boot': True}, 'no Secure Boot firmware'),
    (HostContext(tpm_emulator=False), {}, 'no emulated TPM'),
])
def test_host_must_offer_what_the_model_needs(host, model, message):
    with pytest.raises(InvalidInput, match=message):
        _build(model, host)


def test_host_checks_pass_when_not_needed():
    dom = _build({'firmware': 'bios', 'tpm': False}, HostContext(firmware=set(), secure_boot=False, tpm_emulator=False))
    assert dom.find('os').get('firmware') is None
    assert dom.find('devices/tpm') is None


def test_extra_xml_adds_and_changes():
    dom = _build({
        'disks': [{'path': '/a.img'}],
        'extra_xml': [
            "<os><kernel>/boot/vmlinuz</kernel><cmdline>console=ttyS0</cmdline></os>",
            "<serial type='file'><source path='/tmp/serial.log'/><target port='0'/></serial>",
            "<devices><disk type='file' device='disk'><target dev='vda'/><iotune><total_iops_sec>500</total_iops_sec></iotune></disk></devices>",
            "<domain><features><ioapic driver='qemu'/></features></domain>",
        ],
    })
    assert dom.find('os/kernel').text == '/boot/vmlinuz'
    assert dom.find('os/boot').get('dev') == 'hd'
    assert dom.find('devices/serial/source').get('path') == '/tmp/serial.log'
    disks = dom.findall('devices/disk')
    assert len(disks) == 1
    assert disks[0].find('iotune/total_iops_sec').text == '500'
    assert disks[0].find('source').get('file') == '/a.img'
    assert dom.find('features/ioapic').get('driver') == 'qemu'
    assert dom.find('features/acpi') is not None


def test_extra_xml_must_be_well_formed():
    with pytest.raises(InvalidInput, match=r'model.extra_xml\[0\] is not well-formed'):
        _build({'extra_xml': ['<os><kernel>']})


def test_cpu_features_in_a_host_mode():
    """Features adjust a host-model CPU too; a custom one has its match, fallback and vendor."""
    cpu = _build({'cpu': {'mode': 'host-model', 'features': [{'name': 'vmx', 'policy': 'disable'}]}}).find('cpu')
    assert cpu.attrib == {'mode': 'host-model'}
    assert [child.tag for child in cpu] == ['topology', 'feature']
    assert cpu.find('feature').attrib == {'policy': 'disable', 'name': 'vmx'}
    cpu = _build({'cpu': {'model': 'EPYC', 'match': 'minimum', 'fallback': 'allow', 'vendor': 'AMD'}}).find('cpu')
    assert cpu.attrib == {'mode': 'custom', 'match': 'minimum'}
    assert cpu.find('model').attrib == {'fallback': 'allow'} and cpu.find('vendor').text == 'AMD'


@pytest.mark.parametrize('ports, machine, found', [(14, 'q35', 14), (3, 'q35', 3), (0, 'q35', 0), (None, 'pc', 0)])
def test_root_ports_come_with_pcie_root(ports, machine, found):
    domain = build_domain('d', resolve_model({'pcie_root_ports': ports, 'machine': machine}), HostContext())
    assert len(domain.findall("devices/controller[@model='pcie-root-port']")) == found
    assert len(domain.findall("devices/controller[@model='pcie-root'][@index='0']")) == (1 if found else 0)
