//! Exact Hessian-vector products of the MLP: forward-over-reverse differentiation written out
//! by hand, in plain Rust over faer's matrix products (dfdx has no second-order autodiff).
//!
//! **Algorithm.** `H v` is the directional derivative of the gradient along `v`: every
//! quantity of the forward pass and of the backward pass at `θ` gets a tangent (`ż`, `ḣ`, `ġ`)
//! by the product rule, and the tangent of the gradient is `H v` (Pearlmutter's R-operator).
//! With `s1 = σ'(z)`, `s2 = σ''(z)` and the cross-entropy's softmax `p`:
//!
//! ```text
//! forward   ż = Ẇ a + W ȧ + ḃ        ḟ = s1 ⊙ ż        ḣ = ȧ + α ḟ + α̇ f  (plain: ḣ = ḟ)
//! logits    u̇ = Ẇ_H h + W_H ḣ + ḃ_H   ġ_u = (p ⊙ u̇ − p (pᵀu̇)) / n
//! backward  ġ_z = ġ_f ⊙ s1 + g_f ⊙ s2 ⊙ ż      ġ_W = ġ_z aᵀ + g_z ȧᵀ      ġ_b = Σ_t ġ_z
//!           ġ_a = Wᵀ ġ_z + Ẇᵀ g_z (+ ġ_h for the skip)     ġ_α = Σ (ġ_h ⊙ f + g_h ⊙ ḟ)
//! ```
//!
//! (`a` a layer's input, `g_*` the backward pass at `θ`, `ġ_f = α ġ_h + α̇ g_h` in a residual
//! block). The pass at `θ` is computed once per [`ExactHvp`]; each product then costs about
//! two gradients of arithmetic. `k` directions go through together as a middle axis of every
//! tangent (`features × k × examples`, row-major), so each term above is one matrix product
//! of `k` times the width of a gradient's: what makes the dense Hessian of a small model fast
//! (the per-call cost of ~15 small products is paid once for `k` columns).
//!
//! **Error.** None beyond rounding: no step, no truncation, no kink to cross (ReLU's `σ'' = 0`
//! almost everywhere, as in every autodiff framework). The columns of the dense Hessian agree
//! with its rows to ~1e-16 relative; the finite-difference products' ~1e-10 (docs/method.md)
//! is the difference `tests/exact_hvp.rs` bounds.

use std::sync::Arc;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

use super::{Activation, ModelSpec, ParamLayout, Variant};

/// Why a network has no exact products.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExactUnsupported {
    #[error(
        "exact Hessian-vector products are implemented for the MLP only: the transformer's \
         products are central differences (remove hessian.products or set it to \
         \"finite_differences\")"
    )]
    Transformer,
}

/// Floats a block's widest tangent may hold: `width × k × n` within 256 KiB keeps a block's
/// tangents near the core while its products stay wide. Measured on the article's dense
/// Hessian at one thread (`article_682/residual/exact_dense_hessian`, docs/performance.md):
/// 2^14 floats 18.3 ms, 2^15 13.7, 2^16 15.4, 2^17 17.4.
const BLOCK_FLOATS: usize = 1 << 15;

/// Multiply-adds a product must reach before faer may use every thread (below, one: the
/// dense Hessian already runs its blocks in parallel).
const PARALLEL_WORK: usize = 1 << 24;

/// One hidden layer (the stem or a block) at `θ`: what the tangent passes read.
#[derive(Debug, Clone)]
struct Hidden {
    inputs: usize,
    /// `theta` offsets of the weight `[width, inputs]` and the bias.
    w: usize,
    b: usize,
    /// The learned residual scale's offset, if any.
    alpha_at: Option<usize>,
    alpha: f64,
    /// Whether the layer's output adds its input (a residual block; never the stem).
    skip: bool,
    /// `σ'(z)`, `σ''(z)`, `f = σ(z)`, each `width × n`.
    s1: Vec<f64>,
    s2: Vec<f64>,
    f: Vec<f64>,
    /// The gradient at `θ` of the loss by the layer's output `h`, and by `z`.
    g_h: Vec<f64>,
    g_z: Vec<f64>,
}

