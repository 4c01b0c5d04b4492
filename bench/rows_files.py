"""Issue 11's rows: `sockit send` into `serve recv --dir` on /dev/shm (a tmpfs:
a sync costs nothing, so this measures the CPU path) against rsync to an rsync
daemon on loopback, against one `sockit send` per file and, for one big file,
`sockit connect < file` into `nc -l > file` (which checks nothing); and one big
file onto the real disk against `nc -l > file` followed by a sync of the file
and its directory (the durability `serve recv` gives). Every run starts from an
empty destination, checks that everything arrived, and removes it after."""
import os
import shutil
import subprocess

import measure
from cells import Row, Side
from measure import Server, free_port, need

# Another sockit build (SOCKIT_B=path, e.g. main's before a change) measured
# as a second sockit side of every row here, alternated with the first in the
# same run: a before/after comparison on a noisy machine.
SOCKIT_B = os.environ.get("SOCKIT_B")


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


def dest_disk(ctx):
    return ctx.scratch_disk("dst")


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) << 10
    return 0


def room(path, size):
    """Skip unless the file system of path has size bytes free (and 256 MiB
    more); on /dev/shm, memory too (a tmpfs may be larger than the RAM)."""
    free = shutil.disk_usage(path).free
    if path.startswith("/dev/shm"):
        free = min(free, mem_available())
    if free < size + (256 << 20):
        raise measure.Skip(f"{path}: {free >> 20} MiB free, {(size >> 20) + 256} MiB needed")


def sockit_recv(ctx, where=dest, exe=None):
    def start(strace_out):
        dst = where(ctx)
        srv = Server([exe or ctx.sockit, "serve", "recv", "-q", "--dir", dst, "127.0.0.1:0"], strace_out=strace_out)
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


def nc_listen(ctx, where=dest):
    def start(strace_out):
        need("nc")
        dst, port = where(ctx), free_port()
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


def big_row(ctx, rid, size, where, place, sides, targets, note):
    """One file of `size` bytes from /dev/shm into `where` (a tmpfs or the disk)."""
    def big(traced):
        return big_src(ctx, ctx.strace_bulk if traced else size)

    def want_big(traced):
        return 1, (ctx.strace_bulk if traced else size)
    def send_big(exe):
        return xfer_run(ctx, lambda s, t: [exe, "send", "-q", "--progress=none", big(t),
                                           f"127.0.0.1:{s.port}"], want_big)
    rsync_big = xfer_run(ctx, lambda s, t: ["rsync", big(t), f"rsync://127.0.0.1:{s.port}/m/"], want_big)
    nc_big = xfer_run(ctx, lambda s, t: [ctx.sockit, "connect", "127.0.0.1", str(s.port)], want_big,
                      stdin_for=big)
    # nc, then what makes its file as durable as `serve recv` makes its own:
    # once the whole file is there (nc has written it), fsync of the file and
    # of its directory (`sync FILE DIR`), all in the timed command.
    nc_sync_big = xfer_run(ctx, lambda s, t: [
        "sh", "-c", '"$0" connect 127.0.0.1 "$1" || exit 1; '
        'while [ "$(stat -c %s "$2")" -lt "$3" ]; do sleep 0.005; done; sync "$2" "$4"',
        ctx.sockit, str(s.port), os.path.join(s.dst, "file"), str(want_big(t)[1]), s.dst],
        want_big, stdin_for=big)
    def check():
        """Room for the source on /dev/shm (made once, kept) and for one copy
        (removed after each run)."""
        made = os.path.exists(os.path.join(ctx.shm, f"big-{size}"))
        if where is dest:
            room(ctx.shm, (0 if made else size) + size)
        else:
            room(ctx.shm, 0 if made else size)
            room(ctx.disk, size)
    all_sides = {
        "sockit": Side("sockit send -> serve recv", sockit_recv(ctx, where), send_big(ctx.sockit),
                       check),
        "rsync": Side("rsync -> rsync --daemon", rsync_daemon(ctx), rsync_big,
                      lambda: (need("rsync"), check())),
        "nc": Side("sockit connect < file -> nc -l > file", nc_listen(ctx, where), nc_big,
                   lambda: (need("nc"), check())),
        "nc-sync": Side("connect < file -> nc -l > file; sync", nc_listen(ctx, where), nc_sync_big,
                        lambda: (need("nc"), check())),
    }
    order = list(sides)
    if SOCKIT_B:
        all_sides["b"] = Side("sockit B send -> serve recv", sockit_recv(ctx, where, SOCKIT_B),
                              send_big(SOCKIT_B), check)
        order.insert(1, "b")
    mib = size >> 20
    size_s = f"{mib >> 10} GiB" if mib >= 1024 and mib % 1024 == 0 else f"{mib} MiB"
    cmds = {"sockit": "sockit send FILE 127.0.0.1:PORT",
            "rsync": "rsync FILE rsync://127.0.0.1:PORT/m/",
            "nc": "sockit connect 127.0.0.1 PORT < FILE into nc -l 127.0.0.1 PORT > FILE",
            "nc-sync": "sockit connect 127.0.0.1 PORT < FILE into nc -l 127.0.0.1 PORT > FILE, "
                       "then sync FILE DIR"}
    return Row(rid, f"one {size_s} file into {place}", [all_sides[k] for k in order],
               "; ".join(cmds[k] for k in sides),
               unit="GiB", rate_unit="GB/s", cpu_unit="ms", cpu_scale=1e3,
               targets=[(all_sides["sockit"].name, all_sides[peer].name, goal)
                        for peer, goal in targets],
               note=note + f" The strace pass moves {ctx.strace_bulk >> 20} MiB.")


