//! Masks, counts and the sensitivity of a pruning sweep.

use std::sync::atomic::{AtomicBool, Ordering};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use resprune::config::{Products, PruneConfig, PruneScope};
use resprune::model::{Activation, ModelSpec, Network, ParamKind, PreparedBatch, Variant};
use resprune::prune::{self, mask_from_scores};

fn spec() -> ModelSpec {
    ModelSpec {
        inputs: 4,
        width: 6,
        depth: 1,
        classes: 3,
        activation: Activation::Tanh,
        alpha: 1.0,
        learned_alpha: false,
        transformer: None,
    }
}

#[test]
fn global_mask_prunes_floor_ratio_of_eligible_smallest_first() {
    let s = spec();
    let layout = s.layout();
    let theta = s.init(&mut ChaCha8Rng::seed_from_u64(4));
    for include_bias in [false, true] {
        let cfg = PruneConfig {
            include_bias,
            ..PruneConfig::default()
        };
        let eligible: Vec<usize> = layout
            .tensors
            .iter()
            .filter(|t| include_bias || t.kind == ParamKind::Weight)
            .flat_map(|t| t.range())
            .collect();
        for ratio in [0.1, 0.33, 0.5, 0.99] {
            let m = prune::magnitude_mask(&theta, &layout, &cfg, ratio);
            let k = (ratio * eligible.len() as f64).floor() as usize;
            assert_eq!(m.eligible, eligible.len());
            assert_eq!(m.pruned, k);
            assert_eq!(m.keep.iter().filter(|k| !**k).count(), k);
            // every pruned magnitude <= every kept eligible magnitude
            let max_pruned = eligible
                .iter()
                .filter(|&&i| !m.keep[i])
                .map(|&i| theta[i].abs())
                .fold(0.0, f64::max);
            let min_kept = eligible
                .iter()
                .filter(|&&i| m.keep[i])
                .map(|&i| theta[i].abs())
                .fold(f64::INFINITY, f64::min);
            assert!(max_pruned <= min_kept);
            assert_eq!(m.threshold, max_pruned);
            if !include_bias {
                for t in layout.tensors.iter().filter(|t| t.kind == ParamKind::Bias) {
                    assert!(t.range().all(|i| m.keep[i]), "biases are not eligible");
                }
            }
        }
    }
}

#[test]
fn ties_are_broken_by_index() {
    let scores = [1.0, 0.5, 0.5, 0.5, 2.0];
    let m = mask_from_scores(&scores, &[true; 5], &[0; 5], 0.4);
    assert_eq!(m.keep, vec![true, false, false, true, true]);
    let m = mask_from_scores(&scores, &[true, false, true, true, true], &[0; 5], 0.5);
    // eligible 4, prune 2: indices 2 and 3 (index 1 is not eligible)
    assert_eq!(m.keep, vec![true, true, false, false, true]);
}

#[test]
fn layer_scope_prunes_the_ratio_within_each_layer() {
    let s = spec();
    let layout = s.layout();
    let theta = s.init(&mut ChaCha8Rng::seed_from_u64(9));
    let cfg = PruneConfig {
        scope: PruneScope::Layer,
        ..PruneConfig::default()
    };
    let m = prune::magnitude_mask(&theta, &layout, &cfg, 0.5);
    let sp = prune::layer_sparsity(&layout, &m.keep);
    // weights only: stem 24, blocks.0 36, head 18 -> 12, 18, 9 pruned
    let pruned: Vec<usize> = sp.iter().map(|l| l.pruned).collect();
    assert_eq!(pruned, vec![12, 18, 9]);
    let totals: Vec<usize> = sp.iter().map(|l| l.total).collect();
    assert_eq!(totals, vec![30, 42, 21]);
    assert_eq!(sp[1].sparsity, 18.0 / 42.0);
}

/// The residual [`spec`] at a fixed init, 40 evaluation examples, ratios 0.2 and 0.6.
fn sweep_case() -> (Network, Vec<f64>, PreparedBatch, PruneConfig) {
    let s = spec();
    let theta = s.init(&mut ChaCha8Rng::seed_from_u64(5));
    let n = 40;
    let x: Vec<f64> = (0..n * 4)
        .map(|i| ((i * 17 % 13) as f64 / 6.0) - 1.0)
        .collect();
    let y: Vec<usize> = (0..n).map(|i| (i * 7) % 3).collect();
    let net = Network::new(&s, Variant::Residual);
    let eval = net.prepare(&x, &y);
    let cfg = PruneConfig {
        ratios: vec![0.2, 0.6],
        ..PruneConfig::default()
    };
    (net, theta, eval, cfg)
}

