//! The transformer classifier (`ModelSpec::transformer`): its dfdx forward pass against a
//! plain-Rust one, padding, gradient, the skip, and a short training run.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use resprune::model::{Activation, ModelSpec, Network, ParamKind, TransformerShape, Variant};

mod common;

/// [`common::tiny_transformer`] with 3 classes.
fn tiny(act: Activation, depth: usize, alpha: f64) -> ModelSpec {
    ModelSpec {
        classes: 3,
        activation: act,
        depth,
        alpha,
        ..common::tiny_transformer()
    }
}

/// `spec.init` plus noise, so LayerNorm gains and shifts are not exactly 1 and 0.
fn theta_for(spec: &ModelSpec, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut theta = spec.init(&mut rng);
    for t in theta.iter_mut() {
        *t += rng.gen_range(-0.3..0.3);
    }
    theta
}

// ---------------------------------------------------------------------------------------
// Plain-Rust reference forward pass, one example at a time.

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

// ---------------------------------------------------------------------------------------

#[test]
fn layout_names_kinds_and_layers() {
    let s = tiny(Activation::Gelu, 1, 1.0);
    let l = s.layout();
    let got: Vec<(&str, &str, ParamKind, Vec<usize>)> = l
        .tensors
        .iter()
        .map(|t| (t.name.as_str(), t.layer.as_str(), t.kind, t.shape.clone()))
        .collect();
    use ParamKind::*;
    let (a, m) = ("blocks.0.attn", "blocks.0.mlp");
    let want: Vec<(&str, &str, ParamKind, Vec<usize>)> = vec![
        ("embed.weight", "embed", Embedding, vec![11, 4]),
        ("pos.weight", "pos", Embedding, vec![5, 4]),
        ("blocks.0.attn.norm.weight", a, Norm, vec![4]),
        ("blocks.0.attn.norm.bias", a, Norm, vec![4]),
        ("blocks.0.attn.q.weight", a, Weight, vec![4, 4]),
        ("blocks.0.attn.q.bias", a, Bias, vec![4]),
        ("blocks.0.attn.k.weight", a, Weight, vec![4, 4]),
        ("blocks.0.attn.k.bias", a, Bias, vec![4]),
        ("blocks.0.attn.v.weight", a, Weight, vec![4, 4]),
        ("blocks.0.attn.v.bias", a, Bias, vec![4]),
        ("blocks.0.attn.out.weight", a, Weight, vec![4, 4]),
        ("blocks.0.attn.out.bias", a, Bias, vec![4]),
        ("blocks.0.mlp.norm.weight", m, Norm, vec![4]),
        ("blocks.0.mlp.norm.bias", m, Norm, vec![4]),
        ("blocks.0.mlp.fc1.weight", m, Weight, vec![6, 4]),
        ("blocks.0.mlp.fc1.bias", m, Bias, vec![6]),
        ("blocks.0.mlp.fc2.weight", m, Weight, vec![4, 6]),
        ("blocks.0.mlp.fc2.bias", m, Bias, vec![4]),
        ("final_norm.weight", "final_norm", Norm, vec![4]),
        ("final_norm.bias", "final_norm", Norm, vec![4]),
        ("head.weight", "head", Weight, vec![3, 4]),
        ("head.bias", "head", Bias, vec![3]),
    ];
    assert_eq!(got, want);
    assert_eq!(
        l.layers(),
        ["embed", "pos", a, m, "final_norm", "head"].map(String::from)
    );
    assert_eq!(l.len, 44 + 20 + 8 + 4 * 20 + 8 + 30 + 28 + 8 + 15);

    // both variants share one layout, offsets included
    let s2 = tiny(Activation::Gelu, 2, 1.0);
    let r = Network::new(&s2, Variant::Residual);
    let p = Network::new(&s2, Variant::Plain);
    assert_eq!(r.layout(), p.layout());
    assert_eq!(r.layout(), &s2.layout());

    // init: norm gains 1 and shifts 0, linears within 1/sqrt(fan_in) (fc2's fan-in is ff)
    let theta = s2.init(&mut ChaCha8Rng::seed_from_u64(4));
    let l2 = s2.layout();
    let at = |n: &str| &theta[l2.get(n).unwrap().range()];
    assert!(at("blocks.1.mlp.norm.weight").iter().all(|&v| v == 1.0));
    assert!(at("final_norm.bias").iter().all(|&v| v == 0.0));
    assert!(max_abs(at("blocks.1.mlp.fc2.bias")) <= 1.0 / 6f64.sqrt());
    assert!(max_abs(at("blocks.0.attn.q.bias")) <= 0.5);
}

