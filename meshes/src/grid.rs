//! Uniform space–time grids: physical coordinates per axis plus their
//! `[0, 1]`-normalised versions (the backbone's inputs).

use crate::{MeshError, Shape};

/// One axis of a grid: its physical coordinates and whether it wraps around.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    name: String,
    coords: Vec<f64>,
    periodic: bool,
}

impl Axis {
    /// `n` equally spaced points from `start` to `end`, both included
    /// (numpy's `linspace`); the time axis and PDEBench's `t` use this.
    pub fn linspace(name: &str, start: f64, end: f64, n: usize) -> Result<Self, MeshError> {
        check_interval(start, end)?;
        check_len(n, 2)?;
        let h = (end - start) / (n - 1) as f64;
        let coords = (0..n).map(|i| start + h * i as f64).collect();
        Ok(Self::from_parts(name, coords, false))
    }

    /// `n` cell centres `start + (i + ½)·h`, `h = (end − start)/n` — the
    /// finite-volume layout of PDEBench's diffusion–sorption `x`.
    pub fn cell_centres(name: &str, start: f64, end: f64, n: usize) -> Result<Self, MeshError> {
        check_interval(start, end)?;
        check_len(n, 2)?;
        let h = (end - start) / n as f64;
        let coords = (0..n).map(|i| start + h * (i as f64 + 0.5)).collect();
        Ok(Self::from_parts(name, coords, false))
    }

    /// `n` points `start + i·L/n` of a periodic axis of length `L = end − start`
    /// (the endpoint `end` is the same point as `start` and is not stored).
    pub fn periodic(name: &str, start: f64, end: f64, n: usize) -> Result<Self, MeshError> {
        check_interval(start, end)?;
        check_len(n, 2)?;
        let h = (end - start) / n as f64;
        let coords = (0..n).map(|i| start + h * i as f64).collect();
        Ok(Self::from_parts(name, coords, true))
    }

    fn from_parts(name: &str, coords: Vec<f64>, periodic: bool) -> Self {
        Self {
            name: name.to_owned(),
            coords,
            periodic,
        }
    }

    /// The axis name (`"t"`, `"x"`, `"y"`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Physical coordinates.
    pub fn coords(&self) -> &[f64] {
        &self.coords
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.coords.len()
    }

    /// Always false: axes have at least two points.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether the axis wraps around (the last point neighbours the first).
    pub fn is_periodic(&self) -> bool {
        self.periodic
    }

    /// The uniform spacing between neighbouring points.
    pub fn spacing(&self) -> f64 {
        self.coords[1] - self.coords[0]
    }

    /// The period `n·h` of a periodic axis, or the span `last − first` of a bounded one.
    pub fn length(&self) -> f64 {
        if self.periodic {
            self.spacing() * self.len() as f64
        } else {
            self.coords[self.len() - 1] - self.coords[0]
        }
    }

    /// Coordinates mapped affinely onto `[0, 1]` (first point → 0, last → 1).
    pub fn normalised(&self) -> Vec<f64> {
        let (first, last) = (self.coords[0], self.coords[self.len() - 1]);
        self.coords
            .iter()
            .map(|c| (c - first) / (last - first))
            .collect()
    }
}

fn check_interval(start: f64, end: f64) -> Result<(), MeshError> {
    if !start.is_finite() {
        return Err(MeshError::InvalidValue {
            what: "axis start",
            value: start,
            reason: "must be finite",
        });
    }
    if !(end.is_finite() && end > start) {
        return Err(MeshError::InvalidValue {
            what: "axis end",
            value: end,
            reason: "must be finite and greater than the start",
        });
    }
    Ok(())
}

fn check_len(n: usize, min: usize) -> Result<(), MeshError> {
    if n < min {
        return Err(MeshError::TooSmall {
            what: "axis length",
            min,
            got: n,
        });
    }
    Ok(())
}

/// A tensor-product space–time grid with axes in the order `t, x, (y)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    axes: Vec<Axis>,
    shape: Shape,
}

impl Grid {
    /// A grid from its axes, slowest first (time first by convention).
    pub fn new(axes: Vec<Axis>) -> Result<Self, MeshError> {
        if axes.is_empty() {
            return Err(MeshError::TooSmall {
                what: "number of grid axes",
                min: 1,
                got: 0,
            });
        }
        let dims: Vec<usize> = axes.iter().map(Axis::len).collect();
        Ok(Self {
            shape: Shape::new(&dims),
            axes,
        })
    }

    /// The diffusion–sorption layout: `t = linspace(0, t_max, nt)` and `nx` cell
    /// centres on `x ∈ (0, 1)`.
    pub fn uniform_tx(nt: usize, nx: usize, t_max: f64) -> Result<Self, MeshError> {
        Self::new(vec![
            Axis::linspace("t", 0.0, t_max, nt)?,
            Axis::cell_centres("x", 0.0, 1.0, nx)?,
        ])
    }

    /// The Navier–Stokes layout: `t = linspace(0, t_max, nt)` and a periodic unit
    /// square with `nx × ny` points.
    pub fn uniform_txy(nt: usize, nx: usize, ny: usize, t_max: f64) -> Result<Self, MeshError> {
        Self::new(vec![
            Axis::linspace("t", 0.0, t_max, nt)?,
            Axis::periodic("x", 0.0, 1.0, nx)?,
            Axis::periodic("y", 0.0, 1.0, ny)?,
        ])
    }

