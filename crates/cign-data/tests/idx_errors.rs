//! Every corruption of an IDX file gives its own error that names the file.

use std::io::Write;
use std::path::{Path, PathBuf};

use cign_data::idx::{read_idx_images, read_idx_labels, write_idx_images, write_idx_labels};
use cign_data::{DataError, Dataset, DatasetKind, IdxImages, Split};

fn images(count: usize) -> IdxImages {
    IdxImages {
        count,
        rows: 28,
        cols: 28,
        pixels: (0..count * 784).map(|i| (i % 251) as u8).collect(),
    }
}

/// One gzip member holding `bytes`.
fn gzip_member(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// `bytes` gzip-compressed as `path` with the extension `.gz`.
fn gzip(path: &Path, bytes: &[u8]) -> PathBuf {
    let gz = path.with_extension("gz");
    std::fs::write(&gz, gzip_member(bytes)).unwrap();
    gz
}

#[test]
fn round_trip_raw_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("imgs");
    let im = images(5);
    write_idx_images(&p, &im).unwrap();
    assert_eq!(read_idx_images(&p).unwrap(), im);
    let gz = gzip(&p, &std::fs::read(&p).unwrap());
    assert_eq!(read_idx_images(&gz).unwrap(), im);
    let l = dir.path().join("labels");
    write_idx_labels(&l, &[0, 9, 3]).unwrap();
    assert_eq!(read_idx_labels(&l).unwrap(), vec![0, 9, 3]);
}

#[test]
fn truncated_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("imgs");
    write_idx_images(&p, &images(3)).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 10]).unwrap();
    let err = read_idx_images(&p).unwrap_err();
    assert!(matches!(err, DataError::Truncated { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&p.display().to_string()) && msg.contains("truncated"),
        "{msg}"
    );
    // Shorter than a header.
    std::fs::write(&p, [0u8, 0, 8]).unwrap();
    assert!(matches!(
        read_idx_images(&p),
        Err(DataError::Truncated { .. })
    ));
}

#[test]
fn trailing_bytes_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("labels");
    write_idx_labels(&p, &[1, 2, 3]).unwrap();
    let mut bytes = std::fs::read(&p).unwrap();
    bytes.extend_from_slice(&[0, 0]);
    std::fs::write(&p, bytes).unwrap();
    let err = read_idx_labels(&p).unwrap_err();
    assert!(
        matches!(err, DataError::TrailingBytes { extra: 2, .. }),
        "{err:?}"
    );
}

#[test]
fn wrong_magic_says_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("labels");
    write_idx_labels(&p, &[1, 2, 3]).unwrap();
    // A label file read as images.
    let err = read_idx_images(&p).unwrap_err();
    match &err {
        DataError::BadMagic {
            found, expected, ..
        } => {
            assert_eq!((*found, *expected), (0x801, 0x803));
        }
        other => panic!("expected BadMagic, got {other:?}"),
    }
    assert!(err.to_string().contains("0x00000801"), "{err}");
}

#[test]
fn corrupt_gzip_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("imgs");
    write_idx_images(&p, &images(4)).unwrap();
    let gz = gzip(&p, &std::fs::read(&p).unwrap());
    let bytes = std::fs::read(&gz).unwrap();
    std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
    let err = read_idx_images(&gz).unwrap_err();
    assert!(matches!(err, DataError::Gzip { .. }), "{err:?}");
    assert!(err.to_string().contains("imgs.gz"), "{err}");
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let err = read_idx_labels(Path::new("/nonexistent/labels-idx1")).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/labels-idx1"));
}

fn write_split(dir: &Path, n_images: usize, labels: &[u8]) {
    write_idx_images(&dir.join("t10k-images-idx3-ubyte"), &images(n_images)).unwrap();
    write_idx_labels(&dir.join("t10k-labels-idx1-ubyte"), labels).unwrap();
}

#[test]
fn image_label_count_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    write_split(dir.path(), 4, &[1, 2, 3]);
    let err = Dataset::load(DatasetKind::Mnist, Split::Test, dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::CountMismatch {
                images: 4,
                labels: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("4 images but"), "{err}");
}

