#!/bin/sh
# Run by rr-e2e.service once systemd and D-Bus are up: loads the modules,
# runs the test binaries, writes the results as a tar onto /dev/vda (as the
# other e2e modes do) and powers off.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
say() { echo "e2e: $*" >/dev/console; }

for m in $(cat /e2e/modules); do
    busybox insmod "/lib/modules/$m" 2>/dev/null || say "insmod $m failed (or built in)"
done
ip link set lo up 2>/dev/null || busybox ip link set lo up

mkdir -p /results
{
    echo "mode: systemd"
    uname -a
    cat /proc/cmdline
    cat /proc/self/cgroup
    cat /proc/self/mountinfo
    ls -l /sys/fs/cgroup
    systemctl --version
    systemctl is-system-running
    ls -l /run/dbus
} >/results/environment.txt 2>&1

threads=$(cat /e2e/test-threads)
filter=$(cat /e2e/filter 2>/dev/null)
cd /tmp || exit 1
for t in /e2e/tests/*; do
    n=${t##*/}
    say "running $n"
    # shellcheck disable=SC2086 # the filter is a list of words
    RRC_BIN=/e2e/rrc TMPDIR=/tmp "$t" --test-threads="$threads" --show-output $filter \
        >"/results/$n.log" 2>&1
    echo $? >"/results/$n.rc"
    grep -E '^test .* \.\.\. |^test result:' "/results/$n.log" >/dev/console
done

dmesg >/results/dmesg.txt 2>&1
journalctl -b --no-pager >/results/journal.txt 2>&1
(cd /results && tar -cf /dev/vda .) && sync && say "results written"
say "done"
busybox poweroff -f
