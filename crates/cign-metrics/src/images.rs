//! Image inputs: tensors, folders of image files (every format pytorch-fid reads: bmp,
//! jpg/jpeg, pgm/ppm, png, tif/tiff, webp; any size; searched recursively; hidden files and
//! folders skipped unless asked for; unlike pytorch-fid's `fid_score.py`, whose
//! `sorted(path.glob('*.{ext}'))` reads one folder level, matches extensions case-sensitively
//! and includes hidden files, so the two can read different files from one folder), IDX image
//! files (MNIST format, gzip or raw), and `.npz` statistics files for the CLI. [`identify`] tells what a path is, so that a wrong kind of
//! file gets a message saying what it is and what to pass instead.
//!
//! Nothing is skipped silently: [`ImageFiles::from_folder_with`] counts what it did not read
//! and why ([`SkipReport`]) and warns once (through `tracing`); a folder without a readable
//! image is an error that names the extensions it found.
//!
//! Files with more than 8 bits per sample (16-bit PNG or TIFF) are scaled to 8 bits
//! (`round(v * 255 / 65535)`), the sane decode; pytorch-fid (PIL's `convert("RGB")`) clips
//! 16-bit grey at 255 and keeps the high byte of 48-bit RGB, so the two tools differ on such
//! files. The first such file of a process logs a warning saying so.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tch::{Kind, Tensor};

use crate::error::{MetricsError, Result};
use crate::preprocess::{PixelRange, Preprocess, INCEPTION_SIZE};
use crate::stats::Stats;

/// Something that yields batches of images in [0, 1] (`[B, 1|3, H, W]` float32).
pub trait ImageSource {
    /// Number of images.
    fn len(&self) -> usize;
    /// Whether there are no images.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Images `start..end` in [0, 1].
    ///
    /// # Errors
    /// [`MetricsError::InvalidInput`] when `start..end` is not within `0..len()`, and the
    /// source's own errors (a file that does not decode, ...).
    fn batch(&self, start: usize, end: usize) -> Result<Tensor>;
}

fn check_range(start: usize, end: usize, len: usize) -> Result<()> {
    if start > end || end > len {
        return Err(MetricsError::invalid(
            "batch",
            format!("range {start}..{end} is not within the {len} images"),
        ));
    }
    Ok(())
}

/// Images held in a tensor `[N, 1|3, H, W]` (float in `range`, or `u8`), mapped to [0, 1]
/// by a [`Preprocess`] (8-bit quantisation by default).
pub struct TensorImages {
    images: Tensor,
    range: PixelRange,
    preprocess: Preprocess,
}

impl TensorImages {
    /// Wraps `images` (checked to be `[N, 1|3, H, W]`, float or `u8`, finite, float values
    /// within `range` give or take half its width: [`crate::preprocess::check_range`]).
    ///
    /// # Errors
    /// [`MetricsError::InvalidInput`] when a check fails.
    pub fn new(images: &Tensor, range: PixelRange, preprocess: Preprocess) -> Result<Self> {
        crate::preprocess::check_images("images", images)?;
        crate::preprocess::check_range("images", images, range)?;
        Ok(TensorImages {
            images: images.shallow_clone(),
            range,
            preprocess,
        })
    }
}

impl ImageSource for TensorImages {
    fn len(&self) -> usize {
        self.images.size()[0] as usize
    }
    fn batch(&self, start: usize, end: usize) -> Result<Tensor> {
        check_range(start, end, self.len())?;
        let part = self
            .images
            .f_narrow(0, start as i64, (end - start) as i64)?;
        self.preprocess.to_unit(&part, self.range)
    }
}

/// Extensions read from folders: those pytorch-fid reads (`IMAGE_EXTENSIONS` in its
/// `fid_score.py`), here matched case-insensitively (`A.PNG` is read; pytorch-fid skips it).
pub const IMAGE_EXTENSIONS: [&str; 9] = [
    "bmp", "jpeg", "jpg", "pgm", "png", "ppm", "tif", "tiff", "webp",
];

/// Whether `path` has one of the [`IMAGE_EXTENSIONS`].
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// How a folder is searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FolderOptions {
    /// Also read hidden files and search hidden folders (names starting with `.`, such as
    /// `.ipynb_checkpoints`). Off by default, since such folders usually hold copies of the
    /// images (pytorch-fid's glob reads hidden files of the top folder).
    pub include_hidden: bool,
}

