//! resprune: do residual connections change a network's Hessian spectrum, and does that make
//! it more or less sensitive to pruning?
//!
//! Layers, top to bottom: [`config`] -> [`data`] -> [`model`] -> [`train`] -> [`curvature`]
//! -> [`prune`] -> [`record`], tied together by [`experiment::run`].
pub mod config;
pub mod data;
pub mod model;
pub mod rng;
pub mod tomlpos;
pub mod train;
