//! `resprune-tui sweep CONFIG` and `resprune-tui report DIR|sweep.toml`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::{value_label, SweepMode};
use crate::frontend::{format_number, NumberStyle};

/// `digits` significant digits, the diff's style.
fn fmt_sig(x: f64, digits: usize) -> String {
    format_number(x, NumberStyle::significant(digits))
}
use crate::report::sweep::SweepReport;
use crate::stats::MeanSd;
use crate::sweep::{self, slurm::SlurmOptions, PointStatus, Shard, SweepEvent};

/// The flags of `resprune-tui sweep` (parsed by clap in `main.rs`).
#[derive(Debug, clap::Args)]
pub struct SweepCommand {
    /// Config with a [sweep] section, e.g. experiments/depth-sweep.toml.
    pub config: PathBuf,
    /// The sweep's folder: records NAME.toml per point and sweep.toml
    /// [default: ./experiments/<name>/ if ./experiments exists, else the user data dir].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Points run at once, each on one kernel thread when more than one [default: one per
    /// core when every model has at most 50,000 parameters, else 1; capped by memory and by
    /// the points left].
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Run only points K, K+N, K+2N, ... (`K/N`), or the SLURM array task's share (`slurm`).
    #[arg(long, value_name = "K/N|slurm")]
    pub shard: Option<String>,
    /// Override a config key for every point: KEY=VALUE (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// List the points and their status; run nothing.
    #[arg(long)]
    pub list: bool,
    /// Print a job script instead of running: `slurm` (an sbatch array, one task per point).
    #[arg(long, value_name = "slurm")]
    pub emit: Option<String>,
    /// --emit slurm: the partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// --emit slurm: the time limit of each task, e.g. 01:00:00.
    #[arg(long)]
    pub time: Option<String>,
    /// --emit slurm: GPUs per task.
    #[arg(long)]
    pub gpus: Option<u32>,
    /// --emit slurm: CPUs per task (also the kernel threads of its point).
    #[arg(long)]
    pub cpus: Option<u32>,
    /// --emit slurm: array tasks [default: one per point].
    #[arg(long)]
    pub tasks: Option<usize>,
}

impl SweepCommand {
    pub fn run(self) -> Result<()> {
        sweep(SweepArgs {
            config: &self.config,
            out: self.out.as_deref(),
            jobs: self.jobs,
            shard: self.shard.as_deref(),
            sets: &self.sets,
            quiet: self.quiet,
            list: self.list,
            emit: self.emit.as_deref(),
            slurm: SlurmOptions {
                partition: self.partition,
                time: self.time,
                gpus: self.gpus,
                cpus: self.cpus,
                tasks: self.tasks,
            },
        })
        .map(|_| ())
    }
}

/// Options of `resprune-tui sweep`.
pub struct SweepArgs<'a> {
    pub config: &'a Path,
    /// The sweep's folder [default: `<experiments>/<name>/`].
    pub out: Option<&'a Path>,
    /// Points at once (None: the rule of [`sweep::default_jobs`]).
    pub jobs: Option<usize>,
    /// `K/N` or `slurm`.
    pub shard: Option<&'a str>,
    /// `KEY=VALUE`, applied to every point.
    pub sets: &'a [String],
    pub quiet: bool,
    /// Print the points and their status, run nothing.
    pub list: bool,
    /// `--emit slurm`: print an sbatch script instead of running.
    pub emit: Option<&'a str>,
    pub slurm: SlurmOptions,
}

