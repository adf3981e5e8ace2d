//! Statistics files in pytorch-fid's format: `.npz` with float64 arrays `mu` (`[d]`) and
//! `sigma` (`[d, d]`), plus `n` (`[1]`, the sample count; pytorch-fid ignores it).
//! Files written by NumPy (`np.savez` or `np.savez_compressed`, float64 or float32) are read.

use std::fs::File;
use std::path::Path;

use ndarray::{Array1, Array2, Ix1, Ix2};
use ndarray_npy::{NpzReader, NpzWriter};

use crate::error::{MetricsError, Result};
use crate::stats::Stats;

fn npz_err(path: &Path, what: impl Into<String>) -> MetricsError {
    MetricsError::Npz {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// Writes `stats` to `path` (atomically: a temporary file renamed into place).
pub fn save_stats(path: &Path, stats: &Stats) -> Result<()> {
    stats.validate(&path.display().to_string())?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| MetricsError::io(dir, "cannot create", e))?;
    }
    let tmp = path.with_extension(format!("npz.tmp-{}", std::process::id()));
    let file = File::create(&tmp).map_err(|e| MetricsError::io(&tmp, "cannot create", e))?;
    let mut npz = NpzWriter::new(file);
    let n = Array1::from(vec![stats.n as u64]);
    npz.add_array("mu", &stats.mu)
        .and_then(|_| npz.add_array("sigma", &stats.sigma))
        .and_then(|_| npz.add_array("n", &n))
        .map_err(|e| npz_err(&tmp, format!("cannot write: {e}")))?;
    npz.finish()
        .map_err(|e| npz_err(&tmp, format!("cannot write: {e}")))?;
    std::fs::rename(&tmp, path).map_err(|e| MetricsError::io(path, "cannot write", e))
}

/// Reads statistics written by [`save_stats`] or by pytorch-fid (`--save-stats`).
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
    let mu: Array1<f64> = match npz.by_name::<_, Ix1>("mu") {
        Ok(a) => a,
        Err(_) => npz
            .by_name::<ndarray::OwnedRepr<f32>, Ix1>("mu")
            .map_err(|e| {
                npz_err(
                    path,
                    format!("'mu' is not a 1-D float64/float32 array: {e}"),
                )
            })?
            .mapv(f64::from),
    };
    let sigma: Array2<f64> = match npz.by_name::<_, Ix2>("sigma") {
        Ok(a) => a,
        Err(_) => npz
            .by_name::<ndarray::OwnedRepr<f32>, Ix2>("sigma")
            .map_err(|e| {
                npz_err(
                    path,
                    format!("'sigma' is not a 2-D float64/float32 array: {e}"),
                )
            })?
            .mapv(f64::from),
    };
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
    stats
        .validate("statistics")
        .map_err(|e| npz_err(path, e.to_string()))?;
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
