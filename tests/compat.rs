//! Records written before the pipeline redesign (tests/fixtures/v0.1, see its README) still
//! load, show the same and replay exactly: the redesign kept the behaviour. The one change
//! of meaning since (schema 2: near-zero, negative and condition counts at the FD noise
//! floor) is left out of the comparison by name, and nothing else is.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

use resprune::experiment::{self, ReplayOptions};
use resprune::record;

const FIXTURES: [&str; 4] = [
    "article-dense",
    "article-lanczos",
    "breast-cancer",
    "article-alpha",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/v0.1")
        .join(format!("{name}.toml"))
}

#[test]
fn old_records_load_and_show_as_they_did() {
    for name in FIXTURES {
        let path = fixture(name);
        let rec = record::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(rec.status, record::Status::Complete, "{name}");
        let out = Command::new(env!("CARGO_BIN_EXE_resprune-tui"))
            .arg("show")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want = std::fs::read_to_string(path.with_extension("show")).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            want,
            "{name}: show changed"
        );
    }
}

/// Tolerance 0 holds on the thread count the fixtures were made with (2); the replay picks
/// the stored count itself, so this runs the same on any machine.
#[test]
fn old_records_replay_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for name in FIXTURES {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::copy(fixture(name), &path).unwrap();
        let r = experiment::replay(
            &path,
            &ReplayOptions::default(),
            &experiment::quiet,
            &AtomicBool::new(false),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            r.matches(),
            "{name}: {:?}",
            &r.comparison.mismatches[..r.comparison.mismatches.len().min(5)]
        );
        assert!(
            r.comparison.numbers > 1000,
            "{name}: compared {}",
            r.comparison.numbers
        );
        assert_eq!(
            r.comparison.largest.as_ref().map(|l| l.1),
            Some(0.0),
            "{name}"
        );
        assert_eq!(r.new.machine.threads, r.stored.machine.threads);
        assert_eq!(
            r.new.replay_of.as_deref(),
            Some(format!("{name}.toml").as_str())
        );
    }
}
