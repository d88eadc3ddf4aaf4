# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""iommu_info on a large recorded host: 256 IOMMU groups, 1000 PCI devices.

Prints three figures per run: the module_utils work alone (in-process, the
host's whole report), one iommu_info task through ansible-playbook, and one
ansible.builtin.ping task (Ansible's own per-task floor on this machine).
The target: the module's own work stays well under a second.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
import time

from common import COLLECTIONS, REPO, print_table, run_playbook

GROUPS = 256
DEVICES = 1000
RUNS = 5            # in-process repetitions
TASKS = 10          # loop items per playbook
# A real pci.ids, so name lookups cost what they cost on a host (Debian's, then Fedora's).
SYSTEM_PCI_IDS = ('/usr/share/misc/pci.ids', '/usr/share/hwdata/pci.ids')


def _fixture(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, 'tests', 'fixtures', name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_tree(directory):
    spec = _fixture('sysfs_tree').bench_machine(GROUPS, DEVICES).spec()
    _fixture('hosttree').materialize(spec, directory)
    for path in SYSTEM_PCI_IDS:
        if os.path.exists(path):
            os.makedirs(os.path.join(directory, 'usr/share/hwdata'), exist_ok=True)
            shutil.copy(path, os.path.join(directory, 'usr/share/hwdata/pci.ids'))
            return path
    return None


def module_utils_seconds(root):
    sys.path.insert(0, COLLECTIONS)
    from ansible_collections.phyllome.os.plugins.module_utils._common.hostfs import HostFS
    from ansible_collections.phyllome.os.plugins.module_utils._host.iommu_groups import gather

    times = []
    report = None
    for _run in range(RUNS):
        start = time.perf_counter()
        report = gather(HostFS(root))
        times.append(time.perf_counter() - start)
    return times, report


def main():
    work = tempfile.mkdtemp(prefix='phyllome-bench-iommu-')
    try:
        root = os.path.join(work, 'host')
        start = time.perf_counter()
        pci_ids = build_tree(root)
        print('tree: %d groups, %d PCI devices, built in %.1f s; pci.ids: %s' % (
            GROUPS, DEVICES, time.perf_counter() - start, pci_ids or 'none on this machine (names skipped)'))

        times, report = module_utils_seconds(root)
        assert len(report['groups']) == GROUPS and len(report['pci_devices']) == DEVICES, 'unexpected tree'
        named = sum(1 for d in report['pci_devices'].values() if d.get('device_name'))
        verdicts = {}
        for group in report['groups']:
            verdicts[group['verdict']] = verdicts.get(group['verdict'], 0) + 1
        print('report: %s; %d devices named from pci.ids' % (
            ', '.join('%s %d' % kv for kv in sorted(verdicts.items())), named))

        # One warm-up run of each, so that the first playbook's start-up
        # (plugin cache, Python imports from a cold disk) counts for neither.
        run_playbook('- hosts: localhost\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n', workdir=work)
        module_total, _stats = run_playbook(
            '- hosts: localhost\n  gather_facts: false\n  tasks:\n'
            '    - phyllome.os.iommu_info:\n        root: %s\n'
            '      loop: "{{ range(%d) | list }}"\n      no_log: true\n' % (root, TASKS), workdir=work)
        floor_total, _stats = run_playbook(
            '- hosts: localhost\n  gather_facts: false\n  tasks:\n'
            '    - ansible.builtin.ping:\n      loop: "{{ range(%d) | list }}"\n      no_log: true\n' % TASKS,
            workdir=work)
        per_task = module_total / TASKS
        floor = floor_total / TASKS
        print_table('iommu_info, %d groups / %d devices' % (GROUPS, DEVICES), [
            ('module_utils (gather), best of %d' % RUNS, min(times), 'median %.3f s, in-process' % statistics.median(times)),
            ('iommu_info task through ansible', per_task, 'per item of a %d-item loop, JSON result included' % TASKS),
            ('ansible.builtin.ping task (floor)', floor, 'per item of a %d-item loop' % TASKS),
            ('iommu_info above the floor', per_task - floor, 'what the module adds to a task'),
        ])
        verdict = 'OK' if min(times) < 0.5 and per_task - floor < 1.0 else 'TOO SLOW'
        print('  target: module work well under 1 s -> %s' % verdict)
        if verdict != 'OK':
            raise SystemExit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
