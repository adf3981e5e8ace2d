#!/usr/bin/env python3
"""Times pytorch-fid 0.3.0's Inception forward on CPU, for comparison with cign-metrics'
criterion bench (`cargo bench -p cign-metrics --bench inception`), which runs this script
when CIGN_BENCH_PYTHON names a Python with pytorch-fid (see make_fixtures.py for the venv).

Images: the 8 first images of `set_a` of tests/fixtures/pytorch_fid_features.npz (MNIST
digits, 28x28 grey, as 3-channel [0, 1] tensors like pytorch-fid's loader makes them), one
batch of 8, the same as the Rust bench. Reported (one JSON line per configuration): images/s
of pytorch-fid's InceptionV3([block]) for each dims in --configs, and of
InceptionV3([0, 1, 2, 3]) (all taps in one model) for "all".
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures  # noqa: E402  (weights mapping)
import pytorch_fid.inception as pfi  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--cache", default="/tmp/cign-fid-wheel")
    ap.add_argument("--seconds", type=float, default=15.0, help="time per configuration")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument("--configs", default="768,2048,all",
                    help="comma-separated: 64, 192, 768, 2048 (one block each) and/or all")
    args = ap.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    _, sd = make_fixtures.mapped_state_dict(make_fixtures.get_torchscript(args.cache))
    pfi.load_state_dict_from_url = lambda *a, **k: sd
    data = np.load(os.path.join(args.fixtures, "pytorch_fid_features.npz"))
    x = torch.from_numpy(data["set_a"][: args.batch].astype(np.float32) / 255.0)
    x = x[:, None].repeat(1, 3, 1, 1)

    blocks_of = {"64": [0], "192": [1], "768": [2], "2048": [3], "all": [0, 1, 2, 3]}
    for name in args.configs.split(","):
        blocks = blocks_of[name]
        model = pfi.InceptionV3(blocks).eval()
        with torch.no_grad():
            model(x)  # warm-up
            times = []
            cpu0 = time.process_time()
            start = time.perf_counter()
            while time.perf_counter() - start < args.seconds or len(times) < 3:
                t0 = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - t0)
            cpu = (time.process_time() - cpu0) / (len(times) * args.batch)
        med = float(np.median(times))
        print(json.dumps({"impl": "pytorch-fid 0.3.0", "taps": name, "layout": "nchw",
                          "batch": args.batch, "threads": torch.get_num_threads(),
                          "images_per_s": round(args.batch / med, 3),
                          "median_batch_s": round(med, 4), "batches": len(times),
                          "cpu_s_per_image": round(cpu, 4)}), flush=True)


if __name__ == "__main__":
    main()
