//! Invariants of the real : noise : mismatch sampler.

use cign_data::{BatchSampler, DataError, SamplerConfig};
use tch::{Device, Kind, Tensor};

/// A toy dataset: `n` images whose pixels encode their index, labels `i % 10`.
fn toy(n: i64) -> (Tensor, Tensor) {
    let x = (Tensor::arange(n, (Kind::Float, Device::Cpu)) / n as f64 * 1.6 - 0.8)
        .view([n, 1, 1, 1])
        .expand([n, 1, 28, 28], false)
        .contiguous();
    let y = Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(10);
    (x, y)
}

fn sampler(k: usize, seed: u64, batch: usize) -> BatchSampler {
    BatchSampler::new(SamplerConfig {
        batch_size: batch,
        mismatch_per_real: k,
        seed,
        ..SamplerConfig::default()
    })
    .unwrap()
}

fn vec_i64(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(t.reshape([-1])).unwrap()
}

#[test]
fn shapes_and_ratio() {
    let (x, y) = toy(50);
    for k in [0usize, 1, 3, 9] {
        let s = sampler(k, 1, 16);
        let batches: Vec<_> = s.epoch(&x, &y, 0, 0).unwrap().collect();
        assert_eq!(batches.len(), 4);
        for b in &batches {
            let n = b.x.size()[0];
            assert_eq!(b.z.size(), [n, 1, 28, 28]);
            assert_eq!(b.yz.size(), [n]);
            match (&b.x_mismatch, &b.y_mismatch) {
                (None, None) => assert_eq!(k, 0),
                (Some(xm), Some(ym)) => {
                    assert_eq!(xm.size(), [n * k as i64, 1, 28, 28]);
                    assert_eq!(ym.size(), [n * k as i64]);
                }
                _ => panic!("mismatch images and labels disagree"),
            }
        }
        assert_eq!(batches[3].x.size()[0], 2); // the last partial batch
    }
    let s = BatchSampler::new(SamplerConfig {
        batch_size: 16,
        drop_last: true,
        ..SamplerConfig::default()
    })
    .unwrap();
    assert_eq!(s.epoch(&x, &y, 0, 0).unwrap().count(), 3);
}

/// The index of a toy image, recovered from its (noise-free) pixel value.
fn toy_index(img_mean: f64, n: i64) -> i64 {
    ((img_mean + 0.8) / 1.6 * n as f64).round() as i64
}

#[test]
fn mismatched_labels_are_wrong_and_cover_each_wrong_label_once() {
    let n = 40;
    let (x, y) = toy(n);
    for k in [1usize, 3, 5, 9] {
        let s = sampler(k, 7, 16);
        for b in s.epoch(&x, &y, 2, 0).unwrap() {
            let real = vec_i64(&b.y);
            let wrong = vec_i64(b.y_mismatch.as_ref().unwrap());
            for (i, &yi) in real.iter().enumerate() {
                let mine = &wrong[i * k..(i + 1) * k];
                assert!(mine.iter().all(|&l| l != yi && (0..10).contains(&l)));
                let mut sorted = mine.to_vec();
                sorted.dedup();
                assert_eq!(sorted.len(), k, "repeated wrong label: {mine:?}");
                if k == 9 {
                    let expected: Vec<i64> = (0..10).filter(|&l| l != yi).collect();
                    assert_eq!(mine, expected.as_slice());
                }
            }
            // Each mismatched image is its real image (the same noisy copy).
            let xm = b.x_mismatch.as_ref().unwrap();
            let rep = b.x.repeat_interleave_self_int(k as i64, Some(0), None);
            assert_eq!(xm.size(), rep.size());
            assert!(xm.equal(&rep));
        }
    }
}

