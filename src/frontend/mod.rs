//! The ground both front ends stand on. The headless CLI ([`crate::cli`]) and the notebook
//! ([`crate::tui`]) each import this module and never each other, so they stand side by side;
//! what they would otherwise take from one another lives here: how numbers are written, which
//! pruning row a summary headlines, and the setup a process does before it runs an
//! experiment. It reads records and formats; it neither prints nor draws.

pub mod number;

pub use number::{format_number, opt, Fixed, NumberStyle, Whole};

use crate::model::Variant;
use crate::prune::PruneRow;
use crate::record::{Record, VariantResult};

/// Sets the kernel thread count once per process (0 = one per core).
pub fn init_threads(threads: usize) {
    if threads > 0 {
        // fails only when already set, which is harmless
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global();
    }
}

/// The row at the middle ratio of the first pruning method (rows of several methods share
/// one list, so the middle of the whole list would be another method's row).
pub fn middle_row(v: &VariantResult) -> Option<&PruneRow> {
    let method = v.pruning.first()?.method;
    let rows: Vec<_> = v.pruning.iter().filter(|r| r.method == method).collect();
    rows.get(rows.len().saturating_sub(1) / 2).copied()
}

/// S of both models at the middle ratio of the sweep: `(residual, plain)`.
pub fn middle_sensitivity(r: &Record) -> (Option<f64>, Option<f64>) {
    let mid = |v: Variant| middle_row(r.variant(v)).map(|row| row.sensitivity);
    (mid(Variant::Residual), mid(Variant::Plain))
}
