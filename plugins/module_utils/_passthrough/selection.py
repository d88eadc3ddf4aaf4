# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which PCI devices a pci_passthrough request designates, and whether they may go to vfio-pci.

Selection and safety come first: devices are selected by address (IDs only
filter given addresses), a group must go whole, an unsafe group (see
_host.iommu_groups) is refused unless forced, and a device the host uses now is
refused even when forced.
"""

from __future__ import annotations

from ansible_collections.phyllome.os.plugins.module_utils._common.device_ids import normalize_id, normalize_pci_address
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import HostStateError, InvalidInput, NotFound
from ansible_collections.phyllome.os.plugins.module_utils._host import iommu_groups, pci, pci_ids

VFIO_DRIVER = 'vfio-pci'
# Drivers under which the kernel still counts a group as viable for VFIO.
_VFIO_SAFE_DRIVERS = frozenset((VFIO_DRIVER, 'pci-stub', None))
# Where a request puts its devices: given to vfio-pci, or back to the host.
STATES = ('vfio', 'host')


def read_host(fs):
    """(devices, host usage, assessed groups by number) of the host under fs."""
    devices = pci.read_devices(fs, pci_ids.read_ids(fs))
    usage = iommu_groups.host_usage(fs)
    groups = dict((g['group'], g) for g in iommu_groups.assess(fs, devices, usage))
    return devices, usage, groups


def select(devices, groups, addresses=(), ids=(), whole_group=False):
    """The sorted addresses a request designates.

    addresses: PCI addresses (short forms accepted); ids: vendor:device IDs
    that filter `addresses`, never the whole host (binding by ID alone is how
    roles grab every identical card); whole_group: add every endpoint of the
    groups of the selected devices.
    """
    if not addresses:
        raise InvalidInput('name the devices by address: vendor:device IDs only filter the given addresses, '
                           'so that an identical card elsewhere is never taken')
    wanted = []
    for text in addresses:
        address = normalize_pci_address(text)
        if address not in devices:
            raise NotFound('no PCI device at %s' % address, address=address)
        if address not in wanted:
            wanted.append(address)
    if ids:
        id_set = set()
        for text in ids:
            vendor, sep, device = str(text).partition(':')
            if not sep:
                raise InvalidInput('%r is not a vendor:device ID (e.g. 10de:2520)' % (text,))
            id_set.add('%s:%s' % (normalize_id(vendor), normalize_id(device)))
        wanted = [a for a in wanted if devices[a]['vendor_device'] in id_set]
        if not wanted:
            raise NotFound('none of %s has the ID %s' % (', '.join(addresses), ', '.join(sorted(id_set))))
    if whole_group:
        for address in list(wanted):
            group = groups.get(devices[address]['iommu_group'])
            if group is None:
                continue
            for member in group['endpoints']:
                if member not in wanted:
                    wanted.append(member)
    for address in wanted:
        if devices[address]['bridge']:
            raise InvalidInput('%s is a PCI bridge: bridges stay with the host (pass the devices behind it)'
                               % address)
    return sorted(wanted)


def check_claim(devices, usage, groups, selected, force=False):
    """Raise unless the devices `selected` can be given to vfio-pci now."""
    in_use = [(a, u['message']) for a in selected for u in usage.get(a, [])]
    if in_use:
        # Not even with force: taking a device from under a mounted file
        # system or a live route breaks the host at once.
        raise HostStateError('refusing to take devices the host is using now: %s' % '; '.join(
            '%s (%s)' % use for use in in_use), devices=sorted(set(a for a, _message in in_use)))
    for address in selected:
        number = devices[address]['iommu_group']
        if number is None or number not in groups:
            raise HostStateError('%s is in no IOMMU group: the IOMMU is off or does not cover it, so VFIO cannot '
                                 'isolate it (see phyllome.os.iommu_info)' % address, address=address)
    for number in sorted(set(devices[a]['iommu_group'] for a in selected)):
        group = groups[number]
        left = [a for a in group['endpoints'] if a not in selected and devices[a]['driver'] not in _VFIO_SAFE_DRIVERS]
        if left:
            raise HostStateError(
                'IOMMU group %d also holds %s, bound to host drivers; a group goes to a guest whole: select them '
                'too (whole_group)' % (number, ', '.join('%s (%s)' % (a, devices[a]['driver']) for a in left)),
                group=number, devices=left)
        if group['verdict'] == iommu_groups.VERDICT_UNSAFE and not force:
            offending = sorted(set(d for r in group['reasons'] for d in r['devices']))
            raise HostStateError(
                'IOMMU group %d is unsafe to pass: %s. Use force to pass it anyway' % (
                    number, '; '.join(r['message'] for r in group['reasons'])),
                group=number, devices=offending)
