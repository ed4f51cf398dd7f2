//! Sweeps: the points of a config's `[sweep]`, each a full experiment, run on the cores of
//! one box or as shards of a SLURM array into one folder, with a manifest (`sweep.toml`).
//!
//! Above `experiment`: a point is a resolved config ([`crate::config::Source::points`]); it
//! runs through [`experiment::run_record_on_threads`] and its record is written atomically as
//! `NAME.toml` in the sweep's folder. Who runs a point is settled by its lock
//! (`.NAME.lock`, made by exclusive creation, see [`lock`]); what each point's state is
//! comes from its files, and the manifest is derived from them ([`manifest`]). So:
//! - resume: a point whose complete record has the config's hash is skipped; interrupted,
//!   failed, truncated, outdated and missing points run again;
//! - two processes on one folder (shards, or a second `sweep` by mistake) never run or write
//!   the same point, and the manifest is always whole;
//! - a killed process leaves its lock, which the next run takes over (its pid is gone).

pub mod lock;
pub mod manifest;
pub mod slurm;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::config::{Config, ConfigError, DataSource, Override, Point, Source, SweepConfig};
use crate::experiment::{self, RunEvent};
use crate::record::{self, Status};

pub use manifest::{Manifest, ManifestPoint, PointStatus, MANIFEST};

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{file} has no [sweep] section: run it with `resprune-tui run`, or add e.g.\n  [sweep]\n  \"model.depth\" = [1, 2, 4]")]
    NoSweep { file: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a sweep manifest: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error(transparent)]
    Record(#[from] record::RecordError),
    #[error("--shard: {0}")]
    Shard(String),
}

/// A point ready to run: its values, resolved config and the config's hash.
#[derive(Debug, Clone)]
pub struct PlannedPoint {
    pub point: Point,
    pub config: Config,
    /// [`Config::digest`] of `config`.
    pub digest: String,
}

impl PlannedPoint {
    /// `NAME.toml`.
    pub fn record_file(&self) -> String {
        format!("{}.toml", self.point.name)
    }
}

/// Every point of a sweep, validated.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub config_file: String,
    pub config_text: String,
    pub sets: Vec<String>,
    pub sweep: SweepConfig,
    pub points: Vec<PlannedPoint>,
}

/// Reads `path` and resolves every point with `sets` (`KEY=VALUE`); any bad point is the
/// error, before anything runs.
pub fn plan(path: &Path, sets: &[String]) -> Result<Plan, SweepError> {
    plan_source(&Source::read(path)?, sets)
}

/// [`plan`] of a config's text.
pub fn plan_source(src: &Source, sets: &[String]) -> Result<Plan, SweepError> {
    let overrides = Override::parse_all(sets)?;
    let (sweep, points) = src.points(&overrides)?;
    if sweep.is_empty() {
        return Err(SweepError::NoSweep {
            file: src.file.clone(),
        });
    }
    let name = points
        .first()
        .map(|(_, c)| c.name.clone())
        .unwrap_or_default();
    let points = points
        .into_iter()
        .map(|(point, mut config)| {
            // one hash wherever the sweep is started from
            if let Some(p) = &config.data.path {
                if let Ok(abs) = std::fs::canonicalize(p) {
                    config.data.path = Some(abs);
                }
            }
            PlannedPoint {
                digest: config.digest(),
                point,
                config,
            }
        })
        .collect();
    Ok(Plan {
        name,
        config_file: src.file.clone(),
        config_text: src.text.clone(),
        sets: sets.to_vec(),
        sweep,
        points,
    })
}

/// Which points this process runs: all, or every N-th from K.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shard {
    All,
    /// Points `k, k + n, k + 2n, ...` (`0 <= k < n`).
    Part {
        k: usize,
        n: usize,
    },
}

