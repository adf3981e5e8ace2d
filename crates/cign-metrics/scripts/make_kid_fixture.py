#!/usr/bin/env python3
"""Writes the KID reference fixture of cign-metrics' tests/kid_parity.rs (run by hand, not by
CI).

Needs a separate venv (not the project's .venv) with torch-fidelity 0.4.0:

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch-fidelity==0.4.0 numpy torch
    /tmp/refvenv/bin/python crates/cign-metrics/scripts/make_kid_fixture.py \
        --out crates/cign-metrics/tests/fixtures/kid_torch_fidelity.npz

For each case it calls torch-fidelity's own `metric_kid.kid_features_to_metric(features_1,
features_2, kid_subsets=S, kid_subset_size=M, rng_seed=SEED, verbose=False)` (the KID of
`calculate_kid` once features exist: `np.random.RandomState(rng_seed)` draws each subset's
rows of side 1, then of side 2, without replacement) on float32 tensors, and stores its mean
and std. It also stores, for the first subsets of each case, the row indices
`RandomState(SEED).choice(n, M, replace=False)` draws, so the test can check cign's NumPy
generator draw for draw, and the same KID recomputed in float64 with torch-fidelity's formula
(torch-fidelity computes the kernels in float32), so the test can state how far apart the
two precisions are.

Features are non-negative like Inception pool features (ReLU of a normal), drawn from a
seeded NumPy Generator, stored as float32.

Output: one npz with, per case c: c_a, c_b (float32 [n, d]), c_tfid (float64 [2]: mean,
std), c_f64 (float64 [2]: mean, std in float64 with the same subsets), c_idx (int64
[3, 2, M]: the indices of the first three subsets, side 1 then side 2), c_setting (int64
[3]: subsets, subset size, seed).
"""

import argparse
import json

import numpy as np
import torch
import torch_fidelity
from torch_fidelity.metric_kid import kid_features_to_metric

CASES = {
    # name: (n_a, n_b, d, subsets, subset_size, seed, shift)
    "default_seed": (300, 260, 32, 20, 100, 2020, 0.15),
    "other_seed": (300, 260, 32, 10, 50, 7, 0.15),
    "same_distribution": (240, 240, 16, 15, 120, 2020, 0.0),
    "large_seed": (150, 170, 8, 5, 149, 4294967295, 0.5),
}


def features(rng, n, d, shift):
    return np.maximum(rng.normal(size=(n, d)) + shift, 0.0).astype(np.float32)


def kid_f64(a, b, subsets, size, seed):
    a, b = a.astype(np.float64), b.astype(np.float64)
    rng = np.random.RandomState(seed)
    values, idx = [], []
    for _ in range(subsets):
        ia = rng.choice(len(a), size, replace=False)
        ib = rng.choice(len(b), size, replace=False)
        idx.append([ia, ib])
        x, y = a[ia], b[ib]
        d = x.shape[1]
        kxx, kyy, kxy = [(p @ q.T / d + 1.0) ** 3 for p, q in ((x, x), (y, y), (x, y))]
        m = size
        values.append(
            (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
            - 2.0 * kxy.sum() / (m * m)
        )
    return np.array([np.mean(values), np.std(values)]), np.array(idx[:3], dtype=np.int64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    g = np.random.default_rng(20261201)
    out, report = {}, {"torch_fidelity": torch_fidelity.__version__, "numpy": np.__version__}
    for name, (n_a, n_b, d, subsets, size, seed, shift) in CASES.items():
        a = features(g, n_a, d, 0.0)
        b = features(g, n_b, d, shift)
        r = kid_features_to_metric(
            torch.from_numpy(a),
            torch.from_numpy(b),
            kid_subsets=subsets,
            kid_subset_size=size,
            rng_seed=seed,
            verbose=False,
        )
        tfid = np.array([r["kernel_inception_distance_mean"], r["kernel_inception_distance_std"]])
        f64, idx = kid_f64(a, b, subsets, size, seed)
        out.update(
            {
                f"{name}_a": a,
                f"{name}_b": b,
                f"{name}_tfid": tfid,
                f"{name}_f64": f64,
                f"{name}_idx": idx,
                f"{name}_setting": np.array([subsets, size, seed], dtype=np.int64),
            }
        )
        report[name] = {"torch_fidelity": tfid.tolist(), "float64": f64.tolist()}
        print(name, "torch-fidelity", tfid.tolist(), "float64", f64.tolist())
    np.savez(args.out, **out)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
