//! Reading and writing IDX files (the MNIST format), gzip-compressed or raw.
//!
//! Images are `u8` arrays with magic `0x00000803` (three dimensions: count, rows, columns);
//! labels are `u8` vectors with magic `0x00000801`. Reading checks the magic number, the
//! dimensions and the exact file length, and every failure names the file.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use flate2::read::GzDecoder;

use crate::error::{DataError, Result};

/// Magic number of an IDX file of unsigned bytes with three dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with one dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// A stack of greyscale `u8` images, row-major, `count * rows * cols` pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// Pixels of all images, image after image, row-major.
    pub pixels: Vec<u8>,
}

impl IdxImages {
    /// Pixels of image `index` (`rows * cols` bytes, row-major).
    ///
    /// # Panics
    ///
    /// If `index >= count` (or `pixels` is shorter than `count * rows * cols`).
    pub fn image(&self, index: usize) -> &[u8] {
        let size = self.rows * self.cols;
        &self.pixels[index * size..(index + 1) * size]
    }
}

/// Reads a whole file, decompressing it when it starts with the gzip magic bytes.
///
/// # Errors
///
/// [`DataError::Io`] if the file cannot be read; [`DataError::Gzip`] if its gzip stream is
/// truncated or damaged.
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let mut raw = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut raw))
        .map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|source| DataError::Gzip {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses the header of an IDX byte buffer: checks the magic number and returns the dimensions
/// after checking that the data length matches them exactly.
fn parse_header(path: &Path, bytes: &[u8], magic: u32, what: &'static str) -> Result<Vec<usize>> {
    if bytes.len() < 4 {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: format!("{} bytes, too short for an IDX header", bytes.len()),
        });
    }
    let found = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if found != magic {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            found,
            expected: magic,
            what,
        });
    }
    let ndims = (magic & 0xff) as usize;
    let header_len = 4 + 4 * ndims;
    if bytes.len() < header_len {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: format!(
                "{} bytes, the IDX header of {what} needs {header_len}",
                bytes.len()
            ),
        });
    }
    let dims: Vec<usize> = (0..ndims)
        .map(|d| {
            let o = 4 + 4 * d;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    // Checked: the dimensions are 32-bit each, so their product can overflow usize (a
    // crafted header would otherwise wrap to a small size and pass the length check).
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .and_then(|n| n.checked_add(header_len))
        .ok_or_else(|| DataError::BadDimensions {
            path: path.to_path_buf(),
            what: format!(
                "the header of {what} declares dimensions {dims:?}, more bytes than a usize holds"
            ),
        })?;
    match bytes.len().cmp(&expected) {
        std::cmp::Ordering::Less => Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: format!(
                "the header declares dimensions {dims:?} ({expected} bytes), the data has {} bytes",
                bytes.len()
            ),
        }),
        std::cmp::Ordering::Greater => Err(DataError::TrailingBytes {
            path: path.to_path_buf(),
            expected,
            extra: bytes.len() - expected,
        }),
        std::cmp::Ordering::Equal => Ok(dims),
    }
}

/// Reads an IDX image file (gzip or raw) and checks magic number, dimensions and length.
///
/// # Errors
///
/// As [`read_maybe_gzip`]; [`DataError::BadMagic`] if it is not an IDX file of `u8` with
/// three dimensions; [`DataError::Truncated`] / [`DataError::TrailingBytes`] if its length
/// differs from what the header declares; [`DataError::BadDimensions`] for images of zero
/// rows or columns, or dimensions whose product overflows `usize`.
pub fn read_idx_images(path: &Path) -> Result<IdxImages> {
    let bytes = read_maybe_gzip(path)?;
    let dims = parse_header(
        path,
        &bytes,
        IMAGES_MAGIC,
        "an IDX image file (u8, 3 dimensions)",
    )?;
    if dims[1] == 0 || dims[2] == 0 {
        return Err(DataError::BadDimensions {
            path: path.to_path_buf(),
            what: format!("images of {}x{} pixels", dims[1], dims[2]),
        });
    }
    Ok(IdxImages {
        count: dims[0],
        rows: dims[1],
        cols: dims[2],
        pixels: bytes[16..].to_vec(),
    })
}

