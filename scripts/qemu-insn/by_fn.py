#!/usr/bin/env python3
"""Attribute an aarch64 program's dynamic instructions to its functions.

Takes two outputs of the insn_by_fn plugin (address -> count) for runs that differ by one
inference (e.g. `qvit-run bench --iters 1` and `--iters 2`), subtracts them per address, and
sums the difference per function of the binary (symbols from `aarch64-linux-gnu-nm`; the binary
must be linked at fixed addresses: build it with RUSTFLAGS="-C relocation-model=static").
Code outside the binary (libc, the loader) is one row. Prints a Markdown table, most
instructions first.

Usage: by_fn.py BINARY COUNTS_1 COUNTS_2 [--top N]
"""
import argparse
import bisect
import re
import subprocess
import sys


def counts(path):
    out = {}
    with open(path) as f:
        for line in f:
            a, c = line.split()
            out[int(a, 16)] = int(c)
    return out


def symbols(binary):
    text = subprocess.run(
        ["aarch64-linux-gnu-nm", "-C", "--defined-only", "-n", binary],
        check=True, capture_output=True, text=True).stdout
    syms = []
    for line in text.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in "tTwW":
            syms.append((int(parts[0], 16), parts[2]))
    return syms


def short(name):
    # Drop generic arguments and closure hashes so instances of one function share a row.
    name = re.sub(r"::h[0-9a-f]{16}$", "", name)
    while True:
        n = re.sub(r"<[^<>]*>", "", name)
        if n == name:
            return name
        name = n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binary")
    ap.add_argument("one")
    ap.add_argument("two")
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args()
    one, two = counts(a.one), counts(a.two)
    syms = symbols(a.binary)
    addrs = [s[0] for s in syms]
    end = syms[-1][0] + 4096 if syms else 0
    per = {}
    total = 0
    for addr in set(one) | set(two):
        d = two.get(addr, 0) - one.get(addr, 0)
        if d == 0:
            continue
        total += d
        i = bisect.bisect_right(addrs, addr) - 1
        name = short(syms[i][1]) if 0 <= i and addr < end else "(outside the binary: libc, loader)"
        per[name] = per.get(name, 0) + d
    rows = sorted(per.items(), key=lambda kv: -kv[1])
    print(f"| function | instructions | % |\n|---|---:|---:|")
    for name, c in rows[: a.top]:
        print(f"| `{name}` | {c:,} | {100 * c / total:.1f} |")
    rest = sum(c for _, c in rows[a.top:])
    print(f"| (the other {max(0, len(rows) - a.top)} functions) | {rest:,} | {100 * rest / total:.1f} |")
    print(f"| **total** | **{total:,}** | 100 |")


if __name__ == "__main__":
    sys.exit(main())
