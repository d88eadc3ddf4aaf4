# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host role on lab hosts: converge time beside Ansible's floor, and the
idle memory of a converged host beside a stock Debian libvirt host.

Two bare lab hosts of their own (tests/lab/hosts.sh with LAB_PREFIX
phyllome-bench, so a developer's lab is left alone):

- bench1 is converged by playbooks/site.yml from bare, then again (no-op).
  The floor is a playbook of as many trivial tasks (ansible.builtin.ping) as
  the no-op re-converge ran on the host, plus the same fact gathering, over
  the same SSH connection. Target: no-op re-converge <= 1.3x that floor.
- bench2 gets only `apt-get install libvirt-daemon-system` with apt's
  defaults (recommends included), from a repository downloaded for it the
  same way: a stock Debian libvirt host.
- bench3 is bench2 plus `virsh net-start default`: the stock host with the
  `default` NAT network running (its dnsmasq), which the converged host must
  have and the stock one leaves inactive. Data only, beside the target: the
  like-for-like comparison.

The lab's guests are left out (LAB_GUESTS=0): what is measured is the host's
own services.

Then libvirtd restarts on both (so that the converge's own libvirt queries do
not weigh on ours) and the resident memory of every process of each host is
read from the machine's side (/proc of the processes in the host's PID
namespace), so that no login of ours is counted (nothing is left out of the
sums: the measure waits until the logins have ended): once the SSH sessions of the
converge and of the restart have ended (and root's user manager with them),
while libvirtd still runs; then again once libvirtd has exited on both
(Debian runs it with --timeout 120: it leaves after two idle minutes and its
sockets start it on the next call), the host's real idle state. RSS is summed
per command, PSS beside it (shared pages divided among their users, so a
library mapped by ten daemons is counted once). Target: the converged
headless host below the stock one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from common import REPO, ansible_playbook, process_children, read_text

HOSTS = os.path.join(REPO, 'tests', 'lab', 'hosts.sh')
ROOTFS = os.path.join(REPO, 'tests', 'lab', 'cache', 'rootfs-bookworm')
SITE = os.path.join(REPO, 'playbooks', 'site.yml')
# BENCH_LAB_PREFIX: another prefix of namespaces, so that two checkouts can run this benchmark at once (it
# must not start with another lab's prefix: each lab's check-clean looks for its own by prefix).
LAB_ENV = {'LAB_PREFIX': os.environ.get('BENCH_LAB_PREFIX', 'phyllome-bench'), 'LAB_DIR': os.path.join(REPO, '.build', 'bench-lab'), 'LAB_GUESTS': '0'}
# converged, stock, stock with its default network started (data only)
HOSTS_MEASURED = ('lab1', 'lab2', 'lab3')
TARGET_RATIO = 1.3

# How long the SSH sessions of the converge (ControlPersist 60 s) and root's
# user manager (UserStopDelaySec 10 s) may outlive the last command.
SESSIONS_GONE_SECONDS = 150
# libvirtd's --timeout (Debian's /etc/default/libvirtd) and some slack.
LIBVIRTD_GONE_SECONDS = 240


def lab(*args, check=True):
    env = dict(os.environ, **LAB_ENV)
    return subprocess.run([HOSTS] + list(args), env=env, check=check, capture_output=True, text=True)


def playbook(path, inventory, limit, extra=None):
    args = ['-i', inventory, '--limit', limit, path]
    if extra:
        args += ['-e', json.dumps(extra)]
    seconds, out = ansible_playbook(args)
    stats = out['stats'][limit]
    tasks = sum(1 for play in out['plays'] for task in play['tasks']
                if limit in task['hosts'] and not task['hosts'][limit].get('skipped'))
    return seconds, stats, tasks


def floor_playbook(directory, count):
    path = os.path.join(directory, 'floor.yml')
    with open(path, 'w') as f:
        f.write('- hosts: phyllome_hosts\n  gather_facts: true\n  gather_subset: [min, hardware, virtual]\n  tasks:\n')
        for i in range(count):
            f.write('    - name: trivial task %d\n      ansible.builtin.ping:\n' % i)
    return path


def stock_repository(dest):
    """libvirt-daemon-system and what apt installs with it by default (recommends too), beyond the bare root."""
    if os.path.exists(os.path.join(dest, 'Packages')):
        return
    os.makedirs(os.path.join(dest, 'partial'), exist_ok=True)
    subprocess.run(['apt-get', '-y', '-q', '--download-only', '-o', 'APT::Install-Recommends=true',
                    '-o', 'Dir::State::status=%s/var/lib/dpkg/status' % ROOTFS, '-o', 'Dir::Cache::archives=%s' % dest,
                    'install', 'libvirt-daemon-system'], check=True, capture_output=True)
    with open(os.path.join(dest, 'Packages'), 'w') as packages:
        subprocess.run(['dpkg-scanpackages', '-m', '.'], cwd=dest, check=True, stdout=packages, stderr=subprocess.DEVNULL)


def host_processes(name):
    """[(command, rss_kb, pss_kb, cmdline)] of every process of lab host `name`, read from the machine's /proc."""
    nspawn = int(read_text(os.path.join(LAB_ENV['LAB_DIR'], 'hosts', name, 'pid')))
    # the host's init: the process whose PID inside its namespace is 1, under our systemd-nspawn
    children, namespace = process_children(), None
    todo = [nspawn]
    while todo and namespace is None:
        pid = todo.pop()
        nspid = [line.split()[1:] for line in read_text('/proc/%d/status' % pid).splitlines() if line.startswith('NSpid:')]
        if pid != nspawn and nspid and nspid[0][-1] == '1':
            namespace = os.readlink('/proc/%d/ns/pid' % pid)
        todo.extend(children.get(pid, []))
    if namespace is None:
        raise RuntimeError('no init found under systemd-nspawn %d (%s)' % (nspawn, name))
    processes = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            if os.readlink('/proc/%s/ns/pid' % pid) != namespace:
                continue
        except OSError:
            continue
        status = dict(line.split(':', 1) for line in read_text('/proc/%s/status' % pid).splitlines() if ':' in line)
        rollup = dict(line.split(':', 1) for line in read_text('/proc/%s/smaps_rollup' % pid).splitlines()[1:] if ':' in line)
        if 'VmRSS' not in status:
            continue  # a kernel thread, or gone meanwhile
        processes.append((status['Name'].strip(), int(status['VmRSS'].split()[0]), int(rollup.get('Pss', '0 kB').split()[0]),
                          read_text('/proc/%s/cmdline' % pid).replace('\0', ' ').strip()))
    return processes


def logins(processes):
    """The processes of SSH logins (sessions, a per-connection sshd, root's user manager): not the host's own
    services. Only waited for: the measure is taken once there are none, and counts every process."""
    return [p for p in processes if (p[3].startswith('sshd: ') and ('@' in p[3] or p[3].endswith(('[priv]', '[net]'))))
            or p[3].startswith('/usr/sbin/sshd -i') or p[3].endswith('systemd --user') or p[0] == '(sd-pam)']


def wait_until(condition, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(5)
    return condition()


def memory(name):
    """{command: (rss_kb, pss_kb)} of lab host `name`, summed over the processes of each command."""
    by_command = {}
    for process in host_processes(name):
        total = by_command.get(process[0], (0, 0))
        by_command[process[0]] = (total[0] + process[1], total[1] + process[2])
    return by_command


def memory_table(label, columns):
    """Print the per-command table of one measurement; columns: [(heading, {command: (rss_kb, pss_kb)})].
    Returns each column's total RSS in kB."""
    headings, tables = [h for h, _by in columns], [by for _h, by in columns]
    totals = [(sum(v[0] for v in by.values()), sum(v[1] for v in by.values())) for by in tables]
    print('idle memory, %s (MiB; every process of the host, read from the machine\'s /proc)' % label)
    print('  %-22s' % 'command' + ''.join(' %12s' % (h + ' RSS') for h in headings)
          + ''.join(' %12s' % (h + ' PSS') for h in headings))
    commands = sorted(set().union(*tables),
                      key=lambda c: -max(by.get(c, (0, 0))[0] for by in tables))
    for command in commands + ['TOTAL']:
        values = [by.get(command, (0, 0)) for by in tables] if command != 'TOTAL' else totals
        print('  %-22s' % command + ''.join(' %12.1f' % (v[0] / 1024.0) for v in values)
              + ''.join(' %12.1f' % (v[1] / 1024.0) for v in values))
    return [t[0] for t in totals]


def main():
    lab('down', check=False)
    up = lab('up', str(len(HOSTS_MEASURED)), check=False)
    if up.returncode != 0:
        print(up.stderr)
        return 1
    inventory = lab('inventory').stdout.strip()
    try:
        first, first_stats, first_tasks = playbook(SITE, inventory, 'lab1')
        again, again_stats, again_tasks = playbook(SITE, inventory, 'lab1')
        with tempfile.TemporaryDirectory(prefix='phyllome-bench-') as directory:
            floor, floor_stats, floor_tasks = playbook(floor_playbook(directory, again_tasks - 1), inventory, 'lab1')
        stock_repo = os.path.join(LAB_ENV['LAB_DIR'], 'cache', 'stock-repo')
        stock_repository(stock_repo)
        for name in HOSTS_MEASURED[1:]:
            shutil.copytree(stock_repo, os.path.join(LAB_ENV['LAB_DIR'], 'hosts', name, 'root', 'srv', 'stock-repo'))
            lab('ssh', name, 'printf "deb [trusted=yes] file:/srv/stock-repo ./\\n" > /etc/apt/sources.list; '
                'apt-get -q update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get -y -q '
                # keep the libvirtd.conf (host UUID) that tests/lab/hosts.sh wrote, as the converge does
                '-o Dpkg::Options::=--force-confold install libvirt-daemon-system >/dev/null')
        lab('ssh', 'lab3', 'virsh -q net-start default')
        stock_packages = int(lab('ssh', 'lab2', "dpkg-query -W -f='.' | wc -c").stdout)
        ours_packages = int(lab('ssh', 'lab1', "dpkg-query -W -f='.' | wc -c").stdout)
        for name in HOSTS_MEASURED:
            lab('ssh', name, 'systemctl restart libvirtd.service')
        restarted = time.monotonic()
        no_logins = wait_until(lambda: not any(logins(host_processes(name)) for name in HOSTS_MEASURED),
                               SESSIONS_GONE_SECONDS)
        running = [[memory(name) for name in HOSTS_MEASURED], time.monotonic() - restarted, no_logins]
        no_libvirtd = wait_until(lambda: not any('libvirtd' in memory(name) for name in HOSTS_MEASURED),
                                 LIBVIRTD_GONE_SECONDS - (time.monotonic() - restarted))
        idle = [[memory(name) for name in HOSTS_MEASURED], time.monotonic() - restarted, no_libvirtd]
    finally:
        lab('down', check=False)

    ratio = again / floor
    print('host role on one lab host (systemd-nspawn over SSH), Ansible per-task floor beside it')
    print('%-52s %9s %7s %8s' % ('run', 'seconds', 'tasks', 'changed'))
    print('%-52s %9.1f %7d %8d' % ('first converge, bare host', first, first_tasks, first_stats['changed']))
    print('%-52s %9.1f %7d %8d' % ('no-op re-converge', again, again_tasks, again_stats['changed']))
    print('%-52s %9.1f %7d %8d' % ('floor: facts + as many ansible.builtin.ping tasks', floor, floor_tasks,
                                   floor_stats['changed']))
    print('no-op re-converge / floor: %.2fx (target <= %.1fx)' % (ratio, TARGET_RATIO))
    print()
    print('packages: converged headless host %d, stock libvirt-daemon-system host %d' % (ours_packages, stock_packages))
    print()
    verdicts = []
    print('columns: ours = the converged headless host; stock = libvirt-daemon-system only; '
          'stock+net = the same with its default network started (data only: the like-for-like comparison)')
    print()
    for what, (measured, seconds, settled) in (
            (('libvirtd running, SSH sessions gone', 'NOT all SSH sessions gone'), running),
            (('libvirtd exited on its idle timeout', 'libvirtd NOT exited on every host'), idle)):
        label = '%.0f s after libvirtd restarted, %s' % (seconds, what[0] if settled else what[1])
        ours, stock, stock_net = memory_table(label, list(zip(('ours', 'stock', 'stock+net'), measured)))
        verdicts.append((label, ours, stock, stock_net))
        print()
    missed = []
    if ratio > TARGET_RATIO:
        missed.append('no-op re-converge %.2fx the floor' % ratio)
    for label, ours, stock, stock_net in verdicts:
        print('converged %.1f MiB, stock %.1f MiB (RSS): %s (%s)' % (
            ours / 1024.0, stock / 1024.0, 'below, target met' if ours < stock else 'NOT below, target missed', label))
        print('  data only: stock with its default network started %.1f MiB, converged %+.1f MiB beside it' % (
            stock_net / 1024.0, (ours - stock_net) / 1024.0))
        if ours >= stock:
            missed.append('%s: converged host uses %.1f MiB, stock %.1f MiB' % (label, ours / 1024.0, stock / 1024.0))
    if missed:
        print('target missed: ' + '; '.join(missed))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
