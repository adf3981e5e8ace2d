//! Issue 13: what FID users feed a tool, and what `cign-fid` / `cign-classifier` / the library
//! do with it. Each kind of input has a test with the right value or message; every error is
//! one `error:` line with exit code 2.
//!
//! Reference values: pytorch-fid's FID of set_a against set_b at dims 64 (`fid_ab[0]` of
//! pytorch_fid_features.npz, scripts/make_fixtures.py); the same digits in every other format
//! pytorch-fid reads (tests/fixtures/formats, scripts/make_input_fixtures.py, each file checked
//! there to read back exactly through PIL's `convert("RGB")`, so pytorch-fid's FID of that
//! folder is `fid_ab[0]` too); statistics files written by NumPy with SciPy distances
//! (tests/fixtures/stats, stats.json, same script). Network runs use tap 64 and 12-14 images.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cign_metrics::device::cuda_device_count;
use cign_metrics::{ConditionalClassifier, InceptionExtractor, MetricsError};
use common::{fixture, Npz};
use serde_json::Value;
use tch::{Device, Kind, Tensor};

/// Relative tolerance against pytorch-fid's FID (as in tests/cli.rs).
const PYTORCH_FID_RTOL: f64 = 1e-3;

fn run(bin: &str, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin);
    cmd.args(args).env_remove("RUST_LOG");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run binary")
}

fn cign_fid(args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.push("--no-progress");
    run(env!("CARGO_BIN_EXE_cign-fid"), &all, &[])
}

/// cign-fid with FID weights that do not exist: any error it reports instead of the weights
/// error was found before the weights (and the network) were touched.
fn cign_fid_without_weights(args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.push("--no-progress");
    run(
        env!("CARGO_BIN_EXE_cign-fid"),
        &all,
        &[(
            "CIGN_FID_WEIGHTS",
            "/nonexistent/cign-test/weights.safetensors",
        )],
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts exit code 2 and exactly one stderr line, `error: ...` containing every `wanted`.
fn assert_one_error_line(out: &Output, wanted: &[&str]) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "exit code, stderr: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    for w in wanted {
        assert!(lines[0].contains(w), "'{w}' missing from: {err}");
    }
    assert!(
        !err.contains("panicked") && !err.contains("frame #"),
        "{err}"
    );
    lines[0].to_string()
}

