//! Reading and writing IDX files (the MNIST format), gzip-compressed or raw.
//!
//! Images are `u8` arrays with magic `0x00000803` (three dimensions: count, rows, columns);
//! labels are `u8` vectors with magic `0x00000801`. Reading checks the magic number, the
//! dimensions and the exact length (of the decompressed content for gzip, all members of a
//! multi-member file, inflated no further than the header declares), and every failure names
//! the file.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use flate2::read::MultiGzDecoder;

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

/// Whether `path` starts with the gzip magic bytes `1f 8b`.
fn is_gzip(path: &Path) -> Result<bool> {
    let mut head = Vec::with_capacity(2);
    File::open(path)
        .and_then(|f| f.take(2).read_to_end(&mut head))
        .map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(head == [0x1f, 0x8b])
}

/// The content of `path` as a stream: decompressed when it starts with the gzip magic bytes
/// (every member of a multi-member file, as `gzip -d` reads it), else raw. The second value
/// says whether it is gzip (its read errors are then [`DataError::Gzip`]).
fn open_maybe_gzip(path: &Path) -> Result<(Box<dyn Read>, bool)> {
    let gzip = is_gzip(path)?;
    let file = File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file = std::io::BufReader::new(file);
    Ok(if gzip {
        (Box::new(MultiGzDecoder::new(file)), true)
    } else {
        (Box::new(file), false)
    })
}

/// A read error of `path`: [`DataError::Gzip`] for a gzip stream, else [`DataError::Io`].
fn read_error(path: &Path, gzip: bool, source: std::io::Error) -> DataError {
    let path = path.to_path_buf();
    if gzip {
        DataError::Gzip { path, source }
    } else {
        DataError::Io { path, source }
    }
}

/// Reads a whole file, decompressing it when it starts with the gzip magic bytes (all members
/// of a multi-member gzip file).
///
/// # Errors
///
/// [`DataError::Io`] if the file cannot be read; [`DataError::Gzip`] if its gzip stream is
/// truncated or damaged, or followed by bytes that are not another gzip member.
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let (mut reader, gzip) = open_maybe_gzip(path)?;
    let mut out = Vec::new();
    reader
        .read_to_end(&mut out)
        .map_err(|e| read_error(path, gzip, e))?;
    Ok(out)
}

/// Reads at most `limit` bytes from `reader` (fewer at its end).
fn read_up_to(reader: &mut dyn Read, limit: u64, capacity: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(capacity);
    reader.take(limit).read_to_end(&mut out)?;
    Ok(out)
}

/// The largest buffer reserved up front from a header's declared size (64 MiB): more is
/// allocated only as data actually arrives, so a crafted header cannot ask for a huge buffer.
const MAX_RESERVE: usize = 64 << 20;

/// Reads an IDX file of `u8` with magic `magic`: checks the magic number, then reads exactly
/// the data the header declares (so a gzip stream is never inflated past it) and checks that
/// nothing follows. Returns the dimensions and the data.
fn read_idx(path: &Path, magic: u32, what: &'static str) -> Result<(Vec<usize>, Vec<u8>)> {
    let (mut reader, gzip) = open_maybe_gzip(path)?;
    let fail = |e| read_error(path, gzip, e);
    let ndims = (magic & 0xff) as usize;
    let header_len = 4 + 4 * ndims;
    let head = read_up_to(&mut reader, 4, 4).map_err(fail)?;
    if head.len() < 4 {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: format!("{} bytes, too short for an IDX header", head.len()),
        });
    }
    let found = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    if found != magic {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            found,
            expected: magic,
            what,
        });
    }
    let rest = read_up_to(&mut reader, (header_len - 4) as u64, header_len).map_err(fail)?;
    if 4 + rest.len() < header_len {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: format!(
                "{} bytes, the IDX header of {what} needs {header_len}",
                4 + rest.len()
            ),
        });
    }
    let dims: Vec<usize> = rest
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    // Checked: the dimensions are 32-bit each, so their product can overflow usize (a
    // crafted header would otherwise wrap to a small size and pass the length check).
    let overflow = || DataError::BadDimensions {
        path: path.to_path_buf(),
        what: format!(
            "the header of {what} declares dimensions {dims:?}, more bytes than a usize holds"
        ),
    };
    let data_len = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(overflow)?;
    let expected = data_len.checked_add(header_len).ok_or_else(overflow)?;
    // One byte past the declared data: whether anything follows it.
    let mut data =
        read_up_to(&mut reader, data_len as u64 + 1, data_len.min(MAX_RESERVE)).map_err(fail)?;
    if data.len() < data_len {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: format!(
                "the header declares dimensions {dims:?} ({expected} bytes), the data has {} bytes",
                header_len + data.len()
            ),
        });
    }
    if data.len() > data_len {
        let more = std::io::copy(&mut reader, &mut std::io::sink()).map_err(fail)?;
        return Err(DataError::TrailingBytes {
            path: path.to_path_buf(),
            expected,
            extra: 1 + more as usize,
        });
    }
    data.shrink_to_fit();
    Ok((dims, data))
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
    let (dims, pixels) = read_idx(path, IMAGES_MAGIC, "an IDX image file (u8, 3 dimensions)")?;
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
        pixels,
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
    Ok(read_idx(path, LABELS_MAGIC, "an IDX label file (u8, 1 dimension)")?.1)
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
