//! Lanczos with full reorthogonalisation: the extreme eigenvalues of a Hessian from
//! Hessian-vector products alone.
//!
//! Each step does one HVP `w = H q_j`, the three-term recurrence
//! `w ← w − α_j q_j − β_{j−1} q_{j−1}`, then classical Gram–Schmidt against every stored
//! Lanczos vector, a second pass only when the first removed more than 1 − 1/√2 of `w`'s norm
//! (the Daniel–Gragg–Kaufman–Stewart criterion, as in ARPACK: "twice is enough", and once is
//! enough when little cancelled), so the basis stays orthonormal to working precision and no
//! ghost copies of converged eigenvalues appear. The eigenpairs of the small tridiagonal
//! `T_m = Q_mᵀ H Q_m` (faer's self-adjoint solver) are the Ritz pairs `(θ_i, y_i = Q_m s_i)`.
//!
//! The residual `‖H y_i − θ_i y_i‖` equals `|β_m · s_{m,i}|` (the last entry of the tridiagonal
//! eigenvector times the last β): exact in exact arithmetic with an orthonormal basis, which full
//! reorthogonalisation keeps to rounding. It costs nothing, so convergence is checked every
//! [`CHECK_EVERY`] steps. Since `H` is symmetric, some eigenvalue of `H` lies within that residual
//! of each Ritz value.

use std::sync::atomic::{AtomicBool, Ordering};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::mechanism::{BasisSource, EigenBasis};
use super::{CurvatureError, Hvp};

/// How often (in steps) the Ritz residuals are checked for early stopping.
pub const CHECK_EVERY: usize = 5;

/// `β_j ≤ BREAKDOWN · ‖H‖_est` counts as an invariant subspace: the Krylov space is closed under
/// `H`, the Ritz values are eigenvalues of `H` (to rounding), and Lanczos stops.
/// `‖H‖_est` is the largest `‖H q_j‖` seen so far.
pub const BREAKDOWN: f64 = 1e-12;

/// A second Gram–Schmidt pass runs when the first left less than this fraction of `w`'s norm.
pub const DGKS: f64 = std::f64::consts::FRAC_1_SQRT_2;

/// What [`lanczos`] computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanczosOptions {
    /// Most Lanczos steps (HVPs); capped at the dimension.
    pub steps: usize,
    /// Largest eigenvalues wanted.
    pub top_k: usize,
    /// Smallest (most negative) eigenvalues wanted.
    pub bottom_k: usize,
    /// Stop once every wanted Ritz value has residual `≤ tol · max(1, |θ|_max)`, where `|θ|_max`
    /// is the largest Ritz value in magnitude. `0` runs all `steps`.
    pub tol: f64,
    /// Seed of the Rademacher start vector (`ChaCha8Rng::seed_from_u64`).
    pub seed: u64,
}

impl Default for LanczosOptions {
    fn default() -> Self {
        LanczosOptions {
            steps: 100,
            top_k: 5,
            bottom_k: 5,
            tol: 1e-8,
            seed: 0,
        }
    }
}

/// A Ritz value and its residual norm `‖H y − θ y‖` (for a unit Ritz vector `y`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RitzValue {
    pub value: f64,
    pub residual: f64,
}

/// The outcome of [`lanczos`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanczosResult {
    /// The `top_k` largest Ritz values, largest first (fewer when fewer steps were taken).
    pub top: Vec<RitzValue>,
    /// The `bottom_k` smallest Ritz values, smallest first (fewer when fewer steps were taken).
    /// When `steps < top_k + bottom_k`, `top` and `bottom` share values.
    pub bottom: Vec<RitzValue>,
    /// Lanczos steps taken (the size of `T`).
    pub steps: usize,
    /// Every wanted Ritz value met the tolerance, or the Krylov space became invariant.
    pub converged: bool,
    /// Hessian-vector products spent (one per step).
    pub hvps: usize,
    /// Diagonal of `T`, `steps` entries.
    pub alpha: Vec<f64>,
    /// `β_j = ‖w_j‖` after step `j`, `steps` entries: `beta[..steps − 1]` is the off-diagonal of
    /// `T`, and the last one couples `T` to the next (unbuilt) vector and sets the residuals.
    pub beta: Vec<f64>,
}

