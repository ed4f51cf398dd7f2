//! Records you can trust: replay, diff, export, checkpoints, and errors that name the field.
//! Most tests drive the real binary on a tiny config (teacher data, 60 samples, width 6).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::AtomicBool;

use resprune::config::Config;
use resprune::experiment;
use resprune::model::Variant;
use resprune::record::{self, checkpoint, diff, Record};

const SMALL: &str = r#"
name = "small"
seed = 3
[data]
source = "teacher"
samples = 60
features = 4
eval_fraction = 0.25
[model]
width = 6
depth = 1
[train]
epochs = 3
batch_size = 8
lr = 0.01
[prune]
ratios = [0.2, 0.4]
"#;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_resprune-tui"))
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `resprune-tui replay RECORD ARGS...`.
fn replay(record: &Path, args: &[&str]) -> Output {
    bin().arg("replay").arg(record).args(args).output().unwrap()
}

/// Writes `config` into `dir` and runs it there; returns the record's path.
fn run_config(dir: &Path, config: &str, extra: &[&str]) -> PathBuf {
    let cfg = dir.join("small.toml");
    std::fs::write(&cfg, config).unwrap();
    let out = bin()
        .arg("run")
        .arg(&cfg)
        .arg("--out")
        .arg(dir)
        .args(["--quiet", "--threads", "2"])
        .args(extra)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("record: "))
        .unwrap_or_else(|| panic!("no record line in:\n{stdout}"));
    PathBuf::from(line.trim())
}

/// serde_json (without `float_roundtrip`) may read the last bit differently.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-15 * b.abs()
}

fn records_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = record::list(dir).into_iter().map(|(p, _)| p).collect();
    v.sort();
    v
}

#[test]
fn replay_of_a_fresh_record_matches_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = run_config(dir.path(), SMALL, &[]);
    let out = replay(&path, &["-q"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("values match") && stdout.contains("exactly"),
        "{stdout}"
    );
    // the new record sits beside the old one and names it
    let all = records_in(dir.path());
    assert_eq!(all.len(), 2, "{all:?}");
    let new_path = all.iter().find(|p| **p != path).unwrap();
    let new = record::load(new_path).unwrap();
    let old = record::load(&path).unwrap();
    assert_eq!(
        new.replay_of.as_deref(),
        path.file_name().and_then(|n| n.to_str())
    );
    assert_eq!(old.replay_of, None);
    assert_eq!(new.residual, old.residual);
    assert_eq!(new.plain, old.plain);
    assert_eq!(new.machine.threads, 2, "the stored thread count is reused");
}

