//! Masks from scores, pruning sweeps, and the damage each ratio does.
//!
//! A sweep prunes the trained `theta` at every granularity of `prune.granularities`
//! ([`granularity`]: what a unit is), by every method of `prune.methods` defined there
//! ([`criteria::defined`]; the others are skipped), at every ratio (`N:M` once, at `N/M`).
//! Each row removes the `floor(ratio × units)` lowest-scoring units ([`criteria`]: scores of
//! parameters, summed over a unit) and measures the loss and accuracy of the pruned model on
//! the evaluation split beside the quadratic prediction `g·Δθ + ½ΔθᵀHΔθ` (`HΔθ` by the
//! spectrum's products: exact for the MLP by default, a central difference otherwise). For
//! `obs`, `Δθ` includes the closed-form update of the kept weights ([`obs`]). The unstructured
//! `magnitude`, `obd` and `curvature_gated` masks are [`method_mask`]'s, unchanged, so older
//! records replay to the same numbers.

pub mod lesion;

use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

use crate::config::Granularity;
use crate::config::{Products, PruneConfig, PruneMethod, PruneScope, TrainConfig};
use crate::curvature::{BatchLoss, EigenBasis, FdHvp, Hvp, Mechanism};
use crate::data::Dataset;
use crate::model::{Activations, Eval, ExactHvp, Network, ParamLayout, PreparedBatch};
use crate::stop::Stop;
use crate::train::{self, apply_mask};

pub mod criteria;
pub mod granularity;
pub mod obs;

pub use criteria::{block_scores, defined, Criteria};
pub use granularity::{units, Unit, Units};

/// Which parameters may be pruned: weights, biases when `include_bias`, embedding tables
/// when `include_embeddings`; LayerNorm parameters and learned residual scales never.
pub fn eligible(layout: &ParamLayout, include_bias: bool, include_embeddings: bool) -> Vec<bool> {
    let mut out = vec![false; layout.len];
    for t in &layout.tensors {
        if t.kind.prunable(include_bias, include_embeddings) {
            out[t.range()].iter_mut().for_each(|e| *e = true);
        }
    }
    out
}

/// A mask (`true` = kept) that removes the `floor(ratio × |group|)` lowest-scoring eligible
/// parameters of each group; ties go to the lower index, so the count is exact.
#[derive(Debug, Clone, PartialEq)]
pub struct Mask {
    pub keep: Vec<bool>,
    pub pruned: usize,
    pub eligible: usize,
    /// Largest score removed (0 when nothing was).
    pub threshold: f64,
}

pub fn mask_from_scores(scores: &[f64], eligible: &[bool], groups: &[usize], ratio: f64) -> Mask {
    let n = scores.len();
    let mut keep = vec![true; n];
    let n_groups = groups.iter().copied().max().map_or(0, |g| g + 1);
    let mut pruned = 0;
    let mut threshold = 0.0f64;
    for g in 0..n_groups {
        let mut idx: Vec<usize> = (0..n).filter(|&i| eligible[i] && groups[i] == g).collect();
        let k = (ratio * idx.len() as f64).floor() as usize;
        // total order: NaN scores sort last (never pruned first), ties by index
        idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
        for &i in &idx[..k] {
            keep[i] = false;
            threshold = threshold.max(scores[i]);
        }
        pruned += k;
    }
    Mask {
        keep,
        pruned,
        eligible: eligible.iter().filter(|e| **e).count(),
        threshold,
    }
}

/// Parameter groups for `scope`: one group, or one per layer.
fn groups(layout: &ParamLayout, scope: PruneScope) -> Vec<usize> {
    match scope {
        PruneScope::Global => vec![0; layout.len],
        PruneScope::Layer => layout.layer_of_each(),
    }
}

/// Magnitude pruning of `theta` at `ratio`.
pub fn magnitude_mask(theta: &[f64], layout: &ParamLayout, cfg: &PruneConfig, ratio: f64) -> Mask {
    let scores: Vec<f64> = theta.iter().map(|t| t.abs()).collect();
    let elig = eligible(layout, cfg.include_bias, cfg.include_embeddings);
    mask_from_scores(&scores, &elig, &groups(layout, cfg.scope), ratio)
}

/// Optimal Brain Damage saliency `½ H_ii θ_i²` (LeCun et al. 1990).
pub fn obd_saliency(theta: &[f64], diag: &[f64]) -> Vec<f64> {
    theta
        .iter()
        .zip(diag)
        .map(|(t, h)| 0.5 * h * t * t)
        .collect()
}

