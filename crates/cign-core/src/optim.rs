//! AdamW, numerically equal to `torch.optim.AdamW` (single-tensor path), with checkpointable
//! state (tch's optimiser state cannot be saved).
//!
//! Per parameter `p` with gradient `g`, at step `t`:
//! `p *= 1 - lr wd`; `m = lerp(m, g, 1 - b1)`; `v = b2 v + (1 - b2) g g`;
//! `p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.

use std::collections::HashMap;

use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::{AdamWConfig, CoreError};

/// The largest `optim.step` [`AdamW::load_state_tensors`] accepts (2^53, where float64 stops
/// counting exactly).
const MAX_STEP: f64 = 9_007_199_254_740_992.0;

/// AdamW over the trainable variables of a var store.
#[derive(Debug)]
pub struct AdamW {
    cfg: AdamWConfig,
    /// (name, parameter, exp_avg, exp_avg_sq), sorted by name.
    params: Vec<(String, Tensor, Tensor, Tensor)>,
    step: i64,
}

impl AdamW {
    /// Optimises every trainable variable of `vs` (those that require gradients: BatchNorm
    /// running statistics are not among them). Moments start at zero.
    ///
    /// `cfg` is taken as given (this constructor has no error to return): check it with
    /// [`AdamWConfig::validate`] first, as the binaries do when they read a config (`lr` finite
    /// and > 0, betas in [0, 1), `weight_decay` finite and >= 0, `eps` finite and > 0). Out of
    /// those ranges nothing panics, but [`AdamW::step`] is meaningless: `beta1 = 1` divides by
    /// zero, `eps = 0` divides zero by zero where a gradient is 0, NaN or infinite settings
    /// make the parameters NaN.
    pub fn new(vs: &VarStore, cfg: AdamWConfig) -> Self {
        let mut named: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let params = named
            .into_iter()
            .map(|(n, p)| {
                let m = tch::no_grad(|| p.zeros_like());
                let v = tch::no_grad(|| p.zeros_like());
                (n, p, m, v)
            })
            .collect();
        AdamW {
            cfg,
            params,
            step: 0,
        }
    }

    pub fn config(&self) -> &AdamWConfig {
        &self.cfg
    }

    /// Names of the optimised parameters (sorted).
    pub fn param_names(&self) -> Vec<&str> {
        self.params.iter().map(|p| p.0.as_str()).collect()
    }

    /// Zeroes the gradients of the optimised parameters.
    pub fn zero_grad(&mut self) {
        for (_, p, _, _) in self.params.iter_mut() {
            p.zero_grad();
        }
    }

    /// One update (under `no_grad`). Parameters without a gradient are skipped, as PyTorch does.
    /// One step count serves all parameters (PyTorch keeps one per parameter): a parameter
    /// whose first gradient comes at step `t > 1` gets the bias correction of step `t`, not of
    /// its first update as in PyTorch. Every CIGN parameter gets a gradient at every step, so
    /// training is unaffected.
    pub fn step(&mut self) {
        let _guard = tch::no_grad_guard();
        self.step += 1;
        let AdamWConfig {
            lr,
            betas: (b1, b2),
            weight_decay,
            eps,
        } = self.cfg;
        let t = self.step as f64;
        let bc1 = 1.0 - b1.powf(t);
        let bc2 = 1.0 - b2.powf(t);
        let step_size = lr / bc1;
        let bc2_sqrt = bc2.sqrt();
        for (_, p, m, v) in self.params.iter_mut() {
            let g = p.grad();
            if !g.defined() {
                continue;
            }
            let _ = p.g_mul_scalar_(1.0 - lr * weight_decay);
            let _ = m.lerp_(&g, 1.0 - b1);
            let _ = v.g_mul_scalar_(b2);
            let _ = v.g_add_(&((&g * (1.0 - b2)) * &g));
            let denom = (v.sqrt() / bc2_sqrt) + eps;
            // torch's addcdiv kernel: p + (value * m) / denom
            let _ = p.g_add_(&((&*m * (-step_size)) / &denom));
        }
    }

