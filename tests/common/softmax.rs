//! Softmax regression `z = W x + b` written out by hand: its loss, exact gradient and
//! analytic Hessian, the oracle tests/curvature_dense.rs and tests/exact_spectrum.rs hold the
//! dense Hessians against.
#![allow(dead_code)]

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use resprune::curvature::LossGrad;
use resprune::model::{Activation, ModelSpec};

/// Softmax regression `z = W x + b` written out by hand, with its exact gradient.
pub struct SoftmaxRegression {
    pub x: Vec<f64>,
    pub y: Vec<usize>,
    pub d: usize,
    pub k: usize,
}

impl SoftmaxRegression {
    pub fn probs(&self, theta: &[f64], e: usize) -> Vec<f64> {
        let (d, k) = (self.d, self.k);
        let xe = &self.x[e * d..(e + 1) * d];
        let z: Vec<f64> = (0..k)
            .map(|c| theta[k * d + c] + (0..d).map(|j| theta[c * d + j] * xe[j]).sum::<f64>())
            .collect();
        let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = z.iter().map(|v| (v - m).exp()).sum();
        z.iter().map(|v| (v - m).exp() / s).collect()
    }

    /// `Σ_e (diag p − p pᵀ) ⊗ x̃ x̃ᵀ / n` with `x̃ = [x; 1]`, in theta's `[W row-major, b]` order.
    pub fn analytic_hessian(&self, theta: &[f64]) -> Vec<f64> {
        let (d, k) = (self.d, self.k);
        let n_par = k * d + k;
        let idx = |c: usize, j: usize| if j < d { c * d + j } else { k * d + c };
        let mut h = vec![0.0; n_par * n_par];
        let n = self.y.len();
        for e in 0..n {
            let p = self.probs(theta, e);
            let mut xt = self.x[e * d..(e + 1) * d].to_vec();
            xt.push(1.0);
            for c in 0..k {
                for c2 in 0..k {
                    let a = if c == c2 { p[c] } else { 0.0 } - p[c] * p[c2];
                    for j in 0..=d {
                        for j2 in 0..=d {
                            h[idx(c, j) * n_par + idx(c2, j2)] += a * xt[j] * xt[j2] / n as f64;
                        }
                    }
                }
            }
        }
        h
    }
}

impl LossGrad for SoftmaxRegression {
    fn dim(&self) -> usize {
        self.k * self.d + self.k
    }

    fn loss_grad(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let (d, k, n) = (self.d, self.k, self.y.len());
        grad.iter_mut().for_each(|g| *g = 0.0);
        let mut loss = 0.0;
        for e in 0..n {
            let p = self.probs(theta, e);
            loss -= p[self.y[e]].ln() / n as f64;
            for c in 0..k {
                let r = (p[c] - f64::from(c == self.y[e])) / n as f64;
                for j in 0..d {
                    grad[c * d + j] += r * self.x[e * d + j];
                }
                grad[k * d + c] += r;
            }
        }
        loss
    }
}

/// The network whose Hessian's head block both files hold to softmax regression on its last
/// hidden features: tanh, depth 2, `alpha = 0.5`, 30 examples; `(spec, theta, x, y)`.
pub fn head_block_case() -> (ModelSpec, Vec<f64>, Vec<f64>, Vec<usize>) {
    let spec = ModelSpec {
        inputs: 4,
        width: 6,
        depth: 2,
        classes: 3,
        activation: Activation::Tanh,
        alpha: 0.5,
        learned_alpha: false,
        transformer: None,
    };
    let theta = spec.init(&mut ChaCha8Rng::seed_from_u64(11));
    let n = 30;
    let x: Vec<f64> = (0..n * 4)
        .map(|i| ((i * 31 % 19) as f64 / 9.0) - 1.0)
        .collect();
    let y: Vec<usize> = (0..n).map(|i| i % 3).collect();
    (spec, theta, x, y)
}
