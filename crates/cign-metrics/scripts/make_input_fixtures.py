#!/usr/bin/env python3
"""Writes the input fixtures of cign-metrics' tests/inputs.rs (issue 13). Run by hand (not by CI):

    python3 -m venv /tmp/refvenv-inputs
    /tmp/refvenv-inputs/bin/pip install pillow==12.0.0 numpy scipy
    /tmp/refvenv-inputs/bin/python crates/cign-metrics/scripts/make_input_fixtures.py

1. tests/fixtures/formats/: the 12 digits of `set_a` (pytorch_fid_features.npz, MNIST
test images 100-111) saved by Pillow in the formats pytorch-fid reads besides PNG, as in
issue 13's mixed folder: 5 PNG, 2 BMP, 1 TIF, 1 TIFF, 1 lossless WebP, 1 PPM, 1 PGM, some grey
(mode L) and some RGB. Every file is read back the way pytorch-fid reads it (`Image.open(path).convert('RGB')`) and
must give exactly the digit's pixels, repeated over three channels. pytorch-fid therefore sees
the same arrays as for the PNG files of set_a, and its FID against set_b is the `fid_ab` already
in pytorch_fid_features.npz (made by make_fixtures.py with pytorch-fid's own code): the test
`every_format_pytorch_fid_reads_gives_the_png_fid` compares cign-fid on this folder with that
value. Names are the image's index, so the sorted order is the order of set_a.

2. tests/fixtures/stats/: statistics files made with NumPy from pytorch-fid's --save-stats
   file of set_a at dims 64 (set_a_d64_pytorch_fid.npz):
     f16.npz          mu and sigma cast to float16 (pytorch-fid reads these);
     f16_as_f64.npz   the same float16 values widened to float64;
     f32.npz          mu and sigma cast to float32;
     asymmetric.npz   sigma[5, 3] += 0.1 * max|sigma| (not a covariance: not symmetric);
     nan.npz          mu[7] = NaN;
     mu.npy           np.save of mu alone (a .npy where an .npz is expected);
   and stats.json with the Frechet distances of f16 and f32 against the float64 original,
   computed here with SciPy's sqrtm in float64 on the widened values (the formula
   |mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrtm(S1 S2)), written out below).
"""

import json
import os
import sys

import numpy as np
import PIL
import scipy
import scipy.linalg
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures")
OUT = os.path.join(FIXTURES, "formats")

# index -> (extension, Pillow format, mode, save options)
PLAN = [
    ("png", "PNG", "L", {}),
    ("bmp", "BMP", "L", {}),
    ("png", "PNG", "RGB", {}),
    ("tif", "TIFF", "L", {}),
    ("png", "PNG", "L", {}),
    ("tiff", "TIFF", "RGB", {"compression": "tiff_lzw"}),
    ("bmp", "BMP", "RGB", {}),
    ("webp", "WEBP", "RGB", {"lossless": True}),
    ("ppm", "PPM", "RGB", {}),
    ("png", "PNG", "RGB", {}),
    ("pgm", "PPM", "L", {}),
    ("png", "PNG", "L", {}),
]


def frechet(mu1, s1, mu2, s2):
    """The Frechet distance of two Gaussians in float64 with SciPy's matrix square root."""
    mu1, s1, mu2, s2 = (np.asarray(x, dtype=np.float64) for x in (mu1, s1, mu2, s2))
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = np.real(covmean)
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def stats():
    src = np.load(os.path.join(FIXTURES, "set_a_d64_pytorch_fid.npz"))
    mu, sigma = src["mu"], src["sigma"]
    out = os.path.join(FIXTURES, "stats")
    os.makedirs(out, exist_ok=True)
    p = lambda name: os.path.join(out, name)
    mu16, s16 = mu.astype(np.float16), sigma.astype(np.float16)
    np.savez(p("f16.npz"), mu=mu16, sigma=s16)
    np.savez(p("f16_as_f64.npz"), mu=mu16.astype(np.float64), sigma=s16.astype(np.float64))
    mu32, s32 = mu.astype(np.float32), sigma.astype(np.float32)
    np.savez(p("f32.npz"), mu=mu32, sigma=s32)
    asym = sigma.copy()
    asym[5, 3] += 0.1 * np.abs(sigma).max()
    np.savez(p("asymmetric.npz"), mu=mu, sigma=asym)
    bad = mu.copy()
    bad[7] = np.nan
    np.savez(p("nan.npz"), mu=bad, sigma=sigma)
    np.save(p("mu.npy"), mu)
    assert np.array_equal(s16, s16.T) and np.array_equal(s32, s32.T)
    record = {
        "script": "crates/cign-metrics/scripts/make_input_fixtures.py",
        "source": "set_a_d64_pytorch_fid.npz (pytorch-fid --save-stats of set_a, dims 64)",
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "fid_f16_vs_f64": frechet(mu16, s16, mu, sigma),
        "fid_f32_vs_f64": frechet(mu32, s32, mu, sigma),
        "asymmetric_entry": [5, 3],
    }
    with open(os.path.join(FIXTURES, "stats.json"), "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    print(f"wrote {out}: {record}")


def main():
    formats()
    stats()


def formats():
    set_a = np.load(os.path.join(FIXTURES, "pytorch_fid_features.npz"))["set_a"]
    assert set_a.shape == (12, 28, 28) and set_a.dtype == np.uint8
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):  # only this script writes there
        os.remove(os.path.join(OUT, name))
    files = []
    for i, (ext, fmt, mode, opts) in enumerate(PLAN):
        img = Image.fromarray(set_a[i], mode="L")
        if mode == "RGB":
            img = img.convert("RGB")
        path = os.path.join(OUT, f"{i:04d}.{ext}")
        img.save(path, fmt, **opts)
        back = np.asarray(Image.open(path).convert("RGB"))
        want = np.repeat(set_a[i][:, :, None], 3, axis=2)
        if not np.array_equal(back, want):
            sys.exit(f"{path}: Pillow does not read back the digit exactly")
        files.append({"file": os.path.basename(path), "format": fmt, "mode": mode})
    with open(os.path.join(FIXTURES, "formats.json"), "w") as f:
        json.dump(
            {
                "script": "crates/cign-metrics/scripts/make_format_fixtures.py",
                "source": "set_a of pytorch_fid_features.npz (MNIST test 100-111)",
                "pillow": PIL.__version__,
                "numpy": np.__version__,
                "read_back_exact": True,
                "files": files,
            },
            f,
            indent=2,
        )
        f.write("\n")
    print(f"wrote {len(files)} files to {OUT}")


if __name__ == "__main__":
    main()
