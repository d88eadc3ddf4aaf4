# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The domain module's flow against libvirt's in-process test driver (test:///default).

The test driver is real libvirt (parsing, storage, state machine) without
QEMU; the integration target covers the QEMU driver.
"""

from __future__ import annotations

import uuid as uuid_module

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.actions import ActionRecorder
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import HostStateError, InvalidInput, LibvirtFailure, NotFound
from ansible_collections.phyllome.os.plugins.module_utils._domain import manager
from ansible_collections.phyllome.os.plugins.module_utils._domain.compare import merge as real_merge
from ansible_collections.phyllome.os.plugins.module_utils._domain.manager import run_domain
from ansible_collections.phyllome.os.plugins.module_utils._domain.options import MODULE_OPTIONS
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.domain_client import DomainClient

libvirt = pytest.importorskip('libvirt')

URI = 'test:///default'
MUTATIONS = ('define', 'start', 'suspend', 'resume', 'destroy', 'shutdown', 'undefine', 'set_autostart',
             'create_volume', 'delete_volume', 'set_metadata', 'clone_volume', 'resize_volume', 'block_resize', 'refresh_pool',
             'upload_volume', 'set_memory_live', 'set_vcpus_live', 'attach_device', 'detach_device', 'update_device')


class SpyClient(DomainClient):
    """A DomainClient that records which mutating methods ran."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.called = []

    def __getattribute__(self, name):
        value = object.__getattribute__(self, name)
        if name not in MUTATIONS:
            return value
        called = object.__getattribute__(self, 'called')

        def spy(*args, **kwargs):
            called.append(name)
            return value(*args, **kwargs)
        return spy


@pytest.fixture
def client():
    conn = libvirt.open(URI)
    yield SpyClient(conn, URI)
    conn.close()


@pytest.fixture
def name():
    name = 'unit-%s' % uuid_module.uuid4().hex[:8]
    yield name
    conn = libvirt.open(URI)
    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError:
        return
    if dom.isActive():
        dom.destroy()
    dom.undefine()


@pytest.fixture
def image(tmp_path):
    path = tmp_path / 'disk.img'
    path.write_bytes(b'')
    return str(path)


def run(client, check=False, **params):
    full = dict((o.name, o.default) for o in MODULE_OPTIONS)
    full.update(params)
    recorder = ActionRecorder(check_mode=check)
    result = run_domain(full, client, recorder, sleep=lambda s: None)
    result['changed'] = recorder.changed
    return result


def model(image, **extra):
    values = {'os': 'linux', 'memory': 512, 'disks': [{'path': image}], 'networks': [{'type': 'user'}]}
    values.update(extra)
    return values


def test_define_then_nothing_to_do(client, name, image):
    first = run(client, name=name, model=model(image))
    assert first['changed'] and first['actions'] == ['define domain %s' % name]
    assert first['changes'] == ['domain %s defined' % name]
    assert first['state'] == 'shutoff' and first['uuid']
    second = run(client, name=name, model=model(image))
    assert not second['changed'] and second['actions'] == [] and second['changes'] == []
    assert second['uuid'] == first['uuid']
    assert second['diff']['before'] == second['diff']['after']


def test_check_mode_calls_no_mutating_api(client, name, image):
    result = run(client, check=True, name=name, model=model(image), state='running', autostart=True)
    assert result['changed']
    assert result['actions'] == ['define domain %s' % name, 'enable autostart of domain %s' % name,
                                 'start domain %s' % name]
    assert result['state'] == 'running' and result['diff']['before'] == ''
    assert client.called == []
    assert client.lookup(name) is None


def test_check_mode_predicts_the_real_run(client, name, image):
    run(client, name=name, model=model(image))
    predicted = run(client, check=True, name=name, model=model(image, memory=1024), state='running')
    assert client.called == ['define', 'set_metadata']
    real = run(client, name=name, model=model(image, memory=1024), state='running')
    assert predicted['actions'] == real['actions']
    assert predicted['changes'] == real['changes'] == ['memory changed from 512 MiB to 1 GiB',
                                                       'currentMemory changed from 512 MiB to 1 GiB']
    assert predicted['diff']['after'] == real['diff']['after']


def test_update_in_place_keeps_uuid_and_mac(client, name, image):
    first = run(client, name=name, model=model(image))
    mac = client.lookup(name).XMLDesc(0).split("mac address='")[1][:17]
    changed = run(client, name=name, model=model(image, memory=768, vcpus=4))
    assert changed['changed'] and changed['uuid'] == first['uuid']
    assert "mac address='%s'" % mac in client.lookup(name).XMLDesc(0)
    assert 'vcpu: 2' not in ' '.join(changed['changes'])
    assert 'vcpu changed from 2 to 4' in changed['changes']