#[test]
fn replay_on_another_device_compares_everything_but_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let auto = SMALL.replace("seed = 3", "seed = 3\ndevice = \"auto\"");
    let path = run_config(dir.path(), &auto, &[]);
    let stored = record::load(&path).unwrap();
    assert_eq!(stored.config.device, resprune::config::DeviceChoice::Auto);

    let out = replay(&path, &["-q", "--device", "cpu"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("exactly"), "{stdout}");
    assert!(stdout.contains("every number is identical"), "{stdout}");
    // `auto` resolved to this same CPU: nothing is left out
    assert!(!stdout.contains("not compared"), "{stdout}");
    let new_path = records_in(dir.path())
        .into_iter()
        .find(|p| *p != path)
        .unwrap();
    let new = record::load(&new_path).unwrap();
    assert_eq!(new.config.device, resprune::config::DeviceChoice::Cpu);
    assert_eq!(new.machine.device, "cpu");
    assert_eq!(new.residual, stored.residual);

    // a device the binary cannot open is an error that says what to do, and writes nothing
    let out = replay(&path, &["-q", "--device", "gpu0"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("--device: unknown device `gpu0`"),
        "{stderr}"
    );
    if !cfg!(feature = "cuda") {
        let out = replay(&path, &["-q", "--device", "cuda"]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr.contains("--features cuda"), "{stderr}");
    }
    assert_eq!(records_in(dir.path()).len(), 2);

    // another thread count is another summation order: the dense spectrum's noise measures
    // are left out (and only those), everything else still compared
    let out = replay(&path, &["-q", "--threads", "1", "--tolerance", "1e-6"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("not compared (another device, thread count or GEMM kernel"),
        "{stdout}"
    );
    let one_thread = records_in(dir.path())
        .into_iter()
        .map(|p| record::load(&p).unwrap())
        .find(|r| r.machine.threads == 1)
        .unwrap();
    let c = record::compare::compare(&stored, &one_thread, 1e-6);
    assert!(c.mismatches.is_empty(), "{:?}", c.mismatches);
    assert!(c
        .not_compared
        .contains(&"residual.spectrum.asymmetry".to_string()));
    assert!(c
        .not_compared
        .contains(&"plain.spectrum.stats.condition".to_string()));
    assert!(c
        .not_compared
        .iter()
        .all(|p| record::compare::is_fd_noise(p)));

    // other GEMM kernels (another CPU's vector width, or a record from before gemm 0.19,
    // which keeps none) sum in another order too; the same kernels do not
    let mut other = stored.clone();
    other.machine.kernels = "gemm 0.19 sse2".into();
    assert_ne!(other.machine.kernels, stored.machine.kernels);
    let c = record::compare::compare(&other, &stored, 0.0);
    assert!(c.mismatches.is_empty(), "{:?}", c.mismatches);
    assert!(c
        .not_compared
        .contains(&"residual.spectrum.asymmetry".to_string()));
    other.machine.kernels.clear();
    assert!(!record::compare::compare(&other, &stored, 0.0)
        .not_compared
        .is_empty());
    assert!(record::compare::compare(&stored, &stored, 0.0)
        .not_compared
        .is_empty());
}

#[test]
fn replay_reports_an_edited_number_by_path_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = run_config(dir.path(), SMALL, &[]);
    let mut rec = record::load(&path).unwrap();
    let stored = rec.residual.pruning[1].sensitivity;
    rec.residual.pruning[1].sensitivity = stored * 1.5;
    record::save_as(&rec, &path).unwrap();

    let out = replay(&path, &["-q"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("residual.") || l.starts_with("plain."))
        .collect();
    assert_eq!(rows.len(), 1, "{stdout}");
    assert!(
        rows[0].starts_with("residual.pruning[1].sensitivity "),
        "{stdout}"
    );
    assert!(rows[0].contains(&format!("{:?}", stored * 1.5)), "{stdout}");
    assert!(rows[0].contains(&format!("{stored:?}")), "{stdout}");
    // 1.5x against 1x: relative error 1/3
    assert!(rows[0].contains("3.333e-1"), "{stdout}");
    assert!(stdout.contains("1 of "), "{stdout}");
    // the edited number is the furthest apart of all
    assert!(
        stdout.contains("largest relative difference: 3.333e-1 at residual.pruning[1].sensitivity"),
        "{stdout}"
    );

    // within a loose tolerance it matches
    let out = replay(&path, &["-q", "--tolerance", "0.34"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
}

#[test]
fn replay_compares_every_stored_number_by_path() {
    let cfg = Config::parse(SMALL, "small.toml").unwrap();
    let a = experiment::run(&cfg, &experiment::quiet, &AtomicBool::new(false)).unwrap();
    let mut b = a.clone();
    b.started_at = "2000-01-01T00:00:00Z".into();
    b.timings.total_s += 1.0;
    b.machine.threads += 1;
    let c = record::compare::compare(&a, &b, 0.0);
    assert!(c.mismatches.is_empty(), "{:?}", c.mismatches);
    // eigenvalues, history, pruning, config, data: hundreds of numbers
    let eigen = a.residual.spectrum.as_ref().unwrap().eigenvalues.len();
    assert!(c.numbers > 2 * eigen, "{} numbers", c.numbers);

    let mut e = a.clone();
    e.plain.spectrum.as_mut().unwrap().eigenvalues[5] += 1e-9;
    e.residual.history[2].eval_loss = f64::NAN;
    e.plain.pruning.pop();
    let c = record::compare::compare(&a, &e, 0.0);
    let paths: Vec<&str> = c.mismatches.iter().map(|m| m.path.as_str()).collect();
    assert!(
        paths.contains(&"plain.spectrum.eigenvalues[5]"),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"residual.history[2].eval_loss"),
        "{paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.starts_with("plain.pruning[1].")),
        "{paths:?}"
    );
    let gone = c
        .mismatches
        .iter()
        .find(|m| m.path == "plain.pruning[1].sensitivity")
        .unwrap();
    assert_eq!(gone.new, None);
}

/// `a` with known edits: one config key, one spectrum statistic, one pruning value.
fn edited(a: &Record) -> Record {
    let mut b = a.clone();
    b.config.train.epochs = 7;
    b.plain.spectrum.as_mut().unwrap().stats.variance += 0.5;
    b.residual.pruning[0].loss_after *= 2.0;
    b
}

#[test]
fn diff_lists_exactly_the_changed_fields() {
    let cfg = Config::parse(SMALL, "small.toml").unwrap();
    let a = experiment::run(&cfg, &experiment::quiet, &AtomicBool::new(false)).unwrap();
    let b = edited(&a);
    let d = diff::diff(&a, &b);
    assert_eq!(d.config.len(), 1);
    assert_eq!(d.config[0].key, "train.epochs");
    assert_eq!(d.config[0].old.as_deref(), Some("3"));
    assert_eq!(d.config[0].new.as_deref(), Some("7"));
    let changed: Vec<_> = d.changed_rows().collect();
    assert_eq!(changed.len(), 2, "{changed:?}");
    let var = changed
        .iter()
        .find(|r| r.metric == "variance")
        .expect("variance changed");
    assert_eq!(var.variant, Variant::Plain);
    assert_eq!(var.section, diff::Section::Spectrum);
    let old_var = a.plain.spectrum.as_ref().unwrap().stats.variance;
    assert_eq!(var.old, Some(old_var));
    assert_eq!(var.new, Some(old_var + 0.5));
    assert!((var.delta.unwrap() - 0.5).abs() < 1e-12);
    assert!((var.delta_pct.unwrap() - 50.0 / old_var.abs()).abs() < 1e-9);
    let loss = changed.iter().find(|r| r.metric == "loss_after").unwrap();
    assert_eq!(loss.variant, Variant::Residual);
    assert_eq!(loss.method, Some(resprune::config::PruneMethod::Magnitude));
    assert_eq!(loss.ratio, Some(0.2));
    assert!((loss.delta_pct.unwrap() - 100.0).abs() < 1e-9);
    // unchanged rows are there for --all
    assert!(d.rows.len() > 40, "{} rows", d.rows.len());
    assert!(d
        .rows
        .iter()
        .any(|r| r.metric == "sensitivity" && !r.changed));

    let same = diff::diff(&a, &a);
    assert!(same.config.is_empty() && same.changed_rows().count() == 0);
}

#[test]
fn diff_command_prints_changes_and_parseable_json() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::parse(SMALL, "small.toml").unwrap();
    let a = experiment::run(&cfg, &experiment::quiet, &AtomicBool::new(false)).unwrap();
    let pa = dir.path().join("a.toml");
    let pb = dir.path().join("b.toml");
    record::save_as(&a, &pa).unwrap();
    record::save_as(&edited(&a), &pb).unwrap();

    let out = bin().arg("diff").arg(&pa).arg(&pb).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("train.epochs"), "{stdout}");
    assert!(
        stdout.contains("variance") && stdout.contains("loss_after"),
        "{stdout}"
    );
    assert!(stdout.contains(" 100%"), "{stdout}");
    assert!(
        !stdout.contains("sensitivity"),
        "only changed rows:\n{stdout}"
    );

    let out = bin()
        .arg("diff")
        .arg(&pa)
        .arg(&pb)
        .arg("--json")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json parses");
    assert_eq!(v["config"].as_array().unwrap().len(), 1);
    assert_eq!(v["config"][0]["key"], "train.epochs");
    assert_eq!(v["config"][0]["new"], "7");
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let loss = rows.iter().find(|r| r["metric"] == "loss_after").unwrap();
    assert_eq!(loss["variant"], "residual");
    assert_eq!(loss["section"], "pruning");
    assert_eq!(loss["ratio"], 0.2);
    assert!(close(
        loss["old"].as_f64().unwrap(),
        a.residual.pruning[0].loss_after
    ));

    let out = bin()
        .arg("diff")
        .arg(&pa)
        .arg(&pb)
        .args(["--json", "--all"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let all = v["rows"].as_array().unwrap();
    assert!(all.len() > 40);
    assert_eq!(all.iter().filter(|r| r["changed"] == true).count(), 2);
}

#[test]
fn show_exports_csv_and_json_with_the_record_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let path = run_config(dir.path(), SMALL, &[]);
    let rec = record::load(&path).unwrap();

    let out = bin()
        .arg("show")
        .arg(&path)
        .args(["--format", "csv"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    let mut rdr = csv::Reader::from_reader(out.stdout.as_slice());
    let head: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    for col in [
        "variant",
        "method",
        "ratio",
        "sensitivity",
        "accuracy_drop",
        "predicted_delta",
        "spectrum.variance",
        "spectrum.max",
    ] {
        assert!(head.iter().any(|h| h == col), "{col} missing in {head:?}");
    }
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 4, "2 models x 2 ratios");
    for (i, (v, k)) in [
        (Variant::Residual, 0),
        (Variant::Residual, 1),
        (Variant::Plain, 0),
        (Variant::Plain, 1),
    ]
    .into_iter()
    .enumerate()
    {
        let r = &rows[i];
        assert_eq!(&r[col("variant")], v.name());
        let want = &rec.variant(v).pruning[k];
        assert_eq!(r[col("ratio")].parse::<f64>().unwrap(), want.ratio);
        assert_eq!(
            r[col("sensitivity")].parse::<f64>().unwrap(),
            want.sensitivity
        );
        assert_eq!(
            r[col("spectrum.variance")].parse::<f64>().unwrap(),
            rec.variant(v).spectrum.as_ref().unwrap().stats.variance
        );
    }

    let out = bin()
        .arg("show")
        .arg(&path)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json parses");
    assert_eq!(v["name"], "small");
    assert_eq!(v["params"], rec.model.params);
    assert!(close(
        v["models"]["plain"]["pruning"][1]["sensitivity"]
            .as_f64()
            .unwrap(),
        rec.plain.pruning[1].sensitivity
    ));
    assert!(close(
        v["models"]["residual"]["spectrum"]["stats"]["trace"]
            .as_f64()
            .unwrap(),
        rec.residual.spectrum.as_ref().unwrap().stats.trace
    ));

    let out = bin().arg("show").arg(&path).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("lambda max") && table.contains("ratio"),
        "{table}"
    );
}

#[test]
fn a_checkpoint_written_and_read_back_equals_theta() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::parse(SMALL, "small.toml").unwrap();
    let (mut rec, weights) =
        experiment::run_with_weights(&cfg, &experiment::quiet, &AtomicBool::new(false)).unwrap();
    let weights = weights.expect("a complete run has weights");
    let claim = record::claim(&rec, dir.path(), true).unwrap();
    let spec = checkpoint::spec_of(&rec);
    rec.checkpoint = Some(checkpoint::write(&claim.path, &spec, &weights).unwrap());
    let path = record::save_claimed(&rec, claim).unwrap();

    let cp = rec.checkpoint.as_ref().unwrap();
    assert_eq!(
        Path::new(&cp.file),
        checkpoint::path_for(&path).file_name().unwrap()
    );
    assert_eq!(cp.sha256.len(), 64);
    let back = checkpoint::load(&path).unwrap();
    assert_eq!(back.metadata["format"], checkpoint::FORMAT);
    for (k, v) in Variant::BOTH.into_iter().enumerate() {
        assert_eq!(weights.models[k].variant, v);
        let theta = &weights.models[k].theta;
        assert_eq!(back.theta(v).unwrap(), *theta, "{v} theta");
        // PyTorch's nn.Linear: weight [out, in]
        let stem = &back.tensors[&format!("{v}.stem.weight")];
        assert_eq!(stem.shape, vec![6, 4]);
        assert_eq!(stem.dtype, "F64");
        assert_eq!(
            back.tensors[&format!("{v}.blocks.0.weight")].shape,
            vec![6, 6]
        );
        assert_eq!(back.tensors[&format!("{v}.head.bias")].shape, vec![2]);
        for row in &rec.variant(v).pruning {
            let (pruned, keep) = back
                .pruned(v, row.method, row.granularity, row.ratio)
                .unwrap();
            assert_eq!(keep.iter().filter(|k| !**k).count(), row.pruned);
            // the stored mask is the one magnitude pruning derives from the trained theta
            let layout = checkpoint::layout_of(&rec, v);
            let again =
                resprune::prune::magnitude_mask(theta, &layout, &rec.config.prune, row.ratio);
            assert_eq!(keep, again.keep, "{v} mask at {}", row.ratio);
            for i in 0..pruned.len() {
                let want = if keep[i] { theta[i] } else { 0.0 };
                assert_eq!(pruned[i], want);
            }
            let key = checkpoint::row_key(
                resprune::config::PruneMethod::Magnitude,
                row.granularity,
                row.ratio,
            );
            let mask = &back.tensors[&format!("{v}.mask.{key}.stem.weight")];
            assert_eq!(mask.dtype, "U8");
        }
    }
}

#[test]
fn run_save_weights_writes_a_checkpoint_and_an_edited_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = run_config(dir.path(), SMALL, &["--save-weights"]);
    let rec = record::load(&path).unwrap();
    let cp = rec
        .checkpoint
        .clone()
        .expect("the record names its checkpoint");
    let file = dir.path().join(&cp.file);
    assert_eq!(file, checkpoint::path_for(&path));
    let w = checkpoint::load(&path).unwrap();
    assert_eq!(w.theta(Variant::Plain).unwrap().len(), rec.model.params);
    // 2 models x (6 trained + 6 initial + 2 ratios x 12 pruned/mask) tensors, and the data:
    // x and y of train, eval and the Hessian batch, the batch order, 2 source indices
    assert_eq!(w.tensors.len(), 2 * (12 + 2 * 12) + 9);

    // one byte of one weight changed: refused, naming both hashes
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    let e = checkpoint::load(&path).unwrap_err();
    assert!(
        matches!(e, checkpoint::CheckpointError::Mismatch { .. }),
        "{e}"
    );
    let msg = e.to_string();
    assert!(msg.contains(&cp.sha256) && msg.contains("SHA-256"), "{msg}");

    std::fs::remove_file(&file).unwrap();
    let e = checkpoint::load(&path).unwrap_err();
    assert!(e.to_string().contains("cannot read checkpoint"), "{e}");
}

