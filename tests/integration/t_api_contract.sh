#!/usr/bin/env bash
# Ember's API against Firecracker's published swagger file: every implemented
# operation gets a valid and an invalid request, and each answer's status and
# body must be what the file documents (api_contract.py). The swagger file
# lives in the project's shared reference folder beside the repository; a
# fresh clone without it skips this test.
source "$(dirname "$0")/lib.sh"
require_kvm
top=$(git -C "$(dirname "$0")" rev-parse --show-toplevel 2>/dev/null || (cd "$(dirname "$0")/../.." && pwd))
SPEC=${FIRECRACKER_SWAGGER:-$top/../shared/reference/firecracker-api.yaml}
[ -f "$SPEC" ] || skip "Firecracker's swagger file is not at $SPEC (it comes with the project's shared/ folder)"

# python3 with PyYAML: Debian's python3-yaml, installed when missing and we may (CI runs as root).
PY=
for p in python3 /usr/bin/python3; do
  command -v "$p" >/dev/null && "$p" -c 'import yaml' 2>/dev/null && { PY=$p; break; }
done
if [ -z "$PY" ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing python3-yaml"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-yaml; } >/dev/null 2>&1
  /usr/bin/python3 -c 'import yaml' 2>/dev/null && PY=/usr/bin/python3
fi
[ -n "$PY" ] || skip "python3 with PyYAML is needed (apt-get install python3-yaml)"

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$PY" "$(dirname "$0")/api_contract.py" --spec "$SPEC" --ember "$EMBER" --work "$tmp"
rc=$?
for f in "$tmp"/*.err; do
  if grep -qE 'ERROR: AddressSanitizer|runtime error|LeakSanitizer|seccomp: thread' "$f"; then
    not_ok "$(basename "$f"): $(grep -m1 -E 'ERROR: AddressSanitizer|runtime error|LeakSanitizer|seccomp: thread' "$f")"
  fi
done
[ "$rc" -eq 0 ] || FAILS=$((FAILS + 1))
finish
