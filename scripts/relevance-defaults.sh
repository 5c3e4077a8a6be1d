#!/usr/bin/env bash
# How the defaults of relevance scoring were chosen, by measurement, on the MNIST ViT and the
# Fashion-MNIST ViT:
# 1. images N: Spearman rank correlation of the per-layer scores from N images against 128
#    images (and the seconds it takes), N = 2..64;
# 2. statistic (abs-in, signed-in, abs-out) × attention rule (attnlrp, cp): top-1 of
#    `qvit quantize --mixed --budget 3 --allocate lrp` on 10 000 test images.
# Writes bench-results/relevance-defaults.{json,md}. Needs a release build (made here).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p qvit-host --bin qvit
work=$(mktemp -d target/relevance-defaults.XXXXXX)
cp target/release/qvit "$work/qvit"
qvit="$work/qvit"
git rev-parse --short HEAD >"$work/commit"

gz=/usr/share/datasets/fashion-mnist
fashion_test=models/fashion-vit/test1k-images-idx3-ubyte
if [[ -r $gz/t10k-images-idx3-ubyte.gz ]]; then
    zcat "$gz/t10k-images-idx3-ubyte.gz" >"$work/fashion-t10k-images-idx3-ubyte"
    zcat "$gz/t10k-labels-idx1-ubyte.gz" >"$work/fashion-t10k-labels-idx1-ubyte"
    fashion_test="$work/fashion-t10k-images-idx3-ubyte"
fi
declare -A onnx=([mnist]=../shared/models/vit-mnist/vit_mnist.onnx [fashion]=models/fashion-vit/fashion_vit.onnx)
declare -A preset=([mnist]=mnist [fashion]=fashion-mnist)
declare -A calib=([mnist]=../shared/data/mnist/train5k-images-idx3-ubyte [fashion]=models/fashion-vit/calib512-images-idx3-ubyte)
declare -A test=([mnist]=../shared/data/mnist/t10k-images-idx3-ubyte [fashion]=$fashion_test)

for m in mnist fashion; do
    for n in 2 4 8 16 32 64 128; do
        echo "[$(date +%T)] $m relevance N=$n"
        "$qvit" relevance "${onnx[$m]}" --preset "${preset[$m]}" --data "${calib[$m]}" --limit "$n" \
            --json >"$work/$m.n$n.json" 2>/dev/null
    done
    for stat in abs-in signed-in abs-out; do
        for rule in attnlrp cp; do
            id="$m.$stat.$rule"
            echo "[$(date +%T)] $id"
            "$qvit" quantize "${onnx[$m]}" --preset "${preset[$m]}" --calib "${calib[$m]}" \
                --calib-limit 512 --mixed --budget 3 --allocate lrp --lrp-statistic "$stat" \
                --lrp-attn-rule "$rule" -o "$work/$id.qvit" 2>/dev/null
            "$qvit" eval "$work/$id.qvit" --data "${test[$m]}" --json >"$work/$id.eval.json" 2>/dev/null
        done
    done
done

WORK="$work" python3 - <<'PY'
import json, os

work = os.environ["WORK"]
commit = open(f"{work}/commit").read().strip()


def ranks(v):
    order = sorted(range(len(v)), key=lambda i: v[i])
    r = [0.0] * len(v)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2.0
        i = j + 1
    return r


def spearman(a, b):
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = sum((x - ma) ** 2 for x in ra) ** 0.5
    vb = sum((y - mb) ** 2 for y in rb) ** 0.5
    return cov / (va * vb)


out = {"commit": commit, "images": {}, "statistic": {}}
md = ["# Relevance defaults, chosen by measurement", "",
      f"Commit {commit}. Produced by `scripts/relevance-defaults.sh` (release build).", "",
      "## Images: rank agreement of per-layer scores with 128 images", "",
      "| model | N | Spearman vs N=128 | seconds |", "|---|---:|---:|---:|"]
for m in ["mnist", "fashion"]:
    ref = json.load(open(f"{work}/{m}.n128.json"))
    ref_scores = [l["score"] for l in ref["layers"]]
    for n in [2, 4, 8, 16, 32, 64]:
        d = json.load(open(f"{work}/{m}.n{n}.json"))
        rho = spearman([l["score"] for l in d["layers"]], ref_scores)
        out["images"].setdefault(m, []).append({"n": n, "spearman_vs_128": rho, "seconds": d["seconds"]})
        md.append(f"| {m} | {n} | {rho:.4f} | {d['seconds']:.2f} |")
md += ["", "## Statistic and attention rule: top-1 % of lrp mixed precision at 3 bits", "",
       "| model | statistic | attnlrp | cp |", "|---|---|---:|---:|"]
for m in ["mnist", "fashion"]:
    for stat in ["abs-in", "signed-in", "abs-out"]:
        row = []
        for rule in ["attnlrp", "cp"]:
            try:
                t = json.load(open(f"{work}/{m}.{stat}.{rule}.eval.json"))["top1"]
            except (OSError, ValueError, KeyError):
                t = None
            out["statistic"].setdefault(m, {}).setdefault(stat, {})[rule] = t
            row.append("–" if t is None else f"{100 * t:.2f}")
        md.append(f"| {m} | {stat} | {row[0]} | {row[1]} |")
json.dump(out, open("bench-results/relevance-defaults.json", "w"), indent=1)
open("bench-results/relevance-defaults.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
