# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""IOMMU detection: is an IOMMU translating DMA on this host, which one, and why (not).

Everything comes from sysfs and procfs through a HostFS, never from dmesg:
the kernel log needs privileges on hardened hosts and rotates away, while
sysfs always says what is active now. host_info builds its IOMMU check on
detect_iommu(); iommu_info lists groups and devices on top of it. Both say
what is wrong, and what to do, in the words of diagnose() and explain().
"""

from __future__ import annotations

import posixpath

from ansible_collections.phyllome.os.plugins.module_utils._host.cmdline import arg_key, normalize_name, running_kernel_args
from ansible_collections.phyllome.os.plugins.module_utils._host.cpu import vendor_kind

# Unit kinds, by the kernel's own names for them:
#   intel   Intel VT-d, "DMAR" (/sys/class/iommu/dmarN)
#   amd     AMD-Vi (/sys/class/iommu/ivhdN)
#   virtio  virtio-iommu, a paravirtual IOMMU inside a guest
#   other   anything else that registers an IOMMU (ARM SMMU, ...)
#   none    no IOMMU unit registered
IOMMU_KIND_LABELS = {
    'intel': 'Intel VT-d (DMAR)',
    'amd': 'AMD-Vi',
    'virtio': 'virtio-iommu',
    'other': 'IOMMU',
    'none': 'none',
}

SYSFS_IOMMU_GROUPS = '/sys/kernel/iommu_groups'

# ACPI tables by which firmware announces an IOMMU, whether or not the kernel uses it.
FIRMWARE_TABLES = {'DMAR': 'intel', 'IVRS': 'amd'}
_TABLE_OF_KIND = dict((kind, table) for table, kind in FIRMWARE_TABLES.items())

# Why an IOMMU cannot isolate devices (see diagnose()); explain() has the words for each.
CAUSES = ('disabled_by_argument', 'virtual_machine', 'firmware', 'not_enabled', 'no_groups', 'interrupt_remapping_off')

# What firmware setup screens call the IOMMU switch, by kind.
FIRMWARE_SETTINGS = {'intel': 'VT-d', 'amd': 'AMD-Vi (labelled IOMMU in most firmware setups)'}

# Kernel arguments that decide whether and how the IOMMU (and VFIO on top of it) works,
# by normalized name (cmdline.normalize_name: vfio-pci.ids is vfio_pci.ids).
IOMMU_KERNEL_ARGS = frozenset(normalize_name(name) for name in (
    'intel_iommu', 'amd_iommu', 'amd_iommu_intr', 'iommu', 'iommu.passthrough', 'iommu.strict',
    'intremap', 'vfio-pci.ids', 'rd.driver.pre', 'vfio_iommu_type1.allow_unsafe_interrupts', 'pcie_acs_override',
))

# The argument that switches Intel VT-d on: kernels built without
# CONFIG_INTEL_IOMMU_DEFAULT_ON leave it off unless asked. AMD-Vi comes on by itself.
INTEL_IOMMU_ON = 'intel_iommu=on'

# The Intel unit's extended capability register: bit 3 is Interrupt Remapping support.
_ECAP_IR = 1 << 3


def unit_kind(name, link_target=None):
    """The kind of the IOMMU unit /sys/class/iommu/<name> (link_target: where that entry points)."""
    if name.startswith('dmar'):
        return 'intel'
    if name.startswith('ivhd'):
        return 'amd'
    # virtio-iommu names its unit after its virtio device (virtio0, ...), under .../virtioN/iommu/.
    if name.startswith('virtio') or '/virtio' in (link_target or ''):
        return 'virtio'
    return 'other'


def read_units(fs):
    """The IOMMU units registered in /sys/class/iommu, with what sysfs tells about each."""
    units = []
    for name in fs.listdir('/sys/class/iommu'):
        base = posixpath.join('/sys/class/iommu', name)
        unit = {
            'name': name,
            'kind': unit_kind(name, fs.readlink(base)),
            'devices': len(fs.listdir(base + '/devices')),
        }
        if unit['kind'] == 'intel':
            regs = base + '/intel-iommu'
            ecap = fs.read_int(regs + '/ecap', base=16)
            unit.update({
                'version': fs.read_text(regs + '/version'),
                'address': fs.read_text(regs + '/address'),
                'cap': fs.read_text(regs + '/cap'),
                'ecap': fs.read_text(regs + '/ecap'),
                'interrupt_remapping_capable': None if ecap is None else bool(ecap & _ECAP_IR),
            })
        elif unit['kind'] == 'amd':
            regs = base + '/amd-iommu'
            unit.update({
                'cap': fs.read_text(regs + '/cap'),
                'features': fs.read_text(regs + '/features'),
            })
        units.append(unit)
    return units


def group_numbers(fs):
    """The IOMMU groups the kernel formed (/sys/kernel/iommu_groups), as sorted numbers."""
    return sorted(int(g) for g in fs.listdir(SYSFS_IOMMU_GROUPS) if g.isdigit())


def firmware_table(fs):
    """'DMAR' or 'IVRS' when the firmware's ACPI tables announce an IOMMU, else None.

    The table is there when VT-d / AMD-Vi is enabled in the firmware setup,
    even if the kernel was told not to use it.
    """
    for table in sorted(FIRMWARE_TABLES):
        if fs.lexists('/sys/firmware/acpi/tables/' + table):
            return table
    return None


def interrupt_remapping_enabled(fs):
    """Whether the kernel remaps interrupts, from the irq chip names in /proc/interrupts.

    With remapping on, MSI and IO-APIC interrupts go through chips named
    IR-PCI-MSI*, IR-IO-APIC; without it, PCI-MSI*, IO-APIC. None when
    /proc/interrupts shows neither (unreadable, or no such interrupts).
    """
    seen_plain = False
    for line in fs.read_lines('/proc/interrupts'):
        for token in line.split():
            if token.startswith('IR-'):
                return True
            if token == 'IO-APIC' or token.startswith('PCI-MSI'):
                seen_plain = True
    return False if seen_plain else None


def iommu_kernel_args(args):
    """The arguments (as written) among `args` (cmdline.KernelArg) that concern the IOMMU, in order."""
    return [arg.raw for arg in args if arg_key(arg) in IOMMU_KERNEL_ARGS]


def _values(args, name):
    """Every value given to `name` (comma lists split), in order; a bare `name` counts as ''."""
    values = []
    key = normalize_name(name)
    for arg in args:
        if arg_key(arg) == key:
            values.extend(arg.value.split(',') if arg.value else [''])
    return values


def _kernel_bool(value):
    """A boolean kernel argument value the way the kernel's kstrtobool() reads it (1/y/on are true)."""
    value = value.lower()
    return value[:1] in ('1', 'y') or value == 'on'


