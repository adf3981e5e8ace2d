//! Conditional accuracy: a small CNN classifier trained by this crate on the MNIST (or
//! Fashion-MNIST) training split; the metric is the share of generated images that it
//! assigns to the label they were generated for, per class and overall.
//!
//! Network (input 1x28x28 in [-1, 1]): three blocks of conv 3x3 (32, 64, 128 channels,
//! padding 1) + BatchNorm + ReLU + max pool 2, dropout 0.25, a linear layer to 10 logits.
//! Trained with Adam (lr 1e-3, halved after every epoch), batch 128, 4 epochs by default.
//! Cached at `<weights dir>/cign-classifier-<dataset>.safetensors` with a JSON report next
//! to it. It always runs in float32, also inside a caller's bfloat16 autocast scope
//! (`cign_core::precision::autocast`) and when the FID features are computed in bfloat16
//! (`EvalOptions::precision`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use cign_core::precision::autocast;
use cign_core::Precision;
use cign_data::atomic::write_atomic;
use cign_data::{Dataset, DatasetKind, NUM_CLASSES};
use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::error::{MetricsError, Result};
use crate::preprocess::{PixelRange, Preprocess};

const SIDE: i64 = 28;

#[derive(Debug)]
struct Net {
    convs: Vec<(nn::Conv2D, nn::BatchNorm)>,
    fc: nn::Linear,
}

impl Net {
    fn new(p: &nn::Path) -> Net {
        let cfg = nn::ConvConfig {
            padding: 1,
            ..Default::default()
        };
        let mut convs = Vec::new();
        let mut cin = 1;
        for (i, cout) in [32, 64, 128].into_iter().enumerate() {
            let conv = nn::conv2d(p / format!("conv{i}"), cin, cout, 3, cfg);
            let bn = nn::batch_norm2d(p / format!("bn{i}"), cout, Default::default());
            convs.push((conv, bn));
            cin = cout;
        }
        // 28 -> 14 -> 7 -> 3
        let fc = nn::linear(
            p / "fc",
            128 * 3 * 3,
            NUM_CLASSES as i64,
            Default::default(),
        );
        Net { convs, fc }
    }
}

impl ModuleT for Net {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = xs.shallow_clone();
        for (conv, bn) in &self.convs {
            x = x
                .apply(conv)
                .apply_t(bn, train)
                .relu()
                .max_pool2d_default(2);
        }
        x.flatten(1, -1).dropout(0.25, train).apply(&self.fc)
    }
}

/// Settings of [`train_classifier`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Passes over the training images.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Initial Adam learning rate (halved after each epoch).
    pub learning_rate: f64,
    /// Seed of initialisation, shuffling and dropout.
    pub seed: u64,
    /// Use only the first `train_limit` training images.
    pub train_limit: Option<usize>,
    /// Evaluate on the first `test_limit` test images only.
    pub test_limit: Option<usize>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 4,
            batch_size: 128,
            learning_rate: 1e-3,
            seed: 0,
            train_limit: None,
            test_limit: None,
        }
    }
}

impl TrainOptions {
    /// Checks the settings before any data is loaded.
    ///
    /// # Errors
    /// [`MetricsError::InvalidInput`] when `epochs` or `batch_size` is 0, the learning rate
    /// is not a positive finite number, or a limit is 0.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(MetricsError::invalid("epochs", "must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(MetricsError::invalid("batch size", "must be at least 1"));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(MetricsError::invalid(
                "learning rate",
                format!("{} is not a positive number", self.learning_rate),
            ));
        }
        if self.train_limit == Some(0) || self.test_limit == Some(0) {
            return Err(MetricsError::invalid(
                "limits",
                "a train or test limit of 0 leaves no image",
            ));
        }
        Ok(())
    }
}

