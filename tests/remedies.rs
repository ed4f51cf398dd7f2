//! The article's remedies (OBD, curvature gate, fine-tuning with masks) and the verdict logic.

use std::sync::atomic::AtomicBool;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use resprune::config::{Config, PruneConfig, PruneMethod, PruneScope, TrainConfig};
use resprune::curvature::{dense_hessian, BatchLoss};
use resprune::experiment;
use resprune::model::{Activation, ModelSpec, Network, ParamKind, Variant};
use resprune::prune::{self, curvature_gate, method_mask, obd_saliency, quantile};
use resprune::stats::{judge, paired_t, sign_test, Direction, MeanSd, Verdict};

fn spec() -> ModelSpec {
    ModelSpec {
        inputs: 3,
        width: 5,
        depth: 1,
        classes: 2,
        activation: Activation::Tanh,
        alpha: 1.0,
        learned_alpha: false,
        transformer: None,
    }
}

fn data() -> (Vec<f64>, Vec<usize>) {
    let x = (0..90)
        .map(|i| ((i * 29 % 23) as f64 / 11.0) - 1.0)
        .collect();
    let y = (0..30).map(|i| (i * 7 / 3) % 2).collect();
    (x, y)
}

#[test]
fn obd_saliency_is_half_h_ii_theta_squared_on_a_real_hessian() {
    let s = spec();
    let theta = s.init(&mut ChaCha8Rng::seed_from_u64(1));
    let (x, y) = data();
    let net = Network::new(&s, Variant::Residual);
    let batch = net.prepare(&x, &y);
    let h = dense_hessian(
        &BatchLoss {
            net: &net,
            batch: &batch,
        },
        &theta,
        1e-5,
        &AtomicBool::new(false),
        &|_| {},
    )
    .unwrap();
    let diag: Vec<f64> = (0..theta.len()).map(|i| h.get(i, i)).collect();
    let sal = obd_saliency(&theta, &diag);
    for i in 0..theta.len() {
        assert_eq!(sal[i], 0.5 * h.get(i, i) * theta[i] * theta[i]);
    }
    // the OBD mask removes exactly the lowest-saliency eligible weights
    let cfg = PruneConfig::default();
    let m = method_mask(
        PruneMethod::Obd,
        &theta,
        Some(&diag),
        net.layout(),
        &cfg,
        0.3,
    )
    .expect("obd needs no calibration");
    let elig = prune::eligible(net.layout(), false, false);
    let cut = (0..theta.len())
        .filter(|&i| elig[i] && !m.keep[i])
        .map(|i| sal[i])
        .fold(f64::NEG_INFINITY, f64::max);
    for i in (0..theta.len()).filter(|&i| elig[i] && m.keep[i]) {
        assert!(sal[i] >= cut);
    }
    assert_eq!(
        m.pruned,
        (0.3 * elig.iter().filter(|e| **e).count() as f64) as usize
    );
}

#[test]
fn curvature_gate_excludes_exactly_the_parameters_at_or_above_the_layer_quantile() {
    let s = spec();
    let layout = s.layout();
    let n = layout.len;
    // a made-up diagonal: H_ii = i, so within each layer the order is the index order
    let diag: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let elig = prune::eligible(&layout, false, false);
    let pass = curvature_gate(&layout, &elig, &diag, 0.5);
    for t in layout
        .tensors
        .iter()
        .filter(|t| t.kind == ParamKind::Weight)
    {
        let vals: Vec<f64> = t.range().map(|i| diag[i]).collect();
        let q = quantile(&vals, 0.5).unwrap();
        for i in t.range() {
            assert_eq!(pass[i], diag[i] < q, "{} index {i}", t.name);
        }
    }
    // biases are not eligible, so never pass
    for t in layout.tensors.iter().filter(|t| t.kind == ParamKind::Bias) {
        assert!(t.range().all(|i| !pass[i]));
    }
    // the gated mask prunes only parameters that pass, by magnitude
    let theta: Vec<f64> = (0..n).map(|i| ((i * 37 % 11) as f64) - 5.0).collect();
    let cfg = PruneConfig {
        scope: PruneScope::Layer,
        ..PruneConfig::default()
    };
    let m = method_mask(
        PruneMethod::CurvatureGated,
        &theta,
        Some(&diag),
        &layout,
        &cfg,
        0.3,
    )
    .expect("curvature_gated needs no calibration");
    assert!((0..n).all(|i| m.keep[i] || pass[i]));
    assert!(m.pruned > 0);
}

