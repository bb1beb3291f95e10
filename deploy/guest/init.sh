#!/bin/sh
# Ember guest init (installed as /init and /sbin/init by deploy/guest/build.sh).
# Runs under busybox sh. It proves that guest userspace runs: it prints the
# marker line tests look for, then reboots at once, so the monitor sees the
# guest end (reboot=k on the kernel command line).
# On kvm-pvm hosts guest userspace cannot make system calls, so this script
# never gets that far there; the kernel's "Run /... as init process" line is
# the last thing seen.
#
# ember.check=CHECK[,CHECK...] on the kernel command line (several
# ember.check= words are fine) runs these checks before the reboot, each
# step printing an "EMBER-CHECK: ..." line that the host-side tests read:
#   blk:DEV           mount DEV (an ext4 the host made) on /mnt, write
#                     ember-check.txt with the known content, unmount, mount
#                     it again read-only and read the file back
#   tcp-send:IP:PORT  send the known content, half-close, then read the
#                     peer's reply: the sha256 of what it received
#   tcp-recv:IP:PORT  read from IP:PORT until the peer closes
#   blk-verify:DEV    mount DEV read-only and check that ember-check.txt
#                     (left by blk:DEV, maybe in an earlier life of a restored
#                     snapshot) holds the known content
#   cpuinfo           print the CPU count and the first CPU's flags as the
#                     guest sees them (/proc/cpuinfo)
#   dd:DEV:COUNT:BS   read COUNT blocks of BS bytes from DEV with O_DIRECT
#                     (one request each), timed by /proc/uptime: "dd DEV
#                     start", then "dd DEV read N bytes in MS ms"
#   hwrng:BYTES       read BYTES from /dev/hwrng: which rng it is
#                     (rng_current) and "hwrng read N bytes in MS ms"
#   vsock-echo:PORT:BYTES  send BYTES random bytes over vsock to the host's
#                     port PORT (an echo service), read the echo back and
#                     compare sha256s (/bin/vsock-helper)
#   mmds:ADDR:PATH    the metadata service at ADDR (a route via eth0 is
#                     added): GET /PATH as text, as JSON, with a V2 session
#                     token (PUT /latest/api/token) and with a wrong token;
#                     one line each, the body's newlines shown as '|', or
#                     "failed" (e.g. a 401)
#   mmds-dev:DEV      later mmds: checks go through DEV instead of eth0
#                     (DEV is set up; it needs no address)
#   mmds-bench:ADDR:PATH:N  N sequential GETs of /PATH from the metadata
#                     service (vsock-helper http-bench): "mmds-bench N
#                     requests, ... req/s, latency us median ..."
#   meminfo           "meminfo total T free F available A" (kB, /proc/meminfo)
#   fill:MIB          write MIB MiB of zeros into a tmpfs (the guest touches
#                     that much memory), "fill wrote N bytes", meminfo, then
#                     free it again: "fill freed"
# The known content is what check_content prints. The network is already up:
# the kernel's ip= autoconfiguration does it.
#
# ember.hold=DEV keeps the guest up until the host says otherwise, so a test
# can exercise a live guest (pause/resume, drive swaps, Ctrl-Alt-Del,
# metrics, snapshots): after the checks, init prints "EMBER-HOLD: tick N
# (up S s)" (S: the guest's uptime, /proc/uptime) every 0.5 s and reads the
# first line of DEV's first sector with O_DIRECT each time (no page cache: a
# PATCHed backing file or a host-side write is seen at once), printing
# "EMBER-HOLD: DEV says 'LINE'" whenever it changes. The host writes that
# line into the backing file: "reboot" makes the guest reboot; "check SPEC"
# runs the checks SPEC as ember.check=SPEC would (once per change of the
# line). ember.tick=MS sets the tick period in milliseconds (default 500);
# below 500 ms DEV is still read only every 500 ms or so, as each read is a
# virtio request (dear in the emulated host). ember.ctrlaltdel=reboot makes
# the held guest reboot on the first keyboard interrupt (IRQ 1, counted in
# /proc/interrupts): the kernel has no VT, so nothing else acts on the
# host's SendCtrlAltDel; without it the guest ignores the keys.
#
# ember.echo=PORT starts a TCP echo service on PORT in the background before
# the checks (busybox nc, one cat per connection); "EMBER-ECHO: ..." says so.
# ember.vsock-echo=PORT[:CTLPORT] does the same over vsock (vsock-helper listen
# PORT [CTLPORT]: CTLPORT takes KILL/LIST requests); "EMBER-VSOCK-ECHO: ..."
# says so. ember.tcp-echo=PORT: the same program's echo over TCP (the
# benchmark compares the transports with one echo program).
#
# tests/integration/t_guest_init_host.sh sources this file with
# EMBER_INIT_LIB=1 (functions only) to run the checks on the host.

