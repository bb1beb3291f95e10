#!/usr/bin/env bash
# Clones: ten Linux microVMs restored at once from one snapshot, each in its
# own network namespace with its own tap (all named tap0, the guest's address
# and MAC the same in each, as clones of one snapshot are), all answering on
# the network; and what each costs in memory.
# The source guest boots with a read-only root and a read-only control drive
# (both safe to share between clones), starts its TCP echo service and ticks
# every 2 s; it is paused and snapshotted, then stopped. Ten processes run
# `ember --snapshot-load STATE --mem FILE --resume --no-api`, each in its
# namespace (no network override: each finds its own tap0). Each clone must
# go on from the snapshot (ticks, no kernel banner, no second init) and its
# echo service must answer through its own tap. Memory, with all ten up: the
# memory file is mapped MAP_PRIVATE, so a clone's share of guest RAM is the
# pages it wrote (private) plus its share of the file pages it read (shared
# through the page cache with the other clones); the checks: the mapping
# holds only pages the clone touched (far less than the RAM), the pages it
# read are shared (its PSS of them is at most half their size), and the VMM
# itself (everything outside guest RAM) costs at most 3 MiB PSS.
# integration: long
# integration: deadline 1800
source "$(dirname "$0")/lib.sh"
require_kvm
[ "$(id -u)" -eq 0 ] || skip "creating network namespaces and taps needs root"
for c in ip curl python3; do command -v $c >/dev/null || skip "$c is needed"; done
[ -f "$GUEST_DIR/vmlinux" ] && [ -f "$GUEST_DIR/rootfs.ext4" ] || { echo "missing guest artifacts in $GUEST_DIR (make guest)"; exit 1; }
N=${CLONES:-10}
tmp=$(mktemp -d)
pfx=ember-clone-$$
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  for k in $(seq 0 "$N"); do ip netns del "$pfx-$k" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
T0=$(date +%s)
GUEST_IP=172.31.251.2 HOST_IP=172.31.251.1 PORT=7777 MAC=06:00:ac:1f:fb:02
# make_ns K: namespace K with tap0, the host's address on it
make_ns() {
  local ns=$pfx-$1
  ip netns add "$ns" || return 1
  ip -n "$ns" link set lo up
  ip -n "$ns" tuntap add dev tap0 mode tap vnet_hdr
  ip -n "$ns" link set tap0 address 02:00:ac:1f:fb:01
  ip -n "$ns" addr add "$HOST_IP/30" dev tap0
  ip -n "$ns" link set tap0 up
}
make_ns 0 || skip "cannot create a network namespace here"
for k in $(seq 1 "$N"); do make_ns "$k" || { echo "cannot create namespace $k"; exit 1; }; done

ticks() { tr -d '\r' < "$1" | grep -aoE 'EMBER-HOLD: tick [0-9]+' | cut -d' ' -f3; }
echo_answers() { ip netns exec "$pfx-$1" python3 "$TCP_ECHO_CHECK" $GUEST_IP $PORT "$2" "${3:-60}"; }
control() { truncate -s 1M "$1"; printf '%s\n' "$2" | dd of="$1" conv=notrunc status=none; }

# =====================================================================
echo "# the source VM: read-only root and control drive, echo service, a tick every 2 s"
control "$tmp/control.img" hold
S=$tmp/src.sock
ip netns exec "$pfx-0" "$EMBER" --api-sock "$S" --log-level info </dev/null >"$tmp/src.out" 2>"$tmp/src.err" &
SRC=$!; PIDS+=("$SRC")
for _ in $(seq 500); do api_answers "$S" && break; sleep 0.02; done
ARGS="$(echo console=ttyS0 reboot=k panic=1 8250.nr_uarts=1 i8042.noaux i8042.nomux) ip=$GUEST_IP::$HOST_IP:255.255.255.252::eth0:off ember.echo=$PORT ember.tick=2000 ember.hold=/dev/vdb"
expect_code "PUT /machine-config" 204 "$S" PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128}'
expect_code "PUT /boot-source" 204 "$S" PUT /boot-source "{\"kernel_image_path\":\"$GUEST_DIR/vmlinux\",\"boot_args\":\"$ARGS\"}"
expect_code "PUT /drives/rootfs (read-only: shared by the clones)" 204 "$S" PUT /drives/rootfs "{\"drive_id\":\"rootfs\",\"path_on_host\":\"$GUEST_DIR/rootfs.ext4\",\"is_root_device\":true,\"is_read_only\":true}"
expect_code "PUT /drives/control (read-only)" 204 "$S" PUT /drives/control "{\"drive_id\":\"control\",\"path_on_host\":\"$tmp/control.img\",\"is_root_device\":false,\"is_read_only\":true}"
expect_code "PUT /network-interfaces/eth0 on tap0" 204 "$S" PUT /network-interfaces/eth0 "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"$MAC\"}"
t_start=$(date +%s)
expect_code "InstanceStart" 204 "$S" PUT /actions '{"action_type":"InstanceStart"}'
if ! wait_for "$tmp/src.out" "EMBER-HOLD: tick 2([^0-9]|$)" "${LINUX_BOOT_TIMEOUT:-600}"; then
  not_ok "source: the guest never reached its second tick"
  echo "--- console tail:"; tail -20 "$tmp/src.out"; echo "--- stderr:"; tail -10 "$tmp/src.err"; finish
