//! PDE scenarios: residual definitions (implementing
//! [`tessera_constraints::Pde`]), reference numerical solvers that make ground
//! truth, dataset I/O and scenario config files.

pub mod advection;
pub mod config;
pub mod custom;
pub mod dataset;
mod definitions;
pub mod device;
pub mod diffusion_sorption;
pub mod error;
mod grid_check;
pub mod heat;
pub mod mol;
pub mod navier_stokes;
pub mod registry;
pub mod text_file;
mod unknown_keys;
mod validation;

pub use config::Scenario;
pub use dataset::Dataset;
pub use device::Device;
pub use error::ScenarioError;
pub use registry::{AnyPde, PdeKind};
pub use validation::MAX_SAMPLES;

/// The quickstart scenario (`scenarios/quickstart.toml`: diffusion–sorption,
/// PI-HC-MoE at CPU scale), built in, for tools that need a small model of a
/// real scenario without a file at hand (`tessera devices --device`).
pub const QUICKSTART: &str = include_str!("../quickstart.toml");
