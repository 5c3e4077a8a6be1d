#!/usr/bin/env bash
# qvit's main job on the bundled default model (models/fashion-vit, a small ViT trained on
# Fashion-MNIST): inspect the ONNX model, write a bundle, evaluate it with the device runtime,
# classify a sample image and benchmark it with qvit-run. Needs nothing outside this repository.
set -euo pipefail
cd "$(dirname "$0")/.."
M=models/fashion-vit
OUT=target/qvit-demo
mkdir -p "$OUT"

echo "== building qvit (host) and qvit-run (device, release)"
cargo build -q -p qvit-host --bin qvit
cargo build -q --release -p qvit-device --bin qvit-run
QVIT=target/debug/qvit
RUN=target/release/qvit-run

echo; echo "== qvit inspect"
"$QVIT" inspect "$M/fashion_vit.onnx"

echo; echo "== qvit quantize --float"
"$QVIT" quantize "$M/fashion_vit.onnx" --float --preset fashion-mnist -o "$OUT/fashion_vit.f32.qvit"

echo; echo "== qvit eval (device runtime, 1000 labelled test images)"
"$QVIT" eval "$OUT/fashion_vit.f32.qvit" --data "$M/test1k-images-idx3-ubyte"

echo; echo "== qvit-run info / classify"
"$RUN" info "$OUT/fashion_vit.f32.qvit"
"$RUN" classify "$OUT/fashion_vit.f32.qvit" "$M/sample.png"

echo; echo "== qvit-run bench (1 thread)"
"$RUN" bench "$OUT/fashion_vit.f32.qvit" --threads 1 --iters 200 --json | tee "$OUT/bench.json"
echo; echo "outputs in $OUT/"
