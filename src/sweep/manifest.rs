//! `sweep.toml`: the sweep's config, every point with its status, record and config hash.
//!
//! The manifest is a *view*: each point's truth is in its own files (its record, its lock
//! while it runs, a `.NAME.failed` note when it failed), each written by the one process
//! that holds the point. The manifest is derived from those files and rewritten whole,
//! atomically (temp file + rename), under its own lock, by whichever process changed a point
//! last. So a reader always finds a complete manifest, two processes never merge state in
//! memory, and the last write of a finished sweep has seen every point.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::lock;
use super::{Plan, PlannedPoint, SweepError};
use crate::config::SweepMode;
use crate::record::{self, Status};

pub const MANIFEST: &str = "sweep.toml";
/// Bumped when a field changes meaning.
pub const MANIFEST_VERSION: u32 = 1;

/// Where a point stands, as its files say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointStatus {
    /// Not run yet.
    Pending,
    /// A live process holds its lock.
    Running,
    /// Its record is complete and was made from this config.
    Done,
    /// Its record was stopped by Ctrl-C or SIGTERM (run again on resume).
    Interrupted,
    /// The run failed (`error` says why; run again on resume).
    Failed,
    /// Its record does not load (truncated, or not a record): run again.
    Unreadable,
    /// Its record was made from another config (the file or a `--set` changed): run again.
    Outdated,
}

impl PointStatus {
    pub fn word(self) -> &'static str {
        match self {
            PointStatus::Pending => "pending",
            PointStatus::Running => "running",
            PointStatus::Done => "done",
            PointStatus::Interrupted => "interrupted",
            PointStatus::Failed => "failed",
            PointStatus::Unreadable => "unreadable",
            PointStatus::Outdated => "outdated",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestPoint {
    pub index: usize,
    pub name: String,
    /// The swept keys and this point's values.
    pub values: toml::Table,
    pub status: PointStatus,
    /// The record's file name in the sweep's folder.
    pub record: String,
    /// SHA-256 of the point's resolved config (`Config::digest`).
    pub config_hash: String,
    /// `pid@host` of the process running it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The record's total wall time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    pub total: usize,
    pub done: usize,
    pub running: usize,
    pub pending: usize,
    /// Interrupted, failed, unreadable or outdated: to be run again.
    pub to_rerun: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub manifest_version: u32,
    pub name: String,
    /// The config file as the sweep was started with it.
    pub config_file: String,
    /// `--set` arguments applied to every point.
    #[serde(default)]
    pub sets: Vec<String>,
    pub mode: SweepMode,
    /// The swept keys, outermost first.
    pub axes: Vec<String>,
    pub updated_at: String,
    pub counts: Counts,
    /// The config file's text, verbatim.
    pub config: String,
    pub points: Vec<ManifestPoint>,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest, SweepError> {
        let text = std::fs::read_to_string(path).map_err(|source| SweepError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| SweepError::Manifest {
            path: path.to_path_buf(),
            message: e.message().trim().to_string(),
        })
    }
}

/// `sweep.toml` in `dir`, or `path` itself when it names a file.
pub fn manifest_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(MANIFEST)
    } else {
        path.to_path_buf()
    }
}

/// What one point's files say, and the record's wall time when it has one.
#[derive(Debug, Clone)]
pub struct Inspected {
    pub status: PointStatus,
    pub owner: Option<String>,
    pub error: Option<String>,
    pub wall_s: Option<f64>,
}

/// Remembers what each record said, by its size and modification time, so that a process
/// deriving the manifest again and again reads each record once.
#[derive(Debug, Default)]
pub struct Cache {
    records: HashMap<PathBuf, (u64, SystemTime, RecordFacts)>,
}

#[derive(Debug, Clone)]
enum RecordFacts {
    Loaded {
        status: Status,
        digest: String,
        error: Option<String>,
        wall_s: f64,
    },
    Unreadable(String),
}

impl Cache {
    fn facts(&mut self, path: &Path) -> Option<RecordFacts> {
        let meta = std::fs::metadata(path).ok()?;
        let key = (meta.len(), meta.modified().ok()?);
        if let Some((len, t, f)) = self.records.get(path) {
            if (*len, *t) == key {
                return Some(f.clone());
            }
        }
        let facts = match record::load(path) {
            Ok(r) => RecordFacts::Loaded {
                status: r.status,
                digest: r.config.digest(),
                error: r.error.clone(),
                wall_s: r.timings.total_s,
            },
            Err(e) => RecordFacts::Unreadable(e.to_string()),
        };
        self.records
            .insert(path.to_path_buf(), (key.0, key.1, facts.clone()));
        Some(facts)
    }
}

