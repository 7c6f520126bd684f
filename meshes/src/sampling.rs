//! Reproducible random sampling of distinct points within a tile (each expert's
//! collocation points `S_k ⊂ Ω_k`).
//!
//! **Reproducibility.** Every call builds its own generator, so the result depends
//! only on its arguments — identical on every machine, for every thread count and
//! in whatever order experts and samples are processed:
//!
//! - the generator is ChaCha8 (`rand_chacha::ChaCha8Rng`), a counter-based cipher
//!   with a platform-independent output stream;
//! - its 32-byte key is `seed` (8 bytes, little-endian), then the tile index as a
//!   `u64` (little-endian), then 16 zero bytes; its 64-bit stream id is `stream`
//!   (use it to separate e.g. training steps or samples of a batch);
//! - draws are `u64`s from `rand`'s uniform integer sampler (`random_range`), so the
//!   sequence does not depend on the width of `usize`.
//!
//! **Algorithm.** Robert Floyd's: for `j = m − P, …, m − 1` draw `t` uniform in
//! `0..=j` and take `t`, or `j` if `t` was taken already. It yields each `P`-subset
//! of the `m` tile points with equal probability, in `O(P)` draws and a bitmap
//! over the tile's `m` points.
//!
//! **Order.** The points are returned sorted ascending: the set is what is random,
//! and ascending flat indices make the later gathers of `A_j[p]` stream forward
//! through memory.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{MeshError, Tiling};

/// `count` distinct points of tile `tile`, drawn uniformly from `(seed, stream)`,
/// as flat grid indices sorted ascending (see the module docs for the exact
/// recipe). `count` equal to the tile size returns the whole tile; `0` returns none.
///
/// Errors: `tile` out of range, or `count` larger than the tile.
pub fn sample_points(
    tiling: &Tiling,
    tile: usize,
    count: usize,
    seed: u64,
    stream: u64,
) -> Result<Vec<usize>, MeshError> {
    if tile >= tiling.n_tiles() {
        return Err(MeshError::TileOutOfRange {
            tile,
            n_tiles: tiling.n_tiles(),
        });
    }
    let points = tiling.tile_points(tile);
    let m = points.len();
    if count > m {
        return Err(MeshError::TooManySamples {
            tile,
            requested: count,
            available: m,
        });
    }
    if count == m {
        return Ok(points.to_vec());
    }
    let mut rng = tile_rng(seed, tile, stream);
    // The chosen set as a bitmap over the tile: Floyd's draws are unchanged, and
    // reading the set out in index order sorts it for free (a hash set cost more
    // than the draws at tens of thousands of points per expert and step).
    let mut chosen = vec![false; m];
    for j in (m - count)..m {
        let t = rng.random_range(0..=j as u64) as usize;
        let pick = if chosen[t] { j } else { t };
        chosen[pick] = true;
    }
    // Tile points are increasing, so the result is sorted.
    Ok(points
        .iter()
        .zip(&chosen)
        .filter_map(|(&p, &c)| c.then_some(p))
        .collect())
}

/// The generator for one `(seed, tile, stream)`, keyed as the module docs say.
fn tile_rng(seed: u64, tile: usize, stream: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(tile as u64).to_le_bytes());
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(stream);
    rng
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Shape;

    #[test]
    fn bad_requests_give_typed_errors() {
        let tiling = Tiling::new(&Shape::new(&[4, 6]), &[1, 2]).unwrap();
        assert_eq!(
            sample_points(&tiling, 2, 1, 0, 0),
            Err(MeshError::TileOutOfRange {
                tile: 2,
                n_tiles: 2
            })
        );
        assert_eq!(
            sample_points(&tiling, 1, 13, 0, 0),
            Err(MeshError::TooManySamples {
                tile: 1,
                requested: 13,
                available: 12
            })
        );
    }

    #[test]
    fn whole_tile_and_empty_requests() {
        let tiling = Tiling::new(&Shape::new(&[4, 6]), &[2, 1]).unwrap();
        assert_eq!(
            sample_points(&tiling, 1, 12, 7, 0).unwrap(),
            tiling.tile_points(1)
        );
        assert!(sample_points(&tiling, 0, 0, 7, 0).unwrap().is_empty());
    }
}
