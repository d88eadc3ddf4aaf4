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

Then libvirtd restarts on both (so that the converge's own libvirt queries do
not weigh on ours), both idle for a while, and the resident memory (RSS) of
every process on each (but the measuring SSH session) is summed. Target: the
converged headless host below the stock one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from common import REPO, VENV_BIN, ansible_env

HOSTS = os.path.join(REPO, 'tests', 'lab', 'hosts.sh')
ROOTFS = os.path.join(REPO, 'tests', 'lab', 'cache', 'rootfs-bookworm')
SITE = os.path.join(REPO, 'playbooks', 'site.yml')
LAB_ENV = {'LAB_PREFIX': 'phyllome-bench', 'LAB_DIR': os.path.join(REPO, '.build', 'bench-lab')}
IDLE_SECONDS = 60
TARGET_RATIO = 1.3

# Every process's RSS in kB, but those of this SSH session (its session id).
RSS_SCRIPT = r'''
me=$(ps -o sid= -p $$ | tr -d ' ')
ps -eo sid=,rss=,comm= | awk -v me="$me" '$1 != me {rss[$3] += $2; total += $2}
  END {for (c in rss) printf "%s %d\n", c, rss[c]; printf "TOTAL %d\n", total}'
'''


def lab(*args, check=True):
    env = dict(os.environ, **LAB_ENV)
    return subprocess.run([HOSTS] + list(args), env=env, check=check, capture_output=True, text=True)


def playbook(path, inventory, limit, extra=None):
    argv = [os.path.join(VENV_BIN, 'ansible-playbook'), '-i', inventory, '--limit', limit, path]
    if extra:
        argv += ['-e', json.dumps(extra)]
    start = time.monotonic()
    proc = subprocess.run(argv, env=ansible_env(), capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError('%s failed:\n%s\n%s' % (path, proc.stdout[-4000:], proc.stderr[-2000:]))
    out = json.loads(proc.stdout)
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


def rss(name):
    out = lab('ssh', name, RSS_SCRIPT).stdout.split('\n')
    by_command = {}
    for line in out:
        if line.strip():
            command, kb = line.rsplit(' ', 1)
            by_command[command] = int(kb)
    total = by_command.pop('TOTAL')
    return total, by_command


def main():
    lab('down', check=False)
    up = lab('up', '2', check=False)
    if up.returncode != 0:
        print(up.stderr)
        return 1
    inventory = lab('inventory').stdout.strip()
    try:
        first, first_stats, first_tasks = playbook(SITE, inventory, 'lab1')
        again, again_stats, again_tasks = playbook(SITE, inventory, 'lab1')
        with tempfile.TemporaryDirectory(prefix='phyllome-bench-') as directory:
            floor, floor_stats, floor_tasks = playbook(floor_playbook(directory, again_tasks - 1), inventory, 'lab1')
        stock_repo = os.path.join(LAB_ENV['LAB_DIR'], 'hosts', 'lab2', 'root', 'srv', 'stock-repo')
        stock_repository(stock_repo)
        lab('ssh', 'lab2', 'printf "deb [trusted=yes] file:/srv/stock-repo ./\\n" > /etc/apt/sources.list; '
            'apt-get -q update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get -y -q install libvirt-daemon-system >/dev/null')
        stock_packages = int(lab('ssh', 'lab2', "dpkg-query -W -f='.' | wc -c").stdout)
        ours_packages = int(lab('ssh', 'lab1', "dpkg-query -W -f='.' | wc -c").stdout)
        for name in ('lab1', 'lab2'):
            lab('ssh', name, 'systemctl restart libvirtd.service')
        time.sleep(IDLE_SECONDS)
        ours, ours_by = rss('lab1')
        stock, stock_by = rss('lab2')
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
    print('idle memory after %d s, RSS of every process but the measuring SSH session' % IDLE_SECONDS)
    print('  converged headless host: %6.1f MiB (%d packages)' % (ours / 1024.0, ours_packages))
    print('  stock libvirt-daemon-system host: %6.1f MiB (%d packages)' % (stock / 1024.0, stock_packages))
    for label, by in (('converged', ours_by), ('stock', stock_by)):
        top = sorted(by.items(), key=lambda kv: -kv[1])[:8]
        print('  %s, largest: %s' % (label, ', '.join('%s %.1f' % (c, kb / 1024.0) for c, kb in top)))
    differ = sorted(set(ours_by) | set(stock_by), key=lambda c: -abs(ours_by.get(c, 0) - stock_by.get(c, 0)))
    print('  where they differ (MiB, converged - stock): %s' % ', '.join(
        '%s %+.1f' % (c, (ours_by.get(c, 0) - stock_by.get(c, 0)) / 1024.0) for c in differ
        if abs(ours_by.get(c, 0) - stock_by.get(c, 0)) >= 256))
    missed = []
    if ratio > TARGET_RATIO:
        missed.append('no-op re-converge %.2fx the floor' % ratio)
    if ours >= stock:
        missed.append('converged host uses %.1f MiB, stock %.1f MiB' % (ours / 1024.0, stock / 1024.0))
    if missed:
        print('target missed: ' + '; '.join(missed))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
