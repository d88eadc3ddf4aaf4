# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan of a cold migration and its refusals, from data (no libvirt)."""

from __future__ import annotations

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import HostStateError, InvalidInput
from ansible_collections.phyllome.os.plugins.module_utils._domain.model import HostContext
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import parse
from ansible_collections.phyllome.os.plugins.module_utils._migrate import plan as mp

UUID = '256a5afb-0e16-4368-a8d1-b0a67ce8a54f'
IMAGES = '/var/lib/libvirt/images'


def domain(devices='', os_extra='', os_attrs=" firmware='efi'", name='vm1'):
    return """<domain type='qemu'>
  <name>%s</name><uuid>%s</uuid><memory unit='KiB'>196608</memory>
  <os%s><type arch='x86_64' machine='pc-q35-7.2'>hvm</type>%s</os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='%s/vm1.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <interface type='network'><mac address='52:54:00:aa:bb:cc'/><source network='default'/></interface>
    <graphics type='vnc' passwd='s3cret'/>
    <tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>
    %s
  </devices>
</domain>""" % (name, UUID, os_attrs, os_extra, IMAGES, devices)


def volume(name='vm1.qcow2', path=IMAGES + '/vm1.qcow2', backing=None):
    store = '<backingStore><path>%s</path></backingStore>' % backing if backing else ''
    return ("<volume type='file'><name>%s</name><capacity unit='bytes'>21474836480</capacity>"
            "<allocation unit='bytes'>1052672</allocation><physical unit='bytes'>1048576</physical>"
            "<target><path>%s</path><format type='qcow2'/><permissions><mode>0600</mode><owner>64055</owner>"
            "<group>64055</group></permissions></target>%s</volume>" % (name, path, store))


def sources(**options):
    facts = mp.source_volume(volume(**options))
    facts['pool'] = 'default'
    return {IMAGES + '/vm1.qcow2': facts}


def target(**changes):
    values = {'pools': {'default': IMAGES, 'fast': '/srv/fast', 'rbd': None}, 'networks': ['default', 'lan'],
              'context': HostContext(domain_type='qemu', firmware={'efi'}, secure_boot=True, tpm_emulator=True)}
    values.update(changes)
    return mp.TargetFacts(**values)


def test_a_uefi_tpm_domain_with_one_disk():
    plan = mp.plan_cold(domain(), sources(), target())
    assert plan.as_result() == {
        'disks': [{'target': 'vda', 'source_pool': 'default', 'source_path': IMAGES + '/vm1.qcow2',
                   'target_pool': 'default', 'target_path': IMAGES + '/vm1.qcow2', 'volume': 'vm1.qcow2',
                   'format': 'qcow2', 'capacity': 21474836480, 'allocation': 1052672, 'physical': 1048576}],
        # libvirt 9.0 fills <nvram> in at the first start: its default path until then.
        'nvram': '/var/lib/libvirt/qemu/nvram/vm1_VARS.fd',
        'tpm_state_dir': '/var/lib/libvirt/swtpm/%s/tpm2' % UUID,
        'networks': [{'mac': '52:54:00:aa:bb:cc', 'source_network': 'default', 'target_network': 'default'}],
        # the file's size: a block counted in allocation beyond the file's end is not sent
        'bytes_to_copy': 1048576,
    }
    assert plan.disks[0]['permissions'] == {'mode': '0600', 'owner': '64055', 'group': '64055'}


def test_the_result_holds_no_xml_and_no_secret():
    plan = mp.plan_cold(domain(), sources(), target())
    assert 's3cret' not in repr(plan.as_result())
    # ... while the definition for the target keeps it (a redefinition must not lose the password).
    assert parse(plan.xml).find('devices/graphics').get('passwd') == 's3cret'


def test_an_explicit_nvram_path_is_kept():
    plan = mp.plan_cold(domain(os_extra='<nvram>/srv/vars/vm1.fd</nvram>'), sources(), target())
    assert plan.nvram == '/srv/vars/vm1.fd'
    assert mp.plan_cold(domain(os_attrs=''), sources(), target()).nvram is None


def test_storage_and_network_maps_rewrite_paths_and_networks_and_keep_the_rest():
    plan = mp.plan_cold(domain(), sources(), target(), storage_map={'default': 'fast'}, network_map={'default': 'lan'})
    assert plan.disks[0]['target_path'] == '/srv/fast/vm1.qcow2'
    xml = parse(plan.xml)
    assert xml.find('devices/disk/source').get('file') == '/srv/fast/vm1.qcow2'
    assert xml.find('devices/interface/source').get('network') == 'lan'
    assert xml.find('devices/interface/mac').get('address') == '52:54:00:aa:bb:cc'
    assert xml.findtext('uuid') == UUID
    assert plan.interfaces == [{'mac': '52:54:00:aa:bb:cc', 'source_network': 'default', 'target_network': 'lan'}]


