//! The spectrum of one model at any size: dense up to a limit, Lanczos + SLQ + Hutchinson
//! above it; per-layer blocks, a second-batch stability check and the top/bottom eigenvector
//! basis (dense eigenvectors or Ritz vectors, [`SpectrumOptions::basis`]) on request.

use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

use super::basis::dense_basis;
use super::hutchinson::{hutchinson, Hutchinson, HutchinsonOptions};
use super::lanczos::{lanczos, lanczos_with_basis, LanczosOptions, LanczosResult};
use super::mechanism::EigenBasis;
use super::slq::{slq, Density, SlqOptions};
use super::{
    dense_hessian, dense_hessian_exact, BatchLoss, CurvatureError, DenseHessian, FdHvp, Histogram,
    Hvp, LossGrad, Shared, SpectrumStats,
};
use crate::config::{HessianConfig, HessianMethod, ModelKind, Products};
use crate::model::{ExactHvp, ModelSpec, Network, PreparedBatch};
use crate::stats::Bins;

/// How a spectrum was measured: what `hessian.method = "auto"` resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpectrumMethod {
    /// Every eigenvalue of the dense Hessian.
    Dense,
    /// Lanczos extremes, Hutchinson moments, the SLQ density.
    Lanczos,
}

impl SpectrumMethod {
    /// `dense` or `lanczos`, as the record writes it.
    pub fn name(self) -> &'static str {
        crate::names::serde_name(&self)
    }
}

impl std::fmt::Display for SpectrumMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// Which method produced which statistic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatSources {
    /// `min`, `max`.
    pub extremes: String,
    /// `mean`, `variance`, `trace`.
    pub moments: String,
    /// `negatives`, `near_zero`, `condition`.
    pub counts: String,
}

/// The spectrum of one layer's diagonal block of the Hessian.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpectrum {
    pub layer: String,
    pub params: usize,
    pub method: SpectrumMethod,
    pub stats: SpectrumStats,
    /// Every eigenvalue of the block, ascending (dense only).
    #[serde(default)]
    pub eigenvalues: Vec<f64>,
    pub lanczos: Option<LanczosResult>,
    pub hutchinson: Option<Hutchinson>,
}

/// The top eigenvalue on the Hessian batch and on a second, disjoint one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stability {
    pub samples: usize,
    pub top_first: f64,
    pub top_second: f64,
    /// `|top_second − top_first| / |top_first|`.
    pub rel_diff: f64,
}

/// The Hessian spectrum of one model, as stored in the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spectrum {
    pub method: SpectrumMethod,
    /// Examples the loss was averaged over.
    pub samples: usize,
    pub params: usize,
    /// The relative finite-difference step used (the dense Hessian's after any kink retry;
    /// the Hessian-vector products' otherwise); 0 with exact products.
    pub fd_step: f64,
    /// How the products were computed (records before this key: finite differences).
    #[serde(default)]
    pub products: Products,
    /// Gradient evaluations spent on this spectrum: two per central Hessian-vector product,
    /// one per forward one (plus one at theta), all kink retries included.
    pub gradient_evals: usize,
    pub sources: StatSources,
    /// Dense: `max |H − Hᵀ| / max |H|` of the finite-difference Hessian before symmetrising.
    pub asymmetry: Option<f64>,
    /// Dense: `asymmetry · max|λ|`, the finite-difference error in absolute terms.
    pub noise_floor: Option<f64>,
    /// Dense: eigenvalues below `-noise_floor`.
    pub negatives_beyond_noise: Option<usize>,
    pub stats: SpectrumStats,
    /// Dense: counts of eigenvalues; Lanczos: the SLQ density's mass per bin times `params`.
    pub histogram: Histogram,
    /// Every eigenvalue, ascending (dense only).
    #[serde(default)]
    pub eigenvalues: Vec<f64>,
    pub lanczos: Option<LanczosResult>,
    pub density: Option<Density>,
    pub hutchinson: Option<Hutchinson>,
    #[serde(default)]
    pub per_layer: Vec<LayerSpectrum>,
    pub stability: Option<Stability>,
}

