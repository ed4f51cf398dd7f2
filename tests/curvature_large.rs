//! Lanczos, stochastic Lanczos quadrature and Hutchinson against exact spectra: explicit
//! matrices with known (or faer-computed) eigenvalues, and the dense finite-difference Hessian of
//! a real network.

use std::sync::atomic::AtomicBool;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use resprune::curvature::hutchinson::{diagonal, hutchinson, HutchinsonOptions};
use resprune::curvature::lanczos::{lanczos, LanczosOptions, RitzValue};
use resprune::curvature::slq::{slq, SlqOptions};
use resprune::curvature::{dense_hessian, BatchLoss, FdHvp, Hvp};
use resprune::model::{Activation, ModelSpec, Network, Variant};

/// An exact HVP oracle: a dense symmetric `n × n` matrix, row-major.
struct MatHvp(Vec<f64>, usize);

impl Hvp for MatHvp {
    fn dim(&self) -> usize {
        self.1
    }

    fn hvp(&mut self, v: &[f64], out: &mut [f64]) {
        let n = self.1;
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.0[i * n..(i + 1) * n]
                .iter()
                .zip(v)
                .map(|(a, b)| a * b)
                .sum();
        }
    }
}

impl MatHvp {
    fn diagonal(d: &[f64]) -> MatHvp {
        let n = d.len();
        let mut m = vec![0.0; n * n];
        for (i, x) in d.iter().enumerate() {
            m[i * n + i] = *x;
        }
        MatHvp(m, n)
    }

    /// `G/√n + shift·I` with `G` symmetric, standard normal entries (a shifted GOE matrix: a
    /// semicircle spectrum on about `[shift − 2, shift + 2]`).
    fn random(n: usize, shift: f64, seed: u64) -> MatHvp {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut m = vec![0.0; n * n];
        let s = 1.0 / (n as f64).sqrt();
        for i in 0..n {
            for j in 0..=i {
                let g: f64 = StandardNormal.sample(&mut rng);
                m[i * n + j] = g * s;
                m[j * n + i] = g * s;
            }
            m[i * n + i] += shift;
        }
        MatHvp(m, n)
    }

    fn eigenvalues(&self) -> Vec<f64> {
        let n = self.1;
        faer::Mat::<f64>::from_fn(n, n, |i, j| self.0[i * n + j])
            .self_adjoint_eigenvalues(faer::Side::Lower)
            .unwrap()
    }

    fn trace(&self) -> f64 {
        (0..self.1).map(|i| self.0[i * self.1 + i]).sum()
    }

    /// `tr(H²) = ‖H‖_F²` for symmetric `H`.
    fn trace_sq(&self) -> f64 {
        self.0.iter().map(|x| x * x).sum()
    }

