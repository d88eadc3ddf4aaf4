# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""phyllome.os.domains' logic: defaults, validation, undeclared domains, results; the run on libvirt's test driver."""

from __future__ import annotations

import pytest

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput, LibvirtFailure
from ansible_collections.phyllome.os.plugins.module_utils._domain import domain_set
from ansible_collections.phyllome.os.plugins.module_utils._domain.options import argument_spec as domain_spec
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.domain_client import DomainClient

URI = 'test:///default'
SPEC = domain_set.argument_spec({'uri': {'type': 'str', 'default': URI}})


def module_params(**params):
    """The parameters as AnsibleModule hands them to the module (items' left-out options are None)."""
    result = ArgumentSpecValidator(SPEC).validate(params)
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


# --- the argument spec ---------------------------------------------------------

def test_item_spec_is_the_domain_spec_without_defaults():
    full, items = domain_spec(), domain_set.item_argument_spec()

    def walk(full, items):
        assert set(full) == set(items)
        for name, option in full.items():
            assert 'default' not in items[name]
            assert dict((k, v) for k, v in option.items() if k not in ('default', 'options')) == \
                dict((k, v) for k, v in items[name].items() if k != 'options')
            if 'options' in option:
                walk(option['options'], items[name]['options'])
    walk(full, items)
    assert full['state']['default'] == 'present' and full['model']['options']['vcpus']['default'] == 2


# --- defaults --------------------------------------------------------------------

@pytest.mark.parametrize('defaults, item, merged', [
    ({'state': 'running'}, {'name': 'a', 'state': None}, {'name': 'a', 'state': 'running'}),
    ({'state': 'running'}, {'name': 'a', 'state': 'shutdown'}, {'name': 'a', 'state': 'shutdown'}),
    # dictionaries merge key by key, at every depth
    ({'model': {'os': 'windows', 'cpu': {'threads': 2}}}, {'name': 'a', 'model': {'memory': '8G', 'cpu': {'cores': 2}}},
     {'name': 'a', 'model': {'os': 'windows', 'memory': '8G', 'cpu': {'threads': 2, 'cores': 2}}}),
    # lists are replaced whole
    ({'model': {'disks': [{'path': '/a'}]}}, {'name': 'a', 'model': {'disks': [{'path': '/b', 'size': None}]}},
     {'name': 'a', 'model': {'disks': [{'path': '/b'}]}}),
    ({'model': {'networks': [{'type': 'user'}]}}, {'name': 'a', 'model': {'networks': []}},
     {'name': 'a', 'model': {'networks': []}}),
    # an item with xml takes no model from the defaults
    ({'model': {'os': 'linux'}, 'autostart': True}, {'xml': '<domain/>', 'model': None},
     {'xml': '<domain/>', 'autostart': True}),
    # an item with neither only names a domain: no model from the defaults either
    ({'model': {'os': 'linux'}, 'state': 'running'}, {'name': 'a'}, {'name': 'a', 'state': 'running'}),
    ({'model': {'os': 'linux'}}, {'name': 'a', 'model': {}}, {'name': 'a', 'model': {'os': 'linux'}}),
])
def test_merge_defaults(defaults, item, merged):
    before = repr(defaults)
    assert domain_set.merge_defaults(defaults, item) == merged
    assert repr(defaults) == before


def test_validate_fills_domain_defaults_under_the_lists():
    params = module_params(domains=[{'name': 'a', 'model': {'memory': 512}}, {'name': 'b', 'state': 'shutdown'}],
                           defaults={'state': 'running', 'model': {'vcpus': 4}})
    (i0, label0, name0, a), (i1, label1, name1, b) = domain_set.validate(params)
    assert (i0, label0, name0, i1, label1) == (0, 'domains[0] (a)', 'a', 1, 'domains[1] (b)')
    assert a['state'] == 'running' and a['model']['vcpus'] == 4 and a['model']['memory'] == 512
    assert a['model']['os'] == 'linux' and a['apply'] == 'live' and a['shutdown_timeout'] == 120
    assert b['state'] == 'shutdown' and b['model'] is None


def test_validate_names_the_item_from_its_xml():
    params = module_params(domains=[{'xml': '<domain><name>web</name></domain>'}])
    assert domain_set.validate(params)[0][1:3] == ('domains[0] (web)', 'web')


@pytest.mark.parametrize('params, messages', [
    ({'domains': [{'name': 'a'}, {'name': 'b', 'model': {}, 'xml': '<domain/>'}]},
     ['1 of 2 items are invalid, nothing was changed', 'domains[1] (b): parameters are mutually exclusive: model|xml']),
    ({'domains': [{'name': 'a'}, {'name': 'a'}]}, ['domains[1] (a): domain a is also domains[0] (a)']),
    ({'domains': [{'xml': '<domain>'}]}, ['domains[0]: xml is not well-formed XML']),
    ({'domains': [{'xml': '<domain/>'}]}, ['domains[0]: xml has no <name>: give name']),
    ({'domains': [{}]}, ['domains[0]: one of the following is required: name, xml']),
    ({'domains': [{'name': 'a'}], 'defaults': {'name': 'x'}},
     ['defaults: name cannot have a default']),
    ({'domains': [{'name': 'a'}], 'defaults': {'bogus': 1}}, ['defaults: ', 'bogus']),
    ({'domains': [{'name': 'a'}], 'defaults': {'state': 'gone'}}, ['defaults: value of state must be one of']),
    ({'domains': [{'name': 'a', 'model': {}}], 'defaults': {'model': {'vcpus': 'many'}}},
     ["defaults: argument 'vcpus' is of type", "found in 'model'"]),  # 2.17: type <class 'str'>
])
def test_bad_items_are_named(params, messages):
    with pytest.raises(InvalidInput) as exc:
        domain_set.validate(module_params(**params))
    for message in messages:
        assert message in exc.value.msg


