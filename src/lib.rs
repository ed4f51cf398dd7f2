//! resprune: do residual connections change a network's Hessian spectrum, and does that make
//! it more or less sensitive to pruning?
//!
//! Layers, top to bottom: [`config`] -> [`data`] -> [`model`] -> [`train`] -> [`curvature`]
//! -> [`prune`] -> [`record`], tied together by [`experiment::run`]. The two front ends, [`cli`]
//! and [`tui`], stand side by side on [`frontend`], which holds what both need.
pub mod bench;
pub mod cli;
pub mod config;
pub mod curvature;
pub mod data;
pub mod experiment;
pub mod frontend;
pub mod model;
pub mod names;
pub mod plot;
pub mod prune;
pub mod record;
pub mod report;
pub mod rng;
pub mod stats;
pub mod stop;
pub mod sweep;
pub mod tomlpos;
pub mod train;
pub mod tui;
