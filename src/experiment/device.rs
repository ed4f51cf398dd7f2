//! The device a config names, opened.

use super::ExperimentError;
use crate::config::DeviceChoice;
use crate::model::Backend;

/// The device `choice` names, opened, and how the record describes it; `auto` falls back to
/// the CPU and says why.
pub fn open_device(choice: DeviceChoice) -> Result<(Backend, String), ExperimentError> {
    match choice {
        DeviceChoice::Cpu => Ok((Backend::cpu(), "cpu".into())),
        #[cfg(feature = "cuda")]
        DeviceChoice::Cuda(i) => Backend::cuda(i)
            .map(|b| {
                let d = b.describe();
                (b, d)
            })
            .map_err(ExperimentError::Config),
        #[cfg(not(feature = "cuda"))]
        DeviceChoice::Cuda(_) => Err(ExperimentError::Config(
            "device = \"cuda\" needs a binary built with `--features cuda` (see docs/gpu.md)"
                .into(),
        )),
        #[cfg(feature = "cuda")]
        DeviceChoice::Auto => Ok(match Backend::cuda(0) {
            Ok(b) => {
                let d = format!("{} (auto)", b.describe());
                (b, d)
            }
            Err(why) => (Backend::cpu(), format!("cpu (auto: {why})")),
        }),
        #[cfg(not(feature = "cuda"))]
        DeviceChoice::Auto => Ok((Backend::cpu(), "cpu (auto: built without CUDA)".into())),
    }
}
