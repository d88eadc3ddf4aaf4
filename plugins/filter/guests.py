# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the phyllome.os.guests role: the defaults it passes under every guest, what a host's guest list
asks of the host before it is converged, and the CPU its guests get (phyllome_guests_cpu)."""

from __future__ import annotations

# The controller may lack lxml: the items' XML is read with the standard
# library; the hostdev reader only needs find() and get(), which both offer.
from xml.etree import ElementTree

from ansible.errors import AnsibleFilterError

from ansible_collections.phyllome.os.plugins.module_utils._common.device_ids import normalize_pci_address
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput
from ansible_collections.phyllome.os.plugins.module_utils._domain.devices import hostdev_source


def _label(index, item):
    name = item.get('name') if isinstance(item, dict) else None
    return 'phyllome_guests[%d]%s' % (index, ' (%s)' % name if name else '')


def _model_addresses(hostdevs, label):
    for dev in hostdevs or []:
        if not isinstance(dev, dict):
            raise AnsibleFilterError('%s: model.hostdevs items are dicts, got %r' % (label, dev))
        if (dev.get('type') or 'pci') == 'pci' and dev.get('address'):
            yield dev['address']


def _xml_addresses(text, label):
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise AnsibleFilterError('%s: its xml is not well-formed: %s' % (label, exc))
    for dev in root.findall('devices/hostdev'):
        if dev.get('type') == 'pci':
            address = hostdev_source(dev)['address']
            if address:
                yield address


# What the guests role (and playbooks/drift.yml, which compares with it) gives a guest that says nothing.
_GUESTS_DEFAULTS = {'state': 'running'}


def guests_defaults(defaults=None):
    """The options passed under every guest: phyllome_guests_defaults over the role's own (state running)."""
    if defaults is None:
        defaults = {}
    if not isinstance(defaults, dict):
        raise AnsibleFilterError('guests_defaults expects a dict (phyllome_guests_defaults), got %s' % type(defaults).__name__)
    result = dict(_GUESTS_DEFAULTS)
    result.update(defaults)
    return result


def guests_pci_devices(guests, defaults=None):
    """The PCI addresses (0000:01:00.0, sorted, once each) of the host devices the guests that stay name.

    An item's hostdevs are its model's (else the defaults' model's, as the
    domains module merges them) or those of its xml; a guest whose state
    (its own, else the defaults') is absent names none.
    """
    if not isinstance(guests, (list, tuple)):
        raise AnsibleFilterError('guests_pci_devices expects a list of guests, got %s' % type(guests).__name__)
    defaults = defaults or {}
    default_model = defaults.get('model') or {}
    found = set()
    for index, item in enumerate(guests):
        label = _label(index, item)
        if not isinstance(item, dict):
            raise AnsibleFilterError('%s: a guest is a dict, got %r' % (label, item))
        if item.get('state', defaults.get('state')) == 'absent':
            continue
        if item.get('model') is not None:
            model = item['model']
            hostdevs = model['hostdevs'] if 'hostdevs' in model else default_model.get('hostdevs')
            addresses = _model_addresses(hostdevs, label)
        elif item.get('xml'):
            addresses = _xml_addresses(item['xml'], label)
        else:
            continue
        for address in addresses:
            try:
                found.add(normalize_pci_address(address))
            except InvalidInput as exc:
                raise AnsibleFilterError('%s: hostdev %s' % (label, exc))
    return sorted(found)


# model.cpu keys that define the CPU itself (the others, sockets, cores, threads, are its topology).
_CPU_DEFINITION = ('mode', 'model', 'match', 'fallback', 'vendor', 'features')
# What phyllome_guests_cpu may name (besides fleet, which the role turns into its baseline first).
_CPU_MODES = ('host-model', 'host-passthrough', 'maximum')


def guests_cpu(guests, defaults=None, cpu='host-model'):
    """The guests, each with `cpu` as its model.cpu, unless it (or the defaults' model) defines a CPU of its own.

    `cpu` is a CPU mode (host-model, host-passthrough, maximum) or a CPU as
    model.cpu takes it (phyllome.os.cpu_baseline's `cpu`). An item's own
    topology (sockets, cores, threads) stays beside it; an item without a
    model (an xml, or only a name) is left as it is.
    """
    if not isinstance(guests, (list, tuple)):
        raise AnsibleFilterError('guests_cpu expects a list of guests, got %s' % type(guests).__name__)
    if isinstance(cpu, str):
        if cpu not in _CPU_MODES:
            raise AnsibleFilterError('guests_cpu: the CPU is one of %s or a dict (model.cpu), not %r%s' % (
                ', '.join(_CPU_MODES), cpu, ': fleet is the baseline phyllome.os.cpu_baseline computes' if cpu == 'fleet' else ''))
        cpu = {'mode': cpu}
    if not isinstance(cpu, dict) or not any(cpu.get(key) for key in _CPU_DEFINITION):
        raise AnsibleFilterError('guests_cpu: the CPU must be a mode or a dict with a mode or a model, got %r' % (cpu,))
    default_cpu = ((defaults or {}).get('model') or {}).get('cpu') or {}
    result = []
    for index, item in enumerate(guests):
        if not isinstance(item, dict):
            raise AnsibleFilterError('%s: a guest is a dict, got %r' % (_label(index, item), item))
        model = item.get('model')
        if not isinstance(model, dict):
            result.append(item)
            continue
        own = model.get('cpu') or {}
        if any(own.get(key) or default_cpu.get(key) for key in _CPU_DEFINITION):
            result.append(item)
            continue
        given = dict(cpu)
        given.update(own)
        result.append(dict(item, model=dict(model, cpu=given)))
    return result


class FilterModule:
    def filters(self):
        return {'guests_defaults': guests_defaults, 'guests_pci_devices': guests_pci_devices, 'guests_cpu': guests_cpu}
