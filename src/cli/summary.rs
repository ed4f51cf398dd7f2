//! The plain-text summary of a record (`run`, `show`).

use std::fmt::Write;

use crate::config::Products;
use crate::curvature::SpectrumMethod;
use crate::frontend::{format_number, middle_row, NumberStyle};
use crate::model::Variant;
use crate::record::Record;

/// A number in the summary's 10 columns.
fn num(x: f64) -> String {
    format_number(x, NumberStyle::COLUMN)
}

/// The summary `run` and `show` print: what ran, the training and spectrum table, the
/// pruning table, the alpha sweep, the spread over seeds and the verdicts.
pub fn render(r: &Record) -> String {
    let mut s = String::new();
    header(&mut s, r);
    measures(&mut s, r);
    pruning(&mut s, r);
    alpha_sweep(&mut s, r);
    replicates(&mut s, r);
    verdicts(&mut s, r);
    s
}

/// What ran: the model, the data, the status.
fn header(s: &mut String, r: &Record) {
    let c = &r.config;
    let _ = writeln!(
        s,
        "{}: residual vs plain {}, {} parameters ({} -> {} x{} -> {}, {:?}, alpha {}), seed {}",
        c.name,
        r.model.kind,
        r.model.params,
        r.model.inputs,
        r.model.width,
        r.model.depth,
        r.model.classes,
        r.model.activation,
        r.model.alpha_label(),
        c.seed
    );
    if !r.residual.learned_alpha.is_empty() {
        let a: Vec<String> = r
            .residual
            .learned_alpha
            .iter()
            .map(|a| format!("{a:.4}"))
            .collect();
        let _ = writeln!(s, "learned alpha after training: {}", a.join(", "));
    }
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
        r.status,
        r.timings.total_s
    );
    if let Some(v) = r.data.vocab_size {
        let _ = writeln!(
            s,
            "tokens: {} ids per text, vocabulary {v} (with padding and unknown)",
            r.data.features
        );
        // each seed's split builds its own vocabulary, so the embedding size can differ
        if r.replicates
            .iter()
            .any(|x| x.vocab_size.is_some_and(|w| w != v))
        {
            let sizes: Vec<String> = std::iter::once(v.to_string())
                .chain(r.replicates.iter().map(|x| {
                    x.vocab_size
                        .map_or_else(|| "?".to_string(), |w| w.to_string())
                }))
                .collect();
            let _ = writeln!(
                s,
                "vocabulary per seed: {} (the model and its parameter count follow each seed's)",
                sizes.join(", ")
            );
        }
    }
    if let Some(k) = r.data.skipped.filter(|k| k.total() > 0) {
        let _ = writeln!(
            s,
            "skipped files: {} not UTF-8, {} empty, {} not named ID_RATING.txt",
            k.non_utf8, k.empty, k.malformed_name
        );
    }
    if let Some(e) = &r.error {
        let _ = writeln!(s, "stopped: {e}");
    }
}