/// The dfdx forward pass against the plain-Rust one above, on a batch with padding at the
/// end and in the middle. Both sum the same terms in different orders: agreement to 1e-10
/// of the logits' scale is rounding only.
#[test]
fn logits_match_a_plain_rust_forward_pass() {
    for act in [Activation::Gelu, Activation::Tanh, Activation::Relu] {
        for v in Variant::BOTH {
            let s = tiny(act, 2, 0.7);
            let theta = theta_for(&s, 11);
            let (x, y) = common::padded_ids();
            let net = Network::new(&s, v);
            let got = net.logits(&theta, &net.prepare(&x, &y));
            let want = common::transformer_ref::TransformerRef {
                spec: &s,
                theta: &theta,
            }
            .batch_logits(v, &x, false);
            let err = max_diff(&got, &want);
            assert!(
                err <= 1e-10 * max_abs(&want).max(1.0),
                "{act:?} {v}: max |diff| {err:e}\n{got:?}\n{want:?}"
            );
        }
    }
}

/// Padded positions (id 0) must have no effect at all: the padding embedding row and the
/// position rows where an example has padding are free to change. Changing a real token
/// must change the logits.
#[test]
fn padding_is_ignored() {
    let s = tiny(Activation::Gelu, 2, 1.0);
    let layout = s.layout();
    let theta = theta_for(&s, 5);
    // every example padded at positions 3 and 4
    let rows = [[5.0, 3.0, 7.0, 0.0, 0.0], [2.0, 9.0, 1.0, 0.0, 0.0]];
    let x: Vec<f64> = rows.iter().flatten().copied().collect();
    let y = vec![0, 1];
    for v in Variant::BOTH {
        let net = Network::new(&s, v);
        let b = net.prepare(&x, &y);
        let base = net.logits(&theta, &b);

        let mut t2 = theta.clone();
        let emb = layout.get("embed.weight").unwrap().offset;
        let pos = layout.get("pos.weight").unwrap().offset;
        // not a constant shift per row: LayerNorm would hide that even without a mask
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        for c in 0..4 {
            t2[emb + c] += rng.gen_range(-3.0..3.0); // row 0: padding
            t2[pos + 3 * 4 + c] += rng.gen_range(-3.0..3.0); // rows 3 and 4: padded positions
            t2[pos + 4 * 4 + c] += rng.gen_range(-3.0..3.0);
        }
        let moved = net.logits(&t2, &b);
        // a padded key's weight is exp(-1e9 - max) = 0 exactly, so equality is expected;
        // 1e-12 leaves room for a kernel that sums in another order
        let err = max_diff(&base, &moved);
        assert!(err <= 1e-12, "{v}: padding changed the logits by {err:e}");

        // a real position does matter
        let mut t3 = theta.clone();
        t3[pos + 2 * 4] += 0.5; // one coordinate: not a shift LayerNorm removes
        assert!(max_diff(&base, &net.logits(&t3, &b)) > 1e-4, "{v}");
        // and so does a real token
        let mut x2 = x.clone();
        x2[1] = 4.0;
        let other = net.logits(&theta, &net.prepare(&x2, &y));
        assert!(max_diff(&base[..3], &other[..3]) > 1e-4, "{v}");
        assert!(
            max_diff(&base[3..], &other[3..]) == 0.0,
            "{v}: rows are independent"
        );
    }
}

