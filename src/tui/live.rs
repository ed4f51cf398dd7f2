//! A run in progress, built from its [`RunEvent`]s only.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::curvature::{SpectrumMethod, SpectrumPhase, SpectrumStats};
use crate::experiment::{RunEvent, Stage};
use crate::model::Variant;
use crate::record::{ModelSummary, VariantResult};

use super::msg::RunId;

#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    Running,
    /// Cancel asked; waiting for the worker to save what finished.
    Cancelling,
    Finished(PathBuf),
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct LiveRun {
    pub id: RunId,
    /// The config file or record the run came from.
    pub source: String,
    pub name: String,
    pub params: usize,
    pub epochs: usize,
    pub ratios: usize,
    /// The architecture and layer table, from the run's first event.
    pub model: Option<ModelSummary>,
    pub state: RunState,
    /// The stage in progress.
    pub stage: Option<(Variant, Stage)>,
    /// Stages finished, in order.
    pub done: Vec<(Variant, Stage)>,
    /// The phase of the spectrum in progress and its `(done, total)` Hessian-vector
    /// products (dense: columns).
    pub hessian: Option<(SpectrumPhase, usize, usize)>,
    pub residual: VariantResult,
    pub plain: VariantResult,
    pub residual_stats: Option<SpectrumStats>,
    pub plain_stats: Option<SpectrumStats>,
    /// Once a spectrum is in (one method for the pair).
    pub spectrum_method: Option<SpectrumMethod>,
    /// When the current stage started (for the ETA).
    pub stage_started: Option<Instant>,
    /// When the last event arrived.
    pub last_event: Option<Instant>,
}

impl LiveRun {
    pub fn new(id: RunId, source: String) -> LiveRun {
        LiveRun {
            id,
            name: source.clone(),
            source,
            params: 0,
            epochs: 0,
            ratios: 0,
            model: None,
            state: RunState::Running,
            stage: None,
            done: Vec::new(),
            hessian: None,
            residual: VariantResult::new(Variant::Residual),
            plain: VariantResult::new(Variant::Plain),
            residual_stats: None,
            plain_stats: None,
            spectrum_method: None,
            stage_started: None,
            last_event: None,
        }
    }

    pub fn is_active(&self) -> bool {
        matches!(self.state, RunState::Running | RunState::Cancelling)
    }

    pub fn variant(&self, v: Variant) -> &VariantResult {
        match v {
            Variant::Residual => &self.residual,
            Variant::Plain => &self.plain,
        }
    }

    fn variant_mut(&mut self, v: Variant) -> &mut VariantResult {
        match v {
            Variant::Residual => &mut self.residual,
            Variant::Plain => &mut self.plain,
        }
    }

    pub fn stats(&self, v: Variant) -> Option<&SpectrumStats> {
        match v {
            Variant::Residual => self.residual_stats.as_ref(),
            Variant::Plain => self.plain_stats.as_ref(),
        }
    }

    /// Folds one event in; `now` stamps stage starts for the ETA.
    pub fn apply(&mut self, ev: RunEvent, now: Instant) {
        self.last_event = Some(now);
        match ev {
            RunEvent::Started {
                name,
                params,
                epochs,
                ratios,
                model,
            } => {
                self.name = name;
                self.params = params;
                self.epochs = epochs;
                self.ratios = ratios;
                self.model = Some(*model);
            }
            RunEvent::StageStarted { variant, stage } => {
                if let Some(prev) = self.stage.take() {
                    self.done.push(prev);
                }
                self.stage = Some((variant, stage));
                self.hessian = None;
                self.stage_started = Some(now);
            }
            RunEvent::Epoch {
                variant,
                stats,
                epochs,
            } => {
                self.epochs = epochs;
                self.variant_mut(variant).history.push(stats);
            }
            RunEvent::HessianProgress {
                phase, done, total, ..
            } => self.hessian = Some((phase, done, total)),
            RunEvent::Spectrum {
                variant,
                method,
                stats,
            } => {
                self.spectrum_method = Some(method);
                match variant {
                    Variant::Residual => self.residual_stats = Some(stats),
                    Variant::Plain => self.plain_stats = Some(stats),
                }
            }
            RunEvent::PruneRow { variant, row } => self.variant_mut(variant).pruning.push(*row),
            RunEvent::Finetuned {
                variant,
                index,
                finetuned,
            } => {
                if let Some(row) = self.variant_mut(variant).pruning.get_mut(index) {
                    row.finetuned = Some(finetuned);
                }
            }
            RunEvent::Finished(path) => {
                if let Some(prev) = self.stage.take() {
                    self.done.push(prev);
                }
                self.state = RunState::Finished(path);
            }
            RunEvent::Failed(msg) => self.state = RunState::Failed(msg),
            // the live panes show the seed being run; the record keeps every seed
            RunEvent::Replicate { .. } => {
                self.residual.history.clear();
                self.plain.history.clear();
                self.residual.pruning.clear();
                self.plain.pruning.clear();
                self.done.clear();
            }
        }
    }

    /// Fraction of the current stage done, from the counts the events carry.
    pub fn stage_progress(&self) -> Option<f64> {
        let (v, stage) = self.stage?;
        let f = match stage {
            Stage::Train => {
                let n = self.variant(v).history.len().saturating_sub(1);
                n as f64 / self.epochs.max(1) as f64
            }
            Stage::Spectrum => {
                let (_, d, t) = self.hessian.unwrap_or((SpectrumPhase::Dense, 0, 1));
                d as f64 / t.max(1) as f64
            }
            Stage::Prune => self.variant(v).pruning.len() as f64 / self.ratios.max(1) as f64,
            Stage::Finetune => {
                let rows = &self.variant(v).pruning;
                let tuned = rows.iter().filter(|r| r.finetuned.is_some()).count();
                tuned as f64 / rows.len().max(1) as f64
            }
        };
        Some(f.clamp(0.0, 1.0))
    }

    /// Time left in the current stage, extrapolated from its pace so far.
    pub fn stage_eta(&self) -> Option<Duration> {
        let f = self.stage_progress()?;
        let elapsed = self
            .last_event?
            .checked_duration_since(self.stage_started?)?;
        if f <= 0.0 || f >= 1.0 {
            return None;
        }
        Some(elapsed.mul_f64((1.0 - f) / f))
    }

    /// Every stage of the pipeline, in order, with whether it finished or is going on.
    pub fn stages(&self) -> Vec<(Variant, Stage, StageState)> {
        let mut out = Vec::new();
        let finetunes = self
            .done
            .iter()
            .chain(&self.stage)
            .any(|(_, s)| *s == Stage::Finetune);
        let stages: &[Stage] = if finetunes {
            &[Stage::Train, Stage::Spectrum, Stage::Prune, Stage::Finetune]
        } else {
            &[Stage::Train, Stage::Spectrum, Stage::Prune]
        };
        for &stage in stages {
            for v in Variant::BOTH {
                let state = if self.done.contains(&(v, stage)) {
                    StageState::Done
                } else if self.stage == Some((v, stage)) {
                    StageState::Running
                } else {
                    StageState::Pending
                };
                out.push((v, stage, state));
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageState {
    Pending,
    Running,
    Done,
}
