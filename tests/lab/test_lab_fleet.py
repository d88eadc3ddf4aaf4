"""Two lab hosts, linked: what a fleet of Phyllome hosts does between its hosts.

Two bare hosts (tests/lab/hosts.sh, each in its own network namespace with its
own libvirtd and host UUID) linked by a veth pair between their namespaces,
each with the other's name in /etc/hosts and an SSH key the other accepts (the
lab's own), converged with playbooks/site.yml through ansible-runner as
test_lab.py does, without the lab's guests (LAB_GUESTS=0). playbooks/drift.yml
compares the two hosts, then with a deliberate difference (a qemu.conf key,
guests changed: warnings; a firmware missing: failure). The tests boot the
small "acpi" guest of tests/guests/ (cached) on them and move VMs from lab1 to
lab2 with phyllome.os.migrate, run the way a user runs it: a play on the
source host, the target a qemu+ssh:// URI (fleet_migrate.yml), and give the
guests of both the fleet CPU (the guests role, phyllome_guests_cpu: fleet,
fleet_guests.yml).

Run with `make lab-test` (root).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from test_lab import HOSTS, ROOT, SITE, Job, client_template, make_pki, server_template

ansible_runner = pytest.importorskip('ansible_runner')

HERE = os.path.dirname(os.path.abspath(__file__))
MIGRATE = os.path.join(HERE, 'fleet_migrate.yml')
FLEET_GUESTS = os.path.join(HERE, 'fleet_guests.yml')
MIGRATE_PLAYBOOK = os.path.join(ROOT, 'playbooks', 'migrate.yml')
FLEET_TLS = os.path.join(HERE, 'fleet_tls.yml')
GUESTS = [sys.executable, os.path.join(ROOT, 'tests', 'guests', 'guests.py')]
LAB_DIR = os.path.join(ROOT, '.build', 'lab-fleet')
ENV = dict(os.environ, LAB_DIR=LAB_DIR, LAB_GUESTS='0')
# Where the hosts find the test guest's kernel and initramfs (put there by the fixture, as an image server would).
GUEST_DIR = '/var/lib/phyllome-lab'
IMAGES = '/var/lib/libvirt/images'
# How long the failure test keeps the link between the hosts down: beyond what the module waits for an answer.
OUTAGE = 50

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root')


def lab_sh(*args, check=True, stdin=None):
    run = subprocess.run((HOSTS,) + args, env=ENV, check=False, text=True, capture_output=True, input=stdin)
    if check and run.returncode != 0:
        raise AssertionError('%s: exit %d\n%s%s' % (' '.join(args), run.returncode, run.stdout, run.stderr))
    return run


def on_host(host, command, stdin=None):
    """A shell command on a lab host; its stdout."""
    return lab_sh('ssh', host, command, stdin=stdin).stdout


def host_path(host, path):
    """A path inside a lab host's tree, seen from this machine."""
    return os.path.join(LAB_DIR, 'hosts', host, 'root', path.lstrip('/'))


def wait_serial(host, name, pattern, timeout=300):
    """Wait for a line of a guest's console on a host (generous: TCG boots slow down under load)."""
    subprocess.run(GUESTS + ['wait-serial', host_path(host, serial(name)), pattern, '--timeout', str(timeout)],
                   check=True, capture_output=True, text=True)


def wait_state(host, name, state, timeout=120):
    on_host(host, 'for i in $(seq %d); do [ "$(virsh domstate %s)" = %s ] && exit 0; sleep 1; done; '
                  'virsh domstate %s; exit 1' % (timeout, name, json.dumps(state), name))


def serial(name):
    return '/var/log/libvirt/qemu/%s.serial' % name


def define_guest(host, name, disk, firmware=None, tpm=False, start=True):
    """The acpi test guest (direct kernel boot from GUEST_DIR), with a qcow2 disk of the pool default as vdb."""
    argv = GUESTS + ['xml', 'acpi', '--name', name, '--serial', serial(name)]
    argv += ['--firmware', firmware] if firmware else []
    argv += ['--tpm'] if tpm else []
    xml = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    xml = re.sub(r'<kernel>[^<]*/', '<kernel>%s/' % GUEST_DIR, xml)
    xml = re.sub(r'<initrd>[^<]*/', '<initrd>%s/' % GUEST_DIR, xml)
    xml = xml.replace('<devices>', '<devices><disk type="file" device="disk"><driver name="qemu" type="qcow2"/>'
                      '<source file="%s/%s"/><target dev="vdb" bus="virtio"/></disk>' % (IMAGES, disk), 1)
    on_host(host, 'virsh -q pool-refresh default >/dev/null && virsh -q define /dev/stdin >/dev/null', stdin=xml)
    if start:
        on_host(host, 'virsh -q start %s' % name)