#[test]
fn sweep_rows_measure_the_pruned_model() {
    let (net, theta, eval, cfg) = sweep_case();
    let inputs = prune::SweepInputs {
        eval: &eval,
        cfg: &cfg,
        products: Products::FiniteDifferences,
        fd_step: 1e-5,
        diag: None,
        calibration: None,
        basis: None,
    };
    let mut pruned = Vec::new();
    prune::sweep(
        &net,
        &theta,
        &inputs,
        &mut pruned,
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();
    let rows: Vec<_> = pruned.into_iter().map(|p| p.row).collect();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        let m = prune::magnitude_mask(&theta, net.layout(), &cfg, r.ratio);
        let pruned: Vec<f64> = theta
            .iter()
            .zip(&m.keep)
            .map(|(t, k)| if *k { *t } else { 0.0 })
            .collect();
        let before = net.evaluate(&theta, &eval);
        let after = net.evaluate(&pruned, &eval);
        assert_eq!(r.loss_before, before.loss);
        assert_eq!(r.loss_after, after.loss);
        assert_eq!(r.sensitivity, (after.loss - before.loss) / before.loss);
        assert_eq!(r.accuracy_drop, before.accuracy - after.accuracy);
        assert_eq!(r.predicted_delta, r.predicted_first + r.predicted_second);
        let total_pruned: usize = r.layers.iter().map(|l| l.pruned).sum();
        assert_eq!(total_pruned, r.pruned);
    }
    // a quadratic model of a smooth loss predicts small steps well: at 20% the prediction
    // and the measurement agree in sign and within a factor of 2 here
    let r = &rows[0];
    assert!(r.predicted_delta.signum() == r.delta_loss.signum());
    assert!(
        (r.predicted_delta / r.delta_loss - 1.0).abs() < 1.0,
        "{r:?}"
    );
}

/// The prediction's `HΔθ` by exact products (the MLP's default) is the exact product along
/// the step, and agrees with the central difference to the difference's error.
///
/// Tolerance: the central difference's truncation is `(h²/6)·∂³g[Δθ,Δθ,Δθ]` with
/// `h = fd_step·max(1,‖θ‖∞)/‖Δθ‖∞`, so its relative error on `ΔθᵀHΔθ` is ~`fd_step²` plus the
/// gradients' rounding `ε/h` ~1e-11 relative (docs/method.md); 1e-7 leaves room for a smooth
/// tanh model's third derivative being larger than its second.
#[test]
fn the_predicted_change_by_exact_products_is_the_exact_quadratic() {
    let (net, theta, eval, cfg) = sweep_case();
    let rows = |products: Products| {
        let inputs = prune::SweepInputs {
            eval: &eval,
            cfg: &cfg,
            products,
            fd_step: 1e-5,
            diag: None,
            calibration: None,
            basis: None,
        };
        let mut pruned = Vec::new();
        let never = AtomicBool::new(false);
        prune::sweep(&net, &theta, &inputs, &mut pruned, &never, &mut |_| {}).unwrap();
        pruned
    };
    let (exact, fd) = (rows(Products::Exact), rows(Products::FiniteDifferences));
    assert_eq!(exact.len(), 2);
    let oracle = net.exact_hvp(&theta, &eval).unwrap();
    for (e, f) in exact.iter().zip(&fd) {
        // the measured numbers do not depend on the products
        assert_eq!(
            (e.row.loss_after, e.row.predicted_first, &e.keep),
            (f.row.loss_after, f.row.predicted_first, &f.keep)
        );
        let dw: Vec<f64> = theta
            .iter()
            .zip(&e.keep)
            .map(|(t, k)| if *k { 0.0 } else { -t })
            .collect();
        let mut hdw = vec![0.0; dw.len()];
        oracle.hvp(&dw, &mut hdw);
        let second = 0.5 * dw.iter().zip(&hdw).map(|(a, b)| a * b).sum::<f64>();
        assert_eq!(e.row.predicted_second, second, "ratio {}", e.row.ratio);
        let rel = (e.row.predicted_second - f.row.predicted_second).abs() / second.abs();
        assert!(
            second != 0.0 && rel < 1e-7,
            "ratio {}: exact {second:e}, central {:e} (rel {rel:.1e})",
            e.row.ratio,
            f.row.predicted_second
        );
    }
}

#[test]
fn sensitivity_formula() {
    assert_eq!(prune::sensitivity(2.0, 3.0), 0.5);
    assert_eq!(prune::sensitivity(0.5, 0.25), -0.5);
}

#[test]
fn sweep_stops_at_the_next_row_after_a_cancel_and_keeps_what_it_finished() {
    let s = spec();
    let theta = s.init(&mut ChaCha8Rng::seed_from_u64(5));
    let net = Network::new(&s, Variant::Plain);
    let eval = net.prepare(&[0.1, 0.2, 0.3, 0.4], &[1]);
    let mut seen = 0;
    let cfg = PruneConfig::default();
    let inputs = prune::SweepInputs {
        eval: &eval,
        cfg: &cfg,
        products: Products::FiniteDifferences,
        fd_step: 1e-5,
        diag: None,
        calibration: None,
        basis: None,
    };
    let cancel = AtomicBool::new(false);
    let mut pruned = Vec::new();
    let r = prune::sweep(&net, &theta, &inputs, &mut pruned, &cancel, &mut |_| {
        seen += 1;
        cancel.store(true, Ordering::Relaxed);
    });
    assert!(r.unwrap_err().is_cancelled());
    assert_eq!(seen, 1);
    assert_eq!(pruned.len(), 1, "the finished row stays");
}
