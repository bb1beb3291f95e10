#!/usr/bin/env bash
# CPU templates as a Linux guest sees them (its /proc/cpuinfo flags, ember.check=cpuinfo):
#   1 no template (a config file): the flags the host's KVM offers;
#   2 over the API: a template for the other CPU vendor is a 400 naming this host's vendor, then this
#     host's own static template (T2A on AMD, T2 on Intel): the flags it removes that the first guest
#     had are gone. The guest is held, paused and snapshotted; a fresh process loads the snapshot and
#     reports the template in GET /machine-config and GET /vm/config;
#   3 a custom template (a config file whose cpu-config is a file's path) clearing one leaf 7 EBX bit the
#     first guest showed and a bit of IA32_ARCH_CAPABILITIES: that flag is gone, no other, the MSR changed;
#   4 custom templates KVM cannot apply (a leaf it lacks, an MSR it lacks, an MSR value it refuses, a
#     capability it lacks): InstanceStart answers 400 naming what, and the API stays usable.
# The emulated KVM host (QEMU TCG -cpu max) is AMD; a hardware Intel host runs the T2 branch.
# integration: deadline 1800
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/linux_run.sh"
require_kvm
command -v curl >/dev/null || skip "curl is needed"
[ -f "$GUEST_DIR/vmlinux" ] && [ -f "$GUEST_DIR/initrd.cpio" ] || { echo "missing guest artifacts in $GUEST_DIR (make guest)"; exit 1; }
tmp=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
BOOT_TIMEOUT=${LINUX_BOOT_TIMEOUT:-600}
CMD="$LINUX_CMDLINE_BASE rdinit=/sbin/init ember.check=cpuinfo"

vendor=$(grep -m1 '^vendor_id' /proc/cpuinfo | awk '{print $3}')
case $vendor in
  AuthenticAMD) own=T2A other=T2
    # What T2A turns off (Linux's names), where a host has them. Not 3dnowprefetch: T2A clears its CPUID
    # bit, but Linux on AMD sets the flag again for any 64-bit CPU (LM implies PREFETCHW, init_amd).
    removes="monitor vmx pdpe1gb rdseed adx clflushopt clwb sha_ni umip pku ospke gfni vaes vpclmulqdq la57 rdpid
             avx512f avx512dq avx512cd avx512bw avx512vl xsavec xgetbv1 xsaves svm sse4a misalignsse
             mmxext fxsr_opt mwaitx clzero wbnoinvd" ;;
  GenuineIntel) own=T2 other=T2A
    removes="monitor vmx pdpe1gb rdseed adx clflushopt clwb sha_ni umip pku ospke gfni vaes vpclmulqdq la57 rdpid
             avx512f avx512dq avx512cd avx512bw avx512vl xsavec xgetbv1 xsaves 3dnowprefetch wbnoinvd" ;;
  *) skip "host CPU vendor '$vendor' is neither AMD nor Intel" ;;
esac
echo "  host CPU vendor: $vendor (its template: $own; the other vendor's: $other)"

flags() { grep -am1 "EMBER-CHECK: cpuinfo flags:" "$1" | tr -d '\r' | cut -d: -f3 | tr ' ' '\n' | grep . | sort; }
config() { # FILE MACHINE_EXTRA CPU_CONFIG: a config file booting the initrd guest
  cat >"$1" <<JSON
{"boot-source": {"kernel_image_path": "$GUEST_DIR/vmlinux", "initrd_path": "$GUEST_DIR/initrd.cpio",
                 "boot_args": "$CMD"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 256$2},
 "cpu-config": $3}
JSON
}
boot_config() { # NAME CONFIG: ember --config-file until the guest reboots; flags in NAME.flags
  timeout --signal=KILL "$BOOT_TIMEOUT" "$EMBER" --config-file "$2" --no-api --log-level info \
    </dev/null >"$tmp/$1.out" 2>"$tmp/$1.err"
  RC=$?
  check "$1: exit 0 (got $RC)" test "$RC" -eq 0
  check "$1: the guest printed its flags" grep -aq "EMBER-CHECK: cpuinfo flags:" "$tmp/$1.out"
  flags "$tmp/$1.out" >"$tmp/$1.flags"
}
has() { grep -qx "$1" "$2"; }
lacks() { ! grep -qx "$1" "$2"; }
contains() { [[ "$1" == *"$2"* ]]; } # TEXT PART
start_ember() { # NAME SOCK: sets EPID once the socket answers
  "$EMBER" --api-sock "$2" --log-level info </dev/null >"$tmp/$1.out" 2>"$tmp/$1.err" &
  EPID=$!; PIDS+=("$EPID")
  for _ in $(seq 500); do api_answers "$2" && return 0; kill -0 "$EPID" 2>/dev/null || break; sleep 0.02; done
  not_ok "$1: the API socket never answered"; tail -5 "$tmp/$1.err"; return 1
}

