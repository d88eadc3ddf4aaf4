# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A second run reports no change for domain XML libvirt accepted (issue 14).

tests/fixtures/domain_corpus/ holds 712 domain XMLs (libvirt 9.0.0's own
qemuxml2argv test inputs, plus a few written from formatdomain) and, for
each, what libvirt stored for it: recorded from libvirt 9.0 / QEMU 7.2 on
this machine by `run_corpus.py run --capture` (a private session libvirtd,
`virDomainDefineXML`, then the inactive XML with secrets, as the module reads
it). These tests replay the module's second run offline: no libvirtd needed.
The live check (`run_corpus.py run --drift`, `make corpus-live`) runs these
and domain XMLs made at test time by virt-install through the module's flow
against a real daemon, and also changes definitions outside the module.
"""

from __future__ import annotations

import copy
import os

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._domain.compare import compare, merge
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import element_quantity, parse_domain, to_string

CORPUS = os.path.normpath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'fixtures', 'domain_corpus'))
STEMS = sorted(name[:-4] for name in os.listdir(os.path.join(CORPUS, 'stored')) if name.endswith('.xml'))

# What the comparison alone still reports on a second run, and why it cannot
# hide it. The module does not report these as changes: at the define, it
# records what libvirt did not keep (intent.py), warns once, and later runs
# of the same request change nothing (test_intent.py replays these cases;
# run_corpus.py shows it on a real libvirtd).
REMAINING = {
    # libvirt's negative tests ("-fail", "-incorrect": QEMU refuses them at
    # start): they ask an interface type for what it does not have, and
    # libvirt drops it silently at define. Ignoring it in the comparison
    # would hide a real request; the module warns once instead.
    'net-hostdev-fail': ['devices/interface[00:11:22:33:44:55]/filterref added',
                         'devices/interface[00:11:22:33:44:55]/driver added'],
    'net-vhostuser-fail': ['devices/interface[52:54:00:ee:96:6b]/filterref added'],
    'tap-vhost-incorrect': [
        'devices/interface[52:54:00:e5:48:58]/driver[vhost] added',
        "devices/interface[52:54:00:e5:48:58]/backend: vhost changed from unset to '/dev/zero'",
        "devices/interface[52:54:00:e5:48:59]/driver[vhost]: queues changed from unset to '1'"],
    # libvirt 9.0 ignores the bus of a virtio-serial address without a port
    # at the first define and keeps it at the second: one change, then none.
    'channel-virtio-autoassign': ["devices/channel[org.linux-kvm.port.foo]/address: bus changed from '0' to '2'"],
}


def _read(kind, stem):
    with open(os.path.join(CORPUS, kind, stem + '.xml')) as handle:
        return parse_domain(handle.read())


def test_the_corpus_is_there():
    assert len(STEMS) >= 700
    assert len(REMAINING) <= len(STEMS) // 100


def _second_run(stem):
    """What is wrong with the module's second run on one corpus case, in words (empty: nothing)."""
    desired, stored = _read('input', stem), _read('stored', stem)
    expected = REMAINING.get(stem, [])
    found = [str(d) for d in compare(desired, stored)]
    if found != expected:
        return 'the second run reports %s' % found
    merged, differences = merge(desired, stored)
    if [str(d) for d in differences] != expected:
        return 'the merge reports %s' % [str(d) for d in differences]
    if not differences and to_string(merged) != to_string(stored):
        return 'a merge without differences changed the XML'
    # A merge satisfies the desired XML, and merging again changes nothing.
    if compare(desired, merged):
        return 'the merged XML still differs: %s' % [str(d) for d in compare(desired, merged)]
    again, more = merge(desired, merged)
    if more or to_string(again) != to_string(merged):
        return 'a second merge changes the merged XML'
    return None


def test_second_run_reports_no_change():
    """One test over all cases: parametrised, ansible-test's per-test cost made it a minute."""
    failures = dict((stem, _second_run(stem)) for stem in STEMS)
    assert dict((stem, why) for stem, why in failures.items() if why) == {}


def _double_memory(stored):
    if stored.find('cpu/numa/cell') is not None or stored.find('devices/memory') is not None:
        return False
    for tag in ('memory', 'currentMemory'):
        elem = stored.find(tag)
        if elem is not None:
            elem.text = str(int(elem.text) * 2)
    return True


