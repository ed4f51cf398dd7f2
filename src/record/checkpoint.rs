//! Weights and data beside a record: `<record>.safetensors` with, for the first seed, the
//! trained, initial and pruned `theta` and the mask of every pruning row of each model, named
//! as PyTorch's `state_dict` of the equivalent module, and the data the numbers were computed
//! on (training, evaluation and Hessian batches, the per-epoch batch order). The record stores
//! the file's SHA-256; [`load`] refuses a file that does not match. The `__metadata__`
//! describes the architecture, so [`load_file`] reads a checkpoint without its record.
//! Layout and names: docs/record-format.md; a PyTorch recipe: docs/pytorch.md.
//!
//! Format 2 (`resprune-checkpoint-2`) tensor names, `V` = `residual` | `plain`, `K` =
//! [`row_key`] (`magnitude_0p300000`):
//! - `V.stem.weight`, ..., `V.head.bias`, and `V.alpha` (`[depth]`, learned scales): trained;
//! - `V.init.<tensor>`: the initial weights θ₀ (shared; learned scales start at `model.alpha`);
//! - `V.pruned.K.<tensor>`: trained weights with the pruned entries 0; `V.mask.K.<tensor>`: U8;
//! - `data.{train,eval,hessian}.{x,y}`, `data.train.order`, and for tables
//!   `data.{train,eval}.source_index`, `data.standardize.{mean,sd}`.
//!
//! Format 1 (`resprune-checkpoint-1`, still read) had no `init`/`data` tensors, named learned
//! scales `V.blocks.b.alpha` (`[1]` each) and rows `M_R` with `R` the shortest decimal
//! (`magnitude_0.3`).

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use sha2::{Digest, Sha256};

use super::{Checkpoint, Record, RecordError};
use crate::config::{Granularity, PruneMethod};
use crate::model::{Activation, ModelSpec, ParamKind, ParamLayout, TransformerShape, Variant};

/// Written in the file's `__metadata__` as `format`.
pub const FORMAT: &str = "resprune-checkpoint-2";
/// The first format, still read.
pub const FORMAT_V1: &str = "resprune-checkpoint-1";
/// Decimals of the ratio in a row's tensor names (see [`row_key`]).
pub const RATIO_DECIMALS: usize = 6;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("{record}: the record names no checkpoint (run with --save-weights to write one)")]
    Missing { record: PathBuf },
    #[error("cannot read checkpoint {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write checkpoint {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "checkpoint {path} does not match its record: its SHA-256 is {found}, the record says \
         {expected}; the file was changed or replaced after the run"
    )]
    Mismatch {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("checkpoint {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The pruned model of one pruning row: `theta ⊙ keep`, or for `obs` the kept weights after
/// its update (`theta`).
#[derive(Debug, Clone, PartialEq)]
pub struct PrunedWeights {
    pub method: PruneMethod,
    pub granularity: Granularity,
    pub ratio: f64,
    /// `true` = kept, one per parameter.
    pub keep: Vec<bool>,
    /// The pruned `theta` when it is not `theta ⊙ keep` (a method that updates the kept weights).
    pub theta: Option<Vec<f64>>,
}

/// What the checkpoint holds for one model.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantWeights {
    pub variant: Variant,
    /// Trained flat `theta`.
    pub theta: Vec<f64>,
    /// Initial flat `theta` (θ₀, with the learned scales at their start).
    pub theta0: Vec<f64>,
    pub pruned: Vec<PrunedWeights>,
}

/// Examples as the model sees them: `x` row-major `[n, features]`, `y` class ids.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Examples {
    pub x: Vec<f64>,
    pub y: Vec<usize>,
    pub features: usize,
}

impl Examples {
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
}

