# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The model variants behind the domain goldens, and the files that hold them.

fixtures/domain/<case>.xml          the XML the model builds (the golden)
fixtures/domain/<case>.libvirt.xml  what a real libvirtd (QEMU driver) stored for it:
                                    `virsh define`, then `virsh dumpxml --inactive`

Environment switches (both off by default, so a missing file fails):
  PHYLLOME_REGENERATE_GOLDEN=1            rewrite <case>.xml from the builder
  PHYLLOME_CAPTURE_URI=qemu:///system     re-capture <case>.libvirt.xml from that libvirtd
"""

from __future__ import annotations

import os

from ansible_collections.phyllome.os.plugins.module_utils._domain.model import HostContext, build_domain
from ansible_collections.phyllome.os.plugins.module_utils._domain.options import resolve_model

FIXTURES = os.path.join(os.path.dirname(__file__), '..', 'fixtures', 'domain')

REGENERATE = os.environ.get('PHYLLOME_REGENERATE_GOLDEN') == '1'
CAPTURE_URI = os.environ.get('PHYLLOME_CAPTURE_URI')

# A KVM host with UEFI, Secure Boot firmware and swtpm: what a Phyllome OS host offers.
KVM_HOST = HostContext(domain_type='kvm', arch='x86_64', firmware={'efi'}, secure_boot=True, tpm_emulator=True)

CASES = {
    'linux': {
        'name': 'fedora',
        'model': {
            'os': 'linux',
            'memory': '4G',
            'vcpus': 4,
            'disks': [{'path': '/var/lib/libvirt/images/fedora.qcow2', 'format': 'qcow2', 'cache': 'none',
                       'discard': 'unmap'}],
        },
    },
    'windows11': {
        'name': 'win11',
        'model': {
            'os': 'windows',
            'memory': 8192,
            'vcpus': 4,
            'cpu': {'sockets': 1, 'cores': 2, 'threads': 2},
            'disks': [
                {'path': '/var/lib/libvirt/images/win11.raw'},
                {'device': 'cdrom', 'path': '/var/lib/libvirt/isos/Win11_23H2_English_x64.iso'},
                {'device': 'cdrom', 'path': '/var/lib/libvirt/isos/virtio-win.iso'},
            ],
            'networks': [{'type': 'network', 'source': 'default', 'mac': '52:54:00:6b:3c:11'}],
        },
    },
    'passthrough': {
        'name': 'gaming',
        'model': {
            'os': 'windows',
            'memory': '16G',
            'vcpus': 8,
            'cpu': {'mode': 'host-passthrough', 'cores': 4, 'threads': 2},
            'disks': [{'path': '/dev/disk/by-id/nvme-Samsung_SSD_980_PRO_2TB_S6B0NL0T123456', 'cache': 'none'}],
            'networks': [{'type': 'bridge', 'source': 'br0'}],
            'graphics': {'type': 'none'},
            'hostdevs': [
                {'address': '0000:01:00.0'},
                {'address': '0000:01:00.1'},
                {'type': 'usb', 'vendor': '046d', 'product': 'c52b'},
                {'type': 'usb', 'address': '3:4'},
            ],
            'memory_backing': {'hugepages': True, 'hugepage_size': '1G'},
        },
    },
    'virtiofs': {
        'name': 'devbox',
        'model': {
            'os': 'linux',
            'memory': 2048,
            'firmware': 'efi',
            'secure_boot': True,
            'disks': [{'pool': 'default', 'volume': 'devbox.qcow2', 'format': 'qcow2', 'size': '40G'}],
            'networks': [{'type': 'network', 'source': 'default', 'mac': '52:54:00:12:34:56'},
                         {'type': 'user'}],
            'graphics': {'type': 'vnc'},
            'filesystems': [
                {'source': '/srv/projects', 'target': 'projects'},
                {'source': '/var/lib/libvirt/isos', 'target': 'isos'},
            ],
        },
    },
    # A fleet CPU as phyllome.os.cpu_baseline returns it (the Haswell host-model CPU of
    # tests/fixtures/domcaps/intel-haswell-qemu-2.12.xml, one feature disabled), with a topology beside it.
    'fleet': {
        'name': 'roaming',
        'model': {
            'os': 'linux',
            'vcpus': 4,
            'cpu': {
                'mode': 'custom', 'match': 'exact', 'model': 'Haswell-noTSX', 'fallback': 'forbid', 'vendor': 'Intel',
                'features': [{'name': 'vme', 'policy': 'require'}, {'name': 'ss', 'policy': 'require'},
                             {'name': 'f16c', 'policy': 'require'}, {'name': 'rdrand', 'policy': 'require'},
                             {'name': 'hypervisor', 'policy': 'require'}, {'name': 'arat', 'policy': 'require'},
                             {'name': 'tsc_adjust', 'policy': 'require'}, {'name': 'xsaveopt', 'policy': 'require'},
                             {'name': 'pdpe1gb', 'policy': 'require'}, {'name': 'abm', 'policy': 'require'},
                             {'name': 'invtsc', 'policy': 'disable'}],
                'threads': 2,
            },
            'disks': [{'pool': 'default', 'volume': 'roaming.qcow2', 'format': 'qcow2', 'size': '20G'}],
        },
    },
    'other-bios': {
        'name': 'freedos',
        'model': {
            'os': 'other',
            'firmware': 'bios',
            'memory': 256,
            'vcpus': 1,
            'disks': [{'path': '/var/lib/libvirt/images/freedos.img', 'bus': 'sata'},
                      {'device': 'cdrom', 'path': '/var/lib/libvirt/isos/FD13LIVE.iso', 'boot_order': 1}],
        },
    },
}


def build(case):
    spec = CASES[case]
    return build_domain(spec['name'], resolve_model(spec['model']), KVM_HOST)


def golden_path(case):
    return os.path.join(FIXTURES, case + '.xml')


def libvirt_path(case):
    return os.path.join(FIXTURES, case + '.libvirt.xml')


def read(path):
    with open(path) as f:
        return f.read()


def write(path, text):
    with open(path, 'w') as f:
        f.write(text)
