//! Comparing records: every stored value by path (for `replay`), and the config plus the
//! headline results of two records side by side (for `diff`, in the CLI and the TUI).
//!
//! Both work on the records serialised to [`toml::Value`], so a field added to the record is
//! compared without touching this file.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use toml::Value;

use super::{Record, VariantResult};
use crate::config::{Granularity, PruneMethod};
use crate::model::Variant;

/// A scalar of a record at its path, e.g. `residual.pruning[2].sensitivity`.
#[derive(Debug, Clone, PartialEq)]
pub struct Leaf {
    pub path: String,
    pub value: Value,
}

/// Anything serialisable as a TOML value (an empty table if it cannot be).
pub fn to_value<T: Serialize + ?Sized>(x: &T) -> Value {
    Value::try_from(x).unwrap_or(Value::Table(Default::default()))
}

/// Every scalar under `value` with its path written `a.b[2].c`; keys sorted within a table.
pub fn leaves(value: &Value) -> Vec<Leaf> {
    let mut out = Vec::new();
    walk(value, String::new(), &mut out);
    out
}

fn walk(value: &Value, path: String, out: &mut Vec<Leaf>) {
    match value {
        Value::Table(t) => {
            for (k, v) in t {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(v, p, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, format!("{path}[{i}]"), out);
            }
        }
        _ => out.push(Leaf {
            path,
            value: value.clone(),
        }),
    }
}

/// The value as a number, for integers and floats.
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// The value as the record writes it, strings without quotes, floats in full.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Float(f) => format!("{f:?}"),
        other => other.to_string(),
    }
}

/// `|a − b| / max(|a|, |b|)`: 0 when equal (NaN equals NaN, inf equals inf), infinite when
/// one side is not finite and the other differs.
pub fn rel_error(a: f64, b: f64) -> f64 {
    if a == b || (a.is_nan() && b.is_nan()) {
        return 0.0;
    }
    let d = (a - b).abs();
    if !d.is_finite() {
        return f64::INFINITY;
    }
    d / a.abs().max(b.abs())
}

/// One value that differs between a stored record and its replay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mismatch {
    /// e.g. `residual.pruning[2].sensitivity`.
    pub path: String,
    /// `None` when only the new record has the path.
    pub stored: Option<String>,
    /// `None` when only the stored record has the path.
    pub new: Option<String>,
    /// For two numbers: [`rel_error`] (for an eigenvalue, its error relative to the largest
    /// |λ| of its list; see [`compare`]); `None` otherwise.
    pub rel_error: Option<f64>,
}

/// What [`compare`] found.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Comparison {
    /// Values compared (present on both sides).
    pub compared: usize,
    /// Of those, numbers.
    pub numbers: usize,
    pub mismatches: Vec<Mismatch>,
    /// The largest relative error among the numbers compared, and its path (matched or not):
    /// how close two runs really are, whatever the tolerance.
    pub largest: Option<(String, f64)>,
    /// Paths left out on purpose (a replay on another device: the FD noise measures).
    pub not_compared: Vec<String>,
    /// Paths left out because the stored record is of an older schema in which they meant
    /// something else ([`super::compare::CHANGED_MEANING`]).
    pub changed_meaning: Vec<String>,
}

/// Whether `path` is `prefix` or lies under it.
pub fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

