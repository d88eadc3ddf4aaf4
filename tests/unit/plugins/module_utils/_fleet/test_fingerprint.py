# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_fleet.fingerprint: composing fingerprints and comparing a fleet.

The fingerprints here are composed for the tests (not recorded on machines):
two hosts built from the same base, with one thing changed at a time. The
CPUs come from the domain capabilities recorded on real hosts (tests/fixtures/domcaps/).
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._fleet import fingerprint as fp
from ansible_collections.phyllome.os.plugins.module_utils._fleet.cpu_baseline import host_model_cpu
from ansible_collections.phyllome.os.plugins.module_utils._host.cmdline import kernel_args

DOMCAPS = os.path.normpath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'fixtures', 'domcaps'))


def recorded_cpu(name):
    with open(os.path.join(DOMCAPS, name), encoding='utf-8') as f:
        return host_model_cpu(f.read(), name)


ROME = recorded_cpu('amd-epyc-rome-qemu-7.2.xml')
SKYLAKE = recorded_cpu('intel-skylake-qemu-4.2.xml')

OVMF_MS = {'name': '40-edk2-x86_64-secure-enrolled.json', 'executable': '/usr/share/OVMF/OVMF_CODE_4M.ms.fd',
           'features': ['enrolled-keys', 'requires-smm', 'secure-boot'], 'x86_64_q35': True}
OVMF = {'name': '60-edk2-x86_64.json', 'executable': '/usr/share/OVMF/OVMF_CODE_4M.fd', 'features': [],
        'x86_64_q35': True}
SEABIOS_LIKE = {'name': '90-other.json', 'executable': '/usr/share/x.fd', 'features': [], 'x86_64_q35': False}


def composed(**changes):
    """A composed fingerprint of a Debian 12 host; `changes` replace compose()'s arguments."""
    args = {
        'cmdline_args': kernel_args('BOOT_IMAGE=/vmlinuz-6.1.0-28-amd64 root=UUID=1234 ro quiet intel_iommu=on iommu=pt '
                                    'console=tty0 console=ttyS0,115200'),
        'cpu': ROME,
        'domain_types': ['kvm', 'qemu'],
        'machines': ['pc-q35-7.2', 'q35', 'pc-i440fx-7.2'],
        'firmware': [OVMF_MS, OVMF, SEABIOS_LIKE],
        'versions': {'libvirt': '9.0.0', 'qemu': '7.2.0', 'edk2': '2022.11-6+deb12u1', 'swtpm': '0.7.1-1.3'},
        'units': ['libvirtd.service', 'libvirtd.socket', 'virtlogd.socket'],
        'qemu_conf': {'vnc_listen': '127.0.0.1', 'cgroup_controllers': []},
        'variables': {'phyllome_host_hugepages': 0, 'phyllome_host_kernel_args': ['mitigations=auto']},
    }
    args.update(changes)
    return fp.compose(**args)


def test_composed_fingerprint_keys():
    got = composed()
    # the host's own disks and boot image are not part of it; a repeated argument keeps every value
    assert 'kernel_arg.root' not in got and 'kernel_arg.BOOT_IMAGE' not in got
    assert got['kernel_arg.ro'] is True and got['kernel_arg.intel_iommu'] == 'on'
    assert got['kernel_arg.console'] == ['tty0', 'ttyS0,115200']
    assert (got['cpu.vendor'], got['cpu.model']) == ('AMD', 'EPYC-Rome')
    assert got['cpu.feature.%s' % ROME['features'][0]['name']] == ROME['features'][0]['policy']
    assert got['cpu.domain_types'] == ['kvm', 'qemu']
    assert got['machine.pc-q35-7.2'] == 'offered'
    assert got['firmware.40-edk2-x86_64-secure-enrolled.json'] == (
        '/usr/share/OVMF/OVMF_CODE_4M.ms.fd (secure-boot, enrolled-keys, requires-smm)')
    assert got['firmware.60-edk2-x86_64.json'] == '/usr/share/OVMF/OVMF_CODE_4M.fd'
    assert 'firmware.90-other.json' not in got  # not offered to x86_64 q35 guests
    assert got['version.qemu'] == '7.2.0' and got['libvirt_unit.virtlogd.socket'] == 'enabled'
    assert got['qemu_conf.cgroup_controllers'] == [] and got['var.phyllome_host_hugepages'] == 0


def test_identical_hosts_have_no_drift():
    drift = fp.fleet_drift({'hv1': composed(), 'hv2': composed()})
    assert drift['differences'] == [] and drift['blocking'] == [] and drift['warning'] == []
    assert fp.table_lines(drift) == ['no difference between hv1, hv2']


