# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt networks and storage pools: compare a wanted definition with the stored one, plan, apply.

Both kinds have the same life: defined (persistent XML), active, autostart.
The wanted XML is compared with libvirt's stored (inactive) XML as a
subset: what the user wrote must be there, what libvirt fills in (uuid,
MAC, bridge name, pool capacity...) is not a difference. A redefinition
keeps those filled-in values, so the same definition gives `changed=false`
on the next run.

Reads (lookups, XML, state) run in check mode; every change goes through
the ActionRecorder, so check mode reports the same plan as a real run.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput, LibvirtFailure
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.connection import libvirt_module

# What libvirt fills in when a definition leaves it out, and that a
# redefinition must keep (else a new uuid, MAC or bridge every run).
KEPT_WHEN_UNSET = {
    'network': ('uuid', 'mac', 'bridge'),
    'pool': ('uuid',),
}

# The root element and the libvirt calls of each kind.
KINDS = {
    'network': {'root': 'network', 'lookup': 'networkLookupByName', 'define': 'networkDefineXML', 'noun': 'network'},
    'pool': {'root': 'pool', 'lookup': 'storagePoolLookupByName', 'define': 'storagePoolDefineXML', 'noun': 'storage pool'},
}


# ---------------------------------------------------------------- pure XML logic

