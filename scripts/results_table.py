#!/usr/bin/env python3
"""Renders results/README.md from results/runs/<name>.json (written by scripts/reproduce.sh and
scripts/train_and_eval.sh) next to the paper's numbers, and the campaign's status from the
learning curves' JSON (written by cign-curve): the current run's,
results/large_channel_curve.json, and those of earlier runs that were lost,
results/large_channel_curve_runN.json for any N (the current run is the one after the highest
N). Ablation runs (ablation_*) have their own page (scripts/ablation_tables.py). Prints Markdown
to stdout; nothing in results/README.md is edited by hand.

    python3 scripts/results_table.py [ROOT] > results/README.md

ROOT is the folder that holds results/ (the repository by default); a usage error (an option,
more than one ROOT, a ROOT without results/) exits 2 with one line."""
import json
import pathlib
import re
import sys

# The repository, or the folder given as the only argument (which holds results/, as a test's).
if len(sys.argv) > 2 or (len(sys.argv) == 2 and sys.argv[1].startswith("-")):
    print("results_table.py: usage: results_table.py [ROOT] (the folder that holds results/)", file=sys.stderr)
    sys.exit(2)
ROOT = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent
if not (ROOT / "results").is_dir():
    print(f"results_table.py: {ROOT} holds no results/ folder", file=sys.stderr)
    sys.exit(2)
PAPER = {64: 0.1149, 192: 0.6598, 768: 0.2852}
PARAMS = {"large_channel": "5,607,110", "small_filter": "616,005", "small_channel": "462,182",
          "large_filter": "1,916,485", "ign_baseline": "5,550,336", "cign_no_labels": "5,576,704",
          "fashion_large_channel": "5,607,110", "fashion_small_channel": "462,182",
          "cpu_demo": "462,182"}
ORDER = ["large_channel", "small_filter", "small_channel", "large_filter", "ign_baseline", "cign_no_labels",
         "fashion_small_channel", "fashion_large_channel", "cpu_demo"]


def fmt(x, nd=4):
    return "-" if x is None else f"{x:.{nd}f}"


def model_of(name, d):
    """The config a run trained (its name, or the config in its command). Runs named
    ign_baseline whose resolved config has no `architecture = "ign"` were made before the IGN
    network existed, with the config now called cign_no_labels (the CIGN network without
    labels), and are labelled as such."""
    if name == "ign_baseline" and 'architecture = "ign"' not in (d["training"].get("config") or ""):
        return "cign_no_labels"
    if d["training"].get("campaign"):
        return "large_channel"
    if name in PARAMS:
        return name
    m = re.search(r"configs/(\w+)\.toml", d["training"].get("command", ""))
    return m.group(1) if m else name


def command_of(t):
    """The recorded command, with the CIGN_THREADS its run had (train_and_eval.sh records the
    thread count; commands recorded before it added the variable to the command lack it)."""
    command = t.get("command", "?")
    cores = re.search(r"(\d+) cores", t.get("machine", ""))
    threads = t.get("threads")
    if threads and cores and threads != int(cores.group(1)) and "CIGN_THREADS" not in command:
        command = f"CIGN_THREADS={threads} {command}"
    return command


def curve_lines(path, whose):
    """What a campaign run's learning-curve JSON (written by cign-curve) says: its last finished
    epoch and its latest evaluated snapshot."""
    c = json.loads(path.read_text())
    lines = []
    if c.get("validation"):
        v = c["validation"][-1]
        lines.append(f"{whose} last finished epoch in the curve's data: {v['epoch']} (step {v['step']}, "
                     f"validation total {v['total']:.4f}, rec {v['rec']:.4f}).")
    if c.get("points"):
        p = c["points"][-1]
        n = c["settings"]["n_per_class"]
        means = " / ".join(f"{t['mean']:.4f}" for t in p["fid"])
        dims = " / ".join(str(t["dims"]) for t in p["fid"])
        acc = p.get("conditional_accuracy")
        acc_s = f", conditional accuracy {acc * 100:.2f}%" if acc is not None else ""
        lines.append(f"{whose} latest evaluated snapshot, epoch {p['epoch']} at {n} images per class: per-class "
                     f"FID means {means} at {dims}{acc_s}; a cheap protocol, not comparable with the "
                     "paper's row.")
    return lines