def requested_passthrough(args):
    """True when the command line asks for IOMMU passthrough mode (iommu=pt or iommu.passthrough=1)."""
    passthrough = _values(args, 'iommu.passthrough')
    return 'pt' in _values(args, 'iommu') or bool(passthrough and _kernel_bool(passthrough[-1]))


def disabled_by(args, kind):
    """The argument that switches the IOMMU of `kind` off (e.g. 'intel_iommu=off'), or None."""
    if kind == 'intel' and 'off' in _values(args, 'intel_iommu'):
        return 'intel_iommu=off'
    if kind == 'amd' and 'off' in _values(args, 'amd_iommu'):
        return 'amd_iommu=off'
    if 'off' in _values(args, 'iommu'):
        return 'iommu=off'
    return None


def enabled_by(args, kind):
    """The argument that switches the IOMMU of `kind` on, or None (AMD-Vi needs none)."""
    if kind == 'intel' and 'on' in _values(args, 'intel_iommu'):
        return INTEL_IOMMU_ON
    return None


def platform_kind(found, cpu_vendor=None):
    """intel or amd: the IOMMU of the platform, or None.

    found: detect_iommu() facts. A registered unit tells; else the firmware's
    ACPI table (DMAR, IVRS); else the CPU vendor (cpu_vendor: its vendor_id).
    """
    if found['kind'] in ('intel', 'amd'):
        return found['kind']
    return FIRMWARE_TABLES.get(found['firmware_table']) or vendor_kind(cpu_vendor)


def enabling_args(kind):
    """The kernel arguments an IOMMU of `kind` needs to come on: intel_iommu=on for VT-d, none for AMD-Vi."""
    return [INTEL_IOMMU_ON] if kind == 'intel' else []


def recommended_kernel_args(found, cpu_vendor=None):
    """What a Phyllome host boots with for passthrough: enabling_args() of its platform, and iommu=pt
    (no translation for the host's own DMA)."""
    return enabling_args(platform_kind(found, cpu_vendor)) + ['iommu=pt']


def diagnose(found, args, cpu_vendor=None, hypervisor=False):
    """Why the IOMMU that detect_iommu() `found` cannot isolate devices for passthrough, or None when it can.

    args: the kernel's arguments (cmdline.KernelArg); cpu_vendor: the
    CPU's vendor_id; hypervisor: the CPU has the `hypervisor` flag.
    Returns {cause, kind, argument, missing_argument}; kind is intel, amd or
    None; argument is the one switching the IOMMU off; missing_argument the
    one the kernel still needs to switch it on (intel_iommu=on), else None;
    cause is one of CAUSES:
      disabled_by_argument     a kernel argument (`argument`) switches the IOMMU off
      virtual_machine          this host is a VM without a virtual IOMMU
      firmware                 the firmware announces none (enable VT-d / AMD-Vi in its setup)
      not_enabled              the firmware has VT-d, the kernel needs intel_iommu=on
      no_groups                the firmware announces one, yet the kernel formed no groups
      interrupt_remapping_off  active, but interrupts are not remapped (VFIO refuses unsafe interrupts)
    explain() puts a cause into words.
    """
    if found['active']:
        if found['interrupt_remapping'] is False:
            return {'cause': 'interrupt_remapping_off', 'kind': found['kind'], 'argument': None, 'missing_argument': None}
        return None
    kind = platform_kind(found, cpu_vendor)
    argument = disabled_by(args, kind)
    missing = None if enabled_by(args, kind) else next(iter(enabling_args(kind)), None)
    if argument:
        cause = 'disabled_by_argument'
    elif not found['firmware_table']:
        cause = 'virtual_machine' if hypervisor else 'firmware'
    elif missing:
        cause = 'not_enabled'
    else:
        cause = 'no_groups'
    return {'cause': cause, 'kind': kind, 'argument': argument, 'missing_argument': missing}


