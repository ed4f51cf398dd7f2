//! Whether a record that parses also holds together: counts that cannot be, tables that do
//! not pair, a "complete" run missing a stage. Every loader runs it, so show, diff, replay,
//! list and the notebook all refuse such a record with what is wrong and where, instead of
//! showing it as if it were fine.

use super::{Record, Status, VariantResult};
use crate::curvature::SpectrumMethod;

/// One thing that does not hold, at its path in the record.
#[derive(Debug, Clone, PartialEq)]
pub struct Inconsistency {
    pub path: String,
    pub what: String,
}

impl std::fmt::Display for Inconsistency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}", self.path, self.what)
    }
}

/// Everything in `r` that does not hold together (empty when it does).
pub fn check(r: &Record) -> Vec<Inconsistency> {
    let mut out = Vec::new();
    let complete = r.status == Status::Complete;
    let rows_expected = crate::prune::row_count(&r.config.prune);
    let mut pairs: Vec<(String, &VariantResult, &VariantResult)> =
        vec![(String::new(), &r.residual, &r.plain)];
    for (i, rep) in r.replicates.iter().enumerate() {
        pairs.push((format!("replicates[{i}]."), &rep.residual, &rep.plain));
    }
    for (prefix, res, plain) in &pairs {
        for (name, v) in [("residual", res), ("plain", plain)] {
            variant(
                &mut out,
                &format!("{prefix}{name}"),
                v,
                complete,
                rows_expected,
            );
        }
        rows_pair(&mut out, prefix, res, plain, complete);
    }
    // what `hessian.products` gives this model (`auto`: exact for the MLP); a record whose
    // spectra used other products was edited or mixed up
    let expected = r.config.hessian.products_for(r.model.kind);
    let mut members: Vec<(String, &VariantResult)> = Vec::new();
    for (prefix, res, plain) in &pairs {
        members.push((format!("{prefix}residual"), res));
        members.push((format!("{prefix}plain"), plain));
    }
    for (i, a) in r.alpha_sweep.iter().enumerate() {
        members.push((format!("alpha_sweep[{i}].residual"), &a.residual));
    }
    for (i, rep) in r.replicates.iter().enumerate() {
        for (j, a) in rep.alpha_sweep.iter().enumerate() {
            members.push((
                format!("replicates[{i}].alpha_sweep[{j}].residual"),
                &a.residual,
            ));
        }
    }
    for (at, v) in members {
        if let Some(s) = v.spectrum.as_ref().filter(|s| s.products != expected) {
            out.push(bad(
                &format!("{at}.spectrum.products"),
                format!(
                    "is {} but config.hessian.products = \"{}\" gives {} for this model",
                    s.products.name(),
                    r.config.hessian.products.name(),
                    expected.name()
                ),
            ));
        }
    }
    if complete && r.error.is_some() {
        out.push(bad("error", "a complete run carries an error message"));
    }
    out
}

fn bad(path: &str, what: impl Into<String>) -> Inconsistency {
    Inconsistency {
        path: path.to_string(),
        what: what.into(),
    }
}