def sha256(host, *paths):
    return on_host(host, 'cd / && sha256sum %s' % ' '.join(p.lstrip('/') for p in paths))


@pytest.fixture(scope='module')
def fleet():
    """Two linked, converged lab hosts; yields the job runner (a playbook and its extra vars, as AWX runs them)."""
    lab_sh('down')
    try:
        up = lab_sh('up', '2', check=False)
        sys.stderr.write(up.stderr)
        assert up.returncode == 0, up.stderr
        inventory = lab_sh('inventory').stdout.strip()
        guest = json.loads(subprocess.run(GUESTS + ['build', 'acpi'], check=True, capture_output=True, text=True).stdout)
        for host in ('lab1', 'lab2'):
            os.makedirs(host_path(host, GUEST_DIR), exist_ok=True)
            for field, name in (('kernel', 'vmlinuz'), ('initrd', 'initrd.img')):
                shutil.copyfile(guest['acpi'][field], os.path.join(host_path(host, GUEST_DIR), name))
        with tempfile.TemporaryDirectory(prefix='phyllome-lab-fleet-') as data:
            def job(playbook, extravars=None, cmdline=None, ident=None):
                runner = ansible_runner.run(
                    private_data_dir=tempfile.mkdtemp(dir=data), playbook=playbook, inventory=inventory,
                    extravars=extravars or {}, cmdline=cmdline, ident=ident, quiet=True, json_mode=False)
                return Job(runner)
            converged = job(SITE, ident='fleet-converge')
            assert converged.status == 'successful', converged.stdout()
            assert converged.fact('phyllome_host_ready') is True
            yield job
    finally:
        # also when the setup failed: the hosts never outlive the module
        down = lab_sh('down', check=False)
        assert down.returncode == 0, down.stderr


def migrate(fleet, name, check=False, **options):
    """phyllome.os.migrate on lab1 (the source, qemu:///system) to qemu+ssh://lab2/system: its result."""
    job = fleet(MIGRATE, extravars=dict(migrate_name=name, migrate_source='lab1', migrate_target='lab2', **options),
                cmdline='--check' if check else None, ident='migrate-%s' % name)
    results = [dict(r['res'], failed=event == 'runner_on_failed') for event in ('runner_on_ok', 'runner_on_failed')
               for r in job.results(event) if r.get('task_action') == 'phyllome.os.migrate']
    assert len(results) == 1, job.stdout()
    return results[0]


def test_the_hosts_reach_each_other_over_qemu_ssh(fleet):
    """lab1 reaches lab2's libvirt by name over the veth link, with the lab's key; each has its own host UUID, the one
    the inventory gave the host role (phyllome_host_libvirt_host_uuid)."""
    assert on_host('lab1', 'virsh -c qemu+ssh://lab2/system hostname').strip() == 'lab2'
    assert on_host('lab2', 'virsh -c qemu+ssh://lab1/system hostname').strip() == 'lab1'
    uuids = {h: re.search(r'<uuid>([^<]+)</uuid>', on_host(h, 'virsh capabilities')).group(1) for h in ('lab1', 'lab2')}
    assert uuids['lab1'] != uuids['lab2'], uuids
    for host in ('lab1', 'lab2'):
        with open(os.path.join(LAB_DIR, 'hosts', host, 'host_uuid'), encoding='utf-8') as f:
            assert uuids[host] == f.read().strip(), uuids
    # the link is the namespaces' own: the machine's namespace has no such address
    assert '169.254.77.' not in subprocess.run(['ip', '-br', 'addr'], check=True, capture_output=True, text=True).stdout


DRIFT = os.path.join(ROOT, 'playbooks', 'drift.yml')
# A guest the drift tests declare (extra vars: on both hosts), defined from XML: only what it says is compared.
DRIFT_GUEST = {'name': 'fleet-drift', 'state': 'shutdown', 'xml': (
    "<domain type='qemu'><name>fleet-drift</name><memory unit='MiB'>192</memory>"
    "<os><type arch='x86_64' machine='q35'>hvm</type></os></domain>")}


