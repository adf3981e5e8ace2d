#!/usr/bin/env python3
"""The model card of a shipped weights file (models/README.md), from the run directory and the
two full-protocol evaluations of scripts/campaign_finish.sh, written to --out. It also adds a
"training" block to both evaluation JSONs (as scripts/train_and_eval.sh does for its runs), so
scripts/results_table.py can put them next to the paper's row from committed files. Everything
is computed before anything is written; each file is written whole (temporary file, rename).

  python3 scripts/model_card.py --run RUN_DIR --weights FILE --best BEST.json --last LAST.json \\
      --commit COMMIT --out CARD.md [--eval-seconds S] [--wall "$(scripts/campaign_segments.py --total)"]
"""
import argparse
import hashlib
import json
import pathlib
import re
import sys

import machine_info

PAPER = {64: 0.1149, 192: 0.6598, 768: 0.2852}
SEGMENTS = "results/large_channel_campaign.md"


def records(run):
    path = pathlib.Path(run) / "metrics.jsonl"
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line cut by a kill
    return out


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_whole(path, text):
    tmp = pathlib.Path(f"{path}.part")
    tmp.write_text(text)
    tmp.replace(path)


def position(state):
    """Where in training a loop state is, epochs counted from 1 (as the trainer's log says)."""
    if state.get("batch_in_epoch"):
        return f"epoch {state['epoch'] + 1}, batch {state['batch_in_epoch']}, step {state['step']}"
    return f"end of epoch {state['epoch']}, step {state['step']}"


def fmt(x, nd=4):
    return "-" if x is None else f"{x:.{nd}f}"


def training_block(run, metrics, state, commit, config, wall=None):
    """What results_table.py needs about a campaign evaluation; `wall` is the total of the
    campaign's segments (steps, epochs, segments, wall time), as scripts/campaign_segments.py
    --total prints it."""
    last = max(metrics, key=lambda r: r.get("step", 0))
    return {
        "wall": wall,
        "run": str(run),
        "campaign": True,
        "config": config,
        "steps_trained": last.get("step"),
        "epochs_trained": max(r.get("epoch", 0) for r in metrics),
        "trainer_hours": last.get("seconds", 0) / 3600,
        "model_step": state.get("step"),
        "model_epoch": state.get("epoch"),
        "model_position": position(state),
        "commit": commit,
        "command": f"the segments in {SEGMENTS}, then scripts/campaign_finish.sh",
        "machine": f"evaluated on {machine_info.describe()}; trained as in {SEGMENTS}",
    }


def eval_rows(label, d):
    """Markdown rows of one evaluation: per-class FID stats by tap (not at 2048, where about
    1,000 images per class cannot fill a 2048 x 2048 covariance), all-class FID."""
    r = d["report"]
    rows = []
    for t in r["taps"]:
        pc = (t.get("per_class") or {}) if t["dims"] in PAPER else {}
        paper = PAPER.get(t["dims"])
        rows.append(f"| {label} | {t['dims']} | {fmt(pc.get('mean'))} | {fmt(pc.get('std'))} | "
                    f"{fmt(pc.get('min'))} | {fmt(pc.get('max'))} | {fmt(t.get('fid'))} | "
                    f"{paper if paper is not None else '-'} |")
    return rows


def verdict(d):
    """Ours against the paper's per-class FID means, tap by tap, in words."""
    taps = {t["dims"]: t for t in d["report"]["taps"]}
    parts = []
    for dims, paper in PAPER.items():
        t = taps.get(dims)
        if not t or not t.get("per_class"):
            continue
        ours = t["per_class"]["mean"]
        if ours is None:
            parts.append(f"{dims}: not finite")
            continue
        word = "worse than" if ours > paper else "better than or equal to"
        parts.append(f"{dims}: {ours:.4f}, {word} the paper's {paper} ({ours / paper:.2f}x)")
    return "; ".join(parts)


def prdc_line(d):
    p = d["report"].get("prdc")
    if not p:
        return "not computed"
    a = p["all_class"]
    s = (f"all classes: precision {a['precision']:.4f}, recall {a['recall']:.4f}, density "
         f"{a['density']:.4f}, coverage {a['coverage']:.4f}")
    if p.get("per_class"):
        m = p["per_class"]["mean"]
        s += (f"; mean over classes: precision {m['precision']:.4f}, recall {m['recall']:.4f}, "
              f"density {m['density']:.4f}, coverage {m['coverage']:.4f}")
    return f"{s} ({p['dims']} features, k = {p['nearest_k']})"


