//! Data-parallel passes (issue 18): a batch cut into chunks, each with its own tape, gives the
//! one-chunk numbers to rounding, and the same bits on every run at a fixed thread count.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use resprune::model::{Activation, ModelSpec, Network, PreparedBatch, Variant, CHUNK_WORK};

mod common;

fn mlp(learned_alpha: bool) -> ModelSpec {
    ModelSpec {
        inputs: 6,
        width: 9,
        depth: 2,
        classes: 3,
        activation: Activation::Gelu,
        alpha: 0.9,
        learned_alpha,
        transformer: None,
    }
}

fn transformer() -> ModelSpec {
    common::tiny_transformer()
}

/// `n` examples for `spec`: features in [-1, 1], or padded sentences of 1..=max_len tokens.
fn examples(spec: &ModelSpec, n: usize, seed: u64) -> (Vec<f64>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let d = spec.inputs;
    let mut x = vec![0.0; n * d];
    match spec.transformer {
        Some(t) => {
            for i in 0..n {
                for j in 0..rng.gen_range(1..=d) {
                    x[i * d + j] = rng.gen_range(1..t.vocab) as f64;
                }
            }
        }
        None => x.iter_mut().for_each(|v| *v = rng.gen_range(-1.0..1.0)),
    }
    let y = (0..n).map(|_| rng.gen_range(0..spec.classes)).collect();
    (x, y)
}

fn theta(net: &Network) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let spec = net.spec();
    let mut t = spec.theta_for(net.variant(), &spec.init(&mut rng));
    t.iter_mut().for_each(|v| *v += rng.gen_range(-0.1..0.1));
    t
}

fn grad(net: &Network, theta: &[f64], b: &PreparedBatch) -> (f64, f64, Vec<f64>) {
    let mut g = vec![0.0; net.dim()];
    let e = net.loss_grad(theta, b, &mut g);
    (e.loss, e.accuracy, g)
}

/// Every pass on a batch cut in `parts` against the uncut batch. The chunks' mean gradients
/// are reweighted by `n_c / n` and summed, so only the order of the sum over examples
/// changes: 1e-12 relative to the largest entry leaves ~1e4 ulps, while a wrong weight or a
/// lost chunk is off by O(1 / parts).
fn assert_chunks_match(net: &Network, n: usize, parts: usize) {
    let (x, y) = examples(net.spec(), n, 1);
    let t = theta(net);
    let whole = net.prepare_in_chunks(&x, &y, 1);
    let cut = net.prepare_in_chunks(&x, &y, parts);
    assert_eq!((whole.chunks(), cut.chunks()), (1, parts));
    let (l1, a1, g1) = grad(net, &t, &whole);
    let (l2, a2, g2) = grad(net, &t, &cut);
    assert!((l1 - l2).abs() <= 1e-12 * l1.abs(), "loss {l1} vs {l2}");
    assert_eq!(a1, a2, "accuracy");
    let rel = common::max_rel(&g2, &g1);
    assert!(rel <= 1e-12, "gradient differs by {rel:e}");
    let e = net.evaluate(&t, &cut);
    assert!((e.loss - l1).abs() <= 1e-12 * l1.abs());
    assert!(common::max_rel(&net.logits(&t, &cut), &net.logits(&t, &whole)) <= 1e-12);
    let mut skip = vec![false; net.spec().depth];
    skip[0] = true;
    let (lw, lc) = (
        net.evaluate_lesioned(&t, &whole, &skip),
        net.evaluate_lesioned(&t, &cut, &skip),
    );
    assert!((lw.loss - lc.loss).abs() <= 1e-12 * lw.loss.abs());
    assert_eq!(lw.accuracy, lc.accuracy);
    // captured activations: the chunks' rows one after another are the batch's rows
    let (aw, ac) = (net.activations(&t, &whole), net.activations(&t, &cut));
    assert_eq!(aw.inputs.len(), ac.inputs.len());
    for (w, c) in aw.inputs.iter().zip(&ac.inputs) {
        assert_eq!((&w.weight, w.rows, w.cols), (&c.weight, c.rows, c.cols));
        assert!(common::max_rel(&c.x, &w.x) <= 1e-12, "{}", w.weight);
    }
    for (w, c) in aw.blocks.iter().zip(&ac.blocks) {
        assert_eq!(w.rows, c.rows);
        assert!(common::max_rel(&c.h_out, &w.h_out) <= 1e-12);
    }
    // a block of gradients on the cut batch
    let p = net.dim();
    let thetas: Vec<f64> = t.iter().chain(t.iter()).map(|v| v * 1.01).collect();
    let mut block = vec![0.0; 2 * p];
    net.loss_grad_block(&thetas, &cut, &mut block);
    let (_, _, g) = grad(net, &thetas[..p], &whole);
    assert!(common::max_rel(&block[p..], &g) <= 1e-12);
}

#[test]
fn a_cut_mlp_batch_gives_the_uncut_numbers() {
    for v in Variant::BOTH {
        assert_chunks_match(&Network::new(&mlp(false), v), 57, 3);
    }
    assert_chunks_match(&Network::new(&mlp(true), Variant::Residual), 40, 2);
}

#[test]
fn a_cut_transformer_batch_with_padding_gives_the_uncut_numbers() {
    for v in Variant::BOTH {
        assert_chunks_match(&Network::new(&transformer(), v), 23, 4);
    }
}

#[test]
fn chunks_follow_the_thread_count_and_the_work() {
    let net = Network::new(&mlp(false), Variant::Plain);
    // enough examples for the work of two chunks
    let n = 2 * CHUNK_WORK / net.dim() + 1;
    let in_pool = |threads: usize, n: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| net.chunks_for(n))
    };
    assert_eq!(in_pool(1, n), 1);
    assert_eq!(in_pool(2, n), 2);
    assert_eq!(in_pool(4, n), 2, "no more chunks than the work fills");
    assert_eq!(in_pool(2, 10), 1, "a small batch stays whole");
}

#[test]
fn a_parallel_gradient_is_the_same_bits_on_every_run() {
    let net = Network::new(&transformer(), Variant::Residual);
    let (x, y) = examples(net.spec(), 31, 2);
    let t = theta(&net);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let runs: Vec<Vec<u64>> = (0..4)
        .map(|_| {
            pool.install(|| {
                let b = net.prepare_in_chunks(&x, &y, 2);
                grad(&net, &t, &b).2.iter().map(|v| v.to_bits()).collect()
            })
        })
        .collect();
    assert!(runs.iter().all(|r| *r == runs[0]));
}

/// `evaluate` runs the forward without a tape, `loss_grad` with one: the same operations on
/// the same numbers, so the same bits.
#[test]
fn a_tape_free_evaluation_is_the_taped_loss_bit_for_bit() {
    for spec in [mlp(true), transformer()] {
        for v in Variant::BOTH {
            let net = Network::new(&spec, v);
            let (x, y) = examples(&spec, 19, 4);
            let t = theta(&net);
            let b = net.prepare_in_chunks(&x, &y, 1);
            let (loss, acc, _) = grad(&net, &t, &b);
            let e = net.evaluate(&t, &b);
            assert_eq!(e.loss.to_bits(), loss.to_bits(), "{v}");
            assert_eq!(e.accuracy, acc);
        }
    }
}
