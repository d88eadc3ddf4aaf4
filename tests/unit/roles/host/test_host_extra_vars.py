# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host role reads `-e name=false` as false, on the ansible-core this runs under.

`make units` runs it on the newest ansible-core, `make units-oldest` on 2.17.
ansible-playbook runs, on this machine, only the role's read-only steps: the
argument spec, set_vars.yml (facts, the family's data, the input checks) and
the input check of libvirt over TLS; then it asserts what the role made of
the extra vars. Extra vars in key=value form are strings ("false"): read
without `| bool`, "false" is true on 2.17 and fails a condition on 2.19 (see
tests/unit/roles/test_bool_variables.py, which checks every expression).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))

PLAY = '''
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Check the input as the role does
      ansible.builtin.validate_argument_spec:
        argument_spec: "{{ (lookup('ansible.builtin.file', spec) | from_yaml).argument_specs.main.options }}"
      vars:
        spec: "{{ collection_root }}/roles/host/meta/argument_specs.yml"
    - name: The role's read-only steps
      ansible.builtin.include_role:
        name: phyllome.os.host
        tasks_from: "{{ item }}"
        # its vars (vars/main.yml) stay visible to the assertion below
        public: true
      loop: [set_vars.yml, libvirt_tls_check.yml]
    - name: What the role made of the extra vars
      ansible.builtin.debug:
        msg: "RESULT {{ {'sshd_on': __phyllome_host_sshd_on | bool, 'sshd_socket_on': __phyllome_host_sshd_socket_on | bool} | to_json }}"
'''


def _collections_path():
    """The directory holding ansible_collections/phyllome/os (ansible-test's copy, else PYTHONPATH's)."""
    root = os.path.normpath(os.path.join(HERE, '..', '..', '..', '..'))
    parts = root.split(os.sep)
    if parts[-3:-1] == ['ansible_collections', 'phyllome']:
        return os.sep.join(parts[:-3]), root
    for entry in sys.path:
        candidate = os.path.join(entry, 'ansible_collections', 'phyllome', 'os')
        if os.path.isdir(candidate):
            return entry, candidate
    return None, None


def run_play(tmp_path, *extra_vars):
    """ansible-playbook of PLAY on this machine with `-e` for each of extra_vars; the finished process."""
    collections, root = _collections_path()
    if collections is None:
        pytest.skip('the collection is not on a collections path (PYTHONPATH=.build/collections, see docs/developing.md)')
    play = tmp_path / 'play.yml'
    play.write_text(PLAY)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_HOME=str(tmp_path / 'home'),
               ANSIBLE_LOCAL_TEMP=str(tmp_path / 'tmp'), ANSIBLE_REMOTE_TEMP=str(tmp_path / 'tmp'),
               ANSIBLE_NOCOLOR='1', ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_RETRY_FILES_ENABLED='0')
    argv = [sys.executable, '-m', 'ansible.cli.playbook', '-i', 'localhost,', '-c', 'local', str(play),
            '-e', 'collection_root=%s' % root]
    for extra in extra_vars:
        argv += ['-e', extra]
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=300)


def test_string_booleans_from_the_command_line(tmp_path):
    run = run_play(tmp_path,
                   # each one the opposite of what the role would do without it
                   'phyllome_host_edition=desktop', 'phyllome_host_sshd=true', 'phyllome_host_sshd_per_connection=false',
                   # true, it would ask for certificates and fail the check
                   'phyllome_host_libvirt_tls=false')
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    line = [text for text in run.stdout.splitlines() if '"msg": "RESULT ' in text][-1]
    result = json.loads(json.loads('{%s}' % line.strip())['msg'][len('RESULT '):])
    # sshd on although the desktop edition leaves it off; per connection off although it defaults to on
    assert result == {'sshd_on': True, 'sshd_socket_on': False}


DN_ERROR = 'phyllome_host_libvirt_tls_allowed_dn_list: an entry is empty'


@pytest.mark.parametrize('dn_list, refused', [
    (['C=GB,O=Example,CN=*'], False),
    (['C=GB,O=Example "Ltd",CN=host1'], False),   # written in single quotes
    (["C=GB,O=Example's,CN=host1"], False),       # written in double quotes
    (['C=GB,O=Example \'s "Ltd",CN=host1'], True),  # both: libvirt's config strings have no escapes
    (['C=GB,CN=host1\nCN=host2'], True),
    ([''], True),
])
def test_tls_allowed_dns_that_libvirt_cannot_read_are_refused(tmp_path, dn_list, refused):
    # TLS on without certificates: the check fails in any case ("... is required"); what matters is the DN error
    run = run_play(tmp_path, json.dumps({'phyllome_host_libvirt_tls': True,
                                         'phyllome_host_libvirt_tls_allowed_dn_list': dn_list}))
    assert run.returncode != 0 and 'phyllome_host_libvirt_tls_ca_cert is required' in run.stdout, run.stdout[-4000:]
    assert (DN_ERROR in run.stdout) is refused, run.stdout[-4000:]
