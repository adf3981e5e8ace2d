//! The learning curve of a run: every epoch snapshot (`checkpoints/epoch-NNN.safetensors`,
//! kept by `train.snapshot_every_epochs`) evaluated at one cheap, seeded protocol, with the
//! validation loss of the same epoch, as JSON (`curve.json`) and a figure (`curve.png`).
//!
//! The JSON is the record: a later call evaluates only the snapshots it does not hold yet
//! (or whose file changed, by SHA-256, or whose point lacks the conditional accuracy that a
//! now-cached classifier can give), and it is rewritten (atomically) after every snapshot, so
//! an interrupted evaluation keeps what it finished. Points are only comparable at equal
//! settings, so a JSON made with other settings is refused rather than mixed or overwritten.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use cign_metrics::EvalReport;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(doc)]
use crate::run_dir::read_records;

/// The protocol every point of a curve is measured with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurveSettings {
    /// Generated images per class.
    pub n_per_class: usize,
    /// Seed of the generated noise.
    pub seed: i64,
    /// Inception taps (feature sizes) of the per-class FID.
    pub dims: Vec<usize>,
    /// Real images: the first `real_limit` of the test split (`None`: all).
    pub real_limit: Option<usize>,
    /// Arithmetic of the generator's passes (`fp32` or `bf16`).
    pub precision: String,
}

/// Per-class FID at one tap: summary over the classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TapPoint {
    /// Feature size of the tap.
    pub dims: usize,
    /// Mean over classes of the per-class FID (the paper's "FID mean").
    pub mean: f64,
    /// Population standard deviation over classes.
    pub std: f64,
    /// Smallest class FID.
    pub min: f64,
    /// Largest class FID.
    pub max: f64,
    /// FID of all generated images against all real images.
    pub all_class: f64,
}

/// One evaluated snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Completed epochs when the snapshot was kept.
    pub epoch: u64,
    /// Training step of the snapshot (from the epoch's validation record; `None` if the run
    /// has no validation record for that epoch).
    pub step: Option<u64>,
    /// The snapshot's file name.
    pub snapshot: String,
    /// Hex SHA-256 of the snapshot file.
    pub sha256: String,
    /// Validation loss (weighted total) at the end of the epoch, from `metrics.jsonl`.
    pub validation_total: Option<f64>,
    /// Validation rec term at the end of the epoch.
    pub validation_rec: Option<f64>,
    /// Per-class FID per tap, in the order of [`CurveSettings::dims`].
    pub fid: Vec<TapPoint>,
    /// Share of generated images the MNIST classifier assigns to the requested class, in
    /// `[0, 1]` (`None` without a cached classifier).
    pub conditional_accuracy: Option<f64>,
    /// Wall time of this point's generation and evaluation, seconds.
    pub seconds: f64,
}

