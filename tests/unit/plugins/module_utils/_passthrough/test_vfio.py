# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import glob
import os
import posixpath
import stat
import time

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.actions import ActionRecorder
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import CommandFailed, HostStateError, InvalidInput, NotFound
from ansible_collections.phyllome.os.plugins.module_utils._common.hostfs import HostFS
from ansible_collections.phyllome.os.plugins.module_utils._host import pci
from ansible_collections.phyllome.os.plugins.module_utils._passthrough import binding
from ansible_collections.phyllome.os.plugins.module_utils._passthrough import claims
from ansible_collections.phyllome.os.plugins.module_utils._passthrough import selection
from ansible_collections.phyllome.os.plugins.module_utils._passthrough import vfio
from ansible_collections.phyllome.os.tests.unit.plugins.module_utils._passthrough.vfio_host import (
    DRACUT_CONF,
    HOOK,
    MODULES_ALIAS,
    claim_file,
    debian_host,
    executable,
    fedora_host,
    regenerate,
)

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
            os.unlink(fs.path(posixpath.join(pci.SYSFS_PCI_DEVICES, value, 'driver'), follow=False))
        elif path == binding.SYSFS_DRIVERS_PROBE:
            override = fs.read_text(posixpath.join(pci.SYSFS_PCI_DEVICES, value, 'driver_override'))
            driver = self.host_drivers.get(value)
            if override != '(null)' and not self.ignore_override:
                driver = override
            if driver and fs.is_dir('/sys/bus/pci/drivers/' + driver):
                device_dir = pci.device_sysfs_path(fs, value)
                os.symlink(posixpath.relpath('/sys/bus/pci/drivers/' + driver, device_dir),
                           fs.path(device_dir + '/driver', follow=False))

    def run_command(self, argv, data=None, environ_update=None):
        self.commands.append(argv)
        if argv == ['modprobe', '--ignore-install', 'vfio-pci']:
            os.makedirs(self.fs.path('/sys/bus/pci/drivers/vfio-pci'))
        return 0, '', ''


@pytest.fixture
def amd(host_tree_copy):
    fs = HostFS(host_tree_copy(AMD))
    devices, usage, groups = selection.read_host(fs)
    host_drivers = dict((a, d['driver']) for a, d in devices.items())
    return fs, FakeKernel(fs, host_drivers), devices, usage, groups


@pytest.fixture(scope='module')
def amd_state(host_tree):
    return selection.read_host(HostFS(host_tree(AMD)))


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
    assert selection.select(devices, groups, **request_) == expected


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
        selection.select(devices, groups, **request_)


def test_check_claim_viable_group(amd_state):
    devices, usage, groups = amd_state
    selection.check_claim(devices, usage, groups, ['0000:01:00.0'])


def test_check_claim_wants_the_whole_group(amd_state):
    devices, usage, groups = amd_state
    with pytest.raises(HostStateError) as caught:
        selection.check_claim(devices, usage, groups, ['0000:0a:00.3'])
    # 0a:00.0 has no driver, so the kernel does not mind it; the others do.
    assert caught.value.details['devices'] == ['0000:0a:00.1', '0000:0a:00.4']
    assert '0000:0a:00.1 (ccp), 0000:0a:00.4 (snd_hda_intel)' in caught.value.msg
    selection.check_claim(devices, usage, groups, ['0000:0a:00.0', '0000:0a:00.1', '0000:0a:00.3', '0000:0a:00.4'])


def test_check_claim_unsafe_group_needs_force(amd_state):
    devices, usage, groups = amd_state
    gpu = ['0000:08:00.0', '0000:08:00.1']
    with pytest.raises(HostStateError, match='IOMMU group 5 is unsafe to pass: .*boot VGA.*Use force') as caught:
        selection.check_claim(devices, usage, groups, gpu)
    assert caught.value.details['devices'] == ['0000:08:00.0']
    selection.check_claim(devices, usage, groups, gpu, force=True)


def test_check_claim_never_takes_a_device_in_use(amd_state):
    devices, usage, groups = amd_state
    chipset = selection.select(devices, groups, addresses=['05:00.0'], whole_group=True)
    for force in (False, True):
        with pytest.raises(HostStateError, match='using now') as caught:
            selection.check_claim(devices, usage, groups, chipset, force=force)
        assert caught.value.details['devices'] == ['0000:02:00.1', '0000:04:00.0']
        assert 'sda3 (btrfs) is mounted at /' in caught.value.msg


