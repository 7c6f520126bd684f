//! Space–time grids, linear derivative operators with exact adjoints, tile
//! partitions and reproducible point sampling.
//!
//! Field layout everywhere in Tessera: row-major `[t, x, (y), channel]`, i.e. the
//! channel index varies fastest. A basis of `N` functions is a field with `N`
//! channels, so every operator here acts on all basis functions at once, and the
//! hard-constraint layer's terms `A_j = D_j B` and their backward `B̄ += D_jᵀ Ā_j`
//! are one [`LinearOperator::apply`] / [`LinearOperator::apply_adjoint`] each.
//!
//! # Public API
//!
//! | item | what it is for |
//! |---|---|
//! | [`Shape`] | row-major index arithmetic: `dims`, `len`, `strides`, `flat`, `unflat`, `around_axis` |
//! | [`Axis`] | one axis: `linspace`, `cell_centres`, `periodic`; `coords`, `normalised`, `spacing`, `length` |
//! | [`Grid`] | `t, x, (y)` grids: `uniform_tx`, `uniform_txy`, `new`; `coordinates`, `normalised_coordinates` |
//! | [`LinearOperator`] | `shape`, `apply`, `apply_adjoint` (+ `apply_to_vec`, `apply_adjoint_to_vec`); `apply_at` (rows at chosen points, strided), `is_local` (whether that is cheap) and `add_row_at` (a local row's weights); [`ops::gather_rows`] |
//! | [`FiniteDifference`], [`FdScheme`] | `first`/`second` (grid spacing), `first_with_spacing`/`second_with_spacing`, `from_matrix`; schemes `Reference` (numpy `edge_order=1`), `SecondOrder`, `Periodic` |
//! | [`AxisMatrix`] | the sparse 1-D stencil matrix FD operators stream along an axis |
//! | [`FourierMultiplier`] | spectral `derivative(grid, axis, order)`, `laplacian`, `inverse_laplacian`, `new(grid, axes, m(k))` |
//! | [`Identity`], [`Compose`], [`LinearCombination`], [`Scale`] | combinators: `I`, `D₁·D₂` (right to left), `Σ cᵢDᵢ`, pointwise weights |
//! | [`CenterScale`] | each level's mean removed (per channel) and the level scaled: `new(shape, first_axis, center, factors)` |
//! | [`SparseRows`] | rows of local operators at chosen points as a CSR matrix (`push_row`, `row_start`/`columns`/`weights`), for a GPU kernel; `apply` is its CPU reference |
//! | [`Tiling`] | the experts' tiles: `new(shape, split)`, `n_tiles`, `tile_shape`, `tile_ranges`, `tile_points`, `tile_of`, `partition`, `unpartition` |
//! | [`sample_points`] | `P` distinct points of a tile from `(seed, stream)`, reproducible everywhere |
//! | [`BufferPool`], [`buffer_pool::Pooled`] | large buffers kept from one pass to the next (`zeros`, `recycled`), so glibc does not map and fault them in afresh |
//! | [`MeshError`] | the typed error of every fallible constructor |

pub mod buffer_pool;
pub mod error;
pub mod grid;
pub mod ops;
pub mod sampling;
pub mod shape;
pub mod tiles;

pub use buffer_pool::BufferPool;
pub use error::MeshError;
pub use grid::{Axis, Grid};
pub use ops::LinearOperator;
pub use ops::axis_matrix::AxisMatrix;
pub use ops::center_scale::CenterScale;
pub use ops::combination::LinearCombination;
pub use ops::compose::Compose;
pub use ops::fd::{FdScheme, FiniteDifference};
pub use ops::identity::Identity;
pub use ops::scale::Scale;
pub use ops::sparse_rows::SparseRows;
pub use ops::spectral::FourierMultiplier;
pub use sampling::sample_points;
pub use shape::Shape;
pub use tiles::Tiling;
