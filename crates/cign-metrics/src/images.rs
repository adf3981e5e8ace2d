//! Image inputs: tensors, folders of PNG/JPEG files (any size, searched recursively), IDX
//! image files (MNIST format, gzip or raw), and `.npz` statistics files for the CLI.

use std::path::{Path, PathBuf};

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
    fn batch(&self, start: usize, end: usize) -> Result<Tensor>;
}

/// Images held in a tensor `[N, 1|3, H, W]` (float in `range`, or `u8`), mapped to [0, 1]
/// by a [`Preprocess`] (8-bit quantisation by default).
pub struct TensorImages {
    images: Tensor,
    range: PixelRange,
    preprocess: Preprocess,
}

impl TensorImages {
    /// Wraps `images` (checked to be `[N, 1|3, H, W]`).
    pub fn new(images: &Tensor, range: PixelRange, preprocess: Preprocess) -> Result<Self> {
        crate::preprocess::check_images("images", images)?;
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
        let part = self.images.narrow(0, start as i64, (end - start) as i64);
        self.preprocess.to_unit(&part, self.range)
    }
}

/// Image files (decoded as RGB, like pytorch-fid's `Image.open(path).convert('RGB')`),
/// each resized to 299 x 299 on loading so that files of different sizes can share a batch.
pub struct ImageFiles {
    files: Vec<PathBuf>,
}

/// Extensions read from folders (case-insensitive).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

impl ImageFiles {
    /// The given files, in the given order.
    pub fn new(files: Vec<PathBuf>) -> Self {
        ImageFiles { files }
    }

    /// All PNG/JPEG files under `dir` (recursively), sorted by path.
    pub fn from_folder(dir: &Path) -> Result<Self> {
        let mut files = Vec::new();
        for entry in walkdir::WalkDir::new(dir).follow_links(true) {
            let entry = entry.map_err(|e| {
                let path = e.path().unwrap_or(dir).to_path_buf();
                MetricsError::io(path, "cannot list", e.into())
            })?;
            let is_image = entry
                .path()
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
            if entry.file_type().is_file() && is_image {
                files.push(entry.into_path());
            }
        }
        if files.is_empty() {
            return Err(MetricsError::invalid(
                "input folder",
                format!("{} holds no PNG or JPEG file", dir.display()),
            ));
        }
        files.sort();
        Ok(ImageFiles { files })
    }

    /// The files, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

/// Decodes one image file to `[1, 3, H, W]` float32 in [0, 1].
pub fn load_image(path: &Path) -> Result<Tensor> {
    let img = image::open(path).map_err(|source| MetricsError::Image {
        path: path.to_path_buf(),
        source,
    })?;
    let rgb = img.to_rgb8();
    let (w, h) = (rgb.width() as i64, rgb.height() as i64);
    let t = Tensor::from_slice(rgb.as_raw())
        .reshape([h, w, 3])
        .permute([2, 0, 1])
        .unsqueeze(0)
        .to_kind(Kind::Float)
        / 255.0;
    Ok(t)
}

impl ImageSource for ImageFiles {
    fn len(&self) -> usize {
        self.files.len()
    }
    fn batch(&self, start: usize, end: usize) -> Result<Tensor> {
        let mut images = Vec::with_capacity(end - start);
        for path in &self.files[start..end] {
            let x = load_image(path)?;
            let size = x.size();
            let x = if size[2] == INCEPTION_SIZE && size[3] == INCEPTION_SIZE {
                x
            } else {
                x.upsample_bilinear2d([INCEPTION_SIZE, INCEPTION_SIZE], false, None, None)
            };
            images.push(x);
        }
        Ok(Tensor::cat(&images, 0))
    }
}

/// The images of an IDX file (`u8`, `[N, 1, rows, cols]`).
pub fn idx_images(path: &Path) -> Result<TensorImages> {
    let idx = cign_data::idx::read_idx_images(path)?;
    let t = Tensor::from_slice(&idx.pixels).reshape([
        idx.count as i64,
        1,
        idx.rows as i64,
        idx.cols as i64,
    ]);
    TensorImages::new(&t, PixelRange::Unit, Preprocess::default())
}

/// Reads labels: an IDX label file (gzip or raw), or a text file with one integer per line
/// (blank lines and lines starting with `#` ignored).
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    let is_text = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "txt" | "csv"));
    if !is_text {
        return Ok(cign_data::idx::read_idx_labels(path)?);
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| MetricsError::io(path, "cannot read", e))?;
    let mut labels = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let v: u8 = line.parse().map_err(|_| MetricsError::BadFile {
            path: path.to_path_buf(),
            what: format!("line {}: '{line}' is not a label in 0..=255", i + 1),
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

/// Opens `path`: a folder of images, an `.npz` statistics file, or an IDX image file
/// (`*-idx3-ubyte`, optionally `.gz`, or any other file that parses as IDX images).
pub fn open_input(path: &Path) -> Result<Input> {
    if path.is_dir() {
        return Ok(Input::Images(Box::new(ImageFiles::from_folder(path)?)));
    }
    if !path.exists() {
        return Err(MetricsError::invalid(
            "input",
            format!("{} does not exist (expected a folder of images, an IDX image file or an .npz statistics file)", path.display()),
        ));
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext == "npz" {
        return Ok(Input::Stats(crate::npz::load_stats(path)?));
    }
    Ok(Input::Images(Box::new(idx_images(path)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let b = load_image(&files.files()[1]).unwrap();
        assert_eq!(b.size(), vec![1, 3, 3, 5]);
        assert!((b.double_value(&[0, 0, 0, 1]) - 50.0 / 255.0).abs() < 1e-7);
        assert!((b.double_value(&[0, 1, 2, 0]) - 200.0 / 255.0).abs() < 1e-7);
        let batch = files.batch(0, 2).unwrap();
        assert_eq!(batch.size(), vec![2, 3, 299, 299]);
        assert!((batch.get(0).min().double_value(&[]) - 1.0).abs() < 1e-6);
        assert!(ImageFiles::from_folder(&dir.path().join("sub/none")).is_err());
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
}
