//! The sweep figure's numbers: Var(λ) and S against the swept value, residual and plain, with
//! the spread across seeds at every point.
//!
//! The points come from a sweep folder read by the front end with `sweep::load` (the loader
//! `sweep report` uses; plot sits below `sweep` and does not import it) into a [`SweepInput`].
//! Then:
//! - x: the swept key `--axis` names, else the innermost key whose values are all numbers
//!   (else the innermost key, its values set at 0, 1, 2, ... in sweep order);
//! - one line per model and per combination of the other keys' values (a grid; in a zip
//!   sweep the keys move together, so one line per model), the combination in its label;
//! - at each point, the mean ± sample sd over the record's seeds (first seed and replicates)
//!   of `spectrum.stats.variance` and of S at `--ratio` (default: the middle ratio, the lower
//!   of the two middle ones of an even count) for `--method` (default: the first in the
//!   records) at `--granularity` (default: unstructured where the method has it, else its
//!   first granularity);
//! - every point must be done and have what the figure shows; otherwise the error names the
//!   points (a figure for a paper never silently drops one).

use crate::config::{value_label, Granularity, PruneMethod, SweepMode};
use crate::prune::PruneRow;
use crate::record::{Record, VariantResult};
use crate::stats::MeanSd;

use super::data::Figure;
use super::style::Model;
use super::PlotError;

/// A sweep as the figure reads it: what `sweep::load` gives, in the sweep's point order.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepInput {
    /// The sweep's name (the manifest's), for the title.
    pub name: String,
    /// The swept keys, outermost first.
    pub axes: Vec<String>,
    pub mode: SweepMode,
    pub points: Vec<SweepPoint>,
}

/// One point of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepPoint {
    /// `model.depth=2,...`, the name of its record.
    pub name: String,
    /// `(key, value)` of each swept key, in axis order.
    pub values: Vec<(String, toml::Value)>,
    /// The manifest's word for it (`done`, `pending`, ...).
    pub status: String,
    /// Its record is complete and made from the sweep's config (the manifest's `done`).
    pub done: bool,
    /// Its record, when it loads.
    pub record: Option<Record>,
}

/// Which S the sweep figure draws, and along which key (the `plot` flags `--axis`,
/// `--ratio`, `--method`, `--granularity`); `None`: the default the module docs give.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SweepSelect {
    pub axis: Option<String>,
    pub ratio: Option<f64>,
    pub method: Option<PruneMethod>,
    pub granularity: Option<Granularity>,
}

impl SweepSelect {
    /// The flags that are set, as the command line spells them.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.axis.is_some() {
            v.push("--axis");
        }
        if self.ratio.is_some() {
            v.push("--ratio");
        }
        if self.method.is_some() {
            v.push("--method");
        }
        if self.granularity.is_some() {
            v.push("--granularity");
        }
        v
    }
}

/// What a panel of the sweep figure shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    /// `spectrum.stats.variance`, the population variance of the Hessian eigenvalues.
    Variance,
    /// S at the chosen ratio, method and granularity.
    Sensitivity,
}

/// Var(λ) and S against the swept value.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepFigure {
    pub title: String,
    /// The swept key on the x axis.
    pub axis: String,
    /// The axis's values when they are not all numbers: value `i` is drawn at `x = i`.
    pub categories: Option<Vec<String>>,
    pub ratio: f64,
    pub method: PruneMethod,
    pub granularity: Granularity,
    /// Seeds per point, fewest and most.
    pub seeds: (usize, usize),
    /// Var(λ), then S.
    pub panels: Vec<SweepPanel>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SweepPanel {
    pub quantity: Quantity,
    /// The y axis title.
    pub y_desc: String,
    pub lines: Vec<SweepLine>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SweepLine {
    pub model: Model,
    /// The other keys' `(key, value)` this line holds (empty with one key, or in a zip).
    pub within: Vec<(String, String)>,
    /// Position of `within` among the combinations (its line style).
    pub style_index: usize,
    /// `(x, value over seeds)`, ascending x; an error bar where `n > 1`.
    pub points: Vec<(f64, MeanSd)>,
}

impl SweepLine {
    /// `residual`, or `residual, data.source=synthetic` when other keys vary.
    pub fn label(&self) -> String {
        let mut s = self.model.name().to_string();
        for (k, v) in &self.within {
            s.push_str(&format!(", {k}={v}"));
        }
        s
    }
}

/// The point's value of `key`.
fn value<'a>(p: &'a SweepPoint, key: &str) -> Option<&'a toml::Value> {
    p.values.iter().find(|(k, _)| k == key).map(|kv| &kv.1)
}

fn numeric(v: &toml::Value) -> Option<f64> {
    match v {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(f) => Some(*f),
        _ => None,
    }
}

