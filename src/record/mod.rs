//! The whole experiment as one TOML file: config (defaults filled), machine facts, timings,
//! and per model the training history, spectrum and pruning table. Written atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{Config, Granularity, ModelKind, ProductsChoice, PruneMethod};
use crate::curvature::Spectrum;
use crate::data::DataSummary;
use crate::model::{Activation, Variant};
use crate::prune::lesion::Lesions;
use crate::prune::PruneRow;
use crate::stats::{Claim, MeanSd};
use crate::tomlpos;
use crate::train::EpochStats;

pub mod check;
pub mod checkpoint;
pub mod compare;
pub mod diff;
pub mod export;

/// Bumped whenever a field changes meaning or a required field is added.
///
/// 2: spectrum counts and condition at the finite-difference noise floor (`stats.zero_tol`
/// raised to it), `stats.condition` absent when not resolved, `stats.near_zero` absent when
/// not measured (docs/record-format.md). Version-1 records load unchanged.
/// 3: structured pruning (granularity, unit counts, mechanism, lesions).
/// 4: `config.hessian.products` absent means `auto` (exact products for the MLP); older
/// records, which had finite differences only, load with `finite_differences`.
pub const SCHEMA_VERSION: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Complete,
    /// Stopped by the user (Ctrl-C, cancel); holds the stages that finished.
    Interrupted,
    Failed,
}

impl Status {
    /// `complete`, `interrupted`, `failed`, as the record writes it.
    pub fn name(self) -> &'static str {
        crate::names::serde_name(&self)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    pub os: String,
    pub arch: String,
    pub cpu: String,
    /// Kernel threads the run used.
    pub threads: usize,
    pub device: String,
    /// The CPU GEMM kernels (`gemm 0.19 avx512f`, `... fma`); empty for a GPU run and in
    /// records written before it was kept (they ran gemm 0.15's FMA kernels). Another value
    /// sums in another order.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kernels: String,
}

impl Machine {
    pub fn current(threads: usize) -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        Machine {
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            cpu,
            threads,
            device: "cpu".into(),
            kernels: crate::model::cpu_kernels(),
        }
    }
}

