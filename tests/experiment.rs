//! The whole run: records round-trip, runs are deterministic, cancelling keeps what finished.

use std::sync::atomic::{AtomicBool, Ordering};

use resprune::config::Config;
use resprune::experiment::{self, RunEvent};
use resprune::record::{self, Record, Status};

fn small_config() -> Config {
    Config::parse(
        r#"
name = "small"
seed = 5
[data]
source = "teacher"
samples = 60
features = 4
eval_fraction = 0.25
[model]
width = 6
depth = 2
activation = "tanh"
alpha = 0.5
[train]
epochs = 3
batch_size = 8
lr = 0.01
[prune]
ratios = [0.2, 0.4]
"#,
        "small.toml",
    )
    .unwrap()
}

fn without_clock(mut r: Record) -> Record {
    r.started_at.clear();
    r.finished_at.clear();
    r.timings = Default::default();
    r
}

#[test]
fn a_run_fills_every_stage_for_both_models() {
    let cfg = small_config();
    let r = experiment::run(&cfg, &experiment::quiet, &AtomicBool::new(false)).unwrap();
    assert_eq!(r.status, Status::Complete);
    assert_eq!(r.schema_version, record::SCHEMA_VERSION);
    assert_eq!(r.config, cfg);
    // 4*6+6 + 2*(36+6) + 2*6+2
    assert_eq!(r.model.params, 30 + 84 + 14);
    assert_eq!((r.data.train_samples, r.data.eval_samples), (45, 15));
    for v in [&r.residual, &r.plain] {
        assert_eq!(v.history.len(), 4, "epoch 0 plus 3");
        let s = v.spectrum.as_ref().unwrap();
        assert_eq!(s.eigenvalues.len(), 128);
        assert_eq!(s.samples, 45);
        assert_eq!(s.histogram.counts.iter().sum::<u64>(), 128);
        assert_eq!(v.pruning.len(), 2);
        assert_eq!(v.pruning[0].eligible, 24 + 72 + 12);
        assert_eq!(v.pruning[0].pruned, (0.2f64 * 108.0).floor() as usize);
    }
    // same init: epoch 0 differs only through the skip, never through theta
    assert_ne!(
        r.residual.history[0].train_loss,
        r.plain.history[0].train_loss
    );
}

#[test]
fn records_round_trip_through_toml_and_disk() {
    let r = experiment::run(&small_config(), &experiment::quiet, &AtomicBool::new(false)).unwrap();
    let text = r.to_toml().unwrap();
    let back = record::parse(&text, "mem").unwrap();
    assert_eq!(back, r);
    let dir = tempfile::tempdir().unwrap();
    let path = record::save(&r, dir.path()).unwrap();
    assert!(path
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("small-"));
    assert_eq!(record::load(&path).unwrap(), r);
    // a second save of the same record does not overwrite the first
    let path2 = record::save(&r, dir.path()).unwrap();
    assert_ne!(path, path2);
    // no temporary file is left behind
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn two_runs_give_identical_records_but_the_clock() {
    let cfg = small_config();
    let a = experiment::run(&cfg, &experiment::quiet, &AtomicBool::new(false)).unwrap();
    let b = experiment::run(&cfg, &experiment::quiet, &AtomicBool::new(false)).unwrap();
    assert_eq!(without_clock(a.clone()), without_clock(b));
    let mut other = cfg.clone();
    other.seed = 6;
    let c = experiment::run(&other, &experiment::quiet, &AtomicBool::new(false)).unwrap();
    assert_ne!(a.residual.history, c.residual.history);
}

#[test]
fn events_follow_the_stages_and_cancel_keeps_finished_ones() {
    let cfg = small_config();
    let cancel = AtomicBool::new(false);
    let events = std::sync::Mutex::new(Vec::new());
    let sink = |ev: RunEvent| {
        // cancel as soon as the first spectrum is done
        if matches!(ev, RunEvent::Spectrum { .. }) {
            cancel.store(true, Ordering::Relaxed);
        }
        events.lock().unwrap().push(ev);
        true
    };
    let r = experiment::run(&cfg, &sink, &cancel).unwrap();
    assert_eq!(r.status, Status::Interrupted);
    assert_eq!(r.residual.history.len(), 4);
    assert_eq!(r.plain.history.len(), 4);
    // dense spectra run side by side: the member that finished first keeps its spectrum (the
    // other may have finished in the same instant, or been stopped before its next column)
    let ev = events.into_inner().unwrap();
    let first = ev
        .iter()
        .find_map(|e| match e {
            RunEvent::Spectrum { variant, .. } => Some(*variant),
            _ => None,
        })
        .unwrap();
    assert!(r.variant(first).spectrum.is_some(), "{first}");
    assert!(r.residual.pruning.is_empty() && r.plain.pruning.is_empty());
    assert!(matches!(ev[0], RunEvent::Started { params: 128, .. }));
    let epochs = ev
        .iter()
        .filter(|e| matches!(e, RunEvent::Epoch { .. }))
        .count();
    assert_eq!(epochs, 8);
    // the interrupted record is a valid record
    let back = record::parse(&r.to_toml().unwrap(), "mem").unwrap();
    assert_eq!(back, r);
}

#[test]
fn a_listener_that_goes_away_cancels_the_run() {
    let r = experiment::run(&small_config(), &|_| false, &AtomicBool::new(false)).unwrap();
    assert_eq!(r.status, Status::Interrupted);
    assert_eq!(r.residual.history.len(), 1);
}

#[test]
fn divergence_names_the_epoch() {
    let mut cfg = small_config();
    cfg.train.lr = 1e300;
    cfg.model.activation = resprune::model::Activation::Relu;
    cfg.train.optimizer = resprune::config::Optimizer::Sgd;
    let e = experiment::run(&cfg, &experiment::quiet, &AtomicBool::new(false)).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("epoch 1") && msg.contains("lower train.lr"),
        "{msg}"
    );
}

