//! `Network::exact_hvp` (forward-over-reverse Hessian-vector products of the MLP) against an
//! independent exact oracle: the mean cross-entropy of `tests/common` written once more,
//! generically over num-dual's hyper-dual numbers, so that every second partial derivative of
//! the loss is available to rounding (no step, no truncation).
//!
//! The oracle is checked first (`oracle_matches_the_reference_loss_and_dfdx_gradient`): its
//! value against `common::loss` and dfdx's, its first derivatives against `net.loss_grad`,
//! and its second derivatives against central differences of dfdx's gradient, so a wrong
//! oracle cannot pass the later tests silently.

mod common;

use num_dual::{DualNum, HyperDual64};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use resprune::curvature::{dense_hessian_exact, BatchLoss, FdHvp, Hvp};
use resprune::model::{Activation, ExactHvp, ModelSpec, Network, PreparedBatch, Variant};
use std::sync::atomic::AtomicBool;

// ---------------------------------------------------------------------------------------
// The oracle: tests/common/mod.rs's forward, generic over the number type.
// ---------------------------------------------------------------------------------------

/// `W h + b` of layer `name`, as `common::linear` (the same order of operations).
fn linear<D: DualNum<Primitive = f64> + Copy>(
    spec: &ModelSpec,
    theta: &[D],
    name: &str,
    h: &[D],
) -> Vec<D> {
    let l = spec.layout();
    let w = l.get(&format!("{name}.weight")).unwrap();
    let b = l.get(&format!("{name}.bias")).unwrap();
    let (o, i) = (w.shape[0], w.shape[1]);
    (0..o)
        .map(|r| {
            theta[b.offset + r]
                + (0..i).fold(D::from(0.0), |s, c| s + theta[w.offset + r * i + c] * h[c])
        })
        .collect()
}

/// `common::activate`; ReLU as `if re > 0 { z } else { 0 }` (second derivative 0).
fn activate<D: DualNum<Primitive = f64> + Copy>(a: Activation, z: D) -> D {
    match a {
        Activation::Relu => {
            if z.re() > 0.0 {
                z
            } else {
                D::from(0.0)
            }
        }
        Activation::Tanh => z.tanh(),
        Activation::Gelu => {
            let c = (2.0 / std::f64::consts::PI).sqrt();
            // 0.5 z (1 + tanh(c (z + 0.044715 z³))), the products commuted only
            z * 0.5 * (((z + z.powi(3) * 0.044715) * c).tanh() + 1.0)
        }
    }
}

/// Block `b`'s residual scale: the learned `blocks.b.alpha` at the end of `theta` (residual
/// with `learned_alpha`), else the fixed `spec.alpha`.
fn block_alpha<D: DualNum<Primitive = f64> + Copy>(
    spec: &ModelSpec,
    v: Variant,
    theta: &[D],
    b: usize,
) -> D {
    if spec.learned_alpha && v == Variant::Residual {
        let t = spec.layout_for(v);
        theta[t.get(&format!("blocks.{b}.alpha")).unwrap().offset]
    } else {
        D::from(spec.alpha)
    }
}

/// `common::hidden`, with the learned scales.
fn hidden<D: DualNum<Primitive = f64> + Copy>(
    spec: &ModelSpec,
    v: Variant,
    theta: &[D],
    x: &[D],
) -> Vec<D> {
    let act = |z| activate(spec.activation, z);
    let mut h: Vec<D> = linear(spec, theta, "stem", x)
        .into_iter()
        .map(act)
        .collect();
    for b in 0..spec.depth {
        let f: Vec<D> = linear(spec, theta, &format!("blocks.{b}"), &h)
            .into_iter()
            .map(act)
            .collect();
        h = match v {
            Variant::Residual => {
                let alpha = block_alpha(spec, v, theta, b);
                h.iter().zip(&f).map(|(a, b)| *a + alpha * *b).collect()
            }
            Variant::Plain => f,
        };
    }
    h
}