mark() { echo "EMBER-CHECK: $*"; }
fail() { mark "$1 FAIL: $2"; failed=$((failed + 1)); }
sha() { sha256sum | cut -d' ' -f1; }
check_content() {
    awk 'BEGIN { for (i = 1; i <= 20000; i++) print "ember-check line " i }'
}
# content_ready: the known content made once into a scratch file
# ($content_file), with its sha256 ($content_sha) and size ($content_len).
# Under nested emulation awk's 20000 lines take ~4 s; the checks used to make
# them up to three times each.
content_ready() {
    content_file="${EMBER_TMP:-/tmp}/ember-content"
    if [ ! -s "$content_file.sha" ]; then
        check_content >"$content_file" || return 1
        sha <"$content_file" >"$content_file.sha" || return 1
    fi
    content_sha=$(cat "$content_file.sha")
    content_len=$(($(wc -c <"$content_file")))
}

check_blk() { # DEV
    local dev="$1" mnt="${EMBER_MNT:-/mnt}" f=ember-check.txt want n got m
    content_ready || { fail blk "cannot make the content in ${EMBER_TMP:-/tmp}"; return; }
    want=$content_sha n=$content_len
    mount -t ext4 "$dev" "$mnt" || { fail blk "cannot mount $dev on $mnt"; return; }
    if ! cat "$content_file" >"$mnt/$f"; then
        fail blk "cannot write $mnt/$f"
        umount "$mnt"
        return
    fi
    # umount flushes the file and the journal: the host reads the image
    # without replaying a journal.
    umount "$mnt" || { fail blk "cannot unmount $mnt after writing"; return; }
    mark "blk wrote $n bytes sha256 $want to $dev:/$f"
    # Read back from the device, not the page cache: unmounting dropped it.
    mount -t ext4 -o ro "$dev" "$mnt" || { fail blk "cannot mount $dev again"; return; }
    got=$(sha <"$mnt/$f")
    m=$(($(wc -c <"$mnt/$f")))
    umount "$mnt" || fail blk "cannot unmount $mnt after reading"
    mark "blk read back $m bytes sha256 $got"
    [ "$got" = "$want" ] || fail blk "read back sha256 $got, wrote $want"
}

check_tcp_send() { # IP PORT
    local want n reply
    content_ready || { fail tcp-send "cannot make the content in ${EMBER_TMP:-/tmp}"; return; }
    want=$content_sha n=$content_len
    # nc half-closes when its stdin ends and exits when the peer closes.
    if ! reply=$(timeout 60 nc -w 10 "$1" "$2" <"$content_file"); then
        fail tcp-send "nc to $1:$2 failed"
        return
    fi
    mark "tcp-send sent $n bytes sha256 $want to $1:$2, peer got sha256 ${reply:-(no reply)}"
    [ "$reply" = "$want" ] || fail tcp-send "peer's sha256 differs"
}

check_tcp_recv() { # IP PORT
    local f="${EMBER_TMP:-/tmp}/ember-recv"
    if ! timeout 60 nc -w 10 "$1" "$2" </dev/null >"$f"; then
        fail tcp-recv "nc from $1:$2 failed"
        return
    fi
    mark "tcp-recv received $(($(wc -c <"$f"))) bytes sha256 $(sha <"$f") from $1:$2"
    rm -f "$f"
}

check_blk_verify() { # DEV
    local dev="$1" mnt="${EMBER_MNT:-/mnt}" f=ember-check.txt want got= m=
    content_ready || { fail blk-verify "cannot make the content in ${EMBER_TMP:-/tmp}"; return; }
    want=$content_sha
    mount -t ext4 -o ro "$dev" "$mnt" || { fail blk-verify "cannot mount $dev read-only"; return; }
    if [ -f "$mnt/$f" ]; then
        got=$(sha <"$mnt/$f")
        m=$(($(wc -c <"$mnt/$f")))
    fi
    umount "$mnt" || fail blk-verify "cannot unmount $mnt"
    [ -n "$got" ] || { fail blk-verify "no $f on $dev"; return; }
    mark "blk-verify read $m bytes sha256 $got from $dev:/$f"
    [ "$got" = "$want" ] || fail blk-verify "sha256 $got, the known content has $want"
}

