//! A record's results as CSV or JSON, for papers and plots (`show --format csv|json`).
//!
//! CSV: one row per model and pruning row (method, ratio), with that model's spectrum
//! statistics repeated in `spectrum.*` columns, so one file plots sensitivity against
//! variance; with `model.alpha = "learned"`, the trained scales in `learned_alpha[b]` columns
//! (empty for the plain model). A model without pruning rows (an interrupted run) still gets
//! one row.
//! JSON: `{name, seed, status, params, models: {residual: {final, spectrum, pruning,
//! learned_alpha}, plain}}` (`learned_alpha` is `null` without learned scales).
//! Columns come from the record's own fields, so new fields appear without changes here.

use toml::Value;

use super::diff::{leaves, number, text, to_value, under};
use super::{Record, RecordError, VariantResult};
use crate::model::Variant;

/// `(column, cell)` of every scalar under `v`, prefixed, skipping paths under `skip`.
fn cells(v: &Value, prefix: &str, skip: &[&str]) -> Vec<(String, String)> {
    leaves(v)
        .into_iter()
        .filter(|l| !skip.iter().any(|s| under(&l.path, s)))
        .map(|l| {
            let cell = match number(&l.value) {
                Some(x) if x.fract() == 0.0 && matches!(l.value, Value::Integer(_)) => {
                    format!("{x}")
                }
                Some(x) => format!("{x:?}"),
                None => text(&l.value),
            };
            (format!("{prefix}{}", l.path), cell)
        })
        .collect()
}

fn spectrum_cells(r: &VariantResult) -> Vec<(String, String)> {
    let Some(s) = &r.spectrum else {
        return Vec::new();
    };
    let Value::Table(t) = to_value(s) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for k in ["method", "samples", "params"] {
        if let Some(x) = t.get(k) {
            out.push((format!("spectrum.{k}"), text(x)));
        }
    }
    if let Some(st) = t.get("stats") {
        out.extend(cells(st, "spectrum.", &[]));
    }
    out
}

/// The pruning table and spectrum statistics as CSV (see the module docs).
pub fn csv(rec: &Record) -> Result<String, RecordError> {
    let mut rows: Vec<Vec<(String, String)>> = Vec::new();
    for v in Variant::BOTH {
        let r = rec.variant(v);
        let spec = spectrum_cells(r);
        let mut base = vec![("variant".to_string(), v.name().to_string())];
        base.extend(
            r.learned_alpha
                .iter()
                .enumerate()
                .map(|(b, a)| (format!("learned_alpha[{b}]"), format!("{a:?}"))),
        );
        if r.pruning.is_empty() {
            rows.push(base.iter().cloned().chain(spec.iter().cloned()).collect());
        }
        for p in &r.pruning {
            let mut row = base.clone();
            row.push(("method".to_string(), p.method.name().to_string()));
            row.push(("granularity".to_string(), p.granularity.name()));
            row.push(("ratio".to_string(), format!("{:?}", p.ratio)));
            row.extend(cells(
                &to_value(p),
                "",
                &["layers", "method", "granularity", "ratio"],
            ));
            row.extend(spec.iter().cloned());
            rows.push(row);
        }
    }
    // every column any row has, in first-seen order
    let mut columns: Vec<String> = Vec::new();
    for row in &rows {
        for (k, _) in row {
            if !columns.contains(k) {
                columns.push(k.clone());
            }
        }
    }
    let err = |e: String| RecordError::Serialize(e);
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(&columns).map_err(|e| err(e.to_string()))?;
    for row in &rows {
        let line = columns.iter().map(|c| {
            row.iter()
                .find(|(k, _)| k == c)
                .map_or("", |(_, x)| x.as_str())
        });
        w.write_record(line).map_err(|e| err(e.to_string()))?;
    }
    let bytes = w.into_inner().map_err(|e| err(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| err(e.to_string()))
}

/// The headline results as JSON (see the module docs). Non-finite numbers become `null`.
pub fn json(rec: &Record) -> serde_json::Value {
    let model = |r: &VariantResult| {
        serde_json::json!({
            "final": r.history.last(),
            "spectrum": r.spectrum.as_ref().map(|s| serde_json::json!({
                "method": s.method,
                "samples": s.samples,
                "params": s.params,
                "stats": s.stats,
            })),
            "pruning": r.pruning,
            "learned_alpha": (!r.learned_alpha.is_empty()).then_some(&r.learned_alpha),
        })
    };
    serde_json::json!({
        "name": rec.config.name,
        "seed": rec.config.seed_list().first(),
        "status": rec.status,
        "params": rec.model.params,
        "models": {
            "residual": model(&rec.residual),
            "plain": model(&rec.plain),
        },
        "summary": rec.summary,
    })
}
