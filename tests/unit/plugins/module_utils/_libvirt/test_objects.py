# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Networks and storage pools: subset comparison, plans, and converge() on libvirt's test driver."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common.actions import ActionRecorder
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput
from ansible_collections.phyllome.os.plugins.module_utils._libvirt import objects

# What libvirt 9.0 stored for the NAT network below (virsh net-dumpxml --inactive).
STORED_DEFAULT = '''<network>
  <name>default</name>
  <uuid>7d6c4f1a-7a43-4cf7-9a1f-52f8c1f9b0e0</uuid>
  <forward mode='nat'>
    <nat>
      <port start='1024' end='65535'/>
    </nat>
  </forward>
  <bridge name='virbr0' stp='on' delay='0'/>
  <mac address='52:54:00:0e:91:2c'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
    </dhcp>
  </ip>
</network>'''

WANTED_DEFAULT = '''<network>
  <name>default</name>
  <forward mode='nat'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
    </dhcp>
  </ip>
</network>'''


def parse(text):
    return ET.fromstring(text)


@pytest.mark.parametrize('wanted, expected', [
    (WANTED_DEFAULT, []),
    (WANTED_DEFAULT.replace(".254'/>", ".100'/>"),
     [("/network/ip[@address='192.168.122.1']/dhcp/range[@start='192.168.122.2']/@end", '192.168.122.100', '192.168.122.254')]),
    (WANTED_DEFAULT.replace("mode='nat'", "mode='route'"), [('/network/forward[@mode=\'route\']/@mode', 'route', 'nat')]),
    ("<network><name>default</name><domain name='lab'/></network>",
     [("/network/domain[@name='lab']", "<domain name=\"lab\" />", None)]),
], ids=['same', 'dhcp-range', 'forward-mode', 'missing-element'])
def test_differences_are_a_subset_comparison(wanted, expected):
    assert objects.differences(parse(wanted), parse(STORED_DEFAULT)) == expected


def test_repeated_children_pair_with_any_stored_one():
    stored = parse("<network><name>n</name><ip address='10.0.0.1'/><ip family='ipv6' address='fd00::1'/></network>")
    wanted = parse("<network><name>n</name><ip family='ipv6' address='fd00::1'/><ip address='10.0.0.1'/></network>")
    assert objects.differences(wanted, stored) == []


def test_a_redefinition_keeps_what_libvirt_filled_in():
    merged = parse(objects.merged_definition('network', parse(WANTED_DEFAULT), parse(STORED_DEFAULT)))
    assert merged.findtext('uuid') == '7d6c4f1a-7a43-4cf7-9a1f-52f8c1f9b0e0'
    assert merged.find('mac').get('address') == '52:54:00:0e:91:2c'
    assert merged.find('bridge').get('name') == 'virbr0'
    # and the merge compares equal to what it came from
    assert objects.differences(merged, parse(STORED_DEFAULT)) == []


@pytest.mark.parametrize('text, message', [
    ('<network>', 'not well-formed'),
    ('<pool/>', 'must have <network> as its root element'),
    ('<network><name>other</name></network>', "names the network 'other'"),
])
def test_bad_definitions_are_refused(text, message):
    with pytest.raises(InvalidInput, match=message):
        objects.parse_definition('network', text, 'default')


def test_a_definition_without_name_gets_it():
    assert objects.parse_definition('pool', "<pool type='dir'><target><path>/x</path></target></pool>", 'p')[0].text == 'p'


CURRENT = {'xml': parse(STORED_DEFAULT), 'active': True, 'autostart': False}


@pytest.mark.parametrize('wanted, current, kwargs, steps', [
    (WANTED_DEFAULT, None, {'active': True, 'autostart': True}, ['define', 'start', 'autostart']),
    (WANTED_DEFAULT, CURRENT, {'active': True, 'autostart': True}, ['autostart']),
    (WANTED_DEFAULT, CURRENT, {}, []),
    (None, CURRENT, {'active': False, 'autostart': False}, ['stop']),
    (WANTED_DEFAULT.replace(".254'/>", ".9'/>"), CURRENT, {'active': True}, ['define']),
    (None, CURRENT, {'state': 'absent'}, ['stop', 'undefine']),
    (None, None, {'state': 'absent'}, []),
], ids=['create', 'autostart-only', 'nothing', 'stop', 'redefine', 'remove', 'remove-missing'])
def test_plans(wanted, current, kwargs, steps):
    wanted = parse(wanted) if wanted else None
    assert [s for s, _d in objects.plan('network', 'default', wanted, current, **kwargs)] == steps


