//! `[prune]`: how each trained model is pruned, and at which ratios.

use serde::{Deserialize, Serialize};

use super::error::{bad, ConfigError};

/// A single value or a list of them. Read through a `toml::Value` rather than an untagged
/// enum, so an element's own error ("unknown granularity ...") reaches the user instead of
/// "did not match any variant".
fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::Error;
    match toml::Value::deserialize(d)? {
        toml::Value::Array(items) => items
            .into_iter()
            .map(|x| T::deserialize(x).map_err(D::Error::custom))
            .collect(),
        one => T::deserialize(one)
            .map(|x| vec![x])
            .map_err(D::Error::custom),
    }
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
    /// Wanda (Sun et al. 2023): smallest `|W_ij| · ‖X_j‖₂` first, `X_j` the layer's input
    /// feature `j` over the calibration examples.
    Wanda,
    /// First-order Taylor `|g_i θ_i|` (Molchanov et al. 2019), `g` the calibration-loss
    /// gradient.
    Taylor,
    /// Layer-wise optimal brain surgeon with the layer Hessian `2XXᵀ + λI` of the calibration
    /// inputs: saliency `w² / [H⁻¹]_jj`, then the closed-form update of the kept weights
    /// (SparseGPT's rule).
    Obs,
    /// Blocks only: `1 − cos(h_in, h_out)` of the stream around a block over the calibration
    /// examples (ShortGPT's block influence).
    BlockInfluence,
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

impl PruneMethod {
    /// Whether the method needs calibration activations (`prune.calibration_samples`).
    pub fn needs_calibration(self) -> bool {
        matches!(
            self,
            PruneMethod::Wanda
                | PruneMethod::Taylor
                | PruneMethod::Obs
                | PruneMethod::BlockInfluence
        )
    }

    /// Whether the method needs the Hessian diagonal.
    pub fn needs_diagonal(self) -> bool {
        matches!(self, PruneMethod::Obd | PruneMethod::CurvatureGated)
    }
}

/// What one pruned unit is. Ratios are fractions of the units of the granularity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Granularity {
    /// Single weights (and biases with `include_bias`).
    #[default]
    Unstructured,
    /// `n` of every `m` consecutive weights along a layer's input dimension are removed
    /// (`"2:4"`): the sparsity is `n / m` whatever the ratio.
    NOfM { n: usize, m: usize },
    /// A hidden unit of a layer (see docs/method.md for what a unit is in each variant).
    Neuron,
    /// One attention head of the transformer.
    Head,
    /// A whole block (residual branch).
    Block,
}

impl Granularity {
    /// `unstructured`, `2:4`, `neuron`, `head`, `block`, as the config and the record write it.
    pub fn name(self) -> String {
        match self {
            Granularity::Unstructured => "unstructured".into(),
            Granularity::NOfM { n, m } => format!("{n}:{m}"),
            Granularity::Neuron => "neuron".into(),
            Granularity::Head => "head".into(),
            Granularity::Block => "block".into(),
        }
    }

    /// Whether the granularity removes whole units (neuron, head, block).
    pub fn is_structured(self) -> bool {
        matches!(
            self,
            Granularity::Neuron | Granularity::Head | Granularity::Block
        )
    }
}

impl std::fmt::Display for Granularity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.name())
    }
}

impl std::str::FromStr for Granularity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "unstructured" => Granularity::Unstructured,
            "neuron" => Granularity::Neuron,
            "head" => Granularity::Head,
            "block" => Granularity::Block,
            other => {
                let Some((a, b)) = other.split_once(':') else {
                    return Err(format!(
                        "unknown granularity {other:?}: expected \"unstructured\", \"N:M\" \
                         (e.g. \"2:4\"), \"neuron\", \"head\" or \"block\""
                    ));
                };
                let parse = |t: &str| t.trim().parse::<usize>().ok();
                match (parse(a), parse(b)) {
                    (Some(n), Some(m)) if n > 0 && n < m => Granularity::NOfM { n, m },
                    (Some(n), Some(m)) => {
                        return Err(format!(
                            "granularity \"{other}\" has N = {n}, M = {m}: N:M needs 0 < N < M"
                        ))
                    }
                    _ => {
                        return Err(format!(
                            "granularity {other:?} is not N:M with whole numbers, e.g. \"2:4\""
                        ))
                    }
                }
            }
        })
    }
}

