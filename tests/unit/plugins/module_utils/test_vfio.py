# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
import posixpath

import pytest

from ansible_collections.phyllome.os.plugins.module_utils import pci, vfio
from ansible_collections.phyllome.os.plugins.module_utils.actions import ActionRecorder
from ansible_collections.phyllome.os.plugins.module_utils.errors import HostStateError, InvalidInput, NotFound
from ansible_collections.phyllome.os.plugins.module_utils.hostfs import HostFS

AMD = 'amd-desktop-chipset-group'


class FakeKernel:
    """Acts on sysfs writes the way the PCI core does, inside a recorded tree.

    driver_override stores the name (an empty write clears it); driver/unbind
    removes the driver link; drivers_probe binds the override, or else the
    device's host driver. `ignore_override` plays a vfio-pci that refuses.
    """

    def __init__(self, fs, host_drivers, ignore_override=False):
        self.fs = fs
        self.host_drivers = host_drivers
        self.ignore_override = ignore_override
        self.writes = []
        self.commands = []

    def write(self, fs, path, value):
        self.writes.append((path, value))
        if path.endswith('/driver_override'):
            with open(fs.path(path), 'w') as f:
                f.write((value.strip() or '(null)') + '\n')
        elif path.endswith('/driver/unbind'):
            os.unlink(fs.path(posixpath.join(pci.SYSFS_PCI_DEVICES, value, 'driver')))
        elif path == vfio.SYSFS_DRIVERS_PROBE:
            override = fs.read_text(posixpath.join(pci.SYSFS_PCI_DEVICES, value, 'driver_override'))
            driver = self.host_drivers.get(value)
            if override != '(null)' and not self.ignore_override:
                driver = override
            if driver and fs.is_dir('/sys/bus/pci/drivers/' + driver):
                device_dir = pci.device_sysfs_path(fs, value)
                os.symlink(posixpath.relpath('/sys/bus/pci/drivers/' + driver, device_dir),
                           fs.path(device_dir + '/driver'))

    def run_command(self, argv, data=None, environ_update=None):
        self.commands.append(argv)
        if argv == ['modprobe', 'vfio-pci']:
            os.makedirs(self.fs.path('/sys/bus/pci/drivers/vfio-pci'))
        return 0, '', ''


@pytest.fixture
def amd(host_tree_copy):
    fs = HostFS(host_tree_copy(AMD))
    devices, usage, groups = vfio.read_host(fs)
    host_drivers = dict((a, d['driver']) for a, d in devices.items())
    return fs, FakeKernel(fs, host_drivers), devices, usage, groups


@pytest.fixture(scope='module')
def amd_state(host_tree):
    return vfio.read_host(HostFS(host_tree(AMD)))


@pytest.mark.parametrize('request_, expected', [
    (dict(addresses=['01:00.0']), ['0000:01:00.0']),
    (dict(addresses=['0000:08:00.0', '08:00.0']), ['0000:08:00.0']),
    (dict(addresses=['08:00.0'], whole_group=True), ['0000:08:00.0', '0000:08:00.1']),
    (dict(addresses=['0a:00.3'], whole_group=True), ['0000:0a:00.0', '0000:0a:00.1', '0000:0a:00.3', '0000:0a:00.4']),
    # IDs filter the addresses given: here only the GPU function matches.
    (dict(addresses=['08:00.0', '08:00.1'], ids=['1002:73FF']), ['0000:08:00.0']),
])
def test_select(amd_state, request_, expected):
    devices, _usage, groups = amd_state
    assert vfio.select(devices, groups, **request_) == expected