/// Central differences of the loss against `loss_grad` on every parameter of the tiny model
/// (smooth activations). The step is `1e-5 * max(1, |θ_i|)`: truncation error ~ step² |L'''|
/// ~ 1e-10 and rounding ~ eps |L| / step ~ 1e-11, so the difference is ~1e-9 at worst; the
/// bound 1e-6 * max|g| is about a thousand times that, and a wrong term (a missed tape, a
/// transposed weight, a leaked mask) moves entries by a large fraction of max|g|.
#[test]
fn gradient_matches_finite_differences() {
    for act in [Activation::Gelu, Activation::Tanh] {
        for v in Variant::BOTH {
            let s = tiny(act, 2, 0.8);
            let theta = theta_for(&s, 3);
            let (x, y) = common::padded_ids();
            let net = Network::new(&s, v);
            let b = net.prepare(&x, &y);
            let mut g = vec![0.0; theta.len()];
            let e = net.loss_grad(&theta, &b, &mut g);
            assert!((e.loss - net.evaluate(&theta, &b).loss).abs() < 1e-14);
            let scale = max_abs(&g);
            assert!(scale > 1e-3, "a degenerate gradient proves nothing");
            let mut worst: f64 = 0.0;
            let mut tp = theta.clone();
            for i in 0..theta.len() {
                let h = 1e-5 * theta[i].abs().max(1.0);
                tp[i] = theta[i] + h;
                let lp = net.evaluate(&tp, &b).loss;
                tp[i] = theta[i] - h;
                let lm = net.evaluate(&tp, &b).loss;
                tp[i] = theta[i];
                let fd = (lp - lm) / (2.0 * h);
                let err = (g[i] - fd).abs();
                worst = worst.max(err);
                assert!(
                    err <= 1e-6 * scale,
                    "{act:?} {v} param {i} ({}): {} vs {fd}",
                    s.layout()
                        .tensors
                        .iter()
                        .find(|t| t.range().contains(&i))
                        .unwrap()
                        .name,
                    g[i]
                );
            }
            // parameters that only touch padding (embedding row 0) get exactly no gradient
            let l = s.layout();
            let emb = l.get("embed.weight").unwrap().offset;
            assert!(g[emb..emb + 4].iter().all(|&v| v == 0.0), "{act:?} {v}");
            eprintln!("{act:?} {v}: max |g - fd| = {worst:.1e}, max |g| = {scale:.2}");
        }
    }
}

/// With alpha = 0 each residual sub-layer is `h + 0 * F(LN(h)) = h`, so the model is
/// embedding -> final LN -> pool -> head; the plain model (no skip) differs.
#[test]
fn residual_and_plain_differ_only_in_the_skip() {
    let (x, y) = common::padded_ids();
    let s0 = tiny(Activation::Tanh, 2, 0.0);
    let theta = theta_for(&s0, 8);
    let r0 = Network::new(&s0, Variant::Residual);
    let got = r0.logits(&theta, &r0.prepare(&x, &y));
    let identity = common::transformer_ref::TransformerRef {
        spec: &s0,
        theta: &theta,
    }
    .batch_logits(Variant::Residual, &x, true);
    let err = max_diff(&got, &identity);
    assert!(
        err <= 1e-12 * max_abs(&identity).max(1.0),
        "alpha 0: {err:e}"
    );

    let s1 = tiny(Activation::Tanh, 2, 1.0);
    let res = Network::new(&s1, Variant::Residual);
    let plain = Network::new(&s1, Variant::Plain);
    let lr = res.logits(&theta, &res.prepare(&x, &y));
    let lp = plain.logits(&theta, &plain.prepare(&x, &y));
    assert!(max_diff(&lr, &lp) > 1e-3, "plain must differ from residual");
    // the plain variant does not depend on alpha
    let plain0 = Network::new(&s0, Variant::Plain);
    assert_eq!(lp, plain0.logits(&theta, &plain0.prepare(&x, &y)));

    let l = s1.layout();
    let layer = |n: &str| l.get(n).unwrap().layer.clone();
    assert_eq!(layer("blocks.0.attn.q.weight"), "blocks.0.attn");
    assert_eq!(layer("blocks.0.mlp.fc1.weight"), "blocks.0.mlp");
    assert_eq!(res.layout(), plain.layout());
}

/// Random sentences of 1..=5 ids from 3..11, with token 2 put in about half of them.
fn contains_two(n: usize, rng: &mut ChaCha8Rng) -> (Vec<f64>, Vec<usize>) {
    let mut x = vec![0.0; n * 5];
    let mut y = vec![0; n];
    for i in 0..n {
        let len = rng.gen_range(1..=5);
        for t in 0..len {
            x[i * 5 + t] = rng.gen_range(3..11) as f64;
        }
        if rng.gen_bool(0.5) {
            x[i * 5 + rng.gen_range(0..len)] = 2.0;
            y[i] = 1;
        }
    }
    (x, y)
}

