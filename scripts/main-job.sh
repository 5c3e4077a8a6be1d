#!/usr/bin/env bash
# qvit's main job on the bundled default model (models/fashion-vit, a small ViT trained on
# Fashion-MNIST): inspect the ONNX model, quantize it (W8A8 and W4A4, calibrated on 512 bundled
# training images), score its layers by relevance (LRP) and quantize it with relevance-guided
# mixed precision at 3 bits beside the uniform baseline, evaluate the bundles with the device
# runtime against the f32 bundle, compare them layer by layer with the f32 model, explain a
# sample (heatmaps, SR maps, faithfulness), classify it and benchmark with qvit-run.
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

echo; echo "== qvit relevance (LRP scores per layer, 32 calibration images)"
"$QVIT" relevance "$M/fashion_vit.onnx" --preset fashion-mnist \
    --data "$M/calib512-images-idx3-ubyte" --limit 32 --plot "$OUT/relevance.png" | tail -n 24

echo; echo "== qvit quantize --mixed --budget 3 (relevance-guided bits per layer) and its uniform baseline"
for a in lrp uniform; do
    "$QVIT" quantize "$M/fashion_vit.onnx" --preset fashion-mnist \
        --calib "$M/calib512-images-idx3-ubyte" --calib-limit 512 --mixed --budget 3 --allocate "$a" \
        -o "$OUT/fashion_vit.mp3-$a.qvit"
done

# On these 1000 images one image is 0.1 pt, so mixed precision's ranking can move by a point;
# the 10 000-image comparison is in bench-results/mixed-precision.md.
echo; echo "== qvit eval (device runtime, 1000 labelled test images)"
for v in f32 w8a8 w4a4 mp3-uniform mp3-lrp; do
    "$QVIT" eval "$OUT/fashion_vit.$v.qvit" --data "$M/test1k-images-idx3-ubyte"
done

echo; echo "== qvit compare W4A4 vs the f32 model (where does the error enter?)"
"$QVIT" compare "$OUT/fashion_vit.w4a4.qvit" "$M/fashion_vit.onnx" \
    --data "$M/test1k-images-idx3-ubyte" --limit 200

echo; echo "== qvit explain (relevance and Salient Relevance overlays; W4A4 vs f32 rank correlation)"
"$QVIT" explain "$M/fashion_vit.onnx" --preset fashion-mnist "$M/sample.png" -o "$OUT/explain-f32"
"$QVIT" explain "$OUT/fashion_vit.w4a4.qvit" "$M/sample.png" --reference "$M/fashion_vit.onnx" \
    -o "$OUT/explain-w4a4"
"$QVIT" explain "$M/fashion_vit.onnx" --preset fashion-mnist --eval \
    --data "$M/test1k-images-idx3-ubyte" --limit 100 -o "$OUT/explain-eval"

echo; echo "== qvit-run info / classify"
"$RUN" info "$OUT/fashion_vit.w4a4.qvit"
"$RUN" classify "$OUT/fashion_vit.w4a4.qvit" "$M/sample.png"

echo; echo "== qvit-run bench (1 thread)"
for v in f32 w8a8 w4a4; do
    "$RUN" bench "$OUT/fashion_vit.$v.qvit" --threads 1 --iters 200 --json >"$OUT/bench.$v.json"
    "$RUN" bench "$OUT/fashion_vit.$v.qvit" --threads 1 --iters 200 | sed -n 2p | sed "s/^/$v /"
done
echo; echo "outputs in $OUT/ (bundles, quantization reports *.report.md, relevance.png, explain-*/ overlays, bench JSON)"