    /// The axes, slowest first.
    pub fn axes(&self) -> &[Axis] {
        &self.axes
    }

    /// One axis.
    ///
    /// # Panics
    /// If `a >= self.ndim()`.
    #[track_caller]
    pub fn axis(&self, a: usize) -> &Axis {
        &self.axes[a]
    }

    /// Number of axes.
    pub fn ndim(&self) -> usize {
        self.axes.len()
    }

    /// The point shape `[nt, nx, (ny)]`.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// Number of grid points.
    pub fn len(&self) -> usize {
        self.shape.len()
    }

    /// Always false: grids have at least one axis of at least two points.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Physical coordinates of every point as a field with `ndim` channels
    /// (`[t, x, (y), ndim]`, row-major).
    pub fn coordinates(&self) -> Vec<f64> {
        self.gather(|axis| axis.coords().to_vec())
    }

    /// `[0, 1]`-normalised coordinates of every point, laid out like
    /// [`Grid::coordinates`].
    pub fn normalised_coordinates(&self) -> Vec<f64> {
        self.gather(Axis::normalised)
    }

    fn gather(&self, per_axis: impl Fn(&Axis) -> Vec<f64>) -> Vec<f64> {
        let values: Vec<Vec<f64>> = self.axes.iter().map(per_axis).collect();
        let nd = self.ndim();
        let mut out = vec![0.0; self.len() * nd];
        for p in 0..self.len() {
            for (a, i) in self.shape.unflat(p).into_iter().enumerate() {
                out[p * nd + a] = values[a][i];
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-14 * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn axes_place_points_as_documented() {
        let t = Axis::linspace("t", 0.0, 500.0, 101).unwrap();
        assert!(close(t.spacing(), 5.0) && close(t.coords()[100], 500.0));
        assert!(close(t.length(), 500.0) && !t.is_periodic());
        // PDEBench's x: linspace(dx/2, 1 − dx/2, 1024) with dx = 1/1024.
        let x = Axis::cell_centres("x", 0.0, 1.0, 1024).unwrap();
        let dx = 1.0 / 1024.0;
        assert!(close(x.coords()[0], dx / 2.0) && close(x.coords()[1023], 1.0 - dx / 2.0));
        assert!(close(x.spacing(), dx));
        // A periodic axis does not store its endpoint; its length is the period.
        let y = Axis::periodic("y", -1.0, 2.0, 6).unwrap();
        assert!(close(y.coords()[5], 1.5) && close(y.spacing(), 0.5));
        assert!(close(y.length(), 3.0) && y.is_periodic());
    }

    #[test]
    fn normalised_coordinates_run_from_zero_to_one_by_index() {
        for axis in [
            Axis::linspace("t", 3.0, 7.0, 5).unwrap(),
            Axis::cell_centres("x", 0.0, 1.0, 8).unwrap(),
            Axis::periodic("y", -2.0, 2.0, 4).unwrap(),
        ] {
            let n = axis.len();
            for (i, v) in axis.normalised().iter().enumerate() {
                assert!(close(*v, i as f64 / (n - 1) as f64), "{axis:?}");
            }
        }
    }

    #[test]
    fn grid_coordinates_are_row_major_with_one_channel_per_axis() {
        let grid = Grid::uniform_txy(3, 4, 5, 2.0).unwrap();
        assert_eq!(grid.shape().dims(), &[3, 4, 5]);
        let coords = grid.coordinates();
        let normalised = grid.normalised_coordinates();
        assert_eq!(coords.len(), grid.len() * 3);
        let p = grid.shape().flat(&[2, 1, 3]);
        assert!(close(coords[3 * p], 2.0));
        assert!(close(coords[3 * p + 1], 0.25));
        assert!(close(coords[3 * p + 2], 0.6));
        assert!(close(normalised[3 * p], 1.0));
        assert!(close(normalised[3 * p + 1], 1.0 / 3.0));
        assert!(close(normalised[3 * p + 2], 0.75));
        let tx = Grid::uniform_tx(2, 4, 1.0).unwrap();
        let q = tx.shape().flat(&[1, 2]);
        assert!(close(tx.coordinates()[2 * q + 1], 0.625));
    }

    #[test]
    fn bad_input_gives_typed_errors() {
        assert_eq!(
            Axis::linspace("t", 0.0, 1.0, 1),
            Err(MeshError::TooSmall {
                what: "axis length",
                min: 2,
                got: 1
            })
        );
        assert!(matches!(
            Axis::periodic("x", 1.0, 1.0, 4),
            Err(MeshError::InvalidValue {
                what: "axis end",
                ..
            })
        ));
        assert!(matches!(
            Axis::cell_centres("x", f64::NAN, 1.0, 4),
            Err(MeshError::InvalidValue {
                what: "axis start",
                ..
            })
        ));
        assert!(matches!(
            Grid::uniform_tx(10, 10, f64::INFINITY),
            Err(MeshError::InvalidValue { .. })
        ));
        assert!(matches!(
            Grid::uniform_txy(10, 10, 1, 1.0),
            Err(MeshError::TooSmall { got: 1, .. })
        ));
        assert!(matches!(Grid::new(vec![]), Err(MeshError::TooSmall { .. })));
    }
}