@pytest.mark.parametrize('change, keys, level', [
    # a qemu.conf key set on one host only: a warning
    ({'qemu_conf': {'vnc_listen': '127.0.0.1', 'cgroup_controllers': [], 'log_timestamp': 0}},
     ['qemu_conf.log_timestamp'], 'warn'),
    ({'versions': {'libvirt': '9.0.0', 'qemu': '7.2.0', 'edk2': '2023.05-1', 'swtpm': '0.7.1-1.3'}},
     ['version.edk2'], 'warn'),
    ({'units': ['virtqemud.socket', 'virtlogd.socket']},
     ['libvirt_unit.libvirtd.service', 'libvirt_unit.libvirtd.socket', 'libvirt_unit.virtqemud.socket'], 'warn'),
    ({'cmdline_args': kernel_args('root=UUID=9999 ro quiet iommu=pt console=tty0 console=ttyS0,115200')},
     ['kernel_arg.intel_iommu'], 'warn'),
    ({'variables': {'phyllome_host_hugepages': 512, 'phyllome_host_kernel_args': ['mitigations=auto']}},
     ['var.phyllome_host_hugepages'], 'warn'),
    # what stops a guest from moving: the machine types, the firmware, the KVM availability
    ({'machines': ['q35', 'pc-i440fx-7.2']}, ['machine.pc-q35-7.2'], 'block'),
    ({'firmware': [OVMF, SEABIOS_LIKE]}, ['firmware.40-edk2-x86_64-secure-enrolled.json'], 'block'),
    ({'domain_types': ['qemu']}, ['cpu.domain_types'], 'block'),
])
def test_one_difference(change, keys, level):
    drift = fp.fleet_drift({'hv1': composed(), 'hv2': composed(**change)})
    assert [d['key'] for d in drift['differences']] == keys
    assert {d['severity'] for d in drift['differences']} == {level}
    assert (drift['blocking'] if level == 'block' else drift['warning']) == keys
    for diff in drift['differences']:
        assert set(diff['values']) == {'hv1', 'hv2'}
        assert diff['values']['hv1'] != diff['values']['hv2']
        assert (diff['why'] is None) == (level == 'warn')


def test_an_intel_and_an_amd_host_block_on_the_cpu():
    drift = fp.fleet_drift({'amd': composed(), 'intel': composed(cpu=SKYLAKE), 'amd2': composed()})
    assert drift['hosts'] == ['amd', 'amd2', 'intel']
    blocking = drift['blocking']
    assert 'cpu.vendor' in blocking and 'cpu.model' in blocking
    assert all(key.startswith('cpu.') for key in blocking) and drift['warning'] == []
    vendor = [d for d in drift['differences'] if d['key'] == 'cpu.vendor'][0]
    assert vendor['values'] == {'amd': 'AMD', 'amd2': 'AMD', 'intel': 'Intel'}
    assert 'cpu_baseline' in vendor['why']
    lines = fp.table_lines(drift)
    assert lines[0].startswith('%d differences between amd, amd2, intel (%d block migration)' % (
        len(drift['differences']), len(blocking)))
    assert 'BLOCK cpu.vendor: amd=AMD; amd2=AMD; intel=Intel' in lines


def test_absent_keys_show_as_a_dash():
    drift = fp.fleet_drift({'hv1': composed(), 'hv2': composed(qemu_conf={'vnc_listen': '0.0.0.0'})})
    lines = fp.table_lines(drift)
    assert 'warn  qemu_conf.cgroup_controllers: hv1=[]; hv2=-' in lines
    assert 'warn  qemu_conf.vnc_listen: hv1=127.0.0.1; hv2=0.0.0.0' in lines


def test_secret_variables_are_compared_by_digest_never_shown():
    one = composed(variables={'phyllome_host_tls_key': 'PRIVATE-ONE', 'phyllome_host_admin_password': 's3cret'})
    two = composed(variables={'phyllome_host_tls_key': 'PRIVATE-TWO', 'phyllome_host_admin_password': 's3cret'})
    drift = fp.fleet_drift({'hv1': one, 'hv2': two})
    assert [d['key'] for d in drift['differences']] == ['var.phyllome_host_tls_key']
    text = repr(drift) + '\n'.join(fp.table_lines(drift)) + repr(one) + repr(two)
    assert 'PRIVATE' not in text and 's3cret' not in text
    assert one['var.phyllome_host_tls_key'].startswith('sha256:')
    # a plain variable is kept as it is
    assert fp.masked('phyllome_host_hugepages', 3) == 3


def test_the_host_uuid_differs_by_design_and_is_no_drift():
    one = composed(variables={'phyllome_host_libvirt_host_uuid': 'c645d94f-d336-425a-96ba-4e89f186f916', 'phyllome_host_sshd': True})
    two = composed(variables={'phyllome_host_libvirt_host_uuid': '232f31d8-06f2-434f-b026-bb765686f38e', 'phyllome_host_sshd': False})
    drift = fp.fleet_drift({'hv1': one, 'hv2': two})
    assert [d['key'] for d in drift['differences']] == ['var.phyllome_host_sshd']
    assert 'var.phyllome_host_libvirt_host_uuid' not in one


