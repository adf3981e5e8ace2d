//! A training step with dropout on (the authors' element-wise p = 0.15) against the authors'
//! code, averaged over dropout draws.
//!
//! Our CPU dropout draws its masks from another generator than PyTorch's (`cign_core::dropout`),
//! so single steps cannot be compared; the distribution of the step's loss terms can. For the
//! state and inputs of the authors' seed-0 fixtures, `tests/fixtures/dropout_{kind}.json`
//! (made by `make_fixtures.py dropout`) holds the mean and standard deviation of each loss term
//! over N = 2000 of their steps (`get_losses` in training mode, one dropout draw each). Here
//! the same step is taken over M = [`DRAWS`] draws of ours, and each term's mean must agree
//! within [`Z`] standard errors of the difference, `sqrt(s_a^2 / N + s_o^2 / M)`. The step
//! without dropout differs from the authors' dropout mean by 15 to 380 such standard errors
//! (checked below), so the test sees dropout that is missing, misplaced or of another rate.

mod common;

use cign_core::{
    load_named_into, model_config_from_metadata, CignModel, Formulation, Objective,
    ObjectiveConfig, TrainBatch,
};
use common::fixtures::{own_dir, pin_fixture_isa, shared_dir, Fixture};
use tch::nn::VarStore;
use tch::Device;

/// Steps averaged here.
const DRAWS: i64 = 400;
/// Allowed difference of the means, in standard errors (two-sided p < 1e-5 per term).
const Z: f64 = 4.5;
/// The loss terms, then the total (the keys `loss.NAME` of the fixtures).
const TERMS: [&str; 6] = cign_core::LossValues::NAMES;

/// Each term's value over `draws` steps (each from the fixture's state, after
/// `tch::manual_seed(d)`), with dropout `p`.
fn our_steps(fx: &Fixture, p: f64, draws: i64, form: Formulation) -> Vec<[f64; 6]> {
    let mut cfg = model_config_from_metadata(&fx.file.metadata).unwrap();
    cfg.dropout = p;
    let mut vs = VarStore::new(Device::Cpu);
    let model = CignModel::with_formulation(&vs.root(), &cfg, form).unwrap();
    let mut obj =
        Objective::with_formulation(&cfg, ObjectiveConfig::default(), Device::Cpu, form).unwrap();
    let batch = TrainBatch {
        x: fx.t("input.x"),
        y: fx.labels("input.y"),
        z: fx.t("input.z"),
        yz: fx.labels("input.yz"),
        x_mismatch: Some(fx.t("input.x_mismatch")),
        y_mismatch: Some(fx.labels("input.y_mismatch")),
    };
    (0..draws)
        .map(|d| {
            // the same running statistics for every draw
            load_named_into(&mut vs, &fx.state(), &fx.name).unwrap();
            tch::manual_seed(d);
            let v = tch::no_grad(|| obj.training_loss(&model, &vs, &batch)).to_f64();
            [
                v.rec,
                v.idem_noise,
                v.tight_noise,
                v.idem_mismatch,
                v.tight_mismatch,
                v.total,
            ]
        })
        .collect()
}

fn mean_std(rows: &[[f64; 6]], i: usize) -> (f64, f64) {
    let n = rows.len() as f64;
    let m = rows.iter().map(|r| r[i]).sum::<f64>() / n;
    let v = rows.iter().map(|r| (r[i] - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, v.sqrt())
}

/// `(term, z)` for each term: the difference of our mean from the authors' in standard errors.
fn z_scores(kind: &str, ours: &[[f64; 6]]) -> Vec<(&'static str, f64)> {
    let path = own_dir().join(format!("dropout_{kind}.json"));
    let a: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(a["dropout"].as_f64(), Some(0.15));
    let n = a["draws"].as_f64().unwrap();
    let m = ours.len() as f64;
    TERMS
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let (ma, sa) = (a["mean"][t].as_f64().unwrap(), a["std"][t].as_f64().unwrap());
            let (mo, so) = mean_std(ours, i);
            let se = (sa * sa / n + so * so / m).sqrt();
            println!(
                "{kind} {t}: ours {mo:.5} (sd {so:.4}, {m} draws), authors {ma:.5} (sd {sa:.4}, {n} draws): z = {:+.2}",
                (mo - ma) / se
            );
            (*t, (mo - ma) / se)
        })
        .collect()
}

fn fixture(kind: &str) -> Fixture {
    pin_fixture_isa();
    Fixture::load(&shared_dir().join(format!("{kind}_L8_I16_E5_seed0.safetensors")))
}

#[test]
fn dropout_step_matches_the_authors_on_average() {
    let _rng = common::rng_lock();
    let mut fails = Vec::new();
    for kind in ["channel", "filter"] {
        let fx = fixture(kind);
        let ours = our_steps(&fx, 0.15, DRAWS, Formulation::default_for(Device::Cpu));
        for (t, z) in z_scores(kind, &ours) {
            if z.abs() > Z {
                fails.push(format!("{kind} {t}: z = {z:+.2}"));
            }
        }
    }
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

/// Control: without dropout the same comparison fails (dropout moves every mean).
#[test]
fn the_comparison_detects_missing_dropout() {
    let _rng = common::rng_lock();
    for kind in ["channel", "filter"] {
        let fx = fixture(kind);
        let ours = our_steps(&fx, 0.0, 2, Formulation::AUTHORS);
        let worst = z_scores(kind, &ours)
            .iter()
            .map(|(_, z)| z.abs())
            .fold(0.0, f64::max);
        assert!(worst > 2.0 * Z, "{kind}: largest |z| {worst:.2}");
    }
}
