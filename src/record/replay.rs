//! Replay: re-run a record's config and compare every stored value with the new run.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use super::diff::{self, Comparison};
use super::{Record, RecordError, Status};
use crate::config::DeviceChoice;
use crate::experiment::{self, ExperimentError, Sink};

/// Paths that legitimately differ between two runs of the same config: the clock, the
/// machine, the tool version, links to other files.
pub const NOT_COMPARED: &[&str] = &[
    "started_at",
    "finished_at",
    "timings",
    "replay_of",
    "machine",
    "tool_version",
    "checkpoint",
];

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("replaying {path}: {source}")]
    Run {
        path: PathBuf,
        source: ExperimentError,
    },
}

/// What a dense finite-difference spectrum says about its own noise, and the counts that
/// hinge on eigenvalues within that noise, relative to the spectrum: in another summation
/// order (another device or thread count) they differ by design, so such a replay does not
/// compare them (docs/gpu.md).
pub const FD_NOISE: &[&str] = &[
    "asymmetry",
    "noise_floor",
    "negatives_beyond_noise",
    "stats.negatives",
    "stats.near_zero",
    "stats.condition",
];

/// The spectrum `path` measures the noise of, when it is one of the [`FD_NOISE`] fields
/// (`plain.spectrum.stats.condition` -> `plain.spectrum`).
pub fn fd_noise_of(path: &str) -> Option<&str> {
    FD_NOISE
        .iter()
        .find_map(|f| path.strip_suffix(f)?.strip_suffix('.'))
}

/// Whether `path` is one of the [`FD_NOISE`] fields of a spectrum.
pub fn is_fd_noise(path: &str) -> bool {
    fd_noise_of(path).is_some()
}

/// The device a record's `machine.device` names, without the note on how it was chosen
/// (`cpu (auto: built without CUDA)` -> `cpu`, `cuda:0 (auto)` -> `cuda:0`).
fn device_of(machine_device: &str) -> &str {
    machine_device.split_whitespace().next().unwrap_or("")
}

/// Compares a stored record with a new run of its config, value by value.
///
/// When the two ran in different summation orders (another device, another thread count),
/// the [`FD_NOISE`] fields of the dense spectra are left out and listed in
/// `Comparison::not_compared`.
///
/// When the stored record is not complete (an interrupted run), only the values it holds are
/// compared, and its `status` and `error` are not.
pub fn compare(stored: &Record, new: &Record, tolerance: f64) -> Comparison {
    let partial = stored.status != Status::Complete;
    let mut skip: Vec<&str> = NOT_COMPARED.to_vec();
    if partial {
        skip.extend(["status", "error"]);
    }
    // a replay on another device (`replay --device`) changes the config's device on purpose
    if stored.config.device != new.config.device {
        skip.push("config.device");
    }
    let stored_value = diff::to_value(stored);
    let new_value = diff::to_value(new);
    let reordered = device_of(&stored.machine.device) != device_of(&new.machine.device)
        || stored.machine.threads != new.machine.threads;
    // from both sides: a condition resolved in one summation order may not be in the other
    let mut noise: Vec<String> = Vec::new();
    for value in [&stored_value, &new_value]
        .into_iter()
        .filter(|_| reordered)
    {
        let leaves = diff::leaves(value);
        let dense: std::collections::HashSet<&str> = leaves
            .iter()
            .filter(|l| l.value.as_str() == Some("dense"))
            .filter_map(|l| l.path.strip_suffix(".method"))
            .collect();
        for l in &leaves {
            if fd_noise_of(&l.path).is_some_and(|s| dense.contains(s)) && !noise.contains(&l.path) {
                noise.push(l.path.clone());
            }
        }
    }
    skip.extend(noise.iter().map(String::as_str));
    let mut c = diff::compare(&stored_value, &new_value, &skip, tolerance, partial);
    c.not_compared = noise;
    c
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
}

/// The folder a record lives in (`.` for a bare file name).
pub fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Re-runs the config stored in `path` (same seed, same methods; on `device` when given, else
/// on the stored one), writes the new record beside it with `replay_of` naming it, and
/// compares the two with [`compare`].
///
/// The kernel thread count is the caller's to set (see `cli::init_threads`): records are
/// reproducible per thread count, and the stored one is in `machine.threads`.
pub fn replay(
    path: &Path,
    tolerance: f64,
    device: Option<DeviceChoice>,
    sink: &dyn Sink,
    cancel: &AtomicBool,
) -> Result<Replay, ReplayError> {
    let stored = super::load(path)?;
    let mut cfg = stored.config.clone();
    if let Some(d) = device {
        cfg.device = d;
    }
    let mut new = experiment::run(&cfg, sink, cancel).map_err(|source| ReplayError::Run {
        path: path.to_path_buf(),
        source,
    })?;
    new.replay_of = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let new_path = super::save(&new, folder_of(path))?;
    let comparison = compare(&stored, &new, tolerance);
    Ok(Replay {
        stored,
        new,
        new_path,
        comparison,
    })
}