@pytest.mark.parametrize('changes, maps, error, words', [
    ({'pools': {'images': '/srv/images'}}, {}, InvalidInput,
     'disk vda: pool default does not exist on the target: map it to one there with storage_map'),
    ({}, {'storage_map': {'default': 'nowhere'}}, HostStateError,
     'disk vda: pool nowhere (storage_map of default) does not exist on the target'),
    ({}, {'storage_map': {'default': 'rbd'}}, HostStateError, 'disk vda: target pool rbd is not directory-backed'),
    ({'networks': ['lan']}, {}, InvalidInput,
     'network default does not exist on the target: map it to one there with network_map'),
    ({}, {'network_map': {'default': 'wan'}}, HostStateError,
     'network wan (network_map of default) does not exist on the target'),
    ({'machine_offered': False}, {}, HostStateError, 'the target offers no machine type pc-q35-7.2'),
    ({'context': HostContext(firmware={'bios'}, tpm_emulator=True)}, {}, HostStateError,
     'the target has no UEFI firmware'),
    ({'context': HostContext(firmware={'efi'}, tpm_emulator=False)}, {}, HostStateError,
     'the target has no TPM emulator (swtpm)'),
    ({'context': None, 'refusal': 'no qemu here'}, {}, HostStateError, 'the target cannot run it: no qemu here'),
    ({'volumes': [('default', 'vm1.qcow2')]}, {}, HostStateError,
     'disk vda: volume vm1.qcow2 already exists in pool default of the target (never overwritten)'),
])
def test_refusals_name_the_problem(changes, maps, error, words):
    with pytest.raises(error) as caught:
        mp.plan_cold(domain(), sources(), target(**changes), **maps)
    assert words in caught.value.msg
    assert caught.value.msg.startswith('vm1 cannot move: ')


@pytest.mark.parametrize('device, words', [
    ("<hostdev mode='subsystem' type='pci'><source><address domain='0x0000' bus='0x01' slot='0x00'"
     " function='0x0'/></source></hostdev>", 'the host device 0000:01:00.0 (pci hostdev)'),
    ("<hostdev mode='subsystem' type='usb'><source><vendor id='0x046d'/><product id='0xc52b'/></source></hostdev>",
     'the host device 0x046d:0xc52b (usb hostdev)'),
    ("<disk type='block' device='disk'><source dev='/dev/sdb'/><target dev='vdb'/></disk>",
     'disk vdb is a block device (/dev/sdb), which cannot be copied'),
    ("<disk type='network' device='disk'><source protocol='rbd' name='pool/img'/><target dev='vdc'/></disk>",
     'disk vdc is a network disk (pool/img), which cannot be copied'),
    ("<disk type='volume' device='disk'><source pool='default' volume='x.qcow2'/><target dev='vdd'/></disk>",
     'disk vdd names volume x.qcow2 of pool default'),
    ("<disk type='file' device='disk'><source file='/srv/loose.img'/><target dev='vde'/></disk>",
     'disk vde: /srv/loose.img is in no storage pool of the source'),
])
def test_devices_that_cannot_move_are_named(device, words):
    with pytest.raises(HostStateError) as caught:
        mp.plan_cold(domain(devices=device), sources(), target())
    assert words in caught.value.msg


def test_an_empty_cdrom_drive_is_no_disk_to_copy():
    cdrom = "<disk type='file' device='cdrom'><target dev='sda' bus='sata'/></disk>"
    assert [d['target'] for d in mp.plan_cold(domain(devices=cdrom), sources(), target()).disks] == ['vda']


def test_an_overlay_is_refused_with_the_way_out():
    with pytest.raises(HostStateError) as caught:
        mp.plan_cold(domain(), sources(backing='/srv/base.qcow2'), target())
    assert 'is an overlay on /srv/base.qcow2' in caught.value.msg and 'flatten it first' in caught.value.msg


def test_every_problem_is_named_at_once():
    usb = "<hostdev mode='subsystem' type='usb'><source><vendor id='0x1'/><product id='0x2'/></source></hostdev>"
    with pytest.raises(InvalidInput) as caught:
        mp.plan_cold(domain(devices=usb), sources(), target(networks=[], machine_offered=False))
    for words in ('network default', 'host device 0x1:0x2', 'machine type pc-q35-7.2'):
        assert words in caught.value.msg


def test_secure_boot_needs_a_secure_boot_firmware_on_the_target():
    secure = "<loader secure='yes'/>"
    with pytest.raises(HostStateError) as caught:
        mp.plan_cold(domain(os_extra=secure), sources(),
                     target(context=HostContext(firmware={'efi'}, secure_boot=False, tpm_emulator=True)))
    assert 'the target has no Secure Boot firmware' in caught.value.msg