fn ok_json(out: &Output) -> Value {
    assert!(out.status.success(), "failed: {}", stderr(out));
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

fn fid64(v: &Value) -> f64 {
    assert_eq!(v["taps"][0]["dims"], 64);
    v["taps"][0]["fid"].as_f64().unwrap()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Writes the digits `set` (`[n, 28, 28]`) as 8-bit grey PNGs `dir/0000.png`, ...
fn write_pngs(set: &ndarray::ArrayD<u8>, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..set.shape()[0] {
        let px: Vec<u8> = set
            .index_axis(ndarray::Axis(0), i)
            .iter()
            .copied()
            .collect();
        image::GrayImage::from_raw(28, 28, px)
            .unwrap()
            .save(dir.join(format!("{i:04}.png")))
            .unwrap();
    }
}

/// Writes the digits as 16-bit grey PNGs holding `v * 257` (the same intensities).
fn write_pngs_16bit(set: &ndarray::ArrayD<u8>, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..set.shape()[0] {
        let px: Vec<u16> = set
            .index_axis(ndarray::Axis(0), i)
            .iter()
            .map(|&v| v as u16 * 257)
            .collect();
        image::ImageBuffer::<image::Luma<u16>, _>::from_raw(28, 28, px)
            .unwrap()
            .save(dir.join(format!("{i:04}.png")))
            .unwrap();
    }
}

struct Sets {
    a: ndarray::ArrayD<u8>,
    b: ndarray::ArrayD<u8>,
    /// pytorch-fid's FID of set_a against set_b at dims 64.
    want64: f64,
}

fn sets() -> Sets {
    let mut npz = Npz::open("pytorch_fid_features.npz");
    Sets {
        a: npz.u8("set_a"),
        b: npz.u8("set_b"),
        want64: npz.f64("fid_ab")[0],
    }
}

fn assert_pytorch_fid(got: f64, want: f64, what: &str) {
    let rel = (got - want).abs() / want;
    assert!(
        rel < PYTORCH_FID_RTOL,
        "{what}: {got} vs pytorch-fid {want} (rel {rel:.2e})"
    );
}

/// Lines of stderr that contain `needle`.
fn lines_with(err: &str, needle: &str) -> usize {
    err.lines().filter(|l| l.contains(needle)).count()
}

// Issue 13 item 1: a CUDA request on a machine without (that) CUDA device is an error in the
// library and one line with exit code 2 in every binary, never a panic.
#[test]
fn cuda_requests_without_the_device_are_errors_everywhere() {
    let n = cuda_device_count();
    let mut devices = vec![format!("cuda:{n}")];
    if n == 0 {
        devices.push("cuda".into());
        devices.push("cuda:3".into());
    }
    let tmp = tempfile::tempdir().unwrap();
    for dev in &devices {
        let out = cign_fid(&["--device", dev, p(tmp.path()), p(tmp.path())]);
        let line = assert_one_error_line(&out, &["--device", "CUDA"]);
        eprintln!("cign-fid --device {dev}: {line}");
        for sub in ["train", "eval"] {
            let out = run(
                env!("CARGO_BIN_EXE_cign-classifier"),
                &[sub, "--device", dev, "--data-dir", p(tmp.path())],
                &[],
            );
            assert_one_error_line(&out, &["--device", "CUDA"]);
        }
    }
    // A device that is no device at all: clap's error, one line, exit 2.
    let out = cign_fid(&["--device", "gpu", p(tmp.path()), p(tmp.path())]);
    assert_one_error_line(&out, &["'gpu'", "auto, cpu, cuda or cuda:N"]);

    // The library: Err, checked before the weights are read (or downloaded).
    let cuda = Device::Cuda(n);
    let weights = cign_metrics::weights::fid_weights().expect("FID weights");
    for result in [
        InceptionExtractor::new(&weights, cuda),
        InceptionExtractor::from_default_weights(cuda),
    ] {
        let err = result.unwrap_err();
        assert!(matches!(err, MetricsError::Device(_)), "{err}");
        assert!(err.to_string().contains(&format!("cuda:{n}")), "{err}");
    }
    assert!(matches!(
        ConditionalClassifier::new(cuda).unwrap_err(),
        MetricsError::Device(_)
    ));
    assert!(matches!(
        ConditionalClassifier::load(&tmp.path().join("none.safetensors"), cuda).unwrap_err(),
        MetricsError::Device(_)
    ));
    let err = cign_metrics::train_and_cache(
        cign_data::DatasetKind::Mnist,
        &tmp.path().join("no-data"),
        &Default::default(),
        cuda,
        None,
    )
    .unwrap_err();
    assert!(matches!(err, MetricsError::Device(_)), "{err}");
    // What the checks stand in front of: libtorch's fallible move is an Err too, and the
    // crate's libtorch errors keep one line of it.
    let moved = Tensor::zeros([1], (Kind::Float, Device::Cpu)).f_to_device(cuda);
    let torch = MetricsError::from(moved.unwrap_err()).to_string();
    assert!(
        !torch.contains('\n') && !torch.contains("Exception raised"),
        "{torch}"
    );
}

// Issue 13 item 2: every format pytorch-fid reads is read, with the PNGs' FID; what is not
// read is counted and said once; a folder of unreadable files names their extensions.
#[test]
fn every_format_pytorch_fid_reads_gives_the_png_fid() {
    let s = sets();
    let tmp = tempfile::tempdir().unwrap();
    let (mixed, png_a, b) = (
        tmp.path().join("mixed"),
        tmp.path().join("png_a"),
        tmp.path().join("b"),
    );
    std::fs::create_dir_all(&mixed).unwrap();
    let mut exts = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(fixture("formats")).unwrap() {
        let path = entry.unwrap().path();
        exts.insert(path.extension().unwrap().to_str().unwrap().to_string());
        std::fs::copy(&path, mixed.join(path.file_name().unwrap())).unwrap();
    }
    assert_eq!(
        exts.into_iter().collect::<Vec<_>>(),
        ["bmp", "pgm", "png", "ppm", "tif", "tiff", "webp"]
    );
    std::fs::write(mixed.join("notes.txt"), "generated with seed 0").unwrap();
    std::fs::write(mixed.join("preview.gif"), "GIF89a").unwrap();
    write_pngs(&s.a, &png_a);
    write_pngs(&s.b, &b);

    let out = cign_fid(&["--dims", "64", "--json", p(&mixed), p(&b)]);
    let v = ok_json(&out);
    assert_eq!(v["n_a"], 12, "all 12 digits read");
    let fid_mixed = fid64(&v);
    assert_pytorch_fid(fid_mixed, s.want64, "mixed formats");
    let err = stderr(&out);
    assert_eq!(lines_with(&err, "skipped"), 1, "said once: {err}");
    assert!(
        err.contains("skipped 2 file(s) of a format not read (.gif x1, .txt x1)"),
        "{err}"
    );

    let fid_png = fid64(&ok_json(&cign_fid(&[
        "--dims",
        "64",
        "--json",
        p(&png_a),
        p(&b),
    ])));
    assert_pytorch_fid(fid_png, s.want64, "PNG");
    // Same pixels, same batches: the same features.
    assert!(
        (fid_mixed - fid_png).abs() <= 1e-9 * fid_png,
        "{fid_mixed} vs {fid_png}"
    );
    eprintln!(
        "FID64 mixed formats {fid_mixed}, PNG {fid_png}, pytorch-fid {}",
        s.want64
    );

    // Only unsupported files: an error naming what was found, before the network.
    let gifs = tmp.path().join("gifs");
    std::fs::create_dir_all(&gifs).unwrap();
    for name in ["a.gif", "b.gif", "c.svg"] {
        std::fs::write(gifs.join(name), "x").unwrap();
    }
    let out = cign_fid_without_weights(&["--dims", "64", p(&gifs), p(&b)]);
    assert_one_error_line(&out, &["input A", "gifs", ".gif x2", ".svg x1", "webp"]);
}

// Issue 13 item 3: 16-bit files are scaled to 8 bits (the same FID as the 8-bit files) and
// a single warning per run says that pytorch-fid reads them differently.
#[test]
fn sixteen_bit_pngs_are_scaled_and_warned_once() {
    let s = sets();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a16"), tmp.path().join("b16"));
    write_pngs_16bit(&s.a, &a);
    write_pngs_16bit(&s.b, &b);
    let out = cign_fid(&["--dims", "64", "--json", p(&a), p(&b)]);
    let v = ok_json(&out);
    assert_pytorch_fid(fid64(&v), s.want64, "16-bit PNGs of the same digits");
    let err = stderr(&out);
    assert_eq!(
        lines_with(&err, "more than 8 bits per sample"),
        1,
        "one warning for 24 files: {err}"
    );
    assert!(err.contains("pytorch-fid"), "{err}");
}

// Issue 13 item 4: the wrong kind of file says what it is and what to pass instead.
#[test]
fn wrong_kinds_of_path_say_what_they_are() {
    let s = sets();
    let tmp = tempfile::tempdir().unwrap();
    let b = tmp.path().join("b");
    write_pngs(&s.b, &b);
    let png = b.join("0000.png");
    let labels = tmp.path().join("t10k-labels-idx1-ubyte");
    cign_data::idx::write_idx_labels(&labels, &[1u8; 12]).unwrap();
    let images = tmp.path().join("a-images-idx3-ubyte");
    let idx = cign_data::IdxImages {
        count: 12,
        rows: 28,
        cols: 28,
        pixels: s.a.iter().copied().collect(),
    };
    cign_data::idx::write_idx_images(&images, &idx).unwrap();
    let npy = fixture("stats/mu.npy");

    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec![p(&png), p(&b)],
            vec![
                "input A",
                "a single PNG image file: pass the folder that holds it",
            ],
        ),
        (
            vec![p(&b), p(&npy)],
            vec![
                "input B",
                "mu.npy",
                "a .npy file",
                "statistics must be an .npz with the arrays mu and sigma",
            ],
        ),
        (
            vec![p(&labels), p(&b)],
            vec![
                "input A",
                "an IDX label file (magic 2049), not images",
                "--labels-a",
            ],
        ),
        (
            vec![
                "--per-class",
                "--labels-a",
                p(&images),
                "--labels-b",
                p(&labels),
                p(&images),
                p(&b),
            ],
            vec![
                "labels of input A",
                "an IDX image file (magic 2051), not labels",
            ],
        ),
    ];
    for (args, wanted) in cases {
        let mut all = vec!["--dims", "64"];
        all.extend(args);
        let line = assert_one_error_line(&cign_fid_without_weights(&all), &wanted);
        assert!(
            !line.contains("magic number"),
            "not the IDX reader's message: {line}"
        );
    }
}

