//! The emitted sbatch script on a real SLURM: a single-node cluster on this machine
//! (`scripts/slurm-local.sh`), the array submitted, waited for with `squeue`, and the merged
//! report compared with a local run's.
//!
//! Needs root and Debian's `slurmctld slurmd slurm-client munge` (`.ci/run` installs them).
//! Without them the test fails, saying so, unless `RESPRUNE_SKIP_SLURM=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

fn tiny() -> String {
    common::tiny_sweep("tiny-slurm", 3, "\"model.depth\" = [1, 2, 3, 4]")
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm-local.sh")
}

fn have(bin: &str) -> bool {
    ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"]
        .iter()
        .any(|d| Path::new(d).join(bin).exists())
}

/// Stops the daemons it started, however the test ends.
struct Cluster {
    state: PathBuf,
    conf: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(&self.state)
            .status();
    }
}

fn run_ok(c: &mut Command) -> String {
    let out = c.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{c:?}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn the_emitted_array_runs_on_slurm_and_merges_to_a_local_runs_report() {
    let missing: Vec<&str> = ["slurmctld", "slurmd", "sbatch", "squeue", "munged"]
        .into_iter()
        .filter(|b| !have(b))
        .collect();
    if !missing.is_empty() {
        if std::env::var("RESPRUNE_SKIP_SLURM").is_ok_and(|v| v == "1") {
            eprintln!("skipped: {missing:?} not installed and RESPRUNE_SKIP_SLURM=1");
            return;
        }
        panic!(
            "the real-SLURM test needs {missing:?}: apt-get install -y slurmctld slurmd \
             slurm-client munge (as root), or set RESPRUNE_SKIP_SLURM=1 to skip it"
        );
    }
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("slurm");
    let started = Command::new("bash")
        .arg(script())
        .arg("start")
        .arg(&state)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let cluster = Cluster {
        conf: state.join("slurm.conf"),
        state: state.clone(),
    };
    assert!(
        started.status.success(),
        "scripts/slurm-local.sh start failed (logs in {}):\n{}",
        state.display(),
        String::from_utf8_lossy(&started.stdout)
    );
    let cfg = d.path().join("tiny.toml");
    std::fs::write(&cfg, tiny()).unwrap();
    let bin = env!("CARGO_BIN_EXE_resprune-tui");
    let shared = d.path().join("on-slurm");
    let job_script = run_ok(
        Command::new(bin)
            .arg("sweep")
            .arg(&cfg)
            .arg("--out")
            .arg(&shared)
            .args([
                "--emit", "slurm", "--tasks", "2", "--cpus", "1", "--time", "00:05:00",
            ]),
    );
    assert!(job_script.contains("#SBATCH --array=0-1\n"), "{job_script}");
    let job_file = d.path().join("job.sh");
    std::fs::write(&job_file, &job_script).unwrap();
    let job = run_ok(
        Command::new("sbatch")
            .env("SLURM_CONF", &cluster.conf)
            .arg("--parsable")
            .arg(&job_file),
    );
    let job = job.trim().split(';').next().unwrap().to_string();
    let t = Instant::now();
    loop {
        let q = run_ok(
            Command::new("squeue")
                .env("SLURM_CONF", &cluster.conf)
                .args(["-h", "-j", &job, "-o", "%i %T"]),
        );
        if q.trim().is_empty() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(180),
            "job {job} still queued or running after 3 minutes:\n{q}\n(logs in {})",
            state.display()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let logs: Vec<String> = std::fs::read_dir(&shared)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("slurm-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert_eq!(logs.len(), 2, "one output file per array task");
    let local = d.path().join("local");
    run_ok(
        Command::new(bin)
            .arg("sweep")
            .arg(&cfg)
            .arg("--out")
            .arg(&local)
            .args(["--quiet", "--jobs", "1"]),
    );
    let report = |dir: &Path| -> serde_json::Value {
        serde_json::from_str(&run_ok(
            Command::new(bin)
                .args(["report", "--format", "json"])
                .arg(dir),
        ))
        .unwrap()
    };
    let merged = report(&shared);
    assert_eq!(
        merged["rows"].as_array().map(|r| r.len()),
        Some(4),
        "{merged}\n{logs:?}"
    );
    for row in merged["rows"].as_array().unwrap() {
        assert_eq!(row["status"], "done", "{logs:?}");
    }
    assert_eq!(merged, report(&local), "{logs:?}");
    drop(cluster);
}
