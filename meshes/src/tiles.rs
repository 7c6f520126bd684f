//! Tensor-product tilings of a grid: the experts' subdomains ("tesserae").
//!
//! A split `[s_t, s_x, (s_y)]` cuts each axis into contiguous runs the way
//! `numpy.array_split` does — an axis of `n` points in `s` parts gets parts of
//! `⌈n/s⌉` points first and `⌊n/s⌋` after (101 times in 2 → 51 + 50) — and the
//! tiles are their products, numbered row-major over the split (the last axis's
//! tile index fastest), like grid points.

use std::ops::Range;

use crate::{MeshError, Shape};

/// A partition of a grid's points into `Π s_a` rectangular tiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tiling {
    shape: Shape,
    split: Shape,
    /// Per axis, the `s_a + 1` tile boundaries along it.
    bounds: Vec<Vec<usize>>,
    /// Per axis, the tile index (along that axis) of each coordinate.
    axis_tile: Vec<Vec<usize>>,
    /// The flat grid indices of every tile's points, tile after tile.
    points: Vec<usize>,
    /// Tile `k`'s points are `points[offsets[k]..offsets[k + 1]]`.
    offsets: Vec<usize>,
}

impl Tiling {
    /// The tiling of `shape` by `split` (tiles per axis, slowest axis first).
    ///
    /// Errors: `split` has the wrong number of entries, a zero, or more tiles
    /// along an axis than the axis has points.
    pub fn new(shape: &Shape, split: &[usize]) -> Result<Self, MeshError> {
        if split.len() != shape.ndim() {
            return Err(MeshError::WrongAxisCount {
                what: "tile split",
                expected: shape.ndim(),
                got: split.len(),
            });
        }
        for (axis, (&tiles, &points)) in split.iter().zip(shape.dims()).enumerate() {
            if tiles == 0 {
                return Err(MeshError::TooSmall {
                    what: "number of tiles along an axis",
                    min: 1,
                    got: 0,
                });
            }
            if tiles > points {
                return Err(MeshError::TooManyTiles {
                    axis,
                    tiles,
                    points,
                });
            }
        }
        let bounds: Vec<Vec<usize>> = split
            .iter()
            .zip(shape.dims())
            .map(|(&s, &n)| array_split_bounds(n, s))
            .collect();
        let axis_tile = bounds
            .iter()
            .map(|b| {
                b.windows(2)
                    .enumerate()
                    .flat_map(|(t, w)| std::iter::repeat_n(t, w[1] - w[0]))
                    .collect()
            })
            .collect();
        let mut tiling = Self {
            shape: shape.clone(),
            split: Shape::new(split),
            bounds,
            axis_tile,
            points: Vec::with_capacity(shape.len()),
            offsets: vec![0],
        };
        for k in 0..tiling.n_tiles() {
            let ranges = tiling.tile_ranges(k);
            push_block_points(shape, &ranges, &mut tiling.points);
            tiling.offsets.push(tiling.points.len());
        }
        Ok(tiling)
    }

    /// The grid shape being tiled.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The split: tiles per axis.
    pub fn split(&self) -> &[usize] {
        self.split.dims()
    }

    /// Number of tiles `Π s_a`.
    pub fn n_tiles(&self) -> usize {
        self.split.len()
    }

    /// The index ranges of tile `k` along each axis.
    ///
    /// # Panics
    /// If `k >= self.n_tiles()`.
    #[track_caller]
    pub fn tile_ranges(&self, k: usize) -> Vec<Range<usize>> {
        self.check_tile(k);
        self.split
            .unflat(k)
            .iter()
            .zip(&self.bounds)
            .map(|(&t, b)| b[t]..b[t + 1])
            .collect()
    }

    /// The point shape of tile `k`.
    ///
    /// # Panics
    /// If `k >= self.n_tiles()`.
    #[track_caller]
    pub fn tile_shape(&self, k: usize) -> Shape {
        let dims: Vec<usize> = self.tile_ranges(k).iter().map(Range::len).collect();
        Shape::new(&dims)
    }

    /// The flat grid indices of tile `k`'s points, in row-major order within the
    /// tile — which is also increasing order, so gathers stream forward.
    ///
    /// # Panics
    /// If `k >= self.n_tiles()`.
    #[track_caller]
    pub fn tile_points(&self, k: usize) -> &[usize] {
        self.check_tile(k);
        &self.points[self.offsets[k]..self.offsets[k + 1]]
    }

    /// The tile holding the grid point with flat index `point`.
    ///
    /// # Panics
    /// If `point >= self.shape().len()`.
    #[track_caller]
    pub fn tile_of(&self, point: usize) -> usize {
        assert!(
            point < self.shape.len(),
            "point {point} out of range for a grid of {} points",
            self.shape.len()
        );
        let index: Vec<usize> = self
            .shape
            .unflat(point)
            .iter()
            .zip(&self.axis_tile)
            .map(|(&i, tiles)| tiles[i])
            .collect();
        self.split.flat(&index)
    }

