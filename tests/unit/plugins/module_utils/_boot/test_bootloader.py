# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backends on recorded hosts: the exact commands, the exact files, check mode, rollback."""

from __future__ import annotations

import os
import re

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._boot import context
from ansible_collections.phyllome.os.plugins.module_utils._boot import formats
from ansible_collections.phyllome.os.plugins.module_utils._boot.kernel_args import ensure_kernel_args
from ansible_collections.phyllome.os.plugins.module_utils._common import files
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import CommandFailed, HostStateError, InvalidInput
from ansible_collections.phyllome.os.tests.unit.plugins.module_utils._boot.bootloader_host import Host, fake_update_grub, grubenv_block

IOMMU = ['intel_iommu=on', 'iommu=pt', 'rd.driver.pre=vfio-pci']
MID = '8f3e1c2a9b7d4e6f8a0b1c2d3e4f5a6b'
F40_ENTRIES = ['/boot/loader/entries/%s-0-rescue.conf' % MID,
               '/boot/loader/entries/%s-6.8.5-301.fc40.x86_64.conf' % MID,
               '/boot/loader/entries/%s-6.8.9-300.fc40.x86_64.conf' % MID]
F40_ROOT = 'root=UUID=6b3f0c8e-2f4e-4f6b-9a51-0f3c1d2e4a77 ro rootflags=subvol=root'


# --- fakes of the mutating commands, acting on the recorded tree ---------------------

def options_of(host, path):
    return formats.bls_options(formats.parse_bls_entry(host.read(path)))


def set_options(host, path, options):
    text = host.read(path)
    host.write(path, re.sub(r'(?m)^options .*$', lambda m: 'options ' + options, text))


def grubenv(host):
    return formats.parse_grubenv(host.read('/boot/grub2/grubenv'))


def fedora_grubby(host):
    """grubby-bls as Fedora ships it: remove every named arg, append --args (update_args)."""
    def update(args, remove, add):
        words = args.split()
        for arg in remove:
            if '=' in arg:
                if arg in words:
                    words.remove(arg)
            else:
                words = [w for w in words if w != arg and not w.startswith(arg + '=')]
        for arg in add:
            name = arg.rsplit('=', 1)[0]
            words = [w for w in words if w != name and not w.startswith(name + '=')]
        return ' '.join(words + add)

    def run(argv):
        opts = dict(a.split('=', 1) for a in argv[1:] if '=' in a)
        remove, add = opts.get('--remove-args', '').split(), opts.get('--args', '').split()
        env = grubenv(host)
        entries = sorted(os.listdir(os.path.join(host.root, 'boot/loader/entries')))
        if opts['--update-kernel'] == 'ALL':
            if 'kernelopts' in env:
                env['kernelopts'] = update(env['kernelopts'], remove, add)
                host.write('/boot/grub2/grubenv', grubenv_block(['%s=%s' % kv for kv in env.items()]))
        else:
            info = formats.parse_grubby_info(host.runner.recorded['grubby --info=DEFAULT'])[0]
            entries = [info['id'] + '.conf']
        for name in entries:
            path = '/boot/loader/entries/' + name
            options = options_of(host, path)
            if opts['--update-kernel'] == 'ALL' and '$kernelopts' in options.split():
                continue
            # grubby expands the variables that are set, keeps the others.
            words = [env.get(w[1:], w) if w.startswith('$') and env.get(w[1:]) else w for w in options.split()]
            set_options(host, path, update(' '.join(words), remove, add))
        return 0, '', ''
    return run


def rhel7_style_grubby(host):
    """A grubby that replaces a key's value in place instead (as grubby-bls did in 2018)."""
    def run(argv):
        for path in F40_ENTRIES:
            set_options(host, path, options_of(host, path).replace('quiet', 'quiet intel_iommu=on'))
        return 0, '', ''
    return run


def failing(rc=1, err='error'):
    return lambda argv: (rc, '', err)


def rpm_ostree(host):
    """rpm-ostree kargs: delete then append, the next `rpm-ostree kargs` shows the pending deployment."""
    def run(argv):
        words = host.runner.recorded['rpm-ostree kargs'].split()
        for arg in argv[2:]:
            option, value = arg.split('=', 1)
            if option == '--delete':
                words.remove(value)
            else:
                words.append(value)
        host.runner.recorded['rpm-ostree kargs'] = ' '.join(words) + '\n'
        return 0, '', ''
    return run


