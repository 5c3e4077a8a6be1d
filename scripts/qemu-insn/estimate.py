#!/usr/bin/env python3
"""Estimate an aarch64 core's latency from dynamic instruction counts and llvm-mca.

Inputs: a binary linked at fixed addresses (RUSTFLAGS="-C relocation-model=static") and two
insn_by_fn.c outputs for runs that differ by one inference. For every function that executed
instructions, its hottest translation block (the address with the largest count) is
disassembled up to its ending branch and given to llvm-mca for the core model as a loop body;
cycles per instruction of that block times the function's instructions is its cycle
estimate. Functions without a usable block get the instruction-weighted mean of the others.
Memory stalls, branch mispredictions and the call overhead between blocks are not modelled,
so this is an estimate of core-bound time, not a measurement.

Usage: estimate.py BINARY COUNTS_1 COUNTS_2 --mcpu MODEL --ghz GHZ [--top N]
Prints a Markdown table (function, instructions, CPI, ms) and the total on stdout.
"""
import argparse
import bisect
import os
import re
import shutil
import subprocess
import sys

# The per-function attribution is by_fn.py's (same directory).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from by_fn import counts, short, symbols  # noqa: E402

# LLVM 19 has the Neoverse N1 model the A76-class cores need (LLVM 14's stands in with A57
# units); LLVM_MCA overrides.
MCA = os.environ.get("LLVM_MCA") or shutil.which("llvm-mca-19") or "llvm-mca"

BRANCH = re.compile(r"^(b|b\..*|bl|blr|br|ret|cbz|cbnz|tbz|tbnz)$")


def block(binary, addr):
    """Instructions of the translation block at addr, through its first branch."""
    out = subprocess.run(["aarch64-linux-gnu-objdump", "-d", "--no-show-raw-insn",
                          f"--start-address={addr:#x}", f"--stop-address={addr + 4096:#x}", binary],
                         check=True, capture_output=True, text=True).stdout
    body = []
    for line in out.splitlines():
        m = re.match(r"\s*[0-9a-f]+:\s+(\S+)\s*(.*)", line)
        if not m:
            continue
        op, args = m.group(1), re.sub(r"\s*//.*|<.*>", "", m.group(2)).strip()
        if op.startswith(".") or op == "udf":
            break
        if BRANCH.match(op):
            break
        body.append(f"{op} {args}")
    return body


def cpi(body, mcpu):
    if len(body) < 3:
        return None
    text = "\n".join(body) + "\n"
    r = subprocess.run([MCA, "-mtriple=aarch64", f"-mcpu={mcpu}",
                        "-mattr=+neon,+dotprod,+i8mm", "-iterations=200"],
                       input=text, capture_output=True, text=True)
    ins = re.search(r"^Instructions:\s+(\d+)", r.stdout, re.M)
    cyc = re.search(r"^Total Cycles:\s+(\d+)", r.stdout, re.M)
    if r.returncode != 0 or not ins or not cyc:
        return None
    return int(cyc.group(1)) / int(ins.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binary")
    ap.add_argument("one")
    ap.add_argument("two")
    ap.add_argument("--mcpu", required=True)
    ap.add_argument("--ghz", type=float, required=True)
    ap.add_argument("--top", type=int, default=12)
    a = ap.parse_args()
    one, two = counts(a.one), counts(a.two)
    syms = symbols(a.binary)
    addrs = [s[0] for s in syms]
    end = syms[-1][0] + 4096
    per, hot = {}, {}
    for addr in set(one) | set(two):
        d = two.get(addr, 0) - one.get(addr, 0)
        if d <= 0:
            continue
        i = bisect.bisect_right(addrs, addr) - 1
        name = short(syms[i][1]) if 0 <= i and addr < end else "(libc, loader)"
        per[name] = per.get(name, 0) + d
        if d > hot.get(name, (0, 0))[0] and name != "(libc, loader)":
            hot[name] = (d, addr)
    rows = sorted(per.items(), key=lambda kv: -kv[1])
    measured = {}
    for name, _ in rows[: a.top]:
        if name in hot:
            c = cpi(block(a.binary, hot[name][1]), a.mcpu)
            if c is not None:
                measured[name] = c
    wsum = sum(per[n] for n in measured)
    mean = sum(per[n] * c for n, c in measured.items()) / wsum if wsum else 1.0
    total_i = sum(per.values())
    total_c = 0.0
    print(f"| function | instructions | CPI ({a.mcpu}, hottest block) | ms at {a.ghz} GHz |")
    print("|---|---:|---:|---:|")
    rest_i = rest_c = 0.0
    for k, (name, n) in enumerate(rows):
        c = measured.get(name, mean)
        cycles = n * c
        total_c += cycles
        if k < a.top:
            tag = f"{c:.2f}" if name in measured else f"{c:.2f} (mean)"
            print(f"| `{name}` | {n:,} | {tag} | {cycles / (a.ghz * 1e6):.2f} |")
        else:
            rest_i += n
            rest_c += cycles
    print(f"| (the other {max(0, len(rows) - a.top)} functions) | {int(rest_i):,} | {mean:.2f} (mean) | "
          f"{rest_c / (a.ghz * 1e6):.2f} |")
    print(f"| **total** | **{total_i:,}** | {total_c / total_i:.2f} | **{total_c / (a.ghz * 1e6):.2f}** |")


if __name__ == "__main__":
    sys.exit(main())