/// `common::loss`: mean cross-entropy, log-sum-exp shifted by the largest logit.
fn oracle_loss<D: DualNum<Primitive = f64> + Copy>(
    spec: &ModelSpec,
    v: Variant,
    theta: &[D],
    x: &[f64],
    y: &[usize],
) -> D {
    let n = y.len();
    let mut total = D::from(0.0);
    for (e, &label) in y.iter().enumerate() {
        let xe: Vec<D> = x[e * spec.inputs..(e + 1) * spec.inputs]
            .iter()
            .map(|&xi| D::from(xi))
            .collect();
        let z = linear(spec, theta, "head", &hidden(spec, v, theta, &xe));
        // the logit of largest real part (common's `fold(-inf, f64::max)`)
        let m = z
            .iter()
            .copied()
            .reduce(|a, b| if b.re() > a.re() { b } else { a })
            .unwrap();
        let lse = m + z
            .iter()
            .fold(D::from(0.0), |s, &zc| s + (zc - m).exp())
            .ln();
        total += lse - z[label];
    }
    total / n as f64
}

/// The oracle's value, gradient and Hessian (row-major `dim × dim`) at `theta`: entry
/// `(i, j)` is the `eps1eps2` part of the loss with `theta_i` seeded in `eps1` and `theta_j`
/// in `eps2` (both in the same number for `i == j`).
struct Oracle {
    value: f64,
    grad: Vec<f64>,
    hess: Vec<f64>,
}

fn oracle(c: &Case) -> Oracle {
    let dim = c.theta.len();
    let mut hess = vec![0.0; dim * dim];
    let mut grad = vec![0.0; dim];
    let mut value = 0.0;
    let mut td: Vec<HyperDual64> = c.theta.iter().map(|&t| HyperDual64::from_re(t)).collect();
    for i in 0..dim {
        for j in i..dim {
            td[i].eps1 = 1.0;
            td[j].eps2 = 1.0;
            let l = oracle_loss(&c.spec, c.variant, &td, &c.x, &c.y);
            td[i].eps1 = 0.0;
            td[j].eps2 = 0.0;
            hess[i * dim + j] = l.eps1eps2;
            hess[j * dim + i] = l.eps1eps2;
            if j == i {
                grad[i] = l.eps1;
                value = l.re;
            }
        }
    }
    Oracle { value, grad, hess }
}

fn mat_vec(h: &[f64], v: &[f64]) -> Vec<f64> {
    h.chunks(v.len())
        .map(|row| row.iter().zip(v).map(|(a, b)| a * b).sum())
        .collect()
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
}

// ---------------------------------------------------------------------------------------
// The models.
// ---------------------------------------------------------------------------------------

/// One tiny MLP at one `theta` over 5 random examples.
struct Case {
    name: String,
    spec: ModelSpec,
    variant: Variant,
    /// The variant's full `theta` (learned scales at the end).
    theta: Vec<f64>,
    x: Vec<f64>,
    y: Vec<usize>,
}

impl Case {
    fn new(
        act: Activation,
        variant: Variant,
        depth: usize,
        alpha: f64,
        learned: bool,
        seed: u64,
    ) -> Case {
        let spec = ModelSpec {
            inputs: 3,
            width: 4,
            depth,
            classes: 3,
            activation: act,
            alpha,
            learned_alpha: learned,
            transformer: None,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = 5;
        let x: Vec<f64> = (0..n * spec.inputs)
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let y: Vec<usize> = (0..n).map(|_| rng.gen_range(0..spec.classes)).collect();
        // PyTorch's init, U(±1/sqrt(fan_in)): with inputs in [-1, 1] the pre-activations are
        // O(1), so tanh and GELU are far from saturation and the curvature is not tiny
        let theta0 = spec.init(&mut rng);
        let mut theta = spec.theta_for(variant, &theta0);
        // learned scales moved off their common start so that each is its own number
        for a in &mut theta[theta0.len()..] {
            *a = rng.gen_range(0.3..1.2);
        }
        let name = format!(
            "{act:?} {variant} depth {depth} alpha {alpha}{}",
            if learned { " learned" } else { "" }
        );
        Case {
            name,
            spec,
            variant,
            theta,
            x,
            y,
        }
    }

    fn net(&self) -> (Network, PreparedBatch) {
        let net = Network::new(&self.spec, self.variant);
        let batch = net.prepare(&self.x, &self.y);
        (net, batch)
    }

    /// `k` random directions laid end to end, entries in [-1, 1].
    fn directions(&self, k: usize, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..k * self.theta.len())
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect()
    }
}

