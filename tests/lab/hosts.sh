#!/usr/bin/env bash
# The lab: disposable bare Debian hosts to converge with the host role.
#
#   hosts.sh up [N]      build (or reuse) the caches, boot N hosts (default $LAB_HOSTS or 1)
#   hosts.sh down        stop every lab host by its recorded pid, remove its namespace and copy
#   hosts.sh status      list the lab hosts and whether they answer
#   hosts.sh inventory   print the path of the inventory `up` wrote
#   hosts.sh netns HOST  print the network namespace of a lab host
#   hosts.sh check-clean fail when anything of the lab is left (after `down`)
#
# Each host is a systemd-nspawn container booted from a debootstrap minbase
# root, in a network namespace of its own (nothing of it listens or routes in
# the machine's namespace), reached by Ansible over SSH through
# `ip netns exec NS socat`. It has no route to any package registry: its
# packages come from a local file repository built here from the host role's
# own package list (roles/host/vars/Debian.yml) and bind-mounted read-only, as
# on an air-gapped fleet. /dev/kvm is not handed in (the role would change the
# machine's node), so guests in the lab run under TCG.
# CAP_NET_ADMIN and a writable /proc/sys/net (for libvirt's bridges) apply to
# the host's own network namespace only.
#
# With two hosts or more, every two are linked by a veth pair between their
# namespaces (169.254.77.0/24, a /30 a pair, never in the machine's
# namespace), know each other by name (/etc/hosts) and accept each other's
# SSH key (the lab's own, $LAB_DIR/id_hosts), so that lab1 reaches
# `qemu+ssh://lab2/system`. Every host gets a libvirt host UUID of its own
# in the inventory (phyllome_host_libvirt_host_uuid: the containers share
# the machine's SMBIOS one, and libvirt refuses to migrate "to the same
# host"), and the inventory opens libvirt's migration ports.
#
# Everything started is recorded (pid files, namespace names, mounts) under
# $LAB_DIR and stopped from those records, never by process name. The caches
# (root file system, package repository) outlive `down`.
#
# Each headless host also gets the lab's guests in the inventory (the
# phyllome.os.guests role of site.yml converges them; LAB_GUESTS=0 leaves
# them out): the default Phyllome Linux VM (UEFI, TPM 2.0) and a tiny BIOS
# guest whose disk is a qcow2 overlay on a base volume, with a cloud-init
# NoCloud seed. Both boot the small
# "net" test guest of tests/guests/ (kernel + busybox initramfs, direct
# kernel boot; it takes a DHCP lease on its NIC), whose files `up` puts into the host's tree with the base
# volume, as an image server would have; their serial consoles go to
# /var/log/libvirt/qemu/NAME.serial.
#
# LAB_EDITION=desktop builds the repository with the desktop edition's
# packages too (GNOME minimal, virt-manager: ~10x the headless download) and
# writes an inventory converging that edition, with sshd kept on so that
# Ansible still reaches the host. The default, headless, keeps the lab lean.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo_root=$(cd "$here/../.." && pwd)
LAB_DIR=${LAB_DIR:-$repo_root/.build/lab}
LAB_CACHE=${LAB_CACHE:-$here/cache}
# Namespaces are named after the lab's directory, so that two checkouts (or a
# developer's lab and a CI run) never share one.
LAB_PREFIX=${LAB_PREFIX:-phyllome-lab-$(printf '%s' "$LAB_DIR" | sha256sum | cut -c1-6)}
LAB_HOSTS=${LAB_HOSTS:-1}
LAB_EDITION=${LAB_EDITION:-headless}
# The desktop edition converges the host alone: TCG guests would add to its ten minutes.
LAB_GUESTS=${LAB_GUESTS:-$([ "$LAB_EDITION" = headless ] && echo 1 || echo 0)}
GUEST_DIR=/var/lib/phyllome-lab
BASE_VOLUME=phyllome-lab-base.qcow2
SUITE=bookworm
# What a bare host has: enough for systemd, SSH and Ansible (python3-apt is
# what ansible.builtin.apt needs, also in check mode).
BARE_INCLUDE=systemd,systemd-sysv,dbus,udev,python3,python3-apt,iproute2,openssh-server
REPO_MOUNT=/srv/phyllome-repo

