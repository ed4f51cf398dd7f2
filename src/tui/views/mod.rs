//! Drawing: `draw(frame, &app)` reads the state and never changes it. One module per pane.

pub mod diff;
pub mod fmt;
pub mod help;
pub mod lesion;
pub mod list;
pub mod model;

mod pruning;
pub mod spectrum;
pub mod sweep;
pub mod training;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::border;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::app::{App, Level, Pane, Popup, Screen};
use super::keys::Context;
use super::live::RunState;
use super::msg::Action;
use super::shown::Shown;
use super::theme::Theme;

/// The smallest terminal the notebook draws in.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

/// Border characters in `--ascii` mode.
pub const ASCII_BORDER: border::Set = border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};

pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let theme = app.theme();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area, theme);
    } else {
        let [header, body, status, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(0),
            Constraint::Length(u16::from(app.status.is_some())),
            Constraint::Length(1),
        ])
        .areas(area);
        header_line(frame, header, app, theme);
        match &app.screen {
            Screen::List => list::render(frame, body, app, theme),
            Screen::Experiment => experiment(frame, body, app, theme),
            Screen::Diff(d) => diff::render(frame, body, app, theme, d),
            Screen::Sweep(i) => match app.sweeps.get(*i) {
                Some(sw) => sweep::render(frame, body, app, theme, sw),
                None => list::render(frame, body, app, theme),
            },
        }
        status_line(frame, status, app, theme);
        footer_line(frame, footer, app, theme);
        match &app.popup {
            Some(Popup::Help { scroll }) => help::render(frame, area, app, theme, *scroll),
            Some(Popup::ConfirmCancel) => confirm(frame, area, app, theme),
            Some(Popup::NewRun(p)) => help::prompt(frame, area, app, theme, p),
            Some(Popup::Replay {
                path,
                outcome,
                scroll,
            }) => replay_popup(frame, area, app, theme, path, outcome, *scroll),
            None => {}
        }
    }
    if app.ascii {
        asciify(frame.buffer_mut());
    }
}

fn too_small(frame: &mut Frame, area: Rect, theme: &Theme) {
    let text = vec![
        Line::styled("terminal too small: need 80×24", theme.bad()),
        Line::styled(format!("now {}×{}", area.width, area.height), theme.dim()),
    ];
    let y = area.height.saturating_sub(2) / 2;
    let rect = Rect::new(area.x, area.y + y, area.width, 2.min(area.height));
    frame.render_widget(
        Paragraph::new(text)
            .alignment(ratatui::layout::Alignment::Center)
            .wrap(Wrap { trim: true }),
        rect,
    );
}

/// A bordered block titled `title`, its border showing focus.
pub fn pane_block<'a>(app: &App, title: &'a str, focused: bool) -> Block<'a> {
    let theme = app.theme();
    let set = if app.ascii {
        ASCII_BORDER
    } else if focused {
        border::THICK
    } else {
        border::PLAIN
    };
    Block::default()
        .borders(Borders::ALL)
        .border_set(set)
        .border_style(theme.border(focused))
        .title(Span::styled(format!(" {title} "), theme.title()))
}

