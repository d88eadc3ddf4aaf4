# shellcheck shell=sh
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PID 1 of the direct-kernel test guests (acpi, noacpi, iommu, hotplug, net). guests.py
# puts it at /init of a busybox-static initramfs, with a "#!/bin/busybox sh"
# line in front, and writes /etc/guest.conf (KIND, POWER_BUTTON, IOMMU_REPORT)
# and /etc/modules (module paths in load order) beside it.
# Every line for the tests starts with "phyllome-guest:" on the serial console.

/bin/busybox --install -s /bin
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

# shellcheck disable=SC1091
. /etc/guest.conf

say() {
    echo "phyllome-guest: $*" >/dev/console
}

param() {
    # value of "phyllome.NAME=" on the kernel command line, empty if absent
    read -r cmdline </proc/cmdline
    for arg in $cmdline; do
        case "$arg" in
            "phyllome.$1="*) echo "${arg#*=}" ;;
        esac
    done
}

while read -r ko; do
    insmod "/lib/modules/$ko" || say "insmod $ko failed"
done </etc/modules

if [ "$POWER_BUTTON" != none ]; then
    # busybox acpid maps the power key (evdev + button.ko) to PWRF/00000080
    acpid -c /etc/acpi -l /dev/null -p /run/acpid.pid
    # acpid writes its pid file once it has opened the event devices; a
    # button pressed before that is lost, so "ready" waits for it
    tries=50
    while [ ! -s /run/acpid.pid ] && [ "$tries" -gt 0 ]; do
        usleep 100000
        tries=$((tries - 1))
    done
    [ -s /run/acpid.pid ] || say "acpid did not start"
fi

if [ "$IOMMU_REPORT" = yes ]; then
    dmesg | grep -E 'DMAR: IOMMU enabled|DMAR-IR: Enabled IRQ remapping' |
        while read -r line; do say "dmesg: $line"; done
    for dev in /sys/bus/pci/devices/*; do
        if [ -e "$dev/iommu_group" ]; then
            group=$(readlink "$dev/iommu_group")
            say "iommu_group ${dev##*/} ${group##*/}"
        fi
    done
    # phyllome.vfio_bind=ADDR[,ADDR]: bind those functions to vfio-pci the
    # way a host does it (driver_override, unbind, drivers_probe)
    for addr in $(param vfio_bind | tr , ' '); do
        dev=/sys/bus/pci/devices/$addr
        echo vfio-pci >"$dev/driver_override"
        if [ -e "$dev/driver" ]; then
            echo "$addr" >"$dev/driver/unbind"
        fi
        echo "$addr" >/sys/bus/pci/drivers_probe
        driver=$(readlink "$dev/driver")
        group=$(readlink "$dev/iommu_group")
        if [ -c "/dev/vfio/${group##*/}" ]; then
            say "vfio $addr driver ${driver##*/} /dev/vfio/${group##*/}"
        else
            say "vfio $addr driver ${driver##*/} no /dev/vfio/${group##*/}"
        fi
    done
fi

if [ "$HOTPLUG_REPORT" = yes ]; then
    # one line whenever what the guest sees changes (a test plugs devices, vCPUs, balloon memory)
    devices() {
        blocks=
        for dev in /sys/block/*; do
            case "${dev##*/}" in
                loop* | ram* | '*') ;;
                *) blocks="$blocks ${dev##*/}" ;;
            esac
        done
        nets=
        for dev in /sys/class/net/*; do
            case "${dev##*/}" in
                lo | '*') ;;
                *) nets="$nets ${dev##*/}" ;;
            esac
        done
        mem=$(awk '/^MemTotal/ {print $2}' /proc/meminfo)
        echo "block=[${blocks# }] net=[${nets# }] cpus=$(cat /sys/devices/system/cpu/present) memtotal_kib=$mem"
    }
    (
        last=
        while :; do
            now=$(devices)
            if [ "$now" != "$last" ]; then
                say "devices $now"
                last=$now
            fi
            usleep 300000
        done
    ) &
fi

if [ "$DHCP" = yes ]; then
    # every NIC asks for a lease in the background: the boot does not wait for it
    for dev in /sys/class/net/*; do
        nic=${dev##*/}
        case "$nic" in
            lo | '*') continue ;;
        esac
        ip link set "$nic" up
        udhcpc -i "$nic" -b -s /etc/udhcpc.script >/dev/null 2>&1
    done
fi

if [ -c /dev/tpm0 ]; then
    say "tpm: /dev/tpm0"
fi
if dmesg | grep -q 'secureboot: Secure boot enabled'; then
    say "efi: secure boot enabled"
fi
say "$(cat /proc/version)"
echo "PHYLLOME-GUEST-READY kind=$KIND" >/dev/console

# PID 1 must not exit; the power button script (or virsh destroy) ends the guest
while :; do
    sleep 3600
done