def test_check_claim_without_iommu(amd_state):
    devices, usage, _groups = amd_state
    with pytest.raises(HostStateError, match='in no IOMMU group'):
        selection.check_claim(devices, usage, {}, ['0000:01:00.0'])


def _driver(fs, address):
    return fs.link_name(posixpath.join(pci.SYSFS_PCI_DEVICES, address, 'driver'))


def test_bind_release_and_idempotence(amd):
    fs, kernel, devices, _usage, _groups = amd
    recorder = ActionRecorder(run_command=kernel.run_command)
    result = binding.apply(fs, recorder, devices, ['0000:01:00.0'], 'vfio', write=kernel.write)
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
    result = binding.apply(fs, recorder, devices, ['0000:01:00.0'], 'vfio', write=kernel.write)
    assert (recorder.changed, result['drivers']) == (False, {'0000:01:00.0': 'vfio-pci'})

    # Back to the host: the override goes, nvme binds again.
    recorder = ActionRecorder(run_command=kernel.run_command)
    result = binding.apply(fs, recorder, devices, ['0000:01:00.0'], 'host', write=kernel.write)
    assert recorder.actions == ['clear driver_override of 0000:01:00.0', 'unbind 0000:01:00.0 from vfio-pci',
                                'probe 0000:01:00.0 (binds its host driver)']
    assert result['drivers'] == {'0000:01:00.0': 'nvme'}
    assert fs.read_text('/sys/bus/pci/devices/0000:01:00.0/driver_override') == '(null)'

    devices = pci.read_devices(fs)
    recorder = ActionRecorder(run_command=kernel.run_command)
    binding.apply(fs, recorder, devices, ['0000:01:00.0'], 'host', write=kernel.write)
    assert recorder.changed is False
    assert kernel.commands == [['modprobe', '--ignore-install', 'vfio-pci']]


def test_check_mode_changes_nothing(amd):
    fs, kernel, devices, _usage, _groups = amd
    recorder = ActionRecorder(check_mode=True, run_command=kernel.run_command)
    result = binding.apply(fs, recorder, devices, ['0000:08:00.0', '0000:08:00.1'], 'vfio', write=kernel.write)
    assert recorder.changed is True
    assert len(recorder.actions) == 7
    assert (kernel.writes, kernel.commands) == ([], [])
    assert _driver(fs, '0000:08:00.0') == 'amdgpu'
    assert result['previous_drivers'] == {'0000:08:00.0': 'amdgpu', '0000:08:00.1': 'snd_hda_intel'}
    assert result['drivers'] == {'0000:08:00.0': 'vfio-pci', '0000:08:00.1': 'vfio-pci'}


def test_unbound_device_is_only_probed(amd):
    fs, kernel, devices, _usage, _groups = amd
    os.makedirs(fs.path('/sys/bus/pci/drivers/vfio-pci'))
    recorder = ActionRecorder(run_command=kernel.run_command)
    binding.apply(fs, recorder, devices, ['0000:0a:00.0'], 'vfio', write=kernel.write)
    assert recorder.actions == ['set driver_override of 0000:0a:00.0 to vfio-pci', 'probe 0000:0a:00.0 (binds vfio-pci)']
    assert _driver(fs, '0000:0a:00.0') == 'vfio-pci'


def test_vfio_refusing_the_device_is_an_error(amd):
    fs, _kernel, devices, _usage, _groups = amd
    kernel = FakeKernel(fs, dict((a, d['driver']) for a, d in devices.items()), ignore_override=True)
    recorder = ActionRecorder(run_command=kernel.run_command)
    with pytest.raises(HostStateError, match='vfio-pci did not take 0000:01:00.0 \\(driver now: nvme\\)'):
        binding.apply(fs, recorder, devices, ['0000:01:00.0'], 'vfio', write=kernel.write)


def test_a_failed_sysfs_write_is_reported(tmp_path):
    fs = HostFS(str(tmp_path))
    with pytest.raises(HostStateError, match='writing .0000:01:00.0. to /sys/bus/pci/drivers_probe failed'):
        binding._sysfs_write(fs, binding.SYSFS_DRIVERS_PROBE, '0000:01:00.0')