impl Shard {
    /// `K/N`, or `slurm` (from `SLURM_ARRAY_TASK_ID` and `SLURM_ARRAY_TASK_COUNT`).
    pub fn parse(s: &str) -> Result<Shard, SweepError> {
        if s == "slurm" {
            return Shard::from_slurm(|k| std::env::var(k).ok());
        }
        let bad = || {
            SweepError::Shard(format!(
                "`{s}` is not K/N (e.g. 0/4: points 0, 4, 8, ...) or `slurm`"
            ))
        };
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let k: usize = k.trim().parse().map_err(|_| bad())?;
        let n: usize = n.trim().parse().map_err(|_| bad())?;
        if n == 0 || k >= n {
            return Err(SweepError::Shard(format!(
                "`{s}`: K must be in 0..N and N at least 1"
            )));
        }
        Ok(Shard::Part { k, n })
    }

    /// The shard of a SLURM array task: its index from the array's first, of the array's
    /// task count (`SLURM_ARRAY_TASK_COUNT`, else `MAX - MIN + 1`).
    pub fn from_slurm(env: impl Fn(&str) -> Option<String>) -> Result<Shard, SweepError> {
        let num = |k: &str| env(k).and_then(|v| v.trim().parse::<usize>().ok());
        let id = num("SLURM_ARRAY_TASK_ID").ok_or_else(|| {
            SweepError::Shard(
                "`slurm`: SLURM_ARRAY_TASK_ID is not set (run inside an sbatch --array job, \
                 e.g. the script of `sweep CONFIG --emit slurm`)"
                    .into(),
            )
        })?;
        let min = num("SLURM_ARRAY_TASK_MIN").unwrap_or(0);
        let n = num("SLURM_ARRAY_TASK_COUNT")
            .or_else(|| Some(num("SLURM_ARRAY_TASK_MAX")? + 1 - min))
            .ok_or_else(|| {
                SweepError::Shard("`slurm`: SLURM_ARRAY_TASK_COUNT is not set".into())
            })?;
        let k = id.checked_sub(min).filter(|k| *k < n).ok_or_else(|| {
            SweepError::Shard(format!("`slurm`: task {id} is outside the array of {n}"))
        })?;
        Ok(Shard::Part { k, n })
    }

    pub fn contains(self, index: usize) -> bool {
        match self {
            Shard::All => true,
            Shard::Part { k, n } => index % n == k,
        }
    }
}

/// What a sweep reports as it goes (the CLI's progress, the notebook's live view).
#[derive(Debug, Clone, PartialEq)]
pub enum SweepEvent {
    /// The points this process will run, of `total`; `done` were complete already.
    Planned {
        total: usize,
        to_run: usize,
        done: usize,
        jobs: usize,
    },
    Started {
        index: usize,
        name: String,
    },
    /// An event of the point's experiment.
    Run {
        index: usize,
        event: RunEvent,
    },
    /// Held by another live process: left to it.
    Busy {
        index: usize,
        name: String,
        owner: String,
    },
    Finished {
        index: usize,
        name: String,
        status: PointStatus,
        wall_s: f64,
        error: Option<String>,
    },
}

/// How a sweep runs.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Points at once (0: [`default_jobs`]); with more than one, each point runs on one
    /// kernel thread.
    pub jobs: usize,
    pub shard: Shard,
}

/// What a sweep did, and the manifest as it left it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub ran: usize,
    pub done: usize,
    pub skipped: usize,
    pub busy: usize,
    pub interrupted: usize,
    pub failed: usize,
    pub jobs: usize,
    pub manifest: Manifest,
}

