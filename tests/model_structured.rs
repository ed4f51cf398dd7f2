//! The model layer of structured pruning (issue 15): lesioned blocks
//! (`Network::evaluate_lesioned`) against networks built to compute the same function, and the
//! captured layer inputs (`Network::activations`) against plain-Rust forward passes.
//!
//! Tolerance: results that must be the same function computed by different dfdx ops (a zeroed
//! branch, a shallower network, a reference forward in plain Rust that sums in another order)
//! are compared to `1e-12` relative to the larger of 1 and the reference's largest magnitude.
//! The models are tiny (width 4, sums of at most 6 terms of magnitude below 10), so rounding
//! differences are a few ulps, about `1e-15`; a wrong layer, block or row is off by `1e-2` or
//! more. Copies of one tensor (`k` and `q` inputs, a block's output and the next block's input)
//! are compared exactly.

mod common;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use resprune::model::{
    Activation, Activations, Eval, ModelSpec, Network, ParamKind, ParamLayout, Variant,
};

const TOL: f64 = 1e-12;

/// `max |a - b| / max(1, max |b|)`.
fn rel_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "compared vectors differ in length");
    let scale = b.iter().fold(1.0_f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0_f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

fn assert_close(a: &[f64], b: &[f64], what: &str) {
    let d = rel_diff(a, b);
    assert!(d <= TOL, "{what}: relative difference {d:e} above {TOL:e}");
}

fn assert_same_eval(a: Eval, b: Eval, what: &str) {
    assert_close(&[a.loss], &[b.loss], &format!("{what} (loss)"));
    assert_eq!(a.accuracy, b.accuracy, "{what} (accuracy)");
}

fn noisy(theta: &mut [f64], seed: u64, amount: f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for t in theta.iter_mut() {
        *t += rng.gen_range(-amount..amount);
    }
}

fn zero(theta: &mut [f64], layout: &ParamLayout, name: &str) {
    let t = layout
        .get(name)
        .unwrap_or_else(|| panic!("no tensor {name}"));
    theta[t.range()].fill(0.0);
}

/// `theta` of the depth-1 network `small` (layout of the same variant): every tensor copied
/// from the one of `big_theta` with the same name, blocks at or after `removed` shifted by one.
fn splice_without_block(
    big: &ParamLayout,
    big_theta: &[f64],
    small: &ParamLayout,
    removed: usize,
) -> Vec<f64> {
    let mut out = vec![0.0; small.len];
    for t in &small.tensors {
        let name = match t.name.strip_prefix("blocks.") {
            Some(rest) => {
                let (idx, tail) = rest.split_once('.').expect("blocks.{b}.…");
                let b: usize = idx.parse().expect("a block index");
                let b = if b >= removed { b + 1 } else { b };
                format!("blocks.{b}.{tail}")
            }
            None => t.name.clone(),
        };
        let src = big.get(&name).unwrap_or_else(|| panic!("no tensor {name}"));
        assert_eq!(src.shape, t.shape, "{name}");
        out[t.range()].copy_from_slice(&big_theta[src.range()]);
    }
    out
}

fn one_hot(depth: usize, b: usize) -> Vec<bool> {
    (0..depth).map(|i| i == b).collect()
}

// ---------------------------------------------------------------------------------------
// MLP

fn mlp(act: Activation, depth: usize, learned_alpha: bool) -> ModelSpec {
    ModelSpec {
        inputs: 3,
        width: 4,
        depth,
        classes: 3,
        activation: act,
        alpha: 0.7,
        learned_alpha,
        transformer: None,
    }
}

fn mlp_data() -> (Vec<f64>, Vec<usize>) {
    let x = (0..36)
        .map(|i| ((i * 17 % 13) as f64 / 6.0) - 1.0)
        .collect();
    let y = (0..12).map(|i| (i * 5 / 3) % 3).collect();
    (x, y)
}

/// A variant's `theta` with noise on every entry (learned scales away from `alpha`).
fn mlp_theta(spec: &ModelSpec, v: Variant, seed: u64) -> Vec<f64> {
    let theta0 = spec.init(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut theta = spec.theta_for(v, &theta0);
    noisy(&mut theta, seed + 100, 0.3);
    theta
}

const ACTS: [Activation; 3] = [Activation::Relu, Activation::Tanh, Activation::Gelu];

#[test]
fn a_lesioned_residual_mlp_block_is_a_zeroed_branch() {
    let (x, y) = mlp_data();
    for act in ACTS {
        let spec = mlp(act, 3, false);
        let net = Network::new(&spec, Variant::Residual);
        let batch = net.prepare(&x, &y);
        let theta = mlp_theta(&spec, Variant::Residual, 1);
        let intact = net.evaluate(&theta, &batch);
        for b in 0..spec.depth {
            let lesioned = net.evaluate_lesioned(&theta, &batch, &one_hot(3, b));
            let mut zeroed = theta.clone();
            zero(&mut zeroed, net.layout(), &format!("blocks.{b}.weight"));
            zero(&mut zeroed, net.layout(), &format!("blocks.{b}.bias"));
            assert_same_eval(
                lesioned,
                net.evaluate(&zeroed, &batch),
                &format!("{act:?} block {b}"),
            );
            // the lesion does something: the test is not comparing two intact networks
            assert!(
                (lesioned.loss - intact.loss).abs() > 1e-4,
                "{act:?} block {b}: the lesion left the loss at {}",
                intact.loss
            );
        }
        // two blocks at once
        let lesioned = net.evaluate_lesioned(&theta, &batch, &[true, false, true]);
        let mut zeroed = theta.clone();
        for b in [0, 2] {
            zero(&mut zeroed, net.layout(), &format!("blocks.{b}.weight"));
            zero(&mut zeroed, net.layout(), &format!("blocks.{b}.bias"));
        }
        assert_same_eval(
            lesioned,
            net.evaluate(&zeroed, &batch),
            &format!("{act:?} 0+2"),
        );
    }
}

#[test]
fn a_lesioned_block_with_a_learned_scale_is_a_zero_scale() {
    let (x, y) = mlp_data();
    let spec = mlp(Activation::Tanh, 3, true);
    let net = Network::new(&spec, Variant::Residual);
    let batch = net.prepare(&x, &y);
    let theta = mlp_theta(&spec, Variant::Residual, 2);
    for b in 0..spec.depth {
        let lesioned = net.evaluate_lesioned(&theta, &batch, &one_hot(3, b));
        let mut scaled = theta.clone();
        zero(&mut scaled, net.layout(), &format!("blocks.{b}.alpha"));
        assert_same_eval(
            lesioned,
            net.evaluate(&scaled, &batch),
            &format!("block {b}"),
        );
        // and the same as zeroing the branch's linear
        let mut zeroed = theta.clone();
        zero(&mut zeroed, net.layout(), &format!("blocks.{b}.weight"));
        zero(&mut zeroed, net.layout(), &format!("blocks.{b}.bias"));
        assert_same_eval(
            lesioned,
            net.evaluate(&zeroed, &batch),
            &format!("block {b} zeroed"),
        );
        assert!((lesioned.loss - net.evaluate(&theta, &batch).loss).abs() > 1e-4);
    }
}

#[test]
fn a_lesioned_plain_mlp_block_is_a_shallower_network() {
    let (x, y) = mlp_data();
    for act in ACTS {
        let spec = mlp(act, 3, false);
        let net = Network::new(&spec, Variant::Plain);
        let batch = net.prepare(&x, &y);
        let theta = mlp_theta(&spec, Variant::Plain, 3);
        let small_spec = ModelSpec {
            depth: 2,
            ..spec.clone()
        };
        let small = Network::new(&small_spec, Variant::Plain);
        let small_batch = small.prepare(&x, &y);
        for b in 0..spec.depth {
            let lesioned = net.evaluate_lesioned(&theta, &batch, &one_hot(3, b));
            let spliced = splice_without_block(net.layout(), &theta, small.layout(), b);
            assert_same_eval(
                lesioned,
                small.evaluate(&spliced, &small_batch),
                &format!("{act:?} block {b}"),
            );
            assert!((lesioned.loss - net.evaluate(&theta, &batch).loss).abs() > 1e-4);
        }
    }
}

#[test]
fn no_lesion_is_evaluate_bit_for_bit() {
    let (x, y) = mlp_data();
    for (learned, v) in [
        (false, Variant::Residual),
        (true, Variant::Residual),
        (false, Variant::Plain),
    ] {
        let spec = mlp(Activation::Gelu, 3, learned);
        let net = Network::new(&spec, v);
        let batch = net.prepare(&x, &y);
        let theta = mlp_theta(&spec, v, 4);
        let a = net.evaluate(&theta, &batch);
        let b = net.evaluate_lesioned(&theta, &batch, &[false; 3]);
        assert_eq!(a.loss.to_bits(), b.loss.to_bits(), "{v} learned {learned}");
        assert_eq!(a.accuracy.to_bits(), b.accuracy.to_bits());
        // and the gradient pass computes the same loss
        let mut g = vec![0.0; net.dim()];
        assert_eq!(
            net.loss_grad(&theta, &batch, &mut g).loss.to_bits(),
            a.loss.to_bits()
        );
    }
    let (x, y) = common::padded_ids();
    for v in Variant::BOTH {
        let spec = tiny(Activation::Relu, 2, 0.8);
        let net = Network::new(&spec, v);
        let batch = net.prepare(&x, &y);
        let theta = tiny_theta(&spec, 5);
        let a = net.evaluate(&theta, &batch);
        let b = net.evaluate_lesioned(&theta, &batch, &[false; 2]);
        assert_eq!(a.loss.to_bits(), b.loss.to_bits(), "transformer {v}");
        assert_eq!(a.accuracy.to_bits(), b.accuracy.to_bits());
    }
}

#[test]
#[should_panic(expected = "skip must hold one flag per block: 2 flags for a depth-3 model")]
fn a_skip_list_of_the_wrong_length_is_refused() {
    let (x, y) = mlp_data();
    let spec = mlp(Activation::Relu, 3, false);
    let net = Network::new(&spec, Variant::Residual);
    let batch = net.prepare(&x, &y);
    let theta = mlp_theta(&spec, Variant::Residual, 6);
    net.evaluate_lesioned(&theta, &batch, &[false, true]);
}

/// The stream entering each block and the final one, per example, from `tests/common`'s
/// layers.
fn mlp_streams(spec: &ModelSpec, v: Variant, theta: &[f64], x: &[f64]) -> Vec<Vec<f64>> {
    let act = |z| common::activate(spec.activation, z);
    let mut h: Vec<f64> = common::linear(spec, theta, "stem", x)
        .into_iter()
        .map(act)
        .collect();
    let mut out = vec![h.clone()];
    for b in 0..spec.depth {
        let f: Vec<f64> = common::linear(spec, theta, &format!("blocks.{b}"), &h)
            .into_iter()
            .map(act)
            .collect();
        h = match v {
            Variant::Residual => h.iter().zip(&f).map(|(a, b)| a + spec.alpha * b).collect(),
            Variant::Plain => f,
        };
        out.push(h.clone());
    }
    out
}

fn weight_names(layout: &ParamLayout) -> Vec<String> {
    layout
        .tensors
        .iter()
        .filter(|t| t.kind == ParamKind::Weight)
        .map(|t| t.name.clone())
        .collect()
}

fn names(acts: &Activations) -> Vec<String> {
    acts.inputs.iter().map(|i| i.weight.clone()).collect()
}

/// `x Wᵀ + b` of `head.*` applied to the captured head input: row-major `(rows, classes)`.
fn through_head(acts: &Activations, layout: &ParamLayout, theta: &[f64]) -> Vec<f64> {
    let head = acts.input("head.weight").expect("head input captured");
    let w = &theta[layout.get("head.weight").unwrap().range()];
    let bias = &theta[layout.get("head.bias").unwrap().range()];
    let d = head.cols;
    head.x
        .chunks(d)
        .flat_map(|row| {
            bias.iter()
                .enumerate()
                .map(move |(c, b)| b + (0..d).map(|j| w[c * d + j] * row[j]).sum::<f64>())
        })
        .collect()
}

#[test]
fn mlp_activations_are_the_streams_of_the_reference_forward() {
    let (x, y) = mlp_data();
    let n = y.len();
    for v in Variant::BOTH {
        for act in ACTS {
            let spec = mlp(act, 3, false);
            let net = Network::new(&spec, v);
            let batch = net.prepare(&x, &y);
            let theta = mlp_theta(&spec, v, 7);
            let acts = net.activations(&theta, &batch);
            let what = format!("{v} {act:?}");
            assert_eq!(names(&acts), weight_names(net.layout()), "{what}");
            assert_eq!(acts.blocks.len(), spec.depth);

            let stem = acts.input("stem.weight").unwrap();
            assert_eq!((stem.rows, stem.cols), (n, spec.inputs));
            assert_eq!(stem.x, x, "{what}: the stem reads the features");

            // streams[b][e]: the stream entering block b for example e (b = depth: the head's)
            let per_example: Vec<Vec<Vec<f64>>> = x
                .chunks(spec.inputs)
                .map(|xe| mlp_streams(&spec, v, &theta, xe))
                .collect();
            let stream = |b: usize| -> Vec<f64> {
                per_example
                    .iter()
                    .flat_map(|s| s[b].iter().copied())
                    .collect()
            };
            for b in 0..spec.depth {
                let inp = acts.input(&format!("blocks.{b}.weight")).unwrap();
                assert_eq!((inp.rows, inp.cols), (n, spec.width));
                assert_close(&inp.x, &stream(b), &format!("{what} block {b} input"));
                let s = &acts.blocks[b];
                assert_eq!((s.rows, s.cols), (n, spec.width));
                assert_eq!(s.h_in, inp.x, "{what}: h_in of block {b} is its input");
                assert_close(&s.h_out, &stream(b + 1), &format!("{what} h_out {b}"));
                if b + 1 < spec.depth {
                    assert_eq!(s.h_out, acts.blocks[b + 1].h_in, "{what} block {b}");
                }
            }
            let head = acts.input("head.weight").unwrap();
            assert_eq!((head.rows, head.cols), (n, spec.width));
            assert_eq!(head.x, acts.blocks[spec.depth - 1].h_out, "{what}");
            assert_close(
                &through_head(&acts, net.layout(), &theta),
                &net.logits(&theta, &batch),
                &format!("{what} logits"),
            );
        }
    }
}

#[test]
fn mlp_activations_with_learned_scales_name_only_the_linears() {
    let (x, y) = mlp_data();
    let spec = mlp(Activation::Relu, 2, true);
    let net = Network::new(&spec, Variant::Residual);
    let batch = net.prepare(&x, &y);
    let theta = mlp_theta(&spec, Variant::Residual, 8);
    let acts = net.activations(&theta, &batch);
    assert_eq!(
        names(&acts),
        [
            "stem.weight",
            "blocks.0.weight",
            "blocks.1.weight",
            "head.weight"
        ]
    );
    // the learned scale of block 1 shapes its output: h_out = h_in + alpha_1 * F(h_in)
    let a1 = theta[net.layout().get("blocks.1.alpha").unwrap().offset];
    let s = &acts.blocks[1];
    let f: Vec<f64> = s
        .h_in
        .chunks(spec.width)
        .flat_map(|h| {
            common::linear(&spec, &theta, "blocks.1", h)
                .into_iter()
                .map(|z| z.max(0.0))
        })
        .collect();
    let want: Vec<f64> = s.h_in.iter().zip(&f).map(|(h, f)| h + a1 * f).collect();
    assert_close(&s.h_out, &want, "h_out of block 1");
    assert_close(
        &through_head(&acts, net.layout(), &theta),
        &net.logits(&theta, &batch),
        "logits",
    );
}

// ---------------------------------------------------------------------------------------
// Transformer

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
fn tiny_theta(spec: &ModelSpec, seed: u64) -> Vec<f64> {
    let mut theta = spec.init(&mut ChaCha8Rng::seed_from_u64(seed));
    noisy(&mut theta, seed + 100, 0.3);
    theta
}

const REAL_TOKENS: usize = 3 + 5 + 1 + 3 + 3;

#[test]
fn a_lesioned_residual_transformer_block_is_zeroed_branches() {
    let (x, y) = common::padded_ids();
    for act in ACTS {
        let spec = tiny(act, 3, 0.8);
        let net = Network::new(&spec, Variant::Residual);
        let batch = net.prepare(&x, &y);
        let theta = tiny_theta(&spec, 11);
        let intact = net.evaluate(&theta, &batch);
        let zero_block = |theta: &mut [f64], b: usize| {
            for t in [
                "attn.out.weight",
                "attn.out.bias",
                "mlp.fc2.weight",
                "mlp.fc2.bias",
            ] {
                zero(theta, net.layout(), &format!("blocks.{b}.{t}"));
            }
        };
        for b in 0..spec.depth {
            let lesioned = net.evaluate_lesioned(&theta, &batch, &one_hot(3, b));
            let mut zeroed = theta.clone();
            zero_block(&mut zeroed, b);
            assert_same_eval(
                lesioned,
                net.evaluate(&zeroed, &batch),
                &format!("{act:?} block {b}"),
            );
            assert!(
                (lesioned.loss - intact.loss).abs() > 1e-4,
                "{act:?} block {b}: the lesion left the loss at {}",
                intact.loss
            );
        }
        let lesioned = net.evaluate_lesioned(&theta, &batch, &[false, true, true]);
        let mut zeroed = theta.clone();
        zero_block(&mut zeroed, 1);
        zero_block(&mut zeroed, 2);
        assert_same_eval(
            lesioned,
            net.evaluate(&zeroed, &batch),
            &format!("{act:?} 1+2"),
        );
    }
}

#[test]
fn a_lesioned_plain_transformer_block_is_a_shallower_network() {
    let (x, y) = common::padded_ids();
    for act in ACTS {
        let spec = tiny(act, 3, 1.0);
        let net = Network::new(&spec, Variant::Plain);
        let batch = net.prepare(&x, &y);
        let theta = tiny_theta(&spec, 12);
        let small_spec = ModelSpec {
            depth: 2,
            ..spec.clone()
        };
        let small = Network::new(&small_spec, Variant::Plain);
        let small_batch = small.prepare(&x, &y);
        for b in 0..spec.depth {
            let lesioned = net.evaluate_lesioned(&theta, &batch, &one_hot(3, b));
            let spliced = splice_without_block(net.layout(), &theta, small.layout(), b);
            assert_same_eval(
                lesioned,
                small.evaluate(&spliced, &small_batch),
                &format!("{act:?} block {b}"),
            );
            assert!((lesioned.loss - net.evaluate(&theta, &batch).loss).abs() > 1e-4);
        }
        // every block lesioned: embeddings straight into the final norm and head
        let none = net.evaluate_lesioned(&theta, &batch, &[true; 3]);
        let flat_spec = ModelSpec {
            depth: 0,
            ..spec.clone()
        };
        let flat = Network::new(&flat_spec, Variant::Plain);
        let mut spliced = theta.clone();
        for removed in 0..3 {
            let shallower = ModelSpec {
                depth: 2 - removed,
                ..spec.clone()
            };
            let from = ModelSpec {
                depth: 3 - removed,
                ..spec.clone()
            };
            spliced = splice_without_block(&from.layout(), &spliced, &shallower.layout(), 0);
        }
        assert_same_eval(
            none,
            flat.evaluate(&spliced, &flat.prepare(&x, &y)),
            &format!("{act:?} all"),
        );
    }
}

// Plain-Rust reference of the transformer (as tests/transformer.rs), keeping every
// intermediate a captured input should equal.

#[test]
fn transformer_activations_are_the_reference_intermediates_over_real_tokens() {
    let (x, y) = common::padded_ids();
    let n = y.len();
    for v in Variant::BOTH {
        for act in ACTS {
            let spec = tiny(act, 2, 0.8);
            let net = Network::new(&spec, v);
            let batch = net.prepare(&x, &y);
            let theta = tiny_theta(&spec, 13);
            let acts = net.activations(&theta, &batch);
            let what = format!("{v} {act:?}");
            assert_eq!(names(&acts), weight_names(net.layout()), "{what}");
            assert_eq!(acts.blocks.len(), spec.depth);

            let r = common::transformer_ref::TransformerRef {
                spec: &spec,
                theta: &theta,
            };
            let traces: Vec<common::transformer_ref::Trace> = x
                .chunks(spec.inputs)
                .map(|row| {
                    let ids: Vec<usize> = row.iter().map(|&i| i as usize).collect();
                    r.trace(v, &ids)
                })
                .collect();
            // block b's rows of one field of every example's trace, example-major
            let rows = |field: fn(&common::transformer_ref::Trace) -> &Vec<Vec<Vec<f64>>>,
                        b: usize|
             -> Vec<f64> {
                traces
                    .iter()
                    .flat_map(|t| field(t)[b].iter().flatten().copied())
                    .collect()
            };
            let d = spec.width;
            let ff = 6;
            for b in 0..spec.depth {
                let get = |w: &str| acts.input(&format!("blocks.{b}.{w}.weight")).unwrap();
                let q = get("attn.q");
                assert_eq!((q.rows, q.cols), (REAL_TOKENS, d), "{what}");
                assert_close(&q.x, &rows(|t| &t.qkv, b), &format!("{what} q {b}"));
                // k and v read the very same LN(h)
                assert_eq!(get("attn.k"), &{
                    let mut k = q.clone();
                    k.weight = format!("blocks.{b}.attn.k.weight");
                    k
                });
                assert_eq!(get("attn.v").x, q.x);
                let out = get("attn.out");
                assert_eq!((out.rows, out.cols), (REAL_TOKENS, d));
                assert_close(&out.x, &rows(|t| &t.out, b), &format!("{what} out {b}"));
                let fc1 = get("mlp.fc1");
                assert_eq!((fc1.rows, fc1.cols), (REAL_TOKENS, d));
                assert_close(&fc1.x, &rows(|t| &t.fc1, b), &format!("{what} fc1 {b}"));
                let fc2 = get("mlp.fc2");
                assert_eq!((fc2.rows, fc2.cols), (REAL_TOKENS, ff));
                assert_close(&fc2.x, &rows(|t| &t.fc2, b), &format!("{what} fc2 {b}"));
                let s = &acts.blocks[b];
                assert_eq!((s.rows, s.cols), (REAL_TOKENS, d));
                assert_close(&s.h_in, &rows(|t| &t.h_in, b), &format!("{what} h_in {b}"));
                assert_close(
                    &s.h_out,
                    &rows(|t| &t.h_out, b),
                    &format!("{what} h_out {b}"),
                );
                if b + 1 < spec.depth {
                    assert_eq!(s.h_out, acts.blocks[b + 1].h_in, "{what} block {b}");
                }
            }
            let head = acts.input("head.weight").unwrap();
            assert_eq!(
                (head.rows, head.cols),
                (n, d),
                "{what}: one row per example"
            );
            let pooled: Vec<f64> = traces.iter().flat_map(|t| t.pooled.clone()).collect();
            assert_close(&head.x, &pooled, &format!("{what} pooled"));
            assert_close(
                &through_head(&acts, net.layout(), &theta),
                &net.logits(&theta, &batch),
                &format!("{what} logits"),
            );
        }
    }
}
