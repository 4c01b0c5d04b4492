#!/usr/bin/env bash
# The test command: unit tests (cmocka binaries in $BUILD/tests), then the
# integration tests (tests/integration, Python standard library only, driving
# the real $BUILD/sockit and real clients). Ends with "N passed, N failed".
#   tests/run.sh [--unit | --integration] [-k PATTERN]
set -u
BUILD=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
what=all
pattern=""
while [ $# -gt 0 ]; do
    case "$1" in
        --unit) what=unit ;;
        --integration) what=integration ;;
        -k) pattern=$2; shift ;;
        *) echo "usage: $0 [--unit|--integration] [-k PATTERN]" >&2; exit 2 ;;
    esac
    shift
done

passed=0
failed=0

if [ "$what" != integration ]; then
    for t in "$root/$BUILD"/tests/test_*; do
        [ -x "$t" ] || continue
        name=$(basename "$t")
        out=$(cd "$root" && timeout 120 "$t" 2>&1)
        rc=$?
        p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
        f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
        p=${p:-0}
        f=${f:-0}
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
            f=1 # crashed or timed out before cmocka could count
        fi
        if [ "$f" -ne 0 ]; then
            printf '%s\n' "$out" | grep -E 'FAILED|ERROR|Assert|Sanitizer|runtime error' | head -20
        fi
        echo "unit $name: $p passed, $f failed"
        passed=$((passed + p))
        failed=$((failed + f))
    done
fi

if [ "$what" != unit ]; then
    summary=$(mktemp)
    SOCKIT="$root/$BUILD/sockit" BUILD_DIR="$root/$BUILD" timeout 3000 \
        python3 "$here/integration/run.py" ${pattern:+-k "$pattern"} --summary "$summary"
    rc=$?
    read -r ip if_ _ < "$summary" 2>/dev/null || { ip=0; if_=1; }
    if [ "$rc" -ne 0 ] && [ "${if_:-0}" -eq 0 ]; then if_=1; fi
    passed=$((passed + ${ip:-0}))
    failed=$((failed + ${if_:-0}))
    rm -f "$summary"
fi

if [ "$what" = all ] && [ -z "$pattern" ]; then
    # The seed programs rewritten on libsockit, run against each other.
    out=$(cd "$root" && BUILD="$BUILD" timeout 300 bash examples/check.sh 2>&1)
    rc=$?
    line=$(printf '%s\n' "$out" | grep -E '^examples: [0-9]+ passed, [0-9]+ failed' | tail -1)
    ep=$(echo "$line" | sed -n 's/^examples: \([0-9]*\) passed.*/\1/p')
    ef=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
    ep=${ep:-0}
    ef=${ef:-0}
    if [ "$rc" -ne 0 ] && [ "$ef" -eq 0 ]; then ef=1; fi
    [ "$ef" -eq 0 ] || printf '%s\n' "$out" | grep -E 'FAIL' | head -20
    echo "examples: $ep passed, $ef failed"
    passed=$((passed + ep))
    failed=$((failed + ef))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