/// Eigen-decomposition of the symmetric tridiagonal matrix with diagonal `alpha` and
/// off-diagonal `beta[..alpha.len() − 1]` (further entries of `beta` are ignored).
///
/// Returns the eigenvalues in ascending order and, for each, its unit eigenvector
/// (`vectors[i]` belongs to `values[i]`, `alpha.len()` entries).
///
/// # Panics
/// When `beta.len() + 1 < alpha.len()`.
pub fn tridiagonal_eigen(
    alpha: &[f64],
    beta: &[f64],
) -> Result<(Vec<f64>, Vec<Vec<f64>>), CurvatureError> {
    let m = alpha.len();
    assert!(
        beta.len() + 1 >= m,
        "tridiagonal_eigen: {} diagonal entries need {} off-diagonal ones, got {}",
        m,
        m.saturating_sub(1),
        beta.len()
    );
    if m == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    if alpha.iter().chain(&beta[..m - 1]).any(|x| !x.is_finite()) {
        return Err(CurvatureError::Eigen(
            "the Lanczos tridiagonal matrix holds a non-finite entry \
             (the Hessian-vector product returned NaN or infinity)"
                .into(),
        ));
    }
    let t = faer::Mat::<f64>::from_fn(m, m, |i, j| {
        if i == j {
            alpha[i]
        } else if i == j + 1 {
            beta[j]
        } else if j == i + 1 {
            beta[i]
        } else {
            0.0
        }
    });
    let evd = t
        .self_adjoint_eigen(faer::Side::Lower)
        .map_err(|e| CurvatureError::Eigen(format!("{e:?}")))?;
    let s = evd.S().column_vector();
    let u = evd.U();
    let values = (0..m).map(|i| s[i]).collect();
    let vectors = (0..m)
        .map(|i| (0..m).map(|r| u[(r, i)]).collect())
        .collect();
    Ok((values, vectors))
}

/// A Rademacher vector (entries ±1 with equal probability).
pub(crate) fn rademacher(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| if rng.gen::<bool>() { 1.0 } else { -1.0 })
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// The tridiagonal matrix built by [`krylov`].
pub(crate) struct Tridiagonal {
    pub alpha: Vec<f64>,
    pub beta: Vec<f64>,
    pub hvps: usize,
    /// Stopped on an invariant subspace (see [`BREAKDOWN`]).
    pub breakdown: bool,
    /// Stopped because `stop` returned true.
    pub stopped: bool,
    /// The Lanczos vectors `q_1 … q_m` (orthonormal to working precision), one per entry of
    /// `alpha`: built anyway for the reorthogonalisation, kept for Ritz vectors.
    pub basis: Vec<Vec<f64>>,
}

