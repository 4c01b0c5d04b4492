"""Issue 11's rows: `sockit send` into `serve recv --dir` on /dev/shm (a tmpfs:
a sync costs nothing, so this measures the CPU path) against rsync to an rsync
daemon on loopback and, for one big file, `sockit connect < file` into
`nc -l > file` (which checks nothing). Every run starts from an empty
destination, checks that everything arrived, and removes it after."""
import os
import shutil
import subprocess

import measure
from cells import Row, Side
from measure import Server, free_port, need


def landed(dst):
    """(files, bytes) under dst."""
    n = size = 0
    for d, _, files in os.walk(dst):
        for f in files:
            n += 1
            size += os.path.getsize(os.path.join(d, f))
    return n, size


def tree_src(ctx, n):
    """n files of 4 KiB of random bytes in a directory on /dev/shm (made once)."""
    d = os.path.join(ctx.shm, f"tree-{n}")
    if not os.path.isdir(d):
        os.makedirs(d + ".tmp")
        for i in range(n):
            with open(os.path.join(d + ".tmp", f"f{i:05d}"), "wb") as f:
                f.write(os.urandom(4096))
        os.rename(d + ".tmp", d)
    return d


def big_src(ctx, size):
    """One file of `size` random bytes on /dev/shm (made once)."""
    path = os.path.join(ctx.shm, f"big-{size}")
    if not os.path.exists(path):
        with open(path + ".tmp", "wb") as f:
            subprocess.run(["head", "-c", str(size), "/dev/urandom"], stdout=f, check=True, timeout=300)
        os.rename(path + ".tmp", path)
    return path


def dest(ctx):
    return ctx.scratch_shm("dst")


def sockit_recv(ctx):
    def start(strace_out):
        dst = dest(ctx)
        srv = Server([ctx.sockit, "serve", "recv", "-q", "--dir", dst, "127.0.0.1:0"], strace_out=strace_out)
        srv.dst = dst
        return srv
    return start


def rsync_daemon(ctx):
    def start(strace_out):
        need("rsync")
        dst, d, port = dest(ctx), ctx.scratch("rsyncd"), free_port()
        conf = os.path.join(d, "rsyncd.conf")
        with open(conf, "w") as f:
            f.write(f"use chroot = no\nlog file = {d}/log\npid file = {d}/pid\n"
                    f"[m]\n  path = {dst}\n  read only = no\n  uid = root\n  gid = root\n")
        srv = Server(["rsync", "--daemon", "--no-detach", f"--config={conf}", f"--port={port}",
                      "--address=127.0.0.1"], port=port, strace_out=strace_out)
        srv.dst = dst
        return srv
    return start


def nc_listen(ctx):
    def start(strace_out):
        need("nc")
        dst, port = dest(ctx), free_port()
        # netcat-openbsd: one connection, then it exits at its end
        srv = Server(["sh", "-c", f'exec nc -l 127.0.0.1 {port} > "$0" < /dev/null',
                      os.path.join(dst, "file")], port=port, strace_out=strace_out, probe=False)
        srv.dst, srv.one_shot = dst, True
        return srv
    return start


def xfer_run(ctx, argv_for, want, stdin_for=None):
    """Run the sender; check what landed against want(traced) = (files, bytes)."""
    def run(srv, traced):
        path = stdin_for(traced) if stdin_for else None
        try:
            with open(path or os.devnull, "rb") as f:
                m = measure.measured(argv_for(srv, traced), 0, 600, srv.pid, stdin=f)
            if getattr(srv, "one_shot", False):
                try:  # the file is whole once nc has exited
                    srv.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            files, size = want(traced)
            got = landed(srv.dst)
        finally:
            shutil.rmtree(srv.dst, ignore_errors=True)  # each run starts from an empty destination
        errors = 0 if got == (files, size) else 1
        if errors:
            measure.log(f"    landed {got}, expected {(files, size)}")
        m.update(ops=files if files > 1 else size / 2**30, errors=errors,
                 rate=files / m["wall"] if files > 1 else size / m["wall"] / 1e9,
                 extra={"secs": m["wall"]})
        return m
    return run


def rows(ctx):
    n = ctx.file_count

    def tree(traced):
        return tree_src(ctx, min(n, 1000) if traced else n)

    def want_tree(traced):
        k = min(n, 1000) if traced else n
        return k, k * 4096
    send_tree = xfer_run(ctx, lambda s, t: [ctx.sockit, "send", "-q", "-r", "--progress=none", tree(t),
                                            f"127.0.0.1:{s.port}"], want_tree)
    rsync_tree = xfer_run(ctx, lambda s, t: ["rsync", "-r", tree(t) + "/", f"rsync://127.0.0.1:{s.port}/m/"],
                          want_tree)
    tree_row = Row("files-10k", f"{n} files of 4 KiB into /dev/shm", [
        Side("sockit send -r -> serve recv", sockit_recv(ctx), send_tree),
        Side("rsync -r -> rsync --daemon", rsync_daemon(ctx), rsync_tree, lambda: need("rsync"))],
        "sockit send -r DIR 127.0.0.1:PORT; rsync -r DIR/ rsync://127.0.0.1:PORT/m/",
        unit="file", rate_unit="files/s",
        targets=[("sockit send -r -> serve recv", "rsync -r -> rsync --daemon", [[("rate", ">=", 2.0)]])],
        note="Server CPU: the receiver's (CPU 0). secs: wall time of one transfer. The strace "
             "pass sends 1000 files.")

    size = ctx.file_big

    def big(traced):
        return big_src(ctx, ctx.strace_bulk if traced else size)

    def want_big(traced):
        return 1, (ctx.strace_bulk if traced else size)
    send_big = xfer_run(ctx, lambda s, t: [ctx.sockit, "send", "-q", "--progress=none", big(t),
                                           f"127.0.0.1:{s.port}"], want_big)
    rsync_big = xfer_run(ctx, lambda s, t: ["rsync", big(t), f"rsync://127.0.0.1:{s.port}/m/"], want_big)
    nc_big = xfer_run(ctx, lambda s, t: [ctx.sockit, "connect", "127.0.0.1", str(s.port)], want_big,
                      stdin_for=big)
    mib = size >> 20
    big_row = Row("files-1g", f"one {mib} MiB file into /dev/shm", [
        Side("sockit send -> serve recv", sockit_recv(ctx), send_big),
        Side("rsync -> rsync --daemon", rsync_daemon(ctx), rsync_big, lambda: need("rsync")),
        Side("sockit connect < file -> nc -l > file", nc_listen(ctx), nc_big, lambda: need("nc"))],
        "sockit send FILE 127.0.0.1:PORT; rsync FILE rsync://127.0.0.1:PORT/m/; "
        "sockit connect 127.0.0.1 PORT < FILE into nc -l 127.0.0.1 PORT > FILE",
        unit="GiB", rate_unit="GB/s", cpu_unit="ms", cpu_scale=1e3,
        targets=[("sockit send -> serve recv", "sockit connect < file -> nc -l > file", [[("rate", ">=", 0.8)]]),
                 ("sockit send -> serve recv", "rsync -> rsync --daemon", [[("rate", ">=", 2.0)]])],
        note="Random bytes. Server CPU: the receiver's (CPU 0). nc checks nothing; send verifies "
             f"every chunk. The strace pass moves {ctx.strace_bulk >> 20} MiB.")
    return [tree_row, big_row]