/// Parameters a point's model will have, from its config alone (no data loaded): the
/// inputs the data source gives (a CSV's columns from its header).
pub fn estimated_params(cfg: &Config) -> usize {
    let d = &cfg.data;
    let (features, classes) = match d.source {
        DataSource::Synthetic | DataSource::Teacher => (d.features, d.classes),
        DataSource::BreastCancer => (30, 2),
        DataSource::Csv => {
            let cols = d
                .path
                .as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .and_then(|t| t.lines().next().map(|l| l.split(',').count()))
                .unwrap_or(2);
            (cols.saturating_sub(1).max(1), 2)
        }
        _ if d.encoding == crate::config::TextEncoding::Tokens => (d.max_len, 2),
        _ => (d.max_vocab, 2),
    };
    cfg.model_spec(features, classes, Some(d.max_vocab + 2))
        .num_params()
}

/// Points at once when `--jobs` is not given: one per core when every model is small (at or
/// below 50,000 parameters a gradient is too small for kernel threads to pay, so points in
/// parallel use the cores better), else one point at a time on every core; never more
/// than the points to run, nor than the memory holds (a dense Hessian point needs about
/// 3 × 8n² bytes).
pub fn default_jobs(points: &[&PlannedPoint]) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let largest = points
        .iter()
        .map(|p| estimated_params(&p.config))
        .max()
        .unwrap_or(0);
    let by_size = if largest <= 50_000 { cores } else { 1 };
    let dense = points
        .iter()
        .map(|p| {
            let n = estimated_params(&p.config);
            let dense = match p.config.hessian.method {
                crate::config::HessianMethod::Dense => true,
                crate::config::HessianMethod::Lanczos => false,
                _ => n <= p.config.hessian.dense_limit,
            };
            if dense {
                24 * (n as u64).pow(2)
            } else {
                0
            }
        })
        .max()
        .unwrap_or(0)
        + (100 << 20);
    let by_memory = available_memory().map_or(usize::MAX, |m| (m / dense).max(1) as usize);
    by_size.min(by_memory).min(points.len()).max(1)
}

/// `MemAvailable` of `/proc/meminfo`, in bytes.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs the points of `plan` that `opts.shard` names and that are not done, into `dir`
/// (created). A cancel stops every running point at its next checkpoint (its record is
/// saved as interrupted) and starts no more.
pub fn run(
    plan: &Plan,
    dir: &Path,
    opts: RunOptions,
    cancel: &AtomicBool,
    events: &(dyn Fn(SweepEvent) + Sync),
) -> Result<Outcome, SweepError> {
    record::check_writable(dir)?;
    record::clean_stale_temps(dir);
    // the locks of processes that were killed: their points are free again
    for p in &plan.points {
        lock::clear_stale(&manifest::lock_path(dir, p));
    }
    let cache = Mutex::new(manifest::Cache::default());
    let update = || -> Result<Manifest, SweepError> {
        let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
        manifest::update(plan, dir, &mut c)
    };
    let first = update()?;
    let mine: Vec<&PlannedPoint> = plan
        .points
        .iter()
        .filter(|p| opts.shard.contains(p.point.index))
        .collect();
    let todo: Vec<&PlannedPoint> = mine
        .iter()
        .copied()
        .filter(|p| first.points[p.point.index].status != PointStatus::Done)
        .collect();
    let jobs = if opts.jobs == 0 {
        default_jobs(&todo)
    } else {
        opts.jobs.min(todo.len()).max(1)
    };
    events(SweepEvent::Planned {
        total: plan.points.len(),
        to_run: todo.len(),
        done: mine.len() - todo.len(),
        jobs,
    });
    let beats = lock::Heartbeat::start();
    let next = AtomicUsize::new(0);
    let tally = Mutex::new(Outcome {
        ran: 0,
        done: 0,
        skipped: mine.len() - todo.len(),
        busy: 0,
        interrupted: 0,
        failed: 0,
        jobs,
        manifest: first.clone(),
    });
    let worker = || -> Result<(), SweepError> {
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Ok(());
            }
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(p) = todo.get(i) else {
                return Ok(());
            };
            let threads = if jobs > 1 { 1 } else { p.config.threads };
            let outcome = run_point(plan, p, dir, threads, &beats, &cache, cancel, events)?;
            {
                let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
                match outcome {
                    Ran::Busy => t.busy += 1,
                    Ran::AlreadyDone => t.skipped += 1,
                    Ran::Finished(s) => {
                        t.ran += 1;
                        match s {
                            PointStatus::Done => t.done += 1,
                            PointStatus::Interrupted => t.interrupted += 1,
                            _ => t.failed += 1,
                        }
                    }
                }
            }
            update()?;
        }
    };
    let results: Vec<Result<(), SweepError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..jobs).map(|_| s.spawn(worker)).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let manifest = update()?;
    results.into_iter().collect::<Result<(), _>>()?;
    let mut out = tally.into_inner().unwrap_or_else(|e| e.into_inner());
    out.manifest = manifest;
    Ok(out)
}