#[test]
fn quantile_matches_numpy_linear_interpolation() {
    assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), Some(2.5));
    assert_eq!(quantile(&[4.0, 1.0, 3.0], 0.0), Some(1.0));
    assert_eq!(quantile(&[4.0, 1.0, 3.0], 1.0), Some(4.0));
    assert!((quantile(&[0.0, 10.0], 0.25).unwrap() - 2.5).abs() < 1e-15);
}

#[test]
fn finetuning_holds_masked_weights_at_exactly_zero() {
    let s = spec();
    let theta = s.init(&mut ChaCha8Rng::seed_from_u64(3));
    let (x, y) = data();
    let net = Network::new(&s, Variant::Plain);
    let eval = net.prepare(&x, &y);
    let train = resprune::data::Dataset {
        x: x.clone(),
        y: y.clone(),
        features: 3,
        classes: 2,
        class_names: vec!["a".into(), "b".into()],
    };
    let cfg = PruneConfig {
        ratios: vec![0.5],
        ..PruneConfig::default()
    };
    let inputs = prune::SweepInputs {
        eval: &eval,
        cfg: &cfg,
        products: resprune::config::Products::FiniteDifferences,
        fd_step: 1e-5,
        diag: None,
        calibration: None,
        basis: None,
    };
    let ft = prune::Finetune {
        train: &train,
        cfg: TrainConfig {
            epochs: 5,
            lr: 0.05,
            batch_size: 4,
            ..TrainConfig::default()
        },
        seed: 0,
    };
    let never = AtomicBool::new(false);
    let mut pruned = Vec::new();
    prune::sweep(&net, &theta, &inputs, &mut pruned, &never, &mut |_| {}).unwrap();
    let ft = prune::finetune(&net, &theta, &pruned[0], &ft, &eval, &never).unwrap();
    let rows: Vec<_> = pruned.iter().map(|p| &p.row).collect();
    assert_eq!(ft.max_masked_abs, 0.0);
    assert_eq!(ft.epochs, 5);
    // fine-tuning on the evaluation data lowers the pruned loss
    assert!(ft.loss < rows[0].loss_after, "{ft:?}");
    assert_eq!(
        ft.sensitivity,
        (ft.loss - rows[0].loss_before) / rows[0].loss_before
    );
}