/// Wall seconds per stage, both models together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Timings {
    pub data_s: f64,
    pub train_s: f64,
    pub spectrum_s: f64,
    pub prune_s: f64,
    pub total_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerInfo {
    pub name: String,
    /// `[out, in]` of the layer's first weight (`[rows, dim]` of an embedding table).
    pub shape: Vec<usize>,
    pub params: usize,
    /// True for the blocks wrapped in the skip (residual variant only).
    pub skip: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSummary {
    pub kind: ModelKind,
    /// Parameters of the residual model: those both models share (the sum of `layers`) and,
    /// with `learned_alpha`, its `depth` scales.
    pub params: usize,
    pub inputs: usize,
    pub width: usize,
    pub depth: usize,
    pub classes: usize,
    pub activation: Activation,
    /// The residual scale, or the learned scales' starting value.
    pub alpha: f64,
    /// One trainable scale per block (residual model); their trained values are in
    /// `residual.learned_alpha`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub learned_alpha: bool,
    /// Transformer: attention heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads: Option<usize>,
    /// Transformer: hidden width of each block's MLP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ff: Option<usize>,
    /// Transformer: token ids `0..vocab` (0 padding, 1 out-of-vocabulary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab: Option<usize>,
    pub layers: Vec<LayerInfo>,
}

impl ModelSummary {
    /// `params` counts the residual model's learned scales; records written before it did
    /// hold the shared count (the sum of `layers`), read here as the new count.
    fn count_learned_scales(&mut self) {
        let shared: usize = self.layers.iter().map(|l| l.params).sum();
        if self.learned_alpha && !self.layers.is_empty() && self.params == shared {
            self.params += self.depth;
        }
    }

    /// `1`, `0.5`, or `learned`.
    pub fn alpha_label(&self) -> String {
        if self.learned_alpha {
            "learned".into()
        } else {
            self.alpha.to_string()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantResult {
    pub variant: Variant,
    pub history: Vec<EpochStats>,
    pub spectrum: Option<Spectrum>,
    pub pruning: Vec<PruneRow>,
    /// `model.alpha = "learned"`: each block's scale after training (residual model).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub learned_alpha: Vec<f64>,
    /// Block lesions (with `block` among `prune.granularities`, depth ≥ 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lesions: Option<Lesions>,
}

impl VariantResult {
    pub fn new(variant: Variant) -> Self {
        VariantResult {
            variant,
            history: Vec::new(),
            spectrum: None,
            pruning: Vec::new(),
            learned_alpha: Vec::new(),
            lesions: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub schema_version: u32,
    pub tool_version: String,
    pub status: Status,
    /// Why the run stopped early (interrupted, failed).
    pub error: Option<String>,
    /// UTC, RFC 3339.
    pub started_at: String,
    pub finished_at: String,
    /// File name of the record this one replays (written by `resprune-tui replay`, beside it).
    pub replay_of: Option<String>,
    pub machine: Machine,
    pub timings: Timings,
    /// The safetensors file of weights and masks beside the record (`run --save-weights`).
    pub checkpoint: Option<Checkpoint>,
    pub config: Config,
    pub data: DataSummary,
    pub model: ModelSummary,
    pub residual: VariantResult,
    pub plain: VariantResult,
    /// The residual model at each `model.alpha_sweep` value (first seed): the path from
    /// plain-like (`alpha = 0`: identity blocks) to residual.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alpha_sweep: Vec<AlphaPoint>,
    /// Further seeds (the first seed's results are `residual` and `plain`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicates: Vec<Replicate>,
    /// Mean ± sd over every seed (two or more).
    pub summary: Option<ReplicateSummary>,
    /// The article's claims tested across seeds (two or more).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verdicts: Vec<Claim>,
}

/// The pair's results for one more seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replicate {
    pub seed: u64,
    /// This seed's vocabulary (token data): each seed's split builds its own, so the
    /// transformer's embedding, and its parameter count, can differ from the first seed's
    /// (`data.vocab_size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab_size: Option<usize>,
    pub residual: VariantResult,
    pub plain: VariantResult,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alpha_sweep: Vec<AlphaPoint>,
}

/// The residual model trained, measured and pruned with one value of `alpha`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlphaPoint {
    pub alpha: f64,
    pub residual: VariantResult,
}

/// Mean ± sd over seeds of one model's headline numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantSummary {
    pub eval_loss: MeanSd,
    pub eval_accuracy: MeanSd,
    pub lambda_min: MeanSd,
    pub lambda_max: MeanSd,
    pub variance: MeanSd,
    pub trace: MeanSd,
    pub pruning: Vec<RowSummary>,
}

/// Mean ± sd over seeds of one pruning row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowSummary {
    pub method: PruneMethod,
    #[serde(default)]
    pub granularity: Granularity,
    pub ratio: f64,
    pub sensitivity: MeanSd,
    pub accuracy_drop: MeanSd,
    pub predicted_delta: MeanSd,
    pub finetuned_sensitivity: Option<MeanSd>,
    /// The Rayleigh quotient of the step, when the rows measured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rayleigh: Option<MeanSd>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicateSummary {
    pub seeds: Vec<u64>,
    pub residual: VariantSummary,
    pub plain: VariantSummary,
}

/// The weights file written beside a record, and its SHA-256 (checked on load).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// File name, in the record's folder.
    pub file: String,
    /// Lower-case hex SHA-256 of the whole file.
    pub sha256: String,
}

impl Record {
    /// Every seed's pair: `(seed, residual, plain)`, the first seed first.
    pub fn pairs(&self) -> Vec<(u64, &VariantResult, &VariantResult)> {
        let mut v = vec![(self.config.seed_list()[0], &self.residual, &self.plain)];
        v.extend(
            self.replicates
                .iter()
                .map(|r| (r.seed, &r.residual, &r.plain)),
        );
        v
    }

    pub fn variant(&self, v: Variant) -> &VariantResult {
        match v {
            Variant::Residual => &self.residual,
            Variant::Plain => &self.plain,
        }
    }

    pub fn variant_mut(&mut self, v: Variant) -> &mut VariantResult {
        match v {
            Variant::Residual => &mut self.residual,
            Variant::Plain => &mut self.plain,
        }
    }

    pub fn to_toml(&self) -> Result<String, RecordError> {
        toml::to_string(self).map_err(|e| RecordError::Serialize(e.to_string()))
    }

    /// `<name>-<UTC timestamp>.toml`, e.g. `article-20261128T153012Z.toml`.
    pub fn file_name(&self) -> String {
        let stamp: String = self
            .started_at
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        format!("{}-{}.toml", self.config.name, stamp)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot read record {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write record {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: `{key}`: {message}")]
    Parse {
        path: String,
        line: usize,
        key: String,
        message: String,
    },
    #[error(
        "{path}: schema_version {found} is newer than this resprune-tui understands \
         ({SCHEMA_VERSION}); upgrade resprune-tui to read it"
    )]
    NewerSchema { path: String, found: u64 },
    #[error("cannot serialise the record: {0}")]
    Serialize(String),
    #[error(
        "{path}: the record parses but does not hold together ({}); was it edited or cut \
         short? Run it again to get a sound one",
        problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ")
    )]
    Inconsistent {
        path: String,
        problems: Vec<check::Inconsistency>,
    },
    #[error("{path}: {why}")]
    Unreadable { path: String, why: String },
}

