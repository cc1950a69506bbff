#!/bin/sh
# /init of the systemd e2e VM (cargo xtask e2e --mode systemd): the
# initramfs holds a Debian root file system with systemd and D-Bus. It is
# copied into a tmpfs first, because pivot_root (which containers use) fails
# while the mount namespace's root is the initramfs; then systemd becomes
# PID 1 there and starts rr-e2e.service, which runs /e2e/run.sh.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p /newroot
mount -t tmpfs -o mode=755 root /newroot
for d in /*; do
    case "$d" in
    /proc | /sys | /dev | /newroot) ;;
    *) cp -a "$d" /newroot/ ;;
    esac
done
mkdir -p /newroot/proc /newroot/sys /newroot/dev /newroot/run /newroot/tmp
chmod 1777 /newroot/tmp
exec switch_root /newroot /lib/systemd/systemd
echo "e2e: switch_root to systemd failed"
busybox poweroff -f
