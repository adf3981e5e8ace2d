//! Statistics files in pytorch-fid's format: `.npz` with float64 arrays `mu` (`[d]`) and
//! `sigma` (`[d, d]`), plus `n` (`[1]` uint64, the sample count; pytorch-fid ignores it; read
//! from any integer kind or a whole float, of any shape holding one value, when present).
//! Files written by NumPy (`np.savez` or `np.savez_compressed`, float16, float32 or float64,
//! widened to float64) are read and checked (finite, `sigma` symmetric, no negative variance).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use ndarray::{Array1, Array2, Ix1, Ix2, IxDyn};
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
    write_atomic(path, |tmp| write_npz(tmp, stats))
        .map_err(|e| MetricsError::io(path, "cannot write", e))
}

/// Writes `stats` (already checked) to `file` directly, not atomically: the writer behind
/// [`save_stats`], and what a caller staging several outputs together
/// ([`cign_data::atomic::Staged`]) writes to its temporary file.
///
/// # Errors
/// The I/O error of creating or writing `file`.
pub fn write_npz(file: &Path, stats: &Stats) -> std::io::Result<()> {
    let n = Array1::from(vec![stats.n as u64]);
    let mut npz = NpzWriter::new(File::create(file)?);
    npz.add_array("mu", &stats.mu)
        .and_then(|_| npz.add_array("sigma", &stats.sigma))
        .and_then(|_| npz.add_array("n", &n))
        .map_err(std::io::Error::other)?;
    npz.finish().map_err(std::io::Error::other)?;
    Ok(())
}

/// A numpy descriptor of a number (`<f8`, `>i4`, `|u1`, `=f2`, ...): kind (`'f'`, `'i'`,
/// `'u'`), width in bytes, little-endian; `None` for anything else.
fn number_descriptor(type_desc: &PyValue) -> Option<(char, usize, bool)> {
    let PyValue::String(s) = type_desc else {
        return None;
    };
    let (order, rest) = s.split_at(s.len().min(1));
    let little = match order {
        "<" | "=" | "|" => true,
        ">" => false,
        _ => return None,
    };
    let mut chars = rest.chars();
    let kind = chars.next().filter(|k| matches!(k, 'f' | 'i' | 'u'))?;
    let width: usize = chars.as_str().parse().ok()?;
    matches!(width, 1 | 2 | 4 | 8).then_some((kind, width, little))
}

/// The `width`-byte values of `bytes`, each in the low bytes of a little-endian `[u8; 8]`.
fn words(bytes: &[u8], width: usize, little: bool) -> impl Iterator<Item = [u8; 8]> + '_ {
    bytes.chunks_exact(width).map(move |c| {
        let mut b = [0u8; 8];
        b[..width].copy_from_slice(c);
        if !little {
            b[..width].reverse();
        }
        b
    })
}

/// A float of any width numpy writes (`f2`, `f4`, `f8`, either byte order), widened to `f64`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Widened(f64);

impl ReadableElement for Widened {
    fn read_to_end_exact_vec<R: std::io::Read>(
        reader: R,
        type_desc: &PyValue,
        len: usize,
    ) -> std::result::Result<Vec<Self>, ReadDataError> {
        let Some(('f', width @ (2 | 4 | 8), little)) = number_descriptor(type_desc) else {
            return Err(ReadDataError::WrongDescriptor(type_desc.clone()));
        };
        let bytes = read_declared(reader, len, width)?;
        Ok(words(&bytes, width, little)
            .map(|b| {
                Widened(match width {
                    2 => f16_to_f64(u16::from_le_bytes([b[0], b[1]])),
                    4 => f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                    _ => f64::from_le_bytes(b),
                })
            })
            .collect())
    }
}