check_vsock_echo() { # PORT BYTES
    local f="${EMBER_TMP:-/tmp}/ember-vsock" want got n
    head -c "$2" /dev/urandom >"$f.out"
    want=$(sha <"$f.out")
    if ! timeout 120 vsock-helper connect "$1" <"$f.out" >"$f.back"; then
        fail vsock-echo "vsock-helper connect $1 failed"
    fi
    got=$(sha <"$f.back")
    n=$(($(wc -c <"$f.back")))
    mark "vsock-echo sent $2 bytes sha256 $want to host port $1, got back $n bytes sha256 $got"
    [ "$got" = "$want" ] || fail vsock-echo "the echo's sha256 differs"
    rm -f "$f.out" "$f.back"
}

check_cpuinfo() {
    mark "cpuinfo cpus: $(grep -c '^processor' /proc/cpuinfo)"
    mark "cpuinfo flags: $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
}

uptime_ms() { # the guest's uptime in ms (/proc/uptime has hundredths; "08" must not read as octal)
    local up rest frac
    read -r up rest </proc/uptime
    frac=${up#*.}
    echo $((${up%.*} * 1000 + 10 * ${frac#0}))
}

check_dd() { # DEV:COUNT:BS
    local dev=${1%%:*} rest=${1#*:} t0 t1 n
    mark "dd $dev start"
    t0=$(uptime_ms)
    n=$(dd if="$dev" bs="${rest#*:}" count="${rest%%:*}" iflag=direct 2>/dev/null | wc -c)
    t1=$(uptime_ms)
    mark "dd $dev read $n bytes in $((t1 - t0)) ms"
}

check_hwrng() { # BYTES
    local t0 t1 n
    [ -e /sys/class ] || mount -t sysfs sysfs /sys 2>/dev/null # rng_current is in sysfs, not mounted otherwise
    mark "hwrng rng_current $(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)"
    t0=$(uptime_ms)
    n=$(head -c "$1" /dev/hwrng | wc -c)
    t1=$(uptime_ms)
    mark "hwrng read $n bytes in $((t1 - t0)) ms"
}

mmds_get() { # ADDR PATH [WGET ARGS...]: the body on one line, or "failed"
    local a="$1" p="$2" body
    shift 2
    body=$(timeout 10 wget -q -O - "$@" "http://$a/$p" 2>/dev/null) || { echo failed; return; }
    printf '%s' "$body" | tr '\n' '|'
}
check_mmds_dev() { # DEV
    mmds_dev=$1
    ip link set "$1" up
    mark "mmds via $1"
}
check_mmds() { # ADDR PATH
    local a="$1" p="$2" tok
    ip route replace "$a" dev "${mmds_dev:-eth0}" 2>/dev/null
    mark "mmds get /$p: $(mmds_get "$a" "$p")"
    mark "mmds json /$p: $(mmds_get "$a" "$p" --header 'Accept: application/json')"
    tok=$(printf 'PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n' |
        timeout 10 nc "$a" 80 | tail -n 1)
    mark "mmds token: ${#tok} characters"
    mark "mmds token get /$p: $(mmds_get "$a" "$p" --header "X-metadata-token: $tok")"
    mark "mmds wrong token get /$p: $(mmds_get "$a" "$p" --header 'X-metadata-token: 0123')"
    tok=$(printf 'PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 1\r\n\r\n' |
        timeout 10 nc "$a" 80 | tail -n 1)
    sleep 2
    mark "mmds expired token get /$p: $(mmds_get "$a" "$p" --header "X-metadata-token: $tok")"
}

check_mmds_bench() { # ADDR:PATH:N
    local a=${1%%:*} rest=${1#*:}
    ip route replace "$a" dev "${mmds_dev:-eth0}" 2>/dev/null
    mark "mmds-bench $(vsock-helper http-bench "$a" "${rest%:*}" "${rest##*:}" 2>&1)"
}

check_meminfo() {
    local k v u total= free= avail=
    while read -r k v u; do
        case $k in MemTotal:) total=$v ;; MemFree:) free=$v ;; MemAvailable:) avail=$v ;; esac
    done </proc/meminfo
    mark "meminfo total $total free $free available $avail"
}

check_fill() { # MIB
    local d="${EMBER_TMP:-/tmp}/ember-fill"
    mkdir -p "$d" && mount -t tmpfs -o size=100% tmpfs "$d" || { fail fill "cannot mount a tmpfs on $d"; return; }
    dd if=/dev/zero of="$d/fill" bs=1048576 count="$1" 2>/dev/null
    mark "fill wrote $(wc -c <"$d/fill") bytes"
    check_meminfo
    rm -f "$d/fill"
    umount "$d"
    mark "fill freed"
}

run_checks() { # CMDLINE: runs every ember.check= in it; returns 1 if any failed
    local w c spec n=0
    failed=0
    set -f  # no globbing of command line words
    for w in $1; do
        case $w in ember.check=*) ;; *) continue ;; esac
        for c in $(echo "${w#ember.check=}" | tr , ' '); do
            n=$((n + 1))
            case $c in
                blk:?*) check_blk "${c#blk:}" ;;
                blk-verify:?*) check_blk_verify "${c#blk-verify:}" ;;
                cpuinfo) check_cpuinfo ;;
                dd:?*:?*:?*) check_dd "${c#dd:}" ;;
                hwrng:?*) check_hwrng "${c#hwrng:}" ;;
                meminfo) check_meminfo ;;
                fill:?*) check_fill "${c#fill:}" ;;
                mmds:?*:?*) spec=${c#mmds:}; check_mmds "${spec%%:*}" "${spec#*:}" ;;
                mmds-dev:?*) check_mmds_dev "${c#mmds-dev:}" ;;
                mmds-bench:?*:*:?*) check_mmds_bench "${c#mmds-bench:}" ;;
                tcp-send:?*:?*) spec=${c#tcp-send:}; check_tcp_send "${spec%:*}" "${spec##*:}" ;;
                tcp-recv:?*:?*) spec=${c#tcp-recv:}; check_tcp_recv "${spec%:*}" "${spec##*:}" ;;
                vsock-echo:?*:?*) spec=${c#vsock-echo:}; check_vsock_echo "${spec%:*}" "${spec##*:}" ;;
                *) fail "$c" "unknown check (blk:DEV, blk-verify:DEV, tcp-send:IP:PORT, tcp-recv:IP:PORT, cpuinfo, dd:DEV:COUNT:BS, hwrng:BYTES, meminfo, fill:MIB, vsock-echo:PORT:BYTES, mmds:ADDR:PATH, mmds-dev:DEV, mmds-bench:ADDR:PATH:N)" ;;
            esac
        done
    done
    set +f
    mark "done: $n check(s), $failed failed"
    [ "$failed" -eq 0 ]
}

