#!/usr/bin/env bash
set -euxo pipefail

collection_root=$(cd ../../../.. && pwd)
config=$collection_root/tests/integration/integration_config.yml
work=$(mktemp -d)
# libvirt's qemu user reads the overlay and writes the serial log here
chmod 0755 "$work"
domain=phyllome-hostrole-$$
uri=$(python - "$config" <<'EOP'
import sys, yaml
with open(sys.argv[1]) as f:
    print(yaml.safe_load(f)['phyllome_test_uri'])
EOP
)
cleanup() {
  virsh -c "$uri" destroy "$domain" >/dev/null 2>&1 || true
  virsh -c "$uri" undefine "$domain" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# setup_test_guests is a sibling target
ANSIBLE_ROLES_PATH=$(cd .. && pwd)
export ANSIBLE_ROLES_PATH
printf 'localhost ansible_connection=local ansible_python_interpreter=%s\n' "$(command -v python)" >"$work/controller.ini"

# 1. Boot the guest; write an inventory that reaches it.
ansible-playbook -i "$work/controller.ini" boot_guest.yml -e "@$config" -e "work=$work" -e "domain=$domain"

# 2. The role's boot-time part, allowed to reboot: changes, then a real reboot.
ansible-playbook -i "$work/guest.yml" converge.yml -e phyllome_host_reboot=if_needed

# 3. Again, with the default policy: nothing changes, nothing is pending.
ANSIBLE_STDOUT_CALLBACK=ansible.posix.json ANSIBLE_LOAD_CALLBACK_PLUGINS=1 \
  ansible-playbook -i "$work/guest.yml" converge.yml >"$work/second.json"
python - "$work/second.json" <<'EOP'
import json, sys
result = json.load(open(sys.argv[1]))
stats = result['stats']['phyllome-role-guest']
assert stats['changed'] == 0 and stats['failures'] == 0, stats
facts = {}
for play in result['plays']:
    for task in play['tasks']:
        facts.update(task['hosts'].get('phyllome-role-guest', {}).get('ansible_facts', {}))
assert facts['phyllome_host_reboot_pending'] is False, facts
assert facts['phyllome_host_reboot_reasons'] == [], facts
print('second run: changed=0, no reboot pending')
EOP

# 4. What the guest's kernel runs with now.
ansible-playbook -i "$work/guest.yml" verify.yml
