# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The flow of phyllome.os.migrate: read both hosts, plan, then move the domain, undoing everything on a failure.

Order (docs/decisions/migration.md): shut the source down; define the domain
on the target (autostart off) so that undefining it there removes what the
copy left (varstore, TPM state); create and fill the target's volumes
through streams; copy the varstore and the TPM state through transient
directory pools; verify the copies' checksums against those of the target's
bytes (hashed there over ssh, else read back beside the copy); autostart and
start there; only then undefine the source and delete its volumes (or, with
keep_source, turn its autostart off). A failure before the source is touched
undoes the target's side in reverse and restarts the source if it ran; the
error names the step.
"""

from __future__ import annotations

import functools
import posixpath
import re
import shlex
import time

from ansible_collections.phyllome.os.plugins.module_utils._common.digest import digest_script
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import (
    HostStateError, InvalidInput, LibvirtFailure, NotFound, PhyllomeError)
from ansible_collections.phyllome.os.plugins.module_utils._domain.host import host_context, pool_directory, volume_xml
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import parse, parse_domain, sub, to_string
from ansible_collections.phyllome.os.plugins.module_utils._libvirt import migration as streams
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.capabilities import parse_capabilities
from ansible_collections.phyllome.os.plugins.module_utils._libvirt.connection import ssh_command
from ansible_collections.phyllome.os.plugins.module_utils._migrate.plan import (
    SWTPM_PARENT_MODE, TargetFacts, copy_action, create_volume_action, guest_agent_refusal, mb_per_s, plan_cold,
    pool_full_error, pool_is_full, pool_permissions, rollback_words, source_volume)

# How a copy's checksum was found on the target (the result's copied[].verified_by).
VERIFIED_BY = {'target': 'hashed on the target over ssh', 'read-back': 'read back through libvirt'}

# How long a rollback waits for a target that stopped answering to come back (its half copy is removed then),
# trying again every RECONNECT_PAUSE seconds.
RECONNECT_SECONDS = 90
RECONNECT_PAUSE = 5


def argument_spec():
    return {
        'name': {'type': 'str', 'required': True},
        'source_uri': {'type': 'str', 'default': 'qemu:///system'},
        'target_uri': {'type': 'str', 'required': True},
        'mode': {'type': 'str', 'default': 'cold', 'choices': ['cold', 'live']},
        'shutdown_timeout': {'type': 'int', 'default': 120},
        'force': {'type': 'bool', 'default': False},
        'storage_map': {'type': 'dict', 'default': {}},
        'network_map': {'type': 'dict', 'default': {}},
        'keep_source': {'type': 'bool', 'default': False},
        'start': {'type': 'bool'},
        'verify': {'type': 'bool', 'default': True},
        'migrate_uri': {'type': 'str'},
        'bandwidth': {'type': 'int'},
        'timeout': {'type': 'int'},
        'guest_agent_timeout': {'type': 'int'},
    }


def run(params, recorder, connect):
    """Open both connections, migrate, close them; the module's result."""
    live_only = [key for key in ('migrate_uri', 'bandwidth', 'timeout') if params.get(key) is not None]
    if params['mode'] == 'cold' and live_only:
        raise InvalidInput('%s apply to mode=live only' % ', '.join(live_only))
    if params['mode'] == 'live' and params.get('guest_agent_timeout') is not None:
        raise InvalidInput('guest_agent_timeout applies to mode=cold only (a live move keeps the guest running)')
    for key in ('bandwidth', 'timeout', 'guest_agent_timeout'):
        if params.get(key) is not None and params[key] <= 0:
            raise InvalidInput('%s must be more than 0' % key)
    if params['shutdown_timeout'] < 0:
        raise InvalidInput('shutdown_timeout must be 0 or more seconds')
    if params['source_uri'] == params['target_uri']:
        raise InvalidInput('source_uri and target_uri are the same (%s)' % params['source_uri'])
    source = connect(params['source_uri'])
    try:
        target = connect(params['target_uri'])
        try:
            if params['mode'] == 'live':
                # Imported here: live builds on this module's Migration.
                from ansible_collections.phyllome.os.plugins.module_utils._migrate.live import LiveMigration
                return LiveMigration(source, target, params, recorder).run()
            return Migration(source, target, params, recorder).run()
        finally:
            target.close()
    finally:
        source.close()