def test_states(client, name, image):
    assert run(client, name=name, model=model(image), state='running')['state'] == 'running'
    assert run(client, name=name, state='running')['changed'] is False
    paused = run(client, name=name, state='paused')
    assert paused['actions'] == ['pause domain %s' % name] and paused['state'] == 'paused'
    resumed = run(client, name=name, state='running')
    assert resumed['actions'] == ['resume domain %s' % name]
    stopped = run(client, name=name, state='shutdown')
    assert stopped['state'] == 'shutoff'
    assert stopped['actions'] == ['shut down domain %s (ACPI power button, up to 120 s)' % name]
    started_paused = run(client, name=name, state='paused')
    assert started_paused['actions'] == ['start domain %s paused' % name]


def test_running_domain_reports_restart_required_until_restarted(client, name, image):
    run(client, name=name, model=model(image), state='running')
    changed = run(client, name=name, model=model(image, memory=1024), state='running')
    assert changed['restart_required'] is True
    # Still pending on the next run, which changes nothing.
    again = run(client, name=name, model=model(image, memory=1024), state='running')
    assert again['changed'] is False and again['restart_required'] is True
    restarted = run(client, name=name, model=model(image, memory=1024), state='running', apply='restart')
    assert restarted['actions'] == [
        'shut down domain %s (ACPI power button, up to 120 s, to apply the new definition)' % name,
        'start domain %s' % name]
    assert restarted['restart_required'] is False
    assert run(client, name=name, model=model(image, memory=1024), state='running')['restart_required'] is False


@pytest.mark.parametrize('start, end, change', [
    (1, 2, "vcpu: current changed from '1' to unset"),   # a vCPU added
    (2, 1, "vcpu: current changed from unset to '1'"),   # a vCPU removed
])
def test_vcpus_change_in_the_running_domain_and_its_definition(client, name, image, start, end, change):
    run(client, name=name, model=model(image, vcpus=start, max_vcpus=2), state='running')
    before = client.called[:]
    wanted = model(image, vcpus=end, max_vcpus=2)
    predicted = run(client, check=True, name=name, model=wanted)
    assert client.called == before
    real = run(client, name=name, model=wanted)
    assert client.called[len(before):] == ['set_vcpus_live', 'define', 'set_metadata']
    assert predicted['actions'] == real['actions'] == [
        'set the vCPUs of running domain %s to %d (live and in its definition)' % (name, end),
        'update the definition of domain %s' % name]
    assert predicted['differences'] == real['differences'] == [
        {'change': change, 'path': 'vcpu', 'class': 'live', 'done': 'applied', 'reason': None}]
    assert real['restart_required'] is False
    # VIR_DOMAIN_AFFECT_LIVE (1) and VIR_DOMAIN_AFFECT_CONFIG (2)
    assert client.lookup(name).vcpusFlags(1) == end and client.lookup(name).vcpusFlags(2) == end
    again = run(client, name=name, model=wanted)
    assert again['changed'] is False and again['restart_required'] is False and again['differences'] == []


def test_what_the_hypervisor_refuses_waits_for_the_next_boot_with_its_reason(client, name, image):
    # libvirt's test driver takes a memory change for the guest or for the definition, not both at once.
    run(client, name=name, model=model(image, memory=512, max_memory=1024), state='running')
    wanted = model(image, memory=768, max_memory=1024)
    predicted = run(client, check=True, name=name, model=wanted)
    assert predicted['differences'][0]['class'] == 'live' and predicted['restart_required'] is False
    real = run(client, name=name, model=wanted)
    assert real['actions'] == predicted['actions']
    change = real['differences'][0]
    assert (change['class'], change['done']) == ('next_boot', 'defined')
    assert 'mutually exclusive' in change['reason']
    assert real['restart_required'] is True and real['changed'] is True
    assert "<currentMemory unit='KiB'>786432</currentMemory>" in client.lookup(name).XMLDesc(2)


def test_apply_next_boot_leaves_the_running_guest_alone(client, name, image):
    run(client, name=name, model=model(image, vcpus=1, max_vcpus=2), state='running')
    real = run(client, name=name, model=model(image, vcpus=2, max_vcpus=2), apply='next_boot')
    assert 'set_vcpus_live' not in client.called
    assert [(c['class'], c['done']) for c in real['differences']] == [('live', 'defined')]
    assert real['restart_required'] is True
    # The running guest's XML beside the stored definition it does not run yet.
    assert real['live_diff']['before_header'] == '%s (running)' % name
    assert "current='1'" in real['live_diff']['before'] and "current='1'" not in real['live_diff']['after']
    assert run(client, name=name, model=model(image, vcpus=1, max_vcpus=2))['live_diff'] is None


def test_change_to_a_stopped_domain_needs_no_restart(client, name, image):
    run(client, name=name, model=model(image))
    assert run(client, name=name, model=model(image, memory=1024))['restart_required'] is False