#[test]
fn an_unwritable_output_dir_is_reported_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("small.toml");
    // many epochs: if training started, the test would notice the time
    std::fs::write(&cfg, SMALL.replace("epochs = 3", "epochs = 100000")).unwrap();
    // a path under a regular file can never be a folder, even for root
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"").unwrap();
    let t = std::time::Instant::now();
    let out = bin()
        .arg("run")
        .arg(&cfg)
        .arg("--out")
        .arg(blocker.join("sub"))
        .arg("--quiet")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.is_empty(), "nothing ran: {stdout}");
    assert!(
        stderr.contains("not-a-dir/sub") && stderr.contains("--out"),
        "{stderr}"
    );
    assert!(t.elapsed().as_secs() < 20, "reported before training");
}

#[test]
fn missing_unknown_and_newer_fields_name_the_field_and_the_line() {
    let cfg = Config::parse(SMALL, "small.toml").unwrap();
    let rec = experiment::run(&cfg, &experiment::quiet, &AtomicBool::new(false)).unwrap();
    let text = rec.to_toml().unwrap();
    let without = |pat: &str| {
        let mut out = String::new();
        let mut done = false;
        for l in text.lines() {
            if !done && l.starts_with(pat) {
                done = true;
                continue;
            }
            out.push_str(l);
            out.push('\n');
        }
        assert!(done, "{pat}");
        out
    };
    let e = record::parse(&without("tool_version ="), "r.toml")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("r.toml:1: `tool_version`"), "{e}");
    assert!(e.contains("missing field `tool_version`"), "{e}");

    let broken = without("loss_after =");
    let header = broken
        .lines()
        .position(|l| l == "[[residual.pruning]]")
        .unwrap()
        + 1;
    let e = record::parse(&broken, "r.toml").unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("r.toml:{header}: `residual.pruning.0.loss_after`")),
        "{e}"
    );

    let extra = text.replacen("[machine]\n", "[machine]\ngpu = \"none\"\n", 1);
    let line = extra.lines().position(|l| l.starts_with("gpu")).unwrap() + 1;
    let e = record::parse(&extra, "r.toml").unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("r.toml:{line}: `machine.gpu`")) && e.contains("unknown field"),
        "{e}"
    );

    let newer = text.replacen(
        &format!("schema_version = {}", record::SCHEMA_VERSION),
        "schema_version = 42",
        1,
    );
    let e = record::parse(&newer, "r.toml").unwrap_err().to_string();
    assert!(
        e.contains("42") && e.contains(&format!("({})", record::SCHEMA_VERSION)),
        "{e}"
    );

    // records written before replay_of and checkpoint existed still load
    assert!(!text.contains("replay_of") && !text.contains("checkpoint"));
    assert_eq!(record::parse(&text, "r.toml").unwrap(), rec);
}

