# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""phyllome.os.domains (one task for a whole list) beside loops of phyllome.os.domain and community.libvirt's virt.

100 domains on the private libvirtd of tests/lab/libvirtd.sh (never the
machine's qemu:///system): 50 from a partial XML and 50 from the Phyllome
model. phyllome.os.domains defines them in one task and runs the same task
again (a no-op); a loop of phyllome.os.domain then runs over the same 100
items (a no-op too), and community.libvirt's virt (`command: define`, full
XML: it has no model) defines 100 domains of its own and runs again. Ansible's
floor is a loop of as many ansible.builtin.ping. Then phyllome.os.domains' own
work per domain is measured in this process (run_domains on the same list,
no Ansible), and its no-op task minus one ping task.

Targets: the no-op task at least 10x faster than virt's no-op loop, and
module work at most 10 ms a domain. The domains are never started and are
undefined at the end.
"""

from __future__ import annotations

import json
import shutil
import sys
import time

from common import COLLECTIONS, lab_libvirtd, print_table, run_playbook, test_uri, undefine_prefixed, work_with_image

XML_DOMAINS = 50
MODEL_DOMAINS = 50
DOMAINS = XML_DOMAINS + MODEL_DOMAINS
URI = test_uri()

# A partial XML: what an admin writes, not what libvirt stores.
XML = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><boot dev='hd'/></os>
  <features><acpi/><apic/></features>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{image}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='user'><model type='virtio'/></interface>
    <graphics type='vnc'><listen type='address' address='127.0.0.1'/></graphics>
  </devices>
</domain>"""


def items(prefix, image):
    """The list: XML items, then model items (whose model comes partly from the defaults)."""
    listed = [{'xml': XML.format(name='%s-x%02d' % (prefix, i), image=image)} for i in range(XML_DOMAINS)]
    listed += [{'name': '%s-m%02d' % (prefix, i), 'model': {'memory': 256 + i}} for i in range(MODEL_DOMAINS)]
    return listed


def defaults(image):
    model = {'vcpus': 1, 'disks': [{'path': image}], 'networks': [{'type': 'user'}], 'tpm': False}
    return {'domain_type': 'qemu', 'model': model}


def one_task_play():
    return ('- hosts: localhost\n  gather_facts: false\n  tasks:\n'
            '    - phyllome.os.domains:\n        uri: "%s"\n        domains: "{{ guests }}"\n'
            '        defaults: "{{ guests_defaults }}"\n' % URI)


def domain_loop_play():
    # The same items, with the same defaults merged as domains merges them.
    return ('- hosts: localhost\n  gather_facts: false\n  tasks:\n'
            '    - phyllome.os.domain:\n        uri: "%s"\n        name: "{{ item.name | default(omit) }}"\n'
            '        xml: "{{ item.xml | default(omit) }}"\n        domain_type: qemu\n'
            '        model: "{{ (guests_defaults.model | combine(item.model)) if item.model is defined else omit }}"\n'
            '      loop: "{{ guests }}"\n      no_log: true\n' % URI)


def virt_play():
    return ('- hosts: localhost\n  gather_facts: false\n  tasks:\n'
            '    - community.libvirt.virt:\n        uri: "%s"\n        command: define\n        xml: "{{ item }}"\n'
            '      loop: "{{ guests }}"\n      no_log: true\n' % URI)


def ping_play(items_count):
    return ('- hosts: localhost\n  gather_facts: false\n  tasks:\n'
            '    - ansible.builtin.ping:\n      loop: "{{ range(%d) | list }}"\n      no_log: true\n' % items_count)


def changed(result):
    """(changed tasks or items, one task's result) over the play."""
    count, last = 0, None
    for played in result['plays']:
        for task in played['tasks']:
            host = task['hosts'].get('localhost', {})
            last = host
            if 'results' in host:
                count += sum(1 for item in host['results'] if item.get('changed'))
            elif host.get('changed'):
                count += 1
    return count, last


