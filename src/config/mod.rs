//! The experiment as the user writes it: TOML, every key defaulted, validated with errors that
//! name the file, the key path, the line and what is allowed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::{Activation, ModelSpec, TransformerShape};
use crate::tomlpos;

/// A config that could not be read or is not valid, located in its file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}: `{key}`: {message}")]
    Invalid {
        file: String,
        line: usize,
        key: String,
        message: String,
    },
    #[error("{file}: `{key}` (default): {message}")]
    InvalidDefault {
        file: String,
        key: String,
        message: String,
    },
}

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

fn one() -> usize {
    1
}

fn default_significance() -> f64 {
    0.05
}

/// Where the numbers are computed: `"cpu"`, `"cuda"` (GPU 0), `"cuda:N"`, or `"auto"` (CUDA
/// when this binary has it and a GPU answers, else the CPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(try_from = "String", into = "String")]
pub enum DeviceChoice {
    #[default]
    Cpu,
    Cuda(usize),
    Auto,
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(DeviceChoice::Cpu),
            "auto" => Ok(DeviceChoice::Auto),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(|| {
                    format!(
                        "unknown device `{s}`, expected \"cpu\", \"cuda\", \"cuda:N\" or \"auto\""
                    )
                }),
        }
    }
}

impl TryFrom<String> for DeviceChoice {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<DeviceChoice> for String {
    fn from(d: DeviceChoice) -> String {
        match d {
            DeviceChoice::Cpu => "cpu".into(),
            DeviceChoice::Auto => "auto".into(),
            DeviceChoice::Cuda(0) => "cuda".into(),
            DeviceChoice::Cuda(n) => format!("cuda:{n}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub name: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub device: DeviceChoice,
    /// Worker threads for the numerical kernels; 0 = one per core.
    #[serde(default)]
    pub threads: usize,
    /// Run the whole pair this many times, with seeds `seed, seed + 1, ...` (ignored when
    /// `seeds` is given). Two or more give mean ± sd and a verdict on each claim.
    #[serde(default = "one")]
    pub replicates: usize,
    /// Explicit seeds for the replicates (overrides `seed` and `replicates`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seeds: Vec<u64>,
    /// Level of the paired tests behind each verdict.
    #[serde(default = "default_significance")]
    pub significance: f64,
    #[serde(default)]
    pub data: DataConfig,
    #[serde(default)]
    pub model: ModelConfig,
    #[serde(default)]
    pub train: TrainConfig,
    #[serde(default)]
    pub hessian: HessianConfig,
    #[serde(default)]
    pub prune: PruneConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DataSource {
    /// The article's data: features ~ N(0, 1), labels uniform at random.
    #[default]
    Synthetic,
    /// Features ~ N(0, 1), labels = argmax of a random tanh network: something to learn.
    Teacher,
    /// A CSV table with a header; `label` names the class column.
    Csv,
    /// 569 x 30 Wisconsin diagnostic breast cancer table (bundled).
    BreastCancer,
    /// 10,568 rated movie-review sentences as TF-IDF bags of words (bundled).
    MovieReviews,
    /// A directory in the IMDB `aclImdb` layout (`path`): train from `train/{pos,neg}`, eval
    /// from `test/{pos,neg}`, files `ID_RATING.txt`; `eval_fraction` is ignored (the test split
    /// exists) and `limit` caps each split after a seeded shuffle.
    Imdb,
    /// A CSV file (`path`) with a header, a text column (`text_column`) and a class column
    /// (`label`); split like `movie_reviews`.
    TextCsv,
}

/// How texts become features (movie_reviews, imdb, text_csv).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TextEncoding {
    /// One row of `max_vocab` TF-IDF weights per text (unit L2 norm).
    #[default]
    Tfidf,
    /// `max_len` token ids per text, stored as `f64`: 0 = padding (at the end), 1 = unknown
    /// word, word `i` of the vocabulary = `i + 2`; longer texts keep their first `max_len`
    /// tokens.
    Tokens,
}

impl DataSource {
    /// Sources made of texts, which `data.encoding` applies to.
    pub fn is_text(self) -> bool {
        matches!(
            self,
            DataSource::MovieReviews | DataSource::Imdb | DataSource::TextCsv
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    pub source: DataSource,
    /// Examples drawn (synthetic, teacher).
    pub samples: usize,
    /// Input features (synthetic, teacher).
    pub features: usize,
    /// Classes (synthetic, teacher).
    pub classes: usize,
    /// Hidden width of the random teacher network.
    pub teacher_width: usize,
    /// CSV file (csv, text_csv) or `aclImdb` directory (imdb); relative paths are taken from
    /// the config's folder.
    pub path: Option<PathBuf>,
    /// Name of the CSV class column (csv, text_csv).
    pub label: String,
    /// Name of the CSV text column (text_csv).
    pub text_column: String,
    /// Fraction held out for evaluation; 0 evaluates on the training set (the article's choice).
    pub eval_fraction: f64,
    /// Standardise features with the training split's mean and sd (csv, breast_cancer).
    pub standardize: bool,
    /// Vocabulary size cap (movie_reviews, imdb, text_csv).
    pub max_vocab: usize,
    /// Minimum training-split count for a word to enter the vocabulary (movie_reviews, imdb,
    /// text_csv).
    pub min_count: usize,
    /// Use only the first N examples after shuffling (0 = all); handy for quick runs. For imdb
    /// it caps the train and the test split each.
    pub limit: usize,
    /// Text features (movie_reviews, imdb, text_csv): `tfidf` rows or `tokens` id sequences.
    pub encoding: TextEncoding,
    /// Token ids per text when `encoding = "tokens"` (truncated or padded to this length).
    pub max_len: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            source: DataSource::Synthetic,
            samples: 100,
            features: 10,
            classes: 2,
            teacher_width: 32,
            path: None,
            label: "label".into(),
            text_column: "text".into(),
            eval_fraction: 0.2,
            standardize: true,
            max_vocab: 1000,
            min_count: 2,
            limit: 0,
            encoding: TextEncoding::Tfidf,
            max_len: 64,
        }
    }
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HessianMethod {
    /// Dense up to `dense_limit` parameters, Lanczos + SLQ + Hutchinson above.
    #[default]
    Auto,
    /// Every eigenvalue from the dense Hessian.
    Dense,
    /// Top/bottom eigenvalues (Lanczos), density (SLQ), trace and variance (Hutchinson).
    Lanczos,
}

/// The forward scheme's relative step: near `sqrt(ε)`, where its O(h) truncation and its
/// `ε/h` rounding balance (~1e-8 each; docs/method.md).
pub const FORWARD_STEP: f64 = 1e-8;

/// Finite-difference scheme of the Hessian-vector product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FdScheme {
    /// `(g(θ + hv) − g(θ − hv)) / 2h`: truncation O(h²).
    #[default]
    Central,
    /// `(g(θ + hv) − g(θ)) / h`, `g(θ)` computed once: truncation O(h).
    Forward,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HessianConfig {
    pub method: HessianMethod,
    /// Examples the loss is averaged over (the first N of the training split); 0 = all.
    pub samples: usize,
    /// Largest parameter count the dense method accepts.
    pub dense_limit: usize,
    /// Histogram bins stored with the spectrum.
    pub bins: usize,
    /// Relative finite-difference step for Hessian-vector products (see docs/method.md).
    pub fd_step: f64,
    /// How Lanczos, SLQ and Hutchinson difference the gradient: `central` (two gradients per
    /// product at `fd_step`, error ~1e-10) or `forward` (one gradient per product after one at
    /// theta, at its own step [`FORWARD_STEP`], error ~1e-8). The dense Hessian and the pruning
    /// prediction are always central at `fd_step`.
    pub fd_scheme: FdScheme,
    /// Largest eigenvalues Lanczos reports.
    pub top_k: usize,
    /// Smallest eigenvalues Lanczos reports.
    pub bottom_k: usize,
    /// Most Lanczos steps (each one Hessian-vector product, `lanczos_steps × n` floats kept).
    pub lanczos_steps: usize,
    /// Lanczos stops once every wanted Ritz value has residual `<= tol · max(1, |λ|max)`.
    pub tol: f64,
    /// SLQ: independent random starts for the spectral density.
    pub slq_runs: usize,
    /// SLQ: Lanczos steps per start.
    pub slq_steps: usize,
    /// SLQ: Gaussian broadening in eigenvalue units; 0 = 1% of the Ritz range.
    pub sigma: f64,
    /// SLQ: density grid points.
    pub grid: usize,
    /// Hutchinson: most probes for trace and tr(H²).
    pub hutchinson_samples: usize,
    /// Hutchinson: stop once the relative standard error of both traces is under this.
    pub hutchinson_tol: f64,
    /// Also compute the spectrum of each layer's diagonal block.
    pub per_layer: bool,
    /// Also compute the top eigenvalue on a second, disjoint batch of `samples` examples and
    /// report the difference (a stability check; needs `samples` > 0 and enough data).
    pub check_batch: bool,
}

impl HessianConfig {
    /// The step of the Hessian-vector products `fd_scheme` asks for (Lanczos, SLQ,
    /// Hutchinson).
    pub fn hvp_step(&self) -> f64 {
        match self.fd_scheme {
            FdScheme::Central => self.fd_step,
            FdScheme::Forward => FORWARD_STEP,
        }
    }
}

impl Default for HessianConfig {
    fn default() -> Self {
        HessianConfig {
            method: HessianMethod::Auto,
            samples: 0,
            dense_limit: 3000,
            bins: 40,
            fd_step: 1e-5,
            fd_scheme: FdScheme::Central,
            top_k: 5,
            bottom_k: 5,
            lanczos_steps: 100,
            tol: 1e-6,
            slq_runs: 10,
            slq_steps: 80,
            sigma: 0.0,
            grid: 400,
            hutchinson_samples: 200,
            hutchinson_tol: 0.01,
            per_layer: false,
            check_batch: false,
        }
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

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let src = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut cfg = Config::parse(&src, &path.display().to_string())?;
        // A relative CSV path means "next to the config", wherever the tool is started.
        if let Some(p) = &cfg.data.path {
            if p.is_relative() {
                if let Some(dir) = path.parent() {
                    cfg.data.path = Some(dir.join(p));
                }
            }
        }
        Ok(cfg)
    }

    /// Parses and validates TOML text; `file` names it in errors.
    pub fn parse(src: &str, file: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(src).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            let (line, _) = tomlpos::line_col(src, offset);
            let key = tomlpos::path_at(src, offset).unwrap_or_else(|| "(top level)".into());
            ConfigError::Invalid {
                file: file.to_string(),
                line,
                key,
                message: e.message().trim().to_string(),
            }
        })?;
        cfg.validate().map_err(|(key, message)| {
            let parts: Vec<&str> = key.split('.').collect();
            match tomlpos::line_of(src, &parts) {
                Some(line) => ConfigError::Invalid {
                    file: file.to_string(),
                    line,
                    key,
                    message,
                },
                None => ConfigError::InvalidDefault {
                    file: file.to_string(),
                    key,
                    message,
                },
            }
        })?;
        Ok(cfg)
    }

    /// Checks ranges and combinations; the error is `(key path, what is allowed)`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        fn bad(key: &str, msg: impl Into<String>) -> Result<(), (String, String)> {
            Err((key.to_string(), msg.into()))
        }
        let finite_pos = |x: f64| x.is_finite() && x > 0.0;
        if self.name.trim().is_empty() {
            return bad("name", "must not be empty");
        }
        if self
            .name
            .chars()
            .any(|c| !(c.is_alphanumeric() || c == '-' || c == '_' || c == '.'))
        {
            return bad(
                "name",
                "may hold letters, digits, '-', '_' and '.' only (it becomes a file name)",
            );
        }
        let d = &self.data;
        if matches!(d.source, DataSource::Synthetic | DataSource::Teacher) {
            if d.samples < 2 {
                return bad(
                    "data.samples",
                    format!("is {}, must be at least 2", d.samples),
                );
            }
            if d.features == 0 {
                return bad("data.features", "is 0, must be at least 1");
            }
            if d.classes < 2 {
                return bad(
                    "data.classes",
                    format!("is {}, must be at least 2", d.classes),
                );
            }
            if d.source == DataSource::Teacher && d.teacher_width == 0 {
                return bad("data.teacher_width", "is 0, must be at least 1");
            }
        }
        if d.path.is_none() {
            let what = match d.source {
                DataSource::Csv => Some(("csv", "a CSV file with a header")),
                DataSource::TextCsv => Some((
                    "text_csv",
                    "a CSV file with a header holding a text and a label column",
                )),
                DataSource::Imdb => Some((
                    "imdb",
                    "the aclImdb directory holding train/pos, train/neg, test/pos, test/neg",
                )),
                _ => None,
            };
            if let Some((source, file)) = what {
                return bad(
                    "data.path",
                    format!("is required when data.source = \"{source}\" (path to {file})"),
                );
            }
        }
        if d.source == DataSource::TextCsv {
            if d.text_column.trim().is_empty() {
                return bad(
                    "data.text_column",
                    "must not be empty (the CSV's text column)",
                );
            }
            if d.text_column == d.label {
                return bad(
                    "data.text_column",
                    format!(
                        "is `{}`, the same column as data.label: name the text and the class \
                         columns apart",
                        d.text_column
                    ),
                );
            }
        }
        if d.encoding == TextEncoding::Tokens {
            if !d.source.is_text() {
                return bad(
                    "data.encoding",
                    "\"tokens\" needs a text source (movie_reviews, imdb or text_csv); use \
                     \"tfidf\" or remove the key",
                );
            }
            if d.max_len == 0 {
                return bad("data.max_len", "is 0, must be at least 1");
            }
        }
        if !(0.0..1.0).contains(&d.eval_fraction) || d.eval_fraction.is_nan() {
            return bad(
                "data.eval_fraction",
                format!(
                    "is {}, must be in [0, 1) (0 evaluates on the training set)",
                    d.eval_fraction
                ),
            );
        }
        if d.max_vocab == 0 {
            return bad("data.max_vocab", "is 0, must be at least 1");
        }
        let m = &self.model;
        if m.width == 0 {
            return bad("model.width", "is 0, must be at least 1");
        }
        if !m.alpha.initial().is_finite() {
            return bad("model.alpha", "must be a finite number or \"learned\"");
        }
        if m.alpha_sweep.iter().any(|a| !a.is_finite()) {
            return bad("model.alpha_sweep", "every alpha must be a finite number");
        }
        if m.kind == ModelKind::Transformer {
            if m.heads == 0 || !m.width.is_multiple_of(m.heads) {
                return bad(
                    "model.heads",
                    format!(
                        "is {}, must be at least 1 and divide model.width = {}",
                        m.heads, m.width
                    ),
                );
            }
            if m.alpha.is_learned() {
                return bad(
                    "model.alpha",
                    "\"learned\" is for the MLP; give the transformer a number (e.g. 1.0)",
                );
            }
        }
        match (m.kind, self.data.encoding) {
            (ModelKind::Transformer, TextEncoding::Tfidf) => {
                return bad(
                    "model.kind",
                    "\"transformer\" reads token ids: set data.encoding = \"tokens\" with a \
                     text source (movie_reviews, imdb, text_csv)",
                )
            }
            (ModelKind::Mlp, TextEncoding::Tokens) => {
                return bad(
                    "data.encoding",
                    "\"tokens\" gives token ids, which only model.kind = \"transformer\" \
                     reads; use \"tfidf\" for the MLP",
                )
            }
            _ => {}
        }
        let t = &self.train;
        if !finite_pos(t.lr) {
            return bad("train.lr", format!("is {}, must be > 0", t.lr));
        }
        if t.batch_size == 0 {
            return bad("train.batch_size", "is 0, must be at least 1");
        }
        if !(0.0..1.0).contains(&t.momentum) {
            return bad(
                "train.momentum",
                format!("is {}, must be in [0, 1)", t.momentum),
            );
        }
        if !(0.0..1.0).contains(&t.beta1) {
            return bad("train.beta1", format!("is {}, must be in [0, 1)", t.beta1));
        }
        if !(0.0..1.0).contains(&t.beta2) {
            return bad("train.beta2", format!("is {}, must be in [0, 1)", t.beta2));
        }
        if !finite_pos(t.eps) {
            return bad("train.eps", format!("is {}, must be > 0", t.eps));
        }
        if !(t.weight_decay >= 0.0 && t.weight_decay.is_finite()) {
            return bad("train.weight_decay", "must be >= 0");
        }
        if !(t.l1 >= 0.0 && t.l1.is_finite()) {
            return bad("train.l1", "must be >= 0");
        }
        let h = &self.hessian;
        if h.bins == 0 {
            return bad("hessian.bins", "is 0, must be at least 1");
        }
        if !(h.fd_step > 0.0 && h.fd_step < 1e-2) {
            return bad(
                "hessian.fd_step",
                format!(
                    "is {}, must be in (0, 1e-2): larger steps cross ReLU kinks",
                    h.fd_step
                ),
            );
        }
        if h.lanczos_steps < 2 {
            return bad("hessian.lanczos_steps", "must be at least 2");
        }
        if h.top_k + h.bottom_k == 0 {
            return bad(
                "hessian.top_k",
                "top_k and bottom_k are both 0: ask for at least one",
            );
        }
        if !(h.tol >= 0.0 && h.tol.is_finite()) {
            return bad("hessian.tol", "must be >= 0 (0 runs every Lanczos step)");
        }
        if h.slq_runs == 0 || h.slq_steps < 2 {
            return bad(
                "hessian.slq_runs",
                "slq_runs must be >= 1 and slq_steps >= 2",
            );
        }
        if !(h.sigma >= 0.0 && h.sigma.is_finite()) {
            return bad(
                "hessian.sigma",
                "must be >= 0 (0 picks 1% of the Ritz range)",
            );
        }
        if h.grid < 2 {
            return bad("hessian.grid", "must be at least 2");
        }
        if h.hutchinson_samples < 2 {
            return bad("hessian.hutchinson_samples", "must be at least 2");
        }
        if !(h.hutchinson_tol > 0.0 && h.hutchinson_tol.is_finite()) {
            return bad("hessian.hutchinson_tol", "must be > 0");
        }
        if h.check_batch && h.samples == 0 {
            return bad(
                "hessian.check_batch",
                "needs hessian.samples > 0: the check uses the next `samples` examples",
            );
        }
        if self.replicates == 0 {
            return bad("replicates", "is 0, must be at least 1");
        }
        if !(self.significance > 0.0 && self.significance < 0.5) {
            return bad("significance", "must be in (0, 0.5), e.g. 0.05");
        }
        let p = &self.prune;
        if p.methods.is_empty() {
            return bad(
                "prune.methods",
                "must list at least one of \"magnitude\", \"obd\", \"curvature_gated\"",
            );
        }
        if !(p.curvature_quantile > 0.0 && p.curvature_quantile <= 1.0) {
            return bad("prune.curvature_quantile", "must be in (0, 1]");
        }
        if p.diagonal_samples == 0 {
            return bad("prune.diagonal_samples", "is 0, must be at least 1");
        }
        if let Some(lr) = p.finetune_lr {
            if !(lr > 0.0 && lr.is_finite()) {
                return bad("prune.finetune_lr", format!("is {lr}, must be > 0"));
            }
        }
        if p.ratios.is_empty() {
            return bad(
                "prune.ratios",
                "must list at least one ratio, e.g. [0.1, 0.3, 0.5]",
            );
        }
        for (i, r) in p.ratios.iter().enumerate() {
            if !(*r > 0.0 && *r < 1.0) {
                return bad(
                    "prune.ratios",
                    format!("entry {i} is {r}, every ratio must be in (0, 1)"),
                );
            }
        }
        if matches!(self.device, DeviceChoice::Cuda(_)) && !cfg!(feature = "cuda") {
            return bad(
                "device",
                "this binary was built without CUDA: rebuild with \
                 `cargo build --release --features cuda` on a machine with the CUDA toolkit \
                 (nvcc, nvidia-smi; see docs/gpu.md), or use device = \"cpu\"",
            );
        }
        Ok(())
    }

