#!/usr/bin/env python3
"""onnxruntime post-training static quantization (QDQ int8) peer baseline for qvit.

For each model: run `quant_pre_process`, calibrate with onnxruntime's own calibrators,
write QDQ int8 models (per-channel and per-tensor weights, MinMax; optionally Percentile),
then evaluate the fp32 model and every quantized model with onnxruntime on one thread.

Results: bench-results/ort-quantize-static.{json,md}; models: target/ort-peer/.
Run from the repo root: ../venv/bin/python scripts/ort-peer/quantize_static.py
"""

from __future__ import annotations

import argparse
import datetime
import glob
import gzip
import json
import os
import platform
import shlex
import struct
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization import calibrate as ort_calibrate
from onnxruntime.quantization.shape_inference import quant_pre_process

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ort import materialize_missing_weights  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
THREADS = 1


def _single_thread_calibration_session(self):
    # onnxruntime's calibrator builds its own InferenceSession with default threading (all cores);
    # the dev VM is shared, so pin calibration to the same thread count as evaluation.
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = THREADS
    opts.inter_op_num_threads = 1
    self.infer_session = ort.InferenceSession(
        self.augmented_model_path, sess_options=opts, providers=self.execution_providers
    )


ort_calibrate.CalibraterBase.create_inference_session = _single_thread_calibration_session


# ---------------------------------------------------------------- data

