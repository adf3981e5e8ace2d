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

Relative paths (--authors, --python, --ours-bin, --json) are taken from the caller's directory;
a bare --python name is looked up on PATH. Every child process runs in the repository root.
Bad arguments: one line on stderr, exit 2; a failing child process: one line naming the
command and its exit status, exit 1. --json is written to a .part file and moved into place.
"""
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys

import machine_info
from script_args import Parser, count

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run_child(cmd):
    """stdout of `cmd` run in the repository root; one line and exit 1 when it fails."""
    shown = " ".join("<code>" if "\n" in str(c) else str(c) for c in cmd)
    try:
        return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True,
                              cwd=ROOT).stdout
    except OSError as e:
        print(f"compare_speed: cannot run {shown}: {e.strerror or e}", file=sys.stderr)
    except subprocess.CalledProcessError as e:
        last = (e.stderr or "").strip().splitlines()
        print(f"compare_speed: {shown} exited with status {e.returncode}"
              + (f": {last[-1]}" if last else ""), file=sys.stderr)
    sys.exit(1)
# (conditioning, latent, intermediate, embedding) of each preset.
MODELS = {
    "small_channel": ("channel", 16, 128, 5),
    "large_channel": ("channel", 64, 128, 5),
    "small_filter": ("filter", 64, 128, 5),
    "large_filter": ("filter", 128, 128, 5),
}


def run_json(cmd):
    out = run_child(cmd)
    try:
        rec = json.loads(out.strip().splitlines()[-1])
        if not isinstance(rec, dict) or not isinstance(rec.get("step_seconds"), list) or not rec["step_seconds"]:
            raise ValueError
        return rec
    except (IndexError, ValueError):
        print(f"compare_speed: {' '.join(map(str, cmd))} printed no step-time JSON line", file=sys.stderr)
        sys.exit(1)


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
    out = run_child([python, "-c", PEAK_SNIPPET, str(threads)])
    try:
        return float(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        print(f"compare_speed: {python} -c <matmul peak> printed no number", file=sys.stderr)
        sys.exit(1)


def main():
    p = Parser()
    p.add_argument("--authors", required=True, help="checkout of the authors' repository")
    p.add_argument("--python", default=sys.executable,
                   help="python with torch 2.11 and pytorch-lightning (default: this one)")
    p.add_argument("--models", default="small_channel,large_channel,small_filter",
                   help=f"comma-separated, of: {', '.join(MODELS)}")
    p.add_argument("--batch", type=count(1), default=256)
    p.add_argument("--threads", type=count(1), default=2)
    p.add_argument("--reps", type=count(1), default=3)
    p.add_argument("--steps", type=count(1), default=3)
    p.add_argument("--warmup", type=count(0), default=1)
    p.add_argument("--json")
    p.add_argument("--ours-bin", help="an already built step_time example (default: build --release)")
    a = p.parse_args()

    # Paths from the caller's directory, before any child process runs in ROOT.
    authors = pathlib.Path(a.authors).resolve()
    if not (authors / "MNIST").is_dir():
        p.error(f"--authors {a.authors}: no MNIST/ folder there (a checkout of "
                "niccronc/conditional-idempotent-generative-networks?)")
    a.authors = str(authors)
    if os.sep in a.python or (os.altsep and os.altsep in a.python):
        python = pathlib.Path(os.path.abspath(a.python))  # not resolve(): a venv's python is a link
        if not (python.is_file() and os.access(python, os.X_OK)):
            p.error(f"--python {a.python}: not an executable file")
    else:
        found = shutil.which(a.python)
        if not found:
            p.error(f"--python {a.python}: not found on PATH")
        python = pathlib.Path(os.path.abspath(found))
    a.python = str(python)
    models = [m.strip() for m in a.models.split(",") if m.strip()]
    if not models:
        p.error("--models names no model")
    for m in models:
        if m not in MODELS:
            p.error(f"--models: unknown model {m!r} (one of {', '.join(MODELS)})")
    if a.json:
        a.json = os.path.abspath(a.json)
        if not pathlib.Path(a.json).parent.is_dir():
            p.error(f"--json {a.json}: no directory {pathlib.Path(a.json).parent}")
    if a.ours_bin:
        ours_bin = pathlib.Path(a.ours_bin).resolve()
        if not ours_bin.is_file():
            p.error(f"--ours-bin {a.ours_bin}: no such file")
    else:
        run_child(["cargo", "build", "--release", "-q", "-p", "cign-train", "--example", "step_time"])
        ours_bin = ROOT / "target" / "release" / "examples" / "step_time"
    rows = []
    peaks = [matmul_peak(a.python, a.threads)]
    for name in models:
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
        part = pathlib.Path(a.json + ".part")
        part.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
        part.replace(a.json)


if __name__ == "__main__":
    main()