def test_state_of_a_removed_tpm_goes_with_the_domain(client, name, image):
    run(client, name=name, model=model(image))
    dropped = run(client, name=name, model=model(image, tpm=False))
    assert dropped['changes'] == ['devices/tpm[tpm-crb] removed']
    assert 'removed-tpm' in dropped['xml']
    removed = run(client, name=name, state='absent')
    assert removed['actions'][0] == ('give domain %s back the TPM a change removed, so that its state goes with it'
                                     % name)
    # A TPM that comes back is no longer remembered as removed.
    run(client, name=name, model=model(image))
    run(client, name=name, model=model(image, tpm=False))
    back = run(client, name=name, model=model(image))
    assert 'removed-tpm' not in back['xml']


def test_autostart(client, name, image):
    assert run(client, name=name, model=model(image), autostart=True)['actions'][-1] == \
        'enable autostart of domain %s' % name
    assert run(client, name=name, autostart=True)['changed'] is False
    assert run(client, name=name, autostart=False)['actions'] == ['disable autostart of domain %s' % name]


def test_absent_undefines_and_is_idempotent(client, name, image):
    run(client, name=name, model=model(image), state='running')
    removed = run(client, name=name, state='absent')
    assert removed['state'] == 'absent' and removed['diff']['after'] == ''
    assert removed['actions'][-1].startswith('undefine domain %s' % name)
    assert client.lookup(name) is None
    assert run(client, name=name, state='absent')['changed'] is False


def test_absent_ignores_what_the_domain_would_be(client, name, image):
    run(client, name=name, model=model(image))
    # A model that no longer builds (the image is gone) does not stand in the way of removing it.
    removed = run(client, name=name, state='absent', model=model('/nonexistent.img', vcpus=3, cpu={'threads': 2}))
    assert removed['changed'] and client.lookup(name) is None
    xml = "<domain><name>%s</name></domain>" % name
    run(client, name=name, model=model(image))
    assert run(client, xml=xml, state='absent')['changes'] == ['domain %s removed' % name]


def test_volumes_created_and_removed_with_remove_storage(client, name):
    disks = [{'pool': 'default-pool', 'volume': '%s.qcow2' % name, 'format': 'qcow2', 'size': '10G'}]
    created = run(client, name=name, model={'disks': disks, 'networks': []})
    assert created['actions'] == ['create volume %s.qcow2 in pool default-pool' % name, 'define domain %s' % name]
    assert 'phyllome:volume' in created['xml'] or 'volume pool="default-pool"' in created['xml']
    pool = client.conn.storagePoolLookupByName('default-pool')
    assert pool.storageVolLookupByName('%s.qcow2' % name).info()[1] == 10 * 1024 ** 3
    assert run(client, name=name, model={'disks': disks, 'networks': []})['changed'] is False
    kept = run(client, name=name, state='absent')
    assert 'delete volume' not in ' '.join(kept['actions'])
    assert pool.storageVolLookupByName('%s.qcow2' % name)
    pool.storageVolLookupByName('%s.qcow2' % name).delete(0)
    run(client, name=name, model={'disks': disks, 'networks': []})
    removed = run(client, name=name, state='absent', remove_storage=True)
    assert removed['actions'][-1] == 'delete volume %s.qcow2 in pool default-pool' % name
    with pytest.raises(libvirt.libvirtError):
        pool.storageVolLookupByName('%s.qcow2' % name)


def test_existing_volumes_are_never_recorded_as_created(client, name):
    pool = client.conn.storagePoolLookupByName('default-pool')
    pool.createXML("<volume><name>%s-old.raw</name><capacity>1048576</capacity></volume>" % name, 0)
    disks = [{'pool': 'default-pool', 'volume': '%s-old.raw' % name, 'size': '1M'}]
    try:
        run(client, name=name, model={'disks': disks, 'networks': []})
        removed = run(client, name=name, state='absent', remove_storage=True)
        assert 'delete volume' not in ' '.join(removed['actions'])
        assert pool.storageVolLookupByName('%s-old.raw' % name)
    finally:
        pool.storageVolLookupByName('%s-old.raw' % name).delete(0)


def test_xml_mode(client, name, image):
    xml = ("<domain type='test'><name>%s</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>"
           "<os><type arch='x86_64'>hvm</type></os>"
           "<devices><disk type='file' device='disk'><source file='%s'/><target dev='vda' bus='virtio'/></disk>"
           "</devices></domain>") % (name, image)
    assert run(client, xml=xml)['changed'] is True
    assert run(client, xml=xml)['changed'] is False
    partial = "<domain><name>%s</name><memory unit='MiB'>256</memory></domain>" % name
    # No type in a partial XML: the domain keeps its own.
    changed = run(client, xml=partial)
    assert changed['changes'] == ['memory changed from 128 MiB to 256 MiB']
    # The disk, left out of the partial XML, is still there.
    assert "<target dev='vda'" in client.lookup(name).XMLDesc(0)


def test_xml_without_type_gets_the_hosts_for_a_new_domain(client, name, image):
    xml = ("<domain><name>%s</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>"
           "<os><type arch='x86_64'>hvm</type></os></domain>") % name
    assert run(client, xml=xml)['xml'].startswith('<domain type="test"')
    assert run(client, xml=xml)['changed'] is False


