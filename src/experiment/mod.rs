//! One experiment end to end: data, the residual/plain pair from the same `theta`, training,
//! spectra, pruning sweeps; reported as [`RunEvent`]s and returned as a [`Record`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::config::{Config, DeviceChoice, HessianMethod, PruneMethod, TrainConfig};
use crate::curvature::{self, BatchLoss, FdHvp, SpectrumStats};
use crate::data::{self, DataSummary};
use crate::model::{Backend, ModelSpec, Network, ParamKind, PreparedBatch, Variant};
use crate::prune::{self, PruneRow};
use crate::record::{
    AlphaPoint, LayerInfo, Machine, ModelSummary, Record, Replicate, ReplicateSummary, RowSummary,
    Status, Timings, VariantResult, VariantSummary, SCHEMA_VERSION,
};
use crate::rng::{stream, Stream};
use crate::stats::{self, Claim, Direction, MeanSd};
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
        /// Which statistics were measured (see `Spectrum::sources`).
        method: curvature::SpectrumMethod,
        stats: SpectrumStats,
    },
    PruneRow {
        variant: Variant,
        row: PruneRow,
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

/// The model spec a config describes, given the data it will see.
pub fn model_spec(cfg: &Config, data: &data::DataSummary) -> ModelSpec {
    cfg.model_spec(data.features, data.classes, data.vocab_size)
}

fn model_summary(spec: &ModelSpec) -> ModelSummary {
    let layout = spec.layout();
    let layers = layout
        .layers()
        .into_iter()
        .map(|name| {
            let tensors: Vec<_> = layout.tensors.iter().filter(|t| t.layer == name).collect();
            let shape = tensors
                .iter()
                .find(|t| matches!(t.kind, ParamKind::Weight | ParamKind::Embedding))
                .map(|t| t.shape.clone())
                .unwrap_or_default();
            LayerInfo {
                skip: name.starts_with("blocks."),
                params: tensors.iter().map(|t| t.len).sum(),
                shape,
                name,
            }
        })
        .collect();
    let t = spec.transformer.as_ref();
    ModelSummary {
        kind: crate::config::ModelKind::of(spec),
        params: layout.len,
        inputs: spec.inputs,
        width: spec.width,
        depth: spec.depth,
        classes: spec.classes,
        activation: spec.activation,
        alpha: spec.alpha,
        learned_alpha: spec.learned_alpha,
        heads: t.map(|t| t.heads),
        ff: t.map(|t| t.ff),
        vocab: t.map(|t| t.vocab),
        layers,
    }
}

/// Each layer's name and its (contiguous) range in `theta`.
fn layer_ranges(layout: &crate::model::ParamLayout) -> Vec<(String, std::ops::Range<usize>)> {
    layout
        .layers()
        .into_iter()
        .map(|l| {
            let ts: Vec<_> = layout.tensors.iter().filter(|t| t.layer == l).collect();
            let r = ts[0].offset..ts.last().map_or(0, |t| t.range().end);
            (l, r)
        })
        .collect()
}

/// The initial `theta` shared by both members of the pair.
pub fn initial_theta(seed: u64, spec: &ModelSpec) -> Vec<f64> {
    spec.init(&mut stream(seed, Stream::Init))
}

/// The device `choice` names, opened; `auto` falls back to the CPU and says why.
pub fn open_device(choice: DeviceChoice) -> Result<(Backend, String), ExperimentError> {
    match choice {
        DeviceChoice::Cpu => Ok((Backend::cpu(), "cpu".into())),
        #[cfg(feature = "cuda")]
        DeviceChoice::Cuda(i) => Backend::cuda(i)
            .map(|b| {
                let d = b.describe();
                (b, d)
            })
            .map_err(ExperimentError::Config),
        #[cfg(not(feature = "cuda"))]
        DeviceChoice::Cuda(_) => Err(ExperimentError::Config(
            "device = \"cuda\" needs a binary built with `--features cuda` (see docs/gpu.md)"
                .into(),
        )),
        #[cfg(feature = "cuda")]
        DeviceChoice::Auto => Ok(match Backend::cuda(0) {
            Ok(b) => {
                let d = format!("{} (auto)", b.describe());
                (b, d)
            }
            Err(why) => (Backend::cpu(), format!("cpu (auto: {why})")),
        }),
        #[cfg(not(feature = "cuda"))]
        DeviceChoice::Auto => Ok((Backend::cpu(), "cpu (auto: built without CUDA)".into())),
    }
}

/// What one seed of the pair produced.
struct PairOutcome {
    residual: VariantResult,
    plain: VariantResult,
    alpha_sweep: Vec<AlphaPoint>,
    data: DataSummary,
    timings: Timings,
    interrupted: bool,
    weights: Option<PairWeights>,
}

/// The trained weights of a completed pair, for checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct PairWeights {
    /// Trained `theta` of `[residual, plain]`.
    pub thetas: [Vec<f64>; 2],
    /// The Hessian diagonal each pruning method used (`None` for magnitude only).
    pub diagonals: Vec<Option<Vec<f64>>>,
}

