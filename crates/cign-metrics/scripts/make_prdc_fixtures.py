#!/usr/bin/env python3
"""Writes the precision / recall / density / coverage reference fixtures of
cign-metrics' tests/prdc_parity.rs (run by hand, not by CI).

Needs a separate venv (not the project's .venv) with the two reference packages:

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install prdc==0.2 torch-fidelity==0.4.0 numpy scipy torch
    /tmp/refvenv/bin/python crates/cign-metrics/scripts/make_prdc_fixtures.py \
        --out crates/cign-metrics/tests/fixtures/prdc

Every feature set is drawn from a seeded numpy Generator and stored as float32 (so the same
values are exactly float64 as well). For each case the script stores the numbers of

  * prdc 0.2, `prdc.compute_prdc(real, fake, nearest_k)`, at nearest_k = 5 (its default) and
    3, once on the float64 arrays (sklearn's float64 distances) and once on the float32 arrays
    (sklearn's float32 path: distances upcast to float64 in chunks, stored as float32), and
  * torch-fidelity 0.4.0, `torch_fidelity.metric_prc.prc_features_to_metric(generated, real)`
    with its default neighbourhood (DEFAULTS["prc_neighborhood"] = 3, read from the installed
    package), on float64 and on float32 tensors. torch-fidelity's balls are closed (`<=`),
    prdc's are open (`<`).

It also measures, with SciPy's direct-difference distances in float64, how close any
distance that decides a count lies to the radius it is compared with (the smallest relative
margin |d - r| / r over every generated-real pair and both radii), so the test can say
whether float32 distances could flip a count. The `lattice` case has small-integer features:
all of its squared distances are exact integers in every implementation, so its many exact
ties (distances exactly equal to a radius) are decided identically by prdc, torch-fidelity
and cign, and they show the open / closed difference.

Outputs (small):
  prdc_cases.npz   <case>_gen, <case>_real (float32 [n, d]); <case>_prdc_f64_k5,
                   _prdc_f64_k3, _prdc_f32_k5, _prdc_f32_k3 (float64 [4]: precision, recall,
                   density, coverage); <case>_tfid_f64_k3, _tfid_f32_k3 (float64 [2]:
                   precision, recall).
  prdc_cases.json  versions, case list with shapes, smallest margins, descriptions.
"""

import argparse
import contextlib
import io
import json
import os

import numpy as np
import scipy
import scipy.spatial.distance
import sklearn
import torch

import prdc
import torch_fidelity
from torch_fidelity.defaults import DEFAULTS as TFID_DEFAULTS
from torch_fidelity.metric_prc import prc_features_to_metric

KS = [5, 3]
TFID_K = TFID_DEFAULTS["prc_neighborhood"]


def blobs(rng, centers, counts, std, dim):
    rows = [c + std * rng.standard_normal((n, dim)) for c, n in zip(centers, counts)]
    return np.concatenate(rows, axis=0)


def kth_radii(x, k):
    """(k+1)-th smallest direct float64 distance of each row, the zero self-distance included."""
    d = scipy.spatial.distance.cdist(x, x)
    np.fill_diagonal(d, 0.0)
    return np.sort(d, axis=1)[:, k]


def smallest_margin(gen, real, k):
    """Smallest |d - r| / r over all generated-real distances d and the radii r they meet
    (the real radius for precision, density and coverage; the generated one for recall).
    Pairs with d == 0 against r > 0 are far from a tie and count with margin 1."""
    gen = gen.astype(np.float64)
    real = real.astype(np.float64)
    d = scipy.spatial.distance.cdist(gen, real)  # [n_gen, n_real]
    r_real = kth_radii(real, k)
    r_gen = kth_radii(gen, k)
    out = np.inf
    for r in (r_real[None, :], r_gen[:, None]):
        with np.errstate(divide="ignore", invalid="ignore"):
            m = np.abs(d - r) / r
        m = np.where(r == 0, np.where(d == 0, 0.0, 1.0), m)
        out = min(out, float(m.min()))
    return out


def run_prdc(gen, real, k):
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        m = prdc.compute_prdc(real_features=real, fake_features=gen, nearest_k=k)
    return np.array([m["precision"], m["recall"], m["density"], m["coverage"]], np.float64)


def run_tfid(gen, real):
    m = prc_features_to_metric(
        torch.from_numpy(gen), torch.from_numpy(real), verbose=False
    )  # features_1 = generated, features_2 = real; neighbourhood and batch at defaults
    return np.array([m["precision"], m["recall"]], np.float64)


def case_shifted(rng):
    """Two 64-d Gaussians (unit covariance), the generated one shifted by 0.25 per axis and
    scaled by 0.9, with Inception-like non-negative offsets (all features + 3)."""
    dim = 64
    real = 3.0 + rng.standard_normal((250, dim))
    gen = 3.25 + 0.9 * rng.standard_normal((200, dim))
    return gen, real, "64-d unit Gaussians, generated shifted by 0.25 per axis, scaled 0.9"


def case_partial_overlap(rng):
    """Real: 4 blobs; generated: 2 of those blobs plus one blob the real set does not have."""
    dim = 32
    centers = 4.0 * rng.standard_normal((5, dim))
    real = blobs(rng, centers[:4], [75, 75, 75, 75], 1.0, dim)
    gen = blobs(rng, [centers[0], centers[1], centers[4]], [80, 80, 80], 1.0, dim)
    return gen, real, "real: 4 blobs; generated: 2 of them and a fifth one (partial overlap)"