log() { printf '%s lab: %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

step_start=0
step() { step_start=$(date +%s.%N); log "$*"; }
step_done() { log "  done in $(awk -v s="$step_start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f s", e-s}')"; }

# The Debian mirror this machine's apt uses (deb822 .sources or one-line .list).
debian_mirror() {
  local m
  m=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
  if [ -z "$m" ]; then
    m=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
      | awk '{for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' | grep -v -- '-security' | head -n1 || true)
  fi
  [ -n "$m" ] || die "no Debian mirror found in /etc/apt/sources.list*"
  echo "$m"
}

# The role's package list for the Debian family and the lab's edition.
role_packages() {
  "$repo_root/.venv/bin/python" - "$repo_root/roles/host/vars/Debian.yml" "$LAB_EDITION" <<'EOP'
import sys, yaml
with open(sys.argv[1]) as f:
    data = yaml.safe_load(f)
editions = data['__phyllome_host_edition_packages']
if sys.argv[2] not in editions:
    sys.exit('LAB_EDITION=%s: not an edition of the host role (%s)' % (sys.argv[2], ', '.join(sorted(editions))))
print(' '.join(data['__phyllome_host_packages'] + editions[sys.argv[2]]))
EOP
}

rootfs_dir() { echo "$LAB_CACHE/rootfs-$SUITE"; }

# The small test guest's kernel and initramfs (tests/guests/, cached), as
# the builder's JSON in $LAB_DIR/guest.json.
build_guest() {
  [ "$LAB_GUESTS" = 1 ] || return 0
  "$repo_root/.venv/bin/python" "$repo_root/tests/guests/guests.py" build net >"$LAB_DIR/guest.json.tmp"
  mv "$LAB_DIR/guest.json.tmp" "$LAB_DIR/guest.json"
}

guest_field() {
  "$repo_root/.venv/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["net"][sys.argv[2]])' \
    "$LAB_DIR/guest.json" "$1"
}

# What the guests start from, in a host's tree: the kernel and initramfs, and
# the base volume of the tiny guest's overlay in the directory of the pool
# "default" (libvirt lists it once the role has started the pool).
install_guest_files() {
  local root=$1
  [ "$LAB_GUESTS" = 1 ] || return 0
  install -d -m 0755 "$root$GUEST_DIR" "$root/var/lib/libvirt" "$root/var/lib/libvirt/images"
  install -m 0644 "$(guest_field kernel)" "$root$GUEST_DIR/vmlinuz"
  install -m 0644 "$(guest_field initrd)" "$root$GUEST_DIR/initrd.img"
  qemu-img create -q -f qcow2 "$root/var/lib/libvirt/images/$BASE_VOLUME" 64M
  chmod 0644 "$root/var/lib/libvirt/images/$BASE_VOLUME"
}

