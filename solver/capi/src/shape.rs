//! The shape of a handle's arrays, in one struct a C or Fortran caller fills
//! with one call.

/// Sizes of a model's or a constraint layer's arrays. For a 1-D problem
/// (`T × X` grid) `n_dims = 2` and `ny = 1`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TesseraShape {
    /// Grid dimensions including time: 2 (`T × X`) or 3 (`T × X × Y`).
    pub n_dims: usize,
    /// Time levels `T`.
    pub nt: usize,
    /// Points in `x`.
    pub nx: usize,
    /// Points in `y` (1 for a 1-D problem).
    pub ny: usize,
    /// Values per initial condition: `X·Y`.
    pub ic_len: usize,
    /// Values per field: `T·X·Y`.
    pub field_len: usize,
    /// Experts `K` (solves per sample); 0 for a model trained without
    /// constraints (`soft`).
    pub n_experts: usize,
    /// Points each expert samples (0 for `soft`).
    pub points_per_expert: usize,
    /// PDE equations `m` (residual values per grid point) of a constraint
    /// layer; 0 for a model.
    pub n_equations: usize,
    /// Basis functions `N` of the model's backbone (0 for a constraint
    /// layer: its caller chooses `N` per call).
    pub n_basis: usize,
}

impl TesseraShape {
    /// The grid part of the shape from `dims = [nt, nx, (ny)]`.
    pub(crate) fn of_grid(dims: &[usize]) -> Self {
        let ny = dims.get(2).copied().unwrap_or(1);
        Self {
            n_dims: dims.len(),
            nt: dims[0],
            nx: dims[1],
            ny,
            ic_len: dims[1] * ny,
            field_len: dims[0] * dims[1] * ny,
            ..Self::default()
        }
    }
}
