# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""site.yml and report.yml at scale: measured on lab hosts, simulated for many.

Not part of `make test`: `make bench BENCH=scale` (or `.venv/bin/python
bench/run.py scale`, which needs no lock: it uses neither the private test
libvirtd nor the bench lab of bench_host_role.py). docs/scale.md explains the
figures and the settings they lead to.

1. Lab (real hosts). BENCH_SCALE_LAB hosts (default 1,2,4) of a lab of their
   own (tests/lab/hosts.sh, LAB_PREFIX phyllome-scale, no guests: TCG guests
   would eat the two cores the measure needs), converged once by site.yml.
   Then no-op re-converges of site.yml and runs of report.yml on 1, 2, ... of
   them with Ansible's defaults (forks 5: one wave), and on the largest the
   variations: strategy free, pipelining, serial [1, 50%] with max fail 0, and
   fact caching (gathering=smart + the jsonfile cache, filled by a first run).
   Per run: wall time, the controller's CPU (ansible-playbook and every
   process it waited for; ssh's ControlPersist masters detach and are not
   counted), the lab hosts' CPU (their cgroups), the controller's peak memory.
   Then the memory of each lab host (its cgroup) and of each fork.
2. Simulation (hosts that cost nothing). The same playbooks against
   BENCH_SCALE_SIM inventory hosts (default 10,50: here each costs minutes;
   BENCH_SCALE_SIM=100,1000 where hours are affordable) reached through
   bench/scale_connection/phyllome_bench_replay.py: Ansible's local connection
   whose module runs answer what the same module printed on lab1 (recorded
   during a no-op run there). It measures what the controller alone spends per
   host: CPU, memory, forks, the fact cache; not ssh, the network or the hosts.
3. The extrapolation to 100 and 1000 hosts, from the two.

Beside the figures: Ansible's own per-task floor (the benchmarks' ~0.4 s a
task on this machine, ansible.builtin.ping on localhost); the peer is Ansible
itself with its defaults (forks 5, linear, no pipelining, no fact cache).
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import yaml

from common import REPO, VENV_BIN, ansible_env, ansible_floor, process_children, read_text

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'scale_connection'))
from phyllome_bench_replay import call_key, comparable, module_call  # noqa: E402  pylint: disable=wrong-import-position

HOSTS = os.path.join(REPO, 'tests', 'lab', 'hosts.sh')
SITE = os.path.join(REPO, 'playbooks', 'site.yml')
REPORT = os.path.join(REPO, 'playbooks', 'report.yml')
CONNECTION_PLUGINS = os.path.join(REPO, 'bench', 'scale_connection')
LAB_ENV = {'LAB_PREFIX': os.environ.get('BENCH_SCALE_LAB_PREFIX', 'phyllome-scale'),
           'LAB_DIR': os.path.join(REPO, '.build', 'bench-scale-lab'), 'LAB_GUESTS': '0'}
LAB_SIZES = [int(n) for n in os.environ.get('BENCH_SCALE_LAB', '1,2,4').split(',')]
# Each simulated host costs this machine ~0.07 CPU s a task: 1000 hosts of site.yml would take hours here.
SIM_SIZES = [int(n) for n in os.environ.get('BENCH_SCALE_SIM', '10,50').split(',')]
# forks of the simulation (Ansible's default is 5)
SIM_FORKS = int(os.environ.get('BENCH_SCALE_SIM_FORKS', '25'))
# BENCH_SCALE_KEEP_LAB=1 leaves the lab up (for a second run); the default tears it down.
KEEP_LAB = os.environ.get('BENCH_SCALE_KEEP_LAB') == '1'
RECORDER = '/usr/local/bin/phyllome-bench-record-python'
RECORD_DIR = '/var/tmp/phyllome-bench-record'
FLOOR_ITEMS = 20


def lab(*args, check=True):
    return subprocess.run([HOSTS] + list(args), env=dict(os.environ, **LAB_ENV), check=check, capture_output=True, text=True)


def host_cgroup(host):
    """The cgroup v2 directory of lab host `host` (tests/lab/hosts.sh gives each host one named after its
    namespace; on a hybrid machine it is in the unified hierarchy, which has no memory controller there)."""
    namespace = lab('netns', host).stdout.strip()
    for root in ('/sys/fs/cgroup/unified', '/sys/fs/cgroup'):
        if os.path.exists(os.path.join(root, namespace, 'cpu.stat')):
            return os.path.join(root, namespace)
    raise RuntimeError('no cgroup of lab host %s (%s)' % (host, namespace))


