#!/usr/bin/env bash
# Post-training quantization accuracy of `qvit quantize`: each technique switched off in turn, at
# W8A8, W6A6 and W4A4, on the MNIST ViT, the Fashion-MNIST ViT (top-1 on 10 000 test images) and
# the DINOv2 ViT-S/14 backbone (output cosine against the f32 ONNX model via `qvit compare`).
# Writes bench-results/ptq-accuracy.json and bench-results/ptq-accuracy.md, with the onnxruntime
# quantize_static int8 rows from bench-results/ort-quantize-static.json beside ours.
# Runs one job at a time (1 thread); the whole matrix takes about 15-25 min on 2 shared cores.
# PTQ_MODELS="mnist fashion dinov2", PTQ_BITS="8 6 4" and PTQ_VARIANTS="all round-nearest …" select a
# subset (all by default); a subset run can go to its own files with PTQ_NAME=NAME
# (bench-results/NAME.{json,md}). Bundles stay in target/ptq-accuracy/run.*/ for inspection.
set -euo pipefail
cd "$(dirname "$0")/.."

models="${PTQ_MODELS:-mnist fashion dinov2}"
read -ra bits_list <<<"${PTQ_BITS:-8 6 4}"
mnist_variants=(all no-channel-clip no-reparam no-log2-softmax clip-minmax clip-percentile round-nearest round-gptq)
vits_variants=(all no-channel-clip no-reparam no-log2-softmax round-nearest round-gptq)
if [[ -n ${PTQ_VARIANTS:-} ]]; then
    read -ra mnist_variants <<<"$PTQ_VARIANTS"
    vits_variants=("${mnist_variants[@]}")
fi

start=$(date +%s)
cargo build -p qvit-host
mkdir -p target/ptq-accuracy bench-results
work=$(mktemp -d target/ptq-accuracy/run.XXXXXX)
# Freeze the binary: other builds in this tree may replace target/debug/qvit while the matrix runs.
cp target/debug/qvit "$work/qvit"
qvit="$work/qvit"
git rev-parse --short HEAD >"$work/commit"
if [[ -n $(git status --porcelain --untracked-files=no) ]]; then echo dirty >"$work/dirty"; fi
sha256sum "$qvit" | cut -d' ' -f1 >"$work/qvit.sha256"
manifest="$work/manifest.tsv"
: >"$manifest"
echo "ptq-accuracy: working in $work"

variant_flags() {
    case "$1" in
        all) echo "" ;;
        no-channel-clip) echo "--no-channel-clip" ;;
        no-reparam) echo "--no-reparam" ;;
        no-log2-softmax) echo "--no-log2-softmax" ;;
        clip-minmax) echo "--clip minmax" ;;
        clip-percentile) echo "--clip percentile" ;;
        round-nearest) echo "--weight-round nearest" ;;
        round-gptq) echo "--weight-round gptq" ;;
        rotate-hadamard) echo "--rotate hadamard" ;;
        rotate-hadamard-gptq) echo "--rotate hadamard --weight-round gptq" ;;
        act-dynamic) echo "--act-scale dynamic" ;;
        act-dynamic-gptq) echo "--act-scale dynamic --weight-round gptq" ;;
        act-dynamic-rotate-gptq) echo "--act-scale dynamic --rotate hadamard --weight-round gptq" ;;
        attn-dynamic-rotate-gptq) echo "--act-scale dynamic --attn-scale dynamic --rotate hadamard --weight-round gptq" ;;
        attn-dynamic-rotate-gptq-actorder) echo "--act-scale dynamic --attn-scale dynamic --rotate hadamard --weight-round gptq-act-order" ;;
        attn-dynamic-rotate-gptq-groups128) echo "--act-scale dynamic --attn-scale dynamic --rotate hadamard --weight-round gptq --act-groups 128" ;;
        attn-dynamic-rotate-gptq-actorder-groups128) echo "--act-scale dynamic --attn-scale dynamic --rotate hadamard --weight-round gptq-act-order --act-groups 128" ;;
        *) echo "unknown variant $1" >&2; return 1 ;;
    esac
}

