//! Curvature of the loss: Hessian-vector products by central differences of f64 gradients,
//! the dense Hessian, and statistics of its spectrum.
//!
//! dfdx has no second-order autodiff, so `H v = (g(θ + h v) − g(θ − h v)) / 2h`; the step and
//! its error are discussed in docs/method.md. For the MLP, `hessian.products = "exact"` takes
//! the products from `model::ExactHvp` instead (forward-over-reverse written out by hand:
//! rounding error only; [`dense_hessian_exact`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use crate::config::FdScheme;
use crate::model::{ExactHvp, Network, PreparedBatch};
use crate::stats::Bins;

pub mod basis;
pub mod hutchinson;
pub mod lanczos;
mod mechanism;
pub mod slq;
mod spectrum;
pub mod tridiagonal;

pub use basis::{dense_basis, DensePath, BASIS_TOL, MAX_SOLVES};
pub use mechanism::{mechanism, span_share, BasisSource, EigenBasis, Mechanism};
pub use spectrum::{
    choose_method, dense_spectrum, lanczos_spectrum, no_progress, products, products_for, spectrum,
    LayerSpectrum, Spectrum, SpectrumMethod, SpectrumOptions, SpectrumOutput, SpectrumPhase,
    SpectrumProgress, Stability, StatSources, KINK_ASYMMETRY,
};

/// Anything that returns the loss and writes its gradient at `theta`.
pub trait LossGrad {
    fn dim(&self) -> usize;
    fn loss_grad(&self, theta: &[f64], grad: &mut [f64]) -> f64;

    /// The losses and gradients at `thetas.len() / dim` parameter vectors laid end to end
    /// (`grads` the same). An oracle that can batch them overrides this; by default they
    /// are computed one by one.
    fn loss_grad_block(&self, thetas: &[f64], grads: &mut [f64]) -> Vec<f64> {
        let n = self.dim();
        thetas
            .chunks(n)
            .zip(grads.chunks_mut(n))
            .map(|(t, g)| self.loss_grad(t, g))
            .collect()
    }

    /// How many gradients [`LossGrad::loss_grad_block`] should be given at once.
    fn block_size(&self) -> usize {
        1
    }
}

/// The mean loss of a network over a fixed set of examples.
pub struct BatchLoss<'a> {
    pub net: &'a Network,
    pub batch: &'a PreparedBatch,
}

impl LossGrad for BatchLoss<'_> {
    fn dim(&self) -> usize {
        self.net.dim()
    }

    fn loss_grad(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        self.net.loss_grad(theta, self.batch, grad).loss
    }

    fn loss_grad_block(&self, thetas: &[f64], grads: &mut [f64]) -> Vec<f64> {
        self.net.loss_grad_block(thetas, self.batch, grads)
    }

    fn block_size(&self) -> usize {
        self.net.gradient_block(self.batch.len())
    }
}

/// A Hessian-vector product oracle.
pub trait Hvp {
    fn dim(&self) -> usize;
    /// `out = H v`.
    fn hvp(&mut self, v: &[f64], out: &mut [f64]);
    /// `H v` for each of the `vs.len() / dim` vectors laid end to end (`outs` the same): one
    /// after another by default; an oracle that can batch them ([`FdHvp`] over a network's
    /// block gradient) overrides it. Each product is the one [`Hvp::hvp`] gives, up to the
    /// rounding of a batched pass.
    fn hvp_block(&mut self, vs: &[f64], outs: &mut [f64]) {
        one_by_one(self, vs, outs);
    }
    /// How many products [`Hvp::hvp_block`] should be given at once.
    fn block_size(&self) -> usize {
        1
    }
    /// Gradient evaluations spent so far (0 for oracles that use none).
    fn gradient_evals(&self) -> usize {
        0
    }
}

/// The MLP's exact products (`model::exact`): no gradient evaluations, no step.
impl Hvp for ExactHvp {
    fn dim(&self) -> usize {
        ExactHvp::dim(self)
    }
    fn hvp(&mut self, v: &[f64], out: &mut [f64]) {
        ExactHvp::hvp(self, v, out)
    }
    fn hvp_block(&mut self, vs: &[f64], outs: &mut [f64]) {
        ExactHvp::hvp_block(self, vs, outs)
    }
    fn block_size(&self) -> usize {
        ExactHvp::block_size(self)
    }
}