# The first line of DEV's first sector, printable characters only.
control_line() { # DEV
    dd if="$1" bs=512 count=1 iflag=direct 2>/dev/null | head -n 1 | tr -cd 'A-Za-z0-9 ._:/-'
}

# Sets KBD_IRQS to the keyboard's interrupt count (IRQ 1, all CPUs), with
# shell builtins only: no process per tick.
kbd_irqs() {
    local line f
    KBD_IRQS=0
    while read -r line; do
        case $line in 1:*) ;; *) continue ;; esac
        for f in ${line#1:}; do
            case $f in *[!0-9]*) break ;; esac
            KBD_IRQS=$((KBD_IRQS + f))
        done
    done <"${EMBER_PROC_INTERRUPTS:-/proc/interrupts}"
}

# Globals set by init_main from the command line: hold's tick period and its
# Ctrl-Alt-Del behaviour.
tick_ms=500
ctrlaltdel=

hold() { # DEV: returns when DEV says "reboot" (or on Ctrl-Alt-Del, see above)
    local dev="$1" n=0 line last="(none)" every kbd0= tick_s nap nap_line up
    tick_s=$(printf '%d.%03d' $((tick_ms / 1000)) $((tick_ms % 1000)))
    # Between ticks: a read with a timeout from a FIFO nobody writes, so a
    # tick costs no process (sleep if the FIFO cannot be made).
    nap="${EMBER_TMP:-/tmp}/ember-hold-nap"
    rm -f "$nap"
    { mkfifo "$nap" && exec 3<>"$nap"; } 2>/dev/null || nap=
    every=$((500 / tick_ms))
    [ "$every" -ge 1 ] || every=1
    echo "EMBER-HOLD: waiting on $dev (write 'reboot' into its first sector to end)"
    if [ "$ctrlaltdel" = reboot ]; then
        kbd_irqs
        kbd0=$KBD_IRQS
        echo "EMBER-HOLD: Ctrl-Alt-Del (a keyboard interrupt) reboots; $kbd0 so far"
    fi
    while :; do
        if [ $((n % every)) -eq 0 ]; then
            line=$(control_line "$dev")
            if [ "$line" != "$last" ]; then
                echo "EMBER-HOLD: $dev says '$line'"
                last=$line
                case $line in
                    reboot) return 0 ;;
                    "check "?*) run_checks "ember.check=${line#check }" ;;
                esac
            fi
        fi
        if [ -n "$kbd0" ]; then
            kbd_irqs
            if [ "$KBD_IRQS" != "$kbd0" ]; then
                echo "EMBER-HOLD: keyboard interrupts $kbd0 -> $KBD_IRQS: Ctrl-Alt-Del, rebooting"
                return 0
            fi
        fi
        n=$((n + 1))
        read -r up nap_line </proc/uptime
        echo "EMBER-HOLD: tick $n (up $up s)"
        if [ -n "$nap" ]; then read -r -t "$tick_s" nap_line <&3; else sleep "$tick_s"; fi
    done
}