/// The group of numbers a leaf's error is measured against (its largest magnitude), and
/// whether the leaf counts towards that scale; `None` for a leaf measured against itself.
///
/// - an element of an `eigenvalues` list: the list;
/// - an element of an SLQ density's `density` or `weights` list: the list (a weight or a
///   density value far below the largest is zero to the others' accuracy); of its `nodes` or
///   `grid`: both together (eigenvalue positions, in the Hessian's units);
/// - under a `lanczos` table, the entries of `alpha` and `beta` (the tridiagonal `T`) set the
///   scale, and they and the Ritz pairs' `value` and `residual` in `top` / `bottom` are
///   measured against it;
/// - a spectrum's ends: its `stats.min` / `stats.max` and `histogram.lo` / `histogram.hi`
///   together (the smallest and largest eigenvalue, keyed by the table holding `stats`), so
///   an end near zero is measured against the spectral radius, as the list's elements are.
fn scale_group(path: &str) -> Option<(&str, bool)> {
    for end in [".stats.min", ".stats.max", ".histogram.lo", ".histogram.hi"] {
        if let Some(table) = path.strip_suffix(end) {
            return Some((table, true));
        }
    }
    let list = path
        .strip_suffix(']')
        .and_then(|p| p.rsplit_once('['))
        .map(|(list, _)| list);
    let named = |list: &str, name: &str| list == name || list.ends_with(&format!(".{name}"));
    if let Some(list) = list {
        if named(list, "eigenvalues")
            || named(list, "density.density")
            || named(list, "density.weights")
        {
            return Some((list, true));
        }
        // nodes and grid share one scale: both are in the Hessian's units
        for axis in [".nodes", ".grid"] {
            if let Some(table) = list.strip_suffix(axis).filter(|t| named(t, "density")) {
                return Some((table, true));
            }
        }
    }
    let at = if path.starts_with("lanczos.") {
        0
    } else {
        path.find(".lanczos.")? + 1
    };
    let (group, rest) = path.split_at(at + "lanczos".len());
    let rest = &rest[1..];
    let coefficient = rest.starts_with("alpha[") || rest.starts_with("beta[");
    let ritz = (rest.starts_with("top[") || rest.starts_with("bottom["))
        && (rest.ends_with("].value") || rest.ends_with("].residual"));
    (coefficient || ritz).then_some((group, coefficient))
}

/// The largest finite magnitude of each [`scale_group`], over both sides.
fn group_scales<'a>(a: &'a [Leaf], b: &'a [Leaf]) -> HashMap<&'a str, f64> {
    let mut scales: HashMap<&str, f64> = HashMap::new();
    for l in a.iter().chain(b) {
        if let (Some((group, sets)), Some(x)) = (scale_group(&l.path), number(&l.value)) {
            let s = scales.entry(group).or_insert(0.0);
            if sets && x.is_finite() {
                *s = s.max(x.abs());
            }
        }
    }
    scales
}

/// Compares every scalar of `stored` with `new` by path, ignoring the paths under `skip`.
/// Numbers match when their [`rel_error`] is at most `tolerance`; other values must be equal.
/// A path on one side only is a mismatch, except paths only in `new` when `stored_only`.
///
/// An eigenvalue's error is measured against the largest |λ| of its list, not against
/// itself: an eigen-solve (and a finite-difference Hessian) fixes every eigenvalue to an
/// absolute accuracy proportional to ‖H‖ (Weyl's inequality), so the relative error of an
/// eigenvalue near zero is noise, not a difference. The same holds for Lanczos's
/// coefficients and Ritz pairs (entries of `T = QᵀHQ`, measured against the largest entry of
/// `T`) and for an SLQ density (a sum of Gaussians whose weights and nodes carry that
/// absolute error; a value in its tail of 1e-31 is zero to that accuracy, so the density is
/// measured against its peak), and for a spectrum's smallest and largest eigenvalue where
/// its `stats` and `histogram` repeat them. See [`scale_group`].
pub fn compare(
    stored: &Value,
    new: &Value,
    skip: &[&str],
    tolerance: f64,
    stored_only: bool,
) -> Comparison {
    let keep = |l: &Leaf| !skip.iter().any(|s| under(&l.path, s));
    let a: Vec<Leaf> = leaves(stored).into_iter().filter(keep).collect();
    let b: Vec<Leaf> = leaves(new).into_iter().filter(keep).collect();
    let b_index: HashMap<&str, &Value> = b.iter().map(|l| (l.path.as_str(), &l.value)).collect();
    let scales = group_scales(&a, &b);
    let mut out = Comparison::default();
    for l in &a {
        let Some(v) = b_index.get(l.path.as_str()) else {
            out.mismatches.push(Mismatch {
                path: l.path.clone(),
                stored: Some(text(&l.value)),
                new: None,
                rel_error: None,
            });
            continue;
        };
        out.compared += 1;
        let rel_error = match (number(&l.value), number(v)) {
            (Some(x), Some(y)) => {
                out.numbers += 1;
                let e = match scale_group(&l.path).and_then(|(group, _)| scales.get(group)) {
                    Some(&scale) if scale > 0.0 && x.is_finite() && y.is_finite() => {
                        rel_error(x, y).min((x - y).abs() / scale)
                    }
                    _ => rel_error(x, y),
                };
                if out.largest.as_ref().is_none_or(|(_, m)| e > *m) {
                    out.largest = Some((l.path.clone(), e));
                }
                // `!(e <= tol)` also catches a NaN tolerance
                if e <= tolerance {
                    continue;
                }
                Some(e)
            }
            _ if l.value == **v => continue,
            _ => None,
        };
        out.mismatches.push(Mismatch {
            path: l.path.clone(),
            stored: Some(text(&l.value)),
            new: Some(text(v)),
            rel_error,
        });
    }
    if !stored_only {
        let a_paths: HashSet<&str> = a.iter().map(|l| l.path.as_str()).collect();
        for l in b.iter().filter(|l| !a_paths.contains(l.path.as_str())) {
            out.mismatches.push(Mismatch {
                path: l.path.clone(),
                stored: None,
                new: Some(text(&l.value)),
                rel_error: None,
            });
        }
    }
    out
}

