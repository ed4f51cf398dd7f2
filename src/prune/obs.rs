//! Layer-wise optimal brain surgeon: the saliency of each weight and the closed-form update of
//! the kept weights of each row (SparseGPT's rule, solved exactly instead of column by column).
//!
//! For a linear layer with calibration input `X` (`rows × in`, [`LayerInput`]) the
//! reconstruction error of one output row `w` moved to `w'` is `‖(w' − w) Xᵀ‖²`, whose Hessian
//! is `H = 2XᵀX`. It is damped, `H = 2XᵀX + λI` with `λ = obs_damping × mean(diag(2XᵀX))`
//! (SparseGPT's `percdamp`; when every input is zero, `λ = obs_damping` so `H` stays
//! invertible), so the minimised objective is `‖δXᵀ‖² + ½λ‖δ‖²` for `δ = w' − w`.
//!
//! One Cholesky factorisation per layer gives `H⁻¹`. The saliency of weight `w_ij` is
//! `w_ij² / [H⁻¹]_jj` (the error of removing it alone, up to the factor ½). For a row with
//! pruned inputs `P` the constrained optimum `min δHδᵀ s.t. w'_P = 0` is
//! `δ = −w_P (H⁻¹_PP)⁻¹ H⁻¹_{P,:}`: the kept weights move by `δ`, the pruned ones become exactly
//! 0. A row with nothing kept is simply zero; rows sharing the same `P` (every row of the layer
//! after a neuron's column, a head's columns) share one factorisation of `H⁻¹_PP`. The layer's
//! bias is never updated, and `X` is the unpruned model's input (no sequential recalibration).

use faer::linalg::solvers::{DenseSolveCore, Solve};
use faer::{Mat, MatRef, Par, Side};

use super::PruneError;
use crate::model::{Activations, LayerInput, ParamKind, ParamLayout};

/// `H⁻¹` of one linear layer.
#[derive(Debug, Clone)]
pub struct LayerObs {
    /// The weight tensor, e.g. `blocks.0.weight`.
    pub weight: String,
    /// The damping `λ` added to the diagonal of `2XᵀX`.
    pub lambda: f64,
    /// `prune.obs_damping` it came from (for the error message).
    pub damping: f64,
    hinv: Mat<f64>,
}

impl LayerObs {
    /// Factors `2XᵀX + λI` of `input`; fails when it is not positive definite.
    pub fn new(input: &LayerInput, damping: f64) -> Result<LayerObs, PruneError> {
        let x = MatRef::from_row_major_slice(&input.x, input.rows, input.cols);
        let mut h = Mat::<f64>::zeros(input.cols, input.cols);
        // sequential: the same bits on every thread count, so records replay
        faer::linalg::matmul::matmul(
            h.as_mut(),
            faer::Accum::Replace,
            x.transpose(),
            x,
            2.0,
            Par::Seq,
        );
        let n = input.cols.max(1) as f64;
        let mean = (0..input.cols).map(|j| h[(j, j)]).sum::<f64>() / n;
        let lambda = if mean > 0.0 { damping * mean } else { damping };
        for j in 0..input.cols {
            h[(j, j)] += lambda;
        }
        let fail = || PruneError::Cholesky {
            layer: input.weight.clone(),
            damping,
        };
        if !h.as_ref().is_all_finite() {
            return Err(fail());
        }
        let llt = h.llt(Side::Lower).map_err(|_| fail())?;
        Ok(LayerObs {
            weight: input.weight.clone(),
            lambda,
            damping,
            hinv: llt.inverse(),
        })
    }

    /// Inputs of the layer.
    pub fn cols(&self) -> usize {
        self.hinv.ncols()
    }

    /// `[H⁻¹]_ij`.
    pub fn hinv(&self, i: usize, j: usize) -> f64 {
        self.hinv[(i, j)]
    }

    /// `w_ij² / [H⁻¹]_jj` of a row-major `[out, in]` weight `w`.
    pub fn saliency(&self, w: &[f64]) -> Vec<f64> {
        let c = self.cols();
        w.iter()
            .enumerate()
            .map(|(i, v)| v * v / self.hinv[(i % c, i % c)])
            .collect()
    }

