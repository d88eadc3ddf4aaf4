# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's CPU as /proc/cpuinfo shows it, and what its vendor implies.

The vendor decides the platform's virtualization extension (VT-x or AMD-V,
with its KVM module) and the IOMMU its firmware can offer (VT-d or AMD-Vi):
host_info and iommu_info both read it from here.
"""

from __future__ import annotations

# vendor_id -> the platform kind, in the kernel's words (kvm_intel/kvm_amd, intel_iommu/amd_iommu).
# Hygon's Dhyana is a licensed Zen: AMD-V, kvm_amd and AMD-Vi.
VENDOR_KINDS = {'GenuineIntel': 'intel', 'AuthenticAMD': 'amd', 'HygonGenuine': 'amd'}

# Platform kind -> the cpuinfo flag of its virtualization extension, the extension's name, and the
# KVM module that drives it.
VIRTUALIZATION = {
    'intel': {'flag': 'vmx', 'extension': 'Intel VT-x', 'kvm_module': 'kvm_intel'},
    'amd': {'flag': 'svm', 'extension': 'AMD-V', 'kvm_module': 'kvm_amd'},
}
_FLAG_KINDS = dict((entry['flag'], kind) for kind, entry in VIRTUALIZATION.items())


def vendor_kind(vendor):
    """intel or amd for a vendor_id (GenuineIntel, AuthenticAMD, HygonGenuine), else None."""
    return VENDOR_KINDS.get(vendor)


def virtualization(vendor):
    """The VIRTUALIZATION entry of a vendor_id, or None for a vendor without a known extension."""
    return VIRTUALIZATION.get(vendor_kind(vendor))


def extension_of_flag(flag):
    """The name of the extension a cpuinfo flag stands for (vmx: Intel VT-x), or None."""
    kind = _FLAG_KINDS.get(flag)
    return VIRTUALIZATION[kind]['extension'] if kind else None


def parse_cpuinfo(text):
    """Vendor, model and virtualization flags from /proc/cpuinfo (first processor; counts all)."""
    blocks = [b for b in (text or '').split('\n\n') if b.strip()]
    fields = {}
    for line in blocks[0].splitlines() if blocks else []:
        key, sep, value = line.partition(':')
        if sep:
            fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get('flags', '').split())

    def number(key):
        value = fields.get(key, '')
        return int(value) if value.isdigit() else None

    return {
        'vendor': fields.get('vendor_id'),
        'model_name': fields.get('model name'),
        'family': number('cpu family'),
        'model': number('model'),
        'stepping': number('stepping'),
        'logical_cpus': sum(1 for b in blocks if b.lstrip().startswith('processor')),
        'virtualization_flags': sorted(flags & set(_FLAG_KINDS)),
        # Set by the kernel when it runs under a hypervisor.
        'hypervisor': 'hypervisor' in flags,
    }


def read_cpu(fs):
    """parse_cpuinfo() of /proc/cpuinfo below the HostFS `fs`."""
    return parse_cpuinfo(fs.read_text('/proc/cpuinfo'))