const ACTS: [Activation; 3] = [Activation::Relu, Activation::Gelu, Activation::Tanh];

/// activation × variant × depth 0, 1, 2 (alpha 1), then per activation the residual model of
/// depth 2 with learned scales and with alpha = 0.5.
fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mut seed = 100;
    for act in ACTS {
        for variant in Variant::BOTH {
            for depth in 0..=2 {
                seed += 1;
                out.push(Case::new(act, variant, depth, 1.0, false, seed));
            }
        }
        seed += 1;
        out.push(Case::new(act, Variant::Residual, 2, 0.7, true, seed));
        seed += 1;
        out.push(Case::new(act, Variant::Residual, 2, 0.5, false, seed));
    }
    out
}

// ---------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------

#[test]
fn oracle_matches_the_reference_loss_and_dfdx_gradient() {
    for c in cases() {
        let (net, batch) = c.net();
        let o = oracle(&c);
        let dim = c.theta.len();
        assert_eq!(dim, net.dim(), "{}", c.name);

        // value: the f64 instance and the hyper-dual real part are common's forward with the
        // products commuted (exact in IEEE) and tanh's real part computed as sinh/cosh, a few
        // ulps; 1e-14 relative is ~50 ulps of a loss of order 1
        let plain_f64 = oracle_loss(&c.spec, c.variant, &c.theta, &c.x, &c.y);
        let dfdx = net.evaluate(&c.theta, &batch).loss;
        let scale = dfdx.abs().max(1.0);
        assert!((o.value - plain_f64).abs() <= 1e-14 * scale, "{}", c.name);
        // dfdx sums in another order: the existing tests allow 1e-12 (tests/model.rs)
        assert!(
            (o.value - dfdx).abs() <= 1e-12 * scale,
            "{}: oracle {} vs dfdx {dfdx}",
            c.name,
            o.value
        );
        // common::loss knows no learned scales: compare where they equal spec.alpha
        let mut at_common = c.theta.clone();
        let shared = c.spec.num_params();
        at_common[shared..].fill(c.spec.alpha);
        let reference = common::loss(&c.spec, c.variant, &at_common, &c.x, &c.y);
        let mine = oracle_loss(&c.spec, c.variant, &at_common, &c.x, &c.y);
        assert!(
            (mine - reference).abs() <= 1e-14 * reference.abs().max(1.0),
            "{}: oracle {mine} vs common::loss {reference}",
            c.name
        );

        // gradient: dfdx's reverse pass against the oracle's eps1 parts, rounding only on
        // both sides (sums of a few dozen O(1) terms): 1e-12 of max(1, max|g|)
        let mut g = vec![0.0; dim];
        net.loss_grad(&c.theta, &batch, &mut g);
        let err = max_diff(&o.grad, &g);
        let gscale = max_abs(&g).max(1.0);
        assert!(
            err <= 1e-12 * gscale,
            "{}: gradient differs by {err:e} (max|g| {:e})",
            c.name,
            max_abs(&g)
        );

        // second derivatives: each Hessian column against central differences of dfdx's
        // gradient along the unit vector at fd_step 1e-5. docs/method.md ("Error"): truncation
        // ~1e-10 relative, rounding ~1e-11 ‖g‖; within a ReLU region the difference is exact
        // up to rounding. 1e-6 of max(1, max|H|) catches any wrong term of the oracle (a
        // missing cross term is of order |H|) with four orders to spare.
        let loss = BatchLoss {
            net: &net,
            batch: &batch,
        };
        let mut fd = FdHvp::new(&loss, &c.theta, 1e-5);
        let hscale = max_abs(&o.hess).max(1.0);
        let mut e = vec![0.0; dim];
        let mut col = vec![0.0; dim];
        let mut worst = 0.0f64;
        for j in 0..dim {
            e[j] = 1.0;
            fd.hvp(&e, &mut col);
            e[j] = 0.0;
            let want: Vec<f64> = (0..dim).map(|i| o.hess[i * dim + j]).collect();
            worst = worst.max(max_diff(&col, &want));
        }
        assert!(
            worst <= 1e-6 * hscale,
            "{}: oracle Hessian vs finite differences {worst:e} (max|H| {:e})",
            c.name,
            max_abs(&o.hess)
        );
        // a Hessian that is not all zeros, or the checks above would be vacuous
        assert!(max_abs(&o.hess) > 1e-3, "{}", c.name);
        eprintln!(
            "{}: dim {dim} value {:.3e} grad {err:.1e} (max|g| {:.2}) H vs FD {worst:.1e} (max|H| {:.2})",
            c.name,
            (o.value - dfdx).abs(),
            max_abs(&g),
            max_abs(&o.hess)
        );
    }
}

