# Boots the project's guest kernel with extra ember arguments (sourced after lib.sh).
# linux_run OUT ERR ARGS... ; sets RC. The console gets wall-clock stamps.
LINUX_CMDLINE_BASE="console=ttyS0 reboot=k panic=1 8250.nr_uarts=1 i8042.noaux i8042.nomux"
linux_run() {
  local out=$1 err=$2; shift 2
  local t0; t0=$(date +%s.%N)
  # $EMBER unquoted on purpose: a test may prefix it (ip netns exec NS ...).
  timeout --signal=KILL "${LINUX_BOOT_TIMEOUT:-600}" $EMBER --kernel "$GUEST_DIR/vmlinux" --mem-mib 256 \
      --stats --log-level info "$@" </dev/null 2>"$err" |
    while IFS= read -r line; do line=${line%$'\r'}; printf '%8.2f %s\n' "$(echo "$(date +%s.%N) - $t0" | bc)" "$line"; done >"$out"
  RC=${PIPESTATUS[0]}
}
show_on_failure() { # OUT ERR
  [ "$FAILS" -gt 0 ] || return 0
  echo "--- console tail:"; grep -vE '^ *[0-9.]+ \[ *[0-9.]+\]  \? ' "$1" | tail -25; echo "--- stderr:"; tail -15 "$2"
}
