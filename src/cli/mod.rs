//! The headless commands: run, show, new, list.

pub mod summary;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::{self, Config};
use crate::experiment::{self, RunEvent, Stage};
use crate::record::{self, Status};

/// Sets the kernel thread count once per process (0 = one per core).
pub fn init_threads(threads: usize) {
    if threads > 0 {
        // fails only when already set, which is harmless
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global();
    }
}

/// Ctrl-C and SIGTERM set the flag; the run then stops at the next checkpoint and the record
/// is written with `status = "interrupted"`.
pub fn cancel_on_signals() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
    }
    flag
}

pub struct RunArgs<'a> {
    pub config: &'a Path,
    pub out: Option<&'a Path>,
    pub threads: Option<usize>,
    pub replicates: Option<usize>,
    /// `cpu`, `cuda`, `cuda:N`, `auto` (overrides the config's `device`).
    pub device: Option<&'a str>,
    pub quiet: bool,
}

/// `resprune-tui run CONFIG`: trains, measures, prunes, writes the record, prints the summary.
pub fn run(args: RunArgs<'_>) -> Result<PathBuf> {
    let mut cfg = Config::load(args.config)?;
    if let Some(t) = args.threads {
        cfg.threads = t;
    }
    if let Some(d) = args.device {
        cfg.device = d
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--device: {e}"))?;
        cfg.validate()
            .map_err(|(k, m)| anyhow::anyhow!("--device: `{k}` {m}"))?;
    }
    if let Some(n) = args.replicates {
        cfg.replicates = n;
        cfg.seeds.clear();
        cfg.validate()
            .map_err(|(k, m)| anyhow::anyhow!("--replicates: `{k}` {m}"))?;
    }
    init_threads(cfg.threads);
    let dir = record::default_dir(args.out);
    // an unwritable output folder is reported now, not after minutes of training
    record::check_writable(&dir).with_context(|| {
        format!(
            "records go to {}; pass --out DIR to write elsewhere",
            dir.display()
        )
    })?;
    let cancel = cancel_on_signals();
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix:>18} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let sink = |ev: RunEvent| {
        match ev {
            RunEvent::StageStarted { variant, stage } => {
                bar.set_prefix(format!("{variant} {}", stage.name()));
                bar.set_position(0);
                bar.set_length(match stage {
                    Stage::Train => cfg.train.epochs as u64,
                    Stage::Spectrum => 0,
                    Stage::Prune => cfg.prune.ratios.len() as u64,
                });
                bar.set_message("");
            }
            RunEvent::Epoch { stats, .. } => {
                bar.set_position(stats.epoch as u64);
                bar.set_message(format!(
                    "loss {:.4} acc {:.3}",
                    stats.train_loss, stats.train_accuracy
                ));
            }
            RunEvent::HessianProgress { done, total, .. } => {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
                bar.set_message("Hessian columns");
            }
            RunEvent::PruneRow { row, .. } => {
                bar.inc(1);
                bar.set_message(format!("ratio {} S {:.4}", row.ratio, row.sensitivity));
            }
            _ => {}
        }
        true
    };
    let result = experiment::run(&cfg, &sink, &cancel);
    bar.finish_and_clear();
    let rec = result?;
    let path = record::save(&rec, &dir)?;
    print!("{}", summary::render(&rec));
    match rec.status {
        Status::Complete => println!("record: {}", path.display()),
        _ => println!(
            "record ({}): {}",
            summary::status_word(rec.status),
            path.display()
        ),
    }
    Ok(path)
}

/// `resprune-tui show RECORD`.
pub fn show(path: &Path) -> Result<()> {
    let rec = record::load(path)?;
    print!("{}", summary::render(&rec));
    Ok(())
}

/// `resprune-tui new NAME`: a commented template with every key and its default.
pub fn new(name: &str, out: Option<&Path>, force: bool) -> Result<PathBuf> {
    let dir = match out {
        Some(d) => d.to_path_buf(),
        None if Path::new("experiments").is_dir() => PathBuf::from("experiments"),
        None => PathBuf::from("."),
    };
    let text = config::template(name);
    // the template must itself be a valid config
    Config::parse(&text, "template").context("internal: the template does not parse")?;
    let path = dir.join(format!("{name}.toml"));
    if path.exists() && !force {
        bail!(
            "{} exists; pick another name or pass --force to overwrite it",
            path.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    record::write_atomic(&path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "wrote {}; edit it, then: resprune-tui run {}",
        path.display(),
        path.display()
    );
    Ok(path)
}

/// `resprune-tui list [DIR]`: records, newest first.
pub fn list(dir: Option<&Path>) -> Result<()> {
    let dir = record::default_dir(dir);
    let records = record::list(&dir);
    if records.is_empty() {
        println!("no records in {}", dir.display());
        return Ok(());
    }
    println!(
        "{:<40} {:<20} {:>7} {:>10} {:>10} {:<11}",
        "record", "started", "params", "S res", "S plain", "status"
    );
    for (path, rec) in records {
        let file = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        match rec {
            Ok(r) => {
                let (sr, sp) = summary::middle_sensitivity(&r);
                println!(
                    "{:<40} {:<20} {:>7} {:>10} {:>10} {:<11}",
                    file,
                    r.started_at,
                    r.model.params,
                    summary::opt(sr),
                    summary::opt(sp),
                    summary::status_word(r.status)
                );
            }
            Err(e) => println!("{file:<40} unreadable: {e}"),
        }
    }
    Ok(())
}
