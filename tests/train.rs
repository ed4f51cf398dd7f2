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

/// A cancel takes effect before the next minibatch, not at the end of the epoch: set while
/// epoch `k` is reported, training stops with exactly `k` epochs applied to theta.
#[test]
fn a_cancel_stops_before_the_next_minibatch() {
    use resprune::data::Dataset;
    use resprune::train::{self, Session};
    use std::sync::atomic::{AtomicBool, Ordering};

    let n = net();
    let x: Vec<f64> = (0..80).map(|i| ((i * 7 % 11) as f64) / 5.0 - 1.0).collect();
    let y: Vec<usize> = (0..40).map(|i| i % 2).collect();
    let data = Dataset {
        x,
        y,
        features: 2,
        classes: 2,
        class_names: vec!["a".into(), "b".into()],
    };
    let eval = n.prepare(&data.x, &data.y);
    let theta0 = n
        .spec()
        .init(&mut resprune::rng::stream(1, resprune::rng::Stream::Init));
    // 10 minibatches an epoch: a per-epoch check would finish epoch k + 1
    let cfg = |epochs| TrainConfig {
        epochs,
        batch_size: 4,
        ..TrainConfig::default()
    };
    let run = |epochs: usize, stop_at: Option<usize>| {
        let c = cfg(epochs);
        let s = Session {
            cfg: &c,
            train: &data,
            eval: &eval,
            seed: 3,
            mask: None,
        };
        let cancel = AtomicBool::new(false);
        let mut theta = theta0.clone();
        let mut history = Vec::new();
        let out = train::train(&n, &mut theta, &s, &mut history, &cancel, &mut |e| {
            if Some(e.epoch) == stop_at {
                cancel.store(true, Ordering::Relaxed);
            }
        });
        (out, theta, history)
    };
    let (out, theta, history) = run(5, Some(0));
    assert!(out.unwrap_err().is_cancelled());
    assert_eq!(history.len(), 1);
    assert_eq!(theta, theta0, "no step after a cancel at epoch 0");
    let (out, theta, history) = run(5, Some(2));
    assert!(out.unwrap_err().is_cancelled());
    assert_eq!(history.len(), 3);
    let (full, two, _) = run(2, None);
    assert!(full.is_ok());
    assert_eq!(theta, two, "exactly two epochs applied");
}
