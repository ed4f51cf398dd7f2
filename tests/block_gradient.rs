//! Many gradients per pass (issue 18): `Network::loss_grad_block` against one gradient at a
//! time, and the dense Hessian built from blocks against one built column by column.

use std::sync::atomic::AtomicBool;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use resprune::curvature::{dense_hessian, BatchLoss, LossGrad};
use resprune::model::{Activation, ModelSpec, Network, Variant};

mod common;

fn mlp(activation: Activation, depth: usize, learned_alpha: bool) -> ModelSpec {
    ModelSpec {
        inputs: 5,
        width: 7,
        depth,
        classes: 3,
        activation,
        alpha: 0.8,
        learned_alpha,
        transformer: None,
    }
}

fn features(n: usize, d: usize, k: usize, seed: u64) -> (Vec<f64>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = (0..n * d).map(|_| rng.gen_range(-1.5..1.5)).collect();
    let y = (0..n).map(|_| rng.gen_range(0..k)).collect();
    (x, y)
}

/// `k` parameter vectors around `theta`, each a different random perturbation.
fn around(theta: &[f64], k: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..k)
        .flat_map(|_| {
            theta
                .iter()
                .map(|t| t + rng.gen_range(-0.2..0.2))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The block's gradients and losses against `loss_grad` one vector at a time. Only rounding
/// separates them (the same operations, GEMMs blocked differently), so 1e-12 relative to the
/// gradient's largest entry is ~1e4 ulps of headroom, while a copy mixed up with another or
/// a missing term differs at O(1).
fn assert_block_matches(net: &Network, x: &[f64], y: &[usize], k: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let theta0 = net
        .spec()
        .theta_for(net.variant(), &net.spec().init(&mut rng));
    let thetas = around(&theta0, k, 5);
    let batch = net.prepare(x, y);
    let p = net.dim();
    let mut block = vec![0.0; k * p];
    let losses = net.loss_grad_block(&thetas, &batch, &mut block);
    assert_eq!(losses.len(), k);
    for c in 0..k {
        let mut one = vec![0.0; p];
        let eval = net.loss_grad(&thetas[c * p..(c + 1) * p], &batch, &mut one);
        let rel = common::max_rel(&block[c * p..(c + 1) * p], &one);
        assert!(rel <= 1e-12, "copy {c}: gradient differs by {rel:e}");
        assert!(
            (losses[c] - eval.loss).abs() <= 1e-12 * eval.loss.abs(),
            "copy {c}: loss {} vs {}",
            losses[c],
            eval.loss
        );
    }
    // copies are different points: the block did not compute one gradient k times
    assert!(common::max_rel(&block[..p], &block[p..2 * p]) > 1e-3);
}

#[test]
fn a_block_of_mlp_gradients_equals_one_gradient_at_a_time() {
    let (x, y) = features(23, 5, 3, 1);
    for act in [Activation::Relu, Activation::Gelu, Activation::Tanh] {
        for depth in [1, 3] {
            for v in Variant::BOTH {
                let net = Network::new(&mlp(act, depth, false), v);
                assert_block_matches(&net, &x, &y, 6);
            }
        }
    }
}

#[test]
fn a_block_with_learned_scales_equals_one_gradient_at_a_time() {
    let (x, y) = features(17, 5, 3, 2);
    let net = Network::new(&mlp(Activation::Tanh, 2, true), Variant::Residual);
    assert_eq!(net.dim(), mlp(Activation::Tanh, 2, false).num_params() + 2);
    assert_block_matches(&net, &x, &y, 5);
}

#[test]
fn a_block_of_transformer_gradients_equals_one_gradient_at_a_time() {
    let (x, y) = common::sentences(9, 3, 2..=5);
    for act in [Activation::Gelu, Activation::Relu, Activation::Tanh] {
        let spec = ModelSpec {
            activation: act,
            ..common::tiny_transformer()
        };
        for v in Variant::BOTH {
            let net = Network::new(&spec, v);
            assert!(net.gradient_block(9) >= 3, "a tiny batch takes blocks");
            assert_block_matches(&net, &x, &y, 3);
        }
    }
}

/// A block over a batch cut in chunks (each chunk's copies through attention together, the
/// chunks combined as one gradient is) equals one gradient at a time over the same chunks.
#[test]
fn a_block_over_chunks_equals_one_gradient_at_a_time() {
    let (x, y) = common::sentences(11, 8, 2..=5);
    let net = Network::new(&common::tiny_transformer(), Variant::Residual);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let theta0 = net
        .spec()
        .theta_for(net.variant(), &net.spec().init(&mut rng));
    let k = 4;
    let thetas = around(&theta0, k, 9);
    let batch = net.prepare_in_chunks(&x, &y, 3);
    assert_eq!(batch.chunks(), 3);
    let p = net.dim();
    let mut block = vec![0.0; k * p];
    let losses = net.loss_grad_block(&thetas, &batch, &mut block);
    for c in 0..k {
        let mut one = vec![0.0; p];
        let eval = net.loss_grad(&thetas[c * p..(c + 1) * p], &batch, &mut one);
        let rel = common::max_rel(&block[c * p..(c + 1) * p], &one);
        assert!(rel <= 1e-12, "copy {c}: gradient differs by {rel:e}");
        assert!((losses[c] - eval.loss).abs() <= 1e-12 * eval.loss.abs());
    }
}

#[test]
fn the_block_size_grows_no_larger_than_its_cap() {
    let net = Network::new(&mlp(Activation::Relu, 1, false), Variant::Plain);
    assert!(net.gradient_block(100) > 1);
    assert!(net.gradient_block(100) <= 64);
    // a batch so large that one copy's activations fill the budget
    assert_eq!(net.gradient_block(1 << 20), 1);
    let tf = Network::new(&common::tiny_transformer(), Variant::Plain);
    assert!(tf.gradient_block(4) > 1);
    assert!(tf.gradient_block(4) <= 64);
    assert_eq!(tf.gradient_block(1 << 18), 1);
}

/// An oracle that hides the network's block: the dense Hessian then goes column by column.
struct OneByOne<'a>(BatchLoss<'a>);

impl LossGrad for OneByOne<'_> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn loss_grad(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        self.0.loss_grad(theta, grad)
    }
}

