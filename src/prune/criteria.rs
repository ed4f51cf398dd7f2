//! Scores: one per parameter, summed over a unit's parameters for a structured granularity
//! (lower = removed first).
//!
//! Per parameter `i` (`θ` the trained parameters):
//! - `magnitude`: `|θ_i|`.
//! - `obd`: `½ H_ii θ_i²` with the Hessian diagonal of the evaluation loss.
//! - `taylor`: `|g_i θ_i|`, `g` the gradient of the loss on the calibration examples.
//! - `wanda`: `|W_ij| · ‖X_j‖₂`, `X_j` column `j` of the layer's calibration input
//!   ([`crate::model::LayerInput`]). A bias is a weight on a constant-1 input, so it scores
//!   `|b_i| · sqrt(rows)`; an embedding entry (no input matrix) is scored the same way.
//! - `obs`: `w_ij² / [H⁻¹]_jj` with the damped layer Hessian `H = 2XᵀX + λI` (see `obs.rs`).
//!   By the same constant-input rule a bias or embedding entry scores `2 · rows · θ_i²`, the
//!   value its saliency would have if the constant input were orthogonal to `X`.
//! - `curvature_gated`: unstructured only (it gates single parameters by their layer's
//!   curvature quantile, see [`super::method_mask`]).
//! - `block_influence`: block granularity only: `1 − mean over rows of cos(h_in, h_out)` of
//!   the stream around the block ([`block_influence`]), ShortGPT's score.
//!
//! A unit's score is the sum of its parameters' scores (a neuron of the plain MLP sums its
//! row, its bias and its column in the next layer); `block_influence` scores the block itself.
//! Sums favour removing small units, which is what "the unit's total importance" means here.

use std::cell::OnceCell;

use super::granularity::{self, Unit, Units};
use super::obs::Obs;
use super::{obd_saliency, Calibration, PruneError};
use crate::config::{Granularity, PruneConfig, PruneMethod};
use crate::model::{Activations, BlockStream, LayerInput, Network, ParamKind, ParamTensor};

/// Whether `method` can score units of `granularity`, and why not.
pub fn defined(method: PruneMethod, granularity: Granularity) -> Result<(), &'static str> {
    match (method, granularity) {
        (PruneMethod::BlockInfluence, Granularity::Block) => Ok(()),
        (PruneMethod::BlockInfluence, _) => Err("block_influence scores whole blocks only"),
        (PruneMethod::CurvatureGated, Granularity::Unstructured) => Ok(()),
        (PruneMethod::CurvatureGated, _) => Err(
            "curvature_gated gates single parameters by their layer's curvature quantile: \
             unstructured only",
        ),
        _ => Ok(()),
    }
}

/// What the criteria read: the model, its trained `theta` and, for some, the Hessian
/// diagonal or the calibration activations. The calibration gradient and OBS's layer
/// inverses are computed on first use and kept for every later ratio.
pub struct Criteria<'a> {
    pub net: &'a Network,
    pub theta: &'a [f64],
    pub diag: Option<&'a [f64]>,
    pub calibration: Option<&'a Calibration>,
    pub obs_damping: f64,
    gradient: OnceCell<Vec<f64>>,
    obs: OnceCell<Obs>,
}

impl<'a> Criteria<'a> {
    pub fn new(
        net: &'a Network,
        theta: &'a [f64],
        diag: Option<&'a [f64]>,
        calibration: Option<&'a Calibration>,
        obs_damping: f64,
    ) -> Self {
        Criteria {
            net,
            theta,
            diag,
            calibration,
            obs_damping,
            gradient: OnceCell::new(),
            obs: OnceCell::new(),
        }
    }