# run ID CMD...: stdout to $work/ID.out, stderr to $work/ID.err, wall seconds to $work/ID.secs,
# the command line to $work/ID.cmd; a failure is recorded (ID.failed), never fatal.
run() {
    local id=$1; shift
    printf '%q ' "$@" >"$work/$id.cmd"
    local t0 t1
    t0=$(date +%s.%N)
    if "$@" >"$work/$id.out" 2>"$work/$id.err"; then
        rm -f "$work/$id.failed"
    else
        echo "exit $?" >"$work/$id.failed"
        echo "  FAILED: $id: $(tail -n 3 "$work/$id.err" | tr '\n' ' ')" >&2
    fi
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }' >"$work/$id.secs"
}

# quantize_and_measure MODEL_KEY ONNX PRESET CALIB LIMIT VARIANT BITS KIND DATA
# KIND is eval (top-1 on labelled DATA) or compare (output cosine on the images in DATA).
quantize_and_measure() {
    local key=$1 onnx=$2 preset=$3 calib=$4 limit=$5 variant=$6 bits=$7 kind=$8 data=$9
    local id="$key.$variant.w${bits}a${bits}"
    local bundle="$work/$id.qvit"
    local flags
    flags=$(variant_flags "$variant")
    echo "[$(date +%T)] $id"
    # shellcheck disable=SC2086 # flags are deliberately split into words
    run "$id.quantize" "$qvit" quantize "$onnx" --preset "$preset" --calib "$calib" \
        --calib-limit "$limit" --wbits "$bits" --abits "$bits" $flags -o "$bundle"
    if [[ -e "$work/$id.quantize.failed" ]]; then
        : # the measurement is skipped; the quantize error is reported
    elif [[ $kind == eval ]]; then
        run "$id.measure" "$qvit" eval "$bundle" --data "$data" --json
    else
        run "$id.measure" "$qvit" compare "$bundle" "$onnx" --data "$data" --json
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$key" "$variant" "$bits" "$id" "$kind" "$flags" >>"$manifest"
}

if [[ " $models " == *" mnist "* ]]; then
    onnx=../shared/models/vit-mnist/vit_mnist.onnx
    calib=../shared/data/mnist/train5k-images-idx3-ubyte
    test=../shared/data/mnist/t10k-images-idx3-ubyte
    echo "[$(date +%T)] mnist.fp32"
    run mnist.fp32.measure "$qvit" eval "$onnx" --preset mnist --data "$test" --json
    printf 'mnist\tfp32\t32\tmnist.fp32\teval\t\n' >>"$manifest"
    for bits in "${bits_list[@]}"; do
        for v in "${mnist_variants[@]}"; do
            quantize_and_measure mnist "$onnx" mnist "$calib" 5000 "$v" "$bits" eval "$test"
        done
    done
fi

if [[ " $models " == *" fashion "* ]]; then
    onnx=models/fashion-vit/fashion_vit.onnx
    calib=models/fashion-vit/calib512-images-idx3-ubyte
    gz=/usr/share/datasets/fashion-mnist
    if [[ -r $gz/t10k-images-idx3-ubyte.gz && -r $gz/t10k-labels-idx1-ubyte.gz ]]; then
        mkdir -p "$work/fashion-t10k"
        zcat "$gz/t10k-images-idx3-ubyte.gz" >"$work/fashion-t10k/t10k-images-idx3-ubyte"
        zcat "$gz/t10k-labels-idx1-ubyte.gz" >"$work/fashion-t10k/t10k-labels-idx1-ubyte"
        test="$work/fashion-t10k/t10k-images-idx3-ubyte"
        echo "Fashion-MNIST t10k (10000) from $gz (Debian dataset-fashion-mnist)" >"$work/fashion.testset"
    else
        test=models/fashion-vit/test1k-images-idx3-ubyte
        echo "FALLBACK: $gz missing; models/fashion-vit/test1k (1000)" >"$work/fashion.testset"
    fi
    echo "[$(date +%T)] fashion.fp32"
    run fashion.fp32.measure "$qvit" eval "$onnx" --preset fashion-mnist --data "$test" --json
    printf 'fashion\tfp32\t32\tfashion.fp32\teval\t\n' >>"$manifest"
    for bits in "${bits_list[@]}"; do
        for v in "${mnist_variants[@]}"; do
            quantize_and_measure fashion "$onnx" fashion-mnist "$calib" 512 "$v" "$bits" eval "$test"
        done
    done
