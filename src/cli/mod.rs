//! The headless commands: run, replay, diff, show, new, list, bench, plot.

pub mod summary;
pub mod sweep;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::{self, Config};
use crate::curvature::SpectrumPhase;
use crate::experiment::{self, RunEvent, Stage};
use crate::frontend::{self, format_number, init_threads, NumberStyle};
use crate::record::diff::RecordDiff;
use crate::record::{self, checkpoint, Status};

/// The `--device` flag of run, replay and bench.
fn device_flag(s: &str) -> Result<config::DeviceChoice> {
    s.parse()
        .map_err(|e: String| anyhow::anyhow!("--device: {e}"))
}

/// The signal that stopped the run, 0 when none did.
static STOPPED_BY: std::sync::OnceLock<Arc<std::sync::atomic::AtomicUsize>> =
    std::sync::OnceLock::new();

/// Ctrl-C and SIGTERM set the flag; the run then stops at the next checkpoint and the record
/// is written with `status = "interrupted"`. [`signal_exit_code`] then says which it was.
pub fn cancel_on_signals() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let which = STOPPED_BY.get_or_init(Default::default);
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
        let _ = signal_hook::flag::register_usize(sig, Arc::clone(which), sig as usize);
    }
    flag
}

/// The shell's exit code for a command stopped by a signal (128 + its number: 130 for
/// SIGINT, 143 for SIGTERM), once the interrupted record is written; `None` when no signal
/// came.
pub fn signal_exit_code() -> Option<u8> {
    let sig = STOPPED_BY.get()?.load(std::sync::atomic::Ordering::Relaxed);
    (sig > 0).then(|| 128 + sig as u8)
}

pub struct RunArgs<'a> {
    pub config: &'a Path,
    pub out: Option<&'a Path>,
    pub threads: Option<usize>,
    pub replicates: Option<usize>,
    /// `cpu`, `cuda`, `cuda:N`, `auto` (overrides the config's `device`).
    pub device: Option<&'a str>,
    pub quiet: bool,
    /// Also write `<record>.safetensors` with the trained and pruned weights and the masks.
    pub save_weights: bool,
    /// `--set KEY=VALUE` overrides, checked as the file is.
    pub sets: &'a [String],
}

