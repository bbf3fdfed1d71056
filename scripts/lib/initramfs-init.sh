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
    # A missed kprobe hit (e.g. recursion) would leave a map without its domain.
    if [ "$KPROBES" = 1 ]; then
        while read -r name hits missed; do
            case "$name" in iommusim_*) ;; *) continue ;; esac
            log "kprobe $name: $hits hits, $missed missed"
            [ "$missed" = 0 ] || fail "kprobe $name missed $missed hits"
        done </sys/kernel/tracing/kprobe_profile
    fi
    if [ -r /sys/kernel/tracing/trace ]; then
        log "dumping guest ftrace to ttyS1"
        # Closing the tty waits until the UART has sent everything. The UART is slow under
        # TCG (~200 KB/s): DUMP=gzip sends a tenth of the bytes, as base64 the tty passes.
        if [ "$DUMP" = gzip ]; then
            { gzip -c /sys/kernel/tracing/trace | base64 >/dev/ttyS1; } ||
                fail "could not send the gzipped ftrace buffer to /dev/ttyS1"
        else
            cat /sys/kernel/tracing/trace >/dev/ttyS1 || fail "could not write to /dev/ttyS1"
        fi
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
KPROBES=0
DUMP=text
DEVICE_WAIT=60
# shellcheck source=/dev/null
[ -r /etc/capture/conf ] && . /etc/capture/conf
log "workload=$WORKLOAD disks=$DISKS kernel=$(uname -r)"

# --kprobes: the kernel command line (kprobe_event=) defined and enabled them before the IOMMU
# attached the boot-time domains. Say whether each function is an ftrace-able symbol of its own
# (an .isra/.constprop clone could take its arguments elsewhere) and check that each probe is
# defined and has fired; kprobe_profile counts hits and misses. (The events/kprobes/NAME
# directory of the first boot-time probe is missing in 6.1, so its enable file cannot be read.)
check_kprobes() {
    t=/sys/kernel/tracing
    funcs=$(sed 's/^[^ ]* \([^ ]*\) .*/\1/' /etc/capture/kprobes | tr '\n' '|')
    # One pass: the file is large and slow to generate under TCG.
    grep -E "^(${funcs%|})(\.[a-z0-9.]+)?( |\$)" $t/available_filter_functions >/tmp/ftrace-funcs 2>/dev/null
    while read -r def; do
        [ -n "$def" ] || continue
        name=${def%% *}
        name=${name#p:}
        func=${def#* }
        func=${func%% *}
        log "kprobe target $func in available_filter_functions as: $(grep -E "^$func(\.| |\$)" /tmp/ftrace-funcs | tr '\n' ' ')"
        hits=$(awk -v n="$name" '$1 == n { print $2 }' $t/kprobe_profile)
        if grep -q "^p:kprobes/$name " $t/kprobe_events && [ "${hits:-0}" -gt 0 ]; then
            log "kprobe $name defined, $hits hits at boot: $(grep "^p:kprobes/$name " $t/kprobe_events)"
        else
            fail "kprobe $name is not defined or never fired (kprobe_event= on the command line: $def)"
            log "kprobe_events: $(tr '\n' '|' <$t/kprobe_events)"
        fi
    done </etc/capture/kprobes
}
[ "$KPROBES" = 1 ] && check_kprobes

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

# random_reads DISK COUNT SEED: COUNT direct 4 KiB reads at blocks drawn by a 31-bit linear
# congruential generator (seeded: the same offsets every run; dash has no RANDOM); prints how
# many failed.
random_reads() {
    x=$3
    blocks=$(($(cat "/sys/block/$1/size") / 8))
    i=0
    bad=0
    while [ "$i" -lt "$2" ]; do
        x=$(((x * 1103515245 + 12345) % 2147483648))
        b=$(((x >> 8) % blocks))
        dd "if=/dev/$1" of=/dev/null bs=4096 count=1 "skip=$b" iflag=direct 2>/dev/null || bad=$((bad + 1))
        i=$((i + 1))
    done
    echo "$bad"
}

HEAVY_READS=${HEAVY_READS:-400}
# heavy: on each disk a marker read and 2 MiB written in 1 MiB direct requests (NVMe and
# virtio-blk split each into several commands), read back the same way and compared; then on
# both disks at once, in the background, HEAVY_READS random 4 KiB direct reads and a sequential
# reader of 1 MiB direct requests per disk; final marker reads.
workload_heavy() {
    for disk in $DISKS; do
        [ -b "/dev/$disk" ] || continue
        blocks=$(($(cat "/sys/block/$disk/size") / 8))
        marker_read "$disk" $((blocks - 1))
        run dd if=/tmp/pat2m "of=/dev/$disk" bs=1048576 count=2 seek=1 oflag=direct
        run dd "if=/dev/$disk" of=/tmp/r2m bs=1048576 count=2 skip=1 iflag=direct
        if cmp -s /tmp/r2m /tmp/pat2m; then
            log "/dev/$disk readback OK"
        else
            fail "/dev/$disk 1 MiB readback differs from what was written"
        fi
    done
    rm -f /tmp/r2m
    seed=1
    for disk in $DISKS; do
        [ -b "/dev/$disk" ] || continue
        log "background: $HEAVY_READS random 4 KiB direct reads of /dev/$disk (seed $seed) and 8 x 1 MiB direct reads"
        random_reads "$disk" "$HEAVY_READS" "$seed" >"/tmp/rand.$disk" 2>&1 &
        dd "if=/dev/$disk" of=/dev/null bs=1048576 count=8 skip=1 iflag=direct 2>"/tmp/seq.$disk" &
        seed=$((seed + 1))
    done
    wait
    for disk in $DISKS; do
        [ -b "/dev/$disk" ] || continue
        if [ "$(cat "/tmp/rand.$disk")" = 0 ]; then
            log "/dev/$disk random reads OK"
        else
            fail "/dev/$disk random reads: $(cat "/tmp/rand.$disk") failed"
        fi
        if grep -q "^8+0 records in" "/tmp/seq.$disk"; then
            log "/dev/$disk 1 MiB reader OK"
        else
            fail "/dev/$disk 1 MiB reader: $(tr '\n' ' ' <"/tmp/seq.$disk")"
        fi
        blocks=$(($(cat "/sys/block/$disk/size") / 8))
        marker_read "$disk" $((blocks - 2))
    done
}

case "$WORKLOAD" in
basic)
    for disk in $DISKS; do
        [ -b "/dev/$disk" ] && workload_basic "$disk"
    done
    ;;
heavy)
    dd if=/dev/urandom of=/tmp/pat2m bs=1048576 count=2 2>/dev/null
    workload_heavy
    ;;
*) fail "unknown workload '$WORKLOAD'" ;;
esac

finish