fi

if [[ " $models " == *" dinov2 "* ]]; then
    onnx=../shared/models/vit-s14-dinov2/vit_s14_backbone.onnx
    mkdir -p "$work/imagenet-calib32" "$work/imagenet-next32"
    mapfile -t images < <(find "$(cd ../shared/data/imagenet-sample && pwd)" -maxdepth 1 -name '*.JPEG' | LC_ALL=C sort)
    for i in $(seq 0 31); do ln -s "${images[$i]}" "$work/imagenet-calib32/"; done
    for i in $(seq 32 63); do ln -s "${images[$i]}" "$work/imagenet-next32/"; done
    for bits in "${bits_list[@]}"; do
        for v in "${vits_variants[@]}"; do
            quantize_and_measure dinov2 "$onnx" imagenet "$work/imagenet-calib32" 32 "$v" "$bits" \
                compare "$work/imagenet-next32"
        done
    done
fi

end=$(date +%s)
NAME="${PTQ_NAME:-ptq-accuracy}" SUBSET="models=[$models] bits=[${bits_list[*]}] variants=[${PTQ_VARIANTS:-all}]" WORK="$work" TOTAL_SECONDS=$((end - start)) MODELS="$models" python3 - <<'PY'
import json, os, subprocess, datetime

work = os.environ["WORK"]
out_name = os.environ["NAME"]
subset = os.environ["SUBSET"]
total = int(os.environ["TOTAL_SECONDS"])

def read(path, default=None):
    return open(path).read() if os.path.exists(path) else default

