# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lazy imports of the optional libraries modules need on the managed host.

Modules import libvirt and lxml only when a task needs them, so that a host
without them gets a clear message naming the distribution package instead of
an ImportError at load time.
"""

from __future__ import annotations

import importlib
import traceback

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import MissingLibrary

# library import name -> (PyPI name, distribution package on Fedora and Debian)
_LIBRARIES = {
    'libvirt': ('libvirt-python', 'python3-libvirt'),
    'lxml.etree': ('lxml', 'python3-lxml'),
    'jmespath': ('jmespath', 'python3-jmespath'),
}


def require(name, reason=None):
    """Import and return module `name`, or raise MissingLibrary."""
    try:
        return importlib.import_module(name)
    except ImportError:
        pypi, package = _LIBRARIES.get(name, (name, name))
        raise MissingLibrary(pypi, package, reason=reason, exception=traceback.format_exc())


def available(name):
    """True when `name` can be imported (for checks that degrade gracefully)."""
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True