/// What training achieved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainReport {
    /// The dataset.
    pub dataset: String,
    /// The settings.
    pub options: TrainOptions,
    /// Training images used.
    pub train_images: usize,
    /// Test images evaluated.
    pub test_images: usize,
    /// Mean training loss (cross-entropy, in nats) of each epoch.
    pub epoch_loss: Vec<f64>,
    /// Test accuracy after the last epoch, a fraction in [0, 1].
    pub test_accuracy: f64,
    /// Wall time of training and evaluation, in seconds.
    pub seconds: f64,
}

/// Share of generated images classified as their requested label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccuracyReport {
    /// Over all images, a fraction in [0, 1].
    pub overall: f64,
    /// One [`ClassAccuracy`] per requested label that occurs, in ascending label order.
    pub per_class: Vec<ClassAccuracy>,
}

/// Accuracy of one requested label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassAccuracy {
    /// The requested label.
    pub class: u8,
    /// Images generated for it.
    pub n: usize,
    /// Share classified as `class`, a fraction in [0, 1].
    pub accuracy: f64,
}

/// The classifier behind the conditional-accuracy metric.
pub struct ConditionalClassifier {
    vs: nn::VarStore,
    net: Net,
}

impl std::fmt::Debug for ConditionalClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConditionalClassifier")
            .field("device", &self.vs.device())
            .finish()
    }
}

/// Default cache path of the classifier of `kind`: [`classifier_path_in`] the weights
/// directory ([`crate::weights::weights_dir`]).
pub fn default_classifier_path(kind: DatasetKind) -> PathBuf {
    classifier_path_in(&crate::weights::weights_dir(), kind)
}

/// Where the classifier of `kind` lives in the weights directory `dir`:
/// `dir/cign-classifier-<dataset>.safetensors`.
pub fn classifier_path_in(dir: &Path, kind: DatasetKind) -> PathBuf {
    dir.join(format!("cign-classifier-{}.safetensors", kind.name()))
}

/// The warning `cign-eval` and `cign-curve` print when no classifier of `kind` is cached:
/// conditional accuracy is skipped, and the command that trains and caches one
/// (`cign-classifier train --dataset <kind>`, through cargo).
pub fn missing_classifier_warning(kind: DatasetKind) -> String {
    format!(
        "no cached {kind} classifier: conditional accuracy skipped (train it with \
         `cargo run --release -p cign-metrics --bin cign-classifier -- train --dataset {kind}`)"
    )
}

/// Checks that `images` is a `[N, 1, 28, 28]` batch the classifier takes (and passes
/// [`crate::preprocess::check_images`]).
pub(crate) fn check_28(images: &Tensor) -> Result<()> {
    crate::preprocess::check_images("images", images)?;
    let s = images.size();
    if s[1] != 1 || s[2] != SIDE || s[3] != SIDE {
        return Err(MetricsError::invalid(
            "images",
            format!("the classifier takes [N, 1, 28, 28] images, got {s:?}"),
        ));
    }
    Ok(())
}

impl ConditionalClassifier {
    /// A freshly initialised classifier on `device`.
    ///
    /// # Errors
    /// [`MetricsError::Device`] when `device` is not available on this machine.
    pub fn new(device: Device) -> Result<Self> {
        crate::device::check_device(device)?;
        let vs = nn::VarStore::new(device);
        let net = Net::new(&vs.root());
        Ok(ConditionalClassifier { vs, net })
    }

