//! Statistics across the points of a sweep: per point, mean ± sd over seeds of each headline
//! number for the residual and the plain model, and the verdicts; per swept axis, the paired
//! difference `residual − plain` against the axis value with its confidence band, and a
//! Spearman rank-correlation test of whether it grows with the axis. Reads records only.
//!
//! The trend of one axis is taken within each combination of the other axes in a grid (the
//! depth trend on each data set apart); in a zip sweep the axes move together, so over all
//! points. Every seed's paired difference is one observation of the rank test (ties in the
//! axis value get mean ranks; the p-value is the two-sided t approximation with n − 2
//! degrees of freedom); the band at each value is the t interval of the mean difference at
//! the records' `significance` level.

use crate::config::PruneMethod;
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::config::{value_label, SweepMode};
use crate::record::{Record, VariantResult};
use crate::stats::{MeanSd, Verdict};

/// One point as the report reads it.
#[derive(Debug, Clone)]
pub struct PointInput<'a> {
    pub name: &'a str,
    /// `(axis, value)` in axis order.
    pub values: Vec<(String, toml::Value)>,
    /// The manifest's word for it (`done`, `pending`, ...).
    pub status: &'a str,
    /// Its record, when it loads.
    pub record: Option<&'a Record>,
}

/// A headline number of one model in one seed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    /// `Var(λ)`, `λmax`, `trace`, `accuracy`, `S@0.1` (`S@0.1 obd` past the first method).
    pub name: String,
    #[serde(skip)]
    kind: MetricKind,
}

#[derive(Debug, Clone, PartialEq)]
enum MetricKind {
    Variance,
    LambdaMax,
    Trace,
    Accuracy,
    Sensitivity { method: PruneMethod, ratio: f64 },
}

impl Metric {
    fn of(&self, v: &VariantResult) -> Option<f64> {
        let stats = || v.spectrum.as_ref().map(|s| &s.stats);
        match &self.kind {
            MetricKind::Variance => stats().map(|s| s.variance),
            MetricKind::LambdaMax => stats().map(|s| s.max),
            MetricKind::Trace => stats().map(|s| s.trace),
            MetricKind::Accuracy => v.history.last().map(|h| h.eval_accuracy),
            MetricKind::Sensitivity { method, ratio } => v
                .pruning
                .iter()
                .find(|r| r.method == *method && r.ratio == *ratio)
                .map(|r| r.sensitivity),
        }
    }

    /// Whether this is a pruning sensitivity (the chart's S).
    pub fn is_sensitivity(&self) -> bool {
        matches!(self.kind, MetricKind::Sensitivity { .. })
    }
}

/// The metrics of a sweep, from its first record's config: the spectrum's three, the final
/// accuracy, and S at each ratio of each method.
pub fn metrics(first: &Record) -> Vec<Metric> {
    let mut out = vec![
        Metric {
            name: "Var(λ)".into(),
            kind: MetricKind::Variance,
        },
        Metric {
            name: "λmax".into(),
            kind: MetricKind::LambdaMax,
        },
        Metric {
            name: "trace".into(),
            kind: MetricKind::Trace,
        },
        Metric {
            name: "accuracy".into(),
            kind: MetricKind::Accuracy,
        },
    ];
    let methods = &first.config.prune.methods;
    for (i, m) in methods.iter().enumerate() {
        for &ratio in &first.config.prune.ratios {
            out.push(Metric {
                name: if i == 0 {
                    format!("S@{ratio}")
                } else {
                    format!("S@{ratio} {}", m.name())
                },
                kind: MetricKind::Sensitivity { method: *m, ratio },
            });
        }
    }
    out
}

/// One metric of one point: each model's mean ± sd over seeds and the paired difference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    pub metric: String,
    pub residual: Option<MeanSd>,
    pub plain: Option<MeanSd>,
    /// `residual − plain` per seed.
    pub differences: Vec<f64>,
}

/// One claim's verdict at a point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointVerdict {
    pub claim: String,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointRow {
    pub name: String,
    pub values: Vec<(String, toml::Value)>,
    pub status: String,
    pub seeds: usize,
    pub cells: Vec<Cell>,
    pub verdicts: Vec<PointVerdict>,
}

/// The paired difference at one axis value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendPoint {
    pub x: f64,
    pub mean: f64,
    /// The confidence band of the mean (equal to it below two seeds).
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
}

/// What the rank test says of the difference along the axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Grows,
    Shrinks,
    NoTrend,
    /// Fewer than three axis values or four observations.
    TooFew,
}

impl Direction {
    pub fn word(self) -> &'static str {
        match self {
            Direction::Grows => "grows",
            Direction::Shrinks => "shrinks",
            Direction::NoTrend => "no trend",
            Direction::TooFew => "too few points",
        }
    }
}