@pytest.mark.parametrize('request_, error, match', [
    (dict(ids=['1002:73ff']), InvalidInput, 'IDs only filter the given addresses'),
    (dict(addresses=['0000:42:00.0']), NotFound, 'no PCI device at 0000:42:00.0'),
    (dict(addresses=['08:00.1'], ids=['1002:73ff']), NotFound, 'none of 08:00.1 has the ID 1002:73ff'),
    (dict(addresses=['08:00.0'], ids=['1002']), InvalidInput, 'not a vendor:device ID'),
    (dict(addresses=['00:03.1']), InvalidInput, 'is a PCI bridge'),
    (dict(addresses=['8:00.0']), InvalidInput, 'not a PCI address'),
])
def test_select_rejects(amd_state, request_, error, match):
    devices, _usage, groups = amd_state
    with pytest.raises(error, match=match):
        vfio.select(devices, groups, **request_)


def test_check_claim_viable_group(amd_state):
    devices, usage, groups = amd_state
    vfio.check_claim(devices, usage, groups, ['0000:01:00.0'])


def test_check_claim_wants_the_whole_group(amd_state):
    devices, usage, groups = amd_state
    with pytest.raises(HostStateError) as caught:
        vfio.check_claim(devices, usage, groups, ['0000:0a:00.3'])
    # 0a:00.0 has no driver, so the kernel does not mind it; the others do.
    assert caught.value.details['devices'] == ['0000:0a:00.1', '0000:0a:00.4']
    assert '0000:0a:00.1 (ccp), 0000:0a:00.4 (snd_hda_intel)' in caught.value.msg
    vfio.check_claim(devices, usage, groups, ['0000:0a:00.0', '0000:0a:00.1', '0000:0a:00.3', '0000:0a:00.4'])


def test_check_claim_unsafe_group_needs_force(amd_state):
    devices, usage, groups = amd_state
    gpu = ['0000:08:00.0', '0000:08:00.1']
    with pytest.raises(HostStateError, match='IOMMU group 5 is unsafe to pass: .*boot VGA.*Use force') as caught:
        vfio.check_claim(devices, usage, groups, gpu)
    assert caught.value.details['devices'] == ['0000:08:00.0']
    vfio.check_claim(devices, usage, groups, gpu, force=True)


def test_check_claim_never_takes_a_device_in_use(amd_state):
    devices, usage, groups = amd_state
    chipset = vfio.select(devices, groups, addresses=['05:00.0'], whole_group=True)
    for force in (False, True):
        with pytest.raises(HostStateError, match='using now') as caught:
            vfio.check_claim(devices, usage, groups, chipset, force=force)
        assert caught.value.details['devices'] == ['0000:02:00.1', '0000:04:00.0']
        assert 'sda3 (btrfs) is mounted at /' in caught.value.msg


def test_check_claim_without_iommu(amd_state):
    devices, usage, _groups = amd_state
    with pytest.raises(HostStateError, match='in no IOMMU group'):
        vfio.check_claim(devices, usage, {}, ['0000:01:00.0'])


def _driver(fs, address):
    return fs.link_name(posixpath.join(pci.SYSFS_PCI_DEVICES, address, 'driver'))


