//! The backbone's input: per grid point the initial condition (broadcast over
//! time) and the grid coordinates normalised to `[0, 1]` per axis, as the
//! reference feeds its FNO (`process_input`: broadcast IC, then `t/t_max`,
//! `x/x_max`). The PDE constants are fixed per scenario, so they carry no
//! information and are not appended.
//!
//! With `model.ic_features = "value-and-log"` the initial condition's natural
//! logarithm follows its value as a second channel
//! ([`tessera_scenarios::config::IcFeatures`]).
//!
//! In a temporal-extrapolation run (`training.horizon`) time is normalised by
//! the trained window's end rather than the grid's (it exceeds 1 past the
//! horizon), so the trained window spans `[0, 1]` as in any other run.

use candle_core::{DType, Device, Tensor};
use tessera_meshes::Grid;
use tessera_scenarios::config::IcFeatures;

use crate::SolverError;

/// Builds feature tensors `[batch, t, x, (y), ic channels + ndim]` for one grid.
#[derive(Debug, Clone)]
pub struct Features {
    dims: Vec<usize>,
    /// `[points, ndim]` normalised coordinates.
    coords: Vec<f64>,
    ic: IcFeatures,
}

impl Features {
    /// The features of `grid`, the time coordinate (axis 0) multiplied by
    /// `time_scale` ([`tessera_scenarios::Scenario::time_feature_scale`]),
    /// the initial condition as `ic` says.
    pub fn new(grid: &Grid, time_scale: f64, ic: IcFeatures) -> Self {
        let dims = grid.shape().dims().to_vec();
        let mut coords = grid.normalised_coordinates();
        for t in coords.iter_mut().step_by(dims.len()) {
            *t *= time_scale;
        }
        Self { dims, coords, ic }
    }