/// [`Hvp::hvp_block`] as single products.
fn one_by_one<H: Hvp + ?Sized>(h: &mut H, vs: &[f64], outs: &mut [f64]) {
    let n = h.dim();
    if n == 0 {
        return;
    }
    for (v, out) in vs.chunks(n).zip(outs.chunks_mut(n)) {
        h.hvp(v, out);
    }
}

/// A borrowed operator is an operator (decorators can wrap `&mut H`).
impl<H: Hvp + ?Sized> Hvp for &mut H {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn hvp(&mut self, v: &[f64], out: &mut [f64]) {
        (**self).hvp(v, out)
    }
    fn hvp_block(&mut self, vs: &[f64], outs: &mut [f64]) {
        (**self).hvp_block(vs, outs)
    }
    fn block_size(&self) -> usize {
        (**self).block_size()
    }
    fn gradient_evals(&self) -> usize {
        (**self).gradient_evals()
    }
}

/// The central-difference step for direction `v`: `fd_step · max(1, ‖θ‖∞) / ‖v‖∞`, so the
/// largest coordinate of the perturbation is `fd_step` relative to the weights' scale.
pub fn fd_step_for(theta: &[f64], v: &[f64], fd_step: f64) -> f64 {
    let scale = theta.iter().fold(1.0f64, |m, x| m.max(x.abs()));
    let vmax = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if vmax == 0.0 {
        0.0
    } else {
        fd_step * scale / vmax
    }
}

/// `H = diag(d)`: an exact oracle for the solvers' unit tests.
#[cfg(test)]
pub(crate) struct DiagHvp(pub Vec<f64>);

#[cfg(test)]
impl Hvp for DiagHvp {
    fn dim(&self) -> usize {
        self.0.len()
    }
    fn hvp(&mut self, v: &[f64], out: &mut [f64]) {
        for ((o, d), x) in out.iter_mut().zip(&self.0).zip(v) {
            *o = d * x;
        }
    }
}

/// `H v` at `theta` by finite differences of the gradient: central by default, forward with
/// [`FdHvp::forward`].
pub struct FdHvp<'a, L: LossGrad> {
    loss: &'a L,
    theta: Vec<f64>,
    fd_step: f64,
    scheme: FdScheme,
    evals: usize,
    plus: Vec<f64>,
    minus: Vec<f64>,
    g_minus: Vec<f64>,
    /// `g(theta)` for the forward scheme, computed at the first product.
    g0: Option<Vec<f64>>,
}

impl<'a, L: LossGrad> FdHvp<'a, L> {
    /// Central differences: `(g(θ + hv) − g(θ − hv)) / 2h`, two gradients per product.
    pub fn new(loss: &'a L, theta: &[f64], fd_step: f64) -> Self {
        Self::with_scheme(loss, theta, fd_step, FdScheme::Central)
    }

    /// Forward differences: `(g(θ + hv) − g(θ)) / h`, one gradient per product after one at
    /// `θ`; use a step near `sqrt(ε)` (1e-8).
    pub fn forward(loss: &'a L, theta: &[f64], fd_step: f64) -> Self {
        Self::with_scheme(loss, theta, fd_step, FdScheme::Forward)
    }

    /// The scheme and step a config asks for.
    pub fn for_config(loss: &'a L, theta: &[f64], cfg: &crate::config::HessianConfig) -> Self {
        Self::with_scheme(loss, theta, cfg.hvp_step(), cfg.fd_scheme)
    }

    fn with_scheme(loss: &'a L, theta: &[f64], fd_step: f64, scheme: FdScheme) -> Self {
        let n = theta.len();
        FdHvp {
            loss,
            theta: theta.to_vec(),
            fd_step,
            scheme,
            evals: 0,
            plus: vec![0.0; n],
            minus: vec![0.0; n],
            g_minus: vec![0.0; n],
            g0: None,
        }
    }
}