def host_cpu_seconds(host):
    """CPU seconds every process of lab host `host` has used (cgroup v2's cpu.stat, there without its controller)."""
    stat = dict(line.split() for line in read_text(os.path.join(host_cgroup(host), 'cpu.stat')).splitlines())
    return int(stat['usage_usec']) / 1e6


def pss_kb(pid):
    rollup = dict(line.split(':', 1) for line in read_text('/proc/%s/smaps_rollup' % pid).splitlines()[1:] if ':' in line)
    return int(rollup.get('Pss', '0 kB').split()[0])


def host_memory(host):
    """(RSS, PSS) MiB summed over every process of lab host `host` (those of its cgroup tree)."""
    rss = pss = 0
    for directory, _dirs, files in os.walk(host_cgroup(host)):
        if 'cgroup.procs' not in files:
            continue
        for pid in read_text(os.path.join(directory, 'cgroup.procs')).split():
            status = dict(line.split(':', 1) for line in read_text('/proc/%s/status' % pid).splitlines() if ':' in line)
            rss += int(status.get('VmRSS', '0 kB').split()[0])
            pss += pss_kb(pid)
    return rss / 1024.0, pss / 1024.0


class Sampler(threading.Thread):
    """Samples the controller's processes while a playbook runs: the main process's RSS, the sum of the PSS
    of it and every descendant (forks, ssh, sh), the number of forks alive and the PSS of one fork."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.done = pid, threading.Event()
        self.main_rss = self.tree_pss = self.workers = 0
        self.worker_pss = []

    def run(self):
        while not self.done.wait(0.3):
            children = process_children()
            tree, todo = [], [self.pid]
            while todo:
                pid = todo.pop()
                tree.append(pid)
                todo.extend(children.get(pid, []))
            comm = read_text('/proc/%d/comm' % self.pid)
            pss = 0
            for pid in tree:
                value = pss_kb(pid)
                pss += value
                if pid != self.pid and pid in children.get(self.pid, []) and read_text('/proc/%d/comm' % pid) == comm:
                    self.worker_pss.append(value)
            workers = sum(1 for pid in children.get(self.pid, []) if read_text('/proc/%d/comm' % pid) == comm)
            status = dict(line.split(':', 1) for line in read_text('/proc/%d/status' % self.pid).splitlines() if ':' in line)
            self.main_rss = max(self.main_rss, int(status.get('VmRSS', '0 kB').split()[0]))
            self.tree_pss, self.workers = max(self.tree_pss, pss), max(self.workers, workers)


RECAP = re.compile(r'^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)', re.MULTILINE)


def run(playbook, inventory, hosts=None, forks=5, env=None, extra=None, lab_hosts=()):
    """Run a playbook and measure it; returns a dict of figures. The default callback (ok and skipped lines off)
    prints the recap it is read from: the json callback would hold every result, facts included, in memory."""
    argv = [os.path.join(VENV_BIN, 'ansible-playbook'), '-i', inventory, '-f', str(forks), playbook]
    if hosts:
        argv += ['--limit', ','.join(hosts)]
    if extra:
        argv += ['-e', json.dumps(extra)]
    environment = ansible_env(dict({'ANSIBLE_STDOUT_CALLBACK': 'ansible.builtin.default', 'ANSIBLE_DISPLAY_OK_HOSTS': '0',
                                    'ANSIBLE_DISPLAY_SKIPPED_HOSTS': '0'}, **(env or {})))
    load = os.getloadavg()[0]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    hosts_before = {h: host_cpu_seconds(h) for h in lab_hosts}
    start = time.monotonic()
    proc = subprocess.Popen(argv, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = Sampler(proc.pid)
    sampler.start()
    out, err = proc.communicate()
    seconds = time.monotonic() - start
    sampler.done.set()
    sampler.join()
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    recap = {m[0]: [int(x) for x in m[1:]] for m in RECAP.findall(out)}
    if proc.returncode != 0 or not recap or any(r[2] or r[3] for r in recap.values()):
        failures = '\n'.join(line for line in out.splitlines() if line.startswith(('fatal:', 'failed:')) or 'FAILED!' in line)
        raise RuntimeError('%s failed (rc=%d):\n%s\n%s\n%s' % (playbook, proc.returncode, failures[-8000:], out[-2000:], err[-2000:]))
    played = [r for h, r in recap.items() if h != 'localhost']
    return {
        'seconds': seconds,
        'cpu': (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime),
        'hosts_cpu': sum(host_cpu_seconds(h) - hosts_before[h] for h in lab_hosts),
        'hosts': len(played),
        # Ansible's `ok` counts the changed tasks too
        'tasks': max(r[0] for r in played),
        'skipped': max(r[4] for r in played),
        'changed': sum(r[1] for r in played),
        'main_rss': sampler.main_rss / 1024.0,
        'tree_pss': sampler.tree_pss / 1024.0,
        'workers': sampler.workers,
        'worker_pss': (sorted(sampler.worker_pss)[len(sampler.worker_pss) // 2] / 1024.0) if sampler.worker_pss else 0.0,
        'load': load,
    }


def fact_cache_env(directory):
    return {'ANSIBLE_GATHERING': 'smart', 'ANSIBLE_CACHE_PLUGIN': 'ansible.builtin.jsonfile',
            'ANSIBLE_CACHE_PLUGIN_CONNECTION': directory, 'ANSIBLE_CACHE_PLUGIN_TIMEOUT': '86400'}


def configurations(size, largest, work):
    """(label, playbook, forks, env, extra) of the runs on `size` hosts: Ansible's defaults on every size, the
    variations on the largest only (two cores make each run minutes long)."""
    cache = fact_cache_env(os.path.join(work, 'facts-%d' % size))
    report = ('report, defaults', REPORT, 5, {}, {'phyllome_report_dir': os.path.join(work, 'report-%d' % size)})
    runs = [('site, defaults (linear, forks 5)', SITE, 5, {}, None)]
    if size == largest:
        runs += [('site, strategy free', SITE, 5, {'ANSIBLE_STRATEGY': 'free'}, None),
                 ('site, pipelining', SITE, 5, {'ANSIBLE_PIPELINING': '1'}, None),
                 # a canary host, then half of them at a time; any failure stops the play
                 ('site, serial [1, 50%], max fail 0', SITE, 5, {}, {'phyllome_site_serial': [1, '50%'],
                                                                     'phyllome_site_max_fail_percentage': 0}),
                 ('site, fact cache: first run fills it', SITE, 5, cache, None),
                 ('site, fact cache: facts from the cache', SITE, 5, cache, None)]
    return runs + [report]


def print_header(title):
    print('\n== %s ==' % title)
    print('  (s/task: wall / tasks a host ran (ok), skipped beside; ctl CPU: the controller\'s user+sys seconds; host CPU: '
          'the lab hosts\'; ctl MiB: peak PSS of ansible-playbook and its children, main: its own peak RSS; '
          'chg: changed, summed over the hosts; forks: most alive at once, MiB a fork: median PSS; load: 1-min load average before)')
    print('  %-40s %5s %5s %4s %4s %7s %6s %7s %8s %7s %5s %5s %6s %5s' % (
        'run', 'hosts', 'tasks', 'skip', 'chg', 'wall s', 's/task', 'ctl CPU', 'host CPU', 'ctl MiB', 'main', 'forks',
        'MiB/fk', 'load'))
    sys.stdout.flush()


def print_row(label, r):
    print('  %-40s %5d %5d %4d %4d %7.1f %6.2f %7.1f %8.1f %7.0f %5.0f %5d %6.1f %5.1f' % (
        label, r['hosts'], r['tasks'], r['skipped'], r['changed'], r['seconds'], r['seconds'] / r['tasks'], r['cpu'], r['hosts_cpu'],
        r['tree_pss'], r['main_rss'], r['workers'], r['worker_pss'], r['load']))
    sys.stdout.flush()


def recorder_script():
    """The interpreter lab1 runs modules with while recording: Python itself, keeping each payload and answer."""
    return ('#!/bin/sh\n# bench/bench_scale.py: keeps what each module run reads and prints, then answers as python3\n'
            'd=%s; mkdir -p "$d"; n="$d/$(date +%%s%%N)-$$"\n'
            'if [ $# -gt 0 ]; then cp "$1" "$n.in"; /usr/bin/python3 "$@" >"$n.out"; else\n'
            '  cat >"$n.in"; /usr/bin/python3 <"$n.in" >"$n.out"; fi\n'
            'rc=$?; echo $rc >"$n.rc"; cat "$n.out"; exit $rc\n' % RECORD_DIR)


def record(inventory, work):
    """Record lab1's module answers during a no-op site.yml and a report.yml; returns the replay directory."""
    root = os.path.join(LAB_ENV['LAB_DIR'], 'hosts', 'lab1', 'root')
    with open(root + RECORDER, 'w') as f:
        f.write(recorder_script())
    os.chmod(root + RECORDER, 0o755)
    shutil.rmtree(root + RECORD_DIR, ignore_errors=True)
    with open(inventory) as f:
        data = yaml.safe_load(f)
    data['all']['children']['phyllome_hosts']['hosts']['lab1']['ansible_python_interpreter'] = RECORDER
    recording = os.path.join(work, 'recording-inventory.yml')
    with open(recording, 'w') as f:
        yaml.safe_dump(data, f)
    # with and without pipelining: the same calls, so either replays both
    run(SITE, recording, ['lab1'], forks=1)
    run(REPORT, recording, ['lab1'], forks=1, extra={'phyllome_report_dir': os.path.join(work, 'report-recording')})
    replay = os.path.join(work, 'replay')
    os.makedirs(replay)
    index = {}
    records = sorted(n[:-3] for n in os.listdir(root + RECORD_DIR) if n.endswith('.in'))
    for name in records:
        base = os.path.join(root + RECORD_DIR, name)
        with open(base + '.in', 'rb') as f:
            module, arguments = module_call(f.read())
        if module is None:
            continue
        key = call_key(module, arguments)
        with open(os.path.join(replay, key + '.json'), 'w') as f:
            json.dump({'rc': int(read_text(base + '.rc') or 1), 'stdout': read_text(base + '.out')}, f)
        entries = index.setdefault(module, [])
        if all(e['key'] != key for e in entries):
            entries.append({'key': key, 'arguments': comparable(arguments)})
    with open(os.path.join(replay, 'index.json'), 'w') as f:
        json.dump(index, f)
    os.remove(root + RECORDER)
    return replay, len(records), sum(len(v) for v in index.values())