/// What a folder search did not read, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkipReport {
    /// Files whose extension is not one of [`IMAGE_EXTENSIONS`], counted by lower-case
    /// extension with its dot (`".gif"`; `"(none)"` for a file without one).
    pub unsupported: BTreeMap<String, usize>,
    /// Hidden files not read.
    pub hidden_files: usize,
    /// Hidden folders not searched, relative to the folder searched.
    pub hidden_dirs: Vec<PathBuf>,
    /// Symbolic links whose target does not exist.
    pub broken_links: usize,
}

impl SkipReport {
    /// Whether nothing was skipped.
    pub fn is_empty(&self) -> bool {
        self.unsupported.is_empty()
            && self.hidden_files == 0
            && self.hidden_dirs.is_empty()
            && self.broken_links == 0
    }

    /// Number of files with an unsupported extension.
    pub fn unsupported_files(&self) -> usize {
        self.unsupported.values().sum()
    }

    /// One line: what was skipped, with counts and reasons.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.unsupported.is_empty() {
            let exts: Vec<String> = self
                .unsupported
                .iter()
                .map(|(e, n)| format!("{e} x{n}"))
                .collect();
            parts.push(format!(
                "{} file(s) of a format not read ({})",
                self.unsupported_files(),
                exts.join(", ")
            ));
        }
        if self.hidden_files > 0 {
            parts.push(format!("{} hidden file(s)", self.hidden_files));
        }
        if !self.hidden_dirs.is_empty() {
            let names: Vec<String> = self
                .hidden_dirs
                .iter()
                .take(3)
                .map(|d| d.display().to_string())
                .collect();
            let more = if self.hidden_dirs.len() > 3 {
                ", ..."
            } else {
                ""
            };
            parts.push(format!(
                "{} hidden folder(s) not searched ({}{more})",
                self.hidden_dirs.len(),
                names.join(", ")
            ));
        }
        if self.broken_links > 0 {
            parts.push(format!("{} broken symbolic link(s)", self.broken_links));
        }
        let mut text = parts.join(", ");
        if self.hidden_files > 0 || !self.hidden_dirs.is_empty() {
            text.push_str(" (hidden entries are read with cign-fid --include-hidden / FolderOptions::include_hidden)");
        }
        text
    }
}

/// Image files (decoded as RGB, like pytorch-fid's `Image.open(path).convert('RGB')`),
/// each resized to 299 x 299 on loading so that files of different sizes can share a batch.
#[derive(Debug)]
pub struct ImageFiles {
    files: Vec<PathBuf>,
    skipped: SkipReport,
    scaled_16bit: AtomicUsize,
}

fn is_hidden(entry: &walkdir::DirEntry) -> bool {
    entry.depth() > 0
        && entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with('.'))
}

impl ImageFiles {
    /// The given files, in the given order.
    pub fn new(files: Vec<PathBuf>) -> Self {
        ImageFiles {
            files,
            skipped: SkipReport::default(),
            scaled_16bit: AtomicUsize::new(0),
        }
    }

    /// [`ImageFiles::from_folder_with`] with the default options (hidden entries skipped).
    ///
    /// # Errors
    /// As [`ImageFiles::from_folder_with`].
    pub fn from_folder(dir: &Path) -> Result<Self> {
        Self::from_folder_with(dir, &FolderOptions::default())
    }

