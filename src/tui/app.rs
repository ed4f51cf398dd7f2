//! The whole UI state and its one entry point, [`App::update`]: a message in, state changed,
//! maybe a [`Cmd`] out. No I/O and no drawing happen here.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::keys::{Context, KeyMap};
use super::live::{LiveRun, RunState};
use crate::curvature::SpectrumMethod;
use crate::record::diff::RecordDiff;
use crate::record::Record;

use super::msg::{Action, Cmd, ListEntry, Msg, ReplayOutcome, RunId, RunSource};
use super::shown::Shown;
use super::theme::{self, Theme};

#[derive(Debug, Clone, PartialEq)]
pub enum Screen {
    List,
    Experiment,
    /// The marked record against the current one.
    Diff(Box<DiffState>),
    /// A sweep's points and trend (index into [`App::sweeps`]).
    Sweep(usize),
}

/// The diff screen: what [`crate::record::diff::diff`] found, and how it is shown.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffState {
    pub marked: PathBuf,
    pub current: PathBuf,
    pub diff: RecordDiff,
    /// Show every result row, not only the changed ones.
    pub all: bool,
    /// First result row shown.
    pub scroll: usize,
    /// Esc goes back to the experiment view (else to the list).
    pub from_experiment: bool,
}

impl DiffState {
    /// The result rows shown: the changed ones, or all of them.
    pub fn rows(&self) -> Vec<&crate::record::diff::ResultRow> {
        self.diff
            .rows
            .iter()
            .filter(|r| self.all || r.changed)
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Model,
    Training,
    Spectrum,
    Pruning,
}

impl Pane {
    pub const ALL: [Pane; 4] = [Pane::Model, Pane::Training, Pane::Spectrum, Pane::Pruning];

    pub fn title(self) -> &'static str {
        match self {
            Pane::Model => "Model",
            Pane::Training => "Training",
            Pane::Spectrum => "Spectrum",
            Pane::Pruning => "Pruning",
        }
    }

    fn index(self) -> usize {
        Pane::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }

    pub fn next(self) -> Pane {
        Pane::ALL[(self.index() + 1) % 4]
    }

    pub fn prev(self) -> Pane {
        Pane::ALL[(self.index() + 3) % 4]
    }
}

/// A one-line text field with suggestions (new-run prompt).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prompt {
    pub input: String,
    /// Index into [`Prompt::suggestions`].
    pub highlighted: usize,
}

