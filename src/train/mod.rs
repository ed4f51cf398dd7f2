//! Optimisers over the flat parameter vector, minibatches in a seeded order, masks held at zero.

use std::sync::atomic::AtomicBool;

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::config::{Optimizer, TrainConfig};
use crate::data::Dataset;
use crate::model::{Network, ParamKind, PreparedBatch};
use crate::rng::{stream, Stream};
use crate::stop::Stop;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(
        "{variant}: the loss became {value} in epoch {epoch} (step {step}); \
         lower train.lr or check the data for extreme values"
    )]
    Diverged {
        variant: String,
        epoch: usize,
        step: usize,
        value: f64,
    },
}

/// Loss and accuracy after one epoch (epoch 0 is the initial `theta`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochStats {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub eval_loss: f64,
    pub eval_accuracy: f64,
}

/// Adam or SGD with momentum, over a flat vector.
#[derive(Debug, Clone)]
pub struct OptimizerState {
    cfg: TrainConfig,
    m: Vec<f64>,
    v: Vec<f64>,
    t: u64,
    /// 1 for weights, 0 for biases: the L1 term applies to weights only.
    is_weight: Vec<f64>,
}

impl OptimizerState {
    pub fn new(cfg: &TrainConfig, net: &Network) -> Self {
        let n = net.dim();
        let mut is_weight = vec![0.0; n];
        for t in &net.layout().tensors {
            if t.kind == ParamKind::Weight {
                is_weight[t.range()].iter_mut().for_each(|v| *v = 1.0);
            }
        }
        OptimizerState {
            cfg: cfg.clone(),
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
            is_weight,
        }
    }

    /// One update; `grad` is the gradient of the data loss (penalties are added here).
    pub fn step(&mut self, theta: &mut [f64], grad: &[f64], mask: Option<&[bool]>) {
        let c = &self.cfg;
        self.t += 1;
        let (b1, b2) = (c.beta1, c.beta2);
        let bc1 = 1.0 - b1.powi(self.t as i32);
        let bc2 = 1.0 - b2.powi(self.t as i32);
        for i in 0..theta.len() {
            if mask.is_some_and(|m| !m[i]) {
                // a pruned parameter stays exactly zero and its moments stay empty
                theta[i] = 0.0;
                continue;
            }
            let mut g = grad[i] + c.weight_decay * theta[i];
            if c.l1 > 0.0 {
                g += c.l1 * self.is_weight[i] * theta[i].signum() * f64::from(theta[i] != 0.0);
            }
            match c.optimizer {
                Optimizer::Adam => {
                    self.m[i] = b1 * self.m[i] + (1.0 - b1) * g;
                    self.v[i] = b2 * self.v[i] + (1.0 - b2) * g * g;
                    let mhat = self.m[i] / bc1;
                    let vhat = self.v[i] / bc2;
                    theta[i] -= c.lr * mhat / (vhat.sqrt() + c.eps);
                }
                Optimizer::Sgd => {
                    // PyTorch's SGD momentum: buf = mu * buf + g; theta -= lr * buf
                    self.m[i] = if self.t == 1 {
                        g
                    } else {
                        c.momentum * self.m[i] + g
                    };
                    theta[i] -= c.lr * self.m[i];
                }
            }
        }
    }

    /// The L1 penalty of `theta` (reported with the loss when `l1 > 0`).
    pub fn l1_penalty(&self, theta: &[f64]) -> f64 {
        self.cfg.l1
            * theta
                .iter()
                .zip(&self.is_weight)
                .map(|(t, w)| t.abs() * w)
                .sum::<f64>()
    }
}

/// What one training run needs besides the model and `theta`.
#[derive(Clone, Copy)]
pub struct Session<'a> {
    pub cfg: &'a TrainConfig,
    pub train: &'a Dataset,
    /// Evaluated after every epoch (and at epoch 0).
    pub eval: &'a PreparedBatch,
    /// The batch order depends on it only, so the residual and plain models see the same one.
    pub seed: u64,
    /// Parameters held at zero (`false` = pruned).
    pub mask: Option<&'a [bool]>,
}

