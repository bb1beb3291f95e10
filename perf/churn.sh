#!/usr/bin/env bash
# Life-cycle churn (issue #16): full VM life cycles one after another, then K
# at a time, with what the host holds measured before and after: nothing may
# be left and nothing may grow. `make churn` runs it; not part of `make test`.
#
# One cycle: ember started with --api-sock in a network namespace, configured
# over the API, InstanceStart, the guest works, the guest reboots, ember exits 0.
#   GUEST=linux  the project's Linux guest (read-only root, an ext4 data drive,
#                a NIC on its own tap): its init writes and reads back a file on
#                the data drive (ember.check=blk) and sends 460 KB to a peer on
#                the host over TCP (ember.check=tcp-send), then reboots.
#   GUEST=tiny   the tiny test guest ("hello": prints and shuts down) with the
#                same data drive and NIC attached but no traffic: many cycles fast.
# Measured before and after (and printed): the open fds of every process on
# the host, taps, cgroup directories, mounts, API sockets and other files
# left in the work directory, ember processes, MemAvailable; and each VMM's
# peak resident memory (GNU time's maximum RSS), first cycle against last.
#
# Parameters (environment): N sequential cycles (default 20), K at a time
# (default 4) for ROUNDS rounds (default 2), GUEST (linux), EMBER, GUEST_DIR,
# TEST_GUEST. Without a usable /dev/kvm (or, for GUEST=linux, on kvm-pvm) it runs itself inside the emulated KVM
# host (tests/kvmhost/run, docs/testing.md) with CHURN_SMP vCPUs (default 2),
# CHURN_DEADLINE seconds at most (default 3600). Exit 0 when every cycle passed and nothing was left.
# Diagnostics (docs/reliability.md, Churn): CHURN_VMM=qemu|mixed runs the Linux cycle under QEMU
# microvm (mixed: odd slots), CHURN_PIN=1 keeps each VMM on one CPU, CHURN_THP sets the emulated
# host's transparent huge pages.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"
source tests/integration/lib.sh
source tests/integration/linux_run.sh
export EMBER=${EMBER:-build/ember} GUEST_DIR=${GUEST_DIR:-build/guest} TEST_GUEST=${TEST_GUEST:-build/test-guest.elf}
N=${N:-20} K=${K:-4} ROUNDS=${ROUNDS:-2} GUEST=${GUEST:-linux}
export N K ROUNDS GUEST

# A kvm-pvm /dev/kvm runs no guest userspace (docs/host-compat.md): the Linux
# guest's checks need it, so such a host counts as none for GUEST=linux.
if ! kvm_usable || { [ "$GUEST" = linux ] && is_pvm_host; }; then
  [ "${EMBER_KVMHOST:-0}" = 1 ] && { echo "churn: no usable /dev/kvm even inside the emulated host"; exit 1; }
  echo "churn: $(kvm_usable && echo "this machine's /dev/kvm is kvm-pvm (no guest userspace)" || echo "no usable /dev/kvm here"): running inside the emulated KVM host (tests/kvmhost)"
  KVMHOST_DIR=$(tests/kvmhost/build.sh) || { echo "churn: cannot build the emulated KVM host"; exit 1; }
  export KVMHOST_DIR
  # CHURN_SMP: the emulated host's vCPUs (default 2). Two-vCPU emulated hosts
  # now and then triple-fault a guest (docs/testing.md, "Avoiding the freeze");
  # one vCPU is what the test suite uses.
  exec tests/kvmhost/run --timeout "${CHURN_DEADLINE:-3600}" --smp "${CHURN_SMP:-2}" --mem 2048 -- bash "$here/churn.sh"
fi
[ "$(id -u)" -eq 0 ] || { echo "churn: needs root (a network namespace and taps)"; exit 1; }
# CHURN_THP=always|madvise|never: the emulated host's transparent huge pages for the run (its kernel's default: always).
if [ "${EMBER_KVMHOST:-0}" = 1 ] && [ -n "${CHURN_THP:-}" ]; then
  echo "$CHURN_THP" >/sys/kernel/mm/transparent_hugepage/enabled || exit 1
  echo "churn: emulated host's transparent huge pages: $(cat /sys/kernel/mm/transparent_hugepage/enabled)"