def parse_definition(kind, text, name):
    """The wanted definition as an Element; its <name> must be `name` (added when missing)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise InvalidInput('xml is not well-formed: %s' % exc)
    expected = KINDS[kind]['root']
    if root.tag != expected:
        raise InvalidInput('xml must have <%s> as its root element, not <%s>' % (expected, root.tag))
    name_elem = root.find('name')
    if name_elem is None:
        name_elem = ET.Element('name')
        name_elem.text = name
        root.insert(0, name_elem)
    elif (name_elem.text or '').strip() != name:
        raise InvalidInput('xml names the %s %r, but name is %r' % (KINDS[kind]['noun'], (name_elem.text or '').strip(), name))
    return root


def _text(elem):
    return (elem.text or '').strip()


def _path(parent, elem):
    label = elem.tag
    for attr in ('name', 'address', 'start', 'mode', 'type', 'family'):
        if attr in elem.attrib:
            label += "[@%s='%s']" % (attr, elem.attrib[attr])
            break
    return '%s/%s' % (parent, label)


def differences(wanted, stored, path=''):
    """Where `wanted` is not contained in `stored`: a list of (path, wanted, stored) texts.

    Every attribute `wanted` sets must have the same value; its text, when it
    has some, must be equal; each child must match a distinct stored child of
    the same tag (the first that contains it wholly, else the first unused one
    of that tag, to say what differs there).
    """
    here = path or '/' + wanted.tag
    found = []
    for attr, value in sorted(wanted.attrib.items()):
        if stored.get(attr) != value:
            found.append(('%s/@%s' % (here, attr), value, stored.get(attr)))
    if _text(wanted) and _text(wanted) != _text(stored):
        found.append((here, _text(wanted), _text(stored)))
    used = set()
    for child in wanted:
        candidates = [i for i, s in enumerate(stored) if s.tag == child.tag and i not in used]
        match = next((i for i in candidates if not differences(child, stored[i], _path(here, child))), None)
        if match is not None:
            used.add(match)
            continue
        if candidates:
            used.add(candidates[0])
            found.extend(differences(child, stored[candidates[0]], _path(here, child)))
        else:
            found.append((_path(here, child), ET.tostring(child, encoding='unicode').strip(), None))
    return found


def merged_definition(kind, wanted, stored):
    """The XML to define: `wanted`, plus what libvirt filled in that `wanted` leaves unset (uuid, MAC...)."""
    merged = ET.fromstring(ET.tostring(wanted))
    if stored is None:
        return ET.tostring(merged, encoding='unicode')
    for tag in KEPT_WHEN_UNSET[kind]:
        kept = stored.find(tag)
        if kept is None:
            continue
        mine = merged.find(tag)
        if mine is None:
            # where libvirt keeps it, so that a diff shows only real changes
            merged.insert(list(stored).index(kept), ET.fromstring(ET.tostring(kept)))
        else:
            for attr, value in kept.attrib.items():
                mine.attrib.setdefault(attr, value)
    return ET.tostring(merged, encoding='unicode')


def canonical(text):
    """`text` re-serialised one way (indentation, quotes), so that two texts differ only where their XML does."""
    if not text:
        return ''
    root = ET.fromstring(text)
    for elem in root.iter():
        if elem.tail is not None:
            elem.tail = elem.tail.strip() or None
        if elem.text is not None and not elem.text.strip():
            elem.text = None
    ET.indent(root)
    return ET.tostring(root, encoding='unicode') + '\n'


def plan(kind, name, wanted, current, state='present', active=None, autostart=None):
    """The steps that take `current` to what is wanted; a list of (step, description).

    wanted: the parsed definition or None (then the object must exist already
    for state=present). current: None when the object does not exist, else
    {'xml': Element, 'active': bool, 'autostart': bool}. Steps are
    'define', 'start', 'stop', 'autostart', 'no-autostart', 'undefine'.
    """
    noun = KINDS[kind]['noun']
    steps = []
    if state == 'absent':
        if current is not None:
            if current['active']:
                steps.append(('stop', 'stop %s %s' % (noun, name)))
            steps.append(('undefine', 'undefine %s %s' % (noun, name)))
        return steps
    if current is None:
        if wanted is None:
            raise InvalidInput('%s %s does not exist; give its xml to define it' % (noun, name))
        steps.append(('define', 'define %s %s' % (noun, name)))
        is_active, is_autostart = False, False
    else:
        found = differences(wanted, current['xml']) if wanted is not None else []
        if found:
            steps.append(('define', 'redefine %s %s (%s)' % (noun, name, ', '.join(p for p, _w, _s in found))))
        is_active, is_autostart = current['active'], current['autostart']
    if active is True and not is_active:
        steps.append(('start', 'start %s %s' % (noun, name)))
    elif active is False and is_active:
        steps.append(('stop', 'stop %s %s' % (noun, name)))
    if autostart is True and not is_autostart:
        steps.append(('autostart', 'autostart %s %s' % (noun, name)))
    elif autostart is False and is_autostart:
        steps.append(('no-autostart', 'do not autostart %s %s' % (noun, name)))
    return steps


# ---------------------------------------------------------------- the libvirt edge

class ObjectClient:
    """Networks or storage pools of one connection."""

    def __init__(self, conn, kind):
        self.conn = conn
        self.kind = kind
        self.libvirt = libvirt_module()

    def _call(self, what, func, *args):
        try:
            return func(*args)
        except self.libvirt.libvirtError as exc:
            raise LibvirtFailure('%s: %s' % (what, exc))

    def lookup(self, name):
        """The libvirt object, or None when no such object is defined."""
        missing = (self.libvirt.VIR_ERR_NO_NETWORK if self.kind == 'network' else self.libvirt.VIR_ERR_NO_STORAGE_POOL)
        try:
            return getattr(self.conn, KINDS[self.kind]['lookup'])(name)
        except self.libvirt.libvirtError as exc:
            if exc.get_error_code() == missing:
                return None
            raise LibvirtFailure('cannot look up %s %s: %s' % (KINDS[self.kind]['noun'], name, exc))

    def current(self, obj):
        """{'xml': Element of the stored definition, 'active': bool, 'autostart': bool, 'text': str}."""
        flags = (self.libvirt.VIR_NETWORK_XML_INACTIVE if self.kind == 'network'
                 else self.libvirt.VIR_STORAGE_XML_INACTIVE)
        try:
            text = obj.XMLDesc(flags)
        except self.libvirt.libvirtError as exc:
            # Drivers without separate live and stored definitions (the test
            # driver) refuse the flag: their one definition is the stored one.
            if exc.get_error_code() != self.libvirt.VIR_ERR_INVALID_ARG:
                raise LibvirtFailure('cannot read the definition: %s' % exc)
            text = self._call('cannot read the definition', obj.XMLDesc, 0)
        return {'xml': ET.fromstring(text), 'text': text, 'active': bool(self._call('cannot read the state', obj.isActive)),
                'autostart': bool(self._call('cannot read autostart', obj.autostart))}

    def define(self, xml):
        return self._call('libvirt refused the definition', getattr(self.conn, KINDS[self.kind]['define']), xml)

    def start(self, obj):
        self._call('cannot start', obj.create)

    def stop(self, obj):
        self._call('cannot stop', obj.destroy)

    def set_autostart(self, obj, value):
        self._call('cannot set autostart', obj.setAutostart, 1 if value else 0)

    def undefine(self, obj):
        self._call('cannot undefine', obj.undefine)

    def build(self, obj):
        """A storage pool's build step (a dir pool: its directory); a no-op for networks."""
        if self.kind == 'pool':
            self._call('cannot build the storage pool', obj.build, 0)


