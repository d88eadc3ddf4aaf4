#!/usr/bin/env bash
# Starts (or stops) the test libvirt daemon: `libvirtd.sh up|down|status`.
#
# PID 1 here is not systemd, so the daemons are started by hand. libvirtd runs
# inside a network namespace of its own, so the NAT bridges of libvirt
# networks (virbr0 on 192.168.122.0/24) and the guests live there and never in
# the machine's own namespace. Clients still reach it over the unix socket.
set -euo pipefail

NETNS=${PHYLLOME_TEST_NETNS:-phyllome-test}
SOCK=/run/libvirt/libvirt-sock

running() { pgrep -x libvirtd >/dev/null 2>&1 && [ -S "$SOCK" ]; }

up() {
  if [ -e /dev/kvm ]; then
    # libvirt checks that the qemu user can open /dev/kvm; when it cannot, it
    # throws its capability cache away on every call and each define takes
    # 40-110 s instead of 0.02 s.
    chgrp kvm /dev/kvm
    chmod 0660 /dev/kvm
  fi
  if running; then
    return 0
  fi
  if ! ip netns list | grep -qw "$NETNS"; then
    ip netns add "$NETNS"
  fi
  ip netns exec "$NETNS" ip link set lo up
  pgrep -x virtlogd >/dev/null 2>&1 || virtlogd -d
  ip netns exec "$NETNS" libvirtd -d
  for _ in $(seq 1 100); do
    if [ -S "$SOCK" ] && virsh -c qemu:///system version >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.2
  done
  echo "libvirtd did not answer on $SOCK" >&2
  exit 1
}

down() {
  pkill -x libvirtd 2>/dev/null || true
  pkill -x virtlogd 2>/dev/null || true
}

status() {
  if running; then
    virsh -c qemu:///system version
  else
    echo "libvirtd is not running"
    return 1
  fi
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
