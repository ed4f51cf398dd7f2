//! Masks from scores, pruning sweeps, and the damage each ratio does.

pub mod lesion;

use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

use crate::config::Granularity;
use crate::config::{PruneConfig, PruneMethod, PruneScope, TrainConfig};
use crate::curvature::{BatchLoss, EigenBasis, FdHvp, Hvp, Mechanism};
use crate::data::Dataset;
use crate::model::{Activations, Network, ParamLayout, PreparedBatch};
use crate::stop::Stop;
use crate::train::{self, apply_mask};

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

/// The mask of `method` at `ratio`. `diag` (the Hessian diagonal) is needed by `obd` and
/// `curvature_gated`. Every method removes `floor(ratio × eligible)` parameters per group,
/// except `curvature_gated` when fewer pass the gate: it never prunes a gated parameter.
pub fn method_mask(
    method: PruneMethod,
    theta: &[f64],
    diag: Option<&[f64]>,
    layout: &ParamLayout,
    cfg: &PruneConfig,
    ratio: f64,
) -> Mask {
    let elig = eligible(layout, cfg.include_bias, cfg.include_embeddings);
    let groups = groups(layout, cfg.scope);
    let magnitude: Vec<f64> = theta.iter().map(|t| t.abs()).collect();
    match (method, diag) {
        // until the calibration criteria land (issue 15), they score as magnitude
        (PruneMethod::Magnitude, _)
        | (_, None)
        | (
            PruneMethod::Wanda
            | PruneMethod::Taylor
            | PruneMethod::Obs
            | PruneMethod::BlockInfluence,
            _,
        ) => mask_from_scores(&magnitude, &elig, &groups, ratio),
        (PruneMethod::Obd, Some(d)) => {
            mask_from_scores(&obd_saliency(theta, d), &elig, &groups, ratio)
        }
        (PruneMethod::CurvatureGated, Some(d)) => {
            let pass = curvature_gate(layout, &elig, d, cfg.curvature_quantile);
            // the count comes from all eligible parameters, the choice from those that pass
            let n_groups = groups.iter().copied().max().map_or(0, |g| g + 1);
            let mut keep = vec![true; theta.len()];
            let mut pruned = 0;
            let mut threshold = 0.0f64;
            for g in 0..n_groups {
                let total = (0..theta.len())
                    .filter(|&i| elig[i] && groups[i] == g)
                    .count();
                let k = (ratio * total as f64).floor() as usize;
                let mut idx: Vec<usize> = (0..theta.len())
                    .filter(|&i| pass[i] && groups[i] == g)
                    .collect();
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

/// Why pruning failed (nothing fails yet but a cancel; criteria that can, will say here).
#[derive(Debug, thiserror::Error)]
pub enum PruneError {}

/// One row of a sweep with the mask it applied (`true` = kept), for fine-tuning and
/// checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct Pruned {
    pub row: PruneRow,
    pub keep: Vec<bool>,
}

/// Prunes `theta` with each method at each ratio and measures the evaluation loss and
/// accuracy, appending each row to `out` and passing it to `on_row`. `cancel` is checked
/// before every row; on a cancel the rows finished so far stay in `out`.
pub fn sweep(
    net: &Network,
    theta: &[f64],
    inputs: &SweepInputs<'_>,
    out: &mut Vec<Pruned>,
    cancel: &AtomicBool,
    on_row: &mut dyn FnMut(&PruneRow),
) -> Result<(), Stop<PruneError>> {
    let layout = net.layout();
    let eval = inputs.eval;
    let mut g = vec![0.0; theta.len()];
    let before = net.loss_grad(theta, eval, &mut g);
    let loss = BatchLoss { net, batch: eval };
    for &method in &inputs.cfg.methods {
        for &ratio in &inputs.cfg.ratios {
            Stop::check(cancel)?;
            let mask = method_mask(method, theta, inputs.diag, layout, inputs.cfg, ratio);
            let mut pruned = theta.to_vec();
            apply_mask(&mut pruned, &mask.keep);
            let after = net.evaluate(&pruned, eval);
            let dw: Vec<f64> = pruned.iter().zip(theta).map(|(p, t)| p - t).collect();
            let mut hdw = vec![0.0; theta.len()];
            FdHvp::new(&loss, theta, inputs.fd_step).hvp(&dw, &mut hdw);
            let first: f64 = g.iter().zip(&dw).map(|(a, b)| a * b).sum();
            let second: f64 = 0.5 * dw.iter().zip(&hdw).map(|(a, b)| a * b).sum::<f64>();
            let row = PruneRow {
                ratio,
                method,
                granularity: Granularity::Unstructured,
                units_eligible: mask.eligible,
                units_pruned: mask.pruned,
                mechanism: Some(crate::curvature::mechanism(&dw, &hdw, inputs.basis)),
                eligible: mask.eligible,
                pruned: mask.pruned,
                threshold: mask.threshold,
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
                layers: layer_sparsity(layout, &mask.keep),
            };
            on_row(&row);
            out.push(Pruned {
                row,
                keep: mask.keep,
            });
        }
    }
    Ok(())
}

/// Trains the pruned model of `p` (`theta ⊙ keep`) with its mask held and measures it on
/// `eval`. A fine-tuning that diverges is reported as an infinite loss, not an error: it is
/// a result about that mask. `cancel` is checked before every minibatch.
pub fn finetune(
    net: &Network,
    theta: &[f64],
    p: &Pruned,
    ft: &Finetune<'_>,
    eval: &PreparedBatch,
    cancel: &AtomicBool,
) -> Result<Finetuned, Stop<PruneError>> {
    let mut tuned = theta.to_vec();
    apply_mask(&mut tuned, &p.keep);
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
