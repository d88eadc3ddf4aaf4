# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common import device_ids
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput


@pytest.mark.parametrize('text, expected', [
    ('01:00.0', '0000:01:00.0'),
    ('0000:01:00.0', '0000:01:00.0'),
    ('0000:0A:00.3', '0000:0a:00.3'),
    (' 0000:00:1f.7 ', '0000:00:1f.7'),
    # Intel VMD puts devices in domains above 0xffff (the domain model refused them before it shared this grammar).
    ('10000:e1:00.0', '10000:e1:00.0'),
])
def test_normalize_pci_address(text, expected):
    assert device_ids.normalize_pci_address(text) == expected


@pytest.mark.parametrize('text', [
    '01:00', '0000:01:00.8', '0000:1:00.0', 'pci_0000_01_00_0', '', '10de:2520',
    # Bus and slot are two hex digits, as the kernel writes them (the domain model took these before).
    '1:0.0', '0:01:00.0',
])
def test_parse_pci_address_rejects(text):
    with pytest.raises(InvalidInput, match='not a PCI address'):
        device_ids.parse_pci_address(text)


@pytest.mark.parametrize('text, parsed', [('0000:01:00.0', (0, 1, 0, 0)), ('01:00.1', (0, 1, 0, 1)),
                                          ('10000:af:1f.7', (0x10000, 0xaf, 0x1f, 7))])
def test_parse_pci_address(text, parsed):
    assert device_ids.parse_pci_address(text) == parsed
    assert device_ids.parse_pci_address(device_ids.format_pci_address(*parsed)) == parsed


def test_is_pci_address_is_the_sysfs_spelling():
    assert device_ids.is_pci_address('0000:01:00.0')
    assert device_ids.is_pci_address('10000:e1:00.0')
    assert not device_ids.is_pci_address('01:00.0')
    assert not device_ids.is_pci_address('0000:01:00.0/')
    assert not device_ids.is_pci_address(None)


@pytest.mark.parametrize('text, expected', [('10de', '10de'), ('0x10DE', '10de'), (' 8086 ', '8086'), ('0x046d', '046d')])
def test_normalize_id(text, expected):
    assert device_ids.normalize_id(text) == expected


@pytest.mark.parametrize('text', ['10de1', 'xyz', '0x', '', '46d'])
def test_normalize_id_rejects(text):
    with pytest.raises(InvalidInput, match='four hex digits'):
        device_ids.normalize_id(text)


@pytest.mark.parametrize('text, parsed', [('1:4', (1, 4)), ('003:012', (3, 12))])
def test_usb_address(text, parsed):
    assert device_ids.parse_usb_address(text) == parsed
    assert device_ids.format_usb_address(*parsed) == '%d:%d' % parsed


@pytest.mark.parametrize('text', ['1', '1:2:3', 'one:two', '1:-2', '0x1:4', ''])
def test_usb_address_rejects(text):
    with pytest.raises(InvalidInput, match='BUS:DEVICE'):
        device_ids.parse_usb_address(text)
