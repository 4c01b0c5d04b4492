#!/usr/bin/env python3
"""Diff two dumps of bench/tools/mtrace.c (one process, before and after a
load) per call site, and per OpenSSL site (the first frame in libssl or
libcrypto that is not one of its allocator wrappers, so two programs linking
the same OpenSSL line up), in bytes per unit (per connection).

    mtrace_diff.py BEFORE AFTER UNITS [TOP]
    mtrace_diff.py --sites A.txt B.txt    # two mtrace_idle.py outputs side by side
"""
import collections
import sys

WRAPPERS = ("CRYPTO_malloc", "CRYPTO_zalloc", "CRYPTO_realloc", "CRYPTO_clear_realloc", "CRYPTO_strdup",
            "CRYPTO_strndup", "CRYPTO_memdup", "CRYPTO_secure_malloc", "CRYPTO_secure_zalloc")


def load(path):
    sites, head = {}, ""
    for line in open(path):
        if line.startswith("#"):
            head = line.strip()
            continue
        f = line.rstrip("\n").split("\t")
        sites[tuple(f[3:])] = (int(f[0]), int(f[1]), int(f[2]))
    return head, sites


def ossl_key(frames):
    """The first OpenSSL frame past the allocator wrappers, else the first."""
    for fr in frames:
        loc, _, sym = fr.partition(" ")
        if (loc.startswith("libssl") or loc.startswith("libcrypto")) and \
                not any(sym.startswith(w + "+") for w in WRAPPERS):
            return fr
    return frames[0] if frames else "?"


def main():
    if sys.argv[1] == "--sites":
        return sites_side_by_side(sys.argv[2], sys.argv[3])
    h0, a = load(sys.argv[1])
    h1, b = load(sys.argv[2])
    units = int(sys.argv[3])
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 40
    print(f"# before: {h0}\n# after:  {h1}")
    d = {}
    for k in set(a) | set(b):
        x, y = a.get(k, (0, 0, 0)), b.get(k, (0, 0, 0))
        d[k] = tuple(y[i] - x[i] for i in range(3))
    tot = [sum(v[i] for v in d.values()) for i in range(3)]
    print(f"# total per unit: {tot[0] / units:.2f} blocks, {tot[1] / units:.1f} bytes asked, "
          f"{tot[2] / units:.1f} usable (+8/block header: {(tot[2] + 8 * tot[0]) / units:.1f})")
    by = collections.defaultdict(lambda: [0, 0, 0])
    for k, v in d.items():
        key = ossl_key(k)
        for i in range(3):
            by[key][i] += v[i]
    print("\n## per OpenSSL site (blocks/unit, bytes/unit, usable/unit, site)")
    for key, v in sorted(by.items(), key=lambda kv: -abs(kv[1][2])):
        if abs(v[2]) / units < 1:
            continue
        print(f"BY\t{v[0] / units:.2f}\t{v[1] / units:.1f}\t{v[2] / units:.1f}\t{key}")
    print(f"\n## top {top} full stacks")
    for k, v in sorted(d.items(), key=lambda kv: -abs(kv[1][2]))[:top]:
        if abs(v[2]) / units < 1:
            continue
        print(f"{v[0] / units:.2f}\t{v[1] / units:.1f}\t{v[2] / units:.1f}\t" + " <- ".join(k[:5]))


def sites_side_by_side(pa, pb):
    def get(p):
        out = {}
        for line in open(p):
            if line.startswith("BY\t"):
                f = line.rstrip("\n").split("\t")
                out[f[4]] = (float(f[1]), float(f[3]))
        return out
    a, b = get(pa), get(pb)
    print(f"blocks A\tusable A\tblocks B\tusable B\tB-A\tsite   (A={pa}, B={pb})")
    rows = []
    for k in set(a) | set(b):
        x, y = a.get(k, (0, 0)), b.get(k, (0, 0))
        rows.append((y[1] - x[1], k, x, y))
    for diff, k, x, y in sorted(rows, key=lambda r: -abs(r[0])):
        print(f"{x[0]:.2f}\t{x[1]:.1f}\t{y[0]:.2f}\t{y[1]:.1f}\t{diff:+.1f}\t{k}")
    print(f"total\t{sum(v[1] for v in a.values()):.1f}\t\t{sum(v[1] for v in b.values()):.1f}")


if __name__ == "__main__":
    main()