// Issue 13 item 5: statistics that cannot be right are refused naming the file; float16 and
// float32 statistics are read, widened to float64.
#[test]
fn statistics_files_are_checked_and_float16_is_read() {
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("stats.json")).unwrap()).unwrap();
    let original = fixture("set_a_d64_pytorch_fid.npz");
    let stats = |name: &str| fixture(&format!("stats/{name}"));

    let out =
        cign_fid_without_weights(&["--dims", "64", p(&stats("asymmetric.npz")), p(&original)]);
    assert_one_error_line(
        &out,
        &[
            "input A",
            "asymmetric.npz",
            "sigma is not symmetric",
            "sigma[5, 3]",
        ],
    );
    let out = cign_fid_without_weights(&["--dims", "64", p(&original), p(&stats("nan.npz"))]);
    assert_one_error_line(&out, &["input B", "nan.npz", "mu[7] is NaN"]);

    // Symmetric with a positive diagonal, but not positive semi-definite (a 2x2 block with
    // eigenvalues 3 and -1): pytorch-fid raises on it; so does cign-fid, naming the input.
    let tmp = tempfile::tempdir().unwrap();
    let mut sigma = ndarray::Array2::<f64>::eye(64);
    sigma[[0, 1]] = 2.0;
    sigma[[1, 0]] = 2.0;
    let indefinite = tmp.path().join("indefinite.npz");
    cign_metrics::npz::save_stats(
        &indefinite,
        &cign_metrics::Stats {
            mu: ndarray::Array1::zeros(64),
            sigma,
            n: 0,
        },
    )
    .unwrap();
    let out = cign_fid_without_weights(&["--dims", "64", p(&original), p(&indefinite)]);
    assert_one_error_line(
        &out,
        &[
            "FID64",
            "input B",
            "indefinite.npz",
            "not positive semi-definite",
        ],
    );

    // Both sides statistics: no network, no weights needed.
    let fid = |x: &Path, y: &Path| {
        fid64(&ok_json(&cign_fid_without_weights(&[
            "--dims",
            "64",
            "--json",
            p(x),
            p(y),
        ])))
    };
    let f16 = fid(&stats("f16.npz"), &original);
    let widened = fid(&stats("f16_as_f64.npz"), &original);
    assert_eq!(f16, widened, "float16 is widened exactly");
    let f32 = fid(&stats("f32.npz"), &original);
    // SciPy's sqrtm on these singular (12 samples, 64 dims) covariances is accurate to about
    // 2e-8 (its float32 value is -2e-8, below the true value 0 and up): absolute tolerance.
    let scipy16 = json["fid_f16_vs_f64"].as_f64().unwrap();
    let scipy32 = json["fid_f32_vs_f64"].as_f64().unwrap();
    eprintln!("f16: {f16} (SciPy {scipy16}); f32: {f32} (SciPy {scipy32})");
    assert!((f16 - scipy16).abs() < 1e-7, "{f16} vs SciPy {scipy16}");
    assert!(
        (f32 - scipy32).abs() < 1e-7 && f32 >= 0.0,
        "{f32} vs SciPy {scipy32}"
    );
    assert!(
        f16 > 10.0 * f32.abs(),
        "float16 rounding shows: {f16} vs {f32}"
    );
}

