//! The numbers a figure shows, taken from a record: bins, curves, points and their spread.
//! Nothing here draws; [`super::render`] does.

use crate::config::{Granularity, PruneMethod};
use crate::curvature::{Histogram, Spectrum};
use crate::record::{Record, Status, VariantResult};
use crate::stats::MeanSd;

use super::style::Model;
use super::sweep::SweepFigure;
use super::{Kind, Options, PlotError};

/// Bins of the dense spectrum figure: both models over one shared range.
pub const BINS: usize = 40;

/// A figure before it is drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum Figure {
    Histogram(Histograms),
    Density(Densities),
    Sensitivity(Sensitivity),
    Prediction(Prediction),
    Training(Training),
    Sweep(SweepFigure),
}

impl Figure {
    pub fn title(&self) -> &str {
        match self {
            Figure::Histogram(f) => &f.title,
            Figure::Density(f) => &f.title,
            Figure::Sensitivity(f) => &f.title,
            Figure::Prediction(f) => &f.title,
            Figure::Training(f) => &f.title,
            Figure::Sweep(f) => &f.title,
        }
    }
}

/// Dense spectra: eigenvalue counts per bin of `[lo, hi]`, the same bins for both models.
#[derive(Debug, Clone, PartialEq)]
pub struct Histograms {
    pub title: String,
    pub lo: f64,
    pub hi: f64,
    /// `(model, counts)`, `BINS` counts each.
    pub series: Vec<(Model, Vec<u64>)>,
}

impl Histograms {
    pub fn bins(&self) -> usize {
        self.series.first().map_or(BINS, |(_, c)| c.len())
    }

    /// `[from, to)` of bin `i`.
    pub fn edges(&self, i: usize) -> (f64, f64) {
        let w = (self.hi - self.lo) / self.bins() as f64;
        (self.lo + w * i as f64, self.lo + w * (i + 1) as f64)
    }
}

