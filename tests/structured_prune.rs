//! Structured pruning (issue 15): what a unit is in each variant, checked against networks
//! built without it; N:M masks; OBS against a direct constrained least-squares solve; the
//! calibration criteria on toys whose answer is known; the sweep's rows.
//!
//! Tolerances: a model pruned by a mask and the explicitly smaller model differ only in sums
//! that add exact zeros (a removed unit contributes `0 · act(0) = 0`), so their logits agree
//! to summation-order rounding, ~1e-16 relative on O(1) logits; 1e-12 leaves room for
//! different blocking in dfdx's matmuls of different widths.

mod common;

use std::sync::atomic::AtomicBool;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use resprune::config::{Granularity, PruneConfig, PruneMethod, TrainConfig};
use resprune::model::{
    Activation, Activations, BlockStream, LayerInput, ModelSpec, Network, ParamKind,
    TransformerShape, Variant,
};
use resprune::prune::obs::LayerObs;
use resprune::prune::{self, Calibration, Criteria, PruneError, Unit, Units};

const EXACT: f64 = 1e-12;

fn mlp(inputs: usize, width: usize, depth: usize, act: Activation) -> ModelSpec {
    ModelSpec {
        inputs,
        width,
        depth,
        classes: 3,
        activation: act,
        alpha: 0.7,
        learned_alpha: false,
        transformer: None,
    }
}

fn data(n: usize, inputs: usize, seed: u64) -> (Vec<f64>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = (0..n * inputs).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let y = (0..n).map(|i| (i * 7 + 1) % 3).collect();
    (x, y)
}

/// The layer inputs and block streams of the MLP on `x`, from the plain-Rust forward.
fn mlp_activations(spec: &ModelSpec, v: Variant, theta: &[f64], x: &[f64]) -> Activations {
    let n = x.len() / spec.inputs;
    let act = |z| common::activate(spec.activation, z);
    let mut hs: Vec<Vec<f64>> = vec![Vec::new(); spec.depth + 1];
    for e in 0..n {
        let xe = &x[e * spec.inputs..(e + 1) * spec.inputs];
        let mut h: Vec<f64> = common::linear(spec, theta, "stem", xe)
            .into_iter()
            .map(act)
            .collect();
        hs[0].extend(&h);
        for b in 0..spec.depth {
            let f: Vec<f64> = common::linear(spec, theta, &format!("blocks.{b}"), &h)
                .into_iter()
                .map(act)
                .collect();
            h = match v {
                Variant::Residual => h.iter().zip(&f).map(|(a, c)| a + spec.alpha * c).collect(),
                Variant::Plain => f,
            };
            hs[b + 1].extend(&h);
        }
    }
    let input = |weight: &str, rows: &[f64], cols: usize| LayerInput {
        weight: weight.to_string(),
        rows: n,
        cols,
        x: rows.to_vec(),
    };
    let mut inputs = vec![input("stem.weight", x, spec.inputs)];
    for (b, h) in hs.iter().take(spec.depth).enumerate() {
        inputs.push(input(&format!("blocks.{b}.weight"), h, spec.width));
    }
    inputs.push(input("head.weight", &hs[spec.depth], spec.width));
    let blocks = (0..spec.depth)
        .map(|b| BlockStream {
            rows: n,
            cols: spec.width,
            h_in: hs[b].clone(),
            h_out: hs[b + 1].clone(),
        })
        .collect();
    Activations { inputs, blocks }
}

fn calibration(net: &Network, theta: &[f64], x: &[f64], y: &[usize]) -> Calibration {
    Calibration {
        batch: net.prepare(x, y),
        activations: mlp_activations(net.spec(), net.variant(), theta, x),
    }
}

fn whole(u: &Units) -> &[Unit] {
    match u {
        Units::Whole(v) => v,
        other => panic!("not whole units: {other:?}"),
    }
}

/// Which units of `units` the mask removed: a unit's bias is in no other unit, so it is
/// removed exactly when the unit is.
fn removed(
    net: &Network,
    units: &[Unit],
    keep: &[bool],
    bias: impl Fn(&Unit) -> String,
) -> Vec<bool> {
    units
        .iter()
        .map(|u| {
            let b = net.layout().get(&bias(u)).unwrap();
            !keep[b.offset + u.index]
        })
        .collect()
}