    /// All image files under `dir` (recursively, following symbolic links, sorted by path)
    /// with one of the [`IMAGE_EXTENSIONS`]. Hidden files and folders are skipped unless
    /// `options.include_hidden`. What was not read is counted ([`ImageFiles::skipped`]) and
    /// logged once as a warning.
    ///
    /// # Errors
    /// [`MetricsError::Io`] when a folder cannot be listed (or a symbolic link loops);
    /// [`MetricsError::BadFile`] when no image file is found, naming the extensions found and
    /// the hidden entries skipped.
    pub fn from_folder_with(dir: &Path, options: &FolderOptions) -> Result<Self> {
        let mut files = Vec::new();
        let mut skipped = SkipReport::default();
        let walker = walkdir::WalkDir::new(dir)
            .follow_links(true)
            .into_iter()
            .filter_entry(|e| options.include_hidden || !is_hidden(e));
        // filter_entry drops hidden entries unseen: each folder's hidden children are
        // counted by a shallow listing when the folder is visited.
        for entry in walker {
            let entry = match entry {
                Ok(e) => e,
                Err(e) if is_broken_link(&e) => {
                    skipped.broken_links += 1;
                    continue;
                }
                Err(e) => {
                    let path = e.path().unwrap_or(dir).to_path_buf();
                    let what = if e.loop_ancestor().is_some() {
                        "symbolic link loop at"
                    } else {
                        "cannot list"
                    };
                    return Err(MetricsError::io(path, what, e.into()));
                }
            };
            if entry.file_type().is_dir() {
                if !options.include_hidden {
                    count_hidden_children(dir, entry.path(), &mut skipped);
                }
                continue;
            }
            if !entry.file_type().is_file() {
                continue;
            }
            if has_image_extension(entry.path()) {
                files.push(entry.into_path());
            } else {
                let ext = entry
                    .path()
                    .extension()
                    .map(|e| format!(".{}", e.to_string_lossy().to_ascii_lowercase()))
                    .unwrap_or_else(|| "(none)".into());
                *skipped.unsupported.entry(ext).or_default() += 1;
            }
        }
        if files.is_empty() {
            let found = if skipped.is_empty() {
                "it is empty".to_string()
            } else {
                format!("found {}", skipped.summary())
            };
            return Err(MetricsError::BadFile {
                path: dir.to_path_buf(),
                what: format!(
                    "no image file of a format read here ({}); {found}",
                    IMAGE_EXTENSIONS.join(", ")
                ),
            });
        }
        files.sort();
        if !skipped.is_empty() {
            tracing::warn!(
                "{}: reading {} image file(s); skipped {}",
                dir.display(),
                files.len(),
                skipped.summary()
            );
        }
        Ok(ImageFiles {
            files,
            skipped,
            scaled_16bit: AtomicUsize::new(0),
        })
    }

    /// The files, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// What the folder search did not read (empty for [`ImageFiles::new`]).
    pub fn skipped(&self) -> &SkipReport {
        &self.skipped
    }

    /// How many files with more than 8 bits per sample were scaled to 8 bits so far.
    pub fn scaled_16bit(&self) -> usize {
        self.scaled_16bit.load(Ordering::Relaxed)
    }
}

fn is_broken_link(e: &walkdir::Error) -> bool {
    e.loop_ancestor().is_none()
        && e.io_error()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
        && e.path()
            .and_then(|p| std::fs::symlink_metadata(p).ok())
            .is_some_and(|m| m.file_type().is_symlink())
}

/// Counts the hidden files and folders directly inside `dir` (which the walk skips); folders
/// are recorded relative to `root`.
fn count_hidden_children(root: &Path, dir: &Path, skipped: &mut SkipReport) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with('.'))
        {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            let rel = path
                .strip_prefix(root)
                .map(Path::to_path_buf)
                .unwrap_or(path);
            skipped.hidden_dirs.push(rel);
        } else {
            skipped.hidden_files += 1;
        }
    }
    skipped.hidden_dirs.sort();
}

static WARNED_16BIT: AtomicBool = AtomicBool::new(false);

/// Decodes one image file to `[1, 3, H, W]` float32 in [0, 1] (RGB; grey repeated, alpha
/// dropped, as PIL's `convert("RGB")` does). Samples of more than 8 bits are scaled to 8 bits
/// (`round(v * 255 / 65535)` for 16-bit), which pytorch-fid does not do (see the module
/// documentation).
///
/// # Errors
/// [`MetricsError::BadFile`] when `path` is a directory; [`MetricsError::Image`] when the file
/// cannot be opened or decoded.
pub fn load_image(path: &Path) -> Result<Tensor> {
    decode_image(path).map(|(t, _)| t)
}