def campaign_status():
    """Where the paper-recipe campaign stands, from its learning curves' JSON: the current run's
    (results/large_channel_curve.json) and those of earlier runs that were lost before they
    finished (results/large_channel_curve_runN.json, any N). The current run is numbered one
    after the highest earlier run; before its first curve point it has no JSON."""
    path = ROOT / "results" / "large_channel_curve.json"
    earlier = sorted((int(m.group(1)), p)
                     for p in (ROOT / "results").glob("large_channel_curve_run*.json")
                     if (m := re.fullmatch(r"large_channel_curve_run([1-9]\d*)", p.stem)))
    current = earlier[-1][0] + 1 if earlier else 1
    final = ROOT / "results" / "runs" / "large_channel_campaign.json"
    if final.exists() and "training" in json.loads(final.read_text()):
        lines = ["The paper-recipe campaign (large_channel, batch 256, lr 1e-4, on this CPU) is finished: the",
                 "`large_channel, paper recipe` rows above are its full-protocol evaluations, the weights and",
                 "their card are in [../models/](../models/README.md), its segments, grids and curve in",
                 "[large_channel_campaign.md](large_channel_campaign.md)."]
    elif path.exists() or earlier:
        lines = ["The paper-recipe campaign (large_channel, batch 256, lr 1e-4, 25+ epochs on this CPU) is",
                 "under way; its segments, grids and curve: [large_channel_campaign.md](large_channel_campaign.md)."]
    else:
        return ["The paper-recipe campaign (large_channel, batch 256, lr 1e-4, 25+ epochs on this CPU)",
                "has not started; its page: [large_channel_campaign.md](large_channel_campaign.md)."]
    if earlier:
        numbers = [str(n) for n, _ in earlier]
        lost = (f"run {numbers[0]} was" if len(numbers) == 1
                else f"runs {', '.join(numbers[:-1])} and {numbers[-1]} were")
        lines.append(f"The current run is run {current}; {lost} lost (below).")
    if path.exists():
        lines += curve_lines(path, "The current run's")
    elif earlier:
        lines.append(f"Run {current} has started (from step 0) and has no finished curve point yet.")
    for n, run in earlier:
        lines.append(f"Run {n} of the campaign lost its run directory, checkpoints included, before it finished, "
                     f"and run {n + 1} started again from step 0 "
                     f"([large_channel_campaign_run{n}.md](large_channel_campaign_run{n}.md)).")
        lines += curve_lines(run, f"Run {n}'s")
    return lines