fn variant(
    out: &mut Vec<Inconsistency>,
    at: &str,
    v: &VariantResult,
    complete: bool,
    rows_expected: usize,
) {
    if complete && v.history.is_empty() {
        out.push(bad(
            &format!("{at}.history"),
            "a complete run has no training history",
        ));
    }
    match &v.spectrum {
        None if complete => out.push(bad(
            &format!("{at}.spectrum"),
            "a complete run has no spectrum",
        )),
        Some(s) if s.method == SpectrumMethod::Dense && s.eigenvalues.len() != s.params => out
            .push(bad(
                &format!("{at}.spectrum.eigenvalues"),
                format!(
                    "{} eigenvalues of a dense Hessian of {} parameters",
                    s.eigenvalues.len(),
                    s.params
                ),
            )),
        _ => {}
    }
    if complete && v.pruning.len() != rows_expected {
        out.push(bad(
            &format!("{at}.pruning"),
            format!(
                "{} rows; the config's granularities x methods x ratios make {rows_expected}",
                v.pruning.len()
            ),
        ));
    }
    for (i, row) in v.pruning.iter().enumerate() {
        let p = format!("{at}.pruning[{i}]");
        if !(row.ratio > 0.0 && row.ratio < 1.0) {
            out.push(bad(
                &format!("{p}.ratio"),
                format!("{} is outside (0, 1)", row.ratio),
            ));
        }
        if row.pruned > row.eligible {
            out.push(bad(
                &format!("{p}.pruned"),
                format!("{} pruned of {} eligible", row.pruned, row.eligible),
            ));
        }
        let layers: usize = row.layers.iter().map(|l| l.pruned).sum();
        if !row.layers.is_empty() && layers != row.pruned {
            out.push(bad(
                &format!("{p}.layers"),
                format!(
                    "the layers' pruned counts add up to {layers}, the row says {}",
                    row.pruned
                ),
            ));
        }
    }
}

/// The residual and plain tables hold the same (method, ratio) rows in the same order (a
/// stopped run: one a prefix of the other), so views may pair them row by row.
fn rows_pair(
    out: &mut Vec<Inconsistency>,
    prefix: &str,
    res: &VariantResult,
    plain: &VariantResult,
    complete: bool,
) {
    type Key = (crate::config::PruneMethod, crate::config::Granularity, u64);
    let key = |v: &VariantResult| -> Vec<Key> {
        v.pruning
            .iter()
            .map(|r| (r.method, r.granularity, r.ratio.to_bits()))
            .collect()
    };
    let (a, b) = (key(res), key(plain));
    let n = a.len().min(b.len());
    let same = a[..n] == b[..n] && (!complete || a.len() == b.len());
    if !same {
        let at = (0..n).find(|&i| a[i] != b[i]).unwrap_or(n);
        out.push(bad(
            &format!("{prefix}plain.pruning[{at}]"),
            "the residual and plain pruning tables do not hold the same rows (method, \
             granularity and ratio) in the same order",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ModelKind, Products, ProductsChoice};

    fn fixture() -> Record {
        // through the loader: a schema-1 record's absent `hessian.products` is finite differences
        let src = include_str!("../../tests/fixtures/article-record.toml");
        let r: Record = toml::from_str(src).unwrap();
        assert_eq!(
            r.config.hessian.products,
            ProductsChoice::Auto,
            "the serde default"
        );
        crate::record::parse(src, "article-record.toml").unwrap()
    }

    #[test]
    fn the_fixture_holds_together() {
        assert_eq!(check(&fixture()), Vec::new());
    }

    #[test]
    fn spectra_of_other_products_than_the_config_gives_are_named() {
        let mut r = fixture();
        r.config.hessian.products = ProductsChoice::Exact;
        let paths: Vec<String> = check(&r).into_iter().map(|i| i.path).collect();
        assert_eq!(
            paths,
            ["residual.spectrum.products", "plain.spectrum.products"]
        );
        // `auto` on the MLP is exact; on the transformer finite differences, as recorded
        r.config.hessian.products = ProductsChoice::Auto;
        assert_eq!(check(&r).len(), 2);
        r.model.kind = ModelKind::Transformer;
        assert_eq!(check(&r), Vec::new());
        // the alpha-sweep members are held to it too
        let mut point = r.residual.clone();
        point.spectrum.as_mut().unwrap().products = Products::Exact;
        r.alpha_sweep.push(crate::record::AlphaPoint {
            alpha: 0.5,
            residual: point,
        });
        let paths: Vec<String> = check(&r).into_iter().map(|i| i.path).collect();
        assert_eq!(paths, ["alpha_sweep[0].residual.spectrum.products"]);
    }
}
