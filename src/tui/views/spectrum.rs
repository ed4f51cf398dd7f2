//! Eigenvalue histograms of both models on one shared axis, with the spectrum statistics.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::bar;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Sparkline, Table};
use ratatui::Frame;

use crate::curvature::{Spectrum, SpectrumMethod, SpectrumPhase, SpectrumStats};
use crate::experiment::Stage;
use crate::model::Variant;
use crate::stats::Bins;
use crate::tui::app::App;
use crate::tui::shown::Shown;
use crate::tui::theme::Theme;

use super::fmt;

/// Sparkline bars in `--ascii` mode.
pub const ASCII_BARS: bar::Set = bar::Set {
    full: "#",
    seven_eighths: "#",
    three_quarters: "=",
    five_eighths: "=",
    half: "-",
    three_eighths: "-",
    one_quarter: "_",
    one_eighth: ".",
    empty: " ",
};

/// Bar heights for counts: linear, or `ln(1 + c)` in thousandths for log counts.
fn heights(counts: &[u64], log: bool) -> Vec<u64> {
    if log {
        counts
            .iter()
            .map(|&c| ((c as f64).ln_1p() * 1000.0) as u64)
            .collect()
    } else {
        counts.to_vec()
    }
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, shown: &Shown) {
    let res = shown.spectrum(Variant::Residual);
    let pl = shown.spectrum(Variant::Plain);
    // stats beside the plots when wide, under them as one tall table when high, else as two
    // halves side by side
    let wide = area.width >= 90;
    let tall = !wide && area.height >= 20;
    let lanczos = shown.spectrum_method() == Some(SpectrumMethod::Lanczos);
    // wider only for a longer value ("not resolved")
    let extra = [Variant::Residual, Variant::Plain]
        .map(|v| value_width(shown.stats(v), !lanczos) - 8)
        .iter()
        .sum::<u16>();
    let [plots, stats_area] = if wide {
        Layout::horizontal([Constraint::Min(0), Constraint::Length(30 + extra)]).areas(area)
    } else if tall {
        Layout::vertical([Constraint::Min(0), Constraint::Length(10)]).areas(area)
    } else {
        Layout::vertical([Constraint::Min(0), Constraint::Length(5)]).areas(area)
    };
    let [head, r_area, p_area, axis] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(plots);
    let mode = if app.log_counts {
        "log counts"
    } else {
        "counts"
    };
    // what was measured: every eigenvalue (dense) or the SLQ density's histogram
    let (source, note) = if lanczos {
        ("SLQ density", "  (Lanczos: moments by Hutchinson)")
    } else {
        ("dense eigenvalues", "  (dense only)")
    };
    // a run computing a spectrum says which estimator is at work, and how far
    let computing = shown.live().and_then(|l| match (l.stage, l.hessian) {
        (Some((v, Stage::Spectrum)), Some((phase, done, total))) => Some((v, phase, done, total)),
        _ => None,
    });
    let head_line = match computing {
        Some((v, phase, done, total)) => Line::from(vec![
            Span::styled(
                format!("{v} spectrum: {} {done}/{total}", phase.name()),
                theme.text(),
            ),
            Span::styled(
                if phase == SpectrumPhase::Dense {
                    "  columns"
                } else {
                    "  Hessian-vector products (at most)"
                },
                theme.dim(),
            ),
        ]),
        None => Line::from(vec![
            Span::styled(format!("{source}, {mode}, shared axis"), theme.text()),
            Span::styled(note, theme.dim()),
        ]),
    };
    frame.render_widget(Paragraph::new(head_line), head);

    let label_w = 6;
    match (res, pl) {
        (Some(r), Some(p)) => {
            let lo = r.stats.min.min(p.stats.min);
            let hi = r.stats.max.max(p.stats.max);
            // one bar per column on the shared axis: every eigenvalue when the record holds
            // them, else the stored histogram moved onto the axis
            let bins = Bins::new(lo, hi, plots.width.saturating_sub(label_w) as usize);
            let counts = |s: &Spectrum| {
                if s.eigenvalues.is_empty() {
                    s.histogram.rebin(bins)
                } else {
                    bins.tally(&s.eigenvalues)
                }
            };
            let hr = heights(&counts(r), app.log_counts);
            let hp = heights(&counts(p), app.log_counts);
            let max = hr.iter().chain(&hp).copied().max().unwrap_or(1).max(1);
            for (v, rect, h) in [
                (Variant::Residual, r_area, hr),
                (Variant::Plain, p_area, hp),
            ] {
                let [lab, spark] =
                    Layout::horizontal([Constraint::Length(label_w), Constraint::Min(0)])
                        .areas(rect);
                let name = if v == Variant::Residual {
                    "res"
                } else {
                    "plain"
                };
                frame.render_widget(Paragraph::new(Span::styled(name, theme.variant(v))), lab);
                let mut s = Sparkline::default()
                    .data(&h)
                    .max(max)
                    .style(theme.variant(v));
                if app.ascii {
                    s = s.bar_set(ASCII_BARS);
                }
                frame.render_widget(s, spark);
            }
            axis_line(frame, axis, theme, lo, hi, label_w, app.ascii);
        }
        _ => {
            let msg = if shown.live().is_some() {
                "histograms appear when the record is saved"
            } else {
                "no spectrum in this record"
            };
            frame.render_widget(Paragraph::new(Span::styled(msg, theme.dim())), r_area);
        }
    }
    stats_table(
        frame,
        stats_area,
        theme,
        shown.stats(Variant::Residual),
        shown.stats(Variant::Plain),
        wide || tall,
        !lanczos,
    );
}