def rows(ctx):
    n, single = ctx.file_count, ctx.file_single

    def tree(traced):
        return tree_src(ctx, min(n, 1000) if traced else n)

    def want_tree(traced):
        k = min(n, 1000) if traced else n
        return k, k * 4096

    def few(traced):
        return tree_src(ctx, min(single, 100) if traced else single)

    def want_few(traced):
        k = min(single, 100) if traced else single
        return k, k * 4096

    def send_tree(exe):
        return xfer_run(ctx, lambda s, t: [exe, "send", "-q", "-r", "--progress=none", tree(t),
                                           f"127.0.0.1:{s.port}"], want_tree)
    rsync_tree = xfer_run(ctx, lambda s, t: ["rsync", "-r", tree(t) + "/", f"rsync://127.0.0.1:{s.port}/m/"],
                          want_tree)
    # what a script without -r does: one process, connection and HELLO per file
    send_each = xfer_run(ctx, lambda s, t: [
        "sh", "-c", 'for f in "$0"/*; do "$1" send -q --progress=none "$f" 127.0.0.1:"$2" || exit 1; done',
        few(t), ctx.sockit, str(s.port)], want_few)
    b_side = [Side("sockit B send -r -> serve recv", sockit_recv(ctx, exe=SOCKIT_B),
                   send_tree(SOCKIT_B))] if SOCKIT_B else []
    tree_row = Row("files-10k", f"{n} files of 4 KiB into /dev/shm", [
        Side("sockit send -r -> serve recv", sockit_recv(ctx), send_tree(ctx.sockit))] + b_side + [
        Side("rsync -r -> rsync --daemon", rsync_daemon(ctx), rsync_tree, lambda: need("rsync")),
        Side(f"sockit send per file ({single} files) -> serve recv", sockit_recv(ctx), send_each)],
        "sockit send -r DIR 127.0.0.1:PORT; rsync -r DIR/ rsync://127.0.0.1:PORT/m/; "
        f"for f in DIR{single}/*; do sockit send $f 127.0.0.1:PORT; done",
        unit="file", rate_unit="files/s",
        targets=[("sockit send -r -> serve recv", "rsync -r -> rsync --daemon", [[("rate", ">=", 2.0)]]),
                 ("sockit send -r -> serve recv", f"sockit send per file ({single} files) -> serve recv",
                  [[("rate", ">=", 20.0)]])],
        note="Server CPU: the receiver's (CPU 0). secs: wall time of one transfer. The side with "
             f"one `send` per file sends only {single} files (a shell loop: a process, a connection "
             "and a HELLO each), so its files/s is comparable; it is latency-bound. The strace pass "
             f"sends 1000 files ({min(single, 100)} one by one).")

    nc_note = "Random bytes. Server CPU: the receiver's (CPU 0). nc checks nothing; send verifies every chunk."
    rsync_nc = [("rsync", [[("rate", ">=", 2.0)]]), ("nc", [[("rate", ">=", 0.8)]])]
    big = big_row(ctx, "files-1g", ctx.file_big, dest, "/dev/shm", ["sockit", "rsync", "nc"],
                  [("nc", [[("rate", ">=", 0.8)]]), ("rsync", [[("rate", ">=", 2.0)]])], nc_note)
    huge = big_row(ctx, "files-4g", ctx.file_huge, dest, "/dev/shm", ["sockit", "rsync", "nc"],
                   rsync_nc, nc_note + " Needs the file twice on /dev/shm (source and copy).")
    disk = big_row(ctx, "files-disk", ctx.file_big, dest_disk, "/var/tmp (the disk)",
                   ["sockit", "nc-sync"], [("nc-sync", [[("rate", ">=", 0.9)]])],
                   "Random bytes from /dev/shm onto the disk under /var/tmp. Both sides end with "
                   "the file and its directory entry durable: serve recv fsyncs them before its "
                   "answer; nc's side runs `sync FILE DIR` once nc has written the whole file, "
                   "inside the timed command. Server CPU: the receiver's (CPU 0); the disk is the "
                   "limit, so the rate is the figure. 1 GiB (256 MiB with --quick): the disk is shared.")
    return [tree_row, big, huge, disk]
