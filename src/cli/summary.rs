//! The plain-text summary of a record (`run`, `show`).

use std::fmt::Write;

use crate::model::Variant;
use crate::record::{Record, Status};

pub fn status_word(s: Status) -> &'static str {
    match s {
        Status::Complete => "complete",
        Status::Interrupted => "interrupted",
        Status::Failed => "failed",
    }
}

pub fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "-".into())
}

/// S of both models at the middle ratio of the sweep.
pub fn middle_sensitivity(r: &Record) -> (Option<f64>, Option<f64>) {
    let mid = |v: Variant| {
        let rows = &r.variant(v).pruning;
        rows.get(rows.len().saturating_sub(1) / 2)
            .map(|row| row.sensitivity)
    };
    (mid(Variant::Residual), mid(Variant::Plain))
}

/// A number in 10 columns: fixed when readable, scientific when tiny or huge.
pub fn num(x: f64) -> String {
    let a = x.abs();
    if x == 0.0 || (1e-3..1e5).contains(&a) {
        format!("{x:>10.4}")
    } else {
        format!("{x:>10.3e}")
    }
}

pub fn render(r: &Record) -> String {
    let mut s = String::new();
    let c = &r.config;
    let _ = writeln!(
        s,
        "{}: residual vs plain MLP, {} parameters ({} -> {} x{} -> {}, {:?}, alpha {}), seed {}",
        c.name,
        r.model.params,
        r.model.inputs,
        r.model.width,
        r.model.depth,
        r.model.classes,
        r.model.activation,
        r.model.alpha,
        c.seed
    );
    let _ = writeln!(
        s,
        "data {:?}: {} train / {} eval{}; {} epochs; status {}; {:.2} s",
        r.data.source,
        r.data.train_samples,
        r.data.eval_samples,
        if r.data.eval_is_train {
            " (eval = train)"
        } else {
            ""
        },
        c.train.epochs,
        status_word(r.status),
        r.timings.total_s
    );
    if let Some(e) = &r.error {
        let _ = writeln!(s, "stopped: {e}");
    }
    let _ = writeln!(s, "\n{:<26}{:>12}{:>12}", "", "residual", "plain");
    let row = |s: &mut String, label: &str, f: &dyn Fn(Variant) -> Option<String>| {
        let _ = writeln!(
            s,
            "{:<26}{:>12}{:>12}",
            label,
            f(Variant::Residual).unwrap_or_else(|| "-".into()),
            f(Variant::Plain).unwrap_or_else(|| "-".into())
        );
    };
    let last = |v: Variant| r.variant(v).history.last().copied();
    row(&mut s, "train loss", &|v| {
        last(v).map(|h| num(h.train_loss))
    });
    row(&mut s, "train accuracy", &|v| {
        last(v).map(|h| num(h.train_accuracy))
    });
    row(&mut s, "eval loss", &|v| last(v).map(|h| num(h.eval_loss)));
    row(&mut s, "eval accuracy", &|v| {
        last(v).map(|h| num(h.eval_accuracy))
    });
    let sp = |v: Variant| r.variant(v).spectrum.as_ref();
    if let Some(x) = sp(Variant::Residual).or(sp(Variant::Plain)) {
        let _ = writeln!(
            s,
            "Hessian ({}, {} samples, {} params):",
            x.method, x.samples, x.params
        );
    }
    row(&mut s, "  lambda min", &|v| sp(v).map(|x| num(x.stats.min)));
    row(&mut s, "  lambda max", &|v| sp(v).map(|x| num(x.stats.max)));
    row(&mut s, "  mean", &|v| sp(v).map(|x| num(x.stats.mean)));
    row(&mut s, "  variance", &|v| {
        sp(v).map(|x| num(x.stats.variance))
    });
    row(&mut s, "  trace", &|v| sp(v).map(|x| num(x.stats.trace)));
    row(&mut s, "  negative (beyond tol)", &|v| {
        sp(v).map(|x| x.stats.negatives.to_string())
    });
    row(&mut s, "  negative (beyond FD noise)", &|v| {
        sp(v).and_then(|x| x.negatives_beyond_noise.map(|c| c.to_string()))
    });
    row(&mut s, "  FD noise floor", &|v| {
        sp(v).and_then(|x| x.noise_floor.map(num))
    });
    row(&mut s, "  near zero", &|v| {
        sp(v).map(|x| x.stats.near_zero.to_string())
    });
    row(&mut s, "  condition", &|v| {
        sp(v).map(|x| num(x.stats.condition))
    });
    if !r.residual.pruning.is_empty() || !r.plain.pruning.is_empty() {
        let p = &c.prune;
        let _ = writeln!(
            s,
            "\npruning: {:?}, {:?}, {}; S = (L_after - L_before) / L_before on the eval split",
            p.method,
            p.scope,
            if p.include_bias {
                "weights and biases"
            } else {
                "weights only"
            }
        );
        let _ = writeln!(
            s,
            "{:>5} {:>9} | {:>10} {:>10} {:>7} {:>10} | {:>10} {:>10} {:>7} {:>10}",
            "ratio",
            "pruned",
            "res L",
            "res S",
            "res acc",
            "res predΔL",
            "plain L",
            "plain S",
            "pl acc",
            "pl predΔL"
        );
        let n = r.residual.pruning.len().max(r.plain.pruning.len());
        for i in 0..n {
            let a = r.residual.pruning.get(i);
            let b = r.plain.pruning.get(i);
            let any = a.or(b).expect("one of the two has row i");
            let cell = |x: Option<&crate::prune::PruneRow>| match x {
                Some(x) => format!(
                    "{} {} {:>7.3} {}",
                    num(x.loss_after),
                    num(x.sensitivity),
                    x.accuracy_after,
                    num(x.predicted_delta)
                ),
                None => format!("{:>41}", "-"),
            };
            let _ = writeln!(
                s,
                "{:>5.2} {:>9} | {} | {}",
                any.ratio,
                format!("{}/{}", any.pruned, any.eligible),
                cell(a),
                cell(b)
            );
        }
        let more = (0..n)
            .filter(|&i| {
                matches!((r.residual.pruning.get(i), r.plain.pruning.get(i)),
                    (Some(a), Some(b)) if a.sensitivity > b.sensitivity)
            })
            .count();
        let _ = writeln!(
            s,
            "residual S > plain S at {more} of {n} ratios (one seed; see docs/method.md)"
        );
    }
    s
}