#[test]
fn garbled_records_are_errors_with_a_line() {
    let r = experiment::run(&small_config(), &experiment::quiet, &AtomicBool::new(false)).unwrap();
    let text = r.to_toml().unwrap();
    let broken = text.replacen("status = \"complete\"", "status = \"complete", 1);
    let e = record::parse(&broken, "r.toml").unwrap_err().to_string();
    assert!(e.starts_with("r.toml:3:"), "{e}");
    let current = format!("schema_version = {}", record::SCHEMA_VERSION);
    let newer = text.replacen(&current, "schema_version = 99", 1);
    let e = record::parse(&newer, "r.toml").unwrap_err().to_string();
    assert!(e.contains("99") && e.contains("upgrade"), "{e}");
    let extra = text.replacen(
        "status = \"complete\"",
        "status = \"complete\"\nbogus = 1",
        1,
    );
    let e = record::parse(&extra, "r.toml").unwrap_err().to_string();
    assert!(e.contains("bogus") && e.starts_with("r.toml:4:"), "{e}");
}

/// A cancel during the pruning sweep keeps the rows that finished, and one during fine-tuning
/// keeps every pruning row with the fine-tuned results that finished.
#[test]
fn cancel_in_prune_and_finetune_keeps_finished_rows() {
    let mut cfg = small_config();
    cfg.prune.finetune_epochs = 1;
    let run_until = |stop: &(dyn Fn(&RunEvent) -> bool + Sync)| {
        let cancel = AtomicBool::new(false);
        let sink = |ev: RunEvent| {
            if stop(&ev) {
                cancel.store(true, Ordering::Relaxed);
            }
            true
        };
        experiment::run(&cfg, &sink, &cancel).unwrap()
    };
    // the residual model's first row is in when the cancel comes
    let r = run_until(&|ev| matches!(ev, RunEvent::PruneRow { .. }));
    assert_eq!(r.status, Status::Interrupted);
    assert_eq!(r.residual.pruning.len(), 1);
    assert!(r.plain.pruning.is_empty());
    // both tables are in; the residual model's first row is fine-tuned
    let r = run_until(&|ev| matches!(ev, RunEvent::Finetuned { .. }));
    assert_eq!(r.status, Status::Interrupted);
    assert_eq!(r.residual.pruning.len(), 2);
    assert_eq!(r.plain.pruning.len(), 2);
    assert!(r.residual.pruning[0].finetuned.is_some());
    assert!(r.residual.pruning[1].finetuned.is_none());
    assert!(r.plain.pruning.iter().all(|row| row.finetuned.is_none()));
    // a complete run fine-tunes every row, the same as the interrupted one did
    let full = experiment::run(&cfg, &experiment::quiet, &AtomicBool::new(false)).unwrap();
    assert_eq!(full.residual.pruning[0], r.residual.pruning[0]);
    assert!(full.plain.pruning.iter().all(|row| row.finetuned.is_some()));
}

/// Checks that depend on the data fail before any training: no epoch is ever reported.
#[test]
fn data_dependent_checks_run_before_training() {
    let mut cfg = small_config();
    cfg.hessian.check_batch = true;
    cfg.hessian.samples = 40;
    let epochs = std::sync::atomic::AtomicUsize::new(0);
    let sink = |ev: RunEvent| {
        if matches!(ev, RunEvent::Epoch { .. }) {
            epochs.fetch_add(1, Ordering::Relaxed);
        }
        true
    };
    let e = experiment::run(&cfg, &sink, &AtomicBool::new(false)).unwrap_err();
    assert!(
        e.to_string()
            .contains("hessian.check_batch needs 2 x hessian.samples = 80"),
        "{e}"
    );
    assert_eq!(epochs.load(Ordering::Relaxed), 0);
}
