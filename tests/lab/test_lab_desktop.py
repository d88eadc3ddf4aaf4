"""The desktop edition (GNOME minimal + virt-manager) converged for real on a
lab host: converge -> second converge changed=0 -> check mode changed=0.

Heavy (a 404 MB repository once, then about 10 min on 2 cores, teardown included), so it is
not part of `make test` or `make lab-test`: run it with `make lab-desktop`
(root). Its lab has a directory of its own (.build/lab-desktop), beside the
headless lab's.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

from test_lab import HOSTS, HOST, ROOT, SITE, Job

ansible_runner = pytest.importorskip('ansible_runner')

ENV = dict(os.environ, LAB_EDITION='desktop', LAB_DIR=os.path.join(ROOT, '.build', 'lab-desktop'))

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root')


def lab_sh(*args, check=True):
    return subprocess.run((HOSTS,) + args, env=ENV, check=check, text=True, capture_output=True)


def on_host(command):
    return lab_sh('ssh', HOST, command).stdout


@pytest.fixture(scope='module')
def lab():
    lab_sh('down')
    up = lab_sh('up', '1', check=False)
    sys.stderr.write(up.stderr)
    assert up.returncode == 0, up.stderr
    inventory = lab_sh('inventory').stdout.strip()
    with tempfile.TemporaryDirectory(prefix='phyllome-lab-desktop-') as data:
        def job(cmdline=None, ident=None):
            runner = ansible_runner.run(
                private_data_dir=tempfile.mkdtemp(dir=data), playbook=SITE, inventory=inventory,
                cmdline=cmdline, ident=ident, quiet=True, json_mode=False)
            return Job(runner)
        yield job
    down = lab_sh('down', check=False)
    assert down.returncode == 0, down.stderr
    clean = lab_sh('check-clean', check=False)
    assert clean.returncode == 0, clean.stderr


def test_converge_the_desktop_edition(lab):
    job = lab(ident='desktop-1')
    assert job.status == 'successful', job.stdout()
    assert job.changed() > 0
    assert job.fact('phyllome_host_ready') is True, job.fact('phyllome_host_report')['summary']
    assert on_host('systemctl get-default').strip() == 'graphical.target'
    # Debian's gdm.service is static: gdm3's own postinst links display-manager.service to it
    display_manager = on_host('readlink -f /etc/systemd/system/display-manager.service').strip()
    assert os.path.basename(display_manager) in ('gdm.service', 'gdm3.service'), display_manager
    installed = on_host("dpkg-query -W -f='${Package} ${Status}\\n' gnome-core virt-manager")
    assert installed.split('\n')[:2] == ['gnome-core install ok installed', 'virt-manager install ok installed'], installed
    # the desktop edition turns sshd off unless asked, and the lab asks (phyllome_host_sshd: true)
    assert on_host('systemctl is-active ssh.service').strip() == 'active'


def test_second_converge_changes_nothing(lab):
    job = lab(ident='desktop-2')
    assert job.status == 'successful', job.stdout()
    assert job.changed_tasks() == []


def test_check_mode_on_the_converged_desktop_changes_nothing(lab):
    job = lab(cmdline='--check --diff', ident='desktop-check')
    assert job.status == 'successful', job.stdout()
    assert job.changed_tasks() == []
