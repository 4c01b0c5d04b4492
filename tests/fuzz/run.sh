#!/usr/bin/env bash
# Build the fuzz targets with libFuzzer + ASan + UBSan and run each in turn:
#   fuzz_http_parser  src/http/parser.c, src/http/httputil.c
#   fuzz_proxy        src/lib/proxy.c (the PROXY protocol parser)
#   tests/fuzz/run.sh [SECONDS]      (default 20; or FUZZ_SECONDS=N), split
#                                    between the targets (HTTP gets the larger part)
# Needs clang and its fuzzer runtime (libclang-rt-14-dev, see scripts/deps.sh).
# The checked-in seeds (tests/fuzz/corpus/NAME) are only read; new inputs go to
# build/fuzz/corpus/NAME, and a crashing input to build/fuzz/crash-*.
# Exits non-zero on any finding.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${1:-${FUZZ_SECONDS:-20}}
out=${FUZZ_OUT:-$root/build/fuzz}
CC=${CC_FUZZ:-clang}
FLAGS=(-std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -g -O1
    -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
    -I"$root/include")

# Two thirds for HTTP (the larger grammar), the rest (at least 1 s) for PROXY.
http_secs=$(( secs * 2 / 3 ))
proxy_secs=$(( secs - http_secs ))
[ "$http_secs" -ge 1 ] || http_secs=1
[ "$proxy_secs" -ge 1 ] || proxy_secs=1

mkdir -p "$out/corpus/http" "$out/corpus/proxy"
echo "fuzz: building $out/fuzz_http_parser"
"$CC" "${FLAGS[@]}" \
    "$here/fuzz_http_parser.c" "$root/src/http/parser.c" "$root/src/http/httputil.c" \
    -o "$out/fuzz_http_parser"
echo "fuzz: building $out/fuzz_proxy"
"$CC" "${FLAGS[@]}" "$here/fuzz_proxy.c" "$root/src/lib/proxy.c" -o "$out/fuzz_proxy"

cd "$out"
# libFuzzer's progress goes to a log; only its end is shown (all of a failing
# run's last 60 lines), so a CI log's tail still shows the tests' verdicts.
fuzz() { # fuzz NAME ARGS...
    local name=$1; shift
    echo "fuzz: running $name ($*)"
    if "./$name" "$@" >"$out/$name.log" 2>&1; then
        grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' "$out/$name.log"
    else
        local rc=$?
        tail -60 "$out/$name.log"
        echo "fuzz: $name FAILED (exit $rc; log: $out/$name.log)"
        return "$rc"
    fi
}
fuzz fuzz_http_parser -max_total_time="$http_secs" -max_len=4096 -timeout=10 \
    -dict="$here/http.dict" -artifact_prefix="$out/" -print_final_stats=1 \
    "$out/corpus/http" "$here/corpus/http"
fuzz fuzz_proxy -max_total_time="$proxy_secs" -max_len=1024 -timeout=10 \
    -dict="$here/proxy.dict" -artifact_prefix="$out/proxy-" -print_final_stats=1 \
    "$out/corpus/proxy" "$here/corpus/proxy"