# The lab's guests, as a host's phyllome_guests (host_vars) and the
# defaults they share (group_vars).
write_guests() {
  local name=$1 cmdline
  cmdline=$(guest_field cmdline)
  cat <<EOI
          phyllome_guests:
            - name: phyllome-lab-vm
              model:
                memory: 256
                extra_xml:
                  - >-
                    <os><kernel>$GUEST_DIR/vmlinuz</kernel><initrd>$GUEST_DIR/initrd.img</initrd>
                    <cmdline>$cmdline</cmdline></os>
                  - <serial type='file'><source path='/var/log/libvirt/qemu/phyllome-lab-vm.serial'/><target port='0'/></serial>
            - name: phyllome-lab-tiny
              model:
                memory: 192
                firmware: bios
                tpm: false
                networks: []
                disks:
                  - volume: phyllome-lab-tiny.qcow2
                    backing_volume: $BASE_VOLUME
                # what a cloud image would read at boot (the busybox guest does not)
                cloud_init:
                  meta_data:
                    instance-id: phyllome-lab-tiny-1
                  user_data: |
                    #cloud-config
                    hostname: phyllome-lab-tiny
                extra_xml:
                  - >-
                    <os><kernel>$GUEST_DIR/vmlinuz</kernel><initrd>$GUEST_DIR/initrd.img</initrd>
                    <cmdline>$cmdline</cmdline></os>
                  - <serial type='file'><source path='/var/log/libvirt/qemu/phyllome-lab-tiny.serial'/><target port='0'/></serial>
EOI
}

