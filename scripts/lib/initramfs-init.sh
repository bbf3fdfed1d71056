#!/bin/sh
# shellcheck shell=dash
# /init of the tiny initramfs that scripts/capture-qemu-trace builds (busybox sh, run as PID 1
# inside the guest). It mounts proc/sys/dev/debugfs/tracefs, loads the kernel modules listed in
# /etc/capture/modules (already in `modprobe --show-depends` order), runs the I/O workload named
# in /etc/capture/conf on each disk, dumps the guest ftrace buffer to the second serial port
# (ttyS1) and powers off. Every line it prints on the console starts with "DMACAP:"; the host
# script looks for "DMACAP: status ok" to know the workload ran and was verified.
export PATH=/bin:/sbin

mount -t devtmpfs devtmpfs /dev 2>/dev/null
# The initramfs carries no /dev/console node (building it needs no root): use devtmpfs's.
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mkdir -p /tmp

log() { echo "DMACAP: $*"; }

FAILURES=0
fail() {
    log "FAILED: $*"
    FAILURES=$((FAILURES + 1))
}

# run CMD...: print the command and its output (indented), return its status.
run() {
    log "$*"
    "$@" >/tmp/run.out 2>&1
    rc=$?
    sed 's/^/DMACAP:   /' /tmp/run.out
    [ "$rc" -eq 0 ] || fail "exit status $rc: $*"
    return "$rc"
}

finish() {
    if [ -w /sys/kernel/tracing/tracing_on ]; then
        echo 0 >/sys/kernel/tracing/tracing_on
    fi
    if [ -r /sys/kernel/tracing/trace ]; then
        log "dumping guest ftrace to ttyS1"
        # Closing the tty waits until the UART has sent everything.
        cat /sys/kernel/tracing/trace >/dev/ttyS1 || log "FAILED: could not write to /dev/ttyS1"
    else
        log "FAILED: no /sys/kernel/tracing/trace (tracefs not mounted?)"
        FAILURES=$((FAILURES + 1))
    fi
    if [ "$FAILURES" -eq 0 ]; then
        log "status ok"
    else
        log "status failed ($FAILURES failures)"
    fi
    log "done, powering off"
    sync
    poweroff -f
    sleep 5
    # Should poweroff fail, leaving PID 1 panics the kernel; with panic=-1 and QEMU's
    # -no-reboot QEMU then exits too.
    exit 1
}

WORKLOAD=basic
DISKS="nvme0n1 vda"
DEVICE_WAIT=60
# shellcheck source=/dev/null
[ -r /etc/capture/conf ] && . /etc/capture/conf
log "workload=$WORKLOAD disks=$DISKS kernel=$(uname -r)"

if [ -r /etc/capture/modules ]; then
    while read -r mod; do
        [ -n "$mod" ] || continue
        run insmod "/lib/modules/$mod" || true
    done </etc/capture/modules
fi

# Wait for the block devices (virtio-blk appears after its module loads).
for disk in $DISKS; do
    waited=0
    while [ ! -b "/dev/$disk" ] && [ "$waited" -lt "$DEVICE_WAIT" ]; do
        sleep 1
        waited=$((waited + 1))
    done
    [ -b "/dev/$disk" ] || fail "/dev/$disk did not appear within ${DEVICE_WAIT}s"
done

log "devices:"
for disk in $DISKS; do
    [ -b "/dev/$disk" ] && echo "DMACAP:   /dev/$disk $(cat "/sys/block/$disk/size") sectors"
done
for d in /sys/bus/pci/devices/*; do
    group=none
    [ -e "$d/iommu_group" ] && group=$(basename "$(readlink "$d/iommu_group")")
    log "pci $(basename "$d") $(cat "$d/vendor"):$(cat "$d/device") group=$group"
done
for g in /sys/kernel/iommu_groups/*; do
    [ -r "$g/type" ] && log "group $(basename "$g") type=$(cat "$g/type")"
done
for u in /sys/class/iommu/*; do
    [ -r "$u/intel-iommu/cap" ] &&
        log "$(basename "$u") cap=$(cat "$u/intel-iommu/cap") ecap=$(cat "$u/intel-iommu/ecap")"
done

MARKER=IOMMUSIM-MARKER

# marker_read DISK BLOCK: a 4 KiB direct read of the marker the host wrote at BLOCK.
marker_read() {
    run dd "if=/dev/$1" of=/tmp/marker bs=4096 count=1 "skip=$2" iflag=direct || return 0
    if [ "$(head -c ${#MARKER} /tmp/marker)" = "$MARKER" ]; then
        log "/dev/$1 marker at block $2 OK"
    else
        fail "/dev/$1 marker at block $2 not found"
    fi
}

# basic DISK: 4 KiB marker read; 4 KiB and 128 KiB O_DIRECT writes, read back (O_DIRECT) and
# compared; final 4 KiB marker read. The markers sit in the disk's last two 4 KiB blocks.
workload_basic() {
    disk=$1
    blocks=$(($(cat "/sys/block/$disk/size") / 8))
    marker_read "$disk" $((blocks - 1))
    run dd if=/tmp/pat "of=/dev/$disk" bs=4096 count=1 seek=16 oflag=direct
    run dd "if=/dev/$disk" of=/tmp/r1 bs=4096 count=1 skip=16 iflag=direct
    run dd if=/tmp/pat "of=/dev/$disk" bs=131072 count=1 seek=1 oflag=direct
    run dd "if=/dev/$disk" of=/tmp/r2 bs=131072 count=1 skip=1 iflag=direct
    if cmp -s /tmp/r1 /tmp/pat4k && cmp -s /tmp/r2 /tmp/pat; then
        log "/dev/$disk readback OK"
    else
        fail "/dev/$disk readback differs from what was written"
    fi
    marker_read "$disk" $((blocks - 2))
}

dd if=/dev/urandom of=/tmp/pat bs=131072 count=1 2>/dev/null
dd if=/tmp/pat of=/tmp/pat4k bs=4096 count=1 2>/dev/null

for disk in $DISKS; do
    [ -b "/dev/$disk" ] || continue
    case "$WORKLOAD" in
    basic) workload_basic "$disk" ;;
    *) fail "unknown workload '$WORKLOAD'" ;;
    esac
done

finish
