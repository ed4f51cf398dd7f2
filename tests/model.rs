//! The model layer: layout, init, loss and gradient against independent computations.

mod common;

use rand::SeedableRng;
use resprune::model::{Activation, ModelSpec, Network, ParamKind, Variant};

fn spec(act: Activation, depth: usize) -> ModelSpec {
    ModelSpec {
        inputs: 3,
        width: 4,
        depth,
        classes: 3,
        activation: act,
        alpha: 0.7,
        learned_alpha: false,
        transformer: None,
    }
}

fn data(n: usize, d: usize, k: usize) -> (Vec<f64>, Vec<usize>) {
    let x = (0..n * d)
        .map(|i| ((i * 37 % 17) as f64 / 8.0) - 1.0)
        .collect();
    let y = (0..n).map(|i| i % k).collect();
    (x, y)
}

#[test]
fn article_model_has_682_parameters_in_pytorch_order() {
    let s = ModelSpec {
        inputs: 10,
        width: 20,
        depth: 1,
        classes: 2,
        activation: Activation::Relu,
        alpha: 1.0,
        learned_alpha: false,
        transformer: None,
    };
    let l = s.layout();
    assert_eq!(l.len, 682);
    let names: Vec<_> = l.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "stem.weight",
            "stem.bias",
            "blocks.0.weight",
            "blocks.0.bias",
            "head.weight",
            "head.bias"
        ]
    );
    assert_eq!(l.tensors[0].shape, vec![20, 10]);
    assert_eq!(l.tensors[1].kind, ParamKind::Bias);
    assert_eq!(l.tensors[5].offset, 680);
}

/// Plain Rust forward pass of the same network, as the oracle for the dfdx one.
fn reference_loss(s: &ModelSpec, v: Variant, theta: &[f64], x: &[f64], y: &[usize]) -> f64 {
    common::loss(s, v, theta, x, y)
}

#[test]
fn loss_matches_a_plain_rust_forward_pass() {
    for act in [Activation::Relu, Activation::Tanh, Activation::Gelu] {
        for v in Variant::BOTH {
            let s = spec(act, 2);
            let theta = s.init(&mut rand_chacha::ChaCha8Rng::seed_from_u64(7));
            let (x, y) = data(9, 3, 3);
            let net = Network::new(&s, v);
            let b = net.prepare(&x, &y);
            let got = net.evaluate(&theta, &b).loss;
            let want = reference_loss(&s, v, &theta, &x, &y);
            assert!(
                (got - want).abs() < 1e-12 * want.abs().max(1.0),
                "{act:?} {v}: {got} vs {want}"
            );
        }
    }
}

/// Central differences of the loss, per coordinate: the gradient's oracle. With a smooth
/// activation and step 1e-6 the truncation error is ~1e-12 * |f'''|, far under the tolerance.
#[test]
fn gradient_matches_finite_differences() {
    for act in [Activation::Tanh, Activation::Gelu] {
        for v in Variant::BOTH {
            let s = spec(act, 2);
            let theta = s.init(&mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
            let (x, y) = data(11, 3, 3);
            let net = Network::new(&s, v);
            let b = net.prepare(&x, &y);
            let mut g = vec![0.0; theta.len()];
            net.loss_grad(&theta, &b, &mut g);
            let h = 1e-6;
            for i in 0..theta.len() {
                let mut tp = theta.clone();
                tp[i] += h;
                let mut tm = theta.clone();
                tm[i] -= h;
                let fd = (reference_loss(&s, v, &tp, &x, &y) - reference_loss(&s, v, &tm, &x, &y))
                    / (2.0 * h);
                assert!(
                    (g[i] - fd).abs() < 1e-8,
                    "{act:?} {v} param {i}: {} vs {fd}",
                    g[i]
                );
            }
        }
    }
}

#[test]
fn residual_and_plain_differ_only_in_the_skip() {
    // With alpha = 0 the residual block is the identity: h + 0 * F(h) = h. With depth 0 the
    // two variants are the same network.
    let mut s = spec(Activation::Tanh, 1);
    let theta = s.init(&mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
    let (x, y) = data(5, 3, 3);
    s.alpha = 0.0;
    let r = Network::new(&s, Variant::Residual);
    let loss_alpha0 = r.evaluate(&theta, &r.prepare(&x, &y)).loss;
    let s0 = ModelSpec {
        depth: 0,
        ..s.clone()
    };
    let l0 = s0.layout();
    // theta without the block: stem then head
    let mut theta0 = theta[..l0.get("stem.bias").unwrap().range().end].to_vec();
    let head = s.layout().get("head.weight").unwrap().offset;
    theta0.extend_from_slice(&theta[head..]);
    let p = Network::new(&s0, Variant::Plain);
    let loss_depth0 = p.evaluate(&theta0, &p.prepare(&x, &y)).loss;
    assert!((loss_alpha0 - loss_depth0).abs() < 1e-14);
}

#[test]
fn accuracy_counts_argmax_hits() {
    let s = spec(Activation::Relu, 1);
    let theta = s.init(&mut rand_chacha::ChaCha8Rng::seed_from_u64(2));
    let (x, y) = data(12, 3, 3);
    let net = Network::new(&s, Variant::Residual);
    let b = net.prepare(&x, &y);
    let logits = net.logits(&theta, &b);
    let hits = (0..12)
        .filter(|&i| {
            let row = &logits[i * 3..i * 3 + 3];
            let best = (0..3).fold(0, |b, c| if row[c] > row[b] { c } else { b });
            best == y[i]
        })
        .count();
    assert_eq!(net.evaluate(&theta, &b).accuracy, hits as f64 / 12.0);
}