/// `residual − plain` of one metric along one axis, the other axes held at `within`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    pub axis: String,
    pub metric: String,
    /// The other axes' values (grid), empty in a zip sweep or with one axis.
    pub within: Vec<(String, String)>,
    pub points: Vec<TrendPoint>,
    /// Spearman's rank correlation of the difference with the axis value, and its p-value.
    pub rho: f64,
    pub p: f64,
    /// Observations (seed-level differences).
    pub n: usize,
    pub level: f64,
    pub direction: Direction,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepReport {
    pub name: String,
    pub axes: Vec<String>,
    pub mode: SweepMode,
    pub metrics: Vec<String>,
    /// The confidence of the bands, `1 − significance`.
    pub confidence: f64,
    pub rows: Vec<PointRow>,
    pub trends: Vec<Trend>,
}

/// Every seed's `(residual, plain)` value of `m` in `r`.
fn paired(r: &Record, m: &Metric) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mut a, mut b, mut d) = (Vec::new(), Vec::new(), Vec::new());
    for (_, res, plain) in r.pairs() {
        let (x, y) = (m.of(res), m.of(plain));
        if let Some(x) = x {
            a.push(x);
        }
        if let Some(y) = y {
            b.push(y);
        }
        if let (Some(x), Some(y)) = (x, y) {
            d.push(x - y);
        }
    }
    (a, b, d)
}

fn numeric(v: &toml::Value) -> Option<f64> {
    match v {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// The report over a sweep's points (in point order). Points without a complete record
/// get a row with their status and no numbers, and stay out of the trends.
pub fn sweep_report<'a>(
    name: &str,
    axes: &[String],
    mode: SweepMode,
    points: &[PointInput<'a>],
) -> SweepReport {
    fn complete<'a>(p: &PointInput<'a>) -> Option<&'a Record> {
        p.record
            .filter(|r| r.status == crate::record::Status::Complete)
    }
    let first = points.iter().find_map(complete);
    let metrics = first.map(metrics).unwrap_or_default();
    let level = first.map_or(0.05, |r| r.config.significance);
    let rows: Vec<PointRow> = points
        .iter()
        .map(|p| {
            let rec = complete(p);
            PointRow {
                name: p.name.to_string(),
                values: p.values.clone(),
                status: p.status.to_string(),
                seeds: rec.map_or(0, |r| r.pairs().len()),
                cells: rec.map_or_else(Vec::new, |r| {
                    metrics
                        .iter()
                        .map(|m| {
                            let (a, b, d) = paired(r, m);
                            Cell {
                                metric: m.name.clone(),
                                residual: (!a.is_empty()).then(|| MeanSd::of(&a)),
                                plain: (!b.is_empty()).then(|| MeanSd::of(&b)),
                                differences: d,
                            }
                        })
                        .collect()
                }),
                verdicts: rec.map_or_else(Vec::new, |r| {
                    r.verdicts
                        .iter()
                        .map(|c| PointVerdict {
                            claim: c.claim.clone(),
                            verdict: c.verdict,
                        })
                        .collect()
                }),
            }
        })
        .collect();
    let mut trends = Vec::new();
    for (ai, axis) in axes.iter().enumerate() {
        let all_numeric = points
            .iter()
            .all(|p| p.values.get(ai).and_then(|(_, v)| numeric(v)).is_some());
        if !all_numeric || points.is_empty() {
            continue;
        }
        // groups: the other axes' values (grid), or one group (zip, one axis)
        let key_of = |p: &PointInput<'_>| -> Vec<(String, String)> {
            if mode == SweepMode::Zip {
                return Vec::new();
            }
            p.values
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != ai)
                .map(|(_, (k, v))| (k.clone(), value_label(v)))
                .collect()
        };
        let mut groups: Vec<Vec<(String, String)>> = Vec::new();
        for p in points {
            let k = key_of(p);
            if !groups.contains(&k) {
                groups.push(k);
            }
        }
        for within in groups {
            for (mi, m) in metrics.iter().enumerate() {
                let mut pts: Vec<(f64, &[f64])> = points
                    .iter()
                    .zip(&rows)
                    .filter(|(p, _)| key_of(p) == within)
                    .filter_map(|(p, row)| {
                        let x = numeric(&p.values[ai].1)?;
                        let cell = row.cells.get(mi)?;
                        Some((x, cell.differences.as_slice()))
                    })
                    .collect();
                if pts.is_empty() {
                    continue;
                }
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                let tp: Vec<TrendPoint> = pts
                    .iter()
                    .map(|(x, d)| {
                        let (lo, hi) = band(d, level);
                        TrendPoint {
                            x: *x,
                            mean: MeanSd::of(d).mean,
                            lo,
                            hi,
                            n: d.len(),
                        }
                    })
                    .collect();
                let (xs, ys): (Vec<f64>, Vec<f64>) = pts
                    .iter()
                    .flat_map(|(x, d)| d.iter().map(move |y| (*x, *y)))
                    .unzip();
                let distinct = {
                    let mut v: Vec<f64> = pts.iter().map(|p| p.0).collect();
                    v.dedup();
                    v.len()
                };
                let (rho, p) = spearman(&xs, &ys);
                let direction = if distinct < 3 || xs.len() < 4 || rho.is_nan() {
                    Direction::TooFew
                } else if p < level && rho > 0.0 {
                    Direction::Grows
                } else if p < level && rho < 0.0 {
                    Direction::Shrinks
                } else {
                    Direction::NoTrend
                };
                trends.push(Trend {
                    axis: axis.clone(),
                    metric: m.name.clone(),
                    within: within.clone(),
                    points: tp,
                    rho,
                    p,
                    n: xs.len(),
                    level,
                    direction,
                });
            }
        }
    }
    SweepReport {
        name: name.to_string(),
        axes: axes.to_vec(),
        mode,
        metrics: metrics.iter().map(|m| m.name.clone()).collect(),
        confidence: 1.0 - level,
        rows,
        trends,
    }
}