build_rootfs() {
  local dest tmp mirror
  dest=$(rootfs_dir)
  if [ -f "$dest/.phyllome-lab-stamp" ] && [ "$(cat "$dest/.phyllome-lab-stamp")" = "$BARE_INCLUDE" ]; then
    return 0
  fi
  step "building the bare root file system (debootstrap $SUITE minbase)"
  mirror=$(debian_mirror)
  rm -rf "$dest" "$dest.tmp"
  mkdir -p "$LAB_CACHE"
  tmp=$dest.tmp
  # debootstrap mounts /proc and /sys in the target: a private mount
  # namespace keeps those mounts from outliving it.
  unshare -m --propagation private \
    debootstrap --variant=minbase --include="$BARE_INCLUDE" "$SUITE" "$tmp" "$mirror" \
    >"$LAB_CACHE/debootstrap.log" 2>&1 || { tail -n 30 "$LAB_CACHE/debootstrap.log" >&2; die "debootstrap failed"; }
  # A bare host: no apt source (the role brings them), no SSH host keys
  # (each host makes its own), no machine id.
  : >"$tmp/etc/apt/sources.list"
  rm -f "$tmp"/etc/apt/sources.list.d/* "$tmp"/etc/ssh/ssh_host_*
  : >"$tmp/etc/machine-id"
  rm -rf "$tmp/var/cache/apt/archives/"*.deb "$tmp/var/lib/apt/lists/"*_Packages
  echo "$BARE_INCLUDE" >"$tmp/.phyllome-lab-stamp"
  mv "$tmp" "$dest"
  step_done
}

# A file repository with the role's packages and everything they need beyond
# the bare root, resolved against the bare root's own dpkg status.
build_repo() {
  local pkgs key dest tmp
  pkgs=$(role_packages) || die "no package list"
  key=$(printf '%s\n%s\n' "$pkgs" "$BARE_INCLUDE" | sha256sum | cut -c1-12)
  dest=$LAB_CACHE/repo-$key
  if [ -f "$dest/Packages" ]; then
    echo "$dest"
    return 0
  fi
  step "building the local package repository ($(wc -w <<<"$pkgs") packages and their dependencies)"
  tmp=$dest.tmp
  rm -rf "$tmp"
  mkdir -p "$tmp/partial"
  local download=(apt-get -y -q --download-only --no-install-recommends
    -o Dir::State::status="$(rootfs_dir)/var/lib/dpkg/status"
    -o Dir::Cache::archives="$tmp" install)
  # shellcheck disable=SC2086 # the package list is words
  if ! "${download[@]}" $pkgs >"$LAB_CACHE/repo.log" 2>&1; then
    log "  apt-get download failed; refreshing apt's lists and trying again"
    apt-get update -q >>"$LAB_CACHE/repo.log" 2>&1
    # shellcheck disable=SC2086
    "${download[@]}" $pkgs >>"$LAB_CACHE/repo.log" 2>&1 || { tail -n 30 "$LAB_CACHE/repo.log" >&2; die "package download failed"; }
  fi
  rm -rf "$tmp/partial" "$tmp/lock"
  (cd "$tmp" && dpkg-scanpackages -m . >Packages 2>>"$LAB_CACHE/repo.log")
  rm -rf "$dest"
  mv "$tmp" "$dest"
  log "  $(find "$dest" -name '*.deb' | wc -l) packages, $(du -sh "$dest" | cut -f1)"
  step_done >&2
  echo "$dest"
}

host_names() {
  local n=$1 i
  for i in $(seq 1 "$n"); do echo "lab$i"; done
}

recorded_hosts() {
  [ -d "$LAB_DIR/hosts" ] || return 0
  find "$LAB_DIR/hosts" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort
}

netns_of() { echo "$LAB_PREFIX-$1"; }

ssh_to() {
  local name=$1; shift
  ssh -q -i "$LAB_DIR/id_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o ConnectTimeout=5 -o ProxyCommand="ip netns exec $(netns_of "$name") socat - TCP:127.0.0.1:22" \
    "root@$name" "$@"
}

answers() {
  local ns=$1 banner
  banner=$(timeout 3 ip netns exec "$ns" socat -T2 - TCP:127.0.0.1:22 </dev/null 2>/dev/null | head -c 8 || true)
  [ "$banner" = "SSH-2.0-" ]
}

start_host() {
  local name=$1 repo=$2 dir ns pid
  dir=$LAB_DIR/hosts/$name
  ns=$(netns_of "$name")
  if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
    log "$name is already running (pid $(cat "$dir/pid"))"
    return 0
  fi
  # what a crashed run of this lab left (its recorded namespace, its copy)
  stop_host "$name"
  step "booting $name (systemd-nspawn in network namespace $ns)"
  mkdir -p "$dir"
  cp -a --reflink=auto "$(rootfs_dir)" "$dir/root"
  local root=$dir/root
  echo "$name" >"$root/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$name" >"$root/etc/hosts"
  systemd-id128 new >"$root/etc/machine-id"
  ssh-keygen -q -A -f "$root"
  mkdir -p "$root/etc/ssh/sshd_config.d" "$root/root/.ssh" "$root$REPO_MOUNT"
  # Any address of the host's own namespace: loopback for Ansible, the links to the other lab hosts.
  printf 'PasswordAuthentication no\n' >"$root/etc/ssh/sshd_config.d/phyllome-lab.conf"
  # The lab's key for Ansible, and the key the lab hosts use to reach each other (qemu+ssh://).
  cat "$LAB_DIR/id_ed25519.pub" "$LAB_DIR/id_hosts.pub" >"$root/root/.ssh/authorized_keys"
  install -m 0600 "$LAB_DIR/id_hosts" "$root/root/.ssh/id_ed25519"
  install -m 0644 "$LAB_DIR/id_hosts.pub" "$root/root/.ssh/id_ed25519.pub"
  chmod 0600 "$root/root/.ssh/authorized_keys"
  chmod 0700 "$root/root/.ssh"
  # libvirt's host UUID, which the inventory gives the role (phyllome_host_libvirt_host_uuid): every
  # container reports the machine's one SMBIOS UUID, and libvirt refuses to migrate a domain "to the
  # same host". Kept with the host, so that the inventory written again says the same.
  cat /proc/sys/kernel/random/uuid >"$dir/host_uuid"
  install_guest_files "$root"

  # Only a namespace of our own: another one of that name belongs to
  # something else, which must not be touched.
  if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
    die "network namespace $ns exists and is not this lab's: another lab (LAB_DIR) runs under that name"
  fi
  ip netns add "$ns"
  echo "$ns" >"$dir/netns"
  ip netns exec "$ns" ip link set lo up
  # A cgroup of its own (see cgroup_roots), entered before systemd-nspawn starts.
  local cg
  for cg in $(cgroup_roots); do mkdir -p "$cg/$ns"; done
  # /proc/sys/net is the host's own namespace's: writable, for libvirt's bridges.
  (
    for cg in $(cgroup_roots); do echo "$BASHPID" >"$cg/$ns/cgroup.procs"; done
    SYSTEMD_NSPAWN_API_VFS_WRITABLE=network \
      exec setsid systemd-nspawn --quiet -D "$root" --boot --register=no --keep-unit --machine="$name" \
      --network-namespace-path="/run/netns/$ns" --capability=CAP_NET_ADMIN \
      --bind-ro="$repo:$REPO_MOUNT" --console=passive
  ) </dev/null >"$dir/nspawn.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/pid"
  for _ in $(seq 1 120); do
    if answers "$ns"; then
      step_done
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { cat "$dir/nspawn.log" >&2; die "$name exited while booting"; }
    sleep 0.5
  done
  cat "$dir/nspawn.log" >&2
  die "$name did not answer on SSH within 60 s"
}

# The cgroup hierarchies in which each host gets a cgroup of its own, named
# after its namespace. With --keep-unit, systemd-nspawn puts the container
# in "payload" below its own cgroup: started from the same cgroup (here the
# root: PID 1 is no systemd), every lab host of the machine shared one tree,
# so that one host's systemd created, emptied and removed the other hosts'
# service cgroups (a reload failing with status 219/CGROUP, a stop that
# ends the other hosts' processes of that service).
cgroup_roots() {
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    echo /sys/fs/cgroup
  else
    local h
    for h in systemd unified; do
      [ -f "/sys/fs/cgroup/$h/cgroup.procs" ] && echo "/sys/fs/cgroup/$h"
    done
  fi
  return 0
}

stop_host() {
  local name=$1 dir ns pid
  dir=$LAB_DIR/hosts/$name
  ns=$(netns_of "$name")
  if [ -f "$dir/pid" ]; then
    pid=$(cat "$dir/pid")
    # Only the process we started: it must still be a systemd-nspawn on our root.
    if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-D $dir/root"; then
      log "stopping $name (pid $pid)"
      # systemd-nspawn turns SIGTERM into an orderly poweroff of the container.
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
      done
      if kill -0 "$pid" 2>/dev/null; then
        log "  $name did not power off in 30 s: killing it"
        # The container's init first (systemd-nspawn's child, PID 1 of the container): its end ends every process
        # of the container, which killing systemd-nspawn alone would leave running. Then systemd-nspawn follows.
        local child
        for child in $(ps -o pid= --ppid "$pid"); do kill -KILL "$child" 2>/dev/null || true; done
        for _ in $(seq 1 20); do
          kill -0 "$pid" 2>/dev/null || break
          sleep 0.5
        done
        kill -KILL "$pid" 2>/dev/null || true
        sleep 1
      fi
    fi
    rm -f "$dir/pid"
  fi
  if [ -f "$dir/netns" ]; then
    ip netns delete "$(cat "$dir/netns")" 2>/dev/null || true
  fi
  # its cgroups, deepest first (empty once the container has stopped)
  local cg
  for cg in $(cgroup_roots); do
    [ -d "$cg/$ns" ] && find "$cg/$ns" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  rm -rf "$dir"
}

# Link every two lab hosts with a veth pair between their network namespaces
# (never through the machine's): a link-local /30 each (169.254.77.0/24), the
# interface named after the host at its other end, the other hosts' names and
# SSH host keys in each host's /etc/hosts and known_hosts. Then
# `virsh -c qemu+ssh://lab2/system` works on lab1. Idempotent: a link that
# exists is kept.
link_hosts() {
  local names=("$@") n=$# i j k=0 a b ns_a ns_b addr_a addr_b
  [ "$n" -ge 2 ] || return 0
  [ $((n * (n - 1) / 2)) -le 63 ] || die "at most 63 links (12 hosts)"
  step "linking the $n hosts (veth pairs between their namespaces)"
  for ((i = 0; i < n; i++)); do
    for ((j = i + 1; j < n; j++)); do
      a=${names[i]} b=${names[j]} ns_a=$(netns_of "${names[i]}") ns_b=$(netns_of "${names[j]}")
      addr_a=169.254.77.$((4 * k + 1)) addr_b=169.254.77.$((4 * k + 2))
      k=$((k + 1))
      if ! ip -n "$ns_a" link show "to-$b" >/dev/null 2>&1; then
        ip link add "to-$b" netns "$ns_a" type veth peer name "to-$a" netns "$ns_b"
        ip -n "$ns_a" addr add "$addr_a/30" dev "to-$b"
        ip -n "$ns_b" addr add "$addr_b/30" dev "to-$a"
        ip -n "$ns_a" link set "to-$b" up
        ip -n "$ns_b" link set "to-$a" up
      fi
      known_host "$a" "$b" "$addr_b"
      known_host "$b" "$a" "$addr_a"
    done
  done
  step_done
}

# On host $1: host $2 at address $3, in /etc/hosts and root's known_hosts.
known_host() {
  local root=$LAB_DIR/hosts/$1/root peer_root=$LAB_DIR/hosts/$2/root
  grep -qE "[[:space:]]$2\$" "$root/etc/hosts" || printf '%s\t%s\n' "$3" "$2" >>"$root/etc/hosts"
  grep -qE "^$2," "$root/root/.ssh/known_hosts" 2>/dev/null ||
    printf '%s,%s %s\n' "$2" "$3" "$(cut -d' ' -f1-2 "$peer_root/etc/ssh/ssh_host_ed25519_key.pub")" >>"$root/root/.ssh/known_hosts"
}

write_inventory() {
  local repo=$1 inv=$LAB_DIR/inventory.yml name
  shift
  {
    echo "# Written by tests/lab/hosts.sh: the lab's bare hosts, reached over SSH"
    echo "# inside their own network namespaces."
    echo "all:"
    echo "  children:"
    echo "    phyllome_hosts:"
    echo "      hosts:"
    for name in "$@"; do
      echo "        $name:"
      # The namespace's name, unique to this lab: ssh's ControlPath (and so
      # ControlPersist's shared connection) is keyed by it, and two labs'
      # lab1 must never share one. The ProxyCommand ignores it.
      echo "          ansible_host: $(netns_of "$name")"
      echo "          ansible_ssh_common_args: >-"
      echo "            -o ProxyCommand=\"ip netns exec $(netns_of "$name") socat - TCP:127.0.0.1:22\""
      echo "            -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
      echo "          phyllome_host_libvirt_host_uuid: $(cat "$LAB_DIR/hosts/$name/host_uuid")"
      if [ "$LAB_GUESTS" = 1 ]; then write_guests "$name"; fi
    done
    echo "      vars:"
    echo "        ansible_user: root"
    echo "        ansible_ssh_private_key_file: $LAB_DIR/id_ed25519"
    echo "        ansible_python_interpreter: /usr/bin/python3"
    echo "        # Air-gapped: the lab's local repository is the only package source."
    echo "        phyllome_host_package_sources:"
    echo "          - deb [trusted=yes] file:$REPO_MOUNT ./"
    echo "        # A property of the container, not of a real host: its cgroup v1"
    echo "        # hierarchy is read-only, so QEMU must not ask for controllers."
    echo "        phyllome_host_qemu_conf:"
    echo "          cgroup_controllers: []"
    echo "          vnc_listen: 127.0.0.1"
    echo "          spice_listen: 127.0.0.1"
    if [ $# -ge 2 ]; then
      echo "        # Hosts that migrate VMs between them: libvirt's migration ports"
      echo "        # (QEMU's stream, and the NBD server of a storage copy)."
      echo "        phyllome_host_firewall_ports:"
      echo "          - 49152-49215/tcp"
    fi
    if [ "$LAB_GUESTS" = 1 ]; then
      echo "        # What the lab's guests share: small, headless, autostarted."
      echo "        phyllome_guests_defaults:"
      echo "          autostart: true"
      echo "          model:"
      echo "            os: linux"
      echo "            vcpus: 1"
      echo "            graphics:"
      echo "              type: none"
    fi
    if [ "$LAB_EDITION" != headless ]; then
      echo "        phyllome_host_edition: $LAB_EDITION"
      echo "        # The desktop edition turns sshd off unless asked: the lab reaches"
      echo "        # its hosts over SSH only."
      echo "        phyllome_host_sshd: true"
    fi
  } >"$inv.tmp"
  mv "$inv.tmp" "$inv"
  echo "# repository: $repo" >>"$inv"
}

up() {
  local n=${1:-$LAB_HOSTS} repo name
  command -v systemd-nspawn >/dev/null || die "systemd-nspawn is missing (Debian package systemd-container)"
  mkdir -p "$LAB_DIR/hosts"
  build_rootfs
  repo=$(build_repo)
  build_guest
  [ -f "$LAB_DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C phyllome-lab -f "$LAB_DIR/id_ed25519"
  # The lab hosts' own key to each other: this lab's, never the machine's.
  [ -f "$LAB_DIR/id_hosts" ] || ssh-keygen -q -t ed25519 -N '' -C phyllome-lab-hosts -f "$LAB_DIR/id_hosts"
  mapfile -t names < <(host_names "$n")
  for name in "${names[@]}"; do
    start_host "$name" "$repo"
  done
  link_hosts "${names[@]}"
  write_inventory "$repo" "${names[@]}"
  log "inventory: $LAB_DIR/inventory.yml"
}

down() {
  local name
  for name in $(recorded_hosts); do
    stop_host "$name"
  done
  rm -f "$LAB_DIR/inventory.yml"
}

status() {
  local name ns
  for name in $(recorded_hosts); do
    ns=$(netns_of "$name")
    if answers "$ns"; then echo "$name: up (pid $(cat "$LAB_DIR/hosts/$name/pid"), netns $ns)"; else echo "$name: not answering"; fi
  done
}

# After `down`: no lab process, namespace, mount, bridge or loop device left.
check_clean() {
  local bad=0
  if ip netns list | awk '{print $1}' | grep -q "^$LAB_PREFIX-"; then
    log "left: network namespaces $(ip netns list | awk '{print $1}' | grep "^$LAB_PREFIX-" | tr '\n' ' ')"; bad=1
  fi
  if pgrep -f -- "systemd-nspawn .*-D $LAB_DIR/" >/dev/null; then
    log "left: systemd-nspawn processes"; bad=1
  fi
  if grep -qF " $LAB_DIR/" /proc/self/mountinfo; then
    log "left: mounts under $LAB_DIR"; bad=1
  fi
  local cg
  for cg in $(cgroup_roots); do
    if compgen -G "$cg/$LAB_PREFIX-*" >/dev/null; then
      log "left: cgroups $(echo "$cg/$LAB_PREFIX-"*)"; bad=1
    fi
  done
  if losetup -a 2>/dev/null | grep -qF "$LAB_DIR/"; then
    log "left: loop devices on $LAB_DIR"; bad=1
  fi
  if [ -n "$(recorded_hosts)" ]; then
    log "left: host directories $(recorded_hosts | tr '\n' ' ')"; bad=1
  fi
  [ "$bad" = 0 ] && log "nothing of the lab is left"
  return "$bad"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  status) status ;;
  inventory) echo "$LAB_DIR/inventory.yml" ;;
  netns) netns_of "$2" ;;
  check-clean) check_clean ;;
  ssh) shift; name=$1; shift; ssh_to "$name" "$@" ;;
  *) echo "usage: $0 up [N] | down | status | inventory | netns HOST | check-clean | ssh HOST [CMD...]" >&2; exit 2 ;;
esac