/// The point's lock, record and failure note in `dir`.
pub fn lock_path(dir: &Path, p: &PlannedPoint) -> PathBuf {
    dir.join(format!(".{}.lock", p.point.name))
}

pub fn failed_path(dir: &Path, p: &PlannedPoint) -> PathBuf {
    dir.join(format!(".{}.failed", p.point.name))
}

/// Where a point stands, from its files: a complete record of this config is done whoever
/// holds a lock; then a live lock is running; then the record's status, or the failure
/// note, or pending.
pub fn inspect(dir: &Path, p: &PlannedPoint, cache: &mut Cache) -> Inspected {
    let mut out = Inspected {
        status: PointStatus::Pending,
        owner: None,
        error: None,
        wall_s: None,
    };
    let facts = cache.facts(&dir.join(p.record_file()));
    if let Some(RecordFacts::Loaded {
        status: Status::Complete,
        digest,
        wall_s,
        ..
    }) = &facts
    {
        if *digest == p.digest {
            out.status = PointStatus::Done;
            out.wall_s = Some(*wall_s);
            return out;
        }
    }
    if let Some(h) = lock::holder(&lock_path(dir, p)) {
        if !h.stale {
            out.status = PointStatus::Running;
            out.owner = Some(h.owner);
            return out;
        }
    }
    match facts {
        Some(RecordFacts::Loaded { digest, .. }) if digest != p.digest => {
            out.status = PointStatus::Outdated;
        }
        Some(RecordFacts::Loaded {
            status,
            error,
            wall_s,
            ..
        }) => {
            out.status = match status {
                Status::Failed => PointStatus::Failed,
                _ => PointStatus::Interrupted,
            };
            out.error = error;
            out.wall_s = Some(wall_s);
        }
        Some(RecordFacts::Unreadable(why)) => {
            out.status = PointStatus::Unreadable;
            out.error = Some(why);
        }
        None => {
            if let Ok(note) = std::fs::read_to_string(failed_path(dir, p)) {
                out.status = PointStatus::Failed;
                out.error = Some(note.trim().to_string());
            }
        }
    }
    out
}

/// The manifest of `plan` as the files in `dir` say now.
pub fn derive(plan: &Plan, dir: &Path, cache: &mut Cache) -> Manifest {
    let mut counts = Counts {
        total: plan.points.len(),
        ..Counts::default()
    };
    let points = plan
        .points
        .iter()
        .map(|p| {
            let i = inspect(dir, p, cache);
            match i.status {
                PointStatus::Done => counts.done += 1,
                PointStatus::Running => counts.running += 1,
                PointStatus::Pending => counts.pending += 1,
                _ => counts.to_rerun += 1,
            }
            ManifestPoint {
                index: p.point.index,
                name: p.point.name.clone(),
                values: p.point.values.iter().cloned().collect(),
                status: i.status,
                record: p.record_file(),
                config_hash: p.digest.clone(),
                owner: i.owner,
                error: i.error,
                wall_s: i.wall_s,
            }
        })
        .collect();
    Manifest {
        manifest_version: MANIFEST_VERSION,
        name: plan.name.clone(),
        config_file: plan.config_file.clone(),
        sets: plan.sets.clone(),
        mode: plan.sweep.mode,
        axes: plan.sweep.axes.iter().map(|a| a.key.clone()).collect(),
        updated_at: crate::experiment::now_utc(),
        counts,
        config: plan.config_text.clone(),
        points,
    }
}

/// Derives the manifest and writes it atomically under its lock (waiting up to 30 s for the
/// lock; a manifest not written now is written by the next change). Returns it.
pub fn update(plan: &Plan, dir: &Path, cache: &mut Cache) -> Result<Manifest, SweepError> {
    let path = dir.join(MANIFEST);
    let lock_file = dir.join(format!(".{MANIFEST}.lock"));
    let io = |source| SweepError::Io {
        path: lock_file.clone(),
        source,
    };
    let held = lock::lock_waiting(&lock_file, Duration::from_secs(30)).map_err(io)?;
    let m = derive(plan, dir, cache);
    if held.is_some() {
        let text = toml::to_string(&m).map_err(|e| SweepError::Manifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
        record::write_atomic(&path, text.as_bytes()).map_err(|source| SweepError::Io {
            path: path.clone(),
            source,
        })?;
    }
    Ok(m)
}
