# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt's host capabilities XML (`virsh capabilities`), read once for every module.

host_info reports what it offers; the domain module picks a domain type from
it on drivers without domain capabilities. Standard-library XML: host_info
needs no lxml.
"""

from __future__ import annotations

# The guests Phyllome OS defines.
GUEST_ARCH = 'x86_64'
GUEST_MACHINE = 'q35'


def parse_capabilities(xml_text, arch=None, machine=GUEST_MACHINE):
    """Domain types, emulator and machine support for hvm guests of `arch` (default: the host's own arch).

    Returns host_arch, arch, domain_types (sorted), emulator, machine and
    machine_offered (whether `machine` is listed for that arch).
    """
    # Imported here: a domain task that needs no capabilities (an existing
    # domain from XML) does not pay for the import (a few ms in every task).
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml_text)
    host_arch = root.findtext('host/cpu/arch')
    arch = arch or host_arch or GUEST_ARCH
    facts = {'host_arch': host_arch, 'arch': arch, 'domain_types': [],
             'emulator': None, 'machine': machine, 'machine_offered': False}
    for guest in root.findall('guest'):
        arch_el = guest.find('arch')
        if guest.findtext('os_type') != 'hvm' or arch_el is None or arch_el.get('name') != arch:
            continue
        facts['emulator'] = arch_el.findtext('emulator')
        machines = {m.text for m in arch_el.findall('machine')} | {m.text for m in guest.findall('arch/domain/machine')}
        facts['machine_offered'] = facts['machine_offered'] or machine in machines
        for domain in arch_el.findall('domain'):
            if domain.get('type') not in facts['domain_types']:
                facts['domain_types'].append(domain.get('type'))
    facts['domain_types'].sort()
    return facts


def machine_types(xml_text, arch=GUEST_ARCH):
    """Every machine type (versioned names and aliases, sorted) the capabilities offer hvm guests of `arch`."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml_text)
    machines = set()
    for guest in root.findall('guest'):
        arch_el = guest.find('arch')
        if guest.findtext('os_type') != 'hvm' or arch_el is None or arch_el.get('name') != arch:
            continue
        for machine in arch_el.findall('machine') + arch_el.findall('domain/machine'):
            if machine.text:
                machines.add(machine.text)
            if machine.get('canonical'):
                machines.add(machine.get('canonical'))
    return sorted(machines)
