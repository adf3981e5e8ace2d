//! Reading the PyTorch fixtures: the authors' seed-0 files (`CIGN_FIXTURES_DIR`, default
//! `<repo>/../shared/fixtures/authors-pytorch`) and the ones this crate makes itself
//! (`tests/fixtures/`, with `tests/fixtures/make_fixtures.py`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cign_core::{read_safetensors, SafetensorsFile};
use tch::{Kind, Tensor};

/// Runs torch as the fixtures were made: oneDNN limited to its AVX2 kernels and one intra-op
/// thread. The tiny fixtures (batch 4, BatchNorm over 4 values at 1x1) amplify
/// summation-order differences: the authors' own code run with oneDNN's AVX-512 kernels
/// misses their gradients by up to 9.4e-4 relative, and training-mode BatchNorm sums its
/// statistics in a thread-count-dependent order (with 2 threads the authors' code misses the
/// 1-thread fixtures' outputs by up to 1e-5). Must run before the process's first
/// convolution (every fixture test calls it first); an ISA already set in the environment is
/// kept; on AVX2-only CPUs the ISA setting changes nothing.
pub fn pin_fixture_isa() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("ONEDNN_MAX_CPU_ISA").is_none() {
            std::env::set_var("ONEDNN_MAX_CPU_ISA", "AVX2");
        }
        tch::set_num_threads(1);
        println!(
            "ONEDNN_MAX_CPU_ISA={}",
            std::env::var("ONEDNN_MAX_CPU_ISA").unwrap()
        );
    });
}

/// Flags of `/proc/cpuinfo` that change which float32 kernels libtorch, oneDNN or MKL run
/// (as `make_fixtures.py`'s `KERNEL_FLAGS`).
const KERNEL_FLAGS: [&str; 7] = [
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
];

/// This machine as `make_fixtures.py` records the machine of a fixture (metadata `cpu`):
/// `"{vendor_id} {cpu family}/{model} {model name}; {kernel flags}"` from the first processor
/// of `/proc/cpuinfo`, `"unknown"` where it cannot be read. Float32 results are bit for bit
/// only between machines of one signature.
pub fn cpu_signature() -> String {
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
        return "unknown".into();
    };
    let block = info.split("\n\n").next().unwrap_or("");
    let mut fields = std::collections::HashMap::new();
    for line in block.lines() {
        if let Some((k, v)) = line.split_once(':') {
            fields.entry(k.trim()).or_insert(v.trim());
        }
    }
    let get = |k: &str| fields.get(k).copied().unwrap_or("?");
    let flags: std::collections::HashSet<&str> = get("flags").split_whitespace().collect();
    let kernel: Vec<&str> = KERNEL_FLAGS
        .iter()
        .copied()
        .filter(|f| flags.contains(f))
        .collect();
    format!(
        "{} {}/{} {}; {}",
        get("vendor_id"),
        get("cpu family"),
        get("model"),
        get("model name"),
        kernel.join(" ")
    )
}

/// The authors' seed-0 fixtures.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("CIGN_FIXTURES_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/authors-pytorch")
        }
    }
}

/// This crate's fixtures.
pub fn own_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn safetensors_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read fixtures directory {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    files
}

/// A loaded fixture.
pub struct Fixture {
    pub name: String,
    pub file: SafetensorsFile,
}

impl Fixture {
    pub fn load(path: &Path) -> Fixture {
        Fixture {
            name: path.file_name().unwrap().to_string_lossy().into_owned(),
            file: read_safetensors(path).unwrap(),
        }
    }
    pub fn kind(&self) -> &str {
        self.file
            .metadata
            .get("kind")
            .map(String::as_str)
            .unwrap_or("")
    }
    pub fn t(&self, k: &str) -> Tensor {
        self.file
            .get(k)
            .unwrap_or_else(|e| panic!("{}: {e}", self.name))
            .shallow_clone()
    }
    pub fn labels(&self, k: &str) -> Tensor {
        self.t(k).to_kind(Kind::Int64)
    }
    pub fn scalar(&self, k: &str) -> f64 {
        self.t(k).double_value(&[0])
    }
    pub fn with_prefix(&self, prefix: &str) -> BTreeMap<String, &Tensor> {
        self.file.with_prefix(prefix)
    }
    pub fn state(&self) -> BTreeMap<String, &Tensor> {
        self.with_prefix("state.")
    }
}

/// Every CIGN step fixture (metadata kind `channel` or `filter`): the authors' seed-0 files
/// and this crate's other seeds. Pins the ISA first.
pub fn cign_fixtures() -> Vec<Fixture> {
    pin_fixture_isa();
    let mut files = safetensors_in(&shared_dir());
    assert!(
        !files.is_empty(),
        "no .safetensors fixtures in {}",
        shared_dir().display()
    );
    files.extend(safetensors_in(&own_dir()));
    files
        .iter()
        .map(|p| Fixture::load(p))
        .filter(|f| matches!(f.kind(), "channel" | "filter"))
        .collect()
}

/// This crate's fixtures of metadata kind `kind`. Pins the ISA first.
pub fn own_fixtures(kind: &str) -> Vec<Fixture> {
    pin_fixture_isa();
    safetensors_in(&own_dir())
        .iter()
        .map(|p| Fixture::load(p))
        .filter(|f| f.kind() == kind)
        .collect()
}

pub fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

/// `|a - b| / |b|` in the Frobenius norm (`|a - b|` when `b` is 0), computed in float64.
pub fn rel_norm(a: &Tensor, b: &Tensor) -> f64 {
    let (a, b) = (a.to_kind(Kind::Double), b.to_kind(Kind::Double));
    let d = (&a - &b).norm().double_value(&[]);
    let n = b.norm().double_value(&[]);
    if n == 0.0 {
        d
    } else {
        d / n
    }
}
