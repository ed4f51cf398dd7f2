//! Statistics over records: mean ± sd across seeds and the article's claims judged on the
//! paired differences. Reads records only (never runs anything), so the pipeline, the CLI and
//! the notebook share it.

pub mod sweep;

use crate::curvature::SpectrumStats;
use crate::prune::PruneRow;
use crate::record::{Record, ReplicateSummary, RowSummary, VariantResult, VariantSummary};
use crate::stats::{self, Claim, Direction, MeanSd};
use crate::train::EpochStats;

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
