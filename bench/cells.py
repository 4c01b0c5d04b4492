"""Rows measured from outside: each row has sides (sockit and its peers), run
interleaved run by run (A B C, A B C, ...), then once more each under strace
for system calls per operation; a cell is the medians of a side's runs.

A side is: `check()` (raises Skip when it cannot run here), `start(strace_out)`
(a measure.Server or Group: the server under test on CPU 0) and
`run(srv, traced)` (drives it from CPU 1 through measure.measured and returns
that window with "ops", "rate" and "errors"; traced: the short strace pass).
"""
import os
import subprocess
import tempfile

import measure
from measure import Skip, log, median, saturation


class Side:
    def __init__(self, name, start, run, check=None):
        self.name, self.start, self.run = name, start, run
        self.check = check or (lambda: None)


class Row:
    """`unit`: what one operation is ("round trip", "GiB", ...); `rate_unit`
    labels the rate; CPU per op is shown in `cpu_unit` (us or ms: `cpu_scale`
    per second). `max_repeat` caps the runs of a row whose runs are long and
    whose figure hardly varies (memory held by idle connections). `targets`:
    the issues' goals, [(sockit side, peer side, goal)] (see `verdict`)."""

    def __init__(self, rid, title, sides, command="", unit="op", rate_unit="/s",
                 cpu_unit="us", cpu_scale=1e6, note="", strace=True, max_repeat=None, targets=()):
        self.id, self.title, self.sides, self.command = rid, title, sides, command
        self.unit, self.rate_unit, self.cpu_unit, self.cpu_scale = unit, rate_unit, cpu_unit, cpu_scale
        self.note, self.strace, self.max_repeat = note, strace, max_repeat
        self.targets = list(targets)


def value(cell, metric):
    """A cell's figure: "cpu" (server CPU per op), "proc", "rate", or an extra."""
    key = {"cpu": "cpu_op", "proc": "proc_op", "rate": "rate"}.get(metric)
    return cell.get(key) if key else cell.get("extra", {}).get(metric)


def verdict(a, b, goal):
    """Does side a meet `goal` against side b? goal: alternatives (any will
    do), each a list of (metric, "<=" or ">=", ratio a/b) that must all hold.
    Returns ("met" | "missed" | "n/a", {metric: ratio})."""
    ratios, met = {}, False
    for alt in goal:
        ok = True
        for metric, op, limit in alt:
            va, vb = value(a, metric), value(b, metric)
            if va is None or not vb:
                return "n/a", ratios
            r = ratios[metric] = va / vb
            ok = ok and (r <= limit if op == "<=" else r >= limit)
        met = met or ok
    return ("met" if met else "missed"), ratios


def goal_text(goal):
    return " or ".join(", ".join(f"{m} {op} {lim:g}x" for m, op, lim in alt) for alt in goal)


def one_run(side, traced=False, strace_out=None):
    srv = side.start(strace_out)
    try:
        return side.run(srv, traced)
    finally:
        srv.stop()


def strace_pass(side):
    """System calls per operation: the side once more, shorter, under strace."""
    fd, path = tempfile.mkstemp(prefix="sockit-bench-strace-")
    os.close(fd)
    try:
        r = one_run(side, True, path)
        with open(path) as f:
            calls = measure.parse_strace(f.read())
    finally:
        os.unlink(path)
    ops = r.get("ops") or 0
    if not ops or not calls:
        return None, []
    top = sorted(((n, c) for n, c in calls.items() if n != "total"), key=lambda x: -x[1])[:4]
    return calls["total"] / ops, [(n, c / ops) for n, c in top]


