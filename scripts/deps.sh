#!/usr/bin/env bash
# Install everything sockit's build, tests and benchmarks need, from Debian's archive.
# Idempotent: packages already present are skipped, so a second run costs one dpkg query.
set -euo pipefail

# What each package is for:
#   clang                 second compiler (the code must build with gcc and clang)
#   libclang-rt-14-dev    clang's sanitizer/libFuzzer runtimes (fuzz targets)
#   libcmocka-dev         unit tests
#   pkg-config            checks the installed sockit.pc
#   socat netcat-openbsd  real clients for the integration tests
#   ncat rdate            more real clients (ncat --broker style tests, rdate -p for time)
#   sslscan               checks what serve --tls offers (protocols, ciphers, renegotiation)
#   iproute2 procps       ss / ps for descriptor and zombie checks
#   libcrypt-dev          crypt(3) for HTTP Basic auth
#   libuv1-dev            the libuv peer in bench/peers
#   lighttpd nginx wrk iperf3 gnuplot   benchmark peers and charts
#   chromium              headless browser for tests/integration/test_http_browser.py
#   openssl               `openssl passwd -6` for the auth tests once Python lacks crypt (3.13+)
#   default-jdk-headless  javac/java for the tutorial's Java client (docs/clients, test_tutorial_doc)
#   libssl-dev            OpenSSL 3 for TLS (linked through pkg-config)
#   openbsd-inetd         a real inetd (run in the foreground on a private config) for test_deploy
#   haproxy stunnel4 rsync  more benchmark peers (make bench skips any that is missing):
#                         haproxy for relay and PROXY v2 rows (and a real PROXY sender,
#                         send-proxy[-v2], for test_proxy), stunnel for bulk TLS, rsync
#                         (run as a private daemon on loopback) for the file-transfer rows
#   strace                system calls per operation in make bench (a separate, untimed pass)
pkgs=(clang clang-format libclang-rt-14-dev libcmocka-dev pkg-config socat netcat-openbsd ncat rdate sslscan
      iproute2 procps libcrypt-dev libuv1-dev lighttpd nginx-light wrk iperf3 gnuplot-nox
      netbase python3 curl wget chromium openssl default-jdk-headless libssl-dev
      openbsd-inetd)

# benchmark peers (bench/run.py)
pkgs+=(haproxy stunnel4 rsync strace)

# file transfer (send / serve recv): XXH3-128 hashes, zstd chunks (SHA-256 comes with libssl-dev)
pkgs+=(libxxhash-dev libzstd-dev)
# --model uring (io_uring): built only where liburing is present
pkgs+=(liburing-dev)

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "deps: all ${#pkgs[@]} packages present"
    exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Do not let package installs start daemons (nginx, lighttpd) on the machine.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