def test_bad_state(amd):
    fs, kernel, devices, _usage, _groups = amd
    with pytest.raises(InvalidInput, match='state must be vfio or host'):
        binding.apply(fs, ActionRecorder(), devices, ['0000:01:00.0'], 'stub', write=kernel.write)


def test_apply_refuses_a_recorded_tree_without_a_fake_kernel(amd):
    fs, _kernel, devices, _usage, _groups = amd
    with pytest.raises(InvalidInput, match='acts on the running kernel'):
        binding.apply(fs, ActionRecorder(), devices, ['0000:01:00.0'], 'vfio')
    # Check mode only plans, so it works on a recorded tree.
    recorder = ActionRecorder(check_mode=True)
    assert binding.apply(fs, recorder, devices, ['0000:01:00.0'], 'vfio')['drivers'] == {'0000:01:00.0': 'vfio-pci'}


# --- At boot: recorded hosts (vfio_host), commands faked and asserted exactly -----------------


def run_ensure(host, check_mode=False, **kwargs):
    recorder = ActionRecorder(check_mode=check_mode, run_command=host.runner)
    context = claims.ClaimContext(HostFS(host.root), recorder)
    result = vfio.ensure(context, **kwargs)
    return result, recorder


@pytest.fixture
def fedora(tmp_path, host_spec):
    return fedora_host(tmp_path, host_spec)


@pytest.fixture
def debian(tmp_path, host_spec):
    return debian_host(tmp_path, host_spec)


def test_fedora_dracut_claim(fedora):
    result, recorder = run_ensure(fedora, addresses=['01:00.0'], runtime=False, persistent=True)
    assert fedora.runner.mutating_calls() == [
        ['/usr/bin/dracut', '--regenerate-all', '--force'],
        ['/usr/sbin/grubby', '--update-kernel=ALL', '--no-etc-grub-update', '--args=rd.driver.pre=vfio-pci'],
    ]
    assert fedora.read(claims.CLAIM_FILE) == claim_file(['0000:01:00.0'], ['nvme'])
    assert fedora.read(DRACUT_CONF) == (
        '# Written by phyllome.os.pci_passthrough (persistent: true); edit with that module, not by hand.\n'
        '# vfio-pci and the claims of /etc/modprobe.d/phyllome-vfio.conf go into the initramfs; the kernel\n'
        '# argument rd.driver.pre=vfio-pci loads vfio-pci there before udev loads host drivers.\n'
        'add_drivers+=" vfio_pci "\n'
        'install_items+=" /etc/modprobe.d/phyllome-vfio.conf "\n')
    # The images were rebuilt with the claim in place.
    assert fedora.read(fedora.images[0]) == 'image built with claims: %s' % claim_file(['0000:01:00.0'], ['nvme'])
    assert (result['method'], result['initramfs'], result['boot_claims']) == ('modprobe', 'dracut', ['0000:01:00.0'])
    assert result['files'] == [claims.CLAIM_FILE, DRACUT_CONF]
    assert result['kernel_cmdline']['backend'] == 'grubby'
    assert 'rd.driver.pre=vfio-pci' in fedora.read('/etc/default/grub')
    # The device stays with nvme until the reboot; the command line waits for it too.
    assert result['drivers'] == {'0000:01:00.0': 'nvme'} and result['reboot_required'] is True
    assert [d['before_header'] for d in result['diff']][:2] == [claims.CLAIM_FILE, DRACUT_CONF]

    # Again: nothing to write, the images are newer than the claim, the argument is there.
    result, recorder = run_ensure(fedora, addresses=['01:00.0'], runtime=False, persistent=True)
    assert recorder.actions == [] and len(fedora.runner.mutating_calls()) == 2
    assert result['reboot_required'] is True and result['diff'] == []


def test_fedora_whole_group_adds_to_the_claim_and_orders_every_host_module(fedora):
    run_ensure(fedora, addresses=['01:00.0'], runtime=False, persistent=True, kernel_args=False)
    result, _recorder = run_ensure(fedora, addresses=['0a:00.3'], whole_group=True, runtime=False, persistent=True,
                                   kernel_args=False)
    claimed = ['0000:01:00.0', '0000:0a:00.0', '0000:0a:00.1', '0000:0a:00.3', '0000:0a:00.4']
    assert result['boot_claims'] == claimed
    # xhci-pci is built into these kernels: no module to order, the install command unbinds the controller.
    assert fedora.read(claims.CLAIM_FILE) == claim_file(claimed, ['ccp', 'nvme', 'snd_hda_intel'])
    assert result['files'] == [claims.CLAIM_FILE] and result['kernel_cmdline'] is None
    assert [c[0] for c in fedora.runner.mutating_calls()] == ['/usr/bin/dracut', '/usr/bin/dracut']


