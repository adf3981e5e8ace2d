#!/usr/bin/env python3
"""Forward + backward time of one channel-conditioned layer in the authors' formulation (label
map concatenated as an extra input channel, one convolution over C + 1 channels) and in cign's
(the convolution split in two: the C image channels, plus the label-map slice of the same
weight applied once per class and gathered by label). Same libtorch kernels as cign.

    python scripts/bench_label_channel.py [--batch 2304] [--threads 1]
"""
import argparse
import time

import torch
import torch.nn.functional as F

# (C_in, H, C_out, kernel, stride, padding, transposed): the small channel model's layers 2-4 of
# the encoder and 3-5 of the decoder (L = 16).
LAYERS = [(16, 14, 32, 4, 2, 1, False), (32, 7, 64, 3, 2, 1, False), (64, 4, 128, 4, 2, 1, False),
          (64, 4, 32, 3, 2, 1, True), (32, 7, 16, 4, 2, 1, True), (16, 14, 1, 4, 2, 1, True)]


def best_of(fn, reps=3):
    fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=2304, help="images per pass (9 x 256: the mismatch pass)")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    n = a.batch
    print("| C_in | size | C_out | transposed | concat (authors) s | split (cign) s | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for (c, h, co, k, s, pad, tr) in LAYERS:
        x0, lab, maps0 = torch.randn(n, c, h, h), torch.randint(0, 10, (n,)), torch.randn(10, 1, h, h)
        w = torch.randn(*((c + 1, co) if tr else (co, c + 1)), k, k, requires_grad=True)
        conv = (lambda i, ww: F.conv_transpose2d(i, ww, stride=s, padding=pad)) if tr else \
               (lambda i, ww: F.conv2d(i, ww, stride=s, padding=pad))
        w_img = (lambda: w[:c]) if tr else (lambda: w[:, :c])
        w_map = (lambda: w[c:]) if tr else (lambda: w[:, c:])

        def concat():
            x, maps = x0.clone().requires_grad_(), maps0.clone().requires_grad_()
            conv(torch.cat([x, maps[lab]], 1), w).sum().backward()

        def split():
            x, maps = x0.clone().requires_grad_(), maps0.clone().requires_grad_()
            (conv(x, w_img()) + conv(maps, w_map())[lab]).sum().backward()

        tc, ts = best_of(concat), best_of(split)
        print(f"| {c} | {h}x{h} | {co} | {tr} | {tc:.3f} | {ts:.3f} | {tc / ts:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
