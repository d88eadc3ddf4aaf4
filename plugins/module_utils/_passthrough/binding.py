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
"""

from __future__ import annotations

import posixpath

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import HostStateError, InvalidInput
from ansible_collections.phyllome.os.plugins.module_utils._host import pci
from ansible_collections.phyllome.os.plugins.module_utils._passthrough.selection import STATES, VFIO_DRIVER

SYSFS_DRIVERS_PROBE = '/sys/bus/pci/drivers_probe'


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


def apply(fs, recorder, devices, selected, state, write=None, steps=None):
    """Move the `selected` devices to `state` through the recorder; return the result dict.

    write(fs, path, value) performs a sysfs write (tests give a fake kernel).
    steps: a dict that gets {address: [indexes of its recorded actions]}, for
    undo(). Returns devices, previous_drivers and drivers (after; predicted
    in check mode).
    """
    if state not in STATES:
        raise InvalidInput('state must be vfio or host, not %r' % (state,))
    previous = dict((a, devices[a]['driver']) for a in selected)
    plans = dict((a, plan_device(devices[a], state)) for a in selected)
    if write is None:
        if any(plans.values()) and not fs.is_live and not recorder.check_mode:
            raise InvalidInput('binding devices acts on the running kernel, which %s is not: use root=/, check mode, '
                               'or runtime=false' % fs.root)
        write = _sysfs_write
    if state == 'vfio' and any(plans.values()) and not fs.is_dir('/sys/bus/pci/drivers/' + VFIO_DRIVER):
        # --ignore-install: the boot claim's install command would also take
        # every device claimed for the next boot, now.
        recorder.run(['modprobe', '--ignore-install', VFIO_DRIVER], description='load the vfio-pci module')
    for address in selected:
        for description, path, value in plans[address]:
            if steps is not None:
                steps.setdefault(address, []).append(recorder.mark())
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
    return {'devices': list(selected), 'previous_drivers': previous, 'drivers': after}


def undo(fs, recorder, devices, state, steps, write=None):
    """Give back the devices apply() moved to `state` (steps: what apply() filled in), after a later failure.

    Each device goes the other way from where it is now (a device given to
    vfio-pci: override cleared, unbound, probed, so its host driver takes it
    again), as one undo per device through the recorder. Returns True when
    every device went back.
    """
    write = write or _sysfs_write
    back_to = 'host' if state == 'vfio' else 'vfio'
    complete = True
    for address in reversed(list(steps)):
        base = posixpath.join(pci.SYSFS_PCI_DEVICES, address)
        override = fs.read_text(base + '/driver_override')
        now = dict(devices[address], driver=fs.link_name(base + '/driver'),
                   driver_override=None if override in (None, '', '(null)') else override)
        back = plan_device(now, back_to)
        description = 'give %s back (%s)' % (address, ', '.join(d for d, dummy, dummy2 in back) or 'nothing to do')
        complete = recorder.undo(steps[address], description, _write_all, fs, back, write) and complete
    return complete


def _write_all(fs, steps, write):
    for dummy, path, value in steps:
        write(fs, path, value)


def _predicted_host_driver(device):
    # Without probing, the host driver a released device gets is unknown,
    # unless it never left it.
    return device['driver'] if device['driver'] != VFIO_DRIVER else None
