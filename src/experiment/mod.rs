//! One experiment end to end: data, the residual/plain pair from the same `theta`, training,
//! spectra, pruning sweeps; reported as [`RunEvent`]s and returned as a [`Record`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::config::Config;
use crate::curvature::{self, SpectrumStats};
use crate::data;
use crate::model::{ModelSpec, Network, Variant};
use crate::prune::{self, PruneRow};
use crate::record::{
    LayerInfo, Machine, ModelSummary, Record, Status, Timings, VariantResult, SCHEMA_VERSION,
};
use crate::rng::{stream, Stream};
use crate::train::{self, EpochStats, TrainError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Train,
    Spectrum,
    Prune,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Train => "train",
            Stage::Spectrum => "spectrum",
            Stage::Prune => "prune",
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
    HessianProgress {
        variant: Variant,
        done: usize,
        total: usize,
    },
    Spectrum {
        variant: Variant,
        stats: SpectrumStats,
    },
    PruneRow {
        variant: Variant,
        row: PruneRow,
    },
    /// Sent by whoever saved the record.
    Finished(std::path::PathBuf),
    Failed(String),
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
    Train(TrainError),
    #[error("spectrum of the {variant} model: {source}")]
    Curvature {
        variant: Variant,
        source: curvature::CurvatureError,
    },
    #[error("{0}")]
    Config(String),
}