enum Ran {
    Busy,
    AlreadyDone,
    Finished(PointStatus),
}

/// One point: its lock taken (or left to its live holder), its experiment run, its record
/// (or failure note) written, its lock released.
#[allow(clippy::too_many_arguments)]
fn run_point(
    plan: &Plan,
    p: &PlannedPoint,
    dir: &Path,
    threads: usize,
    beats: &lock::Heartbeat,
    cache: &Mutex<manifest::Cache>,
    cancel: &AtomicBool,
    events: &(dyn Fn(SweepEvent) + Sync),
) -> Result<Ran, SweepError> {
    let index = p.point.index;
    let name = p.point.name.clone();
    let lock_file = manifest::lock_path(dir, p);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SweepError::Io { path, source }
    };
    let _lock = match lock::try_lock(&lock_file, Some(beats)).map_err(io(&lock_file))? {
        lock::Tried::Taken(l) => l,
        lock::Tried::Held(h) => {
            events(SweepEvent::Busy {
                index,
                name,
                owner: h.owner,
            });
            return Ok(Ran::Busy);
        }
    };
    // finished by another process between our look and our lock?
    {
        let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
        if manifest::inspect(dir, p, &mut c).status == PointStatus::Done {
            return Ok(Ran::AlreadyDone);
        }
    }
    let failed_note = manifest::failed_path(dir, p);
    let _ = std::fs::remove_file(&failed_note);
    events(SweepEvent::Started {
        index,
        name: name.clone(),
    });
    // the manifest says `running` from now on
    {
        let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
        manifest::update(plan, dir, &mut c)?;
    }
    let t = Instant::now();
    let sink = |event: RunEvent| {
        events(SweepEvent::Run { index, event });
        true
    };
    // a point keeps no checkpoint: the record only, without building the export
    let result = experiment::run_record_on_threads(&p.config, threads, &sink, cancel);
    let (status, error) = match result {
        Ok(rec) => {
            let path = dir.join(p.record_file());
            record::save_as(&rec, &path)?;
            let status = match rec.status {
                Status::Complete => PointStatus::Done,
                Status::Interrupted => PointStatus::Interrupted,
                Status::Failed => PointStatus::Failed,
            };
            (status, rec.error.clone())
        }
        Err(e) => {
            let msg = e.to_string();
            let note = format!("{msg}\nconfig_hash = {}\n", p.digest);
            record::write_atomic(&failed_note, note.as_bytes()).map_err(io(&failed_note))?;
            (PointStatus::Failed, Some(msg))
        }
    };
    events(SweepEvent::Finished {
        index,
        name,
        status,
        wall_s: t.elapsed().as_secs_f64(),
        error,
    });
    Ok(Ran::Finished(status))
}

/// The sweep's folder: `--out DIR`, else `<experiments>/<name>/`.
pub fn default_dir(plan: &Plan, out: Option<&Path>) -> PathBuf {
    match out {
        Some(d) => d.to_path_buf(),
        None => record::default_dir(None).join(&plan.name),
    }
}

