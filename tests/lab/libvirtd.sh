#!/usr/bin/env bash
# The private libvirt daemons of the tests, the lab and the benchmarks:
#
#   libvirtd.sh up             start them (or find them running), print nothing
#   libvirtd.sh down           stop everything they started, by pid; idempotent
#   libvirtd.sh status         what runs, with pids
#   libvirtd.sh uri            the system daemon's URI (qemu+unix:///system?socket=...)
#   libvirtd.sh session-uri    the session daemon's URI (qemu+unix:///session?socket=...)
#   libvirtd.sh root           the private tree (PHYLLOME_TEST_ROOT, default /run/phyllome-test)
#   libvirtd.sh integration-config   the same as YAML vars for ansible-test
#
# They touch nothing of the machine's own libvirt:
# - the system daemon is a system-mode libvirtd (NAT networks, swtpm and
#   hostdevs work as on a real host) started inside the network namespace
#   $NETNS and a mount namespace of its own, in which /run, /var/log,
#   /etc/libvirt, /var/lib/libvirt, /var/cache/libvirt and
#   /var/lib/swtpm-localca are bind mounts of directories under
#   $ROOT/system. Those mounts exist only in that namespace. Its virtlogd
#   (and virtlockd, when qemu.conf asks for lockd) run in the same one. Seen
#   from outside, its socket is $ROOT/system/run/libvirt/libvirt-sock and
#   its /var/lib/libvirt is $ROOT/system/var/lib/libvirt.
# - the session daemon (qemu:///session tests) is an unprivileged libvirtd
#   run as nobody with its XDG directories under $ROOT/session, so nothing
#   in root's home is touched.
# Clients reach both only through their own URIs; nothing here uses the
# machine's qemu:///system. Every process is stopped by the pid recorded when
# it started (the daemons' pid files under $ROOT); domains and networks still
# running are destroyed through the private URI first, and what is left in
# the private mount namespace (nothing else can be in it) is ended by pid.
set -euo pipefail

NETNS=${PHYLLOME_TEST_NETNS:-phyllome-test}
ROOT=${PHYLLOME_TEST_ROOT:-/run/phyllome-test}
SYS=$ROOT/system
SES=$ROOT/session
SYS_SOCK=$SYS/run/libvirt/libvirt-sock
SES_SOCK=$SES/run/libvirt/libvirt-sock
SYS_URI="qemu+unix:///system?socket=$SYS_SOCK"
SES_URI="qemu+unix:///session?socket=$SES_SOCK"
# the machine's directories the system daemon sees replaced by private ones
# (/run last: $ROOT usually lives under it)
BINDS=(/etc/libvirt /var/lib/libvirt /var/cache/libvirt /var/lib/swtpm-localca /var/log /run)

case "$ROOT" in
  /*/*) ;;
  *) echo "libvirtd.sh: PHYLLOME_TEST_ROOT must be an absolute path two levels deep at least: $ROOT" >&2; exit 2 ;;
esac
for b in "${BINDS[@]}"; do
  if [ "$ROOT" = "$b" ]; then
    echo "libvirtd.sh: PHYLLOME_TEST_ROOT cannot be $b" >&2
    exit 2
  fi
done

say() { echo "libvirtd.sh: $*" >&2; }

# pid in FILE if that process runs and its command is NAME
pid_of() {
  local file=$1 name=$2 pid
  [ -r "$file" ] || return 1
  pid=$(tr -dc '0-9' <"$file")
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 1
  echo "$pid"
}

# stop the process of pid FILE (command NAME): TERM, then KILL after 10 s
stop_pidfile() {
  local file=$1 name=$2 pid
  if pid=$(pid_of "$file" "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      [ -d "/proc/$pid" ] || break
      sleep 0.2
    done
    if [ -d "/proc/$pid" ]; then
      say "$name ($pid) ignored TERM, killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$file"
}

sys_answers() { [ -S "$SYS_SOCK" ] && virsh -c "$SYS_URI" version >/dev/null 2>&1; }
ses_answers() { [ -S "$SES_SOCK" ] && virsh -c "$SES_URI" version >/dev/null 2>&1; }
sys_running() { pid_of "$SYS/run/libvirtd.pid" libvirtd >/dev/null && sys_answers; }
ses_running() { pid_of "$SES/run/libvirtd.pid" libvirtd >/dev/null && ses_answers; }

# a directory skeleton of SRC (directories with their owner and mode, no files) at DEST
skeleton() {
  mkdir -p "$2"
  if [ -d "$1" ]; then
    rsync -a --include='*/' --exclude='*' "$1/" "$2/"
  fi
}

