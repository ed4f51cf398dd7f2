//! The stages of the pipeline. Each takes every member, does its work for each in turn and
//! ends with `Ok(())` or a [`Stop`]; what a stage finished for a member stays in that member,
//! so an interrupted run's record holds it.

use std::sync::atomic::AtomicBool;

use super::member::{layer_ranges, Member};
use super::{ExperimentError, RunEvent, Stage, Stop};
use crate::config::{Config, Granularity, HessianConfig, HessianMethod, PruneMethod, TrainConfig};
use crate::curvature::{self, BatchLoss, CurvatureError};
use crate::data::{Dataset, Split};
use crate::model::{ModelSpec, Variant};
use crate::prune;
use crate::record::checkpoint::{CheckpointData, Examples};
use crate::train;

/// What every stage sees besides the members.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    pub seed: u64,
    pub split: &'a Split,
    pub events: &'a (dyn Fn(RunEvent) + Sync),
    pub cancel: &'a AtomicBool,
}

impl Ctx<'_> {
    /// Sends `ev` when `m` reports live.
    fn send(&self, m: &Member, ev: RunEvent) {
        if m.is_live() {
            (self.events)(ev)
        }
    }

    fn started(&self, m: &Member, stage: Stage) {
        self.send(
            m,
            RunEvent::StageStarted {
                variant: m.variant(),
                stage,
            },
        );
    }
}

/// The checks that depend on the loaded data, run before any training.
pub fn check_data(cfg: &Config, spec: &ModelSpec, split: &Split) -> Result<(), ExperimentError> {
    for &g in &cfg.prune.granularities {
        prune::granularity::check(spec, g).map_err(ExperimentError::Config)?;
    }
    if cfg.hessian.check_batch {
        let n = cfg.hessian.samples;
        if split.train.len() < 2 * n {
            return Err(ExperimentError::Config(format!(
                "hessian.check_batch needs 2 x hessian.samples = {} training examples, the \
                 split has {}; lower hessian.samples",
                2 * n,
                split.train.len()
            )));
        }
    }
    Ok(())
}

/// Bytes of memory the run would need at its peak, estimated from the shapes alone (in
/// `f64`, so an absurd width cannot overflow): per member `theta` and ~10 vectors of its size
/// (gradient, optimiser moments, pruned copies), a byte per parameter per pruning mask; the
/// dense Hessian (`n²`, three copies for symmetrising and the eigen-solve) or the Lanczos
/// basis; and the activations of the largest batch (the full training split is evaluated in
/// one pass), with the tape's copy. A lower bound within a small factor: enough to refuse a
/// run that cannot fit before it allocates.
pub fn memory_estimate(cfg: &Config, spec: &ModelSpec, split: &Split) -> f64 {
    let (w, d) = (spec.width as f64, spec.depth as f64);
    let (inputs, classes) = (spec.inputs as f64, spec.classes as f64);
    let rows = split.train.len().max(split.eval.len()) as f64;
    let (params, activations) = match &spec.transformer {
        None => (
            inputs * w + d * (w * w + w) + w + w * classes + classes + d,
            rows * (inputs + w * (d + 1.0) * 2.0 + classes),
        ),
        Some(t) => {
            let (l, ff, h) = (t.max_len as f64, t.ff as f64, t.heads as f64);
            let block = 4.0 * (w * w + w) + 2.0 * w * ff + ff + w + 4.0 * w;
            (
                t.vocab as f64 * w + l * w + d * block + 2.0 * w + w * classes + classes,
                rows * l * d * (6.0 * w + ff + h * l),
            )
        }
    };
    let members = (2 + cfg.model.alpha_sweep.len()) as f64;
    let masks = prune::row_count(&cfg.prune) as f64;
    let per_member = params * (11.0 * 8.0 + masks);
    let n = params.min(usize::MAX as f64) as usize;
    let products = curvature::products_for(&cfg.hessian, spec);
    let hessian = match curvature::choose_method(&cfg.hessian, n, products) {
        Ok(HessianMethod::Dense) => 3.0 * params * params * 8.0,
        _ => (cfg.hessian.lanczos_steps + 2) as f64 * params * 8.0,
    };
    members * per_member + hessian + 2.0 * activations * 8.0
}

