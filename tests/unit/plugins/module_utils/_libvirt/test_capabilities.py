# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt's host capabilities XML: captured from the QEMU driver here, and the test driver live."""

from __future__ import annotations

import os

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._libvirt.capabilities import parse_capabilities

FIXTURES = os.path.join(os.path.dirname(__file__), '..', 'fixtures', 'domain')


def read(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return f.read()


def test_qemu_host():
    facts = parse_capabilities(read('capabilities-qemu.xml'))
    assert facts['host_arch'] == 'x86_64' and facts['arch'] == 'x86_64'
    assert facts['domain_types'] == ['kvm', 'qemu']
    assert facts['emulator'] == '/usr/bin/qemu-system-x86_64'
    assert facts['machine'] == 'q35' and facts['machine_offered'] is True


def test_another_guest_arch_offers_nothing_of_x86_64():
    # The i686 guest block lists the same domain types; asking for an arch
    # the host does not emulate must not borrow them.
    facts = parse_capabilities(read('capabilities-qemu.xml'), arch='aarch64')
    assert facts['domain_types'] == [] and facts['emulator'] is None and facts['machine_offered'] is False


def test_machine_not_offered():
    assert parse_capabilities(read('capabilities-qemu.xml'), machine='virt')['machine_offered'] is False


def test_test_driver():
    libvirt = pytest.importorskip('libvirt')
    conn = libvirt.open('test:///default')
    try:
        caps = conn.getCapabilities()
    finally:
        conn.close()
    facts = parse_capabilities(caps)
    assert facts['arch'] == facts['host_arch']
    assert facts['domain_types'] == ['test']
