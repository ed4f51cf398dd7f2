//! `model.alpha = "learned"`: one trainable residual scale per block (issue #6, §7.3).

use std::sync::atomic::AtomicBool;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use resprune::config::{Alpha, Config};
use resprune::curvature::SpectrumMethod;
use resprune::experiment;
use resprune::model::{Activation, ModelSpec, Network, ParamKind, Variant};

fn spec(learned: bool) -> ModelSpec {
    ModelSpec {
        inputs: 3,
        width: 4,
        depth: 2,
        classes: 3,
        activation: Activation::Tanh,
        alpha: 0.7,
        learned_alpha: learned,
        transformer: None,
    }
}

fn data() -> (Vec<f64>, Vec<usize>) {
    let x = (0..60)
        .map(|i| ((i * 17 % 13) as f64 / 6.0) - 1.0)
        .collect();
    let y = (0..20).map(|i| (i * 5 / 3) % 3).collect();
    (x, y)
}

#[test]
fn scales_follow_the_shared_tensors_in_the_residual_layout_only() {
    let s = spec(true);
    let shared = s.layout();
    let residual = s.layout_for(Variant::Residual);
    let plain = s.layout_for(Variant::Plain);
    assert_eq!(plain, shared);
    assert_eq!(residual.len, shared.len + 2);
    assert_eq!(residual.tensors[..shared.tensors.len()], shared.tensors[..]);
    let scales: Vec<_> = residual.tensors[shared.tensors.len()..].iter().collect();
    assert_eq!(scales[0].name, "blocks.0.alpha");
    assert_eq!(scales[1].name, "blocks.1.alpha");
    assert!(scales.iter().all(|t| t.kind == ParamKind::Scale));
    assert_eq!(scales[1].offset, shared.len + 1);
    // never pruned, whatever the flags
    let elig = resprune::prune::eligible(&residual, true, true);
    assert!(!elig[shared.len] && !elig[shared.len + 1]);
    // theta0 is shared; the residual model appends its scales at their starting value
    let theta0 = s.init(&mut ChaCha8Rng::seed_from_u64(3));
    let r = s.theta_for(Variant::Residual, &theta0);
    assert_eq!(&r[..theta0.len()], &theta0[..]);
    assert_eq!(&r[theta0.len()..], &[0.7, 0.7]);
    assert_eq!(s.theta_for(Variant::Plain, &theta0), theta0);
    // without learning, both variants have the shared layout
    assert_eq!(spec(false).layout_for(Variant::Residual), shared);
}

#[test]
fn learned_scales_reproduce_fixed_alpha_and_receive_the_finite_difference_gradient() {
    let (x, y) = data();
    let learned = spec(true);
    let fixed = spec(false);
    let theta0 = learned.init(&mut ChaCha8Rng::seed_from_u64(5));
    let net = Network::new(&learned, Variant::Residual);
    let reference = Network::new(&fixed, Variant::Residual);
    let batch = net.prepare(&x, &y);
    let theta = learned.theta_for(Variant::Residual, &theta0);
    // at alpha_b = alpha the learned model is the fixed one; the forward pass is the same
    // sequence of operations, so the losses agree to rounding
    let a = net.evaluate(&theta, &batch).loss;
    let b = reference.evaluate(&theta0, &reference.prepare(&x, &y)).loss;
    assert!((a - b).abs() <= 1e-14 * b.abs(), "{a} vs {b}");

    // d loss / d alpha_b against central differences. tanh is smooth, so the FD error is
    // O(h^2 f''') ~ 1e-10 at h = 1e-5, plus rounding eps*f/h ~ 1e-11: 1e-7 relative is loose.
    let mut g = vec![0.0; theta.len()];
    net.loss_grad(&theta, &batch, &mut g);
    let h = 1e-5;
    for (b, idx) in [theta0.len(), theta0.len() + 1].into_iter().enumerate() {
        let mut tp = theta.clone();
        tp[idx] += h;
        let mut tm = theta.clone();
        tm[idx] -= h;
        let fd = (net.evaluate(&tp, &batch).loss - net.evaluate(&tm, &batch).loss) / (2.0 * h);
        assert!(
            g[idx].abs() > 1e-4,
            "blocks.{b}.alpha gets no gradient: {}",
            g[idx]
        );
        assert!(
            (g[idx] - fd).abs() <= 1e-7 * fd.abs().max(1e-3),
            "blocks.{b}.alpha: autodiff {} vs FD {fd}",
            g[idx]
        );
    }
    // and a different value of one scale changes the loss (it is really used)
    let mut t2 = theta.clone();
    t2[theta0.len()] = 0.0;
    assert_ne!(net.evaluate(&t2, &batch).loss, a);
}