/// The data the first seed's numbers were computed on.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CheckpointData {
    /// The training split (after any standardisation, in split order).
    pub train: Examples,
    /// The evaluation split: loss, accuracy and pruning sensitivity are measured on it.
    pub eval: Examples,
    /// The batch the Hessian is of (the first `hessian.samples` training examples).
    pub hessian: Examples,
    /// Row `e − 1`: the order epoch `e` visits `train`, for training and for fine-tuning;
    /// minibatches are its consecutive chunks of `batch_size`.
    pub order: Vec<Vec<usize>>,
    pub batch_size: usize,
    pub seed: u64,
    /// Tables: the source row of each training / evaluation example.
    pub source_index: Option<(Vec<usize>, Vec<usize>)>,
    /// Tables with `data.standardize`: column mean and population sd of the training split.
    pub standardize: Option<(Vec<f64>, Vec<f64>)>,
}

/// Everything a checkpoint holds: both models of the first seed and their data.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointContents {
    pub models: Vec<VariantWeights>,
    pub data: CheckpointData,
}

/// The key of a pruning row in tensor names: the method, `_`, the granularity and `_` unless it
/// is `unstructured` (`N:M` written `NofM`), and the ratio with [`RATIO_DECIMALS`] decimals and
/// `p` for the point, e.g. `magnitude_0p300000`, `wanda_neuron_0p300000`,
/// `obs_2of4_0p500000` (no `.` or `:`, so a name splits on dots; Python:
/// `f"{method}_{ratio:.6f}".replace(".", "p")` for unstructured rows).
pub fn row_key(method: PruneMethod, granularity: Granularity, ratio: f64) -> String {
    let g = match granularity {
        Granularity::Unstructured => String::new(),
        Granularity::NOfM { n, m } => format!("{n}of{m}_"),
        other => format!("{other}_"),
    };
    format!("{}_{g}{ratio:.prec$}", method.name(), prec = RATIO_DECIMALS).replace('.', "p")
}

/// The key of format 1: `magnitude_0.3`.
pub fn row_key_v1(method: PruneMethod, ratio: f64) -> String {
    format!("{}_{ratio}", method.name())
}

/// The model a record describes.
pub fn spec_of(rec: &Record) -> ModelSpec {
    rec.config
        .model_spec(rec.data.features, rec.data.classes, rec.data.vocab_size)
}

/// The parameter layout of one model of a record (the residual one holds learned scales when
/// `model.alpha = "learned"`).
pub fn layout_of(rec: &Record, variant: Variant) -> ParamLayout {
    spec_of(rec).layout_for(variant)
}

/// `<record>.safetensors` for `<record>.toml`.
pub fn path_for(record_path: &Path) -> PathBuf {
    record_path.with_extension("safetensors")
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One tensor of a model in the file: its name (after `V.`), shape and range in `theta`.
/// Format 2 joins the learned scales (contiguous, at the end) into one tensor `alpha`.
fn model_tensors(layout: &ParamLayout, v1: bool) -> Vec<(String, Vec<usize>, Range<usize>)> {
    let mut out = Vec::new();
    let mut scales: Option<Range<usize>> = None;
    for t in &layout.tensors {
        if t.kind == ParamKind::Scale && !v1 {
            let r = scales.get_or_insert(t.offset..t.offset);
            r.end = t.range().end;
        } else {
            out.push((t.name.clone(), t.shape.clone(), t.range()));
        }
    }
    if let Some(r) = scales {
        out.push(("alpha".to_string(), vec![r.len()], r));
    }
    out
}

fn activation_name(a: Activation) -> &'static str {
    match a {
        Activation::Relu => "relu",
        Activation::Gelu => "gelu_tanh",
        Activation::Tanh => "tanh",
    }
}

