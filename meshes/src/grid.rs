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
