#!/usr/bin/env python3
"""Time onnxruntime CPU inference of one ONNX model at several intra-op thread counts.

Random float32 input (fixed seed) of the given shape; warm-up runs, then N timed runs of
`session.run`; reports min, median, p90 and mean in milliseconds per run, as JSON on stdout.
With --out FILE the run is also merged into FILE (keyed by --label), together with the CPU model
and onnxruntime version, so several invocations build one results file.

Example (repo root):
  ../venv/bin/python scripts/ort-peer/bench_ort.py target/ort-peer/vit_s14_dinov2.qdq_minmax_pc.onnx \
      --shape 1,3,224,224 --label vit_s14.qdq_minmax_pc --out bench-results/ort-speed-x86_64.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def materialize_missing_weights(model: str, out: str, seed: int) -> int:
    """Write a copy of `model` whose external initializers that are missing on disk are filled with
    seeded N(0, 0.02^2) float32 data (timm-style init scale). Only for timing: latency does not depend
    on weight values. Returns how many initializers were filled."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(model, load_external_data=False)
    base = Path(model).parent
    rng = np.random.default_rng(seed)
    filled = 0
    for i, init in enumerate(m.graph.initializer):
        if init.data_location != onnx.TensorProto.EXTERNAL:
            continue
        loc = {e.key: e.value for e in init.external_data}["location"]
        if (base / loc).exists():
            continue
        if init.data_type != onnx.TensorProto.FLOAT:
            raise SystemExit(f"{init.name}: missing external data of non-float type {init.data_type}")
        arr = (rng.standard_normal(list(init.dims)) * 0.02).astype(np.float32)
        m.graph.initializer[i].CopyFrom(numpy_helper.from_array(arr, init.name))
        filled += 1
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    onnx.save(m, out)
    return filled


def time_session(model: str, feed: dict, threads: int, warmup: int, iters: int) -> dict:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
    for _ in range(warmup):
        sess.run(None, feed)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t0) * 1e3)
    t = np.array(times)
    return {
        "intra_op_threads": threads,
        "iters": iters,
        "warmup": warmup,
        "min_ms": round(float(t.min()), 3),
        "median_ms": round(float(np.median(t)), 3),
        "p90_ms": round(float(np.percentile(t, 90)), 3),
        "mean_ms": round(float(t.mean()), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--shape", required=True, help="input shape, comma separated, e.g. 1,3,224,224")
    ap.add_argument("--input-name", help="default: the model's first input")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", default="1,2", help="comma list of intra-op thread counts")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--label", help="name of this run in --out (default: model file stem)")
    ap.add_argument("--note", help="free text stored with the run")
    ap.add_argument("--out", help="JSON file to merge the run into")
    ap.add_argument("--fill-missing-weights", metavar="OUT_ONNX",
                    help="model is weightless (external data file missing): write a copy with random weights "
                         "to OUT_ONNX and time that (latency only)")
    args = ap.parse_args()

    filled = None
    if args.fill_missing_weights:
        filled = materialize_missing_weights(args.model, args.fill_missing_weights, args.seed)
        args.model = args.fill_missing_weights

    shape = [int(d) for d in args.shape.split(",")]
    probe = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    name = args.input_name or probe.get_inputs()[0].name
    del probe
    x = np.random.default_rng(args.seed).standard_normal(shape, dtype=np.float32)
    feed = {name: x}

    run = {
        "model": args.model,
        "model_bytes": os.path.getsize(args.model),
        "input": {"name": name, "shape": shape, "data": f"standard normal float32, seed {args.seed}"},
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg_before": os.getloadavg()[0],
        "results": [time_session(args.model, feed, int(t), args.warmup, args.iters) for t in args.threads.split(",")],
    }
    if args.note:
        run["note"] = args.note
    if filled is not None:
        run["synthetic_weights"] = f"{filled} missing external initializers filled with seeded N(0, 0.02^2)"
    header = {
        "cpu": cpu_model(),
        "arch": platform.machine(),
        "logical_cpus": os.cpu_count(),
        "onnxruntime_version": ort.__version__,
        "provider": "CPUExecutionProvider",
        "graph_optimization_level": "ORT_ENABLE_ALL (default)",
        "python": platform.python_version(),
    }
    print(json.dumps({**header, "run": run}, indent=1))
    if args.out:
        p = Path(args.out)
        doc = json.loads(p.read_text()) if p.exists() else {}
        doc.update(header)
        doc.setdefault("runs", {})[args.label or Path(args.model).stem] = run
        doc["command_template"] = " ".join(
            [sys.executable, "scripts/ort-peer/bench_ort.py", "MODEL", "--shape", "S", "--label", "L", "--out", args.out]
        )
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
