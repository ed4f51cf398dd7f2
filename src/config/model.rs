//! `[model]`: the architecture of the residual/plain pair.

use serde::{Deserialize, Serialize};

use super::data::TextEncoding;
use super::error::{bad, ConfigError};
use crate::model::{Activation, ModelSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    #[default]
    Mlp,
    /// Pre-LayerNorm transformer encoder over token ids (needs `data.encoding = "tokens"`).
    Transformer,
}

impl ModelKind {
    /// The kind of model `spec` describes.
    pub fn of(spec: &ModelSpec) -> ModelKind {
        if spec.transformer.is_some() {
            ModelKind::Transformer
        } else {
            ModelKind::Mlp
        }
    }

    /// Whether this kind has exact Hessian-vector products (the MLP; `model::ModelSpec`
    /// answers the same for a built model).
    pub fn has_exact_products(self) -> bool {
        self == ModelKind::Mlp
    }

    /// `mlp` or `transformer`, as the config and the record write it.
    pub fn name(self) -> &'static str {
        crate::names::serde_name(&self)
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// The residual branch scale: a number, or `"learned"` (one trainable scalar per block,
/// starting at 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Alpha {
    Fixed(f64),
    Learned,
}

impl Alpha {
    /// The fixed value, or the learned scales' starting value.
    pub fn initial(self) -> f64 {
        match self {
            Alpha::Fixed(a) => a,
            Alpha::Learned => 1.0,
        }
    }

    pub fn is_learned(self) -> bool {
        self == Alpha::Learned
    }
}

impl std::fmt::Display for Alpha {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Alpha::Fixed(a) => write!(f, "{a}"),
            Alpha::Learned => f.write_str("learned"),
        }
    }
}

impl Serialize for Alpha {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Alpha::Fixed(a) => s.serialize_f64(*a),
            Alpha::Learned => s.serialize_str("learned"),
        }
    }
}