/// One config key whose value differs (`None`: the key is absent on that side).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigChange {
    /// Key path as in the config file, e.g. `train.lr`, `prune.ratios[2]`.
    pub key: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// The last epoch of the training history.
    Training,
    /// Spectrum statistics.
    Spectrum,
    /// One row of the pruning table.
    Pruning,
}

impl Section {
    /// `training`, `spectrum`, `pruning`, as `diff --json` writes it.
    pub fn name(self) -> &'static str {
        crate::names::serde_name(&self)
    }
}

/// One number of one model in both records.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResultRow {
    pub variant: Variant,
    pub section: Section,
    /// The pruning method of a pruning row.
    pub method: Option<PruneMethod>,
    /// The granularity of a pruning row.
    pub granularity: Option<Granularity>,
    /// The ratio of a pruning row.
    pub ratio: Option<f64>,
    /// e.g. `variance`, `sensitivity`, `finetuned.loss`.
    pub metric: String,
    pub old: Option<f64>,
    pub new: Option<f64>,
    /// `new − old`.
    pub delta: Option<f64>,
    /// `100 · (new − old) / |old|`; `None` when `old` is 0 or missing.
    pub delta_pct: Option<f64>,
    /// `old` and `new` differ (a value on one side only counts as a change).
    pub changed: bool,
}

impl ResultRow {
    /// `residual spectrum`, `plain pruning magnitude 0.3`, ...
    pub fn label(&self) -> String {
        let mut s = format!("{} {}", self.variant, self.section.name());
        if let Some(m) = self.method {
            s.push(' ');
            s.push_str(m.name());
        }
        if let Some(g) = self.granularity.filter(|g| *g != Granularity::Unstructured) {
            s.push(' ');
            s.push_str(&g.name());
        }
        if let Some(r) = self.ratio {
            s.push_str(&format!(" {r}"));
        }
        s
    }
}

/// Two records compared: config changes, then per model the final epoch, the spectrum
/// statistics and the pruning table row by row (matched by method, granularity and ratio). Results are
/// those of the first seed (`residual`, `plain`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordDiff {
    pub config: Vec<ConfigChange>,
    /// Every result, changed or not (see [`ResultRow::changed`]).
    pub rows: Vec<ResultRow>,
}

impl RecordDiff {
    pub fn changed_rows(&self) -> impl Iterator<Item = &ResultRow> {
        self.rows.iter().filter(|r| r.changed)
    }
}

/// `(path, number)` of the numeric leaves of `v`, skipping paths under `skip`.
fn numbers(v: &Value, skip: &[&str]) -> Vec<(String, f64)> {
    leaves(v)
        .into_iter()
        .filter(|l| !skip.iter().any(|s| under(&l.path, s)))
        .filter_map(|l| number(&l.value).map(|x| (l.path, x)))
        .collect()
}

fn same(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x == y || (x.is_nan() && y.is_nan()),
        (None, None) => true,
        _ => false,
    }
}