def reboot(host, cmdline):
    host.write('/proc/cmdline', cmdline + '\n')


# --- detection -----------------------------------------------------------------------

@pytest.mark.parametrize('tree, backend', [
    ('fcos-rpm-ostree', 'rpm-ostree'),
    ('fedora40-grubby', 'grubby'),
    ('fedora31-kernelopts', 'grubby'),
    ('fedora40-systemd-boot', 'kernel-install'),
    ('debian12-grub', 'grub'),
    ('ubuntu2204-cloud-grub', 'grub'),
])
def test_auto_detection(tmp_path, tree, backend):
    assert Host(tmp_path, tree).open().name == backend


def test_detection_order(tmp_path):
    host = Host(tmp_path, 'fedora40-grubby')
    # systemd-boot's loader.conf means the BLS entries are not GRUB's: grubby is not for them.
    host.write('/boot/efi/loader/loader.conf', 'timeout 3\n')
    assert host.open().name == 'kernel-install'
    # An ostree-booted host is rpm-ostree's, whatever else it has.
    host.write('/run/ostree-booted', '')
    host.write('/usr/bin/rpm-ostree', '')
    os.chmod(os.path.join(host.root, 'usr/bin/rpm-ostree'), 0o755)
    assert host.open().name == 'rpm-ostree'


def test_nothing_found(tmp_path):
    host = Host(tmp_path, 'debian12-grub')
    os.unlink(os.path.join(host.root, 'etc/default/grub'))
    with pytest.raises(HostStateError, match='no supported boot configuration found'):
        host.open()


@pytest.mark.parametrize('backend, message', [
    ('rpm-ostree', 'not booted by ostree'),
    ('grubby', 'grubby is not installed'),
    ('kernel-install', 'kernel-install is not installed'),
])
def test_explicit_backend_must_fit_the_host(tmp_path, backend, message):
    with pytest.raises(HostStateError, match=message):
        Host(tmp_path, 'debian12-grub').open(backend=backend)


def test_grub_without_regeneration_command(tmp_path):
    host = Host(tmp_path, 'debian12-grub')
    for name in ('usr/sbin/update-grub', 'usr/sbin/grub-mkconfig'):
        os.unlink(os.path.join(host.root, name))
    with pytest.raises(HostStateError, match='neither update-grub nor grub-mkconfig'):
        host.open()


@pytest.mark.parametrize('backend, kernels, message', [
    ('bogus', 'all', 'backend must be one of'),
    ('auto', 'newest', 'kernels must be one of'),
])
def test_bad_options(tmp_path, backend, kernels, message):
    with pytest.raises(InvalidInput, match=message):
        Host(tmp_path, 'debian12-grub').open(backend=backend, kernels=kernels)


# --- grub (Debian, Ubuntu) ---------------------------------------------------------------

DEBIAN_RUNNING = 'BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=UUID=2f5b6c1e-7d8a-4e3b-9c0d-1a2b3c4d5e6f ro'


def test_grub_check_mode_changes_nothing(tmp_path):
    host = Host(tmp_path, 'debian12-grub')
    before = host.snapshot()
    result = ensure_kernel_args(host.open(check_mode=True), present=IOMMU, absent=['quiet'])
    assert host.snapshot() == before
    assert host.runner.calls == []
    assert host.recorder.actions == ['write /etc/default/grub', 'back up /boot/grub/grub.cfg',
                                     'chroot %s /usr/sbin/update-grub' % host.root]
    assert result['cmdline_before'] == 'quiet'
    assert result['cmdline_after'] == 'intel_iommu=on iommu=pt rd.driver.pre=vfio-pci'
    assert result['diff'][0]['before_header'] == '/etc/default/grub'
    assert 'GRUB_CMDLINE_LINUX="intel_iommu=on iommu=pt rd.driver.pre=vfio-pci"' in result['diff'][0]['after']
    assert result['backup_files'] == []