/// SLQ densities, with the Ritz values Lanczos found at each end of the spectrum.
#[derive(Debug, Clone, PartialEq)]
pub struct Densities {
    pub title: String,
    pub series: Vec<DensityCurve>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DensityCurve {
    pub model: Model,
    pub grid: Vec<f64>,
    pub density: Vec<f64>,
    /// The bottom and top Ritz values (the extremes), ascending.
    pub ritz: Vec<f64>,
}

/// S against the pruning ratio: one line per model, method and granularity.
#[derive(Debug, Clone, PartialEq)]
pub struct Sensitivity {
    pub title: String,
    /// Seeds the points are taken over.
    pub seeds: usize,
    /// The record prunes at more than one granularity: labels name it.
    pub by_granularity: bool,
    pub lines: Vec<SensitivityLine>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SensitivityLine {
    pub model: Model,
    pub method: PruneMethod,
    pub granularity: Granularity,
    /// Position of the (method, granularity) in the record's order (its line style).
    pub style_index: usize,
    /// `(ratio, S over seeds)`, ascending ratio; an error bar where `n > 1`.
    pub points: Vec<(f64, MeanSd)>,
}

impl SensitivityLine {
    /// `residual, magnitude`, or `residual, magnitude · 2:4` when the figure has several
    /// granularities.
    pub fn label(&self, by_granularity: bool) -> String {
        let (model, method) = (self.model.name(), self.method);
        if by_granularity {
            format!("{model}, {method} · {}", self.granularity)
        } else {
            format!("{model}, {method}")
        }
    }
}

/// Predicted ΔL against measured ΔL, every pruning row of every seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub title: String,
    /// `(model, [(measured, predicted)])`.
    pub series: Vec<(Model, Vec<(f64, f64)>)>,
}

/// One epoch of a model's training history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Epoch {
    pub epoch: f64,
    pub train_loss: f64,
    pub eval_loss: f64,
    pub train_accuracy: f64,
    pub eval_accuracy: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Training {
    pub title: String,
    pub series: Vec<(Model, Vec<Epoch>)>,
}

fn result(record: &Record, model: Model) -> &VariantResult {
    match model {
        Model::Residual => &record.residual,
        Model::Plain => &record.plain,
    }
}

/// `; the run was interrupted (...)` for a record that stopped early, else empty.
fn why(record: &Record) -> String {
    let detail = record
        .error
        .as_deref()
        .map(|e| format!(" ({e})"))
        .unwrap_or_default();
    match record.status {
        Status::Complete => String::new(),
        Status::Interrupted => format!("; the run was interrupted{detail} before that stage"),
        Status::Failed => format!("; the run failed{detail}"),
    }
}

fn missing(record: &Record, label: &str, kind: Kind, what: &str) -> PlotError {
    PlotError::Missing {
        record: label.to_string(),
        kind,
        what: what.to_string(),
        why: why(record),
    }
}

fn first_seed(record: &Record) -> u64 {
    record.config.seed_list().first().copied().unwrap_or(0)
}

/// The figure of `opts.kind` from `record`; `label` names the record in the title.
pub fn figure(record: &Record, label: &str, opts: &Options) -> Result<Figure, PlotError> {
    match opts.kind {
        Kind::Spectrum => spectrum(record, label),
        Kind::Sensitivity => sensitivity(record, label),
        Kind::Prediction => prediction(record, label),
        Kind::Training => training(record, label),
        Kind::Sweep => Err(PlotError::RecordNotSweep(label.into())),
    }
}

fn spectrum(record: &Record, label: &str) -> Result<Figure, PlotError> {
    let present: Vec<(Model, &Spectrum)> = Model::BOTH
        .into_iter()
        .filter_map(|m| result(record, m).spectrum.as_ref().map(|s| (m, s)))
        .collect();
    if present.is_empty() {
        return Err(missing(
            record,
            label,
            Kind::Spectrum,
            "neither model has a Hessian spectrum",
        ));
    }
    let seed = first_seed(record);
    let dense: Vec<(Model, &[f64])> = present
        .iter()
        .filter(|(_, s)| !s.eigenvalues.is_empty())
        .map(|(m, s)| (*m, s.eigenvalues.as_slice()))
        .collect();
    let slq: Vec<(Model, &Spectrum)> = present
        .iter()
        .filter(|(_, s)| s.density.is_some())
        .copied()
        .collect();
    // every spectrum present drawn the same way; dense eigenvalues first
    if !dense.is_empty() && (dense.len() == present.len() || slq.len() < present.len()) {
        return Ok(Figure::Histogram(histograms(
            format!("{label}: Hessian eigenvalues (dense, seed {seed})"),
            &dense,
        )));
    }
    if slq.is_empty() {
        return Err(missing(
            record,
            label,
            Kind::Spectrum,
            "its spectra hold neither eigenvalues (dense) nor an SLQ density (Lanczos)",
        ));
    }
    let series = slq
        .into_iter()
        .filter_map(|(model, s)| {
            let d = s.density.as_ref()?;
            let mut ritz: Vec<f64> = s
                .lanczos
                .iter()
                .flat_map(|l| l.bottom.iter().chain(&l.top))
                .map(|r| r.value)
                .filter(|v| v.is_finite())
                .collect();
            ritz.sort_by(f64::total_cmp);
            ritz.dedup();
            Some(DensityCurve {
                model,
                grid: d.grid.clone(),
                density: d.density.clone(),
                ritz,
            })
        })
        .collect();
    Ok(Figure::Density(Densities {
        title: format!("{label}: Hessian spectral density (SLQ, seed {seed})"),
        series,
    }))
}

/// Both models' eigenvalues binned over their joint range.
pub fn histograms(title: String, spectra: &[(Model, &[f64])]) -> Histograms {
    let values = spectra.iter().flat_map(|(_, v)| v.iter().copied());
    let finite: Vec<f64> = values.filter(|v| v.is_finite()).collect();
    let mut lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let mut hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if hi - lo <= f64::EPSILON * lo.abs().max(1.0) {
        // one value: a bin of unit width around it
        let half = 0.5 * lo.abs().max(1.0);
        (lo, hi) = (lo - half, hi + half);
    }
    let series = spectra
        .iter()
        .map(|(m, v)| {
            let v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
            (*m, Histogram::new(&v, lo, hi, BINS).counts)
        })
        .collect();
    Histograms {
        title,
        lo,
        hi,
        series,
    }
}

fn sensitivity(record: &Record, label: &str) -> Result<Figure, PlotError> {
    let pairs = record.pairs();
    let mut lines = Vec::new();
    // (method, granularity) in the order the record has them, the same index (line style)
    // in both models
    let mut combos: Vec<(PruneMethod, Granularity)> = Vec::new();
    for (_, r, p) in &pairs {
        for row in r.pruning.iter().chain(&p.pruning) {
            if !combos.contains(&(row.method, row.granularity)) {
                combos.push((row.method, row.granularity));
            }
        }
    }
    let of = |row: &crate::prune::PruneRow, (m, g): (PruneMethod, Granularity)| {
        row.method == m && row.granularity == g
    };
    for model in Model::BOTH {
        let seeds: Vec<&VariantResult> = pairs
            .iter()
            .map(|(_, r, p)| if model == Model::Residual { *r } else { *p })
            .collect();
        for (style_index, &combo) in combos.iter().enumerate() {
            let mut ratios: Vec<f64> = seeds
                .iter()
                .flat_map(|v| v.pruning.iter())
                .filter(|r| of(r, combo) && r.ratio.is_finite())
                .map(|r| r.ratio)
                .collect();
            ratios.sort_by(f64::total_cmp);
            ratios.dedup();
            let points: Vec<(f64, MeanSd)> = ratios
                .into_iter()
                .filter_map(|ratio| {
                    let s: Vec<f64> = seeds
                        .iter()
                        .filter_map(|v| v.pruning.iter().find(|r| of(r, combo) && r.ratio == ratio))
                        .map(|r| r.sensitivity)
                        .filter(|s| s.is_finite())
                        .collect();
                    (!s.is_empty()).then(|| (ratio, MeanSd::of(&s)))
                })
                .collect();
            if !points.is_empty() {
                lines.push(SensitivityLine {
                    model,
                    method: combo.0,
                    granularity: combo.1,
                    style_index,
                    points,
                });
            }
        }
    }
    if lines.is_empty() {
        return Err(missing(
            record,
            label,
            Kind::Sensitivity,
            "neither model has pruning rows",
        ));
    }
    let seeds = pairs.len();
    let over = if seeds > 1 {
        format!("mean ± sd over {seeds} seeds")
    } else {
        format!("seed {}", first_seed(record))
    };
    Ok(Figure::Sensitivity(Sensitivity {
        title: format!("{label}: pruning sensitivity ({over})"),
        seeds,
        by_granularity: combos.iter().any(|(_, g)| *g != combos[0].1),
        lines,
    }))
}

fn prediction(record: &Record, label: &str) -> Result<Figure, PlotError> {
    let pairs = record.pairs();
    let series: Vec<(Model, Vec<(f64, f64)>)> = Model::BOTH
        .into_iter()
        .map(|model| {
            let pts = pairs
                .iter()
                .map(|(_, r, p)| if model == Model::Residual { *r } else { *p })
                .flat_map(|v| v.pruning.iter())
                .map(|r| (r.delta_loss, r.predicted_delta))
                .filter(|(a, b)| a.is_finite() && b.is_finite())
                .collect();
            (model, pts)
        })
        .filter(|(_, pts): &(Model, Vec<(f64, f64)>)| !pts.is_empty())
        .collect();
    if series.is_empty() {
        return Err(missing(
            record,
            label,
            Kind::Prediction,
            "no pruning row has a measured and a predicted ΔL",
        ));
    }
    let seeds = pairs.len();
    let over = if seeds > 1 {
        format!("{seeds} seeds")
    } else {
        format!("seed {}", first_seed(record))
    };
    Ok(Figure::Prediction(Prediction {
        title: format!("{label}: predicted vs measured ΔL ({over})"),
        series,
    }))
}

fn training(record: &Record, label: &str) -> Result<Figure, PlotError> {
    let series: Vec<(Model, Vec<Epoch>)> = Model::BOTH
        .into_iter()
        .map(|m| {
            let epochs = result(record, m)
                .history
                .iter()
                .map(|e| Epoch {
                    epoch: e.epoch as f64,
                    train_loss: e.train_loss,
                    eval_loss: e.eval_loss,
                    train_accuracy: e.train_accuracy,
                    eval_accuracy: e.eval_accuracy,
                })
                .collect();
            (m, epochs)
        })
        .filter(|(_, e): &(Model, Vec<Epoch>)| !e.is_empty())
        .collect();
    if series.is_empty() {
        return Err(missing(
            record,
            label,
            Kind::Training,
            "neither model has a training history",
        ));
    }
    Ok(Figure::Training(Training {
        title: format!("{label}: training (seed {})", first_seed(record)),
        series,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_share_one_range_and_keep_every_value() {
        let r: &[f64] = &[-1.0, 0.5, 3.0];
        let p: &[f64] = &[0.0, f64::NAN];
        let h = histograms("t".into(), &[(Model::Residual, r), (Model::Plain, p)]);
        assert_eq!((h.lo, h.hi, h.bins()), (-1.0, 3.0, BINS));
        assert_eq!(h.series[0].1.iter().sum::<u64>(), 3);
        assert_eq!(h.series[1].1.iter().sum::<u64>(), 1, "NaN is not counted");
        assert_eq!(h.series[0].1[0], 1);
        assert_eq!(
            h.series[0].1[BINS - 1],
            1,
            "the maximum falls in the last bin"
        );
        assert_eq!(h.edges(0), (-1.0, -0.9));
        // one value: a unit-wide range around it
        let one: &[f64] = &[2.0, 2.0];
        let h = histograms("t".into(), &[(Model::Residual, one)]);
        assert_eq!((h.lo, h.hi), (1.0, 3.0));
    }
}