def test_a_firmware_path_the_target_lacks():
    loader = "<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>"
    with pytest.raises(HostStateError) as caught:
        mp.plan_cold(domain(os_extra=loader, os_attrs=''), sources(),
                     target(loaders=['/usr/share/edk2/ovmf/OVMF_CODE.fd']))
    assert 'the target has no firmware /usr/share/OVMF/OVMF_CODE_4M.fd' in caught.value.msg
    plan = mp.plan_cold(domain(os_extra=loader, os_attrs=''), sources(),
                        target(loaders=['/usr/share/OVMF/OVMF_CODE_4M.fd']))
    assert plan.nvram == '/var/lib/libvirt/qemu/nvram/vm1_VARS.fd'


def test_a_tpm_1_2_state_directory():
    xml = domain().replace("version='2.0'", "version='1.2'")
    assert mp.plan_cold(xml, sources(), target()).tpm_dir == '/var/lib/libvirt/swtpm/%s/tpm1.2' % UUID


def test_pool_permissions():
    xml = ("<pool type='dir'><name>p</name><target><path>/x</path><permissions><mode>0711</mode><owner>0</owner>"
           "<group>0</group></permissions></target></pool>")
    assert mp.pool_permissions(xml) == {'mode': '0711', 'owner': '0', 'group': '0'}
    assert mp.pool_permissions("<pool type='dir'><name>p</name><target><path>/x</path></target></pool>") is None


MIB = 1024 * 1024


def test_a_target_pool_without_room_for_the_data_and_its_margin():
    # 1 MiB of data needs 1 MiB + 1 MiB (1 %, rounded up to a MiB) + 16 MiB.
    for free in (512 * 1024, 18 * MIB - 1):
        with pytest.raises(HostStateError) as caught:
            mp.plan_cold(domain(), sources(), target(available={'default': free}))
        assert ('pool default of the target has %s free, the disks need 18 MiB (1 MiB of data on the source plus a'
                ' margin of 17 MiB: 1%% and 16 MiB)' % mp.format_bytes(free)) in caught.value.msg
    assert mp.plan_cold(domain(), sources(), target(available={'default': 18 * MIB})).bytes_to_copy == MIB


@pytest.mark.parametrize('data, margin', [(0, 16 * MIB), (1, 17 * MIB), (100 * MIB, 17 * MIB),
                                          (100 * MIB + 1, 18 * MIB), (1024 * 1024 * MIB, 10502 * MIB)])
def test_the_space_margin(data, margin):
    assert mp.space_margin(data) == margin


@pytest.mark.parametrize('available, sent, failure, enospc, expected', [
    (64 * MIB, 8 * MIB, None, False, None),
    (mp.FULL_BELOW, 8 * MIB, None, False, None),
    (None, 8 * MIB, None, False, None),  # libvirt does not say: the verify decides
    (0, 4 * MIB, None, False,
     'pool small of the target filled up during the copy of volume vm1.qcow2 (0 bytes free after 4 MiB of data were'
     ' sent); libvirt can report an upload that ran out of space as complete, so this copy is not trusted'),
    (4096, None, 'Unable to write /p/vm1.qcow2: No space left on device', True,
     'pool small of the target filled up during the copy of volume vm1.qcow2 (4 KiB free now): Unable to write'
     ' /p/vm1.qcow2: No space left on device'),
    (None, None, 'No space left on device', True, 'pool small of the target filled up during the copy of volume'
                                                  ' vm1.qcow2 (unknown free now): No space left on device'),
    # the helper behind the stream died of ENOSPC: libvirt only says its pipe broke; the pool is full
    (0, None, 'Cannot write data: Broken pipe', False, 'pool small of the target filled up during the copy of'
                                                       ' volume vm1.qcow2 (0 bytes free now): Cannot write data:'
                                                       ' Broken pipe'),
    # another failure, the pool with room: not this error
    (64 * MIB, None, 'internal error: client socket is closed', False, None),
    (None, None, 'internal error: client socket is closed', False, None),
])
def test_a_pool_that_filled_up_during_a_copy(available, sent, failure, enospc, expected):
    assert mp.pool_full_error('small', 'vm1.qcow2', available, sent, failure, enospc) == expected