/// The `q`-quantile of `values` (linear interpolation between order statistics, as numpy's
/// default), or `None` when empty.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    Some(v[lo] + (v[hi] - v[lo]) * (pos - lo as f64))
}

/// Which eligible parameters pass the curvature gate: `H_ii` strictly below the
/// `q`-quantile of the eligible `H_jj` in the same layer.
pub fn curvature_gate(layout: &ParamLayout, eligible: &[bool], diag: &[f64], q: f64) -> Vec<bool> {
    let of = layout.layer_of_each();
    let mut pass = vec![false; eligible.len()];
    for l in 0..layout.layers().len() {
        let idx: Vec<usize> = (0..eligible.len())
            .filter(|&i| of[i] == l && eligible[i])
            .collect();
        let vals: Vec<f64> = idx.iter().map(|&i| diag[i]).collect();
        if let Some(cut) = quantile(&vals, q) {
            for &i in &idx {
                pass[i] = diag[i] < cut;
            }
        }
    }
    pass
}

/// The unstructured mask of `method` at `ratio` for the methods that need no calibration
/// (`magnitude`, `obd`, `curvature_gated`; `None` for the others, which [`mask`] scores with
/// their [`Criteria`]). `diag` (the Hessian diagonal) is needed by `obd` and
/// `curvature_gated`; without it they score as magnitude. Every method removes
/// `floor(ratio × eligible)` parameters per group, except `curvature_gated` when fewer pass
/// the gate: it never prunes a gated parameter.
pub fn method_mask(
    method: PruneMethod,
    theta: &[f64],
    diag: Option<&[f64]>,
    layout: &ParamLayout,
    cfg: &PruneConfig,
    ratio: f64,
) -> Option<Mask> {
    let elig = eligible(layout, cfg.include_bias, cfg.include_embeddings);
    let groups = groups(layout, cfg.scope);
    let magnitude: Vec<f64> = theta.iter().map(|t| t.abs()).collect();
    Some(match (method, diag) {
        (PruneMethod::Magnitude, _) | (PruneMethod::Obd | PruneMethod::CurvatureGated, None) => {
            mask_from_scores(&magnitude, &elig, &groups, ratio)
        }
        (PruneMethod::Obd, Some(d)) => {
            mask_from_scores(&obd_saliency(theta, d), &elig, &groups, ratio)
        }
        (PruneMethod::CurvatureGated, Some(d)) => {
            let pass = curvature_gate(layout, &elig, d, cfg.curvature_quantile);
            gated_mask(&magnitude, &elig, &pass, &groups, ratio)
        }
        (
            PruneMethod::Wanda
            | PruneMethod::Taylor
            | PruneMethod::Obs
            | PruneMethod::BlockInfluence,
            _,
        ) => return None,
    })
}

/// `curvature_gated`: the count comes from all eligible parameters of a group, the choice
/// (by magnitude) from those that pass the gate.
fn gated_mask(
    magnitude: &[f64],
    elig: &[bool],
    pass: &[bool],
    groups: &[usize],
    ratio: f64,
) -> Mask {
    let n = magnitude.len();
    let n_groups = groups.iter().copied().max().map_or(0, |g| g + 1);
    let mut keep = vec![true; n];
    let mut pruned = 0;
    let mut threshold = 0.0f64;
    for g in 0..n_groups {
        let total = (0..n).filter(|&i| elig[i] && groups[i] == g).count();
        let k = (ratio * total as f64).floor() as usize;
        let mut idx: Vec<usize> = (0..n).filter(|&i| pass[i] && groups[i] == g).collect();
        idx.sort_by(|&a, &b| magnitude[a].total_cmp(&magnitude[b]).then(a.cmp(&b)));
        for &i in idx.iter().take(k) {
            keep[i] = false;
            threshold = threshold.max(magnitude[i]);
            pruned += 1;
        }
    }
    Mask {
        keep,
        pruned,
        eligible: elig.iter().filter(|e| **e).count(),
        threshold,
    }
}

/// A mask with its counts in units of the granularity.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitMask {
    /// `eligible` and `pruned` count parameters.
    pub mask: Mask,
    pub units_eligible: usize,
    pub units_pruned: usize,
}

