# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""live.classify(): which differences a running domain takes at once (pure data in, data out)."""

from __future__ import annotations

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._domain import live
from ansible_collections.phyllome.os.plugins.module_utils._domain.compare import merge
from ansible_collections.phyllome.os.plugins.module_utils._domain.options import MODEL_OWNED_TAGS
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import parse_domain
from ansible_collections.phyllome.os.tests.unit.plugins.module_utils._domain import domain_cases

STORED = '''<domain type='qemu'>
  <name>web</name>
  <uuid>9bbff2c8-8f80-4964-aa03-f7dc602013e4</uuid>
  <memory unit='KiB'>262144</memory>
  <currentMemory unit='KiB'>196608</currentMemory>
  <vcpu placement='static' current='1'>2</vcpu>
  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/web.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x03' slot='0x00' function='0x0'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/srv/iso/one.iso'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
      <address type='drive' controller='0' bus='0' target='0' unit='0'/>
    </disk>
    <controller type='pci' index='0' model='pcie-root'/>
    <interface type='network'>
      <mac address='52:54:00:aa:bb:01'/>
      <source network='default'/>
      <model type='virtio'/>
      <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
    </interface>
    <memballoon model='virtio'>
      <address type='pci' domain='0x0000' bus='0x05' slot='0x00' function='0x0'/>
    </memballoon>
  </devices>
</domain>'''

DESIRED = '''<domain type='qemu'>
  <name>web</name>
  <memory unit='MiB'>256</memory>
  <currentMemory unit='MiB'>192</currentMemory>
  <vcpu current='1'>2</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/web.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <source file='/srv/iso/one.iso'/>
      <target dev='sda' bus='sata'/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:aa:bb:01'/>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
    <memballoon model='virtio'/>
  </devices>
</domain>'''


def _desired(*edits):
    text = DESIRED
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    return text


def classify(desired, stored=STORED):
    desired, stored = parse_domain(desired), parse_domain(stored)
    _merged, differences = merge(desired, stored)
    return live.classify(differences, desired, stored)


def summary(changes):
    return [(c.difference.path, c.cls) for c in changes]


def test_the_same_domain_has_nothing_to_classify():
    assert classify(DESIRED) == []


@pytest.mark.parametrize('mib, cls', [(128, live.LIVE), (256, live.LIVE), (224, live.LIVE)])
def test_memory_within_the_maximum_is_live(mib, cls):
    changes = classify(_desired(("<currentMemory unit='MiB'>192", "<currentMemory unit='MiB'>%d" % mib)))
    assert summary(changes) == [('currentMemory', cls)]
    assert changes[0].op.kind == 'memory' and changes[0].op.value == mib * 1024


def test_memory_above_the_maximum_waits_for_the_next_boot():
    changes = classify(_desired(("<memory unit='MiB'>256", "<memory unit='MiB'>512"),
                                ("<currentMemory unit='MiB'>192", "<currentMemory unit='MiB'>512")))
    assert summary(changes) == [('memory', live.NEXT_BOOT), ('currentMemory', live.NEXT_BOOT)]
    assert 'changes too' in changes[1].reason


def test_memory_without_a_balloon_waits_for_the_next_boot():
    stored = STORED.replace("<memballoon model='virtio'>", "<memballoon model='none'>")
    desired = _desired(("<currentMemory unit='MiB'>192", "<currentMemory unit='MiB'>128"),
                       ("<memballoon model='virtio'/>", "<memballoon model='none'/>"))
    changes = classify(desired, stored)
    assert summary(changes) == [('currentMemory', live.NEXT_BOOT)]
    assert 'balloon' in changes[0].reason


def test_a_vcpu_within_the_maximum_is_live():
    changes = classify(_desired(("<vcpu current='1'>2", "<vcpu current='2'>2")))
    # libvirt leaves current out when every vCPU is online: the change is current from 1 to 2.
    assert summary(changes) == [('vcpu', live.LIVE)]
    assert changes[0].op.kind == 'vcpus' and changes[0].op.value == 2
    changes = classify(_desired(("<vcpu current='1'>2", "<vcpu>2")))
    assert summary(changes) == [('vcpu', live.LIVE)] and changes[0].op.value == 2


def test_more_possible_vcpus_wait_for_the_next_boot():
    changes = classify(_desired(("<vcpu current='1'>2", "<vcpu current='2'>4")))
    assert set(c.cls for c in changes) == {live.NEXT_BOOT}