def test_a_missing_object_needs_its_xml():
    with pytest.raises(InvalidInput, match='does not exist; give its xml'):
        objects.plan('pool', 'isos', None, None, active=True)


# ---------------------------------------------------------------- libvirt's test driver

@pytest.fixture
def conn():
    libvirt = pytest.importorskip('libvirt')
    # test:///default keeps its state only while this connection is open
    connection = libvirt.open('test:///default')
    yield connection
    connection.close()


NET = '''<network><name>lab</name><forward mode='nat'/>
  <ip address='192.168.150.1' netmask='255.255.255.0'><dhcp><range start='192.168.150.2' end='192.168.150.254'/></dhcp></ip>
</network>'''


def converge(conn, kind, name, xml, check_mode=False, **kwargs):
    recorder = ActionRecorder(check_mode=check_mode)
    result = objects.converge(objects.ObjectClient(conn, kind), name, xml, recorder, **kwargs)
    return recorder, result


def test_a_network_is_created_then_left_alone(conn):
    predicted, _result = converge(conn, 'network', 'lab', NET, check_mode=True, active=True, autostart=True)
    assert conn.listAllNetworks() and 'lab' not in [n.name() for n in conn.listAllNetworks()]
    done, result = converge(conn, 'network', 'lab', NET, active=True, autostart=True)
    assert done.actions == predicted.actions == ['define network lab', 'start network lab', 'autostart network lab']
    assert (result['active'], result['autostart'], result['restart_required']) == (True, True, False)
    net = conn.networkLookupByName('lab')
    assert net.isActive() and net.autostart()
    again, result = converge(conn, 'network', 'lab', NET, active=True, autostart=True)
    assert again.actions == [] and not again.changed and result['differences'] == []


def test_a_changed_definition_is_redefined_and_keeps_its_uuid(conn):
    converge(conn, 'network', 'lab', NET, active=False)
    uuid = conn.networkLookupByName('lab').UUIDString()
    changed = NET.replace(".254'/>", ".100'/>")
    predicted, _result = converge(conn, 'network', 'lab', changed, check_mode=True)
    assert '.254' in conn.networkLookupByName('lab').XMLDesc(0)
    done, result = converge(conn, 'network', 'lab', changed)
    assert done.actions == predicted.actions and done.actions[0].startswith('redefine network lab (')
    assert result['restart_required'] is False
    assert result['differences'][0]['wanted'] == '192.168.150.100'
    assert conn.networkLookupByName('lab').UUIDString() == uuid
    again, _result = converge(conn, 'network', 'lab', changed)
    assert again.actions == []


def test_redefining_an_active_network_asks_for_a_restart(conn):
    # (the test driver shows an active network's running definition only, so
    # the second run is checked on a real libvirtd by the lab's host role test)
    converge(conn, 'network', 'lab', NET, active=True)
    done, result = converge(conn, 'network', 'lab', NET.replace(".254'/>", ".100'/>"), active=True)
    assert done.actions[0].startswith('redefine network lab (') and len(done.actions) == 1
    assert result['restart_required'] is True and result['active'] is True


def test_a_network_is_removed(conn):
    converge(conn, 'network', 'lab', NET, active=True)
    done, result = converge(conn, 'network', 'lab', None, state='absent')
    assert done.actions == ['stop network lab', 'undefine network lab'] and result['exists'] is False
    assert 'lab' not in [n.name() for n in conn.listAllNetworks()]
    again, _result = converge(conn, 'network', 'lab', None, state='absent')
    assert again.actions == []


def test_a_dir_pool_is_defined_built_started_and_left_alone(conn, tmp_path):
    pool_xml = "<pool type='dir'><name>isos</name><target><path>%s</path></target></pool>" % (tmp_path / 'isos')
    done, result = converge(conn, 'pool', 'isos', pool_xml, active=True, autostart=True, build=True)
    assert done.actions == ['define storage pool isos', 'build storage pool isos', 'start storage pool isos',
                            'autostart storage pool isos']
    pool = conn.storagePoolLookupByName('isos')
    assert pool.isActive() and pool.autostart() and result['active'] and result['autostart']
    again, _result = converge(conn, 'pool', 'isos', pool_xml, active=True, autostart=True)
    assert again.actions == []
    moved, result = converge(conn, 'pool', 'isos', pool_xml.replace('/isos<', '/moved<'), active=True)
    assert moved.actions[0].startswith('redefine storage pool isos') and result['restart_required']