/// Records made on an NVIDIA H200 (scripts/gpu_check.sh, docs/gpu.md): a CPU run and its
/// `replay --device cuda`, for the article experiment (dense Hessian) and a small transformer
/// (Lanczos, SLQ, Hutchinson). They pin the measured CPU/GPU agreement, so CI (no GPU) checks
/// that the comparison keeps calling it agreement.
///
/// Tolerance 1e-9: both sides are f64; the devices sum in different orders (~1e-16 relative),
/// which the finite-difference Hessian (step 1e-5 relative) amplifies about 1e5-fold; the
/// measured largest difference is 2e-11 (article) and 4e-10 (transformer, SLQ density).
#[test]
fn cpu_and_gpu_records_agree_within_1e_9() {
    let fixture = |name: &str| {
        record::load(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/gpu")
                .join(name),
        )
        .unwrap()
    };
    for (cpu, gpu, dense) in [
        ("article-cpu.toml", "article-cuda.toml", true),
        ("transformer-cpu.toml", "transformer-cuda.toml", false),
    ] {
        let (cpu, mut gpu) = (fixture(cpu), fixture(gpu));
        assert_eq!(cpu.machine.device, "cpu");
        assert_eq!(gpu.machine.device, "cuda:0");
        let c = record::compare::compare(&cpu, &gpu, 1e-9);
        assert!(c.mismatches.is_empty(), "{:#?}", c.mismatches);
        assert!(c.numbers > 1800, "{}", c.numbers);
        let (at, largest) = c.largest.clone().unwrap();
        assert!(largest > 0.0 && largest < 1e-9, "{largest} at {at}");
        // training itself agrees to the last digits
        let loss = |r: &Record| r.residual.history.last().unwrap().train_loss;
        assert!(diff::rel_error(loss(&cpu), loss(&gpu)) < 1e-13);
        if dense {
            // the FD noise measures are what differs, and only they are left out
            assert!(c
                .not_compared
                .iter()
                .all(|p| record::compare::is_fd_noise(p)));
            assert!(c
                .not_compared
                .contains(&"plain.spectrum.asymmetry".to_string()));
            gpu.machine.device = cpu.machine.device.clone();
            let same_device = record::compare::compare(&cpu, &gpu, 1e-9);
            assert!(same_device.not_compared.is_empty());
            assert!(!same_device.mismatches.is_empty());
            assert!(same_device
                .mismatches
                .iter()
                .all(|m| record::compare::is_fd_noise(&m.path)));
        } else {
            // Lanczos spectra carry no FD noise measures: everything is compared
            assert!(c.not_compared.is_empty(), "{:?}", c.not_compared);
        }
    }
}

