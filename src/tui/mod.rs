//! The notebook: `resprune-tui` with no subcommand. It reads records and live run events,
//! draws, and sends commands; it never does math and never blocks.
//!
//! ```text
//! input thread ─┐
//! worker ───────┴─> mpsc::Receiver<Msg> ─> App::update ─> Cmd (I/O here) ─> draw(&App)
//! ```

pub mod app;
pub mod keys;
pub mod live;
pub mod msg;
pub mod shown;
pub mod sweep_view;
pub mod theme;
pub mod views;
pub mod worker;

use std::io::{IsTerminal, Stdout};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use crossterm::event::{self, Event, KeyEventKind};
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

pub use app::{App, Setup};
pub use msg::{Action, Cmd, ListEntry, Msg, ReplayOutcome, RunSource};

/// Redraw period while a run is live (gauges, ETA).
const TICK_LIVE: Duration = Duration::from_millis(250);
/// Wake-up period when idle: only to notice SIGTERM.
const TICK_IDLE: Duration = Duration::from_millis(1000);

/// Command-line options of the notebook.
#[derive(Debug, Clone)]
pub struct Options {
    /// The experiments folder: records listed, new records saved, configs offered.
    pub dir: PathBuf,
    pub theme: Option<String>,
    pub ascii: bool,
}

/// Where the user's key overrides live: `<config dir>/keys.toml`.
pub fn user_keys_file() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "resprune-tui").map(|d| d.config_dir().join("keys.toml"))
}

/// Themes, keys and warnings from the user's config dir, ready for [`App::new`].
pub fn setup(opts: &Options) -> Setup {
    let (themes, mut warnings) = theme::load_all(theme::user_dir().as_deref());
    let (theme_index, w) = theme::choose(&themes, opts.theme.as_deref(), theme::no_color_env());
    warnings.extend(w);
    let mut keys = keys::KeyMap::default();
    if let Some(path) = user_keys_file().filter(|p| p.is_file()) {
        let applied = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|src| keys.apply_overrides(&src));
        if let Err(e) = applied {
            keys = keys::KeyMap::default();
            warnings.push(format!("keys {}: {e}; using the defaults", path.display()));
        }
    }
    Setup {
        dir: opts.dir.clone(),
        themes,
        theme_index,
        keys,
        ascii: opts.ascii,
        warnings,
    }
}

/// Runs the notebook until the user quits or SIGTERM/SIGHUP arrives.
pub fn run(opts: Options) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "the notebook needs a terminal; for scripts use `resprune-tui run CONFIG`, \
             `show RECORD` or `list`"
        );
    }
    let mut app = App::new(setup(&opts));
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGINT,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    install_panic_hook();
    let mut guard = TerminalGuard::enter()?;
    let result = event_loop(&mut guard.terminal, &mut app, &opts.dir, &stop);
    drop(guard);
    result
}

/// Raw mode and the alternate screen while alive; restored on drop (quit, error, unwinding).
struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

static ACTIVE: AtomicBool = AtomicBool::new(false);

impl TerminalGuard {
    fn enter() -> anyhow::Result<TerminalGuard> {
        terminal::enable_raw_mode().context("switching the terminal to raw mode")?;
        ACTIVE.store(true, Ordering::SeqCst);
        let mut out = std::io::stdout();
        if let Err(e) = crossterm::execute!(out, EnterAlternateScreen) {
            restore_terminal();
            return Err(e).context("entering the alternate screen");
        }
        let terminal = Terminal::new(CrosstermBackend::new(out));
        match terminal {
            Ok(mut terminal) => {
                let _ = terminal.hide_cursor();
                let _ = terminal.clear();
                Ok(TerminalGuard { terminal })
            }
            Err(e) => {
                restore_terminal();
                Err(e).context("opening the terminal")
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Leaves raw mode and the alternate screen, once, from wherever it is called.
fn restore_terminal() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = terminal::disable_raw_mode();
        let _ = crossterm::execute!(
            std::io::stdout(),
            LeaveAlternateScreen,
            crossterm::cursor::Show
        );
    }
}

/// A panic on the UI thread restores the terminal, then prints as usual. A panic on a worker
/// thread is reported by the worker as a failed run instead (printing would tear the screen).
fn install_panic_hook() {
    let ui = std::thread::current().id();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == ui || !ACTIVE.load(Ordering::SeqCst) {
            restore_terminal();
            previous(info);
        }
    }));
}