#[test]
fn label_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    write_split(dir.path(), 3, &[1, 10, 3]);
    let err = Dataset::load(DatasetKind::Mnist, Split::Test, dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::LabelOutOfRange {
                index: 1,
                label: 10,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn missing_split_names_directory() {
    let dir = tempfile::tempdir().unwrap();
    let err = Dataset::load(DatasetKind::Mnist, Split::Train, dir.path()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("train-images-idx3-ubyte") && msg.contains(&dir.path().display().to_string()),
        "{msg}"
    );
}

/// The raw bytes of an IDX image header (magic 0x00000803) declaring `dims`.
fn image_header(dims: [u32; 3]) -> Vec<u8> {
    let mut bytes = 0x0000_0803u32.to_be_bytes().to_vec();
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes
}

#[test]
fn dimensions_whose_product_overflows_are_an_error_not_a_wrap() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("imgs");
    // 2^31 * 2^31 * 4 = 2^64: wrapping arithmetic would make it 0 bytes of pixels, and a
    // header-only file would pass the length check as 2^31 images.
    for dims in [[1 << 31, 1 << 31, 4], [u32::MAX, u32::MAX, u32::MAX]] {
        std::fs::write(&p, image_header(dims)).unwrap();
        let err = read_idx_images(&p).unwrap_err();
        assert!(
            matches!(err, DataError::BadDimensions { .. }),
            "{dims:?}: {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains(&p.display().to_string()), "{msg}");
        // The same through gzip.
        let gz = gzip(&p, &image_header(dims));
        assert!(matches!(
            read_idx_images(&gz),
            Err(DataError::BadDimensions { .. })
        ));
    }
}

#[test]
fn sizes_beyond_the_32_bit_header_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("imgs");
    let too_many = u32::MAX as usize + 1;
    for (count, rows, cols) in [(too_many, 1, 0), (0, too_many, 1), (0, 1, too_many)] {
        let im = IdxImages {
            count,
            rows,
            cols,
            pixels: Vec::new(),
        };
        let err = write_idx_images(&p, &im).unwrap_err();
        assert!(
            matches!(err, DataError::InvalidParameter { name: "images", .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(&too_many.to_string()), "{err}");
        assert!(!p.exists());
    }
    // A product that overflows usize is a length mismatch, not a panic or a wrap.
    let im = IdxImages {
        count: 1 << 31,
        rows: 1 << 31,
        cols: 4,
        pixels: Vec::new(),
    };
    assert!(matches!(
        write_idx_images(&p, &im),
        Err(DataError::InvalidParameter { .. })
    ));
    assert!(!p.exists());
}

// A gzip file of several members (`cat a.gz b.gz`, or bgzip's blocks) is read whole, as
// `gzip -d` reads it; bytes after the last member that are not gzip are an error, like
// trailing bytes of a raw file; a checksum is of all members.
#[test]
fn multi_member_gzip_is_read_whole_and_junk_after_it_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("imgs");
    let im = images(4);
    write_idx_images(&raw, &im).unwrap();
    let bytes = std::fs::read(&raw).unwrap();
    let gz = dir.path().join("imgs.gz");
    let mut members = gzip_member(&bytes[..16]);
    members.extend(gzip_member(&bytes[16..1000]));
    members.extend(gzip_member(&bytes[1000..]));
    std::fs::write(&gz, &members).unwrap();
    assert_eq!(read_idx_images(&gz).unwrap(), im);
    assert_eq!(cign_data::idx::read_maybe_gzip(&gz).unwrap(), bytes);

    let mut junk = gzip_member(&bytes);
    junk.extend_from_slice(b"not gzip");
    std::fs::write(&gz, &junk).unwrap();
    let err = read_idx_images(&gz).unwrap_err();
    assert!(matches!(err, DataError::Gzip { .. }), "{err:?}");
    assert!(err.to_string().contains("imgs.gz"), "{err}");
}

// The data behind a header is read no further than the header declares (plus one byte to
// see that more follows), so a small gzip file that inflates to far more than its header
// declares is refused without holding it in memory, and the surplus is counted.
#[test]
fn gzip_data_past_the_header_is_counted_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("bomb.gz");
    let extra = 16usize << 20;
    let mut content = image_header([1, 1, 1]);
    content.push(7);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&content).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..extra >> 20 {
        enc.write_all(&zeros).unwrap();
    }
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    assert!(std::fs::metadata(&gz).unwrap().len() < 1 << 20);
    match read_idx_images(&gz).unwrap_err() {
        DataError::TrailingBytes {
            expected, extra: e, ..
        } => assert_eq!((expected, e), (17, extra)),
        other => panic!("{other:?}"),
    }
}