impl Prompt {
    /// The offered configs that contain the typed text.
    pub fn suggestions<'a>(&self, configs: &'a [PathBuf]) -> Vec<&'a Path> {
        configs
            .iter()
            .map(PathBuf::as_path)
            .filter(|p| p.display().to_string().contains(self.input.trim()))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Popup {
    Help {
        scroll: u16,
    },
    ConfirmCancel,
    NewRun(Prompt),
    /// What a replay found.
    Replay {
        path: PathBuf,
        outcome: Result<ReplayOutcome, String>,
        scroll: u16,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StatusLine {
    pub text: String,
    pub level: Level,
}

/// The experiments folder as listed, with the filter and the selection.
#[derive(Debug, Clone, Default)]
pub struct RecordList {
    pub entries: Vec<ListEntry>,
    pub filter: String,
    /// The filter field has the keyboard.
    pub filtering: bool,
    /// Index into [`App::list_rows`].
    pub selected: usize,
}

/// A row of the list: the run in progress (on top) or a record file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListRow {
    Live,
    /// A sweep folder (index into [`App::sweeps`]); its points are listed under it.
    Sweep(usize),
    Entry(usize),
}

#[derive(Debug, Clone)]
pub struct Opened {
    pub path: PathBuf,
    pub record: Box<crate::record::Record>,
}

/// What [`App::new`] needs.
pub struct Setup {
    pub dir: PathBuf,
    pub themes: Vec<Theme>,
    pub theme_index: usize,
    pub keys: KeyMap,
    pub ascii: bool,
    /// Problems found while starting (bad theme file, bad key file), shown in the status line.
    pub warnings: Vec<String>,
}

impl Setup {
    /// Built-in themes and keys (tests, benches).
    pub fn defaults(dir: PathBuf) -> Setup {
        let (themes, warnings) = theme::load_all(None);
        Setup {
            dir,
            themes,
            theme_index: 0,
            keys: KeyMap::default(),
            ascii: false,
            warnings,
        }
    }
}

pub struct App {
    pub screen: Screen,
    pub list: RecordList,
    pub opened: Option<Opened>,
    pub live: Option<LiveRun>,
    /// The experiment view shows the live run rather than `opened`.
    pub viewing_live: bool,
    pub focus: Pane,
    pub zoomed: bool,
    /// Selected row of the pruning table; every pane follows it.
    pub ratio: usize,
    /// The pruning rows shown: one granularity (`g` cycles) and one method or all (`M`).
    pub granularity: Option<crate::config::Granularity>,
    pub method: Option<crate::config::PruneMethod>,
    /// The pruning pane shows the block lesions instead of the pruning table (`b`).
    pub lesions: bool,
    /// First row shown in the model table.
    pub model_scroll: usize,
    pub popup: Option<Popup>,
    pub themes: Vec<Theme>,
    pub theme_index: usize,
    pub keys: KeyMap,
    pub ascii: bool,
    pub log_counts: bool,
    pub marked: Option<PathBuf>,
    /// The record being replayed on a worker thread.
    pub replaying: Option<PathBuf>,
    pub status: Option<StatusLine>,
    pub dir: PathBuf,
    /// Config files the new-run prompt offers.
    pub configs: Vec<PathBuf>,
    pub size: (u16, u16),
    /// Sweep folders in `dir`, their reports read from their records.
    pub sweeps: Vec<crate::tui::msg::SweepEntry>,
    /// The selected point of the sweep screen.
    pub sweep_point: usize,
    next_run: RunId,
}

impl App {
    pub fn new(setup: Setup) -> App {
        let mut keys = setup.keys;
        keys.ascii = setup.ascii;
        let themes = if setup.themes.is_empty() {
            vec![Theme::plain_monochrome(theme::MONOCHROME)]
        } else {
            setup.themes
        };
        let status = (!setup.warnings.is_empty()).then(|| StatusLine {
            text: setup.warnings.join("; "),
            level: Level::Warn,
        });
        App {
            screen: Screen::List,
            list: RecordList::default(),
            opened: None,
            live: None,
            viewing_live: false,
            focus: Pane::Model,
            zoomed: false,
            ratio: 0,
            granularity: None,
            method: None,
            lesions: false,
            model_scroll: 0,
            popup: None,
            theme_index: setup.theme_index.min(themes.len() - 1),
            themes,
            keys,
            ascii: setup.ascii,
            log_counts: false,
            marked: None,
            replaying: None,
            status,
            dir: setup.dir,
            configs: Vec::new(),
            size: (0, 0),
            sweeps: Vec::new(),
            sweep_point: 0,
            next_run: 1,
        }
    }

    pub fn theme(&self) -> &Theme {
        &self.themes[self.theme_index]
    }

    /// What the experiment view shows.
    pub fn shown(&self) -> Option<Shown<'_>> {
        let filter = crate::tui::shown::RowFilter {
            granularity: self.granularity,
            method: self.method,
        };
        if self.viewing_live {
            if let Some(l) = &self.live {
                return Some(Shown::Live(l, filter));
            }
        }
        self.opened.as_ref().map(|o| Shown::Record {
            path: &o.path,
            record: &o.record,
            filter,
        })
    }

    /// Rows of the list after the filter: the live run first, then records newest first.
    pub fn list_rows(&self) -> Vec<ListRow> {
        let needle = self.list.filter.to_lowercase();
        let live = self.live.as_ref();
        let live = live.filter(|l| needle.is_empty() || l.name.to_lowercase().contains(&needle));
        let sweeps =
            self.sweeps.iter().enumerate().filter(|(_, s)| {
                needle.is_empty() || s.report.name.to_lowercase().contains(&needle)
            });
        live.map(|_| ListRow::Live)
            .into_iter()
            .chain(sweeps.map(|(i, _)| ListRow::Sweep(i)))
            .chain(
                self.list
                    .entries
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| {
                        needle.is_empty() || {
                            let name = e.record.as_ref().map(|r| r.config.name.to_lowercase());
                            name.is_ok_and(|n| n.contains(&needle))
                                || e.path
                                    .display()
                                    .to_string()
                                    .to_lowercase()
                                    .contains(&needle)
                        }
                    })
                    .map(|(i, _)| ListRow::Entry(i)),
            )
            .collect()
    }

    pub fn selected_row(&self) -> Option<ListRow> {
        self.list_rows().get(self.list.selected).copied()
    }

    pub fn is_running(&self) -> bool {
        self.live.as_ref().is_some_and(LiveRun::is_active)
    }

    /// Where keys are read now.
    pub fn context(&self) -> Context {
        match &self.popup {
            Some(Popup::ConfirmCancel) => Context::Confirm,
            Some(Popup::NewRun(_)) => Context::Prompt,
            Some(Popup::Help { .. } | Popup::Replay { .. }) => Context::Global,
            None if self.list.filtering && self.screen == Screen::List => Context::Prompt,
            None => Context::Global,
        }
    }

    pub fn update(&mut self, msg: Msg) -> Option<Cmd> {
        match msg {
            Msg::Key(k) => self.on_key(k),
            Msg::Resize(w, h) => {
                self.size = (w, h);
                None
            }
            Msg::Tick => None,
            Msg::Worker(id, ev) => self.on_worker(id, ev),
            Msg::Listed {
                records,
                configs,
                open,
            } => {
                self.on_listed(records, configs, open);
                None
            }
            Msg::Diffed {
                marked,
                current,
                diff,
            } => {
                self.on_diffed(marked, current, *diff);
                None
            }
            Msg::Replayed { path, outcome } => self.on_replayed(path, outcome),
            Msg::Plotted(Ok(paths)) => {
                let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                self.say(Level::Info, format!("figure: {}", names.join(", ")));
                None
            }
            Msg::Plotted(Err(e)) => {
                self.say(Level::Error, format!("no figure: {e}"));
                None
            }
            Msg::Sweeps(sweeps) => {
                self.sweeps = sweeps;
                if let Screen::Sweep(i) = self.screen {
                    if i >= self.sweeps.len() {
                        self.screen = Screen::List;
                    }
                }
                None
            }
            Msg::SweepProgress(text) => {
                self.say(Level::Info, text);
                None
            }
        }
    }

    fn on_key(&mut self, k: KeyEvent) -> Option<Cmd> {
        self.status = None;
        let ctx = self.context();
        match self.keys.action(ctx, &k) {
            Some(a) => self.apply(a),
            None if ctx == Context::Prompt => {
                self.edit_text(k);
                None
            }
            None => None,
        }
    }

    /// Typing into the focused text field.
    fn edit_text(&mut self, k: KeyEvent) {
        let text = match &mut self.popup {
            Some(Popup::NewRun(p)) => {
                p.highlighted = 0;
                &mut p.input
            }
            _ => {
                self.list.selected = 0;
                &mut self.list.filter
            }
        };
        match k.code {
            KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => text.push(c),
            KeyCode::Backspace => {
                text.pop();
            }
            _ => {}
        }
    }

    fn say(&mut self, level: Level, text: impl Into<String>) {
        self.status = Some(StatusLine {
            text: text.into(),
            level,
        });
    }

    /// Does what `a` means here. Public so tests and macros can drive the app by action.
    pub fn apply(&mut self, a: Action) -> Option<Cmd> {
        if a == Action::Quit {
            return Some(Cmd::Quit);
        }
        match self.popup.take() {
            Some(p) => self.apply_popup(p, a),
            None if self.list.filtering && self.screen == Screen::List => {
                match a {
                    Action::Select => self.list.filtering = false,
                    Action::Back => {
                        self.list.filtering = false;
                        self.list.filter.clear();
                    }
                    Action::Up | Action::Down => self.move_list(a),
                    _ => {}
                }
                None
            }
            None => self.apply_global(a),
        }
    }

    fn apply_popup(&mut self, popup: Popup, a: Action) -> Option<Cmd> {
        match (popup, a) {
            (Popup::Help { .. }, Action::Help | Action::Back) => None,
            (Popup::Help { scroll }, Action::Up) => self.reopen(Popup::Help {
                scroll: scroll.saturating_sub(1),
            }),
            (Popup::Help { scroll }, Action::Down) => self.reopen(Popup::Help {
                scroll: scroll.saturating_add(1),
            }),
            (Popup::Replay { .. }, Action::Back) => None,
            (
                Popup::Replay {
                    path,
                    outcome,
                    scroll,
                },
                Action::Up | Action::Down,
            ) => {
                let scroll = if a == Action::Up {
                    scroll.saturating_sub(1)
                } else {
                    scroll.saturating_add(1)
                };
                self.reopen(Popup::Replay {
                    path,
                    outcome,
                    scroll,
                })
            }
            (Popup::ConfirmCancel, Action::Confirm) => {
                if let Some(l) = self.live.as_mut().filter(|l| l.state == RunState::Running) {
                    l.state = RunState::Cancelling;
                    return Some(Cmd::Cancel);
                }
                None
            }
            (Popup::ConfirmCancel, Action::Deny | Action::Back) => None,
            (Popup::NewRun(_), Action::Back) => None,
            (Popup::NewRun(mut p), Action::Up) => {
                p.highlighted = p.highlighted.saturating_sub(1);
                self.reopen(Popup::NewRun(p))
            }
            (Popup::NewRun(mut p), Action::Down) => {
                let n = p.suggestions(&self.configs).len();
                p.highlighted = (p.highlighted + 1).min(n.saturating_sub(1));
                self.reopen(Popup::NewRun(p))
            }
            (Popup::NewRun(mut p), Action::Complete) => {
                if let Some(s) = p.suggestions(&self.configs).get(p.highlighted) {
                    p.input = s.display().to_string();
                }
                self.reopen(Popup::NewRun(p))
            }
            (Popup::NewRun(p), Action::Select) => {
                let chosen = p
                    .suggestions(&self.configs)
                    .get(p.highlighted)
                    .map(|s| s.to_path_buf())
                    .or_else(|| {
                        (!p.input.trim().is_empty()).then(|| PathBuf::from(p.input.trim()))
                    });
                match chosen {
                    Some(path) => self.start_run(RunSource::Path(path)),
                    None => {
                        self.say(Level::Warn, "type the path of a config file");
                        self.reopen(Popup::NewRun(p))
                    }
                }
            }
            // any other key leaves the popup as it was
            (p, _) => self.reopen(p),
        }
    }

    fn reopen(&mut self, p: Popup) -> Option<Cmd> {
        self.popup = Some(p);
        None
    }

    fn apply_global(&mut self, a: Action) -> Option<Cmd> {
        match a {
            Action::Help => self.reopen(Popup::Help { scroll: 0 }),
            Action::Theme => {
                self.theme_index = (self.theme_index + 1) % self.themes.len();
                let name = self.theme().name.clone();
                self.say(Level::Info, format!("theme: {name}"));
                None
            }
            Action::NewRun => self.reopen(Popup::NewRun(Prompt::default())),
            Action::Cancel => {
                if self
                    .live
                    .as_ref()
                    .is_some_and(|l| l.state == RunState::Running)
                {
                    self.reopen(Popup::ConfirmCancel)
                } else {
                    self.say(Level::Info, "no run in progress");
                    None
                }
            }
            Action::Replay => self.replay(),
            Action::Rerun if self.is_running() => {
                self.say(Level::Warn, "a run is already going; c cancels it");
                None
            }
            _ => match self.screen {
                Screen::List => self.apply_list(a),
                Screen::Experiment => self.apply_experiment(a),
                Screen::Diff(_) => {
                    self.apply_diff(a);
                    None
                }
                Screen::Sweep(i) => self.apply_sweep(i, a),
            },
        }
    }

    fn move_list(&mut self, a: Action) {
        let n = self.list_rows().len();
        self.list.selected = match a {
            Action::Up => self.list.selected.saturating_sub(1),
            _ => (self.list.selected + 1).min(n.saturating_sub(1)),
        };
    }

    fn selected_path(&self) -> Option<PathBuf> {
        match self.selected_row()? {
            ListRow::Entry(i) => Some(self.list.entries[i].path.clone()),
            ListRow::Live | ListRow::Sweep(_) => None,
        }
    }

    fn apply_list(&mut self, a: Action) -> Option<Cmd> {
        match a {
            Action::Up | Action::Down => self.move_list(a),
            Action::Filter => self.list.filtering = true,
            Action::Back => self.list.filter.clear(),
            Action::Select => match self.selected_row() {
                Some(ListRow::Live) => {
                    self.viewing_live = true;
                    self.enter_experiment(0);
                }
                Some(ListRow::Entry(i)) => self.open_entry(i),
                Some(ListRow::Sweep(i)) => {
                    self.screen = Screen::Sweep(i);
                    self.sweep_point = 0;
                    self.ratio = 0;
                }
                None => self.say(Level::Info, "no record here yet: n starts a run"),
            },
            Action::Mark => self.toggle_mark(self.selected_path()),
            Action::Diff => return self.diff(self.selected_path()),
            Action::Rerun => {
                let cfg = match self.selected_row() {
                    Some(ListRow::Entry(i)) => self.list.entries[i].record.as_ref().ok(),
                    _ => None,
                };
                if let Some(r) = cfg {
                    let source = RunSource::Config(Box::new(r.config.clone()));
                    return self.start_run(source);
                }
            }
            _ => {}
        }
        None
    }

    /// The sweep screen: ↑/↓ choose a point, ←/→ the ratio of the chart's S, Enter opens the
    /// point's record, Esc goes back to the list.
    fn apply_sweep(&mut self, i: usize, a: Action) -> Option<Cmd> {
        let Some(sw) = self.sweeps.get(i) else {
            self.screen = Screen::List;
            return None;
        };
        let points = sw.report.rows.len();
        let ratios = sw
            .report
            .metrics
            .iter()
            .filter(|m| m.starts_with("S@"))
            .count();
        match a {
            Action::Up => self.sweep_point = self.sweep_point.saturating_sub(1),
            Action::Down => self.sweep_point = (self.sweep_point + 1).min(points.saturating_sub(1)),
            Action::RatioPrev => self.ratio = self.ratio.saturating_sub(1),
            Action::RatioNext => self.ratio = (self.ratio + 1).min(ratios.saturating_sub(1)),
            Action::Back => self.screen = Screen::List,
            Action::Select => {
                let path = sw.records.get(self.sweep_point).cloned();
                match path.map(|p| (crate::record::load(&p), p)) {
                    Some((Ok(record), path)) => {
                        self.opened = Some(Opened {
                            path,
                            record: Box::new(record),
                        });
                        self.viewing_live = false;
                        let n = self.shown().map_or(0, |s| s.ratio_count());
                        self.enter_experiment(n.saturating_sub(1) / 2);
                    }
                    Some((Err(e), _)) => self.say(Level::Warn, e.to_string()),
                    None => self.say(Level::Info, "no point here"),
                }
            }
            _ => {}
        }
        None
    }

    fn open_entry(&mut self, i: usize) {
        let e = &self.list.entries[i];
        match &e.record {
            Ok(r) => {
                self.opened = Some(Opened {
                    path: e.path.clone(),
                    record: r.clone(),
                });
                self.viewing_live = false;
                let n = self.shown().map_or(0, |s| s.ratio_count());
                self.enter_experiment(n.saturating_sub(1) / 2);
            }
            Err(msg) => {
                let msg = msg.clone();
                self.say(Level::Error, msg)
            }
        }
    }

    fn enter_experiment(&mut self, ratio: usize) {
        self.screen = Screen::Experiment;
        // several granularities: show the first; every method at once
        self.method = None;
        self.granularity = None;
        self.lesions = false;
        let gs = self.shown().map(|s| s.granularities()).unwrap_or_default();
        if gs.len() > 1 {
            self.granularity = gs.first().copied();
            let n = self.shown().map_or(0, |s| s.ratio_count());
            self.ratio = n.saturating_sub(1) / 2;
        } else {
            self.ratio = ratio;
        }
        self.zoomed = false;
        self.model_scroll = 0;
    }

    fn apply_experiment(&mut self, a: Action) -> Option<Cmd> {
        let n = self.shown().map_or(0, |s| s.ratio_count());
        match a {
            Action::RatioPrev => self.ratio = self.ratio.saturating_sub(1),
            Action::RatioNext => self.ratio = (self.ratio + 1).min(n.saturating_sub(1)),
            Action::NextPane => self.focus = self.focus.next(),
            Action::PrevPane => self.focus = self.focus.prev(),
            Action::Select => self.zoomed = !self.zoomed,
            Action::Back if self.zoomed => self.zoomed = false,
            Action::Back => self.screen = Screen::List,
            Action::Up | Action::Down => match self.focus {
                Pane::Pruning => {
                    let step = if a == Action::Up {
                        Action::RatioPrev
                    } else {
                        Action::RatioNext
                    };
                    return self.apply_experiment(step);
                }
                Pane::Model => {
                    let rows = self
                        .shown()
                        .and_then(|s| s.model())
                        .map_or(0, |m| m.layers.len());
                    self.model_scroll = if a == Action::Up {
                        self.model_scroll.saturating_sub(1)
                    } else {
                        (self.model_scroll + 1).min(rows.saturating_sub(1))
                    };
                }
                _ => {}
            },
            Action::Granularity => self.cycle_granularity(),
            Action::Method => self.cycle_method(),
            Action::Lesions => {
                let has = self
                    .shown()
                    .is_some_and(|s| s.variant(crate::model::Variant::Residual).lesions.is_some());
                if has {
                    self.lesions = !self.lesions;
                    self.focus = Pane::Pruning;
                } else {
                    self.say(
                        Level::Info,
                        "no block lesions here: they are measured with \"block\" among \
                         prune.granularities (depth >= 2)",
                    );
                }
            }
            Action::LogCounts => self.log_counts = !self.log_counts,
            Action::SpectrumSource => {
                // a record holds one of the two (one hessian method for the pair)
                let lanczos = self
                    .shown()
                    .is_some_and(|s| s.spectrum_method() == Some(SpectrumMethod::Lanczos));
                self.say(
                    Level::Info,
                    if lanczos {
                        "SLQ only: this record has no dense spectrum"
                    } else {
                        "dense only: this record has no SLQ density"
                    },
                );
            }
            Action::Mark => self.toggle_mark(self.opened_path()),
            Action::Diff => return self.diff(self.opened_path()),
            Action::Plot => return self.plot(),
            Action::Rerun => match self.shown().and_then(|s| s.record()) {
                Some(r) => {
                    let source = RunSource::Config(Box::new(r.config.clone()));
                    return self.start_run(source);
                }
                None => self.say(Level::Info, "the run is not saved yet"),
            },
            _ => {}
        }
        None
    }

    /// `g`: the next granularity of the shown rows (wrapping); the ratio stays in range.
    fn cycle_granularity(&mut self) {
        let gs = self.shown().map(|s| s.granularities()).unwrap_or_default();
        if gs.len() < 2 {
            self.say(Level::Info, "one granularity in this record");
            return;
        }
        let at = self
            .granularity
            .and_then(|g| gs.iter().position(|x| *x == g));
        self.granularity = Some(gs[at.map_or(0, |i| (i + 1) % gs.len())]);
        self.clamp_ratio();
    }

    /// `M`: every method, then each in turn.
    fn cycle_method(&mut self) {
        let ms = self.shown().map(|s| s.methods()).unwrap_or_default();
        if ms.len() < 2 {
            self.say(Level::Info, "one pruning method in this record");
            return;
        }
        self.method = match self.method.and_then(|m| ms.iter().position(|x| *x == m)) {
            None => ms.first().copied(),
            Some(i) if i + 1 < ms.len() => Some(ms[i + 1]),
            Some(_) => None,
        };
        self.clamp_ratio();
    }

    fn clamp_ratio(&mut self) {
        let n = self.shown().map_or(0, |s| s.ratio_count());
        self.ratio = self.ratio.min(n.saturating_sub(1));
    }

    /// `p`: the focused pane's figure, drawn as the pane shows it (log counts included).
    fn plot(&mut self) -> Option<Cmd> {
        use crate::plot::{Kind, Options};
        let kind = match self.focus {
            Pane::Training => Kind::Training,
            Pane::Spectrum => Kind::Spectrum,
            Pane::Pruning => Kind::Sensitivity,
            Pane::Model => {
                self.say(
                    Level::Info,
                    "the model pane has no figure; focus training, spectrum or pruning",
                );
                return None;
            }
        };
        let Some(Shown::Record { path, record, .. }) = self.shown() else {
            self.say(Level::Info, "the run is not saved yet");
            return None;
        };
        let options = Options {
            log: kind == Kind::Spectrum && self.log_counts,
            ..Options::new(kind)
        };
        Some(Cmd::Plot {
            path: path.to_path_buf(),
            record: Box::new(record.clone()),
            options,
        })
    }

    fn opened_path(&self) -> Option<PathBuf> {
        match self.shown()? {
            Shown::Record { path, .. } => Some(path.to_path_buf()),
            Shown::Live(..) => None,
        }
    }

    fn toggle_mark(&mut self, path: Option<PathBuf>) {
        let Some(path) = path else { return };
        if self.marked.as_ref() == Some(&path) {
            self.marked = None;
            self.say(Level::Info, "mark removed");
        } else {
            self.say(Level::Info, format!("marked {}", path.display()));
            self.marked = Some(path);
        }
    }

    /// The record saved at `path`, as listed or opened.
    fn record_at(&self, path: &Path) -> Option<&Record> {
        let listed = self
            .list
            .entries
            .iter()
            .find(|e| e.path == path)
            .and_then(|e| e.record.as_deref().ok());
        let opened = self
            .opened
            .as_ref()
            .filter(|o| o.path == path)
            .map(|o| &*o.record);
        opened.or(listed)
    }

    fn diff(&mut self, current: Option<PathBuf>) -> Option<Cmd> {
        match (self.marked.clone(), current) {
            (None, _) => self.say(Level::Info, "mark a record with m first, then d on another"),
            (Some(_), None) => self.say(Level::Info, "open or select a saved record to diff"),
            (Some(m), Some(c)) if m == c => {
                self.say(Level::Info, "that is the marked record; pick another")
            }
            (Some(marked), Some(current)) => {
                match (self.record_at(&marked), self.record_at(&current)) {
                    (Some(old), Some(new)) => {
                        return Some(Cmd::Diff {
                            old: Box::new(old.clone()),
                            new: Box::new(new.clone()),
                            marked,
                            current,
                        })
                    }
                    (None, _) => self.say(
                        Level::Warn,
                        format!("the marked record {} is gone", marked.display()),
                    ),
                    (_, None) => self.say(
                        Level::Warn,
                        format!("{} could not be read", current.display()),
                    ),
                }
            }
        }
        None
    }

    fn on_diffed(&mut self, marked: PathBuf, current: PathBuf, diff: RecordDiff) {
        let changed = diff.changed_rows().count();
        self.say(
            Level::Info,
            format!(
                "{} config changes, {changed} of {} results changed",
                diff.config.len(),
                diff.rows.len()
            ),
        );
        let from_experiment = self.screen == Screen::Experiment;
        self.screen = Screen::Diff(Box::new(DiffState {
            marked,
            current,
            diff,
            all: false,
            scroll: 0,
            from_experiment,
        }));
    }

    fn apply_diff(&mut self, a: Action) {
        let Screen::Diff(d) = &mut self.screen else {
            return;
        };
        match a {
            Action::Back => {
                self.screen = if d.from_experiment && self.opened.is_some() {
                    Screen::Experiment
                } else {
                    Screen::List
                };
            }
            Action::AllRows => {
                d.all = !d.all;
                d.scroll = 0;
            }
            Action::Up => d.scroll = d.scroll.saturating_sub(1),
            Action::Down => {
                let n = d.rows().len();
                d.scroll = (d.scroll + 1).min(n.saturating_sub(1));
            }
            _ => {}
        }
    }

    fn replay(&mut self) -> Option<Cmd> {
        let path = match self.screen {
            Screen::Experiment => self.opened_path(),
            _ => None,
        };
        let Some(path) = path else {
            self.say(Level::Info, "open a saved record to replay it");
            return None;
        };
        if let Some(p) = &self.replaying {
            let text = format!("already replaying {}", p.display());
            self.say(Level::Warn, text);
            return None;
        }
        if self.is_running() {
            self.say(Level::Warn, "a run is going; replay once it ends");
            return None;
        }
        self.say(Level::Info, format!("replaying {}...", path.display()));
        self.replaying = Some(path.clone());
        Some(Cmd::Replay { path })
    }

    fn on_replayed(
        &mut self,
        path: PathBuf,
        outcome: Result<ReplayOutcome, String>,
    ) -> Option<Cmd> {
        self.replaying = None;
        let saved = outcome.is_ok();
        match &outcome {
            Ok(o) if o.mismatches.is_empty() => self.say(
                Level::Info,
                format!("replay: all {} values match", o.compared),
            ),
            Ok(o) => self.say(
                Level::Warn,
                format!(
                    "replay: {} of {} values differ",
                    o.mismatches.len(),
                    o.compared
                ),
            ),
            Err(e) => self.say(Level::Error, format!("replay failed: {e}")),
        }
        self.popup = Some(Popup::Replay {
            path,
            outcome,
            scroll: 0,
        });
        saved.then_some(Cmd::ReloadList { open: None })
    }

    fn start_run(&mut self, source: RunSource) -> Option<Cmd> {
        if self.is_running() {
            self.say(Level::Warn, "a run is already going; c cancels it");
            return None;
        }
        if self.replaying.is_some() {
            self.say(Level::Warn, "a replay is going; run once it ends");
            return None;
        }
        let id = self.next_run;
        self.next_run += 1;
        self.live = Some(LiveRun::new(id, source.label()));
        self.viewing_live = true;
        self.popup = None;
        self.enter_experiment(0);
        self.say(Level::Info, format!("started {}", source.label()));
        Some(Cmd::StartRun { id, source })
    }

    fn on_worker(&mut self, id: RunId, ev: crate::experiment::RunEvent) -> Option<Cmd> {
        let live = self.live.as_mut().filter(|l| l.id == id)?;
        live.apply(ev, Instant::now());
        match &live.state {
            RunState::Finished(path) => {
                let path = path.clone();
                self.say(Level::Info, format!("saved {}", path.display()));
                Some(Cmd::ReloadList {
                    open: self.viewing_live.then_some(path),
                })
            }
            RunState::Failed(msg) => {
                let msg = format!("run failed: {msg}");
                self.say(Level::Error, msg);
                None
            }
            _ => None,
        }
    }

    fn on_listed(&mut self, records: Vec<ListEntry>, configs: Vec<PathBuf>, open: Option<PathBuf>) {
        let keep = self.selected_path();
        self.list.entries = records;
        self.configs = configs;
        if self
            .live
            .as_ref()
            .is_some_and(|l| matches!(l.state, RunState::Finished(_)))
        {
            self.live = None;
        }
        let rows = self.list_rows();
        let find = |p: &Path| {
            rows.iter()
                .position(|r| matches!(r, ListRow::Entry(i) if self.list.entries[*i].path == p))
        };
        self.list.selected = keep
            .as_deref()
            .and_then(find)
            .unwrap_or(0)
            .min(rows.len().saturating_sub(1));
        if let Some(p) = open {
            if let Some(i) = self.list.entries.iter().position(|e| e.path == p) {
                self.list.selected = find(&p).unwrap_or(self.list.selected);
                self.open_entry(i);
            }
        }
        if self.viewing_live && self.live.is_none() {
            self.viewing_live = false;
        }
    }
}