/// `resprune-tui run CONFIG`: trains, measures, prunes, writes the record, prints the summary.
pub fn run(args: RunArgs<'_>) -> Result<PathBuf> {
    let mut cfg = Config::load_with(args.config, &config::Override::parse_all(args.sets)?)?;
    if !cfg.sweep.is_empty() {
        bail!(
            "{} has a [sweep] of {} points: run them with `resprune-tui sweep {}`",
            args.config.display(),
            cfg.sweep.points().len(),
            args.config.display()
        );
    }
    if let Some(t) = args.threads {
        cfg.threads = t;
    }
    if let Some(d) = args.device {
        cfg.device = device_flag(d)?;
        cfg.validate()
            .map_err(|e| anyhow::anyhow!("--device: {e}"))?;
    }
    if let Some(n) = args.replicates {
        cfg.replicates = n;
        cfg.seeds.clear();
        cfg.validate()
            .map_err(|e| anyhow::anyhow!("--replicates: {e}"))?;
    }
    let dir = record::default_dir(args.out);
    // an unwritable output folder is reported now, not after minutes of training
    record::check_writable(&dir).with_context(|| {
        format!(
            "records go to {}; pass --out DIR to write elsewhere",
            dir.display()
        )
    })?;
    for p in record::clean_stale_temps(&dir) {
        eprintln!(
            "note: removed {}, left by a run that was killed while saving",
            p.display()
        );
    }
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
                    Stage::Prune | Stage::Finetune => crate::prune::row_count(&cfg.prune) as u64,
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
            RunEvent::HessianProgress {
                variant,
                phase,
                done,
                total,
            } => {
                // dense spectra of both members run side by side: say whose columns these are
                bar.set_prefix(format!("{variant} {}", Stage::Spectrum.name()));
                bar.set_length(total as u64);
                bar.set_position(done as u64);
                bar.set_message(match phase {
                    SpectrumPhase::Dense => "Hessian columns".to_string(),
                    p => format!("{}: Hessian-vector products", p.name()),
                });
            }
            RunEvent::PruneRow { row, .. } => {
                bar.inc(1);
                bar.set_message(format!("ratio {} S {:.4}", row.ratio, row.sensitivity));
            }
            RunEvent::Finetuned { finetuned, .. } => {
                bar.inc(1);
                bar.set_message(format!("fine-tuned S {:.4}", finetuned.sensitivity));
            }
            _ => {}
        }
        true
    };
    let result = if args.save_weights {
        experiment::run_with_weights(&cfg, &sink, &cancel)
    } else {
        experiment::run(&cfg, &sink, &cancel).map(|r| (r, None))
    };
    bar.finish_and_clear();
    // an error found once the data is in (a split too small, a model too big) names the file
    let (mut rec, weights) = result.with_context(|| args.config.display().to_string())?;
    let weights = weights.filter(|_| args.save_weights);
    if args.save_weights && weights.is_none() {
        eprintln!("note: the run did not complete; no weights saved");
    }
    let claim = record::claim(&rec, &dir, weights.is_some())?;
    if let Some(w) = weights {
        // the weights first: a record never names a file that is not there
        let spec = checkpoint::spec_of(&rec);
        rec.checkpoint = Some(checkpoint::write(&claim.path, &spec, &w)?);
    }
    let path = record::save_claimed(&rec, claim)?;
    print!("{}", summary::render(&rec));
    match rec.status {
        Status::Complete => println!("record: {}", path.display()),
        _ => println!("record ({}): {}", rec.status, path.display()),
    }
    if let Some(cp) = &rec.checkpoint {
        println!("weights: {}", path.with_file_name(&cp.file).display());
    }
    Ok(path)
}

/// `resprune-tui replay RECORD`: re-runs the stored config, writes the new record beside the
/// old one and prints every value that differs by more than `tolerance` (relative). Returns
/// whether all matched.
pub fn replay(
    path: &Path,
    tolerance: f64,
    threads: Option<usize>,
    device: Option<&str>,
    quiet: bool,
) -> Result<bool> {
    let opts = experiment::ReplayOptions {
        tolerance,
        device: device.map(device_flag).transpose()?,
        threads,
    };
    let cancel = cancel_on_signals();
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    let sink = |ev: RunEvent| {
        if let RunEvent::StageStarted { variant, stage } = ev {
            bar.set_message(format!("replaying: {variant} {}", stage.name()));
        }
        true
    };
    let result = experiment::replay(path, &opts, &sink, &cancel);
    bar.finish_and_clear();
    let r = result?;
    let c = &r.comparison;
    if r.threads_differ() {
        eprintln!(
            "note: the record ran on {} threads, this replay on {}; results may differ in \
             the last digits",
            r.stored.machine.threads, r.new.machine.threads
        );
    }
    if r.stored.machine.kernels != r.new.machine.kernels {
        let was = match r.stored.machine.kernels.as_str() {
            "" => "gemm 0.15 (before records kept it)",
            k => k,
        };
        eprintln!(
            "note: the record's matrix products ran {was}, this replay's {}; results may \
             differ in the last digits (vendor/README.md)",
            r.new.machine.kernels
        );
    }
    println!("replay of {}: {}", path.display(), r.new_path.display());
    if r.new.machine.device != r.stored.machine.device {
        println!(
            "stored on {}, replayed on {}",
            r.stored.machine.device, r.new.machine.device
        );
    }
    if !c.changed_meaning.is_empty() {
        println!(
            "not compared (the stored record is schema {}; their meaning changed since): {} \
             near-zero, negative and condition counts, now taken at the finite-difference \
             noise floor (docs/record-format.md)",
            r.stored.schema_version,
            c.changed_meaning.len()
        );
    }
    if !c.not_compared.is_empty() {
        println!(
            "not compared (another device, thread count or GEMM kernel sums in another \
             order): {} \
             finite-difference noise measures of the dense spectra (asymmetry, noise_floor, \
             and the negatives, near_zero and condition counts that hinge on eigenvalues \
             within that noise)",
            c.not_compared.len()
        );
    }
    match &c.largest {
        Some((_, e)) if *e == 0.0 => println!("every number is identical"),
        Some((at, e)) => println!("largest relative difference: {e:.3e} at {at}"),
        None => {}
    }
    if r.new.status != Status::Complete {
        println!(
            "the replay stopped early ({}); values it did not reach count as mismatches",
            r.new.status
        );
    }
    if c.mismatches.is_empty() {
        println!(
            "all {} values match ({} numbers, {})",
            c.compared,
            c.numbers,
            if tolerance == 0.0 {
                "exactly".to_string()
            } else {
                format!("within relative error {tolerance}")
            }
        );
        return Ok(true);
    }
    println!(
        "{} of {} values differ{}:",
        c.mismatches.len(),
        c.compared,
        if tolerance == 0.0 {
            String::new()
        } else {
            format!(" by more than relative error {tolerance}")
        }
    );
    let w = c
        .mismatches
        .iter()
        .map(|m| m.path.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:<w$}  {:>24}  {:>24}  {:>10}",
        "path", "stored", "new", "rel error"
    );
    for m in &c.mismatches {
        println!(
            "{:<w$}  {:>24}  {:>24}  {:>10}",
            m.path,
            m.stored.as_deref().unwrap_or("(absent)"),
            m.new.as_deref().unwrap_or("(absent)"),
            m.rel_error
                .map(|e| format!("{e:.3e}"))
                .unwrap_or_else(|| "-".into())
        );
    }
    Ok(false)
}