// Issue 13 item 6: hidden files and folders are skipped (and counted) unless asked for.
#[test]
fn hidden_files_and_folders_are_skipped_unless_asked() {
    let s = sets();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    write_pngs(&s.a, &a);
    write_pngs(&s.b, &b);
    std::fs::create_dir_all(a.join(".ipynb_checkpoints")).unwrap();
    std::fs::copy(
        a.join("0003.png"),
        a.join(".ipynb_checkpoints/0003-checkpoint.png"),
    )
    .unwrap();
    std::fs::copy(a.join("0007.png"), a.join(".0007.png")).unwrap();

    let out = cign_fid(&["--dims", "64", "--json", p(&a), p(&b)]);
    let v = ok_json(&out);
    assert_eq!(v["n_a"], 12);
    let fid_default = fid64(&v);
    assert_pytorch_fid(fid_default, s.want64, "hidden entries skipped");
    let err = stderr(&out);
    assert_eq!(lines_with(&err, "skipped"), 1, "{err}");
    assert!(
        err.contains("1 hidden file(s), 1 hidden folder(s) not searched (.ipynb_checkpoints)")
            && err.contains("--include-hidden"),
        "{err}"
    );

    let out = cign_fid(&["--dims", "64", "--json", "--include-hidden", p(&a), p(&b)]);
    let v = ok_json(&out);
    assert_eq!(v["n_a"], 14, "the copies are counted on request");
    let fid_all = fid64(&v);
    assert!(
        (fid_all - fid_default).abs() > 1e-3 * fid_default,
        "{fid_all}"
    );
    eprintln!(
        "FID64 hidden skipped {fid_default}, included {fid_all}, pytorch-fid {}",
        s.want64
    );
}

