//! Runs an experiment on its own thread and streams its [`RunEvent`]s into the UI channel.
//! Cancel with the shared flag; when the UI is gone (a send fails) the run cancels itself.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::config::Config;
use crate::experiment::{self, RunEvent};
use crate::record;

use super::msg::{Msg, ReplayOutcome, RunId, RunSource};

pub struct RunHandle {
    pub id: RunId,
    pub cancel: Arc<AtomicBool>,
    pub thread: JoinHandle<()>,
}

impl RunHandle {
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

/// Starts the run on a thread; the record is saved in `out_dir`, then `Finished(path)` (or
/// `Failed(why)`) is the last event.
pub fn spawn(source: RunSource, out_dir: PathBuf, id: RunId, tx: Sender<Msg>) -> RunHandle {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    let thread = std::thread::Builder::new()
        .name(format!("resprune-run-{id}"))
        .spawn(move || {
            let send = |ev: RunEvent| tx.send(Msg::Worker(id, ev)).is_ok();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                execute(&source, &out_dir, &send, &flag, &tx)
            }));
            let last = match outcome {
                Ok(Ok(path)) => RunEvent::Finished(path),
                Ok(Err(why)) => RunEvent::Failed(why),
                Err(panic) => RunEvent::Failed(format!("the run panicked: {}", panic_text(&panic))),
            };
            send(last);
        })
        .expect("spawning a thread");
    RunHandle { id, cancel, thread }
}

fn execute(
    source: &RunSource,
    out_dir: &Path,
    send: &(dyn Fn(RunEvent) -> bool + Sync),
    cancel: &AtomicBool,
    tx: &Sender<Msg>,
) -> Result<PathBuf, String> {
    if let RunSource::Path(p) = source {
        if Config::load(p).is_ok_and(|c| !c.sweep.is_empty()) {
            return super::sweep_view::run(p, out_dir, tx, send, cancel);
        }
    }
    let cfg = match source {
        RunSource::Path(p) => Config::load(p).map_err(|e| e.to_string())?,
        RunSource::Config(c) => (**c).clone(),
    };
    record::check_writable(out_dir).map_err(|e| e.to_string())?;
    let rec = experiment::run(&cfg, &send, cancel).map_err(|e| e.to_string())?;
    record::save(&rec, out_dir).map_err(|e| e.to_string())
}

/// Replays the record at `path` on a thread (exact comparison, the stored run's thread
/// count); [`Msg::Replayed`] is the one message it sends.
pub fn spawn_replay(path: PathBuf, tx: Sender<Msg>) -> RunHandle {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    let thread = std::thread::Builder::new()
        .name("resprune-replay".into())
        .spawn(move || {
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| replay(&path, &flag)))
                    .unwrap_or_else(|p| Err(format!("the replay panicked: {}", panic_text(&p))));
            let _ = tx.send(Msg::Replayed { path, outcome });
        })
        .expect("spawning a thread");
    RunHandle {
        id: 0,
        cancel,
        thread,
    }
}

fn replay(path: &Path, cancel: &AtomicBool) -> Result<ReplayOutcome, String> {
    let opts = experiment::ReplayOptions::default();
    let r =
        experiment::replay(path, &opts, &experiment::quiet, cancel).map_err(|e| e.to_string())?;
    Ok(ReplayOutcome {
        new_path: r.new_path,
        compared: r.comparison.compared,
        numbers: r.comparison.numbers,
        complete: r.new.status == record::Status::Complete,
        mismatches: r.comparison.mismatches,
    })
}

pub fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
