# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stands in for get-pip.py in ansible-test's cache.

ansible-test bootstraps pip into its sanity virtualenvs with a get-pip.py
that it downloads from a CI file server, which this project's CI cannot
reach (only package registries are). This does the same job with the
interpreter's own ensurepip, then installs the requested pip version from
the package index. ansible-test runs it with get-pip.py's arguments.
"""

import subprocess
import sys


def main():
    # get-pip.py's own flags; pip install does not know them.
    args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
    subprocess.check_call([sys.executable, '-m', 'ensurepip', '--default-pip'])
    subprocess.check_call([sys.executable, '-m', 'pip', 'install'] + args)


if __name__ == '__main__':
    main()
