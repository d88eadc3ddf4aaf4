# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A connection for bench/bench_scale.py's simulation only: many inventory
hosts that cost no real host.

It is Ansible's `local` connection, except for module runs: a module's
payload (AnsiballZ, piped or in a file) is not executed. Its answer is
replayed from what the same module, called with the same arguments, printed
on a real lab host (bench_scale.py records it there). So everything the
controller does per host and task stays real: forks, templating, action
plugins, module packaging, the remote temporary directory's commands (run
by a local /bin/sh), files put, results parsed, facts stored. A module run
still costs the controller one process and a pipe carrying the payload
(`/bin/sh -c 'cat >/dev/null'`), as ssh's client would; what is not modelled:
ssh's encryption, the network's round trips and the module's own time on a
host.

The recording's directory comes from PHYLLOME_BENCH_REPLAY: one JSON file per
(module, arguments) key, index.json listing the keys by module. A call whose
arguments were not recorded gets the recorded answer of the same module with
the most arguments in common, and is logged in misses.log there.
"""

from __future__ import annotations

DOCUMENTATION = """
    name: phyllome_bench_replay
    short_description: replay recorded module answers (bench/bench_scale.py only)
    description:
        - The local connection, with each module run answered from a recording of a real host.
    author: Contributors to the phyllome.os collection
    extends_documentation_fragment:
        - connection_pipelining
"""

import ast
import hashlib
import json
import os
import re
import subprocess

from ansible.plugins.connection.local import Connection as LocalConnection

# the command that runs a module put in a file (not the chmod before it, nor the rm after)
_RUN_MODULE = re.compile(r'python[0-9.]* (\S*/AnsiballZ_[^/\s]+\.py)')


def module_call(payload):
    """(module, arguments) of an AnsiballZ payload, without Ansible's own arguments (`_ansible_*`: temporary
    paths, versions; `_original_basename`: the random name of copy's temporary file), so that a recording
    made on one host answers the same call on another; (None, None) when it is not a module's payload."""
    text = payload.decode('utf-8', 'replace') if isinstance(payload, bytes) else payload
    fields = {}
    for name in ('module_fqn', 'params'):
        match = re.search(r'^%s=(.*),$' % name, text, re.MULTILINE)
        if not match:
            return None, None
        fields[name] = ast.literal_eval(match.group(1))
    arguments = json.loads(fields['params']).get('ANSIBLE_MODULE_ARGS', {})
    return fields['module_fqn'], {k: v for k, v in arguments.items() if not k.startswith('_ansible_') and k != '_original_basename'}


def call_key(module, arguments):
    canonical = json.dumps([module, arguments], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def comparable(arguments):
    """The arguments as {name: JSON text}, as index.json keeps them to find the nearest recording."""
    return {k: json.dumps(v, sort_keys=True, default=str) for k, v in arguments.items()}


class Connection(LocalConnection):
    """Local, with module runs replayed (see the module's docstring)."""

    transport = 'phyllome_bench_replay'
    # like ssh: the controller puts files into a "remote" temporary directory
    _remote_is_local = False

    def exec_command(self, cmd, in_data=None, sudoable=True):
        payload = None
        if in_data and b'_ansiballz_main' in in_data:
            payload = in_data
        else:
            match = _RUN_MODULE.search(cmd if isinstance(cmd, str) else cmd.decode())
            if match and os.path.exists(match.group(1)):
                with open(match.group(1), 'rb') as f:
                    payload = f.read()
        if payload is None:
            return super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        # the controller's side of a module run: a process, and the payload through a pipe
        subprocess.run(['/bin/sh', '-c', 'cat >/dev/null'], input=payload, check=False)
        return self._replay(payload)

    def _replay(self, payload):
        directory = os.environ['PHYLLOME_BENCH_REPLAY']
        module, arguments = module_call(payload)
        path = os.path.join(directory, '%s.json' % call_key(module, arguments))
        if not os.path.exists(path):
            with open(os.path.join(directory, 'index.json')) as f:
                index = json.load(f)
            arguments = comparable(arguments or {})
            candidates = index.get(module) or []
            if not candidates:
                return 1, json.dumps({'failed': True, 'msg': 'no recording of module %s' % module}).encode(), b''
            best = max(candidates, key=lambda c: sum(1 for k, v in c['arguments'].items() if arguments.get(k) == v))
            path = os.path.join(directory, '%s.json' % best['key'])
            with open(os.path.join(directory, 'misses.log'), 'a') as log:
                log.write('%s %s\n' % (module, json.dumps(arguments, sort_keys=True)))
        with open(path) as f:
            recorded = json.load(f)
        return recorded['rc'], recorded['stdout'].encode(), b''
