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

# The rootless test's user, with lingering so that its systemd manager
# (and its bus, /run/user/<uid>/bus) runs without a login.
if id rr-rootless-test >/dev/null 2>&1 || useradd -M -u 1500 -s /bin/sh rr-rootless-test; then
    loginctl enable-linger rr-rootless-test || say "enable-linger failed"
    i=0
    while [ ! -S /run/user/1500/bus ] && [ $i -lt 150 ]; do
        sleep 0.2
        i=$((i + 1))
    done
    [ -S /run/user/1500/bus ] || say "the user manager of rr-rootless-test has no bus"
fi

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
    RRC_BIN=/e2e/rrc RR_CRIU_BIN=/e2e/criu TMPDIR=/tmp "$t" --test-threads="$threads" --show-output $filter \
        >"/results/$n.log" 2>&1
    echo $? >"/results/$n.rc"
    grep -E '^test .* \.\.\. |^test result:' "/results/$n.log" >/dev/console
done

dmesg >/results/dmesg.txt 2>&1
journalctl -b --no-pager >/results/journal.txt 2>&1
(cd /results && tar -cf /dev/vda .) && sync && say "results written"
say "done"
busybox poweroff -f
