# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How devices are named: PCI addresses, PCI and USB vendor and product IDs, USB bus:device.

One grammar for what a task writes, what sysfs names and what libvirt's XML
holds, for the host readers, pci_passthrough and the domain model alike.
"""

from __future__ import annotations

import re

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput

# domain:bus:slot.function as the kernel (sysfs, lspci -D) writes it; PCI
# domains above 0xffff exist (Intel VMD). A task may leave the domain out
# (01:00.0 is 0000:01:00.0) and write upper case.
_PCI_ADDRESS_RE = re.compile(r'^(?:([0-9a-f]{4,8}):)?([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$')
_SYSFS_PCI_ADDRESS_RE = re.compile(r'^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$')
_ID_RE = re.compile(r'^(?:0x)?([0-9a-f]{4})$')


def is_pci_address(text):
    """True when `text` is a full PCI address as sysfs names devices (0000:01:00.0)."""
    return bool(_SYSFS_PCI_ADDRESS_RE.match(text or ''))


def parse_pci_address(text):
    """(domain, bus, slot, function) of '0000:01:00.0' or '01:00.0' (any case); InvalidInput otherwise."""
    match = _PCI_ADDRESS_RE.match(str(text).strip().lower())
    if not match:
        raise InvalidInput('%r is not a PCI address (expected domain:bus:slot.function, e.g. 0000:01:00.0)' % (text,))
    domain, bus, slot, function = match.groups()
    return int(domain or '0', 16), int(bus, 16), int(slot, 16), int(function, 16)


def format_pci_address(domain, bus, slot, function):
    """'0000:01:00.0': the address as sysfs names the device."""
    return '%04x:%02x:%02x.%x' % (domain, bus, slot, function)


def normalize_pci_address(text):
    """The full, lower-case address of `text` (01:00.0 and 0000:01:00.0 both work); InvalidInput otherwise."""
    return format_pci_address(*parse_pci_address(text))


def normalize_id(text, what='a PCI or USB ID'):
    """A vendor or device ID as four lower-case hex digits (accepts 10de, 0x10DE); InvalidInput otherwise."""
    match = _ID_RE.match(str(text).strip().lower())
    if not match:
        raise InvalidInput('%r is not %s (four hex digits, e.g. 10de)' % (text, what))
    return match.group(1)


def parse_usb_address(text):
    """(bus, device) numbers of a USB device written BUS:DEVICE in decimal (1:4), as lsusb and sysfs number them."""
    try:
        bus, device = [int(part, 10) for part in str(text).split(':')]
    except ValueError:
        raise InvalidInput('%r is not a USB address (BUS:DEVICE, e.g. 1:4)' % (text,))
    if bus < 0 or device < 0:
        raise InvalidInput('%r is not a USB address (BUS:DEVICE, e.g. 1:4)' % (text,))
    return bus, device


def format_usb_address(bus, device):
    return '%d:%d' % (bus, device)
