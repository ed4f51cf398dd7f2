//! Locks by exclusive creation: a file made with `create_new`, holding its owner
//! (`pid@host`), removed when the work is done. One per point (`.NAME.lock`, held while the
//! point runs) and one for the manifest (`.sweep.toml.lock`, held while it is derived and
//! written).
//!
//! A lock is stale, and may be taken over, when its owner is a process of this host that no
//! longer exists (killed, or the machine restarted), or when nobody has touched it for
//! [`STALE_AFTER`]: a holder touches its point locks every [`HEARTBEAT`] (a process on
//! another node of a cluster cannot be asked whether it lives, so silence is the sign).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How often a holder touches its locks.
pub const HEARTBEAT: Duration = Duration::from_secs(20);
/// A lock untouched this long is stale whoever holds it.
pub const STALE_AFTER: Duration = Duration::from_secs(300);

/// This machine's host name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`).
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// `pid@host` of this process.
pub fn me() -> String {
    format!("{}@{}", std::process::id(), host())
}

/// The owner written in a lock file, and whether it is stale.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    pub owner: String,
    pub stale: bool,
}

/// Who holds the lock at `path`, if anyone.
pub fn holder(path: &Path) -> Option<Holder> {
    let text = std::fs::read_to_string(path).ok()?;
    let owner = text.lines().next().unwrap_or("").trim().to_string();
    let age = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default();
    let dead = match owner.split_once('@') {
        Some((pid, h)) if h == host() => pid
            .parse::<u32>()
            .is_ok_and(|pid| pid != std::process::id() && !alive(pid)),
        // an empty lock: its writer died between creating and writing it
        _ => owner.is_empty() && age > Duration::from_secs(5),
    };
    Some(Holder {
        owner,
        stale: dead || age > STALE_AFTER,
    })
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A lock this process holds; dropping it removes the file.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    beats: Option<Heartbeat>,
}

impl Drop for Lock {
    fn drop(&mut self) {
        if let Some(b) = &self.beats {
            b.forget(&self.path);
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What trying a lock gave.
#[derive(Debug)]
pub enum Tried {
    Taken(Lock),
    /// Someone else holds it (and is not stale).
    Held(Holder),
}

/// Takes the lock at `path` by exclusive creation; a stale one is taken over (removed, then
/// created anew, so of two takers one wins). `beats` keeps it fresh while held.
pub fn try_lock(path: &Path, beats: Option<&Heartbeat>) -> std::io::Result<Tried> {
    for _ in 0..3 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(mut f) => {
                writeln!(f, "{}", me())?;
                f.sync_all()?;
                if let Some(b) = beats {
                    b.watch(path);
                }
                return Ok(Tried::Taken(Lock {
                    path: path.to_path_buf(),
                    beats: beats.cloned(),
                }));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match holder(path) {
                Some(h) if !h.stale => return Ok(Tried::Held(h)),
                // stale, or gone between the create and the read: try again
                _ => take_over(path),
            },
            Err(e) => return Err(e),
        }
    }
    Ok(Tried::Held(holder(path).unwrap_or(Holder {
        owner: "?".into(),
        stale: false,
    })))
}

/// Removes a stale lock so that it can be created anew. Renamed aside first, then removed:
/// of two processes taking over one lock, only one rename succeeds.
fn take_over(path: &Path) {
    let aside = path.with_extension(format!("stale-{}", std::process::id()));
    if std::fs::rename(path, &aside).is_ok() {
        let _ = std::fs::remove_file(&aside);
    }
}

/// Removes the lock at `path` when it is stale (its holder is gone); true when it did.
pub fn clear_stale(path: &Path) -> bool {
    match holder(path) {
        Some(h) if h.stale => {
            take_over(path);
            true
        }
        _ => false,
    }
}

/// Waits for the lock at `path` up to `patience`, polling.
pub fn lock_waiting(path: &Path, patience: Duration) -> std::io::Result<Option<Lock>> {
    let start = std::time::Instant::now();
    loop {
        if let Tried::Taken(l) = try_lock(path, None)? {
            return Ok(Some(l));
        }
        if start.elapsed() > patience {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Touches the locks it watches every [`HEARTBEAT`] from a background thread, so that a
/// live holder's locks never look stale.
#[derive(Debug, Clone, Default)]
pub struct Heartbeat {
    watched: Arc<Mutex<Vec<PathBuf>>>,
}

impl Heartbeat {
    /// A heartbeat with its thread started; the thread ends once every clone is dropped.
    pub fn start() -> Heartbeat {
        let h = Heartbeat::default();
        let watched = Arc::downgrade(&h.watched);
        std::thread::spawn(move || loop {
            std::thread::sleep(HEARTBEAT);
            let Some(w) = watched.upgrade() else {
                return;
            };
            let paths = w.lock().map(|w| w.clone()).unwrap_or_default();
            drop(w);
            for p in paths {
                touch(&p);
            }
        });
        h
    }

    fn watch(&self, p: &Path) {
        if let Ok(mut w) = self.watched.lock() {
            w.push(p.to_path_buf());
        }
    }

    fn forget(&self, p: &Path) {
        if let Ok(mut w) = self.watched.lock() {
            w.retain(|x| x != p);
        }
    }
}

fn touch(p: &Path) {
    if let Ok(f) = std::fs::OpenOptions::new().append(true).open(p) {
        let _ = f.set_modified(SystemTime::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_is_exclusive_until_dropped() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(".a.lock");
        let Tried::Taken(l) = try_lock(&p, None).unwrap() else {
            panic!("free")
        };
        // our own live pid: held
        match try_lock(&p, None).unwrap() {
            Tried::Held(h) => assert_eq!(h.owner, me()),
            Tried::Taken(_) => panic!("taken twice"),
        }
        drop(l);
        assert!(!p.exists());
        assert!(matches!(try_lock(&p, None).unwrap(), Tried::Taken(_)));
    }

    #[test]
    fn a_dead_owners_lock_is_taken_over() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(".a.lock");
        // a pid that cannot exist (above pid_max)
        std::fs::write(&p, format!("4194999@{}\n", host())).unwrap();
        assert!(holder(&p).unwrap().stale);
        assert!(matches!(try_lock(&p, None).unwrap(), Tried::Taken(_)));
        // another host's fresh lock is respected
        std::fs::write(d.path().join(".b.lock"), "1@elsewhere\n").unwrap();
        let h = holder(&d.path().join(".b.lock")).unwrap();
        assert!(!h.stale);
    }
}
