//! One experiment end to end. Per seed: load the data (and check what depends on it), build
//! the [`Member`]s (residual, plain, the alpha-sweep points) from one `theta`, and pass them
//! through the stages train → spectrum → prune → fine-tune; every stage takes all members
//! and ends with `Ok` or a [`Stop`]. Progress goes out as [`RunEvent`]s; the result is a
//! [`Record`]. Replaying a record is running its config again, so it lives here too.

mod device;
mod member;
pub mod replay;
mod stages;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::config::{Config, Products};
use crate::curvature::{self, SpectrumStats};
use crate::data::{self, DataSummary};
use crate::model::{Backend, Variant};
use crate::prune::{Finetuned, PruneError, PruneRow};
use crate::record::checkpoint::{CheckpointContents, CheckpointData};
use crate::record::{Machine, ModelSummary, Record, Replicate, Status, Timings, SCHEMA_VERSION};
use crate::report;
pub use crate::stop::Stop;
use crate::train::{EpochStats, TrainError};

pub use device::open_device;
pub use member::{initial_theta, model_spec, model_summary, Member, Role};
pub use replay::{replay, Replay, ReplayError, ReplayOptions};
pub use stages::memory_estimate;
use stages::Ctx;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Train,
    Spectrum,
    Prune,
    Finetune,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Train => "train",
            Stage::Spectrum => "spectrum",
            Stage::Prune => "prune",
            Stage::Finetune => "fine-tune",
        }
    }
}

/// Small owned increments of a run, for progress bars and the TUI.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    Started {
        name: String,
        params: usize,
        epochs: usize,
        ratios: usize,
        /// The pair's architecture and layer table, as the record will hold it.
        model: Box<ModelSummary>,
    },
    StageStarted {
        variant: Variant,
        stage: Stage,
    },
    Epoch {
        variant: Variant,
        stats: EpochStats,
        epochs: usize,
    },
    /// Hessian-vector products (dense: columns) done of at most `total` in `phase`.
    HessianProgress {
        variant: Variant,
        phase: curvature::SpectrumPhase,
        done: usize,
        total: usize,
    },
    Spectrum {
        variant: Variant,
        /// Which statistics were measured (see `Spectrum::sources`).
        method: curvature::SpectrumMethod,
        stats: SpectrumStats,
    },
    PruneRow {
        variant: Variant,
        /// Boxed: a row is far larger than the other events.
        row: Box<PruneRow>,
    },
    /// Row `index` of the variant's pruning table after fine-tuning with its mask held.
    Finetuned {
        variant: Variant,
        index: usize,
        finetuned: Finetuned,
    },
    /// Sent by whoever saved the record.
    Finished(std::path::PathBuf),
    Failed(String),
    /// A new seed of the pair starts (only when the config asks for replicates).
    Replicate {
        index: usize,
        of: usize,
        seed: u64,
    },
}

/// Where events go. `send` returns false when nobody listens any more, which cancels the run.
pub trait Sink: Sync {
    fn send(&self, event: RunEvent) -> bool;
}

impl<F: Fn(RunEvent) -> bool + Sync> Sink for F {
    fn send(&self, event: RunEvent) -> bool {
        self(event)
    }
}

impl Sink for std::sync::mpsc::Sender<RunEvent> {
    fn send(&self, event: RunEvent) -> bool {
        std::sync::mpsc::Sender::send(self, event).is_ok()
    }
}

/// A sink that drops everything (tests, benches).
pub fn quiet(_: RunEvent) -> bool {
    true
}