def drift(fleet, tmp_path, **extravars):
    """playbooks/drift.yml on both hosts (the pages into tmp_path): the job, the fleet_drift fact, the index page."""
    job = fleet(DRIFT, extravars=dict(phyllome_report_dir=str(tmp_path), **extravars), ident='drift')
    result = job.fact('phyllome_drift')
    assert result is not None, job.stdout()
    with open(os.path.join(str(tmp_path), 'index.html')) as f:
        return job, result, f.read()


def test_drift_identical_hosts(fleet, tmp_path):
    """Two hosts converged alike: no difference, the job succeeds; the fingerprint holds what a host reads."""
    job, result, index = drift(fleet, tmp_path)
    assert job.status == 'successful', job.stdout()
    assert result['hosts'] == ['lab1', 'lab2'] and result['errors'] == {}
    assert result['differences'] == [] and result['guests'] == {}, result['lines']
    assert result['lines'] == ['no difference between lab1, lab2']
    assert 'No difference between the hosts.' in index and 'Every guest is as the inventory declares it.' in index
    fingerprint = [r['res']['fingerprint'] for r in job.results() if r['task_action'] == 'phyllome.os.fingerprint_info'][0]
    assert fingerprint['qemu_conf.vnc_listen'] == '127.0.0.1' and fingerprint['qemu_conf.cgroup_controllers'] == []
    assert fingerprint['libvirt_unit.libvirtd.service'] == 'enabled' and fingerprint['cpu.domain_types'] == ['qemu']
    assert fingerprint['version.qemu'] and fingerprint['version.edk2'] and fingerprint['version.swtpm']
    assert fingerprint['cpu.model'] and any(key.startswith('machine.pc-q35-') for key in fingerprint)


def test_drift_a_qemu_conf_key_and_guests_changed_on_one_host_warn(fleet, tmp_path):
    """A qemu.conf key on lab2 only, a declared guest changed there and one nobody declared: warnings, success."""
    for host in ('lab1', 'lab2'):
        on_host(host, 'virsh -q define /dev/stdin >/dev/null', stdin=DRIFT_GUEST['xml'])
    stray = DRIFT_GUEST['xml'].replace('fleet-drift', 'fleet-stray')
    on_host('lab2', "cp /etc/libvirt/qemu.conf /root/qemu.conf.drift && echo 'log_timestamp = 0' >> /etc/libvirt/qemu.conf"
                    " && virsh -q setmaxmem fleet-drift 200M --config && virsh -q define /dev/stdin >/dev/null", stdin=stray)
    try:
        job, result, index = drift(fleet, tmp_path, phyllome_guests=[DRIFT_GUEST])
    finally:
        on_host('lab2', 'cp /root/qemu.conf.drift /etc/libvirt/qemu.conf && virsh -q undefine fleet-stray')
        for host in ('lab1', 'lab2'):
            on_host(host, 'virsh -q undefine fleet-drift')
    assert job.status == 'successful', job.stdout()
    assert result['blocking'] == [] and result['warning'] == ['qemu_conf.log_timestamp'], result['lines']
    assert result['differences'][0]['values'] == {'lab1': None, 'lab2': 0}
    assert result['guests'] == {'lab2': {
        'missing': [], 'undeclared': ['fleet-stray'], 'failed': [],
        'differ': [{'name': 'fleet-drift', 'changes': ['memory changed from 200 MiB to 192 MiB']}]}}, result['guests']
    assert 'warn  qemu_conf.log_timestamp: lab1=-; lab2=0' in result['lines']
    assert 'qemu_conf.log_timestamp' in index and 'fleet-stray' in index
    verdict = [r['res']['msg'] for r in job.results() if r['task'] == 'Fail when a difference blocks migration']
    assert verdict == ['warning: 1 difference(s) that do not block migration: qemu_conf.log_timestamp'], verdict