/// A sweep's records read back for a report: its manifest and, per point in order, the
/// record when it loads.
pub struct Loaded {
    pub manifest: Manifest,
    pub dir: PathBuf,
    pub records: Vec<(ManifestPoint, Option<record::Record>)>,
}

impl Loaded {
    /// The report over its points (their records; a point's missing axis value is left out).
    pub fn report(&self) -> crate::report::sweep::SweepReport {
        let m = &self.manifest;
        let inputs: Vec<crate::report::sweep::PointInput<'_>> = self
            .records
            .iter()
            .map(|(p, r)| crate::report::sweep::PointInput {
                name: &p.name,
                values: m
                    .axes
                    .iter()
                    .filter_map(|a| Some((a.clone(), p.values.get(a)?.clone())))
                    .collect(),
                status: p.status.word(),
                record: r.as_ref(),
            })
            .collect();
        crate::report::sweep::sweep_report(&m.name, &m.axes, m.mode, &inputs)
    }
}

/// Loads the manifest at `path` (a sweep folder or its `sweep.toml`) and every point's
/// record that loads.
pub fn load(path: &Path) -> Result<Loaded, SweepError> {
    let mpath = manifest::manifest_path(path);
    let manifest = Manifest::load(&mpath)?;
    let dir = record::folder_of(&mpath).to_path_buf();
    let records = manifest
        .points
        .iter()
        .map(|p| (p.clone(), record::load(&dir.join(&p.record)).ok()))
        .collect();
    Ok(Loaded {
        manifest,
        dir,
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_the_points_and_read_slurm() {
        assert_eq!(Shard::parse("1/3").unwrap(), Shard::Part { k: 1, n: 3 });
        for bad in ["3/3", "1", "a/2", "0/0"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let s = Shard::Part { k: 1, n: 3 };
        let mine: Vec<usize> = (0..8).filter(|&i| s.contains(i)).collect();
        assert_eq!(mine, [1, 4, 7]);
        let env = |id: &'static str, count: Option<&'static str>| {
            move |k: &str| match k {
                "SLURM_ARRAY_TASK_ID" => Some(id.to_string()),
                "SLURM_ARRAY_TASK_COUNT" => count.map(str::to_string),
                "SLURM_ARRAY_TASK_MIN" => Some("0".into()),
                "SLURM_ARRAY_TASK_MAX" => Some("4".into()),
                _ => None,
            }
        };
        assert_eq!(
            Shard::from_slurm(env("2", Some("5"))).unwrap(),
            Shard::Part { k: 2, n: 5 }
        );
        assert_eq!(
            Shard::from_slurm(env("4", None)).unwrap(),
            Shard::Part { k: 4, n: 5 }
        );
        assert!(Shard::from_slurm(env("7", Some("5"))).is_err());
        assert!(Shard::from_slurm(|_| None).is_err());
    }

    #[test]
    fn small_models_run_one_point_per_core() {
        let src = Source::from_text(
            "name = \"s\"\n[sweep]\n\"model.depth\" = [1, 2, 3, 4, 5, 6, 7, 8]\n",
            "s.toml",
        );
        let plan = plan_source(&src, &[]).unwrap();
        let pts: Vec<&PlannedPoint> = plan.points.iter().collect();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(default_jobs(&pts), cores.min(8));
        assert_eq!(default_jobs(&pts[..1]), 1);
        assert_eq!(
            estimated_params(&plan.points[0].config),
            10 * 20 + 20 + 420 + 42
        );
        let big = plan_source(&src, &["model.width=400".into()]).unwrap();
        let pts: Vec<&PlannedPoint> = big.points.iter().collect();
        assert_eq!(default_jobs(&pts), 1);
    }

    #[test]
    fn a_config_without_sweep_is_refused() {
        let src = Source::from_text("name = \"s\"\n", "s.toml");
        assert!(matches!(
            plan_source(&src, &[]),
            Err(SweepError::NoSweep { .. })
        ));
    }
}