impl<L: LossGrad> Hvp for FdHvp<'_, L> {
    fn dim(&self) -> usize {
        self.theta.len()
    }

    /// One product, its gradients one by one: a block of two measured slower on the CPU
    /// than two gradients (a Lanczos run of the article's models 7 % slower), so only
    /// [`Hvp::hvp_block`] batches.
    fn hvp(&mut self, v: &[f64], out: &mut [f64]) {
        let h = fd_step_for(&self.theta, v, self.fd_step);
        if h == 0.0 {
            out.iter_mut().for_each(|o| *o = 0.0);
            return;
        }
        for (p, (t, vi)) in self.plus.iter_mut().zip(self.theta.iter().zip(v)) {
            *p = t + h * vi;
        }
        match self.scheme {
            FdScheme::Central => {
                for (m, (t, vi)) in self.minus.iter_mut().zip(self.theta.iter().zip(v)) {
                    *m = t - h * vi;
                }
                self.loss.loss_grad(&self.plus, out);
                self.loss.loss_grad(&self.minus, &mut self.g_minus);
                self.evals += 2;
                for (o, m) in out.iter_mut().zip(&self.g_minus) {
                    *o = (*o - m) / (2.0 * h);
                }
            }
            FdScheme::Forward => {
                if self.g0.is_none() {
                    let mut g0 = vec![0.0; self.theta.len()];
                    self.loss.loss_grad(&self.theta, &mut g0);
                    self.evals += 1;
                    self.g0 = Some(g0);
                }
                let g0 = self.g0.as_deref().unwrap_or_default();
                self.loss.loss_grad(&self.plus, out);
                self.evals += 1;
                for (o, g) in out.iter_mut().zip(g0) {
                    *o = (*o - g) / h;
                }
            }
        }
    }

    /// The perturbed points of every product in one [`LossGrad::loss_grad_block`] call:
    /// `θ + h_i v_i, θ − h_i v_i` per product (central), `θ + h_i v_i` (forward).
    ///
    /// Central differences only: a forward difference divides by `h ~ 1e-8`, so its `g(θ)`
    /// and `g(θ + hv)` must come from the same kind of pass (a block and a single pass may
    /// round differently by `1e-12`, which `/h` would make `1e-4`); it goes one by one.
    fn hvp_block(&mut self, vs: &[f64], outs: &mut [f64]) {
        let n = self.theta.len();
        let central = self.scheme == FdScheme::Central;
        if !central || vs.len() <= n || self.loss.block_size() < 2 {
            return one_by_one(self, vs, outs);
        }
        let steps: Vec<f64> = vs
            .chunks(n)
            .map(|v| fd_step_for(&self.theta, v, self.fd_step))
            .collect();
        let mut points = Vec::with_capacity(2 * vs.len());
        for (v, &h) in vs.chunks(n).zip(&steps).filter(|(_, &h)| h != 0.0) {
            points.extend(self.theta.iter().zip(v).map(|(t, x)| t + h * x));
            points.extend(self.theta.iter().zip(v).map(|(t, x)| t - h * x));
        }
        let mut grads = vec![0.0; points.len()];
        if !points.is_empty() {
            self.loss.loss_grad_block(&points, &mut grads);
            self.evals += points.len() / n;
        }
        let mut at = grads.chunks(n);
        for (out, &h) in outs.chunks_mut(n).zip(&steps) {
            if h == 0.0 {
                out.iter_mut().for_each(|o| *o = 0.0);
                continue;
            }
            let plus = at.next().unwrap_or_default();
            let minus = at.next().unwrap_or_default();
            for ((o, p), m) in out.iter_mut().zip(plus).zip(minus) {
                *o = (p - m) / (2.0 * h);
            }
        }
    }

    /// Products per block (central differences): as many as the network's gradient block
    /// holds pairs of points, at most [`MAX_HVP_BLOCK`]; 1 for forward differences.
    fn block_size(&self) -> usize {
        match self.scheme {
            FdScheme::Central => (self.loss.block_size() / 2).clamp(1, MAX_HVP_BLOCK),
            FdScheme::Forward => 1,
        }
    }

    fn gradient_evals(&self) -> usize {
        self.evals
    }
}

/// Most products [`FdHvp`] takes per block (more buys nothing measurable on the CPU; the
/// dense Hessian's own blocks are sized by the network).
pub const MAX_HVP_BLOCK: usize = 8;

/// A dense symmetric matrix, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseHessian {
    pub n: usize,
    pub data: Vec<f64>,
    /// `max |H − Hᵀ| / max |H|` before symmetrising: the finite-difference error made visible.
    pub asymmetry: f64,
    pub gradient_evals: usize,
}