/// Reads a record, checking the schema version first.
pub fn load(path: &Path) -> Result<Record, RecordError> {
    let src = std::fs::read_to_string(path).map_err(|source| RecordError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&src, &path.display().to_string())
}

impl Record {
    /// Rows written before structured pruning have no unit counts; their units are single
    /// parameters, so the counts are the parameter counts.
    fn count_single_weight_units(&mut self) {
        let results = std::iter::once(&mut self.residual)
            .chain(std::iter::once(&mut self.plain))
            .chain(
                self.replicates
                    .iter_mut()
                    .flat_map(|r| [&mut r.residual, &mut r.plain]),
            )
            .chain(self.alpha_sweep.iter_mut().map(|a| &mut a.residual));
        for v in results {
            for row in &mut v.pruning {
                if row.units_eligible == 0 && row.granularity == Granularity::Unstructured {
                    row.units_eligible = row.eligible;
                    row.units_pruned = row.pruned;
                }
            }
        }
    }
}

impl Record {
    /// Before schema 4 `hessian.products` could only be absent or name its kind: absent it
    /// read as the serde default, now `auto`, but meant finite differences, the only products
    /// there were; a replay must use them again.
    fn products_before_auto(&mut self) {
        if self.schema_version < 4 && self.config.hessian.products == ProductsChoice::Auto {
            self.config.hessian.products = ProductsChoice::FiniteDifferences;
        }
    }
}

pub fn parse(src: &str, path: &str) -> Result<Record, RecordError> {
    if let Ok(table) = src.parse::<toml::Table>() {
        if let Some(v) = table.get("schema_version").and_then(|v| v.as_integer()) {
            if v > SCHEMA_VERSION as i64 {
                return Err(RecordError::NewerSchema {
                    path: path.into(),
                    found: v as u64,
                });
            }
        }
    }
    let mut record: Record = toml::from_str(src).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().to_string();
        // a missing field is reported at its table: name the field under that table's path
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next())
            .map(str::to_string);
        let table = if span.start == 0 && missing.is_some() {
            // the whole document: a top-level field
            None
        } else {
            tomlpos::path_at(src, span.start)
        };
        let key = match (table, missing) {
            (Some(t), Some(f)) => format!("{t}.{f}"),
            (None, Some(f)) => f,
            (Some(t), None) => t,
            (None, None) => "(top level)".into(),
        };
        RecordError::Parse {
            path: path.into(),
            line: tomlpos::line_col(src, span.start).0,
            key,
            message,
        }
    })?;
    record.model.count_learned_scales();
    record.count_single_weight_units();
    record.products_before_auto();
    let problems = check::check(&record);
    if !problems.is_empty() {
        return Err(RecordError::Inconsistent {
            path: path.into(),
            problems,
        });
    }
    Ok(record)
}

/// The temporary file [`write_atomic`] writes `path` through: hidden, in the same folder,
/// named by the process and a per-process counter so no two writers share one.
fn temp_path(path: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("record");
    folder_of(path).join(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Writes `contents` to `path` through a temporary file in the same folder: write, fsync,
/// rename. A crash leaves either the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), std::io::Error> {
    let dir = folder_of(path);
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // the rename itself is durable once the folder is synced
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Temporary files in `dir` that a writer left behind when it was killed: hidden
/// `.<name>.tmp-<pid>-<n>` files whose process is gone (Linux: no `/proc/<pid>`).
pub fn stale_temps(dir: &Path) -> Vec<PathBuf> {
    let alive = |pid: u32| Path::new(&format!("/proc/{pid}")).exists();
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
                return false;
            };
            let Some((_, tail)) = name.strip_prefix('.').and_then(|n| n.rsplit_once(".tmp-"))
            else {
                return false;
            };
            let pid = tail.split('-').next().and_then(|p| p.parse::<u32>().ok());
            pid.is_some_and(|pid| pid != std::process::id() && !alive(pid))
        })
        .collect();
    out.sort();
    out
}

/// Removes [`stale_temps`] of `dir` and returns what it removed.
pub fn clean_stale_temps(dir: &Path) -> Vec<PathBuf> {
    stale_temps(dir)
        .into_iter()
        .filter(|p| std::fs::remove_file(p).is_ok())
        .collect()
}

/// A record's file name claimed in a folder: the file was created empty, exclusively (no
/// other writer, in this process or another, can claim it too), and stays ours until
/// [`save_claimed`] replaces it with the record. With weights, the `.safetensors` beside it
/// is claimed the same way. Dropped unsaved, it removes what it created.
#[derive(Debug)]
pub struct ClaimedName {
    pub path: PathBuf,
    /// Whether `<stem>.safetensors` was claimed too.
    pub weights: bool,
    saved: bool,
}

