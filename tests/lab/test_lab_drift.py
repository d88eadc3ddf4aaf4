"""playbooks/drift.yml on two converged lab hosts, run the way AWX runs a job (ansible-runner).

Identical hosts: no difference, the job succeeds. A qemu.conf key set on one
host, one of its guests changed behind the inventory's back and a guest
nobody declared: warnings and the guests' drift, the job still succeeds. A
firmware descriptor masked on one host (UEFI guests could not move there):
the job fails on it. Each change is undone after its test.

Run with `pytest tests/lab/test_lab_drift.py` as root (two systemd-nspawn hosts,
tests/lab/hosts.sh; about 3 min here with the converge).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

ansible_runner = pytest.importorskip('ansible_runner')

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
HOSTS = os.path.join(HERE, 'hosts.sh')
SITE = os.path.join(ROOT, 'playbooks', 'site.yml')
DRIFT = os.path.join(ROOT, 'playbooks', 'drift.yml')
TINY = 'phyllome-lab-tiny'

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root')


def sh(*args, check=True):
    return subprocess.run(args, check=check, text=True, capture_output=True)


def on_host(host, command):
    return sh(HOSTS, 'ssh', host, command).stdout


@pytest.fixture(scope='module')
def fleet():
    """Two converged lab hosts; a function running a playbook on them through ansible-runner."""
    reuse = os.environ.get('LAB_REUSE') == '1'  # a lab already up and converged (while developing)
    if not reuse:
        sh(HOSTS, 'down')
        up = sh(HOSTS, 'up', '2', check=False)
        sys.stderr.write(up.stderr)
        assert up.returncode == 0, up.stderr
    inventory = sh(HOSTS, 'inventory').stdout.strip()
    with tempfile.TemporaryDirectory(prefix='phyllome-lab-drift-') as data:
        def job(playbook, extravars=None):
            runner = ansible_runner.run(private_data_dir=tempfile.mkdtemp(dir=data), playbook=playbook,
                                        inventory=inventory, extravars=extravars or {}, quiet=True)
            return runner
        if not reuse:
            converge = job(SITE)
            assert converge.status == 'successful', ''.join(e.get('stdout', '') + '\n' for e in converge.events)
        yield job
    if not reuse:
        down = sh(HOSTS, 'down', check=False)
        assert down.returncode == 0, down.stderr


def results(runner, event='runner_on_ok'):
    return [e['event_data'] for e in runner.events if e.get('event') == event]


def drift_of(runner, pages):
    facts = [r['res']['ansible_facts']['phyllome_drift'] for r in results(runner)
             if 'phyllome_drift' in r.get('res', {}).get('ansible_facts', {})]
    assert facts, ''.join(e.get('stdout', '') + '\n' for e in runner.events)
    with open(os.path.join(pages, 'index.html')) as f:
        return facts[-1], f.read()


def test_identical_hosts_have_no_drift(fleet, tmp_path):
    runner = fleet(DRIFT, {'phyllome_report_dir': str(tmp_path)})
    drift, index = drift_of(runner, tmp_path)
    assert runner.status == 'successful'
    assert drift['hosts'] == ['lab1', 'lab2'] and drift['errors'] == {}
    assert drift['differences'] == [] and drift['guests'] == {}, drift['lines']
    assert drift['lines'] == ['no difference between lab1, lab2']
    assert 'No difference between the hosts.' in index and 'Every guest is as the inventory declares it.' in index
    # what the fingerprint holds on a converged lab host
    fingerprint = [r['res']['fingerprint'] for r in results(runner) if r['task_action'] == 'phyllome.os.fingerprint_info'][0]
    assert fingerprint['qemu_conf.vnc_listen'] == '127.0.0.1' and fingerprint['qemu_conf.cgroup_controllers'] == []
    assert fingerprint['libvirt_unit.libvirtd.service'] == 'enabled' and fingerprint['cpu.domain_types'] == ['qemu']
    assert fingerprint['version.qemu'] and fingerprint['version.edk2'] and fingerprint['version.swtpm']
    assert 'cpu.model' in fingerprint and any(k.startswith('machine.pc-q35-') for k in fingerprint)


def test_a_qemu_conf_key_and_guests_changed_on_one_host_warn(fleet, tmp_path):
    stray = ("<domain type='qemu'><name>phyllome-lab-stray</name><memory unit='MiB'>64</memory>"
             "<os><type arch='x86_64' machine='q35'>hvm</type></os></domain>")
    on_host('lab2', "cp /etc/libvirt/qemu.conf /root/qemu.conf.drift && echo 'log_timestamp = 0' >> /etc/libvirt/qemu.conf"
            " && virsh -q setmaxmem %s 200M --config && echo \"%s\" > /root/stray.xml && virsh -q define /root/stray.xml"
            % (TINY, stray))
    try:
        runner = fleet(DRIFT, {'phyllome_report_dir': str(tmp_path)})
        drift, index = drift_of(runner, tmp_path)
    finally:
        on_host('lab2', 'cp /root/qemu.conf.drift /etc/libvirt/qemu.conf; virsh -q undefine phyllome-lab-stray;'
                ' virsh -q setmaxmem %s 192M --config' % TINY)
    assert runner.status == 'successful', drift['lines']
    assert drift['blocking'] == [] and drift['warning'] == ['qemu_conf.log_timestamp'], drift['lines']
    assert drift['differences'][0]['values'] == {'lab1': None, 'lab2': 0}
    assert drift['guests'] == {'lab2': {
        'missing': [], 'undeclared': ['phyllome-lab-stray'], 'failed': [],
        'differ': [{'name': TINY, 'changes': ['memory changed from 200 MiB to 192 MiB']}]}}, drift['guests']
    assert 'warn  qemu_conf.log_timestamp: lab1=-; lab2=0' in drift['lines']
    assert 'qemu_conf.log_timestamp' in index and 'phyllome-lab-stray' in index
    success = [r['res']['msg'] for r in results(runner) if r['task'] == 'Fail when a difference blocks migration']
    assert success == ['warning: 1 difference(s) that do not block migration: qemu_conf.log_timestamp'], success


def test_a_firmware_missing_on_one_host_blocks_migration(fleet, tmp_path):
    # An empty descriptor in /etc/qemu/firmware hides the packaged one of that name (QEMU's rule).
    on_host('lab2', 'mkdir -p /etc/qemu/firmware && : > /etc/qemu/firmware/60-edk2-x86_64.json')
    try:
        runner = fleet(DRIFT, {'phyllome_report_dir': str(tmp_path)})
        drift, index = drift_of(runner, tmp_path)
    finally:
        on_host('lab2', 'rm -f /etc/qemu/firmware/60-edk2-x86_64.json')
    assert runner.status == 'failed'
    assert drift['blocking'] == ['firmware.60-edk2-x86_64.json'] and drift['warning'] == [], drift['lines']
    failed = results(runner, 'runner_on_failed')
    assert [f['task'] for f in failed] == ['Fail when a difference blocks migration']
    assert 'firmware.60-edk2-x86_64.json' in failed[0]['res']['msg']
    # the pages were written before the failure, the blocking row on the index
    assert 'firmware.60-edk2-x86_64.json' in index and '1 blocking migration' in index
