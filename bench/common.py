# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared pieces of the benchmarks under bench/.

Benchmarks print figures side by side (ours, a peer's, and Ansible's own
per-task floor), in one run on one machine; they are not timed tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(REPO, '.venv', 'bin')
COLLECTIONS = os.path.join(REPO, '.build', 'collections')
# the private libvirtd of the tests and benchmarks (never the machine's own)
LAB_LIBVIRTD = os.path.join(REPO, 'tests', 'lab', 'libvirtd.sh')


def lab_libvirtd(command):
    """Run `tests/lab/libvirtd.sh command` (up, uri...); return its output."""
    return subprocess.run([LAB_LIBVIRTD, command], check=True, capture_output=True, text=True).stdout.strip()


def test_uri():
    """The URI of the private test libvirtd: qemu+unix:///system?socket=<its tree>/run/libvirt/libvirt-sock."""
    return lab_libvirtd('uri')


def ansible_env(extra=None):
    """Environment for ansible-playbook: this collection on the path, JSON results."""
    env = dict(os.environ)
    env.update({
        # community.* and ansible.posix come from the `ansible` package's
        # site-packages, which Ansible scans by itself.
        'ANSIBLE_COLLECTIONS_PATH': COLLECTIONS,
        'ANSIBLE_STDOUT_CALLBACK': 'ansible.posix.json',
        'ANSIBLE_LOAD_CALLBACK_PLUGINS': '1',
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_HOST_KEY_CHECKING': '0',
        'ANSIBLE_RETRY_FILES_ENABLED': '0',
    })
    env.update(extra or {})
    return env


def localhost_inventory(directory):
    path = os.path.join(directory, 'inventory.yml')
    with open(path, 'w') as f:
        f.write('all:\n  hosts:\n    localhost:\n      ansible_connection: local\n'
                '      ansible_python_interpreter: %s\n' % sys.executable)
    return path


def ansible_playbook(args, prefix=()):
    """Run ansible-playbook with `args` (this collection, JSON callback); (seconds, its whole JSON output).

    prefix: argv put before ansible-playbook's (e.g. `ip netns exec NAME`). A failed run raises RuntimeError
    with the end of its output.
    """
    argv = list(prefix) + [os.path.join(VENV_BIN, 'ansible-playbook')] + list(args)
    start = time.monotonic()
    proc = subprocess.run(argv, env=ansible_env(), capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError('playbook failed (rc=%d):\n%s\n%s' % (proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
    return elapsed, json.loads(proc.stdout)


def run_playbook(playbook_text, extra_vars=None, workdir=None, output=False, prefix=()):
    """Run a playbook on localhost; return (seconds, stats) where stats counts changed/failed/ok tasks.

    With output=True, return (seconds, stats, the json callback's whole output) to look at items.
    prefix: as ansible_playbook's.
    """
    directory = workdir or tempfile.mkdtemp(prefix='phyllome-bench-')
    playbook = os.path.join(directory, 'play-%d.yml' % time.monotonic_ns())
    with open(playbook, 'w') as f:
        f.write(playbook_text)
    args = ['-i', localhost_inventory(directory), playbook]
    if extra_vars:
        args += ['-e', json.dumps(extra_vars)]
    elapsed, result = ansible_playbook(args, prefix)
    stats = result['stats']['localhost']
    if output:
        return elapsed, stats, result
    return elapsed, stats


def ansible_floor(items):
    """Seconds Ansible itself needs for a loop of `items` ansible.builtin.ping on localhost."""
    elapsed, _stats = run_playbook(
        '- hosts: localhost\n  gather_facts: false\n  tasks:\n'
        '    - ansible.builtin.ping:\n      loop: "{{ range(%d) | list }}"\n' % items)
    return elapsed


def read_text(path):
    """A file's text, or '' when it cannot be read (a process gone meanwhile)."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ''


def process_children():
    """{parent pid: [child pids]} of every process of the machine, from /proc."""
    children = {}
    for pid in filter(str.isdigit, os.listdir('/proc')):
        stat = read_text('/proc/%s/stat' % pid)
        if stat:
            children.setdefault(int(stat.rsplit(')', 1)[1].split()[1]), []).append(int(pid))
    return children


def print_table(title, rows):
    """Print rows of (label, seconds, note) aligned, under a title."""
    print('\n== %s ==' % title)
    width = max(len(r[0]) for r in rows)
    for label, seconds, note in rows:
        print('  %-*s  %8.2f s  %s' % (width, label, seconds, note))


def undefine_prefixed(uri, prefix):
    """Undefine (with nvram) every domain of `uri` whose name starts with `prefix` (the benchmarks' own)."""
    names = subprocess.run(['virsh', '-c', uri, 'list', '--all', '--name'], capture_output=True, text=True,
                           check=True).stdout.split()
    for name in names:
        if name.startswith(prefix):
            subprocess.run(['virsh', '-c', uri, 'undefine', '--nvram', name], capture_output=True, check=False)


def work_with_image(prefix):
    """A temporary directory libvirt's qemu user can read, with an empty disk image: (directory, image path)."""
    work = tempfile.mkdtemp(prefix=prefix)
    os.chmod(work, 0o755)
    image = os.path.join(work, 'disk.img')
    with open(image, 'wb'):
        pass
    return work, image
