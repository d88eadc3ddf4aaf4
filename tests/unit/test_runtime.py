# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""meta/runtime.yml: the libvirt action group holds exactly the modules that take the libvirt uri option."""

from __future__ import annotations

import glob
import os

import yaml

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), '..', '..'))


def uri_modules():
    """Modules whose documentation extends the phyllome.os.libvirt fragment (the uri option)."""
    found = set()
    for path in glob.glob(os.path.join(ROOT, 'plugins', 'modules', '*.py')):
        with open(path, encoding='utf-8') as f:
            text = f.read()
        start = text.index("DOCUMENTATION = r'''") + len("DOCUMENTATION = r'''")
        doc = yaml.safe_load(text[start:text.index("'''", start)])
        if 'phyllome.os.libvirt' in (doc.get('extends_documentation_fragment') or []):
            found.add(os.path.basename(path)[:-3])
    return found


def test_the_libvirt_action_group_is_every_module_with_a_uri():
    with open(os.path.join(ROOT, 'meta', 'runtime.yml'), encoding='utf-8') as f:
        runtime = yaml.safe_load(f)
    group = runtime['action_groups']['libvirt']
    assert group == sorted(group)
    assert set(group) == uri_modules()
    assert {'domain', 'domain_info', 'cpu_baseline'} <= set(group)