def _drift(stem):
    desired, stored = _read('input', stem), _read('stored', stem)
    edited = copy.deepcopy(stored)
    if not _double_memory(edited):
        return None  # libvirt computes <memory> from NUMA cells or memory devices here
    differences = [str(d) for d in compare(desired, edited)]
    if not any(d.startswith(('memory changed', 'currentMemory changed')) for d in differences):
        return 'the change is not seen: %s' % differences
    merged, _differences = merge(desired, edited)
    if element_quantity(merged.find('memory')) != element_quantity(stored.find('memory')):
        return 'the merge does not undo it'
    if [d.tag for d in merged.find('devices')] != [d.tag for d in stored.find('devices')]:
        return 'the merge changed the devices'
    if len(merged.findall("devices/video/model[@primary='yes']")) > 1:
        return 'the merge made two primary videos'
    return None


def test_a_change_outside_the_module_is_seen_and_its_merge_keeps_what_libvirt_added():
    """`virsh edit` doubled the memory: the module sees it, and the merge that undoes it
    changes nothing else: it keeps every device libvirt added (USB hubs, controllers)
    and never makes two primary videos."""
    failures = dict((stem, _drift(stem)) for stem in STEMS)
    assert dict((stem, why) for stem, why in failures.items() if why) == {}


def _channel(domain, name):
    return next(c for c in domain.findall('devices/channel') if c.find('target').get('name') == name)


# Each class of false change issue 14 lists, with a corpus case that showed
# it before the fix (what the old comparison reported), and a check that the
# stored XML really has libvirt's rewrite.
CLASSES = [
    ('cpu without a model: mode custom and a default model', 'cpu-empty', 'cpu/model removed',
     lambda d, s: d.find('cpu/model') is None and s.find('cpu/model').text == 'qemu64'),
    ('host-model drops <model fallback>', 'cpu-host-model', 'cpu/model added',
     lambda d, s: d.find('cpu/model') is not None and s.find('cpu/model') is None),
    ('firmware auto-selection lists secure-boot beside enrolled-keys', 'firmware-auto-efi-enrolled-keys',
     'os/firmware/feature[secure-boot] removed',
     lambda d, s: len(s.findall('os/firmware/feature')) > len(d.findall('os/firmware/feature'))),
    ('a CD-ROM gets <readonly/>', 'boot-complex', 'devices/disk[hdc]/readonly removed',
     lambda d, s: s.find("devices/disk[@device='cdrom']/readonly") is not None),
    ('USB companion controllers get <master>', 'autoindex', 'devices/controller[usb ]/master removed',
     lambda d, s: s.find('devices/controller/master') is not None and d.find('devices/controller/master') is None),
    ('USB companions share an index: paired by model', 'controller-usb-order',
     "devices/controller[usb 0]: model changed from 'ich9-ehci1' to 'ich9-uhci1'",
     lambda d, s: len(s.findall("devices/controller[@type='usb'][@index='0']")) > 1),
    ("model='auto' controllers are resolved", 'phyllome-cpu-host-model-numa',
     "devices/controller[scsi ]: model changed from 'lsilogic' to 'auto'",
     lambda d, s: s.find("devices/controller[@type='scsi']").get('model') == 'lsilogic'),
    ("a guest agent's generated socket path is dropped", 'channel-unix-source-path',
     'devices/channel[org.qemu.guest_agent.1]/source added',
     lambda d, s: (_channel(d, 'org.qemu.guest_agent.1').find('source') is not None
                   and _channel(s, 'org.qemu.guest_agent.1').find('source') is None)),
    ('several videos: libvirt moves the primary first', 'video-qxl-heads',
     "devices/video/model: heads changed from '1' to '3'",
     lambda d, s: s.find('devices/video/model').get('primary') == 'yes'),
    ('NUMA cells sorted by id and <memory> reset to their sum', 'numatune-distances',
     'memory changed from 12 GiB to 8 GiB',
     lambda d, s: element_quantity(s.find('memory')) != element_quantity(d.find('memory'))),
    ('NUMA cell memory in another unit', 'phyllome-cpu-host-model-numa',
     "cpu/numa/cell: memory changed from '1048576' to '1'",
     lambda d, s: d.find('cpu/numa/cell').get('unit') == 'GiB' and s.find('cpu/numa/cell').get('unit') == 'KiB'),
    ('SCSI hostdevs pair by adapter and address', 'hostdev-scsi-autogen-address', 'devices/hostdev[scsi] added',
     lambda d, s: s.find("devices/hostdev[@type='scsi']/source/adapter") is not None),
    ("a disk <driver> without name= pairs with libvirt's <driver name='qemu'>", 'disk-discard',
     'devices/disk[hdc]/driver added',
     lambda d, s: any(drv.get('name') is None for drv in d.findall('devices/disk/driver'))),
    ('runtime-only <domain id=...>', 'channel-virtio-state', "domain: id changed from unset to '2'",
     lambda d, s: d.get('id') is not None and s.get('id') is None),
    ('USB hubs libvirt adds are kept', 'usb-hub-autoadd', 'devices/hub removed',
     lambda d, s: d.find('devices/hub') is None and s.find('devices/hub') is not None),
    ('sets written differently (1-2,5,7 is 1-2,5-7,^6)', 'numatune-memnode',
     "numatune/memnode: nodeset changed from '1-2,5,7' to '1-2,5-7,^6'",
     lambda d, s: True),
    ('vCPU schedulers split per vCPU', 'cputune-iothreadsched', "cputune/vcpusched: vcpus changed from '0' to '0-1'",
     lambda d, s: len(s.findall('cputune/vcpusched')) > len(d.findall('cputune/vcpusched'))),
    ('sizes in other units (memtune, pcihole64)', 'pcihole64-gib',
     "devices/controller[pci 0]/pcihole64: unit changed from 'KiB' to 'GiB'", lambda d, s: True),
    ('a serial console twin shares the log', 'serial-file-log', 'devices/console[serial]/log removed',
     lambda d, s: s.find('devices/console/log') is not None),
    ('defaults libvirt leaves out (tray closed, primary no, autoport no)', 'disk-cdrom-tray',
     "devices/disk[hdc]/target: tray changed from unset to 'closed'", lambda d, s: True),
    ('an empty CD-ROM is stored as type file', 'disk-cdrom-empty-network-invalid',
     "devices/disk[hdd]: type changed from 'file' to 'network'", lambda d, s: True),
    ('one metadata element per namespace', 'metadata-duplicate', 'metadata/foo added', lambda d, s: True),
    ('imagelabel is a running domain\'s', 'seclabel-static-relabel', 'seclabel/imagelabel added', lambda d, s: True),
    ('a host without a security driver stores seclabel none', 'seclabel-dynamic-relabel',
     "seclabel: type changed from 'none' to 'dynamic'",
     lambda d, s: s.find('seclabel').get('model') == 'none'),
    ('vCPUs no cell names go to the first cell', 'numavcpus-topology-mismatch',
     "cpu/numa/cell: cpus changed from '0-1,5,7-11' to '0'", lambda d, s: True),
]


