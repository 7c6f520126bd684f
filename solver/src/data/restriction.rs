//! From a dataset's grid to the model's: which stored points make each of
//! the model's, decided by the coordinates both carry.
//!
//! A stored grid may be finer in space by a whole factor `s` per axis (the
//! reference solver's resolution, PDEBench's 1024 cells). How the two nest
//! depends on the layout: on a periodic axis the model's points are every
//! `s`-th stored point, but on a cell-centred axis (diffusion–sorption's
//! finite volumes) no stored centre lies on a model centre — a model cell
//! is `s` stored cells, and its value is their mean (the finite-volume
//! restriction, which is how the generator writes its own data). Taking
//! every `s`-th centre there would shift the field by half a model cell,
//! and a dataset with another `t_max` or domain would be read as if it were
//! the model's: both silently. So each axis is matched on its coordinates:
//! time levels must be the model's, and each space axis must be either
//! every `s`-th point or the means of `s` consecutive cells of the model's
//! axis; anything else is an error naming the axis.

use tessera_meshes::Grid;
use tessera_scenarios::Dataset;

use super::grid_dims;
use crate::SolverError;

/// How the stored points of one space axis make the model's point `i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AxisMap {
    /// Stored point `s·i`.
    Every(usize),
    /// The mean of stored cells `s·i .. s·i + s`.
    Mean(usize),
}

impl AxisMap {
    /// The stored indices that make model point `i`.
    fn sources(self, i: usize) -> std::ops::Range<usize> {
        match self {
            Self::Every(s) => s * i..s * i + 1,
            Self::Mean(s) => s * i..s * (i + 1),
        }
    }

    /// The model's coordinates this map makes of the stored `coords`, `n`
    /// of them.
    fn apply_to(self, coords: &[f64], n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let range = self.sources(i);
                let len = range.len() as f64;
                coords[range].iter().sum::<f64>() / len
            })
            .collect()
    }
}

/// The map from a stored grid `[nt, nx, (ny)]` onto a model grid, checked
/// on their coordinates (module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Restriction {
    /// The stored sizes.
    stored: Vec<usize>,
    /// One map per space axis.
    maps: Vec<AxisMap>,
}