/// Trains `theta` in place for `cfg.epochs` epochs, appending each epoch's statistics to
/// `history` (epoch 0, the starting `theta`, first) and passing them to `on_epoch`.
///
/// `cancel` is checked before every minibatch: a cancel stops within one step, returning
/// `Stop::Cancelled` with the finished epochs in `history`.
pub fn train(
    net: &Network,
    theta: &mut [f64],
    s: &Session<'_>,
    history: &mut Vec<EpochStats>,
    cancel: &AtomicBool,
    on_epoch: &mut dyn FnMut(&EpochStats),
) -> Result<(), Stop<TrainError>> {
    let cfg = s.cfg;
    let full_train = net.prepare(&s.train.x, &s.train.y);
    let mut opt = OptimizerState::new(cfg, net);
    let mut order = EpochOrder::new(s.train.len(), s.seed, cfg.shuffle);
    let mut grad = vec![0.0; theta.len()];
    if let Some(m) = s.mask {
        apply_mask(theta, m);
    }
    let record = |epoch: usize, theta: &[f64]| {
        let tr = net.evaluate(theta, &full_train);
        let ev = net.evaluate(theta, s.eval);
        EpochStats {
            epoch,
            train_loss: tr.loss,
            train_accuracy: tr.accuracy,
            eval_loss: ev.loss,
            eval_accuracy: ev.accuracy,
        }
    };
    let diverged = |epoch, step, value| {
        Stop::Failed(TrainError::Diverged {
            variant: net.variant().to_string(),
            epoch,
            step,
            value,
        })
    };
    let first = record(0, theta);
    history.push(first);
    on_epoch(&first);
    let mut step = 0;
    for epoch in 1..=cfg.epochs {
        for chunk in order.next_epoch().chunks(cfg.batch_size) {
            Stop::check(cancel)?;
            step += 1;
            let batch = s.train.select(chunk);
            let b = net.prepare(&batch.x, &batch.y);
            let out = net.loss_grad(theta, &b, &mut grad);
            if !out.loss.is_finite() {
                return Err(diverged(epoch, step, out.loss));
            }
            opt.step(theta, &grad, s.mask);
        }
        Stop::check(cancel)?;
        let stats = record(epoch, theta);
        if !stats.train_loss.is_finite() {
            return Err(diverged(epoch, step, stats.train_loss));
        }
        history.push(stats);
        on_epoch(&stats);
    }
    Ok(())
}

/// The order in which each epoch visits the training split: epoch `e` (from 1) shuffles the
/// order of epoch `e − 1` (at first `0, 1, ..., n − 1`) with the seed's `Shuffle` stream, or
/// keeps it without `train.shuffle`; minibatches are consecutive chunks of `batch_size`. It
/// depends on the seed and `n` only, so every model of a seed (and its fine-tuning, which
/// starts the stream again) sees the same orders.
pub struct EpochOrder {
    rng: rand_chacha::ChaCha8Rng,
    order: Vec<usize>,
    shuffle: bool,
}

impl EpochOrder {
    pub fn new(n: usize, seed: u64, shuffle: bool) -> Self {
        EpochOrder {
            rng: stream(seed, Stream::Shuffle),
            order: (0..n).collect(),
            shuffle,
        }
    }

    /// The next epoch's order.
    pub fn next_epoch(&mut self) -> &[usize] {
        if self.shuffle {
            self.order.shuffle(&mut self.rng);
        }
        &self.order
    }
}

/// The orders of the first `epochs` epochs (see [`EpochOrder`]).
pub fn epoch_orders(n: usize, seed: u64, shuffle: bool, epochs: usize) -> Vec<Vec<usize>> {
    let mut o = EpochOrder::new(n, seed, shuffle);
    (0..epochs).map(|_| o.next_epoch().to_vec()).collect()
}

/// Sets every masked-out parameter (`mask[i] == false`) to exactly zero.
pub fn apply_mask(theta: &mut [f64], mask: &[bool]) {
    for (t, keep) in theta.iter_mut().zip(mask) {
        if !keep {
            *t = 0.0;
        }
    }
}