/// Options of `resprune-tui bench`.
pub struct BenchArgs<'a> {
    pub device: &'a str,
    pub options: crate::bench::BenchOptions,
    pub threads: usize,
    pub json: bool,
}

/// `resprune-tui bench`: times the HVP bench problem on a device and prints a table.
pub fn bench(args: BenchArgs<'_>) -> Result<()> {
    let choice = device_flag(args.device)?;
    init_threads(args.threads);
    let (backend, device) = experiment::open_device(choice)?;
    println!(
        "bench on {device}, {} threads: 784 -> 256 x 4 blocks -> 10, batch 1000 (peer.py part (c))",
        rayon::current_num_threads()
    );
    println!(
        "{:<9} {:<22} {:>5} {:>12} {:>12}",
        "variant", "what", "reps", "median", "min"
    );
    let ms = |s: f64| {
        if s >= 1.0 {
            format!("{s:.3} s")
        } else {
            format!("{:.2} ms", s * 1e3)
        }
    };
    let report = crate::bench::run(&backend, &device, args.options, &mut |r| {
        println!(
            "{:<9} {:<22} {:>5} {:>12} {:>12}",
            r.variant,
            r.what,
            r.reps,
            ms(r.median_s),
            ms(r.min_s)
        );
    });
    for (variant, top) in &report.top_eigenvalue {
        println!("{variant}: top Ritz value {top:.10e}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

/// Options of `resprune-tui diff`.
pub struct DiffArgs<'a> {
    pub old: &'a Path,
    pub new: &'a Path,
    /// Every result row, not only those that changed.
    pub all: bool,
    pub json: bool,
    /// Significant digits in the table.
    pub precision: usize,
}

/// `resprune-tui diff A B`: config changes and results side by side (changed rows only unless
/// `all`), as a table or JSON.
pub fn diff(args: DiffArgs<'_>) -> Result<()> {
    let a = record::load(args.old)?;
    let b = record::load(args.new)?;
    let d = record::diff::diff(&a, &b);
    if args.json {
        let rows: Vec<_> = d.rows.iter().filter(|r| args.all || r.changed).collect();
        let out = serde_json::json!({
            "old": args.old.display().to_string(),
            "new": args.new.display().to_string(),
            "config": d.config,
            "rows": rows,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    print!(
        "{}",
        render_diff(&d, args.old, args.new, args.all, args.precision)
    );
    Ok(())
}

/// The text form of a [`RecordDiff`].
pub fn render_diff(d: &RecordDiff, old: &Path, new: &Path, all: bool, precision: usize) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "old: {}\nnew: {}", old.display(), new.display());
    if d.config.is_empty() {
        let _ = writeln!(s, "\nconfig: identical");
    } else {
        let table: Vec<[String; 3]> = d
            .config
            .iter()
            .map(|c| {
                [
                    c.key.clone(),
                    c.old.clone().unwrap_or_else(|| "-".into()),
                    c.new.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        let _ = writeln!(s, "\nconfig ({} changed):", d.config.len());
        write_table(&mut s, &["key", "old", "new"], &table, 1);
    }
    let rows: Vec<_> = d.rows.iter().filter(|r| all || r.changed).collect();
    let changed = d.changed_rows().count();
    if rows.is_empty() {
        let _ = writeln!(s, "\nresults: identical ({} values)", d.rows.len());
        return s;
    }
    let num = |x: Option<f64>| frontend::opt(x, NumberStyle::significant(precision));
    let table: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.variant.to_string(),
                match (&r.method, r.ratio) {
                    (Some(m), Some(q)) => format!("pruning {m} {q}"),
                    _ => r.section.name().to_string(),
                },
                r.metric.clone(),
                num(r.old),
                num(r.new),
                num(r.delta),
                r.delta_pct
                    .map(|p| format!("{}%", format_number(p, NumberStyle::significant(3))))
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let _ = writeln!(
        s,
        "\nresults ({changed} of {} values changed{}):",
        d.rows.len(),
        if all { "" } else { "; --all shows every row" }
    );
    write_table(
        &mut s,
        &["model", "table", "metric", "old", "new", "Δ", "Δ%"],
        &table,
        3,
    );
    s
}

/// Aligned columns: the first `left` left-aligned, the rest right-aligned.
fn write_table<const N: usize>(
    s: &mut String,
    head: &[&str; N],
    rows: &[[String; N]],
    left: usize,
) {
    use std::fmt::Write;
    let mut w = [0usize; N];
    for (i, h) in head.iter().enumerate() {
        w[i] = h.chars().count();
    }
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |s: &mut String, cells: Vec<&str>| {
        let mut out = String::from(" ");
        for (i, c) in cells.iter().enumerate() {
            let pad = w[i] - c.chars().count();
            out.push(' ');
            if i < left {
                out.push_str(c);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str(&" ".repeat(pad));
                out.push_str(c);
            }
            out.push(' ');
        }
        let _ = writeln!(s, "{}", out.trim_end());
    };
    line(s, head.to_vec());
    for r in rows {
        line(s, r.iter().map(String::as_str).collect());
    }
}

/// How `show` prints a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ShowFormat {
    /// The readable summary.
    #[default]
    Table,
    /// Pruning table with spectrum statistics, one row per model and ratio.
    Csv,
    /// Final epoch, spectrum statistics and pruning table per model.
    Json,
}

/// `resprune-tui show RECORD --format table|csv|json`.
pub fn show_as(path: &Path, format: ShowFormat) -> Result<()> {
    let rec = record::load(path)?;
    match format {
        ShowFormat::Table => print!("{}", summary::render(&rec)),
        ShowFormat::Csv => print!("{}", record::export::csv(&rec)?),
        ShowFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&record::export::json(&rec))?
        ),
    }
    Ok(())
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
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // claimed by exclusive creation: of two `new`s of one name at once, one says it exists
    let fresh = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path);
    match fresh {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && !force => bail!(
            "{} exists; pick another name or pass --force to overwrite it",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("cannot write {}", path.display())),
    }
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
    if !dir.is_dir() {
        bail!(
            "{} is not a folder; pass the folder that holds the records (or none for the default)",
            dir.display()
        );
    }
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
                let (sr, sp) = frontend::middle_sensitivity(&r);
                println!(
                    "{:<40} {:<20} {:>7} {:>10} {:>10} {:<11}",
                    file,
                    r.started_at,
                    r.model.params,
                    frontend::opt(sr, NumberStyle::fixed(4)),
                    frontend::opt(sp, NumberStyle::fixed(4)),
                    r.status
                );
            }
            Err(e) => println!("{file:<40} unreadable: {e}"),
        }
    }
    Ok(())
}

