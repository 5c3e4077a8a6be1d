#!/usr/bin/env bash
# Relevance-guided mixed precision against its baselines: `qvit quantize --mixed --budget B`
# with --allocate uniform, random:1..5, sensitivity and lrp, at average 4 and 3 bits (weights
# and activations), on the MNIST ViT and the Fashion-MNIST ViT (top-1 on 10 000 test images) and
# the DINOv2 ViT-S/14 backbone (token cosine against f32 via `qvit compare`, 64 held-out images;
# 64 others calibrate). lrp, random and sensitivity run their proposals and uniform end to end on
# the calibration images (`--select-images`: the default 128 for the classifiers, 32 of the 64 on
# the ViT-S to halve the trials' time) and keep the best if it beats uniform beyond the noise.
# Writes bench-results/mixed-precision.{json,md}. MP_MODELS="mnist fashion dinov2" and
# MP_BUDGETS="4 3" select a subset; MP_ALLOCATORS overrides the allocator list; with
# MP_KEEP=bench-results/mixed-precision.json the runs of that file that this run does not redo
# stay in the results (each with its commit). MP_WORK="dir1:dir2" also joins earlier run folders
# (a later folder's run of the same model, budget and allocator wins).
set -euo pipefail
cd "$(dirname "$0")/.."

models="${MP_MODELS:-mnist fashion dinov2}"
read -ra budgets <<<"${MP_BUDGETS:-4 3}"
read -ra allocators <<<"${MP_ALLOCATORS:-uniform random:1 random:2 random:3 random:4 random:5 sensitivity lrp}"

cargo build -q --release -p qvit-host --bin qvit
mkdir -p target/mixed-precision bench-results
work=$(mktemp -d target/mixed-precision/run.XXXXXX)
cp target/release/qvit "$work/qvit" # frozen: other builds may replace target/release/qvit
qvit="$work/qvit"
git rev-parse --short HEAD >"$work/commit"
if [[ -n $(git status --porcelain --untracked-files=no) ]]; then echo dirty >"$work/dirty"; fi
: >"$work/manifest.tsv"
echo "mixed-precision: working in $work"

# run ID CMD...: output to $work/ID.{out,err}, wall seconds to ID.secs; failures are recorded.
run() {
    local id=$1; shift
    printf '%q ' "$@" >"$work/$id.cmd"
    local t0; t0=$(date +%s.%N)
    if ! "$@" >"$work/$id.out" 2>"$work/$id.err"; then
        echo "exit $?" >"$work/$id.failed"
        echo "  FAILED: $id: $(tail -n 2 "$work/$id.err" | tr '\n' ' ')" >&2
    fi
    awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f\n", b - a }' >"$work/$id.secs"
}

# one KEY ONNX PRESET CALIB LIMIT BUDGET ALLOCATOR KIND DATA [EXTRA...]
one() {
    local key=$1 onnx=$2 preset=$3 calib=$4 limit=$5 budget=$6 alloc=$7 kind=$8 data=$9
    shift 9
    local id="$key.b$budget.${alloc/:/-}"
    echo "[$(date +%T)] $id"
    run "$id.quantize" "$qvit" quantize "$onnx" --preset "$preset" --calib "$calib" \
        --calib-limit "$limit" --mixed --budget "$budget" --allocate "$alloc" "$@" -o "$work/$id.qvit"
    if [[ ! -e "$work/$id.quantize.failed" ]]; then
        if [[ $kind == eval ]]; then
            run "$id.measure" "$qvit" eval "$work/$id.qvit" --data "$data" --json
        else
            run "$id.measure" "$qvit" compare "$work/$id.qvit" "$onnx" --data "$data" --json
        fi
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$key" "$budget" "$alloc" "$id" "$kind" >>"$work/manifest.tsv"
}

fashion_test() {
    local gz=/usr/share/datasets/fashion-mnist
    if [[ -r $gz/t10k-images-idx3-ubyte.gz ]]; then
        mkdir -p "$work/fashion-t10k"
        zcat "$gz/t10k-images-idx3-ubyte.gz" >"$work/fashion-t10k/t10k-images-idx3-ubyte"
        zcat "$gz/t10k-labels-idx1-ubyte.gz" >"$work/fashion-t10k/t10k-labels-idx1-ubyte"
        echo "$work/fashion-t10k/t10k-images-idx3-ubyte"
    else
        echo models/fashion-vit/test1k-images-idx3-ubyte
    fi
}

for budget in "${budgets[@]}"; do
    for alloc in "${allocators[@]}"; do
        if [[ " $models " == *" mnist "* ]]; then
            one mnist ../shared/models/vit-mnist/vit_mnist.onnx mnist \
                ../shared/data/mnist/train5k-images-idx3-ubyte 512 "$budget" "$alloc" eval \
                ../shared/data/mnist/t10k-images-idx3-ubyte
        fi
        if [[ " $models " == *" fashion "* ]]; then
            test=${test:-$(fashion_test)}
            one fashion models/fashion-vit/fashion_vit.onnx fashion-mnist \
                models/fashion-vit/calib512-images-idx3-ubyte 512 "$budget" "$alloc" eval "$test"
        fi
        if [[ " $models " == *" dinov2 "* ]]; then
            if [[ ! -d $work/imagenet-calib64 ]]; then
                mkdir -p "$work/imagenet-calib64" "$work/imagenet-next64"
                mapfile -t images < <(find "$(cd ../shared/data/imagenet-sample && pwd)" -maxdepth 1 -name '*.JPEG' | LC_ALL=C sort)
                for i in $(seq 0 63); do ln -s "${images[$i]}" "$work/imagenet-calib64/"; done
                for i in $(seq 64 127); do ln -s "${images[$i]}" "$work/imagenet-next64/"; done
            fi
            one dinov2 ../shared/models/vit-s14-dinov2/vit_s14_backbone.onnx imagenet \
                "$work/imagenet-calib64" 64 "$budget" "$alloc" compare "$work/imagenet-next64" \
                --lrp-images 16 --sensitivity-images 4 --select-images 32
        fi
    done
done

WORK="${MP_WORK:+$MP_WORK:}$work" KEEP="${MP_KEEP:-}" python3 scripts/mixed-precision-summary.py
