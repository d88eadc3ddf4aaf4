# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A domain's XML as plain data: what phyllome.os.domain_info reports for one domain.

Also the domain module's reader of disks, NICs and hostdevs in a definition,
to check it before it reaches libvirt (the device sources themselves are
read by devices.py, which the comparison shares).
"""

from __future__ import annotations

from ansible_collections.phyllome.os.plugins.module_utils._common.units import MiB
from ansible_collections.phyllome.os.plugins.module_utils._domain.devices import disk_source, hostdev_source, interface_source
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import element_quantity, read_metadata, text_of


def disks(domain):
    """[{target, device, bus, type, path, pool, volume, format, readonly}] of a domain element."""
    result = []
    for disk in domain.findall('devices/disk'):
        kind, pool, name = disk_source(disk) or (None, None, None)
        target = disk.find('target')
        result.append({
            'target': target.get('dev') if target is not None else None,
            'bus': target.get('bus') if target is not None else None,
            'device': disk.get('device', 'disk'),
            'type': disk.get('type'),
            'path': name if kind in ('file', 'dev', 'dir') else None,
            'pool': pool,
            'volume': name if kind == 'volume' else None,
            'format': disk.find('driver').get('type') if disk.find('driver') is not None else None,
            'readonly': disk.find('readonly') is not None,
        })
    return result


def interface_macs(domain):
    """The MACs of a domain element's NICs (lower case, in device order)."""
    return [mac for mac in (_mac(nic) for nic in domain.findall('devices/interface')) if mac]


def _mac(nic):
    mac = nic.find('mac')
    return mac.get('address').lower() if mac is not None and mac.get('address') else None


def interfaces(domain, addresses=None):
    """[{mac, type, source, model, addresses, address_source}].

    `addresses` is {mac: (source, [address dicts])} as _domain.info.find_addresses returns it.
    """
    addresses = addresses or {}
    result = []
    for nic in domain.findall('devices/interface'):
        mac = _mac(nic)
        name = interface_source(nic)
        model = nic.find('model')
        backend = nic.find('backend')
        kind = nic.get('type')
        if kind == 'user' and backend is not None and backend.get('type') == 'passt':
            kind = 'passt'
        source, found = addresses.get(mac, (None, [])) if mac else (None, [])
        result.append({
            'mac': mac,
            'type': kind,
            'source': name,
            'model': model.get('type') if model is not None else None,
            'addresses': list(found),
            'address_source': source,
        })
    return result


def hostdevs(domain):
    """[{type, address, vendor, product, managed}] of a domain's host devices."""
    result = []
    for dev in domain.findall('devices/hostdev'):
        item = {'type': dev.get('type'), 'managed': dev.get('managed') == 'yes'}
        item.update(hostdev_source(dev))
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


# The osinfo metadata virt-install, virt-manager and GNOME Boxes write
# (<libosinfo:os id='http://microsoft.com/win/11'/>), and the OS family of an
# id by its publisher's domain: osinfo's own database is not on every host.
OSINFO_NS = 'http://libosinfo.org/xmlns/libvirt/domain/1.0'
OSINFO_FAMILIES = {
    'windows': ('microsoft.com',),
    'linux': ('libosinfo.org/linux', 'fedoraproject.org', 'redhat.com', 'centos.org', 'almalinux.org',
              'rockylinux.org', 'oracle.com', 'debian.org', 'ubuntu.com', 'linuxmint.com', 'opensuse.org',
              'suse.com', 'archlinux.org', 'alpinelinux.org', 'gentoo.org', 'mageia.org', 'nixos.org',
              'voidlinux.org', 'slackware.com', 'clearlinux.org', 'endlessos.com', 'elementary.io', 'pop-os.org',
              'manjaro.org', 'kali.org'),
    'bsd': ('freebsd.org', 'openbsd.org', 'netbsd.org', 'dragonflybsd.org'),
}


def osinfo(domain):
    """{id, family} of a domain's osinfo metadata, or None; family is linux, windows, bsd or other."""
    elem = domain.find('metadata/{%s}libosinfo/{%s}os' % (OSINFO_NS, OSINFO_NS))
    if elem is None or not elem.get('id'):
        return None
    os_id = elem.get('id')
    where = os_id.split('://', 1)[-1]
    for family, prefixes in OSINFO_FAMILIES.items():
        if any(where == p or where.startswith(p + '/') for p in prefixes):
            return {'id': os_id, 'family': family}
    return {'id': os_id, 'family': 'other'}


def summary(domain, state, autostart, persistent, addresses=None):
    """The domain_info entry of one domain element."""
    fw, secure = firmware(domain)
    os_type = domain.find('os/type')
    memory = domain.find('memory')
    current = domain.find('currentMemory')
    vcpu = text_of(domain, 'vcpu')
    online = domain.find('vcpu').get('current') if domain.find('vcpu') is not None else None
    return {
        'name': text_of(domain, 'name'),
        'uuid': text_of(domain, 'uuid'),
        'state': state,
        'autostart': autostart,
        'persistent': persistent,
        'domain_type': domain.get('type'),
        'arch': os_type.get('arch') if os_type is not None else None,
        'machine': os_type.get('machine') if os_type is not None else None,
        'vcpus': int(online) if online and online.isdigit() else int(vcpu) if vcpu and vcpu.isdigit() else None,
        'max_vcpus': int(vcpu) if vcpu and vcpu.isdigit() else None,
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
        'os': osinfo(domain),
    }


def _mib(elem):
    if elem is None:
        return None
    size = element_quantity(elem)
    return None if size is None else size // MiB
