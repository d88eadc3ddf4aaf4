# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Everything pci_passthrough does, in order: select, check, plan the boot, bind now, claim at boot.

The parts: selection (which devices, and whether they may go), binding (the
runtime half, sysfs writes), claims (the boot-time half, files and the
initramfs); the kernel arguments go through _boot.kernel_args.
"""

from __future__ import annotations

from ansible_collections.phyllome.os.plugins.module_utils._boot import bootloader
from ansible_collections.phyllome.os.plugins.module_utils._boot.context import BootContext
from ansible_collections.phyllome.os.plugins.module_utils._boot.kernel_args import apply_kernel_args, plan_kernel_args
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput, PhyllomeError
from ansible_collections.phyllome.os.plugins.module_utils._common.files import apply_file_plan
from ansible_collections.phyllome.os.plugins.module_utils._host import iommu
from ansible_collections.phyllome.os.plugins.module_utils._passthrough import binding, claims, selection
from ansible_collections.phyllome.os.plugins.module_utils._passthrough.selection import STATES, VFIO_DRIVER


def ensure(context, addresses, ids=(), whole_group=False, state='vfio', force=False, runtime=True, persistent=False,
           method='auto', kernel_args=True, iommu_args=False, write=None):
    """Everything pci_passthrough does: select, check, bind now, claim at boot, kernel arguments.

    context: a claims.ClaimContext (host files, recorder, atomic_move). Checks and
    plans everything (including the boot loader) before the first change.
    Returns the module's result (devices, previous_drivers, drivers, method,
    initramfs, boot_claims, files, kernel_cmdline, reboot_required, diff).
    """
    fs, recorder = context.hostfs, context.recorder
    if state not in STATES:
        raise InvalidInput('state must be vfio or host, not %r' % (state,))
    if not runtime and not persistent:
        raise InvalidInput('runtime and persistent are both false: nothing to do')
    devices, usage, groups = selection.read_host(fs)
    selected = selection.select(devices, groups, addresses, ids, whole_group)
    if state == 'vfio':
        selection.check_claim(devices, usage, groups, selected, force)
    plan, planned_args = None, None
    info = {'method': None, 'initramfs': None, 'claims': None, 'kernel_args': []}
    if persistent:
        plan, info = claims.plan_boot(context, devices, selected, state, method)
        present = list(info['kernel_args']) if kernel_args and state == 'vfio' else []
        if iommu_args:
            present.extend(iommu.recommended_kernel_args(iommu.detect_iommu(fs)))
        if present:
            # Planned now, applied last: a boot loader that refuses the edit
            # (a computed GRUB_CMDLINE_LINUX, entries that disagree...) fails
            # the task before the device is bound or a claim file written.
            boot = bootloader.open_bootloader(BootContext(fs, recorder, atomic_move=context.atomic_move))
            planned_args = plan_kernel_args(boot, present=present)
    steps = {}
    if runtime:
        result = binding.apply(fs, recorder, devices, selected, state, write, steps=steps)
    else:
        now = dict((a, devices[a]['driver']) for a in selected)
        result = {'devices': list(selected), 'previous_drivers': now, 'drivers': dict(now)}
    diff = [_drivers_diff(result['previous_drivers'], result['drivers'])] if result['previous_drivers'] != result['drivers'] else []
    kernel_cmdline = None
    if persistent:
        # Bound first, so that a vfio-pci that refuses a device leaves no
        # boot claim behind. A boot claim that fails puts its files back by
        # itself; kernel arguments that fail (they put theirs back) also
        # take back the claim files; either gives the devices back.
        undo_claims = None
        try:
            undo_claims = apply_file_plan(context, plan)
            diff.extend(plan.diffs())
            if planned_args is not None:
                kernel_cmdline = apply_kernel_args(planned_args)
                diff.extend(kernel_cmdline.pop('diff'))
        except PhyllomeError as exc:
            if undo_claims is not None:
                restored, unrestored = undo_claims()
                exc.details['restored_claim_files'] = restored
                if unrestored:
                    exc.msg += '. COULD NOT PUT BACK %s: check them before rebooting' % ', '.join(
                        '%s (%s)' % item for item in sorted(unrestored.items()))
            if steps and not recorder.check_mode:
                binding.undo(fs, recorder, devices, state, steps, write)
            raise
    # The running system differs from what the next boot gives: a device is
    # not yet where the boot claim puts it, or the command line is pending.
    waiting = [a for a in selected if (result['drivers'][a] == VFIO_DRIVER) != (state == 'vfio')]
    result.update({
        'method': info['method'],
        'initramfs': info['initramfs'],
        'boot_claims': info['claims'],
        'files': [target.name for target in plan.targets if target.changed] if plan else [],
        'kernel_cmdline': kernel_cmdline,
        'reboot_required': bool(persistent and waiting) or bool(kernel_cmdline and kernel_cmdline['reboot_required']),
        'diff': diff,
    })
    return result


def _drivers_diff(before, after):
    def text(drivers):
        return ''.join('%s: %s\n' % (address, drivers[address] or '(none)') for address in sorted(drivers))
    return {'before_header': 'PCI drivers', 'after_header': 'PCI drivers', 'before': text(before), 'after': text(after)}