/// Reads exactly `len` values of `width` bytes from `reader`. Nothing is reserved from `len`
/// (a header's word: a crafted one could declare 2^60 values), and no more than one byte past
/// the declared size is read before the surplus is reported.
fn read_declared<R: std::io::Read>(
    mut reader: R,
    len: usize,
    width: usize,
) -> std::result::Result<Vec<u8>, ReadDataError> {
    let want = len.checked_mul(width).ok_or(ReadDataError::MissingData)?;
    let mut bytes = Vec::new();
    (&mut reader)
        .take(want as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() < want {
        return Err(ReadDataError::MissingData);
    }
    if bytes.len() > want {
        let more = std::io::copy(&mut reader, &mut std::io::sink())?;
        return Err(ReadDataError::ExtraBytes(1 + more as usize));
    }
    Ok(bytes)
}

/// A sample count as numpy writes it: any integer kind, either byte order (`n = len(x)` is
/// an int64), or a float holding a whole number; anything else (negative, fractional, NaN)
/// is kept as its text for the error.
#[derive(Debug, Clone, PartialEq)]
enum Count {
    Whole(u64),
    Bad(String),
}

impl Count {
    fn of_float(v: f64) -> Self {
        if v >= 0.0 && v.fract() == 0.0 && v < u64::MAX as f64 {
            Count::Whole(v as u64)
        } else {
            Count::Bad(v.to_string())
        }
    }
}

impl ReadableElement for Count {
    fn read_to_end_exact_vec<R: std::io::Read>(
        reader: R,
        type_desc: &PyValue,
        len: usize,
    ) -> std::result::Result<Vec<Self>, ReadDataError> {
        let (kind, width, little) = match number_descriptor(type_desc) {
            Some((k @ ('i' | 'u'), w, l)) => (k, w, l),
            Some(('f', w @ (4 | 8), l)) => ('f', w, l),
            _ => return Err(ReadDataError::WrongDescriptor(type_desc.clone())),
        };
        let bytes = read_declared(reader, len, width)?;
        Ok(words(&bytes, width, little)
            .map(|b| match (kind, width) {
                ('f', 4) => {
                    Count::of_float(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                }
                ('f', _) => Count::of_float(f64::from_le_bytes(b)),
                ('u', _) => Count::Whole(u64::from_le_bytes(b)),
                _ => {
                    // Sign-extends the `width` bytes read.
                    let shift = 64 - 8 * width as u32;
                    let v = i64::from_le_bytes(b) << shift >> shift;
                    u64::try_from(v).map_or_else(|_| Count::Bad(v.to_string()), Count::Whole)
                }
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
    // The sample count, when the file has one (pytorch-fid's files do not; NumPy's
    // `n=len(x)` is a 0-d int64): a whole number >= 0 in a one-value array of any shape.
    let n = if names.iter().any(|k| k == "n") {
        let bad = |what: &str| npz_err(path, format!("'n' is not a sample count: {what}"));
        let a = npz
            .by_name::<ndarray::OwnedRepr<Count>, IxDyn>("n")
            .map_err(|e| bad(&e.to_string()))?;
        match a.iter().collect::<Vec<_>>()[..] {
            [Count::Whole(v)] => usize::try_from(*v).map_err(|_| bad(&v.to_string()))?,
            [Count::Bad(v)] => return Err(bad(v)),
            _ => return Err(bad(&format!("{} values, expected one", a.len()))),
        }
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

    // NumPy's `np.savez(f, mu=mu, sigma=sigma, n=len(x))` stores `n` as a 0-d int64; other
    // integer kinds and whole floats are counts too; a negative, fractional or many-valued
    // `n` is an error naming it (it used to be read as 0, "unknown", silently).
    #[test]
    fn the_sample_count_is_read_from_any_integer_kind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.npz");
        let mu = Array1::from(vec![0.5f64, 1.0]);
        let sigma = Array2::from_shape_vec((2, 2), vec![2.0, 0.5, 0.5, 1.0]).unwrap();
        let write = |add: &dyn Fn(&mut NpzWriter<File>)| {
            let mut w = NpzWriter::new(File::create(&path).unwrap());
            w.add_array("mu", &mu).unwrap();
            w.add_array("sigma", &sigma).unwrap();
            add(&mut w);
            w.finish().unwrap();
        };
        write(&|w| w.add_array("n", &ndarray::arr0(12i64)).unwrap());
        assert_eq!(load_stats(&path).unwrap().n, 12);
        write(&|w| w.add_array("n", &Array1::from(vec![300i16])).unwrap());
        assert_eq!(load_stats(&path).unwrap().n, 300);
        write(&|w| w.add_array("n", &ndarray::arr0(7.0f64)).unwrap());
        assert_eq!(load_stats(&path).unwrap().n, 7);
        write(&|w| w.add_array("n", &ndarray::arr0(u64::MAX >> 1)).unwrap());
        assert_eq!(load_stats(&path).unwrap().n as u64, u64::MAX >> 1);
        for (bad, why) in [
            (ndarray::arr1(&[-3.0f64]).into_dyn(), "-3"),
            (ndarray::arr1(&[2.5f64]).into_dyn(), "2.5"),
            (ndarray::arr1(&[1.0f64, 2.0]).into_dyn(), "2 values"),
        ] {
            write(&|w| w.add_array("n", &bad).unwrap());
            let e = load_stats(&path).unwrap_err().to_string();
            assert!(
                e.contains("'n' is not a sample count") && e.contains(why),
                "{e}"
            );
        }
        write(&|w| w.add_array("n", &ndarray::arr0(-3i32)).unwrap());
        assert!(load_stats(&path).is_err());
    }

    // A header's declared length reserves nothing: 2^58 float64 values declared over ten
    // bytes is missing data, not an allocation of 2^61 bytes (which aborts the process).
    #[test]
    fn a_declared_length_is_not_allocated_up_front() {
        let short = [0u8; 10];
        assert!(matches!(
            read_declared(&short[..], 1 << 58, 8),
            Err(ReadDataError::MissingData)
        ));
        assert!(matches!(
            read_declared(&short[..], usize::MAX, 8),
            Err(ReadDataError::MissingData)
        ));
        assert!(matches!(
            read_declared(&short[..], 1, 8),
            Err(ReadDataError::ExtraBytes(2))
        ));
        assert_eq!(read_declared(&short[..], 5, 2).unwrap(), short);
    }
}