#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error("data: {0}")]
    Data(#[from] data::DataError),
    #[error("training: {0}")]
    Train(#[from] TrainError),
    // not `source`: thiserror would make it the error's cause, and `{:#}` would print its
    // message a second time after this one
    #[error("spectrum of the {variant} model: {error}")]
    Curvature {
        variant: Variant,
        error: curvature::CurvatureError,
    },
    /// The config breaks a rule (names the key; file and line when it came from one).
    #[error(transparent)]
    Invalid(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Config(String),
    #[error("cannot start a pool of {threads} threads: {why}")]
    Threads { threads: usize, why: String },
    #[error("pruning: {0}")]
    Prune(#[from] PruneError),
}

pub fn now_utc() -> String {
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc()
        .format(&f)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// Runs `f` on a pool of `threads` kernel threads (0: the process's default pool, one per
/// core). Records are reproducible per thread count, so a run and its replay pick it here.
pub fn in_pool<T: Send>(
    threads: usize,
    f: impl FnOnce() -> T + Send,
) -> Result<T, ExperimentError> {
    if threads == 0 || threads == rayon::current_num_threads() {
        return Ok(f());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| ExperimentError::Threads {
            threads,
            why: e.to_string(),
        })?;
    Ok(pool.install(f))
}

/// Runs the whole experiment, once per seed. A cancelled run returns a record with
/// `status = interrupted` holding every stage that finished.
pub fn run(cfg: &Config, sink: &dyn Sink, cancel: &AtomicBool) -> Result<Record, ExperimentError> {
    run_record_on_threads(cfg, cfg.threads, sink, cancel)
}

/// [`run`], also returning what a checkpoint holds when the first seed completed: that
/// seed's initial and trained weights and masks, and the data they were computed on. Runs on
/// `cfg.threads` kernel threads.
pub fn run_with_weights(
    cfg: &Config,
    sink: &dyn Sink,
    cancel: &AtomicBool,
) -> Result<(Record, Option<CheckpointContents>), ExperimentError> {
    run_on_threads(cfg, cfg.threads, sink, cancel)
}

/// [`run_with_weights`] on `threads` kernel threads whatever `cfg.threads` says.
pub fn run_on_threads(
    cfg: &Config,
    threads: usize,
    sink: &dyn Sink,
    cancel: &AtomicBool,
) -> Result<(Record, Option<CheckpointContents>), ExperimentError> {
    cfg.validate().map_err(ExperimentError::Invalid)?;
    in_pool(threads, || run_seeds(cfg, true, sink, cancel))?
}

/// [`run`] on `threads` kernel threads whatever `cfg.threads` says (a replay runs on the
/// stored run's count); keeps no checkpoint contents, so the first seed's data is freed as
/// soon as it is done.
pub fn run_record_on_threads(
    cfg: &Config,
    threads: usize,
    sink: &dyn Sink,
    cancel: &AtomicBool,
) -> Result<Record, ExperimentError> {
    cfg.validate().map_err(ExperimentError::Invalid)?;
    in_pool(threads, || run_seeds(cfg, false, sink, cancel))?.map(|(record, _)| record)
}

/// What one seed produced.
struct SeedOutcome {
    seed: u64,
    model: ModelSummary,
    data: DataSummary,
    members: Vec<Member>,
    /// First seed only: the data a checkpoint stores, and the shared initial `theta`.
    export: Option<(CheckpointData, Vec<f64>)>,
    timings: Timings,
    interrupted: bool,
}

fn run_seeds(
    cfg: &Config,
    export: bool,
    sink: &dyn Sink,
    cancel: &AtomicBool,
) -> Result<(Record, Option<CheckpointContents>), ExperimentError> {
    let t_all = Instant::now();
    let started_at = now_utc();
    let seeds = cfg.seed_list();
    // a listener that went away cancels the run as Ctrl-C does
    let events = |ev: RunEvent| {
        if !sink.send(ev) {
            cancel.store(true, Ordering::Relaxed);
        }
    };
    let (backend, device) = open_device(cfg.device)?;
    let mut outcomes = Vec::new();
    for (i, &seed) in seeds.iter().enumerate() {
        if seeds.len() > 1 {
            events(RunEvent::Replicate {
                index: i,
                of: seeds.len(),
                seed,
            });
        }
        let out = run_seed(cfg, seed, export && i == 0, &backend, &events, cancel)?;
        let stop = out.interrupted;
        outcomes.push(out);
        if stop {
            break;
        }
    }
    let interrupted = outcomes.iter().any(|o| o.interrupted);
    let mut timings = Timings::default();
    for o in &outcomes {
        timings.data_s += o.timings.data_s;
        timings.train_s += o.timings.train_s;
        timings.spectrum_s += o.timings.spectrum_s;
        timings.prune_s += o.timings.prune_s;
    }
    timings.total_s = t_all.elapsed().as_secs_f64();
    let mut it = outcomes.into_iter();
    let first = it.next().expect("at least one seed ran");
    let weights = match (&first.export, first.interrupted) {
        (Some((data, theta0)), false) => Some(CheckpointContents {
            models: member::weights(&first.members, theta0),
            data: data.clone(),
        }),
        _ => None,
    };
    let (data, model) = (first.data.clone(), first.model.clone());
    let first_results = member::into_results(first.members);
    let replicates: Vec<Replicate> = it
        .map(|o| {
            let r = member::into_results(o.members);
            Replicate {
                seed: o.seed,
                vocab_size: o.data.vocab_size,
                residual: r.residual,
                plain: r.plain,
                alpha_sweep: r.alpha_sweep,
            }
        })
        .collect();
    let mut record = Record {
        schema_version: SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        status: if interrupted {
            Status::Interrupted
        } else {
            Status::Complete
        },
        error: interrupted.then(|| "cancelled by the user".to_string()),
        started_at,
        finished_at: now_utc(),
        replay_of: None,
        machine: {
            let here = Machine::current(rayon::current_num_threads());
            // the CPU's kernels sum a GPU run's products in no part, but for exact products
            // (the MLP's default), which run on the host whatever the device
            let on_host = cfg.hessian.products_for(cfg.model.kind) == Products::Exact;
            let kernels = if device.starts_with("cpu") || on_host {
                here.kernels.clone()
            } else {
                String::new()
            };
            Machine {
                device,
                kernels,
                ..here
            }
        },
        timings,
        checkpoint: None,
        config: cfg.clone(),
        data,
        model,
        residual: first_results.residual,
        plain: first_results.plain,
        alpha_sweep: first_results.alpha_sweep,
        replicates,
        summary: None,
        verdicts: Vec::new(),
    };
    if !interrupted && seeds.len() > 1 {
        record.summary = Some(report::summarise(&record));
        record.verdicts = report::verdicts(&record);
    }
    Ok((record, weights))
}

/// `f`, with its wall time added to `slot` however it ends.
fn timed<T>(slot: &mut f64, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    *slot += t.elapsed().as_secs_f64();
    out
}

/// Loads the data for one seed, builds the members and runs them through the stages.
fn run_seed(
    cfg: &Config,
    seed: u64,
    export: bool,
    backend: &Backend,
    events: &(dyn Fn(RunEvent) + Sync),
    cancel: &AtomicBool,
) -> Result<SeedOutcome, ExperimentError> {
    let mut timings = Timings::default();
    let split = timed(&mut timings.data_s, || data::load(&cfg.data, seed))?;
    let spec = model_spec(cfg, &split.summary);
    stages::check_data(cfg, &spec, &split)?;
    stages::check_memory(cfg, &spec, &split)?;
    let model = model_summary(&spec);
    let mut members = member::members(cfg, &spec, seed, backend, &split.eval);
    events(RunEvent::Started {
        name: cfg.name.clone(),
        params: model.params,
        epochs: cfg.train.epochs,
        ratios: crate::prune::row_count(&cfg.prune),
        model: Box::new(model.clone()),
    });
    let ctx = Ctx {
        cfg,
        seed,
        split: &split,
        events,
        cancel,
    };
    let interrupted = match pipeline(&mut members, &ctx, &mut timings) {
        Ok(()) => false,
        Err(Stop::Cancelled) => true,
        Err(Stop::Failed(e)) => return Err(e),
    };
    let data = split.summary.clone();
    // the split is done with: moved, not copied, into what a checkpoint stores
    let export = export.then(|| {
        (
            stages::checkpoint_data(cfg, seed, split),
            initial_theta(seed, &spec),
        )
    });
    Ok(SeedOutcome {
        seed,
        model,
        data,
        members,
        export,
        timings,
        interrupted,
    })
}

/// The stages, in order, each over every member.
fn pipeline(
    members: &mut [Member],
    ctx: &Ctx<'_>,
    t: &mut Timings,
) -> Result<(), Stop<ExperimentError>> {
    timed(&mut t.train_s, || stages::train(members, ctx))?;
    timed(&mut t.spectrum_s, || stages::spectrum(members, ctx))?;
    timed(&mut t.prune_s, || {
        stages::prune(members, ctx)?;
        stages::finetune(members, ctx)
    })
}