def test_drift_a_firmware_missing_on_one_host_blocks_migration(fleet, tmp_path):
    """A UEFI firmware descriptor masked on lab2 (an empty file of its name in /etc/qemu/firmware): the job fails."""
    on_host('lab2', 'mkdir -p /etc/qemu/firmware && : > /etc/qemu/firmware/60-edk2-x86_64.json')
    try:
        job, result, index = drift(fleet, tmp_path, phyllome_drift_guests=False)
    finally:
        on_host('lab2', 'rm -f /etc/qemu/firmware/60-edk2-x86_64.json')
    assert job.status == 'failed'
    assert result['blocking'] == ['firmware.60-edk2-x86_64.json'] and result['warning'] == [], result['lines']
    assert job.failed_task()[0] == 'Fail when a difference blocks migration'
    assert 'firmware.60-edk2-x86_64.json' in job.failed_task()[1]
    # the pages were written before the failure, the blocking row on the index
    assert 'firmware.60-edk2-x86_64.json' in index and '1 blocking migration' in index


def test_cold_migration_of_a_uefi_tpm_guest(fleet, tmp_path):
    """A stopped UEFI + TPM guest whose qcow2 disk holds a file: it moves, the same bytes, the source keeps nothing."""
    name, disk = 'fleet-cold', 'fleet-cold-data.qcow2'
    marker = 'written by test_lab_fleet at %s' % time.time()
    (tmp_path / 'tree').mkdir()
    (tmp_path / 'tree' / 'marker.txt').write_text(marker + '\n')
    subprocess.run(['mke2fs', '-q', '-t', 'ext4', '-d', str(tmp_path / 'tree'), str(tmp_path / 'data.raw'), '64M'], check=True)
    subprocess.run(['qemu-img', 'convert', '-O', 'qcow2', str(tmp_path / 'data.raw'), host_path('lab1', '%s/%s' % (IMAGES, disk))],
                   check=True)
    define_guest('lab1', name, disk, firmware='efi', tpm=True)
    wait_serial('lab1', name, '^PHYLLOME-GUEST-READY kind=acpi')
    # shut down on the source first, so that its varstore and TPM state are final
    on_host('lab1', 'virsh -q shutdown %s' % name)
    wait_state('lab1', name, 'shut off')
    uuid = on_host('lab1', 'virsh domuuid %s' % name).strip()
    state = ['/var/lib/libvirt/qemu/nvram/%s_VARS.fd' % name, '/var/lib/libvirt/swtpm/%s/tpm2/tpm2-00.permall' % uuid]
    before = sha256('lab1', *state)

    planned = migrate(fleet, name, check=True, migrate_start=False)
    assert planned['changed'] and planned['plan']['bytes_to_copy'] > 0, planned
    assert name not in on_host('lab2', 'virsh -q list --all --name').split()

    moved = migrate(fleet, name, migrate_start=False)
    assert moved['changed'] and not moved['failed'] and moved['state'] == 'migrated', moved
    assert [c['verified'] for c in moved['copied']] == [True] * 4, moved['copied']
    # all smaller than a read-back segment (128 MiB): read back through libvirt, no ssh of the module's own
    assert [c['verified_by'] for c in moved['copied']] == ['read-back'] * 4, moved['copied']
    assert sha256('lab2', *state) == before
    assert on_host('lab2', 'virsh domuuid %s' % name).strip() == uuid
    # nothing left on the source: domain, disk, varstore, TPM state
    assert name not in on_host('lab1', 'virsh -q list --all --name').split()
    assert on_host('lab1', 'ls %s/%s %s /var/lib/libvirt/swtpm/%s 2>/dev/null; true' % (IMAGES, disk, state[0], uuid)) == ''

    again = migrate(fleet, name, migrate_start=False)
    assert not again['changed'] and again['state'] == 'migrated' and again['actions'] == [], again

    # the file is in the disk on the target, and the guest boots there with its TPM
    subprocess.run(['qemu-img', 'convert', '-O', 'raw', host_path('lab2', '%s/%s' % (IMAGES, disk)), str(tmp_path / 'check.raw')],
                   check=True)
    cat = subprocess.run(['debugfs', '-R', 'cat /marker.txt', str(tmp_path / 'check.raw')], check=True, capture_output=True, text=True)
    assert cat.stdout.strip() == marker
    on_host('lab2', 'virsh -q start %s' % name)
    wait_serial('lab2', name, '^PHYLLOME-GUEST-READY kind=acpi')
    wait_serial('lab2', name, '^phyllome-guest: tpm: /dev/tpm0', timeout=10)
    on_host('lab2', 'virsh -q destroy %s && virsh -q undefine %s --nvram --tpm --remove-all-storage' % (name, name))


