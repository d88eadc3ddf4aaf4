"""The lab end to end, run the way AWX/Tower runs a job (ansible-runner: an
inventory, extra vars, no terminal):

bare host -> check mode changes nothing -> bad input refused before any change
-> converge (the host role, then the guests role: the two guests of the lab
inventory, a UEFI + TPM VM and a tiny one on a qcow2 overlay with a cloud-init
seed) -> the guests
booted -> libvirt over TLS answers a client of the inventory's CA and
refuses others -> the report's pages show them (rendered in headless Chromium) ->
the phyllome.os.guests inventory plugin lists them, the VM with its address ->
second converge changed=0 -> check mode changed=0 -> a host whose libvirt is
out of reach fails saying why -> guests the inventory no longer declares are
removed -> teardown leaves nothing.

Run with `make lab-test` (root: it boots systemd-nspawn hosts in network
namespaces of their own; tests/lab/hosts.sh).
"""
from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import tempfile
import time

import pytest

ansible_runner = pytest.importorskip('ansible_runner')

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
HOSTS = os.path.join(HERE, 'hosts.sh')
SITE = os.path.join(ROOT, 'playbooks', 'site.yml')
GUESTS_BOOTED = os.path.join(HERE, 'guests_booted.yml')
REPORT = os.path.join(ROOT, 'playbooks', 'report.yml')
HOST = 'lab1'
# the guests of the lab inventory (tests/lab/hosts.sh)
VM, TINY = 'phyllome-lab-vm', 'phyllome-lab-tiny'
# libvirt over TLS: the DN libvirt reads from the host's client certificate
# (virt-pki-query-dn), the only one let in
CLIENT_DN = 'O=Phyllome lab,CN=%s' % HOST

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root')


def sh(*args, check=True):
    return subprocess.run(args, check=check, text=True, capture_output=True)


def on_host(command):
    """Run a shell command on the lab host; its stdout."""
    return sh(HOSTS, 'ssh', HOST, command).stdout


def etc_fingerprint():
    """Every file, link and directory under /etc and /var/lib/libvirt, with content checksums."""
    return on_host(
        'cd / && find etc var/lib/dpkg/status var/lib/libvirt -xdev \\( -type f -printf "%p %m %U:%G " '
        '-exec md5sum {} \\; \\) -o \\( ! -type f -printf "%p %y %m %l\\n" \\) 2>/dev/null | sort')


def assert_sshd_per_connection():
    """sshd runs per connection (phyllome_host_sshd_per_connection): the socket, no listener; this login went through it."""
    assert on_host('systemctl is-active ssh.socket ssh.service; systemctl is-enabled ssh.socket ssh.service || true').split() == [
        'active', 'inactive', 'enabled', 'disabled']
    assert on_host('systemctl show -p Accept --value ssh.socket').strip() == 'yes'
    # this login is served by a per-connection instance of ssh@.service
    assert on_host('systemctl list-units --state=active --plain --no-legend "ssh@*.service"').startswith('ssh@')


class Job:
    def __init__(self, runner):
        self.runner = runner
        self.status = runner.status
        self.stats = runner.stats or {}
        self.events = list(runner.events)

    def changed(self):
        return self.stats.get('changed', {}).get(HOST, 0)

    def results(self, event='runner_on_ok'):
        return [e['event_data'] for e in self.events if e.get('event') == event]

    def changed_tasks(self):
        return [r['task'] for r in self.results() if r.get('res', {}).get('changed')]

    def failed_task(self):
        failed = self.results('runner_on_failed')
        return (failed[0]['task'], failed[0]['res'].get('msg', '')) if failed else None

    def stdout(self):
        return ''.join(e.get('stdout', '') + '\n' for e in self.events)

    def fact(self, name):
        """The last value the job set for fact `name` (None when it never did)."""
        values = [r['res']['ansible_facts'][name] for r in self.results()
                  if name in r.get('res', {}).get('ansible_facts', {})]
        return values[-1] if values else None


def certtool(*args):
    return sh('certtool', '--no-text', *args)


