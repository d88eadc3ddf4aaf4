# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared pytest fixtures: recorded host trees (tests/fixtures/hosts/*.yml) built on disk."""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest


def _install_collection_loader():
    """Ansible finds plugins by FQCN (phyllome.os.guests) through its collection loader.

    ansible-test units installs it (and hides controller code from module
    tests); a plain pytest run (PYTHONPATH=.build/collections, see
    docs/developing.md) installs it here, before any test imports the collection.
    """
    try:
        from ansible.plugins.loader import init_plugin_loader
        from ansible.utils.collection_loader import AnsibleCollectionConfig
    except ImportError:
        return
    if AnsibleCollectionConfig.collection_finder is None:
        init_plugin_loader([p for p in sys.path if os.path.isdir(os.path.join(p, 'ansible_collections', 'phyllome', 'os'))])


_install_collection_loader()

FIXTURES = os.path.normpath(os.path.join(os.path.dirname(__file__), '..', 'fixtures'))


def load_fixture_module(name):
    """Import tests/fixtures/<name>.py (the fixtures directory is not a package)."""
    spec = importlib.util.spec_from_file_location('phyllome_fixtures_' + name, os.path.join(FIXTURES, name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def host_spec_path(name):
    return os.path.join(FIXTURES, 'hosts', name + '.yml')


@pytest.fixture(scope='session')
def fixture_module():
    """fixture_module('sysfs_tree') imports tests/fixtures/sysfs_tree.py."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = load_fixture_module(name)
        return cache[name]
    return get


@pytest.fixture(scope='session')
def host_spec(fixture_module):
    """host_spec('server-clean-groups') loads that recorded tree's YAML (a fresh dict each call)."""
    return lambda name: fixture_module('hosttree').load(host_spec_path(name))


@pytest.fixture(scope='session')
def host_tree(tmp_path_factory, fixture_module):
    """host_tree('intel-laptop-iommu-on') builds that recorded tree once per session; returns its root.

    The tree is shared between tests: treat it as read-only (use host_tree_copy to change files).
    """
    built = {}

    def get(name):
        if name not in built:
            dest = str(tmp_path_factory.mktemp(name))
            fixture_module('hosttree').materialize(host_spec_path(name), dest)
            built[name] = dest
        return built[name]
    return get


@pytest.fixture
def host_tree_copy(tmp_path, fixture_module):
    """host_tree_copy(name_or_spec) builds a private tree (a recorded name, or a hosttree spec dict)."""
    count = [0]

    def get(spec):
        count[0] += 1
        dest = str(tmp_path / ('tree%d' % count[0]))
        fixture_module('hosttree').materialize(host_spec_path(spec) if isinstance(spec, str) else spec, dest)
        return dest
    return get


@pytest.fixture
def test_driver_prefix():
    """A unique name prefix on libvirt's test:///default; the domains named with it are removed at the end.

    The test driver keeps its state only while a connection is open: one is held for the whole test.
    """
    libvirt = pytest.importorskip('libvirt')
    import uuid

    conn = libvirt.open('test:///default')
    prefix = 'unit-%s' % uuid.uuid4().hex[:6]
    yield prefix
    for dom in conn.listAllDomains(0):
        if dom.name().startswith(prefix):
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    conn.close()
