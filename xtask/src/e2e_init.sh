#!/bin/sh
# PID 1 of the e2e VM (cargo xtask e2e). Stage 1 runs from the initramfs and
# moves everything into a tmpfs, because pivot_root (which containers use)
# fails when the mount namespace's root is the initramfs. Stage 2 prepares a
# host like the ones rrc meets (the cgroup mode comes from rr.mode= on the
# kernel command line), runs every black-box test binary, writes the results
# as a tar onto /dev/vda and powers off.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

if [ "$1" != stage2 ]; then
    /bin/busybox --install -s /bin
    mkdir -p /newroot
    mount -t tmpfs -o mode=755 root /newroot
    # Everything the initramfs holds (host programs keep their host paths).
    for d in /*; do
        case "$d" in
        /dev | /proc | /sys | /newroot) ;;
        *) cp -a "$d" /newroot/ ;;
        esac
    done
    for d in dev proc sys tmp root run var usr/bin sbin; do mkdir -p /newroot/$d; done
    exec switch_root /newroot /init stage2
    echo "e2e: switch_root failed"
    poweroff -f
fi

say() { echo "e2e: $*"; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
mount -t mqueue mqueue /dev/mqueue
chmod 1777 /tmp
hostname rr-e2e
ip link set lo up

for m in $(cat /e2e/modules); do
    insmod "/lib/modules/$m" || say "insmod $m failed"
done

mode=$(sed -n 's/.*rr\.mode=\([a-z0-9]*\).*/\1/p' /proc/cmdline)
case "$mode" in
v2)
    mount -t cgroup2 cgroup2 /sys/fs/cgroup
    for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
        echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || say "cannot enable $c"
    done
    ;;
v1 | hybrid)
    # The layout systemd makes on legacy and hybrid hosts: cpu,cpuacct and
    # net_cls,net_prio co-mounted with symlinks, a named systemd hierarchy.
    mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
    for c in $(awk 'NR > 1 && $4 == 1 { print $1 }' /proc/cgroups); do
        case "$c" in
        cpu | cpuacct) d=cpu,cpuacct ;;
        net_cls | net_prio) d=net_cls,net_prio ;;
        *) d=$c ;;
        esac
        if [ ! -d "/sys/fs/cgroup/$d" ]; then
            mkdir "/sys/fs/cgroup/$d"
            mount -t cgroup -o "$d" cgroup "/sys/fs/cgroup/$d" || say "cannot mount $d"
        fi
        [ "$d" != "$c" ] && [ ! -e "/sys/fs/cgroup/$c" ] && ln -s "$d" "/sys/fs/cgroup/$c"
    done
    mkdir /sys/fs/cgroup/systemd
    mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
    if [ "$mode" = hybrid ]; then
        mkdir /sys/fs/cgroup/unified
        mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified
    fi
    ;;
*)
    say "unknown rr.mode '$mode'"
    ;;
esac

mkdir -p /results
{
    echo "mode: $mode"
    uname -a
    cat /proc/cmdline
    cat /proc/self/mountinfo
    ls -l /sys/fs/cgroup
} >/results/environment.txt 2>&1

threads=$(cat /e2e/test-threads)
RR_CRIU_BIN=$(cat /e2e/criu-bin 2>/dev/null)
export RR_CRIU_BIN
filter=$(cat /e2e/filter 2>/dev/null)
cd /tmp
for t in /e2e/tests/*; do
    n=${t##*/}
    say "running $n"
    # shellcheck disable=SC2086 # the filter is a list of words
    RRC_BIN=/e2e/rrc TMPDIR=/tmp "$t" --test-threads="$threads" --show-output $filter \
        >"/results/$n.log" 2>&1
    echo $? >"/results/$n.rc"
    grep -E '^test .* \.\.\. |^test result:' "/results/$n.log"
done

dmesg >/results/dmesg.txt 2>&1
(cd /results && tar -cf /dev/vda .) && sync && say "results written"
say "done"
poweroff -f