#[test]
fn mean_sd_and_paired_tests_match_hand_computation() {
    let m = MeanSd::of(&[1.0, 2.0, 3.0, 4.0]);
    assert_eq!(m.mean, 2.5);
    assert!((m.sd - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
    // sign test: 5 of 5 positive, two-sided p = 2 / 32
    assert!((sign_test(5, 0) - 0.0625).abs() < 1e-12);
    assert!((sign_test(3, 2) - 1.0).abs() < 1e-12);
    assert!((sign_test(9, 1) - 22.0 / 1024.0).abs() < 1e-12);
    // t = mean / (sd / sqrt n): diffs 1, 2, 3 -> mean 2, sd 1, t = 2 sqrt 3 = 3.4641
    let (t, p) = paired_t(&[1.0, 2.0, 3.0]);
    assert!((t - 2.0 * 3f64.sqrt()).abs() < 1e-12);
    // two-sided p of t = 3.4641 with 2 degrees of freedom: 0.07418 (scipy.stats.t.sf * 2)
    assert!((p - 0.074180).abs() < 1e-5, "{p}");
}

#[test]
fn verdicts_on_constructed_inputs() {
    // clear support: every seed says residual < plain, tightly
    let c = judge(
        "x",
        Direction::Negative,
        vec![-1.0, -1.1, -0.9, -1.05, -0.95],
        0.05,
    );
    assert_eq!(c.verdict, Verdict::Supported);
    assert_eq!((c.positive, c.negative), (0, 5));
    // clear contradiction: the opposite sign
    let c = judge(
        "x",
        Direction::Negative,
        vec![1.0, 1.1, 0.9, 1.05, 0.95],
        0.05,
    );
    assert_eq!(c.verdict, Verdict::Contradicted);
    // noise: mixed signs around zero
    let c = judge(
        "x",
        Direction::Positive,
        vec![0.3, -0.2, 0.1, -0.4, 0.15],
        0.05,
    );
    assert_eq!(c.verdict, Verdict::Inconclusive);
    // one outlier carries the mean while most seeds disagree: inconclusive
    let c = judge("x", Direction::Positive, vec![-0.1, -0.1, -0.1, 5.0], 0.99);
    assert_eq!(c.verdict, Verdict::Inconclusive);
    // a single seed never decides
    let c = judge("x", Direction::Positive, vec![3.0], 0.05);
    assert_eq!(c.verdict, Verdict::Inconclusive);
}

#[test]
fn replicates_keep_every_seed_and_summaries_match_them() {
    let cfg = Config::parse(
        r#"
name = "rep"
seeds = [3, 7, 11]
[data]
source = "teacher"
samples = 40
features = 3
eval_fraction = 0.25
[model]
width = 4
activation = "tanh"
[train]
epochs = 2
lr = 0.01
[prune]
methods = ["magnitude", "obd"]
ratios = [0.2, 0.5]
finetune_epochs = 1
"#,
        "rep.toml",
    )
    .unwrap();
    let r = experiment::run(&cfg, &experiment::quiet, &AtomicBool::new(false)).unwrap();
    assert_eq!(r.replicates.len(), 2);
    assert_eq!(r.replicates[1].seed, 11);
    let sum = r.summary.as_ref().unwrap();
    assert_eq!(sum.seeds, vec![3, 7, 11]);
    let vars: Vec<f64> = r
        .pairs()
        .iter()
        .map(|p| p.1.spectrum.as_ref().unwrap().stats.variance)
        .collect();
    assert_eq!(sum.residual.variance, MeanSd::of(&vars));
    // 2 methods x 2 ratios rows, each with its fine-tuned S
    assert_eq!(r.residual.pruning.len(), 4);
    assert!(r.residual.pruning.iter().all(|row| row.finetuned.is_some()));
    let s_obd_05: Vec<f64> = r
        .pairs()
        .iter()
        .map(|p| p.2.pruning[3].sensitivity)
        .collect();
    assert_eq!(sum.plain.pruning[3].sensitivity, MeanSd::of(&s_obd_05));
    assert_eq!(sum.plain.pruning[3].method, PruneMethod::Obd);
    // claims: the variance one, one per ratio of the first method, and the mechanism's
    // (higher curvature along the pruning step)
    assert_eq!(r.verdicts.len(), 4);
    assert!(
        r.verdicts[3].claim.contains("Rayleigh"),
        "{}",
        r.verdicts[3].claim
    );
    let d: Vec<f64> = r
        .pairs()
        .iter()
        .map(|p| {
            p.1.spectrum.as_ref().unwrap().stats.variance
                - p.2.spectrum.as_ref().unwrap().stats.variance
        })
        .collect();
    assert_eq!(r.verdicts[0].differences, d);
    // and the record round-trips
    let back = resprune::record::parse(&r.to_toml().unwrap(), "mem").unwrap();
    assert_eq!(back, r);
}

#[test]
fn alpha_sweep_traces_the_residual_model_from_identity_blocks_to_alpha_one() {
    let cfg = Config::parse(
        r#"
name = "sweep"
seed = 2
[data]
source = "teacher"
samples = 40
features = 3
eval_fraction = 0.25
[model]
width = 4
activation = "tanh"
alpha = 1.0
alpha_sweep = [0.0, 1.0]
[train]
epochs = 2
lr = 0.01
[prune]
ratios = [0.3]
"#,
        "sweep.toml",
    )
    .unwrap();
    let r = experiment::run(&cfg, &experiment::quiet, &AtomicBool::new(false)).unwrap();
    assert_eq!(r.alpha_sweep.len(), 2);
    assert_eq!(r.alpha_sweep[0].alpha, 0.0);
    // alpha = 1 is the pair's residual model: same theta0, data and order, same numbers
    assert_eq!(r.alpha_sweep[1].residual, r.residual);
    // alpha = 0 cuts the block out: its 20 parameters get no gradient, so the Hessian has
    // 20 zero rows and at least 20 eigenvalues that are zero to rounding
    let s = r.alpha_sweep[0].residual.spectrum.as_ref().unwrap();
    assert!(s.stats.near_zero >= Some(20), "{:?}", s.stats.near_zero);
    let back = resprune::record::parse(&r.to_toml().unwrap(), "mem").unwrap();
    assert_eq!(back, r);
    let text = resprune::cli::summary::render(&r);
    assert!(text.contains("alpha sweep"), "{text}");
}

#[test]
fn the_middle_ratio_is_taken_within_the_first_method() {
    use resprune::frontend::middle_row;
    let cfg = Config::parse(
        r#"
name = "mid"
[data]
source = "teacher"
samples = 30
features = 3
eval_fraction = 0.0
[model]
width = 3
activation = "tanh"
[train]
epochs = 1
[prune]
methods = ["magnitude", "obd"]
ratios = [0.1, 0.3, 0.5]
"#,
        "mid.toml",
    )
    .unwrap();
    let r = experiment::run(&cfg, &experiment::quiet, &AtomicBool::new(false)).unwrap();
    // six rows: magnitude 0.1, 0.3, 0.5 then obd; the middle is magnitude at 0.3
    let row = middle_row(&r.residual).unwrap();
    assert_eq!((row.method, row.ratio), (PruneMethod::Magnitude, 0.3));
}