impl<'de> Deserialize<'de> for Alpha {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Alpha;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number (e.g. 1.0) or \"learned\"")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Alpha, E> {
                Ok(Alpha::Fixed(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Alpha, E> {
                Ok(Alpha::Fixed(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Alpha, E> {
                Ok(Alpha::Fixed(v as f64))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Alpha, E> {
                if v == "learned" {
                    Ok(Alpha::Learned)
                } else {
                    Err(E::custom(format!(
                        "`{v}` is not an alpha: write a number (e.g. 1.0) or \"learned\""
                    )))
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub kind: ModelKind,
    /// Hidden width of the stem and of every block.
    pub width: usize,
    /// Number of `width -> width` blocks (each wrapped in the skip for the residual variant).
    pub depth: usize,
    pub activation: Activation,
    /// Residual branch scale: `h + alpha * F(h)`; `"learned"` trains one scale per block
    /// (starting at 1) with the other parameters.
    pub alpha: Alpha,
    /// Also train, measure and prune the residual model at each of these `alpha` values
    /// (e.g. `[0, 0.25, 0.5, 1]`: from identity blocks to the full residual).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alpha_sweep: Vec<f64>,
    /// Attention heads (transformer); `width` must be a multiple.
    pub heads: usize,
    /// Hidden width of each block's MLP (transformer); 0 means 4 x `width`.
    pub ff: usize,
}

impl ModelConfig {
    /// The transformer's MLP width with the default resolved.
    pub fn ff_width(&self) -> usize {
        if self.ff == 0 {
            4 * self.width
        } else {
            self.ff
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            kind: ModelKind::Mlp,
            width: 20,
            depth: 1,
            activation: Activation::Relu,
            alpha: Alpha::Fixed(1.0),
            alpha_sweep: Vec::new(),
            heads: 2,
            ff: 0,
        }
    }
}

impl ModelConfig {
    /// Checks the `[model]` keys alone; [`ModelConfig::validate_input`] checks what it reads.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.width == 0 {
            return bad("model.width", "is 0, must be at least 1");
        }
        if self.depth == 0 {
            return bad(
                "model.depth",
                "is 0, must be at least 1 (the number of blocks, each wrapped in the skip in \
                 the residual model)",
            );
        }
        if !self.alpha.initial().is_finite() {
            return bad("model.alpha", "must be a finite number or \"learned\"");
        }
        if self.alpha_sweep.iter().any(|a| !a.is_finite()) {
            return bad("model.alpha_sweep", "every alpha must be a finite number");
        }
        if self.kind == ModelKind::Transformer {
            if self.heads == 0 || !self.width.is_multiple_of(self.heads) {
                return bad(
                    "model.heads",
                    format!(
                        "is {}, must be at least 1 and divide model.width = {}",
                        self.heads, self.width
                    ),
                );
            }
            if self.alpha.is_learned() {
                return bad(
                    "model.alpha",
                    "\"learned\" is for the MLP; give the transformer a number (e.g. 1.0)",
                );
            }
        }
        Ok(())
    }

    /// Checks that this model reads the features `data.encoding` gives: the transformer token
    /// ids, the MLP TF-IDF rows (or numeric tables).
    pub fn validate_input(&self, encoding: TextEncoding) -> Result<(), ConfigError> {
        match (self.kind, encoding) {
            (ModelKind::Transformer, TextEncoding::Tfidf) => bad(
                "model.kind",
                "\"transformer\" reads token ids: set data.encoding = \"tokens\" with a \
                 text source (movie_reviews, imdb, text_csv)",
            ),
            (ModelKind::Mlp, TextEncoding::Tokens) => bad(
                "data.encoding",
                "\"tokens\" gives token ids, which only model.kind = \"transformer\" \
                 reads; use \"tfidf\" for the MLP",
            ),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(m: &ModelConfig) -> Option<String> {
        m.validate().err().and_then(|e| e.key().map(str::to_string))
    }

    fn transformer() -> ModelConfig {
        ModelConfig {
            kind: ModelKind::Transformer,
            width: 12,
            ..ModelConfig::default()
        }
    }

    #[test]
    fn the_defaults_are_the_articles_mlp() {
        let m = ModelConfig::default();
        assert_eq!((m.kind, m.width, m.depth), (ModelKind::Mlp, 20, 1));
        assert_eq!(m.alpha, Alpha::Fixed(1.0));
        assert_eq!(m.ff_width(), 80);
        assert!(m.validate().is_ok());
        assert!(m.validate_input(TextEncoding::Tfidf).is_ok());
    }

    #[test]
    fn width_and_alphas_are_checked() {
        let m = ModelConfig {
            width: 0,
            ..ModelConfig::default()
        };
        assert_eq!(key(&m).as_deref(), Some("model.width"));
        let m = ModelConfig {
            alpha: Alpha::Fixed(f64::INFINITY),
            ..ModelConfig::default()
        };
        assert_eq!(key(&m).as_deref(), Some("model.alpha"));
        let m = ModelConfig {
            alpha_sweep: vec![0.5, f64::NAN],
            ..ModelConfig::default()
        };
        assert_eq!(key(&m).as_deref(), Some("model.alpha_sweep"));
    }

    #[test]
    fn the_transformer_needs_dividing_heads_a_fixed_alpha_and_tokens() {
        assert!(transformer().validate().is_ok());
        for heads in [0, 5] {
            let m = ModelConfig {
                heads,
                ..transformer()
            };
            assert_eq!(key(&m).as_deref(), Some("model.heads"), "{heads}");
        }
        let m = ModelConfig {
            alpha: Alpha::Learned,
            ..transformer()
        };
        assert_eq!(key(&m).as_deref(), Some("model.alpha"));
        let e = transformer()
            .validate_input(TextEncoding::Tfidf)
            .unwrap_err();
        assert_eq!(e.key(), Some("model.kind"));
        assert!(transformer().validate_input(TextEncoding::Tokens).is_ok());
        let e = ModelConfig::default()
            .validate_input(TextEncoding::Tokens)
            .unwrap_err();
        assert_eq!(e.key(), Some("data.encoding"));
    }

    #[test]
    fn alpha_reads_a_number_or_learned() {
        #[derive(Deserialize)]
        struct A {
            alpha: Alpha,
        }
        let a = |s: &str| toml::from_str::<A>(s).map(|a| a.alpha);
        assert_eq!(a("alpha = 0.5").unwrap(), Alpha::Fixed(0.5));
        assert_eq!(a("alpha = 2").unwrap(), Alpha::Fixed(2.0));
        assert_eq!(a("alpha = \"learned\"").unwrap(), Alpha::Learned);
        assert!(a("alpha = \"learnt\"").is_err());
        assert_eq!(Alpha::Learned.to_string(), "learned");
        assert_eq!(Alpha::Learned.initial(), 1.0);
    }
}
