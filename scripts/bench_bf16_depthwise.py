#!/usr/bin/env python3
"""The filter model's per-sample depthwise convolutions (one grouped convolution with
groups = B * C, the authors' formulation) in float32 against bfloat16, forward and backward,
through the project's libtorch: why cign keeps them in float32 under train.precision = "bf16".

    .venv/bin/python scripts/bench_bf16_depthwise.py --batch 256 --threads 1
"""

import argparse

import torch

from bench_bf16_convs import best  # the best-of-reps timer, same folder


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    B = a.batch
    print(f"torch {torch.__version__}, {a.threads} thread(s), batch {B}")
    print("layer (channels, input size, kernel)   | fp32 fwd ms | bf16 fwd ms | fp32 bwd ms | bf16 bwd ms")
    # (transposed, channels, input size, kernel, stride, padding) of the small filter model (L = 64)
    for tr, C, H, k, s, p in [(False, 64, 14, 4, 2, 1), (False, 128, 7, 3, 2, 1),
                              (True, 256, 4, 3, 2, 1), (True, 128, 7, 4, 2, 1), (True, 64, 14, 4, 2, 1)]:
        row = []
        for dt in (torch.float32, torch.bfloat16):
            x = torch.randn(1, B * C, H, H, dtype=dt, requires_grad=True)
            w = torch.randn(B * C, 1, k, k, dtype=dt, requires_grad=True)
            if tr:
                f = lambda: torch.nn.functional.conv_transpose2d(x, w, None, s, p, 0, B * C)
            else:
                f = lambda: torch.nn.functional.conv2d(x, w, None, s, p, 1, B * C)
            g = torch.randn_like(f())
            tf = best(f, 2)
            tb = best(lambda: torch.autograd.grad(f(), [x, w], g), 2) - tf
            row += [tf, max(tb, 0.0)]
        name = f"{'transposed' if tr else 'direct    '} {C:>3} ch {H:>2}x{H:<2} k{k} s{s}"
        print(f"{name:<39} | {row[0] * 1e3:11.1f} | {row[2] * 1e3:11.1f} | {row[1] * 1e3:11.1f} | {row[3] * 1e3:11.1f}")


if __name__ == "__main__":
    main()