/// The two-sided `1 − level` t interval of the mean of `d` (the mean itself below two values).
pub fn band(d: &[f64], level: f64) -> (f64, f64) {
    let m = MeanSd::of(d);
    if m.n < 2 {
        return (m.mean, m.mean);
    }
    let t = StudentsT::new(0.0, 1.0, (m.n - 1) as f64)
        .map(|dist| dist.inverse_cdf(1.0 - level / 2.0))
        .unwrap_or(f64::NAN);
    let half = t * m.sd / (m.n as f64).sqrt();
    (m.mean - half, m.mean + half)
}

/// Ranks from 1, ties sharing their mean rank.
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = mean;
        }
        i = j + 1;
    }
    r
}

/// Spearman's ρ (Pearson's correlation of the ranks) and its two-sided p-value by the t
/// approximation `t = ρ √((n − 2) / (1 − ρ²))`, n − 2 degrees of freedom. `(NaN, 1)` when
/// either side is constant or there are fewer than three pairs.
pub fn spearman(x: &[f64], y: &[f64]) -> (f64, f64) {
    let n = x.len().min(y.len());
    if n < 3 {
        return (f64::NAN, 1.0);
    }
    let (rx, ry) = (ranks(&x[..n]), ranks(&y[..n]));
    let mean = (n as f64 + 1.0) / 2.0;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (a, b) = (rx[i] - mean, ry[i] - mean);
        sxy += a * b;
        sxx += a * a;
        syy += b * b;
    }
    if sxx == 0.0 || syy == 0.0 {
        return (f64::NAN, 1.0);
    }
    let rho = sxy / (sxx * syy).sqrt();
    if rho.abs() >= 1.0 {
        return (rho.signum(), 0.0);
    }
    let df = (n - 2) as f64;
    let t = rho * (df / (1.0 - rho * rho)).sqrt();
    let p = StudentsT::new(0.0, 1.0, df)
        .map(|d| 2.0 * d.sf(t.abs()))
        .unwrap_or(1.0);
    (rho, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_matches_known_values() {
        // monotone: rho = 1
        let (r, p) = spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 25.0, 100.0]);
        assert_eq!((r, p), (1.0, 0.0));
        // scipy.stats.spearmanr([1,2,3,4,5],[2,1,4,3,5]) = 0.8, p = 0.10408803866182788
        let (r, p) = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[2.0, 1.0, 4.0, 3.0, 5.0]);
        assert!((r - 0.8).abs() < 1e-12, "{r}");
        assert!((p - 0.104_088_038_661_827_88).abs() < 1e-6, "{p}");
        // ties get mean ranks: Pearson's r of the mean ranks (what scipy's spearmanr computes)
        let (r, _) = spearman(
            &[1.0, 1.0, 2.0, 2.0, 3.0, 3.0],
            &[1.0, 2.0, 2.0, 3.0, 3.0, 4.0],
        );
        assert!((r - 0.861_640_436_855_329_1).abs() < 1e-12, "{r}");
        assert!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).0.is_nan());
    }

    #[test]
    fn the_band_is_the_t_interval() {
        // mean 2, sd 1, n 4: t(0.975, 3) = 3.182446305284263; half = 3.1824 / 2
        let (lo, hi) = band(&[1.0, 2.0, 3.0, 2.0], 0.05);
        let sd = (2.0f64 / 3.0).sqrt();
        let half = 3.182_446_305_284_263 * sd / 2.0;
        assert!((lo - (2.0 - half)).abs() < 1e-9 && (hi - (2.0 + half)).abs() < 1e-9);
        assert_eq!(band(&[5.0], 0.05), (5.0, 5.0));
    }
}
