//! `[prune]`: how each trained model is pruned, and at which ratios.

use serde::{Deserialize, Serialize};

use super::error::{bad, ConfigError};

/// A single value or a list of them.
fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        One(T),
        Many(Vec<T>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(x) => vec![x],
        OneOrMany::Many(v) => v,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PruneMethod {
    /// Smallest `|θ_i|` first.
    #[default]
    Magnitude,
    /// Optimal Brain Damage: smallest saliency `½ H_ii θ_i²` first.
    Obd,
    /// The article's §7.1 rule made precise: only parameters whose `H_ii` is below the
    /// `curvature_quantile` of their layer are eligible; those are pruned by magnitude.
    CurvatureGated,
}

impl PruneMethod {
    /// `magnitude`, `obd`, `curvature_gated`, as the config and the record write it.
    pub fn name(self) -> &'static str {
        crate::names::serde_name(&self)
    }
}

impl std::fmt::Display for PruneMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PruneScope {
    /// One threshold over every eligible parameter.
    #[default]
    Global,
    /// The same ratio within each layer.
    Layer,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PruneConfig {
    /// Scores to prune by; several give one table with a column block per method.
    /// (`method = "magnitude"`, a single value, is read too.)
    #[serde(alias = "method", deserialize_with = "one_or_many")]
    pub methods: Vec<PruneMethod>,
    pub scope: PruneScope,
    /// Prune biases too (the article does); otherwise weights only.
    pub include_bias: bool,
    /// Prune the transformer's token and position embeddings too.
    pub include_embeddings: bool,
    /// Fractions of the eligible parameters set to zero, each in (0, 1).
    pub ratios: Vec<f64>,
    /// `curvature_gated`: a parameter is eligible when its `H_ii` is below this quantile of
    /// its layer's.
    pub curvature_quantile: f64,
    /// Hutchinson probes for the Hessian diagonal when the model is above `dense_limit`.
    pub diagonal_samples: usize,
    /// Epochs of training after pruning, masks held (0 = none).
    pub finetune_epochs: usize,
    /// Learning rate of the fine-tuning (default: train.lr).
    pub finetune_lr: Option<f64>,
}

impl Default for PruneConfig {
    fn default() -> Self {
        PruneConfig {
            methods: vec![PruneMethod::Magnitude],
            scope: PruneScope::Global,
            include_bias: false,
            include_embeddings: false,
            ratios: vec![0.1, 0.2, 0.3, 0.4, 0.5],
            curvature_quantile: 0.5,
            diagonal_samples: 100,
            finetune_epochs: 0,
            finetune_lr: None,
        }
    }
}

impl PruneConfig {
    /// Checks the `[prune]` keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.methods.is_empty() {
            return bad(
                "prune.methods",
                "must list at least one of \"magnitude\", \"obd\", \"curvature_gated\"",
            );
        }
        if !(self.curvature_quantile > 0.0 && self.curvature_quantile <= 1.0) {
            return bad("prune.curvature_quantile", "must be in (0, 1]");
        }
        if self.diagonal_samples == 0 {
            return bad("prune.diagonal_samples", "is 0, must be at least 1");
        }
        if let Some(lr) = self.finetune_lr {
            if !(lr > 0.0 && lr.is_finite()) {
                return bad("prune.finetune_lr", format!("is {lr}, must be > 0"));
            }
        }
        if self.ratios.is_empty() {
            return bad(
                "prune.ratios",
                "must list at least one ratio, e.g. [0.1, 0.3, 0.5]",
            );
        }
        for (i, r) in self.ratios.iter().enumerate() {
            if !(*r > 0.0 && *r < 1.0) {
                return bad(
                    "prune.ratios",
                    format!("entry {i} is {r}, every ratio must be in (0, 1)"),
                );
            }
        }
        // checkpoint tensor names carry the ratio to 6 decimals (record::checkpoint::row_key)
        for (i, a) in self.ratios.iter().enumerate() {
            if let Some(j) = (0..i).find(|&j| format!("{:.6}", self.ratios[j]) == format!("{a:.6}"))
            {
                return bad(
                    "prune.ratios",
                    format!(
                        "entries {j} and {i} ({} and {a}) are the same to 6 decimals; make them \
                         differ by at least 1e-6 (checkpoints name a row by its ratio to 6 \
                         decimals)",
                        self.ratios[j]
                    ),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: &PruneConfig) -> Option<String> {
        p.validate().err().and_then(|e| e.key().map(str::to_string))
    }

    #[test]
    fn the_defaults_prune_weights_by_magnitude_from_a_tenth_to_a_half() {
        let p = PruneConfig::default();
        assert_eq!(p.methods, vec![PruneMethod::Magnitude]);
        assert_eq!(p.ratios, vec![0.1, 0.2, 0.3, 0.4, 0.5]);
        assert!(!p.include_bias);
        assert!(p.validate().is_ok());
    }

    #[test]
    fn each_key_out_of_range_is_named() {
        let d = PruneConfig::default;
        let cases = [
            (
                "prune.methods",
                PruneConfig {
                    methods: vec![],
                    ..d()
                },
            ),
            (
                "prune.curvature_quantile",
                PruneConfig {
                    curvature_quantile: 0.0,
                    ..d()
                },
            ),
            (
                "prune.diagonal_samples",
                PruneConfig {
                    diagonal_samples: 0,
                    ..d()
                },
            ),
            (
                "prune.finetune_lr",
                PruneConfig {
                    finetune_lr: Some(0.0),
                    ..d()
                },
            ),
            (
                "prune.ratios",
                PruneConfig {
                    ratios: vec![],
                    ..d()
                },
            ),
            (
                "prune.ratios",
                PruneConfig {
                    ratios: vec![0.1, 1.0],
                    ..d()
                },
            ),
        ];
        for (want, p) in cases {
            assert_eq!(key(&p).as_deref(), Some(want), "{p:?}");
        }
        let e = PruneConfig {
            ratios: vec![0.1, -0.2],
            ..d()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "`prune.ratios` entry 1 is -0.2, every ratio must be in (0, 1)"
        );
    }

    #[test]
    fn ratios_the_same_to_six_decimals_are_refused() {
        let e = PruneConfig {
            ratios: vec![0.1, 0.3, 0.3000001],
            ..PruneConfig::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("entries 1 and 2 (0.3 and 0.3000001)"), "{e}");
        let ok = PruneConfig {
            ratios: vec![0.3, 0.300001],
            ..PruneConfig::default()
        };
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn one_method_or_a_list_of_them_is_read() {
        let p: PruneConfig = toml::from_str("method = \"obd\"").unwrap();
        assert_eq!(p.methods, vec![PruneMethod::Obd]);
        let p: PruneConfig = toml::from_str("methods = [\"obd\", \"curvature_gated\"]").unwrap();
        assert_eq!(
            p.methods,
            vec![PruneMethod::Obd, PruneMethod::CurvatureGated]
        );
        assert_eq!(PruneMethod::CurvatureGated.name(), "curvature_gated");
    }
}