@pytest.mark.parametrize('params, error, message', [
    ({'model': {'disks': [{'path': '/nonexistent/disk.img'}]}}, InvalidInput, 'does not exist'),
    ({'model': {'disks': [{'path': '/nonexistent/new.img', 'size': 1}]}}, InvalidInput, 'no storage pool'),
    ({'model': {'disks': [{'pool': 'default-pool', 'volume': 'missing.raw'}]}}, InvalidInput, 'give size'),
    ({'model': {'hostdevs': [{'address': '0000:42:00.0'}], 'networks': []}}, InvalidInput, 'no PCI device'),
    ({'model': {'extra_xml': ['<os>']}}, InvalidInput, 'not well-formed'),
    ({'xml': '<domain><name>x</name>'}, InvalidInput, 'not well-formed'),
    ({'xml': '<vm/>'}, InvalidInput, 'root element'),
    ({'state': 'absent', 'autostart': True}, InvalidInput, 'conflicts'),
    ({'shutdown_timeout': -1}, InvalidInput, 'shutdown_timeout'),
    ({'state': 'running'}, NotFound, 'is not defined'),
])
def test_bad_input_changes_nothing(client, name, params, error, message):
    with pytest.raises(error, match=message):
        run(client, name=name, **params)
    assert client.called == []
    assert client.lookup(name) is None


def test_name_clash_with_another_uuid(client, name, image):
    run(client, name=name, model=model(image))
    other = str(uuid_module.uuid4())
    with pytest.raises(InvalidInput, match='already exists with uuid'):
        run(client, name=name, model=model(image, extra_xml=['<uuid>%s</uuid>' % other]))
    with pytest.raises(InvalidInput, match='differs from the <name>'):
        run(client, name=name, xml='<domain><name>other</name></domain>')


def test_shutdown_that_times_out_fails_unless_forced(client, name, image, monkeypatch):
    run(client, name=name, model=model(image), state='running')
    # The test driver's guests always obey the button: make this one ignore it.
    monkeypatch.setattr(client, 'shutdown', lambda dom, timeout, sleep, clock: False)
    with pytest.raises(HostStateError, match='did not shut down within 5 s'):
        run(client, name=name, state='shutdown', shutdown_timeout=5)
    assert client.state(client.lookup(name)) == 'running'
    forced = run(client, name=name, state='shutdown', shutdown_timeout=5, force=True)
    assert forced['actions'] == ['shut down domain %s (ACPI power button, up to 5 s, then power off)' % name]
    assert forced['state'] == 'shutoff'


# --- issue 13: secrets, check mode, the recorder, honest `changed` ----------

OLD_SECRET = 'Planted-Old-Secret-7f3a'
NEW_SECRET = 'Planted-New-Secret-91bc'


def graphics_xml(name, password):
    return ("<domain type='test'><name>%s</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64'>hvm</type></os>"
            "<devices><graphics type='vnc' port='-1' passwd='%s'/></devices></domain>") % (name, password)


def test_a_changed_password_is_never_spelled_out(client, name):
    run(client, name=name, xml=graphics_xml(name, OLD_SECRET))
    for check in (True, False):
        recorder = ActionRecorder(check_mode=check)
        params = dict((o.name, o.default) for o in MODULE_OPTIONS)
        params.update(name=name, xml=graphics_xml(name, NEW_SECRET))
        result = run_domain(params, client, recorder, sleep=lambda s: None)
        text = repr(result) + repr(recorder.actions)
        assert OLD_SECRET not in text and NEW_SECRET not in text
        assert any('passwd changed' in c for c in result['changes'])
        # The values the module hands to Ansible's no_log masking.
        assert {OLD_SECRET, NEW_SECRET} <= recorder.secrets


def test_extra_xml_secrets_are_known_before_anything_is_parsed(client, name, image):
    recorder = ActionRecorder(check_mode=True)
    params = dict((o.name, o.default) for o in MODULE_OPTIONS)
    params.update(name=name, model=model(image, extra_xml=["<devices><graphics type='vnc' passwd='%s'>" % NEW_SECRET]))
    with pytest.raises(InvalidInput):
        run_domain(params, client, recorder)
    assert NEW_SECRET in recorder.secrets


class Stubborn:
    """Makes the test driver's guest ignore the power button (it always obeys it otherwise)."""

    def __init__(self, client, monkeypatch):
        self.pressed = []
        monkeypatch.setattr(client, 'shutdown', self.shutdown)
        monkeypatch.setattr(client, 'press_power_button', lambda dom: self.pressed.append(dom.name()))

    def shutdown(self, dom, timeout, sleep, clock):
        self.pressed.append(dom.name())
        return False


