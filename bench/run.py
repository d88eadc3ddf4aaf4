# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs every benchmark under bench/ (files named bench_*.py), one after the other.

The long ones (LONG) run only when named: `make bench BENCH=scale`.
"""

from __future__ import annotations

import glob
import os
import runpy
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# about an hour on two shared cores (a lab of four hosts, a dozen runs, a simulation of 50 hosts)
LONG = ('bench_scale.py',)


def main(names):
    sys.path.insert(0, HERE)
    scripts = sorted(glob.glob(os.path.join(HERE, 'bench_*.py')))
    if names:
        scripts = [s for s in scripts if any(n in os.path.basename(s) for n in names)]
    else:
        scripts = [s for s in scripts if os.path.basename(s) not in LONG]
    if not scripts:
        print('no benchmark matched')
        return 1
    missed = []
    for script in scripts:
        print('\n#### %s' % os.path.basename(script))
        try:
            runpy.run_path(script, run_name='__main__')
        except SystemExit as exc:
            # A benchmark exits non-zero when its target is not met; run the rest.
            if exc.code not in (None, 0):
                missed.append(os.path.basename(script))
    if missed:
        print('\ntargets not met: %s' % ', '.join(missed))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
