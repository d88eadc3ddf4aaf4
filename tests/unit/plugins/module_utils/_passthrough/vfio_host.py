# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Recorded hosts for the boot claim tests: a recorded machine's sysfs (tests/fixtures/hosts) on a recorded
boot configuration (fixtures/bootloader, with its FakeRunner), plus installed kernels and an initramfs
generator, and fakes of the mutating commands."""

from __future__ import annotations

import os
import re
import time

from ansible_collections.phyllome.os.plugins.module_utils._passthrough import claims
from ansible_collections.phyllome.os.tests.fixtures import hosttree
from ansible_collections.phyllome.os.tests.unit.plugins.module_utils._boot.bootloader_host import Host, fake_update_grub

F40 = ('6.8.9-300.fc40.x86_64', '6.8.5-301.fc40.x86_64')
DEB12 = ('6.1.0-18-amd64',)
# Excerpts of modules.alias as depmod writes it: class aliases (nvme, xhci), ID aliases, vfio-pci's own.
MODULES_ALIAS = """\
# Aliases extracted from modules themselves.
alias pci:v*d*sv*sd*bc01sc08i02* nvme
alias pci:v0000144Dd0000A808sv*sd*bc*sc*i* nvme
alias pci:v*d*sv*sd*bc01sc06i01* ahci
alias pci:v00001002d000073FFsv*sd*bc*sc*i* amdgpu
alias pci:v00001002d0000AB28sv*sd*bc*sc*i* snd_hda_intel
alias pci:v00001022d*sv*sd*bc04sc03i00* snd_hda_intel
alias pci:v00001022d00001486sv*sd*bc*sc*i* ccp
alias pci:v00008086d00001572sv*sd*bc*sc*i* i40e
alias pci:v000010DEd*sv*sd*bc03sc02i00* nouveau
alias vfio_pci:v*d*sv*sd*bc*sc*i* vfio_pci
alias usb:v*p*d*dc*dsc*dp*ic09isc*ip*in* usbcore
"""
# xhci-pci: a module on Debian, built in elsewhere (then its aliases are in modules.builtin.alias, not here).
XHCI_MODULE = 'alias pci:v*d*sv*sd*bc0Csc03i30* xhci_pci\n'
XHCI_BUILTIN = 'kernel/drivers/usb/host/xhci-pci.ko\n'
INSTALL = ('install vfio-pci for d in %s; do o=/sys/bus/pci/devices/$d/driver_override; [ -e $o ] || continue; '
           'echo vfio-pci > $o; [ -e /sys/bus/pci/devices/$d/driver ] && echo $d > /sys/bus/pci/devices/$d/driver/unbind; '
           'done; exec /sbin/modprobe --ignore-install vfio-pci $CMDLINE_OPTS')
HEADER = ['# Written by phyllome.os.pci_passthrough (persistent: true); edit with that module, not by hand.',
          '# vfio-pci claims these PCI devices by address when it loads: it sets their driver_override (and',
          '# unbinds a driver, a built-in one, that took a device first), then binds them.']
SOFTDEP = ['# Loading a module that would take one of them loads vfio-pci first.']
DRACUT_CONF = '/etc/dracut.conf.d/phyllome-vfio.conf'
HOOK = '/etc/initramfs-tools/hooks/phyllome-vfio'


def claim_file(addresses, modules):
    lines = HEADER + [INSTALL % ' '.join(addresses)]
    if modules:
        lines += SOFTDEP + ['softdep %s pre: vfio-pci' % m for m in modules]
    return '\n'.join(lines) + '\n'


def executable(host, path):
    host.write(path, '#!/bin/sh\n# stand-in: tests answer through FakeRunner\nexit 1\n')
    os.chmod(os.path.join(host.root, path.lstrip('/')), 0o755)


def boot_host(tmp_path, host_spec, boot, machine, generator, kernels, image, xhci_builtin=False):
    """A recorded boot configuration (bootloader fixture) with a recorded machine's sysfs and installed kernels."""
    host = Host(tmp_path, boot)
    spec = host_spec(machine)
    # The boot fixture's command line belongs with its boot configuration.
    del spec['files']['/proc/cmdline']
    hosttree.materialize(spec, host.root)
    executable(host, generator)
    # The directories the packages ship (kmod, dracut, initramfs-tools).
    config_dirs = ['/etc/modprobe.d']
    if generator.endswith('update-initramfs'):
        host.write('/usr/share/initramfs-tools/hook-functions', '')
        config_dirs.append('/etc/initramfs-tools/hooks')
    else:
        config_dirs.append('/etc/dracut.conf.d')
    for directory in config_dirs:
        os.makedirs(os.path.join(host.root, directory.lstrip('/')))
    for version in kernels:
        host.write('/usr/lib/modules/%s/modules.dep' % version, '')
        host.write('/usr/lib/modules/%s/modules.alias' % version, MODULES_ALIAS + ('' if xhci_builtin else XHCI_MODULE))
        host.write('/usr/lib/modules/%s/modules.builtin' % version, XHCI_BUILTIN if xhci_builtin else '')
        host.write(image % version, 'old image')
        # Built before any claim.
        os.utime(os.path.join(host.root, (image % version).lstrip('/')), (time.time() - 3600, time.time() - 3600))
    host.images = [image % version for version in kernels]
    return host


def regenerate(host, log=None, fail=None):
    """dracut --regenerate-all / update-initramfs -u: rebuild every image (record what it saw; fail on demand)."""
    def run(argv):
        claimed = host.read(claims.CLAIM_FILE) if host.exists(claims.CLAIM_FILE) else None
        if log is not None:
            log.append(claimed)
        if fail and fail(claimed):
            return 1, '', 'E: /usr/share/initramfs-tools/hooks/phyllome-vfio failed with return 1.\n'
        for image in host.images:
            host.write(image, 'image built with claims: %s' % claimed)
        return 0, '', ''
    return run


def grubby_args(host):
    """grubby --update-kernel=ALL --args=...: append to the options of every BLS entry (all these tests need)."""
    def run(argv):
        added = [a.split('=', 1)[1] for a in argv if a.startswith('--args=')]
        assert not [a for a in argv if a.startswith('--remove-args')]
        directory = os.path.join(host.root, 'boot/loader/entries')
        for name in os.listdir(directory):
            path = '/boot/loader/entries/' + name
            host.write(path, re.sub(r'(?m)^options (.*)$', lambda m: 'options %s %s' % (m.group(1), ' '.join(added)),
                                    host.read(path)))
        return 0, '', ''
    return run


def fedora_host(tmp_path, host_spec):
    """Fedora 40, GRUB + grubby, dracut: the AMD desktop whose chipset group is unsafe."""
    host = boot_host(tmp_path, host_spec, 'fedora40-grubby', 'amd-desktop-chipset-group', '/usr/bin/dracut', F40,
                     '/boot/initramfs-%s.img', xhci_builtin=True)
    host.runner.effects['dracut'] = regenerate(host)
    host.runner.effects['grubby'] = grubby_args(host)
    return host


def debian_host(tmp_path, host_spec):
    """Debian 12, GRUB, initramfs-tools: the server with an identical twin of its boot NVMe and of its uplink."""
    host = boot_host(tmp_path, host_spec, 'debian12-grub', 'server-clean-groups', '/usr/sbin/update-initramfs', DEB12,
                     '/boot/initrd.img-%s')
    host.runner.effects['update-initramfs'] = regenerate(host)
    host.runner.effects['update-grub'] = fake_update_grub(host)
    return host