/// The mask of `method` over `units` at `ratio` (ignored by `N:M`). Fails when the method
/// lacks what it reads (the diagonal, calibration activations) or OBS's factorisation fails.
pub fn mask(
    method: PruneMethod,
    units: &Units,
    criteria: &Criteria<'_>,
    cfg: &PruneConfig,
    ratio: f64,
) -> Result<UnitMask, PruneError> {
    let theta = criteria.theta;
    let layout = criteria.net.layout();
    match units {
        Units::Parameters { eligible, groups } => {
            let mask = match method_mask(method, theta, criteria.diag, layout, cfg, ratio) {
                Some(m) => m,
                None => mask_from_scores(&criteria.param_scores(method)?, eligible, groups, ratio),
            };
            Ok(UnitMask {
                units_eligible: mask.eligible,
                units_pruned: mask.pruned,
                mask,
            })
        }
        Units::NOfM { n, groups, .. } => {
            let mask = n_of_m_mask(&criteria.param_scores(method)?, groups, *n);
            Ok(UnitMask {
                units_eligible: mask.eligible,
                units_pruned: mask.pruned,
                mask,
            })
        }
        Units::Whole(units) => Ok(unit_mask(
            &criteria.unit_scores(method, units)?,
            units,
            theta.len(),
            ratio,
        )),
    }
}

/// Removes the `n` lowest-scoring entries of every group (ties to the lower index).
pub fn n_of_m_mask(scores: &[f64], groups: &[std::ops::Range<usize>], n: usize) -> Mask {
    let mut keep = vec![true; scores.len()];
    let (mut pruned, mut eligible) = (0, 0);
    let mut threshold = 0.0f64;
    for g in groups {
        let mut idx: Vec<usize> = g.clone().collect();
        idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
        for &i in idx.iter().take(n) {
            keep[i] = false;
            threshold = threshold.max(scores[i]);
            pruned += 1;
        }
        eligible += g.len();
    }
    Mask {
        keep,
        pruned,
        eligible,
        threshold,
    }
}

/// Removes the `floor(ratio × units)` lowest-scoring units (ties to the lower index), every
/// parameter of each. Units may share parameters (a plain MLP's neighbouring neurons share a
/// weight), so `eligible` and `pruned` count distinct parameters.
pub fn unit_mask(unit_scores: &[f64], units: &[Unit], len: usize, ratio: f64) -> UnitMask {
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.sort_by(|&a, &b| unit_scores[a].total_cmp(&unit_scores[b]).then(a.cmp(&b)));
    let k = (ratio * units.len() as f64).floor() as usize;
    let mut keep = vec![true; len];
    let mut threshold = 0.0f64;
    for &u in &order[..k] {
        units[u].params.iter().for_each(|&i| keep[i] = false);
        threshold = threshold.max(unit_scores[u]);
    }
    let mut in_some = vec![false; len];
    units
        .iter()
        .flat_map(|u| &u.params)
        .for_each(|&i| in_some[i] = true);
    UnitMask {
        mask: Mask {
            pruned: keep.iter().filter(|k| !**k).count(),
            eligible: in_some.iter().filter(|e| **e).count(),
            keep,
            threshold,
        },
        units_eligible: units.len(),
        units_pruned: k,
    }
}

/// Pruned and total parameters of one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSparsity {
    pub layer: String,
    pub pruned: usize,
    pub total: usize,
    pub sparsity: f64,
}

pub fn layer_sparsity(layout: &ParamLayout, keep: &[bool]) -> Vec<LayerSparsity> {
    let of = layout.layer_of_each();
    layout
        .layers()
        .into_iter()
        .enumerate()
        .map(|(l, layer)| {
            let total = of.iter().filter(|&&x| x == l).count();
            let pruned = (0..keep.len()).filter(|&i| of[i] == l && !keep[i]).count();
            LayerSparsity {
                layer,
                pruned,
                total,
                sparsity: pruned as f64 / total.max(1) as f64,
            }
        })
        .collect()
}

