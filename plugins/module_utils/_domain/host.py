# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a host offers to domains, read from XML that libvirt hands out.

Domain capabilities become a HostContext for the model builder; storage pools
tell which directory a new disk image can be created in; node devices say
whether a hostdev exists. Plain XML in, plain data out: _libvirt.domain_client fetches
the XML.
"""

from __future__ import annotations

import posixpath

from ansible_collections.phyllome.os.plugins.module_utils._domain.model import HostContext
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import new_element, parse, sub, text_of, to_string


def host_context(domcaps_xml, arch):
    """HostContext from `virsh domcapabilities` XML of one domain type and machine."""
    caps = parse(domcaps_xml, 'domain capabilities')
    firmware = set(v.text.strip() for v in caps.findall("os/enum[@name='firmware']/value") if v.text)
    loader = caps.find('os/loader')
    secure_boot = None
    if loader is not None:
        secure_boot = any(v.text == 'yes' for v in loader.findall("enum[@name='secure']/value"))
    if not firmware and loader is not None and loader.get('supported') == 'yes' and loader.findall('value'):
        # Older libvirt lists loaders but no firmware enum: UEFI is there.
        firmware = {'efi'}
    tpm = caps.find('devices/tpm')
    tpm_emulator = None
    if tpm is not None:
        tpm_emulator = tpm.get('supported') == 'yes' and any(
            v.text == 'emulator' for v in tpm.findall("enum[@name='backendModel']/value"))
    return HostContext(domain_type=text_of(caps, 'domain'), arch=text_of(caps, 'arch') or arch,
                       firmware=firmware, secure_boot=secure_boot, tpm_emulator=tpm_emulator)


def pool_directory(pool_xml):
    """(name, target directory) of a directory-backed storage pool, else (name, None)."""
    pool = parse(pool_xml, 'storage pool XML')
    path = text_of(pool, 'target/path')
    if pool.get('type') not in ('dir', 'fs', 'netfs') or not path:
        return text_of(pool, 'name'), None
    return text_of(pool, 'name'), posixpath.normpath(path)


def pool_for_path(pool_xmls, path):
    """(pool name, volume name) for a new image at `path`, when a pool owns its directory."""
    directory = posixpath.normpath(posixpath.dirname(path))
    for pool_xml in pool_xmls:
        name, target = pool_directory(pool_xml)
        if target == directory:
            return name, posixpath.basename(path)
    return None


def volume_xml(name, size, fmt):
    """XML of a new, sparse storage volume of `size` bytes in format `fmt`."""
    volume = new_element('volume')
    sub(volume, 'name', text=name)
    sub(volume, 'capacity', {'unit': 'bytes'}, size)
    sub(volume, 'allocation', {'unit': 'bytes'}, 0)
    sub(sub(volume, 'target'), 'format', {'type': fmt})
    return to_string(volume)


def usb_device_address(nodedev_xml):
    """(bus, device) numbers of a USB device node device, or None."""
    dev = parse(nodedev_xml, 'node device XML')
    cap = dev.find("capability[@type='usb_device']")
    if cap is None:
        return None
    try:
        return int(text_of(cap, 'bus'), 10), int(text_of(cap, 'device'), 10)
    except (TypeError, ValueError):
        return None


def pci_nodedev_name(address):
    """libvirt's node device name of a PCI address ('0000:01:00.0' -> 'pci_0000_01_00_0')."""
    return 'pci_' + address.replace(':', '_').replace('.', '_')