def make_pki(directory, templates):
    """A throwaway CA (never anything of the machine) and a certificate of it for each certtool template of
    `templates` (name: template, without 'ca'): {name: {'key': PEM, 'cert': PEM}}, the CA's under 'ca'."""
    pem = {}
    for name, template in dict({'ca': 'cn = Phyllome lab throwaway CA\nca\ncert_signing_key\n'}, **templates).items():
        (directory / (name + '.info')).write_text(template + 'expiration_days = 2\n')
        # RSA: libvirt wants key encipherment in a server certificate, which an ECDSA key cannot offer
        certtool('--generate-privkey', '--bits', '2048', '--outfile', str(directory / (name + '-key.pem')))
        if name == 'ca':
            certtool('--generate-self-signed', '--load-privkey', str(directory / 'ca-key.pem'), '--template',
                     str(directory / 'ca.info'), '--outfile', str(directory / 'ca-cert.pem'))
        else:
            certtool('--generate-certificate', '--load-privkey', str(directory / (name + '-key.pem')), '--load-ca-certificate',
                     str(directory / 'ca-cert.pem'), '--load-ca-privkey', str(directory / 'ca-key.pem'), '--template',
                     str(directory / (name + '.info')), '--outfile', str(directory / (name + '-cert.pem')))
        pem[name] = {kind: (directory / ('%s-%s.pem' % (name, kind))).read_text() for kind in ('key', 'cert')}
    return pem


def server_template(host):
    return 'organization = Phyllome lab\ncn = %s\ndns_name = %s\ntls_www_server\nencryption_key\nsigning_key\n' % (host, host)


def client_template(cn):
    return 'organization = Phyllome lab\ncn = %s\ntls_www_client\nencryption_key\nsigning_key\n' % cn


@pytest.fixture(scope='module')
def tls(tmp_path_factory):
    """A throwaway CA of this test (never anything of the machine): the host's server and client certificates, and
    an intruder's client certificate from the same CA with a DN the host does not let in. The host role's variables
    turn libvirt over TLS on in every job of the lab."""
    pem = make_pki(tmp_path_factory.mktemp('tls'), {
        'server': server_template(HOST), 'client': client_template(HOST), 'intruder': client_template('intruder')})
    extravars = {
        'phyllome_host_libvirt_tls': True,
        'phyllome_host_libvirt_tls_ca_cert': pem['ca']['cert'],
        'phyllome_host_libvirt_tls_server_cert': pem['server']['cert'],
        'phyllome_host_libvirt_tls_server_key': pem['server']['key'],
        'phyllome_host_libvirt_tls_client_cert': pem['client']['cert'],
        'phyllome_host_libvirt_tls_client_key': pem['client']['key'],
        'phyllome_host_libvirt_tls_allowed_dn_list': [CLIENT_DN],
    }
    # a line out of the middle of each key given to the host: none may show in any job's output
    secrets = [pem[name]['key'].splitlines()[5] for name in ('server', 'client')]
    return {'extravars': extravars, 'pem': pem, 'secrets': secrets}


@pytest.fixture(scope='module')
def lab(tls):
    # A fresh bare host, whatever an earlier run left.
    sh(HOSTS, 'down')
    up = sh(HOSTS, 'up', '1', check=False)
    sys.stderr.write(up.stderr)
    assert up.returncode == 0, up.stderr
    inventory = sh(HOSTS, 'inventory').stdout.strip()
    with tempfile.TemporaryDirectory(prefix='phyllome-lab-runner-') as data:
        def job(playbook, extravars=None, cmdline=None, ident=None):
            # One private data dir a job, as AWX gives each job its own.
            runner = ansible_runner.run(
                private_data_dir=tempfile.mkdtemp(dir=data), playbook=playbook, inventory=inventory,
                extravars=dict(tls['extravars'], **(extravars or {})), cmdline=cmdline, ident=ident, quiet=True, json_mode=False)
            done = Job(runner)
            # private keys are never in a result, a diff or the log (check mode and --diff included)
            events = json.dumps(done.events)
            assert not [s for s in tls['secrets'] if s in events], 'a private key shows in the events of %s' % ident
            return done
        yield job
    down = sh(HOSTS, 'down', check=False)
    assert down.returncode == 0, down.stderr


def test_a_namespace_the_lab_did_not_create_is_left_alone(tmp_path):
    env = dict(os.environ, LAB_DIR=str(tmp_path / 'lab'))
    namespace = subprocess.run([HOSTS, 'netns', HOST], env=env, check=True, capture_output=True, text=True).stdout.strip()
    sh('ip', 'netns', 'add', namespace)
    try:
        up = subprocess.run([HOSTS, 'up', '1'], env=env, capture_output=True, text=True, check=False)
        assert up.returncode != 0 and 'is not this lab' in up.stderr, up.stderr
        assert namespace in sh('ip', 'netns', 'list').stdout
        down = subprocess.run([HOSTS, 'down'], env=env, capture_output=True, text=True, check=False)
        assert down.returncode == 0 and namespace in sh('ip', 'netns', 'list').stdout
    finally:
        sh('ip', 'netns', 'delete', namespace)