pub fn now_utc() -> String {
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc()
        .format(&f)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// The model spec a config describes, given the data's shape.
pub fn model_spec(cfg: &Config, inputs: usize, classes: usize) -> ModelSpec {
    ModelSpec {
        inputs,
        width: cfg.model.width,
        depth: cfg.model.depth,
        classes,
        activation: cfg.model.activation,
        alpha: cfg.model.alpha,
    }
}

fn model_summary(spec: &ModelSpec) -> ModelSummary {
    let layout = spec.layout();
    let layers = spec
        .linears()
        .into_iter()
        .map(|(name, i, o)| LayerInfo {
            skip: name.starts_with("blocks."),
            params: layout
                .tensors
                .iter()
                .filter(|t| t.layer == name)
                .map(|t| t.len)
                .sum(),
            shape: vec![o, i],
            name,
        })
        .collect();
    ModelSummary {
        kind: "mlp".into(),
        params: layout.len,
        inputs: spec.inputs,
        width: spec.width,
        depth: spec.depth,
        classes: spec.classes,
        activation: spec.activation,
        alpha: spec.alpha,
        layers,
    }
}

/// The initial `theta` shared by both members of the pair.
pub fn initial_theta(cfg: &Config, spec: &ModelSpec) -> Vec<f64> {
    spec.init(&mut stream(cfg.seed, Stream::Init))
}

/// Runs the whole experiment. A cancelled run returns a record with `status = interrupted`
/// holding every stage that finished.
pub fn run(cfg: &Config, sink: &dyn Sink, cancel: &AtomicBool) -> Result<Record, ExperimentError> {
    cfg.validate()
        .map_err(|(k, m)| ExperimentError::Config(format!("`{k}` {m}")))?;
    let t_all = Instant::now();
    let started_at = now_utc();
    let mut timings = Timings::default();

    let t = Instant::now();
    let split = data::load(&cfg.data, cfg.seed)?;
    timings.data_s = t.elapsed().as_secs_f64();

    let spec = model_spec(cfg, split.train.features, split.train.classes);
    let theta0 = initial_theta(cfg, &spec);
    let nets = [
        Network::new(&spec, Variant::Residual),
        Network::new(&spec, Variant::Plain),
    ];
    let mut record = Record {
        schema_version: SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        status: Status::Complete,
        error: None,
        started_at,
        finished_at: String::new(),
        machine: Machine::current(rayon::current_num_threads()),
        timings: Timings::default(),
        config: cfg.clone(),
        data: split.summary.clone(),
        model: model_summary(&spec),
        residual: VariantResult::new(Variant::Residual),
        plain: VariantResult::new(Variant::Plain),
    };
    // a listener that went away cancels the run as Ctrl-C does
    let alive = |ev: RunEvent| {
        if !sink.send(ev) {
            cancel.store(true, Ordering::Relaxed);
        }
    };
    alive(RunEvent::Started {
        name: cfg.name.clone(),
        params: spec.num_params(),
        epochs: cfg.train.epochs,
        ratios: cfg.prune.ratios.len(),
    });
    let finish = |mut record: Record, timings: Timings, status: Status, why: Option<String>| {
        record.status = status;
        record.error = why;
        record.finished_at = now_utc();
        record.timings = Timings {
            total_s: t_all.elapsed().as_secs_f64(),
            ..timings
        };
        record
    };
    let interrupted = |r, t| {
        Ok(finish(
            r,
            t,
            Status::Interrupted,
            Some("cancelled by the user".into()),
        ))
    };

    // --- train: both from theta0, same batch order
    let t = Instant::now();
    let mut thetas = [theta0.clone(), theta0];
    for (net, theta) in nets.iter().zip(thetas.iter_mut()) {
        let v = net.variant();
        alive(RunEvent::StageStarted {
            variant: v,
            stage: Stage::Train,
        });
        let eval = net.prepare(&split.eval.x, &split.eval.y);
        let mut progress = |s: &EpochStats| {
            alive(RunEvent::Epoch {
                variant: v,
                stats: *s,
                epochs: cfg.train.epochs,
            });
            !cancel.load(Ordering::Relaxed)
        };
        match train::train(
            net,
            theta,
            &cfg.train,
            &split.train,
            &eval,
            cfg.seed,
            None,
            &mut progress,
        ) {
            Ok(out) => {
                record.variant_mut(v).history = out.history;
                if out.cancelled {
                    timings.train_s = t.elapsed().as_secs_f64();
                    return interrupted(record, timings);
                }
            }
            Err(e) => return Err(ExperimentError::Train(e)),
        }
    }
    timings.train_s = t.elapsed().as_secs_f64();

    // --- spectrum of the mean training loss
    let t = Instant::now();
    let hess = split.train.head(cfg.hessian.samples);
    let check = if cfg.hessian.check_batch {
        let n = cfg.hessian.samples;
        if split.train.len() < 2 * n {
            return Err(ExperimentError::Config(format!(
                "hessian.check_batch needs 2 x hessian.samples = {} training examples, the \
                 split has {}; lower hessian.samples",
                2 * n,
                split.train.len()
            )));
        }
        Some(split.train.select(&(n..2 * n).collect::<Vec<_>>()))
    } else {
        None
    };
    let layers: Vec<(String, std::ops::Range<usize>)> = {
        let layout = spec.layout();
        layout
            .layers()
            .into_iter()
            .map(|l| {
                let ts: Vec<_> = layout.tensors.iter().filter(|t| t.layer == l).collect();
                let r = ts[0].offset..ts.last().map_or(0, |t| t.range().end);
                (l, r)
            })
            .collect()
    };
    for (net, theta) in nets.iter().zip(thetas.iter()) {
        let v = net.variant();
        alive(RunEvent::StageStarted {
            variant: v,
            stage: Stage::Spectrum,
        });
        let batch = net.prepare(&hess.x, &hess.y);
        let check_batch = check.as_ref().map(|c| net.prepare(&c.x, &c.y));
        let n = theta.len();
        let total = match curvature::choose_method(&cfg.hessian, n) {
            Ok(crate::config::HessianMethod::Dense) => n,
            // an upper bound: Lanczos and Hutchinson may stop early
            _ => {
                cfg.hessian.lanczos_steps
                    + cfg.hessian.hutchinson_samples
                    + cfg.hessian.slq_runs * cfg.hessian.slq_steps
            }
        };
        let progress = |done: usize| {
            // every 1/50th is plenty for a progress bar
            if done.is_multiple_of((total / 50).max(1)) || done == total {
                alive(RunEvent::HessianProgress {
                    variant: v,
                    done: done.min(total),
                    total,
                });
            }
        };
        let opts = curvature::SpectrumOptions {
            cfg: &cfg.hessian,
            seed: cfg.seed,
            layers: layers.clone(),
            check: check_batch.as_ref(),
        };
        match curvature::spectrum(net, theta, &batch, &opts, cancel, &progress) {
            Ok(s) => {
                alive(RunEvent::Spectrum {
                    variant: v,
                    stats: s.stats.clone(),
                });
                record.variant_mut(v).spectrum = Some(s);
            }
            Err(curvature::CurvatureError::Cancelled) => {
                timings.spectrum_s = t.elapsed().as_secs_f64();
                return interrupted(record, timings);
            }
            Err(source) => return Err(ExperimentError::Curvature { variant: v, source }),
        }
    }
    timings.spectrum_s = t.elapsed().as_secs_f64();

    // --- pruning sweep on the evaluation split
    let t = Instant::now();
    for (net, theta) in nets.iter().zip(thetas.iter()) {
        let v = net.variant();
        alive(RunEvent::StageStarted {
            variant: v,
            stage: Stage::Prune,
        });
        let eval = net.prepare(&split.eval.x, &split.eval.y);
        let mut on_row = |row: &PruneRow| {
            alive(RunEvent::PruneRow {
                variant: v,
                row: row.clone(),
            });
            !cancel.load(Ordering::Relaxed)
        };
        match prune::sweep(
            net,
            theta,
            &eval,
            &cfg.prune,
            cfg.hessian.fd_step,
            &mut on_row,
        ) {
            Some(rows) => record.variant_mut(v).pruning = rows,
            None => {
                timings.prune_s = t.elapsed().as_secs_f64();
                return interrupted(record, timings);
            }
        }
    }
    timings.prune_s = t.elapsed().as_secs_f64();
    Ok(finish(record, timings, Status::Complete, None))
}