    fn calibration(&self, method: PruneMethod) -> Result<&'a Calibration, PruneError> {
        self.calibration.ok_or(PruneError::NoCalibration { method })
    }

    /// The gradient of the mean loss on the calibration examples.
    pub fn gradient(&self) -> Result<&[f64], PruneError> {
        if let Some(g) = self.gradient.get() {
            return Ok(g);
        }
        let cal = self.calibration(PruneMethod::Taylor)?;
        let mut g = vec![0.0; self.theta.len()];
        self.net.loss_grad(self.theta, &cal.batch, &mut g);
        Ok(self.gradient.get_or_init(|| g))
    }

    /// `H⁻¹` of every linear layer (one Cholesky each).
    pub fn obs(&self) -> Result<&Obs, PruneError> {
        if let Some(o) = self.obs.get() {
            return Ok(o);
        }
        let cal = self.calibration(PruneMethod::Obs)?;
        let o = Obs::new(self.net.layout(), &cal.activations, self.obs_damping)?;
        Ok(self.obs.get_or_init(|| o))
    }

    /// One score per parameter of `theta`.
    pub fn param_scores(&self, method: PruneMethod) -> Result<Vec<f64>, PruneError> {
        let theta = self.theta;
        Ok(match method {
            PruneMethod::Magnitude => theta.iter().map(|t| t.abs()).collect(),
            PruneMethod::Obd => {
                let d = self.diag.ok_or(PruneError::NoDiagonal)?;
                obd_saliency(theta, d)
            }
            PruneMethod::Taylor => {
                let g = self.gradient()?;
                g.iter().zip(theta).map(|(g, t)| (g * t).abs()).collect()
            }
            PruneMethod::Wanda => self.wanda()?,
            PruneMethod::Obs => self.obs_scores()?,
            PruneMethod::CurvatureGated | PruneMethod::BlockInfluence => {
                return Err(PruneError::NoParameterScore { method })
            }
        })
    }

    fn wanda(&self) -> Result<Vec<f64>, PruneError> {
        let acts = &self.calibration(PruneMethod::Wanda)?.activations;
        let mut s = vec![0.0; self.theta.len()];
        for t in &self.net.layout().tensors {
            let theta = &self.theta[t.range()];
            let out = &mut s[t.range()];
            if t.kind == ParamKind::Weight {
                let norms = column_norms(weight_input(acts, t)?);
                for (i, (o, w)) in out.iter_mut().zip(theta).enumerate() {
                    *o = w.abs() * norms[i % t.shape[1]];
                }
            } else {
                let one = (constant_rows(acts, t) as f64).sqrt();
                out.iter_mut()
                    .zip(theta)
                    .for_each(|(o, b)| *o = b.abs() * one);
            }
        }
        Ok(s)
    }

    fn obs_scores(&self) -> Result<Vec<f64>, PruneError> {
        let obs = self.obs()?;
        let acts = &self.calibration(PruneMethod::Obs)?.activations;
        let mut s = vec![0.0; self.theta.len()];
        for t in &self.net.layout().tensors {
            let theta = &self.theta[t.range()];
            match obs.layer(&t.name) {
                Some(layer) if t.kind == ParamKind::Weight => {
                    s[t.range()].copy_from_slice(&layer.saliency(theta))
                }
                _ => {
                    let two_rows = 2.0 * constant_rows(acts, t) as f64;
                    s[t.range()]
                        .iter_mut()
                        .zip(theta)
                        .for_each(|(o, b)| *o = two_rows * b * b);
                }
            }
        }
        Ok(s)
    }

    /// One score per unit: the sum of its parameters' scores, or for `block_influence` the
    /// influence of block `unit.index`.
    pub fn unit_scores(&self, method: PruneMethod, units: &[Unit]) -> Result<Vec<f64>, PruneError> {
        if method == PruneMethod::BlockInfluence {
            let acts = &self.calibration(method)?.activations;
            return units
                .iter()
                .map(|u| {
                    acts.blocks
                        .get(u.index)
                        .map(block_influence)
                        .ok_or(PruneError::MissingBlock { block: u.index })
                })
                .collect();
        }
        let s = self.param_scores(method)?;
        Ok(units
            .iter()
            .map(|u| u.params.iter().map(|&i| s[i]).sum())
            .collect())
    }
}

/// The input of weight tensor `t`, checked against its width.
fn weight_input<'x>(acts: &'x Activations, t: &ParamTensor) -> Result<&'x LayerInput, PruneError> {
    acts.input(&t.name)
        .filter(|i| i.cols == t.shape[1])
        .ok_or_else(|| PruneError::MissingInput {
            weight: t.name.clone(),
        })
}

