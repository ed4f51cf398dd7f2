//! How long work ends early, one convention for every layer: the user cancelled (Ctrl-C, `c`
//! in the notebook, a listener that went away), or it failed with the layer's own error.
//!
//! Work that can take more than a moment checks the shared cancel flag at its natural step
//! (a minibatch, a Hessian-vector product, a pruning row), so a cancel takes effect within
//! about a second, and returns `Err(Stop::Cancelled)`; whatever it finished stays where its
//! caller can read it (a history, a list of rows), so an interrupted record keeps it.

use std::sync::atomic::{AtomicBool, Ordering};

/// Why a piece of work ended before its end.
#[derive(Debug)]
pub enum Stop<E> {
    /// Asked to stop; not an error.
    Cancelled,
    Failed(E),
}

impl<E> Stop<E> {
    /// `Err(Stop::Cancelled)` once `cancel` is set.
    pub fn check(cancel: &AtomicBool) -> Result<(), Stop<E>> {
        if cancel.load(Ordering::Relaxed) {
            Err(Stop::Cancelled)
        } else {
            Ok(())
        }
    }

    /// The same stop, its failure converted (`Stop<TrainError>` -> `Stop<ExperimentError>`).
    pub fn convert<F: From<E>>(self) -> Stop<F> {
        self.map_failed(F::from)
    }

    pub fn map_failed<F>(self, f: impl FnOnce(E) -> F) -> Stop<F> {
        match self {
            Stop::Cancelled => Stop::Cancelled,
            Stop::Failed(e) => Stop::Failed(f(e)),
        }
    }

    pub fn is_cancelled(&self) -> bool {
        matches!(self, Stop::Cancelled)
    }
}

impl<E: std::fmt::Display> std::fmt::Display for Stop<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Cancelled => f.write_str("cancelled"),
            Stop::Failed(e) => e.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_follows_the_flag_and_convert_keeps_the_kind() {
        let flag = AtomicBool::new(false);
        assert!(Stop::<String>::check(&flag).is_ok());
        flag.store(true, Ordering::Relaxed);
        assert!(Stop::<String>::check(&flag).unwrap_err().is_cancelled());
        let failed: Stop<String> = Stop::<&str>::Failed("boom").convert();
        assert_eq!(failed.to_string(), "boom");
        assert!(Stop::<&str>::Cancelled.convert::<String>().is_cancelled());
    }
}