/// [`load_image`], also saying whether the file had more than 8 bits per sample.
fn decode_image(path: &Path) -> Result<(Tensor, bool)> {
    if path.is_dir() {
        return Err(MetricsError::BadFile {
            path: path.to_path_buf(),
            what: "is a directory, not an image file".into(),
        });
    }
    let img = image::ImageReader::open(path)
        .map_err(|e| MetricsError::Image {
            path: path.to_path_buf(),
            source: image::ImageError::IoError(e),
        })?
        .with_guessed_format()
        .map_err(|e| MetricsError::Image {
            path: path.to_path_buf(),
            source: image::ImageError::IoError(e),
        })?
        .decode()
        .map_err(|source| MetricsError::Image {
            path: path.to_path_buf(),
            source,
        })?;
    let deep = img.color().bytes_per_pixel() / img.color().channel_count() > 1;
    let rgb = img.to_rgb8();
    let (w, h) = (rgb.width() as i64, rgb.height() as i64);
    let t = Tensor::from_slice(rgb.as_raw())
        .f_reshape([h, w, 3])?
        .f_permute([2, 0, 1])?
        .f_unsqueeze(0)?
        .f_to_kind(Kind::Float)?
        / 255.0;
    Ok((t, deep))
}

impl ImageSource for ImageFiles {
    fn len(&self) -> usize {
        self.files.len()
    }
    fn batch(&self, start: usize, end: usize) -> Result<Tensor> {
        check_range(start, end, self.len())?;
        let mut images = Vec::with_capacity(end - start);
        for path in &self.files[start..end] {
            let (x, deep) = decode_image(path)?;
            if deep {
                self.scaled_16bit.fetch_add(1, Ordering::Relaxed);
                if !WARNED_16BIT.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "{} (and any other such file) has more than 8 bits per sample: scaled to 8 bits (round(v * 255 / 65535)); pytorch-fid (PIL convert(\"RGB\")) clips 16-bit grey at 255 and keeps the high byte of 48-bit RGB, so its FID differs on such files",
                        path.display()
                    );
                }
            }
            let size = x.size();
            let x = if size[2] == INCEPTION_SIZE && size[3] == INCEPTION_SIZE {
                x
            } else {
                x.f_upsample_bilinear2d([INCEPTION_SIZE, INCEPTION_SIZE], false, None, None)?
            };
            images.push(x);
        }
        if images.is_empty() {
            return Ok(Tensor::zeros(
                [0, 3, INCEPTION_SIZE, INCEPTION_SIZE],
                (Kind::Float, tch::Device::Cpu),
            ));
        }
        Ok(Tensor::f_cat(&images, 0)?)
    }
}

/// The images of an IDX file (`u8`, `[N, 1, rows, cols]`).
///
/// # Errors
/// cign-data's errors (missing file, wrong magic number, truncated file).
pub fn idx_images(path: &Path) -> Result<TensorImages> {
    let idx = cign_data::idx::read_idx_images(path)?;
    let t = Tensor::from_slice(&idx.pixels).f_reshape([
        idx.count as i64,
        1,
        idx.rows as i64,
        idx.cols as i64,
    ])?;
    TensorImages::new(&t, PixelRange::Unit, Preprocess::default())
}

/// What a path holds, judged by its contents (magic bytes), not its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathKind {
    /// A directory.
    Folder,
    /// One image file, with its format's name ("PNG", "JPEG", ...).
    Image(&'static str),
    /// A zip archive (an `.npz` file).
    Npz,
    /// A single NumPy array (`.npy`).
    Npy,
    /// An IDX image file (magic 2051), `gzip` when compressed.
    IdxImages {
        /// gzip-compressed.
        gzip: bool,
    },
    /// An IDX label file (magic 2049), `gzip` when compressed.
    IdxLabels {
        /// gzip-compressed.
        gzip: bool,
    },
    /// Another IDX file (`magic` = its magic number).
    IdxOther {
        /// The magic number.
        magic: u32,
    },
    /// A gzip file whose contents are not IDX.
    Gzip,
    /// Anything else (for example text).
    Other,
}