def test_defaults_model_does_not_collide_with_an_xml_item():
    params = module_params(domains=[{'xml': '<domain><name>x</name></domain>'}], defaults={'model': {'os': 'linux'}})
    assert domain_set.validate(params)[0][3]['model'] is None


# --- undeclared domains, statuses, summary ------------------------------------------

HOST = [('web', True, True), ('old', False, True), ('busy', True, True), ('temp', True, False)]


@pytest.mark.parametrize('mode, defaults, planned', [
    ('ignore', {}, []),
    ('report', {}, [('busy', 'report'), ('old', 'report'), ('temp', 'report')]),
    ('remove', {}, [('busy', 'keep running'), ('old', 'remove'), ('temp', 'keep transient')]),
    ('remove', {'force': True}, [('busy', 'remove'), ('old', 'remove'), ('temp', 'keep transient')]),
])
def test_plan_undeclared(mode, defaults, planned):
    assert domain_set.plan_undeclared(mode, HOST, {'web'}, defaults) == planned


def test_removal_params_take_how_from_defaults():
    defaults = {'force': True, 'shutdown_timeout': 5, 'state': 'running', 'model': {'memory': 1}}
    params = domain_set.removal_params('old', defaults)
    assert params['state'] == 'absent' and params['force'] and params['shutdown_timeout'] == 5
    assert params['model'] is None and not params['remove_storage']


class Recorded:
    def __init__(self, changed, actions=()):
        self.changed = changed
        self.actions = list(actions)


@pytest.mark.parametrize('before, removing, changed, status', [
    ('', False, True, 'created'),
    ('<domain/>', False, True, 'updated'),
    ('<domain/>', True, True, 'removed'),
    ('<domain/>', False, False, 'unchanged'),
    ('', True, False, 'unchanged'),
])
def test_item_status(before, removing, changed, status):
    assert domain_set.item_status({'diff': {'before': before}}, removing, Recorded(changed)) == status


def test_summarize():
    results = [{'name': 'a', 'index': 0, 'status': 'created', 'restart_required': False},
               {'name': 'b', 'index': 1, 'status': 'updated', 'restart_required': True},
               {'name': 'c', 'index': 2, 'status': 'unchanged', 'restart_required': False},
               {'name': 'd', 'index': None, 'status': 'removed'},
               {'name': 'e', 'index': None, 'status': 'undeclared'},
               {'name': 'f', 'index': 3, 'status': 'failed'},
               {'name': 'g', 'index': 4, 'status': 'not attempted'}]
    assert domain_set.summarize(results) == {
        'created': ['a'], 'updated': ['b'], 'removed': ['d'], 'unchanged': ['c'], 'undeclared': ['e'],
        'restart_required': ['b'], 'failed_domains': ['f'], 'not_attempted': ['g']}


# --- the run, on libvirt's test driver -------------------------------------------------

libvirt = pytest.importorskip('libvirt')


class FailingStart(DomainClient):
    """A client whose start of one domain fails as libvirt would (the integration test fails QEMU for real)."""

    def __init__(self, conn, uri, fail):
        super().__init__(conn, uri)
        self.fail = fail

    def start(self, dom, paused=False):
        if dom.name() == self.fail:
            raise LibvirtFailure('cannot start domain %s: planted failure' % dom.name())
        return super().start(dom, paused)


@pytest.fixture
def prefix(test_driver_prefix):
    return test_driver_prefix


def converge(check=False, client=None, diff=False, **params):
    params = module_params(**params)
    recorders = domain_set.RecorderSet(check_mode=check)
    owned = client is None
    client = client or DomainClient.connect(URI)
    try:
        result = domain_set.run_domains(params, client, recorders, diff=diff)
    finally:
        if owned:
            client.close()
    return result, recorders


def xml_item(name, memory=128):
    return {'xml': "<domain type='test'><name>%s</name><memory unit='MiB'>%d</memory><os><type>hvm</type></os>"
                   "</domain>" % (name, memory)}


def items(prefix, memory=128):
    return [{'name': prefix + '-m', 'model': {'memory': 256, 'networks': [{'type': 'user'}]}, 'state': 'running'},
            xml_item(prefix + '-x', memory)]


