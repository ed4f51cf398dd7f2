//! Hutchinson's stochastic estimators of `tr(H)`, `tr(H²)`, the eigenvalue variance, and the
//! diagonal of `H`, from Rademacher probes.
//!
//! For `v` with independent ±1 entries, `E[vᵀ H v] = tr(H)` and `E[‖H v‖²] = E[vᵀ H² v] = tr(H²)`,
//! so one HVP per probe gives a sample `(a_k, b_k) = (vᵀ H v, ‖H v‖²)` of both. With `m` probes:
//!
//! * `trace = ā`, `stderr = s_a / √m`; `trace_sq = b̄`, `stderr = s_b / √m`
//!   (`s` the sample standard deviation, divisor `m − 1`).
//! * The eigenvalue variance `V = tr(H²)/n − (tr(H)/n)²` is estimated by the plug-in
//!   `V̂ = b̄/n − (ā/n)²`. Its standard error is the delta method's: with the gradient
//!   `g = (∂V/∂ā, ∂V/∂b̄) = (−2ā/n², 1/n)` and the sample covariance `S` of `(a, b)`,
//!   `stderr² = gᵀ S g / m = (4ā²/n⁴ · s_aa − 4ā/n³ · s_ab + s_bb/n²) / m`.
//!   The plug-in is biased low by `Var(ā)/n² = s_aa/(m n²)`, a factor `~1/√m` below its
//!   standard error.
//!
//! For Rademacher probes `Var(vᵀ H v) = 2 Σ_{i≠j} H_ij²`: the trace of a diagonal matrix is exact
//! after one probe, and the error grows with the off-diagonal mass.

use std::sync::atomic::{AtomicBool, Ordering};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::lanczos::rademacher;
use super::{CurvatureError, Hvp};

/// What [`hutchinson`] computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HutchinsonOptions {
    /// Probes taken before the stopping rule is consulted (at least 2, so a spread exists).
    pub min_samples: usize,
    /// Most probes (HVPs).
    pub max_samples: usize,
    /// Stop once `stderr / |value| ≤ tol` for both the trace and `tr(H²)`.
    /// A trace near zero (a Hessian with as much negative as positive curvature) never meets a
    /// relative tolerance: then all `max_samples` probes are taken.
    pub tol: f64,
    /// Seed of the probes (`ChaCha8Rng::seed_from_u64`).
    pub seed: u64,
}

impl Default for HutchinsonOptions {
    fn default() -> Self {
        HutchinsonOptions {
            min_samples: 10,
            max_samples: 1000,
            tol: 1e-3,
            seed: 0,
        }
    }
}

/// A stochastic estimate and its standard error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Estimate {
    pub value: f64,
    pub stderr: f64,
}

/// The outcome of [`hutchinson`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hutchinson {
    /// `tr(H)`.
    pub trace: Estimate,
    /// `tr(H²) = ‖H‖_F² = Σ λ²`.
    pub trace_sq: Estimate,
    /// `tr(H²)/n − (tr(H)/n)²`, the population variance of the eigenvalues.
    pub variance: Estimate,
    /// Probes taken.
    pub samples: usize,
    /// Hessian-vector products spent (one per probe).
    pub hvps: usize,
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Sample covariance with divisor `m − 1` (0 for fewer than two samples).
fn cov(x: &[f64], y: &[f64]) -> f64 {
    let m = x.len();
    if m < 2 {
        return 0.0;
    }
    let (mx, my) = (mean(x), mean(y));
    x.iter()
        .zip(y)
        .map(|(a, b)| (a - mx) * (b - my))
        .sum::<f64>()
        / (m - 1) as f64
}

fn estimates(a: &[f64], b: &[f64], n: usize) -> Hutchinson {
    let m = a.len() as f64;
    let nf = n as f64;
    let (ma, mb) = (mean(a), mean(b));
    let (saa, sbb, sab) = (cov(a, a), cov(b, b), cov(a, b));
    let ga = -2.0 * ma / (nf * nf);
    let gb = 1.0 / nf;
    let var_v = (ga * ga * saa + 2.0 * ga * gb * sab + gb * gb * sbb).max(0.0) / m;
    Hutchinson {
        trace: Estimate {
            value: ma,
            stderr: (saa / m).sqrt(),
        },
        trace_sq: Estimate {
            value: mb,
            stderr: (sbb / m).sqrt(),
        },
        variance: Estimate {
            value: mb / nf - (ma / nf).powi(2),
            stderr: var_v.sqrt(),
        },
        samples: a.len(),
        hvps: a.len(),
    }
}