// Issue 13 item 7: every argument is validated before any heavy work, and every error names
// the input (A or B), its path and the class where there is one.
#[test]
fn errors_name_the_input_and_come_before_any_work() {
    let s = sets();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, one) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("one"),
    );
    write_pngs(&s.a, &a);
    write_pngs(&s.b, &b);
    write_pngs(
        &s.a.slice_axis(ndarray::Axis(0), (0..1).into()).to_owned(),
        &one,
    );
    let text = |name: &str, labels: &[u8]| -> PathBuf {
        let path = tmp.path().join(name);
        let body: String = labels.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, body).unwrap();
        path
    };
    let two_classes: Vec<u8> = (0..12).map(|i| (i % 2) as u8).collect();
    let la = text("la.txt", &two_classes);
    let mut lonely = two_classes.clone();
    lonely[11] = 0;
    lonely[1] = 2;
    let lb_lonely = text("lb_lonely.txt", &lonely); // class 1: 5, class 2: 1
    let mut three = two_classes.clone();
    three[0] = 2;
    three[2] = 2;
    let lb_three = text("lb_three.txt", &three); // class 2 only in B
    let short = text("short.txt", &two_classes[..11]);
    let stats64 = fixture("set_a_d64_pytorch_fid.npz");

    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["--kid", "--kid-subsets", "0", p(&a), p(&b)],
            vec!["--kid-subsets", "must be at least 1"],
        ),
        (
            vec!["--kid", "--kid-subset-size", "1", p(&a), p(&b)],
            vec!["--kid-subset-size", "below 2"],
        ),
        (
            vec!["--batch-size", "0", p(&a), p(&b)],
            vec!["--batch-size 0"],
        ),
        (vec!["--dims", "100", p(&a), p(&b)], vec!["--dims", "100"]),
        (
            vec![p(&a), p(&one)],
            vec!["input B", "one", "1 image(s), at least 2 needed"],
        ),
        (
            vec![
                "--per-class",
                "--labels-a",
                p(&la),
                "--labels-b",
                p(&lb_lonely),
                p(&a),
                p(&b),
            ],
            vec!["input B", "class 2: 1 image, at least 2 needed"],
        ),
        (
            vec![
                "--per-class",
                "--labels-a",
                p(&la),
                "--labels-b",
                p(&lb_three),
                p(&a),
                p(&b),
            ],
            vec![
                "input B",
                "class 2: 2 images, but input A",
                "has none of this class",
            ],
        ),
        (
            vec![
                "--per-class",
                "--labels-a",
                p(&short),
                "--labels-b",
                p(&la),
                p(&a),
                p(&b),
            ],
            vec!["input A", "11 labels for 12 images"],
        ),
        (
            vec!["--dims", "192", p(&stats64), p(&b)],
            vec![
                "input A",
                "set_a_d64_pytorch_fid.npz",
                "64 dimensions",
                "--dims asks for 192",
            ],
        ),
        (
            vec!["--labels-a", p(&la), p(&a), p(&b)],
            vec!["--per-class only"],
        ),
    ];
    for (args, wanted) in cases {
        let mut all = vec!["--dims", "64"];
        if args.first() == Some(&"--dims") {
            all.clear();
        }
        all.extend(args);
        let line = assert_one_error_line(&cign_fid_without_weights(&all), &wanted);
        assert!(
            !line.contains("CIGN_FID_WEIGHTS"),
            "validated after the weights: {line}"
        );
    }
    // The same inputs, valid: the run gets as far as the (missing) weights.
    let out = cign_fid_without_weights(&["--dims", "64", p(&a), p(&b)]);
    assert_one_error_line(&out, &["CIGN_FID_WEIGHTS"]);
}

