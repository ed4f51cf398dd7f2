//! A plain-Rust forward pass of the MLP, the oracle several test files check dfdx against.
#![allow(dead_code)]

use resprune::model::{Activation, ModelSpec, TransformerShape, Variant};

pub mod softmax;
pub mod transformer_ref;

/// `W h + b` of layer `name` (`stem`, `blocks.0`, `head`) read from `theta`.
pub fn linear(spec: &ModelSpec, theta: &[f64], name: &str, h: &[f64]) -> Vec<f64> {
    let l = spec.layout();
    let w = l.get(&format!("{name}.weight")).unwrap();
    let b = l.get(&format!("{name}.bias")).unwrap();
    let (o, i) = (w.shape[0], w.shape[1]);
    (0..o)
        .map(|r| {
            theta[b.offset + r]
                + (0..i)
                    .map(|c| theta[w.offset + r * i + c] * h[c])
                    .sum::<f64>()
        })
        .collect()
}

pub fn activate(a: Activation, z: f64) -> f64 {
    match a {
        Activation::Relu => z.max(0.0),
        Activation::Tanh => z.tanh(),
        Activation::Gelu => {
            let c = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * z * (1.0 + (c * (z + 0.044715 * z.powi(3))).tanh())
        }
    }
}

/// The last hidden features of one example: stem, then every block with or without the skip.
pub fn hidden(spec: &ModelSpec, v: Variant, theta: &[f64], x: &[f64]) -> Vec<f64> {
    let act = |z| activate(spec.activation, z);
    let mut h: Vec<f64> = linear(spec, theta, "stem", x)
        .into_iter()
        .map(act)
        .collect();
    for b in 0..spec.depth {
        let f: Vec<f64> = linear(spec, theta, &format!("blocks.{b}"), &h)
            .into_iter()
            .map(act)
            .collect();
        h = match v {
            Variant::Residual => h.iter().zip(&f).map(|(a, b)| a + spec.alpha * b).collect(),
            Variant::Plain => f,
        };
    }
    h
}

/// Mean cross-entropy over the examples (`x` row-major).
pub fn loss(spec: &ModelSpec, v: Variant, theta: &[f64], x: &[f64], y: &[usize]) -> f64 {
    let n = y.len();
    let mut total = 0.0;
    for (e, &label) in y.iter().enumerate() {
        let xe = &x[e * spec.inputs..(e + 1) * spec.inputs];
        let z = linear(spec, theta, "head", &hidden(spec, v, theta, xe));
        let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        total += lse - z[label];
    }
    total / n as f64
}

/// A transformer small enough for exact checks: width 4, 2 heads, 2 blocks, 5 tokens of a
/// vocabulary of 11, inner width 6, GELU, two classes.
pub fn tiny_transformer() -> ModelSpec {
    ModelSpec {
        inputs: 5,
        width: 4,
        depth: 2,
        classes: 2,
        activation: Activation::Gelu,
        alpha: 1.0,
        learned_alpha: false,
        transformer: Some(TransformerShape {
            vocab: 11,
            max_len: 5,
            heads: 2,
            ff: 6,
        }),
    }
}

/// `max |a − b| / max |b|`: a difference relative to the reference's largest entry.
pub fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(1e-300f64, |m, x| m.max(x.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

/// `n` sentences for [`tiny_transformer`] (ids 1..=10, padded to its 5 positions), each of a
/// length drawn from `lens`, and labels 0/1 alternating.
pub fn sentences(
    n: usize,
    seed: u64,
    lens: std::ops::RangeInclusive<usize>,
) -> (Vec<f64>, Vec<usize>) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut x = vec![0.0; n * 5];
    for i in 0..n {
        for t in 0..rng.gen_range(lens.clone()) {
            x[i * 5 + t] = rng.gen_range(1..11) as f64;
        }
    }
    let y: Vec<usize> = (0..n).map(|i| i % 2).collect();
    (x, y)
}

/// Rows of 5 ids for [`tiny_transformer`] (0 = padding): padding at the end, in the middle, none, all but one.
pub fn padded_ids() -> (Vec<f64>, Vec<usize>) {
    let rows: [[usize; 5]; 5] = [
        [5, 3, 7, 0, 0],
        [2, 9, 10, 4, 1],
        [6, 0, 0, 0, 0],
        [8, 0, 2, 0, 3],
        [1, 1, 4, 0, 0],
    ];
    let x = rows.iter().flatten().map(|&i| i as f64).collect();
    (x, vec![0, 2, 1, 1, 0])
}

/// A sweep of tiny synthetic points (40 examples, 4 features, 2 epochs, dense spectrum, 2
/// seeds each): a fraction of a second per point. `sweep` holds the `[sweep]` lines.
pub fn tiny_sweep(name: &str, width: usize, sweep: &str) -> String {
    format!(
        r#"
name = "{name}"
threads = 1
replicates = 2
[data]
samples = 40
features = 4
eval_fraction = 0.0
[model]
width = {width}
[train]
epochs = 2
[hessian]
method = "dense"
[prune]
ratios = [0.2, 0.4]
[sweep]
{sweep}
"#
    )
}