fn masked(theta: &[f64], keep: &[bool]) -> Vec<f64> {
    theta
        .iter()
        .zip(keep)
        .map(|(t, k)| if *k { *t } else { 0.0 })
        .collect()
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// The `[out, in]` matrix and bias of layer `name`, keeping rows `rows` and columns `cols`.
fn narrow(
    spec: &ModelSpec,
    theta: &[f64],
    name: &str,
    rows: &[usize],
    cols: &[usize],
) -> (Vec<Vec<f64>>, Vec<f64>) {
    let l = spec.layout();
    let w = l.get(&format!("{name}.weight")).unwrap();
    let b = l.get(&format!("{name}.bias")).unwrap();
    let c = w.shape[1];
    let m = rows
        .iter()
        .map(|&r| cols.iter().map(|&k| theta[w.offset + r * c + k]).collect())
        .collect();
    (m, rows.iter().map(|&r| theta[b.offset + r]).collect())
}

#[test]
fn neuron_pruning_of_a_plain_mlp_is_the_narrower_network() {
    for act in [Activation::Tanh, Activation::Gelu, Activation::Relu] {
        let s = mlp(3, 6, 3, act);
        let net = Network::new(&s, Variant::Plain);
        let theta = s.init(&mut ChaCha8Rng::seed_from_u64(11));
        let (x, y) = data(9, 3, 1);
        let cfg = PruneConfig::default();
        let units = prune::units(&s, Variant::Plain, net.layout(), Granularity::Neuron, &cfg);
        let crit = Criteria::new(&net, &theta, None, None, 0.01);
        let m = prune::mask(PruneMethod::Magnitude, &units, &crit, &cfg, 0.4).unwrap();
        let units = whole(&units);
        // 4 hidden layers of 6 units: floor(0.4 × 24) = 9 removed
        assert_eq!((m.units_eligible, m.units_pruned), (24, 9));
        let gone = removed(&net, units, &m.mask.keep, |u| format!("{}.bias", u.layer));
        assert_eq!(gone.iter().filter(|g| **g).count(), 9);
        // the kept units of each hidden layer
        let kept: Vec<Vec<usize>> = (0..=s.depth)
            .map(|l| (0..6).filter(|&j| !gone[l * 6 + j]).collect())
            .collect();
        assert!(kept.iter().any(|k| k.len() < 6) && kept.iter().all(|k| !k.is_empty()));
        let names: Vec<String> = std::iter::once("stem".to_string())
            .chain((0..s.depth).map(|b| format!("blocks.{b}")))
            .chain(["head".to_string()])
            .collect();
        let all_inputs: Vec<usize> = (0..3).collect();
        let classes: Vec<usize> = (0..3).collect();
        let layers: Vec<_> = (0..names.len())
            .map(|l| {
                let rows = if l == names.len() - 1 {
                    &classes
                } else {
                    &kept[l]
                };
                let cols = if l == 0 { &all_inputs } else { &kept[l - 1] };
                narrow(&s, &theta, &names[l], rows, cols)
            })
            .collect();
        let mut want = Vec::new();
        for e in 0..9 {
            let mut h = x[e * 3..(e + 1) * 3].to_vec();
            for (l, (w, b)) in layers.iter().enumerate() {
                let z: Vec<f64> = w
                    .iter()
                    .zip(b)
                    .map(|(row, bi)| bi + row.iter().zip(&h).map(|(a, c)| a * c).sum::<f64>())
                    .collect();
                h = if l == layers.len() - 1 {
                    z
                } else {
                    z.into_iter().map(|v| common::activate(act, v)).collect()
                };
            }
            want.extend(h);
        }
        // the mask keeps exactly the narrower network's parameters (without the next
        // layer's columns the logits would agree too, since act(0) = 0, but this would not)
        let narrow_len: usize = layers
            .iter()
            .map(|(w, b)| w.len() * w[0].len() + b.len())
            .sum();
        assert_eq!(m.mask.keep.iter().filter(|k| **k).count(), narrow_len);
        let got = net.logits(&masked(&theta, &m.mask.keep), &net.prepare(&x, &y));
        assert!(max_abs_diff(&got, &want) < EXACT, "{act:?}");
    }
}

/// vocab 11, max_len 5, d 4, 2 heads, 3 classes.
fn transformer(depth: usize, ff: usize) -> ModelSpec {
    ModelSpec {
        inputs: 5,
        width: 4,
        depth,
        classes: 3,
        activation: Activation::Gelu,
        alpha: 1.0,
        learned_alpha: false,
        transformer: Some(TransformerShape {
            vocab: 11,
            max_len: 5,
            heads: 2,
            ff,
        }),
    }
}

fn token_batch() -> (Vec<f64>, Vec<usize>) {
    let rows: [[usize; 5]; 4] = [
        [5, 3, 7, 0, 0],
        [2, 9, 10, 4, 1],
        [6, 0, 0, 0, 0],
        [8, 0, 2, 0, 3],
    ];
    let x = rows.iter().flatten().map(|&i| i as f64).collect();
    (x, vec![0, 2, 1, 1])
}

#[test]
fn neuron_pruning_of_the_transformer_mlp_is_a_smaller_ff() {
    let (ff, depth) = (6, 2);
    let big = transformer(depth, ff);
    let small = transformer(depth, ff - 2);
    // the units to remove: 2 per block, made small so magnitude picks exactly them
    let chosen = [[1usize, 4], [0, 5]];
    let (x, y) = token_batch();
    for v in Variant::BOTH {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut theta = big.init(&mut rng);
        theta
            .iter_mut()
            .for_each(|t| *t += rng.gen_range(-0.3..0.3));
        let net = Network::new(&big, v);
        let cfg = PruneConfig::default();
        let units = prune::units(&big, v, net.layout(), Granularity::Neuron, &cfg);
        for u in whole(&units) {
            let b: usize = u.layer["blocks.".len()..u.layer.len() - ".mlp".len()]
                .parse()
                .unwrap();
            if chosen[b].contains(&u.index) {
                u.params.iter().for_each(|&i| theta[i] *= 1e-3);
            }
        }
        let crit = Criteria::new(&net, &theta, None, None, 0.01);
        // floor(0.34 × 12) = 4
        let m = prune::mask(PruneMethod::Magnitude, &units, &crit, &cfg, 0.34).unwrap();
        assert_eq!((m.units_eligible, m.units_pruned), (12, 4));
        let gone = removed(&net, whole(&units), &m.mask.keep, |u| {
            format!("{}.fc1.bias", u.layer)
        });
        for (k, u) in whole(&units).iter().enumerate() {
            let b = k / ff;
            assert_eq!(gone[k], chosen[b].contains(&u.index), "{u:?}");
        }
        // the same weights in a model of ff − 2
        let (bl, sl) = (big.layout(), small.layout());
        let mut spliced = Vec::with_capacity(sl.len);
        for t in &sl.tensors {
            let src = bl.get(&t.name).unwrap();
            let b: Option<usize> = t
                .name
                .strip_prefix("blocks.")
                .and_then(|r| r.split('.').next())
                .and_then(|n| n.parse().ok());
            let keep_j = |j: &usize| !b.is_some_and(|b| chosen[b].contains(j));
            let vals = &theta[src.range()];
            if t.name.ends_with("mlp.fc1.weight") {
                for j in (0..ff).filter(keep_j) {
                    spliced.extend(&vals[j * 4..(j + 1) * 4]);
                }
            } else if t.name.ends_with("mlp.fc1.bias") {
                spliced.extend((0..ff).filter(keep_j).map(|j| vals[j]));
            } else if t.name.ends_with("mlp.fc2.weight") {
                for r in 0..4 {
                    spliced.extend((0..ff).filter(keep_j).map(|j| vals[r * ff + j]));
                }
            } else {
                spliced.extend(vals);
            }
        }
        assert_eq!(spliced.len(), sl.len);
        assert_eq!(m.mask.keep.iter().filter(|k| **k).count(), sl.len);
        let small_net = Network::new(&small, v);
        let want = small_net.logits(&spliced, &small_net.prepare(&x, &y));
        let got = net.logits(&masked(&theta, &m.mask.keep), &net.prepare(&x, &y));
        assert!(max_abs_diff(&got, &want) < EXACT, "{v}");
    }
}

#[test]
fn a_residual_neuron_is_its_branch_output_zeroed() {
    let s = mlp(3, 5, 2, Activation::Gelu);
    let net = Network::new(&s, Variant::Residual);
    let theta = s.init(&mut ChaCha8Rng::seed_from_u64(21));
    let (x, y) = data(7, 3, 2);
    let cfg = PruneConfig::default();
    let units = prune::units(
        &s,
        Variant::Residual,
        net.layout(),
        Granularity::Neuron,
        &cfg,
    );
    let crit = Criteria::new(&net, &theta, None, None, 0.01);
    let m = prune::mask(PruneMethod::Magnitude, &units, &crit, &cfg, 0.4).unwrap();
    assert_eq!(m.units_pruned, 6);
    // a residual unit is its row and bias only: 3 (stem) or 5 inputs, + 1
    for u in whole(&units) {
        let inputs = if u.layer == "stem" { 3 } else { 5 };
        assert_eq!(u.params.len(), inputs + 1, "{u:?}");
    }
    let gone = removed(&net, whole(&units), &m.mask.keep, |u| {
        format!("{}.bias", u.layer)
    });
    let expect: usize = whole(&units)
        .iter()
        .zip(&gone)
        .filter(|(_, g)| **g)
        .map(|(u, _)| u.params.len())
        .sum();
    assert_eq!(
        m.mask.pruned, expect,
        "nothing downstream goes with a residual unit"
    );
    let act = |z| common::activate(s.activation, z);
    let zeroed = |l: usize, f: Vec<f64>| -> Vec<f64> {
        f.into_iter()
            .enumerate()
            .map(|(j, v)| if gone[l * 5 + j] { 0.0 } else { v })
            .collect()
    };
    let mut want = Vec::new();
    for e in 0..7 {
        let xe = &x[e * 3..(e + 1) * 3];
        let mut h = zeroed(
            0,
            common::linear(&s, &theta, "stem", xe)
                .into_iter()
                .map(act)
                .collect(),
        );
        for b in 0..2 {
            let f: Vec<f64> = common::linear(&s, &theta, &format!("blocks.{b}"), &h)
                .into_iter()
                .map(act)
                .collect();
            let f = zeroed(b + 1, f);
            h = h.iter().zip(&f).map(|(a, c)| a + s.alpha * c).collect();
        }
        want.extend(common::linear(&s, &theta, "head", &h));
    }
    let got = net.logits(&masked(&theta, &m.mask.keep), &net.prepare(&x, &y));
    assert!(max_abs_diff(&got, &want) < EXACT);
}

#[test]
fn a_masked_block_is_the_identity_residual_and_zero_plain() {
    let s = mlp(3, 4, 3, Activation::Tanh);
    let (x, y) = data(6, 3, 3);
    for v in Variant::BOTH {
        let net = Network::new(&s, v);
        let theta = s.init(&mut ChaCha8Rng::seed_from_u64(31));
        let cfg = PruneConfig::default();
        let units = prune::units(&s, v, net.layout(), Granularity::Block, &cfg);
        let crit = Criteria::new(&net, &theta, None, None, 0.01);
        // floor(0.34 × 3) = 1 block
        let m = prune::mask(PruneMethod::Magnitude, &units, &crit, &cfg, 0.34).unwrap();
        assert_eq!(
            (m.units_eligible, m.units_pruned, m.mask.pruned),
            (3, 1, 20)
        );
        let b0 = net.layout().get("blocks.0.bias").unwrap().offset;
        let gone: usize = (0..3)
            .find(|b| !m.mask.keep[b0 + b * 20])
            .expect("one block is removed");
        let mut want = Vec::new();
        for e in 0..6 {
            let xe = &x[e * 3..(e + 1) * 3];
            let mut h: Vec<f64> = common::linear(&s, &theta, "stem", xe)
                .into_iter()
                .map(f64::tanh)
                .collect();
            for b in 0..3 {
                let f: Vec<f64> = if b == gone {
                    vec![0.0; 4]
                } else {
                    common::linear(&s, &theta, &format!("blocks.{b}"), &h)
                        .into_iter()
                        .map(f64::tanh)
                        .collect()
                };
                h = match v {
                    Variant::Residual => h.iter().zip(&f).map(|(a, c)| a + s.alpha * c).collect(),
                    Variant::Plain => f,
                };
            }
            want.extend(common::linear(&s, &theta, "head", &h));
        }
        let got = net.logits(&masked(&theta, &m.mask.keep), &net.prepare(&x, &y));
        assert!(max_abs_diff(&got, &want) < EXACT, "{v}");
    }
}

#[test]
fn every_n_of_m_group_loses_n_weights() {
    let s = mlp(8, 8, 1, Activation::Tanh);
    let net = Network::new(&s, Variant::Plain);
    let mut theta = s.init(&mut ChaCha8Rng::seed_from_u64(41));
    let stem = net.layout().get("stem.weight").unwrap().offset;
    // row 0, group 0 holds 3 zeros already; row 1, group 1 holds 1
    for i in [0, 1, 2, 8 + 5] {
        theta[stem + i] = 0.0;
    }
    let (x, y) = data(12, 8, 4);
    let cal = calibration(&net, &theta, &x, &y);
    let weights = 64 + 64 + 24;
    for (n, mm) in [(2, 4), (1, 4), (3, 8), (1, 2)] {
        let g = Granularity::NOfM { n, m: mm };
        let cfg = PruneConfig::default();
        let units = prune::units(&s, Variant::Plain, net.layout(), g, &cfg);
        let Units::NOfM { groups, .. } = &units else {
            panic!("{units:?}")
        };
        assert_eq!(groups.len(), weights / mm);
        for method in [PruneMethod::Magnitude, PruneMethod::Wanda, PruneMethod::Obs] {
            let crit = Criteria::new(&net, &theta, None, Some(&cal), 0.01);
            let m = prune::mask(method, &units, &crit, &cfg, 0.123).unwrap();
            assert_eq!(m.units_eligible, weights);
            assert_eq!(m.units_pruned, weights * n / mm, "the ratio is ignored");
            let pruned = masked(&theta, &m.mask.keep);
            for grp in groups {
                let removed = grp.clone().filter(|&i| !m.mask.keep[i]).count();
                assert_eq!(removed, n, "{method} {n}:{mm} {grp:?}");
                let zeros = grp.clone().filter(|&i| pruned[i] == 0.0).count();
                let zero_before = grp.clone().filter(|&i| theta[i] == 0.0).count();
                assert!(zeros >= n);
                if zero_before == 0 {
                    assert_eq!(zeros, n);
                }
            }
            for t in net
                .layout()
                .tensors
                .iter()
                .filter(|t| t.kind == ParamKind::Bias)
            {
                assert!(
                    t.range().all(|i| m.mask.keep[i]),
                    "biases are not N:M units"
                );
            }
        }
        // magnitude removes the zeros of row 0, group 0 first (ties to the lower index)
        let crit = Criteria::new(&net, &theta, None, None, 0.01);
        let m = prune::mask(PruneMethod::Magnitude, &units, &crit, &cfg, 0.5).unwrap();
        let first: Vec<bool> = (0..mm.min(3).min(n))
            .map(|i| m.mask.keep[stem + i])
            .collect();
        assert!(first.iter().all(|k| !k));
    }
}

// ---------------------------------------------------------------------------------------
// OBS on one linear layer

/// Solves `A z = b` by Gaussian elimination with partial pivoting (the oracle, independent of
/// the Cholesky path under test).
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .unwrap();
        a.swap(c, p);
        b.swap(c, p);
        let pivot = a[c].clone();
        for r in c + 1..n {
            let f = a[r][c] / pivot[c];
            a[r].iter_mut()
                .zip(&pivot)
                .skip(c)
                .for_each(|(v, p)| *v -= f * p);
            b[r] -= f * b[c];
        }
    }
    let mut z = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|k| a[r][k] * z[k]).sum();
        z[r] = (b[r] - s) / a[r][r];
    }
    z
}