#[test]
fn a_run_with_learned_alpha_trains_the_scales_and_records_them() {
    let cfg = Config::parse(
        r#"
name = "learned"
seed = 4
[data]
source = "teacher"
samples = 60
features = 3
eval_fraction = 0.25
[model]
width = 4
depth = 2
activation = "tanh"
alpha = "learned"
[train]
epochs = 5
lr = 0.05
[prune]
ratios = [0.3]
"#,
        "learned.toml",
    )
    .unwrap();
    assert_eq!(cfg.model.alpha, Alpha::Learned);
    let r = experiment::run(&cfg, &experiment::quiet, &AtomicBool::new(false)).unwrap();
    assert!(r.model.learned_alpha);
    assert_eq!(r.residual.learned_alpha.len(), 2);
    assert!(r.plain.learned_alpha.is_empty());
    // Adam at lr 0.05 for 5 epochs moves every scale away from its start of 1
    for a in &r.residual.learned_alpha {
        assert!((a - 1.0).abs() > 1e-3, "scale did not move: {a}");
    }
    // the residual spectrum covers the scales too: two more eigenvalues than the plain one
    let n = |v: &resprune::record::VariantResult| v.spectrum.as_ref().unwrap().eigenvalues.len();
    assert_eq!(n(&r.residual), n(&r.plain) + 2);
    // the record round-trips and says "learned"
    let text = r.to_toml().unwrap();
    assert!(text.contains("alpha = \"learned\""), "{text}");
    let back = resprune::record::parse(&text, "mem").unwrap();
    assert_eq!(back, r);
    let shown = resprune::cli::summary::render(&r);
    assert!(
        shown.contains("alpha learned") && shown.contains("learned alpha after training: "),
        "{shown}"
    );
    // exports carry the trained scales: CSV columns (empty for the plain rows), JSON arrays
    let csv = resprune::record::export::csv(&r).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (a0, a1) = (col("learned_alpha[0]"), col("learned_alpha[1]"));
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        if cells[0] == "residual" {
            assert_eq!(
                cells[a0].parse::<f64>().unwrap(),
                r.residual.learned_alpha[0]
            );
            assert_eq!(
                cells[a1].parse::<f64>().unwrap(),
                r.residual.learned_alpha[1]
            );
        } else {
            assert_eq!((cells[a0], cells[a1]), ("", ""), "{line}");
        }
    }
    let json = resprune::record::export::json(&r);
    let scales: Vec<f64> =
        serde_json::from_value(json["models"]["residual"]["learned_alpha"].clone()).unwrap();
    assert_eq!(scales, r.residual.learned_alpha);
    assert!(json["models"]["plain"]["learned_alpha"].is_null());
}

#[test]
fn alpha_accepts_a_number_or_learned_and_names_anything_else() {
    let ok = |v: &str| {
        Config::parse(&format!("name = \"a\"\n[model]\nalpha = {v}\n"), "a.toml")
            .map(|c| c.model.alpha)
    };
    assert_eq!(ok("0.5").unwrap(), Alpha::Fixed(0.5));
    assert_eq!(ok("1").unwrap(), Alpha::Fixed(1.0));
    assert_eq!(ok("\"learned\"").unwrap(), Alpha::Learned);
    let e = ok("\"learnt\"").unwrap_err().to_string();
    assert!(
        e.contains("a.toml:3") && e.contains("model.alpha") && e.contains("\"learned\""),
        "{e}"
    );
}

#[test]
fn both_models_get_the_same_hessian_method_even_when_the_scales_cross_the_dense_limit() {
    // shared: stem 4x3+4, two blocks 4x4+4, head 3x4+3 = 71; the residual model has 73
    let cfg = Config::parse(
        r#"
name = "edge"
[data]
source = "teacher"
samples = 40
features = 3
classes = 3
[model]
width = 4
depth = 2
activation = "tanh"
alpha = "learned"
[train]
epochs = 1
[hessian]
method = "auto"
dense_limit = 71
lanczos_steps = 20
slq_runs = 1
slq_steps = 10
hutchinson_samples = 4
[prune]
ratios = [0.3]
"#,
        "edge.toml",
    )
    .unwrap();
    let r = experiment::run(&cfg, &experiment::quiet, &AtomicBool::new(false)).unwrap();
    let method = |v: &resprune::record::VariantResult| v.spectrum.as_ref().unwrap().method;
    assert_eq!(r.plain.spectrum.as_ref().unwrap().params, 71);
    assert_eq!(r.residual.spectrum.as_ref().unwrap().params, 73);
    // chosen by the larger model, for both: the verdict compares like with like
    assert_eq!(method(&r.residual), SpectrumMethod::Lanczos);
    assert_eq!(method(&r.plain), SpectrumMethod::Lanczos);
}
