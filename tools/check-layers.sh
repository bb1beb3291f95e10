#!/bin/bash
# The include-direction rule (docs/architecture.md): a source file may include
# headers from its own layer and from the layers listed before it, never from a
# later one. jailer/ is its own program and may use core/ only.
# Exit 1 and one line per violation otherwise.
set -u
cd "$(dirname "$0")/.."
order=(core devices interp x86 vm api cmd)
rank() {
    local i
    for i in "${!order[@]}"; do [ "${order[$i]}" = "$1" ] && { echo "$i"; return; }; done
    echo -1
}
bad=0
for f in $(git ls-files 'core/*.[ch]' 'devices/*.[ch]' 'interp/*.[ch]' 'x86/*.[ch]' 'vm/*.[ch]' \
                         'api/*.[ch]' 'cmd/*.[ch]' 'jailer/*.[ch]'); do
    from=${f%%/*}
    while IFS= read -r inc; do
        to=${inc%%/*}
        [ "$to" = "$inc" ] && { echo "$f: include \"$inc\" is not root-relative (layer/file.h)"; bad=1; continue; }
        [ "$to" = "$from" ] && continue
        if [ "$from" = jailer ]; then
            [ "$to" = core ] && continue
            echo "$f: jailer/ may include core/ only, not \"$inc\""; bad=1; continue
        fi
        rf=$(rank "$from"); rt=$(rank "$to")
        if [ "$rt" -lt 0 ] || [ "$rt" -gt "$rf" ]; then
            echo "$f: includes \"$inc\": $from/ may not depend on $to/ (layers: ${order[*]})"; bad=1
        fi
    done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
done
[ $bad = 0 ] && echo "layers: every include points to its own or a lower layer (${order[*]}; jailer -> core)"
exit $bad