def sim_inventory(work, lab_inventory, size):
    """`size` hosts sim0001... in phyllome_hosts with the lab's group variables, reached by the replay connection."""
    with open(lab_inventory) as f:
        group = yaml.safe_load(f)['all']['children']['phyllome_hosts']
    variables = dict(group['vars'], ansible_connection='phyllome_bench_replay', ansible_python_interpreter='/usr/bin/python3',
                     ansible_remote_tmp=os.path.join(work, 'remote-tmp'))
    hosts = {'sim%04d' % i: None for i in range(1, size + 1)}
    path = os.path.join(work, 'sim-%d.yml' % size)
    with open(path, 'w') as f:
        yaml.safe_dump({'all': {'children': {'phyllome_hosts': {'hosts': hosts, 'vars': variables}}}}, f)
    return path


def misses(replay):
    lines = read_text(os.path.join(replay, 'misses.log')).splitlines()
    open(os.path.join(replay, 'misses.log'), 'w').close()
    return len(lines)


def main():
    work = tempfile.mkdtemp(prefix='phyllome-bench-scale-')
    largest = max(LAB_SIZES)
    names = ['lab%d' % i for i in range(1, largest + 1)]
    up = lab('up', str(largest), check=False)
    if up.returncode != 0:
        print(up.stderr)
        return 1
    inventory = lab('inventory').stdout.strip()
    lab_rows, sim_rows = [], []
    try:
        print_header('lab: real hosts (systemd-nspawn over SSH, each in its own network namespace), no-op unless said')
        converge = run(SITE, inventory, names, forks=largest, lab_hosts=names)
        print_row('site, first run (a converge if the lab is new)', converge)
        memory = {h: host_memory(h) for h in names}
        # the largest first: its variations are the most telling if the machine's time runs out
        for size in sorted(LAB_SIZES, reverse=True):
            hosts = names[:size]
            for label, playbook, forks, env, extra in configurations(size, largest, work):
                lab_rows.append((label, run(playbook, inventory, hosts, forks, env, extra, lab_hosts=hosts)))
                print_row(*lab_rows[-1])
        print('\nmemory of each lab host after the converge (every process of its cgroup, read from the machine\'s /proc)')
        for host, (rss, pss) in memory.items():
            print('  %-6s RSS %6.1f MiB, PSS %6.1f MiB' % (host, rss, pss))
        replay, recorded, calls = record(inventory, work)
        os.environ['PHYLLOME_BENCH_REPLAY'] = replay
        sim_env = {'ANSIBLE_CONNECTION_PLUGINS': CONNECTION_PLUGINS}
        print_header('simulation: %d forks, module answers replayed from lab1 (%d module runs recorded, %d distinct calls); '
                     'no ssh, no host: the controller alone' % (SIM_FORKS, recorded, calls))
        for size in sorted(SIM_SIZES):
            sim = sim_inventory(work, inventory, size)
            for label, playbook, env, extra in (
                    ('site, linear', SITE, sim_env, None),
                    ('report', REPORT, sim_env, {'phyllome_report_dir': os.path.join(work, 'sim-report-%d' % size)})):
                row = run(playbook, sim, forks=SIM_FORKS, env=env, extra=extra)
                sim_rows.append(('%s, %d hosts' % (label, size), row))
                print_row(*sim_rows[-1])
                missed = misses(replay)
                if missed:
                    print('    %d module calls had no exact recording (the nearest one was replayed)' % missed)
        floor = ansible_floor(FLOOR_ITEMS) / FLOOR_ITEMS
    finally:
        if not KEEP_LAB:
            lab('down', check=False)
        shutil.rmtree(work, ignore_errors=True)
    print('\nAnsible\'s own floor: %.2f s a task (ansible.builtin.ping on localhost, %d items)' % (floor, FLOOR_ITEMS))
    extrapolate(lab_rows, sim_rows, floor)
    return 0