/// One ratio of a pruning sweep for one model and one method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneRow {
    pub ratio: f64,
    pub method: PruneMethod,
    /// What a unit is (records before structured pruning: `unstructured`).
    #[serde(default)]
    pub granularity: Granularity,
    /// Units of the granularity that could be removed, and that were (for `unstructured`
    /// and `N:M` a unit is one parameter, so these equal `eligible` and `pruned`).
    #[serde(default)]
    pub units_eligible: usize,
    #[serde(default)]
    pub units_pruned: usize,
    /// Parameters that could be pruned at this granularity, and those set to zero.
    pub eligible: usize,
    pub pruned: usize,
    /// Largest score removed.
    pub threshold: f64,
    pub loss_before: f64,
    pub loss_after: f64,
    /// `(loss_after − loss_before) / loss_before`.
    pub sensitivity: f64,
    pub accuracy_before: f64,
    pub accuracy_after: f64,
    /// `accuracy_before − accuracy_after`.
    pub accuracy_drop: f64,
    /// `loss_after − loss_before`.
    pub delta_loss: f64,
    /// First-order term `g · Δθ` of the prediction.
    pub predicted_first: f64,
    /// Second-order term `½ Δθᵀ H Δθ` of the prediction (H of the evaluation loss).
    pub predicted_second: f64,
    /// `g · Δθ + ½ Δθᵀ H Δθ`, to set beside `delta_loss`.
    pub predicted_delta: f64,
    /// Where `Δθ` points in the Hessian's eigenbasis (the article's §4.2 mechanism); absent in
    /// records made before it was measured.
    #[serde(default)]
    pub mechanism: Option<Mechanism>,
    /// After `prune.finetune_epochs` of training with the mask held.
    pub finetuned: Option<Finetuned>,
    pub layers: Vec<LayerSparsity>,
}

/// The pruned model after fine-tuning with its mask held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finetuned {
    pub epochs: usize,
    pub lr: f64,
    pub loss: f64,
    pub accuracy: f64,
    /// `(loss − loss_before) / loss_before`, against the unpruned model.
    pub sensitivity: f64,
    /// Largest `|θ_i|` over masked parameters after fine-tuning: 0 when masks held.
    pub max_masked_abs: f64,
}

/// `S = (L_after − L_before) / L_before`.
pub fn sensitivity(loss_before: f64, loss_after: f64) -> f64 {
    (loss_after - loss_before) / loss_before
}

/// Fine-tuning after pruning: the training split and the optimiser settings.
pub struct Finetune<'a> {
    pub train: &'a Dataset,
    pub cfg: TrainConfig,
    pub seed: u64,
}

/// What a sweep needs besides the model.
pub struct SweepInputs<'a> {
    pub eval: &'a PreparedBatch,
    pub cfg: &'a PruneConfig,
    /// How the prediction's `HΔθ` is computed: the spectrum's products (`hessian.products`
    /// resolved for the model); differenced centrally at `fd_step`.
    pub products: Products,
    pub fd_step: f64,
    /// The Hessian diagonal, for `obd` and `curvature_gated`.
    pub diag: Option<&'a [f64]>,
    /// Calibration examples and the activations they produce, for `wanda`, `taylor`, `obs`
    /// and `block_influence`.
    pub calibration: Option<&'a Calibration>,
    /// Top and bottom Hessian eigenvectors, for each row's [`Mechanism`] overlaps.
    pub basis: Option<&'a EigenBasis>,
}

/// The calibration examples (`prune.calibration_samples` from the training split) and the
/// layer inputs and block streams of the unpruned model on them.
pub struct Calibration {
    pub batch: PreparedBatch,
    pub activations: Activations,
}

/// Why pruning failed.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(
        "prune.methods: `{method}` needs calibration examples, but the sweep got none; \
         set prune.calibration_samples to at least 1 (e.g. 128)"
    )]
    NoCalibration { method: PruneMethod },
    #[error(
        "prune.methods: `obd` needs the Hessian diagonal, but the sweep got none (the spectrum \
         stage computes it when a method needs it)"
    )]
    NoDiagonal,
    #[error(
        "prune.methods: `{method}` has no per-parameter score (curvature_gated gates single \
         parameters, block_influence scores whole blocks)"
    )]
    NoParameterScore { method: PruneMethod },
    #[error(
        "the calibration activations have no input of the right width for `{weight}`; they \
         must come from Network::activations of this model"
    )]
    MissingInput { weight: String },
    #[error(
        "the calibration activations have no stream around block {block}; they must come \
         from Network::activations of this model"
    )]
    MissingBlock { block: usize },
    #[error(
        "obs: the layer Hessian 2XᵀX + λI of `{layer}` is not positive definite at \
         prune.obs_damping = {damping}; raise prune.obs_damping (e.g. to {})",
        (damping * 10.0).max(0.1)
    )]
    Cholesky { layer: String, damping: f64 },
    #[error("the predicted ΔL: {0}; set hessian.products = \"finite_differences\"")]
    Products(String),
}

