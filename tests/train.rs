//! The optimiser over the flat vector.

use resprune::config::{Optimizer, TrainConfig};
use resprune::model::{Activation, ModelSpec, Network, Variant};
use resprune::train::{apply_mask, OptimizerState};

fn net() -> Network {
    Network::new(
        &ModelSpec {
            inputs: 2,
            width: 3,
            depth: 1,
            classes: 2,
            activation: Activation::Relu,
            alpha: 1.0,
            learned_alpha: false,
            transformer: None,
        },
        Variant::Residual,
    )
}

#[test]
fn adam_first_step_moves_each_coordinate_by_lr_times_sign() {
    // after one step m̂ = g and v̂ = g², so the update is lr · g / (|g| + eps)
    let n = net();
    let cfg = TrainConfig {
        lr: 0.01,
        eps: 1e-12,
        ..TrainConfig::default()
    };
    let mut opt = OptimizerState::new(&cfg, &n);
    let mut theta = vec![0.5; n.dim()];
    let grad: Vec<f64> = (0..n.dim()).map(|i| (i as f64 - 10.0) / 7.0).collect();
    opt.step(&mut theta, &grad, None);
    for (t, g) in theta.iter().zip(&grad) {
        let want = 0.5 - 0.01 * g / (g.abs() + 1e-12);
        assert!((t - want).abs() < 1e-12);
    }
}

#[test]
fn sgd_momentum_matches_pytorch_recurrence() {
    let n = net();
    let cfg = TrainConfig {
        optimizer: Optimizer::Sgd,
        lr: 0.1,
        momentum: 0.9,
        ..TrainConfig::default()
    };
    let mut opt = OptimizerState::new(&cfg, &n);
    let mut theta = vec![1.0; n.dim()];
    let g = vec![2.0; n.dim()];
    opt.step(&mut theta, &g, None); // buf = 2, theta = 1 - 0.2
    opt.step(&mut theta, &g, None); // buf = 0.9*2 + 2 = 3.8, theta = 0.8 - 0.38
    assert!((theta[0] - 0.42).abs() < 1e-12);
}

#[test]
fn masked_parameters_stay_exactly_zero() {
    let n = net();
    let mut opt = OptimizerState::new(&TrainConfig::default(), &n);
    let mut theta = vec![0.3; n.dim()];
    let mask: Vec<bool> = (0..n.dim()).map(|i| i % 3 != 0).collect();
    apply_mask(&mut theta, &mask);
    for step in 0..5 {
        let g: Vec<f64> = (0..n.dim()).map(|i| (i + step) as f64).collect();
        opt.step(&mut theta, &g, Some(&mask));
        for i in (0..n.dim()).filter(|i| i % 3 == 0) {
            assert_eq!(theta[i], 0.0);
        }
    }
}

#[test]
fn l1_applies_to_weights_only() {
    let n = net();
    let cfg = TrainConfig {
        optimizer: Optimizer::Sgd,
        lr: 1.0,
        l1: 0.5,
        ..TrainConfig::default()
    };
    let mut opt = OptimizerState::new(&cfg, &n);
    let mut theta = vec![-2.0; n.dim()];
    opt.step(&mut theta, &vec![0.0; n.dim()], None);
    for t in &n.layout().tensors {
        let want = match t.kind {
            resprune::model::ParamKind::Weight => -1.5,
            // an MLP has only weights and biases
            _ => -2.0,
        };
        assert!(t.range().all(|i| theta[i] == want), "{}", t.name);
    }
}