def run_row(row, repeat, with_strace=True):
    """Returns the row's result: {"cells": [...], "skipped": [(side, why)]}."""
    sides, skipped = [], []
    for s in row.sides:
        try:
            s.check()
            sides.append(s)
        except Skip as e:
            log(f"  {row.id}: skipping {s.name}: {e}")
            skipped.append((s.name, str(e)))
    if row.max_repeat:
        repeat = min(repeat, row.max_repeat)
    runs = {s.name: [] for s in sides}
    failed = {s.name: "" for s in sides}
    for i in range(repeat):
        for s in sides:
            if failed[s.name] and not runs[s.name]:
                continue  # failed on its first run: it will not do better
            try:
                r = one_run(s)
            except (Skip, RuntimeError, OSError, subprocess.SubprocessError, ValueError, KeyError) as e:
                log(f"  {row.id}: {s.name} run {i + 1} failed: {e}")
                failed[s.name] = str(e)[:200]
                continue
            runs[s.name].append(r)
            log(f"  {row.id:16} {s.name:34} run {i + 1}: {r['rate']:12.1f} {row.rate_unit}  "
                f"{r['server_busy'] * row.cpu_scale / max(r['ops'], 1e-9):9.2f} {row.cpu_unit}/{row.unit}  "
                f"errors={r['errors']}")
    cells = []
    for s in sides:
        rs = runs[s.name]
        if not rs:
            skipped.append((s.name, f"failed: {failed[s.name]}"))
            continue
        sys_op, top = None, []
        if with_strace and row.strace:
            try:
                sys_op, top = strace_pass(s)
            except (Skip, RuntimeError, OSError, subprocess.SubprocessError, ValueError, KeyError) as e:
                log(f"  {row.id}: {s.name} strace pass failed: {e}")
        sf = median(r["server_busy"] / r["wall"] for r in rs)
        lf = median(r["load_busy"] / r["wall"] for r in rs)
        extra = {}
        for k in {k for r in rs for k in r.get("extra", {})}:
            vals = [r["extra"][k] for r in rs if k in r.get("extra", {})]
            extra[k] = median(vals) if all(isinstance(v, (int, float)) for v in vals) else vals[-1]
        cells.append({
            "side": s.name, "runs": len(rs),
            "rate": median(r["rate"] for r in rs),
            "cpu_op": median(r["server_busy"] * row.cpu_scale / r["ops"] for r in rs if r["ops"]),
            "proc_op": median(r.get("proc", 0) * row.cpu_scale / r["ops"] for r in rs if r["ops"]),
            "ctx_op": median(r["ctx"] / r["ops"] for r in rs if r["ops"]),
            "sys_op": sys_op, "top_sys": top,
            "server_cpu": sf, "load_cpu": lf, "saturated": saturation(sf, lf),
            "errors": sum(r["errors"] for r in rs), "extra": extra,
        })
    return {"title": row.title, "command": row.command, "note": row.note, "unit": row.unit,
            "rate_unit": row.rate_unit, "cpu_unit": row.cpu_unit, "cells": cells,
            "skipped": skipped, "repeat": repeat, "targets": row.targets}


def summary(ext, order):
    """The targets of every row that ran, met or missed, as a table."""
    out = ["| row | sockit | against | ratios (sockit / peer) | goal | |", "|---|---|---|---|---|---|"]
    for rid in order:
        res = ext.get(rid)
        if not res or "cells" not in res:
            continue
        by = {c["side"]: c for c in res["cells"]}
        for a, b, goal in res.get("targets", []):
            if a not in by or b not in by:
                out.append(f"| {rid} | {a} | {b} | | {goal_text(goal)} | not run |")
                continue
            v, ratios = verdict(by[a], by[b], goal)
            rs = ", ".join(f"{m} {r:.2f}x" for m, r in ratios.items())
            out.append(f"| {rid} | {a} | {b} | {rs} | {goal_text(goal)} | {v} |")
    return "\n".join(out) + "\n" if len(out) > 2 else ""


def fmt(v, digits=2):
    return "" if v is None else f"{v:,.{digits}f}"


def markdown(rid, res):
    """One row's section of results.md."""
    out = [f"\n### {res['title']} (`--only {rid}`)\n"]
    if res.get("command"):
        out.append(f"Load: `{res['command']}`. Medians of {res['repeat']} interleaved runs.\n")
    if res.get("note"):
        out.append(res["note"] + "\n")
    u, cu = res["unit"], res["cpu_unit"]
    out.append(f"| server | rate ({res['rate_unit']}) | server CPU ({cu}/{u}) | vs first | "
               f"process CPU ({cu}/{u}) | syscalls/{u} | ctx switches/{u} | server CPU busy | load CPU busy | saturated | "
               f"errors | notes |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|")
    base = res["cells"][0]["cpu_op"] if res["cells"] else None
    for c in res["cells"]:
        ratio = f"{c['cpu_op'] / base:.2f}x" if base and c["cpu_op"] is not None else ""
        notes = ", ".join(f"{k} {fmt(v) if isinstance(v, float) else v}" for k, v in sorted(c["extra"].items()))
        if c["top_sys"]:
            notes += ("; " if notes else "") + "top: " + " ".join(f"{n} {v:.2f}" for n, v in c["top_sys"])
        out.append(f"| {c['side']} | {fmt(c['rate'], 1)} | {fmt(c['cpu_op'])} | {ratio} | "
                   f"{fmt(c.get('proc_op'))} | {fmt(c['sys_op'])} | {fmt(c['ctx_op'])} | {fmt((c['server_cpu'] or 0) * 100, 0)}% | "
                   f"{fmt((c['load_cpu'] or 0) * 100, 0)}% | {c['saturated']} | {c['errors']} | {notes} |")
    for name, why in res["skipped"]:
        out.append(f"\n- {name}: skipped ({why})")
    return "\n".join(out) + "\n"