@pytest.mark.parametrize('params', [
    {'state': 'shutdown', 'force': True},
    {'state': 'shutdown', 'shutdown_timeout': 0, 'force': True},
    {'state': 'shutdown', 'shutdown_timeout': 0},
    {'state': 'absent'},
    {'state': 'running', 'apply': 'restart', 'force': True, 'memory': 1024},
])
def test_check_mode_predicts_a_stop_that_escalates(client, name, image, monkeypatch, params):
    params = dict(params)
    memory = params.pop('memory', 512)
    run(client, name=name, model=model(image), state='running')
    run(client, name=name, model=model(image, memory=memory), state='running')
    stubborn = Stubborn(client, monkeypatch)
    task = dict(params, name=name)
    if params.get('apply'):
        task['model'] = model(image, memory=memory)
    predicted = run(client, check=True, **task)
    assert stubborn.pressed == []
    real = run(client, **task)
    assert predicted['actions'] == real['actions']
    assert predicted['changed'] is real['changed'] is True


def test_timeout_zero_without_force_presses_the_button(client, name, image, monkeypatch):
    run(client, name=name, model=model(image), state='running')
    stubborn = Stubborn(client, monkeypatch)
    result = run(client, name=name, state='shutdown', shutdown_timeout=0)
    assert stubborn.pressed == [name]
    assert result['actions'] == ['press the ACPI power button of domain %s (not waiting)' % name]


def test_a_paused_guest_is_resumed_through_the_recorder(client, name, image):
    run(client, name=name, model=model(image), state='paused')
    predicted = run(client, check=True, name=name, state='shutdown')
    real = run(client, name=name, state='shutdown')
    assert predicted['actions'] == real['actions']
    assert real['actions'][0] == 'resume domain %s (a paused guest cannot see the power button)' % name
    assert real['state'] == 'shutoff'


def test_volumes_of_a_failed_define_go_through_the_recorder_and_nothing_is_left_changed(client, name, monkeypatch):
    disks = [{'pool': 'default-pool', 'volume': '%s.qcow2' % name, 'format': 'qcow2', 'size': '1G'}]

    def refuse(xml):
        raise LibvirtFailure('libvirt refused the domain definition: planted')
    monkeypatch.setattr(client, 'define', refuse)
    recorder = ActionRecorder()
    params = dict((o.name, o.default) for o in MODULE_OPTIONS)
    params.update(name=name, model={'disks': disks, 'networks': []})
    with pytest.raises(LibvirtFailure):
        run_domain(params, client, recorder)
    assert recorder.actions == ['create volume %s.qcow2 in pool default-pool' % name,
                                'define domain %s' % name,
                                'undo: delete volume %s.qcow2 in pool default-pool' % name]
    assert recorder.changed is False
    pool = client.conn.storagePoolLookupByName('default-pool')
    assert '%s.qcow2' % name not in pool.listVolumes()


def test_a_volume_on_disk_unknown_to_libvirt_is_a_recorded_refresh(client, name, monkeypatch):
    disks = [{'pool': 'default-pool', 'volume': '%s.raw' % name, 'size': 1}]
    monkeypatch.setattr(client, 'path_exists', lambda path: path == '/default-pool/%s.raw' % name)
    refreshed = []
    monkeypatch.setattr(client, 'refresh_pool', refreshed.append)
    predicted = run(client, check=True, name=name, model={'disks': disks, 'networks': []})
    assert refreshed == []
    assert predicted['actions'] == ['refresh storage pool default-pool (volume %s.raw is on disk but not in'
                                    " libvirt's list)" % name, 'define domain %s' % name]


@pytest.mark.parametrize('start', ['shutoff', 'running', 'paused'])
@pytest.mark.parametrize('target', [
    {'state': 'present'}, {'state': 'running'}, {'state': 'paused'}, {'state': 'shutdown'},
    {'state': 'shutdown', 'force': True}, {'state': 'shutdown', 'shutdown_timeout': 0},
    {'state': 'shutdown', 'shutdown_timeout': 0, 'force': True}, {'state': 'absent'},
    {'state': 'running', 'autostart': True}, {'state': 'running', 'apply': 'restart', 'memory': 768},
])
def test_every_state_change_is_predicted_by_check_mode(client, name, image, start, target):
    target = dict(target)
    memory = target.pop('memory', 512)
    run(client, name=name, model=model(image), state={'shutoff': 'present'}.get(start, start))
    if target.get('apply'):
        run(client, name=name, model=model(image, memory=memory))
        target['model'] = model(image, memory=memory)
    called = len(client.called)
    predicted = run(client, check=True, name=name, **target)
    assert len(client.called) == called  # check mode calls no mutating API
    real = run(client, name=name, **target)
    assert predicted['actions'] == real['actions']
    assert predicted['changed'] is real['changed']
    assert predicted['state'] == real['state'] or target.get('shutdown_timeout') == 0


# --- the record of the module's last define (intent.py) ---------------------

def plain_xml(name, extra=''):
    return ("<domain type='test'><name>%s</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64'>hvm</type></os>%s</domain>") % (name, extra)