/// `resprune-tui sweep CONFIG`: every point (or this shard's) not already done, into one
/// folder with its manifest. Fails (exit 1) when a point failed.
pub fn sweep(args: SweepArgs<'_>) -> Result<PathBuf> {
    let plan = sweep::plan(args.config, args.sets)?;
    let dir = sweep::default_dir(&plan, args.out);
    if let Some(what) = args.emit {
        if what != "slurm" {
            bail!("--emit: `{what}` is not a known target (only `slurm`)");
        }
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let exe = std::env::current_exe().context("cannot find this program's path")?;
        let cwd = std::env::current_dir().context("cannot read the working folder")?;
        // SLURM opens each task's output file in the folder before the task starts
        crate::record::check_writable(&dir)
            .with_context(|| format!("the sweep's folder {}", dir.display()))?;
        print!(
            "{}",
            sweep::slurm::script(
                &plan,
                &exe,
                &abs(args.config),
                &abs(&dir),
                &cwd,
                &args.slurm
            )
        );
        return Ok(dir);
    }
    if args.list {
        let mut cache = sweep::manifest::Cache::default();
        let m = sweep::manifest::derive(&plan, &dir, &mut cache);
        for p in &m.points {
            println!("{:>4}  {:<11} {}", p.index, p.status.word(), p.name);
        }
        return Ok(dir);
    }
    let shard = args
        .shard
        .map(Shard::parse)
        .transpose()?
        .unwrap_or(Shard::All);
    let cancel = super::cancel_on_signals();
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template("points [{bar:30}] {pos}/{len} {msg} ({elapsed}, ETA {eta})")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(500));
    let state = Mutex::new((0usize, 0usize, Instant::now()));
    let events = |ev: SweepEvent| match ev {
        SweepEvent::Planned {
            total,
            to_run,
            done,
            jobs,
        } => {
            bar.set_length(to_run as u64);
            bar.println(format!(
                "sweep {}: {total} points, {done} of this shard's done already, {to_run} to run, \
                 {jobs} at a time, into {}",
                plan.name,
                dir.display()
            ));
        }
        SweepEvent::Started { .. } => {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            s.0 += 1;
            bar.set_message(format!("running {}, failed {}", s.0, s.1));
        }
        SweepEvent::Busy { name, owner, .. } => {
            bar.println(format!("busy        {name} (run by {owner})"));
        }
        SweepEvent::Finished {
            name,
            status,
            wall_s,
            error,
            ..
        } => {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            s.0 = s.0.saturating_sub(1);
            if status != PointStatus::Done {
                s.1 += usize::from(status != PointStatus::Interrupted);
            }
            bar.inc(1);
            bar.set_message(format!("running {}, failed {}", s.0, s.1));
            let why = error.map(|e| format!(": {e}")).unwrap_or_default();
            bar.println(format!("{:<11} {name} ({wall_s:.1} s){why}", status.word()));
        }
        SweepEvent::Run { .. } => {}
    };
    let opts = sweep::RunOptions {
        jobs: args.jobs.unwrap_or(0),
        shard,
    };
    let out = sweep::run(&plan, &dir, opts, &cancel, &events);
    bar.finish_and_clear();
    let out = out?;
    let c = &out.manifest.counts;
    println!(
        "sweep {}: {} of {} points done, {} running elsewhere, {} pending, {} to run again \
         ({} ran here, {} skipped as done)",
        plan.name, c.done, c.total, c.running, c.pending, c.to_rerun, out.ran, out.skipped
    );
    println!("manifest: {}", dir.join(sweep::MANIFEST).display());
    if out.failed > 0 {
        bail!(
            "{} point(s) failed; their errors are in {} (run the sweep again to retry them)",
            out.failed,
            dir.join(sweep::MANIFEST).display()
        );
    }
    Ok(dir)
}

/// How `report` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ReportFormat {
    #[default]
    Table,
    Csv,
    Json,
    /// Markdown tables, to paste into a paper or a pull request.
    Md,
}

/// The report of the sweep at `path` (its folder or its `sweep.toml`).
pub fn build_report(path: &Path) -> Result<SweepReport> {
    Ok(sweep::load(path)?.report())
}

/// `resprune-tui report DIR|sweep.toml --format table|csv|json|md`.
pub fn report(path: &Path, format: ReportFormat) -> Result<()> {
    let r = build_report(path)?;
    match format {
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&r)?),
        ReportFormat::Csv => print!("{}", render_csv(&r)),
        ReportFormat::Table => print!("{}", render(&r, false)),
        ReportFormat::Md => print!("{}", render(&r, true)),
    }
    Ok(())
}