fn variant<'a>(r: (u64, &'a VariantResult, &'a VariantResult), m: Model) -> &'a VariantResult {
    match m {
        Model::Residual => r.1,
        Model::Plain => r.2,
    }
}

fn list<T: std::fmt::Display>(v: &[T]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Ratios are the config's numbers read back from TOML: equal as written, so equal here up to
/// the last bit or two of a value typed on the command line.
fn same_ratio(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

fn why(record: &Record) -> String {
    match &record.error {
        Some(e) => format!("; the run stopped early ({e})"),
        None => String::new(),
    }
}

/// The sweep figure of `input` (see the module docs).
pub fn figure(input: &SweepInput, sel: &SweepSelect) -> Result<Figure, PlotError> {
    let sweep = input.name.clone();
    if input.points.is_empty() || input.axes.is_empty() {
        return Err(PlotError::EmptySweep(sweep));
    }
    let unfinished: Vec<String> = input
        .points
        .iter()
        .filter(|p| !p.done || p.record.is_none())
        .map(|p| match (&p.record, p.done) {
            // the manifest was written before the file went
            (None, true) => format!("{} (its record is gone or does not load)", p.name),
            _ => format!("{} ({})", p.name, p.status),
        })
        .collect();
    if !unfinished.is_empty() {
        return Err(PlotError::SweepUnfinished {
            sweep,
            count: unfinished.len(),
            total: input.points.len(),
            points: unfinished.join(", "),
        });
    }
    let points: Vec<(&SweepPoint, &Record)> = input
        .points
        .iter()
        .filter_map(|p| Some((p, p.record.as_ref()?)))
        .collect();

    // the x axis
    let all_numeric = |key: &str| {
        points
            .iter()
            .all(|(p, _)| value(p, key).and_then(numeric).is_some())
    };
    let axis = match &sel.axis {
        Some(a) if input.axes.contains(a) => a.clone(),
        Some(a) => {
            return Err(PlotError::Choice {
                flag: "--axis",
                value: a.clone(),
                what: format!("{sweep} does not sweep it"),
                available: list(&input.axes),
            })
        }
        None => input
            .axes
            .iter()
            .rev()
            .find(|a| all_numeric(a))
            .unwrap_or(&input.axes[input.axes.len() - 1])
            .clone(),
    };
    let categories: Option<Vec<String>> = (!all_numeric(&axis)).then(|| {
        let mut c: Vec<String> = Vec::new();
        for (p, _) in &points {
            let l = value(p, &axis).map(value_label).unwrap_or_default();
            if !c.contains(&l) {
                c.push(l);
            }
        }
        c
    });
    let x_of = |p: &SweepPoint| -> f64 {
        let v = value(p, &axis);
        match &categories {
            None => v.and_then(numeric).unwrap_or(f64::NAN),
            Some(c) => {
                let l = v.map(value_label).unwrap_or_default();
                c.iter().position(|x| *x == l).unwrap_or(0) as f64
            }
        }
    };
    let within_of = |p: &SweepPoint| -> Vec<(String, String)> {
        if input.mode == SweepMode::Zip {
            return Vec::new();
        }
        p.values
            .iter()
            .filter(|(k, _)| *k != axis)
            .map(|(k, v)| (k.clone(), value_label(v)))
            .collect()
    };
    let mut groups: Vec<Vec<(String, String)>> = Vec::new();
    for (p, _) in &points {
        let w = within_of(p);
        if !groups.contains(&w) {
            groups.push(w);
        }
    }

    // which S: (method, granularity) in the records' order, then the ratio
    let rows = || {
        points.iter().flat_map(|(_, r)| {
            r.pairs()
                .into_iter()
                .flat_map(|(_, a, b)| a.pruning.iter().chain(&b.pruning))
                .collect::<Vec<&PruneRow>>()
        })
    };
    let mut combos: Vec<(PruneMethod, Granularity)> = Vec::new();
    for row in rows() {
        if !combos.contains(&(row.method, row.granularity)) {
            combos.push((row.method, row.granularity));
        }
    }
    if combos.is_empty() {
        let (p, r) = points[0];
        return Err(PlotError::SweepPoint {
            sweep,
            point: p.name.clone(),
            what: "neither model has pruning rows (nor has any other point's)".into(),
            why: why(r),
        });
    }
    let methods: Vec<PruneMethod> = combos.iter().fold(Vec::new(), |mut v, (m, _)| {
        if !v.contains(m) {
            v.push(*m);
        }
        v
    });
    let method = match sel.method {
        Some(m) if methods.contains(&m) => m,
        Some(m) => {
            return Err(PlotError::Choice {
                flag: "--method",
                value: m.name().into(),
                what: format!("{sweep}'s records have no pruning by it"),
                available: list(&methods),
            })
        }
        None => methods[0],
    };
    let grans: Vec<Granularity> = combos
        .iter()
        .filter(|(m, _)| *m == method)
        .map(|(_, g)| *g)
        .collect();
    let granularity = match sel.granularity {
        Some(g) if grans.contains(&g) => g,
        Some(g) => {
            return Err(PlotError::Choice {
                flag: "--granularity",
                value: g.name(),
                what: format!("{sweep}'s records have no {method} pruning at it"),
                available: list(&grans),
            })
        }
        None if grans.contains(&Granularity::Unstructured) => Granularity::Unstructured,
        None => grans[0],
    };
    // the granularity is named when it is not the only one, or not the plain unstructured
    let name_granularity =
        granularity != Granularity::Unstructured || combos.iter().any(|(_, g)| *g != granularity);
    let chosen = |row: &PruneRow| row.method == method && row.granularity == granularity;
    let mut ratios: Vec<f64> = rows()
        .filter(|r| chosen(r) && r.ratio.is_finite())
        .map(|r| r.ratio)
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios.dedup_by(|a, b| same_ratio(*a, *b));
    let what = if name_granularity {
        format!("{method} · {granularity}")
    } else {
        method.name().to_string()
    };
    let ratio = match sel.ratio {
        Some(r) => {
            *ratios
                .iter()
                .find(|x| same_ratio(**x, r))
                .ok_or_else(|| PlotError::Choice {
                    flag: "--ratio",
                    value: r.to_string(),
                    what: format!("{sweep}'s records have no {what} pruning at this ratio"),
                    available: list(&ratios),
                })?
        }
        None => *ratios
            .get(ratios.len().saturating_sub(1) / 2)
            .ok_or_else(|| PlotError::SweepPoint {
                sweep: sweep.clone(),
                point: points[0].0.name.clone(),
                what: format!("its {what} pruning rows (and every other point's) have no ratio"),
                why: String::new(),
            })?,
    };

    // every point's numbers
    let mut seeds = (usize::MAX, 0);
    let mut var_lines = Vec::new();
    let mut s_lines = Vec::new();
    for model in Model::BOTH {
        for (style_index, within) in groups.iter().enumerate() {
            let mut var_pts = Vec::new();
            let mut s_pts = Vec::new();
            for (p, r) in points.iter().filter(|(p, _)| within_of(p) == *within) {
                let pairs = r.pairs();
                seeds = (seeds.0.min(pairs.len()), seeds.1.max(pairs.len()));
                let missing = |what: String| PlotError::SweepPoint {
                    sweep: input.name.clone(),
                    point: p.name.clone(),
                    what,
                    why: why(r),
                };
                let var: Vec<f64> = pairs
                    .iter()
                    .filter_map(|pr| variant(*pr, model).spectrum.as_ref())
                    .map(|s| s.stats.variance)
                    .filter(|v| v.is_finite())
                    .collect();
                if var.is_empty() {
                    return Err(missing(format!(
                        "the {} model has no Hessian spectrum",
                        model.name()
                    )));
                }
                let s: Vec<f64> = pairs
                    .iter()
                    .filter_map(|pr| {
                        variant(*pr, model)
                            .pruning
                            .iter()
                            .find(|row| chosen(row) && same_ratio(row.ratio, ratio))
                    })
                    .map(|row| row.sensitivity)
                    .filter(|v| v.is_finite())
                    .collect();
                if s.is_empty() {
                    return Err(missing(format!(
                        "the {} model has no {what} pruning row at ratio {ratio}",
                        model.name()
                    )));
                }
                let x = x_of(p);
                var_pts.push((x, MeanSd::of(&var)));
                s_pts.push((x, MeanSd::of(&s)));
            }
            var_pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            s_pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let line = |points| SweepLine {
                model,
                within: within.clone(),
                style_index,
                points,
            };
            var_lines.push(line(var_pts));
            s_lines.push(line(s_pts));
        }
    }
    let over = match seeds {
        (1, 1) => "one seed per point".to_string(),
        (a, b) if a == b => format!("mean ± sd over {a} seeds"),
        (a, b) => format!("mean ± sd over {a}–{b} seeds"),
    };
    Ok(Figure::Sweep(SweepFigure {
        title: format!("{sweep}: Var(λ) and S against {axis} ({over})"),
        axis,
        categories,
        ratio,
        method,
        granularity,
        seeds,
        panels: vec![
            SweepPanel {
                quantity: Quantity::Variance,
                y_desc: "Var(λ)".into(),
                lines: var_lines,
            },
            SweepPanel {
                quantity: Quantity::Sensitivity,
                y_desc: format!("S at ratio {ratio}, {what}"),
                lines: s_lines,
            },
        ],
    }))
}