    /// `Σ_{i≠j} H_ij²`: for Rademacher `v`, `Var(vᵀ H v) = 2 ·` this.
    fn off_diagonal_sq(&self) -> f64 {
        let n = self.1;
        self.trace_sq() - (0..n).map(|i| self.0[i * n + i].powi(2)).sum::<f64>()
    }
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

/// Asserts `top` (largest first) and `bottom` (smallest first) match the ends of the ascending
/// `exact` to relative error `tol`, and returns the worst relative error.
fn check_extremes(
    top: &[RitzValue],
    bottom: &[RitzValue],
    exact: &[f64],
    k: usize,
    tol: f64,
) -> f64 {
    assert_eq!(top.len(), k);
    assert_eq!(bottom.len(), k);
    let n = exact.len();
    let mut worst = 0.0f64;
    for i in 0..k {
        let (t, b) = (
            rel(top[i].value, exact[n - 1 - i]),
            rel(bottom[i].value, exact[i]),
        );
        assert!(
            t < tol,
            "top {i}: {} vs {} (rel {t:e})",
            top[i].value,
            exact[n - 1 - i]
        );
        assert!(
            b < tol,
            "bottom {i}: {} vs {} (rel {b:e})",
            bottom[i].value,
            exact[i]
        );
        worst = worst.max(t).max(b);
    }
    worst
}

#[test]
fn lanczos_recovers_the_ends_of_a_known_diagonal_spectrum() {
    // A Hessian-like spectrum: a bulk of 490 eigenvalues on [-0.05, 0.5] (denser near zero),
    // five positive outliers and five negative ones.
    let bulk = 490;
    let mut d: Vec<f64> = (0..bulk)
        .map(|i| -0.05 + 0.55 * (i as f64 / (bulk - 1) as f64).powi(2))
        .collect();
    d.extend([3.0, 5.0, 8.0, 13.0, 40.0, -0.3, -0.5, -0.8, -1.3, -2.0]);
    let mut exact = d.clone();
    exact.sort_by(f64::total_cmp);
    let mut h = MatHvp::diagonal(&d);
    let opts = LanczosOptions {
        steps: 200,
        top_k: 5,
        bottom_k: 5,
        tol: 1e-12,
        seed: 11,
    };
    let r = lanczos(&mut h, &opts, &AtomicBool::new(false)).unwrap();
    assert!(r.converged, "not converged in {} steps", r.steps);
    assert!(
        r.steps < 200 && r.steps.is_multiple_of(5),
        "early stop on a check step"
    );
    assert_eq!(r.hvps, r.steps);
    assert_eq!((r.alpha.len(), r.beta.len()), (r.steps, r.steps));
    // The oracle is exact, so the only error is Lanczos's own: with residual r ≤ 1e-12 · 40 and
    // outliers separated by gaps ≥ 0.2, the eigenvalue error ≤ r²/gap is at rounding level; 1e-10
    // relative leaves room for rounding in the 500-long dot products.
    let worst = check_extremes(&r.top, &r.bottom, &exact, 5, 1e-10);
    let scale = 40.0;
    for v in r.top.iter().chain(&r.bottom) {
        assert!(
            v.residual <= opts.tol * scale,
            "residual {} above tol",
            v.residual
        );
        // The reported residual bounds the distance to the nearest true eigenvalue (symmetric H);
        // 1e-13 absolute covers rounding.
        let dist = exact
            .iter()
            .map(|x| (x - v.value).abs())
            .fold(f64::INFINITY, f64::min);
        assert!(
            dist <= v.residual + 1e-13,
            "dist {dist:e} > residual {:e}",
            v.residual
        );
    }
    eprintln!("diagonal: {} steps, worst rel error {worst:e}", r.steps);
}

#[test]
fn lanczos_matches_faer_on_a_random_symmetric_matrix() {
    let n = 300;
    let mut h = MatHvp::random(n, 0.0, 3);
    let exact = h.eigenvalues();
    let opts = LanczosOptions {
        steps: n,
        top_k: 5,
        bottom_k: 5,
        tol: 1e-10,
        seed: 5,
    };
    let r = lanczos(&mut h, &opts, &AtomicBool::new(false)).unwrap();
    assert!(r.converged);
    // The semicircle's edge eigenvalues sit ~n^(-2/3) apart, the hardest case for Lanczos; a
    // residual of 1e-10 · |λ|max (|λ| ≈ 2) bounds each error by 2e-10 absolute, 1e-10 relative,
    // so 1e-6 relative is a wide margin that still fails on any missed or ghost eigenvalue
    // (neighbours differ by ~1e-2 relative).
    let worst = check_extremes(&r.top, &r.bottom, &exact, 5, 1e-6);
    eprintln!("random n={n}: {} steps, worst rel error {worst:e}", r.steps);
}

/// A small tanh network (the article's shape with three classes, 703 parameters), its batch and
/// initial weights.
///
/// Why not larger: `DenseHessian::eigenvalues` runs faer's generic solver, which is
/// monomorphised into this crate and so compiled without optimisation in the dev profile: at
/// 1653 parameters it alone took 83 s in a debug test build (the dense Hessian itself 3 s), and
/// it scales as n³; at 703 parameters it takes a few seconds.
fn network() -> (Network, resprune::model::PreparedBatch, Vec<f64>) {
    let spec = ModelSpec {
        inputs: 10,
        width: 20,
        depth: 1,
        classes: 3,
        activation: Activation::Tanh,
        alpha: 1.0,
        learned_alpha: false,
        transformer: None,
    };
    let net = Network::new(&spec, Variant::Residual);
    let examples = 48;
    let x: Vec<f64> = (0..examples * spec.inputs)
        .map(|i| ((i as f64) * 0.731).sin() + 0.3 * ((i % 7) as f64 - 3.0) / 3.0)
        .collect();
    let y: Vec<usize> = (0..examples)
        .map(|e| {
            let row = &x[e * spec.inputs..(e + 1) * spec.inputs];
            let s: f64 = row.iter().take(3).sum::<f64>() - row.iter().skip(7).sum::<f64>();
            if s > 0.5 {
                0
            } else if s > -0.5 {
                1
            } else {
                2
            }
        })
        .collect();
    let batch = net.prepare(&x, &y);
    let theta = spec.init(&mut ChaCha8Rng::seed_from_u64(0));
    assert_eq!(theta.len(), 703);
    (net, batch, theta)
}

#[test]
fn lanczos_on_a_network_matches_its_dense_hessian() {
    let (net, batch, theta) = network();
    let loss = BatchLoss {
        net: &net,
        batch: &batch,
    };
    let t0 = std::time::Instant::now();
    let dense = dense_hessian(&loss, &theta, 1e-5, &AtomicBool::new(false), &|_| {}).unwrap();
    let exact = dense.eigenvalues().unwrap();
    let t_dense = t0.elapsed();
    let t1 = std::time::Instant::now();
    let mut hvp = FdHvp::new(&loss, &theta, 1e-5);
    let opts = LanczosOptions {
        steps: 400,
        top_k: 5,
        bottom_k: 5,
        tol: 1e-9,
        seed: 2,
    };
    let r = lanczos(&mut hvp, &opts, &AtomicBool::new(false)).unwrap();
    let t_lanczos = t1.elapsed();
    assert!(r.converged, "not converged in {} steps", r.steps);
    assert_eq!(hvp.gradient_evals(), 2 * r.hvps);
    // Both sides are the same finite-difference Hessian (dense: H e_i columns, symmetrised;
    // Lanczos: H q along arbitrary directions), which agree with the true Hessian to ~1e-10
    // relative of its largest entries (docs/method.md); with residuals ≤ 1e-9 · |λ|max the
    // Lanczos error is smaller still, so 1e-6 relative is met with several digits to spare
    // for these eigenvalues (none is within 1e-3 of zero relative to |λ|max).
    let worst = check_extremes(&r.top, &r.bottom, &exact, 5, 1e-6);
    // The forward scheme at step 1e-8: one gradient per product. Its error is O(h) truncation
    // plus eps/h rounding, ~1e-8 of the Hessian's scale, and its operator is symmetric only to
    // that level; the extremes here are >= 1e-2 of |λ|max, so 1e-5 relative holds with room.
    let mut fwd = FdHvp::forward(&loss, &theta, 1e-8);
    let rf = lanczos(&mut fwd, &opts, &AtomicBool::new(false)).unwrap();
    assert_eq!(fwd.gradient_evals(), rf.hvps + 1);
    let worst_fwd = check_extremes(&rf.top, &rf.bottom, &exact, 5, 1e-5);
    eprintln!(
        "forward scheme: worst rel error {worst_fwd:e} in {} steps",
        rf.steps
    );
    eprintln!(
        "network: dense asymmetry {:e}, {} Lanczos steps, worst rel error {worst:e}, \
         5th largest {:.6e}, 5th smallest {:.6e}; dense {:?}, lanczos {:?}",
        dense.asymmetry,
        r.steps,
        exact[exact.len() - 5],
        exact[4],
        t_dense,
        t_lanczos
    );
}

#[test]
fn forward_differences_agree_with_central_ones_and_spend_one_gradient_per_product() {
    let (net, batch, theta) = network();
    let loss = BatchLoss {
        net: &net,
        batch: &batch,
    };
    let mut central = FdHvp::new(&loss, &theta, 1e-5);
    let mut forward = FdHvp::forward(&loss, &theta, 1e-8);
    let n = theta.len();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for k in 0..3 {
        let v: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
        let (mut hc, mut hf) = (vec![0.0; n], vec![0.0; n]);
        central.hvp(&v, &mut hc);
        forward.hvp(&v, &mut hf);
        // central is ~1e-10 accurate; forward's truncation (h/2)·∂³g is ~1e-8 relative and its
        // rounding eps·|g|/h ~ 1e-8: together well under 1e-6 of |Hv|
        let diff = hc
            .iter()
            .zip(&hf)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        let norm = hc.iter().map(|a| a * a).sum::<f64>().sqrt();
        assert!(
            diff < 1e-6 * norm,
            "product {k}: |Hv_fwd - Hv_central| / |Hv| = {}",
            diff / norm
        );
        assert_eq!(
            forward.gradient_evals(),
            k + 2,
            "g(theta) once, then one per product"
        );
        assert_eq!(central.gradient_evals(), 2 * (k + 1));
    }
}

#[test]
fn fd_hvp_on_a_network_is_symmetric() {
    let (net, batch, theta) = network();
    let loss = BatchLoss {
        net: &net,
        batch: &batch,
    };
    let mut hvp = FdHvp::new(&loss, &theta, 1e-5);
    let n = theta.len();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for _ in 0..3 {
        let u: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
        let v: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
        let (mut hu, mut hv) = (vec![0.0; n], vec![0.0; n]);
        hvp.hvp(&u, &mut hu);
        hvp.hvp(&v, &mut hv);
        let uhv: f64 = u.iter().zip(&hv).map(|(a, b)| a * b).sum();
        let vhu: f64 = v.iter().zip(&hu).map(|(a, b)| a * b).sum();
        // The central difference is exact for the symmetric Hessian up to O(h²) third-derivative
        // terms and rounding (~1e-10 relative with step 1e-5), so the two bilinear forms agree
        // far below 1e-7 of their size.
        let r = rel(uhv, vhu);
        assert!(r < 1e-7, "uᵀHv = {uhv}, vᵀHu = {vhu}, rel {r:e}");
    }
}

#[test]
fn slq_density_integrates_to_one_and_its_mean_is_the_mean_eigenvalue() {
    let n = 200;
    let mut h = MatHvp::random(n, 0.7, 21);
    let runs = 20;
    let opts = SlqOptions {
        runs,
        steps: 40,
        sigma: 0.05,
        grid: 800,
        seed: 8,
    };
    let d = slq(&mut h, &opts, &AtomicBool::new(false)).unwrap();
    assert_eq!(d.hvps, runs * 40);
    assert_eq!(d.nodes.len(), runs * 40);
    assert!((d.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    // The density is scaled to trapezoid integral 1, so only rounding remains (800 terms).
    assert!((d.integral() - 1.0).abs() < 1e-12);
    // ... and the scale was a small correction: the grid spans the ~4-wide spectrum plus 5 sigma
    // each side, spacing ~4.5/800 = 0.0056 (9 points per sigma), where the trapezoid rule
    // integrates each Gaussian to rounding and the tails outside hold < 6e-7 of the mass.
    // Recomputing Σ w N(t; node, σ²) from the reported nodes and weights must therefore give
    // the reported density to within that 6e-7 (1e-6 allowed).
    let dx = d.grid[1] - d.grid[0];
    assert!(d.sigma / dx > 8.0);
    let c = 1.0 / (d.sigma * (2.0 * std::f64::consts::PI).sqrt());
    for (t, y) in d.grid.iter().zip(&d.density).step_by(7) {
        let raw: f64 = d
            .nodes
            .iter()
            .zip(&d.weights)
            .map(|(x, w)| w * c * (-0.5 * ((t - x) / d.sigma).powi(2)).exp())
            .sum();
        assert!(
            (raw - y).abs() <= 1e-6 * y.max(1e-3),
            "at {t}: {raw} vs {y}"
        );
    }
    // mean() = average over runs of qᵀHq, i.e. Hutchinson's estimate of tr(H)/n from `runs`
    // probes, with standard error sqrt(2 Σ_{i≠j} H_ij² / runs) / n (≈ 0.022 here). 4 standard
    // errors: a fixed seed that passed once always passes; another seed fails with p < 1e-4.
    let exact = h.trace() / n as f64;
    let se = (2.0 * h.off_diagonal_sq() / runs as f64).sqrt() / n as f64;
    assert!(
        (d.mean() - exact).abs() < 4.0 * se,
        "mean {} vs tr(H)/n {exact} (se {se})",
        d.mean()
    );
    // Against the true spectrum, the nodes span it: the extremes of 40-step runs sit within
    // 0.05 (a sigma) of the extreme eigenvalues.
    let ev = h.eigenvalues();
    assert!((d.nodes[0] - ev[0]).abs() < 0.05);
    assert!((d.nodes[d.nodes.len() - 1] - ev[n - 1]).abs() < 0.05);
    eprintln!("slq: mean {} exact {exact} se {se}", d.mean());
}

#[test]
fn hutchinson_trace_and_variance_within_three_standard_errors() {
    let n = 150;
    let mut h = MatHvp::random(n, 0.4, 31);
    let nf = n as f64;
    let (tr, tr2) = (h.trace(), h.trace_sq());
    let variance = tr2 / nf - (tr / nf).powi(2);
    let opts = HutchinsonOptions {
        min_samples: 10,
        max_samples: 400,
        // Out of reach (Var(vᵀHv)/tr² needs ~1e7 probes), so all 400 probes are taken.
        tol: 1e-4,
        seed: 17,
    };
    let r = hutchinson(&mut h, &opts, &AtomicBool::new(false)).unwrap();
    assert_eq!((r.samples, r.hvps), (400, 400));
    // 3 standard errors: a 0.3% chance per quantity for a random seed; this seed is fixed.
    for (name, est, exact) in [
        ("trace", &r.trace, tr),
        ("trace_sq", &r.trace_sq, tr2),
        ("variance", &r.variance, variance),
    ] {
        assert!(
            (est.value - exact).abs() <= 3.0 * est.stderr,
            "{name}: {} vs {exact} (se {})",
            est.value,
            est.stderr
        );
        assert!(est.stderr > 0.0);
    }
    // The reported standard error is honest (not inflated to make the check above vacuous):
    // for Rademacher probes sd(vᵀHv) = sqrt(2 Σ_{i≠j} H_ij²) exactly; the sample sd of 400
    // probes is within ~10% of it, 25% allowed.
    let se_exact = (2.0 * h.off_diagonal_sq() / 400.0).sqrt();
    assert!(
        rel(r.trace.stderr, se_exact) < 0.25,
        "stderr {} vs {se_exact}",
        r.trace.stderr
    );

    // A relative tolerance that is reachable stops early, after the minimum of 10 probes.
    let loose = HutchinsonOptions {
        tol: 0.05,
        ..opts.clone()
    };
    let r = hutchinson(&mut h, &loose, &AtomicBool::new(false)).unwrap();
    assert!(r.samples >= 10 && r.samples < 400, "{} samples", r.samples);
    assert!(r.trace.stderr <= 0.05 * r.trace.value.abs());

    // The diagonal estimator: E[v ⊙ Hv] = diag(H), entry error sd sqrt(Σ_{j≠i} H_ij² / m)
    // ≈ sqrt(1/m) = 0.05 for m = 400; 5 sd = 0.25 bounds all 150 entries (p < 1e-4).
    let est = diagonal(&mut h, 400, 3, &AtomicBool::new(false)).unwrap();
    for (i, e) in est.iter().enumerate() {
        assert!((e - h.0[i * n + i]).abs() < 0.25, "diag {i}: {e}");
    }
}
