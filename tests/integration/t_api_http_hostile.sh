#!/usr/bin/env bash
# The API's HTTP layer under hostile clients (issue #16), host-only (no VM: ember
# serves its API before any guest): each malformed or ambiguous request gets
# exactly one Firecracker-shaped JSON error; pipelining, chunked bodies, HTTP/1.0
# and Expect: 100-continue keep working; hundreds of idle and trickling
# connections, and twice 10,000 connections opened and held, do not keep GET /
# from being answered; a slowloris client gets a 408; an idle keep-alive
# connection still serves after 31 s (no idle limit, as Firecracker); nothing
# leaks or grows.
source "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip "python3 is needed"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! python3 "$(dirname "$0")/api_http_hostile.py" "${EMBER:-build/ember}" "$tmp"; then
  FAILS=$((FAILS + 1))
  echo "# ember's stderr:"; tail -20 "$tmp/ember.err"
fi
finish