pub struct PlotArgs<'a> {
    /// A record, or a sweep folder (`--kind sweep`).
    pub input: &'a Path,
    pub kind: &'a str,
    /// `.svg` or `.png`.
    pub out: &'a Path,
    pub log: bool,
    pub width: u32,
    pub height: u32,
    /// `light` or `dark` [default: light].
    pub theme: Option<&'a str>,
    /// `--kind sweep` only: the swept key on the x axis, the pruning ratio, method and
    /// granularity of S.
    pub axis: Option<&'a str>,
    pub ratio: Option<f64>,
    pub method: Option<&'a str>,
    pub granularity: Option<&'a str>,
}

/// The sweep at `path` (its folder or its `sweep.toml`) as the sweep figure reads it, loaded
/// by `sweep::load` as `report` loads it; a record or a folder that is not a sweep is a
/// [`crate::plot::PlotError`] saying so.
pub fn sweep_for_plot(path: &Path) -> Result<crate::plot::SweepInput, crate::plot::PlotError> {
    use crate::plot::{self, PlotError};
    plot::check_sweep_path(path)?;
    let loaded = crate::sweep::load(path).map_err(|e| PlotError::NotASweep {
        path: path.to_path_buf(),
        why: e.to_string(),
    })?;
    let m = loaded.manifest;
    let points = loaded
        .records
        .into_iter()
        .map(|(p, record)| plot::SweepPoint {
            values: m
                .axes
                .iter()
                .filter_map(|a| Some((a.clone(), p.values.get(a)?.clone())))
                .collect(),
            status: p.status.word().to_string(),
            done: p.status == crate::sweep::PointStatus::Done,
            name: p.name,
            record,
        })
        .collect();
    Ok(plot::SweepInput {
        name: m.name,
        axes: m.axes,
        mode: m.mode,
        points,
    })
}

