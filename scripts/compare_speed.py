#!/usr/bin/env python3
"""Interleaved timing of one training step: the authors' PyTorch CIGN against cign.

For each model, REPS rounds; each round runs the authors' step timer
(scripts/authors_step_time.py, their modules from --authors) and then ours
(`cign-train` example step_time, release build), each timing STEPS steps after WARMUP, in
fresh processes with the same thread count. Reports the median step time of each, the ratio,
and writes the rows as JSON (--json) and Markdown (stdout).

    python scripts/compare_speed.py --authors /path/to/conditional-idempotent-generative-networks \
        --python /path/to/venv-with-torch-2.11-and-pytorch-lightning/bin/python \
        --models small_channel,large_channel,small_filter --batch 256 --threads 2 --reps 3
"""
import argparse
import json
import pathlib
import platform
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
# (conditioning, latent, intermediate, embedding) of each preset.
MODELS = {
    "small_channel": ("channel", 16, 128, 5),
    "large_channel": ("channel", 64, 128, 5),
    "small_filter": ("filter", 64, 128, 5),
    "large_filter": ("filter", 128, 128, 5),
}


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--authors", required=True)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--models", default="small_channel,large_channel,small_filter")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--json")
    p.add_argument("--ours-bin", help="an already built step_time example (default: build --release)")
    a = p.parse_args()

    if a.ours_bin:
        ours_bin = pathlib.Path(a.ours_bin).resolve()
    else:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "cign-train", "--example", "step_time"],
                       check=True, cwd=ROOT)
        ours_bin = ROOT / "target" / "release" / "examples" / "step_time"
    rows = []
    for name in a.models.split(","):
        cond, l, i, e = MODELS[name]
        theirs, ours = [], []
        for rep in range(a.reps):
            t = run_json([a.python, str(ROOT / "scripts" / "authors_step_time.py"), "--authors", a.authors,
                          "--conditioning", cond, "--latent-dim", str(l), "--intermediate-dim", str(i),
                          "--embedding-dim", str(e), "--batch", str(a.batch), "--steps", str(a.steps),
                          "--warmup", str(a.warmup), "--threads", str(a.threads)])
            o = run_json([str(ours_bin), f"configs/{name}.toml", "--batch", str(a.batch), "--steps",
                          str(a.steps), "--warmup", str(a.warmup), "--threads", str(a.threads)])
            theirs += t["step_seconds"]
            ours += o["step_seconds"]
            print(f"{name} round {rep + 1}: authors {statistics.median(t['step_seconds']):.3f} s, "
                  f"cign {statistics.median(o['step_seconds']):.3f} s", file=sys.stderr)
        mt, mo = statistics.median(theirs), statistics.median(ours)
        rows.append({"model": name, "batch": a.batch, "threads": a.threads, "authors_median_s": mt,
                     "cign_median_s": mo, "speedup": mt / mo, "authors_s": theirs, "cign_s": ours})
    print(f"| model | batch | threads | authors (PyTorch 2.11) median s/step | cign median s/step | speed-up |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['batch']} | {r['threads']} | {r['authors_median_s']:.3f} | "
              f"{r['cign_median_s']:.3f} | {r['speedup']:.2f}x |")
    if a.json:
        meta = {"machine": platform.processor() or platform.machine(), "reps": a.reps, "steps": a.steps}
        pathlib.Path(a.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