def test_cold_migration_of_a_running_guest_whose_agent_answers_on_the_target(fleet):
    """A running guest with a QEMU guest agent (the debian-disk guest of tests/guests/: GRUB, systemd,
    qemu-guest-agent) moves cold with start and guest_agent_timeout: the module shuts it down with the power button
    (no power-off), starts it on the target and waits for its agent there before it removes the source's copy.
    That guest boots in ~41 s under TCG, twice here (source, target): the waits are generous (10 min) for a loaded
    machine."""
    name, disk = 'fleet-agent', 'fleet-agent.qcow2'
    guest = json.loads(subprocess.run(GUESTS + ['build', 'debian-disk'], check=True, capture_output=True,
                                      text=True).stdout)['debian-disk']
    # The cached base is a standalone qcow2 (compressed clusters, ~200 MB): a copy is the guest's own disk, as an
    # image server would hand it out (an overlay on a backing file cannot move).
    shutil.copyfile(guest['disk'], host_path('lab1', '%s/%s' % (IMAGES, disk)))
    xml = subprocess.run(GUESTS + ['xml', 'debian-disk', '--name', name, '--serial', serial(name),
                                   '--disk', '%s/%s' % (IMAGES, disk)], check=True, capture_output=True, text=True).stdout
    on_host('lab1', 'virsh -q pool-refresh default >/dev/null && virsh -q define /dev/stdin >/dev/null'
                    ' && virsh -q start %s' % name, stdin=xml)
    # not at the start of a line: the getty's login prompt may come first on the console
    wait_serial('lab1', name, 'PHYLLOME-GUEST-READY kind=debian-disk', timeout=600)
    uuid = on_host('lab1', 'virsh domuuid %s' % name).strip()

    moved = migrate(fleet, name, migrate_start=True, migrate_shutdown_timeout=300, migrate_guest_agent_timeout=600)
    assert moved['changed'] and not moved['failed'] and moved['state'] == 'migrated', moved
    assert moved['started'] is True and moved['guest_agent_seconds'] > 0, moved
    # shut down gracefully: the power button, no power-off, and the guest's own last words on the source's console
    assert any(a.startswith('shut down domain %s on qemu:///system (ACPI' % name) for a in moved['actions']), moved['actions']
    assert not any(a.startswith('power off domain') for a in moved['actions']), moved['actions']
    with open(host_path('lab1', serial(name)), encoding='utf-8', errors='replace') as f:
        assert 'reboot: Power down' in f.read()
    assert [c['verified'] for c in moved['copied']] == [True], moved['copied']
    # ~200 MB over qemu+ssh: hashed by lab2's python3 over the same ssh login, nothing read back
    assert [c['verified_by'] for c in moved['copied']] == ['target'] and moved['verify_notes'] == [], moved
    # the target runs it, and its agent answers there (asked again, apart from the module)
    assert on_host('lab2', 'virsh domstate %s' % name).split()[0] == 'running'
    assert on_host('lab2', 'virsh domuuid %s' % name).strip() == uuid
    assert json.loads(on_host('lab2', "virsh qemu-agent-command %s '{\"execute\":\"guest-ping\"}'" % name)) == {'return': {}}
    # nothing left on the source
    assert name not in on_host('lab1', 'virsh -q list --all --name').split()
    assert on_host('lab1', 'ls %s/%s 2>/dev/null; true' % (IMAGES, disk)) == ''

    again = migrate(fleet, name, migrate_start=True, migrate_shutdown_timeout=300, migrate_guest_agent_timeout=600)
    assert not again['changed'] and again['state'] == 'migrated' and again['actions'] == [], again
    on_host('lab2', 'virsh -q destroy %s && virsh -q undefine %s --remove-all-storage' % (name, name))