fi
case $GUEST in
  linux) [ -f "$GUEST_DIR/vmlinux" ] && [ -f "$GUEST_DIR/rootfs.ext4" ] || { echo "churn: missing $GUEST_DIR (make guest)"; exit 1; } ;;
  tiny) [ -f "$TEST_GUEST" ] || { echo "churn: missing $TEST_GUEST (make all)"; exit 1; } ;;
  *) echo "churn: GUEST must be linux or tiny"; exit 1 ;;
esac
tmp=$(mktemp -d)
ns=ember-churn-$$
cleanup() { ip netns del "$ns" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
ip netns add "$ns" || { echo "churn: cannot create a network namespace"; exit 1; }
ip -n "$ns" link set lo up
tcp_peer_script >"$tmp/peer.py"
guest_check_content >"$tmp/content"
want_sha=$(sha256sum <"$tmp/content" | cut -d' ' -f1)
mkdir "$tmp/run"

# ---- what the host holds
snapshot() { # the figures, one "name value" a line
  echo "open_fds $(find /proc/[0-9]*/fd -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)"
  echo "taps $( { ip -o link show type tun 2>/dev/null; ip -n "$ns" -o link show type tun 2>/dev/null; } | wc -l)"
  echo "cgroup_dirs $(find /sys/fs/cgroup -type d 2>/dev/null | wc -l)"
  echo "mounts $(wc -l </proc/self/mountinfo)"
  echo "work_files $(find "$tmp/run" -mindepth 1 | wc -l)"
  echo "ember_procs $(pgrep -xc "$(basename "$EMBER")" || true)"
  echo "mem_available_kib $(awk '/^MemAvailable/ {print $2}' /proc/meminfo)"
}
value() { awk -v k="$1" '$1 == k {print $2}' "$2"; }

# ---- one life cycle in slot S (its own tap, data image, peer port); prints one result line
cycle() { # S I
  local s=$1 i=$2 d=$tmp/slot$1 sock tap=tap$1 host_ip guest_ip port pid rc checks= peer=
  mkdir -p "$d"
  sock=$tmp/run/c$s-$i.sock
  host_ip=172.30.$s.1 guest_ip=172.30.$s.2 port=$((5000 + s))
  ip -n "$ns" tuntap add dev $tap mode tap vnet_hdr
  ip -n "$ns" addr add $host_ip/30 dev $tap
  ip -n "$ns" link set $tap up
  [ -f "$d/data.ext4" ] || mke2fs -q -F -t ext4 "$d/data.ext4" 8M >/dev/null
  rm -f "$d/sink" "$d/sink.ready"
  if [ "$GUEST" = linux ]; then
    ip netns exec "$ns" python3 "$tmp/peer.py" $host_ip $port sink "$d/sink" &
    peer=$!
    wait_ready "$d/sink"
    # quiet: the kernel's boot log is ~8 KB of UART exits, 2-3 s of a cycle
    # inside the emulated host; init's check lines still reach the console.
    checks=" quiet ember.check=blk:/dev/vdb,tcp-send:$host_ip:$port"
  fi
  rm -f "$d/maxrss"
  if [ "$(slot_vmm "$s")" = qemu ]; then
    qemu_cycle "$s" "$d" "$tap" "$guest_ip" "$host_ip" "$checks"
    return
  fi
  local pin=()
  # CHURN_PIN=1: each VMM's threads on one CPU (slot modulo CPUs), so its device thread and vCPU never run at once.
  [ "${CHURN_PIN:-0}" = 1 ] && pin=(taskset -c $((s % $(nproc))))
  ip netns exec "$ns" /usr/bin/time -f %M -o "$d/maxrss" "${pin[@]}" "$EMBER" --api-sock "$sock" </dev/null >"$d/out" 2>"$d/err" &
  pid=$!
  for _ in $(seq 500); do api_answers "$sock" && break; sleep 0.02; done
  api "$sock" PUT /machine-config '{"vcpu_count":1,"mem_size_mib":256}'
  if [ "$GUEST" = linux ]; then
    api "$sock" PUT /boot-source "{\"kernel_image_path\":\"$GUEST_DIR/vmlinux\",\"boot_args\":\"$LINUX_CMDLINE_BASE ip=$guest_ip::$host_ip:255.255.255.252::eth0:off$checks\"}"
    api "$sock" PUT /drives/rootfs "{\"drive_id\":\"rootfs\",\"path_on_host\":\"$GUEST_DIR/rootfs.ext4\",\"is_root_device\":true,\"is_read_only\":true}"
  else
    api "$sock" PUT /boot-source "{\"kernel_image_path\":\"$TEST_GUEST\",\"boot_args\":\"ember-test=hello\"}"
  fi
  api "$sock" PUT /drives/data "{\"drive_id\":\"data\",\"path_on_host\":\"$d/data.ext4\",\"is_root_device\":false,\"is_read_only\":false}"
  api "$sock" PUT /network-interfaces/eth0 "{\"iface_id\":\"eth0\",\"host_dev_name\":\"$tap\",\"guest_mac\":\"06:00:ac:1e:0$s:02\"}"
  api "$sock" PUT /actions '{"action_type":"InstanceStart"}'
  local started=$CODE
  for _ in $(seq 6000); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
  if kill -0 $pid 2>/dev/null; then pkill -KILL -P $pid; fi # 10 minutes: the VMM under time(1)
  wait $pid; rc=$?
  [ -n "$peer" ] && { kill $peer 2>/dev/null; wait $peer 2>/dev/null; }
  ip -n "$ns" link del $tap
  local ok=yes why=
  [ "$started" = 204 ] || { ok=no; why+=" InstanceStart=$started"; }
  [ $rc -eq 0 ] || { ok=no; why+=" exit=$rc"; }
  if [ "$GUEST" = linux ]; then
    grep -qa "EMBER-CHECK: done: 2 check(s), 0 failed" "$d/out" || { ok=no; why+=" guest-checks-failed"; }
    [ "$( (sha256sum <"$d/sink" | cut -d' ' -f1) 2>/dev/null)" = "$want_sha" ] || { ok=no; why+=" tcp-content"; }
  else
    grep -qa "EMBER-TEST: PASS hello" "$d/out" || { ok=no; why+=" no-PASS"; }
  fi
  [ -e "$sock" ] && { ok=no; why+=" socket-left"; }
  echo "cycle $s.$i ok=$ok maxrss_kib=$(tail -1 "$d/maxrss" 2>/dev/null)${why}"
  [ "$ok" = yes ] || { tail -5 "$d/err" | sed 's/^/#   /'; tail -3 "$d/out" | sed 's/^/#   /'; }
}

# CHURN_VMM=qemu (or mixed: odd slots QEMU, even slots Ember) runs the same
# Linux cycle under QEMU microvm on the same KVM: a fault that QEMU's guests
# show too is the host's (the emulated host's), not Ember's.
slot_vmm() { case ${CHURN_VMM:-ember} in qemu) echo qemu ;; mixed) [ $(($1 % 2)) = 1 ] && echo qemu || echo ember ;; *) echo ember ;; esac; }
qemu_cycle() { # S DIR TAP GUEST_IP HOST_IP CHECKS: the Linux cycle under QEMU microvm, called by cycle (its i and peer); prints one result line
  local s=$1 d=$2 tap=$3 rc ok=yes why=
  # microvm without ACPI has no i8042: reboot=t (a triple fault) is the guest's reboot, and
  # -no-reboot makes it end QEMU with 0. So only the checks tell a fault before them apart.
  timeout --signal=KILL 600 ip netns exec "$ns" /usr/bin/time -f %M -o "$d/maxrss" qemu-system-x86_64 \
    -M microvm,acpi=off -enable-kvm -cpu host -m 256 -smp 1 -nographic -nodefaults -serial stdio -no-reboot \
    -kernel "$GUEST_DIR/vmlinux" \
    -append "$LINUX_CMDLINE_BASE reboot=t root=/dev/vda ro ip=$4::$5:255.255.255.252::eth0:off$6" \
    -drive "id=root,file=$GUEST_DIR/rootfs.ext4,format=raw,if=none,readonly=on" -device virtio-blk-device,drive=root \
    -drive "id=data,file=$d/data.ext4,format=raw,if=none" -device virtio-blk-device,drive=data \
    -netdev "tap,id=n0,ifname=$tap,script=no,downscript=no" -device "virtio-net-device,netdev=n0,mac=06:00:ac:1e:0$s:02" \
    </dev/null >"$d/out" 2>"$d/err"
  rc=$?
  [ -n "$peer" ] && { kill $peer 2>/dev/null; wait $peer 2>/dev/null; }
  ip -n "$ns" link del $tap
  [ $rc -eq 0 ] || { ok=no; why+=" exit=$rc"; }
  grep -qa "EMBER-CHECK: done: 2 check(s), 0 failed" "$d/out" || { ok=no; why+=" guest-checks-failed"; }
  [ "$( (sha256sum <"$d/sink" | cut -d' ' -f1) 2>/dev/null)" = "$want_sha" ] || { ok=no; why+=" tcp-content"; }
  echo "cycle $s.$i ok=$ok vmm=qemu maxrss_kib=$(tail -1 "$d/maxrss" 2>/dev/null)${why}"
  [ "$ok" = yes ] || { tail -5 "$d/err" | sed 's/^/#   /'; tail -3 "$d/out" | sed 's/^/#   /'; }
}

