# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Giving PCI devices to vfio-pci and back, now (the runtime half of pci_passthrough).

Binding follows the kernel's driver_override protocol, one device at a time:

    echo vfio-pci     > /sys/bus/pci/devices/<address>/driver_override
    echo <address>    > /sys/bus/pci/devices/<address>/driver/unbind
    echo <address>    > /sys/bus/pci/drivers_probe

driver_override (unlike vfio-pci's new_id) names one device, so a second
identical card stays with its driver, and the override keeps a later
rescan or hotplug from handing the device back. Giving a device back clears
the override, unbinds it from vfio-pci and probes again.

Selection and safety come first: devices are selected by address (IDs only
filter given addresses), a group must go whole, an unsafe group (see
iommu_groups) is refused unless forced, and a device the host uses now is
refused even when forced.
"""

from __future__ import annotations

import posixpath

from ansible_collections.phyllome.os.plugins.module_utils import iommu_groups, pci
from ansible_collections.phyllome.os.plugins.module_utils.errors import HostStateError, InvalidInput, NotFound

VFIO_DRIVER = 'vfio-pci'
# Drivers under which the kernel still counts a group as viable for VFIO.
_VFIO_SAFE_DRIVERS = frozenset((VFIO_DRIVER, 'pci-stub', None))
SYSFS_DRIVERS_PROBE = '/sys/bus/pci/drivers_probe'


def read_host(fs):
    """(devices, host usage, assessed groups by number) of the host under fs."""
    devices = pci.read_devices(fs, pci.read_ids(fs))
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
        address = pci.normalize_address(text)
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
            id_set.add('%s:%s' % (pci.normalize_id(vendor), pci.normalize_id(device)))
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


def _sysfs_write(fs, path, value):
    """Write one sysfs attribute (the kernel acts on the write); raise HostStateError with its words."""
    try:
        with open(fs.path(path), 'w') as f:
            f.write(value)
    except (OSError, IOError) as exc:
        raise HostStateError('writing %r to %s failed: %s' % (value.strip(), path, exc), path=path)


def plan_device(device, state):
    """The sysfs writes that move one device to `state` (vfio or host): [(description, path, value)]."""
    address = device['address']
    base = posixpath.join(pci.SYSFS_PCI_DEVICES, address)
    steps = []
    if state == 'vfio':
        if device['driver'] == VFIO_DRIVER and device['driver_override'] == VFIO_DRIVER:
            return steps
        if device['driver_override'] != VFIO_DRIVER:
            steps.append(('set driver_override of %s to vfio-pci' % address, base + '/driver_override', VFIO_DRIVER))
        if device['driver'] != VFIO_DRIVER:
            if device['driver']:
                steps.append(('unbind %s from %s' % (address, device['driver']), base + '/driver/unbind', address))
            steps.append(('probe %s (binds vfio-pci)' % address, SYSFS_DRIVERS_PROBE, address))
    else:
        if device['driver_override'] is None and device['driver'] != VFIO_DRIVER:
            return steps
        if device['driver_override'] is not None:
            # An empty write clears the override.
            steps.append(('clear driver_override of %s' % address, base + '/driver_override', '\n'))
        if device['driver'] == VFIO_DRIVER:
            steps.append(('unbind %s from vfio-pci' % address, base + '/driver/unbind', address))
            steps.append(('probe %s (binds its host driver)' % address, SYSFS_DRIVERS_PROBE, address))
    return steps


def apply(fs, recorder, devices, selected, state, write=None):
    """Move the `selected` devices to `state` through the recorder; return the result dict.

    write(fs, path, value) performs a sysfs write (tests give a fake kernel).
    Returns devices, previous_drivers, drivers (after; predicted in check
    mode) and diff.
    """
    if state not in ('vfio', 'host'):
        raise InvalidInput('state must be vfio or host, not %r' % (state,))
    write = write or _sysfs_write
    previous = dict((a, devices[a]['driver']) for a in selected)
    plans = dict((a, plan_device(devices[a], state)) for a in selected)
    if state == 'vfio' and any(plans.values()) and not fs.is_dir('/sys/bus/pci/drivers/' + VFIO_DRIVER):
        recorder.run(['modprobe', VFIO_DRIVER], description='load the vfio-pci module')
    for address in selected:
        for description, path, value in plans[address]:
            recorder.apply(description, write, fs, path, value)
    after = {}
    for address in selected:
        if recorder.check_mode or not plans[address]:
            after[address] = VFIO_DRIVER if state == 'vfio' else _predicted_host_driver(devices[address])
            continue
        driver = fs.link_name(posixpath.join(pci.SYSFS_PCI_DEVICES, address, 'driver'))
        if state == 'vfio' and driver != VFIO_DRIVER:
            raise HostStateError('vfio-pci did not take %s (driver now: %s); see the kernel log' % (address, driver),
                                 address=address, driver=driver)
        after[address] = driver
    return {
        'devices': list(selected),
        'previous_drivers': previous,
        'drivers': after,
        'diff': {'before': {'drivers': previous}, 'after': {'drivers': after}},
    }


def _predicted_host_driver(device):
    # Without probing, the host driver a released device gets is unknown,
    # unless it never left it.
    return device['driver'] if device['driver'] != VFIO_DRIVER else None