fn result_row(
    variant: Variant,
    section: Section,
    key: Option<&(PruneMethod, Granularity, f64)>,
    (metric, old, new): (String, Option<f64>, Option<f64>),
) -> ResultRow {
    let delta = match (old, new) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let delta_pct = match (old, delta) {
        (Some(a), Some(d)) if a != 0.0 => Some(100.0 * d / a.abs()),
        _ => None,
    };
    ResultRow {
        variant,
        section,
        method: key.map(|k| k.0),
        granularity: key.map(|k| k.1),
        ratio: key.map(|k| k.2),
        metric,
        old,
        new,
        delta,
        delta_pct,
        changed: !same(old, new),
    }
}

/// Pairs two metric lists by name, `old`'s order first.
fn pair_metrics(
    old: &[(String, f64)],
    new: &[(String, f64)],
) -> Vec<(String, Option<f64>, Option<f64>)> {
    let find = |xs: &[(String, f64)], k: &str| xs.iter().find(|(m, _)| m == k).map(|(_, x)| *x);
    let mut out: Vec<_> = old
        .iter()
        .map(|(k, v)| (k.clone(), Some(*v), find(new, k)))
        .collect();
    for (k, v) in new {
        if find(old, k).is_none() {
            out.push((k.clone(), None, Some(*v)));
        }
    }
    out
}

/// The last epoch's numbers.
fn training_metrics(r: &VariantResult) -> Vec<(String, f64)> {
    r.history
        .last()
        .map(|h| numbers(&to_value(h), &["epoch"]))
        .unwrap_or_default()
}

/// Spectrum statistics, its scalar facts, Hutchinson's estimates and the stability check.
fn spectrum_metrics(r: &VariantResult) -> Vec<(String, f64)> {
    let Some(s) = &r.spectrum else {
        return Vec::new();
    };
    let Value::Table(t) = to_value(s) else {
        return Vec::new();
    };
    let mut out: Vec<(String, f64)> = Vec::new();
    if let Some(st) = t.get("stats") {
        out.extend(numbers(st, &[]));
    }
    for (k, x) in &t {
        if let Some(n) = number(x) {
            out.push((k.clone(), n));
        }
    }
    if let Some(h) = t.get("hutchinson") {
        for k in ["trace", "trace_sq", "variance"] {
            if let Some(n) = h.get(k).and_then(|e| e.get("value")).and_then(number) {
                out.push((format!("hutchinson.{k}"), n));
            }
        }
    }
    if let Some(st) = t.get("stability") {
        out.extend(
            numbers(st, &[])
                .into_iter()
                .map(|(k, x)| (format!("stability.{k}"), x)),
        );
    }
    out
}

