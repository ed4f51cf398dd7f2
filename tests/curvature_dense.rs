//! The dense Hessian against exact oracles, and spectrum statistics against direct formulas.

mod common;

use std::sync::atomic::AtomicBool;

use common::softmax::{head_block_case, SoftmaxRegression};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use resprune::curvature::{dense_hessian, BatchLoss, DenseHessian, LossGrad, SpectrumStats};
use resprune::model::{Activation, ModelSpec, Network, Variant};

fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let num = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    let den = b.iter().fold(0.0f64, |m, y| m.max(y.abs()));
    num / den
}

fn never() -> AtomicBool {
    AtomicBool::new(false)
}

/// The loss is smooth (C∞), so the central difference error is h²/6 |∂³g| ~ 1e-10 relative
/// plus round-off eps·|g|/h ~ 1e-11: 1e-6 leaves four orders of margin.
#[test]
fn softmax_regression_hessian_matches_its_analytic_form() {
    let (n, d, k) = (40, 5, 3);
    let x: Vec<f64> = (0..n * d)
        .map(|i| ((i * 7919 % 23) as f64 / 11.0) - 1.0)
        .collect();
    let y: Vec<usize> = (0..n).map(|i| (i * 5) % k).collect();
    let m = SoftmaxRegression { x, y, d, k };
    let theta: Vec<f64> = (0..m.dim())
        .map(|i| ((i % 7) as f64 - 3.0) / 10.0)
        .collect();
    let h = dense_hessian(&m, &theta, 1e-5, &never(), &|_| {}).unwrap();
    let exact = m.analytic_hessian(&theta);
    let err = rel_err(&h.data, &exact);
    assert!(err < 1e-6, "relative error {err}");
    assert_eq!(h.gradient_evals, 2 * m.dim());
}

fn hidden_features(spec: &ModelSpec, v: Variant, theta: &[f64], x: &[f64], n: usize) -> Vec<f64> {
    (0..n)
        .flat_map(|e| common::hidden(spec, v, theta, &x[e * spec.inputs..(e + 1) * spec.inputs]))
        .collect()
}

/// The logits are linear in the head's parameters, so the head block of the network's
/// Hessian is exactly softmax regression on the last hidden features.
#[test]
fn network_head_block_is_softmax_regression_on_hidden_features() {
    for v in Variant::BOTH {
        let (spec, theta, x, y) = head_block_case();
        let n = y.len();
        let net = Network::new(&spec, v);
        let batch = net.prepare(&x, &y);
        let h = dense_hessian(
            &BatchLoss {
                net: &net,
                batch: &batch,
            },
            &theta,
            1e-5,
            &never(),
            &|_| {},
        )
        .unwrap();
        let head_w = spec.layout().get("head.weight").unwrap().offset;
        let hidden = hidden_features(&spec, v, &theta, &x, n);
        let reg = SoftmaxRegression {
            x: hidden,
            y,
            d: 6,
            k: 3,
        };
        let exact = reg.analytic_hessian(&theta[head_w..]);
        let m = reg.dim();
        let block: Vec<f64> = (0..m * m)
            .map(|ij| h.get(head_w + ij / m, head_w + ij % m))
            .collect();
        let err = rel_err(&block, &exact);
        assert!(err < 1e-6, "{v}: relative error {err}");
        assert!(h.asymmetry < 1e-8, "{v}: asymmetry {}", h.asymmetry);
    }
}

#[test]
fn hessian_is_symmetric_and_eigenvalues_match_its_trace() {
    let spec = ModelSpec {
        inputs: 3,
        width: 5,
        depth: 1,
        classes: 2,
        activation: Activation::Relu,
        alpha: 1.0,
        learned_alpha: false,
        transformer: None,
    };
    let theta = spec.init(&mut ChaCha8Rng::seed_from_u64(2));
    let x: Vec<f64> = (0..60)
        .map(|i| ((i * 13 % 17) as f64 / 8.0) - 1.0)
        .collect();
    let y: Vec<usize> = (0..20).map(|i| (i / 3) % 2).collect();
    let net = Network::new(&spec, Variant::Residual);
    let batch = net.prepare(&x, &y);
    let loss = BatchLoss {
        net: &net,
        batch: &batch,
    };
    let h = dense_hessian(&loss, &theta, 1e-5, &never(), &|_| {}).unwrap();
    for i in 0..h.n {
        for j in 0..h.n {
            assert_eq!(h.get(i, j), h.get(j, i));
        }
    }
    let ev = h.eigenvalues().unwrap();
    assert!(ev.windows(2).all(|w| w[0] <= w[1]), "ascending");
    let trace: f64 = (0..h.n).map(|i| h.get(i, i)).sum();
    let sum: f64 = ev.iter().sum();
    assert!((trace - sum).abs() < 1e-10 * trace.abs().max(1.0));
    let frob: f64 = h.data.iter().map(|v| v * v).sum();
    let sq: f64 = ev.iter().map(|v| v * v).sum();
    assert!((frob - sq).abs() < 1e-10 * frob);
}

#[test]
fn eigenvalues_of_a_known_matrix() {
    // [[2, 1], [1, 2]] has eigenvalues 1 and 3
    let h = DenseHessian {
        n: 2,
        data: vec![2.0, 1.0, 1.0, 2.0],
        asymmetry: 0.0,
        gradient_evals: 0,
    };
    let ev = h.eigenvalues().unwrap();
    assert!((ev[0] - 1.0).abs() < 1e-14 && (ev[1] - 3.0).abs() < 1e-14);
}

