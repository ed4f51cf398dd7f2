//! Optimisers over the flat parameter vector, minibatches in a seeded order, masks held at zero.

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::config::{Optimizer, TrainConfig};
use crate::data::Dataset;
use crate::model::{Network, ParamKind, PreparedBatch};
use crate::rng::{stream, Stream};

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

/// The history of a training run, and whether it was cut short by a cancel.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOutcome {
    pub history: Vec<EpochStats>,
    pub cancelled: bool,
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

/// What training reports as it goes.
pub trait Progress {
    /// Called after each epoch; returning false cancels.
    fn epoch(&mut self, stats: &EpochStats) -> bool;
}

impl<F: FnMut(&EpochStats) -> bool> Progress for F {
    fn epoch(&mut self, stats: &EpochStats) -> bool {
        self(stats)
    }
}

/// Trains `theta` in place for `cfg.epochs` epochs and returns the history, epoch 0 included;
/// `progress` returning false stops it after the current epoch.
/// The batch order depends on `seed` only, so the residual and plain models see the same one.
#[allow(clippy::too_many_arguments)]
pub fn train(
    net: &Network,
    theta: &mut [f64],
    cfg: &TrainConfig,
    train: &Dataset,
    eval: &PreparedBatch,
    seed: u64,
    mask: Option<&[bool]>,
    progress: &mut dyn Progress,
) -> Result<TrainOutcome, TrainError> {
    let full_train = net.prepare(&train.x, &train.y);
    let mut opt = OptimizerState::new(cfg, net);
    let mut rng = stream(seed, Stream::Shuffle);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut grad = vec![0.0; theta.len()];
    if let Some(m) = mask {
        apply_mask(theta, m);
    }
    let record = |epoch: usize, theta: &[f64]| {
        let tr = net.evaluate(theta, &full_train);
        let ev = net.evaluate(theta, eval);
        EpochStats {
            epoch,
            train_loss: tr.loss,
            train_accuracy: tr.accuracy,
            eval_loss: ev.loss,
            eval_accuracy: ev.accuracy,
        }
    };
    let first = record(0, theta);
    let mut history = vec![first];
    let stopped = |history| {
        Ok(TrainOutcome {
            history,
            cancelled: true,
        })
    };
    if !progress.epoch(&first) {
        return stopped(history);
    }
    let mut step = 0;
    for epoch in 1..=cfg.epochs {
        if cfg.shuffle {
            order.shuffle(&mut rng);
        }
        for chunk in order.chunks(cfg.batch_size) {
            step += 1;
            let batch = train.select(chunk);
            let b = net.prepare(&batch.x, &batch.y);
            let out = net.loss_grad(theta, &b, &mut grad);
            if !out.loss.is_finite() {
                return Err(TrainError::Diverged {
                    variant: net.variant().to_string(),
                    epoch,
                    step,
                    value: out.loss,
                });
            }
            opt.step(theta, &grad, mask);
        }
        let stats = record(epoch, theta);
        if !stats.train_loss.is_finite() {
            return Err(TrainError::Diverged {
                variant: net.variant().to_string(),
                epoch,
                step,
                value: stats.train_loss,
            });
        }
        history.push(stats);
        if !progress.epoch(&stats) {
            return stopped(history);
        }
    }
    Ok(TrainOutcome {
        history,
        cancelled: false,
    })
}

/// Sets every masked-out parameter (`mask[i] == false`) to exactly zero.
pub fn apply_mask(theta: &mut [f64], mask: &[bool]) {
    for (t, keep) in theta.iter_mut().zip(mask) {
        if !keep {
            *t = 0.0;
        }
    }
}