def case_mode_collapse(rng):
    """Generated samples packed around one real blob's centre: density above 1, low coverage."""
    dim = 32
    centers = 4.0 * rng.standard_normal((4, dim))
    real = blobs(rng, centers, [50, 50, 50, 50], 1.0, dim)
    gen = centers[0] + 0.3 * rng.standard_normal((150, dim))
    return gen, real, "real: 4 blobs; generated: 150 samples at std 0.3 around one blob's centre"


def case_duplicates(rng):
    """Duplicated rows in both sets (each at most twice more, fewer than either k, so no radius
    is 0) and generated rows that are copies of real rows. A copied real row j ties exactly with
    every real point whose k-th neighbour is j (and copies can tie through the generated
    radii); such ties would be decided by rounding in every implementation, so copies that
    make a tie at k = 3 or 5 are left out (checked below with the smallest margin)."""
    dim = 32
    base_real = 0.5 + rng.standard_normal((220, dim))
    twice = rng.choice(220, size=24, replace=False)
    thrice = twice[:6]
    real = np.concatenate([base_real, base_real[twice], base_real[thrice]], axis=0)
    real = real[rng.permutation(len(real))]
    fresh = 0.8 + 1.1 * rng.standard_normal((170, dim))
    fresh = np.concatenate([fresh, fresh[rng.choice(170, size=15, replace=False)]], axis=0)
    candidates = rng.choice(len(real), size=40, replace=False)
    chosen = []
    for j in candidates:
        trial = np.concatenate([fresh, real[chosen + [j]]], axis=0)
        if all(smallest_margin(trial.astype(np.float32), real.astype(np.float32), k) > 1e-6
               for k in KS):
            chosen.append(int(j))
        if len(chosen) == 25:
            break
    gen = np.concatenate([fresh, real[chosen]], axis=0)
    gen = gen[rng.permutation(len(gen))]
    return gen, real, (
        f"real: 220 rows + 24 duplicated once more (6 of them twice); generated: 170 fresh "
        f"+ 15 duplicated + {len(chosen)} copies of real rows (of 40 candidates, those "
        f"without exact ties at k = 3, 5)")


def case_lattice(rng):
    """Integer features: real in {0, 1, 2}^8, generated the same with +1 on 60% of the
    coordinates (clipped to 3). Squared distances are small integers, so many distances
    equal a radius exactly."""
    dim = 8
    real = rng.integers(0, 3, size=(160, dim)).astype(np.float64)
    gen = np.clip(rng.integers(0, 3, size=(120, dim)) + (rng.random((120, dim)) < 0.6), 0, 3)
    ties = {k: exact_ties(gen.astype(np.float64), real, k) for k in KS}
    return gen.astype(np.float64), real, (
        f"integer lattice {{0,1,2}}^8 (generated: +1 on 60% of coordinates, clipped to 3): "
        f"generated-real distances exactly equal to the radius they meet: {ties}")


def exact_ties(gen, real, k):
    d = scipy.spatial.distance.cdist(gen, real)
    r_real, r_gen = kth_radii(real, k), kth_radii(gen, k)
    return int((d == r_real[None, :]).sum() + (d == r_gen[:, None]).sum())


CASES = [
    ("shifted", case_shifted),
    ("partial_overlap", case_partial_overlap),
    ("mode_collapse", case_mode_collapse),
    ("duplicates", case_duplicates),
    ("lattice", case_lattice),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    arrays = {}
    meta = {
        "script": "crates/cign-metrics/scripts/make_prdc_fixtures.py",
        "versions": {
            "prdc": "0.2",
            "torch_fidelity": torch_fidelity.__version__,
            "torch": torch.__version__,
            "sklearn": sklearn.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
        },
        "torch_fidelity_k": TFID_K,
        "cases": [],
    }
    for i, (name, make) in enumerate(CASES):
        rng = np.random.default_rng(1000 + i)
        gen, real, what = make(rng)
        gen = gen.astype(np.float32)
        real = real.astype(np.float32)
        arrays[f"{name}_gen"] = gen
        arrays[f"{name}_real"] = real
        g64, r64 = gen.astype(np.float64), real.astype(np.float64)
        margins = {}
        for k in KS:
            arrays[f"{name}_prdc_f64_k{k}"] = run_prdc(g64, r64, k)
            arrays[f"{name}_prdc_f32_k{k}"] = run_prdc(gen, real, k)
            margins[f"k{k}"] = smallest_margin(gen, real, k)
        arrays[f"{name}_tfid_f64_k{TFID_K}"] = run_tfid(g64, r64)
        arrays[f"{name}_tfid_f32_k{TFID_K}"] = run_tfid(gen, real)
        meta["cases"].append({
            "name": name,
            "what": what,
            "n_gen": int(gen.shape[0]),
            "n_real": int(real.shape[0]),
            "dim": int(gen.shape[1]),
            "smallest_relative_margin": margins,
        })
        print(name, gen.shape, real.shape, "margins", margins)
        for key in sorted(arrays):
            if key.startswith(name + "_") and arrays[key].dtype == np.float64:
                print("   ", key, arrays[key])
    np.savez(os.path.join(args.out, "prdc_cases.npz"), **arrays)
    with open(os.path.join(args.out, "prdc_cases.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