NEW_DISK = ("<interface type='network'>", "<disk type='file' device='disk'><source file='/srv/data.raw'/>"
            "<target dev='vdb' bus='virtio'/></disk><interface type='network'>")
NEW_NIC = ("<memballoon model='virtio'/>", "<interface type='network'><mac address='52:54:00:aa:bb:02'/>"
           "<source network='default'/><model type='virtio'/></interface><memballoon model='virtio'/>")
NEW_USB = ("<memballoon model='virtio'/>", "<hostdev mode='subsystem' type='usb' managed='yes'><source>"
           "<vendor id='0x046d'/><product id='0xc52b'/></source></hostdev><memballoon model='virtio'/>")


@pytest.mark.parametrize('edit, path', [
    (NEW_DISK, 'devices/disk[vdb]'),
    (NEW_NIC, 'devices/interface[52:54:00:aa:bb:02]'),
    (NEW_USB, 'devices/hostdev[usb 046d:c52b]'),
])
def test_a_device_added_or_removed_is_plugged_live(edit, path):
    changes = classify(_desired(edit))
    assert summary(changes) == [(path, live.LIVE)]
    op = changes[0].op
    assert op.kind == 'attach' and op.device.find('address') is None
    # The same device taken out again: detached, with the XML libvirt stored.
    stored = parse_domain(_desired(edit))
    back = live.classify(merge(parse_domain(DESIRED), stored)[1], parse_domain(DESIRED), stored)
    assert summary(back) == [(path, live.LIVE)] and back[0].op.kind == 'detach'


def test_a_cd_swap_is_a_live_update_of_the_drive():
    changes = classify(_desired(("/srv/iso/one.iso", "/srv/iso/two.iso")))
    assert summary(changes) == [('devices/disk[sda]/source', live.LIVE)]
    op = changes[0].op
    assert op.kind == 'update' and op.device.find('source').get('file') == '/srv/iso/two.iso'
    # The drive as libvirt stores it (its address and driver), with the new medium.
    assert op.device.find('address') is not None and op.device.find('driver') is not None


def test_an_ejected_cd_is_a_live_update():
    changes = classify(_desired(("<source file='/srv/iso/one.iso'/>", '')))
    assert summary(changes) == [('devices/disk[sda]/source', live.LIVE)]


def test_another_image_for_a_disk_waits_for_the_next_boot():
    changes = classify(_desired(("/var/lib/libvirt/images/web.qcow2", "/var/lib/libvirt/images/other.qcow2")))
    assert summary(changes) == [('devices/disk[vda]/source', live.NEXT_BOOT)]


def test_link_state_and_bandwidth_of_a_nic_are_live():
    changes = classify(_desired(("<model type='virtio'/>\n    </interface>",
                                 "<model type='virtio'/><link state='down'/><bandwidth><inbound average='1000'/>"
                                 "</bandwidth></interface>")))
    assert [c.cls for c in changes] == [live.LIVE, live.LIVE]
    assert len(live.live_ops(changes)) == 1 and live.live_ops(changes)[0].kind == 'update'


def test_a_nic_model_waits_for_the_next_boot_and_takes_its_link_with_it():
    changes = classify(_desired(("<model type='virtio'/>\n    </interface>",
                                 "<model type='e1000e'/><link state='down'/></interface>")))
    assert set(c.cls for c in changes) == {live.NEXT_BOOT}


def test_machine_type_waits_for_the_next_boot():
    changes = classify(_desired(("machine='q35'", "machine='pc'")))
    assert summary(changes) == [('os/type', live.NEXT_BOOT)]
    assert changes[0].op is None


def test_a_device_libvirt_does_not_plug_waits_for_the_next_boot():
    changes = classify(_desired(("<memballoon model='virtio'/>", "<memballoon model='virtio'/><rng model='virtio'>"
                                 "<backend model='random'>/dev/urandom</backend></rng>")))
    assert summary(changes) == [('devices/rng[virtio]', live.NEXT_BOOT)]
    assert 'rng' in changes[0].reason


