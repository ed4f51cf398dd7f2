//! The pruning table: one row per ratio, the selected one highlighted, the larger S marked.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, HighlightSpacing, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use crate::model::Variant;
use crate::prune::PruneRow;
use crate::tui::app::App;
use crate::tui::shown::Shown;
use crate::tui::theme::Theme;

use super::fmt;

/// Which of the pair has the larger S at row `i` (None when a row is missing or they tie).
fn larger(shown: &Shown, i: usize) -> Option<Variant> {
    let r = shown.row(Variant::Residual, i)?;
    let p = shown.row(Variant::Plain, i)?;
    if r.sensitivity > p.sensitivity {
        Some(Variant::Residual)
    } else if p.sensitivity > r.sensitivity {
        Some(Variant::Plain)
    } else {
        None
    }
}

fn cells<'a>(theme: &Theme, v: Variant, row: Option<&PruneRow>, mark: bool) -> Vec<Cell<'a>> {
    let style = theme.variant(v);
    match row {
        Some(r) => {
            let s = format!(
                "{}{}",
                fmt::num(r.sensitivity),
                if mark { "*" } else { " " }
            );
            let s_style = if mark { theme.emphasis() } else { style };
            vec![
                Cell::from(Span::styled(fmt::num(r.loss_after), style)),
                Cell::from(Span::styled(s, s_style)),
                Cell::from(Span::styled(format!("{:.3}", r.accuracy_after), style)),
                Cell::from(Span::styled(format!("{:.3}", r.accuracy_drop), style)),
                Cell::from(Span::styled(fmt::num(r.predicted_delta), style)),
            ]
        }
        None => (0..5)
            .map(|_| Cell::from(Span::styled("-", theme.dim())))
            .collect(),
    }
}

/// Column widths: ratio, then loss, S, acc, drop, pred ΔL for each variant. The compact set
/// fits 80 columns exactly; the roomy one adds a selection marker and air.
const COMPACT: [u16; 6] = [4, 6, 8, 5, 6, 7];
const MEDIUM: [u16; 6] = [5, 6, 8, 5, 6, 7];
const ROOMY: [u16; 6] = [5, 7, 8, 6, 7, 8];

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, shown: &Shown) {
    let n = shown.ratio_count();
    let roomy = area.width >= 90;
    let w = if roomy {
        ROOMY
    } else if area.width >= 79 {
        MEDIUM
    } else {
        COMPACT
    };
    let marker = if roomy { 2 } else { 0 };
    let [groups, table_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    // "── residual ──" over the five columns of each variant
    let group_w = w[1..].iter().sum::<u16>() + 4;
    let dash = if app.ascii { "-" } else { "─" };
    let label = |name: &str| {
        let side = (group_w as usize).saturating_sub(name.len() + 2);
        format!(
            "{} {name} {}",
            dash.repeat(side / 2),
            dash.repeat(side - side / 2)
        )
    };
    // several pruning methods in one sweep: a method column after the ratio
    let methods = {
        let mut m: Vec<&str> = (0..n)
            .filter_map(|i| {
                shown
                    .row(Variant::Residual, i)
                    .or(shown.row(Variant::Plain, i))
            })
            .map(|r| r.method.name())
            .collect();
        m.sort_unstable();
        m.dedup();
        m.len()
    };
    let method_w: u16 = if methods > 1 { 10 } else { 0 };
    let pad = " ".repeat((marker + w[0] + 1 + method_w) as usize);
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::raw(pad),
            Span::styled(label("residual"), theme.residual()),
            Span::raw(" "),
            Span::styled(label("plain"), theme.plain()),
        ])),
        groups,
    );
    let titles = ["loss", "S", "acc", "drop", "pred ΔL"];
    let header = Row::new(
        std::iter::once(if w[0] >= 5 { "ratio" } else { "rat" })
            .chain((methods > 1).then_some("method"))
            .chain(titles)
            .chain(titles)
            .map(Cell::from)
            .collect::<Vec<_>>(),
    )
    .style(theme.title());
    let rows: Vec<Row> = (0..n)
        .map(|i| {
            let big = larger(shown, i);
            let ratio = shown
                .ratio(i)
                .map(|r| format!("{r:.2}"))
                .unwrap_or_else(super::dash);
            let mut c = vec![Cell::from(ratio)];
            if methods > 1 {
                let m = shown
                    .row(Variant::Residual, i)
                    .or(shown.row(Variant::Plain, i));
                c.push(Cell::from(m.map(|r| r.method.name()).unwrap_or_default()));
            }
            c.extend(cells(
                theme,
                Variant::Residual,
                shown.row(Variant::Residual, i),
                big == Some(Variant::Residual),
            ));
            c.extend(cells(
                theme,
                Variant::Plain,
                shown.row(Variant::Plain, i),
                big == Some(Variant::Plain),
            ));
            Row::new(c)
        })
        .collect();
    let widths: Vec<Constraint> = std::iter::once(w[0])
        .chain((methods > 1).then(|| method_w - 1))
        .chain(w[1..].iter().copied())
        .chain(w[1..].iter().copied())
        .map(Constraint::Length)
        .collect();
    let mut table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(theme.selected());
    if roomy {
        table = table
            .highlight_symbol(if app.ascii { "> " } else { "▸ " })
            .highlight_spacing(HighlightSpacing::Always);
    } else {
        table = table.highlight_spacing(HighlightSpacing::Never);
    }
    let mut state = TableState::default().with_selected(Some(app.ratio.min(n.saturating_sub(1))));
    frame.render_stateful_widget(table, table_area, &mut state);
}

pub fn summary<'a>(app: &App, theme: &Theme, shown: &Shown<'a>) -> Line<'a> {
    let i = app.ratio;
    let r = shown.row(Variant::Residual, i);
    let p = shown.row(Variant::Plain, i);
    let big = larger(shown, i);
    let s = |x: Option<&PruneRow>, v: Variant| {
        x.map(|x| {
            format!(
                "{}{}",
                fmt::num(x.sensitivity),
                if big == Some(v) { "*" } else { "" }
            )
        })
        .unwrap_or_else(super::dash)
    };
    let acc = |x: Option<&PruneRow>| {
        x.map(|x| format!("{:.3}", x.accuracy_after))
            .unwrap_or_else(super::dash)
    };
    let ratio = shown
        .ratio(i)
        .map(|r| format!("{r:.2}"))
        .unwrap_or_else(super::dash);
    let mut spans = vec![Span::styled(format!("ratio {ratio}  "), theme.emphasis())];
    spans.extend(super::pair(
        theme,
        "S",
        s(r, Variant::Residual),
        s(p, Variant::Plain),
    ));
    spans.push(Span::raw("  "));
    spans.extend(super::pair(theme, "acc", acc(r), acc(p)));
    Line::from(spans)
}