/// `2XᵀX + λI` and `λ = damping × mean(diag(2XᵀX))`.
fn damped(x: &LayerInput, damping: f64) -> (Vec<Vec<f64>>, f64) {
    let c = x.cols;
    let mut h = vec![vec![0.0; c]; c];
    for r in x.x.chunks(c) {
        for i in 0..c {
            for j in 0..c {
                h[i][j] += 2.0 * r[i] * r[j];
            }
        }
    }
    let lambda = damping * (0..c).map(|i| h[i][i]).sum::<f64>() / c as f64;
    (0..c).for_each(|i| h[i][i] += lambda);
    (h, lambda)
}

/// `min (w'−w) H (w'−w)ᵀ` with `w'_P = 0`, solved on the kept set `F`:
/// `H_FF δ_F = H_FP w_P`.
fn constrained_optimum(h: &[Vec<f64>], w: &[f64], keep: &[bool]) -> Vec<f64> {
    let f: Vec<usize> = (0..w.len()).filter(|&j| keep[j]).collect();
    let p: Vec<usize> = (0..w.len()).filter(|&j| !keep[j]).collect();
    let a = f
        .iter()
        .map(|&i| f.iter().map(|&j| h[i][j]).collect())
        .collect();
    let b = f
        .iter()
        .map(|&i| p.iter().map(|&j| h[i][j] * w[j]).sum())
        .collect();
    let d = if f.is_empty() {
        Vec::new()
    } else {
        solve(a, b)
    };
    let mut out = vec![0.0; w.len()];
    for (k, &j) in f.iter().enumerate() {
        out[j] = w[j] + d[k];
    }
    out
}