/// Says what `path` is from its first bytes (decompressing gzip).
///
/// # Errors
/// [`MetricsError::Io`] when the path does not exist or cannot be read.
pub fn identify(path: &Path) -> Result<PathKind> {
    let meta = std::fs::metadata(path).map_err(|e| MetricsError::io(path, "cannot open", e))?;
    if meta.is_dir() {
        return Ok(PathKind::Folder);
    }
    let head = read_head(path, 16)?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let file =
            std::fs::File::open(path).map_err(|e| MetricsError::io(path, "cannot open", e))?;
        let mut inner = [0u8; 4];
        let ok = flate2::read::GzDecoder::new(file)
            .read_exact(&mut inner)
            .is_ok();
        return Ok(match (ok, idx_kind(&inner, true)) {
            (true, Some(kind)) => kind,
            _ => PathKind::Gzip,
        });
    }
    if let Some(kind) = idx_kind(&head, false) {
        return Ok(kind);
    }
    let starts = |sig: &[u8]| head.starts_with(sig);
    let kind = if starts(b"\x89PNG\r\n\x1a\n") {
        PathKind::Image("PNG")
    } else if starts(&[0xff, 0xd8, 0xff]) {
        PathKind::Image("JPEG")
    } else if starts(b"BM") {
        PathKind::Image("BMP")
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        PathKind::Image("TIFF")
    } else if starts(b"RIFF") && head.get(8..12) == Some(&b"WEBP"[..]) {
        PathKind::Image("WebP")
    } else if starts(b"GIF8") {
        PathKind::Image("GIF")
    } else if head.len() >= 3
        && head[0] == b'P'
        && (b'1'..=b'6').contains(&head[1])
        && head[2].is_ascii_whitespace()
    {
        PathKind::Image("PNM (pbm/pgm/ppm)")
    } else if starts(b"\x93NUMPY") {
        PathKind::Npy
    } else if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") {
        PathKind::Npz
    } else {
        PathKind::Other
    };
    Ok(kind)
}

fn read_head(path: &Path, n: usize) -> Result<Vec<u8>> {
    let mut file =
        std::fs::File::open(path).map_err(|e| MetricsError::io(path, "cannot open", e))?;
    let mut head = Vec::with_capacity(n);
    (&mut file)
        .take(n as u64)
        .read_to_end(&mut head)
        .map_err(|e| MetricsError::io(path, "cannot read", e))?;
    Ok(head)
}

/// The IDX kind of a 4-byte header: `00 00 <type> <ndims>`, type 0x08..=0x0e.
fn idx_kind(head: &[u8], gzip: bool) -> Option<PathKind> {
    if head.len() < 4 || head[0] != 0 || head[1] != 0 || !(0x08..=0x0e).contains(&head[2]) {
        return None;
    }
    let magic = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    Some(match magic {
        0x0803 => PathKind::IdxImages { gzip },
        0x0801 => PathKind::IdxLabels { gzip },
        _ => PathKind::IdxOther { magic },
    })
}

/// What to say about a path of kind `kind` where images (a folder, an IDX image file or an
/// `.npz` statistics file) were expected; `None` when the kind is right.
fn wrong_input_kind(kind: &PathKind) -> Option<String> {
    Some(match kind {
        PathKind::Folder | PathKind::IdxImages { .. } | PathKind::Npz => return None,
        PathKind::Image(format) => format!(
            "a single {format} image file: pass the folder that holds it (inputs are folders of images, IDX image files or .npz statistics)"
        ),
        PathKind::Npy => "a .npy file (one NumPy array): statistics must be an .npz with the arrays mu and sigma (np.savez(path, mu=mu, sigma=sigma))".into(),
        PathKind::IdxLabels { .. } => "an IDX label file (magic 2049), not images: pass it with --labels-a / --labels-b, and images as a folder or an IDX image file (magic 2051)".into(),
        PathKind::IdxOther { magic } => format!(
            "an IDX file with magic number {magic} ({magic:#010x}): images must be an IDX image file with magic 2051 (u8, three dimensions)"
        ),
        PathKind::Gzip => "a gzip file that holds neither IDX images nor IDX labels".into(),
        PathKind::Other => "not a folder of images, an IDX image file (magic 2051, optionally gzip) or an .npz statistics file (a zip archive)".into(),
    })
}