impl DenseHessian {
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.n + j]
    }

    /// All eigenvalues, ascending: faer's Householder tridiagonalisation, then the root-free
    /// QL/QR iteration of [`tridiagonal`] (the same path the eigenvector basis takes, so the
    /// values agree bit for bit whether or not a basis is asked for).
    pub fn eigenvalues(&self) -> Result<Vec<f64>, CurvatureError> {
        basis::Tridiagonalised::new(self).eigenvalues()
    }

    /// `T` of `H = Q T Qᵀ` as the eigenvalues take it: its diagonal and subdiagonal (the
    /// benches time the two halves of the eigen-solve apart with it).
    pub fn tridiagonal(&self) -> (Vec<f64>, Vec<f64>) {
        basis::Tridiagonalised::new(self).tridiagonal()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CurvatureError {
    #[error(
        "the dense Hessian of {params} parameters exceeds hessian.dense_limit = {limit}: \
         it would take {params} x {params} x 8 bytes and {cost}. \
         Set hessian.method = \"lanczos\" (or \"auto\") for top/bottom eigenvalues, the \
         spectral density and trace/variance estimates, or raise hessian.dense_limit"
    )]
    TooLarge {
        params: usize,
        limit: usize,
        /// What its columns would cost: gradient evaluations or exact products.
        cost: String,
    },
    #[error("the eigen solver failed: {0}")]
    Eigen(String),
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Config(String),
}

/// Loss oracles the dense Hessian may call from several threads at once. A CUDA build's
/// tensors hold a device stream that is not `Sync`, so there the columns run one by one
/// (the GPU parallelises each gradient instead).
#[cfg(not(feature = "cuda"))]
pub trait Shared: Sync {}
#[cfg(not(feature = "cuda"))]
impl<T: Sync + ?Sized> Shared for T {}
#[cfg(feature = "cuda")]
pub trait Shared {}
#[cfg(feature = "cuda")]
impl<T: ?Sized> Shared for T {}