def test_check_mode_on_a_bare_host_runs_to_the_end_and_changes_nothing(lab):
    before = etc_fingerprint()
    job = lab(SITE, cmdline='--check --diff', ident='bare-check')
    assert job.status == 'successful', job.stdout()
    assert job.changed() > 0, 'check mode on a bare host predicts no change'
    skipped = job.fact('phyllome_host_skipped')
    assert any('check mode' in s['reason'] for s in skipped), skipped
    # no libvirt yet: the guests role says why it skips the guests
    skipped = job.fact('phyllome_guests_skipped')
    assert [s['setting'] for s in skipped] == ['guests'] and 'not installed yet' in skipped[0]['reason'], skipped
    assert etc_fingerprint() == before


@pytest.mark.parametrize('extravars, failing_task, message', [
    ({'phyllome_host_edition': 'server'}, 'Validating arguments against arg spec', 'phyllome_host_edition'),
    ({'phyllome_host_reboot': 'always'}, 'Validating arguments against arg spec', 'phyllome_host_reboot'),
    ({'phyllome_host_admin_users': ['root', 'no-such-admin']}, 'Refuse admin users', 'no-such-admin'),
    ({'phyllome_host_package_sources': ['http://mirror.invalid/debian bookworm main']},
     'Refuse malformed package sources', 'one-line apt sources'),
    ({'phyllome_host_firewall_ports': ['5900-5910/tcp', '70000/tcp', 'ssh']},
     'Refuse malformed firewall ports', '70000/tcp, ssh'),
    ({'phyllome_host_libvirt_tls_server_cert': ''}, 'Refuse incomplete or malformed TLS input',
     'phyllome_host_libvirt_tls_server_cert is required'),
    ({'phyllome_host_libvirt_tls_client_key': ''}, 'Refuse incomplete or malformed TLS input',
     'phyllome_host_libvirt_tls_client_cert and phyllome_host_libvirt_tls_client_key go together'),
    ({'phyllome_host_libvirt_host_uuid': 'lab1'}, 'Refuse a malformed libvirt host UUID', '"lab1" is not a UUID'),
    # well-formed, but libvirt refuses one digit repeated (and libvirtd would not start)
    ({'phyllome_host_libvirt_host_uuid': '00000000-0000-0000-0000-000000000000'}, 'Refuse a malformed libvirt host UUID',
     '"00000000-0000-0000-0000-000000000000" is not a UUID'),
    # libvirt's config syntax has no escapes: a value with both kinds of quotes cannot be written
    ({'phyllome_host_qemu_conf': {'vnc_listen': '127.0.0.1', 'spice_listen': 'both \' and "'}},
     "Write qemu.conf's values as libvirt reads them", 'both kinds of quotes'),
], ids=['edition', 'reboot-policy', 'user', 'package-source', 'firewall-port', 'tls-server-cert', 'tls-client-key',
        'host-uuid', 'host-uuid-repeated', 'qemu-conf-value'])
def test_bad_input_is_refused_before_anything_changes(lab, extravars, failing_task, message):
    before = etc_fingerprint()
    job = lab(SITE, extravars=extravars, ident='bad-%s' % next(iter(extravars)))
    assert job.status == 'failed'
    failed = job.failed_task()
    assert failed and failing_task in failed[0] and message in failed[1], failed
    assert job.changed_tasks() == []
    assert etc_fingerprint() == before


def test_converge_a_bare_host(lab):
    job = lab(SITE, ident='converge-1')
    assert job.status == 'successful', job.stdout()
    assert job.changed() > 0
    assert job.fact('phyllome_host_ready') is True, job.fact('phyllome_host_report')['summary']
    assert job.fact('phyllome_host_reboot_pending') is False
    skipped = {s['setting'] for s in job.fact('phyllome_host_skipped')}
    assert any('kernel arguments' in s for s in skipped), skipped
    # What the role set up, seen from inside the host.
    assert on_host('systemctl is-active libvirtd.service nftables.service').split() == ['active'] * 2
    assert_sshd_per_connection()
    assert on_host('systemctl get-default').strip() == 'multi-user.target'
    nets = on_host('virsh -q net-list --autostart --name').split()
    pools = on_host('virsh -q pool-list --autostart --name').split()
    assert 'default' in nets and {'isos', 'default'} <= set(pools), (nets, pools)
    assert 'cgroup_controllers = [  ]' in on_host('grep ^cgroup_controllers /etc/libvirt/qemu.conf') or \
        'cgroup_controllers = []' in on_host('grep ^cgroup_controllers /etc/libvirt/qemu.conf')
    assert on_host('passwd -S root').split()[1] == 'L'
    assert on_host('nft list chain inet phyllome_filter input').count('policy drop') == 1
    # then the guests role: the inventory's two guests, in one phyllome.os.domains task
    guests = [r for r in job.results() if r.get('task_action') == 'phyllome.os.domains']
    assert len(guests) == 1, [r['task'] for r in guests]
    summary = job.fact('phyllome_guests_summary')
    assert summary['created'] == [VM, TINY] and summary['restart_required'] == [], summary
    assert sorted(on_host('virsh -q list --autostart --name').split()) == sorted([VM, TINY])