make_tree() {
  install -d -m 0755 "$ROOT" "$SYS" "$SYS/etc" "$SYS/var" "$SYS/var/lib" "$SYS/var/cache"
  install -d -m 0755 "$SYS/run" "$SYS/run/lock" "$SYS/var/log" "$SYS/var/log/libvirt" "$SYS/var/log/libvirt/qemu"
  # the packaged configuration: /etc/libvirt's files at the top (libvirtd.conf,
  # qemu.conf...) and the nwfilters, but none of the machine's domains,
  # networks, pools, secrets or hook scripts; the default NAT network from
  # the package's template, defined, not autostarted
  install -d -m 0755 "$SYS/etc/libvirt" "$SYS/etc/libvirt/qemu" "$SYS/etc/libvirt/qemu/networks" \
    "$SYS/etc/libvirt/qemu/networks/autostart" "$SYS/etc/libvirt/hooks"
  find /etc/libvirt -maxdepth 1 -type f -exec cp -p {} "$SYS/etc/libvirt/" \;
  # a host UUID of its own (from the namespace's name): two private daemons are
  # two hosts to libvirt, which refuses to migrate a domain to the "same host"
  printf '\nhost_uuid = "%s"\n' "$(printf '%s' "$NETNS" | md5sum |
    sed -E 's/^(.{8})(.{4})(.{4})(.{4})(.{12}).*/\1-\2-\3-\4-\5/')" >>"$SYS/etc/libvirt/libvirtd.conf"
  if [ -d /etc/libvirt/nwfilter ]; then
    cp -a /etc/libvirt/nwfilter "$SYS/etc/libvirt/"
  fi
  if [ -f /usr/share/libvirt/networks/default.xml ]; then
    install -m 0600 /usr/share/libvirt/networks/default.xml "$SYS/etc/libvirt/qemu/networks/default.xml"
  fi
  skeleton /var/lib/libvirt "$SYS/var/lib/libvirt"
  skeleton /var/cache/libvirt "$SYS/var/cache/libvirt"
  skeleton /var/lib/swtpm-localca "$SYS/var/lib/swtpm-localca"

  # the session daemon's XDG tree, owned by nobody
  install -d -m 0755 "$SES"
  install -d -m 0700 -o nobody -g nogroup "$SES/home" "$SES/run" "$SES/config" "$SES/cache" "$SES/data"
}

# Run inside `ip netns exec NETNS unshare -m --propagation private`: mount
# the private tree over the machine's directories, start the daemons.
inside() {
  local b
  for b in "${BINDS[@]}"; do
    mount --bind "$SYS$b" "$b"
  done
  # from here on /run is $SYS/run
  virtlogd -d -p /run/virtlogd.pid
  if grep -Eq '^[[:space:]]*lock_manager[[:space:]]*=[[:space:]]*"lockd"' /etc/libvirt/qemu.conf; then
    virtlockd -d -p /run/virtlockd.pid
  fi
  libvirtd -d -p /run/libvirtd.pid
}

start_system() {
  local b
  for b in "${BINDS[@]}"; do
    if [ ! -d "$b" ]; then
      say "$b is missing (tests/lab/system-deps.sh installs libvirt and swtpm); not creating it on the machine"
      return 1
    fi
  done
  ip netns exec "$NETNS" unshare -m --propagation private "$0" _inside
  readlink "/proc/$(pid_of "$SYS/run/libvirtd.pid" libvirtd)/ns/mnt" >"$ROOT/mntns"
  for _ in $(seq 1 150); do
    if sys_answers; then
      return 0
    fi
    sleep 0.2
  done
  say "the private libvirtd did not answer on $SYS_SOCK"
  return 1
}

start_session() {
  ip netns exec "$NETNS" runuser -u nobody -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    HOME="$SES/home" XDG_RUNTIME_DIR="$SES/run" XDG_CONFIG_HOME="$SES/config" \
    XDG_CACHE_HOME="$SES/cache" XDG_DATA_HOME="$SES/data" \
    libvirtd -d -p "$SES/run/libvirtd.pid"
  for _ in $(seq 1 150); do
    if ses_answers; then
      return 0
    fi
    sleep 0.2
  done
  say "the private session libvirtd did not answer on $SES_SOCK"
  return 1
}

