//! Sweeps end to end through the binary: shards into one folder merge to the numbers of one
//! run, resume skips what is done and reruns what is missing or truncated, a killed sweep
//! leaves a manifest that loads and no half-written record, Ctrl-C keeps finished points,
//! `--set` reaches every section, and the SLURM script asks for what it was given.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use resprune::record;
use resprune::sweep::{Manifest, PointStatus};

mod common;

/// Six tiny points (2 seeds each): a fraction of a second apiece.
fn tiny() -> String {
    common::tiny_sweep(
        "tiny",
        4,
        "\"model.depth\" = [1, 2, 3]\n\"model.width\" = [3, 4]",
    )
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_resprune-tui"))
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("sweep-config.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn sweep_cmd(cfg: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = bin();
    c.arg("sweep")
        .arg(cfg)
        .arg("--out")
        .arg(out)
        .arg("--quiet")
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn ok(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn sweep(cfg: &Path, out: &Path, extra: &[&str]) -> String {
    ok(sweep_cmd(cfg, out, extra).output().unwrap())
}

fn report_json(dir: &Path) -> serde_json::Value {
    let out = ok(bin()
        .args(["report", "--format", "json"])
        .arg(dir)
        .output()
        .unwrap());
    serde_json::from_str(&out).unwrap()
}

/// Each point's results (both models, every seed), without timings and dates.
fn results(dir: &Path) -> Vec<(String, String)> {
    let m = Manifest::load(&dir.join("sweep.toml")).unwrap();
    m.points
        .iter()
        .map(|p| {
            let r = record::load(&dir.join(&p.record)).unwrap();
            let pairs: Vec<String> = r
                .pairs()
                .iter()
                .map(|(s, a, b)| format!("{s} {a:?} {b:?}"))
                .collect();
            (p.name.clone(), format!("{:?} {pairs:?}", r.config))
        })
        .collect()
}

fn all_done(dir: &Path) -> Manifest {
    let m = Manifest::load(&dir.join("sweep.toml")).unwrap();
    assert_eq!(m.counts.done, m.counts.total, "{m:#?}");
    assert!(m.points.iter().all(|p| p.status == PointStatus::Done));
    m
}

#[test]
fn shards_run_concurrently_into_one_folder_merge_to_one_runs_numbers() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), &tiny());
    let whole = d.path().join("whole");
    sweep(&cfg, &whole, &["--jobs", "1"]);
    let m = all_done(&whole);
    assert_eq!(m.points.len(), 6);
    assert_eq!(m.points[2].name, "model.depth=2,model.width=3");
    assert!(whole.join("model.depth=2,model.width=3.toml").is_file());
    for n in [2usize, 3] {
        let shared = d.path().join(format!("shards-{n}"));
        let children: Vec<Child> = (0..n)
            .map(|k| {
                sweep_cmd(&cfg, &shared, &["--shard", &format!("{k}/{n}")])
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            ok(c.wait_with_output().unwrap());
        }
        all_done(&shared);
        assert_eq!(results(&shared), results(&whole), "{n} shards");
        assert_eq!(report_json(&shared), report_json(&whole), "{n} shards");
        // no lock or temp file is left behind
        let hidden: Vec<_> = std::fs::read_dir(&shared)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.file_name())
            .collect();
        assert!(hidden.is_empty(), "{hidden:?}");
    }
    // --jobs 2 on one machine: the same numbers too (every point here runs on one thread)
    let parallel = d.path().join("parallel");
    sweep(&cfg, &parallel, &["--jobs", "2"]);
    assert_eq!(results(&parallel), results(&whole));
}