/// `‖(w' − w) Xᵀ‖²` of one row.
fn reconstruction(x: &LayerInput, w: &[f64], w2: &[f64]) -> f64 {
    x.x.chunks(x.cols)
        .map(|r| {
            r.iter()
                .zip(w.iter().zip(w2))
                .map(|(xi, (a, b))| (b - a) * xi)
                .sum::<f64>()
                .powi(2)
        })
        .sum()
}

#[test]
fn obs_is_the_constrained_least_squares_optimum() {
    let mut rng = ChaCha8Rng::seed_from_u64(51);
    let (rows, c, out) = (20, 6, 5);
    // correlated columns, so the update is not zero
    let base: Vec<f64> = (0..rows * c).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let xv: Vec<f64> = (0..rows * c)
        .map(|i| base[i] + 0.6 * base[i - i % c] + 0.1 * (i % c) as f64)
        .collect();
    let x = LayerInput {
        weight: "toy.weight".into(),
        rows,
        cols: c,
        x: xv,
    };
    let w: Vec<f64> = (0..out * c).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let pruned_at: [&[usize]; 5] = [&[1, 3], &[0, 2, 4, 5], &[], &[0, 1, 2, 3, 4, 5], &[1, 3]];
    let keep: Vec<bool> = (0..out * c)
        .map(|i| !pruned_at[i / c].contains(&(i % c)))
        .collect();
    let damping = 0.01;
    let layer = LayerObs::new(&x, damping).unwrap();
    let (h, lambda) = damped(&x, damping);
    assert!((layer.lambda - lambda).abs() <= 1e-14 * lambda);
    let mut got = w.clone();
    layer.update(&mut got, &keep).unwrap();
    for r in 0..out {
        let (wr, kr) = (&w[r * c..(r + 1) * c], &keep[r * c..(r + 1) * c]);
        let want = constrained_optimum(&h, wr, kr);
        let g = &got[r * c..(r + 1) * c];
        // both solves are backward stable and cond(H) is small here (columns correlated
        // at 0.6, 20 rows): ~1e-15 apart; 1e-10 is far below any wrong formula's error
        assert!(max_abs_diff(g, &want) < 1e-10, "row {r}: {g:?} vs {want:?}");
        assert!(
            (0..c).filter(|&j| !kr[j]).all(|j| g[j] == 0.0),
            "pruned are exactly 0"
        );
        let e_obs = reconstruction(&x, wr, g);
        let e_mag = reconstruction(&x, wr, &masked(wr, kr));
        assert!(e_obs <= e_mag + 1e-12, "row {r}: {e_obs} > {e_mag}");
        if !pruned_at[r].is_empty() && pruned_at[r].len() < c {
            assert!(
                e_obs < 0.99 * e_mag,
                "row {r}: the update helps: {e_obs} vs {e_mag}"
            );
        }
    }
    // saliency w²/[H⁻¹]_jj against H⁻¹ from the oracle solve
    let e0: Vec<f64> = (0..c).map(|i| f64::from(u8::from(i == 2))).collect();
    let hinv_col = solve(h.clone(), e0);
    let s = layer.saliency(&w[..c]);
    assert!((s[2] - w[2] * w[2] / hinv_col[2]).abs() < 1e-12 * s[2]);
}

