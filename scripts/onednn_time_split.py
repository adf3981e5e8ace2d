#!/usr/bin/env python3
"""Where a training step's time goes between oneDNN primitives and everything else.

Runs the step_time example once per precision with ONEDNN_VERBOSE=1 (one warm-up step and
one timed step; only the timed step's primitive executions are counted: the last
1/(warmup + steps) share of the log is not a reliable cut, so the warm-up is run in a separate
process first and subtracted), and prints, per precision, the step time, the time inside oneDNN
convolutions and transposed convolutions (oneDNN's
deconvolution; by propagation kind and implementation), reorders and matmuls, and the rest
(libtorch's own kernels: BatchNorm, element-wise, casts, dropout, AdamW).

    python3 scripts/onednn_time_split.py configs/large_channel.toml --batch 64 --threads 1
"""

import argparse
import collections
import json
import os
import subprocess


def run(binary, config, batch, threads, precision, steps):
    env = dict(os.environ, ONEDNN_VERBOSE="1")
    cmd = [binary, config, "--batch", str(batch), "--threads", str(threads), "--steps",
           str(steps), "--warmup", "0", "--precision", precision]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    split = collections.Counter()
    rec = None
    for line in out.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            continue
        f = line.split(",")
        if len(f) < 8 or f[2] != "primitive" or f[3] != "exec":
            continue
        prim, impl, prop = f[5], f[6], f[7]
        ms = float(f[-1])
        if prim in ("convolution", "deconvolution"):
            split[f"{prim} {prop} ({impl})"] += ms
        else:
            split[prim] += ms
    return sum(rec["step_seconds"]) * 1e3, split


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bin", default="target/release/examples/step_time")
    a = ap.parse_args()
    for p in ("fp32", "bf16"):
        # steps 1 and 2 in fresh processes: the difference is one warm step
        t1, s1 = run(a.bin, a.config, a.batch, a.threads, p, 1)
        t2, s2 = run(a.bin, a.config, a.batch, a.threads, p, 2)
        step = t2 - t1
        split = {k: s2[k] - s1[k] for k in s2}
        inside = sum(split.values())
        print(f"== {p}: one warm step {step:.0f} ms (batch {a.batch}, {a.threads} thread(s)); "
              f"oneDNN {inside:.0f} ms ({100 * inside / step:.0f}%), other {step - inside:.0f} ms "
              f"({100 * (step - inside) / step:.0f}%)")
        for k, v in sorted(split.items(), key=lambda kv: -kv[1]):
            if v > 0.005 * step:
                print(f"   {v:8.0f} ms  {100 * v / step:5.1f}%  {k}")


if __name__ == "__main__":
    main()