stats() { # FILE FIELD: min median max of FIELD=... over the cycle lines
  grep -o "$2=[0-9]*" "$1" | cut -d= -f2 | sort -n |
    awk '{ v[NR] = $1 } END { if (NR) printf "min %d median %d max %d (first %s, last %s)", v[1], v[int((NR + 1) / 2)], v[NR], first, last }' \
      first="$(grep -o "$2=[0-9]*" "$1" | head -1 | cut -d= -f2)" last="$(grep -o "$2=[0-9]*" "$1" | tail -1 | cut -d= -f2)"
}
compare() { # BEFORE AFTER LABEL: prints the figures; returns 1 if something was left
  local k b a bad=0
  for k in open_fds taps cgroup_dirs mounts work_files ember_procs; do
    b=$(value $k "$1"); a=$(value $k "$2")
    printf '  %-12s before %6s after %6s%s\n' "$k" "$b" "$a" "$([ "$a" -gt "$b" ] && echo "  LEFT/GREW")"
    [ "$a" -gt "$b" ] && bad=1
  done
  printf '  %-12s before %6s after %6s (KiB; informative: the page cache moves it)\n' mem_available \
    "$(value mem_available_kib "$1")" "$(value mem_available_kib "$2")"
  return $bad
}

fail=0
echo "churn: $GUEST guest, $N cycles one after another, then $ROUNDS rounds of $K at a time ($(nproc) CPUs$( [ "${EMBER_KVMHOST:-0}" = 1 ] && echo ", inside the emulated KVM host"))"
# One cycle first, not counted: the page cache and the first-use costs settle.
cycle 1 0 >"$tmp/warm"
snapshot >"$tmp/before"
t0=$(date +%s)
for i in $(seq "$N"); do cycle 1 "$i"; done | tee "$tmp/seq" # each line as it comes: a deadline keeps what ran
t1=$(date +%s)
snapshot >"$tmp/after-seq"
for r in $(seq "$ROUNDS"); do
  for s in $(seq "$K"); do cycle "$s" "r$r" >"$tmp/par.$r.$s" & done
  wait
  cat "$tmp"/par.$r.* # each round as it ends: a deadline keeps what ran
done
t2=$(date +%s)
cat "$tmp"/par.* >"$tmp/par" 2>/dev/null
snapshot >"$tmp/after-par"
grep -hv "ok=yes" "$tmp/warm" "$tmp/seq" "$tmp/par" | sed 's/^/churn: failed: /'
nseq=$(grep -c "ok=yes" "$tmp/seq"); npar=$(grep -c "ok=yes" "$tmp/par")
echo "churn: sequential: $nseq of $N cycles passed in $((t1 - t0)) s"
echo "  VMM peak RSS (KiB): $(stats "$tmp/seq" maxrss_kib)"
compare "$tmp/before" "$tmp/after-seq" || fail=1
echo "churn: $K at a time: $npar of $((K * ROUNDS)) cycles passed in $((t2 - t1)) s"
echo "  VMM peak RSS (KiB): $(stats "$tmp/par" maxrss_kib)"
compare "$tmp/after-seq" "$tmp/after-par" || fail=1
[ "$nseq" -eq "$N" ] && [ "$npar" -eq $((K * ROUNDS)) ] || fail=1
echo "churn: $([ $fail -eq 0 ] && echo "PASS: every cycle passed, nothing left, nothing grew" || echo FAIL)"
exit $fail
