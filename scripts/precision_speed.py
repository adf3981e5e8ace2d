#!/usr/bin/env python3
"""Interleaved step times of float32 against bfloat16 mixed precision (train.precision).

Runs the step_time example (build it first: `cargo build --release -p cign-train --example
step_time`) in a fresh process per measurement, alternating fp32 and bf16 (the order flips
every round so a drift of the machine's load hits both), and prints per model the raw times,
the medians and the ratio fp32 / bf16 (> 1: bf16 is faster). The load average before each run
is recorded too: on a shared machine it explains outliers.

    python3 scripts/precision_speed.py --models small_channel,large_channel,small_filter \
        --batch 256 --threads 1 --reps 5 --json results/runs/precision_speed.json

Only the standard library is needed. Relative paths are taken from the caller's directory;
--configs and --bin default to this checkout's configs/ and release build. Bad arguments: one
line on stderr, exit 2; a failing step_time run: one line naming the command and its exit
status, exit 1. --json is written to a .part file and moved into place when complete.
"""

import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

import machine_info
from script_args import Parser, count

ROOT = pathlib.Path(__file__).resolve().parent.parent


def fail(message, code=1):
    print(f"precision_speed: {message}", file=sys.stderr)
    sys.exit(code)


def run_child(cmd):
    """stdout of `cmd`; one line and exit 1 when it cannot start or fails."""
    shown = " ".join(cmd)
    try:
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    except OSError as e:
        fail(f"cannot run {shown}: {e.strerror or e}")
    except subprocess.CalledProcessError as e:
        last = (e.stderr or "").strip().splitlines()
        fail(f"{shown} exited with status {e.returncode}" + (f": {last[-1]}" if last else ""))


def one_run(binary, config, batch, threads, precision, steps, warmup, device):
    cmd = [
        binary,
        config,
        "--batch",
        str(batch),
        "--threads",
        str(threads),
        "--steps",
        str(steps),
        "--warmup",
        str(warmup),
        "--precision",
        precision,
        "--device",
        device,
    ]
    load = os.getloadavg()[0]
    out = run_child(cmd)
    try:
        rec = json.loads(out.strip().splitlines()[-1])
        secs, got = rec["step_seconds"], rec["precision"]
    except (IndexError, ValueError, KeyError, TypeError):
        fail(f"{' '.join(cmd)} printed no step_time JSON line")
    if got != precision:
        fail(f"{' '.join(cmd)} ran in {got}, not {precision}")
    return secs, load


def main():
    ap = Parser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="small_channel,large_channel,small_filter",
                    help="comma-separated config names (CONFIGS/NAME.toml)")
    ap.add_argument("--configs", default=str(ROOT / "configs"), help="directory of the model configs")
    ap.add_argument("--batch", type=count(1), default=256)
    ap.add_argument("--threads", type=count(0), default=1, help="0: libtorch's default")
    ap.add_argument("--reps", type=count(1), default=5, help="rounds (one run of each precision)")
    ap.add_argument("--steps", type=count(1), default=1, help="timed steps per run")
    ap.add_argument("--warmup", type=count(0), default=1, help="untimed steps per run")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "examples" / "step_time"))
    ap.add_argument("--json", help="write the raw results here")
    a = ap.parse_args()
    if not os.path.isfile(a.bin):
        ap.error(f"{a.bin} not found: cargo build --release -p cign-train --example step_time")
    if a.json and not os.path.isdir(os.path.dirname(a.json) or "."):
        ap.error(f"--json {a.json}: no directory {os.path.dirname(a.json)}")
    models = [m.strip() for m in a.models.split(",") if m.strip()]
    if not models:
        ap.error("--models names no model")
    for m in models:
        if not os.path.isfile(os.path.join(a.configs, f"{m}.toml")):
            ap.error(f"--models: no config {os.path.join(a.configs, m + '.toml')}")
    raw = {m: {"fp32": [], "bf16": [], "load_fp32": [], "load_bf16": []} for m in models}
    t0 = time.time()
    for r in range(a.reps):
        order = ["fp32", "bf16"] if r % 2 == 0 else ["bf16", "fp32"]
        for m in models:
            cfg = os.path.join(a.configs, f"{m}.toml")
            for p in order:
                secs, load = one_run(
                    a.bin, cfg, a.batch, a.threads, p, a.steps, a.warmup, a.device
                )
                raw[m][p].extend(secs)
                raw[m]["load_" + p].append(load)
                print(
                    f"round {r + 1}/{a.reps} {m} {p}: {' '.join(f'{s:.3f}' for s in secs)} s"
                    f" (load {load:.2f})",
                    flush=True,
                )
    rows = []
    for m in models:
        f, b = statistics.median(raw[m]["fp32"]), statistics.median(raw[m]["bf16"])
        rows.append({"model": m, "fp32_median_s": f, "bf16_median_s": b, "speedup": f / b})
    print()
    print("| model | batch | threads | fp32 median s/step | bf16 median s/step | fp32 / bf16 |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['model']} | {a.batch} | {a.threads} | {row['fp32_median_s']:.3f} | "
            f"{row['bf16_median_s']:.3f} | {row['speedup']:.2f}x |"
        )
    print(f"\nwall time {time.time() - t0:.0f} s")
    if a.json:
        part = a.json + ".part"
        with open(part, "w") as fh:
            json.dump(
                {
                    "args": vars(a),
                    "machine": machine_info.describe(),
                    "cpus": os.cpu_count(),
                    "raw": raw,
                    "summary": rows,
                },
                fh,
                indent=1,
            )
            fh.write("\n")
        os.replace(part, a.json)


if __name__ == "__main__":
    main()
