#!/usr/bin/env python3
"""Run the sockit integration tests.

    SOCKIT=/abs/path/to/sockit python3 tests/integration/run.py \
        [-k SUBSTRING] [--summary FILE] [--timeout SECONDS] [-j JOBS]

Finds the test_* functions of tests/integration/test_*.py and runs each, in
file order, in a process of its own (its own process group), with a
watchdog: a test still running after its timeout (30 s unless the function
has a `timeout` attribute) is killed with everything it started, and fails.
Prints one line per test, `PASS file::name (0.12s)`, `FAIL file::name:
reason` or `SKIP file::name: reason`, then `integration: N passed, N failed`.
Exits 0 iff none failed. --summary FILE receives "PASSED FAILED SKIPPED".

A test that fails is run once more, alone, after all the others (unless
--no-rerun): these tests start real servers and clients on a shared, noisy
machine, and a deadline missed under load is not a defect of the code. A test
that passes the second time counts as passed but is listed at the end as
`FLAKY file::name: <first failure>`, so that it is seen and fixed; one that
fails twice fails.

With -j N (default: $SKIT_JOBS, else 1) the tests run in N shards at once,
each a runner process of its own (test i goes to shard i mod N), and then the
serial tests alone: those of a module with `SERIAL = True` or marked
`@harness.serial` (they measure time or load the machine, so they must not
share it). Most tests wait on the network more than they compute, so N a
little above the number of CPUs shortens the run.
"""

import argparse
import glob
import importlib.util
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

DEFAULT_TIMEOUT = 30
GRACE = 3  # seconds an interrupted test has to report and clean up


def discover(pattern):
    """[(label, function)] in file order, then definition order."""
    return [(label, f) for label, f, _ in discover_marked(pattern)]


def discover_marked(pattern):
    """[(label, function, serial)]: as discover, with each test's serial mark."""
    tests = []
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        funcs = [f for n, f in vars(module).items()
                 if n.startswith("test_") and callable(f)
                 and getattr(f, "__module__", None) == name]
        funcs.sort(key=lambda f: f.__code__.co_firstlineno)
        for f in funcs:
            label = "%s::%s" % (os.path.basename(path), f.__name__)
            if pattern is None or pattern in label:
                serial = getattr(module, "SERIAL", False) or \
                    getattr(f, "serial", False)
                tests.append((label, f, bool(serial)))
    return tests


def describe(exc):
    """One readable reason for an exception raised by a test."""
    if isinstance(exc, AssertionError):
        text = str(exc) or "assertion failed"
        tb = traceback.extract_tb(exc.__traceback__)
        where = [fr for fr in tb if os.path.basename(fr.filename).startswith(
            "test_")]
        if where:
            fr = where[-1]
            text = "%s (%s:%d: %s)" % (text, os.path.basename(fr.filename),
                                       fr.lineno, fr.line)
        return text
    return "".join(traceback.format_exception(type(exc), exc,
                                              exc.__traceback__)).rstrip()


class TestTimeout(Exception):
    """Raised inside a test when the watchdog's time is up."""


def on_watchdog(signum, frame):
    raise TestTimeout("timed out: the watchdog interrupted the test")


def child(func, wfd):
    """In the test's own process: run it, report a JSON result on wfd."""
    result = {"status": "pass", "reason": ""}
    signal.signal(signal.SIGUSR1, on_watchdog)
    try:
        func()
    except harness.Skip as e:
        result = {"status": "skip", "reason": str(e)}
    except BaseException as e:  # noqa: B902 - report everything
        result = {"status": "fail", "reason": describe(e)}
        context = harness.failure_context()
        if context:
            result["reason"] += "\n" + context
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    try:
        problems = harness.cleanup()
    except BaseException as e:  # noqa: B902
        problems = ["cleanup failed: %s" % describe(e)]
    if problems and result["status"] != "fail":
        result = {"status": "fail", "reason": "\n".join(problems)}
    os.write(wfd, json.dumps(result).encode())
    os.close(wfd)


