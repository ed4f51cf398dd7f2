//! What flows into the UI ([`Msg`]), what a key means ([`Action`]) and what the UI asks the
//! outside world to do ([`Cmd`]). The loop in [`super::run`] is the only place that turns a
//! `Cmd` into I/O.

use std::path::PathBuf;

use crossterm::event::KeyEvent;

use crate::config::Config;
use crate::experiment::RunEvent;
use crate::record::diff::{Mismatch, RecordDiff};
use crate::record::Record;

/// Identifies one run started from the UI; events of any other run are ignored.
pub type RunId = u64;

/// One file of the experiments folder that looks like a record.
#[derive(Debug, Clone)]
pub struct ListEntry {
    pub path: PathBuf,
    /// The record, or why it could not be read.
    pub record: Result<Box<Record>, String>,
}

/// A sweep's folder in the experiments folder: its report (read from its records) and where
/// each point's record is.
#[derive(Debug, Clone)]
pub struct SweepEntry {
    pub dir: PathBuf,
    pub report: crate::report::sweep::SweepReport,
    /// Each point's record file, in the report's row order.
    pub records: Vec<PathBuf>,
}

/// Everything the UI reacts to, through one channel.
#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    Resize(u16, u16),
    Tick,
    /// An event of the run with this id.
    Worker(RunId, RunEvent),
    /// The experiments folder was read (answer to [`Cmd::ReloadList`]).
    Listed {
        records: Vec<ListEntry>,
        /// Config files offered by the new-run prompt.
        configs: Vec<PathBuf>,
        /// Open this record once listed (a run just saved it).
        open: Option<PathBuf>,
    },
    /// The two records compared (answer to [`Cmd::Diff`]).
    Diffed {
        marked: PathBuf,
        current: PathBuf,
        diff: Box<RecordDiff>,
    },
    /// A figure was written (answer to [`Cmd::Plot`]): the files, or why not.
    Plotted(Result<Vec<PathBuf>, String>),
    /// The sweeps in the experiments folder (sent after [`Msg::Listed`]).
    Sweeps(Vec<SweepEntry>),
    /// A sweep started from the prompt moved on: points done, running, failed, ETA.
    SweepProgress(String),
    /// A replay ended (answer to [`Cmd::Replay`]): the comparison, or why it failed.
    Replayed {
        path: PathBuf,
        outcome: Result<ReplayOutcome, String>,
    },
}

/// What a replay found, for the popup.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayOutcome {
    /// The new record, written beside the stored one.
    pub new_path: PathBuf,
    /// Values compared.
    pub compared: usize,
    /// Of which numbers.
    pub numbers: usize,
    /// The replay ran to the end.
    pub complete: bool,
    pub mismatches: Vec<Mismatch>,
}

/// What a key does. Keys are data ([`super::keys::KeyMap`]); views never look at key codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    Help,
    Back,
    Select,
    Up,
    Down,
    NextPane,
    PrevPane,
    RatioPrev,
    RatioNext,
    /// The next granularity of the pruning rows.
    Granularity,
    /// Every pruning method, then each in turn.
    Method,
    /// The pruning pane: block lesions / the pruning table.
    Lesions,
    Rerun,
    Cancel,
    Mark,
    Diff,
    Theme,
    NewRun,
    Filter,
    LogCounts,
    SpectrumSource,
    Replay,
    /// Writes the focused pane's figure (SVG and PNG) beside the record.
    Plot,
    /// Diff view: every result row, or only the changed ones.
    AllRows,
    /// Answers yes in a confirmation.
    Confirm,
    /// Answers no in a confirmation.
    Deny,
    /// Completes the prompt with the chosen suggestion.
    Complete,
}

impl Action {
    /// A word or two for the footer.
    pub fn label(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Help => "help",
            Action::Back => "back",
            Action::Select => "open/zoom",
            Action::Up => "up",
            Action::Down => "down",
            Action::NextPane => "next pane",
            Action::PrevPane => "prev pane",
            Action::RatioPrev => "ratio-",
            Action::RatioNext => "ratio+",
            Action::Granularity => "granularity",
            Action::Method => "method",
            Action::Lesions => "lesions",
            Action::Rerun => "rerun",
            Action::Cancel => "cancel run",
            Action::Mark => "mark",
            Action::Diff => "diff",
            Action::Theme => "theme",
            Action::NewRun => "new run",
            Action::Filter => "filter",
            Action::LogCounts => "log counts",
            Action::SpectrumSource => "dense/SLQ",
            Action::Replay => "replay",
            Action::Plot => "figure",
            Action::AllRows => "all/changed",
            Action::Confirm => "yes",
            Action::Deny => "no",
            Action::Complete => "complete",
        }
    }

    /// One line for the help popup.
    pub fn describe(self) -> &'static str {
        match self {
            Action::Quit => "quit (a running experiment is cancelled and saved)",
            Action::Help => "show or hide this help",
            Action::Back => "close the popup, leave zoom, back to the list",
            Action::Select => "open the selected record / zoom the focused pane",
            Action::Up => "move up in lists, scroll the focused pane",
            Action::Down => "move down in lists, scroll the focused pane",
            Action::NextPane => "focus the next pane",
            Action::PrevPane => "focus the previous pane",
            Action::RatioPrev => "previous pruning ratio (every pane follows)",
            Action::RatioNext => "next pruning ratio (every pane follows)",
            Action::Granularity => "pruning table: the next granularity (N:M, neuron, ...)",
            Action::Method => "pruning table: every method, then each in turn",
            Action::Lesions => "pruning pane: the block lesions / the table",
            Action::Rerun => "run the experiment's config again",
            Action::Cancel => "cancel the running experiment (asks first)",
            Action::Mark => "mark a record to diff against",
            Action::Diff => "diff the marked record against this one",
            Action::Theme => "cycle colour themes",
            Action::NewRun => "start a new run from a config file",
            Action::Filter => "filter the list by name",
            Action::LogCounts => "spectrum: linear / log counts",
            Action::SpectrumSource => "spectrum: dense eigenvalues / SLQ density",
            Action::Replay => "replay the record and compare",
            Action::Plot => "write the focused pane's figure beside the record",
            Action::AllRows => "diff: show every result row / only the changed ones",
            Action::Confirm => "yes",
            Action::Deny => "no",
            Action::Complete => "take the highlighted suggestion",
        }
    }
}

/// Where a run's config comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum RunSource {
    /// A config file (`n`).
    Path(PathBuf),
    /// The config kept inside a record (`r`).
    Config(Box<Config>),
}

impl RunSource {
    pub fn label(&self) -> String {
        match self {
            RunSource::Path(p) => p.display().to_string(),
            RunSource::Config(c) => c.name.clone(),
        }
    }
}

/// I/O the UI asks for; [`super::run`] performs it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    Quit,
    /// Read the experiments folder again; answered with [`Msg::Listed`].
    ReloadList {
        open: Option<PathBuf>,
    },
    StartRun {
        id: RunId,
        source: RunSource,
    },
    /// Set the cancel flag of the current run.
    Cancel,
    /// Compare two records; answered with [`Msg::Diffed`].
    Diff {
        marked: PathBuf,
        current: PathBuf,
        old: Box<Record>,
        new: Box<Record>,
    },
    /// Replay the record at `path` on a worker thread; answered with [`Msg::Replayed`].
    Replay {
        path: PathBuf,
    },
    /// Write the figure of `record` (saved at `path`) beside it as SVG and PNG; answered with
    /// [`Msg::Plotted`].
    Plot {
        path: PathBuf,
        record: Box<Record>,
        options: crate::plot::Options,
    },
}