/// Runs Lanczos with full reorthogonalisation from `start` for at most `steps` steps (capped at
/// `h.dim()`). After every step `stop(alpha, beta)` may end the run early.
/// Memory: the `steps × n` basis.
pub(crate) fn krylov<H: Hvp + ?Sized>(
    h: &mut H,
    start: &[f64],
    steps: usize,
    cancel: &AtomicBool,
    mut stop: impl FnMut(&[f64], &[f64]) -> Result<bool, CurvatureError>,
) -> Result<Tridiagonal, CurvatureError> {
    let n = h.dim();
    assert_eq!(
        start.len(),
        n,
        "the Lanczos start vector has the wrong length"
    );
    let steps = steps.min(n);
    let mut out = Tridiagonal {
        alpha: Vec::with_capacity(steps),
        beta: Vec::with_capacity(steps),
        hvps: 0,
        breakdown: false,
        stopped: false,
        basis: Vec::new(),
    };
    let start_norm = norm(start);
    if steps == 0 || start_norm == 0.0 {
        return Ok(out);
    }
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(steps);
    let mut q: Vec<f64> = start.iter().map(|x| x / start_norm).collect();
    let mut w = vec![0.0; n];
    let mut coef = Vec::with_capacity(steps);
    let mut h_norm = 0.0f64;
    for j in 0..steps {
        if cancel.load(Ordering::Relaxed) {
            return Err(CurvatureError::Cancelled);
        }
        h.hvp(&q, &mut w);
        out.hvps += 1;
        h_norm = h_norm.max(norm(&w));
        let a = dot(&q, &w);
        for (wi, qi) in w.iter_mut().zip(&q) {
            *wi -= a * qi;
        }
        if let (Some(prev), Some(&b)) = (basis.last(), out.beta.last()) {
            for (wi, pi) in w.iter_mut().zip(prev.iter()) {
                *wi -= b * pi;
            }
        }
        basis.push(std::mem::take(&mut q));
        // Classical Gram–Schmidt against the whole basis; again if it cancelled much (DGKS).
        let mut before = norm(&w);
        let mut b = before;
        for _ in 0..2 {
            coef.clear();
            orthogonalise(&basis, &mut w, &mut coef);
            b = norm(&w);
            if b > DGKS * before {
                break;
            }
            before = b;
        }
        if !a.is_finite() || !b.is_finite() {
            return Err(CurvatureError::Eigen(format!(
                "the Hessian-vector product returned a non-finite value at Lanczos step {}",
                j + 1
            )));
        }
        out.alpha.push(a);
        out.beta.push(b);
        if b <= BREAKDOWN * h_norm {
            out.breakdown = true;
            break;
        }
        if stop(&out.alpha, &out.beta)? {
            out.stopped = true;
            break;
        }
        q = w.iter().map(|x| x / b).collect();
    }
    out.basis = basis;
    Ok(out)
}

/// The wanted Ritz values of `T` with residuals `|β_m s_{m,i}|`, and whether all of them meet
/// `tol · max(1, |θ|_max)`.
fn ritz(
    alpha: &[f64],
    beta: &[f64],
    top_k: usize,
    bottom_k: usize,
    tol: f64,
) -> Result<(Vec<RitzValue>, Vec<RitzValue>, bool), CurvatureError> {
    let m = alpha.len();
    let (values, vectors) = tridiagonal_eigen(alpha, beta)?;
    let last_beta = beta.get(m.wrapping_sub(1)).copied().unwrap_or(0.0);
    let pair = |i: usize| RitzValue {
        value: values[i],
        residual: (last_beta * vectors[i][m - 1]).abs(),
    };
    let top: Vec<RitzValue> = (0..m).rev().take(top_k).map(pair).collect();
    let bottom: Vec<RitzValue> = (0..m).take(bottom_k).map(pair).collect();
    let scale = values.iter().fold(1.0f64, |s, v| s.max(v.abs()));
    let ok = top.iter().chain(&bottom).all(|r| r.residual <= tol * scale);
    Ok((top, bottom, ok))
}

/// The `top_k` largest and `bottom_k` smallest eigenvalues of `H`, by Lanczos with full
/// reorthogonalisation from a seeded Rademacher start.
///
/// Stops at `opts.steps` (capped at `h.dim()`), on an invariant subspace (then the Ritz values
/// are eigenvalues of `H`; multiple eigenvalues show up once, since one start vector spans only
/// one direction of each eigenspace), or, checked every [`CHECK_EVERY`] steps once at least
/// `top_k + bottom_k` steps are done, when every wanted Ritz value has residual
/// `≤ tol · max(1, |θ|_max)`.
///
/// Cost: one HVP per step, plus about `4 · steps² · n` flops of reorthogonalisation in all.
/// Memory: keeps the whole Lanczos basis, `steps × n` f64 (for 100 steps and 112k parameters,
/// 90 MB).
pub fn lanczos<H: Hvp + ?Sized>(
    h: &mut H,
    opts: &LanczosOptions,
    cancel: &AtomicBool,
) -> Result<LanczosResult, CurvatureError> {
    Ok(run(h, opts, cancel)?.0)
}