def test_live_migration_of_a_running_guest(fleet):
    """A running TCG guest with a local qcow2 disk and a TPM (swtpm) moves while it runs: on the target it answers the
    power button without having booted there, and the kernel's clock shows it has run since its boot on the source;
    its TPM state came along (libvirt 9.0 carries it in QEMU's migration stream) and the source keeps none."""
    name, disk = 'fleet-live', 'fleet-live.qcow2'
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', host_path('lab1', '%s/%s' % (IMAGES, disk)), '32M'], check=True)
    define_guest('lab1', name, disk, tpm=True)
    wait_serial('lab1', name, '^PHYLLOME-GUEST-READY kind=acpi')
    ready = time.monotonic()
    uuid = on_host('lab1', 'virsh domuuid %s' % name).strip()
    tpm_state = '/var/lib/libvirt/swtpm/%s/tpm2/tpm2-00.permall' % uuid
    before = sha256('lab1', tpm_state).split()[0]

    moved = migrate(fleet, name, migrate_mode='live', migrate_timeout=600)
    assert moved['changed'] and moved['state'] == 'migrated' and moved['migration_seconds'] > 0, moved
    assert name not in on_host('lab1', 'virsh -q list --all --name').split()
    assert on_host('lab1', 'ls %s/%s /var/lib/libvirt/swtpm/%s 2>/dev/null; true' % (IMAGES, disk, uuid)) == ''
    assert on_host('lab2', 'virsh domstate %s' % name).split()[0] == 'running'
    assert 'Persistent:     yes' in on_host('lab2', 'virsh dominfo %s' % name)
    # the TPM state arrived: the same bytes, and a swtpm of this domain serves it on the target
    assert sha256('lab2', tpm_state).split()[0] == before
    assert on_host('lab2', 'pgrep -a swtpm').count('/var/lib/libvirt/swtpm/%s/tpm2' % uuid) == 1

    again = migrate(fleet, name, migrate_mode='live', migrate_timeout=600)
    assert not again['changed'] and again['actions'] == [], again

    on_host('lab2', 'virsh -q shutdown %s' % name)
    wait_serial('lab2', name, r'reboot: Power down', timeout=120)
    console = open(host_path('lab2', serial(name)), encoding='utf-8', errors='replace').read()
    assert 'Linux version' not in console and 'PHYLLOME-GUEST-READY' not in console, console
    # the kernel's own clock at power down: at least the time since it was ready on the source
    uptime = float(re.findall(r'\[\s*(\d+\.\d+)\] reboot: Power down', console)[-1])
    assert uptime >= time.monotonic() - ready - 5, (uptime, console)
    wait_state('lab2', name, 'shut off')
    on_host('lab2', 'virsh -q undefine %s --tpm --remove-all-storage' % name)


def test_the_target_unreachable_mid_copy(fleet, tmp_path):
    """The link between the hosts goes down while a disk is copied, for longer than the module waits for an answer:
    the task fails naming the step, the target keeps no half-defined copy (cleaned once it answers again), the
    source is intact and boots."""
    name, disk = 'fleet-cut', 'fleet-cut.qcow2'
    # 128 MiB that do not compress or sparsify, so that the copy lasts long enough to be cut
    subprocess.run(['dd', 'if=/dev/urandom', 'of=%s' % (tmp_path / 'data.raw'), 'bs=1M', 'count=128', 'status=none'], check=True)
    subprocess.run(['qemu-img', 'convert', '-O', 'qcow2', str(tmp_path / 'data.raw'), host_path('lab1', '%s/%s' % (IMAGES, disk))],
                   check=True)
    define_guest('lab1', name, disk, start=False)
    source_xml = on_host('lab1', 'virsh dumpxml --inactive %s' % name)
    source_disk = sha256('lab1', '%s/%s' % (IMAGES, disk))
    link = ['ip', '-n', lab_sh('netns', 'lab1').stdout.strip(), 'link', 'set', 'to-lab2']
    copy = host_path('lab2', '%s/%s' % (IMAGES, disk))
    outage = {}

    def cut_mid_copy():
        # as soon as the target's volume holds some of the data, the link goes down for OUTAGE seconds
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if os.path.exists(copy) and os.stat(copy).st_blocks * 512 >= 8 << 20:
                subprocess.run(link + ['down'], check=True)
                outage['copied'] = os.stat(copy).st_blocks * 512
                time.sleep(OUTAGE)
                subprocess.run(link + ['up'], check=True)
                return
            time.sleep(0.05)

    cutter = threading.Thread(target=cut_mid_copy)
    cutter.start()
    try:
        failed = migrate(fleet, name)
    finally:
        cutter.join()
    assert outage, 'the copy ended before the link could be cut'
    assert failed['failed'] and not failed['changed'], failed
    assert 'failed at step "copy": copy of volume %s' % disk in failed['msg'], failed['msg']
    # the target: no domain, no volume; the source: as it was, and it boots
    assert name not in on_host('lab2', 'virsh -q list --all --name').split()
    assert disk not in on_host('lab2', 'virsh -q pool-refresh default >/dev/null; virsh -q vol-list default')
    assert on_host('lab1', 'virsh dumpxml --inactive %s' % name) == source_xml
    assert sha256('lab1', '%s/%s' % (IMAGES, disk)) == source_disk
    on_host('lab1', 'virsh -q start %s' % name)
    wait_serial('lab1', name, '^PHYLLOME-GUEST-READY kind=acpi')
    on_host('lab1', 'virsh -q destroy %s && virsh -q undefine %s --remove-all-storage' % (name, name))


