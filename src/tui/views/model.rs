//! The architecture as a table, with per-layer sparsity at the selected ratio.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use crate::model::Variant;
use crate::prune::PruneRow;
use crate::tui::app::App;
use crate::tui::shown::Shown;
use crate::tui::theme::Theme;

use super::fmt;

fn sparsity(row: Option<&PruneRow>, layer: &str) -> String {
    row.and_then(|r| r.layers.iter().find(|l| l.layer == layer))
        .map(|l| fmt::pct(l.sparsity))
        .unwrap_or_else(|| "-".into())
}

fn pruned(row: Option<&PruneRow>) -> String {
    row.map(|r| format!("{}/{}", r.pruned, r.eligible))
        .unwrap_or_else(|| "-".into())
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, shown: &Shown) {
    let Some(m) = shown.model() else {
        let text = vec![
            Line::styled(format!("{} parameters", shown.params()), theme.text()),
            Line::styled("the layer table arrives when the run starts", theme.dim()),
        ];
        frame.render_widget(Paragraph::new(text), area);
        return;
    };
    let res = shown.row(Variant::Residual, app.ratio);
    let pl = shown.row(Variant::Plain, app.ratio);
    let ratio = shown
        .ratio(app.ratio)
        .map(|r| format!("{r:.2}"))
        .unwrap_or_else(|| "-".into());
    let x = if app.ascii { "x" } else { "×" };
    let [info, table_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    let line = Line::from(vec![
        Span::styled(
            format!(
                "{} {:?} {}→{}{x}{}→{}, α {}",
                m.kind,
                m.activation,
                m.inputs,
                m.width,
                m.depth,
                m.classes,
                m.alpha_label()
            )
            .to_lowercase(),
            theme.text(),
        ),
        Span::styled(format!("  sparsity @ {ratio}"), theme.dim()),
    ]);
    frame.render_widget(Paragraph::new(line), info);

    // the shape column goes first when the pane is narrow
    let with_shape = table_area.width >= 44;
    let cols = |mut v: Vec<Cell<'static>>| {
        if !with_shape {
            v.remove(1);
        }
        v
    };
    let header = Row::new(cols(vec![
        Cell::from("layer"),
        Cell::from("shape"),
        Cell::from("params"),
        Cell::from("skip"),
        Cell::from(Span::styled("res", theme.residual())),
        Cell::from(Span::styled("plain", theme.plain())),
    ]))
    .style(theme.title());
    let mut rows: Vec<Row> = m
        .layers
        .iter()
        .map(|l| {
            let shape = l
                .shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(x);
            let skip = if l.skip {
                format!("α{}", m.alpha_label())
            } else {
                "-".into()
            };
            Row::new(cols(vec![
                Cell::from(l.name.clone()),
                Cell::from(shape),
                Cell::from(l.params.to_string()),
                Cell::from(skip),
                Cell::from(Span::styled(sparsity(res, &l.name), theme.residual())),
                Cell::from(Span::styled(sparsity(pl, &l.name), theme.plain())),
            ]))
        })
        .collect();
    let (pruned_res, pruned_pl) = (pruned(res), pruned(pl));
    rows.push(
        Row::new(cols(vec![
            Cell::from("total"),
            Cell::from(""),
            Cell::from(m.params.to_string()),
            Cell::from(""),
            Cell::from(Span::styled(pruned_res.clone(), theme.residual())),
            Cell::from(Span::styled(pruned_pl.clone(), theme.plain())),
        ]))
        .style(theme.title()),
    );
    // `pruned/eligible` grows with the model (e.g. 4934/16448)
    let count_w = pruned_res.len().max(pruned_pl.len()).max(7) as u16;
    let name_w = m
        .layers
        .iter()
        .map(|l| l.name.len())
        .max()
        .unwrap_or(5)
        .max(5) as u16;
    let mut widths = vec![
        Constraint::Length(name_w),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(4),
        Constraint::Length(count_w),
        Constraint::Length(count_w),
    ];
    if !with_shape {
        widths.remove(1);
    }
    let table = Table::new(rows, widths).header(header).column_spacing(1);
    let mut state = TableState::default().with_offset(app.model_scroll);
    frame.render_stateful_widget(table, table_area, &mut state);
}

pub fn summary<'a>(app: &App, theme: &Theme, shown: &Shown<'a>) -> Line<'a> {
    let mut spans = vec![Span::styled(
        format!("{} params", shown.params()),
        theme.text(),
    )];
    if let Some(m) = shown.model() {
        spans.push(Span::styled(
            format!(", {} layers, α {}", m.layers.len(), m.alpha_label()),
            theme.text(),
        ));
    }
    if let Some(r) = shown.ratio(app.ratio) {
        spans.push(Span::styled(format!("  pruned @ {r:.2}: "), theme.dim()));
        spans.extend(super::pair(
            theme,
            "",
            pruned(shown.row(Variant::Residual, app.ratio)),
            pruned(shown.row(Variant::Plain, app.ratio)),
        ));
    }
    Line::from(spans)
}