# ---- 1: no template
config "$tmp/none.json" "" null
boot_config none "$tmp/none.json"
present=$(for f in $removes; do has "$f" "$tmp/none.flags" && echo "$f"; done | tr '\n' ' ')
echo "  flags: $(wc -l <"$tmp/none.flags") without a template; of those $own turns off, the guest has: $present"
check "the untemplated guest has flags $own turns off (else this test shows nothing)" test -n "$present"

# ---- 2: the API: the other vendor's template refused, this host's applied, then a snapshot keeps it
truncate -s 1M "$tmp/ctl.img"
S=$tmp/api.sock
if start_ember api "$S"; then
  expect_code "PUT /machine-config cpu_template $other on this $vendor host" 400 "$S" PUT /machine-config \
    "{\"vcpu_count\": 1, \"mem_size_mib\": 256, \"cpu_template\": \"$other\"}"
  check "  the fault names the field ($BODY)" contains "$BODY" '`cpu_template`'
  check "  and this host's vendor" contains "$BODY" "$vendor"
  check "  and says the vendors differ" contains "$BODY" "CPU vendor mismatched"
  expect_code "PUT /machine-config cpu_template $own" 204 "$S" PUT /machine-config \
    "{\"vcpu_count\": 1, \"mem_size_mib\": 256, \"cpu_template\": \"$own\"}"
  api "$S" GET /machine-config
  check "GET /machine-config shows cpu_template $own ($BODY)" contains "$BODY" "\"cpu_template\":\"$own\""
  expect_code "PUT /boot-source" 204 "$S" PUT /boot-source \
    "{\"kernel_image_path\": \"$GUEST_DIR/vmlinux\", \"initrd_path\": \"$GUEST_DIR/initrd.cpio\", \"boot_args\": \"$CMD ember.hold=/dev/vda\"}"
  expect_code "PUT /drives/ctl" 204 "$S" PUT /drives/ctl \
    "{\"drive_id\": \"ctl\", \"path_on_host\": \"$tmp/ctl.img\", \"is_root_device\": false}"
  expect_code "InstanceStart" 204 "$S" PUT /actions '{"action_type": "InstanceStart"}'
  if wait_for "$tmp/api.out" "EMBER-HOLD: waiting" "$BOOT_TIMEOUT"; then
    flags "$tmp/api.out" >"$tmp/api.flags"
    check "ember logged the template" grep -q "CPU template $own: .* applied" "$tmp/api.err"
    for f in $present; do check "with $own the guest has no '$f'" lacks "$f" "$tmp/api.flags"; done
    for f in fpu sse sse2 lm; do check "with $own the guest keeps '$f'" has "$f" "$tmp/api.flags"; done
    expect_code "pause" 204 "$S" PATCH /vm '{"state": "Paused"}'
    expect_code "snapshot" 204 "$S" PUT /snapshot/create \
      "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"$tmp/snap\", \"mem_file_path\": \"$tmp/mem\"}"
  else
    not_ok "the templated guest never reached its hold"; tail -20 "$tmp/api.out"; tail -5 "$tmp/api.err"
  fi
  kill -KILL "$EPID" 2>/dev/null; wait "$EPID" 2>/dev/null
  S2=$tmp/load.sock
  if [ -f "$tmp/snap" ] && start_ember load "$S2"; then
    expect_code "snapshot load" 204 "$S2" PUT /snapshot/load \
      "{\"snapshot_path\": \"$tmp/snap\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"$tmp/mem\"}}"
    api "$S2" GET /machine-config
    check "restored: GET /machine-config shows cpu_template $own ($BODY)" contains "$BODY" "\"cpu_template\":\"$own\""
    api "$S2" GET /vm/config
    check "restored: GET /vm/config too" contains "$BODY" "\"cpu_template\":\"$own\""
    kill -KILL "$EPID" 2>/dev/null; wait "$EPID" 2>/dev/null
  fi