fn ms(m: &Option<MeanSd>) -> String {
    match m {
        Some(m) if m.n > 1 => format!("{}±{}", fmt_sig(m.mean, 3), fmt_sig(m.sd, 2)),
        Some(m) => fmt_sig(m.mean, 3),
        None => "-".into(),
    }
}

/// The verdicts of a point, counted by word: `var contradicted; S 3 inconclusive, 2 supported`.
fn verdict_words(row: &crate::report::sweep::PointRow) -> String {
    if row.verdicts.is_empty() {
        return "-".into();
    }
    let mut parts = Vec::new();
    if let Some(v) = row
        .verdicts
        .iter()
        .find(|v| v.claim.starts_with("narrower"))
    {
        parts.push(format!("Var {}", v.verdict.word()));
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for v in row
        .verdicts
        .iter()
        .filter(|v| v.claim.starts_with("more sensitive"))
    {
        match counts.iter_mut().find(|c| c.0 == v.verdict.word()) {
            Some(c) => c.1 += 1,
            None => counts.push((v.verdict.word(), 1)),
        }
    }
    if !counts.is_empty() {
        let c: Vec<String> = counts.iter().map(|(w, n)| format!("{n} {w}")).collect();
        parts.push(format!("S {}", c.join(", ")));
    }
    parts.join("; ")
}

/// The table (aligned text) or Markdown form.
pub fn render(r: &SweepReport, md: bool) -> String {
    let mut s = String::new();
    let mode = match r.mode {
        SweepMode::Grid => "grid",
        SweepMode::Zip => "zip",
    };
    let seeds = r.rows.iter().map(|x| x.seeds).max().unwrap_or(0);
    let done = r.rows.iter().filter(|x| x.status == "done").count();
    let head = format!(
        "sweep {}: {} points ({mode} over {}), {done} done, up to {seeds} seeds each; \
         mean±sd over seeds, residual / plain",
        r.name,
        r.rows.len(),
        r.axes.join(", "),
    );
    if md {
        let _ = writeln!(s, "**{head}**\n");
    } else {
        let _ = writeln!(s, "{head}\n");
    }
    let mut header: Vec<String> = vec!["point".into(), "status".into(), "seeds".into()];
    for m in &r.metrics {
        header.push(format!("{m} res"));
        header.push(format!("{m} plain"));
    }
    header.push("verdicts".into());
    let rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| {
            let mut v = vec![row.name.clone(), row.status.clone(), row.seeds.to_string()];
            for m in &r.metrics {
                let cell = row.cells.iter().find(|c| &c.metric == m);
                v.push(cell.map_or("-".into(), |c| ms(&c.residual)));
                v.push(cell.map_or("-".into(), |c| ms(&c.plain)));
            }
            v.push(verdict_words(row));
            v
        })
        .collect();
    table(&mut s, &header, &rows, md);
    if r.trends.is_empty() {
        return s;
    }
    let title = format!(
        "trend of residual − plain along each swept axis: mean [{:.0}% band] at each value; \
         Spearman ρ over every seed's difference",
        r.confidence * 100.0
    );
    if md {
        let _ = writeln!(s, "\n**{title}**\n");
    } else {
        let _ = writeln!(s, "\n{title}\n");
    }
    let header: Vec<String> = [
        "axis",
        "within",
        "metric",
        "residual − plain by value",
        "ρ",
        "p",
        "trend",
    ]
    .iter()
    .map(|h| h.to_string())
    .collect();
    let rows: Vec<Vec<String>> = r
        .trends
        .iter()
        .map(|t| {
            let within = if t.within.is_empty() {
                "-".to_string()
            } else {
                t.within
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let by: Vec<String> = t
                .points
                .iter()
                .map(|p| {
                    format!(
                        "{}: {} [{}, {}]",
                        fmt_sig(p.x, 4),
                        fmt_sig(p.mean, 3),
                        fmt_sig(p.lo, 2),
                        fmt_sig(p.hi, 2)
                    )
                })
                .collect();
            vec![
                t.axis.clone(),
                within,
                t.metric.clone(),
                by.join("; "),
                if t.rho.is_nan() {
                    "-".into()
                } else {
                    format!("{:.3}", t.rho)
                },
                format!("{:.3}", t.p),
                t.direction.word().to_string(),
            ]
        })
        .collect();
    table(&mut s, &header, &rows, md);
    s
}

fn table(s: &mut String, header: &[String], rows: &[Vec<String>], md: bool) {
    let esc = |c: &str| {
        if md {
            c.replace('|', "\\|")
        } else {
            c.to_string()
        }
    };
    let mut w: Vec<usize> = header.iter().map(|h| esc(h).chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(esc(c).chars().count());
        }
    }
    let line = |s: &mut String, cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let c = esc(c);
                let pad = w[i] - c.chars().count();
                format!("{c}{}", " ".repeat(pad))
            })
            .collect();
        if md {
            let _ = writeln!(s, "| {} |", padded.join(" | "));
        } else {
            let _ = writeln!(s, "{}", padded.join("  ").trim_end());
        }
    };
    line(s, header);
    if md {
        let rule: Vec<String> = w.iter().map(|n| "-".repeat(*n)).collect();
        let _ = writeln!(s, "| {} |", rule.join(" | "));
    }
    for r in rows {
        line(s, r);
    }
}

