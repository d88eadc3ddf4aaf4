# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mode=live of phyllome.os.migrate: the cold path's plan and refusals, then libvirt's live migration.

Order (docs/decisions/migration.md): the cold plan (every refusal: hostdevs,
maps, firmware, swtpm, machine type, space); the domain must run; libvirt's
comparison of its CPU with the target hypervisor's (virConnectCompareHypervisorCPU);
the target's volumes created empty with the source's formats and
capacities (drive-mirror writes into existing files); the UEFI varstore
copied as in a cold move; then virDomainMigrate3 with LIVE | PERSIST_DEST |
NON_SHARED_DISK (the TPM state crosses in QEMU's migration stream). A
failure deletes what the target got; the domain keeps running on the
source. Only after the move is the source's stopped copy undefined and its
volumes deleted (or kept, with keep_source), as after a cold move.
"""

from __future__ import annotations

import posixpath

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import HostStateError, LibvirtFailure, PhyllomeError
from ansible_collections.phyllome.os.plugins.module_utils._common.units import format_bytes
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import parse_domain, to_string
from ansible_collections.phyllome.os.plugins.module_utils._libvirt import migration as streams
from ansible_collections.phyllome.os.plugins.module_utils._migrate.cold import Migration, target_volume_xml
from ansible_collections.phyllome.os.plugins.module_utils._migrate.plan import (
    cpu_refusal, create_volume_action, live_progress, live_refusals, rewrite_xml)


class LiveMigration(Migration):
    """One live migration: the cold plan, the CPU check, the target's empty volumes, libvirt's migration."""

    def run(self):
        src_dom, settled = self._settled()
        if settled is not None:
            return settled
        plan = self._plan(src_dom)
        live_xml = streams.migratable_xml(self.source, src_dom) if self.source.is_active(src_dom) else None
        refusals = live_refusals(live_xml)
        if live_xml is not None:
            refusals.extend(self._cpu_refusals(live_xml))
        if refusals:
            raise HostStateError('%s cannot move live: %s' % (self.name, '; '.join(refusals)))
        self.tpm_dir = plan.tpm_dir
        self.started = self.clock()
        try:
            seconds = self._move_live(plan, src_dom, live_xml)
        except PhyllomeError as exc:
            self._fail(exc, plan, 'it still runs on %s' % self.params['source_uri'], live=True)
        if seconds is not None:
            # Read before the source copy is undefined; libvirt keeps a completed job's statistics until then.
            try:
                self.migration = live_progress(self.source.job_stats(src_dom, completed=True))
            except LibvirtFailure:
                self.migration = None  # the move is done; only its figures are missing
        self._finish_source(plan, src_dom)
        return self.result('migrated', plan, started=True, seconds=round(self.clock() - self.started, 3),
                           migration_seconds=round(seconds, 3) if seconds is not None else None)

    def _cpu_refusals(self, live_xml):
        domain = parse_domain(live_xml, 'the running definition of %s' % self.name)
        cpu = domain.find('cpu')
        if cpu is None:
            return []  # the hypervisor's default model, which libvirt's own checks cover
        os_type = domain.find('os/type')
        try:
            verdict, detail = self.target.compare_hypervisor_cpu(to_string(cpu), os_type.get('arch'),
                                                                 os_type.get('machine'), domain.get('type'))
        except LibvirtFailure as exc:
            return [cpu_refusal(exc.msg)]
        return [cpu_refusal(detail or verdict)] if verdict == 'incompatible' else []

    def _move_live(self, plan, src_dom, live_xml):
        tgt_uri = self.params['target_uri']
        for disk in plan.disks:
            created = self.recorder.mark()
            xml = target_volume_xml(disk['volume'], disk['capacity'], disk['permissions'], disk['format'] or 'raw')
            self._do('volumes', create_volume_action(disk['volume'], disk['target_pool'], disk['capacity']),
                     self.target.create_volume, disk['target_pool'], xml, atomic=True)
            self.undo.append((created, 'delete volume %s in pool %s on %s' % (disk['volume'], disk['target_pool'], tgt_uri),
                              self.target.delete_volume, (disk['target_pool'], disk['volume'])))
        if plan.nvram:
            # libvirt 9.0 does not carry the varstore file: copied first, as in a cold move.
            self._copy_directory_files('the UEFI varstore %s' % plan.nvram, posixpath.dirname(plan.nvram),
                                       [posixpath.basename(plan.nvram)])
        self._close_pools()
        network_map = self.params['network_map']
        dest_xml = rewrite_xml(live_xml, plan.disks, network_map) if live_xml is not None else None
        how = [self.params['migrate_uri'] or 'the target host\'s own address']
        if self.params['bandwidth']:
            how.append('up to %d MiB/s' % self.params['bandwidth'])
        if self.params['timeout']:
            how.append('abort after %d s' % self.params['timeout'])
        return self._do('migrate', 'migrate domain %s live to %s, copying %s of disks (%s)'
                        % (self.name, tgt_uri, format_bytes(plan.bytes_to_copy), ', '.join(how)),
                        streams.migrate_live, self.source, src_dom, self.target, dest_xml, plan.xml,
                        self.params['migrate_uri'], self.params['bandwidth'], self.params['timeout'], self.clock,
                        atomic=True)