def test_libvirt_over_tls_lets_in_the_allowed_client_only(lab, tls):
    """qemu+tls:// to the name in the server certificate, from the host itself (its /etc/hosts names it): the host's
    own client certificate (the allowed DN) gets in; no client certificate, or one of the same CA with another DN,
    is refused by the daemon (its log says why)."""
    files = on_host('stat -c "%n %a %U:%G" /etc/pki/CA/cacert.pem /etc/pki/libvirt/servercert.pem /etc/pki/libvirt/clientcert.pem '
                    '/etc/pki/libvirt/private/serverkey.pem /etc/pki/libvirt/private/clientkey.pem').splitlines()
    assert files == ['/etc/pki/CA/cacert.pem 644 root:root', '/etc/pki/libvirt/servercert.pem 644 root:root',
                     '/etc/pki/libvirt/clientcert.pem 644 root:root', '/etc/pki/libvirt/private/serverkey.pem 600 root:root',
                     '/etc/pki/libvirt/private/clientkey.pem 600 root:root'], files
    assert on_host('virt-pki-query-dn /etc/pki/libvirt/clientcert.pem').strip() == CLIENT_DN
    assert on_host('systemctl is-enabled libvirtd-tls.socket; systemctl is-active libvirtd-tls.socket').split() == ['enabled', 'active']
    assert 'tcp dport 16514 accept' in on_host('nft list chain inet phyllome_filter input')
    uri = 'qemu+tls://%s/system' % HOST
    assert sorted(on_host('virsh -c %s -q list --name' % uri).split()) == sorted([VM, TINY])
    # the other clients: a pkipath with the CA alone (no client certificate), and the intruder's
    intruder = tls['pem']['ca']['cert'] + tls['pem']['intruder']['cert'] + tls['pem']['intruder']['key']
    subprocess.run([HOSTS, 'ssh', HOST, 'rm -rf /tmp/tls-nocert /tmp/tls-intruder && mkdir -m 0700 /tmp/tls-nocert /tmp/tls-intruder '
                    '&& cd /tmp/tls-intruder && csplit -s -z -f part - "/-----BEGIN/" "{*}" && mv part00 cacert.pem '
                    '&& mv part01 clientcert.pem && mv part02 clientkey.pem && cp cacert.pem /tmp/tls-nocert/'],
                   input=intruder, text=True, check=True, capture_output=True)
    since = on_host('date "+%Y-%m-%d %H:%M:%S"').strip()
    for pki in ('/tmp/tls-nocert', '/tmp/tls-intruder'):
        refused = sh(HOSTS, 'ssh', HOST, 'virsh -c "%s?pkipath=%s" list' % (uri, pki), check=False)
        assert refused.returncode != 0, (pki, refused.stdout)
    log = on_host('journalctl -u libvirtd.service --since "%s" --no-pager -o cat' % since)
    assert 'No certificate was found' in log and 'not on the list of allowed clients' in log, log
    on_host('rm -rf /tmp/tls-nocert /tmp/tls-intruder')


def test_the_guests_booted_and_the_report_shows_them(lab):
    job = lab(GUESTS_BOOTED, ident='guests-booted')
    assert job.status == 'successful', job.stdout()
    domains = {d['name']: d for d in [r['res'] for r in job.results() if r['task'] == 'Read the domains libvirt runs'][0]['domains']}
    vm, tiny = domains[VM], domains[TINY]
    assert (vm['state'], vm['firmware'], vm['tpm']['model'], vm['domain_type']) == ('running', 'efi', 'tpm-crb', 'qemu')
    assert os.path.basename(vm['interfaces'][0]['source']) == 'default'
    assert (tiny['state'], tiny['firmware'], tiny['tpm'], tiny['interfaces']) == ('running', 'bios', None, [])
    # its overlay, and the cloud-init seed the role's domains task wrote
    assert [(d['device'], d['pool'], d['volume']) for d in tiny['disks']] == [
        ('disk', 'default', TINY + '.qcow2'), ('cdrom', 'default', TINY + '-cidata.iso')], tiny['disks']
    check_report_pages(lab, [VM, TINY])


