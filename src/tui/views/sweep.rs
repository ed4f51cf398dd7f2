//! The sweep screen: the report's table (one row per point) and a chart of Var(λ) and S at
//! the selected ratio against the first swept axis, residual and plain with mean ± sd, over
//! the points that share the selected point's other axis values.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Cell, Chart, Dataset, GraphType, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use crate::model::Variant;
use crate::report::sweep::{PointRow, SweepReport};
use crate::stats::MeanSd;
use crate::tui::app::App;
use crate::tui::msg::SweepEntry;
use crate::tui::theme::Theme;

use super::{fmt, pane_block};

/// The S metric the chart shows (`S@0.1`, ...), by the selected ratio.
fn s_metric(r: &SweepReport, ratio: usize) -> Option<&str> {
    let s: Vec<&String> = r.metrics.iter().filter(|m| m.starts_with("S@")).collect();
    s.get(ratio.min(s.len().saturating_sub(1)))
        .map(|m| m.as_str())
}

fn cell<'r>(row: &'r PointRow, metric: &str) -> Option<&'r crate::report::sweep::Cell> {
    row.cells.iter().find(|c| c.metric == metric)
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, sw: &SweepEntry) {
    let r = &sw.report;
    let [table_area, chart_area] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let s = s_metric(r, app.ratio).unwrap_or("S");
    let title = format!(
        "Sweep {} ({} points, {} over {}) — Enter opens a point",
        r.name,
        r.rows.len(),
        r.mode.name(),
        r.axes.join(", ")
    );
    let ms = |m: Option<MeanSd>| m.map_or("-".to_string(), |m| fmt::num(m.mean));
    let rows: Vec<Row> = r
        .rows
        .iter()
        .map(|row| {
            let var = cell(row, "Var(λ)");
            let sc = cell(row, s);
            let status_style = match row.status.as_str() {
                "done" => theme.good(),
                "running" | "pending" => theme.warn(),
                _ => theme.bad(),
            };
            Row::new(vec![
                Cell::from(row.name.clone()),
                Cell::from(Span::styled(row.status.clone(), status_style)),
                Cell::from(row.seeds.to_string()),
                Cell::from(Span::styled(
                    ms(var.and_then(|c| c.residual)),
                    theme.residual(),
                )),
                Cell::from(Span::styled(ms(var.and_then(|c| c.plain)), theme.plain())),
                Cell::from(Span::styled(
                    ms(sc.and_then(|c| c.residual)),
                    theme.residual(),
                )),
                Cell::from(Span::styled(ms(sc.and_then(|c| c.plain)), theme.plain())),
            ])
        })
        .collect();
    let header = Row::new(vec![
        "point".to_string(),
        "status".into(),
        "seeds".into(),
        "Var res".into(),
        "Var plain".into(),
        format!("{s} res"),
        format!("{s} plain"),
    ])
    .style(theme.title());
    let table = Table::new(
        rows,
        [
            Constraint::Fill(1),
            Constraint::Length(11),
            Constraint::Length(5),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(10),
        ],
    )
    .header(header)
    .row_highlight_style(theme.selected())
    .block(pane_block(app, &title, true));
    let mut state = TableState::default().with_selected(Some(app.sweep_point));
    frame.render_stateful_widget(table, table_area, &mut state);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .areas(chart_area);
    chart(frame, left, app, theme, r, "Var(λ)");
    chart(frame, right, app, theme, r, s);
}

/// `metric` against the first numeric axis over the points sharing the selected point's
/// other values: residual and plain means joined, mean ± sd as dots.
fn chart(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, r: &SweepReport, metric: &str) {
    let block = pane_block(app, metric, false);
    let axis = r.rows.first().and_then(|row| {
        row.values
            .iter()
            .position(|(_, v)| v.is_integer() || v.is_float())
    });
    let Some(ai) = axis else {
        let msg = "no numeric axis to chart";
        frame.render_widget(
            Paragraph::new(Line::styled(msg, theme.dim())).block(block),
            area,
        );
        return;
    };
    let selected = r.rows.get(app.sweep_point);
    let others = |row: &PointRow| -> Vec<String> {
        row.values
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != ai)
            .map(|(_, (_, v))| v.to_string())
            .collect()
    };
    let group: Vec<&PointRow> = r
        .rows
        .iter()
        .filter(|row| selected.is_none_or(|s| others(s) == others(row)))
        .collect();
    let x = |row: &PointRow| {
        let v = &row.values[ai].1;
        v.as_float().or_else(|| v.as_integer().map(|i| i as f64))
    };
    // per model: the means joined, and mean ± sd as dots
    type Series = (Variant, Vec<(f64, f64)>, Vec<(f64, f64)>);
    let mut series: Vec<Series> = Vec::new();
    for v in Variant::BOTH {
        let mut line = Vec::new();
        let mut spread = Vec::new();
        for row in &group {
            let (Some(x), Some(c)) = (x(row), cell(row, metric)) else {
                continue;
            };
            let m = if v == Variant::Residual {
                c.residual
            } else {
                c.plain
            };
            if let Some(m) = m {
                line.push((x, m.mean));
                spread.push((x, m.mean - m.sd));
                spread.push((x, m.mean + m.sd));
            }
        }
        line.sort_by(|a, b| a.0.total_cmp(&b.0));
        series.push((v, line, spread));
    }
    let all = series.iter().flat_map(|s| s.1.iter().chain(&s.2));
    let (x0, x1, y0, y1) = all.fold(
        (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ),
        |(a, b, c, d), (x, y)| (a.min(*x), b.max(*x), c.min(*y), d.max(*y)),
    );
    if !x0.is_finite() {
        let msg = "no finished point to chart yet";
        frame.render_widget(
            Paragraph::new(Line::styled(msg, theme.dim())).block(block),
            area,
        );
        return;
    }
    let (x0, x1) = if x1 > x0 {
        (x0, x1)
    } else {
        (x0 - 1.0, x0 + 1.0)
    };
    let (y0, y1) = if y1 > y0 {
        let pad = (y1 - y0) * 0.05;
        (y0 - pad, y1 + pad)
    } else {
        (y0 - 0.5, y0 + 0.5)
    };
    let mono = theme.is_mono() || app.ascii;
    let mut datasets = Vec::new();
    for (v, line, spread) in &series {
        let marker = match (mono, v) {
            (true, Variant::Residual) => Marker::Custom('*'),
            (true, Variant::Plain) => Marker::Custom('+'),
            (false, _) => Marker::Braille,
        };
        datasets.push(
            Dataset::default()
                .name(if *v == Variant::Residual {
                    "res"
                } else {
                    "plain"
                })
                .marker(marker)
                .graph_type(GraphType::Line)
                .style(theme.variant(*v))
                .data(line),
        );
        datasets.push(
            Dataset::default()
                .marker(Marker::Dot)
                .graph_type(GraphType::Scatter)
                .style(theme.variant(*v))
                .data(spread),
        );
    }
    let axis_name = r.axes.get(ai).cloned().unwrap_or_default();
    let chart = Chart::new(datasets)
        .block(block)
        .x_axis(
            Axis::default()
                .title(Span::styled(axis_name, theme.dim()))
                .bounds([x0, x1])
                .labels([Span::raw(fmt::num(x0)), Span::raw(fmt::num(x1))])
                .style(theme.dim()),
        )
        .y_axis(
            Axis::default()
                .bounds([y0, y1])
                .labels([Span::raw(fmt::num(y0)), Span::raw(fmt::num(y1))])
                .style(theme.dim()),
        )
        .legend_position(None)
        .style(Style::default());
    frame.render_widget(chart, area);
}