#[test]
fn obs_with_orthogonal_inputs_of_equal_norm_is_magnitude() {
    // 8 × 4 of the Sylvester Hadamard matrix: XᵀX = 8I exactly in floating point
    let had = |i: usize, j: usize| {
        if (i & j).count_ones().is_multiple_of(2) {
            1.0
        } else {
            -1.0
        }
    };
    let x = LayerInput {
        weight: "toy.weight".into(),
        rows: 8,
        cols: 4,
        x: (0..32).map(|k| had(k / 4, k % 4 + 1)).collect(),
    };
    let w = vec![0.3, -1.2, 0.7, 0.05, -0.4, 0.9, -0.6, 0.2];
    let keep = vec![true, false, true, false, false, true, true, true];
    let layer = LayerObs::new(&x, 0.01).unwrap();
    let mut got = w.clone();
    layer.update(&mut got, &keep).unwrap();
    let mag = masked(&w, &keep);
    assert_eq!(got, mag, "no kept weight moves when H is a multiple of I");
    for r in 0..2 {
        let s = r * 4..(r + 1) * 4;
        assert_eq!(
            reconstruction(&x, &w[s.clone()], &got[s.clone()]),
            reconstruction(&x, &w[s.clone()], &mag[s])
        );
    }
}

#[test]
fn a_failed_factorisation_says_to_raise_the_damping() {
    // a negative damping makes 2XᵀX + λI indefinite (its smallest eigenvalue is below the
    // mean of its diagonal when the column norms differ): the error path, deterministically
    let x = LayerInput {
        weight: "blocks.0.weight".into(),
        rows: 3,
        cols: 2,
        x: vec![1.0, 0.01, 2.0, 0.0, -1.0, 0.02],
    };
    let e = LayerObs::new(&x, -1.0).unwrap_err();
    assert!(matches!(&e, PruneError::Cholesky { layer, .. } if layer == "blocks.0.weight"));
    let msg = e.to_string();
    assert!(
        msg.contains("raise prune.obs_damping") && msg.contains("`blocks.0.weight`"),
        "{msg}"
    );
}

