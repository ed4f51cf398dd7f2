//! The top level of a config: the experiment's name, seeds and device, and its sections.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{bad, ConfigError};
use super::{
    DataConfig, HessianConfig, ModelConfig, ModelKind, PruneConfig, SweepConfig, TrainConfig,
};
use crate::model::{ModelSpec, TransformerShape};

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
    /// Keys mapped to lists: every combination is an experiment of its own (`resprune-tui
    /// sweep`). Empty in a record: a record holds one point's resolved config.
    #[serde(default, skip_serializing_if = "SweepConfig::is_empty")]
    pub sweep: SweepConfig,
}

impl Config {
    /// The config called `name` with every other key at its default (what a file holding only
    /// `name = "..."` gives).
    pub fn named(name: &str) -> Config {
        Config {
            name: name.to_string(),
            seed: 0,
            device: DeviceChoice::default(),
            threads: 0,
            replicates: one(),
            seeds: Vec::new(),
            significance: default_significance(),
            data: DataConfig::default(),
            model: ModelConfig::default(),
            train: TrainConfig::default(),
            hessian: HessianConfig::default(),
            prune: PruneConfig::default(),
            sweep: SweepConfig::default(),
        }
    }

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

    /// Parses and validates TOML text; `file` names it in errors, with the line of the key
    /// where the text writes it.
    pub fn parse(src: &str, file: &str) -> Result<Config, ConfigError> {
        if src.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                file: file.to_string(),
                bytes: src.len(),
            });
        }
        let mut cfg: Config =
            toml::from_str(src).map_err(|e| ConfigError::from_toml(&e, file, src))?;
        cfg.sweep.order_as_in(src);
        cfg.validate().map_err(|e| e.in_file(file, src))?;
        Ok(cfg)
    }

    /// Checks ranges and combinations, section by section; the error names the key path and
    /// what is allowed (not yet located in a file: [`ConfigError::in_file`] does that).
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_name(&self.name)?;
        validate_threads(self.threads)?;
        self.data.validate()?;
        self.model.validate()?;
        self.model.validate_input(self.data.encoding)?;
        self.train.validate()?;
        self.hessian.validate()?;
        self.hessian.validate_for(&self.model)?;
        if self.replicates == 0 {
            return bad("replicates", "is 0, must be at least 1");
        }
        if !(self.significance > 0.0 && self.significance < 0.5) {
            return bad("significance", "must be in (0, 0.5), e.g. 0.05");
        }
        self.prune.validate()?;
        self.prune.validate_for(&self.model)?;
        self.sweep.validate()?;
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

/// The name becomes a file name: not empty, letters, digits, '-', '_' and '.' only.
/// Longest `name`: records are `<name>-<UTC stamp>[-N].toml` (and `.safetensors`), and a
/// file name holds at most 255 bytes.
pub const MAX_NAME: usize = 200;

/// Most kernel threads per core a run may ask for: beyond it a run only slows, and a pool of
/// hundreds of thousands of threads aborts the process when their stacks cannot be had.
pub const MAX_THREADS_PER_CORE: usize = 64;

/// Largest config file read: a config is a few hundred lines; megabytes of text are a
/// mistake (or an attack on the parser), refused before parsing.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

fn validate_threads(threads: usize) -> Result<(), ConfigError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let most = MAX_THREADS_PER_CORE * cores;
    if threads > most {
        return bad(
            "threads",
            format!(
                "is {threads}; this machine has {cores} cores, so at most {most} \
                 ({MAX_THREADS_PER_CORE} per core); 0 = one per core"
            ),
        );
    }
    Ok(())
}

fn validate_name(name: &str) -> Result<(), ConfigError> {
    if name.trim().is_empty() {
        return bad("name", "must not be empty");
    }
    if name.len() > MAX_NAME {
        return bad(
            "name",
            format!(
                "is {} bytes long; at most {MAX_NAME} (it becomes a file name, with a \
                 timestamp added)",
                name.len()
            ),
        );
    }
    if name
        .chars()
        .any(|c| !(c.is_alphanumeric() || c == '-' || c == '_' || c == '.'))
    {
        return bad(
            "name",
            "may hold letters, digits, '-', '_' and '.' only (it becomes a file name)",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_is_what_a_file_holding_only_the_name_gives() {
        let parsed: Config = toml::from_str("name = \"x\"").unwrap();
        assert_eq!(parsed, Config::named("x"));
        assert!(Config::named("x").validate().is_ok());
    }

    #[test]
    fn the_name_must_make_a_file_name() {
        for bad in ["", "  ", "a/b", "a b"] {
            let e = Config::named(bad).validate().unwrap_err();
            assert_eq!(e.key(), Some("name"), "{bad:?}");
        }
        assert!(validate_name("run-1_a.b").is_ok());
    }

    #[test]
    fn the_first_section_in_error_is_reported() {
        let mut c = Config::named("x");
        c.train.lr = 0.0;
        c.prune.ratios.clear();
        assert_eq!(c.validate().unwrap_err().key(), Some("train.lr"));
        c.data.classes = 1;
        assert_eq!(c.validate().unwrap_err().key(), Some("data.classes"));
    }

    #[test]
    fn replicates_significance_and_device_are_checked() {
        let c = Config {
            replicates: 0,
            ..Config::named("x")
        };
        assert_eq!(c.validate().unwrap_err().key(), Some("replicates"));
        let c = Config {
            significance: 0.5,
            ..Config::named("x")
        };
        assert_eq!(c.validate().unwrap_err().key(), Some("significance"));
        let c = Config {
            device: DeviceChoice::Cuda(1),
            ..Config::named("x")
        };
        assert_eq!(c.validate().is_err(), !cfg!(feature = "cuda"));
    }

    #[test]
    fn parse_locates_the_error_at_its_key() {
        let e = Config::parse("name = \"x\"\n[train]\nlr = 0.0\n", "x.toml").unwrap_err();
        assert_eq!(e.to_string(), "x.toml:3: `train.lr`: is 0, must be > 0");
        let e = Config::parse("name = \"x\"\nreplicates = 2\nseeds = 3\n", "x.toml").unwrap_err();
        assert!(e.to_string().starts_with("x.toml:3: `seeds`: "), "{e}");
    }

    #[test]
    fn seeds_follow_the_seed_or_are_given() {
        let c = Config {
            seed: 7,
            replicates: 3,
            ..Config::named("x")
        };
        assert_eq!(c.seed_list(), vec![7, 8, 9]);
        let c = Config {
            seeds: vec![4, 2],
            ..c
        };
        assert_eq!(c.seed_list(), vec![4, 2]);
    }
}