/// `resprune-tui show R | head` closes the pipe early: the tool ends quietly (SIGPIPE), as
/// other command-line tools do, instead of panicking on the failed print.
#[cfg(unix)]
#[test]
fn printing_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/article-record.toml");
    let mut child = bin()
        .arg("show")
        .arg(&fixture)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before the first line is written
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    // ended by SIGPIPE, or (if it wrote everything before the pipe closed) successfully
    assert!(
        out.status.signal() == Some(libc::SIGPIPE) || out.status.success(),
        "{:?} {stderr}",
        out.status
    );
}

/// Across summation orders the condition may be resolved on one side only (an eigenvalue at
/// the edge of the band above the noise floor): the key is then absent from one record, and
/// it is still a noise measure left out, not a mismatch.
#[test]
fn a_condition_resolved_on_one_side_only_is_left_out_across_thread_counts() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/article-record.toml");
    let stored = record::load(&fixture).unwrap();
    let mut new = stored.clone();
    new.machine.threads = stored.machine.threads + 1;
    new.plain.spectrum.as_mut().unwrap().stats.condition = None;
    let c = record::compare::compare(&stored, &new, 0.0);
    assert!(c.mismatches.is_empty(), "{:?}", c.mismatches);
    assert!(c
        .not_compared
        .contains(&"plain.spectrum.stats.condition".to_string()));
    // and the other way round
    let c = record::compare::compare(&new, &stored, 0.0);
    assert!(c.mismatches.is_empty(), "{:?}", c.mismatches);
    assert!(c
        .not_compared
        .contains(&"plain.spectrum.stats.condition".to_string()));
}