#[test]
fn resume_skips_done_points_and_reruns_deleted_truncated_and_changed_ones() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), &tiny());
    let out = d.path().join("out");
    sweep(&cfg, &out, &["--jobs", "1"]);
    let before = results(&out);
    let mtime = |name: &str| {
        std::fs::metadata(out.join(name))
            .unwrap()
            .modified()
            .unwrap()
    };
    let kept = "model.depth=1,model.width=3.toml";
    let t_kept = mtime(kept);
    let again = sweep(&cfg, &out, &["--jobs", "1"]);
    assert!(again.contains("(0 ran here, 6 skipped as done)"), "{again}");
    // one record deleted, one truncated mid-file
    std::fs::remove_file(out.join("model.depth=2,model.width=4.toml")).unwrap();
    let cut = out.join("model.depth=3,model.width=3.toml");
    let text = std::fs::read_to_string(&cut).unwrap();
    std::fs::write(&cut, &text[..text.len() / 2]).unwrap();
    let listed = ok(sweep_cmd(&cfg, &out, &["--list"]).output().unwrap());
    assert!(
        listed.contains("pending     model.depth=2,model.width=4"),
        "{listed}"
    );
    assert!(
        listed.contains("unreadable  model.depth=3,model.width=3"),
        "{listed}"
    );
    let resumed = sweep(&cfg, &out, &["--jobs", "1"]);
    assert!(
        resumed.contains("(2 ran here, 4 skipped as done)"),
        "{resumed}"
    );
    all_done(&out);
    assert_eq!(
        results(&out),
        before,
        "the rerun points give the same numbers"
    );
    assert_eq!(mtime(kept), t_kept, "a done point is not rewritten");
    // another config (a --set) makes every point outdated: all run again
    let changed = sweep(&cfg, &out, &["--jobs", "1", "--set", "train.epochs=1"]);
    assert!(
        changed.contains("(6 ran here, 0 skipped as done)"),
        "{changed}"
    );
    let m = all_done(&out);
    assert_eq!(m.sets, ["train.epochs=1"]);
}