/// Memory the machine can give now (`MemAvailable`), when it says.
fn available_memory() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// Refuses a model whose parameters, Hessian or activations would not fit in memory, before
/// anything is allocated: a clear error instead of an allocator abort or an OOM kill.
pub fn check_memory(cfg: &Config, spec: &ModelSpec, split: &Split) -> Result<(), ExperimentError> {
    let Some(available) = available_memory() else {
        return Ok(());
    };
    let need = memory_estimate(cfg, spec, split);
    if need > available {
        let gib = |b: f64| b / (1u64 << 30) as f64;
        return Err(ExperimentError::Config(format!(
            "model.width = {} x model.depth = {} on {} inputs would need about {:.3e} GiB \
             (parameters, their Hessian or Lanczos basis, and activations), and this machine \
             has {:.3e} GiB available; lower model.width, model.depth or hessian.dense_limit",
            spec.width,
            spec.depth,
            spec.inputs,
            gib(need),
            gib(available)
        )));
    }
    Ok(())
}

/// Trains every member from its initial `theta` in the same batch order.
pub fn train(members: &mut [Member], ctx: &Ctx<'_>) -> Result<(), Stop<ExperimentError>> {
    let epochs = ctx.cfg.train.epochs;
    for m in members.iter_mut() {
        ctx.started(m, Stage::Train);
        let (v, live) = (m.variant(), m.is_live());
        let session = train::Session {
            cfg: &ctx.cfg.train,
            train: &ctx.split.train,
            eval: &m.eval,
            seed: ctx.seed,
            mask: None,
        };
        let mut on_epoch = |stats: &train::EpochStats| {
            if live {
                (ctx.events)(RunEvent::Epoch {
                    variant: v,
                    stats: *stats,
                    epochs,
                })
            }
        };
        let out = train::train(
            &m.net,
            &mut m.theta,
            &session,
            &mut m.result.history,
            ctx.cancel,
            &mut on_epoch,
        );
        m.result.learned_alpha = m.learned_scales();
        out.map_err(Stop::convert)?;
    }
    Ok(())
}

/// The spectrum of the mean training loss of every member, and the Hessian diagonal when a
/// pruning method needs it.
pub fn spectrum(members: &mut [Member], ctx: &Ctx<'_>) -> Result<(), Stop<ExperimentError>> {
    let cfg = ctx.cfg;
    let hess = hessian_batch(cfg, ctx.split);
    // its size was checked with the data
    let check = cfg.hessian.check_batch.then(|| {
        let n = cfg.hessian.samples;
        ctx.split.train.select(&(n..2 * n).collect::<Vec<_>>())
    });
    // One method for every member, chosen by the largest (the residual one holds `depth`
    // more parameters with learned scales): the verdict must compare like with like.
    let Some(largest) = members.iter().max_by_key(|m| m.net.dim()) else {
        return Ok(());
    };
    let products = curvature::products_for(&cfg.hessian, largest.net.spec());
    let mut hessian_cfg = cfg.hessian.clone();
    hessian_cfg.method = curvature::choose_method(&cfg.hessian, largest.net.dim(), products)
        .map_err(|source| failed(Variant::Residual, source))?;
    // Dense spectra run side by side: an eigen-solve below faer's threading size is
    // sequential, so run one at a time a thread idles through it; together, one member's
    // columns fill the thread the other's solve leaves free. A Lanczos spectrum keeps every
    // thread busy inside its own products (threaded GEMMs, chunked batches), so members go
    // one by one there. Each member's numbers are the same either way.
    #[cfg(not(feature = "cuda"))]
    if hessian_cfg.method == HessianMethod::Dense
        && members.len() > 1
        && rayon::current_num_threads() > 1
    {
        use rayon::prelude::*;
        let done: Vec<Result<(), Stop<ExperimentError>>> = members
            .par_iter_mut()
            .map(|m| spectrum_of(m, ctx, &hessian_cfg, &hess, check.as_ref()))
            .collect();
        // the first member's failure, as the sequential order would report it
        return done.into_iter().collect();
    }
    for m in members.iter_mut() {
        spectrum_of(m, ctx, &hessian_cfg, &hess, check.as_ref())?;
    }
    Ok(())
}

