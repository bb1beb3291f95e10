# Shared body of the Linux end-to-end tests (sourced after lib.sh).
# linux_boot NAME KERNEL VCPUS [extra ember args...]
# On a host that runs guest userspace (hardware KVM) it asserts the init
# marker and the clean exit on the guest's reboot. On kvm-pvm, where guest
# userspace cannot make system calls, it asserts the kernel's milestones and
# ember's clean exit when the guest's panic reboots it through the i8042.
linux_boot() {
  local name=$1 kernel=$2 vcpus=$3; shift 3
  local initrd=$GUEST_DIR/initrd.cpio
  [ -f "$kernel" ] && [ -f "$initrd" ] || { echo "missing guest artifacts in $GUEST_DIR (make guest)"; exit 1; }
  local tmp; tmp=$(mktemp -d)
  local cmd="console=ttyS0 reboot=k panic=1 8250.nr_uarts=1 i8042.noaux i8042.nomux rdinit=/sbin/init"
  local mode=userspace
  is_pvm_host && mode=kernel-milestones
  echo "mode: $mode ($( is_pvm_host && echo 'kvm-pvm host: guest userspace cannot make system calls' || echo 'hardware KVM'))"
  local t0; t0=$(date +%s.%N)
  # Each console line gets the wall time since launch, so the log shows where time goes.
  timeout --signal=KILL "${LINUX_BOOT_TIMEOUT:-600}" "$EMBER" --kernel "$kernel" --initrd "$initrd" \
      --vcpus "$vcpus" --mem-mib 256 --cmdline "$cmd" --stats --log-level info "$@" </dev/null 2>"$tmp/err" |
    while IFS= read -r line; do line=${line%$'\r'}; printf '%8.2f %s\n' "$(echo "$(date +%s.%N) - $t0" | bc)" "$line"; done >"$tmp/out"
  local rc=${PIPESTATUS[0]}
  local secs; secs=$(echo "$(date +%s.%N) - $t0" | bc)
  check "$name: kernel banner" grep -q "Linux version 6" "$tmp/out"
  check "$name: command line reached the kernel" grep -q "Command line: .*rdinit=/sbin/init" "$tmp/out"
  check "$name: $vcpus CPU(s) brought up" grep -qE "smp: Brought up 1 node, $vcpus CPUs?$" "$tmp/out"
  check "$name: kernel ran init" grep -q "Run /sbin/init as init process" "$tmp/out"
  if [ "$mode" = userspace ]; then
    check "$name: init marker printed by guest userspace" grep -q "EMBER-INIT-OK" "$tmp/out"
  else
    check "$name: guest panicked on init's first syscall, as expected on kvm-pvm" grep -q "Kernel panic" "$tmp/out"
  fi
  check "$name: ember exited 0 on the guest's reboot (got $rc)" test "$rc" -eq 0
  check "$name: ember saw the i8042 reset" grep -q "reset through the i8042" "$tmp/err" 
  local at; at=$(grep -m1 "Run /sbin/init" "$tmp/out" | awk '{print $1}')
  echo "timing: $name: 'Run /sbin/init' after ${at:-?} s wall, ember exit after ${secs} s"
  grep "ember: stats" "$tmp/err" | sed "s/^/$name: /"
  if [ "$FAILS" -gt 0 ]; then echo "--- console tail:"; tail -30 "$tmp/out"; echo "--- stderr:"; tail -20 "$tmp/err"; fi
  rm -rf "$tmp"
}
