//! The backbone's input: per grid point the initial condition (broadcast over
//! time) and the grid coordinates normalised to `[0, 1]` per axis, as the
//! reference feeds its FNO (`process_input`: broadcast IC, then `t/t_max`,
//! `x/x_max`). The PDE constants are fixed per scenario, so they carry no
//! information and are not appended.

use candle_core::{DType, Device, Tensor};
use tessera_meshes::Grid;

use crate::SolverError;

/// Builds feature tensors `[batch, t, x, (y), 1 + ndim]` for one grid.
#[derive(Debug, Clone)]
pub struct Features {
    dims: Vec<usize>,
    /// `[points, ndim]` normalised coordinates.
    coords: Vec<f64>,
}

impl Features {
    /// The features of `grid`.
    pub fn new(grid: &Grid) -> Self {
        Self {
            dims: grid.shape().dims().to_vec(),
            coords: grid.normalised_coordinates(),
        }
    }

    /// Number of features per point.
    pub fn width(&self) -> usize {
        self.dims.len() + 1
    }

    /// Points of one time level (the length of an initial condition).
    pub fn n_space(&self) -> usize {
        self.dims[1..].iter().product()
    }

    /// Checks that there is at least one initial condition and that each has one
    /// finite value per spatial point.
    pub fn check_ics(&self, ics: &[Vec<f64>]) -> Result<(), SolverError> {
        let s = self.n_space();
        if ics.is_empty() {
            return Err(SolverError::ShapeMismatch {
                what: "initial conditions (at least one)",
                expected: vec![1, s],
                got: vec![0],
            });
        }
        if let Some(bad) = ics.iter().find(|ic| ic.len() != s) {
            return Err(SolverError::ShapeMismatch {
                what: "initial condition [x, (y)]",
                expected: self.dims[1..].to_vec(),
                got: vec![bad.len()],
            });
        }
        let count = ics.iter().flatten().filter(|v| !v.is_finite()).count();
        if count > 0 {
            return Err(SolverError::NonFinite {
                what: "initial conditions",
                count,
            });
        }
        Ok(())
    }

    /// The features of a batch of initial conditions, in `dtype`.
    pub fn tensor(&self, ics: &[Vec<f64>], dtype: DType) -> Result<Tensor, SolverError> {
        self.check_ics(ics)?;
        let (s, nd, w) = (self.n_space(), self.dims.len(), self.width());
        let g = self.coords.len() / nd;
        let mut data = Vec::with_capacity(ics.len() * g * w);
        for ic in ics {
            for p in 0..g {
                data.push(ic[p % s]);
                data.extend_from_slice(&self.coords[p * nd..(p + 1) * nd]);
            }
        }
        let mut shape = vec![ics.len()];
        shape.extend(&self.dims);
        shape.push(w);
        Ok(Tensor::from_vec(data, shape, &Device::Cpu)?.to_dtype(dtype)?)
    }
}