def become_subreaper():
    """Adopt the orphans of tests (Linux), so that they are reaped here."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def reap_orphans():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_one(func, timeout):
    """Run one test in a forked process; returns (status, reason)."""
    rfd, wfd = os.pipe()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()  # nothing buffered may be written twice
        except OSError:
            pass
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.setpgid(0, 0)
            os.close(rfd)
            child(func, wfd)
        except BaseException:  # noqa: B902
            code = 1
        finally:
            os._exit(code)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass  # the child did it first
    os.close(wfd)
    data = b""
    # At the deadline the test is interrupted (SIGUSR1 raises in it, so it
    # reports where it was and what its servers said, and cleans up); if it
    # has not finished GRACE seconds later, its whole group is killed.
    timed_out = killed = False
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            if not timed_out:
                timed_out = True
                try:
                    os.kill(pid, signal.SIGUSR1)
                except ProcessLookupError:
                    pass
                deadline = time.monotonic() + GRACE
                continue
            killed = True
            break
        ready, _, _ = select.select([rfd], [], [], left)
        if ready:
            chunk = os.read(rfd, 65536)
            if not chunk:
                break
            data += chunk
    os.close(rfd)
    if killed:
        kill_group(pid)
    _, wstatus = os.waitpid(pid, 0)
    # Anything of this test's still alive now was leaked by it (or is a
    # stray worker of a server it stopped): give it a moment, then kill it.
    leaked = False
    if not timed_out:
        end = time.monotonic() + 2
        while group_alive(pid) and time.monotonic() < end:
            reap_orphans()  # exited orphans are zombies of ours until then
            time.sleep(0.05)
        reap_orphans()
        leaked = group_alive(pid)
    kill_group(pid)
    reap_orphans()
    if killed:
        return "fail", "timed out after %ss (watchdog killed it)" % timeout
    try:
        result = json.loads(data.decode())
    except ValueError:
        return "fail", "test process died (wait status %d) without a result" \
            % wstatus
    status, reason = result["status"], result["reason"]
    if timed_out:
        status = "fail"
        reason = "timed out after %ss; %s" % (timeout, reason)
    if leaked and status == "pass":
        return "fail", "processes left running after the test"
    return status, reason


def say(line):
    """Print a line now; a reader that went away does not stop the run."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        pass


def run_tests(tests, timeout_default, failures=None):
    """Run [(label, func)] one after another; returns (passed, failed, skipped).
    The label and reason of each failure are appended to `failures`."""
    passed = failed = skipped = 0
    for label, func in tests:
        t0 = time.monotonic()
        timeout = getattr(func, "timeout", timeout_default)
        status, reason = run_one(func, timeout)
        took = time.monotonic() - t0
        if status == "pass":
            passed += 1
            say("PASS %s (%.2fs)" % (label, took))
        elif status == "skip":
            skipped += 1
            say("SKIP %s: %s" % (label, reason))
        else:
            failed += 1
            say("FAIL %s: %s" % (label, reason))
            if failures is not None:
                failures.append((label, reason))
    return passed, failed, skipped


def rerun_failures(failures, funcs, timeout_default):
    """Run each failed test once more, alone. Returns (recovered, flaky lines):
    recovered is how many passed the second time."""
    recovered = 0
    flaky = []
    for label, first in failures:
        func = funcs.get(label)
        if func is None:
            continue
        say("RERUN %s" % label)
        status, reason = run_one(func, getattr(func, "timeout", timeout_default))
        if status == "pass":
            recovered += 1
            flaky.append("FLAKY %s: failed, then passed alone; first failure: %s"
                         % (label, first.splitlines()[0] if first else "?"))
        else:
            say("FAIL %s (again, alone): %s" % (label, reason))
    return recovered, flaky