/// Every column `H e_i` by central differences, then `(H + Hᵀ) / 2`. The columns go in
/// blocks of `b`: one [`LossGrad::loss_grad_block`] call takes the `2b` perturbed vectors
/// `θ ± h e_i` of a block (`b` from [`LossGrad::block_size`], capped so every thread gets a
/// few blocks), and the blocks run in parallel on the CPU. `progress` is called with the
/// number of finished columns; `cancel` stops early.
pub fn dense_hessian<L: LossGrad + Shared>(
    loss: &L,
    theta: &[f64],
    fd_step: f64,
    cancel: &AtomicBool,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<DenseHessian, CurvatureError> {
    let n = theta.len();
    let done = AtomicUsize::new(0);
    let h = fd_step_for(theta, &[1.0], fd_step);
    #[cfg(not(feature = "cuda"))]
    let threads = rayon::current_num_threads();
    #[cfg(feature = "cuda")]
    let threads = 1;
    let b = dense_block(loss.block_size(), n, threads);
    // columns `first..first + b` of one block, each as `n` values
    let block = |first: usize| -> Option<Vec<Vec<f64>>> {
        if cancel.load(Ordering::Relaxed) {
            return None;
        }
        let cols = b.min(n - first);
        // 2·cols vectors: θ + h e_i for each column, then θ − h e_i for each
        let mut thetas = Vec::with_capacity(2 * cols * n);
        for sign in [1.0, -1.0] {
            for i in first..first + cols {
                let start = thetas.len();
                thetas.extend_from_slice(theta);
                thetas[start + i] = theta[i] + sign * h;
            }
        }
        let mut grads = vec![0.0; thetas.len()];
        loss.loss_grad_block(&thetas, &mut grads);
        let (plus, minus) = grads.split_at(cols * n);
        let out = plus
            .chunks(n)
            .zip(minus.chunks(n))
            .map(|(p, m)| p.iter().zip(m).map(|(p, m)| (p - m) / (2.0 * h)).collect())
            .collect();
        progress(done.fetch_add(cols, Ordering::Relaxed) + cols);
        Some(out)
    };
    let firsts: Vec<usize> = (0..n).step_by(b.max(1)).collect();
    #[cfg(not(feature = "cuda"))]
    let blocks: Vec<Option<Vec<Vec<f64>>>> = {
        use rayon::prelude::*;
        firsts.into_par_iter().map(block).collect()
    };
    #[cfg(feature = "cuda")]
    let blocks: Vec<Option<Vec<Vec<f64>>>> = firsts.into_iter().map(block).collect();
    // column j of the unsymmetrised matrix stored as row j (contiguous writes)
    let mut data = Vec::with_capacity(n * n);
    for blk in blocks {
        for col in blk.ok_or(CurvatureError::Cancelled)? {
            data.extend(col);
        }
    }
    Ok(symmetrised(n, data, 2 * n))
}

/// Every column `H e_i` from exact products ([`ExactHvp`], the MLP's forward-over-reverse
/// derivatives), in blocks of [`ExactHvp::block_size`] columns run in parallel, then
/// `(H + Hᵀ) / 2` as [`dense_hessian`] does. Its asymmetry is rounding only (~1e-16).
pub fn dense_hessian_exact(
    exact: &ExactHvp,
    cancel: &AtomicBool,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<DenseHessian, CurvatureError> {
    let n = exact.dim();
    let done = AtomicUsize::new(0);
    #[cfg(not(feature = "cuda"))]
    let threads = rayon::current_num_threads();
    #[cfg(feature = "cuda")]
    let threads = 1;
    let b = exact
        .block_size()
        .min(n.div_ceil(4 * threads.max(1)))
        .max(1);
    let block = |first: usize| -> Option<Vec<f64>> {
        if cancel.load(Ordering::Relaxed) {
            return None;
        }
        let cols = b.min(n - first);
        let mut eye = vec![0.0; cols * n];
        for c in 0..cols {
            eye[c * n + first + c] = 1.0;
        }
        let mut out = vec![0.0; cols * n];
        exact.hvp_block(&eye, &mut out);
        progress(done.fetch_add(cols, Ordering::Relaxed) + cols);
        Some(out)
    };
    let firsts: Vec<usize> = (0..n).step_by(b).collect();
    #[cfg(not(feature = "cuda"))]
    let blocks: Vec<Option<Vec<f64>>> = {
        use rayon::prelude::*;
        firsts.into_par_iter().map(block).collect()
    };
    #[cfg(feature = "cuda")]
    let blocks: Vec<Option<Vec<f64>>> = firsts.into_iter().map(block).collect();
    let mut data = Vec::with_capacity(n * n);
    for blk in blocks {
        data.extend(blk.ok_or(CurvatureError::Cancelled)?);
    }
    Ok(symmetrised(n, data, 0))
}

/// The dense Hessian from its unsymmetrised columns, column `j` stored as row `j` of `data`:
/// `(H + Hᵀ) / 2` and the asymmetry `max |H − Hᵀ| / max |H|` the columns had.
fn symmetrised(n: usize, mut data: Vec<f64>, gradient_evals: usize) -> DenseHessian {
    // Each pair (a, b) is read either way round, and 0.5 (a + b), |a − b| and the maxima do
    // not depend on the order, so H comes out the same bit for bit whatever the walk; the
    // walk goes tile by tile so the transposed reads stay in cache (row by row, every
    // `data[j * n + i]` was a cache miss: an eighth of the exact dense Hessian's time).
    // The maxima run in several accumulators: one `max` chain waits on the last (NaN-aware
    // `max` is exact and ignores NaN in any order, so the result is the same).
    const TILE: usize = 32;
    const LANES: usize = 8;
    let mut asym = [0.0f64; LANES];
    for i0 in (0..n).step_by(TILE) {
        for j0 in (0..=i0).step_by(TILE) {
            for i in i0..(i0 + TILE).min(n) {
                for j in j0..(j0 + TILE).min(i) {
                    let (a, b) = (data[i * n + j], data[j * n + i]);
                    asym[j % LANES] = asym[j % LANES].max((a - b).abs());
                    let s = 0.5 * (a + b);
                    data[i * n + j] = s;
                    data[j * n + i] = s;
                }
            }
        }
    }
    let max_asym = asym.iter().fold(0.0f64, |m, x| m.max(*x));
    let mut lanes = [0.0f64; LANES];
    let mut chunks = data.chunks_exact(LANES);
    for c in &mut chunks {
        for (m, x) in lanes.iter_mut().zip(c) {
            *m = m.max(x.abs());
        }
    }
    let max_abs = chunks
        .remainder()
        .iter()
        .fold(lanes.iter().fold(0.0f64, |m, x| m.max(*x)), |m, x| {
            m.max(x.abs())
        });
    DenseHessian {
        n,
        data,
        asymmetry: if max_abs > 0.0 {
            max_asym / max_abs
        } else {
            0.0
        },
        gradient_evals,
    }
}

/// Columns per block of the dense Hessian: half the oracle's block (each column takes two
/// gradients), and small enough that each of `threads` threads gets about four blocks, so
/// the last block does not leave a thread idle for long.
fn dense_block(oracle_block: usize, n: usize, threads: usize) -> usize {
    let share = n.div_ceil(4 * threads.max(1));
    (oracle_block / 2).min(share).max(1)
}

/// A resolved eigenvalue must exceed the counting tolerance by this factor for the condition
/// number to be reported: the band `(tol, RESOLVED_GAP · tol]` must hold no eigenvalue.
///
/// Why 10: the noise floor `asymmetry · max|λ|` is itself an estimate of the perturbation
/// `‖E‖₂` of the finite-difference matrix (one sample of its largest antisymmetric entry). By
/// Weyl, every eigenvalue of `H + E` is within `‖E‖₂` of one of `H`, so with the band empty the
/// smallest resolved eigenvalue is known to about 10% (the condition to about 11%) while the
/// floor is right, and an underestimate of the floor by up to 10× still cannot pass a noise
/// eigenvalue off as the smallest resolved one. Noise eigenvalues spread over decades (on the
/// article model from 1e-20 up to 5e-12 under a floor of 6e-11), so a floor that is too low
/// puts some of them into the band, and the condition is then reported as not resolved.
pub const RESOLVED_GAP: f64 = 10.0;

/// Summary statistics of a spectrum.
///
/// The counts and the condition are taken at `zero_tol`: the rank tolerance `n · ε · max|λ|`
/// of an exact matrix, raised to the finite-difference noise floor when the spectrum has one
/// (docs/method.md, "Noise floor").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, from = "StoredStats")]
pub struct SpectrumStats {
    pub n: usize,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// Population variance `(1/n) Σ (λ_i − mean)²`.
    pub variance: f64,
    pub trace: f64,
    /// Eigenvalues below `-zero_tol` (Lanczos: among the lowest Ritz values, those below
    /// `-max(zero_tol, residual)`: a lower bound).
    pub negatives: usize,
    /// Eigenvalues with `|λ| <= zero_tol`; `None` when not measured (Lanczos). Absent from the
    /// TOML when `None`.
    pub near_zero: Option<usize>,
    /// The tolerance the counts are taken at: `max(n · ε · max|λ|, noise_floor)` with the
    /// spectrum's finite-difference noise floor where one is measured (dense), `n · ε · max|λ|`
    /// otherwise. Records written before the noise floor was used took `n · ε · max|λ|`.
    pub zero_tol: f64,
    /// `max|λ| / min{|λ| : |λ| > zero_tol}` when resolved: no eigenvalue in
    /// `(zero_tol, RESOLVED_GAP · zero_tol]`. `None` (absent from the TOML) when not resolved
    /// or not measured (`near_zero` is `None` too then); records that stored `inf` load as
    /// `None`.
    pub condition: Option<f64>,
}

/// [`SpectrumStats`] as the TOML has it: `near_zero` and `condition` may be absent, and older
/// records wrote `condition = inf` (every eigenvalue near zero, or Lanczos: not measured) and
/// Lanczos records `near_zero = 0` beside it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredStats {
    n: usize,
    min: f64,
    max: f64,
    mean: f64,
    variance: f64,
    trace: f64,
    negatives: usize,
    #[serde(default)]
    near_zero: Option<usize>,
    zero_tol: f64,
    #[serde(default)]
    condition: Option<f64>,
}

impl From<StoredStats> for SpectrumStats {
    fn from(s: StoredStats) -> SpectrumStats {
        let condition = s.condition.filter(|c| c.is_finite());
        // an older Lanczos record: `near_zero = 0` with `condition = inf` meant "not measured"
        // (a dense spectrum with an infinite condition has every eigenvalue near zero)
        let legacy_unmeasured =
            s.near_zero == Some(0) && s.n > 0 && s.condition.is_some() && condition.is_none();
        SpectrumStats {
            n: s.n,
            min: s.min,
            max: s.max,
            mean: s.mean,
            variance: s.variance,
            trace: s.trace,
            negatives: s.negatives,
            near_zero: if legacy_unmeasured { None } else { s.near_zero },
            zero_tol: s.zero_tol,
            condition,
        }
    }
}

impl SpectrumStats {
    /// Statistics of an exactly known spectrum: counts at `n · ε · max|λ|`.
    pub fn from_eigenvalues(ev: &[f64]) -> SpectrumStats {
        Self::with_noise_floor(ev, 0.0)
    }

    /// Statistics of a complete spectrum whose eigenvalues are known only to within
    /// `noise_floor` (absolute): counts and condition at `zero_tol = max(n · ε · max|λ|,
    /// noise_floor)`, the condition only when resolved (see [`RESOLVED_GAP`]).
    pub fn with_noise_floor(ev: &[f64], noise_floor: f64) -> SpectrumStats {
        let n = ev.len();
        let nf = n.max(1) as f64;
        let min = ev.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = ev.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let trace: f64 = ev.iter().sum();
        let mean = trace / nf;
        let variance = ev.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / nf;
        let amax = ev.iter().fold(0.0f64, |m, l| m.max(l.abs()));
        let zero_tol = (nf * f64::EPSILON * amax).max(noise_floor);
        let negatives = ev.iter().filter(|l| **l < -zero_tol).count();
        let near_zero = ev.iter().filter(|l| l.abs() <= zero_tol).count();
        let smallest_resolved = ev
            .iter()
            .map(|l| l.abs())
            .filter(|a| *a > zero_tol)
            .fold(f64::INFINITY, f64::min);
        let condition = (smallest_resolved.is_finite()
            && smallest_resolved > RESOLVED_GAP * zero_tol)
            .then(|| amax / smallest_resolved);
        SpectrumStats {
            n,
            min,
            max,
            mean,
            variance,
            trace,
            negatives,
            near_zero: Some(near_zero),
            zero_tol,
            condition,
        }
    }

    /// The condition as `show` and the TUI print it: the number, `not resolved` (measured, but no
    /// gap separates the resolved eigenvalues from the noise), or `not measured` (Lanczos).
    pub fn condition_text(&self, num: impl Fn(f64) -> String) -> String {
        match (self.condition, self.near_zero) {
            (Some(c), _) => num(c),
            (None, Some(_)) => "not resolved".into(),
            (None, None) => "not measured".into(),
        }
    }
}

/// Counts of eigenvalues in equal-width bins over `[lo, hi]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Histogram {
    pub lo: f64,
    pub hi: f64,
    pub counts: Vec<u64>,
}

impl Histogram {
    pub fn new(values: &[f64], lo: f64, hi: f64, bins: usize) -> Histogram {
        Histogram {
            lo,
            hi,
            counts: Bins::new(lo, hi, bins).tally(values),
        }
    }

    /// The bins its counts are over.
    pub fn bins(&self) -> Bins {
        Bins::new(self.lo, self.hi, self.counts.len())
    }

    /// Its counts moved onto other bins, each bin's count going to the bin holding its centre.
    pub fn rebin(&self, to: Bins) -> Vec<u64> {
        let from = self.bins();
        to.weigh(
            self.counts
                .iter()
                .enumerate()
                .map(|(i, &c)| (from.centre(i), c)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_moves_each_bin_to_the_bin_of_its_centre() {
        let h = Histogram::new(&[0.1, 0.2, 0.3, 1.9, 1.8, 1.7, 1.6, 1.9], 0.0, 2.0, 4);
        assert_eq!(h.counts, vec![3, 0, 0, 5]);
        // centres 0.25 and 1.75 on [-2, 2] in 4 bins
        assert_eq!(h.rebin(Bins::new(-2.0, 2.0, 4)), vec![0, 0, 3, 5]);
        assert_eq!(h.rebin(h.bins()), h.counts);
    }
}