def test_fedora_unsafe_group_is_refused_before_any_change(fedora):
    before = fedora.snapshot()
    with pytest.raises(HostStateError, match='IOMMU group 5 is unsafe'):
        run_ensure(fedora, addresses=['08:00.0'], whole_group=True, runtime=False, persistent=True)
    assert fedora.snapshot() == before and fedora.runner.mutating_calls() == []


def test_check_mode_plans_everything_and_changes_nothing(fedora):
    before = fedora.snapshot()
    result, recorder = run_ensure(fedora, check_mode=True, addresses=['01:00.0'], persistent=True)
    assert fedora.snapshot() == before and fedora.runner.mutating_calls() == []
    assert recorder.actions == [
        'load the vfio-pci module',
        'set driver_override of 0000:01:00.0 to vfio-pci',
        'unbind 0000:01:00.0 from nvme',
        'probe 0000:01:00.0 (binds vfio-pci)',
        'write /etc/modprobe.d/phyllome-vfio.conf',
        'write /etc/dracut.conf.d/phyllome-vfio.conf',
        'regenerate the initramfs: /usr/bin/dracut --regenerate-all --force',
        # What kernel_cmdline's code plans for grubby.
        'write /etc/default/grub',
        'write /etc/kernel/cmdline',
    ] + ['back up %s' % path[len(fedora.root):] for path in sorted(glob.glob(fedora.root + '/boot/loader/entries/*.conf'))] + [
        'back up /boot/grub2/grubenv',
        'chroot %s /usr/sbin/grubby --update-kernel=ALL --no-etc-grub-update --args=rd.driver.pre=vfio-pci' % fedora.root,
    ]
    assert result['drivers'] == {'0000:01:00.0': 'vfio-pci'}
    assert result['diff'][0] == {'before_header': 'PCI drivers', 'after_header': 'PCI drivers',
                                 'before': '0000:01:00.0: nvme\n', 'after': '0000:01:00.0: vfio-pci\n'}
    assert result['diff'][1]['after'] == claim_file(['0000:01:00.0'], ['nvme'])


def test_debian_initramfs_tools_claims_only_the_twins(debian):
    # 18:00.0 (boot NVMe) and 32:00.0 (default route) have identical twins: only the addresses named are claimed.
    result, _recorder = run_ensure(debian, addresses=['19:00.0', '32:00.1'], runtime=False, persistent=True)
    assert debian.runner.mutating_calls() == [['/usr/sbin/update-initramfs', '-u', '-k', 'all']]
    assert debian.read(claims.CLAIM_FILE) == claim_file(['0000:19:00.0', '0000:32:00.1'], ['i40e', 'nvme'])
    hook = debian.read(HOOK)
    assert hook.startswith('#!/bin/sh\n') and hook.endswith('. /usr/share/initramfs-tools/hook-functions\nforce_load vfio_pci\n')
    assert stat.S_IMODE(os.stat(os.path.join(debian.root, HOOK.lstrip('/'))).st_mode) == 0o755
    # initramfs-tools needs no kernel argument: the hook loads vfio-pci.
    assert result['kernel_cmdline'] is None and result['initramfs'] == 'initramfs-tools'
    assert 'vfio' not in debian.read('/etc/default/grub')


def test_debian_iommu_args_go_through_the_boot_loader(debian):
    result, _recorder = run_ensure(debian, addresses=['32:00.1'], runtime=False, persistent=True, iommu_args=True)
    assert debian.runner.mutating_calls() == [['/usr/sbin/update-initramfs', '-u', '-k', 'all'], ['/usr/sbin/update-grub']]
    assert 'GRUB_CMDLINE_LINUX="intel_iommu=on iommu=pt"' in debian.read('/etc/default/grub')
    assert result['kernel_cmdline']['pending_arguments'] == ['intel_iommu', 'iommu']