impl Serialize for Granularity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Granularity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
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
    /// What a unit is: `"unstructured"`, `"N:M"`, `"neuron"`, `"head"`, `"block"`; every
    /// method runs at every granularity it is defined for.
    #[serde(alias = "granularity", deserialize_with = "one_or_many")]
    pub granularities: Vec<Granularity>,
    /// Training examples whose activations calibrate `wanda`, `taylor`, `obs` and
    /// `block_influence` (the first ones of the training split).
    pub calibration_samples: usize,
    /// `obs`: the damping `λ` of the layer Hessian `2XXᵀ + λI`, as a fraction of the mean of
    /// its diagonal (SparseGPT's `percdamp`).
    pub obs_damping: f64,
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
            granularities: vec![Granularity::Unstructured],
            calibration_samples: 128,
            obs_damping: 0.01,
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
    /// Checks `prune.granularities` against the `[model]` section: `head` needs the
    /// transformer, `block` at least two blocks, `N:M` a width that `M` divides. (The MLP stem's
    /// input width is the data's, checked once the data is in: `prune::granularity::check`.)
    pub fn validate_for(&self, model: &super::ModelConfig) -> Result<(), ConfigError> {
        let transformer = model.kind == super::ModelKind::Transformer;
        for g in &self.granularities {
            match *g {
                Granularity::Head if !transformer => {
                    return bad(
                        "prune.granularities",
                        "\"head\" prunes attention heads, and an MLP has none: use \
                         model.kind = \"transformer\" or drop \"head\"",
                    )
                }
                Granularity::Block if model.depth < 2 => {
                    return bad(
                        "prune.granularities",
                        format!(
                            "\"block\" at model.depth = {}: removing the only block leaves no \
                             network to compare; use depth >= 2 (e.g. 4) or drop \"block\"",
                            model.depth
                        ),
                    )
                }
                Granularity::NOfM { m, .. } => {
                    let mut widths = vec![("model.width", model.width)];
                    if transformer {
                        widths.push(("model.ff", model.ff_width()));
                    }
                    if let Some((key, w)) = widths.into_iter().find(|(_, w)| w % m != 0) {
                        return bad(
                            "prune.granularities",
                            format!(
                                "\"{g}\" needs every pruned layer's input width to be a multiple \
                                 of {m}; {key} = {w} is not"
                            ),
                        );
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks the `[prune]` keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.methods.is_empty() {
            return bad(
                "prune.methods",
                "must list at least one of \"magnitude\", \"obd\", \"curvature_gated\", \
                 \"wanda\", \"taylor\", \"obs\", \"block_influence\"",
            );
        }
        if self.granularities.is_empty() {
            return bad(
                "prune.granularities",
                "must list at least one of \"unstructured\", \"N:M\", \"neuron\", \"head\", \"block\"",
            );
        }
        if let Some(i) = (1..self.granularities.len())
            .find(|&i| self.granularities[..i].contains(&self.granularities[i]))
        {
            return bad(
                "prune.granularities",
                format!("entry {i} ({}) is listed twice", self.granularities[i]),
            );
        }
        if self.methods.iter().any(|m| m.needs_calibration()) && self.calibration_samples == 0 {
            return bad(
                "prune.calibration_samples",
                "is 0, but wanda, taylor, obs and block_influence need calibration examples: \
                 set it to at least 1 (e.g. 128)",
            );
        }
        if !(self.obs_damping > 0.0 && self.obs_damping.is_finite()) {
            return bad(
                "prune.obs_damping",
                format!("is {}, must be > 0 (e.g. 0.01)", self.obs_damping),
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
        assert_eq!(PruneMethod::BlockInfluence.name(), "block_influence");
    }

    #[test]
    fn granularities_parse_and_print_as_written() {
        let p: PruneConfig =
            toml::from_str(r#"granularities = ["unstructured", "2:4", "neuron", "head", "block"]"#)
                .unwrap();
        assert_eq!(
            p.granularities,
            vec![
                Granularity::Unstructured,
                Granularity::NOfM { n: 2, m: 4 },
                Granularity::Neuron,
                Granularity::Head,
                Granularity::Block
            ]
        );
        let names: Vec<String> = p.granularities.iter().map(|g| g.name()).collect();
        assert_eq!(names, ["unstructured", "2:4", "neuron", "head", "block"]);
        assert_eq!(
            PruneConfig::default().granularities,
            [Granularity::Unstructured]
        );
        let one: PruneConfig = toml::from_str(r#"granularity = "3:8""#).unwrap();
        assert_eq!(one.granularities, [Granularity::NOfM { n: 3, m: 8 }]);
    }

    #[test]
    fn n_of_m_needs_zero_below_n_below_m() {
        for bad in ["4:4", "5:4", "0:4", "a:4", "2:"] {
            let e = bad.parse::<Granularity>().unwrap_err();
            assert!(e.contains(bad), "{bad}: {e}");
        }
        assert!("4:4"
            .parse::<Granularity>()
            .unwrap_err()
            .contains("0 < N < M"));
        assert!("rows"
            .parse::<Granularity>()
            .unwrap_err()
            .contains("unknown granularity"));
    }

    #[test]
    fn calibration_methods_need_calibration_samples() {
        let p = PruneConfig {
            methods: vec![PruneMethod::Wanda],
            calibration_samples: 0,
            ..PruneConfig::default()
        };
        assert_eq!(key(&p).as_deref(), Some("prune.calibration_samples"));
        let p = PruneConfig {
            granularities: vec![Granularity::Neuron, Granularity::Neuron],
            ..PruneConfig::default()
        };
        assert_eq!(key(&p).as_deref(), Some("prune.granularities"));
    }
}
