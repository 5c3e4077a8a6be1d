#!/usr/bin/env bash
# qvit's main job on the bundled default model (models/fashion-vit, a small ViT trained on
# Fashion-MNIST): inspect the ONNX model, quantize it (W8A8 and W4A4, calibrated on 512 bundled
# training images), evaluate the bundles with the device runtime against the f32 bundle, compare
# them layer by layer with the f32 model, classify a sample image and benchmark with qvit-run.
# Needs nothing outside this repository.
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

echo; echo "== qvit quantize --float (the f32 reference bundle)"
"$QVIT" quantize "$M/fashion_vit.onnx" --float --preset fashion-mnist -o "$OUT/fashion_vit.f32.qvit"

for b in 8 4; do
    echo; echo "== qvit quantize W${b}A${b} (calibration: $M/calib512)"
    "$QVIT" quantize "$M/fashion_vit.onnx" --preset fashion-mnist \
        --calib "$M/calib512-images-idx3-ubyte" --calib-limit 512 --wbits "$b" --abits "$b" \
        -o "$OUT/fashion_vit.w${b}a${b}.qvit"
done

echo; echo "== qvit eval (device runtime, 1000 labelled test images)"
for v in f32 w8a8 w4a4; do
    "$QVIT" eval "$OUT/fashion_vit.$v.qvit" --data "$M/test1k-images-idx3-ubyte"
done

echo; echo "== qvit compare W4A4 vs the f32 model (where does the error enter?)"
"$QVIT" compare "$OUT/fashion_vit.w4a4.qvit" "$M/fashion_vit.onnx" \
    --data "$M/test1k-images-idx3-ubyte" --limit 200

echo; echo "== qvit-run info / classify"
"$RUN" info "$OUT/fashion_vit.w4a4.qvit"
"$RUN" classify "$OUT/fashion_vit.w4a4.qvit" "$M/sample.png"

echo; echo "== qvit-run bench (1 thread)"
for v in f32 w8a8 w4a4; do
    "$RUN" bench "$OUT/fashion_vit.$v.qvit" --threads 1 --iters 200 --json >"$OUT/bench.$v.json"
    "$RUN" bench "$OUT/fashion_vit.$v.qvit" --threads 1 --iters 200 | sed -n 2p | sed "s/^/$v /"
done
echo; echo "outputs in $OUT/ (bundles, quantization reports *.report.md, bench JSON)"
