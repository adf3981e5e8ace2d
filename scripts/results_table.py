#!/usr/bin/env python3
"""Renders results/README.md from results/runs/<model>.json (written by scripts/reproduce.sh
and cign-eval) next to the paper's numbers. Prints Markdown to stdout."""
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAPER = {"large_channel": {64: 0.1149, 192: 0.6598, 768: 0.2852}}
PARAMS = {"large_channel": "5,607,110", "small_filter": "616,005", "small_channel": "462,182",
          "large_filter": "1,916,485", "ign_baseline": "5,576,704",
          "fashion_large_channel": "5,607,110"}
ORDER = ["large_channel", "small_filter", "small_channel", "large_filter", "ign_baseline",
         "fashion_large_channel"]


def fmt(x, nd=4):
    return "-" if x is None else f"{x:.{nd}f}"


def main():
    runs = {p.stem: json.loads(p.read_text()) for p in sorted((ROOT / "results" / "runs").glob("*.json"))}
    out = ["# Results", "",
           "Every row comes from a real run (its commands, run directory, commit and wall time are in",
           "`results/runs/<model>.json`; `scripts/reproduce.sh` makes such rows). The paper",
           "trained up to 100 epochs on a GPU; rows marked *short* were trained for minutes on a",
           "2-core CPU and are **not** the paper's setting: they show the pipeline, not the model's",
           "quality.", "",
           "| model | params | trained | device | FID64 mean | FID192 mean | FID768 mean | all-class FID768 | cond. acc. | commit | command |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    paper = PAPER["large_channel"]
    out.append(f"| large_channel (paper) | 5,607,110 | up to 100 epochs | GPU | {paper[64]} | {paper[192]} | {paper[768]} | - | - | - | - |")
    for name in [m for m in ORDER if m in runs] + [m for m in runs if m not in ORDER]:
        d = runs[name]
        r = d["report"]
        taps = {t["dims"]: t for t in r["taps"]}
        mean = lambda k: (taps.get(k) or {}).get("per_class") and taps[k]["per_class"]["mean"]
        allc = (taps.get(768) or {}).get("fid")
        acc = r.get("conditional_accuracy")
        t = d.get("training", {})
        trained = f"short: {t.get('steps', '?')} steps, {t.get('wall_seconds', 0) / 60:.0f} min"
        out.append(
            f"| {name} | {PARAMS.get(name, '?')} | {trained} | CPU (2 cores) | {fmt(mean(64))} | {fmt(mean(192))} | "
            f"{fmt(mean(768))} | {fmt(allc)} | {fmt(acc and acc['overall'] * 100, 1)}{'%' if acc else ''} | "
            f"{t.get('commit', '?')} | `{t.get('command', '?')}` |")
    out += ["", "Metrics: per-class FID of N generated images per class against the test images of that",
            "class, at pytorch-fid's 64/192/768 taps (`cign-eval`); N and the reference size are in each",
            "JSON (`n_per_class`, `report.n_real`): with fewer images than the paper's 1,000 per class",
            "FID is biased upwards, so short rows are not comparable with the paper's numbers. Sample grids: `results/<model>.png` (one row per",
            "class, the same noise in every column); loss curves: `results/<model>.loss.png`.", ""]
    print("\n".join(out))


if __name__ == "__main__":
    main()
