#!/usr/bin/env python3
"""Device runtime vs onnxruntime on real models: max error per model, for reports.

For each ONNX model: write a float bundle with `qvit quantize --float`, run `qvit-run run` on a
seeded random input (and a real input when given), run onnxruntime on the same input, and
print cosine and max relative error (max|qvit - ort| / max|ort|). Needs onnxruntime + numpy.

usage: scripts/check-onnxruntime.py MODEL.onnx[:INPUT.npy] ...
"""
import subprocess, sys, tempfile, os
import numpy as np
import onnxruntime as ort

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
qvit = os.path.join(root, "target/debug/qvit")
run = os.path.join(root, "target/release/qvit-run")

def main():
    for arg in sys.argv[1:]:
        model, _, real = arg.partition(":")
        sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        shape = [d if isinstance(d, int) else 1 for d in inp.shape]
        inputs = {"random": np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
        if real:
            inputs["real"] = np.load(real).astype(np.float32)
        with tempfile.TemporaryDirectory() as d:
            bundle = os.path.join(d, "m.qvit")
            subprocess.run([qvit, "quantize", model, "--float", "-o", bundle], check=True, capture_output=True)
            for kind, x in inputs.items():
                xi, yo = os.path.join(d, "x.npy"), os.path.join(d, "y.npy")
                np.save(xi, x)
                subprocess.run([run, "run", bundle, "--input", xi, "--output", yo], check=True)
                got = np.load(yo).ravel().astype(np.float64)
                want = sess.run(None, {inp.name: x})[0].ravel().astype(np.float64)
                cos = got @ want / (np.linalg.norm(got) * np.linalg.norm(want))
                rel = np.abs(got - want).max() / np.abs(want).max()
                print(f"{os.path.basename(model):32s} {kind:6s} cosine {cos:.9f}  max rel error {rel:.2e}")

if __name__ == "__main__":
    main()
