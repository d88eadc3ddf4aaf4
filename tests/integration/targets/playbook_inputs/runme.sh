#!/usr/bin/env bash
# Bad input to site.yml and migrate.yml through ansible-runner: refused before
# any host is reached (aliases says more).
set -euo pipefail

collection_root=$(cd ../../../.. && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/project" "$work/inventory" "$work/env"
cp "$collection_root/playbooks/site.yml" "$collection_root/playbooks/migrate.yml" "$work/project/"
cp -r "$collection_root/playbooks/vars" "$work/project/"
# Two hosts that never answer (port 1 of loopback): any task run on them
# would end "unreachable" within seconds.
cat > "$work/inventory/hosts.yml" <<EOI
phyllome_hosts:
  hosts:
    hv1: {}
    hv2: {}
  vars:
    ansible_host: 127.0.0.1
    ansible_port: 1
    ansible_connection: ssh
    ansible_ssh_common_args: -o ConnectTimeout=5 -o BatchMode=yes
EOI

# ident, playbook, limit, then the extra vars as one JSON object
jobs=(
  "site-serial|site.yml|hv2|{\"phyllome_site_serial\": \"lots\"}"
  "site-serial-batch|site.yml|hv2|{\"phyllome_site_serial\": [1, \"lots\"]}"
  "site-serial-batches|site.yml|hv2|{\"phyllome_site_serial\": [1, \"50%\"], \"phyllome_site_max_fail_percentage\": 0}"
  "site-max-fail|site.yml||{\"phyllome_site_max_fail_percentage\": \"half\"}"
  "migrate-missing|migrate.yml||{\"phyllome_migrate_domain\": \"vm1\", \"phyllome_migrate_mode\": \"live\"}"
  "migrate-same-host|migrate.yml||{\"phyllome_migrate_domain\": \"vm1\", \"phyllome_migrate_source\": \"hv1\", \"phyllome_migrate_target\": \"hv1\"}"
)
for job in "${jobs[@]}"; do
  IFS='|' read -r ident playbook limit extravars <<<"$job"
  printf '%s\n' "$extravars" > "$work/env/extravars"
  ansible-runner run "$work" -p "$playbook" --ident "$ident" ${limit:+--limit "$limit"} </dev/null >"$work/$ident.txt" 2>&1 || true
done

python - "$work" <<'EOP'
import glob, json, os, sys

work = sys.argv[1]
# ident: the task that must fail, and what its message must name
expected = {
    'site-serial': ("Refuse a phyllome_site_serial that is neither a number nor a percentage", 'phyllome_site_serial'),
    'site-serial-batch': ("Refuse a phyllome_site_serial that is neither a number nor a percentage", 'phyllome_site_serial'),
    'site-max-fail': ("Check the playbook's variables", 'phyllome_site_max_fail_percentage'),
    'migrate-missing': ("Check the playbook's variables", 'phyllome_migrate_source, phyllome_migrate_target'),
    'migrate-same-host': ('Refuse an unknown host', "source 'hv1', target 'hv1'"),
}
for ident, (task, words) in expected.items():
    artifacts = os.path.join(work, 'artifacts', ident)
    status = open(os.path.join(artifacts, 'status')).read().strip()
    assert status == 'failed', (ident, status, open(os.path.join(work, ident + '.txt')).read())
    events = []
    for path in sorted(glob.glob(os.path.join(artifacts, 'job_events', '*.json'))):
        with open(path) as f:
            events.append(json.load(f))
    # the checks run once, on the controller: no host is ever reached
    assert not [e for e in events if e['event'] == 'runner_on_unreachable'], ident
    failed = [e['event_data'] for e in events if e['event'] == 'runner_on_failed']
    assert len(failed) == 1 and failed[0]['task'].startswith(task), (ident, [f['task'] for f in failed])
    message = json.dumps(failed[0]['res'])
    assert words in message, (ident, words, message)
    plays = [e['event_data']['play'] for e in events if e['event'] == 'playbook_on_play_start']
    assert len(plays) == 1, (ident, plays)
    print('%s: refused by "%s", no host reached' % (ident, failed[0]['task']))

# Growing batches (a canary host, then half) pass the checks: the job goes on
# to its second play and only then meets the host that does not answer.
artifacts = os.path.join(work, 'artifacts', 'site-serial-batches')
events = []
for path in sorted(glob.glob(os.path.join(artifacts, 'job_events', '*.json'))):
    with open(path) as f:
        events.append(json.load(f))
assert not [e for e in events if e['event'] == 'runner_on_failed'], [e['event_data']['task'] for e in events
                                                                      if e['event'] == 'runner_on_failed']
plays = [e['event_data']['play'] for e in events if e['event'] == 'playbook_on_play_start']
assert plays == ["Check the playbook's variables", 'Converge Phyllome OS hosts'], plays
assert [e for e in events if e['event'] == 'runner_on_unreachable'], 'the second play never reached its host'
print('site-serial-batches: [1, "50%"] accepted, the converge play started')
EOP