/// Training and spectrum, residual beside plain, and kink warnings.
fn measures(s: &mut String, r: &Record) {
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
    row(s, "train loss", &|v| last(v).map(|h| num(h.train_loss)));
    row(s, "train accuracy", &|v| {
        last(v).map(|h| num(h.train_accuracy))
    });
    row(s, "eval loss", &|v| last(v).map(|h| num(h.eval_loss)));
    row(s, "eval accuracy", &|v| {
        last(v).map(|h| num(h.eval_accuracy))
    });
    let sp = |v: Variant| r.variant(v).spectrum.as_ref();
    // exact products leave rounding, not a finite-difference error, as the floor
    let exact = sp(Variant::Residual)
        .or(sp(Variant::Plain))
        .is_some_and(|x| x.products == Products::Exact);
    if let Some(x) = sp(Variant::Residual).or(sp(Variant::Plain)) {
        let products = if exact { ", exact products" } else { "" };
        let _ = writeln!(
            s,
            "Hessian ({}, {} samples, {} params{products}):",
            x.method, x.samples, x.params
        );
    }
    row(s, "  lambda min", &|v| sp(v).map(|x| num(x.stats.min)));
    row(s, "  lambda max", &|v| sp(v).map(|x| num(x.stats.max)));
    row(s, "  mean", &|v| sp(v).map(|x| num(x.stats.mean)));
    row(s, "  variance", &|v| sp(v).map(|x| num(x.stats.variance)));
    row(s, "  trace", &|v| sp(v).map(|x| num(x.stats.trace)));
    row(s, "  negative (beyond tol)", &|v| {
        sp(v).map(|x| x.stats.negatives.to_string())
    });
    let (beyond, floor) = if exact {
        ("  negative (beyond rounding)", "  rounding floor")
    } else {
        ("  negative (beyond FD noise)", "  FD noise floor")
    };
    row(s, beyond, &|v| {
        sp(v).and_then(|x| x.negatives_beyond_noise.map(|c| c.to_string()))
    });
    // with exact products the counts' floor is the eigen-solver's `n·ε·max|λ|` (`zero_tol`),
    // not the asymmetry (rounding, ~1e-16)
    row(s, floor, &|v| {
        sp(v).and_then(|x| match x.products {
            Products::Exact => x.noise_floor.map(|_| num(x.stats.zero_tol)),
            Products::FiniteDifferences => x.noise_floor.map(num),
        })
    });
    row(s, "  near zero", &|v| {
        sp(v)
            .filter(|x| x.method == SpectrumMethod::Dense)
            .and_then(|x| x.stats.near_zero.map(|c| c.to_string()))
    });
    // Lanczos measures neither (see `sources.counts` in the record)
    row(s, "  condition", &|v| {
        sp(v)
            .filter(|x| x.method == SpectrumMethod::Dense)
            .map(|x| x.stats.condition_text(num))
            // "not resolved" fills the column: keep a space before the plain one
            .map(|t| match v {
                Variant::Plain if t.len() >= 12 => format!(" {t}"),
                _ => t,
            })
    });
    for v in Variant::BOTH {
        if let Some(x) = sp(v) {
            if let Some(a) = x
                .asymmetry
                .filter(|a| *a > crate::curvature::KINK_ASYMMETRY)
            {
                let _ = writeln!(
                    s,
                    "warning: the {v} Hessian crossed a ReLU kink (asymmetry {} even at \
                     fd_step {}): eigenvalues below the noise floor are noise; a smooth \
                     activation (gelu, tanh) avoids this",
                    num(a),
                    num(x.fd_step)
                );
            }
        }
    }
}

