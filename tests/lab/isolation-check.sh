#!/usr/bin/env bash
# Proves that the tests touch nothing they did not create:
#
#   tests/lab/isolation-check.sh CMD...     (make test: CMD = make integration)
#
# 1. Plays the admin's own libvirt: when no libvirtd answers on the machine's
#    /run/libvirt/libvirt-sock, starts a stand-in the way an admin's would run
#    (`virtlogd -d; libvirtd -d`, the machine's /etc/libvirt, /var/lib/libvirt,
#    /run/libvirt..., in a network namespace of its own so that its NAT
#    network stays off the machine's) with a running domain, a started NAT
#    network, and a dir pool with a volume, all in their usual places. When
#    a libvirtd of the machine already answers, that one is watched as it is
#    (nothing is added to it, nothing stops it).
# 2. Records what must not change: the daemons' pids (and start times), the
#    domains, networks and pools with their XML, the running guests' and
#    dnsmasq's pids, and every file under /etc/libvirt, /var/lib/libvirt,
#    /var/cache/libvirt, /var/log/libvirt, /var/lib/swtpm-localca (listing +
#    sha256), the listing of /run/libvirt and root's own libvirt session
#    directories.
# 3. Runs CMD, then `tests/lab/libvirtd.sh down` (what used to end every
#    libvirtd on the machine by name), whether CMD passed or not.
# 4. Records again and fails on any difference; also fails when the private
#    daemon's tree or network namespace outlive `down`.
# 5. Stops the stand-in by the pids it recorded at start (trap: on failure
#    too) and removes what it created.
#
# Read-only connections to the machine's qemu:///system are this script's
# alone: they watch the stand-in.
# functions called only from the EXIT trap are reachable
# shellcheck disable=SC2317
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 CMD..." >&2
  exit 2
fi

HERE=$(cd "$(dirname "$0")" && pwd)
LAB_LIBVIRTD=$HERE/libvirtd.sh
ADMIN_URI=qemu:///system
ADMIN_SOCK=/run/libvirt/libvirt-sock
STANDIN_NETNS=${PHYLLOME_STANDIN_NETNS:-phyllome-standin}
NAME=phyllome-standin
POOL_DIR=/var/lib/libvirt/images/$NAME
WORK=$(mktemp -d /tmp/phyllome-isolation.XXXXXX)
STANDIN=0
# where the stand-in writes; what it adds there is removed when it stops
STANDIN_DIRS=(/etc/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /var/lib/swtpm-localca /run/libvirt)

say() { echo "isolation-check: $*" >&2; }
admin_virsh() { virsh -q -c "$ADMIN_URI" "$@"; }
admin_answers() { [ -S "$ADMIN_SOCK" ] && virsh -r -c "$ADMIN_URI" version >/dev/null 2>&1; }

# "pid starttime comm" of the process in pid FILE, or "none"
proc_id() {
  local pid
  pid=$(tr -dc '0-9' <"$1" 2>/dev/null || true)
  if [ -n "$pid" ] && [ -r "/proc/$pid/stat" ]; then
    # field 22 of /proc/PID/stat (after the parenthesised command) is the start time
    echo "$pid $(sed 's/^.*) //' "/proc/$pid/stat" | cut -d' ' -f20) $(cat "/proc/$pid/comm")"
  else
    echo none
  fi
}

# every path under STANDIN_DIRS, sorted
paths() {
  local d
  for d in "${STANDIN_DIRS[@]}"; do
    if [ -e "$d" ]; then find "$d"; fi
  done | LC_ALL=C sort
}