#[test]
fn exact_products_equal_the_oracle_hessian() {
    for c in cases() {
        let (net, batch) = c.net();
        let o = oracle(&c);
        let dim = c.theta.len();
        let Ok(exact) = net.exact_hvp(&c.theta, &batch) else {
            panic!("{}: exact_hvp refused an MLP", c.name);
        };
        assert_eq!(exact.dim(), dim, "{}", c.name);
        // exact against exact: both are sums of O(dim) products of O(1) factors computed in
        // different orders, so they differ by rounding, a few hundred ulps of the largest
        // entry at most; 1e-12 · max(1, max|H|) is ~4500 ulps and far below any wrong term
        // (a missing term is of the order of the entries, >= 1e-3 here)
        let tol = 1e-12 * max_abs(&o.hess).max(1.0);
        let mut out = vec![0.0; dim];
        let mut worst = 0.0f64;
        for (r, v) in c.directions(3, 7).chunks(dim).enumerate() {
            exact.hvp(v, &mut out);
            let want = mat_vec(&o.hess, v);
            let err = max_diff(&out, &want);
            worst = worst.max(err);
            assert!(
                err <= tol,
                "{}: random direction {r}: |Hv - oracle| {err:e} > {tol:e}",
                c.name
            );
        }
        let mut e = vec![0.0; dim];
        for j in 0..dim {
            e[j] = 1.0;
            exact.hvp(&e, &mut out);
            e[j] = 0.0;
            let want: Vec<f64> = (0..dim).map(|i| o.hess[i * dim + j]).collect();
            let err = max_diff(&out, &want);
            worst = worst.max(err);
            assert!(
                err <= tol,
                "{}: column {j}: |He_j - oracle| {err:e} > {tol:e}",
                c.name
            );
        }
        eprintln!(
            "{}: exact vs oracle {worst:.1e} (max|H| {:.2})",
            c.name,
            max_abs(&o.hess)
        );
    }
}