start_vsock_echo() { # PORT[:CTLPORT] (stderr stays on the console: connection errors)
    vsock-helper listen $(echo "$1" | tr : ' ') </dev/null >/dev/null &
    echo "EMBER-VSOCK-ECHO: vsock echo service on port ${1%%:*} (pid $!)"
}

start_echo() { # PORT
    nc -ll -p "$1" -e cat </dev/null >/dev/null 2>&1 &
    echo "EMBER-ECHO: TCP echo service on port $1 (pid $!)"
}

init_main() { # CMDLINE: everything but the mounts and the reboot; 1 if a check failed
    local w rc=0
    echo "EMBER-INIT-OK: guest userspace is running"
    for w in $1; do
        case $w in
            ember.echo=?*) start_echo "${w#ember.echo=}" ;;
            ember.vsock-echo=?*) start_vsock_echo "${w#ember.vsock-echo=}" ;;
            ember.tcp-echo=?*) vsock-helper listen-tcp "${w#ember.tcp-echo=}" </dev/null >/dev/null & ;;
            ember.tick=*[!0-9]*) echo "EMBER-HOLD: ignoring $w (a whole number of milliseconds is needed)" ;;
            ember.tick=[1-9]*) tick_ms=${w#ember.tick=} ;;
            ember.tick=*) echo "EMBER-HOLD: ignoring $w (a whole number of milliseconds is needed)" ;;
            ember.ctrlaltdel=?*) ctrlaltdel=${w#ember.ctrlaltdel=} ;;
        esac
    done
    case " $1 " in *" ember.check="*) run_checks "$1" || rc=1 ;; esac
    for w in $1; do
        case $w in ember.hold=?*) hold "${w#ember.hold=}" ;; esac
    done
    return $rc
}

# Sourced by the host-side test: functions only (busybox sh runs its own
# reboot applet whatever PATH says, so the lines below never run there).
[ "${EMBER_INIT_LIB:-}" = 1 ] && return 0

export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
cmdline=$(cat /proc/cmdline)
case " $cmdline " in
    *" ember.check="* | *" ember.hold="*)
        # devtmpfs is mounted by the kernel only for a disk root, not an
        # initramfs; the root may be read-only, so scratch files go to tmpfs.
        [ -e /dev/null ] || mount -t devtmpfs devtmpfs /dev
        mount -t tmpfs tmpfs /tmp
        ;;
esac
init_main "$cmdline"
reboot -f
# Not reached; if reboot failed, exiting makes the kernel panic, and
# panic=1 / CONFIG_PANIC_TIMEOUT=1 reboots the guest anyway.
exit 1