/// `‖X_j‖₂` of each column of `x`.
pub fn column_norms(x: &LayerInput) -> Vec<f64> {
    let mut sq = vec![0.0; x.cols];
    for r in x.x.chunks_exact(x.cols.max(1)) {
        sq.iter_mut().zip(r).for_each(|(s, v)| *s += v * v);
    }
    sq.into_iter().map(f64::sqrt).collect()
}

/// Rows of the constant-1 input a bias (or embedding entry) is a weight on: those of its
/// layer's weight input, or of the first layer for a tensor that has none.
fn constant_rows(acts: &Activations, t: &ParamTensor) -> usize {
    t.name
        .strip_suffix(".bias")
        .and_then(|base| acts.input(&format!("{base}.weight")))
        .or(acts.inputs.first())
        .map_or(0, |i| i.rows)
}

/// `1 − mean over rows of cos(h_in, h_out)`: 0 for a block that leaves the stream's direction
/// unchanged (the identity), 1 for one whose output is orthogonal to its input. A row whose input and output
/// are both zero counts as unchanged (cos 1); one of them zero, as orthogonal (cos 0).
pub fn block_influence(s: &BlockStream) -> f64 {
    if s.rows == 0 {
        return 0.0;
    }
    let c = s.cols.max(1);
    let total: f64 = s
        .h_in
        .chunks_exact(c)
        .zip(s.h_out.chunks_exact(c))
        .map(|(a, b)| {
            let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
            let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
            match (na > 0.0, nb > 0.0) {
                (true, true) => dot / (na * nb),
                (false, false) => 1.0,
                _ => 0.0,
            }
        })
        .sum();
    1.0 - total / s.rows as f64
}

/// One score per block of the model by `method` (lower = less important), for lesions that
/// remove the `k` least important blocks; `None` when `method` does not rank blocks
/// (`curvature_gated`).
pub fn block_scores(
    method: PruneMethod,
    criteria: &Criteria<'_>,
) -> Result<Option<Vec<f64>>, PruneError> {
    if defined(method, Granularity::Block).is_err() {
        return Ok(None);
    }
    let net = criteria.net;
    let units = granularity::units(
        net.spec(),
        net.variant(),
        net.layout(),
        Granularity::Block,
        // block units take every weight and bias whatever the config says
        &PruneConfig::default(),
    );
    let Units::Whole(units) = units else {
        return Ok(None);
    };
    criteria.unit_scores(method, &units).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_influence_of_identity_orthogonal_and_reversed_blocks() {
        let h = vec![1.0, 2.0, -3.0, 0.5, 0.0, 4.0];
        let s = |h_out: Vec<f64>| BlockStream {
            rows: 2,
            cols: 3,
            h_in: h.clone(),
            h_out,
        };
        // cos(a, a) is 1 to a couple of roundings
        assert!(block_influence(&s(h.clone())).abs() < 1e-15);
        let neg: Vec<f64> = h.iter().map(|v| -2.0 * v).collect();
        assert!((block_influence(&s(neg)) - 2.0).abs() < 1e-15);
        // row 0 orthogonal ([2, -1, 0]·[1, 2, -3] = 0), row 1 unchanged: 1 − (0 + 1)/2
        let half = vec![2.0, -1.0, 0.0, 0.5, 0.0, 4.0];
        assert!((block_influence(&s(half)) - 0.5).abs() < 1e-15);
    }

    #[test]
    fn only_block_influence_and_curvature_gated_are_restricted() {
        use Granularity::*;
        let all = [Unstructured, NOfM { n: 2, m: 4 }, Neuron, Head, Block];
        for g in all {
            assert_eq!(defined(PruneMethod::BlockInfluence, g).is_ok(), g == Block);
            assert_eq!(
                defined(PruneMethod::CurvatureGated, g).is_ok(),
                g == Unstructured
            );
            for m in [
                PruneMethod::Magnitude,
                PruneMethod::Obd,
                PruneMethod::Taylor,
                PruneMethod::Wanda,
                PruneMethod::Obs,
            ] {
                assert!(defined(m, g).is_ok());
            }
        }
        assert!(defined(PruneMethod::BlockInfluence, Neuron)
            .unwrap_err()
            .contains("whole blocks"));
    }
}
