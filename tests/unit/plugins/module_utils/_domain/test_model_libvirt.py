# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt accepts every golden of the model (test_model.py holds the pure golden test)."""

from __future__ import annotations

import pytest

from ansible_collections.phyllome.os.tests.unit.plugins.module_utils._domain import domain_cases

libvirt = pytest.importorskip('libvirt')


@pytest.mark.parametrize('case', sorted(domain_cases.CASES))
def test_golden_is_accepted_by_libvirt(case):
    """libvirt's test driver parses and stores each golden (its own schema checks run)."""
    conn = libvirt.open('test:///default')
    xml = domain_cases.read(domain_cases.golden_path(case))
    dom = conn.defineXML(xml)
    try:
        assert dom.name() == domain_cases.CASES[case]['name']
        stored = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        assert '<name>%s</name>' % dom.name() in stored
    finally:
        dom.undefine()
        conn.close()