/// Compares two records (see [`RecordDiff`]).
pub fn diff(old: &Record, new: &Record) -> RecordDiff {
    let ca = leaves(&to_value(&old.config));
    let cb = leaves(&to_value(&new.config));
    let mut config = Vec::new();
    for l in &ca {
        match cb.iter().find(|m| m.path == l.path) {
            Some(m) if m.value == l.value => {}
            other => config.push(ConfigChange {
                key: l.path.clone(),
                old: Some(text(&l.value)),
                new: other.map(|m| text(&m.value)),
            }),
        }
    }
    for m in cb.iter().filter(|m| !ca.iter().any(|l| l.path == m.path)) {
        config.push(ConfigChange {
            key: m.path.clone(),
            old: None,
            new: Some(text(&m.value)),
        });
    }

    let mut rows = Vec::new();
    for v in Variant::BOTH {
        let (a, b) = (old.variant(v), new.variant(v));
        for m in pair_metrics(&training_metrics(a), &training_metrics(b)) {
            rows.push(result_row(v, Section::Training, None, m));
        }
        for m in pair_metrics(&spectrum_metrics(a), &spectrum_metrics(b)) {
            rows.push(result_row(v, Section::Spectrum, None, m));
        }
        let key = |p: &crate::prune::PruneRow| (p.method, p.granularity, p.ratio);
        let mut keys: Vec<(PruneMethod, Granularity, f64)> = a.pruning.iter().map(key).collect();
        for p in &b.pruning {
            if !keys.contains(&key(p)) {
                keys.push(key(p));
            }
        }
        for k in &keys {
            let table = |r: &VariantResult| {
                r.pruning
                    .iter()
                    .find(|p| key(p) == *k)
                    .map(|p| numbers(&to_value(p), &["ratio", "layers"]))
                    .unwrap_or_default()
            };
            for m in pair_metrics(&table(a), &table(b)) {
                rows.push(result_row(v, Section::Pruning, Some(k), m));
            }
        }
    }
    RecordDiff { config, rows }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_errors() {
        let a: Value = toml::from_str("x = 1\n[t]\nv = [1.0, 2.0]\ns = \"a\"\n").unwrap();
        let b: Value = toml::from_str("x = 1\n[t]\nv = [1.0, 2.5]\ns = \"b\"\n").unwrap();
        let c = compare(&a, &b, &[], 0.0, false);
        assert_eq!(c.compared, 4);
        assert_eq!(c.numbers, 3);
        let paths: Vec<&str> = c.mismatches.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(paths, ["t.s", "t.v[1]"]);
        assert_eq!(c.mismatches[1].rel_error, Some(0.2));
        assert!(compare(&a, &b, &["t"], 0.0, false).mismatches.is_empty());
        assert!(
            compare(&a, &b, &["t.s"], 0.2, false).mismatches.is_empty(),
            "0.2 relative error is within 0.2"
        );
        let short: Value = toml::from_str("x = 1\n").unwrap();
        assert_eq!(compare(&a, &short, &[], 0.0, false).mismatches.len(), 3);
        assert!(compare(&short, &a, &[], 0.0, true).mismatches.is_empty());
        assert!(!under("tx", "t") && under("t[0]", "t") && under("t.a", "t"));
        assert_eq!(rel_error(f64::INFINITY, f64::INFINITY), 0.0);
        // eigenvalues: errors relative to the list's largest |λ|, so a noise-level eigenvalue
        // that changes sign is 1e-12 away, not 200 % away
        let a: Value =
            toml::from_str("[s]\neigenvalues = [-1e-12, 2.0]\nother = [-1e-12, 2.0]\n").unwrap();
        let b: Value =
            toml::from_str("[s]\neigenvalues = [1e-12, 2.0]\nother = [1e-12, 2.0]\n").unwrap();
        let c = compare(&a, &b, &[], 1e-9, false);
        let paths: Vec<&str> = c.mismatches.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(paths, ["s.other[0]"]);
        assert_eq!(c.mismatches[0].rel_error, Some(2.0));
        let b: Value =
            toml::from_str("[s]\neigenvalues = [0.5, 2.0]\nother = [-1e-12, 2.0]\n").unwrap();
        let c = compare(&a, &b, &[], 1e-9, false);
        assert_eq!(c.mismatches.len(), 1);
        assert_eq!(c.mismatches[0].path, "s.eigenvalues[0]");
        assert!((c.mismatches[0].rel_error.unwrap() - 0.25).abs() < 1e-12);
        assert_eq!(
            scale_group("plain.spectrum.eigenvalues[3]"),
            Some(("plain.spectrum.eigenvalues", true))
        );
        assert_eq!(scale_group("plain.spectrum.per_layer[0].stats.n"), None);
        assert_eq!(rel_error(1.0, f64::INFINITY), f64::INFINITY);
    }

    #[test]
    fn a_spectrums_ends_are_measured_against_its_radius() {
        for end in ["stats.min", "stats.max", "histogram.lo", "histogram.hi"] {
            assert_eq!(
                scale_group(&format!("plain.spectrum.{end}")),
                Some(("plain.spectrum", true))
            );
            assert_eq!(
                scale_group(&format!("plain.spectrum.per_layer[2].{end}")),
                Some(("plain.spectrum.per_layer[2]", true))
            );
        }
        assert_eq!(scale_group("plain.spectrum.stats.mean"), None);
        assert_eq!(scale_group("plain.spectrum.stats.variance"), None);
        // a smallest eigenvalue of -1e-13 that moved by 1e-16 (rounding against a radius of 2.6)
        // matches at 1e-12; the same move of a largest eigenvalue too; a real move does not
        let a: Value = toml::from_str(
            "[s.stats]\nmin = -1e-13\nmax = 2.6\nmean = 0.5\n[s.histogram]\nlo = -1e-13\nhi = 2.6\n",
        )
        .unwrap();
        let b: Value = toml::from_str(
            "[s.stats]\nmin = -1.01e-13\nmax = 2.6000000000001\nmean = 0.5\n\
             [s.histogram]\nlo = -1.01e-13\nhi = 2.6\n",
        )
        .unwrap();
        let c = compare(&a, &b, &[], 1e-12, false);
        assert!(c.mismatches.is_empty(), "{:?}", c.mismatches);
        let far: Value = toml::from_str(
            "[s.stats]\nmin = -1e-3\nmax = 2.6\nmean = 0.5\n[s.histogram]\nlo = -1e-3\nhi = 2.6\n",
        )
        .unwrap();
        let c = compare(&a, &far, &[], 1e-12, false);
        let paths: Vec<&str> = c.mismatches.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(paths, ["s.histogram.lo", "s.stats.min"]);
    }

    #[test]
    fn lanczos_coefficients_ritz_pairs_and_densities_are_measured_on_their_scale() {
        let lz = "replicates[0].plain.spectrum.lanczos";
        assert_eq!(scale_group(&format!("{lz}.alpha[13]")), Some((lz, true)));
        assert_eq!(scale_group(&format!("{lz}.beta[0]")), Some((lz, true)));
        assert_eq!(
            scale_group(&format!("{lz}.top[1].residual")),
            Some((lz, false))
        );
        assert_eq!(
            scale_group(&format!("{lz}.bottom[4].value")),
            Some((lz, false))
        );
        assert_eq!(scale_group(&format!("{lz}.steps")), None);
        assert_eq!(scale_group("lanczos.alpha[0]"), Some(("lanczos", true)));
        assert_eq!(
            scale_group("plain.spectrum.density.density[7]"),
            Some(("plain.spectrum.density.density", true))
        );
        assert_eq!(
            scale_group("plain.spectrum.density.grid[7]"),
            Some(("plain.spectrum.density", true))
        );
        assert_eq!(
            scale_group("plain.spectrum.density.nodes[0]"),
            Some(("plain.spectrum.density", true))
        );
        assert_eq!(
            scale_group("plain.spectrum.density.weights[3]"),
            Some(("plain.spectrum.density.weights", true))
        );
        assert_eq!(scale_group("plain.spectrum.density.sigma"), None);
        assert_eq!(scale_group("plain.pruning[0].delta_loss"), None);

        // a small coefficient that moved by 1e-12 of T's scale matches at 1e-9, as does a
        // residual at rounding level and a density's far tail; a real change does not
        let a: Value = toml::from_str(
            "[lanczos]\nsteps = 3\nalpha = [2.0, 0.0005]\nbeta = [0.5]\n\
             [[lanczos.top]]\nvalue = 2.1\nresidual = 4e-13\n\
             [density]\ndensity = [12.0, 1.4e-31]\n",
        )
        .unwrap();
        let b: Value = toml::from_str(
            "[lanczos]\nsteps = 3\nalpha = [2.0, 0.000500000002]\nbeta = [0.5]\n\
             [[lanczos.top]]\nvalue = 2.1\nresidual = 6e-13\n\
             [density]\ndensity = [12.0, 1.5e-31]\n",
        )
        .unwrap();
        let c = compare(&a, &b, &[], 1e-9, false);
        assert!(c.mismatches.is_empty(), "{:?}", c.mismatches);
        let (_, e) = c.largest.unwrap();
        assert!(e > 0.0 && e <= 1e-9, "{e}");
        let b: Value = toml::from_str(
            "[lanczos]\nsteps = 3\nalpha = [2.0, 0.0006]\nbeta = [0.5]\n\
             [[lanczos.top]]\nvalue = 2.1\nresidual = 4e-13\n\
             [density]\ndensity = [12.0, 1.4e-31]\n",
        )
        .unwrap();
        let c = compare(&a, &b, &[], 1e-9, false);
        assert_eq!(c.mismatches.len(), 1);
        assert_eq!(c.mismatches[0].path, "lanczos.alpha[1]");
        // 1e-4 of T's largest entry, 2.0
        assert!((c.mismatches[0].rel_error.unwrap() - 5e-5).abs() < 1e-12);
    }
}