#[test]
fn an_epoch_visits_every_image_once() {
    let n = 37;
    let (x, y) = toy(n);
    let s = BatchSampler::new(SamplerConfig {
        batch_size: 8,
        noise_std: 0.0,
        ..SamplerConfig::default()
    })
    .unwrap();
    let mut seen: Vec<i64> = s
        .epoch(&x, &y, 0, 0)
        .unwrap()
        .flat_map(|b| {
            let means =
                Vec::<f64>::try_from(b.x.mean_dim([1, 2, 3].as_slice(), false, Kind::Double))
                    .unwrap();
            means
                .into_iter()
                .map(|m| toy_index(m, n))
                .collect::<Vec<_>>()
        })
        .collect();
    let first_epoch = seen.clone();
    seen.sort();
    assert_eq!(seen, (0..n).collect::<Vec<_>>());
    // A different epoch has a different order.
    let second: Vec<f64> = s
        .epoch(&x, &y, 1, 0)
        .unwrap()
        .flat_map(|b| {
            Vec::<f64>::try_from(b.x.mean_dim([1, 2, 3].as_slice(), false, Kind::Double)).unwrap()
        })
        .collect();
    let second: Vec<i64> = second.into_iter().map(|m| toy_index(m, n)).collect();
    assert_ne!(first_epoch, second);
}

#[test]
fn same_seed_same_batches_other_seed_other_batches() {
    let (x, y) = toy(64);
    let run = |seed| {
        sampler(3, seed, 16)
            .epoch(&x, &y, 0, 0)
            .unwrap()
            .map(|b| (b.x, b.z, b.yz, b.y_mismatch.unwrap()))
            .collect::<Vec<_>>()
    };
    let (a, b, c) = (run(5), run(5), run(6));
    for (p, q) in a.iter().zip(&b) {
        assert!(p.0.equal(&q.0) && p.1.equal(&q.1) && p.2.equal(&q.2) && p.3.equal(&q.3));
    }
    assert!(!a[0].1.equal(&c[0].1));
    // Resuming at batch 2 gives batch 2 of the full epoch, and `batch` agrees with `epoch`.
    let s = sampler(3, 5, 16);
    let resumed: Vec<_> = s.epoch(&x, &y, 0, 2).unwrap().collect();
    assert!(resumed[0].z.equal(&a[2].1));
    let direct = s.batch(&x, &y, 0, 3).unwrap();
    assert!(direct.x.equal(&a[3].0));
}

#[test]
fn noise_statistics() {
    // Images at 0 so that clamping never acts: the added noise has std sigma.
    let n = 512;
    let x = Tensor::zeros([n, 1, 28, 28], (Kind::Float, Device::Cpu));
    let y = Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(10);
    let s = BatchSampler::new(SamplerConfig {
        batch_size: 512,
        noise_std: 0.15,
        mismatch_per_real: 1,
        seed: 3,
        ..SamplerConfig::default()
    })
    .unwrap();
    let b = s.batch(&x, &y, 0, 0).unwrap();
    let std = b.x.std(true).double_value(&[]);
    let mean = b.x.mean(Kind::Double).double_value(&[]);
    // 401,408 samples: the standard error of the std is about 0.15 / sqrt(2 * 401408) = 1.7e-4.
    assert!((std - 0.15).abs() < 2e-3, "std {std}");
    assert!(mean.abs() < 2e-3, "mean {mean}");
    let zs = b.z.std(true).double_value(&[]);
    assert!((zs - 1.0).abs() < 1e-2, "z std {zs}");
    // Uniform noise labels: each class near n / 10.
    let counts = b.yz.bincount::<Tensor>(None, 10);
    let counts = Vec::<i64>::try_from(counts).unwrap();
    assert!(counts.iter().all(|&c| (20..=85).contains(&c)), "{counts:?}");
    // Clamping: images at 1 never exceed 1.
    let ones = Tensor::ones([n, 1, 28, 28], (Kind::Float, Device::Cpu));
    let b = s.batch(&ones, &y, 0, 0).unwrap();
    assert!(b.x.max().double_value(&[]) <= 1.0);
}