def test_guests_get_the_same_fleet_cpu(fleet):
    """phyllome_guests_cpu: fleet on both hosts: the baseline of the two, computed once, in each guest's definition;
    check mode defines nothing, a second run changes nothing (the guests role, as site.yml runs it)."""
    hosts = ('lab1', 'lab2')

    def run(ident, cmdline=None):
        job = fleet(FLEET_GUESTS, cmdline=cmdline, ident=ident)
        assert job.status == 'successful', job.stdout()
        return job, {h: job.stats.get('changed', {}).get(h, 0) for h in hosts}

    def cpu(host):
        found = re.search(r'<cpu .*?</cpu>', on_host(host, 'virsh dumpxml --inactive fleet-cpu'), re.S)
        return found.group(0) if found else None

    planned, planned_changed = run('fleet-cpu-check', '--check')
    assert planned_changed == {'lab1': 1, 'lab2': 1}, planned.stdout()
    assert all('fleet-cpu' not in on_host(h, 'virsh -q list --all --name').split() for h in hosts)

    first, first_changed = run('fleet-cpu-first')
    assert first_changed == {'lab1': 1, 'lab2': 1}, first.stdout()
    # one baseline for the group, printed once with what each host holds back
    baselines = [r for r in first.results() if r.get('task_action') == 'phyllome.os.cpu_baseline' and len(r['res']['hosts']) == 2]
    assert len(baselines) == 1, first.stdout()
    assert [h['name'] for h in baselines[0]['res']['hosts']] == ['lab1', 'lab2']
    assert 'fleet CPU of lab1, lab2: %s' % baselines[0]['res']['cpu']['model'] in first.stdout()
    cpus = {h: cpu(h) for h in hosts}
    assert cpus['lab1'] == cpus['lab2'] and "<cpu mode='custom' match='exact'" in cpus['lab1'], cpus
    assert "<model fallback='forbid'>%s</model>" % baselines[0]['res']['cpu']['model'] in cpus['lab1']

    second, second_changed = run('fleet-cpu-second')
    assert second_changed == {'lab1': 0, 'lab2': 0}, second.stdout()
    assert {h: cpu(h) for h in hosts} == cpus
    for host in hosts:
        on_host(host, 'virsh -q undefine fleet-cpu')


def test_the_migrate_playbook_moves_a_guest_as_awx_runs_it(fleet):
    """playbooks/migrate.yml through ansible-runner (inventory + extra vars, no terminal): a stopped guest with a
    qcow2 disk moves lab1 -> lab2 with the playbook's defaults (cold, verify, the source removed); check mode first
    (nothing moves), a second run changes nothing."""
    name, disk = 'fleet-playbook', 'fleet-playbook.qcow2'
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', host_path('lab1', '%s/%s' % (IMAGES, disk)), '16M'], check=True)
    define_guest('lab1', name, disk, start=False)
    source_disk = sha256('lab1', '%s/%s' % (IMAGES, disk)).split()[0]
    extravars = {'phyllome_migrate_domain': name, 'phyllome_migrate_source': 'lab1', 'phyllome_migrate_target': 'lab2'}

    def run(ident, cmdline=None):
        job = fleet(MIGRATE_PLAYBOOK, extravars=extravars, cmdline=cmdline, ident=ident)
        assert job.status == 'successful', job.stdout()
        moved = [r['res'] for r in job.results() if r.get('task_action') == 'phyllome.os.migrate']
        assert [r['host'] for r in job.results() if r.get('task_action') == 'phyllome.os.migrate'] == ['lab1']
        return job, moved[0]

    planned = run('playbook-check', '--check')[1]
    assert planned['changed'] and planned['plan']['disks'][0]['volume'] == disk, planned
    assert name in on_host('lab1', 'virsh -q list --all --name').split()
    assert name not in on_host('lab2', 'virsh -q list --all --name').split()

    job, moved = run('playbook-move')
    assert moved['changed'] and moved['state'] == 'migrated', moved
    assert moved['copied'] and all(c['verified'] for c in moved['copied']), moved['copied']
    assert '%s to lab2: migrated' % name in job.stdout()
    assert name not in on_host('lab1', 'virsh -q list --all --name').split()
    assert on_host('lab1', 'ls %s/%s 2>/dev/null; true' % (IMAGES, disk)) == ''
    assert on_host('lab2', 'virsh domstate %s' % name).strip() == 'shut off'
    assert sha256('lab2', '%s/%s' % (IMAGES, disk)).split()[0] == source_disk

    again_job, again = run('playbook-again')
    assert not again['changed'] and again['actions'] == [], again
    assert again_job.stats.get('changed', {}) == {}, again_job.stats
    on_host('lab2', 'virsh -q undefine %s --remove-all-storage' % name)