def test_rollback_words_say_what_was_undone_and_what_is_left():
    assert mp.rollback_words([], [], 'it still runs on a', 'u1') == (
        'rolled back: it still runs on a, the target holds nothing of it')
    assert mp.rollback_words(['delete volume v in pool p on b', 'undefine domain vm1 on b'], [],
                             'the source is intact and running again', 'u1') == (
        'rolled back (undone: delete volume v in pool p on b; undefine domain vm1 on b): the source is intact and'
        ' running again, the target holds nothing of it')
    assert mp.rollback_words(['start domain vm1 again on a'], ['cannot reach b again within 90 s: down',
                                                               'undefine domain vm1 on b'], 'x', 'u1') == (
        'rolled back (undone: start domain vm1 again on a), except: cannot reach b again within 90 s: down;'
        ' undefine domain vm1 on b; remove what is left of uuid u1 before a new attempt')


def test_live_needs_a_running_domain():
    assert mp.live_refusals(None) == ['it is not running (mode=live moves a running domain; mode=cold moves a'
                                      ' stopped one)']
    assert mp.live_refusals(domain()) == []


@pytest.mark.parametrize('detail', [
    'incompatible', 'unsupported configuration: host-passthrough',
    # libvirt's own words for an incompatible CPU (virConnectCompareHypervisorCPU with FAIL_INCOMPATIBLE, 9.0)
    'the CPU is incompatible with host CPU: Host CPU does not provide required features: avx512f'])
def test_a_cpu_refusal_names_the_verdict_and_the_fleet_baseline(detail):
    refusal = mp.cpu_refusal(detail)
    assert 'virConnectCompareHypervisorCPU: %s' % detail in refusal
    assert 'phyllome.os.cpu_baseline' in refusal


def test_the_live_definition_is_rewritten_like_the_stored_one():
    # rewrite_xml serves both: the running XML (DEST_XML) and the stored one (PERSIST_XML) of a live move
    disks = [{'source_path': IMAGES + '/vm1.qcow2', 'target_path': '/srv/pool/vm1.qcow2'}]
    xml = domain().replace("<source file='%s/vm1.qcow2'/>" % IMAGES, "<source file='%s/vm1.qcow2' index='1'/>" % IMAGES)
    rewritten = parse(mp.rewrite_xml(xml, disks, {'default': 'lan'}), 'xml')
    assert rewritten.find('devices/disk/source').get('file') == '/srv/pool/vm1.qcow2'
    assert rewritten.find('devices/disk/source').get('index') == '1'
    assert rewritten.find('devices/interface/source').get('network') == 'lan'


AGENT = "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"


@pytest.mark.parametrize('devices, found', [
    (AGENT, True),
    ("<channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel>", False),
    ("<channel type='unix'><target type='guestfwd' name='org.qemu.guest_agent.0'/></channel>", False),
    ('', False),
])
def test_the_guest_agent_channel_is_a_virtio_port_of_that_name(devices, found):
    assert mp.has_guest_agent_channel(domain(devices)) is found


def test_waiting_for_the_guest_agent_needs_its_channel_and_a_start():
    assert mp.guest_agent_refusal(domain(AGENT), start=True) is None
    refusal = mp.guest_agent_refusal(domain(), start=True)
    assert refusal.startswith('vm1 has no guest agent channel (a virtio channel named org.qemu.guest_agent.0)')
    assert 'guest_agent: true' in refusal
    assert 'needs it started there' in mp.guest_agent_refusal(domain(AGENT), start=False)


# The completed job's statistics of a real live migration (libvirt 9.0, QEMU 7.2 TCG, between the two private
# daemons of the migrate integration target: a 192 MiB guest with a 64 MiB qcow2 disk), as virDomainGetJobStats
# returned them on the source.
COMPLETED_JOB = {
    'operation': 5, 'time_elapsed': 1565, 'time_elapsed_net': 1558, 'downtime': 133, 'downtime_net': 126,
    'setup_time': 3, 'data_total': 268967936, 'data_processed': 150472688, 'data_remaining': 0,
    'memory_total': 201859072, 'memory_processed': 83363824, 'memory_remaining': 0, 'memory_bps': 134032430,
    'memory_dirty_rate': 0, 'memory_iteration': 3, 'disk_total': 67108864, 'disk_processed': 67108864,
    'disk_remaining': 0, 'type': 3}


def test_live_progress_is_libvirts_completed_job():
    assert mp.live_progress(COMPLETED_JOB) == {
        'bytes': 150472688, 'memory_bytes': 83363824, 'disk_bytes': 67108864, 'seconds': 1.565,
        'mb_per_s': 96.1, 'downtime_ms': 133}


@pytest.mark.parametrize('stats', [{}, {'type': 3, 'time_elapsed': 10}, {'type': 3, 'data_processed': 5}])
def test_live_progress_without_libvirts_figures_is_none(stats):
    assert mp.live_progress(stats) is None


@pytest.mark.parametrize('data, seconds, rate', [(150472688, 1.565, 96.1), (10, 0, None), (0, 2.0, 0.0)])
def test_mb_per_s(data, seconds, rate):
    assert mp.mb_per_s(data, seconds) == rate
