#!/usr/bin/env python3
"""Summarises scripts/mixed-precision.sh runs (WORK: one run folder, or several joined by ':',
e.g. a run of the small models and a run of the ViT-S) into bench-results/mixed-precision.{json,md}.

Top-1 (classifiers) or mean token cosine (ViT-S) per model, budget and allocator; random is
reported as mean ± standard deviation over its seeds, with min and max. Per run it also keeps
the achieved average bits, bundle size, and the seconds spent in relevance, sensitivity and
allocation (from the quantize report)."""
import datetime
import json
import os
import statistics
import subprocess

works = os.environ["WORK"].split(":")


def read(path, default=None):
    return open(path).read() if os.path.exists(path) else default


def jload(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return None


runs = []
# A later folder's run of the same model, budget and allocator replaces an earlier one.
lines = {}
for w in works:
    for l in open(f"{w}/manifest.tsv"):
        key, budget, alloc = l.split("\t")[:3]
        lines[(key, budget, alloc)] = (w, l)
for work, line in lines.values():
    key, budget, alloc, id_, kind = line.rstrip("\n").split("\t")
    commit = (read(f"{work}/commit", "") or "").strip() + (" (dirty)" if os.path.exists(f"{work}/dirty") else "")
    r = {"model": key, "budget": float(budget), "allocator": alloc, "kind": kind, "commit": commit}
    r["quantize_command"] = (read(f"{work}/{id_}.quantize.cmd", "") or "").strip()
    r["quantize_wall_seconds"] = float(read(f"{work}/{id_}.quantize.secs", "nan"))
    failed = [s for s in ("quantize", "measure") if os.path.exists(f"{work}/{id_}.{s}.failed")]
    if failed:
        r["error"] = f"{failed[0]} failed: " + (read(f"{work}/{id_}.{failed[0]}.err", "") or "")[-300:]
        runs.append(r)
        continue
    rep = jload(f"{work}/{id_}.report.json") or {}
    mixed = rep.get("mixed", {})
    r.update({
        "achieved_wbits": mixed.get("achieved_wbits"),
        "achieved_abits": mixed.get("achieved_abits"),
        "exact": mixed.get("exact"),
        "relevance_seconds": mixed.get("relevance_seconds"),
        "sensitivity_seconds": mixed.get("sensitivity_seconds"),
        "allocation_seconds": mixed.get("allocation_seconds"),
        "selection_seconds": mixed.get("selection_seconds"),
        "weights_from": mixed.get("weights_from"),
        "activations_from": mixed.get("activations_from"),
        "selection_images": mixed.get("selection_images"),
        "trials": mixed.get("trials"),
        "advantage": mixed.get("advantage"),
        "bundle_bytes": (rep.get("sizes") or {}).get("bundle", {}).get("total"),
        "wbits_per_layer": {l["name"]: l["wbits"] for l in mixed.get("layers", []) if l["wbits"]},
        "abits_per_layer": {l["name"]: l["abits"] for l in mixed.get("layers", [])},
    })
    m = jload(f"{work}/{id_}.measure.out") or {}
    if kind == "eval":
        r.update({"top1": m.get("top1"), "n": m.get("n")})
    else:
        r.update({"cosine_mean": m.get("output_cosine_mean"), "cosine_min": m.get("output_cosine_min"),
                  "n": m.get("n")})
    runs.append(r)


# KEEP: an earlier bench-results/mixed-precision.json whose runs stand where no folder reran the
# same model, budget and allocator (e.g. the slow ViT-S baselines a change did not touch); each
# keeps its own commit, and the Markdown lists them.
kept = []
if os.environ.get("KEEP"):
    earlier = jload(os.environ["KEEP"]) or {}
    done = {(r["model"], r["budget"], r["allocator"]) for r in runs}
    kept = [r for r in earlier.get("runs", []) if (r["model"], r["budget"], r["allocator"]) not in done]
    runs += kept


def metric(r):
    return r.get("top1") if r["kind"] == "eval" else r.get("cosine_mean")


cpu = subprocess.run(["grep", "-m1", "model name", "/proc/cpuinfo"], capture_output=True, text=True).stdout
out = {
    "date": datetime.date.today().isoformat(),
    "commits": sorted({r["commit"] for r in runs}),
    "machine": cpu.split(":", 1)[-1].strip(),
    "runs": runs,
}
json.dump(out, open("bench-results/mixed-precision.json", "w"), indent=1)

md = ["# Mixed precision: lrp against uniform, random and sensitivity", "",
      f"Commits {', '.join(out['commits'])}, {out['date']}, {out['machine']}. Produced by "
      "`scripts/mixed-precision.sh`; each run's commit is in the JSON. Seconds are wall time on a "
      "shared 2-core machine.", "",
      "Top-1 % on 10 000 test images (MNIST, Fashion-MNIST) or mean token cosine against f32 on 64 "
      "held-out ImageNet images (ViT-S/14; 64 others calibrate). Budget = average bits of the body layers, weights "
      "(parameter-weighted) and activations (element-weighted); patch embedding and head stay at 8 "
      "bits. random: mean ± std over 5 seeds [min, max].", "",
      "| model | budget | uniform | random (5 seeds) | sensitivity | lrp | lrp − uniform (pt; cosine × 100) | relevance s | sensitivity s |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
for model in ["mnist", "fashion", "dinov2"]:
    for budget in sorted({r["budget"] for r in runs if r["model"] == model}, reverse=True):
        sel = [r for r in runs if r["model"] == model and r["budget"] == budget]
        scale = 100.0 if sel and sel[0]["kind"] == "eval" else 1.0
        fmt = (lambda v: f"{v * scale:.2f}") if scale == 100.0 else (lambda v: f"{v:.4f}")

        def get(a):
            vals = [metric(r) for r in sel if r["allocator"] == a and metric(r) is not None]
            return vals[0] if vals else None
        rnd = [metric(r) for r in sel if r["allocator"].startswith("random") and metric(r) is not None]
        rnd_s = "–"
        if rnd:
            sd = statistics.pstdev(rnd) if len(rnd) > 1 else 0.0
            rnd_s = f"{fmt(statistics.mean(rnd))} ± {fmt(sd)} [{fmt(min(rnd))}, {fmt(max(rnd))}]"
        u, s, l = get("uniform"), get("sensitivity"), get("lrp")
        diff = f"{(l - u) * 100:+.2f}" if u is not None and l is not None else "–"
        secs = {a: next((r.get(f"{a}_seconds") for r in sel if r["allocator"] == t), None)
                for a, t in [("relevance", "lrp"), ("sensitivity", "sensitivity")]}
        md.append(f"| {model} | {budget:g} | {fmt(u) if u is not None else '–'} | {rnd_s} | "
                  f"{fmt(s) if s is not None else '–'} | {fmt(l) if l is not None else '–'} | {diff} | "
                  f"{secs['relevance'] or 0:.1f} | {secs['sensitivity'] or 0:.1f} |")
md += ["", "Where the bits came from: lrp and random propose one allocation per γ (exponent on their "
       "scores) for weights and for activations; every pair, and uniform, runs end to end on the "
       "calibration images, and the one closest to f32 wins (lowest mean KL divergence of the class "
       "probabilities for the classifiers, highest mean output cosine for the ViT-S) if its paired "
       "per-image edge over uniform exceeds two standard errors, else uniform. sensitivity "
       "proposes its one allocation and uniform.", "",
       "| model | budget | allocator | weights from | activations from | calibration fidelity: chosen | uniform | best's edge / s.e. | trials | selection s |",
       "|---|---:|---|---|---|---:|---:|---:|---:|---:|"]
def edge(a):
    return "–" if not a else f"{a['mean'] / max(a['standard_error'], 1e-300):.1f}" + ("" if a["kept"] else " (uniform kept)")


for r in sorted(runs, key=lambda r: (["mnist", "fashion", "dinov2"].index(r["model"]) if r["model"] in ["mnist", "fashion", "dinov2"] else 9, -r["budget"], r["allocator"])):
    trials = r.get("trials") or []
    if not trials:
        continue
    key = "kl" if r["kind"] == "eval" else "cosine"
    show = (lambda v: f"KL {v:.2e}") if key == "kl" else (lambda v: f"cos {v:.4f}")
    chosen = next((t[key] for t in trials if t["weights"] == r["weights_from"] and t["activations"] == r["activations_from"]), None)
    uni = next((t[key] for t in trials if "uniform" in t["weights"].split(" = ") and "uniform" in t["activations"].split(" = ")), None)
    md.append(f"| {r['model']} | {r['budget']:g} | {r['allocator']} | {r['weights_from']} | {r['activations_from']} | "
              f"{show(chosen)} | {show(uni)} | {edge(r.get('advantage'))} | {len(trials)} | {r.get('selection_seconds') or 0:.1f} |")
errors = [r for r in runs if "error" in r]
if errors:
    md += ["", "Failed runs:"] + [f"- {r['model']} {r['budget']} {r['allocator']}: {r['error'][:200]}" for r in errors]
if kept:
    md += ["", "Carried over from an earlier run (not rerun; commit per row): " + "; ".join(
        f"{r['model']} {r['budget']:g} {r['allocator']} ({r['commit']})" for r in kept) + "."]
md += ["", "Achieved average bits never exceed the budget (weights / activations per run in the JSON)."]
open("bench-results/mixed-precision.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
