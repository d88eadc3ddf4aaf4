# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of roles/host's family data (vars/*.yml) against recorded facts.

The Fedora branch of phyllome.os.host is NOT run on Fedora here: no Fedora
machine or repository is reachable from the lab. Its package names, libvirt
units, accounts and firewalld/SELinux steps are checked against data composed
from public sources (Fedora's spec files, firewalld's and libvirt's trees),
fixtures/fedora-*.yml, whose headers say where each fact comes from. The
Debian branch really runs in the lab; here it is only checked for having the
same keys as Fedora's.

Run: .venv/bin/pytest -q tests/unit/roles/host (make units runs it too)
"""

from __future__ import annotations

import glob
import os
import re

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, 'fixtures')
ROLE = os.path.normpath(os.path.join(HERE, '..', '..', '..', '..', 'roles', 'host'))
FAMILIES = ('Debian', 'Fedora')

# What phyllome-os.md asks of a Fedora host: the modular daemons, each
# socket-activated (main, read-only and admin sockets), in place of libvirtd.
MODULAR_DAEMONS = ('virtqemud', 'virtnetworkd', 'virtstoraged', 'virtnodedevd', 'virtsecretd', 'virtinterfaced')
SOCKET_SUFFIXES = ('.socket', '-ro.socket', '-admin.socket')


def _load(path):
    with open(path, encoding='utf-8') as f:
        return yaml.safe_load(f)


def _vars(name):
    return _load(os.path.join(ROLE, 'vars', name + '.yml'))


def _fixture(name):
    return _load(os.path.join(FIXTURES, name + '.yml'))


FEDORA = _vars('Fedora')
MAIN_VARS = _vars('main')
PACKAGES = _fixture('fedora-packages')['packages']
LIBVIRT = _fixture('fedora-libvirt-units')
SERVICES = _fixture('fedora-services')


def fedora_packages():
    """Every package the Fedora branch can install (base list and every edition)."""
    names = list(FEDORA['__phyllome_host_packages'])
    for edition in sorted(FEDORA['__phyllome_host_edition_packages']):
        names += FEDORA['__phyllome_host_edition_packages'][edition]
    return names


def libvirt_closure(names):
    """libvirt subpackages installed with `names`: their hard Requires, followed (no weak deps)."""
    todo = [n for n in names if n in LIBVIRT['packages']]
    seen = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(LIBVIRT['packages'][name].get('requires', []))
    return seen


def unit_owners():
    """unit -> the libvirt subpackages whose %files list it."""
    owners = {}
    for package, entry in LIBVIRT['packages'].items():
        for unit in entry.get('units', []):
            owners.setdefault(unit['name'], []).append(package)
    return owners


def role_files(*patterns):
    paths = []
    for pattern in patterns:
        paths += sorted(glob.glob(os.path.join(ROLE, pattern)))
    return paths


def walk(node):
    """Every dict in a loaded YAML document, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def role_tasks():
    """Every task dict of tasks/ and handlers/, blocks included."""
    tasks = []
    for path in role_files('tasks/*.yml', 'handlers/*.yml'):
        for node in walk(_load(path)):
            if 'name' in node and ('when' in node or 'block' in node or any('.' in k for k in node)):
                tasks.append(node)
    return tasks


def module_of(task):
    """The fully qualified module a task calls, or None for a block."""
    names = [k for k in task if re.match(r'^[a-z0-9_]+\.[a-z0-9_]+\.[a-z0-9_]+$', k)]
    return names[0] if names else None


# ---------------------------------------------------------------- packages

@pytest.mark.parametrize('name, entry', sorted(PACKAGES.items()))
def test_fixture_entry_declares_its_name(name, entry):
    """A recorded declaration gives exactly the package name it is filed under."""
    declared = entry['declared_by']
    m = re.match(r'^%package\s+-n\s+(\S+)$', declared)
    if m:
        got = m.group(1)
    else:
        m = re.match(r'^%package\s+(\S+)$', declared)
        if m:
            got = entry['source_package'] + '-' + m.group(1)
        else:
            m = re.match(r'^Name:\s*(\S+)$', declared)
            assert m, 'not a %%package or Name: line: %r' % declared
            got = m.group(1)
            assert got == entry['source_package']
    assert got == name


@pytest.mark.parametrize('name', fedora_packages())
def test_fedora_package_is_declared_in_a_fedora_spec(name):
    assert name in PACKAGES, (
        '%s (roles/host/vars/Fedora.yml) has no recorded Fedora spec declaring it '
        '(tests/unit/roles/host/fixtures/fedora-packages.yml)' % name)


def test_fedora_package_lists_have_no_duplicates():
    names = fedora_packages()
    assert len(names) == len(set(names))


@pytest.mark.parametrize('module, python_module', sorted(
    (module, python_module) for module, imports in SERVICES['module_imports'].items() for python_module in imports))
def test_python_modules_of_the_tasks_modules_are_installed(module, python_module):
    """ansible.posix.selinux/firewalld and community.libvirt import these on the host."""
    used = {module_of(t) for t in role_tasks()}
    if module not in used:
        pytest.skip('%s is not used by the role' % module)
    providers = [n for n in FEDORA['__phyllome_host_packages'] if python_module in PACKAGES.get(n, {}).get('python_modules', [])]
    assert providers, '%s imports %s, which no package of __phyllome_host_packages provides' % (module, python_module)


# ---------------------------------------------------------------- libvirt units

def test_libvirt_fixture_requires_are_recorded_packages():
    for name, entry in LIBVIRT['packages'].items():
        for required in entry.get('requires', []) + entry.get('recommends', []):
            assert required in LIBVIRT['packages'], '%s requires %s, missing from the fixture' % (name, required)


FEDORA_UNITS = sorted(set(
    FEDORA['__phyllome_host_libvirt_sockets'] + FEDORA['__phyllome_host_libvirt_daemons']
    + FEDORA['__phyllome_host_libvirt_disabled_units'] + [FEDORA['__phyllome_host_qemu_daemon']]
    + FEDORA['__phyllome_host_libvirt_tls_requires']
    + [FEDORA['__phyllome_host_libvirt_tls_socket'], FEDORA['__phyllome_host_libvirt_tls_daemon']]))


@pytest.mark.parametrize('unit', FEDORA_UNITS)
def test_fedora_libvirt_unit_is_shipped_by_an_installed_package(unit):
    """Enabling, stopping or restarting a unit that no installed package ships fails the play."""
    owners = unit_owners().get(unit)
    assert owners, '%s is installed by no libvirt subpackage (fedora-libvirt-units.yml)' % unit
    installed = libvirt_closure(fedora_packages())
    assert installed & set(owners), '%s comes with %s, which the Fedora package list does not install' % (unit, ', '.join(owners))


@pytest.mark.parametrize('daemon', MODULAR_DAEMONS)
def test_fedora_enables_every_socket_of_the_modular_daemons(daemon):
    sockets = FEDORA['__phyllome_host_libvirt_sockets']
    for suffix in SOCKET_SUFFIXES:
        assert daemon + suffix in sockets


@pytest.mark.parametrize('unit', sorted(u['name'] for u in LIBVIRT['packages']['libvirt-daemon']['units']))
def test_fedora_disables_every_unit_of_the_monolithic_daemon(unit):
    assert unit in FEDORA['__phyllome_host_libvirt_disabled_units']


def test_fedora_never_enables_libvirtd():
    enabled = FEDORA['__phyllome_host_libvirt_sockets'] + FEDORA['__phyllome_host_libvirt_daemons']
    assert [u for u in enabled if u.startswith('libvirtd')] == []
    assert set(enabled).isdisjoint(FEDORA['__phyllome_host_libvirt_disabled_units'])


def test_fedora_qemu_daemon_is_virtqemud():
    """qemu.conf is read by virtqemud when the daemons are modular."""
    assert FEDORA['__phyllome_host_qemu_daemon'] == 'virtqemud.service'
    assert FEDORA['__phyllome_host_qemu_daemon'] in unit_owners()


def test_fedora_tls_is_virtproxyd_of_the_modular_daemons():
    """Remote connections reach the modular daemons through virtproxyd; its TLS socket binds to virtproxyd.socket,
    and the monolithic daemon's TLS socket stays off."""
    assert FEDORA['__phyllome_host_libvirt_tls_socket'] == 'virtproxyd-tls.socket'
    assert FEDORA['__phyllome_host_libvirt_tls_daemon'] == 'virtproxyd.service'
    assert 'virtproxyd.socket' in FEDORA['__phyllome_host_libvirt_tls_requires']
    assert FEDORA['__phyllome_host_libvirt_tls_conf'] == '/etc/libvirt/virtproxyd.conf'
    assert 'libvirtd-tls.socket' in FEDORA['__phyllome_host_libvirt_disabled_units']


def test_tls_port_is_the_one_of_firewalld_service():
    """nftables opens __phyllome_host_libvirt_tls_port, firewalld the service libvirt-tls: the same port."""
    assert SERVICES['firewalld_services']['libvirt-tls']['port'] == '%d/tcp' % MAIN_VARS['__phyllome_host_libvirt_tls_port']


@pytest.mark.parametrize('pem, kind, ok', [
    ('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n', 'cert', True),
    ('Subject: CN=x\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n', 'cert', True),
    ('-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n', 'cert', False),
    ('-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n', 'key', True),
    ('-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n', 'key', True),
    ('-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n', 'key', True),
    ('-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIE\n-----END ENCRYPTED PRIVATE KEY-----\n', 'key', False),
    ('-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,AB\n\nMIIE\n-----END RSA PRIVATE KEY-----\n',
     'key', False),
    ('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n', 'key', False),
])
def test_tls_pem_patterns(pem, kind, ok):
    """The shapes the early check of phyllome_host_libvirt_tls accepts (Jinja's `search` is re.search)."""
    assert bool(re.search(MAIN_VARS['__phyllome_host_pem_%s_pattern' % kind], pem)) is ok


def test_a_certificate_that_holds_a_key_is_seen():
    key = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n'
    assert re.search(MAIN_VARS['__phyllome_host_pem_any_key_pattern'], key)


@pytest.mark.parametrize('socket', ['virtlogd.socket', 'virtlockd.socket'])
def test_fedora_enables_the_log_and_lock_daemons(socket):
    assert socket in FEDORA['__phyllome_host_libvirt_sockets']


# ---------------------------------------------------------------- accounts

@pytest.mark.parametrize('key, account', [
    ('__phyllome_host_qemu_user', 'qemu_user'),
    ('__phyllome_host_kvm_group', 'kvm_group'),
])
def test_fedora_accounts_match_the_spec(key, account):
    recorded = LIBVIRT['accounts'][account]
    assert FEDORA[key] == recorded['name']
    assert recorded['created_by'] in libvirt_closure(fedora_packages())


def test_admin_users_group_is_created_on_fedora():
    groups = set()
    for task in role_tasks():
        if module_of(task) == 'ansible.builtin.user' and 'groups' in task[module_of(task)]:
            groups.update(g for g in task[module_of(task)]['groups'] if '{{' not in g)
    assert LIBVIRT['accounts']['libvirt_group']['name'] in groups
    assert LIBVIRT['accounts']['libvirt_group']['created_by'] in libvirt_closure(fedora_packages())


# ---------------------------------------------------------------- other units, firewalld, SELinux

@pytest.mark.parametrize('key', ['__phyllome_host_sshd_service', '__phyllome_host_sshd_socket',
                                 '__phyllome_host_sshd_instance', '__phyllome_host_desktop_manager'])
def test_fedora_service_names_are_recorded(key):
    assert FEDORA[key] in SERVICES['units']


def test_fedora_ships_its_per_connection_sshd():
    """The role writes no sshd@.service on Fedora: openssh-server has one."""
    assert FEDORA['__phyllome_host_sshd_instance_shipped'] is True
    assert SERVICES['units'][FEDORA['__phyllome_host_sshd_instance']]['package'] == \
        SERVICES['units'][FEDORA['__phyllome_host_sshd_socket']]['package'] == 'openssh-server'


def test_fedora_desktop_manager_comes_with_the_desktop_edition():
    package = SERVICES['units'][FEDORA['__phyllome_host_desktop_manager']]['package']
    assert package in FEDORA['__phyllome_host_edition_packages']['desktop']


@pytest.mark.parametrize('unit', FEDORA['__phyllome_host_headless_disabled_services'])
def test_fedora_headless_disabled_service_is_a_fedora_unit(unit):
    """A wrong name would silently disable nothing (the task only touches units present)."""
    assert unit in SERVICES['units']


def _firewalld_literal_services():
    services = set()
    for task in role_tasks():
        if module_of(task) != 'ansible.posix.firewalld':
            continue
        service = task[module_of(task)].get('service')
        if service is None:
            continue
        if service.strip() == '{{ item }}':
            services.update(task['loop'])
        else:
            assert '{{' not in service, 'cannot tell the firewalld service of %r' % task['name']
            services.add(service)
    return sorted(services)


def test_fedora_firewall_is_firewalld():
    assert FEDORA['__phyllome_host_firewall'] == 'firewalld'
    for package in ('firewalld', 'python3-firewall'):
        assert package in FEDORA['__phyllome_host_packages']


def test_firewalld_steps_name_services_firewalld_defines():
    services = _firewalld_literal_services()
    assert services, 'no ansible.posix.firewalld service step found in the role'
    for service in services:
        assert service in SERVICES['firewalld_services']


def test_firewalld_unit_of_the_tasks_is_installed():
    units = set()
    for task in role_tasks():
        if 'firewalld' in str(task.get('when', '')) and 'block' in task:
            for sub in task['block']:
                if module_of(sub) == 'ansible.builtin.systemd_service':
                    units.add(sub[module_of(sub)]['name'])
    assert units == {'firewalld.service'}
    assert SERVICES['units']['firewalld.service']['package'] in FEDORA['__phyllome_host_packages']


def test_fedora_selinux_step_has_its_library():
    assert FEDORA['__phyllome_host_selinux'] is True
    assert 'ansible.posix.selinux' in {module_of(t) for t in role_tasks()}
    assert 'python3-libselinux' in FEDORA['__phyllome_host_packages']


# ---------------------------------------------------------------- keys of the family files

def test_family_files_have_the_same_keys():
    keys = {family: set(_vars(family)) for family in FAMILIES}
    assert keys['Debian'] == keys['Fedora'], 'only in Debian.yml: %s; only in Fedora.yml: %s' % (
        sorted(keys['Debian'] - keys['Fedora']), sorted(keys['Fedora'] - keys['Debian']))


def _set_in_tasks():
    """Internal names the tasks themselves define: set_fact, register, vars, loop variables."""
    names = set()
    for path in role_files('tasks/*.yml', 'handlers/*.yml'):
        for node in walk(_load(path)):
            if 'ansible.builtin.set_fact' in node:
                names.update(node['ansible.builtin.set_fact'])
            if isinstance(node.get('register'), str):
                names.add(node['register'])
            if isinstance(node.get('vars'), dict) and 'name' in node:
                names.update(node['vars'])
            if isinstance(node.get('loop_control'), dict):
                names.update(v for k, v in node['loop_control'].items() if k in ('index_var', 'loop_var'))
    return names


def _used_names():
    text = ''
    for path in role_files('tasks/*.yml', 'handlers/*.yml', 'templates/*', 'vars/main.yml'):
        with open(path, encoding='utf-8') as f:
            text += f.read()
    return sorted(set(re.findall(r'__phyllome_host_[a-z0-9_]+', text)))


@pytest.mark.parametrize('name', _used_names())
def test_internal_name_is_defined_for_every_family(name):
    in_every_family = all(name in _vars(family) for family in FAMILIES)
    assert name in MAIN_VARS or in_every_family or name in _set_in_tasks(), (
        '%s is used by the role but defined neither in vars/main.yml, nor in every family file, nor by a task' % name)


@pytest.mark.parametrize('name', sorted(FEDORA))
def test_family_key_is_used_by_the_role(name):
    assert name in _used_names(), '%s is defined in the family files but the role never reads it' % name


# ---------------------------------------------------------------- input checks

@pytest.mark.parametrize('port, shape_ok', [
    ('22/tcp', True), ('5900-5910/tcp', True), ('53/udp', True), ('2905/sctp', True), ('33/dccp', True),
    ('ssh', False), ('22', False), ('22/TCP', False), ('22/icmp', False), (' 22/tcp', False), ('22/tcp ', False),
    ('-1/tcp', False), ('1-2-3/tcp', False), ('123456/tcp', False),
])
def test_firewall_port_pattern(port, shape_ok):
    """The shape half of the early check of phyllome_host_firewall_ports (the range half is Jinja, run by the lab test)."""
    assert bool(re.match(MAIN_VARS['__phyllome_host_port_pattern'], port)) is shape_ok


# ---------------------------------------------------------------- sshd per connection

def _render(template, family):
    """A template of the role rendered with a family's data (ansible_managed given a fixed text)."""
    jinja2 = pytest.importorskip('jinja2')
    with open(os.path.join(ROLE, 'templates', template), encoding='utf-8') as f:
        text = f.read()
    return jinja2.Template(text, keep_trailing_newline=True).render(ansible_managed='Managed', **_vars(family))


def _unit(text):
    """{section: [(key, value)]} of a systemd unit file."""
    sections, current = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        if line.startswith('['):
            current = sections.setdefault(line.strip('[]'), [])
        else:
            key, value = line.split('=', 1)
            current.append((key, value))
    return sections


@pytest.mark.parametrize('family', FAMILIES)
def test_sshd_instance_is_the_template_its_socket_starts(family):
    """systemd starts <socket's name>@.service for an Accept=yes socket (Service= cannot name another one)."""
    data = _vars(family)
    assert data['__phyllome_host_sshd_socket'].endswith('.socket')
    assert data['__phyllome_host_sshd_instance'] == data['__phyllome_host_sshd_socket'][:-len('.socket')] + '@.service'


@pytest.mark.parametrize('family', FAMILIES)
def test_sshd_socket_dropin_takes_the_port_from_the_listener_in_one_transaction(family):
    dropin = _unit(_render('sshd-socket-dropin.conf.j2', family))
    service = _vars(family)['__phyllome_host_sshd_service']
    assert ('Accept', 'yes') in dropin['Socket']
    # a burst of connections must not fail the socket for good (systemd 252's trigger limit)
    assert ('TriggerLimitIntervalSec', '0') in dropin['Socket']
    # Conflicts= makes starting the socket stop the listener; an ordering (either way) puts that stop first.
    assert ('Conflicts', service) in dropin['Unit']
    assert ('Before', service) in dropin['Unit'] or ('After', service) in dropin['Unit']
    # Before=, not After=: the listener service is ordered after sockets.target already, After= would be a cycle
    assert ('After', service) not in dropin['Unit']


def test_debian_per_connection_sshd_unit():
    """Debian 12 ships none: the role's ssh@.service runs sshd -i on the socket's connection."""
    assert _vars('Debian')['__phyllome_host_sshd_instance_shipped'] is False
    unit = dict(_unit(_render('ssh@.service.j2', 'Debian'))['Service'])
    assert unit['ExecStart'].split()[:2] == ['-/usr/sbin/sshd', '-i']
    assert unit['StandardInput'] == 'socket'
    # concurrent connections share /run/sshd: the end of one must not remove it
    assert unit['RuntimeDirectory'] == 'sshd' and unit['RuntimeDirectoryPreserve'] == 'yes'


@pytest.mark.parametrize('line, keeps_listener', [
    ('Port 22', False), ('port 22  ', False), ('#Port 2222', False), ('# ListenAddress 0.0.0.0', False),
    ('Port 2222', True), ('  Port 222', True), ('Port 220', True), ('ListenAddress 127.0.0.1', True),
    ('listenaddress 10.0.0.1:22', True), ('ListenAddress [::]', True),
])
def test_sshd_config_lines_that_keep_the_listener(line, keeps_listener):
    """A socket-started sshd ignores ListenAddress and Port (the socket listens on port 22, every address):
    such a line keeps the listener service (the task's grep picks the candidates, this pattern decides)."""
    pattern = MAIN_VARS['__phyllome_host_sshd_listen_pattern']
    assert bool(re.match(pattern, line, re.IGNORECASE)) is keeps_listener
