#!/usr/bin/env bash
# Installs the Debian packages the runner needs (as root), and only the
# missing ones, so a second call costs one dpkg-query.
set -euo pipefail

packages=(
  # build libvirt-python from PyPI
  gcc pkg-config libvirt-dev python3-venv python3-dev
  # a real libvirt daemon with QEMU (TCG) for integration tests
  libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils ovmf
  swtpm swtpm-tools dnsmasq-base iproute2
  # device names for iommu_info (/usr/share/misc/pci.ids, /usr/share/misc/usb.ids)
  pci.ids usb.ids
  # small test guests built from Debian's packages (tests/guests/)
  busybox-static cpio kmod debootstrap fdisk e2fsprogs openssh-client socat
  # the lab's bare hosts (tests/lab/hosts.sh): nspawn, a local package repository
  systemd-container dpkg-dev
  # a throwaway CA and certificates for the lab's libvirt over TLS (certtool, as libvirt's docs use)
  gnutls-bin
  # domain XMLs made at test time by virt-install --print-xml (make corpus-live)
  virtinst
  # the report's pages rendered as a browser shows them (tests/report/render.py)
  chromium
  # tools
  git make rsync shellcheck
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "system-deps: missing Debian packages (run as root to install): ${missing[*]}" >&2
  exit 1
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