    /// Loads weights saved by [`ConditionalClassifier::save`] onto `device`.
    ///
    /// # Errors
    /// [`MetricsError::Device`] when `device` is not available, [`MetricsError::BadFile`]
    /// when the file is missing, is not safetensors, or lacks a tensor of this classifier or
    /// holds one of another shape or kind.
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        let c = Self::new(device)?;
        let bad = |what: String| {
            MetricsError::BadFile {
            path: path.to_path_buf(),
            what: format!(
                "{what}; train a classifier with `cargo run --release -p cign-metrics --bin cign-classifier -- train`"
            ),
        }
        };
        if !path.is_file() {
            return Err(bad("no such file".into()));
        }
        // Read and check every tensor before copying: tch's VarStore::load would take a
        // broadcastable shape or another kind without a word.
        let file: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(path)
            .map_err(|e| {
                bad(format!(
                    "not a safetensors file ({})",
                    crate::error::torch_message(&e)
                ))
            })?
            .into_iter()
            .collect();
        let mut vars: Vec<(String, Tensor)> = c.vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, mut var) in vars {
            let src = file
                .get(&name)
                .ok_or_else(|| bad(format!("has no tensor '{name}'")))?;
            if src.size() != var.size() || !src.is_floating_point() {
                return Err(bad(format!(
                    "tensor '{name}' is {:?} {:?}, expected a float tensor of shape {:?}",
                    src.kind(),
                    src.size(),
                    var.size()
                )));
            }
            let src = src.f_to_kind(var.kind())?;
            tch::no_grad(|| var.f_copy_(&src))?;
        }
        Ok(c)
    }

    /// Loads the cached classifier of `kind` if it exists.
    ///
    /// # Errors
    /// As [`ConditionalClassifier::load`] (the device is checked even when no file exists).
    pub fn load_cached(kind: DatasetKind, device: Device) -> Result<Option<Self>> {
        crate::device::check_device(device)?;
        let path = default_classifier_path(kind);
        if !path.is_file() {
            return Ok(None);
        }
        Self::load(&path, device).map(Some)
    }

    /// Saves the weights as safetensors (the format [`ConditionalClassifier::load`] reads,
    /// whatever the extension of `path`), atomically with
    /// [`cign_data::atomic::write_atomic`]; creates the parent directory if needed.
    ///
    /// # Errors
    /// [`MetricsError::Io`] when the directory or the file cannot be created or written.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| MetricsError::io(dir, "cannot create", e))?;
        }
        write_atomic(path, |part| self.write_to(part))
            .map_err(|e| MetricsError::io(path, "cannot write", e))
    }

    /// Writes the weights to `file` directly (safetensors, sorted names), not atomically: the
    /// writer behind [`Classifier::save`].
    fn write_to(&self, file: &Path) -> std::io::Result<()> {
        let mut vars: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        Tensor::write_safetensors(&vars, file)
            .map_err(|e| std::io::Error::other(crate::error::torch_message(&e)))
    }

    /// The device of the weights.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Predicted labels (`i64 [N]` on the CPU) of `images` (`[N, 1, 28, 28]` in `range`, any
    /// device), after `preprocess` (8-bit quantisation by default, like the FID inputs). The
    /// network runs in float32 (an enclosing bfloat16 autocast scope is switched off).
    ///
    /// # Errors
    /// [`MetricsError::InvalidInput`] for another shape or NaN / infinite values.
    pub fn predict(
        &self,
        images: &Tensor,
        range: PixelRange,
        preprocess: Preprocess,
    ) -> Result<Tensor> {
        check_28(images)?;
        let n = images.size()[0];
        let mut out = Vec::new();
        let mut start = 0;
        while start < n {
            let len = 1000.min(n - start);
            let unit = preprocess.to_unit(&images.f_narrow(0, start, len)?, range)?;
            let x = (unit * 2.0 - 1.0).f_to_device(self.device())?;
            let pred = autocast(Precision::Fp32, self.device(), || {
                tch::no_grad(|| self.net.forward_t(&x, false).argmax(1, false))
            });
            out.push(pred.f_to_device(Device::Cpu)?);
            start += len;
        }
        Ok(if out.is_empty() {
            Tensor::zeros([0], (Kind::Int64, Device::Cpu))
        } else {
            Tensor::cat(&out, 0)
        })
    }

    /// Share of `images` classified as `labels`, overall and per label.
    ///
    /// # Errors
    /// As [`ConditionalClassifier::predict`], and [`MetricsError::InvalidInput`] when the
    /// numbers of labels and images differ, [`MetricsError::TooFewSamples`] without images.
    pub fn conditional_accuracy(
        &self,
        images: &Tensor,
        range: PixelRange,
        preprocess: Preprocess,
        labels: &[u8],
    ) -> Result<AccuracyReport> {
        let pred: Vec<i64> = self.predict(images, range, preprocess)?.try_into()?;
        if pred.len() != labels.len() {
            return Err(MetricsError::invalid(
                "labels",
                format!("{} labels for {} images", labels.len(), pred.len()),
            ));
        }
        if pred.is_empty() {
            return Err(MetricsError::TooFewSamples {
                what: "conditional accuracy".into(),
                n: 0,
                needed: 1,
            });
        }
        let mut hits = [0usize; 256];
        let mut counts = [0usize; 256];
        for (&p, &l) in pred.iter().zip(labels) {
            counts[l as usize] += 1;
            if p == l as i64 {
                hits[l as usize] += 1;
            }
        }
        let per_class = (0..256)
            .filter(|&c| counts[c] > 0)
            .map(|c| ClassAccuracy {
                class: c as u8,
                n: counts[c],
                accuracy: hits[c] as f64 / counts[c] as f64,
            })
            .collect();
        Ok(AccuracyReport {
            overall: hits.iter().sum::<usize>() as f64 / labels.len() as f64,
            per_class,
        })
    }

    /// Accuracy on (the first `limit` images of) a dataset.
    ///
    /// # Errors
    /// As [`ConditionalClassifier::conditional_accuracy`].
    pub fn dataset_accuracy(&self, dataset: &Dataset, limit: Option<usize>) -> Result<f64> {
        let (images, labels) = crate::reference::dataset_images(dataset, limit);
        Ok(self
            .conditional_accuracy(&images, PixelRange::Unit, Preprocess::default(), &labels)?
            .overall)
    }
}

