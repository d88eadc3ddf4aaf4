#!/usr/bin/env bash
# The main job (`./dev run`): converge bare hosts into Phyllome OS hosts and
# boot a VM on each, on this machine, from nothing.
#
#   1. the lab's bare Debian host(s): systemd-nspawn, each in a network
#      namespace of its own, air-gapped, fed from a local package repository
#   2. the kernel and initramfs of a small test guest (tests/guests/)
#   3. playbooks/site.yml: the phyllome.os.host role on every host
#   4. the default Phyllome Linux VM (UEFI, TPM 2.0) defined and started on
#      each host with phyllome.os.domain; its serial console says it booted
#   5. the report of each host (playbooks/report.yml): readiness checks, IOMMU
#      groups, domains with their addresses; an HTML page per host and an
#      index, in $REPORT_DIR (default .build/lab/report), paths printed
#
# LAB_HOSTS=N for more hosts; SITE_ARGS and RUN_ARGS pass extra arguments to
# site.yml and report.yml. The hosts stay up: `tests/lab/hosts.sh ssh
# lab1` logs in, `./dev lab-down` removes everything but the caches.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo_root=$(cd "$here/../.." && pwd)
cd "$repo_root"
SITE_ARGS=${SITE_ARGS:-}
RUN_ARGS=${RUN_ARGS:-}
REPORT_DIR=${REPORT_DIR:-${LAB_DIR:-$repo_root/.build/lab}/report}

declare -a step_names=() step_seconds=()
run_step() {
  local name=$1 start end
  shift
  printf '\n===== %s\n' "$name"
  start=$(date +%s.%N)
  "$@"
  end=$(date +%s.%N)
  step_names+=("$name")
  step_seconds+=("$(awk -v s="$start" -v e="$end" 'BEGIN{printf "%.1f", e-s}')")
}

guest_json=$(mktemp)
trap 'rm -f "$guest_json"' EXIT

build_guest() {
  python tests/guests/guests.py build acpi >"$guest_json"
  python -c 'import json,sys; g=json.load(open(sys.argv[1]))["acpi"]; print("guest kernel %s (%s)" % (g["kernel_version"], "built" if g["built"] else "cached"))' "$guest_json"
}

boot_vm() {
  local extra
  extra=$(python -c 'import json,sys; print(json.dumps({"lab_guest": json.load(open(sys.argv[1]))["acpi"]}))' "$guest_json")
  ansible-playbook -i "$inventory" tests/lab/boot_vm.yml -e "$extra"
}

run_step "lab: bare host(s) (LAB_HOSTS=${LAB_HOSTS:-1})" tests/lab/hosts.sh up
inventory=$(tests/lab/hosts.sh inventory)
run_step "test guest: kernel and initramfs" build_guest
# shellcheck disable=SC2086 # extra arguments are words
run_step "converge: playbooks/site.yml" ansible-playbook -i "$inventory" playbooks/site.yml $SITE_ARGS
run_step "VM: the default Phyllome Linux VM (UEFI + TPM) boots on each host" boot_vm
# shellcheck disable=SC2086
run_step "report: playbooks/report.yml" ansible-playbook -i "$inventory" playbooks/report.yml \
  -e "phyllome_report_dir=$REPORT_DIR" $RUN_ARGS

printf '\n===== what the main job did, and how long each step took\n'
for i in "${!step_names[@]}"; do
  printf '%8s s  %s\n' "${step_seconds[$i]}" "${step_names[$i]}"
done
printf '\nThe report (open in a browser, no network needed):\n'
printf '  %s\n' "$REPORT_DIR/index.html"
for page in "$REPORT_DIR"/*.html; do
  [ "${page##*/}" = index.html ] || printf '  %s\n' "$page"
done
printf '\nThe hosts stay up: tests/lab/hosts.sh status | ssh lab1 [CMD]; ./dev lab-down removes them.\n'