    /// Sets the learning rate of the next steps (a schedule, or a resumed run's new
    /// `optim.lr`); the moments and the step count are kept.
    ///
    /// # Panics
    ///
    /// `lr` is not a finite number > 0 (the range [`AdamWConfig::validate`] allows).
    pub fn set_lr(&mut self, lr: f64) {
        assert!(
            lr > 0.0 && lr.is_finite(),
            "AdamW learning rate {lr}: must be a finite number > 0"
        );
        self.cfg.lr = lr;
    }

    pub fn lr(&self) -> f64 {
        self.cfg.lr
    }

    /// Number of steps taken (PyTorch's `state["step"]`).
    pub fn step_count(&self) -> i64 {
        self.step
    }

    /// Named state tensors for checkpoints: `optim.exp_avg.<param>`, `optim.exp_avg_sq.<param>`
    /// (copies) and `optim.step` (Int64 scalar).
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.params.len() + 1);
        for (n, _, m, v) in &self.params {
            out.push((format!("optim.exp_avg.{n}"), m.copy()));
            out.push((format!("optim.exp_avg_sq.{n}"), v.copy()));
        }
        out.push(("optim.step".to_string(), Tensor::from(self.step)));
        out
    }

    /// Restores the state written by [`AdamW::state_tensors`]. Every name must be present with
    /// the right shape, and no unknown `optim.*` name may be given.
    ///
    /// # Errors
    ///
    /// [`CoreError::Load`] listing the missing names, the shape mismatches, the unexpected
    /// names, and an `optim.step` that is not a whole number in 0..=2^53 (a negative step
    /// would make the bias correction divide by zero). Nothing is restored on an error.
    pub fn load_state_tensors(&mut self, named: &[(String, Tensor)]) -> Result<(), CoreError> {
        let map: HashMap<&str, &Tensor> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let mut missing = Vec::new();
        let mut shape = Vec::new();
        let mut known = std::collections::HashSet::new();
        known.insert("optim.step".to_string());
        for (n, p, _, _) in &self.params {
            for key in [
                format!("optim.exp_avg.{n}"),
                format!("optim.exp_avg_sq.{n}"),
            ] {
                match map.get(key.as_str()) {
                    None => missing.push(key.clone()),
                    Some(t) if t.size() != p.size() => shape.push(format!(
                        "{key}: expected {:?}, got {:?}",
                        p.size(),
                        t.size()
                    )),
                    Some(_) => {}
                }
                known.insert(key);
            }
        }
        let step = match map.get("optim.step") {
            None => {
                missing.push("optim.step".into());
                0
            }
            Some(t) if t.numel() != 1 => {
                shape.push(format!("optim.step: expected a scalar, got {:?}", t.size()));
                0
            }
            Some(t) => {
                let s = t.to_kind(Kind::Double).double_value(&[]);
                if (0.0..=MAX_STEP).contains(&s) && s.fract() == 0.0 {
                    s as i64
                } else {
                    shape.push(format!(
                        "optim.step: {s}, expected a whole number in 0..=2^53"
                    ));
                    0
                }
            }
        };
        let extra: Vec<&str> = named
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !known.contains(*n))
            .collect();
        let mut problems = Vec::new();
        if !missing.is_empty() {
            problems.push(format!("missing: {}", missing.join(", ")));
        }
        if !shape.is_empty() {
            problems.push(format!("shape mismatch: {}", shape.join("; ")));
        }
        if !extra.is_empty() {
            problems.push(format!("unexpected: {}", extra.join(", ")));
        }
        if !problems.is_empty() {
            return Err(CoreError::Load {
                path: "optimizer state".into(),
                problems: problems.join("; "),
            });
        }
        tch::no_grad(|| {
            for (n, _, m, v) in self.params.iter_mut() {
                m.copy_(map[format!("optim.exp_avg.{n}").as_str()]);
                v.copy_(map[format!("optim.exp_avg_sq.{n}").as_str()]);
            }
        });
        self.step = step;
        Ok(())
    }
}
