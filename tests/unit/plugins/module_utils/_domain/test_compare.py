# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Semantic comparison and merge against XML that a real libvirtd stored.

The *.libvirt.xml files were captured from libvirt 9.0 / QEMU 7.2 (QEMU
driver): each desired XML was defined with `virsh define` and read back with
`virsh dumpxml --inactive`. Set PHYLLOME_CAPTURE_URI=qemu:///system to capture
them again from the libvirtd at that URI.
"""

from __future__ import annotations

import copy
import os
import uuid as uuid_module

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._domain.compare import (
    compare,
    machine_matches,
    match_devices,
    merge,
    overlay,
    unified_xml,
)
from ansible_collections.phyllome.os.plugins.module_utils._domain.devices import hostdev_source
from ansible_collections.phyllome.os.plugins.module_utils._domain.options import MODEL_OWNED_TAGS
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import parse, parse_domain, to_string
from ansible_collections.phyllome.os.tests.unit.plugins.module_utils._domain import domain_cases

GOLDEN = sorted(domain_cases.CASES)
USER = ['user-minimal', 'user-kernel-boot']


def _desired_path(case):
    return domain_cases.golden_path(case) if case in domain_cases.CASES else domain_cases.golden_path(case + '-in')


def _capture(case):
    """Define the desired XML on CAPTURE_URI under a temporary name, read it back, undefine it."""
    libvirt = pytest.importorskip('libvirt')
    desired = parse_domain(domain_cases.read(_desired_path(case)))
    name = desired.find('name').text
    desired.find('name').text = 'phyllome-capture-%s' % uuid_module.uuid4().hex[:8]
    conn = libvirt.open(domain_cases.CAPTURE_URI)
    dom = conn.defineXML(to_string(desired))
    try:
        stored = parse_domain(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    finally:
        dom.undefine()
        conn.close()
    stored.find('name').text = name
    domain_cases.write(domain_cases.libvirt_path(case), to_string(stored))


def load(case):
    if domain_cases.CAPTURE_URI:
        _capture(case)
    try:
        stored = domain_cases.read(domain_cases.libvirt_path(case))
    except IOError:
        pytest.fail('%s is missing; capture it with PHYLLOME_CAPTURE_URI=qemu:///system'
                    % domain_cases.libvirt_path(case))
    return parse_domain(domain_cases.read(_desired_path(case))), parse_domain(stored)


def owned_for(case):
    return MODEL_OWNED_TAGS if case in domain_cases.CASES else frozenset()


@pytest.mark.parametrize('case', GOLDEN + USER)
def test_what_libvirt_fills_in_is_no_change(case):
    desired, stored = load(case)
    assert [str(d) for d in compare(desired, stored, owned_for(case))] == []


@pytest.mark.parametrize('case', GOLDEN + USER)
def test_libvirt_really_filled_things_in(case):
    """Guard against a capture that is a mere copy: libvirt adds a uuid and device addresses."""
    desired, stored = load(case)
    assert desired.find('uuid') is None and stored.find('uuid') is not None
    assert stored.find('devices/controller') is not None


@pytest.mark.parametrize('case', GOLDEN + USER)
def test_merge_without_differences_changes_nothing(case):
    desired, stored = load(case)
    merged, differences = merge(desired, stored, owned_for(case))
    assert differences == []
    assert to_string(merged) == to_string(stored)


@pytest.mark.parametrize('case', GOLDEN + USER)
def test_a_full_dumpxml_given_back_is_no_change(case):
    """A user who feeds `virsh dumpxml` back as xml gets changed: false, in both modes."""
    _desired, stored = load(case)
    assert compare(copy.deepcopy(stored), stored) == []
    assert compare(copy.deepcopy(stored), stored, MODEL_OWNED_TAGS) == []


def _set(path, attribute, value):
    def change(dom):
        dom.find(path).set(attribute, value)
    return change


def _set_attrs(path, **attrs):
    def change(dom):
        for key, value in attrs.items():
            dom.find(path).set(key, value)
    return change


def _text(path, value, unit=None):
    def change(dom):
        elem = dom.find(path)
        elem.text = value
        if unit:
            elem.set('unit', unit)
    return change


def _remove(path):
    def change(dom):
        elem = dom.find(path)
        elem.getparent().remove(elem)
    return change


def _append(path, xml):
    def change(dom):
        dom.find(path).append(parse(xml))
    return change


def _reverse_devices(dom):
    devices = dom.find('devices')
    children = list(devices)
    for child in children:
        devices.remove(child)
    devices.extend(reversed(children))


def _reverse_children(path):
    def change(dom):
        parent = dom.find(path)
        children = list(parent)
        for child in children:
            parent.remove(child)
        parent.extend(reversed(children))
    return change


# (case, change to the desired XML, expected differences in words)
PAIRS = [
    ('linux', _reverse_devices, []),
    ('linux', _text('memory', '4096', 'MiB'), []),
    ('linux', _text('memory', '4', 'GiB'), []),
    ('linux', _set('os/type', 'machine', 'pc-q35-7.2'), []),
    ('linux', _set('os/type', 'machine', 'pc-q35-8.1'),
     ["os/type: machine changed from 'pc-q35-7.2' to 'pc-q35-8.1'"]),
    ('linux', _text('memory', '8', 'GiB'), ['memory changed from 4 GiB to 8 GiB']),
    ('linux', _remove('devices/rng'), ['devices/rng[virtio] removed']),
    ('linux', _remove('devices/tpm'), ['devices/tpm[tpm-crb] removed']),
    ('linux', _set('devices/disk/driver', 'cache', 'writeback'),
     ["devices/disk[vda]/driver[qemu]: cache changed from 'none' to 'writeback'"]),
    ('linux', _append('devices', "<disk type='file' device='disk'><source file='/b.img'/><target dev='vdb' bus='virtio'/></disk>"),
     ['devices/disk[vdb] added']),
    ('linux', _remove("clock/timer[@name='kvmclock']"), ['clock/timer[kvmclock] removed']),
    ('linux', _set('cpu', 'mode', 'host-passthrough'), ["cpu: mode changed from 'host-model' to 'host-passthrough'"]),
    ('linux', _set('cpu/topology', 'cores', '2'), ["cpu/topology: cores changed from '4' to '2'"]),
    ('windows11', _reverse_devices, []),
    ('windows11', _set('devices/interface/mac', 'address', '52:54:00:6B:3C:11'), []),
    ('windows11', _set('devices/interface/mac', 'address', '52:54:00:6b:3c:12'),
     ["devices/interface[52:54:00:6b:3c:12]/mac: address changed from '52:54:00:6b:3c:11' to '52:54:00:6b:3c:12'"]),
    ('windows11', _remove('features/hyperv'), ['features/hyperv removed']),
    ('windows11', _remove('features/hyperv/tlbflush'), ['features/hyperv/tlbflush removed']),
    ('windows11', _set('devices/disk[2]/source', 'file', '/var/lib/libvirt/isos/Win11_24H2.iso'),
     ["devices/disk[sda]/source: file changed from '/var/lib/libvirt/isos/Win11_23H2_English_x64.iso'"
      " to '/var/lib/libvirt/isos/Win11_24H2.iso'"]),
    # A CD-ROM is read-only whatever the XML says: libvirt adds <readonly/> to it.
    ('windows11', _remove('devices/disk[3]/readonly'), []),
    ('passthrough', _reverse_devices, []),
    ('passthrough', _set('devices/hostdev/source/address', 'function', '0x0'), []),
    ('passthrough', _set('devices/hostdev/source/address', 'slot', '0'), []),
    ('passthrough', _remove('devices/hostdev[2]'), ['devices/hostdev[pci 0000:01:00.1] removed']),
    ('passthrough', _set('devices/hostdev[3]/source/product', 'id', '0xc52c'),
     ['devices/hostdev[usb 046d:c52c] added', 'devices/hostdev[usb 046d:c52b] removed']),
    ('passthrough', _set_attrs('memoryBacking/hugepages/page', size='1', unit='GiB'), []),
    ('passthrough', _set('memoryBacking/hugepages/page', 'size', '2048'),
     ["memoryBacking/hugepages/page: size changed from '1048576 KiB' to '2048 KiB'"]),
    ('virtiofs', _reverse_devices, []),
    ('virtiofs', _remove('memoryBacking'), ['memoryBacking removed']),
    ('virtiofs', _remove("devices/filesystem[2]"), ['devices/filesystem[isos] removed']),
    ('virtiofs', _remove("devices/interface[2]"), ['devices/interface[52:54:00:56:2c:72] removed']),
    ('virtiofs', _set('os/firmware/feature[2]', 'enabled', 'no'),
     ["os/firmware/feature[secure-boot]: enabled changed from 'yes' to 'no'"]),
    # A fleet CPU: features are matched by name (their order is not a change), their policy is compared,
    # one the definition has and the request lacks is a change (it would stay required otherwise).
    ('fleet', _reverse_children('cpu'), []),
    ('fleet', _set("cpu/feature[@name='invtsc']", 'policy', 'require'),
     ["cpu/feature[invtsc]: policy changed from 'disable' to 'require'"]),
    ('fleet', _remove("cpu/feature[@name='abm']"), ['cpu/feature[abm] removed']),
    ('fleet', _append('cpu', "<feature policy='require' name='avx2'/>"), ['cpu/feature[avx2] added']),
    ('fleet', _remove('cpu/vendor'), ['cpu/vendor removed']),
    ('fleet', _text('cpu/model', 'Broadwell-noTSX'), ['cpu/model changed from Haswell-noTSX to Broadwell-noTSX']),
    ('other-bios', _reverse_devices, []),
    ('user-minimal', _reverse_devices, []),
    ('user-minimal', _remove('devices/console'), ['devices/serial[0] removed', 'devices/console[serial] removed']),
    ('user-minimal', _set('os/type', 'machine', 'q35'), ["os/type: machine changed from 'pc-i440fx-7.2' to 'q35'"]),
    ('user-minimal', _remove('os/boot'), ["os/boot: dev changed from 'cdrom' to 'hd'", 'os/boot removed']),
    ('user-minimal', _remove('os'), []),
    ('user-minimal', _remove('devices'), []),
    ('user-minimal', _set('devices/interface/address', 'slot', '0x07'), []),
    ('user-kernel-boot', _reverse_devices, []),
    ('user-kernel-boot', _text('os/cmdline', 'console=ttyS0 panic=-1 quiet'),
     ['os/cmdline changed from console=ttyS0 panic=-1 to console=ttyS0 panic=-1 quiet']),
]


def _pair_id(pair):
    return '%s-%d' % (pair[0], PAIRS.index(pair))


@pytest.mark.parametrize('pair', PAIRS, ids=_pair_id)
def test_tricky_pairs(pair):
    case, change, expected = pair
    desired, stored = load(case)
    change(desired)
    assert [str(d) for d in compare(desired, stored, owned_for(case))] == expected


@pytest.mark.parametrize('pair', PAIRS, ids=_pair_id)
def test_merge_satisfies_desired_and_keeps_what_libvirt_assigned(pair):
    case, change, expected = pair
    desired, stored = load(case)
    change(desired)
    merged, differences = merge(desired, stored, owned_for(case))
    assert [str(d) for d in differences] == expected
    assert compare(desired, merged, owned_for(case)) == []
    assert merged.find('uuid').text == stored.find('uuid').text
    # Devices that stay keep their PCI addresses and MACs.
    wanted = list(desired.find('devices')) if desired.find('devices') is not None else []
    kept = [(want, have) for want, have in match_devices(wanted, list(stored.find('devices')))[0] if have is not None]
    for _want, have in kept:
        for address in have.findall('address'):
            assert any(address.attrib == a.attrib for a in merged.iter('address'))
        mac = have.find('mac')
        if mac is not None and _want.find('mac') is None:
            assert any(mac.get('address') == m.get('address') for m in merged.iter('mac'))
    # Merging again changes nothing: a second run is a no-op.
    again, more = merge(desired, merged, owned_for(case))
    assert more == []
    assert to_string(again) == to_string(merged)


def test_merge_keeps_nvram_and_loader_that_libvirt_filled():
    desired, stored = load('windows11')
    stored.find('os').append(parse("<loader readonly='yes' secure='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.ms.fd</loader>"))
    stored.find('os').append(parse("<nvram template='/usr/share/OVMF/OVMF_VARS_4M.ms.fd'>/var/lib/libvirt/qemu/nvram/win11_VARS.fd</nvram>"))
    assert compare(desired, stored, MODEL_OWNED_TAGS) == []
    desired.find('memory').text = str(16 * 1024 * 1024)
    merged, _differences = merge(desired, stored, MODEL_OWNED_TAGS)
    assert merged.find('os/nvram').text == '/var/lib/libvirt/qemu/nvram/win11_VARS.fd'
    assert merged.find('os/loader').get('secure') == 'yes'


def test_switching_to_bios_drops_efi():
    desired, stored = load('linux')
    desired.find('os').attrib.pop('firmware')
    desired.find('os').remove(desired.find('os/firmware'))
    differences = [str(d) for d in compare(desired, stored, MODEL_OWNED_TAGS)]
    assert differences == ["os: firmware changed from 'efi' to unset", 'os/firmware removed']
    merged, _d = merge(desired, stored, MODEL_OWNED_TAGS)
    assert merged.find('os').get('firmware') is None and merged.find('os/firmware') is None


def test_sections_left_out_of_user_xml_are_not_managed():
    _desired, stored = load('linux')
    partial = parse("<domain type='kvm'><name>fedora</name><memory unit='GiB'>4</memory></domain>")
    assert compare(partial, stored) == []
    # The same partial XML as a model would own everything it leaves out.
    differences = [str(d) for d in compare(partial, stored, MODEL_OWNED_TAGS)]
    assert 'devices removed' in differences and 'os removed' in differences
    assert 'uuid removed' not in differences


def test_a_given_uuid_is_compared():
    _desired, stored = load('linux')
    partial = parse("<domain><name>fedora</name><uuid>%s</uuid></domain>" % stored.find('uuid').text.upper())
    assert compare(partial, stored) == []
    partial.find('uuid').text = '00000000-0000-0000-0000-000000000001'
    assert len(compare(partial, stored)) == 1


def test_nics_without_mac_match_by_network_then_position():
    _desired, stored = load('virtiofs')
    desired = copy.deepcopy(stored)
    nics = desired.findall('devices/interface')
    for nic in nics:
        nic.remove(nic.find('mac'))
        nic.remove(nic.find('address'))
        desired.find('devices').remove(nic)
    desired.find('devices').extend(reversed(nics))
    assert compare(desired, stored) == []
    # A NIC moved to another network keeps its MAC and address.
    desired.find("devices/interface[@type='network']/source").set('network', 'lan')
    merged, differences = merge(desired, stored)
    assert [str(d) for d in differences] == [
        "devices/interface[network lan]/source: network changed from 'default' to 'lan'"]
    moved = merged.find("devices/interface[@type='network']")
    assert moved.find('mac').get('address') == '52:54:00:12:34:56'
    assert moved.find('address').attrib == stored.find("devices/interface[@type='network']/address").attrib


def test_overlay_never_removes():
    _desired, stored = load('linux')
    before = len(stored.find('devices'))
    overlay(parse("<domain><devices><watchdog model='i6300esb' action='reset'/></devices></domain>"), stored)
    assert len(stored.find('devices')) == before + 1


@pytest.mark.parametrize('wanted, stored, result', [
    ('q35', 'pc-q35-7.2', True),
    ('pc', 'pc-i440fx-7.2', True),
    ('pc', 'pc-q35-7.2', False),
    ('virt', 'virt-8.0', True),
    ('q35', 'q35', True),
    ('pc-q35-7.2', 'pc-q35-8.0', False),
])
def test_machine_matches(wanted, stored, result):
    assert machine_matches(wanted, stored) is result


def test_unified_xml_masks_passwords():
    elem = parse("<domain><devices><graphics type='vnc' passwd='secret'/></devices></domain>")
    text = unified_xml(elem)
    assert 'secret' not in text and 'passwd="********"' in text
    assert unified_xml(None) == ''


# What newer libvirt releases add at define, which libvirt 9.0 here does not
# (so not captured: the stored XML below is a capture with the addition made
# by hand, as issue 14 reports it).
def _corpus(kind, stem):
    path = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'fixtures', 'domain_corpus', kind, stem + '.xml')
    with open(path) as handle:
        return parse_domain(handle.read())


def test_smm_that_secure_boot_firmware_switches_on_is_no_change():
    desired, stored = _corpus('input', 'phyllome-efi-secure-boot'), _corpus('stored', 'phyllome-efi-secure-boot')
    stored.find('features').append(parse("<smm state='on'/>"))
    assert compare(desired, stored) == []
    # Without Secure Boot firmware, an <smm> the XML leaves out is a difference.
    desired.find('os').attrib.pop('firmware')
    desired.find('os').remove(desired.find('os/firmware'))
    assert 'features/smm removed' in [str(d) for d in compare(desired, stored)]


def test_the_firmware_named_for_a_loader_given_by_path_is_no_change():
    desired, stored = _corpus('input', 'phyllome-efi-manual-loader'), _corpus('stored', 'phyllome-efi-manual-loader')
    stored.find('os').set('firmware', 'efi')
    assert compare(desired, stored) == []


@pytest.mark.parametrize('xml, address', [
    ("<hostdev mode='subsystem' type='scsi'><source><adapter name='scsi_host0'/>"
     "<address bus='0' target='0' unit='0x1'/></source></hostdev>", 'scsi_host0:0:0:1'),
    ("<hostdev mode='subsystem' type='scsi'><source protocol='iscsi' name='iqn.1992-01.com.example'>"
     "<host name='example.org'/></source></hostdev>", 'iqn.1992-01.com.example/0'),
    ("<hostdev mode='subsystem' type='scsi_host'><source protocol='vhost' wwpn='naa.5123456789abcde0'/></hostdev>",
     'naa.5123456789abcde0'),
])
def test_scsi_hostdevs_have_an_identity(xml, address):
    """Without one they never paired, and a merge appended a copy on every run."""
    assert hostdev_source(parse(xml))['address'] == address
    stored = parse(xml)
    stored.append(parse("<address type='drive' controller='0' bus='0' target='0' unit='1'/>"))
    assert match_devices([parse(xml)], [stored])[0][0][1] is stored


# --- the model's PCI Express root ports ----------------------------------------------------------

def _root_ports(domain):
    return domain.findall("devices/controller[@model='pcie-root-port']")


def test_a_model_domain_defined_before_the_root_ports_gets_the_missing_ones_once():
    """linux-before-root-ports.libvirt.xml: what libvirt 9.0 stored for the Linux golden before the model
    had root ports (libvirt added 9 itself, 8 of them used). The model asks for 14: five are added, and no
    other controller is taken for a root port."""
    desired = parse_domain(domain_cases.read(domain_cases.golden_path('linux')))
    stored = parse_domain(domain_cases.read(domain_cases.libvirt_path('linux-before-root-ports')))
    assert len(_root_ports(stored)) == 9
    merged, differences = merge(desired, stored, MODEL_OWNED_TAGS)
    assert [str(d) for d in differences] == ['devices/controller[pci pcie-root-port] added'] * 5
    assert len(_root_ports(merged)) == 14
    # The controllers libvirt had stay as they were (indexes, addresses), the devices on their ports too.
    for controller in stored.findall('devices/controller'):
        assert any(to_string(controller) == to_string(c) for c in merged.findall('devices/controller'))
    assert compare(desired, merged, MODEL_OWNED_TAGS) == []


def test_root_ports_libvirt_added_beyond_the_model_s_are_left_alone():
    desired, stored = load('linux')
    devices = stored.find('devices')
    for index in (15, 16):
        extra = copy.deepcopy(_root_ports(stored)[-1])
        extra.set('index', str(index))
        devices.append(extra)
    assert compare(desired, stored, MODEL_OWNED_TAGS) == []
    fewer = copy.deepcopy(desired)
    for port in _root_ports(fewer)[4:]:
        port.getparent().remove(port)
    assert compare(fewer, stored, MODEL_OWNED_TAGS) == []


def test_a_root_port_never_pairs_with_another_controller():
    desired = parse("<domain><name>d</name><devices><controller type='pci' index='0' model='pcie-root'/>"
                    "<controller type='pci' model='pcie-root-port'/><controller type='pci' model='pcie-root-port'/>"
                    "</devices></domain>")
    stored = parse("<domain><name>d</name><devices><controller type='pci' index='0' model='pcie-root'/>"
                   "<controller type='pci' index='1' model='pcie-to-pci-bridge'/>"
                   "<controller type='usb' index='0' model='qemu-xhci'/></devices></domain>")
    merged, differences = merge(desired, stored)
    assert [str(d) for d in differences] == ['devices/controller[pci pcie-root-port] added'] * 2
    assert merged.find("devices/controller[@model='pcie-to-pci-bridge']") is not None
    assert merged.find("devices/controller[@type='usb']").get('model') == 'qemu-xhci'
    # A USB controller still changes its model in place.
    usb = parse("<domain><name>d</name><devices><controller type='usb' model='ich9-ehci1'/></devices></domain>")
    assert [str(d) for d in compare(usb, stored)] == [
        "devices/controller[usb ich9-ehci1]: model changed from 'qemu-xhci' to 'ich9-ehci1'"]
