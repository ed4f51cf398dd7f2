//! Stochastic Lanczos quadrature: the spectral density of a Hessian from HVPs
//! (Ghorbani, Krishnan & Xiao 2019, "An investigation into neural net optimization via Hessian
//! eigenvalue density"; PyHessian's `density`).
//!
//! For a unit start vector `q = v/‖v‖` with Rademacher `v`, `E[qᵀ f(H) q] = tr f(H) / n`. One
//! Lanczos run of `m` steps from `q` gives `T_m = S Θ Sᵀ`, and `qᵀ f(H) q ≈ Σ_i τ_i² f(θ_i)` with
//! nodes `θ_i` (Ritz values) and weights `τ_i² = S_{1,i}²` (Gauss quadrature, exact for
//! polynomials of degree `< 2m`). Averaging `runs` runs (weight `1/runs` each) estimates the
//! spectral measure `(1/n) Σ_k δ(t − λ_k)`; each run's weights sum to 1, so all weights sum to 1.
//! Broadening each node by a Gaussian of width `sigma` gives a smooth density on a grid.

use std::sync::atomic::AtomicBool;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::lanczos::{krylov, rademacher, tridiagonal_eigen};
use super::{CurvatureError, Hvp};

/// The grid reaches this many `sigma` beyond the extreme nodes, so the Gaussian mass left
/// outside it is below `6e-7` of a node's weight (two-sided tail beyond 5σ).
pub const PAD_SIGMAS: f64 = 5.0;

/// What [`slq`] computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlqOptions {
    /// Independent Rademacher start vectors.
    pub runs: usize,
    /// Lanczos steps per run (capped at the dimension).
    pub steps: usize,
    /// Standard deviation of the Gaussian put on each node, in eigenvalue units (absolute, not
    /// relative to the spectrum's range). Choose it at least a few grid spacings wide, or the
    /// grid samples the bumps too coarsely.
    pub sigma: f64,
    /// Grid points.
    pub grid: usize,
    /// Seed of the start vectors (one `ChaCha8Rng`, drawn run after run).
    pub seed: u64,
}

impl Default for SlqOptions {
    fn default() -> Self {
        SlqOptions {
            runs: 10,
            steps: 90,
            sigma: 1e-3,
            grid: 1000,
            seed: 0,
        }
    }
}

/// An estimated spectral density of `H`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Density {
    /// Quadrature nodes (Ritz values) of every run, ascending.
    pub nodes: Vec<f64>,
    /// Weight of each node: the squared first component of its tridiagonal eigenvector over
    /// `runs`; they sum to 1.
    pub weights: Vec<f64>,
    /// `grid` equally spaced points over `[min node − 5σ, max node + 5σ]` (see [`PAD_SIGMAS`]).
    pub grid: Vec<f64>,
    /// `Σ_k w_k N(t; node_k, σ²)` at each grid point, scaled so that its trapezoid integral over
    /// the grid is exactly 1 (the scale differs from 1 by the Gaussian mass outside the grid,
    /// under 6e-7, plus the trapezoid error, which is small when `sigma` spans several grid
    /// spacings).
    pub density: Vec<f64>,
    pub sigma: f64,
    pub runs: usize,
    /// Lanczos steps per run actually requested (capped at the dimension); a run that meets an
    /// invariant subspace stops earlier and contributes fewer nodes.
    pub steps: usize,
    /// Hessian-vector products spent.
    pub hvps: usize,
}

impl Density {
    /// `Σ w · node`: an estimate of `tr(H) / n` (the mean eigenvalue).
    ///
    /// It equals the mean over runs of `qᵀ H q`, i.e. Hutchinson's estimator with `runs` samples.
    pub fn mean(&self) -> f64 {
        self.nodes
            .iter()
            .zip(&self.weights)
            .map(|(x, w)| x * w)
            .sum()
    }

    /// The trapezoid integral of `density` over `grid` (1 up to rounding).
    pub fn integral(&self) -> f64 {
        trapezoid(&self.grid, &self.density)
    }
}

fn trapezoid(x: &[f64], y: &[f64]) -> f64 {
    x.windows(2)
        .zip(y.windows(2))
        .map(|(x, y)| 0.5 * (y[0] + y[1]) * (x[1] - x[0]))
        .sum()
}

