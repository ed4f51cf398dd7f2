//! A stored record against a new run of its config (a replay), value by value: what is
//! compared, what legitimately differs, and the finite-difference noise left out when the two
//! summed in another order. Running the replay is the experiment layer's.

use super::diff::{self, Comparison};
use super::{Record, Status, SCHEMA_VERSION};
use crate::curvature::SpectrumMethod;

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

/// What a dense finite-difference spectrum says about its own noise, and the counts that
/// hinge on eigenvalues within that noise, relative to the spectrum: in another summation
/// order (another device, thread count or GEMM kernel) they differ by design, so such a replay does not
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

/// Fields (by path suffix) whose meaning changed at a schema version: a stored record older
/// than that version holds the old meaning, so a replay by this version does not compare
/// them (nor `schema_version` itself) and lists them in `Comparison::changed_meaning`.
/// Schema 2: near-zero, negative and condition counts at the finite-difference noise floor
/// instead of at `n·eps·max|λ|` (docs/record-format.md).
pub const CHANGED_MEANING: &[(u32, &str)] = &[
    (2, "stats.zero_tol"),
    (2, "stats.negatives"),
    (2, "stats.near_zero"),
    (2, "stats.condition"),
    (2, "sources.counts"),
];

/// Fields (by path segment) first measured at a schema version: a stored record older than
/// that holds none of them, so a replay by this version does not count the new values as
/// mismatches (they are listed in `Comparison::changed_meaning` with the rest).
/// Schema 3: structured pruning (`granularity`, unit counts), the mechanism of each row, block
/// lesions, and the Rayleigh quotient of the replicate summary.
pub const ADDED: &[(u32, &str)] = &[
    (3, "granularity"),
    (3, "units_eligible"),
    (3, "units_pruned"),
    (3, "mechanism"),
    (3, "lesions"),
    (3, "rayleigh"),
];

/// The [`ADDED`] paths of `new` (and anything under them), for a stored record of `schema`.
fn added_since(schema: u32, new: &toml::Value) -> Vec<String> {
    let names: Vec<&str> = ADDED
        .iter()
        .filter(|(v, _)| schema < *v)
        .map(|(_, s)| *s)
        .collect();
    if names.is_empty() {
        return Vec::new();
    }
    diff::leaves(new)
        .into_iter()
        .filter(|l| {
            l.path
                .split('.')
                .any(|seg| names.contains(&seg.split('[').next().unwrap_or(seg)))
        })
        .map(|l| l.path)
        .collect()
}

/// The [`CHANGED_MEANING`] paths on either side, for a stored record of `schema`.
fn changed_since(schema: u32, values: [&toml::Value; 2]) -> Vec<String> {
    let suffixes: Vec<&str> = CHANGED_MEANING
        .iter()
        .filter(|(v, _)| schema < *v)
        .map(|(_, s)| *s)
        .collect();
    let mut out: Vec<String> = Vec::new();
    for value in values.into_iter().filter(|_| !suffixes.is_empty()) {
        for l in diff::leaves(value) {
            let hit = suffixes
                .iter()
                .any(|s| l.path == *s || l.path.ends_with(&format!(".{s}")));
            if hit && !out.contains(&l.path) {
                out.push(l.path);
            }
        }
    }
    out
}

/// The device a record's `machine.device` names, without the note on how it was chosen
/// (`cpu (auto: built without CUDA)` -> `cpu`, `cuda:0 (auto)` -> `cuda:0`).
fn device_of(machine_device: &str) -> &str {
    machine_device.split_whitespace().next().unwrap_or("")
}

/// Whether two runs summed in different orders: another device, thread count or CPU GEMM
/// kernels (`machine.kernels`; a record without it ran gemm 0.15's, which no build runs now).
pub fn summed_differently(stored: &Record, new: &Record) -> bool {
    device_of(&stored.machine.device) != device_of(&new.machine.device)
        || stored.machine.threads != new.machine.threads
        || stored.machine.kernels != new.machine.kernels
}

/// Compares a stored record with a new run of its config, value by value.
///
/// When the two ran in different summation orders ([`summed_differently`]),
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
    let reordered = summed_differently(stored, new);
    // from both sides: a condition resolved in one summation order may not be in the other
    let mut noise: Vec<String> = Vec::new();
    for value in [&stored_value, &new_value]
        .into_iter()
        .filter(|_| reordered)
    {
        let leaves = diff::leaves(value);
        let dense: std::collections::HashSet<&str> = leaves
            .iter()
            .filter(|l| l.value.as_str() == Some(SpectrumMethod::Dense.name()))
            .filter_map(|l| l.path.strip_suffix(".method"))
            .collect();
        for l in &leaves {
            if fd_noise_of(&l.path).is_some_and(|s| dense.contains(s)) && !noise.contains(&l.path) {
                noise.push(l.path.clone());
            }
        }
    }
    skip.extend(noise.iter().map(String::as_str));
    let mut changed = changed_since(stored.schema_version, [&stored_value, &new_value]);
    changed.extend(added_since(stored.schema_version, &new_value));
    if stored.schema_version < 3 {
        // the claims schema 3 added (the mechanism, block lesions) come after the old ones
        let n = stored.verdicts.len();
        changed.extend(
            diff::leaves(&new_value)
                .into_iter()
                .filter(|l| {
                    l.path
                        .strip_prefix("verdicts[")
                        .and_then(|r| r.split(']').next()?.parse::<usize>().ok())
                        .is_some_and(|i| i >= n)
                })
                .map(|l| l.path),
        );
    }
    skip.extend(changed.iter().map(String::as_str));
    if stored.schema_version != SCHEMA_VERSION {
        skip.push("schema_version");
    }
    let mut c = diff::compare(&stored_value, &new_value, &skip, tolerance, partial);
    c.not_compared = noise;
    c.changed_meaning = changed;
    c
}
