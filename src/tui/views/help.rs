//! The `?` popup, generated from the live key map, and the new-run prompt.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, List, ListItem, ListState, Paragraph};
use ratatui::Frame;

use crate::tui::app::{App, Prompt};
use crate::tui::keys::Context;
use crate::tui::msg::Action;
use crate::tui::theme::Theme;

use super::{centered, pane_block};

/// Every binding of every context, one line each.
pub fn lines<'a>(app: &App, theme: &Theme) -> Vec<Line<'a>> {
    let mut out = Vec::new();
    for ctx in Context::ALL {
        if !out.is_empty() {
            out.push(Line::raw(""));
        }
        out.push(Line::styled(ctx.title(), theme.title()));
        for (action, _) in app.keys.entries(ctx) {
            let keys = app.keys.hint_in(ctx, action);
            out.push(Line::from(vec![
                Span::styled(format!("  {keys:<14}"), theme.emphasis()),
                Span::styled(action.describe(), theme.text()),
            ]));
        }
    }
    out
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, scroll: u16) {
    let lines = lines(app, theme);
    let rect = centered(area, 72, area.height.saturating_sub(2));
    let max_scroll = (lines.len() as u16).saturating_sub(rect.height.saturating_sub(2));
    let title = format!(
        "Help: {} scroll, {} close",
        app.keys.hint(Action::Down),
        app.keys.hint(Action::Back)
    );
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .scroll((scroll.min(max_scroll), 0))
            .block(pane_block(app, &title, true)),
        rect,
    );
}

pub fn prompt(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, p: &Prompt) {
    let suggestions = p.suggestions(&app.configs);
    let h = (suggestions.len() as u16 + 5).clamp(7, area.height.saturating_sub(4));
    let rect = centered(area, 70, h);
    frame.render_widget(Clear, rect);
    let block = pane_block(app, "New run: config file", true);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [input, hint, list] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(inner);
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("path: ", theme.dim()),
            Span::styled(p.input.clone(), theme.text()),
        ])),
        input,
    );
    let cursor_x = input.x + 6 + p.input.chars().count() as u16;
    frame.set_cursor_position((cursor_x.min(input.right().saturating_sub(1)), input.y));
    let k = |a| app.keys.hint_in(Context::Prompt, a);
    frame.render_widget(
        Paragraph::new(Line::styled(
            format!(
                "{} run  {} complete  {}/{} choose  {} cancel",
                k(Action::Select),
                k(Action::Complete),
                k(Action::Up),
                k(Action::Down),
                k(Action::Back)
            ),
            theme.dim(),
        )),
        hint,
    );
    if suggestions.is_empty() {
        let msg = if app.configs.is_empty() {
            "no configs found in the experiments folder; type a path"
        } else {
            "no config matches; Enter runs the typed path"
        };
        frame.render_widget(Paragraph::new(Span::styled(msg, theme.dim())), list);
    } else {
        let items: Vec<ListItem> = suggestions
            .iter()
            .map(|s| ListItem::new(s.display().to_string()))
            .collect();
        let mut state = ListState::default().with_selected(Some(p.highlighted));
        frame.render_stateful_widget(
            List::new(items).highlight_style(theme.selected()),
            list,
            &mut state,
        );
    }
}
