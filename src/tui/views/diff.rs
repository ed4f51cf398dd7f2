//! The diff screen: config changes, then result rows (changed ones, or all of them).
//! Formatting only: the comparison was computed by [`crate::record::diff::diff`].

use std::path::Path;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use ratatui::Frame;

use crate::record::diff::ResultRow;
use crate::tui::app::{App, DiffState};
use crate::tui::msg::Action;
use crate::tui::theme::Theme;

use super::{fmt, pane_block};

fn name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// `pruning magnitude 0.3 loss_after`, `training loss`: the row without its variant.
pub fn what(r: &ResultRow) -> String {
    let mut s = r.section.name().to_string();
    if let Some(m) = r.method {
        s.push(' ');
        s.push_str(m.name());
    }
    if let Some(g) = r
        .granularity
        .filter(|g| *g != crate::config::Granularity::Unstructured)
    {
        s.push(' ');
        s.push_str(&g.name());
    }
    if let Some(x) = r.ratio {
        s.push_str(&format!(" {x}"));
    }
    s.push(' ');
    s.push_str(&r.metric);
    s
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, d: &DiffState) {
    let block = pane_block(app, "Diff", true);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let config_rows = d.diff.config.len() as u16;
    let config_h = if config_rows == 0 {
        1
    } else {
        (config_rows + 2)
            .min(inner.height.saturating_sub(4) / 2)
            .max(3)
    };
    let [title, config, results] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(config_h),
        Constraint::Min(0),
    ])
    .areas(inner);

    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(name(&d.marked), theme.emphasis()),
            Span::styled(if app.ascii { " -> " } else { " → " }, theme.dim()),
            Span::styled(name(&d.current), theme.emphasis()),
        ])),
        title,
    );

    // config changes
    if d.diff.config.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled("same config", theme.dim())),
            config,
        );
    } else {
        let rows = d.diff.config.iter().map(|c| {
            Row::new(vec![
                Cell::from(Span::styled(c.key.clone(), theme.text())),
                Cell::from(Span::styled(
                    c.old.clone().unwrap_or_else(super::dash),
                    theme.dim(),
                )),
                Cell::from(Span::styled(
                    c.new.clone().unwrap_or_else(super::dash),
                    theme.text(),
                )),
            ])
        });
        let header = Row::new(vec![
            format!("config ({} changed)", d.diff.config.len()),
            "old".into(),
            "new".into(),
        ])
        .style(theme.title());
        let table = Table::new(
            rows,
            [
                Constraint::Percentage(40),
                Constraint::Percentage(30),
                Constraint::Percentage(30),
            ],
        )
        .header(header);
        frame.render_widget(table, config);
    }

    // results
    let shown = d.rows();
    let changed = d.diff.changed_rows().count();
    let toggle = app.keys.hint(Action::AllRows);
    let heading = if d.all {
        format!("results (all {}, {changed} changed)", d.diff.rows.len())
    } else {
        format!("results ({changed} of {} changed)", d.diff.rows.len())
    };
    let heading = if toggle.is_empty() {
        heading
    } else {
        format!(
            "{heading} {toggle}: {}",
            if d.all { "changed only" } else { "all" }
        )
    };
    let [h, results] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(results);
    frame.render_widget(Paragraph::new(Line::styled(heading, theme.title())), h);
    if shown.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled("no result changed", theme.dim())),
            results,
        );
        return;
    }
    let delta = if app.ascii { "d" } else { "Δ" };
    let header = Row::new(vec![
        "model".to_string(),
        "what".to_string(),
        "old".into(),
        "new".into(),
        delta.to_string(),
        format!("{delta}%"),
    ])
    .style(theme.dim());
    let rows = shown.iter().skip(d.scroll).map(|r| {
        let style = if r.changed { theme.text() } else { theme.dim() };
        Row::new(vec![
            Cell::from(Span::styled(
                r.variant.to_string(),
                theme.variant(r.variant),
            )),
            Cell::from(Span::styled(what(r), style)),
            Cell::from(Span::styled(fmt::opt(r.old), style)),
            Cell::from(Span::styled(fmt::opt(r.new), style)),
            Cell::from(Span::styled(fmt::opt(r.delta), style)),
            Cell::from(Span::styled(
                r.delta_pct
                    .map_or_else(super::dash, |p| format!("{p:+.1}%")),
                style,
            )),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Min(20),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
        ],
    )
    .header(header);
    frame.render_widget(table, results);
}