/// The pruning table, residual beside plain, row by row (the record check makes sure both hold the same rows in the same order).
fn pruning(s: &mut String, r: &Record) {
    let c = &r.config;
    if r.residual.pruning.is_empty() && r.plain.pruning.is_empty() {
        return;
    }
    let p = &c.prune;
    // single weights only (every record before structured pruning): the table as it was
    let structured = r
        .residual
        .pruning
        .iter()
        .chain(&r.plain.pruning)
        .any(|x| x.granularity != crate::config::Granularity::Unstructured);
    let granularities = if structured {
        format!(
            "; {}",
            p.granularities
                .iter()
                .map(|g| g.name())
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "\npruning: {}{granularities}, {:?}, {}; S = (L_after - L_before) / L_before on the eval split",
        p.methods
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(", "),
        p.scope,
        if p.include_bias {
            "weights and biases"
        } else {
            "weights only"
        }
    );
    let finetuned = r.residual.pruning.iter().any(|x| x.finetuned.is_some());
    let ft_head = if finetuned { "   S ft" } else { "" };
    let (g_head, what) = if structured {
        (format!("{:<12} ", "granularity"), "units")
    } else {
        (String::new(), "pruned")
    };
    let _ = writeln!(
        s,
        "{:<15} {g_head}{:>5} {:>9} | {:>10} {:>10} {:>6} {:>10}{ft_head} | {:>10} {:>10} {:>6} {:>10}{ft_head}",
        "method",
        "ratio",
        what,
        "res L",
        "res S",
        "acc",
        "predΔL",
        "plain L",
        "plain S",
        "acc",
        "predΔL"
    );
    let n = r.residual.pruning.len().max(r.plain.pruning.len());
    for i in 0..n {
        let a = r.residual.pruning.get(i);
        let b = r.plain.pruning.get(i);
        let any = a.or(b).expect("one of the two has row i");
        let cell = |x: Option<&crate::prune::PruneRow>| match x {
            Some(x) => format!(
                "{} {} {:>6.3} {}{}",
                num(x.loss_after),
                num(x.sensitivity),
                x.accuracy_after,
                num(x.predicted_delta),
                match &x.finetuned {
                    Some(f) => format!(" {:>6.3}", f.sensitivity),
                    None => String::new(),
                }
            ),
            None => format!("{:>40}", "-"),
        };
        let g = if structured {
            format!("{:<12} ", any.granularity.name())
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "{:<15} {g}{:>5.2} {:>9} | {} | {}",
            any.method,
            any.ratio,
            units(any),
            cell(a),
            cell(b)
        );
    }
    mechanism(s, r);
    lesions(s, r);
    if r.summary.is_none() {
        let more = (0..n)
            .filter(|&i| {
                matches!((r.residual.pruning.get(i), r.plain.pruning.get(i)),
                    (Some(a), Some(b)) if a.sensitivity > b.sensitivity)
            })
            .count();
        let _ = writeln!(
            s,
            "residual S > plain S in {more} of {n} rows; one seed decides nothing: set \
             replicates = 5 for a verdict"
        );
    }
}

/// Each block taken out: ΔL of the residual model and of both plain counterfactuals side by
/// side, then the k-least-important sweep.
fn lesions(s: &mut String, r: &Record) {
    use crate::prune::lesion::Counterfactual::{Identity, Zero};
    let (Some(a), Some(b)) = (&r.residual.lesions, &r.plain.lesions) else {
        return;
    };
    let _ = writeln!(
        s,
        "\nblock lesions (first seed): ΔL with one block taken out; loss before {} (residual), {} (plain)",
        num(a.loss_before),
        num(b.loss_before)
    );
    let _ = writeln!(
        s,
        "{:>5} | {:>10} {:>10} | {:>10} {:>10} | {:>10} {:>10}",
        "block", "res ΔL", "res S", "plain id ΔL", "plain id S", "plain 0 ΔL", "plain 0 S"
    );
    let depth = a.single.iter().map(|x| x.block + 1).max().unwrap_or(0);
    let cell = |x: Option<&crate::prune::lesion::LesionRow>| {
        x.map_or(format!("{:>10} {:>10}", "-", "-"), |x| {
            format!("{} {}", num(x.delta_loss), num(x.sensitivity))
        })
    };
    for block in 0..depth {
        let _ = writeln!(
            s,
            "{block:>5} | {} | {:>11} | {}",
            cell(a.single(block, Identity)),
            cell(b.single(block, Identity)),
            cell(b.single(block, Zero))
        );
    }
    if a.sweep.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\nremoving the k least important blocks (ranked by each criterion on each model; \
         oracle = by the block's own lesion ΔL): S"
    );
    let _ = writeln!(
        s,
        "{:<16} {:>3} | {:>10} | {:>10} | {:>10}",
        "ranking", "k", "residual", "plain id", "plain 0"
    );
    let pick = |l: &crate::prune::lesion::Lesions, x: &crate::prune::lesion::LesionSweepRow, c| {
        l.sweep
            .iter()
            .find(|y| y.criterion == x.criterion && y.k == x.k && y.counterfactual == c)
            .map_or(format!("{:>10}", "-"), |y| num(y.sensitivity))
    };
    for x in a.sweep.iter().filter(|x| x.counterfactual == Identity) {
        let _ = writeln!(
            s,
            "{:<16} {:>3} | {} | {} | {}",
            x.criterion.map_or("oracle", |m| m.name()),
            x.k,
            num(x.sensitivity),
            pick(b, x, Identity),
            pick(b, x, Zero)
        );
    }
}

/// `pruned/eligible` units of a row (parameters for single weights; records before structured
/// pruning have no unit counts and show parameters).
fn units(x: &crate::prune::PruneRow) -> String {
    if x.units_eligible == 0 {
        format!("{}/{}", x.pruned, x.eligible)
    } else {
        format!("{}/{}", x.units_pruned, x.units_eligible)
    }
}

/// Where each row's step points: the Rayleigh quotient `ΔθᵀHΔθ/‖Δθ‖²` and the shares of
/// `‖Δθ‖²` in the top-k and bottom-k eigenvectors' span, residual beside plain.
fn mechanism(s: &mut String, r: &Record) {
    fn rows(
        v: &crate::record::VariantResult,
    ) -> Vec<(&crate::prune::PruneRow, Option<crate::curvature::Mechanism>)> {
        v.pruning.iter().map(|p| (p, p.mechanism)).collect()
    }
    let (a, b) = (rows(&r.residual), rows(&r.plain));
    if !a.iter().chain(&b).any(|(_, m)| m.is_some()) {
        return;
    }
    let share = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.3}"));
    let cell = |m: Option<crate::curvature::Mechanism>| match m {
        Some(m) => format!(
            "{} {:>6} {:>6}",
            num(m.rayleigh),
            share(m.top_share),
            share(m.bottom_share)
        ),
        None => format!("{:>24}", "-"),
    };
    let k = a
        .iter()
        .chain(&b)
        .find_map(|(_, m)| m.filter(|m| m.source.is_some()))
        .map_or(String::new(), |m| {
            format!(
                "; top-{} / bottom-{} {} vectors",
                m.top_k,
                m.bottom_k,
                m.source.map_or("", |s| crate::names::serde_name(&s))
            )
        });
    let _ = writeln!(
        s,
        "\nmechanism: Rayleigh quotient of the step Δθ and its share in the Hessian's top/bottom \
         eigenvectors{k}"
    );
    let _ = writeln!(
        s,
        "{:<15} {:<12} {:>5} | {:>10} {:>6} {:>6} | {:>10} {:>6} {:>6}",
        "method", "granularity", "ratio", "res R", "top", "bottom", "plain R", "top", "bottom"
    );
    for i in 0..a.len().max(b.len()) {
        let any = a.get(i).or(b.get(i)).expect("one of the two has row i").0;
        let _ = writeln!(
            s,
            "{:<15} {:<12} {:>5.2} | {} | {}",
            any.method,
            any.granularity,
            any.ratio,
            cell(a.get(i).and_then(|x| x.1)),
            cell(b.get(i).and_then(|x| x.1))
        );
    }
}