    /// Sets the pruned weights of `w` (`[out, in]`, `keep` of the same shape) to zero and moves
    /// the kept ones of each row to the constrained optimum.
    pub fn update(&self, w: &mut [f64], keep: &[bool]) -> Result<(), PruneError> {
        let c = self.cols();
        let mut rows_of: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
        for r in 0..w.len() / c.max(1) {
            let p: Vec<usize> = (0..c).filter(|&j| !keep[r * c + j]).collect();
            if p.is_empty() {
                continue;
            }
            match rows_of.iter_mut().find(|(q, _)| *q == p) {
                Some((_, rows)) => rows.push(r),
                None => rows_of.push((p, vec![r])),
            }
        }
        for (p, rows) in &rows_of {
            self.update_rows(w, p, rows)?;
        }
        Ok(())
    }

    /// `δ = −w_P (H⁻¹_PP)⁻¹ H⁻¹_{P,:}` for every row in `rows`, all pruned at `p`.
    fn update_rows(&self, w: &mut [f64], p: &[usize], rows: &[usize]) -> Result<(), PruneError> {
        let c = self.cols();
        if p.len() < c {
            let a = Mat::<f64>::from_fn(p.len(), p.len(), |i, j| self.hinv[(p[i], p[j])]);
            let llt = a.llt(Side::Lower).map_err(|_| PruneError::Cholesky {
                layer: self.weight.clone(),
                damping: self.damping,
            })?;
            // one column per row: z = (H⁻¹_PP)⁻¹ w_Pᵀ
            let rhs = Mat::<f64>::from_fn(p.len(), rows.len(), |i, k| w[rows[k] * c + p[i]]);
            let z = llt.solve(&rhs);
            for (k, &r) in rows.iter().enumerate() {
                for j in 0..c {
                    let d: f64 = (0..p.len()).map(|i| z[(i, k)] * self.hinv[(p[i], j)]).sum();
                    w[r * c + j] -= d;
                }
            }
        }
        for &r in rows {
            for &j in p {
                w[r * c + j] = 0.0;
            }
        }
        Ok(())
    }
}

/// `H⁻¹` of every linear layer of a model.
#[derive(Debug, Clone)]
pub struct Obs {
    pub layers: Vec<LayerObs>,
}

impl Obs {
    /// One factorisation per weight tensor of `layout`, from its input in `activations`.
    pub fn new(
        layout: &ParamLayout,
        activations: &Activations,
        damping: f64,
    ) -> Result<Obs, PruneError> {
        let layers = layout
            .tensors
            .iter()
            .filter(|t| t.kind == ParamKind::Weight)
            .map(|t| {
                let input = activations
                    .input(&t.name)
                    .filter(|i| i.cols == t.shape[1])
                    .ok_or_else(|| PruneError::MissingInput {
                        weight: t.name.clone(),
                    })?;
                LayerObs::new(input, damping)
            })
            .collect::<Result<_, _>>()?;
        Ok(Obs { layers })
    }

    pub fn layer(&self, weight: &str) -> Option<&LayerObs> {
        self.layers.iter().find(|l| l.weight == weight)
    }

    /// `theta` pruned at `keep` with every layer's kept weights updated; biases, embeddings
    /// and anything else only masked.
    pub fn apply(
        &self,
        layout: &ParamLayout,
        theta: &[f64],
        keep: &[bool],
    ) -> Result<Vec<f64>, PruneError> {
        let mut out = theta.to_vec();
        crate::train::apply_mask(&mut out, keep);
        for t in layout
            .tensors
            .iter()
            .filter(|t| t.kind == ParamKind::Weight)
        {
            let r = t.range();
            if keep[r.clone()].iter().all(|k| *k) {
                continue;
            }
            let layer = self
                .layer(&t.name)
                .ok_or_else(|| PruneError::MissingInput {
                    weight: t.name.clone(),
                })?;
            let mut w = theta[r.clone()].to_vec();
            layer.update(&mut w, &keep[r.clone()])?;
            out[r].copy_from_slice(&w);
        }
        Ok(out)
    }
}
