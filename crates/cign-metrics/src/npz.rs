//! Statistics files in pytorch-fid's format: `.npz` with float64 arrays `mu` (`[d]`) and
//! `sigma` (`[d, d]`), plus `n` (`[1]`, the sample count; pytorch-fid ignores it).
//! Files written by NumPy (`np.savez` or `np.savez_compressed`, float16, float32 or float64,
//! widened to float64) are read and checked (finite, `sigma` symmetric, no negative variance).

use std::fs::File;
use std::path::Path;

use ndarray::{Array1, Array2, Ix1, Ix2};
use ndarray_npy::{NpzReader, NpzWriter, ReadDataError, ReadableElement};
use py_literal::Value as PyValue;

use cign_data::atomic::write_atomic;

use crate::error::{MetricsError, Result};
use crate::stats::Stats;

fn npz_err(path: &Path, what: impl Into<String>) -> MetricsError {
    MetricsError::Npz {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// Writes `stats` to `path` atomically (through [`cign_data::atomic::write_atomic`]: a reader
/// never sees a half-written file, and a failed write leaves the previous file in place).
/// Creates the parent directory if needed.
///
/// # Errors
/// [`MetricsError::InvalidStats`] when `stats` fail [`Stats::validate`];
/// [`MetricsError::Io`] when the directory or the file cannot be created or written.
pub fn save_stats(path: &Path, stats: &Stats) -> Result<()> {
    stats.validate(&path.display().to_string())?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| MetricsError::io(dir, "cannot create", e))?;
    }
    let n = Array1::from(vec![stats.n as u64]);
    write_atomic(path, |tmp| {
        let mut npz = NpzWriter::new(File::create(tmp)?);
        npz.add_array("mu", &stats.mu)
            .and_then(|_| npz.add_array("sigma", &stats.sigma))
            .and_then(|_| npz.add_array("n", &n))
            .map_err(std::io::Error::other)?;
        npz.finish().map_err(std::io::Error::other)?;
        Ok(())
    })
    .map_err(|e| MetricsError::io(path, "cannot write", e))
}

/// A float of any width numpy writes (`f2`, `f4`, `f8`, either byte order), widened to `f64`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Widened(f64);

impl ReadableElement for Widened {
    fn read_to_end_exact_vec<R: std::io::Read>(
        mut reader: R,
        type_desc: &PyValue,
        len: usize,
    ) -> std::result::Result<Vec<Self>, ReadDataError> {
        let (width, little) = match type_desc {
            PyValue::String(s) => match s.as_str() {
                "<f2" | "=f2" => (2, true),
                ">f2" => (2, false),
                "<f4" | "=f4" => (4, true),
                ">f4" => (4, false),
                "<f8" | "=f8" => (8, true),
                ">f8" => (8, false),
                _ => return Err(ReadDataError::WrongDescriptor(type_desc.clone())),
            },
            _ => return Err(ReadDataError::WrongDescriptor(type_desc.clone())),
        };
        let mut bytes = Vec::with_capacity(len * width);
        reader.read_to_end(&mut bytes)?;
        if bytes.len() < len * width {
            return Err(ReadDataError::MissingData);
        }
        if bytes.len() > len * width {
            return Err(ReadDataError::ExtraBytes(bytes.len() - len * width));
        }
        Ok(bytes
            .chunks_exact(width)
            .map(|c| {
                let mut b = [0u8; 8];
                b[..width].copy_from_slice(c);
                if !little {
                    b[..width].reverse();
                }
                Widened(match width {
                    2 => f16_to_f64(u16::from_le_bytes([b[0], b[1]])),
                    4 => f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                    _ => f64::from_le_bytes(b),
                })
            })
            .collect())
    }
}

/// The value of an IEEE 754 half-precision number (exact: every f16 is an f64).
pub fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let fraction = f64::from(bits & 0x3ff);
    match exponent {
        0 => sign * fraction * 2f64.powi(-24),
        31 if fraction == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        e => sign * (1.0 + fraction / 1024.0) * 2f64.powi(e - 15),
    }
}

/// Reads statistics written by [`save_stats`], by pytorch-fid (`--save-stats`) or by NumPy
/// (`np.savez` / `np.savez_compressed` with arrays `mu` `[d]` and `sigma` `[d, d]`; float16,
/// float32 and float64 are read and widened to float64), and checks them with
/// [`Stats::validate`] (finite, symmetric, no negative variance).
///
/// # Errors
/// [`MetricsError::Io`] when the file cannot be opened; [`MetricsError::Npz`], naming the
/// file, when it is not an npz archive, lacks `mu` or `sigma`, holds another kind or shape,
/// or fails the checks.
pub fn load_stats(path: &Path) -> Result<Stats> {
    let file = File::open(path).map_err(|e| MetricsError::io(path, "cannot open", e))?;
    let mut npz =
        NpzReader::new(file).map_err(|e| npz_err(path, format!("not an npz archive: {e}")))?;
    let names = npz.names().map_err(|e| npz_err(path, e.to_string()))?;
    for key in ["mu", "sigma"] {
        if !names.iter().any(|n| n == key) {
            return Err(npz_err(
                path,
                format!("has no array '{key}' (found {names:?})"),
            ));
        }
    }
    let mu: Array1<f64> = npz
        .by_name::<ndarray::OwnedRepr<Widened>, Ix1>("mu")
        .map_err(|e| npz_err(path, format!("'mu' is not a 1-D float16/32/64 array: {e}")))?
        .mapv(|w| w.0);
    let sigma: Array2<f64> = npz
        .by_name::<ndarray::OwnedRepr<Widened>, Ix2>("sigma")
        .map_err(|e| {
            npz_err(
                path,
                format!("'sigma' is not a 2-D float16/32/64 array: {e}"),
            )
        })?
        .mapv(|w| w.0);
    let n = if names.iter().any(|k| k == "n") {
        npz.by_name::<ndarray::OwnedRepr<u64>, Ix1>("n")
            .ok()
            .and_then(|a| a.first().copied())
            .unwrap_or(0) as usize
    } else {
        0
    };
    if sigma.dim() != (mu.len(), mu.len()) {
        return Err(npz_err(
            path,
            format!(
                "'mu' has {} entries but 'sigma' has shape {:?}",
                mu.len(),
                sigma.dim()
            ),
        ));
    }
    let stats = Stats { mu, sigma, n };
    if let Err(MetricsError::InvalidStats { what, .. }) = stats.validate("statistics") {
        return Err(npz_err(path, what));
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.npz");
        let stats = Stats {
            mu: Array1::from(vec![1.0, -2.5]),
            sigma: Array2::from_shape_vec((2, 2), vec![2.0, 0.5, 0.5, 1.0]).unwrap(),
            n: 7,
        };
        save_stats(&path, &stats).unwrap();
        assert_eq!(load_stats(&path).unwrap(), stats);

        let bad = dir.path().join("bad.npz");
        let mut w = NpzWriter::new(File::create(&bad).unwrap());
        w.add_array("mu", &Array1::from(vec![1.0f64, 2.0])).unwrap();
        w.finish().unwrap();
        let err = load_stats(&bad).unwrap_err().to_string();
        assert!(err.contains("sigma") && err.contains("bad.npz"), "{err}");

        std::fs::write(&bad, b"junk").unwrap();
        assert!(load_stats(&bad).is_err());
    }
}