/// The exact pass's own forward and backward at theta (what every product's tangents are
/// taken around): its loss and gradient against the oracle's, to the same rounding-level
/// tolerance as the products (a wrong activation, scale or layer order shows at O(1e-2)).
#[test]
fn the_pass_at_theta_has_the_oracle_loss_and_gradient() {
    for c in cases() {
        let (net, batch) = c.net();
        let o = oracle(&c);
        let exact = net.exact_hvp(&c.theta, &batch).unwrap();
        let tol = 1e-12 * max_abs(&o.grad).max(1.0);
        let err = max_diff(exact.gradient(), &o.grad);
        assert!(
            err <= tol,
            "{}: gradient |exact - oracle| {err:e} > {tol:e}",
            c.name
        );
        let lerr = (exact.loss() - o.value).abs();
        assert!(
            lerr <= 1e-12 * o.value.abs().max(1.0),
            "{}: loss differs by {lerr:e}",
            c.name
        );
    }
}

#[test]
fn block_products_equal_single_products() {
    for c in cases() {
        let (net, batch) = c.net();
        let dim = c.theta.len();
        let Ok(exact) = net.exact_hvp(&c.theta, &batch) else {
            panic!("{}: exact_hvp refused an MLP", c.name);
        };
        let k = 7;
        let vs = c.directions(k, 11);
        let mut block = vec![0.0; k * dim];
        exact.hvp_block(&vs, &mut block);
        let mut single = vec![0.0; k * dim];
        for (v, o) in vs.chunks(dim).zip(single.chunks_mut(dim)) {
            exact.hvp(v, o);
        }
        // checked: on the development machine the block equals the single products bit for
        // bit in every case here. The contract (ExactHvp::hvp_block) is only "up to the
        // rounding of a wider matrix product": the block's products have k times more rows,
        // which may select another SIMD kernel or remainder path on another CPU, so the test
        // asserts 1e-14 of the largest entry (~45 ulps) rather than bitwise equality
        let err = max_diff(&block, &single);
        let tol = 1e-14 * max_abs(&single).max(1.0);
        assert!(err <= tol, "{}: block vs single {err:e} > {tol:e}", c.name);
        eprintln!("{}: block vs single {err:e}", c.name);
    }
}

#[test]
fn the_transformer_has_no_exact_products() {
    let spec = common::tiny_transformer();
    let theta0 = spec.init(&mut ChaCha8Rng::seed_from_u64(3));
    for variant in Variant::BOTH {
        let net = Network::new(&spec, variant);
        let (x, y) = common::sentences(6, 4, 2..=5);
        let batch = net.prepare(&x, &y);
        let theta = spec.theta_for(variant, &theta0);
        assert!(
            net.exact_hvp(&theta, &batch).is_err(),
            "{variant}: the transformer got exact products"
        );
    }
}

