//! Nothing lost on interruption: SIGTERM (or Ctrl-C's SIGINT) during a run writes a record with
//! `status = "interrupted"` holding the stages that finished, and that record loads.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use resprune::record::{self, Status};

/// Training alone would take far longer than the test waits.
const LONG: &str = r#"
name = "long"
seed = 1
[data]
source = "teacher"
samples = 2000
features = 8
eval_fraction = 0.25
[model]
width = 16
depth = 2
[train]
epochs = 100000
batch_size = 16
lr = 0.001
[prune]
ratios = [0.2]
"#;

fn interrupt_with(signal: &str, code: i32, dir: &Path) {
    let cfg = dir.join("long.toml");
    std::fs::write(&cfg, LONG).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_resprune-tui"))
        .arg("run")
        .arg(&cfg)
        .arg("--out")
        .arg(dir)
        .args(["--quiet", "--threads", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // let it get into training (signal handlers are set before any work starts)
    std::thread::sleep(Duration::from_millis(800));
    let killed = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let t = Instant::now();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "stopped promptly after the signal"
    );
    // the record is written, and the shell still hears the signal: 128 + its number
    assert_eq!(out.status.code(), Some(code), "{stdout}\n{stderr}");
    assert!(stdout.contains("record (interrupted): "), "{stdout}");

    let records = record::list(dir);
    assert_eq!(records.len(), 1, "one record");
    let (path, rec) = &records[0];
    let rec = rec.as_ref().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rec.status, Status::Interrupted);
    assert!(
        rec.error.as_deref().unwrap_or("").contains("cancelled"),
        "{:?}",
        rec.error
    );
    // the finished epochs are kept: epoch 0 plus at least one, never all
    let h = &rec.residual.history;
    assert!(h.len() >= 2, "{} epochs", h.len());
    assert!(h.len() < 100_001);
    assert_eq!(h[0].epoch, 0);
    assert!(rec.residual.spectrum.is_none() && rec.plain.pruning.is_empty());
    // it loads from disk as any record does, and no temporary file is left
    assert_eq!(&record::load(path).unwrap(), rec);
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn sigterm_mid_run_writes_an_interrupted_record_that_loads() {
    let dir = tempfile::tempdir().unwrap();
    interrupt_with("-TERM", 143, dir.path());
}

#[test]
fn sigint_mid_run_writes_an_interrupted_record_that_loads() {
    let dir = tempfile::tempdir().unwrap();
    interrupt_with("-INT", 130, dir.path());
}