#[test]
fn invalid_settings_are_rejected() {
    for (cfg, word) in [
        (
            SamplerConfig {
                batch_size: 0,
                ..SamplerConfig::default()
            },
            "batch_size",
        ),
        (
            SamplerConfig {
                mismatch_per_real: 10,
                ..SamplerConfig::default()
            },
            "mismatch_per_real",
        ),
        // Past i64::MAX: used to wrap to -1 and pass, then overflow an allocation.
        (
            SamplerConfig {
                mismatch_per_real: usize::MAX,
                ..SamplerConfig::default()
            },
            "mismatch_per_real",
        ),
        (
            SamplerConfig {
                noise_std: -0.1,
                ..SamplerConfig::default()
            },
            "noise_std",
        ),
    ] {
        // The error names the field as this crate spells it.
        let err = BatchSampler::new(cfg).unwrap_err();
        assert!(
            matches!(err, DataError::InvalidParameter { name, .. } if name == word),
            "{err:?}"
        );
    }
}

#[test]
fn labels_of_another_kind_or_shape_are_errors_or_converted() {
    let s = BatchSampler::new(SamplerConfig {
        batch_size: 4,
        mismatch_per_real: 2,
        ..SamplerConfig::default()
    })
    .unwrap();
    let x = Tensor::zeros([8, 1, 28, 28], (Kind::Float, Device::Cpu));
    let y64 = Tensor::from_slice(&[0i64, 1, 2, 3, 4, 5, 6, 9]);
    let want = s.batch(&x, &y64, 1, 1).unwrap();
    // Integer labels of another kind give the same batch, with Int64 labels.
    for kind in [Kind::Int, Kind::Uint8, Kind::Int16] {
        let b = s.batch(&x, &y64.to_kind(kind), 1, 1).unwrap();
        assert_eq!(b.y.kind(), Kind::Int64, "{kind:?}");
        assert!(b.y.equal(&want.y), "{kind:?}");
        assert!(b
            .y_mismatch
            .unwrap()
            .equal(want.y_mismatch.as_ref().unwrap()));
    }
    // Float or boolean labels, and images that are not [N, C, H, W], are errors.
    for (images, labels, name) in [
        (x.shallow_clone(), y64.to_kind(Kind::Float), "labels"),
        (x.shallow_clone(), y64.ne(0), "labels"),
        (x.reshape([8, 28, 28]), y64.shallow_clone(), "images"),
    ] {
        let err = s.batch(&images, &labels, 0, 0).unwrap_err();
        assert!(
            matches!(err, DataError::InvalidParameter { name: n, .. } if n == name),
            "{err:?}"
        );
    }
}

// Images the sampler cannot use (integer kinds, values outside [-1, 1], NaN) are errors of
// `batch` and `epoch`, not batches of clamped or cast values.
#[test]
fn images_of_another_kind_or_range_are_errors() {
    let s = sampler(2, 0, 4);
    let (x, y) = toy(8);
    let valid_batch = s.batch(&x, &y, 0, 1).unwrap();
    assert_eq!(valid_batch.x.size(), [4, 1, 28, 28]);
    // Exactly -1 and 1 are valid.
    let edges = x.sign();
    s.batch(&edges, &y, 0, 0).unwrap();
    let nan = x.copy();
    let _ = nan.get(3).fill_(f64::NAN);
    for (images, why) in [
        ((&x + 1.0) * 127.5, "values from"),
        // [-1.04, 1.04]: a little outside at both ends.
        (&x * 1.3, "values from"),
        (nan, "no NaN"),
        (((&x + 1.0) * 127.5).to_kind(Kind::Uint8), "kind Uint8"),
        (x.to_kind(Kind::Int64), "kind Int64"),
    ] {
        let errors = [
            // The epoch's two batches cover all 8 images, so one of them holds a bad value.
            (0..2)
                .map(|i| s.batch(&images, &y, 0, i))
                .find_map(Result::err),
            s.epoch(&images, &y, 0, 0).err(),
        ];
        for err in errors {
            let err = err.unwrap_or_else(|| panic!("{why}: accepted"));
            assert!(
                matches!(&err, DataError::InvalidParameter { name: "images", what } if what.contains(why)),
                "{why}: {err:?}"
            );
        }
    }
}
