#!/usr/bin/env bash
# The main job (`./dev run`): converge bare hosts into Phyllome OS hosts and
# boot their VMs, on this machine, from nothing.
#
#   1. the lab's bare Debian host(s): systemd-nspawn, each in a network
#      namespace of its own, air-gapped, fed from a local package repository,
#      with the kernel and initramfs of a small test guest (tests/guests/)
#      and a base volume; the inventory declares two guests per host
#   2. playbooks/site.yml: the phyllome.os.host role, then the
#      phyllome.os.guests role, which defines and starts the inventory's
#      guests in one phyllome.os.domains task: the default Phyllome Linux VM
#      (UEFI, TPM 2.0) and a tiny BIOS guest on a qcow2 overlay
#   3. tests/lab/guests_booted.yml: their serial consoles say they booted
#   4. the report of each host (playbooks/report.yml): readiness checks, IOMMU
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

run_step "lab: bare host(s) (LAB_HOSTS=${LAB_HOSTS:-1})" tests/lab/hosts.sh up
inventory=$(tests/lab/hosts.sh inventory)
# shellcheck disable=SC2086 # extra arguments are words
run_step "converge: playbooks/site.yml (host role, then the inventory's guests)" \
  ansible-playbook -i "$inventory" playbooks/site.yml $SITE_ARGS
run_step "VMs: the default Phyllome Linux VM (UEFI + TPM) and the tiny overlay guest booted on each host" \
  ansible-playbook -i "$inventory" tests/lab/guests_booted.yml
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
