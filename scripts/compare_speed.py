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
import statistics
import subprocess
import sys

import machine_info

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


PEAK_SNIPPET = """
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
for _ in range(3): a @ b
best = 0.0
for _ in range(5):
    t = time.perf_counter(); [a @ b for _ in range(10)]; dt = time.perf_counter() - t
    best = max(best, 10 * 2 * 1024 ** 3 / dt / 1e9)
print(best)
"""


def matmul_peak(python, threads):
    """Sustained float32 1024^3 matmul rate (GFLOP/s) of libtorch at this thread count."""
    out = subprocess.run([python, "-c", PEAK_SNIPPET, str(threads)], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


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
    peaks = [matmul_peak(a.python, a.threads)]
    for name in a.models.split(","):
        cond, l, i, e = MODELS[name]
        theirs, ours, flops = [], [], None
        for rep in range(a.reps):
            t = run_json([a.python, str(ROOT / "scripts" / "authors_step_time.py"), "--authors", a.authors,
                          "--conditioning", cond, "--latent-dim", str(l), "--intermediate-dim", str(i),
                          "--embedding-dim", str(e), "--batch", str(a.batch), "--steps", str(a.steps),
                          "--warmup", str(a.warmup), "--threads", str(a.threads)])
            o = run_json([str(ours_bin), f"configs/{name}.toml", "--batch", str(a.batch), "--steps",
                          str(a.steps), "--warmup", str(a.warmup), "--threads", str(a.threads)])
            theirs += t["step_seconds"]
            ours += o["step_seconds"]
            flops = o.get("step_flops")
            print(f"{name} round {rep + 1}: authors {statistics.median(t['step_seconds']):.3f} s, "
                  f"cign {statistics.median(o['step_seconds']):.3f} s", file=sys.stderr)
        mt, mo = statistics.median(theirs), statistics.median(ours)
        peaks.append(matmul_peak(a.python, a.threads))
        rows.append({"model": name, "batch": a.batch, "threads": a.threads, "authors_median_s": mt,
                     "cign_median_s": mo, "speedup": mt / mo, "authors_s": theirs, "cign_s": ours,
                     "step_gflop": flops and flops / 1e9})
    peak = max(peaks)
    print(f"matmul peak (float32 1024^3, {a.threads} thread(s)): {peak:.1f} GFLOP/s "
          f"(measured {len(peaks)} times: {', '.join(f'{p:.1f}' for p in peaks)})")
    print("| model | batch | threads | authors (PyTorch 2.11) median s/step | cign median s/step | speed-up "
          "| GFLOP/step | cign GFLOP/s | share of matmul peak |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        g = r["step_gflop"]
        rate = g / r["cign_median_s"] if g else None
        print(f"| {r['model']} | {r['batch']} | {r['threads']} | {r['authors_median_s']:.3f} | "
              f"{r['cign_median_s']:.3f} | {r['speedup']:.2f}x | {g:.1f} | {rate:.1f} | {rate / peak * 100:.0f}% |"
              if g else
              f"| {r['model']} | {r['batch']} | {r['threads']} | {r['authors_median_s']:.3f} | "
              f"{r['cign_median_s']:.3f} | {r['speedup']:.2f}x | - | - | - |")
    if a.json:
        meta = {"machine": machine_info.describe(), "reps": a.reps, "steps": a.steps,
                "matmul_peak_gflops": peak, "matmul_peaks": peaks}
        pathlib.Path(a.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