// ---------------------------------------------------------------------------------------
// the calibration criteria

#[test]
fn wanda_prunes_a_big_weight_on_a_silent_input_first() {
    let s = mlp(3, 4, 1, Activation::Tanh);
    let net = Network::new(&s, Variant::Plain);
    let mut theta = s.init(&mut ChaCha8Rng::seed_from_u64(61));
    let stem = net.layout().get("stem.weight").unwrap().offset;
    let col0: Vec<usize> = (0..4).map(|r| stem + r * 3).collect();
    col0.iter().for_each(|&i| theta[i] = 5.0);
    let (mut x, y) = data(30, 3, 5);
    for e in 0..30 {
        x[e * 3] *= 1e-6;
    }
    let cal = calibration(&net, &theta, &x, &y);
    let cfg = PruneConfig::default();
    let units = prune::units(
        &s,
        Variant::Plain,
        net.layout(),
        Granularity::Unstructured,
        &cfg,
    );
    let crit = Criteria::new(&net, &theta, None, Some(&cal), 0.01);
    // 36 weights: floor(0.12 × 36) = 4, the stem's column 0
    let scores = crit.param_scores(PruneMethod::Wanda).unwrap();
    let elig = prune::eligible(net.layout(), false, false);
    let others = (0..theta.len())
        .filter(|i| elig[*i] && !col0.contains(i))
        .map(|i| scores[i])
        .fold(f64::INFINITY, f64::min);
    let silent = col0.iter().map(|&i| scores[i]).fold(0.0, f64::max);
    assert!(silent < 1e-3 * others, "{silent} vs {others}");
    let m = prune::mask(PruneMethod::Wanda, &units, &crit, &cfg, 0.12).unwrap();
    let gone: Vec<usize> = (0..theta.len()).filter(|&i| !m.mask.keep[i]).collect();
    assert_eq!(gone, col0);
    let mag = prune::mask(PruneMethod::Magnitude, &units, &crit, &cfg, 0.12).unwrap();
    assert!(
        col0.iter().all(|&i| mag.mask.keep[i]),
        "magnitude keeps the biggest"
    );
    // the score itself: |W_ij| ‖X_j‖
    let norm0 = (0..30).map(|e| x[e * 3].powi(2)).sum::<f64>().sqrt();
    assert!((scores[col0[1]] - 5.0 * norm0).abs() < 1e-15);
    let b = net.layout().get("head.bias").unwrap().offset;
    assert!(
        (scores[b] - theta[b].abs() * 30f64.sqrt()).abs() < 1e-15,
        "bias rule"
    );
}