/// [`lanczos`], and the Ritz vectors `y_i = Q_m s_i` of its `top_k` largest and `bottom_k`
/// smallest Ritz values (these `k` may differ from `opts`', which set the stopping test), with
/// [`BasisSource::Ritz`].
///
/// `Q_m` is the Lanczos basis (kept anyway for the reorthogonalisation), `s_i` the unit
/// eigenvectors of `T_m`; with `Q_m` orthonormal to working precision the Ritz vectors are too.
/// A Ritz vector is as good as its residual allows: its angle to the eigenspace of the nearest
/// eigenvalues is at most `residual / gap` (gap to the rest of the spectrum), so only Ritz
/// values that met `tol` give vectors worth reading. The gaps are those to the next Ritz
/// value, an estimate of the true gap. Extra cost: `(top_k + bottom_k) · m · n` flops.
pub fn lanczos_with_basis<H: Hvp + ?Sized>(
    h: &mut H,
    opts: &LanczosOptions,
    top_k: usize,
    bottom_k: usize,
    cancel: &AtomicBool,
) -> Result<(LanczosResult, EigenBasis), CurvatureError> {
    let (result, q) = run(h, opts, cancel)?;
    let basis = ritz_basis(&result, &q, top_k, bottom_k)?;
    Ok((result, basis))
}

fn run<H: Hvp + ?Sized>(
    h: &mut H,
    opts: &LanczosOptions,
    cancel: &AtomicBool,
) -> Result<(LanczosResult, Vec<Vec<f64>>), CurvatureError> {
    let n = h.dim();
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let start = rademacher(&mut rng, n);
    let wanted = (opts.top_k + opts.bottom_k).min(n);
    let tri = krylov(h, &start, opts.steps, cancel, |alpha, beta| {
        let m = alpha.len();
        if m < wanted.max(1) || !m.is_multiple_of(CHECK_EVERY) {
            return Ok(false);
        }
        let (_, _, ok) = ritz(alpha, beta, opts.top_k, opts.bottom_k, opts.tol)?;
        Ok(ok)
    })?;
    let (top, bottom, ok) = ritz(&tri.alpha, &tri.beta, opts.top_k, opts.bottom_k, opts.tol)?;
    let result = LanczosResult {
        top,
        bottom,
        steps: tri.alpha.len(),
        converged: n == 0 || tri.breakdown || tri.stopped || (ok && !tri.alpha.is_empty()),
        hvps: tri.hvps,
        alpha: tri.alpha,
        beta: tri.beta,
    };
    Ok((result, tri.basis))
}

