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

use super::msg::{Msg, RunId, RunSource};

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
                execute(&source, &out_dir, &send, &flag)
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
) -> Result<PathBuf, String> {
    let cfg = match source {
        RunSource::Path(p) => Config::load(p).map_err(|e| e.to_string())?,
        RunSource::Config(c) => (**c).clone(),
    };
    record::check_writable(out_dir).map_err(|e| e.to_string())?;
    crate::cli::init_threads(cfg.threads);
    let rec = experiment::run(&cfg, &send, cancel).map_err(|e| e.to_string())?;
    record::save(&rec, out_dir).map_err(|e| e.to_string())
}

pub fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
