//! The real MNIST files: checksums, class counts (from shared/data/mnist/README.md), the fetch
//! step and its errors. The data comes from the fetch step's local source, `CIGN_MNIST_SOURCE`
//! (set by `.cargo/config.toml` to the shared data beside the checkout).

use std::path::PathBuf;

use cign_data::fetch::{ensure_dataset, ensure_dataset_from, verify_file, MNIST_FILES};
use cign_data::{default_data_dir, DataError, Dataset, DatasetKind, Split};

fn mnist_dir() -> PathBuf {
    let dir = default_data_dir(DatasetKind::Mnist);
    ensure_dataset(DatasetKind::Mnist, &dir).expect("MNIST available");
    dir
}

#[test]
fn checksums_of_fetched_files() {
    let dir = mnist_dir();
    for spec in &MNIST_FILES {
        let path = [dir.join(format!("{}.gz", spec.name)), dir.join(spec.name)]
            .into_iter()
            .find(|p| p.exists())
            .unwrap();
        verify_file(&path, spec).unwrap();
    }
}

#[test]
fn committed_checksums_equal_the_shared_sha256sums_raw() {
    let Some(source) = std::env::var_os("CIGN_MNIST_SOURCE") else {
        panic!("CIGN_MNIST_SOURCE is set by .cargo/config.toml");
    };
    let sums = std::fs::read_to_string(PathBuf::from(source).join("SHA256SUMS.raw")).unwrap();
    for spec in &MNIST_FILES {
        let line = sums
            .lines()
            .find(|l| l.ends_with(spec.name))
            .unwrap_or_else(|| panic!("{} not in SHA256SUMS.raw", spec.name));
        assert_eq!(line.split_whitespace().next().unwrap(), spec.raw_sha256);
    }
}

#[test]
fn class_counts_of_both_splits() {
    let dir = mnist_dir();
    let train = Dataset::load(DatasetKind::Mnist, Split::Train, &dir).unwrap();
    assert_eq!(train.len(), 60_000);
    assert_eq!(
        train.class_counts(),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    let test = Dataset::load(DatasetKind::Mnist, Split::Test, &dir).unwrap();
    assert_eq!(test.len(), 10_000);
    assert_eq!(
        test.class_counts(),
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    let x = test.images_tensor(tch::Device::Cpu);
    assert_eq!(x.size(), [10_000, 1, 28, 28]);
    assert_eq!(x.min().double_value(&[]), -1.0);
    assert_eq!(x.max().double_value(&[]), 1.0);
    // Mean pixel 33.318 (README) maps to 2 * 33.318 / 255 - 1 on the training split.
    let mean = train
        .images_tensor(tch::Device::Cpu)
        .mean(tch::Kind::Double)
        .double_value(&[]);
    assert!((mean - (2.0 * 33.318 / 255.0 - 1.0)).abs() < 1e-4, "{mean}");
    assert_eq!(test.labels_tensor(tch::Device::Cpu).int64_value(&[0]), 7);
}

#[test]
fn fetch_copies_and_verifies_from_a_local_source() {
    let source = PathBuf::from(std::env::var_os("CIGN_MNIST_SOURCE").unwrap());
    let dest = tempfile::tempdir().unwrap();
    ensure_dataset_from(DatasetKind::Mnist, dest.path(), &[source], &[]).unwrap();
    let test = Dataset::load(DatasetKind::Mnist, Split::Test, dest.path()).unwrap();
    assert_eq!(test.len(), 10_000);
}

#[test]
fn fetch_rejects_a_source_with_wrong_bytes() {
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("train-images-idx3-ubyte"), b"not mnist").unwrap();
    let dest = tempfile::tempdir().unwrap();
    let err = ensure_dataset_from(
        DatasetKind::Mnist,
        dest.path(),
        &[source.path().to_path_buf()],
        &["http://127.0.0.1:9/"],
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("SHA-256"), "{msg}");
    assert!(!dest.path().join("train-images-idx3-ubyte.gz").exists());
    assert!(!dest.path().join("train-images-idx3-ubyte").exists());
}

#[test]
fn missing_source_error_names_directory_variable_and_download() {
    let dest = tempfile::tempdir().unwrap();
    let err = ensure_dataset_from(
        DatasetKind::Mnist,
        dest.path(),
        &[],
        &["http://127.0.0.1:9/"],
    )
    .unwrap_err();
    assert!(matches!(err, DataError::Unavailable { .. }));
    let msg = err.to_string();
    assert!(msg.contains(&dest.path().display().to_string()), "{msg}");
    assert!(msg.contains("CIGN_MNIST_SOURCE"), "{msg}");
    assert!(
        msg.contains("http://127.0.0.1:9/train-images-idx3-ubyte.gz"),
        "{msg}"
    );
}

#[test]
fn concurrent_fetches_into_one_directory_all_succeed() {
    let source = PathBuf::from(std::env::var_os("CIGN_MNIST_SOURCE").unwrap());
    let dest = tempfile::tempdir().unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                ensure_dataset_from(
                    DatasetKind::Mnist,
                    dest.path(),
                    std::slice::from_ref(&source),
                    &[],
                )
                .unwrap()
            });
        }
    });
    let test = Dataset::load(DatasetKind::Mnist, Split::Test, dest.path()).unwrap();
    assert_eq!(test.len(), 10_000);
    let leftovers: Vec<_> = std::fs::read_dir(dest.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
