#!/usr/bin/env bash
# Faithfulness of qvit's explanations: `qvit explain --eval` deletion/insertion AOPC of lrp, sr,
# gradient × input and a random order, on the MNIST ViT (200 test images; target = predicted
# class probability) and the DINOv2 ViT-S/14 (EF_VITS_N ImageNet images, default 16; target =
# projection on the original output, i.e. the output norm relevance is seeded with), each as
# f32 and as a W4A4-mixed bundle (`quantize --mixed --budget 4`, allocated by lrp for MNIST and
# by sensitivity for the ViT-S, where lrp's allocation loses fidelity: see
# bench-results/mixed-precision.md). Removal by ViT patch (the default) and, for MNIST, by pixel.
# Also writes a few example overlays.
# Writes bench-results/explain-faithfulness.{json,md} and bench-results/explain-examples/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p qvit-host --bin qvit
work=$(mktemp -d target/explain-faithfulness.XXXXXX)
cp target/release/qvit "$work/qvit"
qvit="$work/qvit"
git rev-parse --short HEAD >"$work/commit"
vits_n=${EF_VITS_N:-16}
mnist=../shared/models/vit-mnist/vit_mnist.onnx
vits=../shared/models/vit-s14-dinov2/vit_s14_backbone.onnx
test=../shared/data/mnist/t10k-images-idx3-ubyte
mkdir -p "$work/calib32" "$work/eval" bench-results/explain-examples
mapfile -t images < <(find "$(cd ../shared/data/imagenet-sample && pwd)" -maxdepth 1 -name '*.JPEG' | LC_ALL=C sort)
for i in $(seq 0 31); do ln -s "${images[$i]}" "$work/calib32/"; done
for i in $(seq 100 $((99 + vits_n))); do ln -s "${images[$i]}" "$work/eval/"; done

echo "[$(date +%T)] quantizing W4A4-mixed bundles"
"$qvit" quantize "$mnist" --preset mnist --calib ../shared/data/mnist/train5k-images-idx3-ubyte \
    --calib-limit 512 --mixed --budget 4 --allocate lrp -o "$work/mnist.mixed4.qvit" 2>/dev/null
"$qvit" quantize "$vits" --preset imagenet --calib "$work/calib32" --calib-limit 32 --mixed \
    --budget 4 --allocate sensitivity --sensitivity-images 4 -o "$work/vits.mixed4.qvit" 2>/dev/null

ev() { # ID MODEL PRESET DATA LIMIT STEPS [EXTRA...]
    local id=$1 model=$2 preset=$3 data=$4 limit=$5 steps=$6
    shift 6
    echo "[$(date +%T)] $id"
    local p=()
    [[ -n $preset ]] && p=(--preset "$preset")
    "$qvit" explain "$model" "${p[@]}" --eval --data "$data" --limit "$limit" --steps "$steps" \
        --json -o "$work/$id" "$@" >"$work/$id.json" 2>"$work/$id.err"
}
ev mnist.f32.patch "$mnist" mnist "$test" 200 20
ev mnist.mixed4.patch "$work/mnist.mixed4.qvit" "" "$test" 200 20
ev mnist.f32.pixel "$mnist" mnist "$test" 200 20 --unit pixel
ev mnist.mixed4.pixel "$work/mnist.mixed4.qvit" "" "$test" 200 20 --unit pixel
ev vits.f32.patch "$vits" imagenet "$work/eval" "$vits_n" 16
ev vits.mixed4.patch "$work/vits.mixed4.qvit" "" "$work/eval" "$vits_n" 16

echo "[$(date +%T)] example overlays"
ex=bench-results/explain-examples
"$qvit" explain models/fashion-vit/fashion_vit.onnx --preset fashion-mnist models/fashion-vit/sample.png -o "$work/ex-fashion" >/dev/null 2>&1
"$qvit" explain "$vits" --preset imagenet "${images[120]}" "${images[150]}" -o "$work/ex-vits" >/dev/null 2>&1
"$qvit" explain "$work/vits.mixed4.qvit" "${images[120]}" --reference "$vits" -o "$work/ex-vits-q" >"$work/ex-vits-q.txt" 2>&1
rm -f "$ex"/*.png
cp "$work"/ex-fashion/*.lrp.png "$work"/ex-fashion/*.sr.png "$ex/"
for f in "$work"/ex-vits/*.lrp.png "$work"/ex-vits/*.sr.png; do cp "$f" "$ex/vits-$(basename "$f")"; done
for f in "$work"/ex-vits-q/*.lrp.png "$work"/ex-vits-q/*.sr.png; do cp "$f" "$ex/vits-w4a4mixed-$(basename "$f")"; done
cp "$work/mnist.f32.patch/faithfulness.png" "$ex/mnist-faithfulness.png"

WORK="$work" python3 - <<'PY'
import json, os
work = os.environ["WORK"]
commit = open(f"{work}/commit").read().strip()
runs = {}
for id_ in ["mnist.f32.patch", "mnist.mixed4.patch", "mnist.f32.pixel", "mnist.mixed4.pixel", "vits.f32.patch", "vits.mixed4.patch"]:
    try:
        runs[id_] = json.load(open(f"{work}/{id_}.json"))
    except (OSError, ValueError):
        runs[id_] = {"error": open(f"{work}/{id_}.err").read()[-300:]}
rc = open(f"{work}/ex-vits-q.txt").read().strip()
json.dump({"commit": commit, "runs": runs, "vits_example_rank_correlation": rc},
          open("bench-results/explain-faithfulness.json", "w"), indent=1)
md = ["# Faithfulness of explanations (deletion / insertion AOPC)", "",
      f"Commit {commit}. Produced by `scripts/explain-faithfulness.sh`. AOPC = mean change of the target score "
      "over the steps (deletion: drop below the intact image; insertion: rise above the blank image); higher is "
      "better for both. Removed pixels get the dataset mean (0 after normalisation).", "",
      "| model | bundle | unit | n | lrp del / ins | sr del / ins | gradxinput del / ins | random del / ins |",
      "|---|---|---|---:|---:|---:|---:|---:|"]
for id_, r in runs.items():
    model, bundle, unit = id_.split(".")
    if "methods" not in r:
        md.append(f"| {model} | {bundle} | {unit} | – | failed: {r.get('error', '')[:80]} | | | |")
        continue
    cells = []
    for m in ["lrp", "sr", "gradxinput", "random"]:
        x = r["methods"][m]
        cells.append(f"{x['deletion_aopc']:.3f} / {x['insertion_aopc']:.3f}")
    mixed = "W4A4-mixed (" + ("lrp" if model == "mnist" else "sensitivity") + ")"
    md.append(f"| {model} | {'f32' if bundle == 'f32' else mixed} | {r['unit']} | {r['n']} | " + " | ".join(cells) + " |")
md += ["", "Targets: mnist = predicted-class softmax probability; vits = projection of the tokens on the "
       "original output (the output norm relevance is seeded with).", "",
       f"ViT-S example, W4A4-mixed bundle vs f32 (`qvit explain --reference`): {rc.splitlines()[0]}", "",
       "Example overlays: `bench-results/explain-examples/` (lrp: signed relevance, red for the target; "
       "sr: Salient Relevance)."]
open("bench-results/explain-faithfulness.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