/// Runs the whole experiment, once per seed. A cancelled run returns a record with
/// `status = interrupted` holding every stage that finished.
pub fn run(cfg: &Config, sink: &dyn Sink, cancel: &AtomicBool) -> Result<Record, ExperimentError> {
    run_with_weights(cfg, sink, cancel).map(|(record, _)| record)
}

/// [`run`], also returning the first seed's trained weights when that pair completed.
pub fn run_with_weights(
    cfg: &Config,
    sink: &dyn Sink,
    cancel: &AtomicBool,
) -> Result<(Record, Option<PairWeights>), ExperimentError> {
    cfg.validate()
        .map_err(|(k, m)| ExperimentError::Config(format!("`{k}` {m}")))?;
    let t_all = Instant::now();
    let started_at = now_utc();
    let seeds = cfg.seed_list();
    // a listener that went away cancels the run as Ctrl-C does
    let alive = |ev: RunEvent| {
        if !sink.send(ev) {
            cancel.store(true, Ordering::Relaxed);
        }
    };
    let (backend, device) = open_device(cfg.device)?;
    let mut outcomes: Vec<(u64, PairOutcome)> = Vec::new();
    let mut spec = None;
    for (i, &seed) in seeds.iter().enumerate() {
        if seeds.len() > 1 {
            alive(RunEvent::Replicate {
                index: i,
                of: seeds.len(),
                seed,
            });
        }
        let (s, out) = run_pair(cfg, seed, &backend, &alive, cancel)?;
        spec.get_or_insert(s);
        let stop = out.interrupted;
        outcomes.push((seed, out));
        if stop {
            break;
        }
    }
    let spec = spec.expect("at least one seed ran");
    let interrupted = outcomes.iter().any(|(_, o)| o.interrupted);
    let mut timings = Timings::default();
    for (_, o) in &outcomes {
        timings.data_s += o.timings.data_s;
        timings.train_s += o.timings.train_s;
        timings.spectrum_s += o.timings.spectrum_s;
        timings.prune_s += o.timings.prune_s;
    }
    timings.total_s = t_all.elapsed().as_secs_f64();
    let mut it = outcomes.into_iter();
    let (_, first) = it.next().expect("at least one seed ran");
    let weights = first.weights;
    let replicates: Vec<Replicate> = it
        .map(|(seed, o)| Replicate {
            seed,
            vocab_size: o.data.vocab_size,
            residual: o.residual,
            plain: o.plain,
            alpha_sweep: o.alpha_sweep,
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
        machine: Machine {
            device,
            ..Machine::current(rayon::current_num_threads())
        },
        timings,
        checkpoint: None,
        config: cfg.clone(),
        data: first.data,
        model: model_summary(&spec),
        residual: first.residual,
        plain: first.plain,
        alpha_sweep: first.alpha_sweep,
        replicates,
        summary: None,
        verdicts: Vec::new(),
    };
    if !interrupted && seeds.len() > 1 {
        record.summary = Some(summarise(&record));
        record.verdicts = verdicts(&record);
    }
    Ok((record, weights))
}

/// Trains, measures and prunes the pair for one seed.
fn run_pair(
    cfg: &Config,
    seed: u64,
    backend: &Backend,
    alive: &(dyn Fn(RunEvent) + Sync),
    cancel: &AtomicBool,
) -> Result<(ModelSpec, PairOutcome), ExperimentError> {
    let mut timings = Timings::default();
    let t = Instant::now();
    let split = data::load(&cfg.data, seed)?;
    timings.data_s = t.elapsed().as_secs_f64();

    let spec = model_spec(cfg, &split.summary);
    let theta0 = initial_theta(seed, &spec);
    // the pair, then one residual model per `model.alpha_sweep` value, all from theta0
    let mut nets = vec![
        Network::on(&spec, Variant::Residual, backend.clone()),
        Network::on(&spec, Variant::Plain, backend.clone()),
    ];
    for &alpha in &cfg.model.alpha_sweep {
        // a sweep point is a fixed scale, even when the pair's residual learns its own
        let s = ModelSpec {
            alpha,
            learned_alpha: false,
            ..spec.clone()
        };
        nets.push(Network::on(&s, Variant::Residual, backend.clone()));
    }
    let mut results: Vec<VariantResult> = nets
        .iter()
        .map(|n| VariantResult::new(n.variant()))
        .collect();
    let mut out = PairOutcome {
        residual: VariantResult::new(Variant::Residual),
        plain: VariantResult::new(Variant::Plain),
        alpha_sweep: Vec::new(),
        data: split.summary.clone(),
        timings: Timings::default(),
        interrupted: false,
        weights: None,
    };
    // the live view follows the pair; sweep models report nothing but still honour cancel
    let quiet_after_pair = |k: usize, ev: RunEvent| {
        if k < 2 {
            alive(ev)
        }
    };
    alive(RunEvent::Started {
        name: cfg.name.clone(),
        params: spec.num_params(),
        epochs: cfg.train.epochs,
        ratios: cfg.prune.ratios.len() * cfg.prune.methods.len(),
    });
    let finish = |out: &mut PairOutcome, results: Vec<VariantResult>| {
        let mut it = results.into_iter();
        out.residual = it.next().expect("the pair comes first");
        out.plain = it.next().expect("the pair comes first");
        out.alpha_sweep = cfg
            .model
            .alpha_sweep
            .iter()
            .zip(it)
            .map(|(&alpha, residual)| AlphaPoint { alpha, residual })
            .collect();
    };
    let stop = |mut out: PairOutcome, results: Vec<VariantResult>, timings: Timings| {
        finish(&mut out, results);
        out.timings = timings;
        out.interrupted = true;
        Ok((spec.clone(), out))
    };

    // --- train: both from theta0, same batch order
    let t = Instant::now();
    let mut thetas: Vec<Vec<f64>> = nets
        .iter()
        .map(|n| n.spec().theta_for(n.variant(), &theta0))
        .collect();
    let eval_sets: Vec<PreparedBatch> = nets
        .iter()
        .map(|n| n.prepare(&split.eval.x, &split.eval.y))
        .collect();
    for (k, ((net, theta), eval)) in nets
        .iter()
        .zip(thetas.iter_mut())
        .zip(&eval_sets)
        .enumerate()
    {
        let v = net.variant();
        let alive = |ev| quiet_after_pair(k, ev);
        alive(RunEvent::StageStarted {
            variant: v,
            stage: Stage::Train,
        });
        let mut progress = |s: &EpochStats| {
            alive(RunEvent::Epoch {
                variant: v,
                stats: *s,
                epochs: cfg.train.epochs,
            });
            !cancel.load(Ordering::Relaxed)
        };
        let trained = train::train(
            net,
            theta,
            &cfg.train,
            &split.train,
            eval,
            seed,
            None,
            &mut progress,
        )
        .map_err(ExperimentError::Train)?;
        results[k].history = trained.history;
        results[k].learned_alpha = net
            .layout()
            .tensors
            .iter()
            .filter(|t| t.kind == ParamKind::Scale)
            .map(|t| theta[t.offset])
            .collect();
        if trained.cancelled {
            timings.train_s = t.elapsed().as_secs_f64();
            return stop(out, results, timings);
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
    let needs_diag = cfg
        .prune
        .methods
        .iter()
        .any(|m| *m != PruneMethod::Magnitude);
    let mut diagonals: Vec<Option<Vec<f64>>> = vec![None; nets.len()];
    // One method for every model, chosen by the largest (the residual one holds `depth` more
    // parameters with learned scales): the verdict must compare like with like.
    let largest = nets.iter().map(Network::dim).max().unwrap_or(0);
    let mut hessian_cfg = cfg.hessian.clone();
    hessian_cfg.method = curvature::choose_method(&cfg.hessian, largest).map_err(|source| {
        ExperimentError::Curvature {
            variant: Variant::Residual,
            source,
        }
    })?;
    for (k, (net, theta)) in nets.iter().zip(thetas.iter()).enumerate() {
        let v = net.variant();
        let alive = |ev| quiet_after_pair(k, ev);
        alive(RunEvent::StageStarted {
            variant: v,
            stage: Stage::Spectrum,
        });
        let batch = net.prepare(&hess.x, &hess.y);
        let check_batch = check.as_ref().map(|c| net.prepare(&c.x, &c.y));
        let n = theta.len();
        let total = match curvature::choose_method(&hessian_cfg, n) {
            Ok(HessianMethod::Dense) => n,
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
            cfg: &hessian_cfg,
            seed,
            layers: layer_ranges(net.layout()),
            check: check_batch.as_ref(),
        };
        match curvature::spectrum(net, theta, &batch, &opts, cancel, &progress) {
            Ok(s) => {
                alive(RunEvent::Spectrum {
                    variant: v,
                    method: s.spectrum.method,
                    stats: s.spectrum.stats.clone(),
                });
                results[k].spectrum = Some(s.spectrum);
                diagonals[k] = match (needs_diag, s.diagonal) {
                    (false, _) => None,
                    (true, Some(d)) => Some(d),
                    (true, None) => {
                        // above the dense limit: Hutchinson's E[v ⊙ Hv]
                        let loss = BatchLoss { net, batch: &batch };
                        let mut h = FdHvp::for_config(&loss, theta, &cfg.hessian);
                        Some(curvature::hutchinson::diagonal(
                            &mut h,
                            cfg.prune.diagonal_samples,
                            seed ^ 0xD1A6,
                        ))
                    }
                };
            }
            Err(curvature::CurvatureError::Cancelled) => {
                timings.spectrum_s = t.elapsed().as_secs_f64();
                return stop(out, results, timings);
            }
            Err(source) => return Err(ExperimentError::Curvature { variant: v, source }),
        }
    }
    timings.spectrum_s = t.elapsed().as_secs_f64();

    // --- pruning sweep on the evaluation split
    let t = Instant::now();
    for (k, ((net, theta), eval)) in nets.iter().zip(thetas.iter()).zip(&eval_sets).enumerate() {
        let v = net.variant();
        let alive = |ev| quiet_after_pair(k, ev);
        alive(RunEvent::StageStarted {
            variant: v,
            stage: Stage::Prune,
        });
        let mut on_row = |row: &PruneRow| {
            alive(RunEvent::PruneRow {
                variant: v,
                row: row.clone(),
            });
            !cancel.load(Ordering::Relaxed)
        };
        let finetune = (cfg.prune.finetune_epochs > 0).then(|| prune::Finetune {
            train: &split.train,
            cfg: TrainConfig {
                epochs: cfg.prune.finetune_epochs,
                lr: cfg.prune.finetune_lr.unwrap_or(cfg.train.lr),
                ..cfg.train.clone()
            },
            seed,
        });
        let inputs = prune::SweepInputs {
            eval,
            cfg: &cfg.prune,
            fd_step: cfg.hessian.fd_step,
            diag: diagonals[k].as_deref(),
            finetune,
        };
        match prune::sweep(net, theta, &inputs, &mut on_row) {
            Some(rows) => results[k].pruning = rows,
            None => {
                timings.prune_s = t.elapsed().as_secs_f64();
                return stop(out, results, timings);
            }
        }
    }
    timings.prune_s = t.elapsed().as_secs_f64();
    finish(&mut out, results);
    out.timings = timings;
    thetas.truncate(2);
    diagonals.truncate(2);
    out.weights = Some(PairWeights {
        thetas: [thetas.remove(0), thetas.remove(0)],
        diagonals,
    });
    Ok((spec, out))
}

fn variant_summary(results: &[&VariantResult]) -> VariantSummary {
    let last = |f: &dyn Fn(&EpochStats) -> f64| -> MeanSd {
        MeanSd::of(
            &results
                .iter()
                .filter_map(|r| r.history.last().map(f))
                .collect::<Vec<_>>(),
        )
    };
    let spec = |f: &dyn Fn(&SpectrumStats) -> f64| -> MeanSd {
        MeanSd::of(
            &results
                .iter()
                .filter_map(|r| r.spectrum.as_ref().map(|s| f(&s.stats)))
                .collect::<Vec<_>>(),
        )
    };
    let rows = results.first().map_or(0, |r| r.pruning.len());
    let pruning = (0..rows)
        .map(|i| {
            let col = |f: &dyn Fn(&PruneRow) -> f64| -> Vec<f64> {
                results
                    .iter()
                    .filter_map(|r| r.pruning.get(i).map(f))
                    .collect()
            };
            let first = &results[0].pruning[i];
            let ft: Vec<f64> = results
                .iter()
                .filter_map(|r| r.pruning.get(i)?.finetuned.as_ref().map(|f| f.sensitivity))
                .collect();
            RowSummary {
                method: first.method,
                ratio: first.ratio,
                sensitivity: MeanSd::of(&col(&|r| r.sensitivity)),
                accuracy_drop: MeanSd::of(&col(&|r| r.accuracy_drop)),
                predicted_delta: MeanSd::of(&col(&|r| r.predicted_delta)),
                finetuned_sensitivity: (!ft.is_empty()).then(|| MeanSd::of(&ft)),
            }
        })
        .collect();
    VariantSummary {
        eval_loss: last(&|h| h.eval_loss),
        eval_accuracy: last(&|h| h.eval_accuracy),
        lambda_min: spec(&|s| s.min),
        lambda_max: spec(&|s| s.max),
        variance: spec(&|s| s.variance),
        trace: spec(&|s| s.trace),
        pruning,
    }
}

/// Mean ± sd over every seed of the record.
pub fn summarise(r: &Record) -> ReplicateSummary {
    let pairs = r.pairs();
    let res: Vec<&VariantResult> = pairs.iter().map(|p| p.1).collect();
    let plain: Vec<&VariantResult> = pairs.iter().map(|p| p.2).collect();
    ReplicateSummary {
        seeds: pairs.iter().map(|p| p.0).collect(),
        residual: variant_summary(&res),
        plain: variant_summary(&plain),
    }
}

/// The article's two claims, tested on the paired differences `residual − plain` across seeds:
/// a narrower spectrum (lower eigenvalue variance), and a higher sensitivity at each ratio of
/// the first pruning method.
pub fn verdicts(r: &Record) -> Vec<Claim> {
    let pairs = r.pairs();
    let level = r.config.significance;
    let mut out = Vec::new();
    let var_diffs: Vec<f64> = pairs
        .iter()
        .filter_map(|(_, a, b)| {
            Some(a.spectrum.as_ref()?.stats.variance - b.spectrum.as_ref()?.stats.variance)
        })
        .collect();
    if var_diffs.len() >= 2 {
        out.push(stats::judge(
            "narrower spectrum: Var(λ) residual < plain",
            Direction::Negative,
            var_diffs,
            level,
        ));
    }
    let method = r.config.prune.methods[0];
    for &ratio in &r.config.prune.ratios {
        let diffs: Vec<f64> = pairs
            .iter()
            .filter_map(|(_, a, b)| {
                let find = |v: &VariantResult| {
                    v.pruning
                        .iter()
                        .find(|row| row.method == method && row.ratio == ratio)
                        .map(|row| row.sensitivity)
                };
                Some(find(a)? - find(b)?)
            })
            .collect();
        if diffs.len() >= 2 {
            out.push(stats::judge(
                &format!("more sensitive at {ratio} ({method}): S residual > plain"),
                Direction::Positive,
                diffs,
                level,
            ));
        }
    }
    out
}