/// `min` under the first bin, `max` under the last, `0` where zero falls.
fn axis_line(
    frame: &mut Frame,
    area: Rect,
    theme: &Theme,
    lo: f64,
    hi: f64,
    pad: u16,
    ascii: bool,
) {
    let w = area.width.saturating_sub(pad) as usize;
    let left = fmt::num(lo);
    let right = fmt::num(hi);
    let mut chars: Vec<char> = vec![' '; w];
    if hi > lo && lo < 0.0 && hi > 0.0 {
        let z = ((-lo) / (hi - lo) * w as f64) as usize;
        if z < w {
            chars[z] = if ascii { '^' } else { '↑' };
            for (i, c) in "0".chars().enumerate() {
                if z + 1 + i < w {
                    chars[z + 1 + i] = c;
                }
            }
        }
    }
    for (i, c) in left.chars().enumerate() {
        if i < w {
            chars[i] = c;
        }
    }
    let rn = right.chars().count();
    for (i, c) in right.chars().enumerate() {
        if w >= rn {
            chars[w - rn + i] = c;
        }
    }
    let line = Line::from(vec![
        Span::raw(" ".repeat(pad as usize)),
        Span::styled(chars.into_iter().collect::<String>(), theme.dim()),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

/// A value column's width: 8, or the condition's text when longer ("not resolved").
fn value_width(s: Option<&SpectrumStats>, dense: bool) -> u16 {
    let cond = s
        .filter(|_| dense)
        .map_or(0, |s| s.condition_text(fmt::num).len());
    cond.max(8) as u16
}

fn stats_table(
    frame: &mut Frame,
    area: Rect,
    theme: &Theme,
    r: Option<&SpectrumStats>,
    p: Option<&SpectrumStats>,
    tall: bool,
    dense: bool,
) {
    let f = |s: Option<&SpectrumStats>, g: &dyn Fn(&SpectrumStats) -> String| {
        s.map(g).unwrap_or_else(super::dash)
    };
    // Lanczos measures neither (see `sources.counts` in the record)
    let counted = |s: Option<&SpectrumStats>, g: &dyn Fn(&SpectrumStats) -> String| {
        if dense {
            f(s, g)
        } else {
            super::dash()
        }
    };
    let items: Vec<(&str, String, String)> = vec![
        (
            "min",
            f(r, &|s| fmt::num(s.min)),
            f(p, &|s| fmt::num(s.min)),
        ),
        (
            "max",
            f(r, &|s| fmt::num(s.max)),
            f(p, &|s| fmt::num(s.max)),
        ),
        (
            "mean",
            f(r, &|s| fmt::num(s.mean)),
            f(p, &|s| fmt::num(s.mean)),
        ),
        (
            "Var",
            f(r, &|s| fmt::num(s.variance)),
            f(p, &|s| fmt::num(s.variance)),
        ),
        (
            "trace",
            f(r, &|s| fmt::num(s.trace)),
            f(p, &|s| fmt::num(s.trace)),
        ),
        (
            "negative",
            f(r, &|s| s.negatives.to_string()),
            f(p, &|s| s.negatives.to_string()),
        ),
        (
            "near 0",
            counted(r, &|s| {
                s.near_zero.map_or_else(super::dash, |c| c.to_string())
            }),
            counted(p, &|s| {
                s.near_zero.map_or_else(super::dash, |c| c.to_string())
            }),
        ),
        (
            "cond",
            counted(r, &|s| s.condition_text(fmt::num)),
            counted(p, &|s| s.condition_text(fmt::num)),
        ),
    ];
    let cell = |(name, a, b): &(&str, String, String)| {
        vec![
            Cell::from(name.to_string()),
            Cell::from(Span::styled(a.clone(), theme.residual())),
            Cell::from(Span::styled(b.clone(), theme.plain())),
        ]
    };
    let head = vec![
        Cell::from(""),
        Cell::from(Span::styled("res", theme.residual())),
        Cell::from(Span::styled("plain", theme.plain())),
    ];
    let (rw, pw) = (value_width(r, dense), value_width(p, dense));
    let (rows, header, widths): (Vec<Row>, Row, Vec<Constraint>) = if tall {
        (
            items.iter().map(|i| Row::new(cell(i))).collect(),
            Row::new(head),
            vec![
                Constraint::Length(9),
                Constraint::Length(rw),
                Constraint::Length(pw),
            ],
        )
    } else {
        // two halves side by side to fit five lines
        let half = items.len() / 2;
        let rows = (0..half)
            .map(|i| {
                let mut c = cell(&items[i]);
                c.push(Cell::from("|"));
                c.extend(cell(&items[i + half]));
                Row::new(c)
            })
            .collect();
        let mut h = head.clone();
        h.push(Cell::from("|"));
        h.extend(head);
        let w = [
            Constraint::Length(9),
            Constraint::Length(rw),
            Constraint::Length(pw),
        ];
        let mut widths = w.to_vec();
        widths.push(Constraint::Length(1));
        widths.extend(w);
        (rows, Row::new(h), widths)
    };
    let table = Table::new(rows, widths).header(header.style(theme.title()));
    frame.render_widget(table, area);
}

pub fn summary<'a>(theme: &Theme, shown: &Shown<'a>) -> Line<'a> {
    let r = shown.stats(Variant::Residual);
    let p = shown.stats(Variant::Plain);
    let f = |s: Option<&SpectrumStats>, g: fn(&SpectrumStats) -> String| {
        s.map(g).unwrap_or_else(super::dash)
    };
    let mut spans = super::pair(
        theme,
        "Var",
        f(r, |s| fmt::num(s.variance)),
        f(p, |s| fmt::num(s.variance)),
    );
    spans.push(Span::raw("  "));
    spans.extend(super::pair(
        theme,
        "max",
        f(r, |s| fmt::num(s.max)),
        f(p, |s| fmt::num(s.max)),
    ));
    spans.push(Span::raw("  "));
    spans.extend(super::pair(
        theme,
        "neg",
        f(r, |s| s.negatives.to_string()),
        f(p, |s| s.negatives.to_string()),
    ));
    Line::from(spans)
}
