//! What the experiment view shows: a saved record or a run in progress, behind one face so
//! every pane reads both the same way.

use std::path::Path;

use crate::curvature::{Spectrum, SpectrumMethod, SpectrumStats};
use crate::model::Variant;
use crate::prune::PruneRow;
use crate::record::{ModelSummary, Record, VariantResult};

use super::live::LiveRun;

#[derive(Debug, Clone, Copy)]
pub enum Shown<'a> {
    Record { path: &'a Path, record: &'a Record },
    Live(&'a LiveRun),
}

impl<'a> Shown<'a> {
    pub fn name(&self) -> &'a str {
        match self {
            Shown::Record { record, .. } => &record.config.name,
            Shown::Live(l) => &l.name,
        }
    }

    pub fn record(&self) -> Option<&'a Record> {
        match self {
            Shown::Record { record, .. } => Some(record),
            Shown::Live(_) => None,
        }
    }

    pub fn live(&self) -> Option<&'a LiveRun> {
        match self {
            Shown::Live(l) => Some(l),
            Shown::Record { .. } => None,
        }
    }

    pub fn variant(&self, v: Variant) -> &'a VariantResult {
        match self {
            Shown::Record { record, .. } => record.variant(v),
            Shown::Live(l) => l.variant(v),
        }
    }

    /// The architecture and layer table: a live run has it from its first event.
    pub fn model(&self) -> Option<&'a ModelSummary> {
        match self {
            Shown::Record { record, .. } => Some(&record.model),
            Shown::Live(l) => l.model.as_ref(),
        }
    }

    pub fn params(&self) -> usize {
        match self {
            Shown::Record { record, .. } => record.model.params,
            Shown::Live(l) => l.params,
        }
    }

    /// The full spectrum (eigenvalues); a live run only has its statistics.
    pub fn spectrum(&self, v: Variant) -> Option<&'a Spectrum> {
        self.record().and_then(|r| r.variant(v).spectrum.as_ref())
    }

    /// Which method measured the spectra (one for the pair).
    pub fn spectrum_method(&self) -> Option<SpectrumMethod> {
        match self {
            Shown::Record { record, .. } => Variant::BOTH
                .iter()
                .find_map(|v| record.variant(*v).spectrum.as_ref())
                .map(|s| s.method),
            Shown::Live(l) => l.spectrum_method,
        }
    }

    pub fn stats(&self, v: Variant) -> Option<&'a SpectrumStats> {
        match self {
            Shown::Record { record, .. } => record.variant(v).spectrum.as_ref().map(|s| &s.stats),
            Shown::Live(l) => l.stats(v),
        }
    }

    pub fn epochs(&self) -> usize {
        match self {
            Shown::Record { record, .. } => record.config.train.epochs,
            Shown::Live(l) => l.epochs,
        }
    }

    /// Rows of the pruning table.
    pub fn ratio_count(&self) -> usize {
        let rows = self
            .variant(Variant::Residual)
            .pruning
            .len()
            .max(self.variant(Variant::Plain).pruning.len());
        match self {
            Shown::Record { record, .. } => rows.max(record.config.prune.ratios.len()),
            Shown::Live(l) => rows.max(l.ratios),
        }
    }

    /// The ratio of row `i`, from the rows, else from the config.
    pub fn ratio(&self, i: usize) -> Option<f64> {
        self.row(Variant::Residual, i)
            .or_else(|| self.row(Variant::Plain, i))
            .map(|r| r.ratio)
            .or_else(|| {
                self.record()
                    .and_then(|r| r.config.prune.ratios.get(i).copied())
            })
    }

    pub fn row(&self, v: Variant, i: usize) -> Option<&'a PruneRow> {
        self.variant(v).pruning.get(i)
    }
}