def jload(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return None

cpu = subprocess.run(["grep", "-m1", "model name", "/proc/cpuinfo"], capture_output=True, text=True).stdout
cpu = cpu.split(":", 1)[1].strip() if ":" in cpu else "unknown"
# The commit and work-tree state when the (frozen) binary was built, not when the matrix ended.
commit = read(f"{work}/commit", "").strip()
dirty = os.path.exists(f"{work}/dirty")
binary_sha256 = read(f"{work}/qvit.sha256", "").strip()

def error_text(id_):
    err = (read(f"{work}/{id_}.err", "") or "").strip().splitlines()
    lines = [l for l in err if "error" in l.lower() or "panicked" in l.lower()] or err[-3:]
    return " ".join(l.strip() for l in lines[-3:])[:400]

runs = []
for line in open(f"{work}/manifest.tsv"):
    key, variant, bits, id_, kind, flags = line.rstrip("\n").split("\t")
    r = {"model": key, "variant": variant, "bits": int(bits), "kind": kind, "flags": flags}
    if variant != "fp32":
        r["quantize_command"] = read(f"{work}/{id_}.quantize.cmd", "").strip()
        r["quantize_wall_seconds"] = round(float(read(f"{work}/{id_}.quantize.secs", "nan")), 2)
        if os.path.exists(f"{work}/{id_}.quantize.failed"):
            r["error"] = "quantize failed: " + error_text(f"{id_}.quantize")
            runs.append(r)
            continue
        rep = jload(f"{work}/{id_}.report.json") or {}
        sizes = rep.get("sizes", {})
        r["bundle_bytes"] = sizes.get("bundle", {}).get("total")
        r["bound_bytes"] = sizes.get("bound_bytes")
        r["within_bound"] = sizes.get("within_bound")
        r["calib_seconds"] = rep.get("calib_seconds")
        r["calib_images"] = rep.get("calib_images")
        r["float_layers"] = len(rep.get("float_layers") or [])
    r["measure_command"] = read(f"{work}/{id_}.measure.cmd", "").strip()
    r["measure_wall_seconds"] = round(float(read(f"{work}/{id_}.measure.secs", "nan")), 2)
    if os.path.exists(f"{work}/{id_}.measure.failed"):
        r["error"] = ("eval" if kind == "eval" else "compare") + " failed: " + error_text(f"{id_}.measure")
        runs.append(r)
        continue
    m = jload(f"{work}/{id_}.measure.out") or {}
    if kind == "eval":
        r.update({"top1": m.get("top1"), "top5": m.get("top5"), "n": m.get("n")})
    else:
        layers = [l for l in m.get("layers", []) if isinstance(l.get("cosine"), (int, float))]
        worst = min(layers, key=lambda l: l["cosine"]) if layers else None
        r.update({"n": m.get("n"), "output_cosine_mean": m.get("output_cosine_mean"),
                  "output_cosine_min": m.get("output_cosine_min"), "top1_agreement": m.get("top1_agreement"),
                  "worst_layer": worst and {"name": worst["name"], "op": worst.get("op"), "cosine": worst["cosine"]}})
    runs.append(r)

ort_all = jload("bench-results/ort-quantize-static.json") or {"models": {}}
ort_key = {"mnist": ("vit_mnist", "mnist_t10k"), "fashion": ("fashion_vit", "fashion_t10k"),
           "dinov2": ("vit_s14_dinov2", "imagenet_sample_rest")}
ort_names = {"qdq_minmax_pc": "ORT int8 QDQ MinMax per-channel", "qdq_minmax_pt": "ORT int8 QDQ MinMax per-tensor",
             "qdq_percentile_pc": "ORT int8 QDQ Percentile per-channel",
             "qdq_percentile_pt": "ORT int8 QDQ Percentile per-tensor"}
ort_rows = {}
for key, (okey, eset) in ort_key.items():
    vs = ort_all["models"].get(okey, {}).get("variants", {})
    rows = []
    for v, name in ort_names.items():
        e = vs.get(v, {}).get("eval", {}).get(eset)
        if e:
            rows.append({"variant": v, "name": name, "eval_set": eset, "n": e.get("n"),
                         "top1": e["top1_percent"] / 100 if "top1_percent" in e else None,
                         "cos_flat_mean": e.get("cos_flat_mean"), "cos_flat_min": e.get("cos_flat_min"),
                         "bytes": vs[v].get("bytes")})
    ort_rows[key] = rows

fashion_testset = (read(f"{work}/fashion.testset", "") or "").strip()
titles = {"mnist": "MNIST ViT (../shared/models/vit-mnist/vit_mnist.onnx), top-1 on MNIST t10k",
          "fashion": f"Fashion-MNIST ViT (models/fashion-vit/fashion_vit.onnx), top-1 on {fashion_testset}",
          "dinov2": "DINOv2 ViT-S/14 backbone (../shared/models/vit-s14-dinov2/vit_s14_backbone.onnx), "
                    "output cosine vs f32 ONNX on imagenet-sample images 33..64 (qvit compare)"}
commands = {
    "mnist": ["qvit eval ../shared/models/vit-mnist/vit_mnist.onnx --preset mnist "
              "--data ../shared/data/mnist/t10k-images-idx3-ubyte --json",
              "qvit quantize ../shared/models/vit-mnist/vit_mnist.onnx --preset mnist "
              "--calib ../shared/data/mnist/train5k-images-idx3-ubyte --calib-limit 5000 "
              "--wbits B --abits B [VARIANT FLAGS] -o BUNDLE",
              "qvit eval BUNDLE --data ../shared/data/mnist/t10k-images-idx3-ubyte --json"],
    "fashion": ["zcat /usr/share/datasets/fashion-mnist/t10k-{images-idx3,labels-idx1}-ubyte.gz > TMP/fashion-t10k/...",
                "qvit eval models/fashion-vit/fashion_vit.onnx --preset fashion-mnist "
                "--data TMP/fashion-t10k/t10k-images-idx3-ubyte --json",
                "qvit quantize models/fashion-vit/fashion_vit.onnx --preset fashion-mnist "
                "--calib models/fashion-vit/calib512-images-idx3-ubyte --calib-limit 512 "
                "--wbits B --abits B [VARIANT FLAGS] -o BUNDLE",
                "qvit eval BUNDLE --data TMP/fashion-t10k/t10k-images-idx3-ubyte --json"],
    "dinov2": ["TMP/imagenet-calib32 = symlinks to sorted imagenet-sample/*.JPEG 1..32; "
               "TMP/imagenet-next32 = 33..64",
               "qvit quantize ../shared/models/vit-s14-dinov2/vit_s14_backbone.onnx --preset imagenet "
               "--calib TMP/imagenet-calib32 --calib-limit 32 --wbits B --abits B [VARIANT FLAGS] -o BUNDLE",
               "qvit compare BUNDLE ../shared/models/vit-s14-dinov2/vit_s14_backbone.onnx "
               "--data TMP/imagenet-next32 --json"],
}
variant_flags = {"all": "(defaults: --clip mse, channel clip K=2, reparam, log2 softmax)",
                 "no-channel-clip": "--no-channel-clip", "no-reparam": "--no-reparam",
                 "no-log2-softmax": "--no-log2-softmax", "clip-minmax": "--clip minmax",
                 "clip-percentile": "--clip percentile (0.9999)",
                 "round-nearest": "--weight-round nearest (each weight to its nearest grid point)",
                 "round-gptq": "--weight-round gptq (GPTQ: column by column, error fed forward through the "
                               "inverse calibration Hessian; same grid)",
                 "rotate-hadamard": "--rotate hadamard (each attention head's q, k, v rotated by a Hadamard matrix, "
                                    "undone in the output projection; exact in f32)",
                 "rotate-hadamard-gptq": "--rotate hadamard --weight-round gptq",
                 "act-dynamic": "--act-scale dynamic (qkv/proj/fc1/fc2 inputs: scale and zero point per token "
                                "from the row's range at run time)",
                 "act-dynamic-gptq": "--act-scale dynamic --weight-round gptq",
                 "act-dynamic-rotate-gptq": "--act-scale dynamic --rotate hadamard --weight-round gptq",
                 "attn-dynamic-rotate-gptq": "--act-scale dynamic --attn-scale dynamic --rotate hadamard "
                                             "--weight-round gptq (also Q and K: step per token, V: step per "
                                             "channel, at run time)",
                 "attn-dynamic-rotate-gptq-actorder": "as attn-dynamic-rotate-gptq with --weight-round "
                                                      "gptq-act-order (GPTQ columns by decreasing Hessian diagonal)",
                 "attn-dynamic-rotate-gptq-groups128": "as attn-dynamic-rotate-gptq with --act-groups 128 (a step "
                                                       "per token and group of 128 input features)",
                 "attn-dynamic-rotate-gptq-actorder-groups128": "both of the above"}

out = {"what": "qvit post-training quantization accuracy and ablations (W=A bits)",
       "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
       "machine": cpu, "cores": os.cpu_count(), "commit": commit, "worktree_dirty_at_build": dirty,
       "binary": "target/debug/qvit copied to work_dir/qvit after cargo build", "binary_sha256": binary_sha256,
       "total_seconds": total, "work_dir": work, "script": "scripts/ptq-accuracy.sh",
       "fashion_test_set": fashion_testset, "commands": commands, "variant_flags": variant_flags,
       "runs": runs, "ort_int8_peer": {"source": "bench-results/ort-quantize-static.json", "rows": ort_rows}}
out["subset"] = subset
json.dump(out, open(f"bench-results/{out_name}.json", "w"), indent=1)

# ---- markdown ----
def find(key, variant, bits):
    return next((r for r in runs if r["model"] == key and r["variant"] == variant and r["bits"] == bits), None)

def pct(x):
    return f"{100 * x:.2f}"

def cell_top1(r, fp):
    if r is None:
        return "–"
    if "error" in r:
        return "ERROR: " + r["error"].replace("|", "\\|")
    if r.get("top1") is None:
        return "?"
    d = 100 * (r["top1"] - fp) if fp is not None else None
    return f"{pct(r['top1'])} ({d:+.2f})" if d is not None else pct(r["top1"])

def cell_cos(r):
    if r is None:
        return "–"
    if "error" in r:
        return "ERROR: " + r["error"].replace("|", "\\|")
    return f"{r['output_cosine_mean']:.4f} / {r['output_cosine_min']:.4f}"

md = [f"# qvit post-training quantization accuracy", "",
      f"- date: {out['date']}", f"- machine: {cpu} ({os.cpu_count()} cores, shared; 1 thread per job)",
      f"- commit: {commit}" + (" plus uncommitted changes in the work tree at build time" if dirty else "")
      + f"; binary sha256 {binary_sha256[:16]}… (built once, copied, used for every run)",
      f"- script: `scripts/ptq-accuracy.sh` (debug profile binary `target/debug/qvit`), "
      f"total wall time {total // 60} min {total % 60} s; subset {subset} "
      f"(environment PTQ_MODELS, PTQ_BITS, PTQ_VARIANTS, PTQ_NAME={out_name})",
      "- W=A: `--wbits B --abits B`; patch embedding and head stay at `--edge-bits 8` (default).",
      "- variants: " + "; ".join(f"`{k}` = {v}" for k, v in variant_flags.items()), ""]
for key in ["mnist", "fashion", "dinov2"]:
    if not any(r["model"] == key for r in runs):
        continue
    md += [f"## {titles[key]}", "", "Commands:", "", "```"] + commands[key] + ["```", ""]
    variants = ["all", "no-channel-clip", "no-reparam", "no-log2-softmax", "clip-minmax", "clip-percentile",
                "round-nearest", "round-gptq", "rotate-hadamard", "rotate-hadamard-gptq",
                "act-dynamic", "act-dynamic-gptq", "act-dynamic-rotate-gptq", "attn-dynamic-rotate-gptq",
                "attn-dynamic-rotate-gptq-actorder", "attn-dynamic-rotate-gptq-groups128",
                "attn-dynamic-rotate-gptq-actorder-groups128"]
    variants = [v for v in variants if any(r["model"] == key and r["variant"] == v for r in runs)]
    if key != "dinov2":
        fp = find(key, "fp32", 32)
        fpv = fp.get("top1") if fp and "error" not in fp else None
        md += ["Top-1 % (Δ vs fp32 in points).", "",
               "| variant | fp32 | W8A8 | W6A6 | W4A4 |", "|---|---|---|---|---|"]
        md.append(f"| fp32 (qvit eval on the .onnx) | {cell_top1(fp, None)} | | | |")
        for v in variants:
            md.append(f"| {v} | | " + " | ".join(cell_top1(find(key, v, b), fpv) for b in (8, 6, 4)) + " |")
        for o in ort_rows.get(key, []):
            d = f" ({100 * (o['top1'] - fpv):+.2f})" if fpv is not None else ""
            md.append(f"| {o['name']} (onnxruntime, n={o['n']}) | | {pct(o['top1'])}{d} | | |")
    else:
        md += ["Output cosine vs the f32 ONNX model, mean / min over the 32 images (qvit compare). "
               "The backbone has no classifier, so compare's top1_agreement (kept in the JSON) is not a "
               "class agreement and is not shown.", "",
               "| variant | W8A8 | W6A6 | W4A4 |", "|---|---|---|---|"]
        for v in variants:
            md.append(f"| {v} | " + " | ".join(cell_cos(find(key, v, b)) for b in (8, 6, 4)) + " |")
        for o in ort_rows.get(key, []):
            md.append(f"| {o['name']} (onnxruntime; flattened [257,384] cosine, images 33..200, n={o['n']}) | "
                      f"{o['cos_flat_mean']:.4f} / {o['cos_flat_min']:.4f} | | |")
    md += ["", "Bundle bytes (within size bound?) · calibration seconds:", "",
           "| variant | W8A8 | W6A6 | W4A4 |", "|---|---|---|---|"]
    for v in variants:
        cells = []
        for b in (8, 6, 4):
            r = find(key, v, b)
            if r is None or "error" in r:
                cells.append("–" if r is None else "error")
            else:
                ok = "yes" if r["within_bound"] else f"NO, bound {r['bound_bytes']:.0f}"
                cells.append(f"{r['bundle_bytes']} ({ok}) · {r['calib_seconds']:.1f} s")
        md.append(f"| {v} | " + " | ".join(cells) + " |")
    md.append("")

# ---- reading: facts computed from the numbers above ----
reading = []
def top1(key, v, b):
    r = find(key, v, b)
    return r.get("top1") if r and "error" not in r else None

for key, name in [("mnist", "MNIST ViT"), ("fashion", "Fashion-MNIST ViT")]:
    fp = top1(key, "fp32", 32)
    if fp is None:
        continue
    s = []
    w8 = top1(key, "all", 8)
    if w8 is not None:
        d8 = 100 * (w8 - fp)
        orts = [o["top1"] for o in ort_rows.get(key, []) if o.get("top1") is not None]
        s.append(f"W8A8 `all` is {pct(w8)} % vs fp32 {pct(fp)} % (Δ {d8:+.2f} pt): "
                 f"{'within' if abs(d8) <= 0.1 + 1e-9 else 'NOT within'} 0.1 pt")
        if orts:
            s[-1] += (f"; ORT int8 rows span {pct(min(orts))}..{pct(max(orts))} %, so W8A8 is "
                      + ("not below any ORT row" if w8 >= max(orts) - 1e-9 else
                         "below the best ORT row but not below the worst" if w8 >= min(orts) - 1e-9
                         else "below every ORT row"))
    w6 = top1(key, "all", 6)
    if w6 is not None:
        d6 = 100 * (w6 - fp)
        s.append(f"W6A6 `all` is {pct(w6)} % (Δ {d6:+.2f} pt): {'within' if abs(d6) <= 0.5 + 1e-9 else 'NOT within'} 0.5 pt")
    w4 = top1(key, "all", 4)
    if w4 is not None:
        parts = []
        for v in ["no-channel-clip", "no-reparam", "no-log2-softmax", "clip-minmax", "clip-percentile",
                  "round-nearest", "round-gptq", "rotate-hadamard", "rotate-hadamard-gptq"]:
            x = top1(key, v, 4)
            if x is not None:
                parts.append(f"`{v}` {pct(x)} % ({100 * (x - w4):+.2f} pt vs `all`)")
            elif find(key, v, 4) is not None:
                parts.append(f"`{v}` failed")
        s.append(f"W4A4 `all` is {pct(w4)} % (Δ {100 * (w4 - fp):+.2f} pt vs fp32); " + ", ".join(parts))
    reading.append(f"**{name}.** " + ". ".join(s) + ".")

def cos(v, b):
    r = find("dinov2", v, b)
    return r if r and "error" not in r else None
a8, a6, a4 = cos("all", 8), cos("all", 6), cos("all", 4)
if a4:
    parts = []
    for v in ["no-channel-clip", "no-reparam", "no-log2-softmax", "round-nearest", "round-gptq",
              "rotate-hadamard", "rotate-hadamard-gptq"]:
        x = cos(v, 4)
        if x:
            parts.append(f"`{v}` {x['output_cosine_mean']:.4f} ({x['output_cosine_mean'] - a4['output_cosine_mean']:+.4f})")
        elif find("dinov2", v, 4) is not None:
            parts.append(f"`{v}` failed")
    txt = "**DINOv2 ViT-S/14.** Output cosine mean (min) of `all`: "
    txt += ", ".join(f"W{b}A{b} {r['output_cosine_mean']:.4f} ({r['output_cosine_min']:.4f})"
                     for b, r in ((8, a8), (6, a6), (4, a4)) if r)
    orts = ort_rows.get("dinov2", [])
    if orts:
        txt += (f"; ORT int8 rows (other image set, 168 images) have mean "
                f"{min(o['cos_flat_mean'] for o in orts):.4f}..{max(o['cos_flat_mean'] for o in orts):.4f}")
    txt += ". At W4A4 (cosine mean, change vs `all`): " + ", ".join(parts) + "."
    reading.append(txt)
over = [r for r in runs if r.get("within_bound") is False]
if over:
    reading.append("**Size bound.** Bundles over the size bound: " + "; ".join(
        f"{r['model']} {r['variant']} W{r['bits']}A{r['bits']} {r['bundle_bytes']} B > {r['bound_bytes']:.0f} B"
        for r in over) + ".")
errors = [r for r in runs if "error" in r]
if errors:
    reading.append("**Failures.** " + "; ".join(f"{r['model']} {r['variant']} W{r['bits']}: {r['error']}" for r in errors) + ".")
md += ["## Reading (facts only)", ""] + [p + "\n" for p in reading]
open(f"bench-results/{out_name}.md", "w").write("\n".join(md))
print("\n".join(md))
PY