impl CurvePoint {
    /// The point of snapshot `snapshot` (file name, SHA-256) at `epoch` from an evaluation
    /// report and the run's end-of-epoch validations ([`epoch_validations`]); the point has no
    /// step or validation figures when `validations` lacks `epoch`.
    ///
    /// # Errors
    ///
    /// The report has no per-class FID (an unconditional model has no per-class curve).
    pub fn from_report(
        epoch: u64,
        snapshot: String,
        sha256: String,
        report: &EvalReport,
        validations: &[EpochValidation],
    ) -> Result<Self> {
        let fid = report
            .taps
            .iter()
            .map(|t| {
                let p = t.per_class.as_ref().ok_or_else(|| {
                    anyhow!("no per-class FID: the learning curve needs a conditional model")
                })?;
                Ok(TapPoint {
                    dims: t.dims,
                    mean: p.mean,
                    std: p.std,
                    min: p.min,
                    max: p.max,
                    all_class: t.fid,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let val = validations.iter().find(|v| v.epoch == epoch);
        Ok(CurvePoint {
            epoch,
            step: val.map(|v| v.step),
            snapshot,
            sha256,
            validation_total: val.map(|v| v.total),
            validation_rec: val.map(|v| v.rec),
            fid,
            conditional_accuracy: report.conditional_accuracy.as_ref().map(|a| a.overall),
            seconds: report.seconds,
        })
    }
}

/// Whether a `metrics.jsonl` record was written at the end of an epoch rather than mid-epoch
/// (a `train.eval_every` validation, or one carried over from an interrupted run): its
/// `batch_in_epoch` is 0. Records without that field (written by older trainers) are all
/// accepted, so for them the first validation of each epoch counts, which is the end-of-epoch
/// one unless `train.eval_every` was set.
fn at_epoch_end(record: &serde_json::Value) -> bool {
    match record.get("batch_in_epoch") {
        Some(b) => b.as_u64() == Some(0),
        None => true,
    }
}

/// The validation at the end of one epoch, from `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochValidation {
    /// Completed epochs (1 = the end of the first epoch).
    pub epoch: u64,
    /// Training step of the validation.
    pub step: u64,
    /// Validation loss, weighted total (the terms as the trainer logs them; tight terms are
    /// negative).
    pub total: f64,
    /// Validation rec term.
    pub rec: f64,
}

/// Every end-of-epoch validation in the records of a run's `metrics.jsonl`
/// ([`read_records`]), by epoch: for each epoch the first validation record whose `epoch`
/// field (completed epochs) is that epoch and that was written at the end of the epoch
/// (`batch_in_epoch` 0, where the record has it), the validations [`CurvePoint::from_report`]
/// takes.
/// Records without a finite total are left out.
pub fn epoch_validations(metrics: &[serde_json::Value]) -> Vec<EpochValidation> {
    let mut out: Vec<EpochValidation> = Vec::new();
    for r in metrics {
        if r["kind"].as_str() != Some("validation") {
            continue;
        }
        let (Some(epoch), Some(step), Some(total), Some(rec)) = (
            r["epoch"].as_u64(),
            r["step"].as_u64(),
            r["total"].as_f64(),
            r["rec"].as_f64(),
        ) else {
            continue;
        };
        if epoch == 0
            || !at_epoch_end(r)
            || !total.is_finite()
            || out.iter().any(|v| v.epoch == epoch)
        {
            continue;
        }
        out.push(EpochValidation {
            epoch,
            step,
            total,
            rec,
        });
    }
    out.sort_by_key(|v| v.epoch);
    out
}

/// A run's learning curve: settings and one point per evaluated snapshot, by epoch, and the
/// end-of-epoch validation loss of every epoch the run has finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearningCurve {
    /// The run directory.
    pub run: String,
    /// The protocol of every point.
    pub settings: CurveSettings,
    /// Evaluated snapshots, by epoch.
    pub points: Vec<CurvePoint>,
    /// The validation at the end of every finished epoch (not only the snapshots' epochs),
    /// refreshed from `metrics.jsonl` on every call ([`epoch_validations`]). Empty in JSON
    /// written before this field existed.
    #[serde(default)]
    pub validation: Vec<EpochValidation>,
}

impl LearningCurve {
    /// The curve stored at `path`, or a new empty one when there is no such file (or `fresh`).
    ///
    /// # Errors
    ///
    /// An unreadable or malformed file; a file made with other settings (named, with both
    /// values), since its points would not be comparable.
    pub fn open(path: &Path, run: &str, settings: CurveSettings, fresh: bool) -> Result<Self> {
        if fresh || !path.exists() {
            return Ok(LearningCurve {
                run: run.to_string(),
                settings,
                points: Vec::new(),
                validation: Vec::new(),
            });
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let curve: LearningCurve = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a learning curve written by cign-curve",
                path.display()
            )
        })?;
        if curve.settings != settings {
            bail!(
                "{} was made with other settings ({}); its points are not comparable with \
                 these ({}): pass the same settings, another --json, or --fresh to start over",
                path.display(),
                describe(&curve.settings),
                describe(&settings)
            );
        }
        Ok(curve)
    }

    /// Whether the snapshot of `epoch` with this SHA-256 must be evaluated: the curve holds
    /// no point of that epoch for that file, or holds one without conditional accuracy (made
    /// while no classifier was cached) and `accuracy_available` says a classifier is now.
    pub fn needs(&self, epoch: u64, sha256: &str, accuracy_available: bool) -> bool {
        match self
            .points
            .iter()
            .find(|p| p.epoch == epoch && p.sha256 == sha256)
        {
            None => true,
            Some(p) => accuracy_available && p.conditional_accuracy.is_none(),
        }
    }

    /// Adds `point`, replacing any point of the same epoch; keeps the points by epoch.
    pub fn insert(&mut self, point: CurvePoint) {
        self.points.retain(|p| p.epoch != point.epoch);
        self.points.push(point);
        self.points.sort_by_key(|p| p.epoch);
    }