/// Trains a classifier on `train` and measures it on `test`, on `device`.
///
/// # Errors
/// [`MetricsError::Device`] when `device` is not available, [`MetricsError::InvalidInput`]
/// when the options fail [`TrainOptions::validate`] or a split's images are not 28 x 28 (the
/// network's input; both splits are checked before training starts),
/// [`MetricsError::TooFewSamples`] with fewer than two training images or no test image.
///
/// # Panics
/// If libtorch runs out of memory on `device` during training (tch's optimiser steps are
/// infallible), or if a hand-built `Dataset` holds fewer pixels or labels than its `count`
/// says (as [`crate::reference::dataset_images`]).
pub fn train_classifier(
    train: &Dataset,
    test: &Dataset,
    options: &TrainOptions,
    device: Device,
) -> Result<(ConditionalClassifier, TrainReport)> {
    options.validate()?;
    let started = Instant::now();
    crate::device::check_device(device)?;
    tch::manual_seed(options.seed as i64);
    let classifier = ConditionalClassifier::new(device)?;
    for (split, what) in [(train, "training"), (test, "test")] {
        let (rows, cols) = (split.images.rows, split.images.cols);
        if rows as i64 != SIDE || cols as i64 != SIDE {
            return Err(MetricsError::invalid(
                "images",
                format!(
                    "the classifier takes 28 x 28 images, the {what} split has {rows} x {cols}"
                ),
            ));
        }
    }
    let (images, labels) = crate::reference::dataset_images(train, options.train_limit);
    let n = labels.len() as i64;
    if n < 2 {
        return Err(MetricsError::TooFewSamples {
            what: "classifier training images".into(),
            n: n as usize,
            needed: 2,
        });
    }
    let test_images = options.test_limit.unwrap_or(test.len()).min(test.len());
    if test_images == 0 {
        return Err(MetricsError::TooFewSamples {
            what: "classifier test images".into(),
            n: 0,
            needed: 1,
        });
    }
    let x_all = (images.f_to_kind(Kind::Float)? / 127.5 - 1.0).f_to_device(device)?;
    let y_all = Tensor::from_slice(&labels)
        .f_to_kind(Kind::Int64)?
        .f_to_device(device)?;
    let mut opt = nn::Adam::default().build(&classifier.vs, options.learning_rate)?;
    let mut epoch_loss = Vec::new();
    for epoch in 0..options.epochs {
        opt.set_lr(options.learning_rate * 0.5f64.powi(epoch as i32));
        let perm = Tensor::randperm(n, (Kind::Int64, device));
        let (mut total, mut steps) = (0.0, 0);
        let mut start = 0;
        while start < n {
            let len = (options.batch_size as i64).min(n - start);
            let idx = perm.narrow(0, start, len);
            let x = x_all.index_select(0, &idx);
            let y = y_all.index_select(0, &idx);
            let loss = classifier
                .net
                .forward_t(&x, true)
                .cross_entropy_for_logits(&y);
            opt.backward_step(&loss);
            total += loss.double_value(&[]);
            steps += 1;
            start += len;
        }
        let mean = total / steps as f64;
        tracing::info!("classifier epoch {}: mean loss {mean:.4}", epoch + 1);
        epoch_loss.push(mean);
    }
    let test_accuracy = classifier.dataset_accuracy(test, Some(test_images))?;
    let report = TrainReport {
        dataset: train.kind.name().to_string(),
        options: options.clone(),
        train_images: n as usize,
        test_images,
        epoch_loss,
        test_accuracy,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((classifier, report))
}

/// Loads the splits of `kind` from `data_dir` (fetching them if needed), trains the full
/// classifier and caches it with its JSON report at [`default_classifier_path`]
/// (or `out` when given).
///
/// # Errors
/// [`MetricsError::Device`] when `device` is not available (checked before the data are
/// fetched), [`MetricsError::Output`] when the weights' path or its JSON report's (the same
/// path with the extension `.json`) is a directory, cannot be created or written, or both
/// are one file (checked before the data are fetched), the errors of [`train_classifier`],
/// [`MetricsError::Data`] when the splits cannot be fetched or loaded, [`MetricsError::Io`]
/// when the weights or the JSON report cannot be written.
pub fn train_and_cache(
    kind: DatasetKind,
    data_dir: &Path,
    options: &TrainOptions,
    device: Device,
    out: Option<&Path>,
) -> Result<TrainReport> {
    crate::device::check_device(device)?;
    options.validate()?;
    let path = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| default_classifier_path(kind));
    let json = path.with_extension("json");
    // Both outputs checked (and their directories made) before the data and the training.
    let created = cign_data::atomic::check_outputs(
        &[
            ("classifier weights", path.as_path()),
            ("classifier report", json.as_path()),
        ],
        &[] as &[(&str, &Path)],
    )?;
    cign_data::fetch::ensure_dataset(kind, data_dir)?;
    let train = Dataset::load(kind, cign_data::Split::Train, data_dir)?;
    let test = Dataset::load(kind, cign_data::Split::Test, data_dir)?;
    let (classifier, report) = train_classifier(&train, &test, options, device)?;
    let text = serde_json::to_string_pretty(&report)
        .map_err(|e| MetricsError::Numerical(e.to_string()))?;
    // Both written before either is moved into place: new weights never sit beside a stale
    // report, nor the other way round.
    let mut staged = cign_data::atomic::Staged::new();
    staged.stage(&path, |tmp| {
        classifier
            .write_to(tmp)
            .map_err(|e| MetricsError::io(&path, "cannot write", e))
    })?;
    staged.stage(&json, |tmp| {
        std::fs::write(tmp, text.as_bytes()).map_err(|e| MetricsError::io(&json, "cannot write", e))
    })?;
    staged.commit()?;
    created.keep();
    Ok(report)
}