/// What [`spectrum`] needs besides the model.
pub struct SpectrumOptions<'a> {
    pub cfg: &'a HessianConfig,
    /// Seed of every random probe (the same for both models of a pair).
    pub seed: u64,
    /// Layers as `(name, parameter range)`, for per-layer spectra.
    pub layers: Vec<(String, std::ops::Range<usize>)>,
    /// A second, disjoint batch for the stability check.
    pub check: Option<&'a PreparedBatch>,
    /// Also compute the top-`cfg.top_k` and bottom-`cfg.bottom_k` Hessian eigenvectors into
    /// [`SpectrumOutput::basis`], for the pruning mechanism: dense eigenvectors up to
    /// `dense_limit` (about 1 ms on 35 ms of eigenvalues at 682 parameters, see
    /// [`super::basis`]), Lanczos Ritz vectors above it (no extra Hessian-vector products).
    /// The stored spectrum is the same either way. `false` computes nothing.
    pub basis: bool,
}

/// Which estimator a spectrum is running, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpectrumPhase {
    /// Columns of the dense Hessian.
    Dense,
    Lanczos,
    Hutchinson,
    Slq,
    /// The per-layer blocks.
    Layers,
    /// The top eigenvalue on the second batch.
    Stability,
}

impl SpectrumPhase {
    pub fn name(self) -> &'static str {
        match self {
            SpectrumPhase::Dense => "dense Hessian",
            SpectrumPhase::Lanczos => "Lanczos",
            SpectrumPhase::Hutchinson => "Hutchinson",
            SpectrumPhase::Slq => "SLQ density",
            SpectrumPhase::Layers => "per-layer blocks",
            SpectrumPhase::Stability => "stability check",
        }
    }
}

/// How far a spectrum is: its phase, and the Hessian-vector products (dense: columns) done
/// of at most `total` in that phase (Lanczos and Hutchinson may stop early).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpectrumProgress {
    pub phase: SpectrumPhase,
    pub done: usize,
    pub total: usize,
}

/// A progress callback that wants nothing.
pub fn no_progress(_: SpectrumProgress) {}

/// An HVP that reports every product, in the phase it is in, and counts gradients.
struct Counted<'a, H: Hvp> {
    inner: H,
    phase: SpectrumPhase,
    done: usize,
    total: usize,
    progress: &'a (dyn Fn(SpectrumProgress) + Sync),
}

impl<'a, H: Hvp> Counted<'a, H> {
    fn new(
        inner: H,
        phase: SpectrumPhase,
        total: usize,
        progress: &'a (dyn Fn(SpectrumProgress) + Sync),
    ) -> Self {
        Counted {
            inner,
            phase,
            done: 0,
            total,
            progress,
        }
    }
}

/// An HVP told which estimator uses it next, so its progress can say so.
trait Phased: Hvp {
    fn enter(&mut self, phase: SpectrumPhase, total: usize);
}

impl<H: Hvp> Phased for Counted<'_, H> {
    fn enter(&mut self, phase: SpectrumPhase, total: usize) {
        (self.phase, self.done, self.total) = (phase, 0, total);
    }
}

impl<H: Hvp> Hvp for Counted<'_, H> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn hvp(&mut self, v: &[f64], out: &mut [f64]) {
        self.inner.hvp(v, out);
        self.count(1);
    }
    fn hvp_block(&mut self, vs: &[f64], outs: &mut [f64]) {
        self.inner.hvp_block(vs, outs);
        self.count(vs.len() / self.inner.dim().max(1));
    }
    fn block_size(&self) -> usize {
        self.inner.block_size()
    }
    fn gradient_evals(&self) -> usize {
        self.inner.gradient_evals()
    }
}

impl<H: Hvp> Counted<'_, H> {
    fn count(&mut self, products: usize) {
        self.done += products;
        (self.progress)(SpectrumProgress {
            phase: self.phase,
            done: self.done.min(self.total),
            total: self.total,
        });
    }
}