// Output paths are checked before any input is read, any image computed or any classifier
// trained: a file in the way of a directory, an existing directory, the input itself.
#[test]
fn output_paths_are_checked_before_any_work() {
    let s = sets();
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    write_pngs(&s.a, &a);
    let afile = tmp.path().join("afile");
    std::fs::write(&afile, b"x").unwrap();
    let under_file = afile.join("x.npz");
    // Without weights: an error other than the weights' comes before the network.
    let out = cign_fid_without_weights(&["--dims", "64", "--save-stats", p(&under_file), p(&a)]);
    assert_one_error_line(
        &out,
        &["--save-stats", "afile exists and is not a directory"],
    );
    let data_dir = tmp.path().join("d");
    std::fs::create_dir(&data_dir).unwrap();
    let stats = tmp.path().join("s.npz");
    let made = cign_fid(&["--dims", "64", "--save-stats", p(&stats), p(&a)]);
    assert!(made.status.success(), "{}", stderr(&made));
    let out = cign_fid_without_weights(&["--dims", "64", "--save-stats", p(&stats), p(&stats)]);
    assert_one_error_line(&out, &["--save-stats", "same file as input A"]);
    let out = cign_fid_without_weights(&["--dims", "64", "--save-stats", p(&data_dir), p(&a)]);
    assert_one_error_line(&out, &["--save-stats", "is a directory, not a file"]);
    // The classifier: its weights and report paths before the data (an empty data folder
    // would otherwise be fetched into) and before training.
    let data = tmp.path().join("data");
    let classifier = env!("CARGO_BIN_EXE_cign-classifier");
    let train = |out: &Path| {
        run(
            classifier,
            &["train", "--data-dir", p(&data), "--out", p(out)],
            &[("CIGN_MNIST_SOURCE", "/nonexistent/cign-test")],
        )
    };
    assert_one_error_line(
        &train(&a),
        &["classifier weights", "is a directory, not a file"],
    );
    assert_one_error_line(
        &train(&under_file),
        &["afile exists and is not a directory"],
    );
    let json = tmp.path().join("c.json");
    assert_one_error_line(
        &train(&json),
        &["classifier report", "same file as classifier weights"],
    );
    assert!(!data.exists());
}

