"""Restarts that drop nothing (issue 13 item 5), under a steady load of HTTP
requests, each scenario in a network namespace of its own (rolling.py runs
inside `unshare --net`: its own loopback, its own ports, and its own
net.ipv4.tcp_migrate_req, never the machine's):

- HAProxy 2.6 in front of three `sockit serve http` backends, one of them
  stopped (SIGTERM) and started again three times;
- the same, one backend upgraded ten times in place with SIGUSR2;
- three `sockit serve http --reuseport` processes on one port, no load
  balancer, each replaced in turn, twice round.

Zero failed requests in each. What made them fail before: a connection
accepted just before the stop, whose request was still on its way, was
closed as idle; keep-alive responses during the stop did not say
"Connection: close"; and the connections waiting in the backlog were reset
when the stopping process closed its listener."""
import json
import os
import subprocess

from harness import SOCKIT, Skip, require, timeout

SERIAL = True  # run alone (run.py -j): restarts behind HAProxy, counted failures with deadlines

HERE = os.path.dirname(os.path.abspath(__file__))


def run(scenario):
    require("unshare", "ip")
    if scenario != "reuseport":
        require("haproxy")
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, timeout=10)
    if probe.returncode != 0:
        raise Skip("cannot make a network namespace (unshare --net): %s"
                   % probe.stderr.decode().strip())
    p = subprocess.run(["unshare", "--net", "python3", os.path.join(HERE, "rolling.py"),
                        SOCKIT, scenario], capture_output=True, timeout=100)
    out = p.stdout.decode("utf-8", "replace").strip().splitlines()
    assert p.returncode == 0, (p.stdout + p.stderr).decode("utf-8", "replace")[-3000:]
    result = json.loads(out[0])
    assert len(out) == 1, "sanitizer report: %s" % out[1:]
    assert result["ok"] > 500, result  # the load really ran
    assert result["failed"] == 0, result


@timeout(120)
def test_rolling_restart_behind_haproxy():
    run("kill")


@timeout(120)
def test_sigusr2_upgrades_behind_haproxy():
    run("upgrade")


@timeout(120)
def test_reuseport_processes_replaced_one_at_a_time():
    run("reuseport")