/// One row of a sweep with the mask it applied (`true` = kept), for fine-tuning and
/// checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct Pruned {
    pub row: PruneRow,
    pub keep: Vec<bool>,
    /// The pruned `theta` when it is not `theta ⊙ keep`: `obs` moves the kept weights.
    pub theta: Option<Vec<f64>>,
}

impl Pruned {
    /// The pruned model's parameters.
    pub fn pruned_theta(&self, theta: &[f64]) -> Vec<f64> {
        match &self.theta {
            Some(t) => t.clone(),
            None => {
                let mut t = theta.to_vec();
                apply_mask(&mut t, &self.keep);
                t
            }
        }
    }
}

/// The ratios a granularity runs at: `N:M` once at `N/M`, the others at each of `ratios`.
pub fn ratios_for(granularity: Granularity, ratios: &[f64]) -> Vec<f64> {
    match granularity {
        Granularity::NOfM { n, m } => vec![n as f64 / m as f64],
        _ => ratios.to_vec(),
    }
}

/// Rows a sweep with `cfg` makes per model: each granularity's defined methods at its ratios.
pub fn row_count(cfg: &PruneConfig) -> usize {
    cfg.granularities
        .iter()
        .map(|&g| {
            let methods = cfg
                .methods
                .iter()
                .filter(|&&m| criteria::defined(m, g).is_ok())
                .count();
            methods * ratios_for(g, &cfg.ratios).len()
        })
        .sum()
}

/// Prunes `theta` at each granularity with each method defined there, at each ratio, and
/// measures the evaluation loss and accuracy, appending each row to `out` and passing it to
/// `on_row`. `cancel` is checked before every row; on a cancel the rows finished so far stay
/// in `out`.
pub fn sweep(
    net: &Network,
    theta: &[f64],
    inputs: &SweepInputs<'_>,
    out: &mut Vec<Pruned>,
    cancel: &AtomicBool,
    on_row: &mut dyn FnMut(&PruneRow),
) -> Result<(), Stop<PruneError>> {
    let criteria = Criteria::new(
        net,
        theta,
        inputs.diag,
        inputs.calibration,
        inputs.cfg.obs_damping,
    );
    sweep_with(&criteria, inputs, out, cancel, on_row)
}

/// [`sweep`] with the scores of a [`Criteria`] the caller keeps (its calibration gradient
/// and OBS factors, computed once, serve the block rankings of the lesions too).
pub fn sweep_with(
    criteria: &Criteria<'_>,
    inputs: &SweepInputs<'_>,
    out: &mut Vec<Pruned>,
    cancel: &AtomicBool,
    on_row: &mut dyn FnMut(&PruneRow),
) -> Result<(), Stop<PruneError>> {
    let (net, theta) = (criteria.net, criteria.theta);
    let cfg = inputs.cfg;
    let mut g = vec![0.0; theta.len()];
    let before = net.loss_grad(theta, inputs.eval, &mut g);
    // the pass at theta once for every row's product
    let exact = match inputs.products {
        Products::Exact => Some(
            net.exact_hvp(theta, inputs.eval)
                .map_err(|e| Stop::Failed(PruneError::Products(e.to_string())))?,
        ),
        Products::FiniteDifferences => None,
    };
    let measure = Measure {
        net,
        theta,
        inputs,
        before,
        g,
        exact,
    };
    for &granularity in &cfg.granularities {
        let units = units(net.spec(), net.variant(), net.layout(), granularity, cfg);
        for &method in &cfg.methods {
            if defined(method, granularity).is_err() {
                continue;
            }
            for ratio in ratios_for(granularity, &cfg.ratios) {
                Stop::check(cancel)?;
                let m = mask(method, &units, criteria, cfg, ratio).map_err(Stop::Failed)?;
                let updated = match method {
                    PruneMethod::Obs => Some(
                        criteria
                            .obs()
                            .and_then(|o| o.apply(net.layout(), theta, &m.mask.keep))
                            .map_err(Stop::Failed)?,
                    ),
                    _ => None,
                };
                let p = measure.row(method, granularity, ratio, m, updated);
                on_row(&p.row);
                out.push(p);
            }
        }
    }
    Ok(())
}

