# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where phyllome.os.domain's own cost per task goes (not a benchmark with a target: a profile).

A loop of phyllome.os.domain starts one Python per item: the interpreter,
Ansible's module_utils (the ping floor pays those too), then ours, libvirt
and lxml, a connection, the host's capabilities, the domain's XML. This
script measures each part on the private libvirtd of tests/lab/libvirtd.sh
(never the machine's qemu:///system), for domains that already exist (the
no-op re-run of bench_domains.py's list: partial XML and model items):

1. import times, each in a fresh interpreter (`python -X importtime`);
2. per item, in this process, as a loop task would: open a connection, run
   run_domain() in a fresh DomainClient, close; split by phase with cProfile
   (the top functions by cumulative time are printed).

Run it under the shared lock: flock /tmp/phyllome-shared.lock .venv/bin/python bench/profile_domain.py
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import re
import shutil
import subprocess
import sys
import time

from common import COLLECTIONS, lab_libvirtd, test_uri, undefine_prefixed, work_with_image

HERE = os.path.dirname(os.path.abspath(__file__))
ITEMS = 20
URI = test_uri()
PREFIX = 'phyllome-profile'

# Phases: (label, function names whose cumulative time is the phase's).
PHASES = (
    ('connect (virConnectOpen)', ('open_connection',)),
    ('host capabilities (RPC + parse)', ('resolve_host',)),
    ('read the stored definition (lookup + XMLDesc)', ('lookup', 'inactive_xml')),
    ('build the model XML', ('build_domain', 'resolve_model')),
    ('compare (merge)', ('merge',)),
    ('result XML (unified_xml)', ('unified_xml',)),
)


def import_ms(statement):
    """Milliseconds `python -X importtime -c statement` reports for its imports (cumulative, top level)."""
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    proc = subprocess.run([sys.executable, '-X', 'importtime', '-c', statement], env=env, capture_output=True,
                          text=True, check=True)
    total = 0
    for line in proc.stderr.splitlines():
        match = re.match(r'import time:\s+\d+ \|\s+(\d+) \| (\S.*)$', line)
        if match and not match.group(2).startswith(' '):
            total += int(match.group(1))
    return total / 1000.0


def best_import_ms(statement, rounds=5):
    return min(import_ms(statement) for dummy in range(rounds))


def main():
    lab_libvirtd('up')
    sys.path.insert(0, COLLECTIONS)
    sys.path.insert(0, HERE)
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    from ansible_collections.phyllome.os.plugins.module_utils._domain import domain_set
    from ansible_collections.phyllome.os.plugins.module_utils._domain.manager import run_domain
    from ansible_collections.phyllome.os.plugins.module_utils._common.actions import ActionRecorder
    from ansible_collections.phyllome.os.plugins.module_utils._libvirt.domain_client import DomainClient
    from bench_domains import defaults, items

    work, image = work_with_image('phyllome-profile-')
    half = ITEMS // 2
    listed = items(PREFIX, image)
    listed = listed[:half] + listed[len(listed) // 2:len(listed) // 2 + half]
    params = ArgumentSpecValidator(domain_set.argument_spec({'uri': {'type': 'str'}})).validate(
        {'uri': URI, 'domains': listed, 'defaults': defaults(image)}).validated_parameters
    try:
        with DomainClient.connect(URI) as client:
            domain_set.run_domains(params, client, domain_set.RecorderSet())
        per_item = [item for _index, _label, _name, item in domain_set.validate(params)]

        print('\n== imports, each in a fresh interpreter (best of 5, ms) ==')
        basic = best_import_ms('import ansible.module_utils.basic')
        module = best_import_ms('import ansible_collections.phyllome.os.plugins.modules.domain')
        libvirt = best_import_ms('import libvirt')
        lxml = best_import_ms('import lxml.etree')
        print('  ansible.module_utils.basic (the ping floor pays it too)  %6.1f' % basic)
        print('  phyllome.os.domain module, with basic                    %6.1f  (%.1f above basic)'
              % (module, module - basic))
        print('  libvirt (imported at the first call)                      %6.1f' % libvirt)
        print('  lxml.etree (imported at the first XML)                    %6.1f' % lxml)

        profile = cProfile.Profile()
        start = time.monotonic()
        for item in per_item:
            profile.enable()
            with DomainClient.connect(URI) as client:
                recorder = ActionRecorder(check_mode=False)
                run_domain(item, client, recorder)
            profile.disable()
            assert not recorder.changed, recorder.actions
        elapsed = (time.monotonic() - start) / len(per_item) * 1000
        stats = pstats.Stats(profile)
        cumulative = {}
        for (_file, _line, function), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():
            cumulative[function] = cumulative.get(function, 0.0) + ct
        print('\n== one phyllome.os.domain task\'s work after the imports, per item (%d items: %d XML, %d model;'
              ' a connection each; ms) ==' % (len(per_item), half, len(per_item) - half))
        print('  total                                              %6.1f' % elapsed)
        for label, functions in PHASES:
            print('  %-50s %6.1f' % (label, sum(cumulative.get(f, 0.0) for f in functions) / len(per_item) * 1000))
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats('cumulative').print_stats(18)
        print('\n== cProfile, cumulative, all items ==')
        print('\n'.join(line for line in out.getvalue().splitlines() if line.strip())[:6000])
    finally:
        undefine_prefixed(URI, PREFIX)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
