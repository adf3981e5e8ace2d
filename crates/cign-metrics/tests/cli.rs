//! The `cign-fid` command line tool: folders of PNGs, IDX files and `.npz` statistics as
//! inputs, `--save-stats`, `--per-class`, `--kid`, `--prdc`, `--json`, and clear errors. FID
//! values are checked against pytorch-fid's (fixtures from scripts/make_fixtures.py),
//! precision/recall/density/coverage against the library on the same features and against
//! prdc 0.2 on pytorch-fid's features (fixture from scripts/make_prdc_cli_fixture.py).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{fixture, Npz};
use serde_json::Value;
use tch::{Device, Tensor};

use cign_metrics::{
    collect, per_class_prdc, prdc_tensors, CollectOptions, ImageFiles, InceptionExtractor, Prdc,
    PrdcOptions, Tap,
};

fn cign_fid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cign-fid"))
        .args(args)
        .arg("--no-progress")
        .output()
        .expect("run cign-fid")
}

fn ok_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = cign_fid(&all);
    assert!(
        out.status.success(),
        "cign-fid {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

fn write_pngs(set: &ndarray::ArrayD<u8>, dir: &Path) {
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    let n = set.shape()[0];
    for i in 0..n {
        let px: Vec<u8> = set
            .index_axis(ndarray::Axis(0), i)
            .iter()
            .copied()
            .collect();
        let img = image::GrayImage::from_raw(28, 28, px).unwrap();
        // Half of the files in a sub-folder: inputs are searched recursively, sorted by path.
        let path = if i % 2 == 0 {
            dir.join(format!("{i:04}.png"))
        } else {
            dir.join("nested").join(format!("{i:04}.png"))
        };
        img.save(path).unwrap();
    }
}

fn fid_of(v: &Value, t: usize) -> f64 {
    v["taps"][t]["fid"].as_f64().unwrap()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn folders_idx_and_stats_files_give_pytorch_fids() {
    let mut npz = Npz::open("pytorch_fid_features.npz");
    let set_a = npz.u8("set_a");
    let set_b = npz.u8("set_b");
    let want = npz.f64("fid_ab");
    let want_kid = npz.f64("kid_ab");
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    write_pngs(&set_a, &a);
    write_pngs(&set_b, &b);

    // Folders, two taps in one pass, KID over the full sets.
    let v = ok_json(&[
        "--dims",
        "192,64",
        "--kid",
        "--kid-subset-size",
        "12",
        p(&a),
        p(&b),
    ]);
    assert_eq!(v["n_a"], 12);
    assert_eq!(v["taps"][0]["dims"], 64);
    assert_eq!(v["taps"][1]["dims"], 192);
    for t in 0..2 {
        let rel = (fid_of(&v, t) - want[t]).abs() / want[t];
        assert!(
            rel < 1e-3,
            "tap {t}: {} vs pytorch-fid {}",
            fid_of(&v, t),
            want[t]
        );
        let k = v["taps"][t]["kid"]["mean"].as_f64().unwrap();
        assert!(
            (k - want_kid[t]).abs() < 1e-3 * want_kid[t].abs() + 1e-6,
            "KID {k} vs {}",
            want_kid[t]
        );
    }

    // Statistics of A saved, then used in place of A.
    let stats = tmp.path().join("a_stats.npz");
    let out = cign_fid(&["--dims", "64", "--save-stats", p(&stats), p(&a)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stats.is_file());
    let v2 = ok_json(&["--dims", "64", p(&stats), p(&b)]);
    assert!((fid_of(&v2, 0) - fid_of(&v, 0)).abs() <= 1e-9 * fid_of(&v, 0));

    // An IDX image file in place of the folder of A.
    let idx = tmp.path().join("a-images-idx3-ubyte");
    let images = cign_data::IdxImages {
        count: 12,
        rows: 28,
        cols: 28,
        pixels: set_a.iter().copied().collect(),
    };
    cign_data::idx::write_idx_images(&idx, &images).unwrap();
    let v3 = ok_json(&["--dims", "64", p(&idx), p(&b)]);
    assert!((fid_of(&v3, 0) - fid_of(&v, 0)).abs() <= 1e-6 * fid_of(&v, 0));

    // Per-class FID with labels (text files; two classes of six images).
    let labels: String = (0..12).map(|i| format!("{}\n", i % 2)).collect();
    let (la, lb) = (tmp.path().join("la.txt"), tmp.path().join("lb.txt"));
    std::fs::write(&la, &labels).unwrap();
    std::fs::write(&lb, &labels).unwrap();
    let v4 = ok_json(&[
        "--dims",
        "64",
        "--per-class",
        "--labels-a",
        p(&la),
        "--labels-b",
        p(&lb),
        p(&a),
        p(&b),
    ]);
    let pc = &v4["taps"][0]["per_class"];
    let classes = pc["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 2);
    assert_eq!(classes[0]["n_generated"], 6);
    let mean = (classes[0]["fid"].as_f64().unwrap() + classes[1]["fid"].as_f64().unwrap()) / 2.0;
    assert!((pc["mean"].as_f64().unwrap() - mean).abs() < 1e-12);
    assert!((pc["all_class"].as_f64().unwrap() - fid_of(&v, 0)).abs() < 1e-9 * fid_of(&v, 0));

    // Text output.
    let out = cign_fid(&["--dims", "64", p(&stats), p(&stats)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("FID64: "), "{text}");
}

#[test]
fn bad_inputs_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let missing: PathBuf = tmp.path().join("no-such-folder");
    let out = cign_fid(&["--dims", "64", p(&missing), p(&missing)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-folder"), "{err}");

    let out = cign_fid(&["--dims", "100", p(tmp.path()), p(tmp.path())]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("100"));

    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = cign_fid(&["--dims", "64", p(&empty), p(&empty)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no image file") && err.contains("it is empty"),
        "{err}"
    );

    let out = cign_fid(&["--per-class", p(&empty), p(&empty)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--labels-a"));
}

/// The four numbers of a JSON object with the keys precision, recall, density, coverage.
fn prdc_json(v: &Value) -> [f64; 4] {
    ["precision", "recall", "density", "coverage"].map(|k| {
        v[k].as_f64()
            .unwrap_or_else(|| panic!("key {k} missing in {v}"))
    })
}

fn values(p: &Prdc) -> [f64; 4] {
    [p.precision, p.recall, p.density, p.coverage]
}

/// Equal counts: the values agree to the last bits (serde_json parses a printed f64 to within
/// an ulp, not always exactly), while one count more or less moves a value by at least
/// 1 / (k * 12) here.
fn assert_same(got: [f64; 4], want: [f64; 4], what: &str) {
    for (x, y) in got.iter().zip(want) {
        assert!((x - y).abs() <= 1e-12, "{what}: got {got:?}, want {want:?}");
    }
}

/// Features of the images of `dir` at 64 and 2048, read and batched as cign-fid reads them
/// (sorted paths, batch 50), and the set index of each row (the file names are `NNNN.png`).
fn folder_features(ex: &InceptionExtractor, dir: &Path) -> (Tensor, Tensor, Vec<usize>) {
    let files = ImageFiles::from_folder(dir).unwrap();
    let index = files
        .files()
        .iter()
        .map(|f| f.file_stem().unwrap().to_str().unwrap().parse().unwrap())
        .collect();
    let opts = CollectOptions {
        keep_features: true,
        progress: false,
        ..Default::default()
    };
    let c = collect(ex, &files, None, &[Tap::D64, Tap::D2048], &opts).unwrap();
    let f = |t| c.tap(t).unwrap().features.as_ref().unwrap().shallow_clone();
    (f(Tap::D64), f(Tap::D2048), index)
}

/// Largest Euclidean distance between a row of `ours` (in file order, `index` gives the set
/// row of each) and the same image's row of `reference` (`[n, d]` in set order).
fn largest_row_gap(ours: &Tensor, index: &[usize], reference: &ndarray::ArrayD<f64>) -> f64 {
    let ours: Vec<f32> = ours.contiguous().view([-1]).try_into().unwrap();
    let d = reference.shape()[1];
    let mut worst = 0.0f64;
    for (row, &i) in index.iter().enumerate() {
        let gap: f64 = (0..d)
            .map(|j| (f64::from(ours[row * d + j]) - reference[[i, j]]).powi(2))
            .sum::<f64>()
            .sqrt();
        worst = worst.max(gap);
    }
    worst
}

/// `cign-fid A B --dims 2048 --prdc --nearest-k 5 --json` gives the library's numbers on the
/// same features, and prdc 0.2's numbers on pytorch-fid's features of the same images.
///
/// Tolerance: the four values are ratios of counts, so equal counts give equal values up to
/// the rounding of one division (1e-12 admits that and nothing else: one count more moves a
/// value by at least 1 / (5 * 12)). Our features differ from pytorch-fid's by round-off; a
/// count can differ only if a distance lies within 4 e of a radius, e the largest row
/// distance between the two feature sets, so the test first checks that 4 e is below the
/// smallest such gap the fixture script measured.
#[test]
fn prdc_of_folders_equals_the_library_and_prdc_0_2() {
    let mut npz = Npz::open("pytorch_fid_features.npz");
    let (set_a, set_b) = (npz.u8("set_a"), npz.u8("set_b"));
    let mut reference = Npz::open("prdc/prdc_cli.npz");
    let meta: Value = serde_json::from_reader(
        std::fs::File::open(fixture("prdc/prdc_cli.json")).expect("prdc_cli.json"),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    write_pngs(&set_a, &a);
    write_pngs(&set_b, &b);

    let v = ok_json(&["--dims", "2048", "--prdc", "--nearest-k", "5", p(&a), p(&b)]);
    assert_eq!(v["prdc_dims"], 2048);
    assert_eq!(v["nearest_k"], 5);
    let cli = prdc_json(&v);

    // The library on the same features (same reading, order and batches as cign-fid).
    let ex = InceptionExtractor::from_default_weights(Device::Cpu).unwrap();
    let (fa64, fa, index_a) = folder_features(&ex, &a);
    let (fb64, fb, index_b) = folder_features(&ex, &b);
    let k5 = PrdcOptions::default();
    assert_eq!(k5.nearest_k, 5);
    assert_same(cli, values(&prdc_tensors(&fa, &fb, &k5).unwrap()), "k 5");

    // prdc 0.2 on pytorch-fid's features of the same images.
    let e = largest_row_gap(&fa, &index_a, &reference.f64("feat_a")).max(largest_row_gap(
        &fb,
        &index_b,
        &reference.f64("feat_b"),
    ));
    for k in ["k5", "k3"] {
        let gap = meta["smallest_gap"][k].as_f64().unwrap();
        assert!(
            4.0 * e < gap,
            "features differ by {e:e}, smallest gap at {k} {gap:e}"
        );
    }
    eprintln!("largest feature row gap to pytorch-fid: {e:e}");
    for (k, ours) in [("k5", cli), ("k3", [0.0; 4])] {
        let want = reference.f64(&format!("prdc_{k}"));
        let ours = if k == "k3" {
            let o = PrdcOptions {
                nearest_k: 3,
                ..PrdcOptions::default()
            };
            values(&prdc_tensors(&fa, &fb, &o).unwrap())
        } else {
            ours
        };
        let want: Vec<f64> = want.iter().copied().collect();
        assert_same(
            ours,
            [want[0], want[1], want[2], want[3]],
            &format!("prdc 0.2 at {k}"),
        );
    }

    // Without 2048 in --dims: the largest requested tap; per class with --per-class.
    let labels: String = (0..12).map(|i| format!("{}\n", i % 2)).collect();
    let la = tmp.path().join("labels.txt");
    std::fs::write(&la, &labels).unwrap();
    let v = ok_json(&[
        "--dims",
        "64",
        "--prdc",
        "--nearest-k",
        "3",
        "--per-class",
        "--labels-a",
        p(&la),
        "--labels-b",
        p(&la),
        p(&a),
        p(&b),
    ]);
    assert_eq!(v["prdc_dims"], 64);
    assert_eq!(v["nearest_k"], 3);
    let k3 = PrdcOptions {
        nearest_k: 3,
        ..PrdcOptions::default()
    };
    assert_eq!(
        prdc_json(&v),
        values(&prdc_tensors(&fa64, &fb64, &k3).unwrap())
    );
    let l: Vec<u8> = (0..12).map(|i| (i % 2) as u8).collect();
    let want = per_class_prdc(&fa64, &l, &fb64, &l, &k3).unwrap();
    let pc = &v["prdc_per_class"];
    assert_eq!(pc["classes"].as_array().unwrap().len(), 2);
    for (got, want) in pc["classes"].as_array().unwrap().iter().zip(&want.classes) {
        assert_eq!(got["class"], want.class);
        assert_eq!(got["n_generated"], 6);
        assert_same(prdc_json(got), values(&want.metrics), "per class");
    }
    assert_same(prdc_json(&pc["mean"]), values(&want.mean), "class mean");

    // Text output: the tap, k and the four numbers.
    let out = cign_fid(&["--dims", "64", "--prdc", "--nearest-k", "2", p(&a), p(&b)]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("PRDC at 64 features, nearest_k 2 (A generated, B real)"),
        "{text}"
    );
    let k2 = PrdcOptions {
        nearest_k: 2,
        ..PrdcOptions::default()
    };
    let want = prdc_tensors(&fa64, &fb64, &k2).unwrap();
    for (name, value) in ["precision", "recall", "density", "coverage"]
        .iter()
        .zip(values(&want))
    {
        assert!(
            text.contains(&format!("\n{name}: {value}\n")),
            "{name} {value}: {text}"
        );
    }
}

/// Every --prdc mistake is one `error:` line with exit code 2, found before the network runs.
#[test]
fn prdc_argument_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let mut npz = Npz::open("pytorch_fid_features.npz");
    let set_a = npz.u8("set_a");
    let small = set_a
        .slice_axis(ndarray::Axis(0), ndarray::Slice::from(0..4))
        .to_owned();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("small"));
    write_pngs(&set_a, &a);
    write_pngs(&small, &b);
    let stats = fixture("set_a_d64_pytorch_fid.npz");
    let one_error = |args: &[&str], needles: &[&str]| {
        let out = cign_fid(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?}: {err}");
        assert!(lines[0].starts_with("error: "), "{err}");
        for n in needles {
            assert!(lines[0].contains(n), "{args:?}: '{n}' not in {err}");
        }
    };
    one_error(
        &["--prdc", "--nearest-k", "0", p(&a), p(&a)],
        &["--nearest-k 0", "at least 1"],
    );
    one_error(
        &["--nearest-k", "3", p(&a), p(&a)],
        &["--nearest-k", "--prdc"],
    );
    one_error(&["--prdc", "--nearest-k", "x", p(&a), p(&a)], &["x"]);
    // Four images in B: too few for k = 5 (default) and for k = 4, named as B with its path.
    one_error(
        &["--prdc", p(&a), p(&b)],
        &["input B", p(&b), "4 image(s)", "at least 7"],
    );
    one_error(
        &["--prdc", "--nearest-k", "4", p(&b), p(&a)],
        &["input A", "at least 6"],
    );
    one_error(
        &["--prdc", "--nearest-k", "12", p(&a), p(&a)],
        &["input A", "12 image(s)", "at least 14"],
    );
    // K + 1 images are refused too, as prdc refuses them (its argpartition needs K + 2).
    one_error(
        &["--prdc", "--nearest-k", "11", p(&a), p(&a)],
        &["input A", "12 image(s)", "at least 13"],
    );
    one_error(
        &["--dims", "64", "--prdc", p(&stats), p(&a)],
        &["input A", "need images"],
    );
    one_error(
        &[
            "--prdc",
            "--save-stats",
            p(&tmp.path().join("s.npz")),
            p(&a),
        ],
        &["--prdc"],
    );
    // Per class: six images of each class in A, two in B: too few for k = 2 in class 0 of B.
    let labels: String = (0..12).map(|i| format!("{}\n", i % 2)).collect();
    let la = tmp.path().join("la.txt");
    std::fs::write(&la, &labels).unwrap();
    let lb = tmp.path().join("lb.txt");
    std::fs::write(&lb, "0\n1\n0\n1\n").unwrap();
    one_error(
        &[
            "--prdc",
            "--nearest-k",
            "2",
            "--per-class",
            "--labels-a",
            p(&la),
            "--labels-b",
            p(&lb),
            p(&a),
            p(&b),
        ],
        &["input B", "class 0", "2 images", "at least 4 per class"],
    );
}

/// `--precision bf16`: recorded in the JSON output as `inception_precision` (apart from
/// --prdc's `precision`) and as a first text line, FID within 2e-2 relative of pytorch-fid's
/// float32 one (the bound of tests/bf16.rs) and different from fp32's; the default is fp32
/// and says so; a bad value is one `error:` line, exit code 2. (Tap 64 only: the 12 + 12
/// images at two taps would take twice as long.)
#[test]
fn precision_flag() {
    let mut npz = Npz::open("pytorch_fid_features.npz");
    let want = npz.f64("fid_ab")[0];
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let set_a = npz.u8("set_a");
    write_pngs(&set_a, &a);
    write_pngs(&npz.u8("set_b"), &b);

    let fp32 = ok_json(&["--dims", "64", "--device", "cpu", p(&a), p(&b)]);
    assert_eq!(fp32["inception_precision"], "fp32");
    // with --prdc: each key once (serde's flatten would write a second "precision" silently)
    let out = cign_fid(&[
        "--dims",
        "64",
        "--device",
        "cpu",
        "--precision",
        "bf16",
        "--prdc",
        "--nearest-k",
        "3",
        "--json",
        p(&a),
        p(&b),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw = String::from_utf8_lossy(&out.stdout);
    assert_eq!(raw.matches("\"precision\"").count(), 1, "{raw}");
    assert_eq!(raw.matches("\"inception_precision\"").count(), 1, "{raw}");
    let bf16: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(bf16["inception_precision"], "bf16");
    assert!(bf16["precision"].as_f64().is_some(), "{raw}");
    let (f, g) = (fid_of(&fp32, 0), fid_of(&bf16, 0));
    assert!((f - want).abs() < 1e-3 * want, "fp32 {f} vs {want}");
    assert!((g - want).abs() < 2e-2 * want, "bf16 {g} vs {want}");
    assert!(f != g, "bf16 gave fp32's FID {f}");

    // text: the precision line first (only when it is not fp32); two images per side
    let two = tmp.path().join("two");
    let first_two = set_a
        .slice_axis(ndarray::Axis(0), ndarray::Slice::from(0..2))
        .to_owned();
    write_pngs(&first_two, &two);
    let out = cign_fid(&["--dims", "64", "--precision", "bf16", p(&two), p(&two)]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("inception precision: bf16\nFID64: "),
        "{text}"
    );

    for bad in ["fp16", "BF16", ""] {
        let out = cign_fid(&["--precision", bad, p(&a), p(&b)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{bad}: {err}");
        assert!(lines[0].starts_with("error: "), "{err}");
        assert!(lines[0].contains("fp32 or bf16"), "{err}");
    }
}