def test_bind_release_and_idempotence(amd):
    fs, kernel, devices, _usage, _groups = amd
    recorder = ActionRecorder(run_command=kernel.run_command)
    result = vfio.apply(fs, recorder, devices, ['0000:01:00.0'], 'vfio', write=kernel.write)
    assert recorder.actions == ['load the vfio-pci module', 'set driver_override of 0000:01:00.0 to vfio-pci',
                                'unbind 0000:01:00.0 from nvme', 'probe 0000:01:00.0 (binds vfio-pci)']
    assert kernel.writes == [
        ('/sys/bus/pci/devices/0000:01:00.0/driver_override', 'vfio-pci'),
        ('/sys/bus/pci/devices/0000:01:00.0/driver/unbind', '0000:01:00.0'),
        ('/sys/bus/pci/drivers_probe', '0000:01:00.0'),
    ]
    assert (result['previous_drivers'], result['drivers']) == ({'0000:01:00.0': 'nvme'}, {'0000:01:00.0': 'vfio-pci'})
    assert _driver(fs, '0000:01:00.0') == 'vfio-pci'

    # Again: nothing to do.
    devices = pci.read_devices(fs)
    recorder = ActionRecorder(run_command=kernel.run_command)
    result = vfio.apply(fs, recorder, devices, ['0000:01:00.0'], 'vfio', write=kernel.write)
    assert (recorder.changed, result['drivers']) == (False, {'0000:01:00.0': 'vfio-pci'})

    # Back to the host: the override goes, nvme binds again.
    recorder = ActionRecorder(run_command=kernel.run_command)
    result = vfio.apply(fs, recorder, devices, ['0000:01:00.0'], 'host', write=kernel.write)
    assert recorder.actions == ['clear driver_override of 0000:01:00.0', 'unbind 0000:01:00.0 from vfio-pci',
                                'probe 0000:01:00.0 (binds its host driver)']
    assert result['drivers'] == {'0000:01:00.0': 'nvme'}
    assert fs.read_text('/sys/bus/pci/devices/0000:01:00.0/driver_override') == '(null)'

    devices = pci.read_devices(fs)
    recorder = ActionRecorder(run_command=kernel.run_command)
    vfio.apply(fs, recorder, devices, ['0000:01:00.0'], 'host', write=kernel.write)
    assert recorder.changed is False
    assert kernel.commands == [['modprobe', 'vfio-pci']]


def test_check_mode_changes_nothing(amd):
    fs, kernel, devices, _usage, _groups = amd
    recorder = ActionRecorder(check_mode=True, run_command=kernel.run_command)
    result = vfio.apply(fs, recorder, devices, ['0000:08:00.0', '0000:08:00.1'], 'vfio', write=kernel.write)
    assert recorder.changed is True
    assert len(recorder.actions) == 7
    assert (kernel.writes, kernel.commands) == ([], [])
    assert _driver(fs, '0000:08:00.0') == 'amdgpu'
    assert result['diff'] == {
        'before': {'drivers': {'0000:08:00.0': 'amdgpu', '0000:08:00.1': 'snd_hda_intel'}},
        'after': {'drivers': {'0000:08:00.0': 'vfio-pci', '0000:08:00.1': 'vfio-pci'}},
    }


def test_unbound_device_is_only_probed(amd):
    fs, kernel, devices, _usage, _groups = amd
    os.makedirs(fs.path('/sys/bus/pci/drivers/vfio-pci'))
    recorder = ActionRecorder(run_command=kernel.run_command)
    vfio.apply(fs, recorder, devices, ['0000:0a:00.0'], 'vfio', write=kernel.write)
    assert recorder.actions == ['set driver_override of 0000:0a:00.0 to vfio-pci', 'probe 0000:0a:00.0 (binds vfio-pci)']
    assert _driver(fs, '0000:0a:00.0') == 'vfio-pci'


def test_vfio_refusing_the_device_is_an_error(amd):
    fs, _kernel, devices, _usage, _groups = amd
    kernel = FakeKernel(fs, dict((a, d['driver']) for a, d in devices.items()), ignore_override=True)
    recorder = ActionRecorder(run_command=kernel.run_command)
    with pytest.raises(HostStateError, match='vfio-pci did not take 0000:01:00.0 \\(driver now: nvme\\)'):
        vfio.apply(fs, recorder, devices, ['0000:01:00.0'], 'vfio', write=kernel.write)


def test_a_failed_sysfs_write_is_reported(tmp_path):
    fs = HostFS(str(tmp_path))
    with pytest.raises(HostStateError, match='writing .0000:01:00.0. to /sys/bus/pci/drivers_probe failed'):
        vfio._sysfs_write(fs, vfio.SYSFS_DRIVERS_PROBE, '0000:01:00.0')


def test_bad_state(amd):
    fs, kernel, devices, _usage, _groups = amd
    with pytest.raises(InvalidInput, match='state must be vfio or host'):
        vfio.apply(fs, ActionRecorder(), devices, ['0000:01:00.0'], 'stub', write=kernel.write)