def test_the_guests_inventory_lists_the_running_guests_with_their_address(lab, tmp_path):
    # The phyllome.os.guests inventory plugin over the lab's own inventory (the group site.yml
    # converges): each host's URI comes from how Ansible reaches it (qemu+ssh://root@<ansible_host>/system
    # with its key). The lab's ansible_host is the host's namespace: an `ssh` first in PATH adds the
    # ProxyCommand that Ansible gets from ansible_ssh_common_args (a libvirt URI cannot carry it).
    wrapper = tmp_path / 'ssh'
    wrapper.write_text('#!/bin/sh\nexec /usr/bin/ssh -o "ProxyCommand=ip netns exec %h socat - TCP:127.0.0.1:22" '
                       '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "$@"\n')
    wrapper.chmod(0o755)
    config = tmp_path / 'lab.phyllome_guests.yml'
    config.write_text('plugin: phyllome.os.guests\ngroup: phyllome_hosts\nstates: [running]\n')
    inventory = sh(HOSTS, 'inventory').stdout.strip()
    env = dict(os.environ, PATH='%s:%s' % (tmp_path, os.environ['PATH']))
    # The VM asks for its address once booted (the net test guest's udhcpc): wait for the lease.
    deadline, listed = time.monotonic() + 180, None
    while time.monotonic() < deadline:
        run = subprocess.run(['ansible-inventory', '-i', inventory, '-i', str(config), '--list'],
                             env=env, text=True, capture_output=True, check=False)
        assert run.returncode == 0, run.stderr
        assert 'left out' not in run.stderr, run.stderr
        # ansible-core 2.19 marks what the plugin read from libvirt as not to be templated
        # ({"__ansible_unsafe": value}); the values are the same.
        listed = json.loads(run.stdout, object_hook=lambda d: d['__ansible_unsafe'] if set(d) == {'__ansible_unsafe'} else d)
        if listed['_meta']['hostvars'].get(VM, {}).get('ansible_host'):
            break
        time.sleep(5)
    hostvars = listed['_meta']['hostvars']
    vm = hostvars[VM]
    assert ipaddress.ip_address(vm['ansible_host']) in ipaddress.ip_network('192.168.122.0/24'), vm
    assert vm['phyllome_guest_host'] == HOST and vm['phyllome_guest']['state'] == 'running'
    assert vm['phyllome_guest_uri'].startswith('qemu+ssh://root@') and '?keyfile=' in vm['phyllome_guest_uri']
    assert sorted(listed['host_' + HOST]['hosts']) == sorted([VM, TINY])
    assert VM in listed['state_running']['hosts']
    # the tiny guest has no NIC: no address
    assert 'ansible_host' not in hostvars[TINY]
    # the hypervisor itself is still listed as the lab's inventory has it
    assert HOST in listed['phyllome_hosts']['hosts']


def test_second_converge_changes_nothing(lab):
    before = etc_fingerprint()
    job = lab(SITE, ident='converge-2')
    assert job.status == 'successful', job.stdout()
    assert job.changed_tasks() == []
    assert job.fact('phyllome_guests_summary')['unchanged'] == [VM, TINY]
    assert etc_fingerprint() == before


def test_check_mode_on_a_converged_host_changes_nothing(lab):
    job = lab(SITE, cmdline='--check --diff', ident='converged-check')
    assert job.status == 'successful', job.stdout()
    assert job.changed_tasks() == []
    assert job.fact('phyllome_host_ready') is True


def test_sshd_goes_back_to_its_listener_and_per_connection_again(lab):
    """Both hand-overs of the SSH port run over the job's own connection, and SSH answers after each."""
    job = lab(SITE, extravars={'phyllome_host_sshd_per_connection': False}, ident='sshd-listener')
    assert job.status == 'successful', job.stdout()
    assert on_host('systemctl is-active ssh.service ssh.socket; systemctl is-enabled ssh.service ssh.socket || true').split() == [
        'active', 'inactive', 'enabled', 'disabled']
    assert on_host('ls /etc/systemd/system/ssh@.service /etc/systemd/system/ssh.socket.d/ 2>&1 || true').count('No such file') == 1
    job = lab(SITE, ident='sshd-per-connection')
    assert job.status == 'successful', job.stdout()
    assert_sshd_per_connection()