def test_grub_apply_then_idempotent_then_reboot(tmp_path):
    host = Host(tmp_path, 'debian12-grub')
    host.runner.effects['update-grub'] = fake_update_grub(host)
    original = host.read('/etc/default/grub')
    result = ensure_kernel_args(host.open(), present=IOMMU, absent=['quiet'])
    assert host.runner.mutating_calls() == [['/usr/sbin/update-grub']]
    expected = original.replace('GRUB_CMDLINE_LINUX_DEFAULT="quiet"', 'GRUB_CMDLINE_LINUX_DEFAULT=""').replace(
        'GRUB_CMDLINE_LINUX=""', 'GRUB_CMDLINE_LINUX="intel_iommu=on iommu=pt rd.driver.pre=vfio-pci"')
    assert host.read('/etc/default/grub') == expected
    # The previous file is kept beside it, under Ansible's backup naming.
    [backup] = [b for b in result['backup_files'] if b.startswith('/etc/default/grub.')]
    assert re.match(r'^/etc/default/grub\.\d+\.\d{4}-\d\d-\d\d@\d{6}~$', backup)
    assert host.read(backup) == original
    assert any(b.startswith('/boot/grub/grub.cfg.') for b in result['backup_files'])
    assert result['reboot_required'] and result['pending_arguments'] == ['intel_iommu', 'iommu', 'rd.driver.pre', 'quiet']

    # Second run before the reboot: nothing to do, the reboot is still pending.
    host.runner.calls.clear()
    again = ensure_kernel_args(host.open(), present=IOMMU, absent=['quiet'])
    assert host.recorder.actions == [] and host.runner.calls == []
    assert again['reboot_required']

    # After the reboot the running kernel has them.
    reboot(host, DEBIAN_RUNNING + ' intel_iommu=on iommu=pt rd.driver.pre=vfio-pci')
    done = ensure_kernel_args(host.open(), present=IOMMU, absent=['quiet'])
    assert not done['reboot_required'] and done['pending_arguments'] == []


def test_grub_regeneration_failure_restores_everything(tmp_path):
    host = Host(tmp_path, 'debian12-grub')
    err = "/usr/sbin/grub-mkconfig: 277: /etc/grub.d/10_linux: Syntax error: Unterminated quoted string\n"
    host.runner.effects['update-grub'] = fake_update_grub(host, rc=1, err=err)
    before = host.snapshot()
    with pytest.raises(CommandFailed, match='Unterminated quoted string') as info:
        ensure_kernel_args(host.open(), present=IOMMU)
    assert info.value.details['restored_files'] == ['/etc/default/grub']
    after = host.snapshot()
    # Only the backups and grub-mkconfig's own leftover remain; every file in place is as it was.
    extra = set(after) - set(before)
    assert all(p.endswith('~') for p in extra - {'boot/grub/grub.cfg.new'})
    assert dict((p, after[p]) for p in before) == before


def test_grub_stale_grub_cfg_is_regenerated(tmp_path):
    host = Host(tmp_path, 'debian12-grub')
    host.runner.effects['update-grub'] = fake_update_grub(host)
    # An admin edited /etc/default/grub by hand and never ran update-grub.
    host.write('/etc/default/grub', host.read('/etc/default/grub').replace('GRUB_CMDLINE_LINUX=""', 'GRUB_CMDLINE_LINUX="iommu=pt"'))
    ensure_kernel_args(host.open(), present=['iommu=pt'])
    assert host.recorder.actions == ['back up /boot/grub/grub.cfg',
                                     'regenerate /boot/grub/grub.cfg: it does not carry iommu as configured']
    assert 'ro iommu=pt quiet' in host.read('/boot/grub/grub.cfg')
    # Now grub.cfg agrees: nothing more to do.
    ensure_kernel_args(host.open(), present=['iommu=pt'])
    assert host.recorder.actions == []


