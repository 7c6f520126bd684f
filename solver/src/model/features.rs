//! The backbone's input: per grid point the initial condition (broadcast over
//! time) and the grid coordinates normalised to `[0, 1]` per axis, as the
//! reference feeds its FNO (`process_input`: broadcast IC, then `t/t_max`,
//! `x/x_max`). The PDE constants are fixed per scenario, so they carry no
//! information and are not appended.
//!
//! In a temporal-extrapolation run (`training.horizon`) time is normalised by
//! the trained window's end rather than the grid's (it exceeds 1 past the
//! horizon), so the trained window spans `[0, 1]` as in any other run.

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
    /// The features of `grid`, the time coordinate (axis 0) multiplied by
    /// `time_scale` ([`tessera_scenarios::Scenario::time_feature_scale`]).
    pub fn new(grid: &Grid, time_scale: f64) -> Self {
        let dims = grid.shape().dims().to_vec();
        let mut coords = grid.normalised_coordinates();
        for t in coords.iter_mut().step_by(dims.len()) {
            *t *= time_scale;
        }
        Self { dims, coords }
    }

    /// Number of features per point.
    pub fn width(&self) -> usize {
        self.dims.len() + 1
    }

    /// Grid points (of all time levels).
    pub fn points(&self) -> usize {
        self.dims.iter().product()
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

#[cfg(test)]
mod tests {
    use tessera_meshes::Grid;

    use super::Features;

    #[test]
    fn scaled_time_matches_the_trained_window() {
        // Training on linspace(0, 400, 5) of the grid linspace(0, 500, 6): a
        // time level feeds the same time feature on either grid.
        let window = Features::new(&Grid::uniform_tx(5, 2, 400.0).unwrap(), 1.0);
        let whole = Features::new(&Grid::uniform_tx(6, 2, 500.0).unwrap(), 5.0 / 4.0);
        // Coordinates are [t, x] per point, two points per level.
        let times = |f: &Features| f.coords.iter().step_by(4).copied().collect::<Vec<_>>();
        let (w, g) = (times(&window), times(&whole));
        assert_eq!(w, [0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(&g[..5], w.as_slice());
        assert_eq!(g[5], 1.25);
        // Space is untouched.
        assert_eq!(whole.coords[1], window.coords[1]);
    }
}
