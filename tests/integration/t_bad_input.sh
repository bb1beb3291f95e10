#!/usr/bin/env bash
# Bad input gets a one-line error naming the problem and a non-zero exit,
# never a crash (exit status >= 128 would mean a signal) nor a sanitizer report.
source "$(dirname "$0")/lib.sh"
require_kvm
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
G=$TEST_GUEST

head -c 100 "$G" > "$tmp/truncated-header.elf"
head -c 3000 "$G" > "$tmp/truncated-segments.elf"
printf 'this is not a kernel at all\n%.0s' {1..20} > "$tmp/text.bin"
: > "$tmp/empty.bin"
head -c $((300 * 1024 * 1024)) /dev/zero > "$tmp/big-initrd.img" 2>/dev/null || truncate -s 300M "$tmp/big-initrd.img"
long=$(head -c 5000 /dev/zero | tr '\0' 'x')

# expect DESCRIPTION EXPECTED-EXIT STDERR-REGEX ARGS...
expect() {
  local d=$1 want=$2 re=$3; shift 3
  for bin in "$EMBER" "$EMBER_ASAN"; do
    run_ember_bin "$bin" "$tmp/out" "$tmp/err" 30 "$@"
    local tag=$(basename "$(dirname "$bin")")
    check "$tag $d: exit $want (got $RC)" test "$RC" -eq "$want"
    check "$tag $d: error names the problem" grep -qE -e "$re" "$tmp/err"
    check "$tag $d: a single line on stderr" test "$(wc -l < "$tmp/err")" -eq 1
  done
}
expect "missing kernel" 1 "kernel '$tmp/nope': No such file" --kernel "$tmp/nope"
expect "kernel is a directory" 1 "not a regular file" --kernel "$tmp"
expect "empty kernel" 1 "is empty" --kernel "$tmp/empty.bin"
expect "not a kernel" 1 "neither an ELF vmlinux nor a bzImage" --kernel "$tmp/text.bin"
expect "truncated ELF header" 1 "ELF.*(truncated|outside the file)" --kernel "$tmp/truncated-header.elf"
expect "truncated ELF segments" 1 "segment .* outside the file" --kernel "$tmp/truncated-segments.elf"
expect "segment outside guest memory" 1 "outside guest memory" --kernel "$G" --mem-mib 2
expect "initrd does not fit" 1 "initrd .* (does not fit|larger than guest memory)" --kernel "$G" --initrd "$tmp/big-initrd.img" --mem-mib 256
expect "missing initrd" 1 "initrd '$tmp/none': No such file" --kernel "$G" --initrd "$tmp/none"
expect "vcpus 0" 153 "--vcpus '0'" --kernel "$G" --vcpus 0
expect "vcpus above the limit" 153 "--vcpus '2000'" --kernel "$G" --vcpus 2000
expect "memory too small" 1 "at least 2 MiB" --kernel "$G" --mem-mib 1
expect "command line too long" 1 "command line is too long" --kernel "$G" --cmdline "$long"
expect "no kernel argument" 153 "--kernel is required" --mem-mib 64
expect "unknown argument" 153 "unknown argument '--frobnicate'" --kernel "$G" --frobnicate
finish