def read_idx(path: str | Path) -> np.ndarray:
    """IDX file (optionally gzipped) -> uint8 array [n] (labels) or [n, rows, cols] (images)."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    magic = struct.unpack(">I", raw[:4])[0]
    if magic == 0x00000801:
        (n,) = struct.unpack(">I", raw[4:8])
        arr = np.frombuffer(raw, dtype=np.uint8, count=n, offset=8)
    elif magic == 0x00000803:
        n, rows, cols = struct.unpack(">III", raw[4:16])
        arr = np.frombuffer(raw, dtype=np.uint8, count=n * rows * cols, offset=16).reshape(n, rows, cols)
    else:
        raise ValueError(f"{path}: unknown IDX magic {magic:#010x}")
    if arr.shape[0] != n:
        raise ValueError(f"{path}: truncated")
    return arr


def gray_norm(images: np.ndarray, mean: float, std: float) -> np.ndarray:
    """uint8 [n,28,28] -> float32 NCHW [n,1,28,28], (x/255 - mean)/std."""
    x = images.astype(np.float32) / 255.0
    return ((x - mean) / std)[:, None, :, :].astype(np.float32)


IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def imagenet_preprocess(path: str) -> np.ndarray:
    """RGB, shorter side -> 256 (PIL bilinear), centre crop 224, /255, ImageNet mean/std, CHW."""
    from PIL import Image

    img = Image.open(path).convert("RGB")
    w, h = img.size
    short, long_ = (w, h) if w <= h else (h, w)
    new_long = int(256 * long_ / short)
    size = (256, new_long) if w <= h else (new_long, 256)
    img = img.resize(size, Image.BILINEAR)
    w, h = img.size
    top = int(round((h - 224) / 2.0))
    left = int(round((w - 224) / 2.0))
    img = img.crop((left, top, left + 224, top + 224))
    x = np.asarray(img, dtype=np.float32) / 255.0
    x = (x - IMAGENET_MEAN) / IMAGENET_STD
    return x.transpose(2, 0, 1).astype(np.float32)


class ArrayReader(CalibrationDataReader):
    """Feeds a float array in fixed-size batches; supports set_range (used for chunked calibration)."""

    def __init__(self, input_name: str, data: np.ndarray, batch: int):
        self.input_name = input_name
        self.batches = [data[i : i + batch] for i in range(0, len(data), batch)]
        self.set_range(0, len(self.batches))

    def __len__(self):
        return len(self.batches)

    def set_range(self, start_index: int, end_index: int):
        self._it = iter(self.batches[start_index:end_index])

    def get_next(self):
        b = next(self._it, None)
        return None if b is None else {self.input_name: b}


# ---------------------------------------------------------------- ort helpers

def session(path: str | Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = THREADS
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def run_batched(sess: ort.InferenceSession, x: np.ndarray, batch: int) -> np.ndarray:
    name = sess.get_inputs()[0].name
    outs = [sess.run(None, {name: x[i : i + batch]})[0] for i in range(0, len(x), batch)]
    return np.concatenate(outs, axis=0)


def op_histogram(path: Path) -> dict[str, int]:
    m = onnx.load(str(path), load_external_data=False)
    hist: dict[str, int] = {}
    for n in m.graph.node:
        hist[n.op_type] = hist.get(n.op_type, 0) + 1
    return dict(sorted(hist.items()))


def quantized_op_summary(path: Path) -> dict:
    """Which compute ops got a DequantizeLinear on their weight input (i.e. run as int8 after fusion)."""
    m = onnx.load(str(path), load_external_data=False)
    producers = {o: n for n in m.graph.node for o in n.output}
    inits = {i.name for i in m.graph.initializer}
    total: dict[str, int] = {}
    quant: dict[str, int] = {}
    for n in m.graph.node:
        if n.op_type not in ("MatMul", "Gemm", "Conv"):
            continue
        total[n.op_type] = total.get(n.op_type, 0) + 1
        ins = [producers.get(i) for i in n.input[:2]]
        if all(p is not None and p.op_type == "DequantizeLinear" for p in ins):
            quant[n.op_type] = quant.get(n.op_type, 0) + 1
    return {
        "compute_ops": total,
        "compute_ops_with_dq_inputs": quant,
        "QuantizeLinear": sum(n.op_type == "QuantizeLinear" for n in m.graph.node),
        "DequantizeLinear": sum(n.op_type == "DequantizeLinear" for n in m.graph.node),
        "initializers": len(inits),
    }


# ---------------------------------------------------------------- models

def model_specs(args) -> dict:
    fashion_pkg_dir = "/usr/share/datasets/fashion-mnist"
    return {
        "vit_mnist": dict(
            fp32=Path("../shared/models/vit-mnist/vit_mnist.onnx"),
            kind="classify",
            preprocessing="(x/255 - 0.1307)/0.3081, NCHW [b,1,28,28]",
            load_calib=lambda: gray_norm(
                read_idx("../shared/data/mnist/train5k-images-idx3-ubyte"), 0.1307, 0.3081
            ),
            calib_desc="../shared/data/mnist/train5k-images-idx3-ubyte (all 5000)",
            calib_batch=100,
            calib_chunk=5,
            evals=[
                dict(
                    name="mnist_t10k",
                    desc="../shared/data/mnist/t10k-{images-idx3,labels-idx1}-ubyte (10000)",
                    load=lambda: (
                        gray_norm(read_idx("../shared/data/mnist/t10k-images-idx3-ubyte"), 0.1307, 0.3081),
                        read_idx("../shared/data/mnist/t10k-labels-idx1-ubyte"),
                    ),
                )
            ],
            eval_batch=500,
        ),
        "fashion_vit": dict(
            fp32=REPO / "models/fashion-vit/fashion_vit.onnx",
            kind="classify",
            preprocessing="(x/255 - 0.286)/0.353, NCHW [b,1,28,28]",
            load_calib=lambda: gray_norm(
                read_idx(REPO / "models/fashion-vit/calib512-images-idx3-ubyte"), 0.286, 0.353
            ),
            calib_desc="models/fashion-vit/calib512-images-idx3-ubyte (all 512, first 512 Fashion-MNIST train)",
            calib_batch=64,
            calib_chunk=8,
            evals=[
                dict(
                    name="fashion_t10k",
                    desc=f"{fashion_pkg_dir}/t10k-{{images-idx3,labels-idx1}}-ubyte.gz (Debian dataset-fashion-mnist, 10000)",
                    load=lambda: (
                        gray_norm(read_idx(f"{fashion_pkg_dir}/t10k-images-idx3-ubyte.gz"), 0.286, 0.353),
                        read_idx(f"{fashion_pkg_dir}/t10k-labels-idx1-ubyte.gz"),
                    ),
                ),
                dict(
                    name="fashion_test1k",
                    desc="models/fashion-vit/test1k-{images-idx3,labels-idx1}-ubyte (1000)",
                    load=lambda: (
                        gray_norm(read_idx(REPO / "models/fashion-vit/test1k-images-idx3-ubyte"), 0.286, 0.353),
                        read_idx(REPO / "models/fashion-vit/test1k-labels-idx1-ubyte"),
                    ),
                ),
            ],
            eval_batch=500,
        ),
        "vit_s14_dinov2": dict(
            fp32=Path("../shared/models/vit-s14-dinov2/vit_s14_backbone.onnx"),
            kind="tokens",
            preprocessing=(
                "RGB, shorter side -> 256 (PIL bilinear), centre crop 224, /255, "
                "ImageNet mean (0.485,0.456,0.406) std (0.229,0.224,0.225), NCHW [b,3,224,224]"
            ),
            load_calib=lambda: imagenet_images()[:32],
            calib_desc="../shared/data/imagenet-sample/*.JPEG sorted by name, first 32",
            calib_batch=1,
            calib_chunk=4,
            evals=[
                dict(
                    name="imagenet_sample_rest",
                    desc=(
                        "../shared/data/imagenet-sample/*.JPEG sorted, images 32.."
                        f"{32 + args.dinov2_eval - 1} ({args.dinov2_eval} images); metric: cosine "
                        "similarity of the flattened [257,384] output tokens, fp32 vs quantized, per image"
                    ),
                    load=lambda: (imagenet_images()[32 : 32 + args.dinov2_eval], None),
                )
            ],
            eval_batch=4,
        ),
        # timm DeiT-Tiny fixture is weightless (its .weights file was never written): quantize a copy with
        # seeded random weights only so bench_ort.py can time an int8 DeiT-Tiny; no accuracy is measured.
        "deit_tiny_synth": dict(
            fp32=Path(args.out_dir) / "deit_tiny_op17.synthweights.onnx",
            make_fp32=lambda out: materialize_missing_weights(
                str(REPO / "models/fixtures/deit_tiny_op17.onnx"), str(out), seed=0
            ),
            kind="none",
            preprocessing="as vit_s14_dinov2 (ImageNet mean/std, 224x224); weights are random, latency only",
            load_calib=lambda: imagenet_images()[:32],
            calib_desc="../shared/data/imagenet-sample/*.JPEG sorted by name, first 32",
            calib_batch=1,
            calib_chunk=4,
            evals=[],
            eval_batch=1,
            only_variants=["qdq_minmax_pc"],
        ),
    }


_IMAGENET_CACHE: np.ndarray | None = None


def imagenet_images() -> np.ndarray:
    global _IMAGENET_CACHE
    if _IMAGENET_CACHE is None:
        files = sorted(glob.glob("../shared/data/imagenet-sample/*.JPEG"))
        if len(files) != 200:
            print(f"warning: expected 200 images, found {len(files)}", file=sys.stderr)
        _IMAGENET_CACHE = np.stack([imagenet_preprocess(f) for f in files])
    return _IMAGENET_CACHE


VARIANTS = {
    # name: (calibration method, per_channel)
    "qdq_minmax_pc": (CalibrationMethod.MinMax, True),
    "qdq_minmax_pt": (CalibrationMethod.MinMax, False),
    "qdq_percentile_pc": (CalibrationMethod.Percentile, True),
    "qdq_percentile_pt": (CalibrationMethod.Percentile, False),
}

# onnxruntime's quantize_static docstring (1.32): x86-64 CPU *with VNNI* -> activations QUInt8,
# weights QInt8, reduce_range=False. This VM's Xeon has avx512_vnni / avx_vnni.
ACTIVATION_TYPE = QuantType.QUInt8
WEIGHT_TYPE = QuantType.QInt8
REDUCE_RANGE = False
PERCENTILE = 99.999


def evaluate(kind: str, sess: ort.InferenceSession, x: np.ndarray, labels, batch: int, ref=None) -> tuple[dict, np.ndarray]:
    t0 = time.time()
    out = run_batched(sess, x, batch)
    dt = time.time() - t0
    res: dict = {"seconds": round(dt, 2), "n": int(len(x))}
    if kind == "classify":
        pred = out.argmax(axis=1)
        correct = int((pred == labels).sum())
        res.update(correct=correct, top1_percent=round(100.0 * correct / len(x), 2))
        if ref is not None:
            res["agreement_with_fp32_percent"] = round(100.0 * float((pred == ref.argmax(axis=1)).mean()), 2)
            res["logits_max_abs_diff_vs_fp32"] = float(np.abs(out - ref).max())
    else:
        res["output_shape"] = list(out.shape)
        if ref is not None:
            a = ref.reshape(len(ref), -1).astype(np.float64)
            b = out.reshape(len(out), -1).astype(np.float64)
            cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
            # also per token (cls token and patch tokens separately): how the backbone's users see it
            ta = ref.astype(np.float64)
            tb = out.astype(np.float64)
            tok = (ta * tb).sum(-1) / (np.linalg.norm(ta, axis=-1) * np.linalg.norm(tb, axis=-1))
            res.update(
                cos_flat_mean=float(cos.mean()),
                cos_flat_min=float(cos.min()),
                cos_flat_median=float(np.median(cos)),
                cos_cls_token_mean=float(tok[:, 0].mean()),
                cos_cls_token_min=float(tok[:, 0].min()),
                cos_per_token_mean=float(tok.mean()),
                rel_l2_err_mean=float((np.linalg.norm(a - b, axis=1) / np.linalg.norm(a, axis=1)).mean()),
            )
    return res, out


def run_model(name: str, spec: dict, variants: list[str], out_dir: Path) -> dict:
    print(f"== {name}", flush=True)
    rec: dict = {
        "fp32_model": str(spec["fp32"]),
        "preprocessing": spec["preprocessing"],
        "calibration_set": spec["calib_desc"],
        "calibration_batch": spec["calib_batch"],
        "eval_sets": {e["name"]: e["desc"] for e in spec["evals"]},
        "variants": {},
    }
    if "make_fp32" in spec:
        rec["synthetic_weights"] = f"{spec['make_fp32'](spec['fp32'])} missing initializers filled with seeded N(0, 0.02^2)"
    if "only_variants" in spec:
        variants = [v for v in variants if v in spec["only_variants"]]
    pre = out_dir / f"{name}.preprocessed.onnx"
    t0 = time.time()
    try:
        quant_pre_process(str(spec["fp32"]), str(pre))
        rec["quant_pre_process"] = {"ok": True, "seconds": round(time.time() - t0, 1), "file": str(pre)}
        qin = pre
    except Exception as e:  # keep going with the raw model; report it
        rec["quant_pre_process"] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        qin = spec["fp32"]
    print(f"  pre_process: {rec['quant_pre_process']}", flush=True)

    calib = spec["load_calib"]()
    rec["calibration_images"] = int(len(calib))
    input_name = session(spec["fp32"]).get_inputs()[0].name
    evals = [(e["name"], *e["load"]()) for e in spec["evals"]]

    # fp32 reference
    fp32_sess = session(spec["fp32"])
    ref_out: dict[str, np.ndarray] = {}
    vrec = {"file": str(spec["fp32"]), "bytes": spec["fp32"].stat().st_size, "eval": {}}
    for ename, x, y in evals:
        r, out = evaluate(spec["kind"], fp32_sess, x, y, spec["eval_batch"])
        ref_out[ename] = out
        vrec["eval"][ename] = r
        print(f"  fp32 {ename}: {r}", flush=True)
    del fp32_sess
    rec["variants"]["fp32"] = vrec

    for v in variants:
        method, per_channel = VARIANTS[v]
        qpath = out_dir / f"{name}.{v}.onnx"
        cache = out_dir / f"{name}.calib-{method.name.lower()}.json"
        n_batches = len(ArrayReader(input_name, calib, spec["calib_batch"]))
        # Histogram calibrators keep every activation of every batch in RAM until compute;
        # CalibStridedMinMax makes quantize_static feed the reader in chunks (it works for any
        # calibrator: collect_data merges histograms per call).
        stride = max(d for d in range(1, min(n_batches, spec['calib_chunk']) + 1) if n_batches % d == 0)
        extra = {"CalibStridedMinMax": stride}
        if method == CalibrationMethod.Percentile:
            extra["CalibPercentile"] = PERCENTILE
        cache_hit = cache.exists()
        t0 = time.time()
        vrec = {
            "calibrate_method": method.name,
            "per_channel": per_channel,
            "activation_type": ACTIVATION_TYPE.name,
            "weight_type": WEIGHT_TYPE.name,
            "reduce_range": REDUCE_RANGE,
            "quant_format": "QDQ",
            "extra_options": extra,
            "calibration_cache": str(cache),
            "calibration_reused_from_cache": cache_hit,
        }
        try:
            quantize_static(
                str(qin),
                str(qpath),
                calibration_data_reader=ArrayReader(input_name, calib, spec["calib_batch"]),
                quant_format=QuantFormat.QDQ,
                per_channel=per_channel,
                reduce_range=REDUCE_RANGE,
                activation_type=ACTIVATION_TYPE,
                weight_type=WEIGHT_TYPE,
                calibrate_method=method,
                extra_options=extra,
                calibration_cache_path=str(cache),
            )
        except Exception as e:
            vrec["error"] = f"{type(e).__name__}: {e}"
            print(f"  {v}: FAILED {vrec['error']}", flush=True)
            rec["variants"][v] = vrec
            continue
        vrec["quantize_seconds"] = round(time.time() - t0, 1)
        vrec["file"] = str(qpath)
        vrec["bytes"] = qpath.stat().st_size
        vrec["graph"] = quantized_op_summary(qpath)
        sess = session(qpath)
        vrec["eval"] = {}
        for ename, x, y in evals:
            r, _ = evaluate(spec["kind"], sess, x, y, spec["eval_batch"], ref=ref_out[ename])
            vrec["eval"][ename] = r
            print(f"  {v} {ename}: {r}", flush=True)
        del sess
        rec["variants"][v] = vrec
    return rec


# ---------------------------------------------------------------- report

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def write_markdown(res: dict, path: Path) -> None:
    L = []
    L.append("# onnxruntime post-training static quantization (QDQ int8): peer baseline\n")
    L.append(f"- onnxruntime {res['onnxruntime_version']}, onnx {res['onnx_version']}, numpy {res['numpy_version']}, "
             f"python {res['python_version']}")
    L.append(f"- date {res['date']}, CPU `{res['cpu']}` (x86_64, has AVX-512 VNNI), "
             f"CPUExecutionProvider, intra_op_num_threads={res['threads']}")
    L.append(f"- command (repo root): `{res['command']}`")
    L.append(f"- quantization: `quantize_static`, QuantFormat.QDQ, activations {res['settings']['activation_type']}, "
             f"weights {res['settings']['weight_type']}, reduce_range={res['settings']['reduce_range']} "
             "(onnxruntime's recommendation for x86-64 with VNNI), all op types onnxruntime quantizes by default; "
             f"Percentile at {res['settings']['percentile']}; models first run through "
             "`onnxruntime.quantization.shape_inference.quant_pre_process`")
    L.append("- pc = per-channel weights (per_channel=True), pt = per-tensor weights (per_channel=False)")
    L.append("- quantized models are written to `target/ort-peer/` (not committed)\n")
    for mname, m in res["models"].items():
        L.append(f"## {mname}\n")
        L.append(f"- model: `{m['fp32_model']}`")
        L.append(f"- preprocessing: {m['preprocessing']}")
        L.append(f"- calibration: {m['calibration_set']}, {m['calibration_images']} images, batch {m['calibration_batch']}")
        for ename, edesc in m["eval_sets"].items():
            L.append(f"- eval `{ename}`: {edesc}")
        pp = m["quant_pre_process"]
        L.append(f"- quant_pre_process: {'ok' if pp['ok'] else 'FAILED: ' + pp['error'] + ' (quantized the raw model)'}\n")
        enames = list(m["eval_sets"])
        if not enames:
            L.append(f"- {m.get('synthetic_weights', '')}; no evaluation (latency only, see ort-speed-x86_64.json)\n")
            L.append("| variant | file bytes | MatMul/Gemm/Conv with DQ inputs |")
            L.append("|---|---|---|")
            for vname, v in m["variants"].items():
                L.append(f"| {vname} | {v.get('bytes', '-')} | {_qops(v) if 'graph' in v else '-'} |")
            L.append("")
            continue
        if any("top1_percent" in v.get("eval", {}).get(enames[0], {}) for v in m["variants"].values()):
            hdr = "| variant | file bytes |" + "".join(f" {e} top-1 % | agree w/ fp32 % |" for e in enames) + " MatMul/Gemm/Conv with DQ inputs |"
            L.append(hdr)
            L.append("|" + "---|" * (2 + 2 * len(enames) + 1))
            for vname, v in m["variants"].items():
                if "error" in v:
                    L.append(f"| {vname} | failed: {v['error'][:120]} |")
                    continue
                row = f"| {vname} | {v['bytes']} |"
                for e in enames:
                    r = v["eval"][e]
                    row += f" {r['top1_percent']:.2f} ({r['correct']}/{r['n']}) | {r.get('agreement_with_fp32_percent', 100.0):.2f} |"
                row += f" {_qops(v)} |"
                L.append(row)
        else:
            e = enames[0]
            L.append("| variant | file bytes | cos flat mean | cos flat min | cos flat median | cls-token cos mean | cls-token cos min | rel L2 err mean | MatMul/Gemm/Conv with DQ inputs |")
            L.append("|---|---|---|---|---|---|---|---|---|")
            for vname, v in m["variants"].items():
                if "error" in v:
                    L.append(f"| {vname} | failed: {v['error'][:120]} |")
                    continue
                r = v["eval"][e]
                if "cos_flat_mean" not in r:
                    L.append(f"| {vname} | {v['bytes']} | 1 (reference) | 1 | 1 | 1 | 1 | 0 | - |")
                    continue
                L.append(f"| {vname} | {v['bytes']} | {r['cos_flat_mean']:.5f} | {r['cos_flat_min']:.5f} | "
                         f"{r['cos_flat_median']:.5f} | {r['cos_cls_token_mean']:.5f} | {r['cos_cls_token_min']:.5f} | "
                         f"{r['rel_l2_err_mean']:.4f} | {_qops(v)} |")
        L.append("")
    if res.get("notes"):
        L.append("## Notes\n")
        L.extend(f"- {n}" for n in res["notes"])
        L.append("")
    path.write_text("\n".join(L))


def _qops(v: dict) -> str:
    g = v.get("graph")
    if not g:
        return "-"
    tot = sum(g["compute_ops"].values())
    q = sum(g["compute_ops_with_dq_inputs"].values())
    return f"{q}/{tot}"


NOTES = [
    "\"MatMul/Gemm/Conv with DQ inputs\" counts compute nodes whose first two inputs both come from "
    "DequantizeLinear, i.e. that onnxruntime fuses into an int8 kernel; it includes the activation x activation "
    "attention MatMuls (QK^T, attn*V).",
    "Calibration ranges are computed once per model and method and cached (target/ort-peer/*.calib-*.json), so "
    "pc and pt variants share identical activation ranges. quantize_static is fed in chunks via the "
    "CalibStridedMinMax option (which merely splits collect_data calls; it bounds Percentile's histogram memory).",
    "onnxruntime's calibration session uses all cores by default; the script patches it to intra_op_num_threads=1.",
    "agree w/ fp32 = share of test images where the int8 and fp32 models predict the same class.",
    "vit_mnist: max |logit diff| vs fp32 is 6.63 (test image 4225) for every variant: the QDQ on the model output "
    "clips logits to the calibrated range (calibrated lowest logit -48.99 on train5k, fp32 gives -55.49 on that test image); top-1 unaffected.",
    "deit_tiny_synth is timm DeiT-Tiny (models/fixtures/deit_tiny_op17.onnx, weightless) with seeded random weights, "
    "quantized only so bench_ort.py can time int8 DeiT-Tiny; its accuracy means nothing.",
    "The per-eval 'seconds' in the JSON are whole-eval wall times on a VM shared with other builds, not benchmarks; "
    "see bench-results/ort-speed-x86_64.json (scripts/ort-peer/bench_ort.py).",
]


def main() -> None:
    global THREADS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="vit_mnist,fashion_vit,vit_s14_dinov2,deit_tiny_synth")
    ap.add_argument("--variants", default="qdq_minmax_pc,qdq_minmax_pt,qdq_percentile_pc,qdq_percentile_pt",
                    help=f"comma list of {','.join(VARIANTS)}")
    ap.add_argument("--dinov2-eval", type=int, default=168, help="number of DINOv2 eval images after the 32 calibration ones")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out-dir", default=str(REPO / "target/ort-peer"))
    ap.add_argument("--json", default=str(REPO / "bench-results/ort-quantize-static.json"))
    ap.add_argument("--md", default=str(REPO / "bench-results/ort-quantize-static.md"))
    ap.add_argument("--fresh-calibration", action="store_true", help="delete cached calibration ranges first")
    ap.add_argument("--md-only", action="store_true", help="only rewrite the Markdown from the existing JSON")
    args = ap.parse_args()
    if args.md_only:
        res = json.loads(Path(args.json).read_text())
        res["notes"] = NOTES
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
        write_markdown(res, Path(args.md))
        return
    THREADS = args.threads
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.fresh_calibration:
        for f in out_dir.glob("*.calib-*.json"):
            f.unlink()

    specs = model_specs(args)
    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        if v not in VARIANTS:
            ap.error(f"unknown variant {v}")

    # merge into an existing result file so models can be (re)run one at a time
    jpath = Path(args.json)
    res = json.loads(jpath.read_text()) if jpath.exists() else {"models": {}}
    res.update(
        onnxruntime_version=ort.__version__,
        onnx_version=onnx.__version__,
        numpy_version=np.__version__,
        python_version=platform.python_version(),
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        cpu=cpu_model(),
        threads=THREADS,
        command=" ".join(shlex.quote(a) for a in [sys.executable, os.path.relpath(__file__, REPO), *sys.argv[1:]]),
        notes=NOTES,
        settings=dict(activation_type=ACTIVATION_TYPE.name, weight_type=WEIGHT_TYPE.name,
                      reduce_range=REDUCE_RANGE, percentile=PERCENTILE),
    )
    res.setdefault("models", {})
    for name in args.models.split(","):
        res["models"][name] = run_model(name, specs[name], variants, out_dir)
        res["models"][name]["command"] = res["command"]
        jpath.parent.mkdir(parents=True, exist_ok=True)
        jpath.write_text(json.dumps(res, indent=1) + "\n")
        write_markdown(res, Path(args.md))
    print(f"wrote {jpath} and {args.md}")


if __name__ == "__main__":
    main()
