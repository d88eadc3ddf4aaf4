#!/usr/bin/env bash
# playbooks/report.yml, the way an admin runs it and the way AWX runs it,
# then its pages in a real browser (headless Chromium, Debian's package).
#
# Hosts: "localhost" asks the private test libvirtd (a shut-off UEFI + TPM
# domain of this test), "testdriver" asks libvirt's test:///default (a
# running domain with an address), "gone" cannot be reached (ansible-playbook
# run only): the index must still list it.
set -euxo pipefail

collection_root=$(cd ../../../.. && pwd)
work=$(mktemp -d)
domain=phyllome-it-report-$$
uri=$(python - "$collection_root/tests/integration/integration_config.yml" <<'EOP'
import sys, yaml
with open(sys.argv[1]) as f:
    print(yaml.safe_load(f)['phyllome_test_uri'])
EOP
)
cleanup() {
  virsh -c "$uri" undefine --nvram "$domain" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

virsh -c "$uri" define /dev/stdin <<EOX
<domain type='qemu'>
  <name>$domain</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os firmware='efi'><type arch='x86_64' machine='q35'>hvm</type></os>
  <features><acpi/></features>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/var/lib/libvirt/images/$domain.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <interface type='user'><mac address='52:54:00:7e:90:01'/><model type='virtio'/></interface>
    <tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>
  </devices>
</domain>
EOX
before=$(virsh -c "$uri" dumpxml --inactive "$domain")

python=$(command -v python)
mkdir -p "$work/project" "$work/inventory" "$work/env" "$work/cwd"
cp "$collection_root/playbooks/report.yml" "$collection_root/playbooks/host_report.yml" \
   "$collection_root/playbooks/drift.yml" "$work/project/"
cp -r "$collection_root/playbooks/vars" "$work/project/"
cat > "$work/inventory/hosts.yml" <<EOI
all:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: $python
      phyllome_report_uri: "$uri"
      phyllome_drift_uri: "$uri"
      phyllome_guests: []
    testdriver:
      ansible_connection: local
      ansible_python_interpreter: $python
      phyllome_report_uri: "test:///default"
      phyllome_drift_uri: "test:///default"
      phyllome_guests:
        - name: test
EOI
cat > "$work/gone.yml" <<EOI
all:
  hosts:
    gone:
      ansible_host: 127.0.0.1
      ansible_port: 1
      ansible_connection: ssh
      ansible_ssh_common_args: -o ConnectTimeout=5 -o BatchMode=yes
EOI

# 1. ansible-playbook, from a directory of its own, pages to an explicit directory
rc=0
(cd "$work/cwd" && ansible-playbook -i "$work/inventory/hosts.yml" -i "$work/gone.yml" \
   "$collection_root/playbooks/report.yml" -e "phyllome_report_dir=$work/pages" </dev/null >"$work/playbook.txt" 2>&1) || rc=$?
cat "$work/playbook.txt"
# 4: a host was unreachable; anything else is a failure of the report itself
[ "$rc" = 4 ]
grep -q "localhost: readiness " "$work/playbook.txt"
grep -q "    $domain: shutoff, efi, TPM tpm-crb; 52:54:00:7e:90:01: no address" "$work/playbook.txt"
grep -q "test: running, bios; 192.168.122.3/24 (agent)" "$work/playbook.txt"
ls "$work/pages"
[ "$(cd "$work/pages" && echo *)" = "index.html localhost.html testdriver.html" ]

# the report changed nothing on the host
[ "$(virsh -c "$uri" dumpxml --inactive "$domain")" = "$before" ]
[ "$(virsh -c "$uri" domstate "$domain")" = "shut off" ]

# 2. ansible-runner as AWX runs a job template: inventory + extra vars, no
# terminal; the pages go to the default place, under the job's current
# directory (the project directory)
cat > "$work/env/extravars" <<EOI
phyllome_report_title: "Fleet & <lab>"
EOI
ansible-runner run "$work" -p report.yml --ident report </dev/null >"$work/runner.txt" 2>&1 || {
  cat "$work/runner.txt"
  exit 1
}
# playbooks/host_report.yml (the readiness checks alone, JSON files), the same way
cat > "$work/env/extravars" <<EOI
host_report_dir: $work/json
host_report_uri: "$uri"
EOI
mkdir "$work/json"
ansible-runner run "$work" -p host_report.yml --ident host_report </dev/null >"$work/runner.txt" 2>&1 || {
  cat "$work/runner.txt"
  exit 1
}

# playbooks/drift.yml, the same way: the two "hosts" (QEMU behind the private
# libvirtd, libvirt's test driver) differ in what blocks migration (the test
# driver has no host-model CPU, no q35 machine), so the job fails, after the
# pages are written with the drift on the index
cat > "$work/env/extravars" <<EOI
phyllome_drift_hosts: all
phyllome_report_dir: $work/drift-pages
EOI
ansible-runner run "$work" -p drift.yml --ident drift </dev/null >"$work/runner.txt" 2>&1 || true
# a variable of the wrong type stops the play before anything runs (playbooks/vars/argument_specs.yml)
cat > "$work/env/extravars" <<EOI
phyllome_drift_hosts: all
phyllome_drift_fail: maybe
EOI
ansible-runner run "$work" -p drift.yml --ident drift_spec </dev/null >"$work/runner.txt" 2>&1 || true

python - "$work" "$domain" "$uri" <<'EOP'
import glob, json, os, sys

work, domain, uri = sys.argv[1:4]


def job(ident, status='successful', event='runner_on_ok'):
    """The results of an ansible-runner job that ended with `status`, by module (`event`: ok or failed ones)."""
    artifacts = os.path.join(work, 'artifacts', ident)
    got = open(os.path.join(artifacts, 'status')).read().strip()
    rc = open(os.path.join(artifacts, 'rc')).read().strip()
    assert got == status and (rc == '0') == (status == 'successful'), (ident, got, rc)
    actions = {}
    for path in glob.glob(os.path.join(artifacts, 'job_events', '*.json')):
        with open(path) as f:
            data = json.load(f)
        if data.get('event') == event:
            actions.setdefault(data['event_data'].get('task_action'), []).append(data['event_data'])
    return actions


actions = job('report')
for module in ('phyllome.os.host_info', 'phyllome.os.iommu_info', 'phyllome.os.domain_info'):
    assert sorted(d['host'] for d in actions[module]) == ['localhost', 'testdriver'], module
    assert not any(d['res'].get('changed') for d in actions[module]), module
doms = [d['res'] for d in actions['phyllome.os.domain_info'] if d['host'] == 'localhost'][0]['domains']
mine = [d for d in doms if d['name'] == domain][0]
assert (mine['state'], mine['firmware'], mine['tpm']['model']) == ('shutoff', 'efi', 'tpm-crb'), mine
pages = sorted(os.listdir(os.path.join(work, 'project', 'phyllome-report')))
assert pages == ['index.html', 'localhost.html', 'testdriver.html'], pages

checks = job('host_report')['phyllome.os.host_info']
assert sorted(d['host'] for d in checks) == ['localhost', 'testdriver']
for data in checks:
    result = data['res']
    assert result['verdict'] in ('pass', 'warn', 'fail') and result['checks'], result
    with open(os.path.join(work, 'json', data['host'] + '.json')) as f:
        assert json.load(f)['checks'] == result['checks']
local = [d['res'] for d in checks if d['host'] == 'localhost'][0]
assert local['host']['libvirt']['uri'] == uri and local['host']['libvirt']['reachable'], local['host']['libvirt']
print('ansible-runner jobs: report.yml wrote %s; host_report.yml wrote the JSON of %d hosts' % (pages, len(checks)))

# drift.yml: fingerprints of both hosts, the guests compared, the table, a failure on what blocks migration
drift = job('drift', status='failed')
assert sorted(d['host'] for d in drift['phyllome.os.fingerprint_info']) == ['localhost', 'testdriver']
guests = {d['host']: d['res'] for d in drift['phyllome.os.domains']}
assert not any(r.get('changed') is None for r in guests.values()), guests
# the test's domain is on the private daemon and declared nowhere; the test driver's "test" is declared
assert domain in [r['name'] for r in guests['localhost']['results'] if r['status'] == 'undeclared'], guests['localhost']
assert [r['status'] for r in guests['testdriver']['results'] if r['name'] == 'test'] == ['unchanged'], guests['testdriver']
lines = [d['res']['msg'] for d in drift['ansible.builtin.debug'] if isinstance(d['res'].get('msg'), list)
         and d['res']['msg'] and 'between localhost, testdriver' in d['res']['msg'][0]][0]
assert any(line.startswith('BLOCK machine.') for line in lines), lines
assert 'guest localhost/%s: defined, declared nowhere' % domain in lines, lines
failed = job('drift', status='failed', event='runner_on_failed')
assert [d['task'] for d in failed['ansible.builtin.assert']] == ['Fail when a difference blocks migration']
assert 'block migration between the hosts' in failed['ansible.builtin.assert'][0]['res']['msg']
assert sorted(os.listdir(os.path.join(work, 'drift-pages'))) == ['index.html', 'localhost.html', 'testdriver.html']
spec = job('drift_spec', status='failed', event='runner_on_failed')
assert list(spec) == ['ansible.builtin.validate_argument_spec'], list(spec)
assert 'phyllome_drift_fail' in json.dumps(spec['ansible.builtin.validate_argument_spec'][0]['res']), spec
print('ansible-runner: drift.yml compared %d hosts and failed on %d blocking differences; a bad variable stops it'
      % (len(drift['phyllome.os.fingerprint_info']), sum(line.startswith('BLOCK') for line in lines)))
EOP

# 3. the pages in headless Chromium: what shows, and nothing requested
python - "$collection_root" "$work" "$domain" <<'EOP'
import os, sys

root, work, domain = sys.argv[1:4]
sys.path.insert(0, os.path.join(root, 'tests', 'report'))
import render

# the harness sees what a page asks for: a page that loads a stylesheet and an
# image from elsewhere shows both requests (and they reach only our proxy)
canary = os.path.join(work, 'canary.html')
with open(canary, 'w') as f:
    f.write('<!DOCTYPE html><html><head><link rel="stylesheet" href="https://fonts.example.invalid/a.css">'
            '</head><body>canary<img src="http://cdn.example.invalid/b.png"></body></html>')
seen = render.render(canary)
assert seen['text'] == 'canary', seen['text']
assert sorted(r.split(' ', 1)[1] for r in seen['requests']) == [
    'fonts.example.invalid:443', 'http://cdn.example.invalid/b.png'], seen['requests']

for pages, title in ((os.path.join(work, 'pages'), 'Phyllome OS hosts'),
                     (os.path.join(work, 'project', 'phyllome-report'), 'Fleet & <lab>')):
    index = render.render(os.path.join(pages, 'index.html'))
    assert index['requests'] == [], index['requests']
    assert title in index['text'], index['text']
    assert 'localhost' in index['text'] and 'testdriver' in index['text'], index['text']
    assert 'href="localhost.html"' in index['dom'] and 'href="testdriver.html"' in index['dom']
    local = render.render(os.path.join(pages, 'localhost.html'))
    text = local['text']
    assert local['requests'] == [], local['requests']
    for expected in ('Readiness (host_info)', 'kvm_device', 'libvirt', 'IOMMU groups (iommu_info)',
                     'Domains (domain_info)', domain, 'shutoff', 'tpm-crb 2.0 (emulator)',
                     '52:54:00:7e:90:01 user (virtio)', 'no address found'):
        assert expected in text, (expected, text)
    assert any(v in text.split()[:3] for v in ('pass', 'warn', 'fail')), text[:200]
    driver = render.render(os.path.join(pages, 'testdriver.html'))
    assert driver['requests'] == [], driver['requests']
    assert 'test test, 2 vCPU, 8192 MiB running bios' in driver['text'] and '192.168.122.3/24 (agent)' in driver['text'], driver['text']
# the drift on the index of drift.yml's pages
drift = render.render(os.path.join(work, 'drift-pages', 'index.html'))
assert drift['requests'] == [], drift['requests']
assert 'Drift between the hosts' in drift['text'] and 'Guests against the inventory' in drift['text'], drift['text']
assert 'defined, declared nowhere' in drift['text'] and domain in drift['text'], drift['text']
# the gone host is in the first index, as having no report
first = render.render(os.path.join(work, 'pages', 'index.html'))['text']
assert 'gone error no report: the host was unreachable or failed' in first, first
print('chromium: the pages render, show their hosts, verdicts and domains, and request nothing')
EOP
