//! Loss and accuracy curves, residual vs plain, train and eval; progress while a run trains.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, LineGauge, Paragraph};
use ratatui::Frame;

use crate::experiment::Stage;
use crate::model::Variant;
use crate::train::EpochStats;
use crate::tui::app::App;
use crate::tui::live::{RunState, StageState};
use crate::tui::shown::Shown;
use crate::tui::theme::Theme;

use super::fmt;

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, shown: &Shown) {
    let live = shown.live().filter(|l| l.is_active());
    let [top, stages, legend, charts] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(area);
    match live {
        Some(l) => {
            let label = match (l.stage, l.stage_eta()) {
                (Some((v, s)), Some(eta)) => {
                    format!(
                        "{} {} · ETA {}",
                        s.name(),
                        v,
                        fmt::duration(eta.as_secs_f64())
                    )
                }
                (Some((v, s)), None) => format!("{} {}", s.name(), v),
                (None, _) => "starting".into(),
            };
            let (filled, unfilled) = if app.ascii {
                ("#", "-")
            } else {
                ("━", "─")
            };
            let gauge = LineGauge::default()
                .ratio(l.stage_progress().unwrap_or(0.0))
                .label(Span::styled(label, theme.text()))
                .filled_symbol(filled)
                .unfilled_symbol(unfilled)
                .filled_style(theme.good())
                .unfilled_style(theme.dim());
            frame.render_widget(gauge, top);
        }
        None => {
            let text = match shown.record() {
                Some(r) => format!(
                    "{} epochs · train {} · spectrum {} · prune {}",
                    r.config.train.epochs,
                    fmt::duration(r.timings.train_s),
                    fmt::duration(r.timings.spectrum_s),
                    fmt::duration(r.timings.prune_s)
                ),
                None => match shown.live().map(|l| &l.state) {
                    Some(RunState::Failed(m)) => format!("failed: {m}"),
                    _ => String::new(),
                },
            };
            frame.render_widget(Paragraph::new(Line::styled(text, theme.dim())), top);
        }
    }
    frame.render_widget(Paragraph::new(stage_line(app, theme, shown)), stages);
    frame.render_widget(Paragraph::new(legend_line(app, theme)), legend);

    let loss = |s: &EpochStats| (s.train_loss, s.eval_loss);
    let acc = |s: &EpochStats| (s.train_accuracy, s.eval_accuracy);
    let res = &shown.variant(Variant::Residual).history;
    let pl = &shown.variant(Variant::Plain).history;
    if res.is_empty() && pl.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled("no epochs yet", theme.dim())),
            charts,
        );
        return;
    }
    let [a, b] = if charts.width >= 70 {
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(charts)
    } else {
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(charts)
    };
    let epochs = shown.epochs().max(1) as f64;
    chart(frame, a, app, theme, "loss", epochs, [res, pl], &loss);
    chart(frame, b, app, theme, "accuracy", epochs, [res, pl], &acc);
}

type Pick = dyn Fn(&EpochStats) -> (f64, f64);

/// One curve: its variant, train (true) or eval, and its points.
type Series = (Variant, bool, Vec<(f64, f64)>);

#[allow(clippy::too_many_arguments)]
fn chart(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    theme: &Theme,
    what: &str,
    epochs: f64,
    hist: [&Vec<EpochStats>; 2],
    pick: &Pick,
) {
    // (variant, train?) -> points
    let series: Vec<Series> = Variant::BOTH
        .iter()
        .zip(hist)
        .flat_map(|(v, h)| {
            let train = h.iter().map(|s| (s.epoch as f64, pick(s).0)).collect();
            let eval = h.iter().map(|s| (s.epoch as f64, pick(s).1)).collect();
            [(*v, true, train), (*v, false, eval)]
        })
        .collect();
    let ys = series.iter().flat_map(|s| s.2.iter().map(|p| p.1));
    let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
        (a.min(y), b.max(y))
    });
    let (lo, hi) = if lo.is_finite() && hi > lo {
        let pad = (hi - lo) * 0.05;
        (lo - pad, hi + pad)
    } else if lo.is_finite() {
        (lo - 0.5, lo + 0.5)
    } else {
        (0.0, 1.0)
    };
    let mono = theme.is_mono() || app.ascii;
    let datasets: Vec<Dataset> = series
        .iter()
        .map(|(v, train, pts)| {
            let name = format!(
                "{} {}",
                if *v == Variant::Residual {
                    "res"
                } else {
                    "plain"
                },
                if *train { "train" } else { "eval" }
            );
            let marker = match (mono, v, train) {
                (true, Variant::Residual, _) => Marker::Custom('*'),
                (true, Variant::Plain, _) => Marker::Custom('+'),
                (false, _, true) => Marker::Braille,
                (false, _, false) => Marker::Dot,
            };
            Dataset::default()
                .name(name)
                .marker(marker)
                .graph_type(if *train {
                    GraphType::Line
                } else {
                    GraphType::Scatter
                })
                .style(theme.variant(*v))
                .data(pts)
        })
        .collect();
    let chart = Chart::new(datasets)
        .x_axis(
            Axis::default()
                .bounds([0.0, epochs])
                .labels([Span::raw("0"), Span::raw(format!("{epochs} ep"))])
                .style(theme.dim()),
        )
        .y_axis(
            Axis::default()
                .title(Span::styled(what.to_string(), theme.title()))
                .bounds([lo, hi])
                .labels([Span::raw(fmt::num(lo)), Span::raw(fmt::num(hi))])
                .style(theme.dim()),
        )
        .legend_position(None)
        .style(Style::default());
    frame.render_widget(chart, area);
}

