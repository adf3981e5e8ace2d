//! The MNIST and Fashion-MNIST datasets: train and test splits as `u8` images plus labels.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use tch::{Device, Kind, Tensor};

use crate::error::{DataError, Result};
use crate::idx::{check_label_range, read_idx_images, read_idx_labels, IdxImages};

/// Number of classes of both datasets.
pub const NUM_CLASSES: u8 = 10;

/// Which dataset; `mnist` or `fashion-mnist` in configs (serde) and on command lines.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    #[default]
    /// MNIST handwritten digits (LeCun, Cortes, Burges).
    Mnist,
    /// Fashion-MNIST (Zalando): same format, ten clothing classes.
    FashionMnist,
}

impl DatasetKind {
    /// The name used in configs and directory names: `mnist` or `fashion-mnist`.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
        }
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DatasetKind {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mnist" => Ok(DatasetKind::Mnist),
            "fashion-mnist" => Ok(DatasetKind::FashionMnist),
            other => Err(DataError::InvalidParameter {
                name: "dataset",
                what: format!("unknown dataset '{other}', expected 'mnist' or 'fashion-mnist'"),
            }),
        }
    }
}

/// Which split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The 60,000-image training split.
    Train,
    /// The 10,000-image test split.
    Test,
}

impl Split {
    /// File-name prefix of the split: `train` or `t10k`.
    pub fn file_prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }

    /// `train` or `test`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Standard file name (without `.gz`) of the images of a split.
pub fn images_file_name(split: Split) -> String {
    format!("{}-images-idx3-ubyte", split.file_prefix())
}

/// Standard file name (without `.gz`) of the labels of a split.
pub fn labels_file_name(split: Split) -> String {
    format!("{}-labels-idx1-ubyte", split.file_prefix())
}

/// Finds `name` or `name.gz` in `dir`.
pub(crate) fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(format!("{name}.gz")), dir.join(name)]
        .into_iter()
        .find(|p| p.is_file())
}

/// One split of a dataset, held in memory as `u8`.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Which dataset.
    pub kind: DatasetKind,
    /// Which split.
    pub split: Split,
    /// The images: `u8` in [0, 255], `count x rows x cols`, row-major.
    pub images: IdxImages,
    /// One label per image, each below [`NUM_CLASSES`].
    pub labels: Vec<u8>,
}

impl Dataset {
    /// Loads a split from `dir`, which holds the standard file names (gzip or raw).
    /// Checks both files and that they agree on the number of records.
    ///
    /// # Errors
    ///
    /// [`DataError::Unavailable`] if a file is in `dir` neither raw nor gzipped; otherwise as
    /// [`Dataset::from_files`].
    pub fn load(kind: DatasetKind, split: Split, dir: &Path) -> Result<Self> {
        let missing = |name: String| DataError::Unavailable {
            what: format!(
                "{kind} {split} split: neither {name} nor {name}.gz in {}; run the main job once \
                 (it fetches the data) or call cign_data::fetch::ensure_dataset",
                dir.display()
            ),
        };
        let images_path = find_file(dir, &images_file_name(split))
            .ok_or_else(|| missing(images_file_name(split)))?;
        let labels_path = find_file(dir, &labels_file_name(split))
            .ok_or_else(|| missing(labels_file_name(split)))?;
        Self::from_files(kind, split, &images_path, &labels_path)
    }

    /// Loads a split from explicit image and label files.
    ///
    /// # Errors
    ///
    /// As [`read_idx_images`] and [`read_idx_labels`]; [`DataError::CountMismatch`] if the
    /// files hold different numbers of records; [`DataError::LabelOutOfRange`] for a label of
    /// [`NUM_CLASSES`] or more.
    pub fn from_files(
        kind: DatasetKind,
        split: Split,
        images_path: &Path,
        labels_path: &Path,
    ) -> Result<Self> {
        let images = read_idx_images(images_path)?;
        let labels = read_idx_labels(labels_path)?;
        if images.count != labels.len() {
            return Err(DataError::CountMismatch {
                images_path: images_path.to_path_buf(),
                images: images.count,
                labels_path: labels_path.to_path_buf(),
                labels: labels.len(),
            });
        }
        check_label_range(labels_path, &labels, NUM_CLASSES)?;
        Ok(Self {
            kind,
            split,
            images,
            labels,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the split holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Number of images of each class.
    ///
    /// # Panics
    ///
    /// If a label is [`NUM_CLASSES`] or more (never for a dataset read by [`Dataset::load`],
    /// which checks the labels).
    pub fn class_counts(&self) -> [usize; NUM_CLASSES as usize] {
        let mut counts = [0; NUM_CLASSES as usize];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// The images as a float tensor `[N, 1, rows, cols]` in [-1, 1] (`2 * u8 / 255 - 1`) on `device`.
    ///
    /// # Panics
    ///
    /// If libtorch cannot place the tensor on `device` (a CUDA device that is not there, out
    /// of memory), or if `images.pixels` does not hold `count * rows * cols` bytes (never for a
    /// dataset read by [`Dataset::load`]).
    pub fn images_tensor(&self, device: Device) -> Tensor {
        let im = &self.images;
        Tensor::from_slice(&im.pixels)
            .view([im.count as i64, 1, im.rows as i64, im.cols as i64])
            .to_device(device)
            .to_kind(Kind::Float)
            .g_mul_scalar(2.0 / 255.0)
            .g_sub_scalar(1.0)
    }

    /// The labels as an `Int64` tensor `[N]` on `device`.
    ///
    /// # Panics
    ///
    /// If libtorch cannot place the tensor on `device`.
    pub fn labels_tensor(&self, device: Device) -> Tensor {
        Tensor::from_slice(&self.labels)
            .to_kind(Kind::Int64)
            .to_device(device)
    }
}