#[test]
fn block_influence_of_an_identity_block_is_zero() {
    let s = mlp(3, 4, 3, Activation::Tanh);
    let net = Network::new(&s, Variant::Residual);
    let mut theta = s.init(&mut ChaCha8Rng::seed_from_u64(71));
    // blocks.1 = 0: its branch is tanh(0) = 0, so the block is the identity
    for name in ["blocks.1.weight", "blocks.1.bias"] {
        let t = net.layout().get(name).unwrap().clone();
        theta[t.range()].iter_mut().for_each(|v| *v = 0.0);
    }
    let (x, y) = data(10, 3, 6);
    let cal = calibration(&net, &theta, &x, &y);
    let crit = Criteria::new(&net, &theta, None, Some(&cal), 0.01);
    let scores = prune::block_scores(PruneMethod::BlockInfluence, &crit)
        .unwrap()
        .unwrap();
    assert_eq!(scores.len(), 3);
    // cos(h, h) = 1 to a couple of roundings per row
    assert!(scores[1].abs() < 1e-15, "{scores:?}");
    assert!(scores[0] > 1e-6 && scores[2] > 1e-6, "{scores:?}");
    let cfg = PruneConfig::default();
    let units = prune::units(
        &s,
        Variant::Residual,
        net.layout(),
        Granularity::Block,
        &cfg,
    );
    let m = prune::mask(PruneMethod::BlockInfluence, &units, &crit, &cfg, 0.34).unwrap();
    let b1 = net.layout().get("blocks.1.weight").unwrap().offset;
    assert!(!m.mask.keep[b1] && m.units_pruned == 1);
    assert!(prune::block_scores(PruneMethod::CurvatureGated, &crit)
        .unwrap()
        .is_none());
    // magnitude ranks blocks by the sum of |θ|: blocks.1 is 0
    let mag = prune::block_scores(PruneMethod::Magnitude, &crit)
        .unwrap()
        .unwrap();
    assert_eq!(mag[1], 0.0);
}

#[test]
fn taylor_sums_g_theta_over_a_unit() {
    let s = mlp(3, 5, 2, Activation::Tanh);
    let net = Network::new(&s, Variant::Plain);
    let theta = s.init(&mut ChaCha8Rng::seed_from_u64(81));
    let (x, y) = data(15, 3, 7);
    let cal = calibration(&net, &theta, &x, &y);
    let mut g = vec![0.0; theta.len()];
    net.loss_grad(&theta, &cal.batch, &mut g);
    let crit = Criteria::new(&net, &theta, None, Some(&cal), 0.01);
    let cfg = PruneConfig::default();
    let units = prune::units(&s, Variant::Plain, net.layout(), Granularity::Neuron, &cfg);
    let scores = crit
        .unit_scores(PruneMethod::Taylor, whole(&units))
        .unwrap();
    for (u, got) in whole(&units).iter().zip(&scores) {
        let want: f64 = u.params.iter().map(|&i| (g[i] * theta[i]).abs()).sum();
        assert!(want > 0.0);
        // the same terms; 1e-14 relative covers any order of summation over ≤ 12 terms
        assert!((got - want).abs() <= 1e-14 * want, "{u:?}: {got} vs {want}");
    }
}

// ---------------------------------------------------------------------------------------
// the sweep