def _edit_outside(client, name, old, new):
    """What `virsh edit` does: the stored definition (our record included) with one value changed."""
    dom = client.lookup(name)
    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
    assert old in xml
    client.conn.defineXML(xml.replace(old, new))


def test_the_same_request_on_the_same_definition_compares_nothing(client, name, monkeypatch):
    first = run(client, xml=plain_xml(name))
    assert first['changed'] and client.called == ['define', 'set_metadata']
    assert 'phyllome-intent:intent' in client.lookup(name).XMLDesc(0)

    def no_comparison(*_args, **_kwargs):
        raise AssertionError('compared although nothing changed since the last define')
    monkeypatch.setattr(manager, 'merge', no_comparison)
    monkeypatch.setattr(manager, 'compare', no_comparison)
    second = run(client, xml=plain_xml(name))
    assert not second['changed'] and second['changes'] == [] and second['warnings'] == []


def test_a_change_made_outside_the_module_is_drift_and_check_mode_predicts_its_undoing(client, name):
    run(client, xml=plain_xml(name))
    _edit_outside(client, name, "<memory unit='KiB'>131072</memory>", "<memory unit='KiB'>262144</memory>")
    predicted = run(client, check=True, xml=plain_xml(name))
    real = run(client, xml=plain_xml(name))
    assert real['changed'] and predicted['changes'] == real['changes'] == [
        'memory changed from 256 MiB to 128 MiB (drift: changed outside this module)']
    assert predicted['actions'] == real['actions']
    assert run(client, xml=plain_xml(name))['changed'] is False


def test_a_new_request_is_not_drift(client, name):
    run(client, xml=plain_xml(name))
    changed = run(client, xml=plain_xml(name).replace('>128<', '>256<'))
    assert changed['changes'] == ['memory changed from 128 MiB to 256 MiB']


def test_what_libvirt_does_not_keep_is_a_warning_at_that_define_then_no_change(client, name):
    # libvirt drops an attribute it does not know, without a word.
    xml = plain_xml(name, "<on_poweroff phyllome-unknown='1'>destroy</on_poweroff>")
    first = run(client, xml=xml)
    assert first['changed'] and len(first['warnings']) == 1
    assert 'on_poweroff/@phyllome-unknown' in first['warnings'][0]
    again = run(client, xml=xml)
    assert not again['changed'] and again['changes'] == [] and again['warnings'] == []
    # Undoing drift defines again: libvirt drops it again, known, no new warning.
    _edit_outside(client, name, "<memory unit='KiB'>131072</memory>", "<memory unit='KiB'>262144</memory>")
    undone = run(client, xml=xml)
    assert undone['changes'] == ['memory changed from 256 MiB to 128 MiB (drift: changed outside this module)']
    assert undone['warnings'] == []
    # Another request still asking the same: not a change by itself, not said again.
    other = run(client, xml=xml.replace('>128<', '>256<'))
    assert other['changes'] == ['memory changed from 128 MiB to 256 MiB'] and other['warnings'] == []
    assert run(client, xml=xml.replace('>128<', '>256<'))['changed'] is False
    # Asking another value of it is a change, and said at its define.
    newer = run(client, xml=xml.replace("'1'", "'2'"))
    assert newer['changes'] == ['memory changed from 256 MiB to 128 MiB', "on_poweroff: phyllome-unknown changed from unset to '2'"]
    assert len(newer['warnings']) == 1


def test_a_domain_the_module_did_not_define_stays_as_it_is(client, name):
    client.conn.defineXML(plain_xml(name))
    result = run(client, xml=plain_xml(name))
    assert not result['changed'] and client.called == []
    assert 'phyllome-intent' not in client.lookup(name).XMLDesc(0)
    assert run(client, xml=plain_xml(name))['changed'] is False