def test_debian_giving_back_shrinks_then_removes_the_claim(debian):
    run_ensure(debian, addresses=['19:00.0', '32:00.1'], runtime=False, persistent=True)
    result, _recorder = run_ensure(debian, addresses=['19:00.0'], state='host', runtime=False, persistent=True)
    assert debian.read(claims.CLAIM_FILE) == claim_file(['0000:32:00.1'], ['i40e'])
    assert result['files'] == [claims.CLAIM_FILE] and result['boot_claims'] == ['0000:32:00.1']
    # The device is still on nvme: nothing waits for a reboot.
    assert result['reboot_required'] is False
    result, recorder = run_ensure(debian, addresses=['32:00.1'], state='host', runtime=False, persistent=True)
    assert recorder.actions == ['remove /etc/modprobe.d/phyllome-vfio.conf', 'remove /etc/initramfs-tools/hooks/phyllome-vfio',
                                'regenerate the initramfs: /usr/sbin/update-initramfs -u -k all']
    assert not debian.exists(claims.CLAIM_FILE) and not debian.exists(HOOK)
    assert result['boot_claims'] == [] and len(debian.runner.mutating_calls()) == 3
    assert debian.read(debian.images[0]) == 'image built with claims: None'
    # Nothing left to give back.
    assert run_ensure(debian, addresses=['32:00.1'], state='host', runtime=False, persistent=True)[1].actions == []


def test_stale_image_is_regenerated(debian):
    run_ensure(debian, addresses=['32:00.1'], runtime=False, persistent=True)
    # An image built before the claim (a regeneration that never ran, an image copied back).
    image = os.path.join(debian.root, debian.images[0].lstrip('/'))
    os.utime(image, (time.time() - 3600, time.time() - 3600))
    _result, recorder = run_ensure(debian, addresses=['32:00.1'], runtime=False, persistent=True)
    assert recorder.actions == ['regenerate the initramfs: /boot/initrd.img-6.1.0-18-amd64 is older than the claim '
                                '(/usr/sbin/update-initramfs -u -k all)']


def test_failed_regeneration_restores_the_files_and_rebuilds(debian):
    seen = []
    debian.runner.effects['update-initramfs'] = regenerate(debian, seen, fail=lambda claims: claims is not None)
    before = debian.snapshot()
    with pytest.raises(CommandFailed) as caught:
        run_ensure(debian, addresses=['32:00.1'], runtime=False, persistent=True)
    assert 'update-initramfs failed (rc=1): E: /usr/share/initramfs-tools/hooks/phyllome-vfio failed' in caught.value.msg
    assert caught.value.details['restored_files'] == [HOOK, claims.CLAIM_FILE]
    # Rebuilt once more, without the claim: the images are as the restored files say.
    assert seen == [claim_file(['0000:32:00.1'], ['i40e']), None]
    after = debian.snapshot()
    assert dict((k, v) for k, v in after.items() if not k.startswith('boot/')) == \
        dict((k, v) for k, v in before.items() if not k.startswith('boot/'))


def test_driverctl_method(debian):
    executable(debian, '/usr/sbin/driverctl')
    result, recorder = run_ensure(debian, addresses=['32:00.1'], runtime=False, persistent=True)
    assert result['method'] == 'driverctl' and result['initramfs'] is None
    assert recorder.actions == ['create directory /etc/driverctl.d', 'write /etc/driverctl.d/pci-0000:32:00.1']
    assert debian.read('/etc/driverctl.d/pci-0000:32:00.1') == 'vfio-pci\n'
    assert debian.runner.mutating_calls() == [] and not debian.exists(claims.CLAIM_FILE)
    assert run_ensure(debian, addresses=['32:00.1'], runtime=False, persistent=True)[1].actions == []
    # An override to another driver is the admin's: giving devices back keeps it.
    debian.write('/etc/driverctl.d/pci-0000:19:00.0', 'nvme\n')
    result, recorder = run_ensure(debian, addresses=['19:00.0', '32:00.1'], state='host', runtime=False, persistent=True)
    assert recorder.actions == ['remove /etc/driverctl.d/pci-0000:32:00.1']
    assert debian.read('/etc/driverctl.d/pci-0000:19:00.0') == 'nvme\n' and result['boot_claims'] == []


