#!/usr/bin/env bash
# llvm-mca cycle estimates of the aarch64 W8A8 GEMM inner loops (one packed K block per loop
# iteration) for cortex-a53, cortex-a57, neoverse-n1 and neoverse-n2, reported as MAC/cycle
# and as a fraction of the core's int8 peak (research/anchors.md §5.3: SDOT 2×16 MAC/cycle on
# the 2-pipe cores, SMMLA 2×32; SMLAL-class ≈8 on A57/A72-class, ≈4 on A53).
# Usage: scripts/kernels-mca.sh   (needs llvm-mca-19; writes nothing, prints a table)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target-kernels}"
cargo rustc -q --release --target aarch64-unknown-linux-gnu -p qvit-kernels --lib -- \
    --emit asm -C codegen-units=1
asm=$(ls -t "$CARGO_TARGET_DIR"/aarch64-unknown-linux-gnu/release/deps/qvit_kernels-*.s | head -1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Extract the innermost loop (a label and the backward branch to it) that holds the most
# multiply instructions of each kernel's `kernel` function.
python3 - "$asm" "$work" <<'PY'
import re, sys
asm, work = sys.argv[1], sys.argv[2]
lines = open(asm).read().splitlines()
kernels = {"neon": "neon16gemm_w8a8_4x4c16", "neon_w4a4": "neon16gemm_w4a4_4x4c16", "dotprod": "dotprod16gemm_w8a8_4x4c16", "i8mm": "i8mm15gemm_w8a8_8x8c8"}
for tier, key in kernels.items():
    # The inner `kernel` fn, or the safe wrapper when LLVM inlined it there (NEON is baseline).
    cands = [i for i, l in enumerate(lines) if key in l and l.startswith("_ZN") and l.endswith(":")]
    start = next((i for i in cands if "6kernel" in lines[i]), cands[0])
    end = next(i for i in range(start, len(lines)) if lines[i].startswith(".Lfunc_end"))
    body = [l for l in lines[start:end] if not re.match(r"\s*(\.cfi|\.loc|\.file|//|\.p2align)", l) and not l.startswith(".Ltmp")]
    best = None
    for i, l in enumerate(body):
        m = re.match(r"(\.LBB\w+):", l)
        if not m:
            continue
        for j in range(i + 1, len(body)):
            if re.search(r"\b(b|b\.\w+|cbn?z|tbn?z)\b.*" + re.escape(m.group(1)) + r"\s*$", body[j]):
                loop = [x for x in body[i + 1 : j + 1] if not x.endswith(":")]
                muls = sum(bool(re.search(r"\b(sdot|smmla|smull2?|smlal2?|mul)\b", x)) for x in loop)
                if best is None or muls > best[0]:
                    best = (muls, loop)
                break
    open(f"{work}/{tier}.s", "w").write("\n".join(best[1]) + "\n")
PY

# MACs per loop iteration (one K block: 4×4×16 for neon/dotprod, 8×8×8 for i8mm) and the int8 peak per core.
declare -A macs=([neon]=256 [neon_w4a4]=256 [dotprod]=256 [i8mm]=512)
# W4A4 is rated against the W8A8 peak: its point is to beat it (issue target ≥ 1.6×).
declare -A peak=([neon:cortex-a53]=4 [neon:cortex-a57]=8 [neon:neoverse-n1]=8 [neon:neoverse-n2]=8
                 [neon_w4a4:cortex-a53]=4 [neon_w4a4:cortex-a57]=8 [neon_w4a4:neoverse-n1]=8 [neon_w4a4:neoverse-n2]=8
                 [dotprod:neoverse-n1]=32 [dotprod:neoverse-n2]=32 [i8mm:neoverse-n2]=64)
printf '%-10s %-12s %10s %10s %8s\n' kernel cpu cyc/iter MAC/cyc of-peak
for tier in neon neon_w4a4 dotprod i8mm; do
    for cpu in cortex-a53 cortex-a57 neoverse-n1 neoverse-n2; do
        [[ $tier == dotprod && ( $cpu == cortex-a53 || $cpu == cortex-a57 ) ]] && continue
        [[ $tier == i8mm && $cpu != neoverse-n2 ]] && continue
        cyc=$(llvm-mca-19 -mtriple=aarch64 -mcpu="$cpu" -mattr=+dotprod,+i8mm -iterations=1000 \
              "$work/$tier.s" 2>/dev/null | awk '/^Total Cycles:/ {print $3 / 1000}')
        mpc=$(awk -v m="${macs[$tier]}" -v c="$cyc" 'BEGIN {printf "%.1f", m / c}')
        p=${peak[$tier:$cpu]:-}
        pct=$([[ -n $p ]] && awk -v x="$mpc" -v p="$p" 'BEGIN {printf "%.0f%%", 100 * x / p}' || echo -)
        printf '%-10s %-12s %10s %10s %8s\n' "$tier" "$cpu" "$cyc" "$mpc" "$pct"
    done
done
