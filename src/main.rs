use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A terminal notebook for one question: do residual connections change a network's Hessian
/// spectrum, and does that make it more or less sensitive to pruning?
#[derive(Parser)]
#[command(name = "resprune-tui", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Notebook theme: dark, light, high-contrast, monochrome, or a user theme
    /// [default: dark; monochrome when NO_COLOR is set].
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
    },
    /// Print the summary of a saved record.
    Show { record: PathBuf },
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
    /// List the records in a folder, newest first.
    List { dir: Option<PathBuf> },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Run {
            config,
            out,
            threads,
            replicates,
            device,
            quiet,
        }) => resprune::cli::run(resprune::cli::RunArgs {
            config: &config,
            out: out.as_deref(),
            threads,
            replicates,
            device: device.as_deref(),
            quiet,
        })
        .map(|_| ()),
        Some(Command::Show { record }) => resprune::cli::show(&record),
        Some(Command::New { name, out, force }) => {
            resprune::cli::new(&name, out.as_deref(), force).map(|_| ())
        }
        Some(Command::List { dir }) => resprune::cli::list(dir.as_deref()),
        None => resprune::tui::run(resprune::tui::Options {
            dir: resprune::record::default_dir(cli.experiments_dir.as_deref()),
            theme: cli.theme,
            ascii: cli.ascii,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