/// The Hessian restricted to `range`: `v` lives in that block, `out` is that block of `H v`.
struct Restricted<'a, H: Hvp> {
    inner: &'a mut H,
    range: std::ops::Range<usize>,
    full_v: Vec<f64>,
    full_out: Vec<f64>,
}

impl<'a, H: Hvp> Restricted<'a, H> {
    fn new(inner: &'a mut H, range: std::ops::Range<usize>) -> Self {
        let n = inner.dim();
        Restricted {
            inner,
            range,
            full_v: vec![0.0; n],
            full_out: vec![0.0; n],
        }
    }
}

/// The blocks report as one phase, [`SpectrumPhase::Layers`], set by the caller.
impl<H: Hvp> Phased for Restricted<'_, H> {
    fn enter(&mut self, _: SpectrumPhase, _: usize) {}
}

impl<H: Hvp> Hvp for Restricted<'_, H> {
    fn dim(&self) -> usize {
        self.range.len()
    }
    fn hvp(&mut self, v: &[f64], out: &mut [f64]) {
        self.full_v[self.range.clone()].copy_from_slice(v);
        self.inner.hvp(&self.full_v, &mut self.full_out);
        out.copy_from_slice(&self.full_out[self.range.clone()]);
    }
    fn hvp_block(&mut self, vs: &[f64], outs: &mut [f64]) {
        let (n, r) = (self.inner.dim(), self.range.clone());
        let k = vs.len() / r.len().max(1);
        let mut full = vec![0.0; k * n];
        for (f, v) in full.chunks_mut(n).zip(vs.chunks(r.len())) {
            f[r.clone()].copy_from_slice(v);
        }
        let mut full_out = vec![0.0; k * n];
        self.inner.hvp_block(&full, &mut full_out);
        for (o, f) in outs.chunks_mut(r.len()).zip(full_out.chunks(n)) {
            o.copy_from_slice(&f[r.clone()]);
        }
    }
    fn block_size(&self) -> usize {
        self.inner.block_size()
    }
    fn gradient_evals(&self) -> usize {
        self.inner.gradient_evals()
    }
}

/// `hessian.products` resolved for a model: `auto` is exact where the model has exact
/// products (the MLP), finite differences where it does not (the transformer).
pub fn products_for(cfg: &HessianConfig, spec: &ModelSpec) -> Products {
    cfg.products_for(ModelKind::of(spec))
}

/// Which method `cfg` picks for `n` parameters (`products`: what its columns would cost, for
/// the refusal's message).
pub fn choose_method(
    cfg: &HessianConfig,
    n: usize,
    products: Products,
) -> Result<HessianMethod, CurvatureError> {
    match cfg.method {
        HessianMethod::Auto if n <= cfg.dense_limit => Ok(HessianMethod::Dense),
        HessianMethod::Auto => Ok(HessianMethod::Lanczos),
        HessianMethod::Dense if n > cfg.dense_limit => Err(CurvatureError::TooLarge {
            params: n,
            limit: cfg.dense_limit,
            cost: match products {
                Products::FiniteDifferences => format!("{} gradient evaluations", 2 * n),
                Products::Exact => format!("{n} exact Hessian-vector products"),
            },
        }),
        m => Ok(m),
    }
}

fn seeds(seed: u64) -> (u64, u64, u64) {
    // independent probe streams for the three estimators, the same for both models
    let s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (s ^ 1, s ^ 2, s ^ 3)
}

/// A spectrum, the exact Hessian diagonal when the dense method produced it, and the
/// eigenvector basis when [`SpectrumOptions::basis`] asked for it.
#[derive(Debug, Clone)]
pub struct SpectrumOutput {
    pub spectrum: Spectrum,
    pub diagonal: Option<Vec<f64>>,
    /// Top-k and bottom-k eigenvectors of the Hessian on the spectrum's batch: dense ones
    /// ([`super::BasisSource::Dense`]) or Ritz vectors ([`super::BasisSource::Ritz`]); `None`
    /// unless asked for.
    pub basis: Option<EigenBasis>,
}