def test_migrate_over_tls_from_lab1_to_lab2(fleet, tmp_path):
    """libvirt over TLS on both hosts (the host role, each host its own server and client certificates of a CA this
    test makes, each host's client DN let in by the other): lab1 reaches lab2 as qemu+tls://lab2/system, and
    playbooks/migrate.yml with phyllome_migrate_transport: tls moves a stopped guest over it."""
    hosts = ('lab1', 'lab2')
    templates = {}
    for host in hosts:
        templates.update({host + '-server': server_template(host), host + '-client': client_template(host)})
    pem = make_pki(tmp_path, templates)
    fleet_tls = {'ca_cert': pem['ca']['cert'], 'allowed_dn_list': ['O=Phyllome lab,CN=%s' % h for h in hosts], 'hosts': {
        h: {'server_cert': pem[h + '-server']['cert'], 'server_key': pem[h + '-server']['key'],
            'client_cert': pem[h + '-client']['cert'], 'client_key': pem[h + '-client']['key']} for h in hosts}}
    job = fleet(FLEET_TLS, extravars={'fleet_tls': fleet_tls}, ident='fleet-tls')
    assert job.status == 'successful', job.stdout()
    # no private key in any event of the job
    events = json.dumps(job.events)
    assert not [h for h in hosts for kind in ('server', 'client') if pem['%s-%s' % (h, kind)]['key'].splitlines()[5] in events]
    assert on_host('lab1', 'virsh -c qemu+tls://lab2/system hostname').strip() == 'lab2'
    assert on_host('lab2', 'virsh -c qemu+tls://lab1/system hostname').strip() == 'lab1'

    name, disk = 'fleet-tls', 'fleet-tls.qcow2'
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', host_path('lab1', '%s/%s' % (IMAGES, disk)), '16M'], check=True)
    define_guest('lab1', name, disk, start=False)
    moved_job = fleet(MIGRATE_PLAYBOOK, ident='migrate-tls', extravars={
        'phyllome_migrate_domain': name, 'phyllome_migrate_source': 'lab1', 'phyllome_migrate_target': 'lab2',
        'phyllome_migrate_transport': 'tls'})
    assert moved_job.status == 'successful', moved_job.stdout()
    moved = [r['res'] for r in moved_job.results() if r.get('task_action') == 'phyllome.os.migrate'][0]
    assert moved['invocation']['module_args']['target_uri'] == 'qemu+tls://lab2/system', moved['invocation']
    assert moved['changed'] and moved['state'] == 'migrated' and all(c['verified'] for c in moved['copied']), moved
    assert name not in on_host('lab1', 'virsh -q list --all --name').split()
    assert on_host('lab2', 'virsh domstate %s' % name).strip() == 'shut off'
    on_host('lab2', 'virsh -q undefine %s --remove-all-storage' % name)


def test_teardown_leaves_nothing(fleet):
    # Runs last in this file: take the lab down here and check (the fixture's down is then a no-op).
    down = lab_sh('down', check=False)
    assert down.returncode == 0, down.stderr
    clean = lab_sh('check-clean', check=False)
    assert clean.returncode == 0, clean.stderr
