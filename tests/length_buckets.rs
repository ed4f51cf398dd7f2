//! Length buckets (issue 18): a transformer batch of at least `2 · MIN_BUCKET` sentences runs
//! sorted by length in runs cut to their longest sentence. A padded position changes nothing
//! a real one computes, so every example's logits are the padded pass's to rounding (the
//! matrix products block other row counts differently); the gradient sums the runs in another
//! order, so it matches to rounding too.
//!
//! The reference is the same batch cut into chunks below the bucketing size (each chunk runs
//! whole, padded to `max_len`): chunks are independent passes, so their logits are the whole
//! padded batch's.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use resprune::model::{Network, Variant};

mod common;

/// `n` sentences of 1..=5 tokens, the first all padding.
fn sentences(n: usize, seed: u64) -> (Vec<f64>, Vec<usize>) {
    let (mut x, y) = common::sentences(n, seed, 1..=5);
    x[..5].fill(0.0);
    (x, y)
}

#[test]
fn bucketed_passes_equal_padded_ones() {
    // 300 sentences: 8 runs (of 37-38, lengths 1..5); the reference: 5 padded chunks of
    // 60, each below the 2 · MIN_BUCKET = 64 that buckets
    let (x, y) = sentences(300, 4);
    for v in Variant::BOTH {
        let net = Network::new(&common::tiny_transformer(), v);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let theta = net
            .spec()
            .theta_for(v, &net.spec().init(&mut rng))
            .iter()
            .map(|t| t * 3.0) // larger weights: attention far from uniform
            .collect::<Vec<_>>();
        let bucketed = net.prepare_in_chunks(&x, &y, 1);
        let padded = net.prepare_in_chunks(&x, &y, 5);
        // the same arithmetic on the real positions; only the matrix products' blocking
        // (other row counts) can move a last digit
        let (zb, zp) = (net.logits(&theta, &bucketed), net.logits(&theta, &padded));
        let rel = common::max_rel(&zb, &zp);
        assert!(rel <= 1e-14, "{v}: logits differ by {rel:e}");
        // the loss: the same per-example terms, summed whole against in five chunks
        let (eb, ep) = (
            net.evaluate(&theta, &bucketed),
            net.evaluate(&theta, &padded),
        );
        assert!((eb.loss - ep.loss).abs() <= 1e-14 * ep.loss, "{v}");
        assert_eq!(eb.accuracy, ep.accuracy);
        let skip = [true, false];
        let (lb, lp) = (
            net.evaluate_lesioned(&theta, &bucketed, &skip),
            net.evaluate_lesioned(&theta, &padded, &skip),
        );
        assert!((lb.loss - lp.loss).abs() <= 1e-14 * lp.loss, "{v}");
        assert!(
            (lb.loss - eb.loss).abs() > 1e-6,
            "the lesion changed the loss"
        );
        // gradients: rounding of another summation order, 1e-12 as for chunks
        let p = net.dim();
        let (mut gb, mut gp) = (vec![0.0; p], vec![0.0; p]);
        net.loss_grad(&theta, &bucketed, &mut gb);
        net.loss_grad(&theta, &padded, &mut gp);
        let rel = common::max_rel(&gb, &gp);
        assert!(rel <= 1e-12, "{v}: gradient differs by {rel:e}");
        assert!(gp.iter().any(|g| g.abs() > 1e-3));
        // a capture runs whole: its token rows in batch order, as the chunks give them
        let (ab, ap) = (
            net.activations(&theta, &bucketed),
            net.activations(&theta, &padded),
        );
        assert_eq!(ab.inputs.len(), ap.inputs.len());
        for (a, b) in ab.inputs.iter().zip(&ap.inputs) {
            assert_eq!((a.rows, a.cols), (b.rows, b.cols), "{}", a.weight);
            assert!(common::max_rel(&a.x, &b.x) <= 1e-14, "{}", a.weight);
        }
    }
}

/// A block runs its sentences padded, so on the CPU a bucketed batch takes one gradient at a
/// time (measured faster, docs/performance.md); a smaller one still takes blocks.
#[test]
fn a_bucketed_batch_takes_one_gradient_at_a_time() {
    let (x, y) = sentences(200, 9);
    let net = Network::new(&common::tiny_transformer(), Variant::Residual);
    assert_eq!(net.prepare_in_chunks(&x, &y, 1).chunks(), 1);
    assert_eq!(net.chunks_for(200), 1, "tiny: one chunk");
    assert_eq!(net.gradient_block(200), 1);
    assert!(net.gradient_block(40) > 1);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let theta = net
        .spec()
        .theta_for(net.variant(), &net.spec().init(&mut rng));
    let p = net.dim();
    let thetas: Vec<f64> = (0..3)
        .flat_map(|c| theta.iter().map(move |t| t * (1.0 + 0.1 * c as f64)))
        .collect();
    let batch = net.prepare_in_chunks(&x, &y, 1);
    let mut block = vec![0.0; 3 * p];
    net.loss_grad_block(&thetas, &batch, &mut block);
    for c in 0..3 {
        let mut one = vec![0.0; p];
        net.loss_grad(&thetas[c * p..(c + 1) * p], &batch, &mut one);
        let rel = common::max_rel(&block[c * p..(c + 1) * p], &one);
        assert!(rel <= 1e-12, "copy {c}: {rel:e}");
    }
}