    /// Splits a field with `channels` channels into one field per tile, each laid
    /// out row-major over its tile (`[tile points, channel]`).
    ///
    /// # Panics
    /// If `field` does not hold `shape().len() * channels` values.
    #[track_caller]
    pub fn partition(&self, field: &[f64], channels: usize) -> Vec<Vec<f64>> {
        assert_eq!(
            field.len(),
            self.shape.len() * channels,
            "field length does not match the tiled grid with {channels} channels"
        );
        (0..self.n_tiles())
            .map(|k| {
                self.tile_points(k)
                    .iter()
                    .flat_map(|&p| &field[p * channels..(p + 1) * channels])
                    .copied()
                    .collect()
            })
            .collect()
    }

    /// Reassembles a field from per-tile fields laid out as [`Tiling::partition`]
    /// returns them: the inverse of `partition`.
    ///
    /// # Panics
    /// If there is not one field per tile, or a tile's field has the wrong length.
    #[track_caller]
    pub fn unpartition(&self, tiles: &[Vec<f64>], channels: usize) -> Vec<f64> {
        assert_eq!(tiles.len(), self.n_tiles(), "need one field per tile");
        let mut field = vec![0.0; self.shape.len() * channels];
        for (k, tile) in tiles.iter().enumerate() {
            let points = self.tile_points(k);
            assert_eq!(
                tile.len(),
                points.len() * channels,
                "tile {k} field length does not match its {} points with {channels} channels",
                points.len()
            );
            for (&p, values) in points.iter().zip(tile.chunks_exact(channels.max(1))) {
                field[p * channels..(p + 1) * channels].copy_from_slice(values);
            }
        }
        field
    }

    #[track_caller]
    fn check_tile(&self, k: usize) {
        assert!(
            k < self.n_tiles(),
            "tile {k} out of range for a tiling of {} tiles",
            self.n_tiles()
        );
    }
}

/// `numpy.array_split` boundaries: the first `n mod s` parts get one extra point.
fn array_split_bounds(n: usize, s: usize) -> Vec<usize> {
    let (base, extra) = (n / s, n % s);
    let mut bounds = vec![0];
    for part in 0..s {
        let len = base + usize::from(part < extra);
        bounds.push(bounds[part] + len);
    }
    bounds
}

/// Appends the flat indices of the block `ranges` of `shape`, row-major.
fn push_block_points(shape: &Shape, ranges: &[Range<usize>], points: &mut Vec<usize>) {
    let mut index: Vec<usize> = ranges.iter().map(|r| r.start).collect();
    let last = ranges.len() - 1;
    loop {
        let row_start = shape.flat(&index);
        points.extend(row_start..row_start + ranges[last].len());
        // Advance the odometer over all axes but the last.
        let mut a = last;
        loop {
            if a == 0 {
                return;
            }
            a -= 1;
            index[a] += 1;
            if index[a] < ranges[a].end {
                break;
            }
            index[a] = ranges[a].start;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_numpy_array_split() {
        // numpy.array_split(np.arange(101), 2) → sizes 51, 50;
        // numpy.array_split(np.arange(10), 4) → sizes 3, 3, 2, 2.
        assert_eq!(array_split_bounds(101, 2), vec![0, 51, 101]);
        assert_eq!(array_split_bounds(10, 4), vec![0, 3, 6, 8, 10]);
        assert_eq!(array_split_bounds(4, 4), vec![0, 1, 2, 3, 4]);
        let tiling = Tiling::new(&Shape::new(&[101, 10]), &[2, 4]).unwrap();
        assert_eq!(tiling.n_tiles(), 8);
        assert_eq!(tiling.tile_shape(0).dims(), &[51, 3]);
        assert_eq!(tiling.tile_shape(7).dims(), &[50, 2]);
        assert_eq!(tiling.tile_ranges(5), vec![51..101, 3..6]);
    }

    #[test]
    fn tile_points_are_the_block_in_row_major_order() {
        let shape = Shape::new(&[3, 4, 5]);
        let tiling = Tiling::new(&shape, &[1, 2, 2]).unwrap();
        for k in 0..tiling.n_tiles() {
            let ranges = tiling.tile_ranges(k);
            let expected: Vec<usize> = (0..shape.len())
                .filter(|&p| {
                    let index = shape.unflat(p);
                    index.iter().zip(&ranges).all(|(i, r)| r.contains(i))
                })
                .collect();
            assert_eq!(tiling.tile_points(k), expected.as_slice());
        }
    }

    #[test]
    fn bad_split_gives_typed_errors() {
        let shape = Shape::new(&[5, 3]);
        assert_eq!(
            Tiling::new(&shape, &[1]),
            Err(MeshError::WrongAxisCount {
                what: "tile split",
                expected: 2,
                got: 1
            })
        );
        assert!(matches!(
            Tiling::new(&shape, &[0, 1]),
            Err(MeshError::TooSmall { got: 0, .. })
        ));
        assert_eq!(
            Tiling::new(&shape, &[1, 4]),
            Err(MeshError::TooManyTiles {
                axis: 1,
                tiles: 4,
                points: 3
            })
        );
    }

    #[test]
    #[should_panic(expected = "tile 4 out of range")]
    fn tile_out_of_range_panics() {
        let tiling = Tiling::new(&Shape::new(&[4, 4]), &[2, 2]).unwrap();
        let _ = tiling.tile_points(4);
    }
}
