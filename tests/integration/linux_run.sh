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

# --- Userspace mode: the guest init's ember.check= checks (deploy/guest/init.sh).
GUEST_INIT_SH=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../deploy/guest" && pwd)/init.sh
# The content the guest's checks write and send, as init.sh makes it.
guest_check_content() { EMBER_INIT_LIB=1 sh -c '. "$1"; check_content' sh "$GUEST_INIT_SH"; }
# userspace_ran OUT: 0 if guest userspace printed a marker. Otherwise 1, after
# a skip line where that is expected (kvm-pvm: init dies at its first system
# call) or a failed check where it is not (hardware KVM).
userspace_ran() {
  grep -qE "EMBER-INIT-OK|EMBER-CHECK:" "$1" && return 0
  if is_pvm_host && grep -qE "Run /(sbin/)?init as init process" "$1"; then
    echo "skip - userspace mode: guest userspace cannot run on this host (kvm-pvm)"
  else
    not_ok "userspace mode: no marker from guest userspace on the console"
  fi
  return 1
}
# tcp_peer_script: a python3 program for the host's end of the tcp checks.
# Args: ADDR PORT sink|source FILE. One connection; sink saves what arrives to
# FILE and replies with its sha256 (tcp-send checks it), source sends FILE.
# Once listening it writes its port (PORT 0: any free one) to FILE.ready.
tcp_peer_script() {
  cat <<'PY'
import hashlib, socket, sys
addr, port, mode, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((addr, port))
srv.listen(1)
open(path + ".ready", "w").write("%d\n" % srv.getsockname()[1])
conn, _ = srv.accept()
if mode == "sink":
    data = bytearray()
    while chunk := conn.recv(65536):
        data += chunk
    open(path, "wb").write(data)
    conn.sendall(hashlib.sha256(data).hexdigest().encode() + b"\n")
else:
    conn.sendall(open(path, "rb").read())
conn.close()
PY
}
wait_ready() { for _ in $(seq 100); do [ -s "$1.ready" ] && return 0; sleep 0.05; done; return 1; }
