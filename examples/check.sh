#!/usr/bin/env bash
# examples/check.sh - run every example pair against each other on loopback
# and Unix sockets under a temporary directory; print PASS or FAIL per pair
# and exit 1 if any failed. Builds nothing: run `make` first.
#
#   examples/check.sh            binaries from build/examples
#   BUILD=build-clang examples/check.sh
#   EXAMPLES_DIR=/some/dir examples/check.sh
#
# Servers are started on port 0 and print the port the kernel chose
# ("NAME: listening on tcp://[::]:40123"); every process runs under timeout(1).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
EX=${EXAMPLES_DIR:-$root/${BUILD:-build}/examples}
T=$(mktemp -d "${TMPDIR:-/tmp}/sockit-examples.XXXXXX") || exit 1
pids=()
server=""
rc=0
passed=0
failed=0

cleanup() {
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null
    done
    rm -rf "$T"
}
trap cleanup EXIT

for prog in server client forking_server counter_server udp_server udp_client unix_server \
    unix_client unix_d_server unix_d_send; do
    if [ ! -x "$EX/$prog" ]; then
        echo "FAIL setup: $EX/$prog is missing (run make first)"
        exit 1
    fi
done

pass() {
    echo "PASS $1"
    passed=$((passed + 1))
}

# fail NAME WHY: say why, with the stderr of everything that ran.
fail() {
    echo "FAIL $1: $2"
    for f in "$T"/*.err; do
        [ -s "$f" ] && sed "s|^|    $(basename "$f" .err): |" "$f"
    done
    failed=$((failed + 1))
}

# start NAME PROGRAM ARGS...: a server in the background, output in $T/NAME.out
# and $T/NAME.err; its pid in $server.
start() {
    local name=$1
    shift
    # --foreground: timeout(1) otherwise signals the whole process group and
    # follows with SIGCONT, which can wake a sanitizer build in the middle of
    # LeakSanitizer's exit-time stop-the-world and hang it.
    timeout --foreground -k 5 20 "$EX/$@" >"$T/$name.out" 2>"$T/$name.err" &
    server=$!
    pids+=("$server")
}

# port NAME: wait until the server says where it listens; print the port.
port() {
    for _ in $(seq 100); do
        if grep -q 'listening on' "$T/$1.err" 2>/dev/null; then
            sed -n 's/.*listening on .*:\([0-9][0-9]*\)$/\1/p' "$T/$1.err" | head -1
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# socket PATH: wait until a Unix socket file appears.
socket() {
    for _ in $(seq 100); do
        [ -S "$1" ] && return 0
        sleep 0.05
    done
    return 1
}

# finish: wait for the server; its exit status in $rc.
finish() {
    wait "$server"
    rc=$?
}

# same NAME FILE EXPECTED: FILE holds exactly EXPECTED (printf format).
same() {
    local want
    want=$(printf "$3")
    if [ "$(cat "$2")" != "$want" ]; then
        fail "$1" "$(basename "$2") is \"$(cat "$2")\", expected \"$want\""
        return 1
    fi
}

reset() {
    rm -f "$T"/*.out "$T"/*.err
}

# ---- server + client: one message, one reply, the server exits ----
check_server() {
    reset
    start server server 0
    local p
    p=$(port server) || { fail "server/client" "server did not start"; return; }
    printf 'Hello, server\n' | timeout 10 "$EX/client" localhost "$p" >"$T/client.out" \
        2>"$T/client.err" || { fail "server/client" "client exited $?"; return; }
    finish
    [ "$rc" = 0 ] || { fail "server/client" "server exited $rc"; return; }
    same "server/client" "$T/client.out" 'Please enter the message: I got your message' &&
        same "server/client" "$T/server.out" 'Here is the message: Hello, server' &&
        pass "server/client"
}

# ---- forking_server + 3 concurrent clients, under every model ----
check_forking() {
    local model=$1 name="forking_server -m $1/client"
    reset
    start forking_server forking_server -m "$model" 0
    local p
    p=$(port forking_server) || { fail "$name" "server did not start"; return; }
    local cp=()
    for i in 1 2 3; do
        printf 'message %s\n' "$i" | timeout 10 "$EX/client" 127.0.0.1 "$p" >"$T/client$i.out" \
            2>"$T/client$i.err" &
        cp+=($!)
    done
    for c in "${cp[@]}"; do
        wait "$c" || { fail "$name" "a client exited $?"; kill "$server"; return; }
    done
    kill -TERM "$server"
    finish
    [ "$rc" = 0 ] || { fail "$name" "server exited $rc after SIGTERM"; return; }
    for i in 1 2 3; do
        same "$name" "$T/client$i.out" 'Please enter the message: I got your message' || return
    done
    sort "$T/forking_server.out" >"$T/sorted.txt"
    same "$name" "$T/sorted.txt" \
        'Here is the message: message 1\nHere is the message: message 2\nHere is the message: message 3' &&
        pass "$name"
}

# ---- udp_server + udp_client ----
check_udp() {
    reset
    start udp_server udp_server 0
    local p
    p=$(port udp_server) || { fail "udp_server/udp_client" "server did not start"; return; }
    for msg in one two; do
        printf 'datagram %s\n' "$msg" | timeout 10 "$EX/udp_client" localhost "$p" \
            >"$T/udp_client.out" 2>"$T/udp_client.err" ||
            { fail "udp_server/udp_client" "client exited $?"; kill "$server"; return; }
        same "udp_server/udp_client" "$T/udp_client.out" \
            'Please enter the message: Got an ack: Got your message' || { kill "$server"; return; }
    done
    kill "$server"
    finish
    same "udp_server/udp_client" "$T/udp_server.out" \
        'Received a datagram: datagram one\nReceived a datagram: datagram two' &&
        pass "udp_server/udp_client"
}

# ---- unix_server + unix_client ----
check_unix() {
    reset
    local path=$T/u_stream
    start unix_server unix_server "$path"
    socket "$path" || { fail "unix_server/unix_client" "server did not start"; return; }
    printf 'Hello, unix\n' | timeout 10 "$EX/unix_client" "$path" >"$T/unix_client.out" \
        2>"$T/unix_client.err" || { fail "unix_server/unix_client" "client exited $?"; return; }
    finish
    [ "$rc" = 0 ] || { fail "unix_server/unix_client" "server exited $rc"; return; }
    [ ! -e "$path" ] || { fail "unix_server/unix_client" "socket file left behind"; return; }
    same "unix_server/unix_client" "$T/unix_client.out" \
        'Please enter your message: The return message was\nI got your message' &&
        same "unix_server/unix_client" "$T/unix_server.out" \
            'A connection has been established\nHello, unix' &&
        pass "unix_server/unix_client"
}

# ---- unix_d_server + unix_d_send (the lecture's transcript) ----
check_unix_d() {
    reset
    local path=$T/u_socket
    start unix_d_server unix_d_server "$path"
    socket "$path" || { fail "unix_d_server/unix_d_send" "server did not start"; return; }
    timeout 10 "$EX/unix_d_send" "$path" Message 2>"$T/unix_d_send.err" ||
        { fail "unix_d_server/unix_d_send" "sender exited $?"; return; }
    finish
    [ "$rc" = 0 ] || { fail "unix_d_server/unix_d_send" "server exited $rc"; return; }
    [ ! -e "$path" ] || { fail "unix_d_server/unix_d_send" "socket file left behind"; return; }
    same "unix_d_server/unix_d_send" "$T/unix_d_server.out" '4d 65 73 73 61 67 65 ' &&
        pass "unix_d_server/unix_d_send"
}

# ---- counter_server + client: Connection 1! 2! 3! ----
check_counter() {
    reset
    start counter_server counter_server 127.0.0.1 0
    local p
    p=$(port counter_server) || { fail "counter_server/client" "server did not start"; return; }
    for i in 1 2 3; do
        printf 'dddd\n' | timeout 10 "$EX/client" 127.0.0.1 "$p" >"$T/client.out" \
            2>"$T/client.err" || { fail "counter_server/client" "client exited $?"; kill "$server"; return; }
        same "counter_server/client" "$T/client.out" "Please enter the message: Connection $i!" ||
            { kill "$server"; return; }
    done
    kill -INT "$server"
    finish
    [ "$rc" = 0 ] || { fail "counter_server/client" "server exited $rc after SIGINT"; return; }
    pass "counter_server/client"
}

# ---- exit statuses: 2 for usage errors, 1 for runtime errors ----
check_status() {
    reset
    local bad=""
    expect() {
        local want=$1
        shift
        timeout 10 "$EX/$@" </dev/null >/dev/null 2>>"$T/status.err"
        local got=$?
        [ "$got" = "$want" ] || bad="$bad [$* exited $got, expected $want]"
    }
    expect 2 server
    expect 2 server 70000
    expect 2 client localhost
    expect 2 client localhost 99999
    expect 2 forking_server -m nosuch 0
    expect 2 udp_client localhost
    expect 2 unix_server "$T/a b"
    expect 2 unix_d_send "$T/x"
    expect 2 counter_server 0
    # Nothing listens on a Unix socket that does not exist: runtime errors.
    expect 1 unix_client "$T/nosuch"
    expect 1 unix_d_send "$T/nosuch" hi
    # A port that was free a moment ago (bound, then closed): refused.
    start counter_server counter_server 127.0.0.1 0
    local p
    p=$(port counter_server)
    kill -INT "$server"
    finish
    expect 1 client 127.0.0.1 "$p"
    if [ -z "$bad" ]; then
        pass "exit statuses"
    else
        fail "exit statuses" "$bad"
    fi
}

models=$("$EX/forking_server" -m '?' 0 2>&1 | sed -n 's/^models: \(.*\) (default.*/\1/p')
check_server
for m in ${models:-fork}; do
    check_forking "$m"
done
check_udp
check_unix
check_unix_d
check_counter
check_status

echo "examples: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
