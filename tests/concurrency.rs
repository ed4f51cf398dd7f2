//! Several writers into one folder at once each keep their own record: names are claimed
//! by exclusive creation, never checked and then renamed over.

use std::path::Path;
use std::process::{Command, Stdio};

use resprune::record::{self, checkpoint};

const CONFIG: &str = r#"
name = "race"
seed = 3
[data]
source = "synthetic"
samples = 40
features = 4
eval_fraction = 0.0
[model]
width = 5
depth = 1
[train]
epochs = 2
batch_size = 10
[prune]
ratios = [0.2, 0.4]
"#;

fn records_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && !p.ends_with("race.toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn concurrent_runs_into_one_folder_keep_every_record_and_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("race.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    const N: usize = 4;
    // runs that start in the same second want the same name: every round must still keep N
    for round in 1..=3 {
        let children: Vec<_> = (0..N)
            .map(|_| {
                Command::new(env!("CARGO_BIN_EXE_resprune-tui"))
                    .args(["run", "--quiet", "--save-weights", "--out"])
                    .arg(dir.path())
                    .arg(&cfg)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let recs = records_in(dir.path());
        assert_eq!(recs.len(), N * round, "round {round}: {recs:?}");
        for p in &recs {
            let r = record::load(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert_eq!(r.status, record::Status::Complete);
            // the checkpoint is the one this record names (its SHA-256 is checked on load)
            let w = checkpoint::load(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert_eq!(
                w.metadata["record"],
                p.file_name().unwrap().to_str().unwrap()
            );
        }
        let weights = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "safetensors"))
            .count();
        assert_eq!(weights, N * round);
        assert!(record::stale_temps(dir.path()).is_empty());
        let hidden = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .count();
        assert_eq!(hidden, 0, "no temp file is left");
    }
}

#[test]
fn claims_in_one_process_never_share_a_name_and_an_unsaved_claim_is_released() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|_| s.spawn(|| record::claim_name("x.toml", dir.path(), true).unwrap()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut paths: Vec<_> = names.iter().map(|c| c.path.clone()).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), 8);
    assert!(paths
        .iter()
        .all(|p| p.exists() && p.with_extension("safetensors").exists()));
    drop(names);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "dropped claims are released"
    );
}

#[test]
fn temp_files_of_dead_writers_are_found_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    // pid 0 and a pid far beyond pid_max are never alive
    let dead = dir.path().join(".r.toml.tmp-4194305-0");
    let old_style = dir.path().join(".r.toml.tmp-4194306");
    let mine = dir
        .path()
        .join(format!(".r.toml.tmp-{}-0", std::process::id()));
    for p in [&dead, &old_style, &mine] {
        std::fs::write(p, b"half").unwrap();
    }
    assert_eq!(
        record::stale_temps(dir.path()),
        vec![dead.clone(), old_style.clone()]
    );
    assert_eq!(record::clean_stale_temps(dir.path()).len(), 2);
    assert!(!dead.exists() && !old_style.exists() && mine.exists());
}