def extrapolate(lab_rows, sim_rows, floor):
    """Wall time of a run on many hosts: the larger of one host's latency times the waves of forks (the lab, one
    host) and the controller's CPU per host times the hosts over its cores (the simulation's largest size)."""
    print('\n== extrapolation (docs/scale.md explains the model) ==')
    for playbook, lab_label, sim_label in (('site.yml', 'site, defaults', 'site, linear'), ('report.yml', 'report', 'report')):
        single = [r for label, r in lab_rows if label.startswith(lab_label) and r['hosts'] == 1]
        rows = sorted((r for label, r in sim_rows if label.startswith(sim_label + ',')), key=lambda r: r['hosts'])
        if not single or not rows:
            continue
        latency, alone = single[0]['seconds'], rows[-1]['cpu'] / rows[-1]['hosts']
        # the controller's CPU per added lab host (ssh included), from the smallest and largest lab runs
        sizes = sorted((r for label, r in lab_rows if label.startswith(lab_label)), key=lambda r: r['hosts'])
        spread = sizes[-1]['hosts'] - sizes[0]['hosts']
        with_ssh = (sizes[-1]['cpu'] - sizes[0]['cpu']) / spread if spread else None
        cpu = max(alone, with_ssh or 0.0)
        slope = (rows[-1]['main_rss'] - rows[0]['main_rss']) / (rows[-1]['hosts'] - rows[0]['hosts']) if len(rows) > 1 else 0.0
        measured = '%.2f' % with_ssh if with_ssh else 'not measured'
        print('  %s: one host alone %.1f s (%.2f s a task; floor %.2f); the controller %.2f CPU s a host simulated, %s with '
              'ssh (lab); main process %+.2f MiB a host' % (playbook, latency, latency / single[0]['tasks'], floor, alone, measured, slope))
        for hosts in (100, 1000):
            for forks in (5, 25, 50):
                for cores in (2, 8):
                    cpu_bound, latency_bound = hosts * cpu / cores, latency * -(-hosts // forks)
                    print('    %4d hosts, forks %2d, %2d cores: %6.0f s (controller-bound %6.0f s, one host\'s latency %6.0f s)' % (
                        hosts, forks, cores, max(cpu_bound, latency_bound), cpu_bound, latency_bound))


if __name__ == '__main__':
    sys.exit(main())
