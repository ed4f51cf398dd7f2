//! Replay: load a record, run its config again on the stored run's thread count (records are
//! reproducible per thread count), save the new record beside the old one and compare the two
//! value by value ([`record::compare`]). One implementation for the CLI and the notebook.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use super::{ExperimentError, Sink};
use crate::config::DeviceChoice;
use crate::record::{self, compare, diff::Comparison, Record, RecordError};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("--tolerance is {0}; it must be a relative error >= 0 (0 = exact)")]
    Tolerance(f64),
    #[error("the replay is written beside {record}, and that folder is not writable: {source}")]
    Unwritable {
        record: PathBuf,
        source: RecordError,
    },
    #[error("replaying {path}: {source}")]
    Run {
        path: PathBuf,
        source: ExperimentError,
    },
}

/// How to replay.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReplayOptions {
    /// Largest relative difference that still matches (0 = exact).
    pub tolerance: f64,
    /// Another device than the stored one (`replay --device`).
    pub device: Option<DeviceChoice>,
    /// Another thread count than the stored run's.
    pub threads: Option<usize>,
}

/// The result of [`replay`].
#[derive(Debug, Clone)]
pub struct Replay {
    pub stored: Record,
    pub new: Record,
    /// Where the new record was written (beside the stored one).
    pub new_path: PathBuf,
    pub comparison: Comparison,
}

impl Replay {
    pub fn matches(&self) -> bool {
        self.comparison.mismatches.is_empty()
    }

    /// Whether the replay ran on another thread count than the stored run (its last digits
    /// may then differ).
    pub fn threads_differ(&self) -> bool {
        self.stored.machine.threads != self.new.machine.threads
    }
}

/// The thread count a record's run used: its config's, else the machine's.
pub fn stored_threads(stored: &Record) -> usize {
    if stored.config.threads > 0 {
        stored.config.threads
    } else {
        stored.machine.threads
    }
}

/// Re-runs the config stored in `path` (same seed, same methods; on `opts.device` when given,
/// else on the stored one; on the stored run's thread count unless `opts.threads` says
/// otherwise), writes the new record beside it with `replay_of` naming it, and compares the
/// two with [`compare::compare`]. The folder is checked for writing before any work.
pub fn replay(
    path: &Path,
    opts: &ReplayOptions,
    sink: &dyn Sink,
    cancel: &AtomicBool,
) -> Result<Replay, ReplayError> {
    if opts.tolerance.is_nan() || opts.tolerance < 0.0 {
        return Err(ReplayError::Tolerance(opts.tolerance));
    }
    let stored = record::load(path)?;
    let dir = record::folder_of(path);
    record::check_writable(dir).map_err(|source| ReplayError::Unwritable {
        record: path.to_path_buf(),
        source,
    })?;
    let mut cfg = stored.config.clone();
    if let Some(d) = opts.device {
        cfg.device = d;
    }
    let threads = opts.threads.unwrap_or_else(|| stored_threads(&stored));
    let mut new = super::run_record_on_threads(&cfg, threads, sink, cancel).map_err(|source| {
        ReplayError::Run {
            path: path.to_path_buf(),
            source,
        }
    })?;
    new.replay_of = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let new_path = record::save(&new, dir)?;
    let comparison = compare::compare(&stored, &new, opts.tolerance);
    Ok(Replay {
        stored,
        new,
        new_path,
        comparison,
    })
}
