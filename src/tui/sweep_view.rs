//! Sweeps in the notebook: the sweep folders of the experiments folder with their reports,
//! and a sweep started from the `n` prompt, run on the worker thread with its progress sent
//! to the status line and the current point's events to the live panes.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Instant;

use crate::experiment::RunEvent;
use crate::record;
use crate::sweep::{self, PointStatus, SweepEvent};

use super::msg::{Msg, SweepEntry};

/// Sub-folders of `dir` holding a `sweep.toml`, by name.
pub fn read_sweeps(dir: &Path) -> Vec<SweepEntry> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join(sweep::MANIFEST).is_file())
        .collect();
    dirs.sort();
    dirs.into_iter().filter_map(|d| entry(&d)).collect()
}

/// The report of the sweep in `dir`, `None` when its manifest does not load.
pub fn entry(dir: &Path) -> Option<SweepEntry> {
    let loaded = sweep::load(dir).ok()?;
    let m = &loaded.manifest;
    let report = loaded.report();
    Some(SweepEntry {
        dir: dir.to_path_buf(),
        records: m
            .points
            .iter()
            .map(|p| loaded.dir.join(&p.record))
            .collect(),
        report,
    })
}

/// Runs the sweep of the config at `path` into `<out_dir>/<name>/`, one point at a time
/// (the notebook's worker), resuming what is done. Returns the manifest's path.
pub fn run(
    path: &Path,
    out_dir: &Path,
    tx: &std::sync::mpsc::Sender<Msg>,
    send: &(dyn Fn(RunEvent) -> bool + Sync),
    cancel: &AtomicBool,
) -> Result<PathBuf, String> {
    let plan = sweep::plan(path, &[]).map_err(|e| e.to_string())?;
    let dir = out_dir.join(&plan.name);
    record::check_writable(&dir).map_err(|e| e.to_string())?;
    let progress = Mutex::new((0usize, 0usize, 0usize, 0usize, Instant::now()));
    let say = |p: &(usize, usize, usize, usize, Instant)| {
        let (todo, done, failed, running, t) = *p;
        let eta = if done > 0 && todo > done {
            let per = t.elapsed().as_secs_f64() / done as f64;
            format!(", ETA {:.0} s", per * (todo - done) as f64)
        } else {
            String::new()
        };
        let _ = tx.send(Msg::SweepProgress(format!(
            "sweep {}: {done}/{todo} points done, {running} running, {failed} failed{eta}",
            plan.name
        )));
    };
    let events = |ev: SweepEvent| {
        let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
        match ev {
            SweepEvent::Planned { to_run, .. } => {
                p.0 = to_run;
                say(&p);
            }
            SweepEvent::Started { .. } => {
                p.3 += 1;
                say(&p);
            }
            SweepEvent::Finished { status, .. } => {
                p.3 = p.3.saturating_sub(1);
                p.1 += 1;
                p.2 += usize::from(!matches!(
                    status,
                    PointStatus::Done | PointStatus::Interrupted
                ));
                say(&p);
            }
            SweepEvent::Run { event, .. } => {
                send(event);
            }
            SweepEvent::Busy { .. } => {}
        }
    };
    let opts = sweep::RunOptions {
        jobs: 1,
        shard: sweep::Shard::All,
    };
    let out = sweep::run(&plan, &dir, opts, cancel, &events).map_err(|e| e.to_string())?;
    if out.failed > 0 {
        return Err(format!(
            "{} point(s) of sweep {} failed; see {}",
            out.failed,
            plan.name,
            dir.join(sweep::MANIFEST).display()
        ));
    }
    Ok(dir.join(sweep::MANIFEST))
}
