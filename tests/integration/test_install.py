"""`make install` and the installed library, as a C programmer meets them.

Installs the build ($BUILD_DIR) into a temporary DESTDIR, then checks:
the files and the libsockit.so symlinks are where they belong, the shared
library exports exactly the functions include/sockit.h declares (no sk__*
internals, no internal sk_ev_* / sk_http_* helpers), sockit.pc gives working
compile lines for the shared and the static library, and an example program
built each way runs against the other example; the complete program in
man/libsockit.3's EXAMPLE section compiles (-Wall -Wextra -Werror) and
serves under two models; `make uninstall` removes every file again.
"""

import os
import re
import shutil
import signal
import socket
import subprocess

from harness import run, start, tempdir, timeout

SERIAL = True  # run alone (run.py -j): builds and installs: heavy

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD_DIR = os.environ.get("BUILD_DIR") or os.path.join(ROOT, "build")
PREFIX = "/opt/sockit"
CSTD = ["-std=c11", "-D_POSIX_C_SOURCE=200809L", "-D_DEFAULT_SOURCE"]


def header_api(path):
    """Names a header declares for export: its functions (not static inline
    ones, not typedefs of function types) and extern variables. Returns
    (exported, inline)."""
    with open(path) as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r"^\s*#.*?(?<!\\)$", " ", text, flags=re.M | re.S)
    exported, inline = set(), set()
    # Static inline functions are not exported; their bodies call others.
    while True:
        m = re.search(r"\bstatic\s+inline\b[^;{]*?\b(sk_\w+)\s*\([^;{]*\{",
                      text)
        if not m:
            break
        inline.add(m.group(1))
        depth, i = 1, m.end()
        while depth and i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        text = text[:m.start()] + ";" + text[i:]
    for m in re.finditer(r"\b(sk_\w+)\s*(\(|(\[[^\]]*\])?\s*;)", text):
        start = max(text.rfind(c, 0, m.start()) for c in ";{}") + 1
        statement = text[start:m.start()].split()
        if "typedef" in statement:
            continue
        if m.group(2) == "(":
            if "static" in statement:
                inline.add(m.group(1))
            elif "(" not in "".join(statement):  # not a parameter
                exported.add(m.group(1))
        elif "extern" in statement:
            exported.add(m.group(1))
    return exported, inline


def version():
    with open(os.path.join(ROOT, "include", "sockit.h")) as f:
        m = re.search(r'#define SOCKIT_VERSION "([^"]+)"', f.read())
    assert m, "no SOCKIT_VERSION in include/sockit.h"
    return m.group(1)


def make(dest, target):
    build = os.path.relpath(BUILD_DIR, ROOT)
    r = run(["make", "-s", "-C", ROOT, "BUILD=" + build, "PREFIX=" + PREFIX,
             "DESTDIR=" + dest, target], timeout=240)
    assert r.returncode == 0, "make %s failed: %r" % (target, r)


def exports(lib):
    r = run(["nm", "-D", "--defined-only", lib])
    assert r.returncode == 0, r
    return {line.split()[-1] for line in r.out.splitlines() if line.strip()}


def needed(binary):
    r = run(["readelf", "-d", binary])
    assert r.returncode == 0, r
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", r.out)


def sanitizer_flags(lib):
    """A sanitizer build's library needs its runtime in the program too."""
    undef = run(["nm", "-D", "--undefined-only", lib]).out
    if "__asan_" in undef or "__ubsan_" in undef or any(
            n.startswith("libasan") for n in needed(lib)):
        return ["-fsanitize=address,undefined"]
    return []


def pkg_config(dest, *args):
    env = dict(os.environ)
    # Ours first; the system's directories stay searched for what sockit.pc
    # requires (openssl).
    env["PKG_CONFIG_PATH"] = dest + PREFIX + "/lib/pkgconfig"
    env["PKG_CONFIG_SYSROOT_DIR"] = dest
    env.pop("PKG_CONFIG_LIBDIR", None)
    r = run(["pkg-config"] + list(args) + ["sockit"], env=env)
    assert r.returncode == 0, "pkg-config %s: %r" % (" ".join(args), r)
    return r.out.split()


