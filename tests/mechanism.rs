//! The eigenvector basis behind the pruning mechanism (article §4.2) against exact oracles:
//! a Hessian `H = V Λ Vᵀ` built from a known rotation `V` and spectrum `Λ`, its loss written
//! out by hand so the finite-difference path can be used and its error predicted exactly.

use std::sync::atomic::AtomicBool;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use resprune::config::{HessianConfig, HessianMethod, ProductsChoice};
use resprune::curvature::lanczos::{lanczos_with_basis, LanczosOptions};
use resprune::curvature::{
    dense_basis, dense_hessian, dense_hessian_exact, mechanism, span_share, BasisSource, BatchLoss,
    DenseHessian, DensePath, FdHvp, Hvp, LossGrad, SpectrumOptions, BASIS_TOL,
};
use resprune::model::{Activation, ModelSpec, Network, Variant};

const N: usize = 40;
const FD_STEP: f64 = 1e-4;

/// `Λ`: well-separated extremes (top 9, 6, 4.5, 3.5, 3; bottom −2, −1.4, −1, −0.7, −0.5), a
/// spread middle in [0, 1], and a cluster of five equal eigenvalues 0.25 inside it.
fn spectrum() -> Vec<f64> {
    let mut lam = vec![9.0, 6.0, 4.5, 3.5, 3.0, -2.0, -1.4, -1.0, -0.7, -0.5];
    lam.extend([0.25; 5]);
    lam.extend((0..N - lam.len()).map(|i| i as f64 / (N - 15) as f64));
    lam
}

/// A seeded orthonormal `V` (modified Gram–Schmidt, twice, on a random matrix); `v[j]` is the
/// eigenvector of `spectrum()[j]`.
fn rotation(seed: u64) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v: Vec<Vec<f64>> = Vec::new();
    for _ in 0..N {
        let mut x: Vec<f64> = (0..N).map(|_| rng.gen_range(-1.0..1.0)).collect();
        for _ in 0..2 {
            for u in &v {
                let c = dot(u, &x);
                x.iter_mut().zip(u).for_each(|(a, b)| *a -= c * b);
            }
        }
        let nx = dot(&x, &x).sqrt();
        x.iter_mut().for_each(|a| *a /= nx);
        v.push(x);
    }
    v
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// `L(θ) = ½ θᵀHθ + c Σ_j (v_jᵀθ)⁴` with `H = V Λ Vᵀ`: the Hessian at `θ = 0` is `H`, and the
/// quartic term makes the central difference err by exactly `4 c h² Σ_j (v_jᵀd)³ v_j` in
/// direction `d` (step `h`), so along `v_j` the difference is `(λ_j + 4 c h²) v_j`.
struct Rotated {
    lam: Vec<f64>,
    v: Vec<Vec<f64>>,
    c: f64,
}

impl Rotated {
    fn new(c: f64) -> Rotated {
        Rotated {
            lam: spectrum(),
            v: rotation(5),
            c,
        }
    }

    fn h(&self) -> Vec<f64> {
        let mut h = vec![0.0; N * N];
        for (l, v) in self.lam.iter().zip(&self.v) {
            for i in 0..N {
                for j in 0..N {
                    h[i * N + j] += l * v[i] * v[j];
                }
            }
        }
        h
    }

    fn h_times(&self, x: &[f64]) -> Vec<f64> {
        let h = self.h();
        (0..N).map(|i| dot(&h[i * N..(i + 1) * N], x)).collect()
    }

    /// Indices of `lam` sorted descending (top first) and ascending (bottom first).
    fn order(&self) -> (Vec<usize>, Vec<usize>) {
        let mut up: Vec<usize> = (0..N).collect();
        up.sort_by(|a, b| self.lam[*a].total_cmp(&self.lam[*b]));
        let down = up.iter().rev().copied().collect();
        (down, up)
    }
}

impl LossGrad for Rotated {
    fn dim(&self) -> usize {
        N
    }