snapshot() {
  local out=$1 d f
  {
    echo "== daemons"
    for f in /run/libvirtd.pid /run/virtlogd.pid /run/virtlockd.pid; do
      echo "$f: $(proc_id "$f")"
    done
    echo "== guests and dnsmasq"
    for f in /run/libvirt/qemu/*.pid /run/libvirt/network/*.pid; do
      [ -e "$f" ] && echo "$f: $(proc_id "$f")"
    done
    echo "== domains"
    virsh -r -q -c "$ADMIN_URI" list --all
    for d in $(virsh -r -q -c "$ADMIN_URI" list --all --name); do
      virsh -r -c "$ADMIN_URI" dumpxml "$d"
    done
    echo "== networks"
    virsh -r -q -c "$ADMIN_URI" net-list --all
    for d in $(virsh -r -q -c "$ADMIN_URI" net-list --all --name); do
      virsh -r -c "$ADMIN_URI" net-dumpxml "$d"
    done
    echo "== pools"
    virsh -r -q -c "$ADMIN_URI" pool-list --all
    for d in $(virsh -r -q -c "$ADMIN_URI" pool-list --all --name); do
      virsh -r -c "$ADMIN_URI" pool-dumpxml "$d"
      virsh -r -q -c "$ADMIN_URI" vol-list --pool "$d" 2>/dev/null || true
    done
    echo "== files"
    for d in /etc/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /var/lib/swtpm-localca; do
      if [ -e "$d" ]; then
        find "$d" -printf '%p %y %m %u %g %s %l\n' | LC_ALL=C sort
        find "$d" -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum
      else
        echo "$d absent"
      fi
    done
    echo "== runtime"
    for d in /run/libvirt /root/.config/libvirt /root/.cache/libvirt /root/.local/share/libvirt; do
      if [ -e "$d" ]; then
        find "$d" -printf '%p %y %m %u %g\n' | LC_ALL=C sort
      else
        echo "$d absent"
      fi
    done
  } >"$out" 2>&1
}

start_standin() {
  STANDIN=1
  paths >"$WORK/paths-before-standin"
  if [ -e /dev/kvm ]; then
    # as tests/lab/libvirtd.sh up does (and an admin's host has it so)
    chgrp kvm /dev/kvm
    chmod 0660 /dev/kvm
  fi
  ip netns add "$STANDIN_NETNS"
  ip netns exec "$STANDIN_NETNS" ip link set lo up
  ip netns exec "$STANDIN_NETNS" virtlogd -d
  proc_id /run/virtlogd.pid >"$WORK/standin-virtlogd"
  ip netns exec "$STANDIN_NETNS" libvirtd -d
  for _ in $(seq 1 150); do
    admin_answers && break
    sleep 0.2
  done
  admin_answers || { say "the stand-in libvirtd did not answer"; return 1; }
  proc_id /run/libvirtd.pid >"$WORK/standin-libvirtd"
  say "stand-in libvirtd: $(cat "$WORK/standin-libvirtd"), virtlogd: $(cat "$WORK/standin-virtlogd")"

  cat >"$WORK/net.xml" <<EOX
<network>
  <name>$NAME</name>
  <forward mode='nat'/>
  <bridge name='virbr-standin' stp='on' delay='0'/>
  <ip address='192.168.254.1' netmask='255.255.255.0'>
    <dhcp><range start='192.168.254.2' end='192.168.254.254'/></dhcp>
  </ip>
</network>
EOX
  admin_virsh net-define "$WORK/net.xml" >/dev/null
  admin_virsh net-start "$NAME" >/dev/null
  admin_virsh pool-define-as "$NAME" dir --target "$POOL_DIR" >/dev/null
  admin_virsh pool-build "$NAME" >/dev/null
  admin_virsh pool-start "$NAME" >/dev/null
  admin_virsh vol-create-as "$NAME" data.raw 1M --format raw >/dev/null
  # a running guest that costs nothing: SeaBIOS with no boot device
  cat >"$WORK/dom.xml" <<EOX
<domain type='qemu'>
  <name>$NAME</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$POOL_DIR/data.raw'/>
      <target dev='vdb' bus='virtio'/>
      <readonly/>
    </disk>
    <memballoon model='none'/>
  </devices>
</domain>
EOX
  admin_virsh define "$WORK/dom.xml" >/dev/null
  admin_virsh start "$NAME" >/dev/null
}

# stop a stand-in daemon by the pid recorded at its start (if that very
# process still runs: same start time)
stop_recorded() {
  local rec=$1 pid now
  [ -s "$rec" ] || return 0
  read -r pid _ <"$rec"
  [ "$pid" != none ] || return 0
  now=$(echo "$pid" >"$WORK/p" && proc_id "$WORK/p")
  if [ "$now" = "$(cat "$rec")" ]; then
    kill -TERM "$pid"
    for _ in $(seq 1 50); do
      [ -d "/proc/$pid" ] || return 0
      sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
}

stop_standin() {
  [ "$STANDIN" = 1 ] || return 0
  STANDIN=0
  if admin_answers; then
    admin_virsh destroy "$NAME" >/dev/null 2>&1 || true
    admin_virsh undefine "$NAME" >/dev/null 2>&1 || true
    admin_virsh vol-delete --pool "$NAME" data.raw >/dev/null 2>&1 || true
    admin_virsh pool-destroy "$NAME" >/dev/null 2>&1 || true
    admin_virsh pool-delete "$NAME" >/dev/null 2>&1 || true
    admin_virsh pool-undefine "$NAME" >/dev/null 2>&1 || true
    admin_virsh net-destroy "$NAME" >/dev/null 2>&1 || true
    admin_virsh net-undefine "$NAME" >/dev/null 2>&1 || true
  fi
  stop_recorded "$WORK/standin-libvirtd"
  stop_recorded "$WORK/standin-virtlogd"
  ip netns del "$STANDIN_NETNS" 2>/dev/null || true
  # what the stand-in added (its state, logs, capability cache, /run/libvirt)
  paths >"$WORK/paths-after-standin"
  LC_ALL=C comm -13 "$WORK/paths-before-standin" "$WORK/paths-after-standin" | while IFS= read -r p; do
    rm -rf --one-file-system "$p"
  done
  say "stand-in stopped"
}

finish() {
  local rc=$?
  stop_standin || rc=1
  if [ "$rc" = 0 ]; then
    rm -rf "$WORK"
  else
    say "failed; records kept in $WORK"
  fi
  exit "$rc"
}
trap finish EXIT

if admin_answers; then
  say "a libvirtd of the machine answers on $ADMIN_SOCK: watching it as it is"
else
  start_standin
fi
snapshot "$WORK/before"

started=$(date +%s)
cmd_rc=0
"$@" || cmd_rc=$?
say "'$*' ended with $cmd_rc after $(( $(date +%s) - started )) s"
down_rc=0
"$LAB_LIBVIRTD" down || down_rc=$?

snapshot "$WORK/after"
rc=0
if ! diff -u "$WORK/before" "$WORK/after" >"$WORK/diff"; then
  say "the machine's libvirt changed during the run:"
  cat "$WORK/diff" >&2
  rc=1
else
  say "the machine's libvirt is untouched: same daemons (pids), domains, networks, pools and files ($(grep -c . "$WORK/before") lines compared)"
fi
if [ -e "$("$LAB_LIBVIRTD" root)" ]; then
  say "the private tree $("$LAB_LIBVIRTD" root) outlived 'libvirtd.sh down'"
  rc=1
fi
if ip netns list | cut -d" " -f1 | grep -qxF "${PHYLLOME_TEST_NETNS:-phyllome-test}"; then
  say "the network namespace ${PHYLLOME_TEST_NETNS:-phyllome-test} outlived 'libvirtd.sh down'"
  rc=1
fi
[ "$down_rc" = 0 ] || { say "'libvirtd.sh down' failed ($down_rc)"; rc=1; }
[ "$cmd_rc" = 0 ] || rc=$cmd_rc
exit "$rc"