def test_a_request_with_a_password_is_compared_every_time_and_its_digests_hold_no_password(client, name, monkeypatch):
    run(client, xml=graphics_xml(name, OLD_SECRET))
    stored = client.lookup(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
    record = stored.split('<phyllome-intent:intent', 1)[1].split('</metadata>', 1)[0]
    assert OLD_SECRET not in record
    merges = []
    monkeypatch.setattr(manager, 'merge', lambda *args: merges.append(1) or real_merge(*args))
    assert run(client, xml=graphics_xml(name, OLD_SECRET))['changed'] is False
    assert merges == [1]
    # A new password is seen although the digests leave passwords out.
    assert run(client, xml=graphics_xml(name, NEW_SECRET))['changes'] == [
        'devices/graphics[vnc]: passwd changed']


def test_the_record_does_not_leak_into_a_copied_definition(client, name):
    run(client, xml=plain_xml(name))
    copied = client.lookup(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE).replace(name, name + '-copy')
    copied = copied.split('<uuid>')[0] + copied.split('</uuid>')[1]
    try:
        first = run(client, xml=copied)
        assert first['changed'] and first['changes'] == ['domain %s-copy defined' % name]
        assert run(client, xml=copied)['changed'] is False
    finally:
        run(client, name=name + '-copy', state='absent')


@pytest.fixture
def base(name):
    """A 1 MiB qcow2 base volume in the test driver's pool; the volumes made from it go at the end."""
    conn = libvirt.open(URI)
    pool = conn.storagePoolLookupByName('default-pool')
    pool.createXML("<volume><name>%s-base.qcow2</name><capacity>1048576</capacity>"
                   "<target><format type='qcow2'/></target></volume>" % name, 0)
    yield '%s-base.qcow2' % name
    for volume in pool.listAllVolumes(0):
        if volume.name().startswith(name):
            volume.delete(0)
    conn.close()


def test_a_copy_of_a_base_volume_is_made_once(client, name, base):
    disks = [{'pool': 'default-pool', 'volume': '%s.qcow2' % name, 'format': 'qcow2', 'clone_volume': base}]
    params = dict(name=name, model={'disks': disks, 'networks': []})
    predicted = run(client, check=True, **params)
    assert client.called == []
    first = run(client, **params)
    expected = ['create volume %s.qcow2 in pool default-pool as a copy of volume %s in pool default-pool' % (name, base),
                'define domain %s' % name]
    assert predicted['actions'] == first['actions'] == expected
    assert client.called[0] == 'clone_volume'
    pool = client.conn.storagePoolLookupByName('default-pool')
    assert pool.storageVolLookupByName('%s.qcow2' % name).info()[1] == 1048576
    again = run(client, **params)
    assert (again['changed'], again['actions']) == (False, [])
    removed = run(client, name=name, state='absent', remove_storage=True)
    assert removed['actions'][-1] == 'delete volume %s.qcow2 in pool default-pool' % name
    assert pool.storageVolLookupByName(base)


def test_an_overlay_on_a_base_volume_states_its_backing_format(client, name, base):
    disks = [{'pool': 'default-pool', 'volume': '%s.qcow2' % name, 'backing_volume': base, 'size': '2M'}]
    params = dict(name=name, model={'disks': disks, 'networks': []})
    predicted = run(client, check=True, **params)
    first = run(client, **params)
    expected = ['create volume %s.qcow2 in pool default-pool as a qcow2 overlay on volume %s in pool default-pool'
                % (name, base), 'define domain %s' % name]
    assert predicted['actions'] == first['actions'] == expected
    assert '<driver name="qemu" type="qcow2"/>' in first['xml']
    volume = client.conn.storagePoolLookupByName('default-pool').storageVolLookupByName('%s.qcow2' % name)
    assert "<path>/default-pool/%s</path>" % base in volume.XMLDesc(0)
    assert "<format type='qcow2'/>" in volume.XMLDesc(0).split('<backingStore>')[1]
    assert volume.info()[1] == 2 * 1048576
    again = run(client, **params)
    assert (again['changed'], again['actions']) == (False, [])


def test_a_larger_size_grows_the_volume_and_a_smaller_one_warns(client, name, base):
    disks = [{'pool': 'default-pool', 'volume': base, 'format': 'qcow2'}]
    run(client, name=name, model={'disks': disks, 'networks': []})
    client.called[:] = []
    disks[0]['size'] = '3M'
    # The test driver cannot resize: check mode shows the plan (the integration target grows for real).
    grown = run(client, check=True, name=name, model={'disks': disks, 'networks': []})
    assert grown['actions'] == ['grow volume %s in pool default-pool from 1 MiB to 3 MiB' % base]
    assert grown['changed'] is True and client.called == []
    disks[0]['size'] = '512K'
    smaller = run(client, name=name, model={'disks': disks, 'networks': []})
    assert (smaller['changed'], smaller['actions']) == (False, [])
    assert smaller['warnings'] == ['disk vda: volume %s in pool default-pool is 1 MiB, larger than size 512 KiB;'
                                   ' it is left as it is (a volume is never shrunk)' % base]


def test_a_running_domain_s_qemu_grows_the_volume(client, name, base):
    disks = [{'pool': 'default-pool', 'volume': base, 'format': 'qcow2'}]
    run(client, name=name, state='running', model={'disks': disks, 'networks': []})
    client.called[:] = []
    disks[0]['size'] = '3M'
    # The test driver has no virDomainBlockResize: check mode shows the plan, the integration target runs it.
    result = run(client, check=True, name=name, state='running', model={'disks': disks, 'networks': []})
    assert result['actions'] == ['grow volume %s in pool default-pool from 1 MiB to 3 MiB (disk vda of the running'
                                 ' domain)' % base]
    assert client.called == []


@pytest.mark.parametrize('disk, message', [
    ({'backing_volume': 'missing.qcow2'}, 'base volume missing.qcow2 does not exist in pool default-pool'),
    ({'clone_volume': '{base}', 'size': '512K'}, 'smaller than the base'),
    ({'backing_volume': '{base}', 'format': 'raw'}, 'is a qcow2 volume'),
])
def test_a_bad_base_changes_nothing(client, name, base, disk, message):
    disk = dict((k, v.format(base=base)) for k, v in disk.items())
    disk.update(pool='default-pool', volume='%s-new.qcow2' % name)
    with pytest.raises(InvalidInput, match=message):
        run(client, name=name, model={'disks': [disk], 'networks': []})
    assert client.called == []
    assert client.lookup(name) is None


SEED_USER_DATA = '#cloud-config\nchpasswd:\n  users:\n    - {name: root, password: s3cr3t-unit, type: text}\n'


def test_a_cloud_init_seed_is_planned_without_showing_its_content(client, name):
    params = dict(name=name, model={'disks': [], 'networks': [],
                                    'cloud_init': {'user_data': SEED_USER_DATA, 'pool': 'default-pool'}})
    predicted = run(client, check=True, **params)
    assert client.called == []
    seed = predicted['cloud_init']
    assert (seed['pool'], seed['volume']) == ('default-pool', '%s-cidata.iso' % name)
    assert seed['sha256'].startswith('sha256:') and seed['size'] % 2048 == 0
    assert seed['files']['user-data'] == len(SEED_USER_DATA)
    assert predicted['actions'] == [
        'create volume %s-cidata.iso in pool default-pool for the cloud-init seed (%d bytes)' % (name, seed['size']),
        'write the cloud-init seed into volume %s-cidata.iso in pool default-pool (%s, %d bytes)'
        % (name, seed['sha256'], seed['size']),
        'define domain %s' % name]
    assert "<source pool=\"default-pool\" volume=\"%s-cidata.iso\"/>" % name in predicted['xml']
    assert 'device="cdrom"' in predicted['xml'] and '<readonly/>' in predicted['xml']
    assert 's3cr3t' not in repr(predicted) and 'chpasswd' not in repr(predicted)


def test_a_seed_that_cannot_be_written_is_deleted_again(client, name):
    # The test driver has no virStorageVolUpload: the real run fails there, and undoes the volume it made.
    params = dict(name=name, model={'disks': [], 'networks': [],
                                    'cloud_init': {'user_data': SEED_USER_DATA, 'pool': 'default-pool'}})
    recorder = ActionRecorder()
    full = dict((o.name, o.default) for o in MODULE_OPTIONS)
    full.update(params)
    with pytest.raises(LibvirtFailure, match='cannot write volume'):
        run_domain(full, client, recorder)
    assert client.called == ['create_volume', 'upload_volume', 'delete_volume']
    assert not recorder.changed and client.lookup(name) is None
    assert client.volume_xml('default-pool', '%s-cidata.iso' % name) is None
    assert SEED_USER_DATA in recorder.secrets


def test_an_overlay_on_an_image_file_in_no_pool(client, name, tmp_path):
    image = tmp_path / 'base.qcow2'
    image.write_bytes(b'QFI\xfb\x00\x00\x00\x03' + b'\x00' * 16 + (2 * 1048576).to_bytes(8, 'big') + b'\x00' * 480)
    disks = [{'pool': 'default-pool', 'volume': '%s.qcow2' % name, 'backing_volume': str(image)}]
    params = dict(name=name, model={'disks': disks, 'networks': []})
    predicted = run(client, check=True, **params)
    assert client.called == []
    first = run(client, **params)
    expected = ['create volume %s.qcow2 in pool default-pool as a qcow2 overlay on %s' % (name, image),
                'define domain %s' % name]
    assert predicted['actions'] == first['actions'] == expected
    volume = client.conn.storagePoolLookupByName('default-pool').storageVolLookupByName('%s.qcow2' % name)
    assert '<path>%s</path>' % image in volume.XMLDesc(0)
    assert "<format type='qcow2'/>" in volume.XMLDesc(0).split('<backingStore>')[1]
    assert volume.info()[1] == 2 * 1048576
    assert run(client, **params)['actions'] == []
    run(client, name=name, state='absent', remove_storage=True)


def test_a_base_path_in_a_pool_is_that_pool_s_volume(client, name, base):
    disks = [{'pool': 'default-pool', 'volume': '%s.qcow2' % name, 'format': 'qcow2',
              'clone_volume': '/default-pool/%s' % base}]
    result = run(client, check=True, name=name, model={'disks': disks, 'networks': []})
    assert result['actions'][0] == ('create volume %s.qcow2 in pool default-pool as a copy of volume %s in pool'
                                    ' default-pool' % (name, base))


@pytest.mark.parametrize('kind', ['backing_volume', 'clone_volume'])
def test_a_base_path_that_does_not_exist_changes_nothing(client, name, tmp_path, kind):
    disks = [{'pool': 'default-pool', 'volume': '%s.qcow2' % name, 'format': 'qcow2', kind: str(tmp_path / 'no.qcow2')}]
    with pytest.raises(InvalidInput, match='the base image %s does not exist' % (tmp_path / 'no.qcow2')):
        run(client, name=name, model={'disks': disks, 'networks': []})
    assert client.called == [] and client.lookup(name) is None