def test_grub_edits_the_effective_assignment_in_grub_d(tmp_path):
    host = Host(tmp_path, 'ubuntu2204-cloud-grub')
    result = ensure_kernel_args(host.open(check_mode=True), present=['console=ttyS0,115200'], absent=['console=tty1'])
    diffs = dict((d['before_header'], d) for d in result['diff'])
    assert sorted(diffs) == ['/etc/default/grub', '/etc/default/grub.d/50-cloudimg-settings.cfg']
    # The removal happens where the argument is: the cloud image's override, not the shadowed default.
    assert 'GRUB_CMDLINE_LINUX_DEFAULT="console=ttyS0"\n' in diffs['/etc/default/grub.d/50-cloudimg-settings.cfg']['after']
    assert 'GRUB_CMDLINE_LINUX_DEFAULT="quiet splash"\n' in diffs['/etc/default/grub']['after']
    # New arguments go to GRUB_CMDLINE_LINUX, which recovery entries use too.
    assert 'GRUB_CMDLINE_LINUX="console=ttyS0,115200"\n' in diffs['/etc/default/grub']['after']
    assert result['cmdline_after'] == 'console=ttyS0,115200 console=ttyS0'
    assert [(t['name'], t['changed']) for t in result['targets']] == [
        ('/etc/default/grub', True), ('/etc/default/grub.d/50-cloudimg-settings.cfg', True)]


def test_grub_refuses_what_it_cannot_carry(tmp_path):
    host = Host(tmp_path, 'debian12-grub')
    for bad in ('a=$x', 'a=`id`', "a='x'", 'a=x;reboot', 'a=b\\c'):
        with pytest.raises(InvalidInput, match='grub backend cannot carry'):
            ensure_kernel_args(host.open(), present=[bad])
    assert host.runner.calls == []
    # Quoted values with spaces travel through /etc/default/grub and grub.cfg.
    result = ensure_kernel_args(host.open(check_mode=True), present=['acpi_osi="Windows 2009"'])
    assert 'GRUB_CMDLINE_LINUX="acpi_osi=\\"Windows 2009\\""' in result['diff'][0]['after']


def test_grub_refuses_kernels_default(tmp_path):
    with pytest.raises(InvalidInput, match='only possible with the grubby backend'):
        ensure_kernel_args(Host(tmp_path, 'debian12-grub').open(kernels='default'), present=IOMMU)