/// The spectrum of the mean loss over `batch` at `theta`.
pub fn spectrum(
    net: &Network,
    theta: &[f64],
    batch: &PreparedBatch,
    opts: &SpectrumOptions<'_>,
    cancel: &AtomicBool,
    progress: &(dyn Fn(SpectrumProgress) + Sync),
) -> Result<SpectrumOutput, CurvatureError> {
    let cfg = opts.cfg;
    let n = theta.len();
    let loss = BatchLoss { net, batch };
    let mut diagonal = None;
    let mut basis = None;
    let kind = products_for(cfg, net.spec());
    let mut s = match choose_method(cfg, n, kind)? {
        HessianMethod::Dense => {
            let columns = |done| {
                progress(SpectrumProgress {
                    phase: SpectrumPhase::Dense,
                    done,
                    total: n,
                })
            };
            let (h, step, evals) = match kind {
                Products::FiniteDifferences => {
                    dense_avoiding_kinks(&loss, theta, cfg.fd_step, cancel, &columns)?
                }
                Products::Exact => {
                    let exact = exact_products(net, theta, batch)?;
                    (dense_hessian_exact(&exact, cancel, &columns)?, 0.0, 0)
                }
            };
            diagonal = Some((0..n).map(|i| h.get(i, i)).collect());
            let ev = if opts.basis {
                let (ev, b, _) = dense_basis(&h, cfg.top_k, cfg.bottom_k)?;
                basis = Some(b);
                ev
            } else {
                h.eigenvalues()?
            };
            let mut s = spectrum_of_dense(&h, ev, cfg);
            s.fd_step = step;
            s.gradient_evals = evals;
            if cfg.per_layer {
                let floor = s.noise_floor.unwrap_or(0.0);
                s.per_layer = opts
                    .layers
                    .iter()
                    .map(|(name, r)| dense_block(&h, name, r.clone(), floor))
                    .collect::<Result<_, _>>()?;
            }
            s
        }
        _ => {
            let mut inner = products(&loss, theta, cfg)?;
            let mut hvp = Counted::new(
                &mut *inner,
                SpectrumPhase::Lanczos,
                cfg.lanczos_steps,
                progress,
            );
            let wanted = opts.basis.then_some((cfg.top_k, cfg.bottom_k));
            let (mut s, b) = lanczos_result(&mut hvp, cfg, opts.seed, true, wanted, cancel)?;
            basis = b;
            if cfg.per_layer {
                let per_block = cfg.lanczos_steps + cfg.hutchinson_samples;
                hvp.enter(SpectrumPhase::Layers, opts.layers.len() * per_block);
                s.per_layer = opts
                    .layers
                    .iter()
                    .map(|(name, r)| {
                        let mut block = Restricted::new(&mut hvp, r.clone());
                        let (b, _) =
                            lanczos_result(&mut block, cfg, opts.seed, false, None, cancel)?;
                        Ok(LayerSpectrum {
                            layer: name.clone(),
                            params: r.len(),
                            method: SpectrumMethod::Lanczos,
                            stats: b.stats,
                            eigenvalues: Vec::new(),
                            lanczos: b.lanczos,
                            hutchinson: b.hutchinson,
                        })
                    })
                    .collect::<Result<_, CurvatureError>>()?;
            }
            s.gradient_evals = hvp.gradient_evals();
            s
        }
    };
    s.samples = batch.len();
    s.products = kind;
    if kind == Products::Exact {
        s.fd_step = 0.0;
    }
    if let Some(second) = opts.check {
        let other = BatchLoss { net, batch: second };
        let mut inner = products(&other, theta, cfg)?;
        let mut hvp = Counted::new(
            &mut *inner,
            SpectrumPhase::Stability,
            cfg.lanczos_steps,
            progress,
        );
        let top = lanczos(
            &mut hvp,
            &LanczosOptions {
                steps: cfg.lanczos_steps,
                top_k: 1,
                bottom_k: 0,
                tol: cfg.tol,
                seed: seeds(opts.seed).0,
            },
            cancel,
        )?;
        let top_second = top.top.first().map(|r| r.value).unwrap_or(f64::NAN);
        let top_first = s.stats.max;
        s.stability = Some(Stability {
            samples: second.len(),
            top_first,
            top_second,
            rel_diff: (top_second - top_first).abs() / top_first.abs().max(f64::MIN_POSITIVE),
        });
        s.gradient_evals += hvp.gradient_evals();
    }
    Ok(SpectrumOutput {
        spectrum: s,
        diagonal,
        basis,
    })
}

