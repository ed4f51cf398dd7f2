//! The experiment as the user writes it: TOML, every key defaulted, validated with errors that
//! name the file, the key path, the line and what is allowed.
//!
//! One file per section, each holding its types, their defaults, their `validate` and their
//! tests: [`Config`] itself (the top level) in `experiment.rs`, then `data.rs`, `model.rs`,
//! `train.rs`, `hessian.rs`, `prune.rs` and `sweep.rs` (lists of values, one experiment per
//! combination). `source.rs` resolves a file with `--set` overrides or one sweep point on its
//! TOML value tree, then reads and validates it as a file. Every check returns the one [`ConfigError`]
//! (`error.rs`), whose message is made in one place. `template.rs` writes the commented
//! template from the defaults.

mod data;
mod error;
mod experiment;
mod hessian;
mod model;
mod prune;
mod source;
mod sweep;
mod template;
mod train;

pub use data::{DataConfig, DataSource, TextEncoding};
pub use error::ConfigError;
pub use experiment::{Config, DeviceChoice};
pub use hessian::{FdScheme, HessianConfig, HessianMethod, Products, ProductsChoice, FORWARD_STEP};
pub use model::{Alpha, ModelConfig, ModelKind};
pub use prune::{Granularity, PruneConfig, PruneMethod, PruneScope};
pub use source::{Override, Source};
pub use sweep::{value_label, Axis, Point, SweepConfig, SweepMode};
pub use template::template;
pub use train::{Optimizer, TrainConfig};
