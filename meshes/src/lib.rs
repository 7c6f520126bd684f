//! Space–time grids, linear derivative operators with exact adjoints, tile
//! partitions and reproducible point sampling.
//!
//! Field layout everywhere in Tessera: row-major `[t, x, (y), channel]`, i.e. the
//! channel index varies fastest. A basis of `N` functions is a field with `N`
//! channels, so every operator here acts on all basis functions at once.

pub mod error;
pub mod grid;
pub mod ops;
pub mod shape;

pub use error::MeshError;
pub use grid::{Axis, Grid};
pub use ops::LinearOperator;
pub use shape::Shape;