/// The examples the Hessian is of: the first `hessian.samples` of the training split (all
/// when 0).
pub fn hessian_batch(cfg: &Config, split: &Split) -> Dataset {
    split.train.head(cfg.hessian.samples)
}

/// The data a checkpoint stores: the splits (moved in), the Hessian batch and the batch
/// order of every epoch of training and fine-tuning, as this seed's stages used them.
pub fn checkpoint_data(cfg: &Config, seed: u64, split: Split) -> CheckpointData {
    let examples = |d: Dataset| Examples {
        features: d.features,
        x: d.x,
        y: d.y,
    };
    let epochs = cfg.train.epochs.max(cfg.prune.finetune_epochs);
    let hessian = examples(hessian_batch(cfg, &split));
    let order = train::epoch_orders(split.train.len(), seed, cfg.train.shuffle, epochs);
    let (source_index, standardize) = match split.provenance {
        Some(p) => (Some((p.train_index, p.eval_index)), p.standardize),
        None => (None, None),
    };
    CheckpointData {
        train: examples(split.train),
        eval: examples(split.eval),
        hessian,
        order,
        batch_size: cfg.train.batch_size,
        seed,
        source_index,
        standardize,
    }
}

/// A curvature error as a stop: its cancel is the run's.
fn failed(variant: Variant, source: CurvatureError) -> Stop<ExperimentError> {
    match source {
        CurvatureError::Cancelled => Stop::Cancelled,
        error => Stop::Failed(ExperimentError::Curvature { variant, error }),
    }
}

fn spectrum_of(
    m: &mut Member,
    ctx: &Ctx<'_>,
    hessian_cfg: &HessianConfig,
    hess: &Dataset,
    check: Option<&Dataset>,
) -> Result<(), Stop<ExperimentError>> {
    let cfg = ctx.cfg;
    let v = m.variant();
    ctx.started(m, Stage::Spectrum);
    let batch = m.net.prepare(&hess.x, &hess.y);
    let check_batch = check.map(|c| m.net.prepare(&c.x, &c.y));
    // captures no part of the member: on CUDA a network is not `Sync`
    let live = m.is_live();
    let progress = |p: curvature::SpectrumProgress| {
        // every 1/50th of a phase is plenty for a progress bar
        let due = p.done.is_multiple_of((p.total / 50).max(1)) || p.done == p.total || p.done == 1;
        if live && due {
            (ctx.events)(RunEvent::HessianProgress {
                variant: v,
                phase: p.phase,
                done: p.done,
                total: p.total,
            });
        }
    };
    let opts = curvature::SpectrumOptions {
        cfg: hessian_cfg,
        seed: ctx.seed,
        layers: layer_ranges(m.net.layout()),
        check: check_batch.as_ref(),
        // the mechanism of each pruning row needs the eigenvectors; ~1 ms at 682 parameters
        basis: !cfg.prune.ratios.is_empty(),
    };
    let s = curvature::spectrum(&m.net, &m.theta, &batch, &opts, ctx.cancel, &progress)
        .map_err(|e| failed(v, e))?;
    ctx.send(
        m,
        RunEvent::Spectrum {
            variant: v,
            method: s.spectrum.method,
            stats: s.spectrum.stats.clone(),
        },
    );
    m.result.spectrum = Some(s.spectrum);
    m.basis = s.basis;
    let needs_diag = cfg.prune.methods.iter().any(|p| p.needs_diagonal());
    m.diagonal = match (needs_diag, s.diagonal) {
        (false, _) => None,
        (true, Some(d)) => Some(d),
        (true, None) => {
            // above the dense limit: Hutchinson's E[v ⊙ Hv]
            let loss = BatchLoss {
                net: &m.net,
                batch: &batch,
            };
            // the products the spectrum used (`hessian.products`)
            let mut h =
                curvature::products(&loss, &m.theta, &cfg.hessian).map_err(|e| failed(v, e))?;
            let d = curvature::hutchinson::diagonal(
                &mut *h,
                cfg.prune.diagonal_samples,
                ctx.seed ^ 0xD1A6,
                ctx.cancel,
            )
            .map_err(|e| failed(v, e))?;
            Some(d)
        }
    };
    Ok(())
}