#[test]
fn the_dense_hessian_from_blocks_equals_the_one_column_by_column() {
    let (x, y) = features(40, 5, 3, 4);
    for v in Variant::BOTH {
        assert_dense_from_blocks(&Network::new(&mlp(Activation::Tanh, 2, false), v), &x, &y);
    }
}

#[test]
fn the_transformer_dense_hessian_from_blocks_equals_the_one_column_by_column() {
    let (x, y) = common::sentences(7, 5, 2..=5);
    for v in Variant::BOTH {
        assert_dense_from_blocks(&Network::new(&common::tiny_transformer(), v), &x, &y);
    }
}

fn assert_dense_from_blocks(net: &Network, x: &[f64], y: &[usize]) {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let theta = net.spec().init(&mut rng);
    let batch = net.prepare(x, y);
    let loss = BatchLoss { net, batch: &batch };
    assert!(loss.block_size() > 1, "the network offers blocks");
    let never = AtomicBool::new(false);
    let blocks = dense_hessian(&loss, &theta, 1e-5, &never, &|_| {}).unwrap();
    let columns = dense_hessian(&OneByOne(loss), &theta, 1e-5, &never, &|_| {}).unwrap();
    // the same perturbed points and the same differences: only the gradients' rounding
    // (1e-12 relative, above) divided by the step 2h ~ 2e-5 can separate them
    let rel = common::max_rel(&blocks.data, &columns.data);
    assert!(
        rel <= 1e-7,
        "{}: block Hessian differs by {rel:e}",
        net.variant()
    );
    assert_eq!(blocks.gradient_evals, columns.gradient_evals);
}