fn header_line(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let mut spans = vec![Span::styled(" resprune-tui ", theme.title())];
    let sep = || Span::styled(" | ", theme.dim());
    match (&app.screen, app.shown()) {
        (Screen::Experiment, Some(shown)) => {
            spans.push(sep());
            spans.push(Span::styled(shown.name().to_string(), theme.text()));
            if let Some(r) = shown.record() {
                spans.push(Span::styled(
                    format!(" {} {}", fmt::date(&r.started_at), r.status),
                    theme.dim(),
                ));
            }
            if let Some(x) = shown.ratio(app.ratio) {
                spans.push(sep());
                spans.push(Span::styled(format!("ratio {x:.2}"), theme.emphasis()));
                spans.push(Span::styled(
                    format!(" ({}/{})", app.ratio + 1, shown.ratio_count()),
                    theme.dim(),
                ));
            }
        }
        _ => {
            spans.push(sep());
            spans.push(Span::styled(app.dir.display().to_string(), theme.dim()));
        }
    }
    if let Some(l) = &app.live {
        spans.push(sep());
        let (word, style) = match &l.state {
            RunState::Running => ("running", theme.warn()),
            RunState::Cancelling => ("cancelling", theme.warn()),
            RunState::Finished(_) => ("saved", theme.good()),
            RunState::Failed(_) => ("failed", theme.bad()),
        };
        spans.push(Span::styled(format!("{} {word}", l.name), style));
    }
    if app.replaying.is_some() {
        spans.push(sep());
        spans.push(Span::styled("replaying", theme.warn()));
    }
    spans.push(sep());
    spans.push(Span::styled(format!("theme {}", theme.name), theme.dim()));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn status_line(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    if let Some(s) = &app.status {
        let style = match s.level {
            Level::Info => theme.text(),
            Level::Warn => theme.warn(),
            Level::Error => theme.bad(),
        };
        frame.render_widget(
            Paragraph::new(Line::styled(format!(" {}", s.text), style)),
            area,
        );
    }
}

/// The keys that matter here, most important first: groups of actions (shown with the first
/// key of each) and a label. Generated from the key map, never typed in.
pub fn footer_items(app: &App) -> (Context, Vec<(Vec<Action>, &'static str)>) {
    use Action::*;
    let one = |a: Action| (vec![a], a.label());
    let ctx = app.context();
    let items = match (&app.popup, ctx, &app.screen) {
        (Some(Popup::Help { .. } | Popup::Replay { .. }), _, _) => {
            vec![(vec![Up, Down], "scroll"), one(Back), one(Quit)]
        }
        (_, Context::Confirm, _) => vec![one(Confirm), one(Deny)],
        (_, Context::Prompt, _) => vec![
            (vec![Select], "accept"),
            (vec![Back], "cancel"),
            (vec![Up, Down], "choose"),
            one(Complete),
        ],
        (_, _, Screen::List) => vec![
            (vec![Select], "open"),
            (vec![Up, Down], "move"),
            one(Filter),
            one(NewRun),
            one(Help),
            one(Quit),
            one(Rerun),
            one(Mark),
            one(Diff),
            one(Theme),
        ],
        (_, _, Screen::Experiment) => {
            let mut v = vec![
                (vec![RatioPrev, RatioNext], "ratio"),
                (vec![NextPane], "pane"),
                (vec![Select], "zoom"),
                one(Back),
                one(Help),
                one(Quit),
            ];
            if app.focus == Pane::Spectrum {
                v.extend([one(LogCounts), one(SpectrumSource)]);
            }
            if app.focus == Pane::Pruning {
                if let Some(s) = app.shown() {
                    if s.granularities().len() > 1 {
                        v.push(one(Granularity));
                    }
                    if s.methods().len() > 1 {
                        v.push(one(Method));
                    }
                    if s.variant(crate::model::Variant::Residual).lesions.is_some() {
                        v.push(one(Lesions));
                    }
                }
            }
            v.push(if app.is_running() {
                one(Cancel)
            } else {
                one(Rerun)
            });
            v.extend([one(Mark), one(Diff), one(Replay)]);
            if app.focus != Pane::Model {
                v.push(one(Plot));
            }
            v.push(one(Theme));
            v
        }
        (_, _, Screen::Sweep(_)) => vec![
            (vec![Select], "open point"),
            (vec![Up, Down], "point"),
            (vec![RatioPrev, RatioNext], "ratio"),
            one(Back),
            one(Help),
            one(Quit),
        ],
        (_, _, Screen::Diff(_)) => vec![
            one(Back),
            (vec![Up, Down], "scroll"),
            one(AllRows),
            one(Help),
            one(Quit),
        ],
    };
    (ctx, items)
}

fn footer_line(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let (ctx, items) = footer_items(app);
    let mut spans = Vec::new();
    let mut width = 0usize;
    for (actions, label) in items {
        let keys: Vec<String> = actions
            .iter()
            .filter_map(|a| app.keys.short_hint(ctx, *a))
            .collect();
        if keys.is_empty() {
            continue;
        }
        let key = keys.join("/");
        let piece = key.chars().count() + label.len() + 3;
        if width + piece > area.width as usize {
            break;
        }
        width += piece;
        spans.push(Span::styled(format!(" {key}"), theme.title()));
        spans.push(Span::styled(format!(" {label} "), theme.dim()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// A rectangle of `w`×`h` centred in `area` (clamped to it).
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn confirm(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let name = app.live.as_ref().map_or("the run", |l| l.name.as_str());
    let yes = app.keys.hint_in(Context::Confirm, Action::Confirm);
    let no = app.keys.hint_in(Context::Confirm, Action::Deny);
    let text = vec![
        Line::styled(
            format!("Cancel the running experiment `{name}`?"),
            theme.text(),
        ),
        Line::styled("The stages that finished are saved.", theme.dim()),
        Line::raw(""),
        Line::from(vec![
            Span::styled(yes, theme.title()),
            Span::styled(" cancel it   ", theme.text()),
            Span::styled(no, theme.title()),
            Span::styled(" keep running", theme.text()),
        ]),
    ];
    let rect = centered(area, 56, 6);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(text).block(pane_block(app, "Cancel run", true)),
        rect,
    );
}

/// What a replay found: all values match, or the first mismatches.
fn replay_popup(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    theme: &Theme,
    path: &std::path::Path,
    outcome: &Result<super::msg::ReplayOutcome, String>,
    scroll: u16,
) {
    let mut text = vec![Line::styled(
        format!("replay of {}", path.display()),
        theme.dim(),
    )];
    match outcome {
        Err(e) => text.push(Line::styled(format!("failed: {e}"), theme.bad())),
        Ok(o) => {
            text.push(Line::styled(
                format!("new record: {}", o.new_path.display()),
                theme.dim(),
            ));
            if !o.complete {
                text.push(Line::styled(
                    "the replay stopped early; values it did not reach count as mismatches",
                    theme.warn(),
                ));
            }
            text.push(Line::raw(""));
            if o.mismatches.is_empty() {
                text.push(Line::styled(
                    format!(
                        "all {} values match ({} numbers, exactly)",
                        o.compared, o.numbers
                    ),
                    theme.good(),
                ));
            } else {
                text.push(Line::styled(
                    format!("{} of {} values differ:", o.mismatches.len(), o.compared),
                    theme.bad(),
                ));
                text.push(Line::styled("path  stored  new", theme.title()));
                let none = || "(absent)".to_string();
                for m in &o.mismatches {
                    text.push(Line::from(vec![
                        Span::styled(m.path.clone(), theme.text()),
                        Span::styled("  ", theme.dim()),
                        Span::styled(m.stored.clone().unwrap_or_else(none), theme.dim()),
                        Span::styled("  ", theme.dim()),
                        Span::styled(m.new.clone().unwrap_or_else(none), theme.warn()),
                    ]));
                }
            }
        }
    }
    let h = (text.len() as u16 + 2).min(area.height.saturating_sub(4));
    let rect = centered(area, 76, h);
    let max_scroll = (text.len() as u16).saturating_sub(rect.height.saturating_sub(2));
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(text)
            .scroll((scroll.min(max_scroll), 0))
            .block(pane_block(app, "Replay", true)),
        rect,
    );
}

/// The experiment view: four panes, stacked or in a grid depending on room; one when zoomed.
fn experiment(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let Some(shown) = app.shown() else {
        let p = Paragraph::new("nothing opened").block(pane_block(app, "Experiment", false));
        frame.render_widget(p, area);
        return;
    };
    if app.zoomed {
        render_pane(frame, area, app, theme, &shown, app.focus);
        return;
    }
    if area.width >= 120 && area.height >= 30 {
        // left: model over spectrum; right (wide enough for the table): training over pruning
        let right_w = (area.width * 55 / 100).max(80);
        let [left, right] =
            Layout::horizontal([Constraint::Min(0), Constraint::Length(right_w)]).areas(area);
        let layers = shown.model().map_or(1, |m| m.layers.len()) as u16;
        let model_h = (layers + 6).min(left.height / 2);
        let [m, s] =
            Layout::vertical([Constraint::Length(model_h), Constraint::Min(0)]).areas(left);
        let table_h = (shown.ratio_count() as u16 + 5).clamp(8, right.height / 2);
        let [t, p] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(table_h)]).areas(right);
        render_pane(frame, m, app, theme, &shown, Pane::Model);
        render_pane(frame, s, app, theme, &shown, Pane::Spectrum);
        render_pane(frame, t, app, theme, &shown, Pane::Training);
        render_pane(frame, p, app, theme, &shown, Pane::Pruning);
    } else {
        // stacked: the focused pane takes the room, the others keep one summary line
        let constraints = Pane::ALL.map(|p| {
            if p == app.focus {
                Constraint::Min(0)
            } else {
                Constraint::Length(3)
            }
        });
        let rects = Layout::vertical(constraints).split(area);
        for (p, rect) in Pane::ALL.into_iter().zip(rects.iter()) {
            if p == app.focus {
                render_pane(frame, *rect, app, theme, &shown, p);
            } else {
                let block = pane_block(app, p.title(), false);
                let line = summary(app, theme, &shown, p);
                frame.render_widget(Paragraph::new(line).block(block), *rect);
            }
        }
    }
}

fn render_pane(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, shown: &Shown, p: Pane) {
    let focused = app.focus == p;
    let title = match p {
        Pane::Pruning => pruning_title(app, shown),
        _ => p.title().to_string(),
    };
    let block = pane_block(app, &title, focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    match p {
        Pane::Model => model::render(frame, inner, app, theme, shown),
        Pane::Training => training::render(frame, inner, app, theme, shown),
        Pane::Spectrum => spectrum::render(frame, inner, app, theme, shown),
        Pane::Pruning if app.lesions => lesion::render(frame, inner, theme, shown),
        Pane::Pruning => pruning::render(frame, inner, app, theme, shown),
    }
}

/// `Pruning`, with the granularity and method shown when the record has several.
fn pruning_title(app: &App, shown: &Shown) -> String {
    if app.lesions {
        return "Block lesions".into();
    }
    let mut t = Pane::Pruning.title().to_string();
    if shown.granularities().len() > 1 {
        if let Some(g) = app.granularity {
            t.push_str(&format!(" · {g}"));
        }
    }
    if shown.methods().len() > 1 {
        match app.method {
            Some(m) => t.push_str(&format!(" · {m}")),
            None => t.push_str(" · every method"),
        }
    }
    t
}

/// One line that stands for a pane when it is folded.
fn summary<'a>(app: &App, theme: &Theme, shown: &Shown<'a>, p: Pane) -> Line<'a> {
    match p {
        Pane::Model => model::summary(app, theme, shown),
        Pane::Training => training::summary(theme, shown),
        Pane::Spectrum => spectrum::summary(theme, shown),
        Pane::Pruning => pruning::summary(app, theme, shown),
    }
}

/// Residual then plain, each value in its variant's colour.
pub fn pair<'a>(theme: &Theme, label: &str, res: String, plain: String) -> Vec<Span<'a>> {
    vec![
        Span::styled(format!("{label} "), theme.dim()),
        Span::styled(res, theme.residual()),
        Span::styled(" / ", theme.dim()),
        Span::styled(plain, theme.plain()),
    ]
}

pub fn dash() -> String {
    "-".into()
}

/// A style that does nothing (readability at call sites).
pub fn none() -> Style {
    Style::default()
}

/// Replaces every non-ASCII symbol left in the buffer (chart axes, braille, arrows) with an
/// ASCII look-alike, for `--ascii`.
pub fn asciify(buf: &mut Buffer) {
    let area = buf.area;
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            let cell = &mut buf[(x, y)];
            let sym = cell.symbol();
            if sym.is_ascii() {
                continue;
            }
            let c = sym.chars().next().unwrap_or(' ');
            let r = ascii_for(c);
            cell.set_symbol(r);
        }
    }
}

fn ascii_for(c: char) -> &'static str {
    match c {
        '─' | '━' | '═' | '╌' | '┄' => "-",
        '│' | '┃' | '║' | '╎' | '┆' => "|",
        '┌' | '┐' | '└' | '┘' | '├' | '┤' | '┬' | '┴' | '┼' | '╭' | '╮' | '╯' | '╰' | '┏' | '┓'
        | '┗' | '┛' | '┣' | '┫' | '┳' | '┻' | '╋' => "+",
        '█' | '▉' | '▊' | '▋' | '▇' | '▆' => "#",
        '▅' | '▄' | '▌' | '▍' | '▐' => "=",
        '▃' | '▂' | '▎' | '▏' => "-",
        '▁' => "_",
        '▀' | '▔' => "\"",
        '•' | '●' | '∙' => "*",
        '·' => ".",
        '←' => "<",
        '→' => ">",
        '↑' | '▲' => "^",
        '↓' | '▼' => "v",
        '✓' | '✔' => "x",
        '×' => "x",
        '…' => ".",
        'α' => "a",
        'Δ' => "d",
        'λ' => "l",
        '−' => "-",
        '\u{2800}' => " ",
        '\u{2801}'..='\u{28ff}' => "*",
        _ => "?",
    }
}
