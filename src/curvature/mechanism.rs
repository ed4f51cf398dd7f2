//! Where a pruning step `Δθ` points in the Hessian's eigenbasis: the measurement behind the
//! article's §4.2 claim that "the pruned parameters lie along low-curvature directions".
//!
//! For a step `Δθ` and `HΔθ` (one HVP, already spent on the second-order prediction):
//! - the Rayleigh quotient `ΔθᵀHΔθ / ‖Δθ‖²`, the curvature along the step, which lies in
//!   `[λ_min, λ_max]` and equals `λ` for an eigenvector;
//! - the share of `‖Δθ‖²` in the span of the top-k and of the bottom-k eigenvectors,
//!   `Σ_i (u_iᵀΔθ)² / ‖Δθ‖²` over an orthonormal set `u_i`, in `[0, 1]` (1 when `Δθ` lies in
//!   the span). With Ritz vectors (Lanczos) the span is that of the converged approximations;
//!   their orthonormality is to working precision, so a share may exceed 1 by rounding only,
//!   and is clamped.

use serde::{Deserialize, Serialize};

/// Orthonormal Hessian eigenvectors: the `top` ones (largest eigenvalues first) and the
/// `bottom` ones (smallest first), each of length `n`, with their eigenvalues, residuals
/// `‖H u − λ u‖`, and the gap after the last of each (see [`super::basis`] on clusters).
///
/// Produced by the spectrum stage when `SpectrumOptions::basis` is set: dense eigenvectors
/// ([`super::dense_basis`]) or Lanczos Ritz vectors ([`super::lanczos::lanczos_with_basis`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EigenBasis {
    pub top: Vec<Vec<f64>>,
    pub top_values: Vec<f64>,
    /// `‖H u − λ u‖` of each top vector: measured on the dense matrix, or the Ritz residual
    /// `|β_m s_{m,i}|`.
    pub top_residuals: Vec<f64>,
    /// `λ_k − λ_{k+1}` (≥ 0) with `k = top.len()`: near zero, a cluster straddles the k-th
    /// boundary and the span of `top` holds an arbitrary part of it. `None` when there is no
    /// `(k+1)`-th value. Ritz: the gap to the next Ritz value, an estimate.
    pub top_gap: Option<f64>,
    pub bottom: Vec<Vec<f64>>,
    pub bottom_values: Vec<f64>,
    pub bottom_residuals: Vec<f64>,
    /// `λ_{k+1} − λ_k` (≥ 0) with `k = bottom.len()`.
    pub bottom_gap: Option<f64>,
    /// `dense` eigenvectors or Lanczos `ritz` vectors.
    pub source: BasisSource,
}

impl EigenBasis {
    /// The basis of eigenpairs `top` and `bottom` (indices into the ascending `values`),
    /// each vector and its residual from `vector(i)`.
    pub(crate) fn from_indices(
        values: &[f64],
        top: &[usize],
        bottom: &[usize],
        vector: impl Fn(usize) -> (Vec<f64>, f64),
        source: BasisSource,
    ) -> EigenBasis {
        let (top_vectors, top_residuals): (Vec<_>, Vec<_>) = top.iter().map(|&i| vector(i)).unzip();
        let (bottom_vectors, bottom_residuals): (Vec<_>, Vec<_>) =
            bottom.iter().map(|&i| vector(i)).unzip();
        let (top_gap, bottom_gap) = super::basis::gaps(values, top.len(), bottom.len());
        EigenBasis {
            top: top_vectors,
            top_values: top.iter().map(|&i| values[i]).collect(),
            top_residuals,
            top_gap,
            bottom: bottom_vectors,
            bottom_values: bottom.iter().map(|&i| values[i]).collect(),
            bottom_residuals,
            bottom_gap,
            source,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BasisSource {
    #[default]
    Dense,
    Ritz,
}

/// The mechanism measured for one pruning row.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mechanism {
    /// `ΔθᵀHΔθ / ‖Δθ‖²` (0 when nothing was pruned).
    pub rayleigh: f64,
    /// Share of `‖Δθ‖²` in the span of the top-k eigenvectors (`None` without a basis).
    pub top_share: Option<f64>,
    /// Share of `‖Δθ‖²` in the span of the bottom-k eigenvectors.
    pub bottom_share: Option<f64>,
    /// How many vectors each share was measured against.
    pub top_k: usize,
    pub bottom_k: usize,
    pub source: Option<BasisSource>,
    /// The basis' [`EigenBasis::top_gap`]: how well the top-k span is defined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_gap: Option<f64>,
    /// The basis' [`EigenBasis::bottom_gap`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bottom_gap: Option<f64>,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Share of `‖v‖²` in the span of the orthonormal `vectors`.
pub fn span_share(v: &[f64], vectors: &[Vec<f64>]) -> f64 {
    let norm2 = dot(v, v);
    if norm2 == 0.0 {
        return 0.0;
    }
    let inside: f64 = vectors.iter().map(|u| dot(u, v).powi(2)).sum();
    (inside / norm2).clamp(0.0, 1.0)
}

/// The Rayleigh quotient and the overlaps of a step `dw` with `hdw = H dw`.
pub fn mechanism(dw: &[f64], hdw: &[f64], basis: Option<&EigenBasis>) -> Mechanism {
    let norm2 = dot(dw, dw);
    let rayleigh = if norm2 == 0.0 {
        0.0
    } else {
        dot(dw, hdw) / norm2
    };
    Mechanism {
        rayleigh,
        top_share: basis.map(|b| span_share(dw, &b.top)),
        bottom_share: basis.map(|b| span_share(dw, &b.bottom)),
        top_k: basis.map_or(0, |b| b.top.len()),
        bottom_k: basis.map_or(0, |b| b.bottom.len()),
        source: basis.map(|b| b.source),
        top_gap: basis.and_then(|b| b.top_gap),
        bottom_gap: basis.and_then(|b| b.bottom_gap),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_along_an_axis_of_a_diagonal_hessian() {
        // H = diag(3, 1, -2): e0 is the top eigenvector, e2 the bottom one
        let h = [3.0, 1.0, -2.0];
        let basis = EigenBasis {
            top: vec![vec![1.0, 0.0, 0.0]],
            top_values: vec![3.0],
            bottom: vec![vec![0.0, 0.0, 1.0]],
            bottom_values: vec![-2.0],
            top_gap: Some(2.0),
            bottom_gap: Some(3.0),
            ..Default::default()
        };
        let dw = [0.0, 0.0, 0.5];
        let hdw: Vec<f64> = dw.iter().zip(&h).map(|(a, b)| a * b).collect();
        let m = mechanism(&dw, &hdw, Some(&basis));
        assert_eq!(m.rayleigh, -2.0);
        assert_eq!(m.bottom_share, Some(1.0));
        assert_eq!(m.top_share, Some(0.0));
        assert_eq!((m.top_gap, m.bottom_gap), (Some(2.0), Some(3.0)));
        // half the squared norm on e0, half on e1
        let dw = [1.0, 1.0, 0.0];
        let hdw: Vec<f64> = dw.iter().zip(&h).map(|(a, b)| a * b).collect();
        let m = mechanism(&dw, &hdw, Some(&basis));
        assert_eq!(m.rayleigh, 2.0);
        assert_eq!(m.top_share, Some(0.5));
        assert_eq!(m.bottom_share, Some(0.0));
        let none = mechanism(&[0.0; 3], &[0.0; 3], None);
        assert_eq!((none.rayleigh, none.top_share), (0.0, None));
    }
}
