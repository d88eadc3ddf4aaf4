# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""phyllome.os.domain beside community.libvirt's virt: define 50 domains, then run the same play again.

Both modules get the same full domain XML (virt: command: define) on the
private libvirtd of tests/lab/libvirtd.sh (its own socket, never the machine's
qemu:///system). The second run of each play is a no-op; ours must report zero
changes. Prints both modules' times, their ratio, and Ansible's own floor (a
loop of as many ansible.builtin.ping).
The domains are never started and are undefined at the end.
"""

from __future__ import annotations

import shutil

from common import lab_libvirtd, print_table, run_playbook, test_uri, undefine_prefixed, work_with_image

DOMAINS = 50
URI = test_uri()

XML = """<domain type='qemu'>
  <name>{{ prefix }}-{{ item }}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><boot dev='hd'/></os>
  <features><acpi/><apic/></features>
  <clock offset='utc'/>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{{ image }}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='user'><model type='virtio'/></interface>
    <console type='pty'/>
    <graphics type='vnc'><listen type='address' address='127.0.0.1'/></graphics>
    <video><model type='virtio'/></video>
  </devices>
</domain>"""

PLAY = """- hosts: localhost
  gather_facts: false
  tasks:
    - {task}
      loop: "{{{{ range({count}) | list }}}}"
      no_log: true
      vars:
        xml: |
{xml}
"""

OURS = """phyllome.os.domain:
        uri: "%s"
        xml: "{{ xml }}"
""" % URI

PEER = """community.libvirt.virt:
        uri: "%s"
        command: define
        xml: "{{ xml }}"
""" % URI


def play(task, prefix, image):
    xml = '\n'.join('          ' + line for line in XML.replace('{{ prefix }}', prefix)
                    .replace('{{ image }}', image).splitlines())
    return PLAY.format(task=task.strip(), count=DOMAINS, xml=xml)


def changed_items(result):
    """Items that reported changed, over every task of the play."""
    count = 0
    for played in result['plays']:
        for task in played['tasks']:
            host = task['hosts'].get('localhost', {})
            count += sum(1 for item in host.get('results', []) if item.get('changed'))
    return count


def main():
    lab_libvirtd('up')
    work, image = work_with_image('phyllome-bench-domain-')
    ours_prefix, peer_prefix = 'phyllome-bench-ours', 'phyllome-bench-virt'
    try:
        # Warm-up, so that the first playbook's start-up counts for neither side.
        run_playbook('- hosts: localhost\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n', workdir=work)
        rows = {}
        changes = {}
        for label, task, prefix in (('phyllome.os.domain', OURS, ours_prefix),
                                    ('community.libvirt.virt', PEER, peer_prefix)):
            text = play(task, prefix, image)
            for run in ('define', 'no-op'):
                seconds, _stats, result = run_playbook(text, workdir=work, output=True)
                rows[(label, run)] = seconds
                changes[(label, run)] = changed_items(result)
        floor, _stats = run_playbook(
            '- hosts: localhost\n  gather_facts: false\n  tasks:\n'
            '    - ansible.builtin.ping:\n      loop: "{{ range(%d) | list }}"\n      no_log: true\n' % DOMAINS,
            workdir=work)
        table = []
        for (label, run), seconds in rows.items():
            table.append(('%s, %s' % (label, run), seconds,
                          '%d of %d items changed' % (changes[(label, run)], DOMAINS)))
        table.append(('ansible.builtin.ping (floor)', floor, '%d items, what Ansible itself costs' % DOMAINS))
        print_table('%d domains, full XML, %s' % (DOMAINS, URI), table)
        ours, peer = rows[('phyllome.os.domain', 'no-op')], rows[('community.libvirt.virt', 'no-op')]
        print('  no-op run: ours / virt = %.2f; above the floor: ours %.2f s, virt %.2f s'
              % (ours / peer, ours - floor, peer - floor))
        verdict = 'OK' if changes[('phyllome.os.domain', 'no-op')] == 0 and ours <= peer else 'NOT MET'
        print('  target: no-op run reports zero changes and is not slower than virt -> %s' % verdict)
        if verdict != 'OK':
            raise SystemExit(1)
    finally:
        undefine_prefixed(URI, ours_prefix)
        undefine_prefixed(URI, peer_prefix)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
