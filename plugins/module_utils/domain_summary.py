# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A domain's XML as plain data: what phyllome.os.domain_info reports.

Also the one reader of disks, NICs and hostdevs in a domain XML, used by the
domain module to check a definition before it reaches libvirt.
"""

from __future__ import annotations

from ansible_collections.phyllome.os.plugins.module_utils.deps import require
from ansible_collections.phyllome.os.plugins.module_utils.domain_xml import (
    element_quantity,
    new_element,
    pci_address_text,
    read_metadata,
    text_of,
)
from ansible_collections.phyllome.os.plugins.module_utils.errors import InvalidInput

MiB = 1024 * 1024


def disks(domain):
    """[{target, device, bus, type, path, pool, volume, format, readonly}] of a domain element."""
    result = []
    for disk in domain.findall('devices/disk'):
        source = disk.find('source')
        source = source if source is not None else new_element('source')
        target = disk.find('target')
        result.append({
            'target': target.get('dev') if target is not None else None,
            'bus': target.get('bus') if target is not None else None,
            'device': disk.get('device', 'disk'),
            'type': disk.get('type'),
            'path': source.get('file') or source.get('dev') or source.get('dir'),
            'pool': source.get('pool'),
            'volume': source.get('volume'),
            'format': disk.find('driver').get('type') if disk.find('driver') is not None else None,
            'readonly': disk.find('readonly') is not None,
        })
    return result


def interfaces(domain, addresses=None):
    """[{mac, type, source, model, addresses}]; `addresses` is {mac: [...]} from the client."""
    addresses = addresses or {}
    result = []
    for nic in domain.findall('devices/interface'):
        mac = nic.find('mac')
        mac = mac.get('address').lower() if mac is not None and mac.get('address') else None
        source = nic.find('source')
        name = None
        if source is not None:
            name = source.get('network') or source.get('bridge') or source.get('dev') or source.get('path')
        model = nic.find('model')
        backend = nic.find('backend')
        kind = nic.get('type')
        if kind == 'user' and backend is not None and backend.get('type') == 'passt':
            kind = 'passt'
        result.append({
            'mac': mac,
            'type': kind,
            'source': name,
            'model': model.get('type') if model is not None else None,
            'addresses': list(addresses.get(mac, [])) if mac else [],
        })
    return result


def hostdevs(domain):
    """[{type, address, vendor, product, managed}] of a domain's host devices."""
    result = []
    for dev in domain.findall('devices/hostdev'):
        source = dev.find('source')
        item = {'type': dev.get('type'), 'managed': dev.get('managed') == 'yes',
                'address': None, 'vendor': None, 'product': None}
        if source is not None:
            address = source.find('address')
            if dev.get('type') == 'pci' and address is not None:
                item['address'] = pci_address_text(address)
            elif dev.get('type') == 'usb':
                vendor, product = source.find('vendor'), source.find('product')
                item['vendor'] = vendor.get('id') if vendor is not None else None
                item['product'] = product.get('id') if product is not None else None
                if address is not None and address.get('bus') is not None:
                    item['address'] = '%d:%d' % (int(address.get('bus'), 0), int(address.get('device', '0'), 0))
            elif dev.get('type') == 'mdev' and address is not None:
                item['address'] = address.get('uuid')
        result.append(item)
    return result


def filesystems(domain):
    result = []
    for fs in domain.findall('devices/filesystem'):
        driver = fs.find('driver')
        result.append({
            'source': fs.find('source').get('dir') if fs.find('source') is not None else None,
            'target': fs.find('target').get('dir') if fs.find('target') is not None else None,
            'driver': driver.get('type') if driver is not None else None,
            'readonly': fs.find('readonly') is not None,
        })
    return result


def firmware(domain):
    """('efi' or 'bios', secure boot on?) from the os section."""
    os_elem = domain.find('os')
    if os_elem is None:
        return 'bios', False
    loader = os_elem.find('loader')
    efi = os_elem.get('firmware') == 'efi' or (loader is not None and loader.get('type') == 'pflash')
    secure = loader is not None and loader.get('secure') == 'yes'
    for feature in os_elem.findall('firmware/feature'):
        if feature.get('name') == 'secure-boot':
            secure = feature.get('enabled') == 'yes'
    return ('efi' if efi else 'bios'), secure


def tpm(domain):
    elem = domain.find('devices/tpm')
    if elem is None:
        return None
    backend = elem.find('backend')
    return {'model': elem.get('model'), 'backend': backend.get('type') if backend is not None else None,
            'version': backend.get('version') if backend is not None else None}


def graphics(domain):
    result = []
    for elem in domain.findall('devices/graphics'):
        listen = elem.find('listen')
        where = elem.get('listen')
        if listen is not None:
            where = listen.get('address') or listen.get('socket') or listen.get('network') or listen.get('type')
        result.append({'type': elem.get('type'), 'listen': where, 'port': elem.get('port')})
    return result


def summary(domain, state, autostart, persistent, addresses=None):
    """The domain_info entry of one domain element."""
    fw, secure = firmware(domain)
    os_type = domain.find('os/type')
    memory = domain.find('memory')
    current = domain.find('currentMemory')
    vcpu = text_of(domain, 'vcpu')
    return {
        'name': text_of(domain, 'name'),
        'uuid': text_of(domain, 'uuid'),
        'state': state,
        'autostart': autostart,
        'persistent': persistent,
        'domain_type': domain.get('type'),
        'arch': os_type.get('arch') if os_type is not None else None,
        'machine': os_type.get('machine') if os_type is not None else None,
        'vcpus': int(vcpu) if vcpu and vcpu.isdigit() else None,
        'memory_mib': _mib(memory),
        'current_memory_mib': _mib(current),
        'firmware': fw,
        'secure_boot': secure,
        'tpm': tpm(domain),
        'disks': disks(domain),
        'interfaces': interfaces(domain, addresses),
        'hostdevs': hostdevs(domain),
        'filesystems': filesystems(domain),
        'graphics': graphics(domain),
        'created_volumes': [{'pool': pool, 'volume': name} for pool, name in read_metadata(domain)['volumes']],
    }


def _mib(elem):
    if elem is None:
        return None
    size = element_quantity(elem)
    return None if size is None else size // MiB


def query(data, expression):
    """Evaluate a JMESPath expression over `data`; InvalidInput when it does not parse."""
    jmespath = require('jmespath', reason='for the query option')
    try:
        return jmespath.search(expression, data)
    except jmespath.exceptions.JMESPathError as exc:
        raise InvalidInput('query %r is not a valid JMESPath expression: %s' % (expression, exc))