/// `resprune-tui plot INPUT --kind K --out FILE`: draws the figure and writes it atomically.
pub fn plot(args: PlotArgs<'_>) -> Result<()> {
    use crate::plot;
    use serde::de::IntoDeserializer;
    let kind: plot::Kind = args.kind.parse()?;
    let method = args
        .method
        .map(|m| {
            <config::PruneMethod as serde::Deserialize>::deserialize(m.into_deserializer())
                .map_err(|e: serde::de::value::Error| anyhow::anyhow!("--method: {e}"))
        })
        .transpose()?;
    let granularity = args
        .granularity
        .map(|g| {
            g.parse::<config::Granularity>()
                .map_err(|e| anyhow::anyhow!("--granularity: {e}"))
        })
        .transpose()?;
    let theme = match args.theme {
        Some(t) => t
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--theme: {e}"))?,
        None => plot::Theme::Light,
    };
    let opts = plot::Options {
        kind,
        log: args.log,
        width: args.width,
        height: args.height,
        theme,
        sweep: plot::SweepSelect {
            axis: args.axis.map(str::to_string),
            ratio: args.ratio,
            method,
            granularity,
        },
    };
    let out = if kind == plot::Kind::Sweep {
        plot::prepare(args.out, &opts)?;
        let source = plot::Source::Sweep(Box::new(sweep_for_plot(args.input)?));
        plot::plot_source(&source, args.out, &opts)?
    } else {
        plot::plot_file(args.input, args.out, &opts)?
    };
    println!("wrote {}", out.display());
    Ok(())
}