/// The spectral density of `H` by stochastic Lanczos quadrature: `runs` Lanczos runs (full
/// reorthogonalisation) of `steps` steps from seeded Rademacher starts, nodes broadened by
/// Gaussians of width `sigma` onto `grid` points.
///
/// Cost: `runs × steps` HVPs. Memory: one run's basis, `steps × n` f64.
///
/// # Panics
/// When `runs == 0`, `steps == 0`, `grid < 2`, or `sigma` is not positive and finite (the
/// configuration layer validates these).
pub fn slq<H: Hvp + ?Sized>(
    h: &mut H,
    opts: &SlqOptions,
    cancel: &AtomicBool,
) -> Result<Density, CurvatureError> {
    assert!(opts.runs > 0, "slq: runs must be at least 1");
    assert!(opts.steps > 0, "slq: steps must be at least 1");
    assert!(opts.grid >= 2, "slq: the grid needs at least 2 points");
    assert!(
        opts.sigma > 0.0 && opts.sigma.is_finite(),
        "slq: sigma must be positive and finite, got {}",
        opts.sigma
    );
    let n = h.dim();
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut pairs: Vec<(f64, f64)> = Vec::new();
    let mut hvps = 0;
    let run_weight = 1.0 / opts.runs as f64;
    for _ in 0..opts.runs {
        let start = rademacher(&mut rng, n);
        let tri = krylov(h, &start, opts.steps, cancel, |_, _| Ok(false))?;
        hvps += tri.hvps;
        let (values, vectors) = tridiagonal_eigen(&tri.alpha, &tri.beta)?;
        for (value, vector) in values.into_iter().zip(vectors) {
            pairs.push((value, vector[0] * vector[0] * run_weight));
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (nodes, weights): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();

    let sigma = opts.sigma;
    let (lo, hi) = match (nodes.first(), nodes.last()) {
        (Some(&a), Some(&b)) => (a - PAD_SIGMAS * sigma, b + PAD_SIGMAS * sigma),
        _ => (-PAD_SIGMAS * sigma, PAD_SIGMAS * sigma),
    };
    let dx = (hi - lo) / (opts.grid - 1) as f64;
    let grid: Vec<f64> = (0..opts.grid).map(|i| lo + dx * i as f64).collect();
    let norm = 1.0 / (sigma * (2.0 * std::f64::consts::PI).sqrt());
    let mut density: Vec<f64> = grid
        .iter()
        .map(|t| {
            nodes
                .iter()
                .zip(&weights)
                .map(|(x, w)| w * norm * (-0.5 * ((t - x) / sigma).powi(2)).exp())
                .sum()
        })
        .collect();
    let integral = trapezoid(&grid, &density);
    if integral > 0.0 && integral.is_finite() {
        density.iter_mut().for_each(|d| *d /= integral);
    }
    Ok(Density {
        nodes,
        weights,
        grid,
        density,
        sigma,
        runs: opts.runs,
        steps: opts.steps.min(n),
        hvps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::curvature::DiagHvp as Diag;

    #[test]
    fn two_point_spectrum_has_exact_weights() {
        // Half the eigenvalues at −1, half at 2: the Krylov space closes after two steps, and
        // with a Rademacher start each node carries exactly weight 1/2.
        let d: Vec<f64> = (0..40)
            .map(|i| if i % 2 == 0 { -1.0 } else { 2.0 })
            .collect();
        let opts = SlqOptions {
            runs: 3,
            steps: 10,
            sigma: 0.1,
            grid: 200,
            seed: 4,
        };
        let dens = slq(&mut Diag(d), &opts, &AtomicBool::new(false)).unwrap();
        assert_eq!(dens.nodes.len(), 6);
        assert_eq!(dens.hvps, 6);
        for (x, w) in dens.nodes.iter().zip(&dens.weights) {
            assert!((x.abs() - if *x < 0.0 { 1.0 } else { 2.0 }).abs() < 1e-12);
            assert!((w - 1.0 / 6.0).abs() < 1e-12);
        }
        assert!((dens.mean() - 0.5).abs() < 1e-12);
        assert!((dens.integral() - 1.0).abs() < 1e-12);
    }
}