def main():
    runs = {p.stem: json.loads(p.read_text())
            for p in sorted((ROOT / "results" / "runs").glob("*.json"))
            if not p.stem.startswith(("ablation_", "speed_")) and "training" in json.loads(p.read_text())}
    out = ["# Results", "",
           "Every row comes from a real run: its command, run directory, resolved config, commit, machine",
           "and wall times are in `results/runs/<name>.json`, its evaluation in `results/runs/<name>.md`.",
           "The paper trained up to 100 epochs on a GPU. Rows marked *short* were trained for minutes on a",
           "2-core CPU: they are **not** the paper's setting and show the pipeline and early training, not",
           "the model's quality. `scripts/reproduce.sh MINUTES [N_PER_CLASS] [REAL_LIMIT] [MODELS...]`",
           "makes the rows (the `cpu_demo` rows: `scripts/train_and_eval.sh`, as their commands say); this",
           "page is written by `scripts/results_table.py`.",
           "Ablations: [ablations.md](ablations.md). Speed against the authors' code:",
           "[performance.md](performance.md).", "",
           "| run | params | dataset | trained | device | images (generated per class / test images of all classes) | FID64 mean | FID192 mean | FID768 mean | all-class FID768 | cond. acc. | commit | command |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    out.append(f"| large_channel (paper) | 5,607,110 | MNIST | up to 100 epochs (best at 24) | GPU | not stated | "
               f"{PAPER[64]} | {PAPER[192]} | {PAPER[768]} | - | - | - | - |")
    campaign = sorted(m for m in runs if runs[m]["training"].get("campaign"))
    names = (campaign + [m for m in ORDER if m in runs]
             + sorted(m for m in runs if m not in ORDER and m not in campaign))
    for name in names:
        d = runs[name]
        r = d["report"]
        taps = {t["dims"]: t for t in r["taps"]}
        mean = lambda k: taps[k]["per_class"]["mean"] if k in taps and taps[k].get("per_class") else None
        allc = (taps.get(768) or {}).get("fid")
        acc = r.get("conditional_accuracy")
        balance = d.get("class_balance")
        t = d.get("training", {})
        if t.get("campaign"):
            if t.get("wall"):  # the segments' total: steps, epochs, segments, wall and trainer time
                trained = f"paper recipe (batch {batch_of(t)}): {t['wall']}; this model: {t['model_position']}"
            else:
                trained = (f"paper recipe: {t['epochs_trained']} epochs = {t['steps_trained']} steps (batch "
                           f"{batch_of(t)}), {t['trainer_hours']:.1f} h by the trainer's clock; this model: "
                           f"{t['model_position']}")
            device = f"CPU ({t.get('machine', '?')})"  # where it was evaluated and trained
        else:
            trained = (f"short: {t.get('steps', '?')} steps (batch {batch_of(t)}), "
                       f"{t.get('wall_seconds', 0) / 60:.1f} min")
            device = f"CPU ({t.get('machine', '?')}, {t.get('threads', '?')} thread(s))"
        images = f"{d.get('n_per_class', '?')} / {r.get('n_real', '?')} test"
        if acc:
            acc_s = f"{acc['overall'] * 100:.1f}%"
        elif balance:
            acc_s = "unconditional; classes " + "/".join(f"{b * 100:.0f}" for b in balance) + "%"
        else:
            acc_s = "-"
        model = model_of(name, d)
        label = (f"{name} (old config = {model}, not the IGN network)"
                 if name == "ign_baseline" and model == "cign_no_labels" else name)
        if t.get("campaign"):
            label = ("large_channel, paper recipe: best by validation" if name == "large_channel_campaign"
                     else f"large_channel, paper recipe: epoch {t['model_epoch']} snapshot")
        out.append(
            f"| {label} | {PARAMS.get(model, '?')} | {r.get('dataset', '?')} | {trained} | {device} | {images} | "
            f"{fmt(mean(64))} | {fmt(mean(192))} | {fmt(mean(768))} | {fmt(allc)} | {acc_s} | "
            f"{t.get('commit', '?')} | `{command_of(t)}` |")
    out += ["", "Metrics (`cign-eval`): per-class FID of N generated images per class against the test images",
            "of that class at pytorch-fid's 64/192/768 taps (mean over the 10 classes; std, min and max are",
            "in each run's `.md`), all-class FID768, and conditional accuracy (the share of generated images",
            "our classifier, `cign-classifier`, puts in the requested class). N and the reference size are",
            "in each JSON (`n_per_class`, `report.n_real`). The paper does not state how many images per",
            "class it generated; FID is biased upwards for small sets, so values made with different",
            "numbers of images are not comparable, and short rows are not comparable with the paper's.",
            "What we assume about the authors' protocol and effective batch: [protocol.md](protocol.md).",
            "",
            "`ign_baseline` is now the IGN network of the code the authors modified (PapersReimplementations",
            "`src/cv/ign/`, 5,550,336 parameters, `configs/ign_baseline.toml`); the rows above named",
            "`ign_baseline` were made before that with today's `cign_no_labels` (the CIGN network without",
            "labels) and are labelled so. Unconditional models are compared by all-class FID against",
            "CIGN's all-class FID; per-class means do not apply.",
            "",
            *campaign_status(),
            "",
            "Sample grids: `results/<run>.png` (one row per class; each column one noise, shared by every",
            "row); loss curves: `results/<run>.loss.png`.", "",
            "`cpu_demo` (and `fashion_cpu_demo`, the same on Fashion-MNIST) is the small channel model with batch 32 and learning rate 1e-3",
            "(`configs/cpu_demo.toml`), **not** the paper's settings: with the paper's batch 256 and",
            "lr 1e-4 a few minutes on a CPU leave every model near its initial output (see the",
            "paper-setting rows' grids), while this setting makes thousands of steps in tens of minutes",
            "(see each row's grid and conditional accuracy; chance is 10%). The ablations use the",
            "same setting.", ""]
    print("\n".join(out))


def batch_of(t):
    m = re.search(r"batch_size\s*=\s*(\d+)", t.get("config") or "")
    return m.group(1) if m else "?"


if __name__ == "__main__":
    main()