def test_giving_back_removes_claims_of_either_method(debian):
    run_ensure(debian, addresses=['32:00.1'], runtime=False, persistent=True)
    executable(debian, '/usr/sbin/driverctl')
    result, _recorder = run_ensure(debian, addresses=['32:00.1'], state='host', runtime=False, persistent=True)
    assert result['method'] == 'driverctl' and result['initramfs'] == 'initramfs-tools'
    assert not debian.exists(claims.CLAIM_FILE)


@pytest.mark.parametrize('change, method, match', [
    (lambda host: host.write('/usr/lib/modules/6.1.0-18-amd64/modules.builtin', 'kernel/drivers/vfio/pci/vfio-pci.ko\n'),
     'auto', 'vfio-pci is built into the kernel 6.1.0-18-amd64'),
    (lambda host: host.write('/run/ostree-booted', ''), 'modprobe', 'rpm-ostree deployment'),
    (lambda host: os.unlink(os.path.join(host.root, 'usr/sbin/update-initramfs')), 'auto', 'no initramfs generator found'),
    (lambda host: None, 'driverctl', 'driverctl is not installed'),
])
def test_boot_claims_refused_where_they_cannot_work(debian, change, method, match):
    change(debian)
    before = debian.snapshot()
    with pytest.raises(HostStateError, match=match):
        run_ensure(debian, addresses=['32:00.1'], persistent=True, method=method)
    assert debian.snapshot() == before and debian.runner.calls == []


def test_runtime_and_boot_claim_together(tmp_path, host_spec):
    host = debian_host(tmp_path, host_spec)
    fs = HostFS(host.root)
    devices = pci.read_devices(fs)
    kernel = FakeKernel(fs, dict((a, d['driver']) for a, d in devices.items()))

    def run_command(argv, data=None, environ_update=None):
        if argv[0] == 'modprobe':
            return kernel.run_command(argv)
        return host.runner(argv, data=data, environ_update=environ_update)
    recorder = ActionRecorder(run_command=run_command)
    result = vfio.ensure(claims.ClaimContext(fs, recorder), ['32:00.1'], persistent=True, write=kernel.write)
    # Bound first (a refusal by vfio-pci leaves no claim behind), then claimed at boot.
    assert recorder.actions[:4] == ['load the vfio-pci module', 'set driver_override of 0000:32:00.1 to vfio-pci',
                                    'unbind 0000:32:00.1 from i40e', 'probe 0000:32:00.1 (binds vfio-pci)']
    assert kernel.commands == [['modprobe', '--ignore-install', 'vfio-pci']]
    assert result['drivers'] == {'0000:32:00.1': 'vfio-pci'} and result['reboot_required'] is False
    assert host.read(claims.CLAIM_FILE) == claim_file(['0000:32:00.1'], ['i40e'])


def test_a_failed_boot_claim_gives_the_bound_device_back(tmp_path, host_spec):
    host = debian_host(tmp_path, host_spec)
    fs = HostFS(host.root)
    devices = pci.read_devices(fs)
    kernel = FakeKernel(fs, dict((a, d['driver']) for a, d in devices.items()))
    # The initramfs refuses the new claim (and builds again without it).
    host.runner.effects['update-initramfs'] = regenerate(host, fail=lambda claimed: claimed is not None)

    def run_command(argv, data=None, environ_update=None):
        if argv[0] == 'modprobe':
            return kernel.run_command(argv)
        return host.runner(argv, data=data, environ_update=environ_update)
    recorder = ActionRecorder(run_command=run_command)
    with pytest.raises(CommandFailed):
        vfio.ensure(claims.ClaimContext(fs, recorder), ['32:00.1'], persistent=True, write=kernel.write)
    # The device is with its driver again, without an override; nothing is left changed
    # (the vfio-pci module loaded stays, and is no change to the device).
    assert fs.link_name('/sys/bus/pci/devices/0000:32:00.1/driver') == 'i40e'
    assert fs.read_text('/sys/bus/pci/devices/0000:32:00.1/driver_override') == '(null)'
    assert 'undo: give 0000:32:00.1 back (clear driver_override of 0000:32:00.1, unbind 0000:32:00.1 from ' \
        'vfio-pci, probe 0000:32:00.1 (binds its host driver))' in recorder.actions
    assert not host.exists(claims.CLAIM_FILE)