def test_live_ops_run_detach_first_and_each_once():
    stored = _desired(NEW_DISK)
    desired = _desired(NEW_NIC, ("/srv/iso/one.iso", "/srv/iso/two.iso"),
                       ("<currentMemory unit='MiB'>192", "<currentMemory unit='MiB'>160"))
    stored_elem, desired_elem = parse_domain(stored), parse_domain(desired)
    changes = live.classify(merge(desired_elem, stored_elem)[1], desired_elem, stored_elem)
    assert [op.kind for op in live.live_ops(changes)] == ['detach', 'attach', 'update', 'memory']
    assert all(c.cls == live.LIVE for c in changes)


def test_as_dict_names_the_change_its_class_and_what_was_done():
    change = classify(_desired(("machine='q35'", "machine='pc'")))[0]
    change.done = live.DEFINED
    assert change.as_dict() == {'change': "os/type: machine changed from 'pc-q35-7.2' to 'pc'", 'path': 'os/type',
                                'class': 'next_boot', 'done': 'defined', 'reason': None}


LIVE_XML = STORED.replace("<domain type='qemu'>", "<domain type='qemu' id='4'>").replace(
    "<target dev='vda' bus='virtio'/>", "<target dev='vda' bus='virtio'/><alias name='virtio-disk0'/>").replace(
    "<model type='virtio'/>", "<target dev='vnet3'/><model type='virtio'/><alias name='net0'/>").replace(
    "<currentMemory unit='KiB'>196608", "<currentMemory unit='KiB'>196000")


def test_a_live_xml_with_what_libvirt_adds_at_run_time_has_nothing_pending():
    assert live.pending(parse_domain(STORED), parse_domain(LIVE_XML)) == []


def test_what_the_definition_has_and_the_guest_runs_without_is_pending():
    stored = parse_domain(_desired(NEW_DISK, ("machine='q35'", "machine='pc-q35-7.2'")))
    found = live.pending(stored, parse_domain(LIVE_XML))
    assert found == [{'change': 'devices/disk[vdb] added', 'path': 'devices/disk[vdb]'}]


def test_a_device_the_guest_still_holds_is_present():
    device = parse_domain(_desired(NEW_DISK)).find("devices/disk[@device='disk']")
    assert live.device_present(device, parse_domain(LIVE_XML)) is True
    other = parse_domain(_desired(NEW_DISK)).find("devices/disk/target[@dev='vdb']/..")
    assert live.device_present(other, parse_domain(LIVE_XML)) is False


@pytest.mark.parametrize('stored_cpu, live_cpu', [
    ("<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>qemu64</model></cpu>",
     "<cpu mode='custom' match='exact' check='full'><model fallback='forbid'>qemu64</model>"
     "<feature policy='require' name='hypervisor'/><feature policy='disable' name='lahf_lm'/></cpu>"),
    ("<cpu mode='host-model' check='partial'/>",
     "<cpu mode='custom' match='exact' check='full'><model fallback='forbid'>EPYC-Rome</model><vendor>AMD</vendor>"
     "<feature policy='require' name='x2apic'/></cpu>"),
])
def test_the_cpu_libvirt_expands_at_start_is_not_pending(stored_cpu, live_cpu):
    stored = STORED.replace('<os>', stored_cpu + '<os>')
    running = LIVE_XML.replace('<os>', live_cpu + '<os>')
    assert live.pending(parse_domain(stored), parse_domain(running)) == []


def test_another_cpu_model_is_pending():
    stored = STORED.replace('<os>', "<cpu mode='custom' match='exact'><model fallback='forbid'>EPYC</model></cpu><os>")
    running = LIVE_XML.replace('<os>', "<cpu mode='custom' match='exact' check='full'><model fallback='forbid'>qemu64"
                                       "</model><feature policy='require' name='hypervisor'/></cpu><os>")
    assert [p['path'] for p in live.pending(parse_domain(stored), parse_domain(running))] == ['cpu/model']


def test_root_ports_added_to_a_running_model_domain_wait_for_its_next_boot():
    desired = parse_domain(domain_cases.read(domain_cases.golden_path('linux')))
    stored = parse_domain(domain_cases.read(domain_cases.libvirt_path('linux-before-root-ports')))
    _merged, differences = merge(desired, stored, MODEL_OWNED_TAGS)
    changes = live.classify(differences, desired, stored)
    assert summary(changes) == [('devices/controller[pci pcie-root-port]', live.NEXT_BOOT)] * 5
    assert all('controller' in c.reason for c in changes)
