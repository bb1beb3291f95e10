#!/bin/bash
# make lint: the include-direction rule (tools/check-layers.sh), cppcheck and clang-tidy
# (.clang-tidy) over the project's C sources, compiled as the build compiles them.
# usage: tools/lint.sh [COMPILER FLAGS...] -- FILE.c...
#   JOBS=N     clang-tidy runs at a time (default: one per core)
#   LINT_OUT   where each tool's full output goes (default build/lint)
# Prints one line per finding (file:line: message [check]); exit 1 if there is any.
set -u
cd "$(dirname "$0")/.."
flags=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do flags+=("$1"); shift; done
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || { echo "usage: tools/lint.sh [FLAGS...] -- FILE.c..." >&2; exit 2; }
for t in clang-tidy cppcheck; do
    command -v $t >/dev/null || { echo "lint: $t is missing (make deps installs it)" >&2; exit 2; }
done
jobs=${JOBS:-$(nproc)}
out=${LINT_OUT:-build/lint}
rm -rf "$out" && mkdir -p "$out/tidy"
bad=0

echo "lint: include direction (tools/check-layers.sh)"
tools/check-layers.sh || bad=1

# cppcheck: -I. and -D as the build; the system headers stay out (cppcheck's own library
# files describe libc), Criterion's macros come from tools/cppcheck-criterion.cfg.
echo "lint: cppcheck"
cppflags=()
for f in "${flags[@]}"; do case $f in -D*|-U*|-I*) cppflags+=("$f") ;; esac; done
cppcheck --quiet --enable=warning,performance,portability --error-exitcode=1 --inline-suppr \
    --std=c11 --library=gnu --library=tools/cppcheck-criterion.cfg --suppressions-list=tools/cppcheck.supp \
    -j "$jobs" --template='{file}:{line}: {severity}: {message} [{id}]' \
    "${cppflags[@]}" "$@" 2>"$out/cppcheck.txt"
rc=$?
sort -u "$out/cppcheck.txt"
[ $rc -eq 0 ] && [ ! -s "$out/cppcheck.txt" ] || bad=1

# clang-tidy: one file a run, $jobs at a time, each into its own file; a header's finding is
# reported once however many files include it.
echo "lint: clang-tidy ($# files, $jobs at a time)"
printf '%s\n' "$@" | LINT_TIDY=$out/tidy xargs -P "$jobs" -I{} sh -c \
    'clang-tidy --quiet "$0" "$@" >"$LINT_TIDY/$(echo "$0" | tr / _).txt" 2>&1' {} -- "${flags[@]}"
findings=$(cat "$out"/tidy/*.txt | grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error):' |
           sed -e "s#^$PWD/##" -e 's#^\./##' | sort -u)
if [ -n "$findings" ]; then echo "$findings"; bad=1; fi

n_tidy=$(printf '%s' "$findings" | grep -c . || true)
if [ $bad = 0 ]; then echo "lint: clean"; else echo "lint: findings above ($n_tidy from clang-tidy; full output in $out/)"; fi
exit $bad