    /// Writes the curve as pretty JSON, atomically.
    ///
    /// # Errors
    ///
    /// The file cannot be written.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        cign_data::atomic::write_atomic_bytes(path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

fn describe(s: &CurveSettings) -> String {
    format!(
        "n_per_class {}, seed {}, dims {:?}, real_limit {}, precision {}",
        s.n_per_class,
        s.seed,
        s.dims,
        s.real_limit.map_or("all".to_string(), |n| n.to_string()),
        s.precision
    )
}

/// An epoch axis label: whole epochs as integers.
fn epoch_label(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round())
    } else {
        format!("{v:.1}")
    }
}

/// A value with three significant digits (0.0123, 0.456, 2.43, 12.3, 123).
fn significant(v: f64) -> String {
    let digits = (2 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
    format!("{v:.digits$}")
}

/// A labelled series of (epoch, value) points and its colour.
type Series = (String, Vec<(f64, f64)>, RGBColor);

/// Draws the curve: per-class FID means per tap (log scale), conditional accuracy and the
/// validation loss, each against the epoch, side by side. Nothing is drawn for an empty
/// curve.
///
/// # Errors
///
/// Drawing or writing the PNG fails.
pub fn write_curve_plot(path: &Path, curve: &LearningCurve) -> Result<()> {
    if curve.points.is_empty() {
        return Ok(());
    }
    let e = |err: &dyn std::fmt::Display| anyhow!("cannot draw {}: {err}", path.display());
    let epochs: Vec<f64> = curve
        .points
        .iter()
        .map(|p| p.epoch)
        .chain(curve.validation.iter().map(|v| v.epoch))
        .map(|e| e as f64)
        .collect();
    let (x_lo, x_hi) = (
        epochs.iter().cloned().fold(f64::INFINITY, f64::min) - 1.0,
        epochs.iter().cloned().fold(f64::NEG_INFINITY, f64::max) + 1.0,
    );
    let (width, height) = (1500u32, 480u32);
    let mut rgb = vec![0u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let panels = root.split_evenly((1, 3));
        let colours = [BLUE, RED, GREEN, MAGENTA];

        // One panel: labelled series against the epoch; the y range `fixed` or the values'
        // own with a margin; with `log_y` the values are log10 and labelled with the value
        // itself (plotters' log axis labels only powers and whole numbers). A legend when
        // there is more than one series or the axis is logarithmic.
        let panel = |area: &DrawingArea<BitMapBackend, _>,
                     title: &str,
                     y_desc: &str,
                     all: Vec<Series>,
                     fixed: Option<(f64, f64)>,
                     log_y: bool|
         -> Result<()> {
            let values = || all.iter().flat_map(|(_, s, _)| s.iter().map(|p| p.1));
            if values().next().is_none() {
                return Ok(());
            }
            let (lo, hi) = fixed.unwrap_or_else(|| {
                let lo = values().fold(f64::INFINITY, f64::min);
                let hi = values().fold(f64::NEG_INFINITY, f64::max);
                // At least 5% of the values' size: one point, or equal ones, get a readable
                // axis instead of one spanning the last digits.
                let margin = ((hi - lo) * 0.1)
                    .max(0.05 * hi.abs().max(lo.abs()))
                    .max(1e-3);
                (lo - margin, hi + margin)
            });
            let mut chart = ChartBuilder::on(area)
                .caption(title, ("sans-serif", 18))
                .margin(10)
                .x_label_area_size(36)
                .y_label_area_size(60)
                .build_cartesian_2d(x_lo..x_hi, lo..hi)
                .map_err(|x| e(&x))?;
            let log_label = |v: &f64| significant(10f64.powf(*v));
            let mut mesh = chart.configure_mesh();
            mesh.x_desc("epoch")
                .x_label_formatter(&epoch_label)
                .y_desc(y_desc);
            if log_y {
                mesh.y_labels(10).y_label_formatter(&log_label);
            }
            mesh.draw().map_err(|x| e(&x))?;
            for (label, series, colour) in &all {
                let colour = *colour;
                chart
                    .draw_series(LineSeries::new(series.clone(), colour.stroke_width(2)))
                    .map_err(|x| e(&x))?
                    .label(label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
                chart
                    .draw_series(series.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                    .map_err(|x| e(&x))?;
            }
            if all.len() > 1 || log_y {
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperRight)
                    .border_style(BLACK)
                    .background_style(WHITE.mix(0.8))
                    .draw()
                    .map_err(|x| e(&x))?;
            }
            Ok(())
        };

        // per-class FID means by tap, log scale, with room above the highest point for the
        // legend
        let fid_series: Vec<Series> = curve
            .settings
            .dims
            .iter()
            .enumerate()
            .map(|(i, &dims)| {
                let points = curve
                    .points
                    .iter()
                    .filter_map(|p| {
                        p.fid
                            .iter()
                            .find(|t| t.dims == dims)
                            .filter(|t| t.mean.is_finite() && t.mean > 0.0)
                            .map(|t| (p.epoch as f64, t.mean.log10()))
                    })
                    .collect();
                (format!("tap {dims}"), points, colours[i % colours.len()])
            })
            .collect();
        let logs = || {
            fid_series
                .iter()
                .flat_map(|(_, s, _)| s.iter().map(|p| p.1))
        };
        let fid_range = (
            logs().fold(f64::INFINITY, f64::min) - 0.2,
            logs().fold(f64::NEG_INFINITY, f64::max) + 0.5,
        );
        panel(
            &panels[0],
            &format!(
                "per-class FID mean ({} per class)",
                curve.settings.n_per_class
            ),
            "FID (log)",
            fid_series,
            Some(fid_range),
            true,
        )?;

        let accuracy: Vec<(f64, f64)> = curve
            .points
            .iter()
            .filter_map(|p| p.conditional_accuracy.map(|a| (p.epoch as f64, a)))
            .collect();
        panel(
            &panels[1],
            "conditional accuracy",
            "share classified as the label",
            vec![("accuracy".into(), accuracy, BLUE)],
            Some((0.0, 1.0)),
            false,
        )?;
        // Every finished epoch (older JSON without them: the snapshots' epochs).
        let validation: Vec<(f64, f64, f64)> = if curve.validation.is_empty() {
            curve
                .points
                .iter()
                .filter_map(|p| match (p.validation_total, p.validation_rec) {
                    (Some(t), Some(r)) if t.is_finite() => Some((p.epoch as f64, t, r)),
                    _ => None,
                })
                .collect()
        } else {
            curve
                .validation
                .iter()
                .map(|v| (v.epoch as f64, v.total, v.rec))
                .collect()
        };
        panel(
            &panels[2],
            "validation loss (end of epoch)",
            "loss",
            vec![
                (
                    "total".into(),
                    validation.iter().map(|v| (v.0, v.1)).collect(),
                    RED,
                ),
                (
                    "rec".into(),
                    validation.iter().map(|v| (v.0, v.2)).collect(),
                    BLACK,
                ),
            ],
            None,
            false,
        )?;
        root.present().map_err(|x| e(&x))?;
    }
    let img = image::RgbImage::from_raw(width, height, rgb)
        .ok_or_else(|| anyhow!("plot buffer of the wrong size"))?;
    crate::images::write_png(path, &image::DynamicImage::ImageRgb8(img))
}

#[cfg(test)]
mod tests {
    use super::{epoch_validations, CurvePoint, CurveSettings, LearningCurve};
    use serde_json::json;

    /// The protocol of the curves these tests build.
    fn settings() -> CurveSettings {
        CurveSettings {
            n_per_class: 4,
            seed: 0,
            dims: vec![64],
            real_limit: None,
            precision: "fp32".into(),
        }
    }

    #[test]
    fn a_point_is_needed_when_missing_changed_or_short_of_an_accuracy_now_available() {
        let point = |epoch: u64, sha: &str, accuracy: Option<f64>| CurvePoint {
            epoch,
            step: None,
            snapshot: format!("epoch-{epoch:03}.safetensors"),
            sha256: sha.to_string(),
            validation_total: None,
            validation_rec: None,
            fid: Vec::new(),
            conditional_accuracy: accuracy,
            seconds: 1.0,
        };
        let curve = LearningCurve {
            run: "run".into(),
            settings: settings(),
            points: vec![point(5, "aa", Some(0.8)), point(10, "bb", None)],
            validation: Vec::new(),
        };
        // (epoch, sha, classifier cached) -> needed
        let cases = [
            ((5, "aa", false), false),
            ((5, "aa", true), false),
            ((5, "zz", false), true),
            ((10, "bb", false), false),
            ((10, "bb", true), true),
            ((15, "cc", false), true),
        ];
        for ((epoch, sha, available), want) in cases {
            assert_eq!(
                curve.needs(epoch, sha, available),
                want,
                "epoch {epoch}, sha {sha}, classifier {available}"
            );
        }
    }

    /// A curve written and read back holds the same numbers, bit for bit: `cign-curve`
    /// rewrites its JSON on every call, keeping earlier points, so a parse that is off by an
    /// ulp would let them drift call after call. 1.1880826567065241 and 0.9522694588590637
    /// are values of the large_channel campaign's epoch-5 point that did drift with
    /// serde_json's default float parser; the rest are pseudo-random doubles.
    #[test]
    fn a_saved_curve_reads_back_bit_for_bit() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            // a double in [2^-8, 2^8): random mantissa, exponent within the FID range
            let exponent = 1023 - 8 + (state >> 60);
            f64::from_bits((exponent << 52) | (state >> 12))
        };
        let fid = (0..64)
            .map(|i| super::TapPoint {
                dims: 64,
                mean: if i == 0 { 1.1880826567065241 } else { next() },
                std: if i == 0 { 0.9522694588590637 } else { next() },
                min: next(),
                max: next(),
                all_class: next(),
            })
            .collect();
        let curve = LearningCurve {
            run: "run".into(),
            settings: settings(),
            points: vec![CurvePoint {
                epoch: 5,
                step: Some(1175),
                snapshot: "epoch-005.safetensors".into(),
                sha256: "aa".into(),
                validation_total: Some(next()),
                validation_rec: Some(next()),
                fid,
                conditional_accuracy: Some(0.807),
                seconds: next(),
            }],
            validation: Vec::new(),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curve.json");
        curve.save(&path).unwrap();
        let back = LearningCurve::open(&path, "run", curve.settings.clone(), false).unwrap();
        assert_eq!(back, curve);
        back.save(&path).unwrap();
        let again = LearningCurve::open(&path, "run", curve.settings.clone(), false).unwrap();
        assert_eq!(again, curve);
    }

    #[test]
    fn axis_labels() {
        use super::{epoch_label, significant};
        assert_eq!(epoch_label(&5.0), "5");
        assert_eq!(epoch_label(&2.5), "2.5");
        let labels: Vec<String> = [0.012345, 0.45654, 2.4337, 12.345, 123.45]
            .into_iter()
            .map(significant)
            .collect();
        assert_eq!(labels, ["0.0123", "0.457", "2.43", "12.3", "123"]);
    }

    #[test]
    fn only_the_first_validation_of_each_finished_epoch_counts() {
        // As in a run validated mid-epoch (eval_every, or a carried-over validation): the
        // record at step 926 has epoch 3 too but comes after the end of epoch 3 (step 705).
        let records = vec![
            json!({"kind": "validation", "step": 133, "epoch": 0, "total": 13.0, "rec": 9.0}),
            json!({"kind": "train", "step": 235, "epoch": 1, "total": 7.0, "rec": 5.0}),
            json!({"kind": "validation", "step": 235, "epoch": 1, "total": 7.2, "rec": 5.6}),
            json!({"kind": "validation", "step": 705, "epoch": 3, "total": 5.8, "rec": 3.9}),
            json!({"kind": "validation", "step": 926, "epoch": 3, "total": 5.6, "rec": 3.3}),
            json!({"kind": "validation", "step": 940, "epoch": 4, "total": null, "rec": 3.3}),
        ];
        let v: Vec<(u64, u64, f64, f64)> = epoch_validations(&records)
            .iter()
            .map(|v| (v.epoch, v.step, v.total, v.rec))
            .collect();
        assert_eq!(v, [(1, 235, 7.2, 5.6), (3, 705, 5.8, 3.9)]);
    }

    #[test]
    fn mid_epoch_validations_never_stand_for_an_epoch_end() {
        // eval_every = 100 with 235-step epochs: no validation at the end of epoch 1, the one
        // at step 300 (epoch 1, batch 65) is a later model; epoch 2 ends at step 470, where a
        // validation ran because eval_every was changed on resume.
        let records = vec![
            json!({"kind": "validation", "step": 100, "epoch": 0, "batch_in_epoch": 100,
                   "total": 9.0, "rec": 7.0}),
            json!({"kind": "validation", "step": 300, "epoch": 1, "batch_in_epoch": 65,
                   "total": 7.0, "rec": 5.0}),
            json!({"kind": "validation", "step": 400, "epoch": 1, "batch_in_epoch": 165,
                   "total": 6.9, "rec": 4.9}),
            json!({"kind": "train", "step": 470, "epoch": 1, "batch_in_epoch": 235,
                   "total": 6.5, "rec": 4.5}),
            json!({"kind": "validation", "step": 470, "epoch": 2, "batch_in_epoch": 0,
                   "total": 6.8, "rec": 4.8}),
            json!({"kind": "validation", "step": 500, "epoch": 2, "batch_in_epoch": 30,
                   "total": 6.7, "rec": 4.7}),
        ];
        let v: Vec<(u64, u64)> = epoch_validations(&records)
            .iter()
            .map(|v| (v.epoch, v.step))
            .collect();
        assert_eq!(v, [(2, 470)]);
    }
}
