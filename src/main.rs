use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// dfdx allocates every tensor of every gradient afresh; glibc's malloc hands multi-megabyte
// buffers back to the OS and page-faults them in again each time (up to 40 % of an HVP,
// docs/performance.md). mimalloc keeps them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A terminal notebook for one question: do residual connections change a network's Hessian
/// spectrum, and does that make it more or less sensitive to pruning?
#[derive(Parser)]
#[command(name = "resprune-tui", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Notebook theme: dark, light, high-contrast, monochrome, or a user theme
    /// [default: dark; monochrome when NO_COLOR is set]. Figures (`plot`): light or dark
    /// [default: light].
    #[arg(long, global = true, value_name = "NAME")]
    theme: Option<String>,
    /// Draw the notebook with ASCII characters only (no box drawing, blocks or braille).
    #[arg(long, global = true)]
    ascii: bool,
    /// Experiments folder the notebook lists and saves runs into
    /// [default: ./experiments if it exists, else the user data dir].
    #[arg(
        long = "dir",
        id = "experiments_dir",
        global = true,
        value_name = "DIR"
    )]
    experiments_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Train the residual/plain pair, measure both spectra, sweep pruning ratios, save a record.
    Run {
        /// Experiment config (TOML), e.g. experiments/article.toml.
        config: PathBuf,
        /// Folder for the record [default: ./experiments if it exists, else the user data dir].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Kernel threads (overrides the config's `threads`; 0 = one per core).
        #[arg(long)]
        threads: Option<usize>,
        /// Run the pair with this many seeds (overrides the config's `replicates`).
        #[arg(long)]
        replicates: Option<usize>,
        /// cpu, cuda, cuda:N or auto (overrides the config's `device`).
        #[arg(long)]
        device: Option<String>,
        /// No progress bars.
        #[arg(long, short)]
        quiet: bool,
        /// Also write <record>.safetensors: trained weights, and pruned weights and masks at
        /// each ratio (PyTorch state_dict names; see docs/record-format.md).
        #[arg(long)]
        save_weights: bool,
        /// Override a config key: KEY=VALUE, e.g. model.width=32 (repeatable; checked as the
        /// file is; the record stores the resolved config).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Run every point of a config's [sweep] (each a full experiment) into one folder, with
    /// a manifest (sweep.toml); resumes, shards, or prints a SLURM array script.
    Sweep(resprune::cli::sweep::SweepCommand),
    /// A sweep's report: one row per point, then the trend along each swept axis.
    Report {
        /// The sweep's folder or its sweep.toml.
        path: PathBuf,
        #[arg(long, value_enum, default_value_t)]
        format: resprune::cli::sweep::ReportFormat,
    },
    /// Re-run a record's config and compare every stored number; exit 1 on a mismatch.
    Replay {
        record: PathBuf,
        /// Largest relative error that still matches [default: 0, exact].
        #[arg(long, value_name = "REL", default_value_t = 0.0)]
        tolerance: f64,
        /// Kernel threads [default: the stored run's].
        #[arg(long)]
        threads: Option<usize>,
        /// Re-run on this device instead of the stored one: cpu, cuda, cuda:N, auto
        /// (compares a CPU record with a GPU run, or back).
        #[arg(long)]
        device: Option<String>,
        /// No progress spinner.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Compare two records: config changes and results with old, new, Δ and Δ%.
    Diff {
        old: PathBuf,
        new: PathBuf,
        /// Show every result row, not only the changed ones.
        #[arg(long)]
        all: bool,
        /// Machine-readable JSON.
        #[arg(long)]
        json: bool,
        /// Significant digits of the numbers (1 to 17: an f64 holds no more).
        #[arg(long, value_name = "N", default_value_t = 5,
              value_parser = clap::value_parser!(u8).range(1..=17))]
        precision: u8,
    },
    /// Print a saved record: summary table, or results as CSV or JSON.
    Show {
        record: PathBuf,
        #[arg(long, value_enum, default_value_t)]
        format: resprune::cli::ShowFormat,
    },
    /// Write a commented config template with every key and its default.
    New {
        name: String,
        /// Folder for the config [default: ./experiments if it exists, else .].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Draw a figure of a record or a sweep as SVG or PNG (for papers and slides).
    Plot {
        /// A record (.toml); a sweep folder (or its sweep.toml) for --kind sweep.
        input: PathBuf,
        /// spectrum, sensitivity, prediction, training, or sweep.
        #[arg(long)]
        kind: String,
        /// The figure file, ending in .svg or .png (written atomically).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Log scale on the y axis: eigenvalue counts or density (spectrum), loss (training).
        #[arg(long)]
        log: bool,
        /// Width in pixels.
        #[arg(long, default_value_t = resprune::plot::Options::DEFAULT_WIDTH)]
        width: u32,
        /// Height in pixels.
        #[arg(long, default_value_t = resprune::plot::Options::DEFAULT_HEIGHT)]
        height: u32,
        /// --kind sweep: the swept key on the x axis [default: the innermost numeric one].
        #[arg(long, value_name = "KEY")]
        axis: Option<String>,
        /// --kind sweep: the pruning ratio of S [default: the middle one].
        #[arg(long, value_name = "R")]
        ratio: Option<f64>,
        /// --kind sweep: the pruning method of S [default: the records' first].
        #[arg(long)]
        method: Option<String>,
        /// --kind sweep: the granularity of S [default: unstructured, else the first].
        #[arg(long)]
        granularity: Option<String>,
    },
    /// List the records in a folder, newest first.
    List { dir: Option<PathBuf> },
    /// Time gradients, HVPs and 100 Lanczos steps on the 466,698-parameter bench model
    /// (peer.py part (c)), residual and plain, on a device.
    Bench {
        /// cpu, cuda, cuda:N or auto.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Timed repetitions of each gradient and HVP.
        #[arg(long, default_value_t = 10)]
        reps: usize,
        /// Timed repetitions of the Lanczos run (0 skips it).
        #[arg(long, default_value_t = 1)]
        lanczos_reps: usize,
        /// Lanczos steps.
        #[arg(long, default_value_t = 100)]
        lanczos_steps: usize,
        /// Kernel threads (0 = one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Also print the numbers as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so printing into a closed pipe (`show R | head`) panics; restore
    // the Unix default, where the process just ends, as other command-line tools do
    #[cfg(unix)]
    // SAFETY: called first thing, before any thread exists or any output is written
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Run {
            config,
            out,
            threads,
            replicates,
            device,
            quiet,
            save_weights,
            sets,
        }) => resprune::cli::run(resprune::cli::RunArgs {
            config: &config,
            out: out.as_deref(),
            threads,
            replicates,
            device: device.as_deref(),
            quiet,
            save_weights,
            sets: &sets,
        })
        .map(|_| ()),
        Some(Command::Sweep(args)) => args.run(),
        Some(Command::Report { path, format }) => resprune::cli::sweep::report(&path, format),
        Some(Command::Replay {
            record,
            tolerance,
            threads,
            device,
            quiet,
        }) => match resprune::cli::replay(&record, tolerance, threads, device.as_deref(), quiet) {
            Ok(true) => Ok(()),
            Ok(false) if resprune::cli::signal_exit_code().is_none() => return ExitCode::from(1),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        },
        Some(Command::Diff {
            old,
            new,
            all,
            json,
            precision,
        }) => resprune::cli::diff(resprune::cli::DiffArgs {
            old: &old,
            new: &new,
            all,
            json,
            precision: usize::from(precision),
        }),
        Some(Command::Show { record, format }) => resprune::cli::show_as(&record, format),
        Some(Command::New { name, out, force }) => {
            resprune::cli::new(&name, out.as_deref(), force).map(|_| ())
        }
        Some(Command::List { dir }) => resprune::cli::list(dir.as_deref()),
        Some(Command::Plot {
            input,
            kind,
            out,
            log,
            width,
            height,
            axis,
            ratio,
            method,
            granularity,
        }) => resprune::cli::plot(resprune::cli::PlotArgs {
            input: &input,
            kind: &kind,
            out: &out,
            log,
            width,
            height,
            theme: cli.theme.as_deref(),
            axis: axis.as_deref(),
            ratio,
            method: method.as_deref(),
            granularity: granularity.as_deref(),
        }),
        Some(Command::Bench {
            device,
            reps,
            lanczos_reps,
            lanczos_steps,
            threads,
            json,
        }) => resprune::cli::bench(resprune::cli::BenchArgs {
            device: &device,
            options: resprune::bench::BenchOptions {
                reps,
                lanczos_reps,
                lanczos_steps,
            },
            threads,
            json,
        }),
        None => resprune::tui::run(resprune::tui::Options {
            dir: resprune::record::default_dir(cli.experiments_dir.as_deref()),
            theme: cli.theme,
            ascii: cli.ascii,
        }),
    };
    match result {
        // an interrupted run or replay wrote its record; the shell still hears the signal
        Ok(()) if resprune::cli::signal_exit_code().is_some() => {
            ExitCode::from(resprune::cli::signal_exit_code().unwrap_or(1))
        }
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
