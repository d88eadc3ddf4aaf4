# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host facts for domains, from XML captured on this project's CI machine (libvirt 9.0, QEMU 7.2)."""

from __future__ import annotations

import os

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._domain import host as domain_host
from ansible_collections.phyllome.os.tests.unit.plugins.module_utils._domain import domain_cases


def fixture(name):
    return domain_cases.read(os.path.join(domain_cases.FIXTURES, name))


@pytest.mark.parametrize('name, domain_type', [('domcaps-qemu-q35.xml', 'qemu'), ('domcaps-kvm-q35.xml', 'kvm')])
def test_host_context_from_domain_capabilities(name, domain_type):
    host = domain_host.host_context(fixture(name), 'x86_64')
    assert host.domain_type == domain_type
    assert host.arch == 'x86_64'
    assert host.firmware == {'efi'}
    assert host.secure_boot is True
    assert host.tpm_emulator is True


def test_host_without_ovmf_or_swtpm():
    caps = fixture('domcaps-qemu-q35.xml')
    caps = caps.replace('<value>efi</value>', '').replace('<value>emulator</value>', '')
    start, end = caps.index('<loader'), caps.index('</loader>') + len('</loader>')
    caps = caps[:start] + "<loader supported='no'/>" + caps[end:]
    host = domain_host.host_context(caps, 'x86_64')
    assert host.firmware == set()
    assert host.secure_boot is False
    assert host.tpm_emulator is False


POOL = """<pool type='dir'><name>images</name><target><path>/var/lib/libvirt/images/</path></target></pool>"""
LOGICAL = """<pool type='logical'><name>vg</name><target><path>/dev/vg</path></target></pool>"""


def test_pool_for_path():
    assert domain_host.pool_for_path([LOGICAL, POOL], '/var/lib/libvirt/images/new.qcow2') == ('images', 'new.qcow2')
    assert domain_host.pool_for_path([LOGICAL, POOL], '/srv/new.qcow2') is None
    assert domain_host.pool_for_path([LOGICAL], '/dev/vg/lv') is None


def test_volume_xml():
    xml = domain_host.volume_xml('a.qcow2', 10 * 1024 ** 3, 'qcow2')
    assert '<capacity unit="bytes">10737418240</capacity>' in xml
    assert '<allocation unit="bytes">0</allocation>' in xml
    assert '<format type="qcow2"/>' in xml


# `virsh nodedev-dumpxml usb_1_4` of a Logitech receiver (libvirt's format).
USB = """<device>
  <name>usb_1_4</name>
  <path>/sys/devices/pci0000:00/0000:00:14.0/usb1/1-4</path>
  <parent>usb_usb1</parent>
  <driver><name>usb</name></driver>
  <capability type='usb_device'>
    <bus>1</bus>
    <device>4</device>
    <product id='0xc52b'>Unifying Receiver</product>
    <vendor id='0x046d'>Logitech, Inc.</vendor>
  </capability>
</device>"""


def test_usb_device_address():
    assert domain_host.usb_device_address(USB) == (1, 4)
    assert domain_host.usb_device_address('<device><name>computer</name></device>') is None


def test_pci_nodedev_name():
    assert domain_host.pci_nodedev_name('0000:01:00.1') == 'pci_0000_01_00_1'
