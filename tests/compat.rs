//! Records written before the pipeline redesign (tests/fixtures/v0.1, see its README) still
//! load, show the same and replay: the redesign kept the behaviour (exactly, until the GEMM
//! kernels changed; within their rounding since, see below). The one change
//! of meaning since (schema 2: near-zero, negative and condition counts at the FD noise
//! floor) is left out of the comparison by name, and nothing else is.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

use resprune::experiment::{self, ReplayOptions};
use resprune::record;

const FIXTURES: [&str; 4] = [
    "article-dense",
    "article-lanczos",
    "breast-cancer",
    "article-alpha",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/v0.1")
        .join(format!("{name}.toml"))
}

#[test]
fn old_records_load_and_show_as_they_did() {
    for name in FIXTURES {
        let path = fixture(name);
        let rec = record::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(rec.status, record::Status::Complete, "{name}");
        let out = Command::new(env!("CARGO_BIN_EXE_resprune-tui"))
            .arg("show")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want = std::fs::read_to_string(path.with_extension("show")).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            want,
            "{name}: show changed"
        );
    }
}

/// The fixtures were made with dfdx's gemm 0.15 FMA kernels; this build runs gemm 0.19's
/// (AVX-512 where the CPU has it, vendor/README.md), which sum the matrix products in
/// another order. So a replay differs at rounding, amplified at most by training and the
/// finite-difference step: every value matches within 1e-9 (eigenvalues, Lanczos
/// coefficients and SLQ densities on their spectrum's scale; measured largest 1.9e-10, in a
/// Lanczos coefficient, docs/method.md), and the dense spectra's finite-difference noise
/// measures (which measure rounding itself) are left out by name. The replay picks the
/// stored thread count itself, so this runs the same on any machine.
const REPLAY_TOLERANCE: f64 = 1e-9;

#[test]
fn old_records_replay_within_the_rounding_of_another_gemm() {
    let dir = tempfile::tempdir().unwrap();
    for name in FIXTURES {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::copy(fixture(name), &path).unwrap();
        let opts = ReplayOptions {
            tolerance: REPLAY_TOLERANCE,
            ..ReplayOptions::default()
        };
        let r = experiment::replay(&path, &opts, &experiment::quiet, &AtomicBool::new(false))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            r.matches(),
            "{name}: {:?}",
            &r.comparison.mismatches[..r.comparison.mismatches.len().min(5)]
        );
        assert!(
            r.comparison.numbers > 1000,
            "{name}: compared {}",
            r.comparison.numbers
        );
        let largest = r.comparison.largest.as_ref().map(|l| l.1).unwrap();
        assert!(largest <= REPLAY_TOLERANCE, "{name}: {largest:e}");
        // only the noise measures are left out, and only because the kernels changed
        assert!(r.stored.machine.kernels.is_empty(), "{name}");
        assert!(!r.new.machine.kernels.is_empty());
        for p in &r.comparison.not_compared {
            assert!(resprune::record::compare::is_fd_noise(p), "{name}: {p}");
        }
        assert_eq!(r.new.machine.threads, r.stored.machine.threads);
        assert_eq!(
            r.new.replay_of.as_deref(),
            Some(format!("{name}.toml").as_str())
        );
    }
}
