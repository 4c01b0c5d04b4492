#!/usr/bin/env bash
# Build the HTTP parser fuzz target with libFuzzer + ASan + UBSan and run it.
#   tests/fuzz/run.sh [SECONDS]      (default 20; or FUZZ_SECONDS=N)
# Needs clang and its fuzzer runtime (libclang-rt-14-dev, see scripts/deps.sh).
# The checked-in seeds (tests/fuzz/corpus/http) are only read; new inputs go to
# build/fuzz/corpus/http, and a crashing input to build/fuzz/crash-*.
# Exits non-zero on any finding.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${1:-${FUZZ_SECONDS:-20}}
out=${FUZZ_OUT:-$root/build/fuzz}
CC=${CC_FUZZ:-clang}

mkdir -p "$out/corpus/http"
echo "fuzz: building $out/fuzz_http_parser"
"$CC" -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -g -O1 \
    -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
    -I"$root/include" \
    "$here/fuzz_http_parser.c" "$root/src/http/parser.c" "$root/src/http/httputil.c" \
    -o "$out/fuzz_http_parser"

echo "fuzz: running for ${secs}s"
cd "$out"
exec ./fuzz_http_parser -max_total_time="$secs" -max_len=4096 -timeout=10 \
    -dict="$here/http.dict" -artifact_prefix="$out/" -print_final_stats=1 \
    "$out/corpus/http" "$here/corpus/http"
