//! Masks from scores, pruning sweeps, and the damage each ratio does.

use serde::{Deserialize, Serialize};

use crate::config::{PruneConfig, PruneScope};
use crate::curvature::{BatchLoss, FdHvp, Hvp};
use crate::model::{Network, ParamKind, ParamLayout, PreparedBatch};

/// Which parameters may be pruned: weights, and biases when `include_bias`.
pub fn eligible(layout: &ParamLayout, include_bias: bool) -> Vec<bool> {
    let mut out = vec![false; layout.len];
    for t in &layout.tensors {
        if t.kind == ParamKind::Weight || include_bias {
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

/// Magnitude pruning of `theta` at `ratio`.
pub fn magnitude_mask(theta: &[f64], layout: &ParamLayout, cfg: &PruneConfig, ratio: f64) -> Mask {
    let scores: Vec<f64> = theta.iter().map(|t| t.abs()).collect();
    let elig = eligible(layout, cfg.include_bias);
    let groups = match cfg.scope {
        PruneScope::Global => vec![0; layout.len],
        PruneScope::Layer => layout.layer_of_each(),
    };
    mask_from_scores(&scores, &elig, &groups, ratio)
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

/// One ratio of a pruning sweep for one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneRow {
    pub ratio: f64,
    pub method: String,
    pub eligible: usize,
    pub pruned: usize,
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
    pub layers: Vec<LayerSparsity>,
}

/// `S = (L_after − L_before) / L_before`.
pub fn sensitivity(loss_before: f64, loss_after: f64) -> f64 {
    (loss_after - loss_before) / loss_before
}

/// Prunes `theta` at each ratio and measures the evaluation loss and accuracy.
pub fn sweep(
    net: &Network,
    theta: &[f64],
    eval: &PreparedBatch,
    cfg: &PruneConfig,
    fd_step: f64,
    on_row: &mut dyn FnMut(&PruneRow) -> bool,
) -> Option<Vec<PruneRow>> {
    let layout = net.layout();
    let mut g = vec![0.0; theta.len()];
    let before = net.loss_grad(theta, eval, &mut g);
    let loss = BatchLoss { net, batch: eval };
    let mut rows = Vec::new();
    for &ratio in &cfg.ratios {
        let mask = magnitude_mask(theta, layout, cfg, ratio);
        let pruned: Vec<f64> = theta
            .iter()
            .zip(&mask.keep)
            .map(|(t, k)| if *k { *t } else { 0.0 })
            .collect();
        let after = net.evaluate(&pruned, eval);
        let dw: Vec<f64> = pruned.iter().zip(theta).map(|(p, t)| p - t).collect();
        let mut hdw = vec![0.0; theta.len()];
        FdHvp::new(&loss, theta, fd_step).hvp(&dw, &mut hdw);
        let first: f64 = g.iter().zip(&dw).map(|(a, b)| a * b).sum();
        let second: f64 = 0.5 * dw.iter().zip(&hdw).map(|(a, b)| a * b).sum::<f64>();
        let row = PruneRow {
            ratio,
            method: "magnitude".into(),
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
            layers: layer_sparsity(layout, &mask.keep),
        };
        if !on_row(&row) {
            return None;
        }
        rows.push(row);
    }
    Some(rows)
}