def target_facts(target, domain, disks, storage_map):
    """TargetFacts of the target for the domain (element) whose disks' source volumes are `disks`."""
    pools = dict(pool_directory(xml) for xml in target.pool_xmls())
    os_type = domain.find('os/type')
    arch = os_type.get('arch') if os_type is not None else None
    machine = os_type.get('machine') if os_type is not None else None
    caps = parse_capabilities(target.capabilities(), arch=arch, machine=machine)
    context = refusal = None
    loaders = ()
    try:
        domcaps = target.domain_capabilities(caps['arch'], machine, domain.get('type'))
    except LibvirtFailure as exc:
        refusal = exc.msg
    else:
        if domcaps is None:
            refusal = 'its libvirt driver has no domain capabilities'
        else:
            context = host_context(domcaps, caps['arch'])
            loaders = [v.text.strip() for v in parse(domcaps, 'domain capabilities').findall('os/loader/value')
                       if v.text]
    existing = []
    available = {}
    for facts in disks.values():
        pool = storage_map.get(facts['pool'], facts['pool'])
        if pool in pools:
            if target.volume_xml(pool, facts['name']) is not None:
                existing.append((pool, facts['name']))
            if pool not in available:
                available[pool] = streams.pool_available(target, pool)
    return TargetFacts(pools, streams.network_names(target), machine_offered=caps['machine_offered'] or not machine,
                       context=context, refusal=refusal, loaders=loaders, volumes=existing, available=available)