def accuracy_line(d):
    a = d["report"].get("conditional_accuracy")
    if not a:
        return "not computed (no cached classifier)"
    per = ", ".join(f"{c['class']} {c['accuracy'] * 100:.1f}%" for c in a["per_class"])
    return f"{a['overall'] * 100:.2f}% ({per})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--best", required=True)
    ap.add_argument("--last", required=True)
    ap.add_argument("--commit", required=True)
    ap.add_argument("--out", required=True, help="the card (Markdown)")
    ap.add_argument("--eval-seconds", type=float)
    ap.add_argument("--wall", help="the segments' total (scripts/campaign_segments.py --total)")
    a = ap.parse_args()
    run = pathlib.Path(a.run)
    metrics = records(run)
    if not metrics:
        sys.exit(f"model_card: {run}/metrics.jsonl has no records")
    config = (run / "config.toml").read_text()
    best = json.loads(pathlib.Path(a.best).read_text())
    last = json.loads(pathlib.Path(a.last).read_text())
    state = best.get("checkpoint_state")
    if not state:
        sys.exit(f"model_card: {a.best} has no checkpoint_state (evaluate the run's best checkpoint with cign-eval --run)")
    m = re.search(r"epoch-(\d+)\.safetensors", last.get("checkpoint", ""))
    last_epoch = int(m.group(1)) if m else None
    last_step = next((r["step"] for r in metrics
                      if r.get("kind") == "validation" and r.get("epoch") == last_epoch
                      and r.get("batch_in_epoch", 0) == 0), None)

    best["training"] = training_block(run, metrics, state, a.commit, config, a.wall)
    last["training"] = training_block(
        run, metrics, {"step": last_step, "epoch": last_epoch, "batch_in_epoch": 0}, a.commit, config,
        a.wall)

    t = best["training"]
    weights = pathlib.Path(a.weights)
    size_mb = weights.stat().st_size / 1e6
    n = best["n_per_class"]
    r = best["report"]
    out = [
        "# large_channel_mnist.safetensors",
        "",
        "The paper's large channel-conditioning CIGN (`configs/large_channel.toml`: (L, I, E) =",
        "(64, 128, 5), 5,607,110 parameters) trained on MNIST at the paper's recipe (batch 256, lr 1e-4,",
        "AdamW betas (0.5, 0.999), weight decay 0.01, k = 9 mismatched labels per real image, fp32,",
        "seed 0). The file holds the model only, in float32, under the authors' state-dict names.",
        "",
        "```sh",
        "cargo run --release -p cign-train --bin cign-sample -- \\",
        "    --weights models/large_channel_mnist.safetensors --config configs/large_channel.toml \\",
        "    --label all --n 8 --out grid.png",
        "```",
        "",
        "| | |",
        "|---|---|",
        f"| file | `models/large_channel_mnist.safetensors`, {size_mb:.1f} MB |",
        f"| SHA-256 | `{sha256(weights)}` |",
        f"| model | the best-by-validation checkpoint: {t['model_position']} "
        f"(validation total {fmt(state.get('best_val_loss'))}) |",
        f"| training | {t['steps_trained']} steps ({t['epochs_trained']} epochs completed), "
        f"{t['trainer_hours']:.2f} h by the trainer's clock, resumed in segments ({SEGMENTS}) |",
        *([f"| wall time | {a.wall} (results/large_channel_segments.md) |"] if a.wall else []),
        f"| machine | {t['machine']} |",
        f"| commit | {a.commit} (evaluation, export, this card) |",
        f"| run directory | `{run}` (outside the clone) |",
        "",
        f"## Evaluation ({n} seeded images per class, seed {best['seed']}, against the "
        f"{r['n_real']} test images; {r['n_generated']} generated)",
        "",
        "Per-class FID: the generated images of class c against the test images of class c, at",
        "pytorch-fid's taps; mean, std, min and max over the 10 classes. All-class: every generated",
        "image against every test image (the only figure at 2048 features: about 1,000 images per",
        "class cannot fill a 2048 x 2048 covariance).",
        "",
        "| model | tap | per-class mean | std | min | max | all-class FID | paper's per-class mean |",
        "|---|---|---|---|---|---|---|---|",
        *eval_rows(f"best ({t['model_position']})", best),
        *eval_rows(f"last snapshot (epoch {last_epoch})", last),
        "",
        f"- Against the paper (best checkpoint): {verdict(best)}.",
        f"- Conditional accuracy, best: {accuracy_line(best)}; last snapshot: {accuracy_line(last)}.",
        f"- Precision/recall/density/coverage, best: {prdc_line(best)}.",
        f"- Last snapshot: {prdc_line(last)}.",
        "",
        "Made by `scripts/campaign_finish.sh` (`cign-eval --run RUN --checkpoint best --n-per-class "
        f"{n} ...`, then the same with `--weights` on the last snapshot"
        + (f"; {a.eval_seconds / 60:.0f} min for both" if a.eval_seconds else "") + "); the raw reports are "
        "`results/runs/large_channel_campaign.json` and `results/runs/large_channel_campaign_epoch*.json`.",
        "",
    ]
    # Everything computed: write the card, then the JSONs' training blocks (results_table.py
    # calls the campaign finished once they exist).
    write_whole(a.out, "\n".join(out) + "\n")
    for path, d in [(a.best, best), (a.last, last)]:
        write_whole(path, json.dumps(d, indent=1))


if __name__ == "__main__":
    main()