/// The residual model at each alpha of the sweep.
fn alpha_sweep(s: &mut String, r: &Record) {
    if !r.alpha_sweep.is_empty() {
        let _ = writeln!(
            s,
            "\nalpha sweep: the residual model h + alpha F(h) from the same theta (first seed)"
        );
        let _ = writeln!(
            s,
            "{:>8} {:>10} {:>10} {:>10} {:>10} {:>16}",
            "alpha", "eval loss", "lambda max", "variance", "trace", "S (mid ratio)"
        );
        let line = |s: &mut String, label: String, v: &crate::record::VariantResult| {
            let sp = v.spectrum.as_ref().map(|x| &x.stats);
            let _ = writeln!(
                s,
                "{:>8} {} {} {} {} {:>16}",
                label,
                v.history.last().map_or("-".into(), |h| num(h.eval_loss)),
                sp.map_or("-".into(), |x| num(x.max)),
                sp.map_or("-".into(), |x| num(x.variance)),
                sp.map_or("-".into(), |x| num(x.trace)),
                middle_row(v).map_or("-".into(), |row| format!(
                    "{:.4} @ {}",
                    row.sensitivity, row.ratio
                ))
            );
        };
        for p in &r.alpha_sweep {
            line(s, format!("{}", p.alpha), &p.residual);
        }
        line(s, "plain".into(), &r.plain);
    }
}

/// Mean ± sd over the seeds.
fn replicates(s: &mut String, r: &Record) {
    if let Some(sum) = &r.summary {
        let _ = writeln!(
            s,
            "\nover {} seeds {:?} (mean ± sd):",
            sum.seeds.len(),
            sum.seeds
        );
        let _ = writeln!(s, "{:<36}{:>22}{:>22}", "", "residual", "plain");
        let both =
            |s: &mut String, label: &str, a: &crate::stats::MeanSd, b: &crate::stats::MeanSd| {
                let _ = writeln!(s, "{:<36}{:>22}{:>22}", label, a.to_string(), b.to_string());
            };
        both(
            s,
            "eval loss",
            &sum.residual.eval_loss,
            &sum.plain.eval_loss,
        );
        both(
            s,
            "eval accuracy",
            &sum.residual.eval_accuracy,
            &sum.plain.eval_accuracy,
        );
        both(
            s,
            "lambda max",
            &sum.residual.lambda_max,
            &sum.plain.lambda_max,
        );
        both(
            s,
            "lambda min",
            &sum.residual.lambda_min,
            &sum.plain.lambda_min,
        );
        both(s, "variance", &sum.residual.variance, &sum.plain.variance);
        both(s, "trace", &sum.residual.trace, &sum.plain.trace);
        for (a, b) in sum.residual.pruning.iter().zip(&sum.plain.pruning) {
            let g = match a.granularity {
                crate::config::Granularity::Unstructured => String::new(),
                other => format!(" {other}"),
            };
            let row = format!("{}{g} {}", a.method, a.ratio);
            both(s, &format!("S {row}"), &a.sensitivity, &b.sensitivity);
            if let (Some(fa), Some(fb)) = (&a.finetuned_sensitivity, &b.finetuned_sensitivity) {
                both(s, &format!("S {row} fine-tuned"), fa, fb);
            }
            if let (Some(ra), Some(rb)) = (&a.rayleigh, &b.rayleigh) {
                both(s, &format!("Rayleigh {row}"), ra, rb);
            }
        }
    }
}

/// The article's claims judged over the seeds.
fn verdicts(s: &mut String, r: &Record) {
    if !r.verdicts.is_empty() {
        let _ = writeln!(
            s,
            "\nthe article's claims, paired over seeds (residual − plain), level {}:",
            r.config.significance
        );
        for c in &r.verdicts {
            let _ = writeln!(
                s,
                "  {:<52} {:<13} diff {:+.4} ± {:.4}, t = {:.2} (p {:.3}), signs +{}/-{} (p {:.3})",
                c.claim,
                c.verdict.word(),
                c.mean,
                c.sd,
                c.t,
                c.t_p,
                c.positive,
                c.negative,
                c.sign_p
            );
        }
    }
}