/// What every row of a sweep is measured against.
struct Measure<'a> {
    net: &'a Network,
    theta: &'a [f64],
    inputs: &'a SweepInputs<'a>,
    before: Eval,
    /// Gradient of the evaluation loss at `theta`.
    g: Vec<f64>,
    /// The exact products on the evaluation split, when `inputs.products` asks for them.
    exact: Option<ExactHvp>,
}

impl Measure<'_> {
    /// The pruned model's loss and accuracy and the quadratic prediction of its change.
    fn row(
        &self,
        method: PruneMethod,
        granularity: Granularity,
        ratio: f64,
        m: UnitMask,
        updated: Option<Vec<f64>>,
    ) -> Pruned {
        let (net, theta, before) = (self.net, self.theta, self.before);
        let pruned = match &updated {
            Some(t) => t.clone(),
            None => {
                let mut t = theta.to_vec();
                apply_mask(&mut t, &m.mask.keep);
                t
            }
        };
        let after = net.evaluate(&pruned, self.inputs.eval);
        let dw: Vec<f64> = pruned.iter().zip(theta).map(|(p, t)| p - t).collect();
        let mut hdw = vec![0.0; theta.len()];
        match &self.exact {
            Some(exact) => exact.hvp(&dw, &mut hdw),
            None => {
                let loss = BatchLoss {
                    net,
                    batch: self.inputs.eval,
                };
                FdHvp::new(&loss, theta, self.inputs.fd_step).hvp(&dw, &mut hdw)
            }
        }
        let first: f64 = self.g.iter().zip(&dw).map(|(a, b)| a * b).sum();
        let second: f64 = 0.5 * dw.iter().zip(&hdw).map(|(a, b)| a * b).sum::<f64>();
        let row = PruneRow {
            ratio,
            method,
            granularity,
            units_eligible: m.units_eligible,
            units_pruned: m.units_pruned,
            mechanism: Some(crate::curvature::mechanism(&dw, &hdw, self.inputs.basis)),
            eligible: m.mask.eligible,
            pruned: m.mask.pruned,
            threshold: m.mask.threshold,
            loss_before: before.loss,
            loss_after: after.loss,
            sensitivity: sensitivity(before.loss, after.loss),
            accuracy_before: before.accuracy,
            accuracy_after: after.accuracy,
            accuracy_drop: before.accuracy - after.accuracy,
            delta_loss: after.loss - before.loss,
            predicted_first: first,
            predicted_second: second,
            predicted_delta: first + second,
            finetuned: None,
            layers: layer_sparsity(net.layout(), &m.mask.keep),
        };
        Pruned {
            row,
            keep: m.mask.keep,
            theta: updated,
        }
    }
}

/// Trains the pruned model of `p` (`theta ⊙ keep`, or OBS's updated `theta`) with its mask
/// held and measures it on `eval`. A fine-tuning that diverges is reported as an infinite loss, not an error: it is
/// a result about that mask. `cancel` is checked before every minibatch.
pub fn finetune(
    net: &Network,
    theta: &[f64],
    p: &Pruned,
    ft: &Finetune<'_>,
    eval: &PreparedBatch,
    cancel: &AtomicBool,
) -> Result<Finetuned, Stop<PruneError>> {
    let mut tuned = p.pruned_theta(theta);
    let session = train::Session {
        cfg: &ft.cfg,
        train: ft.train,
        eval,
        seed: ft.seed,
        mask: Some(&p.keep),
    };
    let loss_before = p.row.loss_before;
    match train::train(
        net,
        &mut tuned,
        &session,
        &mut Vec::new(),
        cancel,
        &mut |_| {},
    ) {
        Ok(()) => {
            let e = net.evaluate(&tuned, eval);
            Ok(Finetuned {
                epochs: ft.cfg.epochs,
                lr: ft.cfg.lr,
                loss: e.loss,
                accuracy: e.accuracy,
                sensitivity: sensitivity(loss_before, e.loss),
                max_masked_abs: tuned
                    .iter()
                    .zip(&p.keep)
                    .filter(|(_, k)| !**k)
                    .fold(0.0, |m, (t, _)| m.max(t.abs())),
            })
        }
        Err(Stop::Cancelled) => Err(Stop::Cancelled),
        Err(Stop::Failed(train::TrainError::Diverged { .. })) => Ok(Finetuned {
            epochs: ft.cfg.epochs,
            lr: ft.cfg.lr,
            loss: f64::INFINITY,
            accuracy: 0.0,
            sensitivity: f64::INFINITY,
            max_masked_abs: 0.0,
        }),
    }
}
