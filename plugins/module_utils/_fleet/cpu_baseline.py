# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CPU every host of a group can run, and which host holds the group back.

Each host's domain capabilities give its host-model CPU (what QEMU and KVM
offer a guest there). libvirt computes the baseline of those CPUs
(virConnectBaselineHypervisorCPU, migratable features only; the call lives in
_libvirt.domain_client); this module turns the XML into the CPU definitions
libvirt takes, checks what libvirt would refuse with a vaguer message, and
reports, per feature, the hosts that lack it. Plain XML and data in and out.
"""

from __future__ import annotations

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput
from ansible_collections.phyllome.os.plugins.module_utils._domain.model import cpu_element
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import parse, text_of, to_string

# Feature policies under which a guest gets the feature (libvirt's words).
_ENABLED = ('require', 'force')


def host_model_cpu(domcaps_xml, host):
    """The host-model CPU of `virsh domcapabilities` XML, as data.

    Returns model, vendor, features (a list of {name, policy} in libvirt's
    order), arch, machine and domain_type. `host` names the host in messages.
    """
    caps = parse(domcaps_xml, 'the domain capabilities of %s' % host)
    if caps.tag != 'domainCapabilities':
        raise InvalidInput('the domain capabilities of %s must have <domainCapabilities> as their root, not <%s>'
                           % (host, caps.tag))
    mode = caps.find("cpu/mode[@name='host-model']")
    if mode is None or mode.get('supported') != 'yes' or not text_of(mode, 'model'):
        raise InvalidInput('%s offers no host-model CPU in its domain capabilities (domain type %s): libvirt has '
                           'no CPU model to compare there' % (host, text_of(caps, 'domain')))
    return {
        'model': text_of(mode, 'model'),
        'vendor': text_of(mode, 'vendor'),
        'features': [{'name': f.get('name'), 'policy': f.get('policy', 'require')} for f in mode.findall('feature')],
        'arch': text_of(caps, 'arch'),
        'machine': text_of(caps, 'machine'),
        'domain_type': text_of(caps, 'domain'),
    }


def cpu_xml(cpu):
    """A custom CPU definition from data: `<cpu mode='custom' match='exact'>`, as a domain takes it."""
    return to_string(cpu_element(dict(cpu, mode='custom')))


def parse_cpu(xml_text):
    """A `<cpu>` definition (what libvirt's baseline returns) as data: mode, match, model, fallback, vendor, features."""
    elem = parse(xml_text, 'the CPU definition')
    if elem.tag != 'cpu':
        raise InvalidInput('a CPU definition must have <cpu> as its root, not <%s>' % elem.tag)
    model = elem.find('model')
    return {
        'mode': elem.get('mode', 'custom'),
        'match': elem.get('match', 'exact'),
        'model': text_of(elem, 'model'),
        'fallback': model.get('fallback') if model is not None else None,
        'vendor': text_of(elem, 'vendor'),
        'features': [{'name': f.get('name'), 'policy': f.get('policy', 'require')} for f in elem.findall('feature')],
    }


def enabled_features(cpu):
    """The names of the features a guest of this CPU gets (policy require or force)."""
    return {f['name'] for f in cpu['features'] if f['policy'] in _ENABLED}


def check_group(hosts):
    """Refuse a group whose CPUs libvirt cannot baseline: one vendor and one architecture.

    `hosts` is a list of {name, cpu} with cpu as host_model_cpu() returns it.
    libvirt says only "CPU vendors do not match"; this names the hosts.
    """
    if not hosts:
        raise InvalidInput('hosts is empty: give the domain capabilities of at least one host')
    names = [h['name'] for h in hosts]
    twice = sorted(set(n for n in names if names.count(n) > 1))
    if twice:
        raise InvalidInput('hosts must have distinct names; given twice: %s' % ', '.join(twice))
    for key, what, advice in (('arch', 'architectures', 'a guest runs on one architecture'),
                              ('vendor', 'CPU vendors', 'no CPU model runs on both, so guests cannot move '
                                                        'between them; compute a baseline for each vendor\'s hosts')):
        groups = {}
        for host in hosts:
            groups.setdefault(host['cpu'][key] or 'unknown', []).append(host['name'])
        if len(groups) > 1:
            listing = '; '.join('%s: %s' % (value, ', '.join(sorted(members))) for value, members in sorted(groups.items()))
            raise InvalidInput('the hosts have different %s (%s): %s' % (what, listing, advice))


def limits(baseline_features, host_features):
    """Which host holds back which feature.

    `baseline_features` is the set of features of the expanded baseline,
    `host_features` maps each host to the expanded features of its own CPU
    (both as the same hypervisor provides them). Returns:
      - by_feature: every feature some host offers and the baseline lacks,
        with the hosts that lack it;
      - by_host: per host, the features it lacks that another host offers
        (the host that limits them);
      - not_provided: features every host offers that the baseline still
        lacks: the hypervisor that computed it cannot provide them.
    """
    offered = set().union(*host_features.values()) if host_features else set()
    by_feature = {}
    not_provided = []
    for feature in sorted(offered - set(baseline_features)):
        lacking = sorted(h for h, features in host_features.items() if feature not in features)
        if lacking:
            by_feature[feature] = lacking
        else:
            not_provided.append(feature)
    by_host = {h: sorted(f for f, lacking in by_feature.items() if h in lacking) for h in host_features}
    return {'by_feature': by_feature, 'by_host': by_host, 'not_provided': not_provided}


def fleet_group(hosts):
    """The hosts ({name, domain_capabilities}) as {name, cpu}, checked by check_group()."""
    group = [{'name': h['name'], 'cpu': host_model_cpu(h['domain_capabilities'], h['name'])} for h in hosts]
    check_group(group)
    return group


def fleet_baseline(group, baseline):
    """The baseline of a fleet_group() and what limits it.

    `baseline(cpu_xmls, expand)` is libvirt's virConnectBaselineHypervisorCPU
    on one connection (DomainClient.baseline_hypervisor_cpu); each host's CPU
    is expanded through it too, so the baseline and the hosts are compared in
    the same hypervisor's terms.
    """
    cpus = [cpu_xml(h['cpu']) for h in group]
    result = parse_cpu(baseline(cpus, False))
    expanded = enabled_features(parse_cpu(baseline(cpus, True)))
    per_host = {h['name']: enabled_features(parse_cpu(baseline([cpu], True))) for h, cpu in zip(group, cpus)}
    found = limits(expanded, per_host)
    return {
        'cpu': result,
        'cpu_xml': cpu_xml(result),
        'features': sorted(expanded),
        'hosts': [{'name': h['name'], 'model': h['cpu']['model'], 'vendor': h['cpu']['vendor'],
                   'machine': h['cpu']['machine'], 'limits': found['by_host'][h['name']]} for h in group],
        'limited_features': found['by_feature'],
        'not_provided': found['not_provided'],
    }