class Migration:
    """One cold migration: its reads, plan, steps and undo list."""

    def __init__(self, source, target, params, recorder, clock=time.monotonic):
        self.source = source
        self.target = target
        self.params = params
        self.recorder = recorder
        self.clock = clock
        self.name = params['name']
        self.undo = []  # (index, description, func, args), in the order done
        self.copies = []
        self.step = None
        self.pools = []  # (index, client, name, where) of the transient pools opened
        self.started = None
        self.undefined = []  # indexes of the actions that undefining the target's domain undoes
        self.tpm_dir = None
        self.undefine_undo = None
        self.migration = None  # mode=live: what libvirt's completed job moved (plan.live_progress)
        self.verify_seconds = None  # reading the copies back (verify)
        self.shell = None  # ssh to the target that hashes a copy there (see _target_shell); False: none
        self.notes = []  # how the verify went, when not as planned (the result's verify_notes)
        # A live move's disks are QEMU's mirror, checked by QEMU; verify is a cold move's.
        self.verifying = params['verify'] and params['mode'] == 'cold'

    def result(self, state, plan=None, **extra):
        result = {'name': self.name, 'mode': self.params['mode'], 'state': state,
                  'source_uri': self.params['source_uri'], 'target_uri': self.params['target_uri'],
                  'plan': plan.as_result() if plan is not None else None, 'copied': self.copies,
                  'diff': {'before': 'domain %s on %s\n' % (self.name, self.params['source_uri']),
                           'after': 'domain %s on %s\n' % (self.name, self.params['target_uri'])}}
        data = sum(c['bytes'] for c in self.copies)
        seconds = sum(c['seconds'] for c in self.copies)
        if self.migration is not None:
            result['migration'] = self.migration
            data += self.migration['bytes']
            seconds += self.migration['seconds']
        result.update(bytes_copied=data, copy_seconds=round(seconds, 3), mb_per_s=mb_per_s(data, seconds),
                      verify_seconds=self.verify_seconds, verify_notes=self.notes)
        result.update(extra)
        return result

    def run(self):
        src_dom, settled = self._settled()
        if settled is not None:
            return settled
        plan = self._plan(src_dom)
        self.tpm_dir = plan.tpm_dir
        was_active = self.source.is_active(src_dom)
        start = self.params['start'] if self.params['start'] is not None else was_active
        if self.params.get('guest_agent_timeout'):
            refusal = guest_agent_refusal(plan.xml, start)
            if refusal:
                raise InvalidInput(refusal)
        self.started = self.clock()
        try:
            agent = self._move(plan, src_dom, was_active, start)
        except PhyllomeError as exc:
            self._fail(exc, plan, 'the source is intact%s' % (' and running again' if was_active else ''))
        self._finish_source(plan, src_dom)
        extra = {'guest_agent_seconds': agent} if self.params.get('guest_agent_timeout') else {}
        return self.result('migrated', plan, started=start, seconds=round(self.clock() - self.started, 3), **extra)

    def _fail(self, exc, plan, source_state, live=False):
        """Roll back after `exc` failed the step in self.step; raise it again, saying what was undone and what is left.

        source_state: how the source is once rolled back (when the rollback worked).
        """
        undone, left = self._roll_back()
        raise type(exc)('%smigration of %s failed at step "%s": %s; %s' % (
            'live ' if live else '', self.name, self.step, exc.msg,
            rollback_words(undone, left, source_state, plan.uuid)))

    def _settled(self):
        """(the source's domain, the result when there is nothing to move, else None); raises on a conflict."""
        src_dom = self.source.lookup(self.name)
        if src_dom is None:
            if self.target.lookup(self.name) is not None:
                result = self.result('migrated')
                result['diff'] = {'before': '', 'after': ''}
                return None, result
            raise NotFound('domain %s is defined neither on %s nor on %s'
                           % (self.name, self.params['source_uri'], self.params['target_uri']))
        uuid = self.source.uuid(src_dom)
        on_target = self.target.lookup_uuid(uuid) or self.target.lookup(self.name)
        if on_target is not None:
            return src_dom, self._both_defined(src_dom, uuid, on_target)
        return src_dom, None

    def _plan(self, src_dom):
        """The plan (every refusal first) from the source's stored definition and volumes and the target's offer."""
        xml = self.source.inactive_xml(src_dom)
        domain = parse_domain(xml, 'the stored definition of %s' % self.name)
        disks = {}
        for dev in domain.findall('devices/disk/source'):
            path = dev.get('file')
            found = self.source.volume_at_path(path) if path else None
            if found is not None:
                facts = source_volume(found[2])
                facts['pool'] = found[0]
                disks[path] = facts
        storage_map, network_map = self.params['storage_map'], self.params['network_map']
        return plan_cold(xml, disks, target_facts(self.target, domain, disks, storage_map), storage_map, network_map)

    def _both_defined(self, src_dom, uuid, on_target):
        if self.target.uuid(on_target) != uuid:
            raise HostStateError('another domain named %s (uuid %s) is defined on %s; nothing was changed'
                                 % (self.name, self.target.uuid(on_target), self.params['target_uri']))
        if self.params['keep_source'] and not self.source.is_active(src_dom) and not self.source.autostart(src_dom):
            result = self.result('migrated')
            result['diff'] = {'before': '', 'after': ''}
            return result
        raise HostStateError('domain %s (uuid %s) is defined on both %s and %s; nothing was changed: remove the copy'
                             ' that is not wanted (or set keep_source: true if the source copy is kept on purpose)'
                             % (self.name, uuid, self.params['source_uri'], self.params['target_uri']))

    # --- the steps ------------------------------------------------------------

    def _do(self, step, description, func, *args, undo=None, atomic=False):
        """Record and (outside check mode) perform one step; undo: (description, func, args) after a failure.

        atomic: the call changes nothing when it fails (a libvirt define, start, volume creation).
        """
        self.step = step
        index = self.recorder.mark()
        try:
            value = self.recorder.apply(description, func, *args)
        except PhyllomeError:
            if atomic:
                self.recorder.failed_unchanged(index)
            raise
        if undo is not None:
            self.undo.append((index, undo[0], undo[1], undo[2]))
        return value

    def _move(self, plan, src_dom, was_active, start):
        check = self.recorder.check_mode
        src_uri, tgt_uri = self.params['source_uri'], self.params['target_uri']
        timeout = self.params['shutdown_timeout']
        if was_active:
            first = self.recorder.mark()
            stopped = self._do('shutdown', 'shut down domain %s on %s (ACPI, up to %d s)' % (self.name, src_uri, timeout),
                               self.source.shutdown, src_dom, timeout)
            if not check and not stopped:
                if not self.params['force']:
                    self.recorder.undo(first, 'domain %s ignored the power button and still runs' % self.name)
                    raise HostStateError('it did not shut down within %d s (force: true powers it off)' % timeout)
                self._do('shutdown', 'power off domain %s on %s (it did not shut down in %d s)'
                         % (self.name, src_uri, timeout), self.source.destroy, src_dom)
            # Undone last: the source runs again once the target holds nothing.
            self.undo.append((list(range(first, self.recorder.mark())),
                              'start domain %s again on %s' % (self.name, src_uri), self._restart_source, (src_dom,)))
        defined = self.recorder.mark()
        tgt_dom = self._do('define', 'define domain %s (uuid %s) on %s' % (self.name, plan.uuid, tgt_uri),
                           self.target.define, plan.xml, atomic=True)
        # Undefining it (with its varstore and TPM state) also undoes the copies of those (see _copy_state).
        self.undefined = [defined]
        self.undefine_undo = (self.undefined, 'undefine domain %s on %s' % (self.name, tgt_uri), self._undefine_target,
                              (plan.uuid,))
        self.undo.append(self.undefine_undo)
        for disk in plan.disks:
            self._copy_volume(disk['source_pool'], disk['volume'], disk['target_pool'], disk['volume'],
                              disk['physical'], disk['permissions'], disk['source_path'], disk['target_path'],
                              disk['allocation'])
        if plan.nvram:
            self._copy_directory_files('the UEFI varstore %s' % plan.nvram, posixpath.dirname(plan.nvram),
                                       [posixpath.basename(plan.nvram)])
        if plan.tpm_dir:
            self._copy_directory_files('the TPM state in %s' % plan.tpm_dir, plan.tpm_dir, None,
                                       parents_mode=SWTPM_PARENT_MODE)
        if not check and self.verifying:
            self._verify()
        if self.source.autostart(src_dom):
            self._do('autostart', 'turn autostart of domain %s on on %s' % (self.name, tgt_uri),
                     self.target.set_autostart, tgt_dom, True, atomic=True)
        if start:
            self._do('start', 'start domain %s on %s' % (self.name, tgt_uri), self.target.start, tgt_dom, atomic=True,
                     undo=('power off domain %s on %s' % (self.name, tgt_uri), self.target.destroy, (tgt_dom,)))
        self._close_pools()
        return self._wait_guest_agent(tgt_dom) if start and not check else None

    def _wait_guest_agent(self, tgt_dom):
        """With guest_agent_timeout: the seconds until the started domain's guest agent answered, else None.

        A read (nothing is recorded); a silent agent fails the step, and the
        undo powers the target's copy off and restarts the source.
        """
        timeout = self.params.get('guest_agent_timeout')
        if not timeout:
            return None
        self.step = 'guest agent'
        waited = self.target.wait_guest_agent(tgt_dom, timeout)
        if waited is None:
            raise HostStateError('its guest agent did not answer on %s within %d s'
                                 % (self.params['target_uri'], timeout))
        return round(waited, 3)

    def _copy_volume(self, src_pool, src_name, tgt_pool, tgt_name, size, permissions, src_path, tgt_path,
                     allocation):
        # Created raw at the source file's size: the stream then writes the file's own bytes (a qcow2 header
        # included); libvirt probes its format again when the upload ends.
        xml = target_volume_xml(tgt_name, size, permissions)
        created = self.recorder.mark()
        self._do('copy', create_volume_action(tgt_name, tgt_pool, size), self.target.create_volume, tgt_pool, xml,
                 atomic=True)
        # Deleting the volume undoes its creation and the copy into it (the next step).
        self.undo.append(([created, created + 1], 'delete volume %s in pool %s on %s'
                          % (tgt_name, tgt_pool, self.params['target_uri']), self.target.delete_volume,
                          (tgt_pool, tgt_name)))
        # A copy smaller than a read-back segment is read back (no ssh round trips for a varstore).
        shell = (self._target_shell(tgt_path) if self.verifying and not self.recorder.check_mode
                 and size > streams.VERIFY_SEGMENT else None)
        try:
            copied = self._do('copy', copy_action(src_path, tgt_path, allocation), streams.copy_volume,
                              self.source, src_pool, src_name, self.target, tgt_pool, tgt_name, self.clock,
                              functools.partial(self._full, tgt_pool), self.verifying and shell is None)
        except LibvirtFailure as exc:
            available = self._available(tgt_pool)
            full = pool_full_error(tgt_pool, tgt_name, available, None, failure=exc.msg, enospc=streams.no_space(exc))
            if full is None:
                raise
            raise HostStateError(full)
        if copied is not None:
            # libvirt 9.0 may end an upload that ran out of space without an error: the pool's free space says.
            full = pool_full_error(tgt_pool, tgt_name, streams.pool_available(self.target, tgt_pool),
                                   copied.data_bytes)
            if full:
                raise HostStateError(full)
            copy = {'source': src_path, 'target': tgt_path, 'bytes': copied.data_bytes, 'holes': copied.hole_bytes,
                    'seconds': round(copied.seconds, 3), 'mb_per_s': mb_per_s(copied.data_bytes, copied.seconds),
                    'sha256': copied.digest}
            if self.verifying:
                copy['_readback'] = ((copied.readback, copied.verify_wait, 'read-back') if shell is None
                                     else self._target_digest(shell, tgt_path, tgt_pool, tgt_name))
            self.copies.append(copy)

    def _target_shell(self, path):
        """The ssh command line that runs a command on the target, if its python3 can read `path` there, else None.

        Asked once (target_uri on libvirt's ssh transport: the same login,
        the same keys); the answer holds for the whole move. A copy that it
        verifies is hashed where it was written (digest.file_digest, run by
        the target's python3 from the text of this collection's digest
        module) instead of being read back through libvirt and the link.
        """
        if self.shell is None:
            self.shell = False
            argv = ssh_command(self.params['target_uri'])
            if argv is not None:
                rc, out, err = self.recorder.query(argv + ['python3', '-', '--probe', shlex.quote(path)],
                                                   check_rc=False, data=digest_script())
                if rc == 0 and out.strip() == 'readable':
                    self.shell = argv
                else:
                    self.notes.append('verify: the copies are read back through libvirt (the target cannot hash %s'
                                      ' over ssh: %s)' % (path, (err or out).strip() or 'rc=%s' % rc))
        return self.shell or None

    def _target_digest(self, shell, path, pool, volume):
        """(the content digest of the copy at `path`, seconds, how) hashed on the target; read back if that fails."""
        started = self.clock()
        rc, out, err = self.recorder.query(shell + ['python3', '-', shlex.quote(path)], check_rc=False,
                                           data=digest_script())
        found = out.strip()
        if rc == 0 and re.match(r'^[0-9a-f]{64}$', found):
            return found, self.clock() - started, 'target'
        self.notes.append('verify: %s is read back through libvirt (hashing it on the target failed: %s)'
                          % (path, (err or out).strip() or 'rc=%s' % rc))
        return streams.volume_digest(self.target, pool, volume), self.clock() - started, 'read-back'

    def _copy_directory_files(self, what, directory, names, parents_mode=None):
        """Copy files of `directory` (those named, or every regular file) that are no volume, through transient pools.

        parents_mode: the mode of the directories above it that the target lacks (else a pool build's 0755).
        """
        description = 'copy %s' % what
        self.step = description
        # One step in check mode; the real run adds the pools and volumes it finds.
        self.undefined.append(self.recorder.mark())
        self.recorder.apply(description, _nothing)
        if self.recorder.check_mode:
            return
        src_pool = self._open_pool(self.source, directory, build=False)
        if src_pool is None:
            # Never created on the source (the domain never started): the target makes it at first start.
            self.recorder.actions.append('%s: absent on the source, the target creates it at first start' % what)
            return
        volumes = streams.pool_volume_xmls(self.source, src_pool)
        wanted = []
        for vol_name, vol_xml in sorted(volumes.items()):
            facts = source_volume(vol_xml)
            if (names is None or vol_name in names) and parse(vol_xml, 'volume XML').get('type') in (None, 'file'):
                wanted.append((vol_name, facts))
        if not wanted:
            self.recorder.actions.append('%s: absent on the source, the target creates it at first start' % what)
            return
        perms = pool_permissions(self._pool_xml(self.source, src_pool))
        tgt_pool = self._open_pool(self.target, directory, build=True, permissions=perms, parents_mode=parents_mode)
        for vol_name, facts in wanted:
            path = posixpath.join(directory, vol_name)
            self._copy_volume(src_pool, vol_name, tgt_pool, vol_name, facts['physical'] or facts['capacity'] or 0,
                              facts['permissions'], path, path, facts['allocation'])

    def _full(self, pool):
        """Why a blocked upload into `pool` will not end (the pool is full), or None (see copy_volume's stalled)."""
        available = self._available(pool)
        if pool_is_full(available):
            return 'its pool has %d bytes free: No space left on device' % available
        return None

    def _available(self, pool):
        """The target pool's free bytes now, None when that cannot be read either (the error is the copy's).

        The target's connection is opened again first when it was lost:
        libvirt 9.0 sometimes drops the one of an upload into a full pool.
        """
        try:
            self.target.reconnect()
            return streams.pool_available(self.target, pool)
        except PhyllomeError:
            return None

    def _pool_xml(self, client, name):
        return client._call('cannot read storage pool %s' % name, client._pool(name).XMLDesc, 0)

    def _open_pool(self, client, directory, build, permissions=None, parents_mode=None):
        """The pool over `directory` on `client`: an existing one, or a transient one opened now (None if absent).

        build: create the directory when it is missing, with `permissions`;
        the parents it lacks get `parents_mode` (see _make_parents).
        """
        for xml in client.pool_xmls():
            name, path = pool_directory(xml)
            if path == posixpath.normpath(directory):
                return name
        name = streams.transient_pool_name(directory)
        xml = streams.dir_pool_xml(name, directory, permissions)
        where = 'the source' if client is self.source else 'the target'
        index = self.recorder.mark()
        try:
            self.recorder.apply('open transient storage pool %s over %s on %s' % (name, directory, where),
                                streams.start_transient_pool, client, name, xml, False)
        except LibvirtFailure as exc:
            if not streams.directory_missing(exc):
                raise
            self.recorder.failed_unchanged(index)
            self.recorder.actions.pop()
            if not build:
                return None
            if parents_mode:
                self._make_parents(client, directory, parents_mode, where)
                index = self.recorder.mark()  # what the pool's close undoes: the open below, not the parents
            self.recorder.apply('open transient storage pool %s over %s on %s (creating the directory)'
                                % (name, directory, where), streams.start_transient_pool, client, name, xml, True)
        self.pools.append((index, client, name, where))
        return name

    def _make_parents(self, client, directory, mode, where):
        """Create the missing directories above `directory`, top down, with `mode` (owner: libvirt's user).

        A pool build creates the final directory with the pool's permissions
        but its missing parents with the default 0755; libvirt makes those of
        swtpm state 0711. Each missing one is built as a transient pool of its
        own, closed at once (the directory stays; undefining the domain with
        its TPM state removes the one named after its uuid, an undo removes
        the others). An existing one is only looked at (a transient pool
        opened and closed without a build).
        """
        parent = posixpath.dirname(posixpath.normpath(directory))
        if parent in ('/', ''):
            return
        name = streams.transient_pool_name(parent)
        xml = streams.dir_pool_xml(name, parent, {'mode': mode})
        try:
            streams.start_transient_pool(client, name, xml, False)
        except LibvirtFailure as exc:
            if not streams.directory_missing(exc):
                raise
            self._make_parents(client, parent, mode, where)
            index = self.recorder.mark()
            self.recorder.apply('create directory %s on %s (mode %s, as libvirt makes it)' % (parent, where, mode),
                                streams.start_transient_pool, client, name, xml, True)
            if self.tpm_dir and parent == posixpath.dirname(self.tpm_dir):
                self.undefined.append(index)  # libvirt removes it with the domain's TPM state
            else:
                # Undone after the domain's undefine has emptied it: placed before that undo, which runs later.
                at = self.undo.index(self.undefine_undo) if self.undefine_undo in self.undo else len(self.undo)
                self.undo.insert(at, (
                    index, 'remove directory %s on %s' % (parent, where), streams.remove_empty_directory,
                    (client, name, parent)))
        streams.stop_transient_pool(client, name)

    def _close_pools(self):
        for index, client, name, where in reversed(self.pools):
            self.recorder.undo(index, 'close transient storage pool %s on %s (its files stay)' % (name, where),
                               streams.stop_transient_pool, client, name)
        self.pools = []

    def _verify(self):
        """Compare each copy's checksum with the one of its read-back (made during the copy: streams.ReadBack)."""
        self.step = 'verify'
        waited = 0.0
        for copy in self.copies:
            found, wait, how = copy['_readback']
            if found != copy['sha256']:
                raise HostStateError('the copy %s differs from the source (sha256 of its content %s, expected %s; %s)'
                                     % (copy['target'], found, copy['sha256'], VERIFIED_BY[how]))
            waited += wait
        for copy in self.copies:
            copy['verified'] = True
            copy['verified_by'] = copy['_readback'][2]
        self.verify_seconds = round(waited, 3)

    def _roll_back(self):
        """Undo the steps done, in reverse; (the descriptions of the undos done, of those that failed)."""
        undone, left = [], []
        # The failure may be the target's connection lost (it stopped answering): open it again, waiting up to
        # RECONNECT_SECONDS for it to come back, so that its half copy is removed.
        deadline = self.clock() + RECONNECT_SECONDS
        while not self.recorder.check_mode:
            try:
                self.target.reconnect()
                break
            except PhyllomeError as exc:
                if self.clock() >= deadline:
                    left.append('cannot reach %s again within %d s: %s'
                                % (self.params['target_uri'], RECONNECT_SECONDS, exc.msg))
                    break
                time.sleep(RECONNECT_PAUSE)
        for index, description, func, args in reversed(self.undo):
            (undone if self.recorder.undo(index, description, func, *args) else left).append(description)
        self.undo = []
        self._close_pools()
        for copy in self.copies:
            copy.pop('_readback', None)
        return undone, left

    def _undefine_target(self, uuid):
        # Looked up again: the handle of a lost connection is dead (see _roll_back).
        dom = self.target.lookup_uuid(uuid)
        if dom is not None:
            self.target.undefine(dom)

    def _restart_source(self, src_dom):
        if not self.source.is_active(src_dom):
            self.source.start(src_dom)

    def _finish_source(self, plan, src_dom):
        """After the target holds the verified domain: remove the source's copy, or keep it stopped."""
        for copy in self.copies:
            copy.pop('_readback', None)
        src_uri = self.params['source_uri']
        try:
            if self.params['keep_source']:
                if self.source.autostart(src_dom):
                    self._do('source', 'turn autostart of domain %s off on %s (kept, stopped)' % (self.name, src_uri),
                             self.source.set_autostart, src_dom, False)
                return
            self._do('source', 'undefine domain %s on %s (with its varstore and TPM state)' % (self.name, src_uri),
                     self.source.undefine, src_dom)
            for disk in plan.disks:
                self._do('source', 'delete volume %s in pool %s on %s' % (disk['volume'], disk['source_pool'], src_uri),
                         self.source.delete_volume, disk['source_pool'], disk['volume'])
        except PhyllomeError as exc:
            raise type(exc)('%s now runs from %s, but removing it from %s failed: %s' % (
                self.name, self.params['target_uri'], src_uri, exc.msg))


def target_volume_xml(name, size, permissions, fmt='raw'):
    """XML of a target volume for a copy: the source's permissions kept."""
    xml = volume_xml(name, size, fmt)
    if not permissions:
        return xml
    volume = parse(xml, 'storage volume XML')
    perms = sub(volume.find('target'), 'permissions')
    for key in ('mode', 'owner', 'group'):
        if permissions.get(key) is not None:
            sub(perms, key, text=permissions[key])
    return to_string(volume)


def _nothing():
    """The umbrella step of a state copy: its parts are steps of their own."""