#[test]
fn the_sweep_makes_one_row_per_granularity_defined_method_and_ratio() {
    let s = mlp(4, 8, 4, Activation::Tanh);
    let (x, y) = data(24, 4, 8);
    let all = [
        PruneMethod::Magnitude,
        PruneMethod::Obd,
        PruneMethod::CurvatureGated,
        PruneMethod::Wanda,
        PruneMethod::Taylor,
        PruneMethod::Obs,
        PruneMethod::BlockInfluence,
    ];
    let grans = [
        Granularity::Unstructured,
        Granularity::NOfM { n: 2, m: 4 },
        Granularity::Neuron,
        Granularity::Block,
    ];
    let cfg = PruneConfig {
        methods: all.to_vec(),
        granularities: grans.to_vec(),
        ratios: vec![0.25, 0.5],
        ..PruneConfig::default()
    };
    for v in Variant::BOTH {
        let net = Network::new(&s, v);
        let theta = s.init(&mut ChaCha8Rng::seed_from_u64(91));
        let cal = calibration(&net, &theta, &x, &y);
        let eval = net.prepare(&x, &y);
        let diag: Vec<f64> = (0..theta.len()).map(|i| 1.0 + (i % 7) as f64).collect();
        let inputs = prune::SweepInputs {
            eval: &eval,
            cfg: &cfg,
            products: resprune::config::Products::FiniteDifferences,
            fd_step: 1e-5,
            diag: Some(&diag),
            calibration: Some(&cal),
            basis: None,
        };
        let mut out = Vec::new();
        let mut seen = 0;
        prune::sweep(
            &net,
            &theta,
            &inputs,
            &mut out,
            &AtomicBool::new(false),
            &mut |_| seen += 1,
        )
        .unwrap();
        let mut want = Vec::new();
        for g in grans {
            for m in all {
                if prune::defined(m, g).is_ok() {
                    for r in prune::ratios_for(g, &cfg.ratios) {
                        want.push((g, m, r));
                    }
                }
            }
        }
        // unstructured 6 × 2, 2:4 5 × 1, neuron 5 × 2, block 6 × 2
        assert_eq!(want.len(), 39);
        let got: Vec<_> = out
            .iter()
            .map(|p| (p.row.granularity, p.row.method, p.row.ratio))
            .collect();
        assert_eq!(got, want);
        assert_eq!(seen, 39);
        let weights = 4 * 8 + 4 * 64 + 8 * 3;
        for p in &out {
            let r = &p.row;
            let (ue, up) = match (r.granularity, r.ratio) {
                (Granularity::Unstructured, ratio) => {
                    (weights, (ratio * weights as f64).floor() as usize)
                }
                (Granularity::NOfM { .. }, _) => (weights, weights / 2),
                (Granularity::Neuron, ratio) => (40, (ratio * 40.0) as usize),
                (Granularity::Block, ratio) => (4, (ratio * 4.0) as usize),
                other => panic!("{other:?}"),
            };
            let curvature_gated = r.method == PruneMethod::CurvatureGated;
            assert_eq!(r.units_eligible, ue, "{r:?}");
            if !curvature_gated {
                assert_eq!(
                    r.units_pruned, up,
                    "{:?} {} {}",
                    r.granularity, r.method, r.ratio
                );
            }
            if r.granularity == Granularity::Block {
                assert_eq!((r.eligible, r.pruned), (4 * 72, up * 72));
            }
            assert_eq!(r.pruned, p.keep.iter().filter(|k| !**k).count());
            assert_eq!(r.layers.iter().map(|l| l.pruned).sum::<usize>(), r.pruned);
            assert!(r.mechanism.is_some());
            assert_eq!(r.predicted_delta, r.predicted_first + r.predicted_second);
            let pruned = p.pruned_theta(&theta);
            assert!((0..theta.len()).all(|i| p.keep[i] || pruned[i] == 0.0));
            assert_eq!(r.loss_after, net.evaluate(&pruned, &eval).loss);
            assert_eq!(p.theta.is_some(), r.method == PruneMethod::Obs);
        }
        // OBS moves kept weights at unstructured, N:M and (plain: the next layer's columns)
        // neuron granularity; everywhere else the pruned model is theta ⊙ keep
        for p in out.iter().filter(|p| p.row.method == PruneMethod::Obs) {
            let t = p.theta.as_ref().unwrap();
            let moved = (0..theta.len()).any(|i| p.keep[i] && t[i] != theta[i]);
            let expect = match p.row.granularity {
                Granularity::Unstructured | Granularity::NOfM { .. } => true,
                Granularity::Neuron => v == Variant::Plain,
                _ => false,
            };
            assert_eq!(moved, expect, "{:?} {v}", p.row.granularity);
        }
    }
}

#[test]
fn finetuning_starts_from_the_obs_update() {
    let s = mlp(4, 8, 2, Activation::Tanh);
    let (x, y) = data(16, 4, 9);
    let net = Network::new(&s, Variant::Plain);
    let theta = s.init(&mut ChaCha8Rng::seed_from_u64(95));
    let cal = calibration(&net, &theta, &x, &y);
    let eval = net.prepare(&x, &y);
    let cfg = PruneConfig {
        methods: vec![PruneMethod::Obs],
        ratios: vec![0.5],
        ..PruneConfig::default()
    };
    let inputs = prune::SweepInputs {
        eval: &eval,
        cfg: &cfg,
        products: resprune::config::Products::FiniteDifferences,
        fd_step: 1e-5,
        diag: None,
        calibration: Some(&cal),
        basis: None,
    };
    let never = AtomicBool::new(false);
    let mut out = Vec::new();
    prune::sweep(&net, &theta, &inputs, &mut out, &never, &mut |_| {}).unwrap();
    let train = resprune::data::Dataset {
        x: x.clone(),
        y: y.clone(),
        features: 4,
        classes: 3,
        class_names: vec!["a".into(), "b".into(), "c".into()],
    };
    // a learning rate of 0 trains nothing: the fine-tuned loss is the start's
    let ft = prune::Finetune {
        train: &train,
        cfg: TrainConfig {
            epochs: 1,
            lr: 0.0,
            batch_size: 4,
            ..TrainConfig::default()
        },
        seed: 0,
    };
    let f = prune::finetune(&net, &theta, &out[0], &ft, &eval, &never).unwrap();
    assert_eq!(f.loss, out[0].row.loss_after);
    let masked_loss = net.evaluate(&masked(&theta, &out[0].keep), &eval).loss;
    assert_ne!(f.loss, masked_loss, "not theta ⊙ keep");
}