#[test]
fn spectrum_stats_match_direct_formulas() {
    let ev = [-2.0, -1e-17, 0.0, 1e-3, 0.5, 4.0];
    let s = SpectrumStats::from_eigenvalues(&ev);
    let n = 6.0;
    let mean = ev.iter().sum::<f64>() / n;
    assert_eq!(s.n, 6);
    assert_eq!((s.min, s.max), (-2.0, 4.0));
    assert!((s.mean - mean).abs() < 1e-15);
    let var = ev.iter().map(|l| (l - mean) * (l - mean)).sum::<f64>() / n;
    assert!((s.variance - var).abs() < 1e-14);
    // Var = tr(H²)/n − (tr(H)/n)²
    let tr2 = ev.iter().map(|l| l * l).sum::<f64>();
    assert!((s.variance - (tr2 / n - mean * mean)).abs() < 1e-12);
    assert!((s.trace - ev.iter().sum::<f64>()).abs() < 1e-15);
    let tol = n * f64::EPSILON * 4.0;
    assert_eq!(s.zero_tol, tol);
    assert_eq!(s.negatives, 1); // -1e-17 is inside the tolerance
    assert_eq!(s.near_zero, Some(2));
    assert_eq!(s.condition, Some(4.0 / 1e-3));
}

#[test]
fn dense_refuses_models_over_the_limit_and_says_what_to_do() {
    let spec = ModelSpec {
        inputs: 10,
        width: 20,
        depth: 1,
        classes: 2,
        activation: Activation::Relu,
        alpha: 1.0,
        learned_alpha: false,
        transformer: None,
    };
    let net = Network::new(&spec, Variant::Plain);
    let theta = vec![0.0; 682];
    let batch = net.prepare(&[0.0; 10], &[0]);
    let cfg = resprune::config::HessianConfig {
        method: resprune::config::HessianMethod::Dense,
        dense_limit: 500,
        ..Default::default()
    };
    let opts = resprune::curvature::SpectrumOptions {
        cfg: &cfg,
        seed: 0,
        layers: Vec::new(),
        check: None,
        basis: false,
    };
    let e =
        resprune::curvature::spectrum(&net, &theta, &batch, &opts, &never(), &|_| {}).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("682") && msg.contains("dense_limit = 500"),
        "{msg}"
    );
    assert!(msg.contains("hessian.method = \"lanczos\""), "{msg}");
}

#[test]
fn cancelling_stops_the_dense_hessian() {
    let m = SoftmaxRegression {
        x: vec![0.5; 10],
        y: vec![0, 1],
        d: 5,
        k: 2,
    };
    let cancel = AtomicBool::new(true);
    let r = dense_hessian(&m, &[0.0; 12], 1e-5, &cancel, &|_| {});
    assert!(matches!(
        r,
        Err(resprune::curvature::CurvatureError::Cancelled)
    ));
}

#[test]
fn a_relu_kink_inside_the_step_is_detected_and_stepped_around() {
    // One stem unit's pre-activation for example 0 sits 3e-6 above its kink. At the default
    // step (1e-5 relative) the bias column crosses it: one of H[i, j], H[j, i] becomes a
    // difference across the jump and the matrix is visibly asymmetric. A tenth of the step
    // (1e-6, moving z by at most 1e-6 since |x| <= 1) stays inside the linear region.
    let spec = ModelSpec {
        inputs: 2,
        width: 3,
        depth: 1,
        classes: 2,
        activation: Activation::Relu,
        alpha: 1.0,
        learned_alpha: false,
        transformer: None,
    };
    let layout = spec.layout();
    let mut theta = spec.init(&mut ChaCha8Rng::seed_from_u64(8));
    let x = vec![0.5, -0.25, -0.75, 1.0, 0.3, 0.9, -1.0, -0.2];
    let y = vec![0, 1, 1, 0];
    let w = layout.get("stem.weight").unwrap().offset;
    let b = layout.get("stem.bias").unwrap().offset;
    // make the unit live for example 0, just barely, and give its output weight some size
    theta[b] = 3e-6 - (theta[w] * x[0] + theta[w + 1] * x[1]);
    let net = Network::new(&spec, Variant::Plain);
    let batch = net.prepare(&x, &y);
    let never = AtomicBool::new(false);
    let at = |step: f64| {
        dense_hessian(
            &BatchLoss {
                net: &net,
                batch: &batch,
            },
            &theta,
            step,
            &never,
            &|_| {},
        )
        .unwrap()
        .asymmetry
    };
    let crossed = at(1e-5);
    assert!(crossed > 1e-3, "the kink was not crossed: {crossed}");
    assert!(at(1e-6) < 1e-8, "{}", at(1e-6));
    // the retry is the finite-difference path's (exact products have no step to cross with)
    let cfg = resprune::config::HessianConfig {
        products: resprune::config::ProductsChoice::FiniteDifferences,
        ..Default::default()
    };
    let opts = resprune::curvature::SpectrumOptions {
        cfg: &cfg,
        seed: 0,
        layers: Vec::new(),
        check: None,
        basis: false,
    };
    let s = resprune::curvature::spectrum(&net, &theta, &batch, &opts, &never, &|_| {})
        .unwrap()
        .spectrum;
    assert_eq!(s.fd_step, cfg.fd_step / 10.0);
    assert!(s.asymmetry.unwrap() < resprune::curvature::KINK_ASYMMETRY);
    // both tries are counted
    assert_eq!(s.gradient_evals, 4 * theta.len());
}
