#!/usr/bin/env bash
# Can any NEON instruction mix give W4A4 more MAC/cycle than W8A8 on LLVM's cortex-a57 model
# (its stand-in for the A72 of a Pi 4)? Each candidate inner-loop body below is timed by
# llvm-mca-19; MACs per iteration are given with it. Prints a Markdown table.
set -euo pipefail
mca=${LLVM_MCA:-llvm-mca-19}
cpu=${MCA_CPU:-cortex-a57}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# name|MACs per iteration|assembly (';'-separated)
candidates=(
"W8A8 smull+smlal2+sadalp (shipped neon)|32|smull v16.8h, v0.8b, v8.8b; smlal2 v16.8h, v0.16b, v8.16b; sadalp v20.4s, v16.8h; smull v17.8h, v1.8b, v9.8b; smlal2 v17.8h, v1.16b, v9.16b; sadalp v21.4s, v17.8h"
"W4A4 8-bit mul+sadalp (shipped neon)|32|mul v16.16b, v0.16b, v8.16b; sadalp v20.8h, v16.16b; mul v17.16b, v1.16b, v9.16b; sadalp v21.8h, v17.16b"
"W4A4 product table, 1-reg tbl + saddw/saddw2|32|tbl v16.16b, {v0.16b}, v8.16b; saddw v20.8h, v20.8h, v16.8b; saddw2 v21.8h, v21.8h, v16.16b; tbl v17.16b, {v1.16b}, v9.16b; saddw v22.8h, v22.8h, v17.8b; saddw2 v23.8h, v23.8h, v17.16b"
"W4A4 product table over k pairs, 2-reg tbl + sadalp|64|tbl v16.16b, {v0.16b, v1.16b}, v8.16b; sadalp v20.8h, v16.16b; tbl v17.16b, {v0.16b, v1.16b}, v9.16b; sadalp v21.8h, v17.16b; tbl v18.16b, {v2.16b, v3.16b}, v8.16b; sadalp v22.8h, v18.16b; tbl v19.16b, {v2.16b, v3.16b}, v9.16b; sadalp v23.8h, v19.16b"
"W4A4 bit-serial and+cnt+uadalp (16 plane pairs per 4×4-bit MAC)|16|and v16.16b, v0.16b, v8.16b; cnt v16.16b, v16.16b; uadalp v20.8h, v16.16b; and v17.16b, v1.16b, v9.16b; cnt v17.16b, v17.16b; uadalp v21.8h, v17.16b"
)

echo "| inner loop ($cpu model) | MAC/iter | cycles/iter | MAC/cycle |"
echo "|---|---:|---:|---:|"
for c in "${candidates[@]}"; do
    IFS='|' read -r name macs asm <<<"$c"
    tr ';' '\n' <<<"$asm" >"$tmp/loop.s"
    cycles=$("$mca" -mtriple=aarch64 -mcpu="$cpu" -iterations=1000 "$tmp/loop.s" | awk '/^Total Cycles:/ {print $3}')
    awk -v n="$name" -v m="$macs" -v c="$cycles" \
        'BEGIN { printf "| %s | %d | %.2f | %.1f |\n", n, m, c / 1000, m / (c / 1000) }'
done
