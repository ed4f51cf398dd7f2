//! Statistics over records: mean ± sd across seeds and the article's claims judged on the
//! paired differences. Reads records only (never runs anything), so the pipeline, the CLI and
//! the notebook share it.

pub mod sweep;

use crate::config::{Granularity, PruneMethod};
use crate::curvature::SpectrumStats;
use crate::prune::lesion::Counterfactual;
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
            let rayleigh: Vec<f64> = results
                .iter()
                .filter_map(|r| Some(r.pruning.get(i)?.mechanism?.rayleigh))
                .collect();
            RowSummary {
                method: first.method,
                granularity: first.granularity,
                ratio: first.ratio,
                rayleigh: (!rayleigh.is_empty()).then(|| MeanSd::of(&rayleigh)),
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
    // the rows the first method made, per granularity, in order (N:M has its own ratio)
    let first = pairs.first().map(|p| p.1.pruning.as_slice()).unwrap_or(&[]);
    let mut keys: Vec<(Granularity, f64)> = Vec::new();
    for row in first.iter().filter(|row| row.method == method) {
        if !keys.contains(&(row.granularity, row.ratio)) {
            keys.push((row.granularity, row.ratio));
        }
    }
    fn find(v: &VariantResult, m: PruneMethod, g: Granularity, ratio: f64) -> Option<&PruneRow> {
        v.pruning
            .iter()
            .find(|row| row.method == m && row.granularity == g && row.ratio == ratio)
    }
    for &(g, ratio) in &keys {
        let diffs: Vec<f64> = pairs
            .iter()
            .filter_map(|(_, a, b)| {
                Some(
                    find(a, method, g, ratio)?.sensitivity - find(b, method, g, ratio)?.sensitivity,
                )
            })
            .collect();
        if diffs.len() >= 2 {
            out.push(stats::judge(
                &format!(
                    "more sensitive at {ratio} ({method}{}): S residual > plain",
                    suffix(g)
                ),
                Direction::Positive,
                diffs,
                level,
            ));
        }
    }
    // the mechanism: the curvature along the step, averaged over the granularity's ratios
    let mut granularities: Vec<Granularity> = keys.iter().map(|k| k.0).collect();
    granularities.dedup();
    for g in granularities {
        let mean_rayleigh = |v: &VariantResult| -> Option<f64> {
            let r: Vec<f64> = keys
                .iter()
                .filter(|k| k.0 == g)
                .map(|k| {
                    find(v, method, g, k.1)
                        .and_then(|row| row.mechanism)
                        .map(|m| m.rayleigh)
                })
                .collect::<Option<Vec<f64>>>()?;
            Some(r.iter().sum::<f64>() / r.len() as f64)
        };
        let diffs: Vec<f64> = pairs
            .iter()
            .filter_map(|(_, a, b)| Some(mean_rayleigh(a)? - mean_rayleigh(b)?))
            .collect();
        if diffs.len() >= 2 {
            out.push(stats::judge(
                &format!(
                    "pruning directions of higher curvature ({method}{}): mean Rayleigh quotient \
                     residual > plain",
                    suffix(g)
                ),
                Direction::Positive,
                diffs,
                level,
            ));
        }
    }
    // Veit et al.: a residual network survives losing a block better than a plain one
    let mean_lesion = |v: &VariantResult| -> Option<f64> {
        let l = v.lesions.as_ref()?;
        let d: Vec<f64> = l
            .single
            .iter()
            .filter(|r| r.counterfactual == Counterfactual::Identity)
            .map(|r| r.sensitivity)
            .collect();
        (!d.is_empty()).then(|| d.iter().sum::<f64>() / d.len() as f64)
    };
    let diffs: Vec<f64> = pairs
        .iter()
        .filter_map(|(_, a, b)| Some(mean_lesion(a)? - mean_lesion(b)?))
        .collect();
    if diffs.len() >= 2 {
        out.push(stats::judge(
            "a lost block costs less: mean single-block lesion S residual < plain (identity)",
            Direction::Negative,
            diffs,
            level,
        ));
    }
    out
}

/// ` · neuron` for a structured granularity; nothing for single weights, so the claims of
/// records before structured pruning read as they did.
fn suffix(g: Granularity) -> String {
    match g {
        Granularity::Unstructured => String::new(),
        other => format!(" · {other}"),
    }
}