    /// Number of features per point.
    pub fn width(&self) -> usize {
        self.ic.channels() + self.dims.len()
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
        if self.ic == IcFeatures::ValueAndLog
            && let Some(v) = ics.iter().flatten().find(|&&v| v <= 0.0)
        {
            return Err(SolverError::InvalidConfig {
                key: "model.ic_features",
                value: "value-and-log".into(),
                reason: format!(
                    "takes the logarithm of the initial condition, which has the value {v}: \
                     use \"value\" for initial conditions that are not positive"
                ),
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
                let v = ic[p % s];
                data.push(v);
                if self.ic == IcFeatures::ValueAndLog {
                    data.push(v.ln());
                }
                data.extend_from_slice(&self.coords[p * nd..(p + 1) * nd]);
            }
        }
        let mut shape = vec![ics.len()];
        shape.extend(&self.dims);
        shape.push(w);
        Ok(Tensor::from_vec(data, shape, &Device::Cpu)?.to_dtype(dtype)?)
    }

    /// The gradient in one initial condition `ic` of a loss whose gradient in
    /// that sample's features is `features_bar` (`[points, width]` as
    /// [`Features::tensor`] lays them out): the value channel's gradient
    /// summed over the time levels it is broadcast to, plus the log
    /// channel's divided by `ic`. The coordinates do not depend on `ic`.
    ///
    /// Errors: `features_bar` or `ic` of another length.
    pub fn ic_gradient(&self, features_bar: &[f64], ic: &[f64]) -> Result<Vec<f64>, SolverError> {
        let (s, w) = (self.n_space(), self.width());
        if ic.len() != s || features_bar.len() != self.points() * w {
            return Err(SolverError::ShapeMismatch {
                what: "features gradient [points, features] of one initial condition [x, (y)]",
                expected: vec![self.points(), w, s],
                got: vec![features_bar.len(), ic.len()],
            });
        }
        let mut ic_bar = vec![0.0; s];
        for (p, point) in features_bar.chunks(w).enumerate() {
            let i = p % s;
            ic_bar[i] += point[0];
            if self.ic == IcFeatures::ValueAndLog {
                ic_bar[i] += point[1] / ic[i];
            }
        }
        Ok(ic_bar)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::DType;
    use tessera_meshes::Grid;
    use tessera_scenarios::config::IcFeatures;

    use super::Features;

    #[test]
    fn scaled_time_matches_the_trained_window() {
        // Training on linspace(0, 400, 5) of the grid linspace(0, 500, 6): a
        // time level feeds the same time feature on either grid.
        let features = |nt, t_max, scale| {
            Features::new(
                &Grid::uniform_tx(nt, 2, t_max).unwrap(),
                scale,
                IcFeatures::Value,
            )
        };
        let (window, whole) = (features(5, 400.0, 1.0), features(6, 500.0, 5.0 / 4.0));
        // Coordinates are [t, x] per point, two points per level.
        let times = |f: &Features| f.coords.iter().step_by(4).copied().collect::<Vec<_>>();
        let (w, g) = (times(&window), times(&whole));
        assert_eq!(w, [0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(&g[..5], w.as_slice());
        assert_eq!(g[5], 1.25);
        // Space is untouched.
        assert_eq!(whole.coords[1], window.coords[1]);
    }

    /// With the log channel each point reads `[u0, ln u0, t̂, x̂]`; an initial
    /// value that has no logarithm is a typed error, not a NaN feature.
    #[test]
    fn the_log_channel_follows_the_value() {
        let grid = Grid::uniform_tx(2, 2, 1.0).unwrap();
        let features = Features::new(&grid, 1.0, IcFeatures::ValueAndLog);
        assert_eq!(features.width(), 4);
        let ic = vec![0.5, 2.0];
        let t = features
            .tensor(std::slice::from_ref(&ic), DType::F64)
            .unwrap();
        let got = t.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        for (p, point) in got.chunks(4).enumerate() {
            let v = ic[p % 2];
            assert_eq!(point[..2], [v, v.ln()], "point {p}");
            assert_eq!(point[2..], features.coords[2 * p..2 * p + 2], "point {p}");
        }
        let err = features.tensor(&[vec![0.5, 0.0]], DType::F64).unwrap_err();
        assert!(err.to_string().contains("model.ic_features"), "{err}");
        let value = Features::new(&grid, 1.0, IcFeatures::Value);
        assert_eq!(value.width(), 3);
        assert!(value.tensor(&[vec![0.5, 0.0]], DType::F64).is_ok());
    }

    /// `⟨features_bar, ∂features/∂ic · δ⟩ = ⟨ic_gradient, δ⟩` for both
    /// feature sets, the directional derivative of the features taken by
    /// central differences of [`Features::tensor`] (exact for the value
    /// channel, which is linear).
    #[test]
    fn ic_gradient_is_the_features_adjoint() {
        let grid = Grid::uniform_tx(3, 4, 1.0).unwrap();
        let ic = vec![0.7, 1.3, 0.4, 2.1];
        let delta = [0.3, -0.8, 0.5, 0.2];
        for kind in [IcFeatures::Value, IcFeatures::ValueAndLog] {
            let features = Features::new(&grid, 1.0, kind);
            let n = features.points() * features.width();
            let bar: Vec<f64> = (0..n).map(|i| (0.9 * i as f64 + 0.1).sin()).collect();
            let at = |h: f64| {
                let moved: Vec<f64> = ic.iter().zip(&delta).map(|(v, d)| v + h * d).collect();
                let t = features.tensor(&[moved], DType::F64).unwrap();
                t.flatten_all().unwrap().to_vec1::<f64>().unwrap()
            };
            let h = 1e-5;
            let (up, down) = (at(h), at(-h));
            let fd: f64 = (0..n).map(|i| bar[i] * (up[i] - down[i]) / (2.0 * h)).sum();
            let got = features.ic_gradient(&bar, &ic).unwrap();
            let adjoint: f64 = got.iter().zip(&delta).map(|(g, d)| g * d).sum();
            assert!(
                (adjoint - fd).abs() < 1e-8 * fd.abs().max(1.0),
                "{kind:?}: {adjoint} vs {fd}"
            );
            assert!(features.ic_gradient(&bar[1..], &ic).is_err());
        }
    }
}
