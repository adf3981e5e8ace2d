//! Helpers shared by the integration tests: fixture loading and the extractor.
#![allow(dead_code)]

use std::fs::File;
use std::path::PathBuf;

use ndarray::{ArrayD, IxDyn};
use ndarray_npy::NpzReader;
use tch::{Device, Kind, Tensor};

use cign_metrics::InceptionExtractor;

/// `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// An npz fixture.
pub struct Npz(NpzReader<File>);

impl Npz {
    pub fn open(name: &str) -> Npz {
        let path = fixture(name);
        let f = File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Npz(NpzReader::new(f).unwrap())
    }

    pub fn f64(&mut self, key: &str) -> ArrayD<f64> {
        self.0
            .by_name::<ndarray::OwnedRepr<f64>, IxDyn>(key)
            .unwrap_or_else(|e| panic!("{key}: {e}"))
    }

    pub fn f32(&mut self, key: &str) -> ArrayD<f32> {
        self.0
            .by_name::<ndarray::OwnedRepr<f32>, IxDyn>(key)
            .unwrap_or_else(|e| panic!("{key}: {e}"))
    }

    pub fn i64(&mut self, key: &str) -> ArrayD<i64> {
        self.0
            .by_name::<ndarray::OwnedRepr<i64>, IxDyn>(key)
            .unwrap_or_else(|e| panic!("{key}: {e}"))
    }

    pub fn u8(&mut self, key: &str) -> ArrayD<u8> {
        self.0
            .by_name::<ndarray::OwnedRepr<u8>, IxDyn>(key)
            .unwrap_or_else(|e| panic!("{key}: {e}"))
    }

    /// A float32 array as a tensor of the same shape.
    pub fn f32_tensor(&mut self, key: &str) -> Tensor {
        let a = self.f32(key);
        let shape: Vec<i64> = a.shape().iter().map(|&s| s as i64).collect();
        Tensor::from_slice(&a.iter().copied().collect::<Vec<_>>()).reshape(shape)
    }

    /// A `u8` image `[H, W, C]` as a `[1, C, H, W]` float tensor in [0, 1].
    pub fn image_hwc(&mut self, key: &str) -> Tensor {
        let a = self.u8(key);
        let s = a.shape().to_vec();
        Tensor::from_slice(&a.iter().copied().collect::<Vec<_>>())
            .reshape([s[0] as i64, s[1] as i64, s[2] as i64])
            .permute([2, 0, 1])
            .unsqueeze(0)
            .to_kind(Kind::Float)
            / 255.0
    }

    /// `u8` images `[N, 28, 28]` as `[N, 1, 28, 28]` float tensor in [0, 1].
    pub fn grey_set(&mut self, key: &str) -> Tensor {
        self.grey_set_u8(key).to_kind(Kind::Float) / 255.0
    }

    /// `u8` images `[N, H, W]` as a `u8` tensor `[N, 1, H, W]`.
    pub fn grey_set_u8(&mut self, key: &str) -> Tensor {
        let a = self.u8(key);
        let s = a.shape().to_vec();
        Tensor::from_slice(&a.iter().copied().collect::<Vec<_>>()).reshape([
            s[0] as i64,
            1,
            s[1] as i64,
            s[2] as i64,
        ])
    }
}

static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Serialises the network-heavy tests of one test binary: libtorch already uses every core,
/// so running them side by side only adds contention.
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The extractor with the default weights (fetched and converted on first use), on CPU.
pub fn extractor() -> InceptionExtractor {
    InceptionExtractor::from_default_weights(Device::Cpu).expect("FID weights")
}

/// `|a - b| / |b|` (Frobenius norms).
pub fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    let a = a.to_kind(Kind::Double);
    let b = b.to_kind(Kind::Double);
    (&a - &b).norm().double_value(&[]) / b.norm().double_value(&[])
}
