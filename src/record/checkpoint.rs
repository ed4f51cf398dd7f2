//! Weights beside a record: `<record>.safetensors` with the trained `theta` of each model and
//! the pruned `theta` and mask of every pruning row, named as PyTorch's `state_dict` of the
//! equivalent `nn.Linear` stack (weights `[out, in]`). The record stores the file's SHA-256;
//! [`load`] refuses a file that does not match. Layout: docs/record-format.md.
//!
//! Tensor names (`V` = `residual` | `plain`, `M` = pruning method, `R` = ratio as written in
//! the record, e.g. `0.3`), first seed only:
//! - `V.stem.weight`, `V.stem.bias`, `V.blocks.0.weight`, ..., `V.head.bias`: trained, F64;
//! - `V.pruned.M_R.<tensor>`: the trained weights with the pruned entries set to 0, F64;
//! - `V.mask.M_R.<tensor>`: U8, 1 = kept, 0 = pruned (biases all 1 unless pruned too).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use sha2::{Digest, Sha256};

use super::{Checkpoint, Record, RecordError};
use crate::config::PruneMethod;
use crate::model::{ModelSpec, ParamLayout, Variant};

/// Written in the file's `__metadata__` as `format`.
pub const FORMAT: &str = "resprune-checkpoint-1";

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

/// The pruned model of one pruning row: `theta ⊙ keep`.
#[derive(Debug, Clone, PartialEq)]
pub struct PrunedWeights {
    pub method: PruneMethod,
    pub ratio: f64,
    /// `true` = kept, one per parameter.
    pub keep: Vec<bool>,
}

/// What the checkpoint holds for one model.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantWeights {
    pub variant: Variant,
    /// Trained flat `theta`.
    pub theta: Vec<f64>,
    pub pruned: Vec<PrunedWeights>,
}

/// `M_R` of a pruning row, e.g. `magnitude_0.3`.
pub fn row_key(method: PruneMethod, ratio: f64) -> String {
    format!("{method}_{ratio}")
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

fn le_bytes(xs: &[f64]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The checkpoint file's bytes.
pub fn to_bytes(
    spec: &ModelSpec,
    weights: &[VariantWeights],
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>, String> {
    // owned little-endian buffers first; the views borrow them
    let mut buffers: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for w in weights {
        let layout = &spec.layout_for(w.variant);
        if w.theta.len() != layout.len {
            return Err(format!(
                "the {} theta has {} parameters, the model {}",
                w.variant,
                w.theta.len(),
                layout.len
            ));
        }
        for t in &layout.tensors {
            buffers.push((
                format!("{}.{}", w.variant, t.name),
                Dtype::F64,
                t.shape.clone(),
                le_bytes(&w.theta[t.range()]),
            ));
        }
        for p in &w.pruned {
            if p.keep.len() != layout.len {
                return Err(format!(
                    "the {} mask of {} at {} has {} entries, the model {}",
                    w.variant,
                    p.method,
                    p.ratio,
                    p.keep.len(),
                    layout.len
                ));
            }
            let key = row_key(p.method, p.ratio);
            for t in &layout.tensors {
                let pruned: Vec<f64> = w.theta[t.range()]
                    .iter()
                    .zip(&p.keep[t.range()])
                    .map(|(x, k)| if *k { *x } else { 0.0 })
                    .collect();
                buffers.push((
                    format!("{}.pruned.{key}.{}", w.variant, t.name),
                    Dtype::F64,
                    t.shape.clone(),
                    le_bytes(&pruned),
                ));
                buffers.push((
                    format!("{}.mask.{key}.{}", w.variant, t.name),
                    Dtype::U8,
                    t.shape.clone(),
                    p.keep[t.range()].iter().map(|k| *k as u8).collect(),
                ));
            }
        }
    }
    let mut views = Vec::with_capacity(buffers.len());
    for (name, dtype, shape, data) in &buffers {
        let view =
            TensorView::new(*dtype, shape.clone(), data).map_err(|e| format!("{name}: {e}"))?;
        views.push((name.clone(), view));
    }
    safetensors::tensor::serialize(views, Some(metadata)).map_err(|e| e.to_string())
}

/// Writes the checkpoint of the record that will be saved at `record_path` (temp file + fsync
/// + rename) and returns the [`Checkpoint`] to store in that record.
pub fn write(
    record_path: &Path,
    spec: &ModelSpec,
    weights: &[VariantWeights],
) -> Result<Checkpoint, CheckpointError> {
    let path = path_for(record_path);
    let mut metadata = HashMap::new();
    metadata.insert("format".to_string(), FORMAT.to_string());
    if let Some(n) = record_path.file_name() {
        metadata.insert("record".to_string(), n.to_string_lossy().into_owned());
    }
    let bytes = to_bytes(spec, weights, metadata).map_err(|message| CheckpointError::Invalid {
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

/// One tensor read back; masks come back as 0.0 / 1.0.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// `F64` or `U8`.
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
    /// The flat vector of model `v` under `prefix` (`residual`, `plain.pruned.magnitude_0.3`,
    /// `plain.mask.magnitude_0.3`) in its layout's order, if every tensor is there with its
    /// shape.
    pub fn flat(&self, v: Variant, prefix: &str) -> Option<Vec<f64>> {
        let layout = self.spec.layout_for(v);
        let mut out = Vec::with_capacity(layout.len);
        for t in &layout.tensors {
            let x = self.tensors.get(&format!("{prefix}.{}", t.name))?;
            if x.shape != t.shape {
                return None;
            }
            out.extend_from_slice(&x.data);
        }
        Some(out)
    }

    /// Trained `theta` of a model.
    pub fn theta(&self, v: Variant) -> Option<Vec<f64>> {
        self.flat(v, v.name())
    }

    /// Pruned `theta` and mask (`true` = kept) of one pruning row.
    pub fn pruned(
        &self,
        v: Variant,
        method: PruneMethod,
        ratio: f64,
    ) -> Option<(Vec<f64>, Vec<bool>)> {
        let key = row_key(method, ratio);
        let theta = self.flat(v, &format!("{v}.pruned.{key}"))?;
        let mask = self.flat(v, &format!("{v}.mask.{key}"))?;
        Some((theta, mask.iter().map(|m| *m != 0.0).collect()))
    }
}

/// Parses checkpoint bytes (no hash check; see [`load`]).
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
            Dtype::F64 => raw
                .chunks_exact(8)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(c);
                    f64::from_le_bytes(b)
                })
                .collect(),
            Dtype::U8 => raw.iter().map(|b| *b as f64).collect(),
            other => {
                return Err(invalid(format!(
                    "`{name}` has dtype {other:?}, not F64 or U8"
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
    Ok(Weights {
        tensors,
        metadata: meta.metadata().clone().unwrap_or_default(),
        spec,
    })
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