impl Drop for ClaimedName {
    fn drop(&mut self) {
        if !self.saved {
            let _ = std::fs::remove_file(&self.path);
            if self.weights {
                let _ = std::fs::remove_file(self.path.with_extension("safetensors"));
            }
        }
    }
}

/// Creates `path` only if nothing is there: false when it exists.
fn create_new(path: &Path) -> Result<bool, std::io::Error> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Claims [`Record::file_name`] in `dir`, or the first free `-N` suffix of it (and the
/// weights file beside it when `weights`).
pub fn claim(record: &Record, dir: &Path, weights: bool) -> Result<ClaimedName, RecordError> {
    claim_name(&record.file_name(), dir, weights)
}

/// [`claim`] for a given file name (`<stem>.toml`).
pub fn claim_name(base: &str, dir: &Path, weights: bool) -> Result<ClaimedName, RecordError> {
    let stem = base.strip_suffix(".toml").unwrap_or(base);
    for k in 0.. {
        let name = if k == 0 {
            format!("{stem}.toml")
        } else {
            format!("{stem}-{k}.toml")
        };
        let path = dir.join(name);
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RecordError::Write { path, source }
        };
        if !create_new(&path).map_err(err(&path))? {
            continue;
        }
        let mut claim = ClaimedName {
            path,
            weights: false,
            saved: false,
        };
        if weights {
            let w = claim.path.with_extension("safetensors");
            if !create_new(&w).map_err(err(&w))? {
                // a weights file without its record: leave it, take the next name
                continue;
            }
            claim.weights = true;
        }
        return Ok(claim);
    }
    unreachable!("the suffixes are unbounded")
}

/// Writes `record` over its claimed (empty) file, atomically.
pub fn save_claimed(record: &Record, mut claim: ClaimedName) -> Result<PathBuf, RecordError> {
    let path = save_as(record, &claim.path)?;
    claim.saved = true;
    Ok(path)
}

/// Saves the record in `dir` under [`Record::file_name`] (a `-N` suffix when taken), the
/// name claimed atomically, so concurrent writers never overwrite each other.
pub fn save(record: &Record, dir: &Path) -> Result<PathBuf, RecordError> {
    save_claimed(record, claim(record, dir, false)?)
}

/// Writes `record` to `path` atomically (replacing it).
pub fn save_as(record: &Record, path: &Path) -> Result<PathBuf, RecordError> {
    let path = path.to_path_buf();
    let text = record.to_toml()?;
    write_atomic(&path, text.as_bytes()).map_err(|source| RecordError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// The folder a record lives in (`.` for a bare file name).
pub fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Where records go: `--out DIR`, else `./experiments` when it exists, else the user data dir.
pub fn default_dir(out: Option<&Path>) -> PathBuf {
    if let Some(o) = out {
        return o.to_path_buf();
    }
    let local = Path::new("experiments");
    if local.is_dir() {
        return local.to_path_buf();
    }
    directories::ProjectDirs::from("", "", "resprune-tui")
        .map(|d| d.data_dir().join("experiments"))
        .unwrap_or_else(|| local.to_path_buf())
}

/// Checks that `dir` exists (creating it) and accepts a file, before any work is done.
pub fn check_writable(dir: &Path) -> Result<(), RecordError> {
    let err = |source| RecordError::Write {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let probe = dir.join(format!(".resprune-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(err)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Records in `dir`, newest first (by `started_at`), with the ones that fail to load reported.
pub fn list(dir: &Path) -> Vec<(PathBuf, Result<Record, RecordError>)> {
    let mut out: Vec<(PathBuf, Result<Record, RecordError>)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "toml")
                && !p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
        })
        .filter_map(|p| {
            let shown = p.display().to_string();
            let unreadable = |why: &str| RecordError::Unreadable {
                path: shown.clone(),
                why: why.into(),
            };
            let bytes = match std::fs::read(&p) {
                Ok(b) => b,
                Err(e) => return Some((p.clone(), Err(unreadable(&e.to_string())))),
            };
            if bytes.is_empty() {
                // a claimed name whose run was stopped before it saved
                return Some((
                    p,
                    Err(unreadable("empty: a run was stopped while saving it")),
                ));
            }
            let Ok(text) = String::from_utf8(bytes) else {
                return Some((p, Err(unreadable("not UTF-8 text: not a record or config"))));
            };
            // configs live beside records; only files with a schema_version are records
            if !text.contains("schema_version") {
                return None;
            }
            let r = parse(&text, &shown);
            Some((p, r))
        })
        .collect();
    out.sort_by(|a, b| {
        let ka =
            a.1.as_ref()
                .map(|r| r.started_at.clone())
                .unwrap_or_default();
        let kb =
            b.1.as_ref()
                .map(|r| r.started_at.clone())
                .unwrap_or_default();
        kb.cmp(&ka).then(b.0.cmp(&a.0))
    });
    out
}