/// Reads labels: an IDX label file (gzip or raw), or a text file with one integer per line
/// (blank lines and lines starting with `#` ignored; any file that is not IDX is read as
/// text).
///
/// # Errors
/// [`MetricsError::Io`] when the path is missing or unreadable; [`MetricsError::BadFile`]
/// when the path is an image, an IDX image file, an `.npz`/`.npy` file or a folder (saying
/// what it is), the text is not UTF-8, or a text line is not a label in 0..=255;
/// [`MetricsError::Data`] (cign-data's error) for a damaged IDX label file.
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    let bad = |what: String| MetricsError::BadFile {
        path: path.to_path_buf(),
        what,
    };
    match identify(path)? {
        PathKind::IdxLabels { .. } => return Ok(cign_data::idx::read_idx_labels(path)?),
        PathKind::Other => {}
        PathKind::IdxImages { .. } => {
            return Err(bad("an IDX image file (magic 2051), not labels: pass an IDX label file (magic 2049) or a text file with one label per line".into()))
        }
        other => {
            let what = match other {
                PathKind::Folder => "a folder".to_string(),
                PathKind::Image(f) => format!("a {f} image file"),
                PathKind::Npz => "an .npz archive".into(),
                PathKind::Npy => "a .npy array".into(),
                PathKind::IdxOther { magic } => format!("an IDX file with magic number {magic}"),
                _ => "a gzip file that is not an IDX label file".into(),
            };
            return Err(bad(format!(
                "{what}, not labels: pass an IDX label file (magic 2049) or a text file with one label per line"
            )));
        }
    }
    let bytes = std::fs::read(path).map_err(|e| MetricsError::io(path, "cannot read", e))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        bad("neither an IDX label file nor a UTF-8 text file with one label per line".into())
    })?;
    // A byte-order mark (which some editors write) is not part of the first label.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut labels = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let v: u8 = line.parse().map_err(|_| {
            bad(format!(
                "line {}: '{line}' is not a label in 0..=255",
                i + 1
            ))
        })?;
        labels.push(v);
    }
    Ok(labels)
}

/// A CLI input: images, or precomputed statistics.
pub enum Input {
    /// Images to run through the network.
    Images(Box<dyn ImageSource>),
    /// Statistics read from an `.npz` file.
    Stats(Stats),
}

/// [`open_input_with`] with the default folder options.
///
/// # Errors
/// As [`open_input_with`].
pub fn open_input(path: &Path) -> Result<Input> {
    open_input_with(path, &FolderOptions::default())
}