def run_shards(args, jobs, base):
    """Start `jobs` runners, each with its shard of the parallel tests, and
    wait for all; returns their (passed, failed, skipped) summed."""
    procs = []
    failures = []
    for i in range(jobs):
        summary = os.path.join(base, "shard%d" % i)
        cmd = [sys.executable, os.path.abspath(__file__), "--shard",
               "%d/%d" % (i, jobs), "--summary", summary,
               "--timeout", str(args.timeout)]
        if args.pattern is not None:
            cmd += ["-k", args.pattern]
        procs.append((subprocess.Popen(cmd), summary))
    total = [0, 0, 0]
    for proc, summary in procs:
        rc = proc.wait()
        try:
            with open(summary) as f:
                lines = f.read().splitlines()
            counts = [int(x) for x in lines[0].split()]
            # The lines after the counts: "label\treason" of each failure.
            failures += [tuple(x.split("\t", 1)) for x in lines[1:] if "\t" in x]
        except (OSError, ValueError, IndexError):
            counts = [0, 1, 0]
        if rc != 0 and counts[1] == 0:
            counts[1] = 1  # the shard died before it could count
        for k in range(min(3, len(counts))):
            total[k] += counts[k]
    return tuple(total), failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-k", dest="pattern", help="run tests whose "
                    "file::name contains this substring")
    ap.add_argument("--summary", help='write "PASSED FAILED SKIPPED" to this file')
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                    help="per-test timeout in seconds (default %(default)s)")
    ap.add_argument("-j", dest="jobs", type=int,
                    default=int(os.environ.get("SKIT_JOBS", "1") or 1),
                    help="shards run at once (default $SKIT_JOBS or 1)")
    ap.add_argument("--no-rerun", action="store_true",
                    help="do not run a failed test a second time")
    ap.add_argument("--shard", help=argparse.SUPPRESS)  # I/N: a runner's part
    args = ap.parse_args()
    if args.jobs < 1 or args.jobs > 64:
        ap.error("-j: expected 1..64, got %d" % args.jobs)

    if not os.access(harness.SOCKIT, os.X_OK):
        print("integration: %s is not an executable (set SOCKIT)"
              % harness.SOCKIT)
        if args.summary:
            with open(args.summary, "w") as f:
                f.write("0 1\n")
        return 1

    become_subreaper()
    shard = None
    if args.shard:
        i, n = (int(x) for x in args.shard.split("/"))
        shard = (i, n)
    # Every temporary file of the run lives under one short directory.
    base = tempfile.mkdtemp(prefix="skit-", dir="/tmp")
    os.environ["SKIT_TMP"] = base
    start = time.monotonic()
    failures = []
    flaky = []
    try:
        tests = discover_marked(args.pattern)
        if shard is not None:
            parallel = [(lb, f) for lb, f, ser in tests if not ser]
            passed, failed, skipped = run_tests(
                parallel[shard[0]::shard[1]], args.timeout, failures)
        elif args.jobs > 1:
            (passed, failed, skipped), failures = run_shards(args, args.jobs, base)
            p, f, sk = run_tests([(lb, fn) for lb, fn, ser in tests if ser],
                                 args.timeout, failures)
            passed, failed, skipped = passed + p, failed + f, skipped + sk
        else:
            passed, failed, skipped = run_tests(
                [(lb, fn) for lb, fn, _ in tests], args.timeout, failures)
        if shard is None and failures and not args.no_rerun:
            recovered, flaky = rerun_failures(
                failures, {lb: fn for lb, fn, _ in tests}, args.timeout)
            passed, failed = passed + recovered, failed - recovered
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.summary:
        with open(args.summary, "w") as f:
            f.write("%d %d %d\n" % (passed, failed, skipped))
            if shard is not None:  # the parent reruns them, alone
                for label, reason in failures:
                    f.write("%s\t%s\n" % (label, reason.replace("\n", " ")))
    if shard is not None:
        return 0 if failed == 0 else 1  # the parent says the totals
    for line in flaky:
        say(line)
    if skipped:
        say("integration: %d skipped (a required tool is missing)" % skipped)
    say("integration: %.1fs" % (time.monotonic() - start))
    say("integration: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
