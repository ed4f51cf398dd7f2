//! What the experiment view shows: a saved record or a run in progress, behind one face so
//! every pane reads both the same way.

use std::path::Path;

use crate::config::{Granularity, PruneMethod};
use crate::curvature::{Spectrum, SpectrumMethod, SpectrumStats};
use crate::model::Variant;
use crate::prune::PruneRow;
use crate::record::{ModelSummary, Record, VariantResult};

use super::live::LiveRun;

#[derive(Debug, Clone, Copy)]
pub enum Shown<'a> {
    Record {
        path: &'a Path,
        record: &'a Record,
        filter: RowFilter,
    },
    Live(&'a LiveRun, RowFilter),
}

/// Which pruning rows the panes show: one granularity and one method, or all of either
/// (`None`). Ratio steps move through the rows that pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowFilter {
    pub granularity: Option<Granularity>,
    pub method: Option<PruneMethod>,
}

impl RowFilter {
    pub fn passes(&self, r: &PruneRow) -> bool {
        self.granularity.is_none_or(|g| g == r.granularity)
            && self.method.is_none_or(|m| m == r.method)
    }

    pub fn is_all(&self) -> bool {
        self.granularity.is_none() && self.method.is_none()
    }
}

impl<'a> Shown<'a> {
    pub fn name(&self) -> &'a str {
        match self {
            Shown::Record { record, .. } => &record.config.name,
            Shown::Live(l, _) => &l.name,
        }
    }

    pub fn record(&self) -> Option<&'a Record> {
        match self {
            Shown::Record { record, .. } => Some(record),
            Shown::Live(..) => None,
        }
    }

    pub fn live(&self) -> Option<&'a LiveRun> {
        match self {
            Shown::Live(l, _) => Some(l),
            Shown::Record { .. } => None,
        }
    }

    pub fn variant(&self, v: Variant) -> &'a VariantResult {
        match self {
            Shown::Record { record, .. } => record.variant(v),
            Shown::Live(l, _) => l.variant(v),
        }
    }

    /// The architecture and layer table: a live run has it from its first event.
    pub fn model(&self) -> Option<&'a ModelSummary> {
        match self {
            Shown::Record { record, .. } => Some(&record.model),
            Shown::Live(l, _) => l.model.as_ref(),
        }
    }

    pub fn params(&self) -> usize {
        match self {
            Shown::Record { record, .. } => record.model.params,
            Shown::Live(l, _) => l.params,
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
            Shown::Live(l, _) => l.spectrum_method,
        }
    }

    pub fn stats(&self, v: Variant) -> Option<&'a SpectrumStats> {
        match self {
            Shown::Record { record, .. } => record.variant(v).spectrum.as_ref().map(|s| &s.stats),
            Shown::Live(l, _) => l.stats(v),
        }
    }

    pub fn epochs(&self) -> usize {
        match self {
            Shown::Record { record, .. } => record.config.train.epochs,
            Shown::Live(l, _) => l.epochs,
        }
    }

    pub fn filter(&self) -> RowFilter {
        match self {
            Shown::Record { filter, .. } | Shown::Live(_, filter) => *filter,
        }
    }

    /// The pruning rows of `v` that pass the filter.
    pub fn rows(&self, v: Variant) -> impl Iterator<Item = &'a PruneRow> + 'a {
        let f = self.filter();
        self.variant(v).pruning.iter().filter(move |r| f.passes(r))
    }

    /// Rows of the pruning table (those that pass the filter; with no filter, at least one
    /// per configured ratio, so an unfinished run shows its empty rows).
    pub fn ratio_count(&self) -> usize {
        let rows = self
            .rows(Variant::Residual)
            .count()
            .max(self.rows(Variant::Plain).count());
        if !self.filter().is_all() {
            return rows;
        }
        match self {
            Shown::Record { record, .. } => rows.max(record.config.prune.ratios.len()),
            Shown::Live(l, _) => rows.max(l.ratios),
        }
    }

    /// Granularities and methods of the rows, in order of first appearance.
    pub fn granularities(&self) -> Vec<Granularity> {
        let mut out = Vec::new();
        for r in &self.variant(Variant::Residual).pruning {
            if !out.contains(&r.granularity) {
                out.push(r.granularity);
            }
        }
        out
    }

    pub fn methods(&self) -> Vec<PruneMethod> {
        let mut out = Vec::new();
        for r in &self.variant(Variant::Residual).pruning {
            if !out.contains(&r.method) {
                out.push(r.method);
            }
        }
        out
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

    /// Row `i` of the filtered table.
    pub fn row(&self, v: Variant, i: usize) -> Option<&'a PruneRow> {
        self.rows(v).nth(i)
    }
}