def test_grub_refuses_a_computed_value(tmp_path):
    host = Host(tmp_path, 'debian12-grub')
    host.write('/etc/default/grub.d/90-local.cfg', 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX nosmt"\n')
    before = host.snapshot()
    with pytest.raises(HostStateError, match='90-local.cfg line 1: cannot edit GRUB_CMDLINE_LINUX safely'):
        ensure_kernel_args(host.open(), present=IOMMU)
    assert host.snapshot() == before


# --- grubby (Fedora) -----------------------------------------------------------------------

def test_grubby_all_exact_command_and_files(tmp_path):
    host = Host(tmp_path, 'fedora40-grubby')
    host.runner.effects['grubby'] = fedora_grubby(host)
    result = ensure_kernel_args(host.open(), present=IOMMU, absent=['rhgb'])
    assert host.runner.mutating_calls() == [
        ['/usr/sbin/grubby', '--update-kernel=ALL', '--no-etc-grub-update', '--remove-args=rhgb',
         '--args=intel_iommu=on iommu=pt rd.driver.pre=vfio-pci']]
    wanted = F40_ROOT + ' quiet intel_iommu=on iommu=pt rd.driver.pre=vfio-pci'
    for path in F40_ENTRIES:
        assert formats.expand_grub_variables(options_of(host, path), grubenv(host)) == wanted
    # Entries keep their other lines; grubby keeps the unset $tuned_params in place.
    assert options_of(host, F40_ENTRIES[2]) == F40_ROOT + ' quiet $tuned_params intel_iommu=on iommu=pt rd.driver.pre=vfio-pci'
    assert 'GRUB_CMDLINE_LINUX="quiet intel_iommu=on iommu=pt rd.driver.pre=vfio-pci"\n' in host.read('/etc/default/grub')
    assert host.read('/etc/kernel/cmdline') == F40_ROOT + ' quiet intel_iommu=on iommu=pt rd.driver.pre=vfio-pci\n'
    assert result['cmdline_after'] == wanted
    default = [t for t in result['targets'] if t.get('default')]
    assert [t['name'] for t in default] == [F40_ENTRIES[2]] and default[0]['cmdline_after'] == wanted
    assert sorted(d['before_header'] for d in result['diff']) == sorted(
        ['%s (options)' % p for p in F40_ENTRIES] + ['/etc/default/grub', '/etc/kernel/cmdline'])
    # Every entry grubby rewrote, grubenv and our two files have a backup.
    assert len(result['backup_files']) == 6
    assert result['reboot_required']

    again = ensure_kernel_args(host.open(), present=IOMMU, absent=['rhgb'])
    assert host.recorder.actions == [] and again['reboot_required']
    reboot(host, 'BOOT_IMAGE=(hd0,gpt2)/vmlinuz-6.8.9-300.fc40.x86_64 ' + wanted)
    assert not ensure_kernel_args(host.open(), present=IOMMU, absent=['rhgb'])['reboot_required']


def test_grubby_check_mode_runs_only_queries(tmp_path):
    host = Host(tmp_path, 'fedora40-grubby')
    before = host.snapshot()
    result = ensure_kernel_args(host.open(check_mode=True), present=IOMMU)
    assert host.snapshot() == before
    assert host.runner.calls == [['/usr/sbin/grubby', '--info=DEFAULT']]
    assert host.recorder.changed and result['cmdline_after'].endswith('rhgb quiet intel_iommu=on iommu=pt rd.driver.pre=vfio-pci')


def test_grubby_default_kernel_only(tmp_path):
    host = Host(tmp_path, 'fedora40-grubby')
    host.runner.effects['grubby'] = fedora_grubby(host)
    etc = host.read('/etc/default/grub'), host.read('/etc/kernel/cmdline')
    result = ensure_kernel_args(host.open(kernels='default'), present=['iommu=pt'])
    assert host.runner.mutating_calls() == [['/usr/sbin/grubby', '--update-kernel=DEFAULT', '--args=iommu=pt']]
    assert options_of(host, F40_ENTRIES[2]) == F40_ROOT + ' rhgb quiet $tuned_params iommu=pt'
    assert options_of(host, F40_ENTRIES[1]) == F40_ROOT + ' rhgb quiet'
    # /etc/default/grub and /etc/kernel/cmdline hold every kernel's line: left alone.
    assert (host.read('/etc/default/grub'), host.read('/etc/kernel/cmdline')) == etc
    assert [t['name'] for t in result['targets']] == [F40_ENTRIES[2]]


def test_grubby_replacing_a_value_and_other_spellings(tmp_path):
    host = Host(tmp_path, 'fedora40-grubby')
    host.runner.effects['grubby'] = fedora_grubby(host)
    for path in F40_ENTRIES:
        set_options(host, path, F40_ROOT + ' vfio_pci.ids=10de:1b80 rhgb quiet')
    ensure_kernel_args(host.open(), present=['vfio-pci.ids=10de:1b80,10de:10f0'])
    # grubby matches names literally: the other spelling is removed by name first.
    assert host.runner.mutating_calls() == [
        ['/usr/sbin/grubby', '--update-kernel=ALL', '--no-etc-grub-update', '--remove-args=vfio_pci.ids',
         '--args=vfio-pci.ids=10de:1b80,10de:10f0']]
    assert options_of(host, F40_ENTRIES[0]) == F40_ROOT + ' rhgb quiet vfio-pci.ids=10de:1b80,10de:10f0'


def test_grubby_repeatable_argument_keeps_other_values(tmp_path):
    host = Host(tmp_path, 'fedora40-grubby')
    host.runner.effects['grubby'] = fedora_grubby(host)
    for path in F40_ENTRIES:
        set_options(host, path, F40_ROOT + ' console=tty0 rhgb quiet')
    ensure_kernel_args(host.open(), present=['console=ttyS0,115200n8'])
    # grubby would drop console=tty0 when adding console=ttyS0: it is given back explicitly.
    assert host.runner.mutating_calls()[0][-2:] == ['--remove-args=console', '--args=console=tty0 console=ttyS0,115200n8']
    assert options_of(host, F40_ENTRIES[0]) == F40_ROOT + ' rhgb quiet console=tty0 console=ttyS0,115200n8'


def test_grubby_entries_that_disagree_are_not_forced(tmp_path):
    host = Host(tmp_path, 'fedora40-grubby')
    set_options(host, F40_ENTRIES[0], F40_ROOT + ' console=ttyS1 rhgb quiet')
    with pytest.raises(HostStateError, match='boot entries disagree on console'):
        ensure_kernel_args(host.open(), present=['console=ttyS0'])
    assert host.runner.mutating_calls() == []


def test_grubby_refuses_to_append_after_init_arguments(tmp_path):
    host = Host(tmp_path, 'fedora40-grubby')
    set_options(host, F40_ENTRIES[1], F40_ROOT + ' rhgb quiet -- single')
    with pytest.raises(HostStateError, match='has a `--` in its options'):
        ensure_kernel_args(host.open(), present=['iommu=pt'])
    assert host.runner.mutating_calls() == []


def test_grubby_refuses_what_it_cannot_carry(tmp_path):
    host = Host(tmp_path, 'fedora40-grubby')
    for bad in ('acpi_osi="Windows 2009"', 'a=x*', 'a=[x]', 'a=$x'):
        with pytest.raises(InvalidInput, match='grubby backend cannot carry'):
            ensure_kernel_args(host.open(), present=[bad])


def test_grubby_unexpected_result_is_rolled_back(tmp_path):
    host = Host(tmp_path, 'fedora40-grubby')
    host.runner.effects['grubby'] = rhel7_style_grubby(host)
    before = host.snapshot()
    with pytest.raises(HostStateError, match='grubby left .* where .* was expected; the boot entries were restored') as info:
        ensure_kernel_args(host.open(), present=['intel_iommu=on'], absent=['rhgb'])
    assert sorted(info.value.details['restored_files']) == sorted(F40_ENTRIES + ['/etc/default/grub', '/etc/kernel/cmdline'])
    after = host.snapshot()
    assert dict((p, after[p]) for p in before) == before


def test_grubby_failure_is_rolled_back(tmp_path):
    host = Host(tmp_path, 'fedora40-grubby')
    host.runner.effects['grubby'] = failing(1, 'grubby: invalid option "--no-etc-grub-update"\n')
    before = host.snapshot()
    with pytest.raises(CommandFailed, match='invalid option'):
        ensure_kernel_args(host.open(), present=IOMMU)
    after = host.snapshot()
    assert dict((p, after[p]) for p in before) == before


def test_grubby_kernelopts_in_grubenv(tmp_path):
    host = Host(tmp_path, 'fedora31-kernelopts')
    host.runner.effects['grubby'] = fedora_grubby(host)
    result = ensure_kernel_args(host.open(), present=IOMMU, absent=['rhgb', 'quiet'])
    wanted = ('root=/dev/mapper/fedora_f31-root ro resume=/dev/mapper/fedora_f31-swap rd.lvm.lv=fedora_f31/root '
              'rd.lvm.lv=fedora_f31/swap intel_iommu=on iommu=pt rd.driver.pre=vfio-pci')
    assert result['cmdline_before'].endswith('rhgb quiet') and result['cmdline_after'] == wanted
    # The entries still say $kernelopts; grubenv carries the new line.
    assert options_of(host, '/boot/loader/entries/fedora-20191030153512-0-rescue.conf') == '$kernelopts'
    assert grubenv(host)['kernelopts'] == wanted
    assert len(host.read('/boot/grub2/grubenv')) == 1024
    assert 'GRUB_CMDLINE_LINUX="resume=/dev/mapper/fedora_f31-swap rd.lvm.lv=fedora_f31/root rd.lvm.lv=fedora_f31/swap ' \
           'intel_iommu=on iommu=pt rd.driver.pre=vfio-pci"' in host.read('/etc/default/grub')
    # No /etc/kernel/cmdline on this host, and none is created by this backend.
    assert not host.exists('/etc/kernel/cmdline')
    assert ensure_kernel_args(host.open(), present=IOMMU, absent=['rhgb', 'quiet'])['backend'] == 'grubby'
    assert host.recorder.actions == []


# --- kernel-install (systemd-boot) ---------------------------------------------------------

def test_kernel_install_regenerates_every_kernel(tmp_path):
    host = Host(tmp_path, 'fedora40-systemd-boot')
    host.runner.effects['kernel-install'] = lambda argv: (0, '', '')
    result = ensure_kernel_args(host.open(), present=IOMMU)
    assert host.read('/etc/kernel/cmdline') == ('root=UUID=6b3f0c8e-2f4e-4f6b-9a51-0f3c1d2e4a77 rw rootflags=subvol=root quiet '
                                                'intel_iommu=on iommu=pt rd.driver.pre=vfio-pci\n')
    # Every kernel with an image, not the modules left by a removed one.
    assert host.runner.mutating_calls() == [
        ['/usr/bin/kernel-install', 'add', '6.8.5-301.fc40.x86_64', '/usr/lib/modules/6.8.5-301.fc40.x86_64/vmlinuz'],
        ['/usr/bin/kernel-install', 'add', '6.8.9-300.fc40.x86_64', '/usr/lib/modules/6.8.9-300.fc40.x86_64/vmlinuz']]
    assert result['reboot_required']
    # The file has a backup; the entries on the ESP (FAT) are not copied there.
    assert result['backup_files'] and all(b.startswith('/etc/kernel/cmdline.') for b in result['backup_files'])
    assert not ensure_kernel_args(host.open(), present=IOMMU)['diff']


def test_kernel_install_failure_restores_and_rebuilds(tmp_path):
    host = Host(tmp_path, 'fedora40-systemd-boot')
    seen = []

    def kernel_install(argv):
        seen.append((argv[2], host.read('/etc/kernel/cmdline')))
        if argv[2] == '6.8.9-300.fc40.x86_64' and 'iommu=pt' in host.read('/etc/kernel/cmdline'):
            return 1, '', 'dracut: Cannot find module directory /lib/modules/6.8.9-300.fc40.x86_64/\n'
        return 0, '', ''
    host.runner.effects['kernel-install'] = kernel_install
    original = host.read('/etc/kernel/cmdline')
    with pytest.raises(CommandFailed, match='Cannot find module directory'):
        ensure_kernel_args(host.open(), present=['iommu=pt'])
    assert host.read('/etc/kernel/cmdline') == original
    # Both kernels touched were rebuilt from the restored command line.
    assert seen[2:] == [('6.8.5-301.fc40.x86_64', original), ('6.8.9-300.fc40.x86_64', original)]


def test_kernel_install_creates_the_file_from_what_it_would_use(tmp_path):
    host = Host(tmp_path, 'fedora40-systemd-boot')
    os.unlink(os.path.join(host.root, 'etc/kernel/cmdline'))
    reboot(host, 'BOOT_IMAGE=/vmlinuz initrd=\\initrd root=/dev/vda2 rw quiet')
    result = ensure_kernel_args(host.open(check_mode=True), present=['iommu=pt'])
    assert result['diff'][0]['before'] == '' and result['diff'][0]['after'] == 'root=/dev/vda2 rw quiet iommu=pt\n'
    host.write('/usr/lib/kernel/cmdline', 'root=/dev/vda3 ro\n')
    result = ensure_kernel_args(host.open(check_mode=True), present=['iommu=pt'])
    assert result['diff'][0]['after'] == 'root=/dev/vda3 ro iommu=pt\n'


def test_kernel_install_refuses_kernels_default(tmp_path):
    with pytest.raises(InvalidInput, match='kernels=default'):
        ensure_kernel_args(Host(tmp_path, 'fedora40-systemd-boot').open(kernels='default'), present=IOMMU)


# --- rpm-ostree ------------------------------------------------------------------------------

def test_rpm_ostree_one_transaction(tmp_path):
    host = Host(tmp_path, 'fcos-rpm-ostree')
    host.runner.effects['rpm-ostree'] = rpm_ostree(host)
    result = ensure_kernel_args(host.open(), present=['iommu=pt', 'console=ttyS1'], absent=['mitigations'])
    assert host.runner.mutating_calls() == [
        ['/usr/bin/rpm-ostree', 'kargs', '--delete=mitigations=auto,nosmt', '--append=iommu=pt', '--append=console=ttyS1']]
    assert result['cmdline_after'].endswith('boot=UUID=5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a iommu=pt console=ttyS1')
    assert 'console=tty0 console=ttyS0,115200n8' in result['cmdline_after']
    assert result['diff'] == [{'before_header': 'rpm-ostree (kargs)', 'after_header': 'rpm-ostree (kargs)',
                               'before': result['cmdline_before'] + '\n', 'after': result['cmdline_after'] + '\n'}]
    assert result['reboot_required']
    # The pending deployment is what `rpm-ostree kargs` shows: a second run does nothing.
    again = ensure_kernel_args(host.open(), present=['iommu=pt', 'console=ttyS1'], absent=['mitigations'])
    assert host.recorder.actions == [] and again['reboot_required']


def test_rpm_ostree_replaces_by_delete_and_append(tmp_path):
    host = Host(tmp_path, 'fcos-rpm-ostree')
    result = ensure_kernel_args(host.open(check_mode=True), present=['rootflags=prjquota,noatime'])
    assert host.recorder.actions == ['chroot %s /usr/bin/rpm-ostree kargs --delete=rootflags=prjquota '
                                     '--append=rootflags=prjquota,noatime' % host.root]
    assert host.runner.calls == [['/usr/bin/rpm-ostree', 'kargs']]
    assert result['cmdline_after'].endswith('rw boot=UUID=5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a rootflags=prjquota,noatime')


def test_rpm_ostree_unexpected_result_is_reported(tmp_path):
    host = Host(tmp_path, 'fcos-rpm-ostree')
    host.runner.effects['rpm-ostree'] = lambda argv: (0, '', '')
    with pytest.raises(HostStateError, match='rpm-ostree cleanup -p'):
        ensure_kernel_args(host.open(), present=['iommu=pt'])


def test_rpm_ostree_refuses_spaces(tmp_path):
    with pytest.raises(InvalidInput, match='rpm-ostree backend cannot carry quoted values'):
        ensure_kernel_args(Host(tmp_path, 'fcos-rpm-ostree').open(), present=['acpi_osi="Windows 2009"'])


# --- shared behaviour ---------------------------------------------------------------------------

def test_no_backup_when_disabled(tmp_path):
    host = Host(tmp_path, 'debian12-grub')
    host.runner.effects['update-grub'] = fake_update_grub(host)
    result = ensure_kernel_args(host.open(backup=False), present=['iommu=pt'])
    assert result['backup_files'] == []
    assert not [p for p in host.snapshot() if p.endswith('~')]


def test_empty_request_reports_state(tmp_path):
    host = Host(tmp_path, 'debian12-grub')
    result = ensure_kernel_args(host.open(), present=[], absent=[])
    assert result['cmdline_before'] == result['cmdline_after'] == 'quiet'
    assert result['cmdline_running'] == DEBIAN_RUNNING + ' quiet'
    assert not result['reboot_required'] and host.recorder.actions == []
    assert result['targets'] == [{'kind': 'file', 'name': '/etc/default/grub', 'changed': False}]
    assert result['diff'] == []


def test_offline_root_without_proc(tmp_path):
    host = Host(tmp_path, 'debian12-grub')
    os.unlink(os.path.join(host.root, 'proc/cmdline'))
    result = ensure_kernel_args(host.open(check_mode=True), present=['iommu=pt'])
    assert result['cmdline_running'] is None and result['reboot_required'] is False


def test_write_failure_restores_earlier_writes(tmp_path, monkeypatch):
    host = Host(tmp_path, 'fedora40-grubby')
    real = context.write_file_atomic

    def flaky(path, *args, **kwargs):
        if path.endswith('etc/kernel/cmdline'):
            raise OSError(28, 'No space left on device')
        return real(path, *args, **kwargs)
    monkeypatch.setattr(context, 'write_file_atomic', flaky)
    before = host.snapshot()
    with pytest.raises(HostStateError, match='No space left on device; restored /etc/default/grub'):
        ensure_kernel_args(host.open(), present=IOMMU)
    after = host.snapshot()
    assert dict((p, after[p]) for p in before) == before
    assert host.runner.mutating_calls() == []


def test_a_file_that_cannot_be_put_back_is_named(tmp_path, monkeypatch):
    host = Host(tmp_path, 'debian12-grub')
    host.runner.effects['update-grub'] = fake_update_grub(host, rc=1, err='grub-mkconfig: error: out of memory.\n')
    # The edit is written (BootContext.write); putting it back (files.restore_files) fails.

    def restore_fails(path, *args, **kwargs):
        raise OSError(30, 'Read-only file system')
    monkeypatch.setattr(files, 'write_file_atomic', restore_fails)
    with pytest.raises(CommandFailed) as info:
        ensure_kernel_args(host.open(), present=['iommu=pt'])
    assert info.value.msg.endswith('COULD NOT PUT BACK /etc/default/grub ([Errno 30] Read-only file system): check them '
                                   'before rebooting')
    assert info.value.details['unrestored_files'] == ['/etc/default/grub']
    assert info.value.details['restored_files'] == []