/// The Ritz vectors `Q s_i` of the `top_k` largest and `bottom_k` smallest Ritz values of `T`
/// (`alpha`, `beta` of `result`), `q` its Lanczos vectors.
fn ritz_basis(
    result: &LanczosResult,
    q: &[Vec<f64>],
    top_k: usize,
    bottom_k: usize,
) -> Result<EigenBasis, CurvatureError> {
    use rayon::prelude::*;
    let m = result.alpha.len();
    debug_assert_eq!(q.len(), m, "one Lanczos vector per step");
    let n = q.first().map_or(0, |v| v.len());
    let (values, vectors) = tridiagonal_eigen(&result.alpha, &result.beta)?;
    let last_beta = result.beta.get(m.wrapping_sub(1)).copied().unwrap_or(0.0);
    let ritz_vector = |i: usize| -> (Vec<f64>, f64) {
        let s = &vectors[i];
        let mut y = vec![0.0; n];
        // y = Σ_j s_j q_j, in cache-sized chunks of y as in `orthogonalise`
        y.par_chunks_mut(4096).enumerate().for_each(|(c, yc)| {
            let (lo, len) = (c * 4096, yc.len());
            for (qj, sj) in q.iter().zip(s) {
                for (yi, qi) in yc.iter_mut().zip(&qj[lo..lo + len]) {
                    *yi += sj * qi;
                }
            }
        });
        // unit to rounding already (Q and s orthonormal); normalise the rounding away
        let ny = dot(&y, &y).sqrt();
        if ny > 0.0 {
            y.iter_mut().for_each(|x| *x /= ny);
        }
        (y, (last_beta * s[m - 1]).abs())
    };
    let top: Vec<usize> = (0..m).rev().take(top_k).collect();
    let bottom: Vec<usize> = (0..m).take(bottom_k).collect();
    Ok(EigenBasis::from_indices(
        &values,
        &top,
        &bottom,
        ritz_vector,
        BasisSource::Ritz,
    ))
}

/// `w -= Σ_k (b_k · w) b_k` over the basis (one classical Gram–Schmidt pass), the coefficients
/// left in `coef`. The pass is memory-bound (it reads the whole basis twice), so the dots run
/// in parallel over basis vectors and the update in parallel over cache-sized chunks of `w`,
/// each chunk reading every basis vector's slice once while it stays in cache.
fn orthogonalise(basis: &[Vec<f64>], w: &mut [f64], coef: &mut Vec<f64>) {
    use rayon::prelude::*;
    const CHUNK: usize = 4096;
    let wr: &[f64] = w;
    coef.par_extend(basis.par_iter().map(|b| dot(b, wr)));
    w.par_chunks_mut(CHUNK).enumerate().for_each(|(i, wc)| {
        let (lo, len) = (i * CHUNK, wc.len());
        for (b, c) in basis.iter().zip(coef.iter()) {
            for (wi, bi) in wc.iter_mut().zip(&b[lo..lo + len]) {
                *wi -= c * bi;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::curvature::DiagHvp as Diag;

    #[test]
    fn tridiagonal_eigen_of_a_2x2() {
        // [[2, 1], [1, 2]] has eigenvalues 1 and 3, eigenvectors (1, −1)/√2 and (1, 1)/√2.
        let (vals, vecs) = tridiagonal_eigen(&[2.0, 2.0], &[1.0]).unwrap();
        assert!((vals[0] - 1.0).abs() < 1e-14 && (vals[1] - 3.0).abs() < 1e-14);
        assert!((vecs[1][0].abs() - 0.5f64.sqrt()).abs() < 1e-14);
        assert!((vecs[0][0] + vecs[0][1]).abs() < 1e-14);
    }

    #[test]
    fn invariant_subspace_stops_with_exact_values() {
        // Three distinct eigenvalues: the Krylov space closes after three steps.
        let d: Vec<f64> = (0..30).map(|i| [1.0, -2.0, 5.0][i % 3]).collect();
        let opts = LanczosOptions {
            steps: 30,
            top_k: 1,
            bottom_k: 1,
            tol: 0.0,
            seed: 1,
        };
        let r = lanczos(&mut Diag(d), &opts, &AtomicBool::new(false)).unwrap();
        assert_eq!(r.steps, 3);
        assert!(r.converged);
        assert!((r.top[0].value - 5.0).abs() < 1e-12);
        assert!((r.bottom[0].value + 2.0).abs() < 1e-12);
    }

    #[test]
    fn cancel_stops() {
        let opts = LanczosOptions::default();
        let r = lanczos(&mut Diag(vec![1.0; 10]), &opts, &AtomicBool::new(true));
        assert!(matches!(r, Err(CurvatureError::Cancelled)));
    }
}