def explain(problem, found):
    """A diagnose() problem in words: {reason, advice}.

    reason: what is wrong, one clause starting in lower case (host_info
    builds its IOMMU check on it); advice: what to change, as sentences
    (iommu_info returns them). found: the detect_iommu() facts diagnosed.
    """
    cause, kind = problem['cause'], problem['kind']
    table = found['firmware_table'] or _TABLE_OF_KIND.get(kind)
    advice = []
    if cause == 'interrupt_remapping_off':
        reason = ('interrupt remapping is off: VFIO refuses to attach a group to a guest unless '
                  'vfio_iommu_type1.allow_unsafe_interrupts=1, which lets a guest forge interrupts')
        advice.append('Enable interrupt remapping (x2APIC in the firmware setup; no intremap=off) rather than '
                      'allowing unsafe interrupts.')
    elif cause == 'disabled_by_argument':
        reason = 'no IOMMU: the kernel argument %s switches it off, so no device can be passed' % problem['argument']
        advice.append('Remove the kernel argument %s (phyllome.os.kernel_cmdline), then reboot.' % problem['argument'])
    elif cause == 'virtual_machine':
        reason = 'no IOMMU: this host is a virtual machine without a virtual IOMMU, so no device can be passed'
        advice.append('Its hypervisor must give this host a virtual IOMMU (an intel-iommu or virtio-iommu device) '
                      'before it can pass devices on.')
    elif cause == 'firmware':
        reason = 'no IOMMU: the firmware announces none (no ACPI %s table)' % (table or 'DMAR or IVRS')
        advice.append('Enable %s in the firmware setup, then reboot.' % FIRMWARE_SETTINGS.get(kind, 'the IOMMU'))
    elif cause == 'not_enabled':
        reason = 'no IOMMU: the firmware provides VT-d (ACPI %s) but the kernel did not enable it' % table
    elif cause == 'no_groups':
        reason = 'no IOMMU: the firmware announces one (ACPI %s) but the kernel formed no IOMMU groups' % table
        advice.append('Until the kernel forms IOMMU groups no device can be passed: its log (dmesg) says why the '
                      'IOMMU driver did not start.')
    else:
        raise ValueError('unknown IOMMU problem %r' % cause)
    if problem.get('missing_argument'):
        advice.append('Add the kernel argument %s (Phyllome OS hosts use intel_iommu=on iommu=pt) with '
                      'phyllome.os.kernel_cmdline, then reboot.' % problem['missing_argument'])
    return {'reason': reason, 'advice': advice}


def detect_iommu(fs, cmdline_args=None):
    """Detect the host's IOMMU.

    fs: the HostFS to read; cmdline_args: the running kernel's arguments as
    cmdline.KernelArg (read from /proc/cmdline below fs when None).

    Returns a dict:
      active: DMA remapping is on (the kernel formed IOMMU groups)
      kind: intel | amd | virtio | other | none (the first unit's kind)
      label: the kind in words (Intel VT-d (DMAR), AMD-Vi, virtio-iommu, none)
      units: the registered units (name, kind, devices behind it, registers)
      group_count: number of IOMMU groups
      firmware_table: DMAR | IVRS | None, the ACPI table announcing an IOMMU
      interrupt_remapping: True | False | None (see interrupt_remapping_enabled)
      passthrough: the command line asks for passthrough mode (iommu=pt)
      kernel_args: the IOMMU-related arguments of the command line, as written
    """
    if cmdline_args is None:
        cmdline_args = running_kernel_args(fs)
    units = read_units(fs)
    groups = group_numbers(fs)
    kinds = [u['kind'] for u in units]
    kind = kinds[0] if kinds else 'none'
    if kind == 'none' and groups:
        # Groups without a registered unit: an IOMMU driver that does not
        # register in /sys/class/iommu; it still isolates devices.
        kind = 'other'
    return {
        'active': bool(groups),
        'kind': kind,
        'label': IOMMU_KIND_LABELS[kind],
        'units': units,
        'group_count': len(groups),
        'firmware_table': firmware_table(fs),
        'interrupt_remapping': interrupt_remapping_enabled(fs),
        'passthrough': requested_passthrough(cmdline_args),
        'kernel_args': iommu_kernel_args(cmdline_args),
    }