fi
echo "  source: InstanceStart -> tick 2 in $(( $(date +%s) - t_start )) s"
if ! echo_answers 0 "before the snapshot"; then
  not_ok "source: the echo service answers on its tap"
  echo "--- console (no ticks):"; grep -av "EMBER-HOLD: tick" "$tmp/src.out" | tail -25; echo "--- stderr:"; tail -10 "$tmp/src.err"; finish
fi
ok "source: the echo service answers on its tap"
expect_code "PATCH /vm Paused" 204 "$S" PATCH /vm '{"state":"Paused"}'
expect_code "PUT /snapshot/create Full" 204 "$S" PUT /snapshot/create "{\"snapshot_type\":\"Full\",\"snapshot_path\":\"$tmp/s.state\",\"mem_file_path\":\"$tmp/s.mem\"}"
n0=$(ticks "$tmp/src.out" | tail -1)
kill -TERM "$SRC"; wait_exit "$SRC" 60
check "source: SIGTERM while paused: exit 0 (got $RC)" test "$RC" -eq 0
[ -s "$tmp/s.mem" ] || { not_ok "no memory file"; finish; }

# =====================================================================
echo "# $N clones at once, each in its own namespace on its own tap0"
t_clones=$(date +%s%N)
declare -a CP
for k in $(seq 1 "$N"); do
  ip netns exec "$pfx-$k" "$EMBER" --snapshot-load "$tmp/s.state" --mem "$tmp/s.mem" --resume --no-api \
    --log-level info </dev/null >"$tmp/c$k.out" 2>"$tmp/c$k.err" &
  CP[$k]=$!; PIDS+=("${CP[$k]}")
done
answered=0
for k in $(seq 1 "$N"); do
  if echo_answers "$k" "clone $k $RANDOM" 120; then
    answered=$((answered + 1))
  else
    not_ok "clone $k: the echo service did not answer on its tap"; tail -5 "$tmp/c$k.err"
  fi
done
echo "  all $answered answering $(( ($(date +%s%N) - t_clones) / 1000000 )) ms after the first was started"
check "all $N clones answer through their own taps ($answered did)" test "$answered" -eq "$N"
for k in $(seq 1 "$N"); do
  check "clone $k: ticks on from the snapshot's tick $n0" wait_for "$tmp/c$k.out" "EMBER-HOLD: tick $((n0 + 2))([^0-9]|$)" 60
  check "clone $k: no kernel banner, no second init" sh -c "! grep -aqE 'Linux version|EMBER-INIT-OK' '$tmp/c$k.out'"
done

# ---- memory, all clones up
cat > "$tmp/mem.py" <<'PY'
import sys
mem, ram_kib = sys.argv[1], int(sys.argv[2])
for pid in sys.argv[3:]:
    maps, cur, total = [], None, 0
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5 and ":" not in parts[0]:
                cur = {"path": parts[5] if len(parts) > 5 else "", "Rss": 0, "Pss": 0, "Anonymous": 0}
                maps.append(cur)
            elif parts[0].rstrip(":") in ("Rss", "Pss", "Anonymous"):
                cur[parts[0].rstrip(":")] = int(parts[1])
    total = sum(m["Pss"] for m in maps)
    vmm = sorted((m for m in maps if m["path"] != mem), key=lambda m: -m["Pss"])
    if total - sum(m["Pss"] for m in maps if m["path"] == mem) > 1024:  # where a VMM's memory went, when it is high
        print("#", pid, "largest VMM mappings:", ", ".join("%s %d KiB" % (m["path"] or "[anon]", m["Pss"]) for m in vmm[:4]))
    ram = [m for m in maps if m["path"] == mem]
    rss = sum(m["Rss"] for m in ram); pss = sum(m["Pss"] for m in ram); anon = sum(m["Anonymous"] for m in ram)
    print(pid, total, rss, pss, anon)
PY
python3 "$tmp/mem.py" "$tmp/s.mem" $((128 * 1024)) "${CP[@]:1}" > "$tmp/mem.txt" 2>&1 || cat "$tmp/mem.txt"
k=0
grep '^#' "$tmp/mem.txt"
grep -v '^#' "$tmp/mem.txt" > "$tmp/mem.rows"
while read -r pid total rss pss anon; do
  k=$((k + 1))
  read_kib=$((rss - anon))
  echo "  clone $k: PSS $((total / 1024)).$(( (total % 1024) * 10 / 1024 )) MiB: guest RAM ${pss} KiB (written ${anon} KiB, read ${read_kib} KiB shared), VMM $((total - pss)) KiB"
  check "clone $k: its RAM mapping holds only pages it touched (${rss} KiB of $((128 * 1024)))" test "$rss" -gt 0 -a "$rss" -lt $((32 * 1024))
  check "clone $k: the pages it read are shared (PSS of guest RAM $pss <= written $anon + read $read_kib / 2 KiB)" \
    test "$pss" -le $((anon + read_kib / 2))
  check "clone $k: the VMM itself costs <= 3 MiB PSS ($((total - pss)) KiB)" test $((total - pss)) -le 3072
done < "$tmp/mem.rows"
check "memory figures for all $N clones ($k)" test "$k" -eq "$N"

for k in $(seq 1 "$N"); do kill -TERM "${CP[$k]}" 2>/dev/null; done
for k in $(seq 1 "$N"); do
  wait_exit "${CP[$k]}" 60
  check "clone $k: SIGTERM: exit 0 (got $RC)" test "$RC" -eq 0
done
echo "  total: $(( $(date +%s) - T0 )) s"
finish
