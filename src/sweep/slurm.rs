//! `sweep CONFIG --emit slurm`: an `sbatch` script whose array tasks are the shards of the
//! sweep, all writing into one shared folder.

use std::fmt::Write;
use std::path::Path;

use super::Plan;

/// The resources asked of each array task.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    /// `--time`, e.g. `01:00:00`.
    pub time: Option<String>,
    /// GPUs per task.
    pub gpus: Option<u32>,
    /// CPUs per task: also the kernel threads of its points.
    pub cpus: Option<u32>,
    /// Array tasks [default: one per point]; each runs points `K, K + N, ...`.
    pub tasks: Option<usize>,
}

/// Single-quotes `s` for the shell.
fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The script: `#SBATCH --array=0-(N−1)`, the resource lines asked for, and one command
/// that runs shard `$SLURM_ARRAY_TASK_ID` of N (`--shard slurm`) into `dir`. Paths are made
/// absolute so that the job finds them from any node's working folder.
pub fn script(
    plan: &Plan,
    exe: &Path,
    config: &Path,
    dir: &Path,
    workdir: &Path,
    opts: &SlurmOptions,
) -> String {
    let n = opts
        .tasks
        .unwrap_or(plan.points.len())
        .clamp(1, plan.points.len().max(1));
    let mut s = String::new();
    let _ = writeln!(s, "#!/bin/bash");
    let _ = writeln!(
        s,
        "# resprune-tui sweep {}: {} points as {n} array tasks (task K runs points K, K+{n}, ...)",
        plan.name,
        plan.points.len()
    );
    let _ = writeln!(s, "#SBATCH --job-name={}", quote(&plan.name));
    let _ = writeln!(s, "#SBATCH --array=0-{}", n - 1);
    let _ = writeln!(s, "#SBATCH --ntasks=1");
    let _ = writeln!(
        s,
        "#SBATCH --output={}",
        quote(&dir.join("slurm-%A_%a.out").display().to_string())
    );
    if let Some(p) = &opts.partition {
        let _ = writeln!(s, "#SBATCH --partition={}", quote(p));
    }
    if let Some(t) = &opts.time {
        let _ = writeln!(s, "#SBATCH --time={}", quote(t));
    }
    if let Some(g) = opts.gpus {
        let _ = writeln!(s, "#SBATCH --gpus-per-task={g}");
    }
    if let Some(c) = opts.cpus {
        let _ = writeln!(s, "#SBATCH --cpus-per-task={c}");
    }
    let _ = writeln!(s, "set -euo pipefail");
    let _ = writeln!(s, "cd {}", quote(&workdir.display().to_string()));
    if let Some(c) = opts.cpus {
        // a config's `threads = 0` (one per core) means the task's CPUs, not the node's
        let _ = writeln!(s, "export RAYON_NUM_THREADS={c}");
    }
    let mut cmd = vec![
        quote(&exe.display().to_string()),
        "sweep".into(),
        quote(&config.display().to_string()),
        "--out".into(),
        quote(&dir.display().to_string()),
        "--shard".into(),
        "slurm".into(),
        "--jobs".into(),
        "1".into(),
        "--quiet".into(),
    ];
    for set in &plan.sets {
        cmd.push("--set".into());
        cmd.push(quote(set));
    }
    let _ = writeln!(s, "exec {}", cmd.join(" "));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_plain_words_and_guards_the_rest() {
        assert_eq!(quote("/a/b-c.toml"), "/a/b-c.toml");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("model.depth=[1, 2]"), "'model.depth=[1, 2]'");
    }
}
