#!/usr/bin/env python3
"""Run one TLS server under the malloc tracer (bench/tools/mtrace.c), hold N
idle TLS connections to it (bench/peers/tls_idle.py, as the tls-idle row),
and dump its live heap before and with them idle; then diff the two
(mtrace_diff.py) into OUT.txt. RSS before and after goes in too.

    mtrace_idle.py sockit|nginx N OUT [SOCKIT_BINARY]

nginx gets `ssl_protocols TLSv1.2 TLSv1.3` as in the bench (nginx 1.22's
default has no TLS 1.3); NGINX_PROTOCOLS=... replaces it.

Loopback only; every wait bounded. The tracer slows the server (a backtrace
per allocation), so figures of time mean nothing here; bytes do.
"""
import glob
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
sys.path.insert(0, BENCH)
from measure import free_port, rss_bytes as rss, tree  # noqa: E402 (the bench's own helpers)


def wait_port(port, proc, limit=20):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server never listened")


def wait_dump(prefix, seq, limit=60):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        got = [f for f in glob.glob(f"{prefix}.*.{seq}") if os.path.getsize(f) > 0]
        if got:
            time.sleep(0.5)  # the dump is written under a lock; let it finish
            return got
        time.sleep(0.2)
    raise RuntimeError(f"no dump {seq}")


def trigger(prefix):
    with open(prefix + ".go", "w") as f:
        f.write(str(time.time()))


def main():
    kind, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sockit = sys.argv[4] if len(sys.argv) > 4 else "build/sockit"
    d = tempfile.mkdtemp(prefix="mtrace-")
    so = os.path.join(d, "mtrace.so")
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", so, os.path.join(HERE, "mtrace.c"), "-ldl",
                    "-lpthread"], check=True, timeout=120)
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
    os.chmod(key, 0o644)
    port = free_port()
    prefix = os.path.join(d, "dump")
    env = dict(os.environ, MTRACE_OUT=prefix, LD_PRELOAD=so)
    if kind == "nginx":
        conf = os.path.join(d, "nginx.conf")
        protocols = os.environ.get("NGINX_PROTOCOLS", "TLSv1.2 TLSv1.3")
        with open(conf, "w") as f:  # as bench/rows_core.py's nginx_conf
            f.write(f"daemon off; worker_processes 1; worker_rlimit_nofile 20000; pid {d}/n.pid;\n"
                    f"error_log {d}/n.err;\nevents {{ worker_connections 20000; }}\n"
                    f"http {{ access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000;\n"
                    f"  client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};\n"
                    f"  uwsgi_temp_path {d}; scgi_temp_path {d};\n"
                    f"  server {{ listen 127.0.0.1:{port} ssl; root {d}; ssl_certificate {cert}; "
                    f"ssl_certificate_key {key}; ssl_protocols {protocols}; ssl_session_cache shared:S:10m; ssl_session_tickets on; client_header_timeout 600s; }} }}\n")
        argv = ["nginx", "-p", d, "-c", conf]
    else:
        argv = [sockit, "serve", "echo", "-q", "--tls", "--cert", cert, "--key", key, f"127.0.0.1:{port}"]

    def limits():
        resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    srv = subprocess.Popen(argv, env=env, preexec_fn=limits)
    try:
        wait_port(port, srv)
        time.sleep(1)
        pid = max(tree(srv.pid))  # nginx: the worker (forked after the master)
        trigger(prefix)
        before = wait_dump(prefix, 1)
        rss0 = rss(srv.pid)
        holder = subprocess.Popen(["python3", os.path.join(BENCH, "peers", "tls_idle.py"), "127.0.0.1",
                                   str(port), str(n), "600"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  preexec_fn=limits)
        line = holder.stdout.readline().decode()
        print(kind, line.strip(), flush=True)
        time.sleep(1)
        rss1 = rss(srv.pid)
        time.sleep(0.3)
        trigger(prefix)
        after = wait_dump(prefix, 2)
        holder.stdin.close()
        holder.wait(timeout=120)
        est = int(dict(x.split("=", 1) for x in line.split() if "=" in x)["established"])
        b = [f for f in before if f".{pid}." in f] or before
        a = [f for f in after if f".{pid}." in f] or after
        with open(out, "w") as f:
            f.write(f"# {kind}: {est} idle connections; RSS {rss0} -> {rss1}: "
                    f"{(rss1 - rss0) / max(est, 1) / 1024:.2f} KiB/conn (traced)\n")
        subprocess.run(["python3", os.path.join(HERE, "mtrace_diff.py"), b[0], a[0], str(est)],
                       stdout=open(out, "a"), check=True, timeout=120)
    finally:
        srv.terminate()
        try:
            srv.wait(timeout=20)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait(timeout=20)
    print(f"{out} (dumps in {d})")


if __name__ == "__main__":
    main()