fn csv_cell(c: &str) -> String {
    if c.contains([',', '"', '\n']) {
        format!("\"{}\"", c.replace('"', "\"\""))
    } else {
        c.to_string()
    }
}

/// One row per point (axis values, then mean and sd of each metric per model), a blank line,
/// then one row per trend.
pub fn render_csv(r: &SweepReport) -> String {
    let mut s = String::new();
    let mut header: Vec<String> = vec!["point".into(), "status".into(), "seeds".into()];
    header.extend(r.axes.iter().cloned());
    for m in &r.metrics {
        for v in ["residual", "plain"] {
            header.push(format!("{m} {v} mean"));
            header.push(format!("{m} {v} sd"));
        }
    }
    header.push("verdicts".into());
    let num = |x: Option<f64>| x.map(|v| format!("{v}")).unwrap_or_default();
    let _ = writeln!(
        s,
        "{}",
        header
            .iter()
            .map(|h| csv_cell(h))
            .collect::<Vec<_>>()
            .join(",")
    );
    for row in &r.rows {
        let mut v = vec![row.name.clone(), row.status.clone(), row.seeds.to_string()];
        v.extend(row.values.iter().map(|(_, x)| value_label(x)));
        for m in &r.metrics {
            let cell = row.cells.iter().find(|c| &c.metric == m);
            for side in [cell.and_then(|c| c.residual), cell.and_then(|c| c.plain)] {
                v.push(num(side.map(|x| x.mean)));
                v.push(num(side.map(|x| x.sd)));
            }
        }
        v.push(verdict_words(row));
        let _ = writeln!(
            s,
            "{}",
            v.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(",")
        );
    }
    if !r.trends.is_empty() {
        let _ = writeln!(s, "\naxis,within,metric,value,mean,lo,hi,n,rho,p,trend");
        for t in &r.trends {
            let within = t
                .within
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(";");
            for p in &t.points {
                let _ = writeln!(
                    s,
                    "{},{},{},{},{},{},{},{},{},{},{}",
                    csv_cell(&t.axis),
                    csv_cell(&within),
                    csv_cell(&t.metric),
                    p.x,
                    p.mean,
                    p.lo,
                    p.hi,
                    p.n,
                    t.rho,
                    t.p,
                    t.direction.word()
                );
            }
        }
    }
    s
}