def test_a_host_that_cannot_run_vms_fails_saying_why(lab):
    """libvirt out of reach (a socket that does not exist): the verdict fails the play, with the reasons, and changes nothing."""
    job = lab(SITE, extravars={'phyllome_host_uri': 'qemu:///system?socket=/run/phyllome-no-such-socket',
                               'phyllome_host_default_network': False, 'phyllome_host_storage_pools': []}, ident='not-ready')
    assert job.status == 'failed'
    failed = job.failed_task()
    assert failed and 'Fail when the host cannot run VMs' in failed[0], failed
    assert 'cannot host VMs' in failed[1] and 'fail libvirt: cannot connect to libvirt' in failed[1], failed
    assert job.changed_tasks() == []


def test_guests_the_inventory_no_longer_declares_are_removed(lab):
    """An empty guest list with phyllome_guests_undeclared=remove (force: they run): both go, with their nvram,
    TPM state, and the overlay and seed the role created (remove_storage); the base volume stays."""
    job = lab(SITE, extravars={'phyllome_guests': [], 'phyllome_guests_undeclared': 'remove',
                               'phyllome_guests_defaults': {'force': True, 'shutdown_timeout': 30, 'remove_storage': True}},
              ident='guests-removed')
    assert job.status == 'successful', job.stdout()
    assert sorted(job.fact('phyllome_guests_summary')['removed']) == sorted([VM, TINY])
    assert on_host('virsh -q list --all --name').split() == []
    assert on_host('ls /var/lib/libvirt/qemu/nvram/ /var/lib/libvirt/swtpm/ 2>/dev/null').split() == [
        '/var/lib/libvirt/qemu/nvram/:', '/var/lib/libvirt/swtpm/:']
    assert on_host('ls /var/lib/libvirt/images/').split() == ['phyllome-lab-base.qcow2']


def check_report_pages(lab, vms):
    """playbooks/report.yml on the lab host while its VMs run: the pages, as headless Chromium shows them."""
    sys.path.insert(0, os.path.join(ROOT, 'tests', 'report'))
    import render  # pylint: disable=import-outside-toplevel
    with tempfile.TemporaryDirectory(prefix='phyllome-lab-report-') as pages:
        job = lab(REPORT, extravars={'phyllome_report_dir': pages}, ident='report')
        assert job.status == 'successful', job.stdout()
        probes = [r for r in job.results() if r.get('task_action', '').startswith('phyllome.os.')]
        assert sorted(r['task_action'] for r in probes) == [
            'phyllome.os.domain_info', 'phyllome.os.host_info', 'phyllome.os.iommu_info']
        assert not any(r['res'].get('changed') for r in probes)
        assert sorted(os.listdir(pages)) == ['index.html', '%s.html' % HOST]
        page = render.render(os.path.join(pages, '%s.html' % HOST))
        index = render.render(os.path.join(pages, 'index.html'))
        assert page['requests'] == [] and index['requests'] == [], (page['requests'], index['requests'])
        text = page['text']
        verdict = [r['res'] for r in probes if r['task_action'] == 'phyllome.os.host_info'][0]['verdict']
        assert text.startswith('%s %s ' % (HOST, verdict)), text[:200]
        # the domain's row: name (type, machine, size), state, firmware, TPM, disks, NICs
        for expected in ['kvm_device', 'libvirt', 'IOMMU groups (iommu_info)', ' MiB, autostart running efi', ' MiB, autostart running bios',
                         'tpm-crb 2.0 (emulator)', 'network default'] + vms:
            assert expected in text, (expected, text)
        assert '%s %s' % (HOST, verdict) in index['text'], index['text']
        if os.environ.get('PHYLLOME_REPORT_SCREENSHOT'):
            render.screenshot(os.path.join(pages, '%s.html' % HOST), os.environ['PHYLLOME_REPORT_SCREENSHOT'])


def test_teardown_leaves_nothing(lab):
    # Runs last in this file: the fixture's teardown would run after it, so
    # take the lab down here and check, then let the fixture's down be a no-op.
    down = sh(HOSTS, 'down', check=False)
    assert down.returncode == 0, down.stderr
    clean = sh(HOSTS, 'check-clean', check=False)
    assert clean.returncode == 0, clean.stderr
