#!/usr/bin/env python3
"""Renders results/ablations.md from results/runs/ablation_*.json (written by
scripts/ablations.sh through scripts/train_and_eval.sh). Prints Markdown to stdout."""
import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def load(name):
    p = ROOT / "results" / "runs" / f"ablation_{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def final_validation(name, d):
    """The run's last validation: from its metrics.jsonl while the run directory exists, else
    from the training log committed beside its JSON (results/runs/ablation_NAME.train.log), so
    the page can be rendered again from a clone."""
    path = ROOT / d["training"]["run"] / "metrics.jsonl"
    if path.exists():
        rows = [json.loads(l) for l in path.read_text().splitlines() if '"validation"' in l]
        return rows[-1] if rows else None
    log = ROOT / "results" / "runs" / f"ablation_{name}.train.log"
    if not log.exists():
        return None
    found = re.findall(r"validation at step (\d+)[^:]*: total ([-\d.]+) \(rec ([-\d.]+)",
                       re.sub(r"\x1b\[[0-9;]*m", "", log.read_text()))
    if not found:
        return None
    step, total, rec = found[-1]
    return {"step": int(step), "total": float(total), "rec": float(rec)}


def fmt(x, nd=4):
    return "-" if x is None else f"{x:.{nd}f}"


def cells(name, d):
    r = d["report"]
    taps = {t["dims"]: t for t in r["taps"]}
    mean = lambda k: taps[k]["per_class"]["mean"] if k in taps and taps[k].get("per_class") else None
    acc = r.get("conditional_accuracy")
    t = d["training"]
    v = final_validation(name, d)
    return [f"{t['steps']}", f"{t['wall_seconds'] / 60:.1f} min", fmt(mean(64)), fmt(mean(192)), fmt(mean(768)),
            fmt((taps.get(768) or {}).get("fid")), f"{acc['overall'] * 100:.1f}%" if acc else "-",
            fmt(v and v["rec"]), t["commit"]]


HEAD = ("| steps | training time | FID64 mean | FID192 mean | FID768 mean | all-class FID768 | "
        "cond. acc. | val. rec | commit |")
SEP = "|---|---|---|---|---|---|---|---|---|"


def main():
    runs = {n: load(n) for n in ["k0", "k1", "k3", "k9", "clamp", "clamp_per_sample"]}
    any_run = next((d for d in runs.values() if d), None)
    out = ["# Ablations (small channel model, equal training time)", ""]
    if any_run is None:
        out.append("No ablation runs yet: `scripts/ablations.sh MINUTES [N_PER_CLASS] [REAL_LIMIT]`.")
        print("\n".join(out))
        return
    t = any_run["training"]
    out += [
        "Questions the paper leaves open, answered on the small channel model (16, 128, 5), every run",
        f"with the same training-time budget ({t['time_budget_minutes']:g} min) on the same machine "
        f"({t['machine']}, {t['threads']} torch thread(s)).",
        "Command (each run's exact line, run directory and resolved config are in",
        "`results/runs/ablation_<run>.json`):", "", f"    {t['command'].rsplit(' (run', 1)[0]}", "",
        "Options given with `--set` apply to every run alike; this one shortens the step (batch 32",
        "instead of the paper's 256) and raises the learning rate (1e-3 instead of 1e-4) so that",
        "minutes of CPU training move the model at all. Everything else is the paper's setting.", "",
        f"Metrics by `cign-eval`: {any_run['n_per_class']} generated images per class against "
        f"{any_run['report']['n_real']} test images;",
        "per-class FID at pytorch-fid's 64/192/768 taps (mean over the 10 classes), all-class FID768,",
        "conditional accuracy (share of generated images our MNIST classifier puts in the requested",
        "class) and the final validation reconstruction term (20 x mean absolute error of f(x, y) vs x",
        "on test images). With so few images FID is biased upwards and noisy; the runs are minutes",
        "long, not the paper's 100 epochs: read the tables as early-training comparisons only.", ""]
    out += ["## Mismatched pairs per real image (k), tightness clamp off", "",
            "k = 9 is the paper's setting (every wrong label once); k = 0 drops the mismatch terms, so",
            "the model is conditioned only through the reconstruction and noise terms.", "",
            "| k | " + HEAD[2:], "|---" + SEP]
    for k in ["k0", "k1", "k3", "k9"]:
        d = runs[k]
        out.append(f"| {k[1:]} | " + (" | ".join(cells(k, d)) if d else " | ".join(["not run"] + ["-"] * 8)) + " |")
    ks = {k: runs[k] for k in ["k0", "k1", "k3", "k9"] if runs[k]}
    if len(ks) >= 2:
        acc = {k: d["report"]["conditional_accuracy"]["overall"] for k, d in ks.items()
               if d["report"].get("conditional_accuracy")}
        steps = {k: d["training"]["steps"] for k, d in ks.items()}
        best = max(acc, key=acc.get) if acc else None
        lo, hi = min(steps, key=steps.get), max(steps, key=steps.get)
        out += ["", "Reading (computed from the table): at equal training time the runs also differ in how",
                f"many steps they get: a step with k mismatched pairs per image runs 4 + 3k image-passes per",
                f"real image, so k = {hi[1:]} made {steps[hi]} steps and k = {lo[1:]} {steps[lo]}."
                + (f" The highest conditional accuracy is at k = {best[1:]} ({acc[best] * 100:.1f}%)." if best else ""),
                "Whether the mismatch terms help at equal *steps*, or late in training, is not answered here."]
    out += ["", "## Tightness clamp (k = 9)", "",
            "Off: the authors' loss. Batch: the smooth clamp `tanh(L_t / (a L_rec)) a L_rec`",
            "(a = 1.5, both tightness terms) applied once to the batch-mean distance",
            "(`loss.tight_clamp = \"batch\"`; runs made before the option had three forms say",
            "`tight_clamp = true`, the same). Per sample: the IGN follow-ups' form, each sample's",
            "distance clamped before averaging (`loss.tight_clamp = \"per_sample\"`).", "",
            "| clamp | " + HEAD[2:], "|---" + SEP]
    for name, label in [("k9", "off"), ("clamp", "batch"), ("clamp_per_sample", "per sample")]:
        d = runs[name]
        out.append(f"| {label} | " + (" | ".join(cells(name, d)) if d else " | ".join(["not run"] + ["-"] * 8)) + " |")
    out += ["", "Sample grids (one row per class; each column one noise, shared by every row): "
            + ", ".join(f"`results/ablation_{n}.png`" for n, d in runs.items() if d) + "."]
    print("\n".join(out))


if __name__ == "__main__":
    main()