/// `train ✓ res ✓ plain · spectrum …`: each stage of each variant with a tick when done.
fn stage_line<'a>(app: &App, theme: &Theme, shown: &Shown<'a>) -> Line<'a> {
    let (tick, run, wait) = if app.ascii {
        ("[x]", "[>]", "[ ]")
    } else {
        ("✓", "▸", "·")
    };
    let states: Vec<(Variant, Stage, StageState)> = match shown.live() {
        Some(l) => l.stages(),
        None => [Stage::Train, Stage::Spectrum, Stage::Prune]
            .into_iter()
            .flat_map(|s| Variant::BOTH.map(|v| (v, s)))
            .map(|(v, s)| {
                let vr = shown.variant(v);
                let done = match s {
                    Stage::Train => !vr.history.is_empty(),
                    Stage::Spectrum => vr.spectrum.is_some(),
                    Stage::Prune => !vr.pruning.is_empty(),
                    Stage::Finetune => vr.pruning.iter().any(|r| r.finetuned.is_some()),
                };
                let state = if done {
                    StageState::Done
                } else {
                    StageState::Pending
                };
                (v, s, state)
            })
            .collect(),
    };
    let mut spans = Vec::new();
    // the stages the states name, in pipeline order (fine-tune only while a run has one)
    let mut stages: Vec<Stage> = Vec::new();
    for (_, s, _) in &states {
        if !stages.contains(s) {
            stages.push(*s);
        }
    }
    for stage in stages {
        spans.push(Span::styled(format!("{} ", stage.name()), theme.text()));
        for (v, s, st) in &states {
            if *s != stage {
                continue;
            }
            let (sym, style) = match st {
                StageState::Done => (tick, theme.good()),
                StageState::Running => (run, theme.warn()),
                StageState::Pending => (wait, theme.dim()),
            };
            let short = if *v == Variant::Residual { "res" } else { "pl" };
            spans.push(Span::styled(format!("{short}{sym} "), style));
        }
        spans.push(Span::raw(" "));
    }
    Line::from(spans)
}

/// What the curves are: colour per variant, line for train, dots for eval.
fn legend_line<'a>(app: &App, theme: &Theme) -> Line<'a> {
    let mono = theme.is_mono() || app.ascii;
    let (line, dot) = if app.ascii {
        ("--", "*")
    } else {
        ("━━", "•")
    };
    let mut spans = Vec::new();
    for v in Variant::BOTH {
        let (l, d) = if mono {
            let m = if v == Variant::Residual { "*" } else { "+" };
            (m, m)
        } else {
            (line, dot)
        };
        spans.push(Span::styled(format!("{v} "), theme.variant(v)));
        spans.push(Span::styled(
            format!("{l} train {d} eval   "),
            theme.variant(v),
        ));
    }
    Line::from(spans)
}

pub fn summary<'a>(theme: &Theme, shown: &Shown<'a>) -> Line<'a> {
    let last = |v: Variant| shown.variant(v).history.last().copied();
    let (r, p) = (last(Variant::Residual), last(Variant::Plain));
    let epoch = r.or(p).map(|s| s.epoch).unwrap_or(0);
    let f = |s: Option<EpochStats>, g: fn(&EpochStats) -> f64| {
        s.map(|s| fmt::num(g(&s))).unwrap_or_else(super::dash)
    };
    let mut spans = vec![Span::styled(
        format!("epoch {epoch}/{}  ", shown.epochs()),
        theme.text(),
    )];
    spans.extend(super::pair(
        theme,
        "eval loss",
        f(r, |s| s.eval_loss),
        f(p, |s| s.eval_loss),
    ));
    spans.push(Span::raw("  "));
    spans.extend(super::pair(
        theme,
        "eval acc",
        f(r, |s| s.eval_accuracy),
        f(p, |s| s.eval_accuracy),
    ));
    Line::from(spans)
}