    /// The model this config describes, given the data's shape: `features` inputs (token
    /// positions for the transformer), `classes`, and the token vocabulary when the data is
    /// token ids.
    pub fn model_spec(&self, features: usize, classes: usize, vocab: Option<usize>) -> ModelSpec {
        let m = &self.model;
        ModelSpec {
            inputs: features,
            width: m.width,
            depth: m.depth,
            classes,
            activation: m.activation,
            alpha: m.alpha.initial(),
            learned_alpha: m.alpha.is_learned(),
            transformer: (m.kind == ModelKind::Transformer).then(|| TransformerShape {
                vocab: vocab.unwrap_or(0),
                max_len: features,
                heads: m.heads,
                ff: m.ff_width(),
            }),
        }
    }

    /// The seeds of the replicates: `seeds` when given, else `seed, seed + 1, ...`.
    pub fn seed_list(&self) -> Vec<u64> {
        if self.seeds.is_empty() {
            (0..self.replicates.max(1) as u64)
                .map(|i| self.seed.wrapping_add(i))
                .collect()
        } else {
            self.seeds.clone()
        }
    }

    /// The config as TOML, every default written out.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a config always serialises")
    }
}

/// A commented template holding every key with its default, for `resprune-tui new NAME`.
pub fn template(name: &str) -> String {
    let d = Config {
        name: name.to_string(),
        seed: 0,
        device: DeviceChoice::Cpu,
        threads: 0,
        replicates: 1,
        seeds: Vec::new(),
        significance: 0.05,
        data: DataConfig::default(),
        model: ModelConfig::default(),
        train: TrainConfig::default(),
        hessian: HessianConfig::default(),
        prune: PruneConfig::default(),
    };
    let ratios = d
        .prune
        .ratios
        .iter()
        .map(|r| format!("{r}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"# resprune-tui experiment: a residual and a plain model of the same shape, trained from
# the same theta on the same data order; Hessian spectrum of each; pruning sweep.
# Every key is shown with its default. Run it with: resprune-tui run {name}.toml

name = "{name}"
seed = {seed}          # data, split, init and batch order all follow from it
device = "cpu"     # cpu | cuda (needs a build with --features cuda) | auto
threads = 0        # kernel threads, 0 = one per core (records are reproducible per thread count)
replicates = 1     # run the pair with seeds seed, seed+1, ...; 2+ give mean ± sd and verdicts
# seeds = [0, 1, 2, 3, 4]   # explicit seeds instead of seed/replicates
significance = 0.05        # level of the paired tests behind each verdict

[data]
source = "synthetic"   # synthetic | teacher | csv | breast_cancer | movie_reviews | imdb | text_csv
samples = {samples}          # synthetic, teacher: examples drawn
features = {features}          # synthetic, teacher: x ~ N(0, 1) in this many dimensions
classes = {classes}            # synthetic, teacher
teacher_width = {tw}     # teacher: hidden width of the random labelling network
# path = "table.csv"   # csv, text_csv: file with a header row; imdb: the aclImdb folder
                       # (relative to this config)
label = "{label}"        # csv, text_csv: name of the class column
text_column = "{tc}"   # text_csv: name of the text column
eval_fraction = {ef}   # held out for evaluation; 0 = evaluate on the training set
                       # (imdb: ignored, eval is the test/ split)
standardize = true     # csv, breast_cancer: z-score with training-split statistics
max_vocab = {mv}       # movie_reviews, imdb, text_csv: vocabulary size cap
min_count = {mc}         # movie_reviews, imdb, text_csv: minimum word count in the training split
limit = 0              # use only the first N shuffled examples (0 = all; imdb: per split)
encoding = "tfidf"     # movie_reviews, imdb, text_csv: tfidf | tokens (max_len ids per text)
max_len = {ml}          # tokens: ids per text (0 = pad, 1 = unknown word, word i = i + 2)

[model]
kind = "mlp"           # mlp | transformer (needs data.encoding = "tokens")
width = {width}            # mlp: stem Linear(inputs, width), then `depth` blocks Linear(width, width)
                       # transformer: model width d, `depth` attention + MLP blocks
depth = {depth}
activation = "relu"    # relu | gelu | tanh
alpha = {alpha}            # residual: h + alpha * F(h); plain: F(h); "learned": one scale per block (mlp)
heads = {heads}              # transformer: attention heads (divides width)
ff = {ff}                 # transformer: MLP hidden width (0 = 4 x width)
# alpha_sweep = [0.0, 0.25, 0.5, 1.0]   # also the residual model at each alpha (plain -> residual)

[train]
optimizer = "adam"     # adam | sgd
lr = {lr}
epochs = {epochs}
batch_size = {bs}
shuffle = true
momentum = 0.0         # sgd
beta1 = 0.9            # adam
beta2 = 0.999          # adam
eps = 1e-8             # adam
weight_decay = 0.0
l1 = 0.0               # l1 * sum |w| over weights

[hessian]
method = "auto"        # auto: dense up to dense_limit, else lanczos | dense | lanczos
samples = 0            # examples the loss is averaged over (first N of the train split), 0 = all
dense_limit = {dl}
bins = {bins}              # histogram bins stored in the record
fd_step = 1e-5         # relative central-difference step of the Hessian-vector product
fd_scheme = "central"  # central | forward (one gradient per product above dense_limit, error ~1e-8)
top_k = 5              # lanczos: largest eigenvalues
bottom_k = 5           # lanczos: smallest eigenvalues
lanczos_steps = 100    # lanczos: most steps (keeps steps x params floats)
tol = 1e-6             # lanczos: Ritz residual tolerance, relative to max |lambda|
slq_runs = 10          # spectral density: random starts
slq_steps = 80         # spectral density: Lanczos steps per start
sigma = 0.0            # spectral density: Gaussian width, 0 = 1% of the Ritz range
grid = 400             # spectral density: grid points
hutchinson_samples = 200   # trace / variance: most probes
hutchinson_tol = 0.01      # trace / variance: stop at this relative standard error
per_layer = false      # also the spectrum of each layer's diagonal block
check_batch = false    # also the top eigenvalue on a second disjoint batch (needs samples > 0)

[prune]
methods = ["magnitude"]    # any of "magnitude", "obd", "curvature_gated"
scope = "global"       # global | layer
include_bias = false   # the article prunes biases too
include_embeddings = false   # transformer: prune token/position embeddings too
ratios = [{ratios}]
curvature_quantile = 0.5   # curvature_gated: eligible when H_ii is below this quantile of its layer
diagonal_samples = 100     # Hutchinson probes for diag(H) above hessian.dense_limit
finetune_epochs = 0        # train after pruning with the mask held (0 = no fine-tuning)
# finetune_lr = 1e-3       # default: train.lr
"#,
        name = d.name,
        seed = d.seed,
        samples = d.data.samples,
        features = d.data.features,
        classes = d.data.classes,
        tw = d.data.teacher_width,
        label = d.data.label,
        ef = d.data.eval_fraction,
        mv = d.data.max_vocab,
        mc = d.data.min_count,
        tc = d.data.text_column,
        ml = d.data.max_len,
        width = d.model.width,
        depth = d.model.depth,
        alpha = d.model.alpha,
        heads = d.model.heads,
        ff = d.model.ff,
        lr = d.train.lr,
        epochs = d.train.epochs,
        bs = d.train.batch_size,
        dl = d.hessian.dense_limit,
        bins = d.hessian.bins,
    )
}
