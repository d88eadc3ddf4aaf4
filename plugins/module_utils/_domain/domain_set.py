# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""phyllome.os.domains: a list of domains converged on one connection, as phyllome.os.domain does one.

Each item takes the options of phyllome.os.domain (options.py's table), with
the list's `defaults` merged under it. The flow:

1. validate every item (the table's argument spec, after the merge) and the
   names (no two items for one domain);
2. plan every item with run_domain() in check mode, and the domains the list
   does not name (`undeclared`): any item that fails here fails the task
   before anything changed;
3. apply, in order, only the items whose plan has actions (a no-op item
   costs one read-only pass), then the removal of undeclared domains; the
   first failure stops there and the failure reports, per domain, what was
   done and what was not.

Everything here is plain functions on dicts and a DomainClient; run_domain
does the work for one domain.
"""

from __future__ import annotations

import copy

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.phyllome.os.plugins.module_utils._common.actions import ActionRecorder
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput, PhyllomeError
from ansible_collections.phyllome.os.plugins.module_utils._domain.manager import run_domain
from ansible_collections.phyllome.os.plugins.module_utils._domain.options import (
    MUTUALLY_EXCLUSIVE,
    REQUIRED_ONE_OF,
    argument_spec as domain_argument_spec,
)
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import parse_domain, text_of

UNDECLARED = ('ignore', 'report', 'remove')
# Options of an item that `defaults` cannot give: they say which domain it is.
ITEM_ONLY = ('name', 'xml')
# Result statuses, and the summary list each one goes to.
SUMMARY = (('created', 'created'), ('updated', 'updated'), ('removed', 'removed'), ('unchanged', 'unchanged'))


# --- the argument spec -------------------------------------------------------

def without_defaults(spec):
    """A copy of an argument spec without defaults, recursively.

    An item's option left out must stay None, so that the list's `defaults`
    (and then phyllome.os.domain's own defaults) can fill it after parsing.
    """
    result = {}
    for name, option in spec.items():
        option = dict((k, v) for k, v in option.items() if k != 'default')
        if 'options' in option:
            option['options'] = without_defaults(option['options'])
        result[name] = option
    return result


def item_argument_spec():
    """The spec of one item of `domains`: phyllome.os.domain's options, without their defaults."""
    return without_defaults(domain_argument_spec())


def argument_spec(common=None):
    """The module's argument spec: `common` (the uri option), the list, its defaults and `undeclared`."""
    spec = dict(common or {})
    spec.update({
        'domains': {'type': 'list', 'elements': 'dict', 'required': True, 'options': item_argument_spec()},
        # Checked against the items' spec by validate(), naming `defaults`.
        'defaults': {'type': 'dict'},
        'undeclared': {'type': 'str', 'default': 'ignore', 'choices': list(UNDECLARED)},
    })
    return spec


# --- validation and defaults ---------------------------------------------------

def merge_defaults(defaults, item):
    """The item over the list's defaults (a new dict, without the options left out).

    An option the item leaves out (None) comes from `defaults`; dictionaries
    (model, model.cpu, model.graphics...) merge key by key; lists and other
    values are replaced whole. The defaults' model goes only under an
    item's own model: an item with xml says what the domain is another way,
    and an item with neither only names an existing domain (its power
    state, autostart, removal), as in phyllome.os.domain.
    """
    merged = _merge(_given(defaults or {}), _given(item))
    if item.get('model') is None:
        merged.pop('model', None)
    return merged


def _given(value):
    """`value` without the options left out (None), recursively, so that defaults can fill them."""
    if isinstance(value, dict):
        return dict((k, _given(v)) for k, v in value.items() if v is not None)
    if isinstance(value, list):
        return [_given(v) for v in value]
    return value


def _merge(base, over):
    result = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _validate_item(index, merged, validator):
    """(problems, label, name, phyllome.os.domain's parameters) of one merged item."""
    result = validator.validate(merged)
    name = result.validated_parameters.get('name')
    if not name and isinstance(merged.get('xml'), str):
        try:
            name = text_of(parse_domain(merged['xml'], 'xml'), 'name')
        except InvalidInput as exc:
            return [exc.msg], item_label(index, None), None, None
    label = item_label(index, name)
    if result.error_messages:
        return list(result.error_messages), label, name, None
    if not name:
        return ['xml has no <name>: give name'], label, None, None
    return [], label, name, result.validated_parameters


def item_label(index, name):
    """How messages name an item: domains[3] (web1)."""
    return 'domains[%d] (%s)' % (index, name) if name else 'domains[%d]' % index


def _validator(spec):
    return ArgumentSpecValidator(spec, mutually_exclusive=MUTUALLY_EXCLUSIVE, required_one_of=REQUIRED_ONE_OF)


def validate(params):
    """Every item as phyllome.os.domain's parameters, with the list's defaults merged.

    Raises InvalidInput naming every bad item (and `defaults`) before
    anything is read from libvirt.
    Returns [(index, label, name, params)].
    """
    errors = []
    defaults = params.get('defaults') or {}
    given = sorted(k for k in ITEM_ONLY if k in defaults)
    if given:
        errors.append('defaults: %s cannot have a default (it says which domain an item is)' % ', '.join(given))
    else:
        unchecked = dict((k, v) for k, v in item_argument_spec().items() if k not in ITEM_ONLY)
        result = ArgumentSpecValidator(unchecked).validate(copy.deepcopy(defaults))
        errors.extend('defaults: %s' % msg for msg in result.error_messages)
    if errors:
        raise InvalidInput('; '.join(errors))
    validator = _validator(domain_argument_spec())
    items = []
    seen = {}
    bad = 0
    for index, item in enumerate(params['domains']):
        problems, label, name, values = _validate_item(index, merge_defaults(defaults, item), validator)
        if not problems and name in seen:
            problems = ['domain %s is also %s' % (name, item_label(seen[name], name))]
        if problems:
            bad += 1
            errors.extend('%s: %s' % (label, msg) for msg in problems)
            continue
        seen[name] = index
        items.append((index, label, name, values))
    if errors:
        raise InvalidInput('%d of %d items are invalid, nothing was changed: %s'
                           % (bad, len(params['domains']), '; '.join(errors)), errors=errors)
    return items


# --- the run -------------------------------------------------------------------

class RecorderSet:
    """The recorders of one task, one per domain, seen as one (what module_glue reads).

    changed and actions come from the recorders whose results are reported
    (the real run's, or the plan's when nothing was to be done or in check
    mode); secrets from every recorder.
    """

    def __init__(self, check_mode=False):
        self.check_mode = check_mode
        self.reported = []
        self._all = []

    def new(self, check_mode):
        recorder = ActionRecorder(check_mode=check_mode)
        self._all.append(recorder)
        return recorder

    def report(self, recorder):
        self.reported.append(recorder)

    @property
    def changed(self):
        return any(r.changed for r in self.reported)

    @property
    def actions(self):
        return [action for r in self.reported for action in r.actions]

    @property
    def secrets(self):
        found = set()
        for recorder in self._all:
            found.update(recorder.secrets)
        return found


def removal_params(name, defaults):
    """phyllome.os.domain's parameters that remove an undeclared domain, as `defaults` say how."""
    defaults = defaults or {}
    params = {'name': name, 'state': 'absent'}
    for key in ('shutdown_timeout', 'force', 'remove_storage'):
        if defaults.get(key) is not None:
            params[key] = defaults[key]
    result = _validator(domain_argument_spec()).validate(params)
    return result.validated_parameters


def plan_undeclared(mode, host_domains, declared, defaults):
    """What to do with the domains on the host that no item names.

    host_domains: [(name, active, persistent)]. Returns [(name, action)]
    with action 'report', 'remove', or 'keep running' (a running domain that
    `remove` leaves alone without defaults' force) / 'keep transient' (a
    transient domain has no definition to remove).
    """
    if mode == 'ignore':
        return []
    force = bool((defaults or {}).get('force'))
    planned = []
    for name, active, persistent in sorted(host_domains):
        if name in declared:
            continue
        if mode == 'report':
            planned.append((name, 'report'))
        elif not persistent:
            planned.append((name, 'keep transient'))
        elif active and not force:
            planned.append((name, 'keep running'))
        else:
            planned.append((name, 'remove'))
    return planned


def item_status(result, removing, recorder):
    """created, updated, removed or unchanged, from one run_domain result and its recorder."""
    if not recorder.changed:
        return 'unchanged'
    if removing:
        return 'removed'
    # No stored definition before: the domain is new.
    return 'created' if result['diff']['before'] == '' else 'updated'


def item_result(result, status, recorder, index=None, diff=False):
    """One entry of `results`: what happened to one domain (its XML is not repeated)."""
    entry = {
        'name': result['name'],
        'index': index,
        'status': status,
        'changed': recorder.changed,
        'state': result['state'],
        'uuid': result['uuid'],
        'restart_required': result['restart_required'],
        'cloud_init': result.get('cloud_init'),
        'changes': result['changes'],
        'differences': list(result.get('differences') or []),
        'actions': list(recorder.actions),
        # What libvirt did not keep as asked (domain's intent record); the
        # module turns these into Ansible warnings.
        'warnings': list(result.get('warnings') or []),
    }
    if diff:
        entry['diff'] = result['diff']
        if result.get('live_diff'):
            entry['live_diff'] = result['live_diff']
    return entry


def summarize(results):
    """The summary lists: names by status, and the domains that need a restart."""
    summary = dict((key, [r['name'] for r in results if r['status'] == status]) for status, key in SUMMARY)
    summary['undeclared'] = [r['name'] for r in results if r['index'] is None and r['status'] != 'removed']
    summary['restart_required'] = [r['name'] for r in results if r.get('restart_required')]
    summary['failed_domains'] = [r['name'] for r in results if r['status'] == 'failed']
    summary['not_attempted'] = [r['name'] for r in results if r['status'] == 'not attempted']
    return summary


def run_domains(params, client, recorders, diff=False, run=run_domain):
    """Converge every item of params['domains']; return the module result (without changed and actions).

    recorders: a RecorderSet. diff: whether results carry each domain's diff.
    """
    items = validate(params)
    check_mode = recorders.check_mode
    # 1. plan everything; nothing changes unless every item can be done.
    plans = []
    errors = []
    for index, label, _name, item in items:
        recorder = recorders.new(check_mode=True)
        try:
            plans.append((index, label, item, run(item, client, recorder), recorder))
        except PhyllomeError as exc:
            errors.append('%s: %s' % (label, exc.msg))
    undeclared = plan_undeclared(params['undeclared'], _host_domains(client, params['undeclared']),
                                 set(name for _index, _label, name, _item in items), params.get('defaults'))
    removals = []
    for name, action in undeclared:
        if action != 'remove':
            continue
        item = removal_params(name, params.get('defaults'))
        recorder = recorders.new(check_mode=True)
        try:
            removals.append((None, 'undeclared domain %s' % name, item, run(item, client, recorder), recorder))
        except PhyllomeError as exc:
            errors.append('undeclared domain %s: %s' % (name, exc.msg))
    if errors:
        raise InvalidInput('%d of %d domains cannot be converged, nothing was changed: %s'
                           % (len(errors), len(plans) + len(removals) + len(errors), '; '.join(errors)),
                           errors=errors)

    # 2. apply what the plans say, in order; stop at the first failure.
    results = []
    todo = plans + removals
    for done, (index, label, item, planned, plan_recorder) in enumerate(todo):
        removing = item['state'] == 'absent'
        if check_mode or not plan_recorder.actions:
            recorders.report(plan_recorder)
            results.append(item_result(planned, item_status(planned, removing, plan_recorder), plan_recorder,
                                       index, diff))
            continue
        recorder = recorders.new(check_mode=False)
        recorders.report(recorder)
        try:
            applied = run(item, client, recorder)
        except PhyllomeError as exc:
            failed = {'name': planned['name'], 'index': index, 'status': 'failed', 'changed': recorder.changed,
                      'msg': exc.msg, 'actions': list(recorder.actions)}
            rest = [_not_attempted(i, p, r) for i, _l, _item, p, r in todo[done + 1:]]
            _fail_midway(exc, label, results, failed, rest, undeclared)
        results.append(item_result(applied, item_status(applied, removing, recorder), recorder, index, diff))

    for name, action in undeclared:
        if action != 'remove':
            results.append({'name': name, 'index': None, 'status': 'undeclared', 'changed': False,
                            'actions': [], 'note': _UNDECLARED_NOTES[action]})
    return _module_result(results, undeclared)


_UNDECLARED_NOTES = {
    'report': 'not in the list; left alone (undeclared: report)',
    'keep running': 'not in the list, running: not removed without force in defaults',
    'keep transient': 'not in the list, transient (no definition to remove): left alone',
}


def _host_domains(client, mode):
    if mode == 'ignore':
        return []
    return [(client.name(dom), client.is_active(dom), client.is_persistent(dom)) for dom in client.list_domains()]


def _not_attempted(index, planned, recorder):
    return {'name': planned['name'], 'index': index, 'status': 'not attempted', 'changed': False,
            'actions': [], 'planned_actions': list(recorder.actions)}


def _fail_midway(exc, label, results, failed, rest, undeclared):
    """Re-raise `exc` with what was done, what failed and what was not attempted."""
    everything = results + [failed] + rest
    done = [r['name'] for r in results if r['changed']]
    exc.msg = ('%s failed: %s. Done before it: %s. Not attempted: %s.'
               % (label, exc.msg, ', '.join(done) or 'nothing changed',
                  ', '.join(r['name'] for r in rest) or 'none'))
    exc.details = dict(exc.details, **_module_result(everything, undeclared))
    exc.details.pop('diff', None)
    raise exc


def _module_result(results, undeclared):
    result = {'results': results}
    result.update(summarize(results))
    result['diff'] = []
    for r in results:
        if r.get('diff') is not None and r['changed']:
            result['diff'].append(r['diff'])
            if r.get('live_diff'):
                result['diff'].append(r.pop('live_diff'))
    return result