fn spawn_input(tx: Sender<Msg>, stop: Arc<AtomicBool>) {
    std::thread::Builder::new()
        .name("resprune-input".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match event::poll(Duration::from_millis(250)) {
                    Ok(false) => continue,
                    Ok(true) => {}
                    Err(_) => break,
                }
                let msg = match event::read() {
                    Ok(Event::Key(k)) if k.kind != KeyEventKind::Release => Msg::Key(k),
                    Ok(Event::Resize(w, h)) => Msg::Resize(w, h),
                    Ok(_) => continue,
                    Err(_) => break,
                };
                if tx.send(msg).is_err() {
                    break;
                }
            }
        })
        .expect("spawning the input thread");
}

/// Record files and config files of the experiments folder.
pub fn read_dir(dir: &Path) -> (Vec<ListEntry>, Vec<PathBuf>) {
    let records: Vec<ListEntry> = crate::record::list(dir)
        .into_iter()
        .map(|(path, r)| ListEntry {
            path,
            record: r.map(Box::new).map_err(|e| e.to_string()),
        })
        .collect();
    let mut configs: Vec<PathBuf> = Vec::new();
    for folder in [dir, Path::new("experiments")] {
        let mut found: Vec<PathBuf> = std::fs::read_dir(folder)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .filter(|p| !records.iter().any(|r| &r.path == p))
            .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| !t.contains("schema_version")))
            .filter(|p| !configs.contains(p))
            .collect();
        found.sort();
        configs.extend(found);
    }
    (records, configs)
}

/// Performs [`Cmd::Diff`]: the comparison of two records, as the message that answers it.
pub fn diff_msg(
    marked: PathBuf,
    current: PathBuf,
    old: &crate::record::Record,
    new: &crate::record::Record,
) -> Msg {
    Msg::Diffed {
        marked,
        current,
        diff: Box::new(crate::record::diff::diff(old, new)),
    }
}

/// Performs [`Cmd::Plot`]: the figure written beside the record, as the message that answers
/// it.
pub fn plot_msg(
    path: &Path,
    record: &crate::record::Record,
    options: &crate::plot::Options,
) -> Msg {
    Msg::Plotted(crate::plot::write_beside(path, record, options).map_err(|e| e.to_string()))
}

fn event_loop(
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
    app: &mut App,
    dir: &Path,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel::<Msg>();
    let input_stop = Arc::new(AtomicBool::new(false));
    spawn_input(tx.clone(), Arc::clone(&input_stop));
    let mut worker: Option<worker::RunHandle> = None;
    let mut replayer: Option<worker::RunHandle> = None;
    let mut pending = vec![Cmd::ReloadList { open: None }];
    let mut dirty = true;
    let result = loop {
        // perform what the last messages asked for
        let mut quit = false;
        for cmd in pending.drain(..) {
            match cmd {
                Cmd::Quit => quit = true,
                Cmd::ReloadList { open } => {
                    let (records, configs) = read_dir(dir);
                    let _ = tx.send(Msg::Listed {
                        records,
                        configs,
                        open,
                    });
                    let _ = tx.send(Msg::Sweeps(sweep_view::read_sweeps(dir)));
                }
                Cmd::StartRun { id, source } => {
                    worker = Some(worker::spawn(source, dir.to_path_buf(), id, tx.clone()));
                }
                Cmd::Cancel => {
                    if let Some(w) = &worker {
                        w.cancel();
                    }
                }
                Cmd::Diff {
                    marked,
                    current,
                    old,
                    new,
                } => {
                    let _ = tx.send(diff_msg(marked, current, &old, &new));
                }
                Cmd::Replay { path } => {
                    replayer = Some(worker::spawn_replay(path, tx.clone()));
                }
                Cmd::Plot {
                    path,
                    record,
                    options,
                } => {
                    let _ = tx.send(plot_msg(&path, &record, &options));
                }
            }
        }
        if quit || stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        if dirty {
            if let Err(e) = terminal.draw(|f| views::draw(f, app)) {
                break Err(e).context("drawing");
            }
            dirty = false;
        }
        let tick = if app.is_running() {
            TICK_LIVE
        } else {
            TICK_IDLE
        };
        let first = match rx.recv_timeout(tick) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => Msg::Tick,
            Err(RecvTimeoutError::Disconnected) => break Ok(()),
        };
        // drain everything pending, draw once
        for msg in std::iter::once(first).chain(rx.try_iter()) {
            let tick = matches!(msg, Msg::Tick);
            dirty |= !tick || app.is_running();
            pending.extend(app.update(msg));
        }
    };
    input_stop.store(true, Ordering::Relaxed);
    // a run in progress is cancelled; give it a moment to save what finished
    let busy: Vec<worker::RunHandle> = [worker, replayer]
        .into_iter()
        .flatten()
        .filter(|w| !w.is_finished())
        .collect();
    busy.iter().for_each(worker::RunHandle::cancel);
    let deadline = Instant::now() + Duration::from_secs(3);
    while busy.iter().any(|w| !w.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    result
}