def test_failed_kernel_arguments_take_back_the_claim_and_the_binding(tmp_path, host_spec):
    host = debian_host(tmp_path, host_spec)
    fs = HostFS(host.root)
    devices = pci.read_devices(fs)
    kernel = FakeKernel(fs, dict((a, d['driver']) for a, d in devices.items()))
    host.runner.effects['update-grub'] = lambda argv: (1, '', 'error: out of memory.\n')
    grub_before = host.read('/etc/default/grub')

    def run_command(argv, data=None, environ_update=None):
        if argv[0] == 'modprobe':
            return kernel.run_command(argv)
        return host.runner(argv, data=data, environ_update=environ_update)
    recorder = ActionRecorder(run_command=run_command)
    with pytest.raises(CommandFailed, match='update-grub'):
        vfio.ensure(claims.ClaimContext(fs, recorder), ['32:00.1'], persistent=True, iommu_args=True,
                    write=kernel.write)
    assert host.read('/etc/default/grub') == grub_before
    assert not host.exists(claims.CLAIM_FILE)
    assert fs.link_name('/sys/bus/pci/devices/0000:32:00.1/driver') == 'i40e'
    assert any(a.startswith('undo: put back ') and claims.CLAIM_FILE in a for a in recorder.actions)


def test_boot_loader_refusal_comes_before_any_change(tmp_path, host_spec):
    # A GRUB_CMDLINE_LINUX the shell computes cannot be edited safely: the
    # kernel arguments are planned before the device is bound or claimed, so
    # the task fails with nothing changed (no claim file, no initramfs rebuilt).
    host = debian_host(tmp_path, host_spec)
    host.write('/etc/default/grub', host.read('/etc/default/grub') + 'GRUB_CMDLINE_LINUX="$(cat /etc/extra)"\n')
    before = host.snapshot()
    with pytest.raises(HostStateError, match='cannot edit GRUB_CMDLINE_LINUX safely'):
        run_ensure(host, addresses=['32:00.1'], runtime=True, persistent=True, iommu_args=True)
    assert host.snapshot() == before
    assert host.runner.mutating_calls() == []
    assert not host.exists(claims.CLAIM_FILE)


def test_nothing_to_do_is_an_error(debian):
    with pytest.raises(InvalidInput, match='runtime and persistent are both false'):
        run_ensure(debian, addresses=['32:00.1'], runtime=False)


@pytest.mark.parametrize('address, expected', [
    ('0000:19:00.0', ['nvme']),           # the class alias
    ('0000:32:00.1', ['i40e']),           # an ID alias
    ('0000:4b:00.0', ['nouveau']),        # vendor + class
    ('0000:02:00.0', []),                 # ast: not in this excerpt
])
def test_host_modules(host_tree, address, expected):
    fs = HostFS(host_tree('server-clean-groups'))
    aliases = [tuple(line.split()[1:]) for line in MODULES_ALIAS.splitlines() if line.startswith('alias pci:')]
    assert claims.host_modules(fs, address, aliases) == expected


def test_pci_aliases_leave_out_vfio_and_other_buses(tmp_path):
    host_root = str(tmp_path)
    os.makedirs(os.path.join(host_root, 'usr/lib/modules/6.1.0-18-amd64'))
    with open(os.path.join(host_root, 'usr/lib/modules/6.1.0-18-amd64/modules.alias'), 'w') as f:
        f.write(MODULES_ALIAS)
    with open(os.path.join(host_root, 'usr/lib/modules/6.1.0-18-amd64/modules.dep'), 'w') as f:
        f.write('kernel/drivers/nvme/host/nvme.ko: kernel/drivers/nvme/host/nvme-core.ko\n')
    # Modules of a kernel depmod never indexed carry no usable aliases.
    os.makedirs(os.path.join(host_root, 'usr/lib/modules/6.1.0-17-amd64'))
    fs = HostFS(host_root)
    assert [kernel.version for kernel in claims.indexed_kernels(fs)] == ['6.1.0-18-amd64']
    aliases = claims.pci_aliases(fs, claims.indexed_kernels(fs))
    assert ('pci:v*d*sv*sd*bc01sc08i02*', 'nvme') in aliases
    assert not [a for a in aliases if a[1].startswith('vfio') or not a[0].startswith('pci:')]
