//! The conditional-accuracy classifier: a reduced training run (5,000 images, one epoch)
//! reaches a loose bound quickly; the metric counts hits per requested label; the cached full
//! classifier (trained by `cign-classifier train`), when present, reaches 99.0 % on MNIST test.

use cign_data::{Dataset, DatasetKind, Split};
use cign_metrics::reference::dataset_images;
use cign_metrics::{
    default_classifier_path, train_classifier, ConditionalClassifier, PixelRange, Preprocess,
    TrainOptions,
};
use tch::{Device, Kind, Tensor};

fn mnist(split: Split) -> Dataset {
    let dir = cign_data::default_data_dir(DatasetKind::Mnist);
    cign_data::fetch::ensure_dataset(DatasetKind::Mnist, &dir).expect("MNIST");
    Dataset::load(DatasetKind::Mnist, split, &dir).expect("MNIST split")
}

#[test]
fn reduced_training_learns_and_accuracy_counts_requested_labels() {
    let train = mnist(Split::Train);
    let test = mnist(Split::Test);
    let opts = TrainOptions {
        epochs: 1,
        batch_size: 50,
        train_limit: Some(5000),
        test_limit: Some(1000),
        ..Default::default()
    };
    let (clf, report) = train_classifier(&train, &test, &opts, Device::Cpu).unwrap();
    eprintln!("reduced classifier: {report:?}");
    assert!(
        report.test_accuracy >= 0.90,
        "test accuracy {}",
        report.test_accuracy
    );
    assert_eq!(report.train_images, 5000);

    // Conditional accuracy with the true labels is the plain accuracy; with shifted labels
    // it collapses; per-class counts add up.
    let (images, labels) = dataset_images(&test, Some(1000));
    let signed = images.to_kind(Kind::Float) / 127.5 - 1.0;
    let right = clf
        .conditional_accuracy(&signed, PixelRange::Signed, Preprocess::default(), &labels)
        .unwrap();
    assert!((right.overall - report.test_accuracy).abs() < 1e-12);
    assert_eq!(right.per_class.iter().map(|c| c.n).sum::<usize>(), 1000);
    let hits: f64 = right
        .per_class
        .iter()
        .map(|c| c.accuracy * c.n as f64)
        .sum();
    assert!((hits / 1000.0 - right.overall).abs() < 1e-9);
    let shifted: Vec<u8> = labels.iter().map(|l| (l + 1) % 10).collect();
    let wrong = clf
        .conditional_accuracy(&signed, PixelRange::Signed, Preprocess::default(), &shifted)
        .unwrap();
    assert!(wrong.overall < 0.2, "{}", wrong.overall);

    // Save / load gives the same predictions; bad input is an error.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");
    clf.save(&path).unwrap();
    let back = ConditionalClassifier::load(&path, Device::Cpu).unwrap();
    let a = clf
        .predict(&signed, PixelRange::Signed, Preprocess::default())
        .unwrap();
    let b = back
        .predict(&signed, PixelRange::Signed, Preprocess::default())
        .unwrap();
    assert_eq!(a.eq_tensor(&b).all().int64_value(&[]), 1);
    assert!(clf
        .predict(
            &Tensor::zeros([2, 1, 32, 32], (Kind::Float, Device::Cpu)),
            PixelRange::Signed,
            Preprocess::default()
        )
        .is_err());
    assert!(clf
        .conditional_accuracy(
            &signed,
            PixelRange::Signed,
            Preprocess::default(),
            &labels[..10]
        )
        .is_err());
    std::fs::write(&path, b"junk").unwrap();
    assert!(ConditionalClassifier::load(&path, Device::Cpu).is_err());
}

#[test]
fn cached_full_classifier_reaches_99_percent() {
    let path = default_classifier_path(DatasetKind::Mnist);
    if !path.is_file() {
        eprintln!(
            "{} is absent: train it with `cargo run -p cign-metrics --bin cign-classifier -- train`",
            path.display()
        );
        return;
    }
    let clf = ConditionalClassifier::load(&path, Device::Cpu).unwrap();
    let acc = clf.dataset_accuracy(&mnist(Split::Test), None).unwrap();
    eprintln!("cached classifier: MNIST test accuracy {acc}");
    assert!(acc >= 0.99, "cached classifier has test accuracy {acc}");
}

/// A hand-built split of `count` images of `side x side` pixels, labels cycling 0..9.
fn synthetic(split: Split, count: usize, side: usize) -> Dataset {
    Dataset {
        kind: DatasetKind::Mnist,
        split,
        images: cign_data::IdxImages {
            count,
            rows: side,
            cols: side,
            pixels: (0..count * side * side).map(|i| (i % 256) as u8).collect(),
        },
        labels: (0..count).map(|i| (i % 10) as u8).collect(),
    }
}

#[test]
fn splits_the_network_cannot_take_are_errors_before_training() {
    use cign_metrics::MetricsError;
    let opts = TrainOptions {
        epochs: 1,
        ..Default::default()
    };
    let ok_train = synthetic(Split::Train, 20, 28);
    let ok_test = synthetic(Split::Test, 10, 28);
    // Images of another size in either split: an error naming the split, not a panic in the
    // fully connected layer.
    for (train, test, split) in [
        (&synthetic(Split::Train, 20, 32), &ok_test, "training"),
        (&ok_train, &synthetic(Split::Test, 10, 14), "test"),
    ] {
        let err = train_classifier(train, test, &opts, Device::Cpu)
            .map(|_| ())
            .unwrap_err();
        assert!(matches!(err, MetricsError::InvalidInput { .. }), "{err:?}");
        assert!(err.to_string().contains(split), "{err}");
    }
    // No test image: an error, before any training.
    let err = train_classifier(
        &ok_train,
        &synthetic(Split::Test, 0, 28),
        &opts,
        Device::Cpu,
    )
    .map(|_| ())
    .unwrap_err();
    assert!(matches!(err, MetricsError::TooFewSamples { .. }), "{err:?}");
}