/// `tr(H)`, `tr(H²)` and the eigenvalue variance by Hutchinson's estimator with seeded
/// Rademacher probes (see the module docs for the formulas).
///
/// Takes at least `min(max(min_samples, 2), max_samples)` probes, then stops as soon as the
/// relative standard errors of the trace and of `tr(H²)` are both at most `tol`, or at
/// `max_samples`. Memory: two `n`-vectors per probe of a block ([`Hvp::block_size`]) and two
/// numbers per probe.
///
/// # Panics
/// When `max_samples == 0` or `h.dim() == 0`.
pub fn hutchinson<H: Hvp + ?Sized>(
    h: &mut H,
    opts: &HutchinsonOptions,
    cancel: &AtomicBool,
) -> Result<Hutchinson, CurvatureError> {
    let n = h.dim();
    assert!(n > 0, "hutchinson: the Hessian has no parameters");
    assert!(
        opts.max_samples > 0,
        "hutchinson: max_samples must be at least 1"
    );
    let min_samples = opts.min_samples.max(2).min(opts.max_samples);
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut probes = Probes::new(h.block_size());
    for k in 1..=opts.max_samples {
        // probe k is the k-th draw whether it comes alone or in a block; blocks only cover
        // probes that are certain to be taken (up to `min_samples`), so an early stop spends
        // exactly the products it did one at a time
        let certain = min_samples.saturating_sub(k - 1).max(1);
        let (v, hv) = probes.next(h, &mut rng, certain, cancel)?;
        let vhv: f64 = v.iter().zip(hv).map(|(x, y)| x * y).sum();
        let hv2: f64 = hv.iter().map(|y| y * y).sum();
        if !vhv.is_finite() || !hv2.is_finite() {
            return Err(CurvatureError::Eigen(format!(
                "the Hessian-vector product returned a non-finite value at Hutchinson probe {k}"
            )));
        }
        a.push(vhv);
        b.push(hv2);
        if k >= min_samples {
            let e = estimates(&a, &b, n);
            let rel_ok = |e: &Estimate| e.stderr <= opts.tol * e.value.abs();
            if rel_ok(&e.trace) && rel_ok(&e.trace_sq) {
                return Ok(e);
            }
        }
    }
    Ok(estimates(&a, &b, n))
}

/// Rademacher probes and their products, drawn and computed up to [`Hvp::block_size`] at a
/// time (one [`Hvp::hvp_block`] call) and handed out one by one, so a stopping rule sees them
/// in draw order exactly as if they came singly; a block never holds more probes than the
/// caller is certain to use.
struct Probes {
    block: usize,
    vs: Vec<f64>,
    hvs: Vec<f64>,
    next: usize,
    len: usize,
}

impl Probes {
    fn new(block: usize) -> Self {
        Probes {
            block: block.max(1),
            vs: Vec::new(),
            hvs: Vec::new(),
            next: 0,
            len: 0,
        }
    }

    /// The next probe and its product; `left` (the probes certainly used from here on)
    /// bounds the block drawn when one is needed. `cancel` is checked before every block.
    fn next<H: Hvp + ?Sized>(
        &mut self,
        h: &mut H,
        rng: &mut ChaCha8Rng,
        left: usize,
        cancel: &AtomicBool,
    ) -> Result<(&[f64], &[f64]), CurvatureError> {
        let n = h.dim();
        if self.next == self.len {
            if cancel.load(Ordering::Relaxed) {
                return Err(CurvatureError::Cancelled);
            }
            self.len = self.block.min(left).max(1);
            self.vs.clear();
            for _ in 0..self.len {
                self.vs.extend(rademacher(rng, n));
            }
            self.hvs.resize(self.len * n, 0.0);
            h.hvp_block(&self.vs, &mut self.hvs);
            self.next = 0;
        }
        let at = self.next * n..(self.next + 1) * n;
        self.next += 1;
        Ok((&self.vs[at.clone()], &self.hvs[at]))
    }
}

/// The diagonal of `H` estimated as the mean of `v ⊙ H v` over `samples` seeded Rademacher
/// probes (`E[v ⊙ H v] = diag(H)`; the error in entry `i` has variance `Σ_{j≠i} H_ij² / samples`).
/// Zeros when `samples == 0`. The probes go in blocks of [`Hvp::block_size`]; `cancel` is
/// checked before every block.
pub fn diagonal<H: Hvp + ?Sized>(
    h: &mut H,
    samples: usize,
    seed: u64,
    cancel: &AtomicBool,
) -> Result<Vec<f64>, CurvatureError> {
    let n = h.dim();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sum = vec![0.0; n];
    let mut probes = Probes::new(h.block_size());
    for k in 0..samples {
        let (v, hv) = probes.next(h, &mut rng, samples - k, cancel)?;
        for ((s, x), y) in sum.iter_mut().zip(v).zip(hv) {
            *s += x * y;
        }
    }
    if samples > 0 {
        sum.iter_mut().for_each(|s| *s /= samples as f64);
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::curvature::DiagHvp as Diag;

    #[test]
    fn diagonal_matrix_is_exact_from_the_minimum_samples() {
        // For diagonal H every probe gives vᵀHv = tr(H) and ‖Hv‖² = tr(H²) exactly.
        let d = vec![1.0, -2.0, 3.0, 0.5];
        let opts = HutchinsonOptions::default();
        let r = hutchinson(&mut Diag(d.clone()), &opts, &AtomicBool::new(false)).unwrap();
        assert_eq!(r.samples, 10);
        assert!((r.trace.value - 2.5).abs() < 1e-12 && r.trace.stderr < 1e-12);
        assert!((r.trace_sq.value - 14.25).abs() < 1e-12);
        // variance = 14.25/4 − (2.5/4)² = 3.5625 − 0.390625
        assert!((r.variance.value - 3.171875).abs() < 1e-12);
        let est = diagonal(&mut Diag(d.clone()), 3, 7, &AtomicBool::new(false)).unwrap();
        for (e, x) in est.iter().zip(&d) {
            assert!((e - x).abs() < 1e-12);
        }
    }
}