/// Points long enough to be killed in the middle of one.
const SLOW: &str = r#"
name = "slow"
threads = 1
[data]
source = "teacher"
samples = 2000
features = 8
[model]
width = 16
[train]
epochs = 100000
batch_size = 16
[prune]
ratios = [0.2]
[sweep]
"model.depth" = [1, 2, 3]
"#;

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn locks(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.ends_with(".lock") && n != ".sweep.toml.lock")
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_killed_sweep_leaves_a_manifest_that_loads_and_no_half_written_record() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), SLOW);
    let out = d.path().join("out");
    let mut child = sweep_cmd(&cfg, &out, &["--jobs", "2"]).spawn().unwrap();
    wait_for("two points running", Duration::from_secs(60), || {
        locks(&out).len() == 2
    });
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let m = Manifest::load(&out.join("sweep.toml")).expect("the manifest loads");
    assert_eq!(m.points.len(), 3);
    assert_eq!(m.counts.done, 0);
    for e in std::fs::read_dir(&out).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.ends_with(".toml") && !name.starts_with('.') && name != "sweep.toml" {
            record::load(&e.path()).expect("every record in the folder is whole");
        }
    }
    // the dead process's locks are taken over; the listing sees them as not running
    let listed = ok(sweep_cmd(&cfg, &out, &["--list"]).output().unwrap());
    assert!(!listed.contains("running"), "{listed}");
    // and a new sweep runs the points (cut short by Ctrl-C, which keeps what finished)
    let mut again = sweep_cmd(&cfg, &out, &["--jobs", "1"]).spawn().unwrap();
    wait_for("a point running again", Duration::from_secs(60), || {
        locks(&out).iter().any(|l| {
            std::fs::read_to_string(out.join(l))
                .is_ok_and(|o| o.starts_with(&format!("{}@", again.id())))
        })
    });
    std::thread::sleep(Duration::from_millis(500));
    let sent = Command::new("kill")
        .args(["-INT", &again.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let t = Instant::now();
    let status = again.wait().unwrap();
    assert!(t.elapsed() < Duration::from_secs(30));
    assert_eq!(status.code(), Some(130));
    let m = Manifest::load(&out.join("sweep.toml")).unwrap();
    let words: Vec<PointStatus> = m.points.iter().map(|p| p.status).collect();
    assert_eq!(
        words,
        [
            PointStatus::Interrupted,
            PointStatus::Pending,
            PointStatus::Pending
        ]
    );
    let r = record::load(&out.join(&m.points[0].record)).unwrap();
    assert_eq!(r.status, record::Status::Interrupted);
    assert!(locks(&out).is_empty(), "{:?}", locks(&out));
}

#[test]
fn set_overrides_every_section_and_the_record_stores_the_resolved_config() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("one.toml");
    std::fs::write(
        &cfg,
        "name = \"one\"\n[data]\nsamples = 40\nfeatures = 4\n[model]\nwidth = 4\n[train]\nepochs = 3\n",
    )
    .unwrap();
    let out = ok(bin()
        .arg("run")
        .arg(&cfg)
        .arg("--out")
        .arg(d.path())
        .args([
            "--quiet",
            "--set",
            "seed=7",
            "--set",
            "data.eval_fraction=0.25",
            "--set",
            "model.depth=2",
            "--set",
            "train.epochs=1",
            "--set",
            "hessian.method=lanczos",
            "--set",
            "hessian.top_k=2",
            "--set",
            "prune.ratios=[0.3]",
        ])
        .output()
        .unwrap());
    let path = out
        .lines()
        .find_map(|l| l.strip_prefix("record: "))
        .expect("record line");
    let r = record::load(Path::new(path)).unwrap();
    let c = &r.config;
    assert_eq!(c.seed, 7);
    assert_eq!(c.data.eval_fraction, 0.25);
    assert_eq!(c.data.samples, 40, "the file's other keys stay");
    assert_eq!((c.model.depth, c.model.width), (2, 4));
    assert_eq!(c.train.epochs, 1);
    assert_eq!(c.hessian.method, resprune::config::HessianMethod::Lanczos);
    assert_eq!(c.hessian.top_k, 2);
    assert_eq!(c.prune.ratios, vec![0.3]);
    assert_eq!(r.model.depth, 2);
    assert_eq!(r.residual.history.last().map(|h| h.epoch), Some(1));
    // a bad value: the --set, the key and what is allowed
    let bad = bin()
        .arg("run")
        .arg(&cfg)
        .args(["--quiet", "--set", "model.width=abc"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains(
            "--set model.width=abc: `model.width` invalid type: string \"abc\", expected usize"
        ),
        "{err}"
    );
    let bad = bin()
        .arg("run")
        .arg(&cfg)
        .args(["--quiet", "--set", "prune.ratios=[1.5]"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("--set prune.ratios=[1.5]: `prune.ratios`"),
        "{err}"
    );
    // in a sweep, a bad point is named before anything runs
    let swept = write_config(d.path(), &tiny().replace("[1, 2, 3]", "[1, 2, -3]"));
    let bad = sweep_cmd(&swept, &d.path().join("never"), &[])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("sweep point `model.depth=-3,model.width=3`: ")
            && err.contains("`model.depth`: invalid value: integer `-3`, expected usize"),
        "{err}"
    );
    assert!(!d.path().join("never").exists(), "nothing ran");
}

#[test]
fn the_slurm_script_asks_for_the_array_the_shards_and_the_resources() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), &tiny());
    let out = d.path().join("out");
    let script = ok(bin()
        .arg("sweep")
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .args([
            "--emit",
            "slurm",
            "--partition",
            "short",
            "--time",
            "00:10:00",
            "--gpus",
            "1",
            "--cpus",
            "4",
            "--set",
            "train.epochs=1",
        ])
        .output()
        .unwrap());
    let lines: Vec<&str> = script.lines().collect();
    assert_eq!(lines[0], "#!/bin/bash");
    for want in [
        "#SBATCH --array=0-5",
        "#SBATCH --partition=short",
        "#SBATCH --time=00:10:00",
        "#SBATCH --gpus-per-task=1",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --ntasks=1",
        "#SBATCH --job-name=tiny",
        "export RAYON_NUM_THREADS=4",
    ] {
        assert!(lines.contains(&want), "{want}\n{script}");
    }
    let exec = lines.iter().find(|l| l.starts_with("exec ")).unwrap();
    assert!(
        exec.contains(&format!(
            " sweep {} --out {} --shard slurm --jobs 1 --quiet --set train.epochs=1",
            cfg.display(),
            out.display()
        )),
        "{exec}"
    );
    // the folder is made (SLURM writes the tasks' output there), nothing is run into it
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        0,
        "emitting runs nothing"
    );
    let fewer = ok(bin()
        .arg("sweep")
        .arg(&cfg)
        .args(["--emit", "slurm", "--tasks", "4"])
        .output()
        .unwrap());
    assert!(fewer.contains("#SBATCH --array=0-3\n"), "{fewer}");
    assert!(!fewer.contains("--partition"), "only what was asked for");
}