def test_check_mode_then_real_run_then_nothing_to_do(prefix):
    planned, recorders = converge(check=True, domains=items(prefix))
    assert recorders.changed and planned['created'] == [prefix + '-m', prefix + '-x']
    assert libvirt.open(URI).listDefinedDomains().count(prefix + '-m') == 0
    real, recorders = converge(domains=items(prefix))
    assert [r['actions'] for r in real['results']] == [r['actions'] for r in planned['results']]
    assert recorders.actions == ['define domain %s-m' % prefix, 'start domain %s-m' % prefix,
                                 'define domain %s-x' % prefix]
    again, recorders = converge(domains=items(prefix), diff=True)
    assert not recorders.changed and again['unchanged'] == [prefix + '-m', prefix + '-x']
    assert again['diff'] == [] and again['results'][0]['state'] == 'running'
    changed, recorders = converge(domains=items(prefix, memory=256), diff=True)
    assert changed['updated'] == [prefix + '-x'] and changed['unchanged'] == [prefix + '-m']
    (diff,) = changed['diff']
    assert diff['before_header'] == '%s-x (stored definition)' % prefix


def test_an_item_that_cannot_be_planned_changes_nothing(prefix):
    bad = {'name': prefix + '-bad', 'model': {'disks': [{'path': '/nonexistent/disk.img'}]}}
    with pytest.raises(InvalidInput) as exc:
        converge(domains=items(prefix) + [bad])
    assert 'domains[2] (%s-bad): disk vda: /nonexistent/disk.img does not exist' % prefix in exc.value.msg
    assert 'nothing was changed' in exc.value.msg
    names = [d.name() for d in libvirt.open(URI).listAllDomains(0)]
    assert not [n for n in names if n.startswith(prefix)]


def test_a_failure_midway_says_what_was_done_and_what_was_not(prefix):
    conn = libvirt.open(URI)
    domains = [xml_item(prefix + '-a'), dict(xml_item(prefix + '-b'), state='running'), xml_item(prefix + '-c')]
    with pytest.raises(LibvirtFailure) as exc:
        converge(domains=domains, client=FailingStart(conn, URI, prefix + '-b'))
    error = exc.value
    assert error.msg.startswith('domains[1] (%s-b) failed: cannot start domain %s-b: planted failure' % (prefix, prefix))
    assert 'Done before it: %s-a' % prefix in error.msg and 'Not attempted: %s-c' % prefix in error.msg
    statuses = [(r['name'], r['status']) for r in error.details['results']]
    assert statuses == [(prefix + '-a', 'created'), (prefix + '-b', 'failed'), (prefix + '-c', 'not attempted')]
    assert error.details['results'][1]['actions'] == ['define domain %s-b' % prefix, 'start domain %s-b' % prefix]
    assert error.details['results'][2]['planned_actions'] == ['define domain %s-c' % prefix]
    assert error.details['created'] == [prefix + '-a'] and error.details['not_attempted'] == [prefix + '-c']
    assert error.details['failed_domains'] == [prefix + '-b']


def test_undeclared_report_and_remove(prefix):
    converge(domains=items(prefix) + [xml_item(prefix + '-gone')])
    keep = items(prefix)
    reported, recorders = converge(domains=keep, undeclared='report')
    assert not recorders.changed
    assert prefix + '-gone' in reported['undeclared'] and 'test' in reported['undeclared']
    # the test driver's own running domain 'test' stays: no force
    planned, recorders = converge(check=True, domains=keep, undeclared='remove')
    assert planned['removed'] == [prefix + '-gone'] and 'test' in planned['undeclared']
    assert any(r['name'] == 'test' and 'running' in r['note'] for r in planned['results'])
    removed, recorders = converge(domains=keep, undeclared='remove')
    assert removed['removed'] == [prefix + '-gone'] and recorders.actions[-1].startswith(
        'undefine domain %s-gone' % prefix)
    assert prefix + '-gone' not in [d.name() for d in libvirt.open(URI).listAllDomains(0)]
    again, recorders = converge(domains=keep, undeclared='remove')
    assert not recorders.changed and again['removed'] == []


def test_absent_items(prefix):
    converge(domains=[xml_item(prefix + '-a')])
    result, recorders = converge(domains=[{'name': prefix + '-a', 'state': 'absent'},
                                          {'name': prefix + '-never', 'state': 'absent'}])
    assert result['removed'] == [prefix + '-a'] and result['unchanged'] == [prefix + '-never']


def test_each_domain_keeps_its_warnings(prefix):
    """What libvirt did not keep (run_domain's warnings) stays with its domain for the module to say."""
    def run(params, client, recorder):
        result = domain_set.run_domain(params, client, recorder)
        if not recorder.check_mode and recorder.changed:
            result['warnings'].append('libvirt did not store %s as given' % result['name'])
        return result

    params = module_params(domains=items(prefix))
    recorders = domain_set.RecorderSet(check_mode=False)
    client = DomainClient.connect(URI)
    try:
        result = domain_set.run_domains(params, client, recorders, run=run)
    finally:
        client.close()
    assert [r['warnings'] for r in result['results']] == [
        ['libvirt did not store %s-m as given' % prefix], ['libvirt did not store %s-x as given' % prefix]]