/// Exact products `H v` of the mean cross-entropy of an MLP over fixed examples at fixed
/// `θ` ([`super::Network::exact_hvp`]).
#[derive(Debug)]
pub struct ExactHvp {
    dim: usize,
    n: usize,
    width: usize,
    classes: usize,
    theta: Vec<f64>,
    /// The inputs `features × n`.
    x: Arc<Vec<f64>>,
    /// `acts[l]`: hidden layer `l`'s output `h` (`acts[depth]` is the head's input).
    acts: Vec<Vec<f64>>,
    hidden: Vec<Hidden>,
    head_w: usize,
    head_b: usize,
    /// Softmax `classes × n` and the loss's gradient by the logits, `(p − y) / n`.
    p: Vec<f64>,
    g_u: Vec<f64>,
    loss: f64,
    gradient: Vec<f64>,
    /// Workspaces of finished passes (about one per thread that ran one).
    spare: std::sync::Mutex<Vec<Workspace>>,
}

impl Clone for ExactHvp {
    fn clone(&self) -> Self {
        ExactHvp {
            dim: self.dim,
            n: self.n,
            width: self.width,
            classes: self.classes,
            theta: self.theta.clone(),
            x: self.x.clone(),
            acts: self.acts.clone(),
            hidden: self.hidden.clone(),
            head_w: self.head_w,
            head_b: self.head_b,
            p: self.p.clone(),
            g_u: self.g_u.clone(),
            loss: self.loss,
            gradient: self.gradient.clone(),
            spare: Default::default(),
        }
    }
}

/// `σ(z)`, `σ'(z)`, `σ''(z)`.
fn activation(a: Activation, z: f64) -> (f64, f64, f64) {
    match a {
        // dfdx's ReLU derivative: 1 where z > 0
        Activation::Relu => {
            if z > 0.0 {
                (z, 1.0, 0.0)
            } else {
                (0.0, 0.0, 0.0)
            }
        }
        Activation::Tanh => {
            let t = z.tanh();
            let d = 1.0 - t * t;
            (t, d, -2.0 * t * d)
        }
        Activation::Gelu => {
            // 0.5 z (1 + tanh u), u = c (z + a z³)
            const A: f64 = 0.044715;
            let c = (2.0 / std::f64::consts::PI).sqrt();
            let u = c * (z + A * z * z * z);
            let du = c * (1.0 + 3.0 * A * z * z);
            let ddu = 6.0 * c * A * z;
            let t = u.tanh();
            let dt = (1.0 - t * t) * du;
            let ddt = -2.0 * t * (1.0 - t * t) * du * du + (1.0 - t * t) * ddu;
            (
                0.5 * z * (1.0 + t),
                0.5 * (1.0 + t) + 0.5 * z * dt,
                dt + 0.5 * z * ddt,
            )
        }
    }
}

fn rows(s: &[f64], r: usize, c: usize) -> MatRef<'_, f64> {
    MatRef::from_row_major_slice(s, r, c)
}

/// `dst (m × n) (+)= a · b`, all row-major views.
fn gemm(dst: &mut [f64], m: usize, n: usize, a: MatRef<'_, f64>, b: MatRef<'_, f64>, add: bool) {
    let work = m * n * a.ncols();
    let par = if work >= PARALLEL_WORK {
        Par::rayon(0)
    } else {
        Par::Seq
    };
    let accum = if add { Accum::Add } else { Accum::Replace };
    matmul(
        MatMut::from_row_major_slice_mut(dst, m, n),
        accum,
        a,
        b,
        1.0,
        par,
    );
}

/// `θ`'s weight tangent of one linear, gathered from `k` directions for the two products
/// it enters: `Ẇ` as `(out·k) × in` (rows `(o, j)`) and `Ẇᵀ` as `(in·k) × out` (rows `(i, j)`).
#[allow(clippy::too_many_arguments)]
fn gather(
    v: &[f64],
    dim: usize,
    k: usize,
    at: usize,
    (outs, ins): (usize, usize),
    wd: &mut Vec<f64>,
    wdt: &mut Vec<f64>,
) {
    sized(wd, outs * k * ins);
    sized(wdt, ins * k * outs);
    for j in 0..k {
        let vj = &v[j * dim + at..j * dim + at + outs * ins];
        for o in 0..outs {
            for i in 0..ins {
                let x = vj[o * ins + i];
                wd[(o * k + j) * ins + i] = x;
                wdt[(i * k + j) * outs + o] = x;
            }
        }
    }
}

