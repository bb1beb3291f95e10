#!/bin/sh
# Ember guest init (installed as /init and /sbin/init by deploy/guest/build.sh).
# Runs under busybox sh. It only proves that guest userspace runs: it prints
# the marker line tests look for, then reboots at once, so the monitor sees
# the guest end (reboot=k on the kernel command line).
# On kvm-pvm hosts guest userspace cannot make system calls, so this script
# never gets that far there; the kernel's "Run /... as init process" line is
# the last thing seen.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
echo "EMBER-INIT-OK: guest userspace is running"
reboot -f
# Not reached; if reboot failed, exiting makes the kernel panic, and
# panic=1 / CONFIG_PANIC_TIMEOUT=1 reboots the guest anyway.
exit 1