def build_example(out, name, cflags, libs, extra):
    src = os.path.join(ROOT, "examples", name + ".c")
    r = run(["cc"] + CSTD + extra + ["-o", out, src] + cflags + libs,
            timeout=60)
    assert r.returncode == 0, "compiling %s: %r" % (name, r)


def run_pair(server, client, env, libdir=None):
    """examples/server on port 0, examples/client to it: the tutorial's
    exchange. With libdir, the server must have loaded libsockit from it."""
    srv = start([server, "0"], stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        line = srv.stderr.readline().decode()
        m = re.search(r"listening on .*:(\d+)$", line.strip())
        assert m, "server said %r" % line
        if libdir is not None:
            with open("/proc/%d/maps" % srv.pid) as f:
                maps = f.read()
            assert os.path.join(libdir, "libsockit.so.") in maps, (
                "server did not load libsockit from %s" % libdir)
        r = run([client, "127.0.0.1", m.group(1)], input=b"Hello, lib\n",
                env=env)
        assert r.returncode == 0, r
        assert r.out == "Please enter the message: I got your message\n", r
        out, err = srv.communicate(timeout=10)
        assert srv.returncode == 0, (srv.returncode, err)
        assert out == b"Here is the message: Hello, lib\n", out
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()


def man_example():
    """The first .EX block of libsockit.3's EXAMPLE section, as C text."""
    with open(os.path.join(ROOT, "man", "libsockit.3")) as f:
        text = f.read()
    section = text.split("\n.SH EXAMPLE\n", 1)[1]
    code = section.split("\n.EX\n", 1)[1].split("\n.EE\n", 1)[0]
    for esc, ch in (("\\e", "\\"), ("\\-", "-"), ("\\(aq", "'"),
                    ("\\(dq", '"')):
        code = code.replace(esc, ch)
    assert "\\(" not in code, "unknown escape in the example"
    return code + "\n"


def check_man_example(tmp, cflags, libs, san, env):
    src = tmp + "/dostuff.c"
    with open(src, "w") as f:
        f.write(man_example())
    exe = tmp + "/dostuff"
    r = run(["cc"] + CSTD + ["-Wall", "-Wextra", "-Werror"] + san +
            ["-o", exe, src] + cflags + libs, timeout=60)
    assert r.returncode == 0, "the man page's example: %r" % r
    r = run([exe, "-m", "nosuch", "0"], env=env)
    assert r.returncode == 2 and "usage: dostuff" in r.err, r
    for model in ("iterative", "thread"):
        srv = start([exe, "-m", model, "tcp://127.0.0.1:0"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE, env=env)
        try:
            line = srv.stderr.readline().decode()
            m = re.match(r"listening on tcp://127\.0\.0\.1:(\d+)$",
                         line.strip())
            assert m, "dostuff -m %s said %r" % (model, line)
            for _ in range(2):
                with socket.create_connection(
                        ("127.0.0.1", int(m.group(1))), timeout=5) as c:
                    c.sendall(b"hel")  # one line in two pieces
                    c.sendall(b"lo\n")
                    data = b""
                    while True:
                        b = c.recv(100)
                        if not b:
                            break
                        data += b
                assert data == b"I got your message\n", (model, data)
        finally:
            srv.send_signal(signal.SIGTERM)
            srv.wait(10)


def test_header_parser_sees_the_api():
    # The check below is only as good as the header parsing: it must find
    # the API and leave out comments, macros and static inline helpers.
    api, inline = header_api(os.path.join(ROOT, "include", "sockit.h"))
    for name in ("sk_addr_parse", "sk_listen", "sk_connect", "sk_relay",
                 "sk_server_new", "sk_server_run", "sk_errf"):
        assert name in api, "%s not found in the header" % name
    assert "sk_buf_head" in inline and "sk_buf_head" not in api
    assert not any(n.startswith("sk__") for n in api), api


@timeout(300)
def test_install_shared_and_static():
    for tool in ("make", "cc", "nm", "readelf", "pkg-config"):
        assert shutil.which(tool), "%s is not installed" % tool
    dest = tempdir()
    make(dest, "install")
    ver = version()
    major = ver.split(".")[0]
    lib = dest + PREFIX + "/lib"
    for f in ("bin/sockit", "lib/libsockit.a", "lib/libsockit.so." + ver,
              "include/sockit.h", "lib/pkgconfig/sockit.pc",
              "share/man/man1/sockit.1", "share/man/man3/libsockit.3"):
        assert os.path.isfile(dest + PREFIX + "/" + f), "%s not installed" % f
    assert os.readlink(lib + "/libsockit.so." + major) == "libsockit.so." + ver
    assert os.readlink(lib + "/libsockit.so") == "libsockit.so." + major
    real = lib + "/libsockit.so." + ver
    r = run(["readelf", "-d", real])
    assert "Library soname: [libsockit.so.%s]" % major in r.out, r.out

    # Exactly the header's functions are exported.
    api, inline = header_api(dest + PREFIX + "/include/sockit.h")
    got = exports(real)
    extra = sorted(got - api)
    missing = sorted(api - got)
    assert not extra, "exported but not declared in sockit.h: %s" % extra
    assert not missing, "declared in sockit.h but not exported: %s" % missing

    # pkg-config: the shared library records its own dependencies; a static
    # link gets them from Libs.private.
    cflags = pkg_config(dest, "--cflags")
    libs = pkg_config(dest, "--libs")
    static = pkg_config(dest, "--static", "--libs")
    assert "-I" + dest + PREFIX + "/include" in cflags, cflags
    assert "-lsockit" in libs and "-lcrypt" not in libs, libs
    assert "-lpthread" in static and "-lcrypt" in static, static

    san = sanitizer_flags(real)
    tmp = tempdir()
    # Shared: the programs need libsockit.so.MAJOR, found in the DESTDIR.
    build_example(tmp + "/server_so", "server", cflags, libs, san)
    build_example(tmp + "/client_so", "client", cflags, libs, san)
    assert "libsockit.so." + major in needed(tmp + "/server_so")
    env = dict(os.environ, LD_LIBRARY_PATH=lib)
    run_pair(tmp + "/server_so", tmp + "/client_so", env, libdir=lib)
    check_man_example(tmp, cflags, libs, san, env)
    # Without the library on the loader's path the program cannot start:
    # proof that it really is the shared library that ran.
    bare = dict(os.environ)
    bare.pop("LD_LIBRARY_PATH", None)
    r = run([tmp + "/server_so", "0"], env=bare, check_san=False)
    assert r.returncode != 0 and "libsockit.so." + major in r.err, r

    # Static: -l:libsockit.a picks the archive even beside libsockit.so.
    static = ["-l:libsockit.a" if w == "-lsockit" else w for w in static]
    build_example(tmp + "/server_a", "server", cflags, static, san)
    build_example(tmp + "/client_a", "client", cflags, static, san)
    assert not any(n.startswith("libsockit") for n in
                   needed(tmp + "/server_a")), needed(tmp + "/server_a")
    run_pair(tmp + "/server_a", tmp + "/client_a", bare)

    make(dest, "uninstall")
    left = []
    for d, _, files in os.walk(dest):
        left += [os.path.join(d, f) for f in files]
    assert not left, "make uninstall left %s" % left


def test_shared_library_in_build_tree():
    # The build tree's libsockit.so (what `make` produced, before any
    # install) exports the same set: a quick check for every build.
    so = os.path.join(BUILD_DIR, "libsockit.so")
    assert os.path.exists(so), "%s was not built" % so
    api, _ = header_api(os.path.join(ROOT, "include", "sockit.h"))
    got = exports(so)
    assert got == api, "exports differ from sockit.h: extra %s, missing %s" \
        % (sorted(got - api), sorted(api - got))
    internal = [n for n in got if n.startswith(("sk__", "sk_ev_", "sk_http_"))]
    assert not internal, internal
