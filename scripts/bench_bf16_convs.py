#!/usr/bin/env python3
"""float32 against bfloat16 for the large channel model's ten convolutions, one by one.

Forward and backward (input and weight gradients) of each convolution of the (64, 128, 5)
channel model at its input size (encoder: Conv2d, decoder: ConvTranspose2d, no bias, the
C + 1 input channels of the label map included), in float32 and with bfloat16 inputs and
weights (what autocast runs), through the project's libtorch; plus a 1024^3 matmul. Prints
the best of REPS times per layer, the GFLOP/s and the ratio float32 / bfloat16 (> 1: bfloat16
faster). With --kernels, also the oneDNN implementation each call ran (ONEDNN_VERBOSE).

    .venv/bin/python scripts/bench_bf16_convs.py --batch 256 --threads 1 --reps 3
"""

import argparse
import os
import subprocess
import sys
import time

import torch


def layers(L=64, I=128):
    # (transposed, c_in incl. label channel, c_out, kernel, stride, padding, input size)
    enc = [(1 + 1, L, 4, 2, 1, 28), (L + 1, 2 * L, 4, 2, 1, 14), (2 * L + 1, 4 * L, 3, 2, 1, 7),
           (4 * L + 1, 8 * L, 4, 2, 1, 4), (8 * L + 1, I, 2, 1, 0, 2)]
    dec = [(I + 1, 8 * L, 2, 1, 0, 1), (8 * L + 1, 4 * L, 4, 2, 1, 2), (4 * L + 1, 2 * L, 3, 2, 1, 4),
           (2 * L + 1, L, 4, 2, 1, 7), (L + 1, 1, 4, 2, 1, 14)]
    return [(False,) + e for e in enc] + [(True,) + d for d in dec]


def best(f, reps):
    f()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return min(ts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--kernels", action="store_true", help="print oneDNN's implementation names")
    a = ap.parse_args()
    if a.kernels and os.environ.get("ONEDNN_VERBOSE") != "1":
        env = dict(os.environ, ONEDNN_VERBOSE="1")
        out = subprocess.run([sys.executable, __file__, "--batch", "8", "--reps", "1"], env=env,
                             capture_output=True, text=True).stdout
        seen = {}
        for line in out.splitlines():
            f = line.split(",")
            if len(f) > 6 and f[2] == "primitive" and f[3] == "exec" and f[5] in ("convolution", "matmul"):
                seen.setdefault((f[5], f[6], f[7]), 0)
                seen[(f[5], f[6], f[7])] += 1
        for (prim, impl, prop), n in sorted(seen.items()):
            print(f"oneDNN {prim:<12} {prop:<17} {impl:<40} x{n}")
        print()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {a.batch}, "
          f"oneDNN bf16 supported: {torch.ops.mkldnn._is_mkldnn_bf16_supported()}")
    for n in (1024,):
        r = {}
        for dt in (torch.float32, torch.bfloat16):
            x, y = torch.randn(n, n, dtype=dt), torch.randn(n, n, dtype=dt)
            r[dt] = 2 * n ** 3 / best(lambda: x @ y, 5) / 1e9
        print(f"matmul {n}^3: float32 {r[torch.float32]:.1f} GFLOP/s, bfloat16 "
              f"{r[torch.bfloat16]:.1f} GFLOP/s, fp32/bf16 (time) {r[torch.bfloat16] / r[torch.float32]:.2f}")
    print()
    print("layer                               | fp32 fwd ms | bf16 fwd ms | fp32 bwd ms | bf16 bwd ms | fp32 GFLOP/s | bf16 GFLOP/s | fp32/bf16 (time)")
    tot = {torch.float32: 0.0, torch.bfloat16: 0.0}
    for tr, ci, co, k, s, p, hw in layers():
        o = (hw - 1) * s - 2 * p + k if tr else (hw + 2 * p - k) // s + 1
        flops = 2 * a.batch * ci * co * k * k * (hw * hw if tr else o * o)
        res = {}
        for dt in (torch.float32, torch.bfloat16):
            x = torch.randn(a.batch, ci, hw, hw, dtype=dt, requires_grad=True)
            w = (torch.randn(ci, co, k, k) if tr else torch.randn(co, ci, k, k)).to(dt).requires_grad_(True)
            if tr:
                op = lambda: torch.nn.functional.conv_transpose2d(x, w, None, s, p)
            else:
                op = lambda: torch.nn.functional.conv2d(x, w, None, s, p)
            g = torch.randn_like(op())
            tf = best(op, a.reps)
            tfb = best(lambda: torch.autograd.grad(op(), [x, w], g), a.reps)
            res[dt] = (tf, max(tfb - tf, 0.0))
            tot[dt] += tfb
        name = f"{'convT' if tr else 'conv '} {ci:>3}->{co:>3} k{k} s{s} {hw:>2}x{hw:<2}"
        f32, b16 = res[torch.float32], res[torch.bfloat16]
        print(f"{name:<35} | {f32[0] * 1e3:11.1f} | {b16[0] * 1e3:11.1f} | {f32[1] * 1e3:11.1f} | "
              f"{b16[1] * 1e3:11.1f} | {3 * flops / sum(f32) / 1e9:12.1f} | {3 * flops / sum(b16) / 1e9:12.1f} | "
              f"{sum(f32) / sum(b16):8.2f}")
    print(f"all ten, forward + backward: float32 {tot[torch.float32] * 1e3:.0f} ms, bfloat16 "
          f"{tot[torch.bfloat16] * 1e3:.0f} ms, fp32/bf16 (time) {tot[torch.float32] / tot[torch.bfloat16]:.2f}")


if __name__ == "__main__":
    main()
