# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a device element of a domain XML is connected to: a NIC's source, a host device's address or IDs.

The one reader of these for the comparison (which matches devices by them)
and the summary (which reports them).
"""

from __future__ import annotations

from ansible_collections.phyllome.os.plugins.module_utils._common.device_ids import format_usb_address
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import pci_address_text


def disk_source(dev):
    """(attribute, pool, value) naming the source of a <disk> or <filesystem>, or None.

    attribute: file, dev, dir, volume (with its pool) or name (a network disk).
    """
    source = dev.find('source')
    if source is None:
        return None
    for name in ('file', 'dev', 'dir', 'volume', 'name'):
        if source.get(name):
            return (name, source.get('pool'), source.get(name))
    return None


def interface_source(nic):
    """The network, bridge, host interface or socket path an <interface> is attached to, or None."""
    source = nic.find('source')
    if source is None:
        return None
    return source.get('network') or source.get('bridge') or source.get('dev') or source.get('path')


def hostdev_source(dev):
    """{address, vendor, product} of a <hostdev>'s source, None where it has none.

    address: '0000:01:00.0' (pci), 'BUS:DEVICE' (usb, decimal), the mdev UUID,
    'scsi_host0:0:0:0' (scsi: adapter, bus, target, unit), the iSCSI target
    name and LUN ('iqn.2008-06.example:target/0'), the vhost WWPN (scsi_host);
    vendor, product: the USB IDs as the XML writes them ('0x046d').
    """
    found = {'address': None, 'vendor': None, 'product': None}
    source = dev.find('source')
    if source is None:
        return found
    address = source.find('address')
    kind = dev.get('type')
    if kind == 'pci' and address is not None:
        found['address'] = pci_address_text(address)
    elif kind == 'usb':
        vendor, product = source.find('vendor'), source.find('product')
        found['vendor'] = vendor.get('id') if vendor is not None else None
        found['product'] = product.get('id') if product is not None else None
        if address is not None and address.get('bus') is not None:
            found['address'] = format_usb_address(int(address.get('bus'), 0), int(address.get('device', '0'), 0))
    elif kind == 'mdev' and address is not None:
        found['address'] = address.get('uuid')
    elif kind == 'scsi' and source.get('protocol') == 'iscsi':
        name = source.get('name') or ''
        found['address'] = name if '/' in name else name + '/0'  # LUN 0 unless given
    elif kind == 'scsi':
        adapter = source.find('adapter')
        if adapter is not None and address is not None:
            found['address'] = '%s:%s' % (adapter.get('name'), ':'.join(
                str(int(address.get(part, '0'), 0)) for part in ('bus', 'target', 'unit')))
    elif kind == 'scsi_host':
        found['address'] = source.get('wwpn')
    return found