@pytest.mark.parametrize('name, stem, before, libvirt_did', CLASSES, ids=[c[0] for c in CLASSES])
def test_each_class_of_false_change(name, stem, before, libvirt_did):
    desired, stored = _read('input', stem), _read('stored', stem)
    assert libvirt_did(desired, stored), name
    assert compare(desired, stored) == [], '%s (reported before issue 14: %s)' % (name, before)


def _generated():
    import importlib.util  # pylint: disable=import-outside-toplevel
    spec = importlib.util.spec_from_file_location('corpus_generated', os.path.join(CORPUS, 'generated.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generated_set_crosses_every_option_set_with_many_os_variants():
    # What make corpus-live hands to virt-install (the XML itself is made there, at test time).
    generated = _generated()
    cases = generated.command_lines(lambda i, n, kind='img': '/images/%d-%d.%s' % (i, n, kind), ['0000:00:01.0'])
    assert len(cases) >= 200 and len(set(stem for stem, _argv in cases)) == len(cases)
    names = set(generated._profiles(lambda *a: '', ['x']))  # pylint: disable=protected-access
    # 'vi-NNN-<option set>-<os>': the longest option set name that the stem carries.
    used = set(max((n for n in names if stem[7:].startswith(n + '-')), key=len) for stem, _argv in cases)
    assert used == names
    assert set(arg for _stem, argv in cases for arg in argv if arg.startswith('--osinfo=')) == \
        set('--osinfo=' + os_name for os_name in generated.OS_VARIANTS)
    assert len(generated.FORMATDOMAIN) >= 10