#[test]
fn exact_products_agree_with_finite_differences_for_tanh() {
    // docs/method.md, "Error": central differences at fd_step = 1e-5 carry a truncation error
    // (h²/6) ∂³g[v, v, v] of about 1e-10 relative and rounding ≈ ε ‖g‖ / h ≈ 1e-11 ‖g‖ for a
    // loss three times differentiable along v (tanh is smooth); 1e-7 relative to max|Hv|
    // leaves three orders above that and stays far below any real disagreement
    for c in cases()
        .into_iter()
        .filter(|c| c.spec.activation == Activation::Tanh)
    {
        let (net, batch) = c.net();
        let dim = c.theta.len();
        let Ok(exact) = net.exact_hvp(&c.theta, &batch) else {
            panic!("{}: exact_hvp refused an MLP", c.name);
        };
        let loss = BatchLoss {
            net: &net,
            batch: &batch,
        };
        let mut fd = FdHvp::new(&loss, &c.theta, 1e-5);
        let mut a = vec![0.0; dim];
        let mut b = vec![0.0; dim];
        for (r, v) in c.directions(4, 13).chunks(dim).enumerate() {
            exact.hvp(v, &mut a);
            fd.hvp(v, &mut b);
            let rel = common::max_rel(&b, &a);
            assert!(
                rel <= 1e-7,
                "{}: direction {r}: finite differences vs exact {rel:e} relative",
                c.name
            );
            eprintln!("{}: direction {r}: FD vs exact {rel:.1e}", c.name);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Blocks of unit vectors: the dense Hessian's directions, for which `ExactHvp` skips the
// terms that are zero (forward tangents below the first layer a block touches, weight
// tangents of the layers it does not touch).
// ---------------------------------------------------------------------------------------

/// The unit vectors `e_i`, `i` in `idx`, laid end to end.
fn unit_vectors(dim: usize, idx: &[usize]) -> Vec<f64> {
    let mut vs = vec![0.0; idx.len() * dim];
    for (j, &i) in idx.iter().enumerate() {
        vs[j * dim + i] = 1.0;
    }
    vs
}

/// `exact.hvp_block(vs)` against the oracle's `H v`, every column; returns the largest error.
/// Tolerance as in `exact_products_equal_the_oracle_hessian`: exact against exact, rounding
/// only, 1e-12 · max(1, max|H|). For a unit vector the oracle's `H e_i` is column `i` itself
/// (the other products are exact zeros). `out` starts as NaN, and `max_diff` skips NaN, so
/// every entry is also checked to be written and finite.
fn check_block(c: &Case, exact: &ExactHvp, hess: &[f64], vs: &[f64], what: &str) -> f64 {
    let dim = c.theta.len();
    let tol = 1e-12 * max_abs(hess).max(1.0);
    let mut out = vec![f64::NAN; vs.len()];
    exact.hvp_block(vs, &mut out);
    let mut worst = 0.0f64;
    for (j, (v, got)) in vs.chunks(dim).zip(out.chunks(dim)).enumerate() {
        assert!(
            got.iter().all(|x| x.is_finite()),
            "{}: {what}: direction {j}: a product entry is not finite",
            c.name
        );
        let err = max_diff(got, &mat_vec(hess, v));
        assert!(
            err <= tol,
            "{}: {what}: direction {j} of {}: |Hv - oracle| {err:e} > {tol:e}",
            c.name,
            vs.len() / dim
        );
        worst = worst.max(err);
    }
    worst
}

#[test]
fn dense_exact_hessian_equals_the_oracle_at_one_and_two_threads() {
    for c in cases() {
        let (net, batch) = c.net();
        let o = oracle(&c);
        let dim = c.theta.len();
        let Ok(exact) = net.exact_hvp(&c.theta, &batch) else {
            panic!("{}: exact_hvp refused an MLP", c.name);
        };
        // each column is an exact product within 1e-12 · max(1, max|H|) of the oracle
        // (exact_products_equal_the_oracle_hessian), and (a + b) / 2 of two such numbers is
        // as close to the oracle's symmetric entry
        let tol = 1e-12 * max_abs(&o.hess).max(1.0);
        let mut by_threads = Vec::new();
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            // the block width is min(block_size, ceil(dim / (4 · threads))): 19 and 10
            // columns for the largest models here, so blocks straddle tensors and layers
            let dense = pool
                .install(|| dense_hessian_exact(&exact, &AtomicBool::new(false), &|_| {}))
                .unwrap_or_else(|e| panic!("{}: {threads} threads: {e}", c.name));
            assert_eq!(dense.n, dim, "{}", c.name);
            assert!(
                dense.data.iter().all(|x| x.is_finite()),
                "{}: {threads} threads: an entry is not finite",
                c.name
            );
            let err = max_diff(&dense.data, &o.hess);
            assert!(
                err <= tol,
                "{}: {threads} threads: dense vs oracle {err:e} > {tol:e}",
                c.name
            );
            // a column and the matching row are the same second derivatives computed in
            // different orders: rounding only, a few ulps of max|H| (the module's doc says
            // ~1e-16); 1e-14 (~45 ulps) fails on any term that breaks the symmetry
            assert!(
                dense.asymmetry < 1e-14,
                "{}: {threads} threads: asymmetry {:e}",
                c.name,
                dense.asymmetry
            );
            eprintln!(
                "{}: {threads} threads: dense vs oracle {err:.1e} asymmetry {:.1e} (max|H| {:.2})",
                c.name,
                dense.asymmetry,
                max_abs(&o.hess)
            );
            by_threads.push(dense.data);
        }
        eprintln!(
            "{}: 1 vs 2 threads {:.1e}",
            c.name,
            max_diff(&by_threads[0], &by_threads[1])
        );
    }
}

#[test]
fn unit_blocks_across_tensor_and_layer_boundaries_equal_the_oracle() {
    for c in cases() {
        let (net, batch) = c.net();
        let o = oracle(&c);
        let dim = c.theta.len();
        let layout = net.layout();
        assert_eq!(layout.len, dim, "{}", c.name);
        let Ok(exact) = net.exact_hvp(&c.theta, &batch) else {
            panic!("{}: exact_hvp refused an MLP", c.name);
        };
        let t = |name: &str| {
            layout
                .get(name)
                .unwrap_or_else(|| panic!("{}: no {name}", c.name))
                .range()
        };
        let (stem_w, stem_b) = (t("stem.weight"), t("stem.bias"));
        let (head_w, head_b) = (t("head.weight"), t("head.bias"));
        let alphas: Vec<usize> = layout
            .tensors
            .iter()
            .filter(|t| t.name.ends_with(".alpha"))
            .map(|t| t.offset)
            .collect();
        if c.spec.learned_alpha && c.variant == Variant::Residual {
            // the learned scales are the last entries of theta, after the head
            assert_eq!(alphas.len(), c.spec.depth, "{}", c.name);
            let tail: Vec<usize> = (dim - c.spec.depth..dim).collect();
            assert_eq!(alphas, tail, "{}", c.name);
        } else {
            assert!(alphas.is_empty(), "{}", c.name);
        }
        let mut blocks: Vec<(String, Vec<usize>)> = Vec::new();
        // every boundary between consecutive tensors: the last (up to) 3 entries of one with
        // the first 3 of the next (stem.bias | blocks.0.weight, blocks.1.bias | head.weight,
        // head.bias | blocks.0.alpha, weight | bias inside a layer, ...)
        for pair in layout.tensors.windows(2) {
            let (a, b) = (pair[0].range(), pair[1].range());
            let mut idx: Vec<usize> = (a.end - a.len().min(3)..a.end).collect();
            idx.extend(b.start..b.start + b.len().min(3));
            blocks.push((format!("end of {} + {}", pair[0].name, pair[1].name), idx));
        }
        // only the head's parameters: the first layer touched is the head, no hidden layer
        // has a forward tangent
        blocks.push((
            "head only".into(),
            vec![
                head_w.start,
                head_w.start + 5,
                head_b.start + 1,
                head_w.end - 1,
                head_b.end - 1,
            ],
        ));
        // the stem and the head, in either order, with the blocks between untouched
        blocks.push(("stem + head".into(), vec![stem_w.start + 4, head_b.end - 1]));
        blocks.push((
            "head + stem".into(),
            vec![head_w.start + 7, stem_b.start + 1],
        ));
        // a zero direction among unit vectors: its product is zero
        blocks.push((
            "stem.bias, zero, head".into(),
            vec![stem_b.start, head_w.start],
        ));
        if c.spec.depth > 0 {
            // only the last block: the first touched layer is the last hidden one
            let last = c.spec.depth - 1;
            let (bw, bb) = (
                t(&format!("blocks.{last}.weight")),
                t(&format!("blocks.{last}.bias")),
            );
            blocks.push((
                format!("blocks.{last} only"),
                vec![bw.start + 1, bw.end - 2, bb.start + 2],
            ));
            blocks.push((
                format!("blocks.{last} + head"),
                vec![head_w.start + 2, bb.end - 1],
            ));
        }
        if !alphas.is_empty() {
            let mut idx: Vec<usize> = (head_b.end - 3..head_b.end).collect();
            idx.extend(&alphas);
            blocks.push(("end of head.bias + every alpha".into(), idx));
            blocks.push(("every alpha".into(), alphas.clone()));
            let mut rev = alphas.clone();
            rev.reverse();
            blocks.push(("every alpha, reversed".into(), rev));
            blocks.push(("last alpha".into(), vec![*alphas.last().unwrap()]));
            blocks.push((
                "last alpha + stem".into(),
                vec![*alphas.last().unwrap(), stem_w.start],
            ));
        }
        // all of the above as one block
        let all: Vec<usize> = blocks.iter().flat_map(|(_, i)| i.clone()).collect();
        blocks.push(("every block above at once".into(), all));
        let mut worst = 0.0f64;
        for (what, idx) in &blocks {
            let mut vs = unit_vectors(dim, idx);
            if what == "stem.bias, zero, head" {
                // insert the zero direction in the middle
                vs.splice(dim..dim, std::iter::repeat_n(0.0, dim));
            }
            worst = worst.max(check_block(&c, &exact, &o.hess, &vs, what));
        }
        eprintln!(
            "{}: {} unit blocks vs oracle {worst:.1e} (max|H| {:.2})",
            c.name,
            blocks.len(),
            max_abs(&o.hess)
        );
    }
}

#[test]
fn a_block_of_several_passes_then_smaller_blocks_equal_the_oracle() {
    for c in cases() {
        let (net, batch) = c.net();
        let o = oracle(&c);
        let dim = c.theta.len();
        let layout = net.layout();
        let Ok(exact) = net.exact_hvp(&c.theta, &batch) else {
            panic!("{}: exact_hvp refused an MLP", c.name);
        };
        let t = |name: &str| layout.get(name).unwrap().range();
        let (stem_b, head_w, head_b) = (t("stem.bias"), t("head.weight"), t("head.bias"));
        let bs = exact.block_size();
        // more directions than one pass takes: bs of them (unit vectors cycling through
        // theta, every third a random direction), then 5 in the head only, so the second
        // pass has another k and another first touched layer than the first
        let k = bs + 5;
        let random = c.directions(bs, 17);
        let mut vs = vec![0.0; k * dim];
        for j in 0..bs {
            let v = &mut vs[j * dim..(j + 1) * dim];
            if j % 3 == 2 {
                v.copy_from_slice(&random[j * dim..(j + 1) * dim]);
            } else {
                v[j % dim] = 1.0;
            }
        }
        let head = [
            head_b.end - 1,
            head_w.start,
            head_w.end - 1,
            head_b.start,
            head_w.start + 6,
        ];
        for (j, &i) in head.iter().enumerate() {
            vs[(bs + j) * dim + i] = 1.0;
        }
        let mut worst = check_block(&c, &exact, &o.hess, &vs, "several passes");
        // then, on the same ExactHvp (its workspaces kept from the passes above), smaller
        // blocks: one straddling the stem and the next layer, one of a single direction, one
        // of random directions, and the several passes once more
        // the tensor after stem.bias: blocks.0.weight, or head.weight at depth 0
        let next = layout
            .tensors
            .windows(2)
            .find(|p| p[0].name == "stem.bias")
            .unwrap()[1]
            .range();
        let mut idx: Vec<usize> = (stem_b.end - 3..stem_b.end).collect();
        idx.extend(next.start..next.start + 3);
        let small: [(&str, Vec<f64>); 4] = [
            ("end of stem.bias + next", unit_vectors(dim, &idx)),
            ("one head direction", unit_vectors(dim, &[head_w.start + 3])),
            ("3 random directions", c.directions(3, 19)),
            ("several passes again", vs.clone()),
        ];
        for (what, vs) in &small {
            worst = worst.max(check_block(&c, &exact, &o.hess, vs, what));
        }
        eprintln!(
            "{}: {k} directions in passes of {bs}, then smaller blocks: vs oracle {worst:.1e} \
             (max|H| {:.2})",
            c.name,
            max_abs(&o.hess)
        );
    }
}