/// The architecture as `__metadata__` entries (`model.*`), enough to rebuild the spec.
pub fn model_metadata(spec: &ModelSpec) -> Vec<(String, String)> {
    let mut m = vec![
        (
            "model.kind",
            if spec.transformer.is_some() {
                "transformer"
            } else {
                "mlp"
            }
            .to_string(),
        ),
        ("model.inputs", spec.inputs.to_string()),
        ("model.width", spec.width.to_string()),
        ("model.depth", spec.depth.to_string()),
        ("model.classes", spec.classes.to_string()),
        (
            "model.activation",
            activation_name(spec.activation).to_string(),
        ),
        ("model.alpha", format!("{:?}", spec.alpha)),
        ("model.learned_alpha", spec.learned_alpha.to_string()),
        (
            "model.params.residual",
            spec.layout_for(Variant::Residual).len.to_string(),
        ),
        (
            "model.params.plain",
            spec.layout_for(Variant::Plain).len.to_string(),
        ),
    ];
    if let Some(t) = &spec.transformer {
        m.push(("model.heads", t.heads.to_string()));
        m.push(("model.ff", t.ff.to_string()));
        m.push(("model.vocab", t.vocab.to_string()));
        m.push(("model.max_len", t.max_len.to_string()));
    }
    m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The spec that [`model_metadata`] describes.
pub fn spec_from_metadata(meta: &HashMap<String, String>) -> Result<ModelSpec, String> {
    fn get<T: std::str::FromStr>(meta: &HashMap<String, String>, key: &str) -> Result<T, String> {
        let v = meta
            .get(key)
            .ok_or_else(|| format!("metadata has no `{key}`"))?;
        v.parse()
            .map_err(|_| format!("metadata `{key}` = {v:?} is not what it should be"))
    }
    let activation = match meta.get("model.activation").map(String::as_str) {
        Some("relu") => Activation::Relu,
        Some("gelu_tanh") => Activation::Gelu,
        Some("tanh") => Activation::Tanh,
        other => {
            return Err(format!(
                "metadata `model.activation` = {other:?} is unknown"
            ))
        }
    };
    let transformer = match meta.get("model.kind").map(String::as_str) {
        Some("mlp") => None,
        Some("transformer") => Some(TransformerShape {
            vocab: get(meta, "model.vocab")?,
            max_len: get(meta, "model.max_len")?,
            heads: get(meta, "model.heads")?,
            ff: get(meta, "model.ff")?,
        }),
        other => return Err(format!("metadata `model.kind` = {other:?} is unknown")),
    };
    Ok(ModelSpec {
        inputs: get(meta, "model.inputs")?,
        width: get(meta, "model.width")?,
        depth: get(meta, "model.depth")?,
        classes: get(meta, "model.classes")?,
        activation,
        alpha: get(meta, "model.alpha")?,
        learned_alpha: get(meta, "model.learned_alpha")?,
        transformer,
    })
}

/// A buffer to write: name, dtype, shape, little-endian bytes.
type Buffer = (String, Dtype, Vec<usize>, Vec<u8>);

fn f64_buffer(name: String, shape: Vec<usize>, xs: &[f64]) -> Buffer {
    let bytes = xs.iter().flat_map(|x| x.to_le_bytes()).collect();
    (name, Dtype::F64, shape, bytes)
}

fn i64_buffer(name: String, shape: Vec<usize>, xs: &[usize]) -> Buffer {
    let bytes = xs.iter().flat_map(|x| (*x as i64).to_le_bytes()).collect();
    (name, Dtype::I64, shape, bytes)
}

fn examples_buffers(out: &mut Vec<Buffer>, name: &str, e: &Examples) -> Result<(), String> {
    if e.x.len() != e.len() * e.features {
        return Err(format!(
            "data.{name}: {} values for {} examples of {} features",
            e.x.len(),
            e.len(),
            e.features
        ));
    }
    out.push(f64_buffer(
        format!("data.{name}.x"),
        vec![e.len(), e.features],
        &e.x,
    ));
    out.push(i64_buffer(format!("data.{name}.y"), vec![e.len()], &e.y));
    Ok(())
}

fn model_buffers(
    out: &mut Vec<Buffer>,
    spec: &ModelSpec,
    w: &VariantWeights,
) -> Result<(), String> {
    let layout = spec.layout_for(w.variant);
    let v = w.variant;
    for (what, theta) in [("trained", &w.theta), ("initial", &w.theta0)] {
        if theta.len() != layout.len {
            return Err(format!(
                "the {what} {v} theta has {} parameters, the model {}",
                theta.len(),
                layout.len
            ));
        }
    }
    let tensors = model_tensors(&layout, false);
    for (name, shape, r) in &tensors {
        out.push(f64_buffer(
            format!("{v}.{name}"),
            shape.clone(),
            &w.theta[r.clone()],
        ));
        out.push(f64_buffer(
            format!("{v}.init.{name}"),
            shape.clone(),
            &w.theta0[r.clone()],
        ));
    }
    let mut keys = BTreeMap::new();
    for p in &w.pruned {
        if p.keep.len() != layout.len {
            return Err(format!(
                "the {v} mask of {} at {} has {} entries, the model {}",
                p.method,
                p.ratio,
                p.keep.len(),
                layout.len
            ));
        }
        let key = row_key(p.method, p.granularity, p.ratio);
        if let Some(other) = keys.insert(key.clone(), p.ratio) {
            return Err(format!(
                "the {v} rows of {} at {other} and {} share the name `{key}`: tensor names \
                 carry the ratio to {RATIO_DECIMALS} decimals",
                p.method, p.ratio
            ));
        }
        let source = p.theta.as_ref().unwrap_or(&w.theta);
        for (name, shape, r) in &tensors {
            let pruned: Vec<f64> = source[r.clone()]
                .iter()
                .zip(&p.keep[r.clone()])
                .map(|(x, k)| if *k { *x } else { 0.0 })
                .collect();
            out.push(f64_buffer(
                format!("{v}.pruned.{key}.{name}"),
                shape.clone(),
                &pruned,
            ));
            out.push((
                format!("{v}.mask.{key}.{name}"),
                Dtype::U8,
                shape.clone(),
                p.keep[r.clone()].iter().map(|k| *k as u8).collect(),
            ));
        }
    }
    Ok(())
}

/// The `__metadata__` of a format-2 file (besides `record`).
fn metadata_of(spec: &ModelSpec, c: &CheckpointContents) -> HashMap<String, String> {
    let d = &c.data;
    let mut meta: HashMap<String, String> = model_metadata(spec).into_iter().collect();
    let rows: Vec<serde_json::Value> = c
        .models
        .first()
        .map(|w| {
            w.pruned
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "method": p.method,
                        "granularity": p.granularity,
                        "ratio": p.ratio,
                        "key": row_key(p.method, p.granularity, p.ratio),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let entries = [
        ("format", FORMAT.to_string()),
        ("variants", {
            let v: Vec<&str> = c.models.iter().map(|w| w.variant.name()).collect();
            v.join(",")
        }),
        ("pruning", serde_json::Value::Array(rows).to_string()),
        ("seed", d.seed.to_string()),
        ("train.batch_size", d.batch_size.to_string()),
        ("data.features", d.train.features.to_string()),
        ("data.train.samples", d.train.len().to_string()),
        ("data.eval.samples", d.eval.len().to_string()),
        ("data.hessian.samples", d.hessian.len().to_string()),
        ("data.epochs", d.order.len().to_string()),
        (
            "loss",
            "mean over examples of cross-entropy of the logits (no penalty terms)".to_string(),
        ),
    ];
    meta.extend(entries.into_iter().map(|(k, v)| (k.to_string(), v)));
    if d.standardize.is_some() {
        meta.insert(
            "data.standardize".into(),
            "x = (raw - mean) / sd per column; mean and population sd (divided by n, 1 where \
             it is 0) of the training split"
                .into(),
        );
    }
    meta
}

/// The checkpoint file's bytes (format 2).
pub fn to_bytes(
    spec: &ModelSpec,
    contents: &CheckpointContents,
    extra: HashMap<String, String>,
) -> Result<Vec<u8>, String> {
    // owned little-endian buffers first; the views borrow them
    let mut buffers: Vec<Buffer> = Vec::new();
    for w in &contents.models {
        model_buffers(&mut buffers, spec, w)?;
    }
    let d = &contents.data;
    examples_buffers(&mut buffers, "train", &d.train)?;
    examples_buffers(&mut buffers, "eval", &d.eval)?;
    examples_buffers(&mut buffers, "hessian", &d.hessian)?;
    let n = d.train.len();
    if let Some(bad) = d.order.iter().find(|o| o.len() != n) {
        return Err(format!(
            "a batch order has {} entries, the training split {n} examples",
            bad.len()
        ));
    }
    let flat: Vec<usize> = d.order.concat();
    buffers.push(i64_buffer(
        "data.train.order".into(),
        vec![d.order.len(), n],
        &flat,
    ));
    if let Some((train, eval)) = &d.source_index {
        buffers.push(i64_buffer(
            "data.train.source_index".into(),
            vec![train.len()],
            train,
        ));
        buffers.push(i64_buffer(
            "data.eval.source_index".into(),
            vec![eval.len()],
            eval,
        ));
    }
    if let Some((mean, sd)) = &d.standardize {
        buffers.push(f64_buffer(
            "data.standardize.mean".into(),
            vec![mean.len()],
            mean,
        ));
        buffers.push(f64_buffer("data.standardize.sd".into(), vec![sd.len()], sd));
    }
    let mut views = Vec::with_capacity(buffers.len());
    for (name, dtype, shape, data) in &buffers {
        let view =
            TensorView::new(*dtype, shape.clone(), data).map_err(|e| format!("{name}: {e}"))?;
        views.push((name.clone(), view));
    }
    let mut metadata = metadata_of(spec, contents);
    metadata.extend(extra);
    safetensors::tensor::serialize(views, Some(metadata)).map_err(|e| e.to_string())
}

/// Writes the checkpoint of the record that will be saved at `record_path` (temp file + fsync
/// + rename) and returns the [`Checkpoint`] to store in that record.
pub fn write(
    record_path: &Path,
    spec: &ModelSpec,
    contents: &CheckpointContents,
) -> Result<Checkpoint, CheckpointError> {
    let path = path_for(record_path);
    let mut extra = HashMap::new();
    if let Some(n) = record_path.file_name() {
        extra.insert("record".to_string(), n.to_string_lossy().into_owned());
    }
    let bytes = to_bytes(spec, contents, extra).map_err(|message| CheckpointError::Invalid {
        path: path.clone(),
        message,
    })?;
    super::write_atomic(&path, &bytes).map_err(|source| CheckpointError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(Checkpoint {
        file: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        sha256: sha256_hex(&bytes),
    })
}

/// One tensor read back; masks, labels and indices come back as exact `f64`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// `F64`, `U8` or `I64`.
    pub dtype: String,
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

/// A checkpoint read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    pub tensors: BTreeMap<String, Tensor>,
    pub metadata: HashMap<String, String>,
    pub spec: ModelSpec,
}

impl Weights {
    /// Whether the file is in the first format (its names differ; it holds no data).
    pub fn is_v1(&self) -> bool {
        self.metadata.get("format").map(String::as_str) == Some(FORMAT_V1)
    }

    /// The flat vector of model `v` under `prefix` (`residual`, `residual.init`,
    /// `plain.pruned.magnitude_0p300000`, `plain.mask.magnitude_0p300000`) in its layout's
    /// order, if every tensor is there with its shape.
    pub fn flat(&self, v: Variant, prefix: &str) -> Option<Vec<f64>> {
        let layout = self.spec.layout_for(v);
        let mut out = vec![0.0; layout.len];
        for (name, shape, r) in model_tensors(&layout, self.is_v1()) {
            let x = self.tensors.get(&format!("{prefix}.{name}"))?;
            if x.shape != shape {
                return None;
            }
            out[r].copy_from_slice(&x.data);
        }
        Some(out)
    }

    /// Trained `theta` of a model.
    pub fn theta(&self, v: Variant) -> Option<Vec<f64>> {
        self.flat(v, v.name())
    }

    /// Initial `theta` of a model (format 2).
    pub fn theta0(&self, v: Variant) -> Option<Vec<f64>> {
        self.flat(v, &format!("{v}.init"))
    }

    /// Pruned `theta` and mask (`true` = kept) of one pruning row.
    pub fn pruned(
        &self,
        v: Variant,
        method: PruneMethod,
        granularity: Granularity,
        ratio: f64,
    ) -> Option<(Vec<f64>, Vec<bool>)> {
        let key = if self.is_v1() {
            row_key_v1(method, ratio)
        } else {
            row_key(method, granularity, ratio)
        };
        let theta = self.flat(v, &format!("{v}.pruned.{key}"))?;
        let mask = self.flat(v, &format!("{v}.mask.{key}"))?;
        Some((theta, mask.iter().map(|m| *m != 0.0).collect()))
    }

    /// `data.<split>` (`train`, `eval`, `hessian`) as examples (format 2).
    pub fn examples(&self, split: &str) -> Option<Examples> {
        let x = self.tensors.get(&format!("data.{split}.x"))?;
        let y = self.tensors.get(&format!("data.{split}.y"))?;
        Some(Examples {
            x: x.data.clone(),
            y: y.data.iter().map(|c| *c as usize).collect(),
            features: *x.shape.get(1)?,
        })
    }

    /// `data.train.order`, one row per epoch (format 2).
    pub fn order(&self) -> Option<Vec<Vec<usize>>> {
        let t = self.tensors.get("data.train.order")?;
        let n = *t.shape.get(1)?;
        Some(
            (0..t.shape[0])
                .map(|e| {
                    t.data[e * n..(e + 1) * n]
                        .iter()
                        .map(|i| *i as usize)
                        .collect()
                })
                .collect(),
        )
    }
}

fn le_f64(c: &[u8]) -> f64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(c);
    f64::from_le_bytes(b)
}

fn le_i64(c: &[u8]) -> f64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(c);
    i64::from_le_bytes(b) as f64
}

/// Parses checkpoint bytes (no hash check; see [`load`]) for the model `spec`.
pub fn parse(bytes: &[u8], path: &Path, spec: ModelSpec) -> Result<Weights, CheckpointError> {
    let invalid = |message: String| CheckpointError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let st = SafeTensors::deserialize(bytes).map_err(|e| invalid(e.to_string()))?;
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| invalid(e.to_string()))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        let raw = view.data();
        let data: Vec<f64> = match view.dtype() {
            Dtype::F64 => raw.chunks_exact(8).map(le_f64).collect(),
            Dtype::I64 => raw.chunks_exact(8).map(le_i64).collect(),
            Dtype::U8 => raw.iter().map(|b| *b as f64).collect(),
            other => {
                return Err(invalid(format!(
                    "`{name}` has dtype {other:?}, not F64, I64 or U8"
                )))
            }
        };
        tensors.insert(
            name,
            Tensor {
                dtype: format!("{:?}", view.dtype()),
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    let metadata = meta.metadata().clone().unwrap_or_default();
    match metadata.get("format").map(String::as_str) {
        Some(FORMAT) | Some(FORMAT_V1) => {}
        other => {
            return Err(invalid(format!(
                "format {other:?} is not one this resprune-tui reads ({FORMAT_V1:?}, \
                 {FORMAT:?})"
            )))
        }
    }
    Ok(Weights {
        tensors,
        metadata,
        spec,
    })
}

/// Reads a checkpoint on its own, the model taken from its metadata (format 2; no hash
/// check, as there is no record to hold the hash).
pub fn load_file(path: &Path) -> Result<Weights, CheckpointError> {
    let invalid = |message: String| CheckpointError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| invalid(e.to_string()))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    let spec = spec_from_metadata(&meta).map_err(|m| {
        invalid(format!(
            "{m} (a {FORMAT_V1} file needs its record: record::checkpoint::load)"
        ))
    })?;
    parse(&bytes, path, spec)
}

/// Reads the checkpoint that the record at `record_path` names, after checking its SHA-256
/// against the record's: a changed or replaced file is an error.
pub fn load(record_path: &Path) -> Result<Weights, CheckpointError> {
    let rec = super::load(record_path)?;
    let Some(cp) = &rec.checkpoint else {
        return Err(CheckpointError::Missing {
            record: record_path.to_path_buf(),
        });
    };
    let path = super::folder_of(record_path).join(&cp.file);
    let bytes = std::fs::read(&path).map_err(|source| CheckpointError::Read {
        path: path.clone(),
        source,
    })?;
    let found = sha256_hex(&bytes);
    if !found.eq_ignore_ascii_case(&cp.sha256) {
        return Err(CheckpointError::Mismatch {
            path,
            expected: cp.sha256.clone(),
            found,
        });
    }
    parse(&bytes, &path, spec_of(&rec))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(learned: bool, transformer: bool) -> ModelSpec {
        ModelSpec {
            inputs: 3,
            width: 4,
            depth: 2,
            classes: 2,
            activation: Activation::Gelu,
            alpha: 0.7,
            learned_alpha: learned,
            transformer: transformer.then_some(TransformerShape {
                vocab: 9,
                max_len: 3,
                heads: 2,
                ff: 5,
            }),
        }
    }

    #[test]
    fn row_keys_have_no_dot_and_six_decimals() {
        let u = Granularity::Unstructured;
        assert_eq!(
            row_key(PruneMethod::Magnitude, u, 0.3),
            "magnitude_0p300000"
        );
        assert_eq!(
            row_key(PruneMethod::CurvatureGated, u, 0.125),
            "curvature_gated_0p125000"
        );
        assert_eq!(row_key(PruneMethod::Obd, u, 0.1 + 0.2), "obd_0p300000");
        assert_eq!(
            row_key(PruneMethod::Wanda, Granularity::Neuron, 0.25),
            "wanda_neuron_0p250000"
        );
        assert_eq!(
            row_key(PruneMethod::Obs, Granularity::NOfM { n: 2, m: 4 }, 0.5),
            "obs_2of4_0p500000"
        );
        assert_eq!(row_key_v1(PruneMethod::Magnitude, 0.3), "magnitude_0.3");
    }

    #[test]
    fn the_metadata_rebuilds_the_spec() {
        for (l, t) in [(false, false), (true, false), (false, true)] {
            let s = spec(l, t);
            let meta: HashMap<_, _> = model_metadata(&s).into_iter().collect();
            assert_eq!(spec_from_metadata(&meta).unwrap(), s);
        }
        let mut meta: HashMap<_, _> = model_metadata(&spec(false, false)).into_iter().collect();
        meta.insert("model.depth".into(), "two".into());
        assert!(spec_from_metadata(&meta)
            .unwrap_err()
            .contains("model.depth"));
    }

    #[test]
    fn learned_scales_are_one_tensor_outside_the_blocks() {
        let layout = spec(true, false).layout_for(Variant::Residual);
        let names: Vec<_> = model_tensors(&layout, false)
            .into_iter()
            .map(|(n, s, r)| (n, s, r.len()))
            .collect();
        assert_eq!(names.last().unwrap(), &("alpha".to_string(), vec![2], 2));
        assert!(names.iter().all(|(n, _, _)| !n.ends_with(".alpha")));
        let v1 = model_tensors(&layout, true);
        assert_eq!(v1.last().unwrap().0, "blocks.1.alpha");
    }

    #[test]
    fn colliding_row_names_are_refused() {
        let s = spec(false, false);
        let n = s.num_params();
        let row = |ratio| PrunedWeights {
            method: PruneMethod::Magnitude,
            granularity: Granularity::Unstructured,
            ratio,
            keep: vec![true; n],
            theta: None,
        };
        let c = CheckpointContents {
            models: vec![VariantWeights {
                variant: Variant::Plain,
                theta: vec![0.5; n],
                theta0: vec![0.1; n],
                pruned: vec![row(0.3), row(0.3000001)],
            }],
            data: CheckpointData {
                train: Examples {
                    x: vec![0.0; 6],
                    y: vec![0, 1],
                    features: 3,
                },
                ..Default::default()
            },
        };
        let e = to_bytes(&s, &c, HashMap::new()).unwrap_err();
        assert!(e.contains("magnitude_0p300000"), "{e}");
    }
}