/// Products through the network's block (the central pair `θ ± hv` in one pass, several
/// products per pass) against the same products one gradient at a time.
#[test]
fn hessian_vector_products_in_blocks_equal_them_one_gradient_at_a_time() {
    use resprune::curvature::{FdHvp, Hvp};
    let (x, y) = features(30, 5, 3, 12);
    for net in [
        Network::new(&mlp(Activation::Tanh, 2, false), Variant::Residual),
        Network::new(&common::tiny_transformer(), Variant::Plain),
    ] {
        let (x, y) = if net.spec().transformer.is_some() {
            common::sentences(9, 4, 2..=5)
        } else {
            (x.clone(), y.clone())
        };
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let theta = net
            .spec()
            .theta_for(net.variant(), &net.spec().init(&mut rng));
        let batch = net.prepare(&x, &y);
        let loss = BatchLoss {
            net: &net,
            batch: &batch,
        };
        let n = theta.len();
        let vs: Vec<f64> = (0..3 * n).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let mut blocked = FdHvp::new(&loss, &theta, 1e-5);
        assert!(blocked.block_size() >= 3, "{}", blocked.block_size());
        let mut outs = vec![0.0; 3 * n];
        blocked.hvp_block(&vs, &mut outs);
        assert_eq!(blocked.gradient_evals(), 6);
        let mut one = vec![0.0; n];
        blocked.hvp(&vs[..n], &mut one);
        // forward differences divide by h ~ 1e-8: they never mix a block with a single pass
        let mut fwd = FdHvp::forward(&loss, &theta, 1e-8);
        assert_eq!(fwd.block_size(), 1);
        let mut fouts = vec![0.0; 3 * n];
        fwd.hvp_block(&vs, &mut fouts);
        let mut f1 = vec![0.0; n];
        fwd.hvp(&vs[2 * n..], &mut f1);
        assert_eq!(&fouts[2 * n..], &f1[..]);
        let hidden = OneByOne(BatchLoss {
            net: &net,
            batch: &batch,
        });
        let mut single = FdHvp::new(&hidden, &theta, 1e-5);
        assert_eq!(single.block_size(), 1);
        for c in 0..3 {
            let mut want = vec![0.0; n];
            single.hvp(&vs[c * n..(c + 1) * n], &mut want);
            // gradients equal to 1e-12 relative, divided by 2h (h ~ 1e-5): 1e-7
            let rel = common::max_rel(&outs[c * n..(c + 1) * n], &want);
            assert!(rel <= 1e-7, "product {c}: {rel:e}");
            if c == 0 {
                assert!(common::max_rel(&one, &want) <= 1e-7);
            }
        }
    }
}

/// Hutchinson's probes drawn in blocks: the same probes in the same order, so the same
/// stopping point and the same estimates (to the products' rounding).
#[test]
fn hutchinson_in_blocks_stops_where_it_does_one_probe_at_a_time() {
    use resprune::curvature::hutchinson::{hutchinson, HutchinsonOptions};
    use resprune::curvature::{FdHvp, Hvp};
    let (x, y) = features(30, 5, 3, 13);
    let net = Network::new(&mlp(Activation::Tanh, 1, false), Variant::Residual);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let theta = net.spec().init(&mut rng);
    let batch = net.prepare(&x, &y);
    let loss = BatchLoss {
        net: &net,
        batch: &batch,
    };
    let hidden = OneByOne(BatchLoss {
        net: &net,
        batch: &batch,
    });
    let never = AtomicBool::new(false);
    for tol in [0.05, 1e-9] {
        let opts = HutchinsonOptions {
            min_samples: 5,
            max_samples: 37,
            tol,
            seed: 3,
        };
        let (mut ha, mut hb) = (
            FdHvp::new(&loss, &theta, 1e-5),
            FdHvp::new(&hidden, &theta, 1e-5),
        );
        let a = hutchinson(&mut ha, &opts, &never).unwrap();
        let b = hutchinson(&mut hb, &opts, &never).unwrap();
        assert_eq!(a.samples, b.samples, "tol {tol}");
        // blocks only cover the probes certain to be taken: no product past the stop
        assert_eq!(ha.gradient_evals(), hb.gradient_evals(), "tol {tol}");
        assert_eq!(ha.gradient_evals(), 2 * a.samples);
        if tol < 1e-6 {
            // never met: every probe, the last block shorter than the others
            assert_eq!(a.samples, 37);
        }
        for (p, q) in [
            (a.trace.value, b.trace.value),
            (a.trace_sq.value, b.trace_sq.value),
        ] {
            assert!((p - q).abs() <= 1e-7 * q.abs(), "{p} vs {q}");
        }
    }
}
