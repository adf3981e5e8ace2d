//! The `cign-fid` command line tool: folders of PNGs, IDX files and `.npz` statistics as
//! inputs, `--save-stats`, `--per-class`, `--kid`, `--json`, and clear errors. FID values are
//! checked against pytorch-fid's (fixtures from scripts/make_fixtures.py).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::Npz;
use serde_json::Value;

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