/// `buf` at `len` floats, reusing its memory: its old contents stay, so every user below
/// overwrites all of it first (a `Replace` product or an elementwise write).
fn sized(buf: &mut Vec<f64>, len: usize) -> &mut [f64] {
    buf.resize(len, 0.0);
    // in test builds stale numbers become NaN, so a read before the write shows in every
    // product the tests check
    if cfg!(debug_assertions) {
        buf.fill(f64::NAN);
    }
    buf
}

/// The buffers of one tangent pass, kept between passes (allocating and zeroing them took
/// a fifth of the dense Hessian): `zd[l]`, `hd[l]` the tangents of hidden layer `l`'s `z` and
/// `h`, `wdt[l]` its `Ẇᵀ`, each `width × k × n` at most.
#[derive(Debug, Default)]
struct Workspace {
    zd: Vec<Vec<f64>>,
    hd: Vec<Vec<f64>>,
    wdt: Vec<Vec<f64>>,
    wd: Vec<f64>,
    head_wdt: Vec<f64>,
    gu: Vec<f64>,
    a_part: Vec<f64>,
    b_part: Vec<f64>,
    ghd: Vec<f64>,
    gzd: Vec<f64>,
}

/// Adds a bias tangent `ḃ` (each direction's own) to `z` laid out `outs × k × n`.
fn add_bias(z: &mut [f64], v: &[f64], dim: usize, k: usize, at: usize, n: usize) {
    for (row, zr) in z.chunks_mut(n).enumerate() {
        let (o, j) = (row / k, row % k);
        let b = v[j * dim + at + o];
        zr.iter_mut().for_each(|z| *z += b);
    }
}

/// Writes a weight's and a bias's tangents of the gradient into `out` (`k` rows of `dim`):
/// `ġ_W = A + B` with `A` `(outs·k) × ins` (rows `(o, j)`) and `B` (if any) `outs × (ins·k)`
/// (columns `(i, j)`), and `ġ_b = Σ_t ġ_z` from `gz` (`outs × k × n`).
#[allow(clippy::too_many_arguments)]
fn scatter(
    out: &mut [f64],
    dim: usize,
    k: usize,
    (w, b): (usize, usize),
    (outs, ins, n): (usize, usize, usize),
    a: &[f64],
    bt: Option<&[f64]>,
    gz: &[f64],
) {
    for j in 0..k {
        let oj = &mut out[j * dim..(j + 1) * dim];
        for o in 0..outs {
            let dst = &mut oj[w + o * ins..w + (o + 1) * ins];
            let ar = &a[(o * k + j) * ins..(o * k + j + 1) * ins];
            match bt {
                // B's entries for (o, ·, j) sit k apart
                Some(bt) => {
                    let br = bt[o * ins * k + j..].iter().step_by(k);
                    for ((d, a), b) in dst.iter_mut().zip(ar).zip(br) {
                        *d = a + b;
                    }
                }
                None => dst.copy_from_slice(ar),
            }
            oj[b + o] = gz[(o * k + j) * n..(o * k + j + 1) * n].iter().sum();
        }
    }
}