def test_each_hosts_own_tls_certificates_are_no_drift_but_the_ca_is():
    def tls(host, ca):
        return composed(variables={
            'phyllome_host_libvirt_tls_ca_cert': '-----BEGIN CERTIFICATE-----\n%s\n' % ca,
            'phyllome_host_libvirt_tls_server_cert': '-----BEGIN CERTIFICATE-----\nserver %s\n' % host,
            'phyllome_host_libvirt_tls_server_key': '-----BEGIN PRIVATE KEY-----\nserver %s\n' % host,
            'phyllome_host_libvirt_tls_client_cert': '-----BEGIN CERTIFICATE-----\nclient %s\n' % host,
            'phyllome_host_libvirt_tls_client_key': '-----BEGIN PRIVATE KEY-----\nclient %s\n' % host})
    assert fp.fleet_drift({'hv1': tls('hv1', 'fleet CA'), 'hv2': tls('hv2', 'fleet CA')})['differences'] == []
    drift = fp.fleet_drift({'hv1': tls('hv1', 'fleet CA'), 'hv2': tls('hv2', 'another CA')})
    assert [d['key'] for d in drift['differences']] == ['var.phyllome_host_libvirt_tls_ca_cert']


DOMAINS_CHECK = {
    'changed': True,
    'results': [
        {'name': 'web', 'status': 'unchanged'},
        {'name': 'db', 'status': 'updated', 'differences': [
            {'change': 'memory changed from 200 MiB to 192 MiB', 'path': 'memory', 'class': 'next_boot'}],
         'changes': ['memory'], 'actions': ['define domain db']},
        {'name': 'idle', 'status': 'updated', 'differences': [], 'changes': [], 'actions': ['start domain idle']},
        {'name': 'new', 'status': 'created', 'actions': ['define domain new']},
        {'name': 'stray', 'status': 'undeclared', 'index': None},
        {'name': 'bad', 'status': 'failed', 'msg': 'no such pool'},
    ],
}


def test_guest_drift_from_the_domains_check_mode_result():
    drift = fp.guest_drift(DOMAINS_CHECK)
    assert drift == {
        'missing': ['new'],
        'differ': [{'name': 'db', 'changes': ['memory changed from 200 MiB to 192 MiB']},
                   {'name': 'idle', 'changes': ['start domain idle']}],
        'undeclared': ['stray'],
        'failed': [{'name': 'bad', 'msg': 'no such pool'}],
    }
    failed = fp.guest_drift({'failed': True, 'msg': 'cannot connect to libvirt'})
    assert failed['failed'] == [{'name': None, 'msg': 'cannot connect to libvirt'}]
    # as a play registers it under failed_when: false
    refused = fp.guest_drift({'changed': False, 'failed_when_result': False, 'msg': 'value of state must be one of: ...'})
    assert refused['failed'] == [{'name': None, 'msg': 'value of state must be one of: ...'}]


def test_drift_of_registered_results():
    drift = fp.drift_of_results({
        'hv1': {'fingerprint_info': {'changed': False, 'fingerprint': composed(variables={}), 'notes': []},
                'variables': {'phyllome_host_hugepages': 0},
                'guests': {'results': [{'name': 'web', 'status': 'unchanged'}]}},
        'hv2': {'fingerprint_info': {'changed': False, 'fingerprint': composed(variables={}), 'notes': []},
                'variables': {'phyllome_host_hugepages': 64},
                'guests': DOMAINS_CHECK},
        'hv3': {'fingerprint_info': {'failed': True, 'msg': 'cannot connect to libvirt at qemu:///system'},
                'guests': {'skipped': True}},
        'hv4': {},
    })
    assert drift['hosts'] == ['hv1', 'hv2', 'hv3', 'hv4']
    assert drift['errors'] == {'hv3': 'cannot connect to libvirt at qemu:///system', 'hv4': 'fingerprint_info did not run'}
    assert [d['key'] for d in drift['differences']] == ['var.phyllome_host_hugepages']
    assert list(drift['guests']) == ['hv2']
    assert drift['lines'] == [
        '1 difference between hv1, hv2 (0 block migration)',
        'warn  var.phyllome_host_hugepages: hv1=0; hv2=64',
        'error hv3: no fingerprint: cannot connect to libvirt at qemu:///system',
        'error hv4: no fingerprint: fingerprint_info did not run',
        'guest hv2/new: declared, not defined',
        'guest hv2/db: differs from the inventory (converging would do: memory changed from 200 MiB to 192 MiB)',
        'guest hv2/idle: differs from the inventory (converging would do: start domain idle)',
        'guest hv2/stray: defined, declared nowhere',
        'guest hv2/bad: not compared: no such pool',
    ]
