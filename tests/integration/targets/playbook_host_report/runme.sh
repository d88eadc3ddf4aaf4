#!/usr/bin/env bash
# AWX/Tower runs a job template through ansible-runner: a private data dir
# with the project, an inventory and extra vars, no terminal. Do the same
# with the collection's host_report playbook and check what the job left.
set -euxo pipefail

collection_root=$(cd ../../../.. && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/project" "$work/inventory" "$work/env" "$work/reports"
# the private libvirtd of tests/lab/libvirtd.sh, never the machine's
# qemu:///system: `make integration` writes its URI into the copy's
# tests/integration/integration_config.yml
uri=$(python - "$collection_root/tests/integration/integration_config.yml" <<'EOP'
import sys, yaml
with open(sys.argv[1]) as f:
    print(yaml.safe_load(f)['phyllome_test_uri'])
EOP
)
cp "$collection_root/playbooks/host_report.yml" "$work/project/"
python=$(command -v python)
cat > "$work/inventory/hosts.yml" <<EOI
all:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: $python
EOI
cat > "$work/env/extravars" <<EOI
host_report_dir: $work/reports
host_report_uri: "$uri"
host_report_fail_on_fail: false
EOI

ansible-runner run "$work" -p host_report.yml --ident job1 </dev/null >"$work/stdout.txt" 2>&1 || {
  cat "$work/stdout.txt"
  exit 1
}

python - "$work" "$uri" <<'EOP'
import glob, json, os, sys

work, uri = sys.argv[1:3]
artifacts = os.path.join(work, 'artifacts', 'job1')
status = open(os.path.join(artifacts, 'status')).read().strip()
rc = open(os.path.join(artifacts, 'rc')).read().strip()
assert status == 'successful' and rc == '0', (status, rc)

events = []
for path in glob.glob(os.path.join(artifacts, 'job_events', '*.json')):
    with open(path) as f:
        events.append(json.load(f))
ok = [e for e in events if e.get('event') == 'runner_on_ok'
      and e['event_data'].get('task_action') in ('phyllome.os.host_info', 'host_info')]
assert len(ok) == 1, 'expected one host_info result event, got %d' % len(ok)
result = ok[0]['event_data']['res']
assert result['verdict'] in ('pass', 'warn', 'fail'), result['verdict']
assert result['checks'], 'no checks in the report'

with open(os.path.join(work, 'reports', 'localhost.json')) as f:
    report = json.load(f)
assert report['checks'] == result['checks']
assert result['host']['libvirt']['uri'] == uri, result['host']['libvirt']
assert result['host']['libvirt']['reachable'], result['host']['libvirt']
print('ansible-runner job: status %s, %d checks, verdict %s' % (status, len(result['checks']), result['verdict']))
EOP