# The daemons outlive this script: they must not keep the caller's open files,
# e.g. the descriptor of `flock LOCK make integration`, whose lock would stay
# held for as long as the daemons run (every later `flock LOCK` then waits for
# a `down`). Bash reads this script from fd 255: that one stays.
close_inherited_fds() {
  local fd
  for fd in "/proc/$$/fd/"*; do
    fd=${fd##*/}
    if [ "$fd" -gt 2 ] && [ "$fd" -lt 255 ]; then
      eval "exec $fd>&-" 2>/dev/null || true
    fi
  done
}

up() {
  close_inherited_fds
  if [ -e /dev/kvm ]; then
    # libvirt checks that the qemu user can open /dev/kvm; when it cannot, it
    # throws its capability cache away on every call and each define takes
    # 40-110 s instead of 0.02 s. Before libvirtd starts.
    chgrp kvm /dev/kvm
    chmod 0660 /dev/kvm
  fi
  if sys_running && ses_running; then
    return 0
  fi
  # whatever a failed or half-finished earlier run left, then a fresh start;
  # a failure on the way stops what this call started
  down
  trap 'rc=$?; if [ "$rc" != 0 ]; then say "up failed, stopping what it started"; down; fi' EXIT
  if ! ip netns list | cut -d" " -f1 | grep -qxF "$NETNS"; then
    ip netns add "$NETNS"
  fi
  ip netns exec "$NETNS" ip link set lo up
  make_tree
  start_system
  start_session
  trap - EXIT
}

# pids of the processes in the private mount namespace (only what up started
# and their children can be there)
in_private_ns() {
  local ns p
  [ -r "$ROOT/mntns" ] || return 0
  ns=$(cat "$ROOT/mntns")
  [ -n "$ns" ] || return 0
  for p in /proc/[0-9]*; do
    if [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ]; then
      echo "${p#/proc/}"
    fi
  done
}

# those of PIDS still in the private mount namespace
still_in_private_ns() {
  local ns p
  [ -r "$ROOT/mntns" ] || return 0
  ns=$(cat "$ROOT/mntns")
  for p in $1; do
    if [ "$(readlink "/proc/$p/ns/mnt" 2>/dev/null)" = "$ns" ]; then
      echo "$p"
    fi
  done
}

down() {
  local name pid left ours=
  # The namespace's processes are listed while libvirtd still holds it: once
  # everything in it has ended, the kernel gives its inode number to the next
  # new namespace (a lab container's service, say), and a match found then
  # would name processes that are not ours. Only those listed now are ended.
  if pid_of "$SYS/run/libvirtd.pid" libvirtd >/dev/null; then
    ours=$(in_private_ns)
  fi
  if sys_answers; then
    for name in $(virsh -c "$SYS_URI" list --name 2>/dev/null); do
      virsh -c "$SYS_URI" destroy "$name" >/dev/null 2>&1 || say "could not destroy domain $name"
    done
    for name in $(virsh -c "$SYS_URI" net-list --name 2>/dev/null); do
      virsh -c "$SYS_URI" net-destroy "$name" >/dev/null 2>&1 || say "could not stop network $name"
    done
  fi
  if ses_answers; then
    for name in $(virsh -c "$SES_URI" list --name 2>/dev/null); do
      virsh -c "$SES_URI" destroy "$name" >/dev/null 2>&1 || say "could not destroy session domain $name"
    done
  fi
  stop_pidfile "$SYS/run/libvirtd.pid" libvirtd
  stop_pidfile "$SYS/run/virtlockd.pid" virtlockd
  stop_pidfile "$SYS/run/virtlogd.pid" virtlogd
  stop_pidfile "$SES/run/libvirtd.pid" libvirtd
  # a session virtlogd is spawned on demand by the session daemon
  stop_pidfile "$SES/run/libvirt/virtlogd.pid" virtlogd
  # processes of the private daemon that outlived it (a guest whose destroy
  # failed, a dnsmasq of a network, swtpm): by pid, found by namespace
  left=$(still_in_private_ns "$ours")
  if [ -n "$left" ]; then
    say "ending what is left in the private mount namespace: $(echo "$left" | tr '\n' ' ')"
    for pid in $left; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 2
    for pid in $(still_in_private_ns "$left"); do kill -KILL "$pid" 2>/dev/null || true; done
    sleep 0.5
  fi
  left=$(still_in_private_ns "$left")
  if [ -n "$left" ]; then
    say "still running in the private namespace: $left; keeping $ROOT"
    return 1
  fi
  if ip netns list | cut -d" " -f1 | grep -qxF "$NETNS"; then
    ip netns del "$NETNS"
  fi
  if [ -d "$ROOT" ]; then
    # the bind mounts live only in the (now gone) private namespace; never
    # remove a tree something is mounted on
    if findmnt -rn -o TARGET | grep -qF "$ROOT"; then
      say "something is mounted under $ROOT; not removing it"
      return 1
    fi
    rm -rf --one-file-system "$ROOT"
  fi
}

status() {
  local rc=0 pid
  if sys_running; then
    pid=$(pid_of "$SYS/run/libvirtd.pid" libvirtd)
    echo "system libvirtd: pid $pid, netns $NETNS, $SYS_URI"
  else
    echo "system libvirtd: not running"
    rc=1
  fi
  if ses_running; then
    pid=$(pid_of "$SES/run/libvirtd.pid" libvirtd)
    echo "session libvirtd: pid $pid, $SES_URI"
  else
    echo "session libvirtd: not running"
    rc=1
  fi
  return $rc
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  status) status ;;
  uri) echo "$SYS_URI" ;;
  session-uri) echo "$SES_URI" ;;
  root) echo "$ROOT" ;;
  integration-config)
    printf '%s\n' "# written by tests/lab/libvirtd.sh integration-config" \
      "phyllome_test_uri: \"$SYS_URI\"" \
      "phyllome_test_session_uri: \"$SES_URI\"" \
      "# the network namespace its guests live in (ip netns exec <this> ...)" \
      "phyllome_test_netns: \"$NETNS\"" \
      "# the private daemon's /var/lib/libvirt etc. as seen from outside: <this>/var/lib/libvirt" \
      "phyllome_test_libvirt_root: \"$SYS\"" ;;
  _inside) inside ;;
  *) echo "usage: $0 up|down|status|uri|session-uri|root|integration-config" >&2; exit 2 ;;
esac