    fn loss_grad(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let mut loss = 0.0;
        grad.iter_mut().for_each(|g| *g = 0.0);
        for (l, v) in self.lam.iter().zip(&self.v) {
            let p = dot(v, theta);
            loss += 0.5 * l * p * p + self.c * p.powi(4);
            let s = l * p + 4.0 * self.c * p.powi(3);
            grad.iter_mut().zip(v).for_each(|(g, vi)| *g += s * vi);
        }
        loss
    }
}

fn never() -> AtomicBool {
    AtomicBool::new(false)
}

/// `‖m‖_F`, an upper bound on `‖m‖₂`.
fn frobenius(m: &[f64]) -> f64 {
    m.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// `min ‖a ∓ b‖ = 2 sin(θ/2)` for unit vectors at angle `θ` (the sign of either ignored): for
/// the small angles here it is `sin θ` within 1% (`√(1 − cos²)` would drown in rounding below
/// 1e-8), so it is held against `1.01 ×` a bound on `sin θ`.
fn sin_angle(a: &[f64], b: &[f64]) -> f64 {
    let d = |s: f64| norm(&a.iter().zip(b).map(|(x, y)| x - s * y).collect::<Vec<_>>());
    d(1.0).min(d(-1.0)) / 1.01
}

/// The dense basis of the finite-difference Hessian of [`Rotated`] with `c = 1`:
/// eigen-residuals small on the matrix it came from, orthonormal, the eigenvectors of the exact
/// `H` to within the Davis–Kahan bound `‖E‖₂ / gap` of the finite-difference error `E`.
#[test]
fn dense_basis_vectors_are_orthonormal_eigenvectors_within_the_fd_error() {
    let loss = Rotated::new(1.0);
    let fd = dense_hessian(&loss, &vec![0.0; N], FD_STEP, &never(), &|_| {}).unwrap();
    let exact = loss.h();
    let e: Vec<f64> = fd.data.iter().zip(&exact).map(|(a, b)| a - b).collect();
    // ‖E‖₂ ≤ ‖E‖_F; each column's error is 4 c h² Σ_j (v_j,i)³ v_j, of order 1e-8 here
    let e2 = frobenius(&e);
    assert!(
        e2 > 1e-10 && e2 < 1e-6,
        "the FD error is not what the test assumes: {e2}"
    );

    let (values, basis, path) = dense_basis(&fd, 5, 5).unwrap();
    assert_eq!(path, DensePath::InverseIteration);
    assert_eq!(basis.source, BasisSource::Dense);
    assert_eq!((basis.top.len(), basis.bottom.len()), (5, 5));
    assert_eq!(values, fd.eigenvalues().unwrap());
    let scale = 9.0;
    let all: Vec<(&Vec<f64>, f64)> = basis
        .top
        .iter()
        .zip(basis.top_values.iter().copied())
        .chain(basis.bottom.iter().zip(basis.bottom_values.iter().copied()))
        .collect();
    for (u, l) in &all {
        // the solver's own accuracy, on the matrix it was given
        let hu: Vec<f64> = (0..N)
            .map(|i| dot(&fd.data[i * N..(i + 1) * N], u))
            .collect();
        let r = norm(
            &hu.iter()
                .zip(u.iter())
                .map(|(a, b)| a - l * b)
                .collect::<Vec<_>>(),
        );
        assert!(r <= BASIS_TOL * scale, "residual {r} for λ = {l}");
        // on the exact H: within ‖E‖₂ (Weyl for the value, the residual bound for the pair)
        let hu = loss.h_times(u);
        let r = norm(
            &hu.iter()
                .zip(u.iter())
                .map(|(a, b)| a - l * b)
                .collect::<Vec<_>>(),
        );
        assert!(r <= e2 + BASIS_TOL * scale, "exact residual {r} > {e2}");
    }
    for (i, (a, _)) in all.iter().enumerate() {
        for (j, (b, _)) in all.iter().enumerate() {
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((dot(a, b) - want).abs() < 1e-13, "uᵢᵀuⱼ for ({i}, {j})");
        }
    }
    // values and vectors against the oracle, in order: top 9, 6, 4.5, 3.5, 3 (gaps ≥ 0.5)
    let (down, up) = loss.order();
    for (k, u) in basis.top.iter().enumerate() {
        let j = down[k];
        assert!((basis.top_values[k] - loss.lam[j]).abs() <= e2);
        let gap = 0.5;
        assert!(sin_angle(u, &loss.v[j]) <= e2 / gap + 1e-12, "top {k}");
    }
    for (k, u) in basis.bottom.iter().enumerate() {
        let j = up[k];
        assert!((basis.bottom_values[k] - loss.lam[j]).abs() <= e2);
        let gap = 0.2;
        assert!(sin_angle(u, &loss.v[j]) <= e2 / gap + 1e-12, "bottom {k}");
    }
    // the gaps after the fifth: 3 − 24/25 (top), 0 − (−0.5) (bottom), each within 2‖E‖₂
    assert!((basis.top_gap.unwrap() - 2.04).abs() <= 2.0 * e2);
    assert!((basis.bottom_gap.unwrap() - 0.5).abs() <= 2.0 * e2);
}

/// Along an exact eigenvector, the Rayleigh quotient through the finite-difference path is
/// `λ + 4 c h²` (the quartic term's error, see [`Rotated`]), and `λ` with `c = 0`.
#[test]
fn the_rayleigh_quotient_of_an_eigenvector_is_its_eigenvalue_to_the_fd_error() {
    for c in [0.0, 1.0] {
        let loss = Rotated::new(c);
        let theta = vec![0.0; N];
        let mut hvp = FdHvp::new(&loss, &theta, FD_STEP);
        for j in [0, 3, 7, 12, 30] {
            let v = &loss.v[j];
            let mut hv = vec![0.0; N];
            hvp.hvp(v, &mut hv);
            let m = mechanism(v, &hv, None);
            // h = fd_step / ‖v‖∞ at θ = 0 (fd_step_for)
            let h = FD_STEP / v.iter().fold(0.0f64, |a, x| a.max(x.abs()));
            let predicted = loss.lam[j] + 4.0 * c * h * h;
            // rounding: ε |g| / h with |g| ~ λ h, so ~1e-15; 1e-12 is margin
            assert!(
                (m.rayleigh - predicted).abs() < 1e-12,
                "c = {c}, λ = {}: {} vs {predicted}",
                loss.lam[j],
                m.rayleigh
            );
            // a scaled step has the same quotient (the quotient is scale-free)
            let v3: Vec<f64> = v.iter().map(|x| -3.0 * x).collect();
            let hv3: Vec<f64> = hv.iter().map(|x| -3.0 * x).collect();
            assert!((mechanism(&v3, &hv3, None).rayleigh - m.rayleigh).abs() < 1e-13);
        }
    }
}

/// Shares are in [0, 1]; 1 for a step inside the top-k span, 0 for one orthogonal to it; and
/// for a random step they match the shares on the oracle's eigenvectors.
#[test]
fn span_shares_are_one_inside_zero_outside_and_match_the_oracle() {
    let loss = Rotated::new(0.0);
    let fd = dense_hessian(&loss, &vec![0.0; N], FD_STEP, &never(), &|_| {}).unwrap();
    let (_, basis, _) = dense_basis(&fd, 5, 5).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let coef: Vec<f64> = (0..5).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let inside: Vec<f64> = (0..N)
        .map(|i| basis.top.iter().zip(&coef).map(|(u, c)| c * u[i]).sum())
        .collect();
    let hdw = loss.h_times(&inside);
    let m = mechanism(&inside, &hdw, Some(&basis));
    // the basis is orthonormal to 1e-13 (first test), so the share is 1 to ~1e-13 and the
    // bottom share at most 25 (1e-13)² ≈ 1e-25
    assert!(
        (m.top_share.unwrap() - 1.0).abs() < 1e-12,
        "{:?}",
        m.top_share
    );
    assert!(m.bottom_share.unwrap() < 1e-20, "{:?}", m.bottom_share);
    assert_eq!((m.top_k, m.bottom_k), (5, 5));
    assert_eq!(m.source, Some(BasisSource::Dense));
    assert_eq!(m.top_gap, basis.top_gap);
    // its Rayleigh quotient is the weighted mean of the top eigenvalues
    let wmean = coef
        .iter()
        .zip(&basis.top_values)
        .map(|(c, l)| c * c * l)
        .sum::<f64>()
        / coef.iter().map(|c| c * c).sum::<f64>();
    assert!(
        (m.rayleigh - wmean).abs() < 1e-11,
        "{} vs {wmean}",
        m.rayleigh
    );

    // a random step with its top-k part projected out
    let mut out: Vec<f64> = (0..N).map(|_| rng.gen_range(-1.0..1.0)).collect();
    for _ in 0..2 {
        for u in &basis.top {
            let c = dot(u, &out);
            out.iter_mut().zip(u).for_each(|(a, b)| *a -= c * b);
        }
    }
    let share = span_share(&out, &basis.top);
    assert!(share < 1e-20, "{share}");

    // random steps: in [0, 1], top + bottom ≤ 1 (disjoint orthonormal sets), and equal to
    // the shares on the exact eigenvectors: at c = 0 the FD error E is rounding, ≲ 1e-12, and
    // the gaps are ≥ 0.2, so each vector is the oracle's within ~1e-11 (Davis–Kahan) and each
    // share within twice that; 1e-9 is margin
    let (down, up) = loss.order();
    for _ in 0..20 {
        let dw: Vec<f64> = (0..N).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let m = mechanism(&dw, &loss.h_times(&dw), Some(&basis));
        let (t, b) = (m.top_share.unwrap(), m.bottom_share.unwrap());
        assert!((0.0..=1.0).contains(&t) && (0.0..=1.0).contains(&b));
        assert!(t + b <= 1.0 + 1e-12);
        let oracle = |idx: &[usize]| {
            idx.iter()
                .map(|&j| dot(&loss.v[j], &dw).powi(2))
                .sum::<f64>()
                / dot(&dw, &dw)
        };
        assert!(
            (t - oracle(&down[..5])).abs() < 1e-9,
            "{t} vs {}",
            oracle(&down[..5])
        );
        assert!(
            (b - oracle(&up[..5])).abs() < 1e-9,
            "{b} vs {}",
            oracle(&up[..5])
        );
    }
}

/// A cluster of five equal eigenvalues 0.25 straddling the k-th boundary: the basis holds two
/// orthonormal vectors of the cluster's eigenspace (which two is arbitrary), and the zero gap
/// says the boundary is not resolved.
#[test]
fn a_cluster_straddling_the_boundary_is_spanned_in_part_and_flagged_by_a_zero_gap() {
    let loss = Rotated::new(0.0);
    let fd = dense_hessian(&loss, &vec![0.0; N], FD_STEP, &never(), &|_| {}).unwrap();
    let (_, up) = loss.order();
    // ascending: 5 negatives, then the middle values 0, 0.04, …, 0.24 (7 of them), then the
    // cluster at 0.25 (5), so bottom_k = 14 takes 2 of the cluster's 5
    let lam = &loss.lam;
    assert!(
        up[12..17].iter().all(|&j| lam[j] == 0.25),
        "the cluster is not at 12..17"
    );
    let (_, basis, path) = dense_basis(&fd, 1, 14).unwrap();
    assert_eq!(path, DensePath::InverseIteration);
    // the gap to the 15th is the cluster's width: rounding only
    assert!(basis.bottom_gap.unwrap() < 1e-12, "{:?}", basis.bottom_gap);
    let cluster: Vec<&Vec<f64>> = up[12..17].iter().map(|&j| &loss.v[j]).collect();
    for u in &basis.bottom[12..14] {
        let inside: f64 = cluster.iter().map(|v| dot(v, u).powi(2)).sum();
        // rounding E ~1e-11 against the gap 0.01 to the cluster's neighbours
        assert!((inside - 1.0).abs() < 1e-9, "{inside}");
    }
    assert!(dot(&basis.bottom[12], &basis.bottom[13]).abs() < 1e-13);
    // and the vectors below the cluster are the oracle's, with gaps ≥ 0.01 between them
    for (k, u) in basis.bottom[..12].iter().enumerate() {
        let s = sin_angle(u, &loss.v[up[k]]);
        assert!(s < 1e-8, "bottom {k}: {s}");
    }
}

/// Lanczos through the finite-difference path: the Ritz vector of the top eigenvalue (9, gap
/// 3 to the next) matches the dense eigenvector up to sign, within `residual / gap` each.
#[test]
fn a_ritz_vector_of_a_separated_top_eigenvalue_matches_the_dense_eigenvector() {
    let loss = Rotated::new(0.0);
    let theta = vec![0.0; N];
    let fd = dense_hessian(&loss, &theta, FD_STEP, &never(), &|_| {}).unwrap();
    let (_, dense, _) = dense_basis(&fd, 2, 2).unwrap();
    let mut hvp = FdHvp::new(&loss, &theta, FD_STEP);
    let opts = LanczosOptions {
        steps: 30,
        top_k: 2,
        bottom_k: 2,
        tol: 1e-10,
        seed: 3,
    };
    let (lz, ritz) = lanczos_with_basis(&mut hvp, &opts, 2, 2, &never()).unwrap();
    assert_eq!(ritz.source, BasisSource::Ritz);
    assert_eq!((ritz.top.len(), ritz.bottom.len()), (2, 2));
    assert_eq!(ritz.top_values[0], lz.top[0].value);
    assert_eq!(ritz.top_residuals[0], lz.top[0].residual);
    assert!(
        lz.converged,
        "Lanczos did not converge in {} steps",
        lz.steps
    );
    // the FD operator differs from H by rounding, ~1e-11 ‖H‖ at c = 0
    let op_err = 1e-10;
    let sin_ritz = sin_angle(&ritz.top[0], &loss.v[0]);
    assert!(
        sin_ritz <= (ritz.top_residuals[0] + op_err) / 3.0,
        "{sin_ritz}"
    );
    let sin_dense = sin_angle(&dense.top[0], &loss.v[0]);
    assert!(sin_angle(&ritz.top[0], &dense.top[0]) <= sin_ritz + sin_dense + 1e-12);
    let s = sin_angle(&ritz.top[0], &dense.top[0]);
    assert!(s < 1e-9, "{s}");
    // the Ritz residual is the real one, ‖H y − θ y‖, to the operator's error
    let y = &ritz.top[0];
    let hy = loss.h_times(y);
    let r = norm(
        &hy.iter()
            .zip(y)
            .map(|(a, b)| a - ritz.top_values[0] * b)
            .collect::<Vec<_>>(),
    );
    assert!(
        (r - ritz.top_residuals[0]).abs() <= op_err,
        "{r} vs {}",
        ritz.top_residuals[0]
    );
    // orthonormal, and the bottom one (−2, gap 0.6) is the oracle's too
    assert!((norm(y) - 1.0).abs() < 1e-14);
    assert!(dot(&ritz.top[0], &ritz.top[1]).abs() < 1e-12);
    assert!(dot(&ritz.top[0], &ritz.bottom[0]).abs() < 1e-12);
    assert!(sin_angle(&ritz.bottom[0], &loss.v[5]) <= (ritz.bottom_residuals[0] + op_err) / 0.6);
    // the gap estimate after the second Ritz value: 6 − 4.5
    assert!(
        (ritz.top_gap.unwrap() - 1.5).abs() < 1e-6,
        "{:?}",
        ritz.top_gap
    );
}

fn small_net() -> (ModelSpec, Vec<f64>, Vec<f64>, Vec<usize>) {
    let spec = ModelSpec {
        inputs: 3,
        width: 5,
        depth: 1,
        classes: 2,
        activation: Activation::Tanh,
        alpha: 1.0,
        learned_alpha: false,
        transformer: None,
    };
    let theta = spec.init(&mut ChaCha8Rng::seed_from_u64(4));
    let x: Vec<f64> = (0..60)
        .map(|i| ((i * 13 % 17) as f64 / 8.0) - 1.0)
        .collect();
    let y: Vec<usize> = (0..20).map(|i| (i / 3) % 2).collect();
    (spec, theta, x, y)
}

/// Through the spectrum stage: `basis = false` computes nothing; `true` gives the dense basis
/// of the spectrum's own Hessian (or Ritz vectors under Lanczos) and leaves the stored
/// spectrum exactly as it was; with either kind of products.
#[test]
fn the_spectrum_stage_gives_a_basis_only_when_asked_and_changes_nothing_else() {
    let (spec, theta, x, y) = small_net();
    let net = Network::new(&spec, Variant::Residual);
    let batch = net.prepare(&x, &y);
    let cases = [HessianMethod::Dense, HessianMethod::Lanczos]
        .into_iter()
        .flat_map(|m| {
            [ProductsChoice::FiniteDifferences, ProductsChoice::Exact].map(move |p| (m, p))
        });
    for (method, products) in cases {
        let cfg = HessianConfig {
            method,
            products,
            top_k: 3,
            bottom_k: 2,
            lanczos_steps: 40,
            ..Default::default()
        };
        let run = |basis: bool| {
            let opts = SpectrumOptions {
                cfg: &cfg,
                seed: 1,
                layers: Vec::new(),
                check: None,
                basis,
            };
            resprune::curvature::spectrum(&net, &theta, &batch, &opts, &never(), &|_| {}).unwrap()
        };
        let without = run(false);
        assert!(
            without.basis.is_none(),
            "{method:?}: a basis nobody asked for"
        );
        let with = run(true);
        assert_eq!(with.spectrum.products, products.resolve(true));
        assert_eq!(
            with.spectrum, without.spectrum,
            "{method:?}: the basis changed the record"
        );
        let b = with.basis.expect("asked for a basis");
        assert_eq!((b.top.len(), b.bottom.len()), (3, 2));
        let n = theta.len();
        assert!(b.top.iter().chain(&b.bottom).all(|u| u.len() == n));
        match method {
            HessianMethod::Dense => {
                assert_eq!(b.source, BasisSource::Dense);
                let ev = &with.spectrum.eigenvalues;
                assert_eq!(b.top_values, vec![ev[n - 1], ev[n - 2], ev[n - 3]]);
                assert_eq!(b.bottom_values, vec![ev[0], ev[1]]);
                // residuals on the very matrix the spectrum came from
                let loss = BatchLoss {
                    net: &net,
                    batch: &batch,
                };
                let h: DenseHessian = match products {
                    ProductsChoice::Exact => {
                        let exact = net.exact_hvp(&theta, &batch).unwrap();
                        dense_hessian_exact(&exact, &never(), &|_| {}).unwrap()
                    }
                    _ => dense_hessian(&loss, &theta, with.spectrum.fd_step, &never(), &|_| {})
                        .unwrap(),
                };
                let scale = ev[0].abs().max(ev[n - 1].abs());
                for (u, l) in b.top.iter().zip(&b.top_values) {
                    let hu: Vec<f64> = (0..n)
                        .map(|i| dot(&h.data[i * n..(i + 1) * n], u))
                        .collect();
                    let r = norm(&hu.iter().zip(u).map(|(a, c)| a - l * c).collect::<Vec<_>>());
                    assert!(r <= BASIS_TOL * scale, "residual {r}");
                }
            }
            _ => {
                assert_eq!(b.source, BasisSource::Ritz);
                let lz = with.spectrum.lanczos.as_ref().unwrap();
                let tops: Vec<f64> = lz.top.iter().take(3).map(|r| r.value).collect();
                assert_eq!(b.top_values, tops);
                assert_eq!(b.bottom_values[0], lz.bottom[0].value);
            }
        }
    }
}