/// Above this `asymmetry` the dense Hessian has crossed a ReLU kink: a smooth region gives
/// ~1e-10 (truncation and rounding, docs/method.md), a crossing O(1).
pub const KINK_ASYMMETRY: f64 = 1e-6;

/// The MLP's exact products at `theta` over `batch`.
fn exact_products(
    net: &Network,
    theta: &[f64],
    batch: &PreparedBatch,
) -> Result<ExactHvp, CurvatureError> {
    net.exact_hvp(theta, batch)
        .map_err(|e| CurvatureError::Config(e.to_string()))
}

/// The Hessian-vector products `cfg.products` gives `loss`'s model ([`products_for`]):
/// differences of its gradient (`fd_scheme`, its step) or the MLP's exact ones.
pub fn products<'a>(
    loss: &'a BatchLoss<'a>,
    theta: &[f64],
    cfg: &HessianConfig,
) -> Result<Box<dyn Hvp + 'a>, CurvatureError> {
    Ok(match products_for(cfg, loss.net.spec()) {
        Products::FiniteDifferences => Box::new(FdHvp::for_config(loss, theta, cfg)),
        Products::Exact => Box::new(exact_products(loss.net, theta, loss.batch)?),
    })
}

/// The dense Hessian at `fd_step`; when a column crossed a ReLU kink (asymmetry above
/// [`KINK_ASYMMETRY`]) it is recomputed at a tenth and a hundredth of the step, since a
/// crossing needs a pre-activation within `h·|∂z|` of zero. Returns the most symmetric
/// matrix, the step that gave it, and the gradients spent on all tries.
fn dense_avoiding_kinks<L: LossGrad + Shared>(
    loss: &L,
    theta: &[f64],
    fd_step: f64,
    cancel: &AtomicBool,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<(DenseHessian, f64, usize), CurvatureError> {
    let mut best = dense_hessian(loss, theta, fd_step, cancel, progress)?;
    let (mut step, mut best_step, mut evals) = (fd_step, fd_step, best.gradient_evals);
    for _ in 0..2 {
        if best.asymmetry <= KINK_ASYMMETRY {
            break;
        }
        step /= 10.0;
        // the progress bar stays full: a retry restarting it would read as going backwards
        let h = dense_hessian(loss, theta, step, cancel, &|_| {})?;
        evals += h.gradient_evals;
        if h.asymmetry < best.asymmetry {
            best = h;
            best_step = step;
        } else {
            // not a kink this step avoids (or only rounding left): stop paying for tries
            break;
        }
    }
    Ok((best, best_step, evals))
}

/// The record's spectrum of a dense finite-difference Hessian: every eigenvalue, the noise
/// floor from its asymmetry, and the counts and condition at that floor.
pub fn dense_spectrum(h: &DenseHessian, cfg: &HessianConfig) -> Result<Spectrum, CurvatureError> {
    Ok(spectrum_of_dense(h, h.eigenvalues()?, cfg))
}

/// [`dense_spectrum`] with the eigenvalues `ev` (ascending) already computed.
fn spectrum_of_dense(h: &DenseHessian, ev: Vec<f64>, cfg: &HessianConfig) -> Spectrum {
    let noise_floor = dense_noise_floor(h, &ev);
    let stats = SpectrumStats::with_noise_floor(&ev, noise_floor);
    let all = "dense: every eigenvalue".to_string();
    Spectrum {
        method: SpectrumMethod::Dense,
        samples: 0,
        params: h.n,
        fd_step: cfg.fd_step,
        products: Products::FiniteDifferences,
        gradient_evals: h.gradient_evals,
        sources: StatSources {
            extremes: all.clone(),
            moments: all.clone(),
            counts: all,
        },
        asymmetry: Some(h.asymmetry),
        noise_floor: Some(noise_floor),
        // at the floor the counts use, `zero_tol = max(n·ε·max|λ|, noise_floor)`: with exact
        // products the asymmetry is rounding, far below the eigen-solver's own error
        negatives_beyond_noise: Some(ev.iter().filter(|l| **l < -stats.zero_tol).count()),
        histogram: Histogram::new(&ev, stats.min, stats.max, cfg.bins),
        stats,
        eigenvalues: ev,
        lanczos: None,
        density: None,
        hutchinson: None,
        per_layer: Vec::new(),
        stability: None,
    }
}

/// `asymmetry · max|λ|`: the finite-difference error of the dense matrix in absolute terms.
fn dense_noise_floor(h: &DenseHessian, ev: &[f64]) -> f64 {
    h.asymmetry * ev.iter().fold(0.0f64, |m, l| m.max(l.abs()))
}

/// The spectrum of one diagonal block. Its counts are taken at the whole matrix's noise floor:
/// the block's error is a block of the whole error `E`, and `‖E_block‖₂ ≤ ‖E‖₂`.
fn dense_block(
    h: &DenseHessian,
    name: &str,
    r: std::ops::Range<usize>,
    noise_floor: f64,
) -> Result<LayerSpectrum, CurvatureError> {
    let m = r.len();
    let block = DenseHessian {
        n: m,
        data: (0..m * m)
            .map(|ij| h.get(r.start + ij / m, r.start + ij % m))
            .collect(),
        asymmetry: h.asymmetry,
        gradient_evals: 0,
    };
    let ev = block.eigenvalues()?;
    Ok(LayerSpectrum {
        layer: name.to_string(),
        params: m,
        method: SpectrumMethod::Dense,
        stats: SpectrumStats::with_noise_floor(&ev, noise_floor),
        eigenvalues: ev,
        lanczos: None,
        hutchinson: None,
    })
}

/// The record's spectrum from Hessian-vector products alone: Lanczos extremes, Hutchinson
/// moments and the SLQ density; no noise floor, `near_zero` and `condition` not measured.
pub fn lanczos_spectrum<H: Hvp>(
    hvp: &mut H,
    cfg: &HessianConfig,
    seed: u64,
    cancel: &AtomicBool,
) -> Result<Spectrum, CurvatureError> {
    let mut counted = Counted::new(hvp, SpectrumPhase::Lanczos, cfg.lanczos_steps, &no_progress);
    Ok(lanczos_result(&mut counted, cfg, seed, true, None, cancel)?.0)
}

/// Lanczos extremes, Hutchinson moments and (when `density`) the SLQ density; with `basis =
/// Some((top_k, bottom_k))` also the Ritz vectors of the Lanczos run.
fn lanczos_result<H: Phased>(
    hvp: &mut H,
    cfg: &HessianConfig,
    seed: u64,
    density: bool,
    basis: Option<(usize, usize)>,
    cancel: &AtomicBool,
) -> Result<(Spectrum, Option<EigenBasis>), CurvatureError> {
    let n = hvp.dim();
    let (s_lanczos, s_slq, s_hutch) = seeds(seed);
    hvp.enter(SpectrumPhase::Lanczos, cfg.lanczos_steps);
    let lopts = LanczosOptions {
        steps: cfg.lanczos_steps,
        top_k: cfg.top_k.max(1),
        bottom_k: cfg.bottom_k.max(1),
        tol: cfg.tol,
        seed: s_lanczos,
    };
    let (lz, ritz) = match basis {
        Some((top_k, bottom_k)) => {
            let (lz, b) = lanczos_with_basis(hvp, &lopts, top_k, bottom_k, cancel)?;
            (lz, Some(b))
        }
        None => (lanczos(hvp, &lopts, cancel)?, None),
    };
    hvp.enter(SpectrumPhase::Hutchinson, cfg.hutchinson_samples);
    let hu = hutchinson(
        hvp,
        &HutchinsonOptions {
            min_samples: 10,
            max_samples: cfg.hutchinson_samples,
            tol: cfg.hutchinson_tol,
            seed: s_hutch,
        },
        cancel,
    )?;
    let max = lz.top.first().map(|r| r.value).unwrap_or(f64::NAN);
    let min = lz.bottom.first().map(|r| r.value).unwrap_or(f64::NAN);
    let amax = max.abs().max(min.abs());
    let zero_tol = n as f64 * f64::EPSILON * amax;
    let stats = SpectrumStats {
        n,
        min,
        max,
        mean: hu.trace.value / n as f64,
        variance: hu.variance.value,
        trace: hu.trace.value,
        // a true eigenvalue lies within its residual of each Ritz value: only those below
        // minus their residual are certainly negative
        negatives: lz
            .bottom
            .iter()
            .filter(|r| r.value < -zero_tol.max(r.residual))
            .count(),
        // interior eigenvalues: extremes and moments cannot resolve them
        near_zero: None,
        zero_tol,
        condition: None,
    };
    let dens = if density {
        let width = (max - min).abs().max(f64::MIN_POSITIVE);
        let sigma = if cfg.sigma > 0.0 {
            cfg.sigma
        } else {
            0.01 * width
        };
        hvp.enter(SpectrumPhase::Slq, cfg.slq_runs * cfg.slq_steps);
        Some(slq(
            hvp,
            &SlqOptions {
                runs: cfg.slq_runs,
                steps: cfg.slq_steps,
                sigma,
                grid: cfg.grid,
                seed: s_slq,
            },
            cancel,
        )?)
    } else {
        None
    };
    let histogram = match &dens {
        Some(d) => density_histogram(d, min, max, cfg.bins, n),
        None => Histogram::new(&[], min, max, cfg.bins),
    };
    let spectrum = Spectrum {
        method: SpectrumMethod::Lanczos,
        samples: 0,
        params: n,
        fd_step: cfg.hvp_step(),
        products: Products::FiniteDifferences,
        gradient_evals: 0,
        sources: StatSources {
            extremes: format!(
                "lanczos: Ritz values after {} steps (residuals in lanczos.top/bottom)",
                lz.steps
            ),
            moments: format!(
                "hutchinson: {} Rademacher probes (standard errors in hutchinson)",
                hu.samples
            ),
            counts: format!(
                "negatives: among the {} lowest Ritz values only, those below minus their \
                 residual (a lower bound; the finite-difference noise is not measured); \
                 near_zero and condition: not measured",
                lz.bottom.len()
            ),
        },
        asymmetry: None,
        noise_floor: None,
        negatives_beyond_noise: None,
        stats,
        histogram,
        eigenvalues: Vec::new(),
        lanczos: Some(lz),
        density: dens,
        hutchinson: Some(hu),
        per_layer: Vec::new(),
        stability: None,
    };
    Ok((spectrum, ritz))
}

/// The SLQ quadrature mass in each of `bins` bins over `[lo, hi]`, scaled to `n` eigenvalues,
/// so the histogram of a large model reads like the dense one's.
fn density_histogram(d: &Density, lo: f64, hi: f64, bins: usize, n: usize) -> Histogram {
    let mass =
        Bins::new(lo, hi, bins).weigh(d.nodes.iter().copied().zip(d.weights.iter().copied()));
    Histogram {
        lo,
        hi,
        counts: mass.iter().map(|m| (m * n as f64).round() as u64).collect(),
    }
}