/// Opens `path`: a folder of images, an `.npz` statistics file, or an IDX image file (raw or
/// gzip), recognised by their contents. Cheap: folders are listed, not decoded.
///
/// # Errors
/// [`MetricsError::BadFile`] saying what the path is and what to pass instead when it is none
/// of these (a single image file, a `.npy` file, an IDX label file, ...), and the errors of
/// [`ImageFiles::from_folder_with`], [`crate::npz::load_stats`] and [`idx_images`].
pub fn open_input_with(path: &Path, options: &FolderOptions) -> Result<Input> {
    if !path.exists() {
        return Err(MetricsError::BadFile {
            path: path.to_path_buf(),
            what: "does not exist (expected a folder of images, an IDX image file or an .npz statistics file)".into(),
        });
    }
    let kind = identify(path)?;
    if let Some(what) = wrong_input_kind(&kind) {
        return Err(MetricsError::BadFile {
            path: path.to_path_buf(),
            what,
        });
    }
    match kind {
        PathKind::Folder => Ok(Input::Images(Box::new(ImageFiles::from_folder_with(
            path, options,
        )?))),
        PathKind::Npz => Ok(Input::Stats(crate::npz::load_stats(path)?)),
        _ => Ok(Input::Images(Box::new(idx_images(path)?))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_not_an_image_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = load_image(dir.path()).unwrap_err().to_string();
        assert!(e.ends_with("is a directory, not an image file"), "{e}");
    }

    #[test]
    fn folders_are_searched_recursively_in_sorted_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        let img =
            image::RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8 * 50, y as u8 * 100, 7]));
        img.save(dir.path().join("sub/b.png")).unwrap();
        image::GrayImage::from_pixel(28, 28, image::Luma([255]))
            .save(dir.path().join("a.PNG"))
            .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let files = ImageFiles::from_folder(dir.path()).unwrap();
        assert_eq!(files.len(), 2);
        assert!(files.files()[0].ends_with("a.PNG"));
        assert_eq!(files.skipped().unsupported[".txt"], 1);
        let b = load_image(&files.files()[1]).unwrap();
        assert_eq!(b.size(), vec![1, 3, 3, 5]);
        assert!((b.double_value(&[0, 0, 0, 1]) - 50.0 / 255.0).abs() < 1e-7);
        assert!((b.double_value(&[0, 1, 2, 0]) - 200.0 / 255.0).abs() < 1e-7);
        let batch = files.batch(0, 2).unwrap();
        assert_eq!(batch.size(), vec![2, 3, 299, 299]);
        assert!((batch.get(0).min().double_value(&[]) - 1.0).abs() < 1e-6);
        assert!(files.batch(1, 3).is_err());
        assert!(ImageFiles::from_folder(&dir.path().join("sub/none")).is_err());
    }

    #[test]
    fn hidden_entries_are_skipped_counted_and_included_on_request() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join(".root-may-be-hidden");
        std::fs::create_dir_all(root.join(".ipynb_checkpoints")).unwrap();
        std::fs::create_dir_all(root.join("sub/.cache")).unwrap();
        let img = image::GrayImage::from_pixel(4, 4, image::Luma([9]));
        for p in [
            "a.png",
            ".ipynb_checkpoints/a.png",
            "sub/b.png",
            "sub/.cache/c.png",
            ".d.png",
        ] {
            img.save(root.join(p)).unwrap();
        }
        let files = ImageFiles::from_folder(&root).unwrap();
        assert_eq!(files.len(), 2, "{:?}", files.files());
        let s = files.skipped();
        assert_eq!(s.hidden_files, 1);
        assert_eq!(s.hidden_dirs.len(), 2);
        let summary = s.summary();
        assert!(
            summary.contains("1 hidden file(s)") && summary.contains("2 hidden folder(s)"),
            "{summary}"
        );
        assert!(
            summary.contains(".ipynb_checkpoints") && summary.contains("--include-hidden"),
            "{summary}"
        );
        let all = ImageFiles::from_folder_with(
            &root,
            &FolderOptions {
                include_hidden: true,
            },
        )
        .unwrap();
        assert_eq!(all.len(), 5);
        assert!(all.skipped().is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn broken_links_are_counted_and_link_loops_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        image::GrayImage::from_pixel(4, 4, image::Luma([9]))
            .save(dir.path().join("a.png"))
            .unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone.png"), dir.path().join("b.png")).unwrap();
        let files = ImageFiles::from_folder(dir.path()).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files.skipped().broken_links, 1);
        assert!(files
            .skipped()
            .summary()
            .contains("1 broken symbolic link(s)"));
        std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).unwrap();
        let err = ImageFiles::from_folder(dir.path()).unwrap_err().to_string();
        assert!(err.contains("symbolic link loop"), "{err}");
    }

    #[test]
    fn a_folder_without_readable_images_names_what_it_found() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.gif", "b.GIF", "c.txt", "README"] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        std::fs::create_dir_all(dir.path().join(".hidden")).unwrap();
        let err = ImageFiles::from_folder(dir.path()).unwrap_err().to_string();
        for want in [
            ".gif x2",
            ".txt x1",
            "(none) x1",
            "1 hidden folder(s)",
            "png",
            "webp",
        ] {
            assert!(err.contains(want), "{want}: {err}");
        }
        let empty = tempfile::tempdir().unwrap();
        let err = ImageFiles::from_folder(empty.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("it is empty"), "{err}");
    }

    #[test]
    fn sixteen_bit_files_are_scaled_to_eight_bits() {
        let dir = tempfile::tempdir().unwrap();
        let v8: Vec<u8> = (0..64).map(|i| (i * 4) as u8).collect();
        let grey16 = image::ImageBuffer::<image::Luma<u16>, _>::from_raw(
            8,
            8,
            v8.iter().map(|&v| v as u16 * 257).collect::<Vec<_>>(),
        )
        .unwrap();
        grey16.save(dir.path().join("g16.png")).unwrap();
        image::GrayImage::from_raw(8, 8, v8.clone())
            .unwrap()
            .save(dir.path().join("g8.png"))
            .unwrap();
        let (a, deep_a) = decode_image(&dir.path().join("g16.png")).unwrap();
        let (b, deep_b) = decode_image(&dir.path().join("g8.png")).unwrap();
        assert!(deep_a && !deep_b);
        assert_eq!(a.eq_tensor(&b).all().int64_value(&[]), 1);
        let files = ImageFiles::from_folder(dir.path()).unwrap();
        assert_eq!(files.batch(0, 2).unwrap().size()[0], 2);
        assert_eq!(files.scaled_16bit(), 1);
    }

    #[test]
    fn paths_are_identified_by_their_contents() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        image::GrayImage::from_pixel(2, 2, image::Luma([1]))
            .save(p("x.png"))
            .unwrap();
        std::fs::copy(p("x.png"), p("renamed.npz")).unwrap();
        std::fs::write(p("a.npy"), b"\x93NUMPY\x01\x00v\x00{'descr': '<f8'}").unwrap();
        std::fs::write(p("l-idx1-ubyte"), [0, 0, 8, 1, 0, 0, 0, 0]).unwrap();
        std::fs::write(p("i-idx3-ubyte"), [0, 0, 8, 3, 0, 0, 0, 0]).unwrap();
        std::fs::write(p("t.txt"), "1\n2\n").unwrap();
        assert_eq!(identify(dir.path()).unwrap(), PathKind::Folder);
        assert_eq!(identify(&p("x.png")).unwrap(), PathKind::Image("PNG"));
        assert_eq!(identify(&p("renamed.npz")).unwrap(), PathKind::Image("PNG"));
        assert_eq!(identify(&p("a.npy")).unwrap(), PathKind::Npy);
        assert_eq!(
            identify(&p("l-idx1-ubyte")).unwrap(),
            PathKind::IdxLabels { gzip: false }
        );
        assert_eq!(
            identify(&p("i-idx3-ubyte")).unwrap(),
            PathKind::IdxImages { gzip: false }
        );
        assert_eq!(identify(&p("t.txt")).unwrap(), PathKind::Other);
        let gz = p("l.gz");
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::default(),
        );
        std::io::Write::write_all(&mut enc, &[0, 0, 8, 1, 0, 0, 0, 0]).unwrap();
        enc.finish().unwrap();
        assert_eq!(identify(&gz).unwrap(), PathKind::IdxLabels { gzip: true });

        let msg = |path: &Path| match open_input(path) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{} opened", path.display()),
        };
        assert!(msg(&p("x.png")).contains("a single PNG image file: pass the folder that holds it"));
        assert!(msg(&p("renamed.npz")).contains("a single PNG image file"));
        assert!(msg(&p("a.npy")).contains("a .npy file (one NumPy array): statistics must be an .npz with the arrays mu and sigma"));
        assert!(msg(&p("l-idx1-ubyte")).contains("an IDX label file (magic 2049), not images"));
        assert!(msg(&gz).contains("an IDX label file"));
        assert!(msg(&p("t.txt")).contains("not a folder of images"));
        assert!(msg(&p("missing")).contains("does not exist"));
        let err = read_labels(&p("i-idx3-ubyte")).unwrap_err().to_string();
        assert!(
            err.contains("an IDX image file (magic 2051), not labels"),
            "{err}"
        );
        let err = read_labels(&p("x.png")).unwrap_err().to_string();
        assert!(err.contains("a PNG image file, not labels"), "{err}");
        assert_eq!(read_labels(&p("t.txt")).unwrap(), vec![1, 2]);
    }

    #[test]
    fn text_labels_and_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.txt");
        std::fs::write(&p, "# labels\n1\n\n2\n9\n").unwrap();
        assert_eq!(read_labels(&p).unwrap(), vec![1, 2, 9]);
        std::fs::write(&p, "1\nseven\n").unwrap();
        let err = read_labels(&p).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    // Some editors start a UTF-8 text file with a byte-order mark; it is not part of the
    // first label.
    #[test]
    fn a_byte_order_mark_before_the_first_label_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.txt");
        std::fs::write(&path, "\u{feff}1\n7\r\n# comment\n3\n").unwrap();
        assert_eq!(read_labels(&path).unwrap(), [1, 7, 3]);
        // Elsewhere it is still an error.
        std::fs::write(&path, "1\n\u{feff}7\n").unwrap();
        let e = read_labels(&path).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
    }
}