/// Every member pruned by each method at each granularity and ratio, measured on the
/// evaluation split; with `block` among the granularities (depth >= 2), its block lesions too.
pub fn prune(members: &mut [Member], ctx: &Ctx<'_>) -> Result<(), Stop<ExperimentError>> {
    let cfg = &ctx.cfg.prune;
    // the first `calibration_samples` training examples, as the Hessian batch is chosen
    let calibration_data = cfg
        .methods
        .iter()
        .any(|m| m.needs_calibration())
        .then(|| ctx.split.train.head(cfg.calibration_samples));
    for m in members.iter_mut() {
        ctx.started(m, Stage::Prune);
        let (v, live) = (m.variant(), m.is_live());
        let calibration = calibration_data.as_ref().map(|d| {
            let batch = m.net.prepare(&d.x, &d.y);
            let activations = m.net.activations(&m.theta, &batch);
            prune::Calibration { batch, activations }
        });
        let inputs = prune::SweepInputs {
            eval: &m.eval,
            cfg,
            products: curvature::products_for(&ctx.cfg.hessian, m.net.spec()),
            fd_step: ctx.cfg.hessian.fd_step,
            diag: m.diagonal.as_deref(),
            calibration: calibration.as_ref(),
            basis: m.basis.as_ref(),
        };
        let mut on_row = |row: &prune::PruneRow| {
            if live {
                (ctx.events)(RunEvent::PruneRow {
                    variant: v,
                    row: Box::new(row.clone()),
                })
            }
        };
        let criteria = prune::criteria::Criteria::new(
            &m.net,
            &m.theta,
            inputs.diag,
            inputs.calibration,
            cfg.obs_damping,
        );
        prune::sweep_with(&criteria, &inputs, &mut m.pruned, ctx.cancel, &mut on_row)
            .map_err(Stop::convert)?;
        if cfg.granularities.contains(&Granularity::Block) && m.net.spec().depth >= 2 {
            Stop::check(ctx.cancel)?;
            let rankings = block_rankings(&criteria, &cfg.methods)
                .map_err(|e| Stop::Failed(ExperimentError::Prune(e)))?;
            m.result.lesions = Some(prune::lesion::lesions(&m.net, &m.theta, &m.eval, &rankings));
        }
    }
    Ok(())
}

/// Each method's block scores, for the methods that score blocks, from the sweep's scores.
fn block_rankings(
    criteria: &prune::criteria::Criteria<'_>,
    methods: &[PruneMethod],
) -> Result<Vec<(PruneMethod, Vec<f64>)>, prune::PruneError> {
    let mut out = Vec::new();
    for &method in methods {
        if let Some(scores) = prune::criteria::block_scores(method, criteria)? {
            out.push((method, scores));
        }
    }
    Ok(out)
}

/// Each pruned model trained `prune.finetune_epochs` more with its mask held (nothing when 0).
pub fn finetune(members: &mut [Member], ctx: &Ctx<'_>) -> Result<(), Stop<ExperimentError>> {
    let cfg = ctx.cfg;
    if cfg.prune.finetune_epochs == 0 {
        return Ok(());
    }
    let ft = prune::Finetune {
        train: &ctx.split.train,
        cfg: TrainConfig {
            epochs: cfg.prune.finetune_epochs,
            lr: cfg.prune.finetune_lr.unwrap_or(cfg.train.lr),
            ..cfg.train.clone()
        },
        seed: ctx.seed,
    };
    for m in members.iter_mut() {
        ctx.started(m, Stage::Finetune);
        let (v, live) = (m.variant(), m.is_live());
        for (index, p) in m.pruned.iter_mut().enumerate() {
            let f = prune::finetune(&m.net, &m.theta, p, &ft, &m.eval, ctx.cancel)
                .map_err(Stop::convert)?;
            if live {
                (ctx.events)(RunEvent::Finetuned {
                    variant: v,
                    index,
                    finetuned: f.clone(),
                });
            }
            p.row.finetuned = Some(f);
        }
    }
    Ok(())
}