// Issue 13 item 1, the kind: tch calls on user-controlled tensors and files (shapes, kinds,
// sizes, weights files) return errors instead of panicking.
#[test]
fn tensors_and_files_of_the_wrong_shape_or_kind_are_errors() {
    let _heavy = common::heavy();
    let ex = common::extractor();
    let cpu = (Kind::Float, Device::Cpu);
    let taps = [cign_metrics::Tap::D64];
    let invalid = |r: cign_metrics::Result<Vec<Tensor>>, want: &str| {
        let err = r.unwrap_err();
        assert!(
            matches!(err, MetricsError::InvalidInput { .. }) && err.to_string().contains(want),
            "{want}: {err}"
        );
    };
    invalid(
        ex.features(&Tensor::zeros([2, 2, 28, 28], cpu), &taps),
        "channels",
    );
    invalid(
        ex.features(&Tensor::zeros([2, 28, 28], cpu), &taps),
        "[N, C, H, W]",
    );
    invalid(
        ex.features(&Tensor::zeros([2, 1, 0, 28], cpu), &taps),
        "empty",
    );
    invalid(
        ex.features(
            &Tensor::zeros([2, 1, 28, 28], (Kind::Int64, Device::Cpu)),
            &taps,
        ),
        "float or u8",
    );
    invalid(
        ex.features(&(Tensor::zeros([1, 1, 4, 4], cpu) / 0.0), &taps),
        "NaN",
    );
    invalid(
        ex.features_batched(&Tensor::zeros([2, 1, 8, 8], cpu), &taps, 0),
        "at least 1",
    );
    // 0..255 floats are not [0, 1] images: refused before the network runs, by both calls.
    let bytes_as_floats = Tensor::ones([2, 1, 28, 28], cpu) * 255.0;
    invalid(ex.features(&bytes_as_floats, &taps), "far outside");
    invalid(
        ex.features_batched(&bytes_as_floats, &taps, 1),
        "far outside",
    );
    // No image: no feature, not a libtorch error.
    let none = ex
        .features(&Tensor::zeros([0, 1, 28, 28], cpu), &taps)
        .unwrap();
    assert_eq!(none[0].size(), vec![0, 64]);
    // The network itself refuses inputs it cannot take (below 75 x 75 the deepest block has
    // no pixel left).
    let net = cign_metrics::inception::InceptionNetwork::new(
        &cign_metrics::weights::load_fid_params(ex.weights_path()).unwrap(),
        Device::Cpu,
        cign_metrics::inception::Layout::Nchw,
    )
    .unwrap();
    let small = net.forward_taps(
        &Tensor::zeros([1, 3, 74, 74], cpu),
        &[cign_metrics::Tap::D2048],
    );
    assert!(small.unwrap_err().to_string().contains(">= 75"));
    let ok = net.forward_taps(
        &Tensor::zeros([1, 3, 75, 75], cpu),
        &[cign_metrics::Tap::D2048],
    );
    assert_eq!(ok.unwrap()[0].size(), vec![1, 2048]);
    let mut params = cign_metrics::weights::load_fid_params(ex.weights_path()).unwrap();
    // The reference-statistics cache tells weights apart: none for the standard weights,
    // a distinct one for each other set of values.
    use cign_metrics::weights::weights_id;
    assert_eq!(weights_id(&params), "");
    assert_eq!(ex.weights_id(), "");
    let scaled = |key: &str, by: f64| {
        let mut p: std::collections::HashMap<String, Tensor> = params
            .iter()
            .map(|(k, v)| (k.clone(), v.shallow_clone()))
            .collect();
        p.insert(key.into(), &params[key] * by);
        weights_id(&p)
    };
    let (a, b) = (
        scaled("Mixed_6a.branch3x3.conv.weight", 1.01),
        scaled("Mixed_6a.branch3x3.conv.weight", 0.99),
    );
    assert!(a.starts_with('w') && a.len() == 13, "{a}");
    assert!(b.starts_with('w') && a != b, "{a} {b}");
    assert_eq!(a, scaled("Mixed_6a.branch3x3.conv.weight", 1.01));
    params.insert(
        "Conv2d_1a_3x3.conv.weight".into(),
        Tensor::zeros([32, 3, 5, 5], cpu),
    );
    let err = cign_metrics::inception::InceptionNetwork::new(
        &params,
        Device::Cpu,
        cign_metrics::inception::Layout::Nchw,
    )
    .unwrap_err();
    assert!(err.to_string().contains("[32, 3, 5, 5]"), "{err}");

    // KID and the trace of the square root with shapes that do not fit.
    let f = Tensor::zeros([4, 3], cpu);
    assert!(cign_metrics::kid::mmd2_unbiased(&f, &Tensor::zeros([4, 2], cpu)).is_err());
    assert!(cign_metrics::kid::mmd2_unbiased(&f.narrow(0, 0, 1), &f).is_err());
    assert!(cign_metrics::frechet::trace_sqrt_product(&f, &f).is_err());
    assert!(cign_metrics::frechet::trace_sqrt_product(&Tensor::zeros([], cpu), &f).is_err());

    // Classifier files: missing tensors, other shapes (even broadcastable ones) or kinds.
    let tmp = tempfile::tempdir().unwrap();
    let clf = ConditionalClassifier::new(Device::Cpu).unwrap();
    let good = tmp.path().join("good.safetensors");
    clf.save(&good).unwrap();
    ConditionalClassifier::load(&good, Device::Cpu).unwrap();
    let mut tensors = Tensor::read_safetensors(&good).unwrap();
    let bias = tensors.iter().position(|(n, _)| n == "fc.bias").unwrap();
    for (replacement, want) in [
        (Tensor::zeros([1], cpu), "[1]"),
        (Tensor::zeros([10], (Kind::Int64, Device::Cpu)), "Int64"),
    ] {
        tensors[bias].1 = replacement;
        let path = tmp.path().join("bad.safetensors");
        Tensor::write_safetensors(&tensors, &path).unwrap();
        let err = ConditionalClassifier::load(&path, Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("fc.bias") && err.contains(want), "{err}");
    }
    let _ = tensors.remove(bias);
    let path = tmp.path().join("short.safetensors");
    Tensor::write_safetensors(&tensors, &path).unwrap();
    let err = ConditionalClassifier::load(&path, Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("has no tensor 'fc.bias'"), "{err}");
    std::fs::write(&path, b"junk").unwrap();
    assert!(ConditionalClassifier::load(&path, Device::Cpu).is_err());
}