impl ExactHvp {
    /// The pass at `θ` over `x` (`features × n`, row-major) and `labels`.
    pub(crate) fn new(
        spec: &ModelSpec,
        layout: &ParamLayout,
        variant: Variant,
        theta: &[f64],
        x: Arc<Vec<f64>>,
        labels: &[usize],
    ) -> Result<ExactHvp, ExactUnsupported> {
        if !spec.has_exact_products() {
            return Err(ExactUnsupported::Transformer);
        }
        assert_eq!(theta.len(), layout.len, "theta must match the layout");
        let n = labels.len();
        assert!(n > 0, "exact products need at least one example");
        assert_eq!(x.len(), spec.inputs * n, "x must be features x n");
        let (width, classes, depth) = (spec.width, spec.classes, spec.depth);
        let off = |i: usize| layout.tensors[i].offset;
        let first_scale = 2 * (depth + 2);
        // forward: `acts[l]` is hidden layer l's output
        let mut acts: Vec<Vec<f64>> = Vec::with_capacity(depth + 1);
        let mut hidden = Vec::with_capacity(depth + 1);
        for l in 0..=depth {
            let a: &[f64] = if l == 0 { &x } else { &acts[l - 1] };
            let inputs = if l == 0 { spec.inputs } else { width };
            let (w, b) = (off(2 * l), off(2 * l + 1));
            let mut z = vec![0.0; width * n];
            gemm(
                &mut z,
                width,
                n,
                rows(&theta[w..w + width * inputs], width, inputs),
                rows(a, inputs, n),
                false,
            );
            let (mut s1, mut s2, mut f) = (z.clone(), z.clone(), z);
            for o in 0..width {
                for t in 0..n {
                    let i = o * n + t;
                    (f[i], s1[i], s2[i]) = activation(spec.activation, f[i] + theta[b + o]);
                }
            }
            let skip = l > 0 && variant == Variant::Residual;
            let alpha_at = (skip && spec.learned_alpha).then(|| off(first_scale + l - 1));
            let alpha = alpha_at.map_or(spec.alpha, |i| theta[i]);
            let h = if skip {
                a.iter().zip(&f).map(|(a, f)| a + alpha * f).collect()
            } else {
                f.clone()
            };
            acts.push(h);
            hidden.push(Hidden {
                inputs,
                w,
                b,
                alpha_at,
                alpha,
                skip,
                s1,
                s2,
                f,
                g_h: Vec::new(),
                g_z: Vec::new(),
            });
        }
        let (head_w, head_b) = (off(2 * (depth + 1)), off(2 * (depth + 1) + 1));
        let mut u = vec![0.0; classes * n];
        gemm(
            &mut u,
            classes,
            n,
            rows(&theta[head_w..head_w + classes * width], classes, width),
            rows(&acts[depth], width, n),
            false,
        );
        let mut p = vec![0.0; classes * n];
        let mut g_u = vec![0.0; classes * n];
        let mut loss = 0.0;
        for (t, &y) in labels.iter().enumerate() {
            assert!(y < classes, "label {y} out of range for {classes} classes");
            let z = |c: usize| u[c * n + t] + theta[head_b + c];
            let m = (0..classes).map(z).fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = (0..classes).map(|c| (z(c) - m).exp()).sum();
            loss += m + sum.ln() - z(y);
            for c in 0..classes {
                let pc = (z(c) - m).exp() / sum;
                p[c * n + t] = pc;
                g_u[c * n + t] = (pc - f64::from(u8::from(c == y))) / n as f64;
            }
        }
        loss /= n as f64;
        // backward at θ
        let dim = layout.len;
        let mut gradient = vec![0.0; dim];
        let mut g = vec![0.0; width * n];
        gemm(
            &mut g,
            width,
            n,
            rows(&theta[head_w..head_w + classes * width], classes, width).transpose(),
            rows(&g_u, classes, n),
            false,
        );
        scatter(
            &mut gradient,
            dim,
            1,
            (head_w, head_b),
            (classes, width, n),
            &{
                let mut gw = vec![0.0; classes * width];
                gemm(
                    &mut gw,
                    classes,
                    width,
                    rows(&g_u, classes, n),
                    rows(&acts[depth], width, n).transpose(),
                    false,
                );
                gw
            },
            None,
            &g_u,
        );
        for l in (0..=depth).rev() {
            let layer = &mut hidden[l];
            let ins = layer.inputs;
            let a: &[f64] = if l == 0 { &x } else { &acts[l - 1] };
            let scale = if layer.skip { layer.alpha } else { 1.0 };
            let g_z: Vec<f64> = g
                .iter()
                .zip(&layer.s1)
                .map(|(g, s)| scale * g * s)
                .collect();
            if let Some(at) = layer.alpha_at {
                gradient[at] = g.iter().zip(&layer.f).map(|(g, f)| g * f).sum();
            }
            let mut gw = vec![0.0; width * ins];
            gemm(
                &mut gw,
                width,
                ins,
                rows(&g_z, width, n),
                rows(a, ins, n).transpose(),
                false,
            );
            scatter(
                &mut gradient,
                dim,
                1,
                (layer.w, layer.b),
                (width, ins, n),
                &gw,
                None,
                &g_z,
            );
            let mut g_in = if layer.skip {
                g.clone()
            } else {
                vec![0.0; ins * n]
            };
            if l > 0 {
                gemm(
                    &mut g_in,
                    ins,
                    n,
                    rows(&theta[layer.w..layer.w + width * ins], width, ins).transpose(),
                    rows(&g_z, width, n),
                    true,
                );
            }
            layer.g_h = std::mem::replace(&mut g, g_in);
            layer.g_z = g_z;
        }
        Ok(ExactHvp {
            dim,
            n,
            width,
            classes,
            theta: theta.to_vec(),
            x,
            acts,
            hidden,
            head_w,
            head_b,
            p,
            g_u,
            loss,
            gradient,
            spare: Default::default(),
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The mean loss at `θ`, from this pass.
    pub fn loss(&self) -> f64 {
        self.loss
    }

    /// The gradient at `θ`, from this pass (tests/exact_hvp.rs holds it to the hyper-dual
    /// oracle).
    pub fn gradient(&self) -> &[f64] {
        &self.gradient
    }

    /// Directions per tangent pass: the widest tangent (`width × k × n`) within
    /// [`BLOCK_FLOATS`].
    pub fn block_size(&self) -> usize {
        let widest = self.width.max(self.classes).max(1) * self.n.max(1);
        (BLOCK_FLOATS / widest).clamp(1, 256)
    }

    /// `out = H v`.
    pub fn hvp(&self, v: &[f64], out: &mut [f64]) {
        assert_eq!(v.len(), self.dim, "v must have {} entries", self.dim);
        assert_eq!(out.len(), self.dim, "out must have {} entries", self.dim);
        self.tangents(v, out);
    }

    /// `H v` for each of the `vs.len() / dim` directions laid end to end, [`Self::block_size`]
    /// at a time; `outs` the same. Each product is the one [`Self::hvp`] gives up to the
    /// rounding of a wider matrix product.
    pub fn hvp_block(&self, vs: &[f64], outs: &mut [f64]) {
        let dim = self.dim;
        assert!(
            dim > 0 && vs.len().is_multiple_of(dim),
            "vs must hold whole vectors of {dim}"
        );
        assert_eq!(outs.len(), vs.len(), "outs must match vs");
        let step = self.block_size() * dim;
        for (v, o) in vs.chunks(step).zip(outs.chunks_mut(step)) {
            self.tangents(v, o);
        }
    }

    /// One tangent pass for the `k = v.len() / dim` directions in `v`.
    fn tangents(&self, v: &[f64], out: &mut [f64]) {
        let ws = self.spare.lock().map(|mut s| s.pop()).unwrap_or(None);
        let mut ws = ws.unwrap_or_default();
        self.tangents_in(v, out, &mut ws);
        if let Ok(mut s) = self.spare.lock() {
            s.push(ws);
        }
    }

    /// Which layers' parameters the `k` directions in `v` touch: `[stem, blocks.., head]`.
    /// The dense Hessian's directions are unit vectors, a block of them mostly inside one
    /// tensor, so most terms below vanish for them and are skipped (exact zeros: the numbers
    /// are the same as with every term computed).
    fn touched(&self, v: &[f64]) -> Vec<bool> {
        let dim = self.dim;
        let any = |r: std::ops::Range<usize>| {
            v.chunks(dim)
                .any(|vj| vj[r.clone()].iter().any(|x| *x != 0.0))
        };
        let w = self.width;
        let mut t: Vec<bool> = self
            .hidden
            .iter()
            .map(|l| {
                any(l.w..l.w + w * l.inputs)
                    || any(l.b..l.b + w)
                    || l.alpha_at.is_some_and(|a| any(a..a + 1))
            })
            .collect();
        t.push(
            any(self.head_w..self.head_w + self.classes * w)
                || any(self.head_b..self.head_b + self.classes),
        );
        t
    }

    fn tangents_in(&self, v: &[f64], out: &mut [f64], ws: &mut Workspace) {
        let (dim, n, w, c) = (self.dim, self.n, self.width, self.classes);
        let k = v.len() / dim;
        // every entry is written below (the MLP's layout is its linears and scales); zeroed
        // anyway so a tensor added to the layout cannot read stale numbers
        out.fill(0.0);
        let theta = &self.theta;
        let depth = self.hidden.len() - 1;
        let touched = self.touched(v);
        // hidden layer l's forward tangents are zero below the first layer a direction touches
        let Some(first) = touched.iter().position(|t| *t) else {
            return;
        };
        let live = |l: usize| l >= first;
        let alpha_dot = |layer: &Hidden, j: usize| layer.alpha_at.map_or(0.0, |at| v[j * dim + at]);
        for list in [&mut ws.zd, &mut ws.hd, &mut ws.wdt] {
            list.resize_with(depth + 1, Vec::new);
        }
        let Workspace {
            zd,
            hd,
            wdt: wdts,
            wd,
            head_wdt,
            gu,
            a_part,
            b_part,
            ghd,
            gzd,
        } = ws;
        // forward tangents
        for (l, layer) in self.hidden.iter().enumerate().skip(first) {
            let ins = layer.inputs;
            let a: &[f64] = if l == 0 { &self.x } else { &self.acts[l - 1] };
            let (before, rest) = hd.split_at_mut(l);
            let z = sized(&mut zd[l], w * k * n);
            if touched[l] {
                gather(v, dim, k, layer.w, (w, ins), wd, &mut wdts[l]);
                gemm(z, w * k, n, rows(wd, w * k, ins), rows(a, ins, n), false);
            }
            if l > 0 && live(l - 1) {
                gemm(
                    z,
                    w,
                    k * n,
                    rows(&theta[layer.w..layer.w + w * ins], w, ins),
                    rows(&before[l - 1], ins, k * n),
                    touched[l],
                );
            }
            if touched[l] {
                add_bias(z, v, dim, k, layer.b, n);
            }
            let h = sized(&mut rest[0], w * k * n);
            for (row, (hr, zr)) in h.chunks_mut(n).zip(z.chunks(n)).enumerate() {
                let (o, j) = (row / k, row % k);
                let s1 = &layer.s1[o * n..(o + 1) * n];
                if layer.skip && l > first {
                    let ad = &before[l - 1][row * n..(row + 1) * n];
                    let f = &layer.f[o * n..(o + 1) * n];
                    let (alpha, da) = (layer.alpha, alpha_dot(layer, j));
                    for ((((h, a), s), z), f) in hr.iter_mut().zip(ad).zip(s1).zip(zr.iter()).zip(f)
                    {
                        *h = a + alpha * s * z + da * f;
                    }
                } else if layer.skip {
                    // the layer's input has no tangent yet
                    let f = &layer.f[o * n..(o + 1) * n];
                    let (alpha, da) = (layer.alpha, alpha_dot(layer, j));
                    for (((h, s), z), f) in hr.iter_mut().zip(s1).zip(zr.iter()).zip(f) {
                        *h = alpha * s * z + da * f;
                    }
                } else {
                    for ((h, s), z) in hr.iter_mut().zip(s1).zip(zr.iter()) {
                        *h = s * z;
                    }
                }
            }
        }
        // the logits' tangent, then the loss gradient's by them
        let h_last = &self.acts[depth];
        let head = touched[depth + 1];
        let w_head = &theta[self.head_w..self.head_w + c * w];
        let gu = sized(gu, c * k * n);
        if head {
            gather(v, dim, k, self.head_w, (c, w), wd, head_wdt);
            gemm(gu, c * k, n, rows(wd, c * k, w), rows(h_last, w, n), false);
        }
        if live(depth) {
            gemm(
                gu,
                c,
                k * n,
                rows(w_head, c, w),
                rows(&hd[depth], w, k * n),
                head,
            );
        }
        if head {
            add_bias(gu, v, dim, k, self.head_b, n);
        }
        let inv_n = 1.0 / n as f64;
        for j in 0..k {
            for t in 0..n {
                let pu: f64 = (0..c)
                    .map(|cc| self.p[cc * n + t] * gu[(cc * k + j) * n + t])
                    .sum();
                for cc in 0..c {
                    let i = (cc * k + j) * n + t;
                    gu[i] = self.p[cc * n + t] * (gu[i] - pu) * inv_n;
                }
            }
        }
        // the head's tangents of the gradient
        let ap = sized(a_part, c * k * w);
        gemm(
            ap,
            c * k,
            w,
            rows(gu, c * k, n),
            rows(h_last, w, n).transpose(),
            false,
        );
        let bp = live(depth).then(|| {
            let bp = sized(b_part, c * w * k);
            gemm(
                bp,
                c,
                w * k,
                rows(&self.g_u, c, n),
                rows(&hd[depth], w * k, n).transpose(),
                false,
            );
            &*bp
        });
        scatter(
            out,
            dim,
            k,
            (self.head_w, self.head_b),
            (c, w, n),
            ap,
            bp,
            gu,
        );
        // ġ by the last hidden output: W_Hᵀ ġ_u + Ẇ_Hᵀ g_u
        let ghd = sized(ghd, w * k * n);
        gemm(
            ghd,
            w,
            k * n,
            rows(w_head, c, w).transpose(),
            rows(gu, c, k * n),
            false,
        );
        if head {
            gemm(
                ghd,
                w * k,
                n,
                rows(head_wdt, w * k, c),
                rows(&self.g_u, c, n),
                true,
            );
        }
        // backward tangents, last hidden layer first
        let mut alpha_tangent = vec![0.0; k];
        for l in (0..=depth).rev() {
            let layer = &self.hidden[l];
            let ins = layer.inputs;
            let a: &[f64] = if l == 0 { &self.x } else { &self.acts[l - 1] };
            let scale = if layer.skip { layer.alpha } else { 1.0 };
            let gzd = sized(gzd, w * k * n);
            alpha_tangent.fill(0.0);
            for (row, gr) in gzd.chunks_mut(n).enumerate() {
                let (o, j) = (row / k, row % k);
                let r = row * n..(row + 1) * n;
                let ghr = &ghd[r.clone()];
                let at = o * n..(o + 1) * n;
                let (s1, s2, g_h) = (
                    &layer.s1[at.clone()],
                    &layer.s2[at.clone()],
                    &layer.g_h[at.clone()],
                );
                let da = alpha_dot(layer, j);
                // ġ_z = ġ_f ⊙ s1 + g_f ⊙ s2 ⊙ ż with ġ_f = α ġ_h + α̇ g_h, g_f = α g_h (plain:
                // α = 1, α̇ = 0); ż = 0 below the first layer touched
                if live(l) {
                    let zr = &zd[l][r];
                    for t in 0..n {
                        gr[t] =
                            (scale * ghr[t] + da * g_h[t]) * s1[t] + scale * g_h[t] * s2[t] * zr[t];
                    }
                    if layer.alpha_at.is_some() {
                        let f = &layer.f[at];
                        alpha_tangent[j] += (0..n)
                            .map(|t| ghr[t] * f[t] + g_h[t] * s1[t] * zr[t])
                            .sum::<f64>();
                    }
                } else {
                    for t in 0..n {
                        gr[t] = (scale * ghr[t] + da * g_h[t]) * s1[t];
                    }
                    if layer.alpha_at.is_some() {
                        let f = &layer.f[at];
                        alpha_tangent[j] += (0..n).map(|t| ghr[t] * f[t]).sum::<f64>();
                    }
                }
            }
            let ap = sized(a_part, w * k * ins);
            gemm(
                ap,
                w * k,
                ins,
                rows(gzd, w * k, n),
                rows(a, ins, n).transpose(),
                false,
            );
            let bp = (l > 0 && live(l - 1)).then(|| {
                let bp = sized(b_part, w * ins * k);
                gemm(
                    bp,
                    w,
                    ins * k,
                    rows(&layer.g_z, w, n),
                    rows(&hd[l - 1], ins * k, n).transpose(),
                    false,
                );
                &*bp
            });
            scatter(out, dim, k, (layer.w, layer.b), (w, ins, n), ap, bp, gzd);
            if let Some(at) = layer.alpha_at {
                for (j, g) in alpha_tangent.iter().enumerate() {
                    out[j * dim + at] = *g;
                }
            }
            if l > 0 {
                // ġ by the layer's input: (ġ_h through the skip) + Wᵀ ġ_z + Ẇᵀ g_z, in place
                // (this layer's ġ_h is no longer needed); blocks are width -> width, so ġ
                // keeps its size
                gemm(
                    ghd,
                    ins,
                    k * n,
                    rows(&theta[layer.w..layer.w + w * ins], w, ins).transpose(),
                    rows(gzd, w, k * n),
                    layer.skip,
                );
                if touched[l] {
                    gemm(
                        ghd,
                        ins * k,
                        n,
                        rows(&wdts[l], ins * k, w),
                        rows(&layer.g_z, w, n),
                        true,
                    );
                }
            }
        }
    }
}