def in_process_work(prefix, image, rounds=3):
    """Best seconds of run_domains on the list, no-op, in this process (connection included)."""
    sys.path.insert(0, COLLECTIONS)
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    from ansible_collections.phyllome.os.plugins.module_utils._domain.domain_set import RecorderSet, argument_spec, run_domains
    from ansible_collections.phyllome.os.plugins.module_utils._libvirt.domain_client import DomainClient
    params = ArgumentSpecValidator(argument_spec({'uri': {'type': 'str'}})).validate(
        {'uri': URI, 'domains': items(prefix, image), 'defaults': defaults(image)}).validated_parameters
    best = None
    for dummy in range(rounds):
        start = time.monotonic()
        with DomainClient.connect(URI) as client:
            recorders = RecorderSet(check_mode=False)
            result = run_domains(params, client, recorders)
        seconds = time.monotonic() - start
        if recorders.changed or len(result['unchanged']) != DOMAINS:
            raise RuntimeError('the in-process run is not a no-op: %s' % json.dumps(result)[:2000])
        best = seconds if best is None else min(best, seconds)
    return best


def main():
    lab_libvirtd('up')
    work, image = work_with_image('phyllome-bench-domains-')
    ours, peer = 'phyllome-bench-set', 'phyllome-bench-setvirt'
    guests = {'guests': items(ours, image), 'guests_defaults': defaults(image)}
    virt_guests = {'guests': [XML.format(name='%s-%03d' % (peer, i), image=image) for i in range(DOMAINS)]}
    try:
        # Warm-up, so that the first playbook's start-up counts for no one.
        run_playbook(ping_play(1), workdir=work)
        rows = []
        figures = {}
        for label, play, extra, note_items in (
                ('phyllome.os.domains, define (1 task)', one_task_play(), guests, False),
                ('phyllome.os.domains, no-op (1 task)', one_task_play(), guests, False),
                ('phyllome.os.domain loop, no-op', domain_loop_play(), guests, True),
                ('community.libvirt.virt loop, define', virt_play(), virt_guests, True),
                ('community.libvirt.virt loop, no-op', virt_play(), virt_guests, True),
                ('ansible.builtin.ping loop (floor)', ping_play(DOMAINS), None, True),
                ('ansible.builtin.ping, 1 task', ping_play(1), None, False)):
            seconds, _stats, result = run_playbook(play, extra_vars=extra, workdir=work, output=True)
            count, task = changed(result)
            figures[label] = seconds
            if label.startswith('ansible.builtin.ping'):
                note = 'what Ansible itself costs'
            elif note_items:
                note = '%d of %d items changed' % (count, DOMAINS)
            else:
                note = 'changed=%s; created %d, unchanged %d' % (
                    task.get('changed'), len(task.get('created', [])), len(task.get('unchanged', [])))
                figures[label + ' result'] = task
            rows.append((label, seconds, note))
        work_seconds = in_process_work(ours, image)
        print_table('%d domains (%d partial XML, %d model), %s' % (DOMAINS, XML_DOMAINS, MODEL_DOMAINS, URI), rows)
        noop = figures['phyllome.os.domains, no-op (1 task)']
        virt_noop = figures['community.libvirt.virt loop, no-op']
        loop_noop = figures['phyllome.os.domain loop, no-op']
        one_ping = figures['ansible.builtin.ping, 1 task']
        per_domain = work_seconds / DOMAINS * 1000
        print('  no-op: virt loop / domains = %.1fx, domain loop / domains = %.1fx'
              % (virt_noop / noop, loop_noop / noop))
        print('  module work per domain: %.1f ms in-process (run_domains, connection included, best of 3);'
              ' %.1f ms from the task (no-op task minus one ping task)'
              % (per_domain, (noop - one_ping) / DOMAINS * 1000))
        print('  phyllome.os.domain loop above the floor: %.1f ms a domain'
              % ((loop_noop - figures['ansible.builtin.ping loop (floor)']) / DOMAINS * 1000))
        noop_result = figures['phyllome.os.domains, no-op (1 task) result']
        met = (not noop_result.get('changed') and virt_noop / noop >= 10 and per_domain <= 10)
        print('  targets: no-op changes nothing, >= 10x faster than the virt loop, <= 10 ms a domain -> %s'
              % ('OK' if met else 'NOT MET'))
        if not met:
            raise SystemExit(1)
    finally:
        undefine_prefixed(URI, ours)
        undefine_prefixed(URI, peer)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
