//! `[train]`: the optimizer both models are trained with.

use serde::{Deserialize, Serialize};

use super::error::{bad, ConfigError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Optimizer {
    #[default]
    Adam,
    Sgd,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub optimizer: Optimizer,
    pub lr: f64,
    pub epochs: usize,
    pub batch_size: usize,
    /// Reshuffle the training set every epoch (seeded; same order for residual and plain).
    pub shuffle: bool,
    /// SGD momentum (0 = plain SGD).
    pub momentum: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// L2 penalty added to the gradient (PyTorch's `weight_decay`).
    pub weight_decay: f64,
    /// L1 penalty on weights (not biases): `l1 * sum |w|` is added to the loss.
    pub l1: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            optimizer: Optimizer::Adam,
            lr: 1e-3,
            epochs: 10,
            batch_size: 10,
            shuffle: true,
            momentum: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            l1: 0.0,
        }
    }
}

/// A positive finite number.
fn finite_pos(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

impl TrainConfig {
    /// Checks the `[train]` keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !finite_pos(self.lr) {
            return bad("train.lr", format!("is {}, must be > 0", self.lr));
        }
        if self.batch_size == 0 {
            return bad("train.batch_size", "is 0, must be at least 1");
        }
        let unit = [
            ("train.momentum", self.momentum),
            ("train.beta1", self.beta1),
            ("train.beta2", self.beta2),
        ];
        for (key, x) in unit {
            if !(0.0..1.0).contains(&x) {
                return bad(key, format!("is {x}, must be in [0, 1)"));
            }
        }
        if !finite_pos(self.eps) {
            return bad("train.eps", format!("is {}, must be > 0", self.eps));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad("train.weight_decay", "must be >= 0");
        }
        if !(self.l1 >= 0.0 && self.l1.is_finite()) {
            return bad("train.l1", "must be >= 0");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(t: &TrainConfig) -> Option<String> {
        t.validate().err().and_then(|e| e.key().map(str::to_string))
    }

    #[test]
    fn the_defaults_are_pytorchs_adam() {
        let t = TrainConfig::default();
        assert_eq!(t.optimizer, Optimizer::Adam);
        assert_eq!((t.lr, t.beta1, t.beta2, t.eps), (1e-3, 0.9, 0.999, 1e-8));
        assert!(t.validate().is_ok());
    }

    #[test]
    fn each_key_out_of_range_is_named() {
        let d = TrainConfig::default;
        let cases = [
            ("train.lr", TrainConfig { lr: 0.0, ..d() }),
            (
                "train.lr",
                TrainConfig {
                    lr: f64::NAN,
                    ..d()
                },
            ),
            (
                "train.batch_size",
                TrainConfig {
                    batch_size: 0,
                    ..d()
                },
            ),
            (
                "train.momentum",
                TrainConfig {
                    momentum: 1.0,
                    ..d()
                },
            ),
            ("train.beta1", TrainConfig { beta1: -0.1, ..d() }),
            ("train.beta2", TrainConfig { beta2: 1.0, ..d() }),
            ("train.eps", TrainConfig { eps: 0.0, ..d() }),
            (
                "train.weight_decay",
                TrainConfig {
                    weight_decay: -1.0,
                    ..d()
                },
            ),
            (
                "train.l1",
                TrainConfig {
                    l1: f64::INFINITY,
                    ..d()
                },
            ),
        ];
        for (want, t) in cases {
            assert_eq!(key(&t).as_deref(), Some(want), "{t:?}");
        }
        let e = TrainConfig { lr: -1e-3, ..d() }.validate().unwrap_err();
        assert_eq!(e.to_string(), "`train.lr` is -0.001, must be > 0");
    }
}
