//! The router: a tensor-product tile split of the grid, `P` points sampled per
//! expert, which expert owns each grid point, and which linear rows each expert
//! receives. (Evaluating the terms at the points is [`crate::terms`]' job.)
//!
//! **Linear rows.** [`RowScope::Global`] (the default) gives every expert all the
//! initial/boundary-condition rows of the sample, as the reference does (each
//! expert gets the global IC and both BC tensors): every expert's `ω_k` then
//! fits the IC and BC on the whole domain in a least-squares sense, which keeps the
//! experts' solutions consistent with the data even on tiles that never touch the
//! boundary. [`RowScope::Local`] keeps only the rows whose point lies in the
//! expert's tile: cheaper, and each expert answers only for its own boundary.

use tessera_constraints::LinearRow;
use tessera_meshes::{Shape, Tiling, sample_points};

use crate::ExpertsError;

/// Parses a tile split written `1x4` or `1x2x2` (tiles along `t`, `x`, `(y)`);
/// `None` unless every part is a positive integer and their product (the
/// number of tiles) fits a `usize`.
pub fn parse_split(text: &str) -> Option<Vec<usize>> {
    let split: Vec<usize> = text
        .split('x')
        .map(|part| part.trim().parse::<usize>().ok().filter(|&n| n > 0))
        .collect::<Option<_>>()?;
    // The number of tiles must be a number.
    let tiles = split.iter().try_fold(1usize, |k, &s| k.checked_mul(s));
    tiles.map(|_| split)
}

/// Which linear rows an expert receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RowScope {
    /// All rows of the sample, for every expert (the reference's choice).
    #[default]
    Global,
    /// Only the rows whose point lies in the expert's tile.
    Local,
}

/// The tile split and the sampling rule of a mixture of experts.
#[derive(Debug, Clone, PartialEq)]
pub struct Router {
    tiling: Tiling,
    /// The expert (tile) of every grid point, so that full-grid passes can be
    /// split into any chunks and still find each point's expert in O(1).
    owners: Vec<usize>,
    points_per_expert: usize,
    seed: u64,
    row_scope: RowScope,
}

impl Router {
    /// A router splitting `shape` by `split` (`[s_t, s_x, (s_y)]`), sampling
    /// `points_per_expert` points per tile from `seed`.
    ///
    /// Errors: a bad split (from the mesh layer), zero points, or more points
    /// than the smallest tile holds.
    pub fn new(
        shape: &Shape,
        split: &[usize],
        points_per_expert: usize,
        seed: u64,
        row_scope: RowScope,
    ) -> Result<Self, ExpertsError> {
        let tiling = Tiling::new(shape, split)?;
        if points_per_expert == 0 {
            return Err(ExpertsError::TooSmall {
                what: "points per expert",
                min: 1,
                got: 0,
            });
        }
        if let Some(k) =
            (0..tiling.n_tiles()).find(|&k| tiling.tile_points(k).len() < points_per_expert)
        {
            return Err(tessera_meshes::MeshError::TooManySamples {
                tile: k,
                requested: points_per_expert,
                available: tiling.tile_points(k).len(),
            }
            .into());
        }
        let mut owners = vec![0; shape.len()];
        for k in 0..tiling.n_tiles() {
            for &p in tiling.tile_points(k) {
                owners[p] = k;
            }
        }
        Ok(Self {
            tiling,
            owners,
            points_per_expert,
            seed,
            row_scope,
        })
    }

    /// The tile partition.
    pub fn tiling(&self) -> &Tiling {
        &self.tiling
    }

    /// The expert owning each grid point, `[grid points]`.
    pub fn owners(&self) -> &[usize] {
        &self.owners
    }

    /// Number of experts `K`.
    pub fn n_experts(&self) -> usize {
        self.tiling.n_tiles()
    }

    /// Points per expert `P`.
    pub fn points_per_expert(&self) -> usize {
        self.points_per_expert
    }

    /// The linear-row scope.
    pub fn row_scope(&self) -> RowScope {
        self.row_scope
    }

    /// Expert `k`'s sampled points for `stream` (sorted flat grid indices; the
    /// same `(seed, stream, k)` always gives the same points).
    pub fn sample(&self, expert: usize, stream: u64) -> Result<Vec<usize>, ExpertsError> {
        Ok(sample_points(
            &self.tiling,
            expert,
            self.points_per_expert,
            self.seed,
            stream,
        )?)
    }

    /// Indices (into `rows`) of the linear rows expert `k` receives.
    pub fn rows_for(&self, expert: usize, rows: &[LinearRow]) -> Vec<usize> {
        match self.row_scope {
            RowScope::Global => (0..rows.len()).collect(),
            RowScope::Local => (0..rows.len())
                .filter(|&i| self.owners[rows[i].point] == expert)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits parse; empty, zero, negative and non-numeric parts are refused,
    /// and so are splits whose number of tiles overflows (it once wrapped).
    #[test]
    fn splits_parse_and_impossible_ones_are_refused() {
        assert_eq!(parse_split("1x4"), Some(vec![1, 4]));
        assert_eq!(parse_split(" 2 x 2 x 3 "), Some(vec![2, 2, 3]));
        for bad in ["", "1x", "0x4", "-1x2", "ax2", "99999999999x99999999999"] {
            assert_eq!(parse_split(bad), None, "{bad}");
        }
    }
}