impl Restriction {
    /// The restriction of a stored grid of sizes `stored` and coordinates
    /// `coords` (`[t, x, (y)]`) onto `grid`; with `levels = false` only
    /// the space axes are matched (initial conditions, whose time levels
    /// do not matter).
    ///
    /// Errors: sizes that do not fit (other time levels, a space size
    /// that is not a multiple of the model's: [`SolverError::ShapeMismatch`]),
    /// and coordinates that are not the model's
    /// ([`SolverError::DatasetGrid`]).
    pub(crate) fn onto(
        stored: &[usize],
        coords: &[&[f64]],
        grid: &Grid,
        levels: bool,
    ) -> Result<Self, SolverError> {
        let strides = strides(stored, &grid_dims(grid), levels)?;
        if levels && !close(coords[0], grid.axis(0).coords()) {
            return Err(mismatch(grid, 0, coords[0], ""));
        }
        let maps = strides
            .iter()
            .enumerate()
            .map(|(a, &s)| {
                let (have, model) = (coords[a + 1], grid.axis(a + 1).coords());
                [AxisMap::Every(s), AxisMap::Mean(s)]
                    .into_iter()
                    .find(|map| close(&map.apply_to(have, model.len()), model))
                    .ok_or_else(|| {
                        let how = match s {
                            1 => String::new(),
                            s => format!(
                                ", which neither every {s}-th stored point nor the means of \
                                 {s} consecutive stored cells make"
                            ),
                        };
                        mismatch(grid, a + 1, have, &how)
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            stored: stored.to_vec(),
            maps,
        })
    }

    /// [`Restriction::onto`] for the grid and coordinates of `dataset`.
    pub(crate) fn of_dataset(dataset: &Dataset, grid: &Grid) -> Result<Self, SolverError> {
        let mut coords = vec![dataset.t(), dataset.x()];
        coords.extend(dataset.y());
        Self::onto(&dataset.dims(), &coords, grid, true)
    }

    /// For values without coordinates (a bare array of initial
    /// conditions): every `s`-th point of each space axis, the sizes
    /// checked as [`Restriction::onto`] does.
    pub(crate) fn by_strides(stored: &[usize], dims: &[usize]) -> Result<Self, SolverError> {
        let maps = strides(stored, dims, false)?
            .into_iter()
            .map(AxisMap::Every)
            .collect();
        Ok(Self {
            stored: stored.to_vec(),
            maps,
        })
    }

    /// One stored trajectory (or frame sequence) on the model's grid.
    pub(crate) fn apply<T: Copy + Into<f64>>(&self, values: &[T]) -> Vec<f64> {
        let space = &self.stored[1..];
        let frame: usize = space.iter().product();
        let inner: usize = space[1..].iter().product();
        let model: Vec<usize> = space
            .iter()
            .zip(&self.maps)
            .map(|(&n, map)| match *map {
                AxisMap::Every(s) | AxisMap::Mean(s) => n / s,
            })
            .collect();
        let (nx, ny) = (model[0], model.get(1).copied().unwrap_or(1));
        let y_map = self.maps.get(1).copied().unwrap_or(AxisMap::Every(1));
        values
            .chunks_exact(frame)
            .flat_map(|frame| {
                (0..nx).flat_map(move |i| {
                    (0..ny).map(move |j| {
                        let (mut sum, mut count) = (0.0, 0.0);
                        for ii in self.maps[0].sources(i) {
                            for jj in y_map.sources(j) {
                                sum += frame[ii * inner + jj].into();
                                count += 1.0;
                            }
                        }
                        sum / count
                    })
                })
            })
            .collect()
    }
}

/// The factor each space axis of `stored` is finer than `dims` by (see
/// [`Restriction::onto`]'s shape errors); time levels equal unless
/// `levels` is false.
fn strides(stored: &[usize], dims: &[usize], levels: bool) -> Result<Vec<usize>, SolverError> {
    let fits = stored.len() == dims.len()
        && (!levels || stored[0] == dims[0])
        && stored[1..]
            .iter()
            .zip(&dims[1..])
            .all(|(&h, &d)| d > 0 && h % d == 0);
    if !fits {
        return Err(SolverError::ShapeMismatch {
            what: "dataset grid (time levels equal, space a multiple of the model grid)",
            expected: dims.to_vec(),
            got: stored.to_vec(),
        });
    }
    Ok(stored[1..]
        .iter()
        .zip(&dims[1..])
        .map(|(h, d)| h / d)
        .collect())
}

/// Whether stored coordinates (float32 in a file) are the model's: within
/// a millionth of the axis' largest magnitude, far below float32's
/// rounding's reach and far above it, and below half a cell of any grid
/// of fewer than 500 000 points per axis.
fn close(have: &[f64], model: &[f64]) -> bool {
    let scale = have
        .iter()
        .chain(model)
        .fold(f64::MIN_POSITIVE, |m, c| m.max(c.abs()));
    have.len() == model.len()
        && have
            .iter()
            .zip(model)
            .all(|(h, m)| (h - m).abs() <= 1e-6 * scale)
}

/// The error for axis `a` of `grid`, whose stored coordinates `have` do
/// not make the model's (`how` they were tried).
fn mismatch(grid: &Grid, a: usize, have: &[f64], how: &str) -> SolverError {
    let axis = grid.axis(a);
    SolverError::DatasetGrid {
        axis: axis.name().to_owned(),
        reason: format!(
            "the file's coordinates ({}) are not the model's ({}){how}",
            ends(have),
            ends(axis.coords())
        ),
    }
}

/// `n values: first, second, …, last`, as an error shows coordinates.
fn ends(coords: &[f64]) -> String {
    match coords {
        [first, second, .., last] => format!(
            "{} values: {first:.6}, {second:.6}, …, {last:.6}",
            coords.len()
        ),
        _ => format!("{coords:?}"),
    }
}