/// Reads an IDX label file (gzip or raw) and checks magic number and length.
///
/// # Errors
///
/// As [`read_maybe_gzip`]; [`DataError::BadMagic`] if it is not an IDX file of `u8` with
/// one dimension; [`DataError::Truncated`] / [`DataError::TrailingBytes`] if its length
/// differs from what the header declares; [`DataError::BadDimensions`] if the declared
/// length overflows `usize`.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>> {
    let bytes = read_maybe_gzip(path)?;
    parse_header(
        path,
        &bytes,
        LABELS_MAGIC,
        "an IDX label file (u8, 1 dimension)",
    )?;
    Ok(bytes[8..].to_vec())
}

/// Checks that every label is below `num_classes`; the error names the first bad record.
///
/// # Errors
///
/// [`DataError::LabelOutOfRange`] naming the file, the index and the label.
pub fn check_label_range(path: &Path, labels: &[u8], num_classes: u8) -> Result<()> {
    match labels.iter().position(|&l| l >= num_classes) {
        Some(index) => Err(DataError::LabelOutOfRange {
            path: path.to_path_buf(),
            index,
            label: labels[index],
            num_classes,
        }),
        None => Ok(()),
    }
}

fn write_file(path: &Path, header: &[u32], data: &[u8]) -> Result<()> {
    crate::atomic::write_atomic(path, |tmp| {
        let mut w = BufWriter::new(File::create(tmp)?);
        for v in header {
            w.write_all(&v.to_be_bytes())?;
        }
        w.write_all(data)?;
        w.flush()
    })
    .map_err(|source| DataError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes images as a raw (uncompressed) IDX file, atomically (temporary file, then rename).
///
/// # Errors
///
/// [`DataError::InvalidParameter`] if `count`, `rows` or `cols` does not fit the format's
/// 32-bit fields or `pixels` does not hold `count * rows * cols` bytes; [`DataError::Write`] if
/// the file cannot be written (the previous file is then untouched). Nothing is written on
/// an error.
pub fn write_idx_images(path: &Path, images: &IdxImages) -> Result<()> {
    let header = [
        IMAGES_MAGIC,
        idx_dimension("images", "count", images.count)?,
        idx_dimension("images", "rows", images.rows)?,
        idx_dimension("images", "cols", images.cols)?,
    ];
    let declared = images
        .count
        .checked_mul(images.rows)
        .and_then(|n| n.checked_mul(images.cols));
    if declared != Some(images.pixels.len()) {
        return Err(DataError::InvalidParameter {
            name: "images",
            what: format!(
                "{} pixels for {} images of {}x{}",
                images.pixels.len(),
                images.count,
                images.rows,
                images.cols
            ),
        });
    }
    write_file(path, &header, &images.pixels)
}

/// `value` as one of the IDX header's 32-bit dimensions.
fn idx_dimension(name: &'static str, field: &str, value: usize) -> Result<u32> {
    u32::try_from(value).map_err(|_| DataError::InvalidParameter {
        name,
        what: format!(
            "{field} {value} does not fit an IDX dimension (at most {})",
            u32::MAX
        ),
    })
}

/// Writes labels as a raw (uncompressed) IDX file, atomically.
///
/// # Errors
///
/// [`DataError::InvalidParameter`] if there are more labels than the format's 32-bit count
/// holds; [`DataError::Write`] if the file cannot be written (the previous file is then
/// untouched). Nothing is written on an error.
pub fn write_idx_labels(path: &Path, labels: &[u8]) -> Result<()> {
    let count = idx_dimension("labels", "count", labels.len())?;
    write_file(path, &[LABELS_MAGIC, count], labels)
}