def converge(client, name, wanted_xml, recorder, state='present', active=None, autostart=None, build=True):
    """Bring the object `name` to what is wanted; return the module's result (without changed/actions).

    A redefinition of an active object changes its stored definition; the
    running object keeps the old one until it is stopped and started again
    (`restart_required`).
    """
    kind = client.kind
    wanted = parse_definition(kind, wanted_xml, name) if wanted_xml else None
    obj = client.lookup(name)
    current = client.current(obj) if obj is not None else None
    steps = plan(kind, name, wanted, current, state, active, autostart)
    before = current['text'] if current else ''
    after_xml = merged_definition(kind, wanted, current['xml'] if current else None) if wanted is not None else before
    restart_required = False
    for step, description in steps:
        if step == 'define':
            new = recorder.apply(description, client.define, after_xml)
            if obj is None:
                obj = new
                if build and kind == 'pool':
                    recorder.apply('build storage pool %s' % name, client.build, obj)
            elif current and current['active'] and active is not False:
                restart_required = True
        elif step == 'start':
            recorder.apply(description, client.start, obj)
        elif step == 'stop':
            recorder.apply(description, client.stop, obj)
        elif step in ('autostart', 'no-autostart'):
            recorder.apply(description, client.set_autostart, obj, step == 'autostart')
        elif step == 'undefine':
            recorder.apply(description, client.undefine, obj)
    if state == 'absent':
        after = ''
    elif obj is not None and not recorder.check_mode:
        after = client.current(obj)['text']
    else:
        after = after_xml
    result = {
        'name': name,
        'exists': state != 'absent',
        'differences': [{'path': p, 'wanted': w, 'stored': s} for p, w, s in
                        (differences(wanted, current['xml']) if wanted is not None and current else [])],
        'restart_required': restart_required,
        'diff': {'before': canonical(before), 'after': canonical(after),
                 'before_header': '%s %s' % (KINDS[kind]['noun'], name), 'after_header': '%s %s' % (KINDS[kind]['noun'], name)},
    }
    if state != 'absent':
        result['active'] = _final(active, current and current['active'], steps, 'start', 'stop')
        result['autostart'] = _final(autostart, current and current['autostart'], steps, 'autostart', 'no-autostart')
    return result


def _final(wanted, now, steps, on, off):
    done = [s for s, _d in steps]
    if on in done:
        return True
    if off in done:
        return False
    return bool(now)


def argument_spec(kind):
    """The options of the network and storage_pool modules (the same life, one spec)."""
    spec = {
        'name': {'type': 'str', 'required': True},
        'xml': {'type': 'str'},
        'state': {'type': 'str', 'default': 'present', 'choices': ['present', 'absent']},
        'active': {'type': 'bool'},
        'autostart': {'type': 'bool'},
    }
    if kind == 'pool':
        spec['build'] = {'type': 'bool', 'default': True}
    return spec


def run(kind, params, recorder, open_connection):
    """Open the connection, converge the object, close the connection; the module's result."""
    if params['state'] == 'absent' and (params.get('active') or params.get('autostart')):
        raise InvalidInput('state=absent removes the %s: active and autostart must not be true' % KINDS[kind]['noun'])
    conn = open_connection(params['uri'])
    try:
        return converge(ObjectClient(conn, kind), params['name'], params.get('xml'), recorder, state=params['state'],
                        active=params.get('active'), autostart=params.get('autostart'), build=params.get('build', False))
    finally:
        conn.close()


def run_module(kind):
    """main() of the network and storage_pool modules: one argument spec, one flow, one end."""
    from ansible.module_utils.basic import AnsibleModule

    from ansible_collections.phyllome.os.plugins.module_utils._common.actions import ActionRecorder
    from ansible_collections.phyllome.os.plugins.module_utils._common.module_glue import run_and_exit
    from ansible_collections.phyllome.os.plugins.module_utils._libvirt.connection import open_connection, uri_argument_spec

    module = AnsibleModule(argument_spec=dict(uri_argument_spec(), **argument_spec(kind)), supports_check_mode=True)
    recorder = ActionRecorder(check_mode=module.check_mode)
    run_and_exit(module, recorder, run, kind, module.params, recorder, open_connection)
