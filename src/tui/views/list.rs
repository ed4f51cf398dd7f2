//! The experiments list: newest first, filtered by `/`.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use crate::frontend::middle_sensitivity;
use crate::tui::app::{App, ListRow};
use crate::tui::live::RunState;
use crate::tui::msg::Action;
use crate::tui::theme::Theme;

use super::{fmt, pane_block};

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let rows_idx = app.list_rows();
    let show_filter = app.list.filtering || !app.list.filter.is_empty();
    let [table_area, filter_area] = Layout::vertical([
        Constraint::Min(0),
        Constraint::Length(u16::from(show_filter)),
    ])
    .areas(area);
    let title = format!("Experiments ({})", rows_idx.len());
    let block = pane_block(app, &title, true);
    if rows_idx.is_empty() {
        let msg = if app.list.entries.is_empty() {
            format!(
                "No records in {} yet. Press {} to start a run from a config.",
                app.dir.display(),
                app.keys.hint(Action::NewRun)
            )
        } else {
            "No record matches the filter.".into()
        };
        frame.render_widget(
            Paragraph::new(Line::styled(msg, theme.dim())).block(block),
            table_area,
        );
    } else {
        let wide = area.width >= 110;
        let mut header = vec!["", "name", "date", "params"];
        if wide {
            header.push("model");
        }
        header.extend(["method", "S res", "S plain", "status"]);
        let rows: Vec<Row> = rows_idx.iter().map(|r| row(app, theme, *r, wide)).collect();
        let mut widths = vec![
            Constraint::Length(1),
            Constraint::Fill(1),
            Constraint::Length(16),
            Constraint::Length(6),
        ];
        if wide {
            widths.push(Constraint::Length(14));
        }
        widths.extend([
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(11),
        ]);
        let table = Table::new(rows, widths)
            .header(Row::new(header).style(theme.title()))
            .row_highlight_style(theme.selected())
            .block(block);
        let mut state = TableState::default().with_selected(Some(app.list.selected));
        frame.render_stateful_widget(table, table_area, &mut state);
    }
    if show_filter {
        let cursor = if app.list.filtering { "_" } else { "" };
        let line = Line::from(vec![
            Span::styled(
                format!(" {} filter: ", app.keys.hint(Action::Filter)),
                theme.dim(),
            ),
            Span::styled(format!("{}{cursor}", app.list.filter), theme.text()),
        ]);
        frame.render_widget(Paragraph::new(line), filter_area);
    }
}

fn row<'a>(app: &App, theme: &Theme, r: ListRow, wide: bool) -> Row<'a> {
    match r {
        ListRow::Live => {
            let Some(l) = &app.live else {
                return Row::new(Vec::<Cell>::new());
            };
            let state = match &l.state {
                RunState::Running => "running",
                RunState::Cancelling => "cancelling",
                RunState::Finished(_) => "saved",
                RunState::Failed(_) => "failed",
            };
            let mut cells = vec![
                Cell::from(">"),
                Cell::from(l.name.clone()),
                Cell::from("(live)"),
                Cell::from(l.params.to_string()),
            ];
            if wide {
                cells.push(Cell::from(""));
            }
            cells.extend([
                Cell::from(""),
                Cell::from(""),
                Cell::from(""),
                Cell::from(Span::styled(state, theme.warn())),
            ]);
            Row::new(cells)
        }
        ListRow::Sweep(i) => {
            let Some(sw) = app.sweeps.get(i) else {
                return Row::new(Vec::<Cell>::new());
            };
            let r = &sw.report;
            let done = r.rows.iter().filter(|p| p.status == "done").count();
            let mut cells = vec![
                Cell::from(Span::styled("▸", theme.emphasis())),
                Cell::from(format!("{} ({} points)", r.name, r.rows.len())),
                Cell::from("(sweep)"),
                Cell::from(""),
            ];
            if wide {
                cells.push(Cell::from(r.axes.join(" × ")));
            }
            let style = if done == r.rows.len() {
                theme.good()
            } else {
                theme.warn()
            };
            cells.extend([
                Cell::from(""),
                Cell::from(""),
                Cell::from(""),
                Cell::from(Span::styled(format!("{done}/{} done", r.rows.len()), style)),
            ]);
            Row::new(cells)
        }
        ListRow::Entry(i) => {
            let e = &app.list.entries[i];
            let mark = if app.marked.as_ref() == Some(&e.path) {
                "*"
            } else {
                " "
            };
            match &e.record {
                Ok(rec) => {
                    let (sr, sp) = middle_sensitivity(rec);
                    let mut methods: Vec<&str> = rec
                        .residual
                        .pruning
                        .iter()
                        .map(|p| p.method.name())
                        .collect();
                    methods.dedup();
                    let method = if methods.is_empty() {
                        "-".to_string()
                    } else {
                        methods.join("+")
                    };
                    let status_style = match rec.status {
                        crate::record::Status::Complete => theme.good(),
                        crate::record::Status::Interrupted => theme.warn(),
                        crate::record::Status::Failed => theme.bad(),
                    };
                    let mut cells = vec![
                        Cell::from(Span::styled(mark, theme.emphasis())),
                        Cell::from(rec.config.name.clone()),
                        Cell::from(fmt::date(&rec.started_at)),
                        Cell::from(rec.model.params.to_string()),
                    ];
                    if wide {
                        cells.push(Cell::from(
                            format!(
                                "{} {}x{} {:?}",
                                rec.model.kind,
                                rec.model.width,
                                rec.model.depth,
                                rec.model.activation
                            )
                            .to_lowercase(),
                        ));
                    }
                    cells.extend([
                        Cell::from(method),
                        Cell::from(Span::styled(fmt::opt(sr), theme.residual())),
                        Cell::from(Span::styled(fmt::opt(sp), theme.plain())),
                        Cell::from(Span::styled(rec.status.name(), status_style)),
                    ]);
                    Row::new(cells)
                }
                Err(msg) => {
                    let name = e
                        .path
                        .file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default();
                    let mut cells = vec![
                        Cell::from(mark),
                        Cell::from(name),
                        Cell::from(Span::styled(msg.clone(), theme.bad())),
                    ];
                    cells.extend((0..if wide { 6 } else { 5 }).map(|_| Cell::from("")));
                    let last = cells.len() - 1;
                    cells[last] = Cell::from(Span::styled("unreadable", theme.bad()));
                    Row::new(cells)
                }
            }
        }
    }
}