fi

# ---- 3: a custom template clearing one leaf 7 EBX bit the untemplated guest shows
bit=; name=
for fb in fsgsbase:0 bmi1:3 avx2:5 smep:7 bmi2:8 erms:9 invpcid:10 rdseed:18 adx:19 smap:20 clflushopt:23 clwb:24 sha_ni:29; do
  has "${fb%%:*}" "$tmp/none.flags" && { name=${fb%%:*}; bit=${fb#*:}; break; }
done
if [ -z "$bit" ]; then
  not_ok "the untemplated guest shows no leaf 7 EBX flag to clear"
else
  map=$(for i in $(seq 31 -1 0); do [ "$i" = "$bit" ] && printf 0 || printf x; done)
  # And RDCL_NO (bit 0) off in IA32_ARCH_CAPABILITIES: clearing a bit is always allowed.
  cat >"$tmp/custom-template.json" <<JSON
{"cpuid_modifiers": [{"leaf": "0x7", "subleaf": "0x0", "flags": 1,
                      "modifiers": [{"register": "ebx", "bitmap": "0b$map"}]}],
 "msr_modifiers": [{"addr": "0x10a", "bitmap": "0b0"}]}
JSON
  config "$tmp/custom.json" "" "\"$tmp/custom-template.json\""
  boot_config custom "$tmp/custom.json"
  check "custom template (leaf 7 ebx bit $bit off): the guest has no '$name'" lacks "$name" "$tmp/custom.flags"
  kept=$(comm -23 "$tmp/none.flags" "$tmp/custom.flags" | tr '\n' ' ')
  check "  and loses nothing else (lost: $kept)" test "$kept" = "$name "
  check "  its MSR modifier was applied ($(grep -o 'MSR 0x10a.*' "$tmp/custom.err"))" \
    grep -qE "CPU template custom: MSR 0x10a (0x[0-9a-f]+|0) -> (0x[0-9a-f]*[02468ace]|0)$" "$tmp/custom.err"
fi

# ---- 4: what KVM cannot do fails InstanceStart with a 400 naming it (no guest runs); the API stays usable
S3=$tmp/refuse.sock
if start_ember refuse "$S3"; then
  expect_code "refusals: PUT /boot-source" 204 "$S3" PUT /boot-source "{\"kernel_image_path\": \"$GUEST_DIR/vmlinux\"}"
  refuse() { # DESCRIPTION CPU_CONFIG WANT_IN_FAULT
    expect_code "refusals: PUT /cpu-config ($1)" 204 "$S3" PUT /cpu-config "$2"
    api "$S3" PUT /actions '{"action_type": "InstanceStart"}'
    check "refusals: $1: InstanceStart 400 naming it (got $CODE $BODY)" \
      bash -c '[ "$1" = 400 ] && [[ "$2" == *"$3"* ]]' _ "$CODE" "$BODY" "$3"
  }
  refuse "a CPUID leaf KVM does not offer" \
    '{"cpuid_modifiers": [{"leaf": "0x4fffffff", "subleaf": "0x0", "flags": 0, "modifiers": []}]}' "leaf 0x4fffffff"
  refuse "an MSR KVM does not have" '{"msr_modifiers": [{"addr": "0x4b564dff", "bitmap": "0b1"}]}' "MSR 0x4b564dff"
  refuse "an EFER value KVM refuses (reserved bit 63)" \
    '{"msr_modifiers": [{"addr": "0xc0000080", "bitmap": "0b1xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}]}' \
    "MSR 0xc0000080"
  refuse "a KVM capability the host lacks" '{"kvm_capabilities": ["999999"]}' "capability 999999"
  api "$S3" GET /
  check "refusals: still Not started ($BODY)" contains "$BODY" '"state":"Not started"'
  kill -KILL "$EPID" 2>/dev/null; wait "$EPID" 2>/dev/null
fi
[ "$FAILS" -gt 0 ] && for n in none api custom; do
  [ -f "$tmp/$n.err" ] && { echo "--- $n stderr:"; tail -8 "$tmp/$n.err"; echo "--- $n console:"; tail -8 "$tmp/$n.out"; }
done
finish