/// 40 full-batch Adam steps (lr 0.03) learn "does token 2 occur" to > 90% held-out accuracy.
#[test]
fn learns_whether_a_token_occurs() {
    let mut s = tiny(Activation::Gelu, 1, 1.0);
    s.classes = 2;
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let (xt, yt) = contains_two(256, &mut rng);
    let (xe, ye) = contains_two(256, &mut rng);
    for v in Variant::BOTH {
        let net = Network::new(&s, v);
        let train = net.prepare(&xt, &yt);
        let eval = net.prepare(&xe, &ye);
        let mut theta = s.init(&mut ChaCha8Rng::seed_from_u64(9));
        let before = net.evaluate(&theta, &eval);
        let (mut m, mut s2) = (vec![0.0; theta.len()], vec![0.0; theta.len()]);
        let mut g = vec![0.0; theta.len()];
        let (lr, b1, b2): (f64, f64, f64) = (0.03, 0.9, 0.999);
        for step in 1..=40 {
            net.loss_grad(&theta, &train, &mut g);
            for i in 0..theta.len() {
                m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                s2[i] = b2 * s2[i] + (1.0 - b2) * g[i] * g[i];
                let mh = m[i] / (1.0 - b1.powi(step));
                let vh = s2[i] / (1.0 - b2.powi(step));
                theta[i] -= lr * mh / (vh.sqrt() + 1e-8);
            }
        }
        let after = net.evaluate(&theta, &eval);
        eprintln!("{v}: {before:?} -> {after:?}");
        assert!(
            after.accuracy > 0.9 && after.loss < before.loss,
            "{v}: {before:?} -> {after:?}"
        );
    }
}

/// CPU time of the calling thread (Linux), which unlike wall time ignores other processes on a
/// busy machine; `None` elsewhere.
fn thread_cpu_s() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(s.split_whitespace().next()?.parse::<f64>().ok()? * 1e-9)
}

/// Ad-hoc timing of one `loss_grad` at the sizes of the movie-review runs (not a timed test):
/// `cargo test --release --test transformer -- --ignored --nocapture`; with
/// `RAYON_NUM_THREADS=1` the thread CPU time is the whole cost of a step.
#[test]
#[ignore]
fn timing_loss_grad_n256() {
    let s = ModelSpec {
        inputs: 32,
        width: 32,
        depth: 2,
        classes: 2,
        activation: Activation::Gelu,
        alpha: 1.0,
        learned_alpha: false,
        transformer: Some(TransformerShape {
            vocab: 2000,
            max_len: 32,
            heads: 2,
            ff: 64,
        }),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let theta = s.init(&mut rng);
    for n in [32, 256, 1000] {
        let mut x = vec![0.0; n * 32];
        for i in 0..n {
            let len = rng.gen_range(5..=32);
            for t in 0..len {
                x[i * 32 + t] = rng.gen_range(1..2000) as f64;
            }
        }
        let y: Vec<usize> = (0..n).map(|i| i % 2).collect();
        for v in Variant::BOTH {
            let net = Network::new(&s, v);
            let b = net.prepare(&x, &y);
            let mut g = vec![0.0; theta.len()];
            net.loss_grad(&theta, &b, &mut g); // warm-up
            let reps = 5;
            let t0 = std::time::Instant::now();
            let c0 = thread_cpu_s();
            for _ in 0..reps {
                net.loss_grad(&theta, &b, &mut g);
            }
            let grad_ms = t0.elapsed().as_secs_f64() * 1e3 / reps as f64;
            let cpu_ms = match (c0, thread_cpu_s()) {
                (Some(a), Some(b)) => (b - a) * 1e3 / reps as f64,
                _ => f64::NAN,
            };
            let t0 = std::time::Instant::now();
            for _ in 0..reps {
                net.evaluate(&theta, &b);
            }
            let eval_ms = t0.elapsed().as_secs_f64() * 1e3 / reps as f64;
            eprintln!(
                "n {n} {v}: loss_grad {grad_ms:.1} ms (thread cpu {cpu_ms:.1} ms), \
                 evaluate {eval_ms:.1} ms ({} params)",
                theta.len()
            );
        }
    }
}
