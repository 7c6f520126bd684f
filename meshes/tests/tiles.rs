//! Properties of tilings: tiles cover every point exactly once, follow
//! `numpy.array_split` sizes, and `unpartition` inverts `partition`.

use proptest::prelude::*;
use tessera_meshes::{Shape, Tiling};

/// A shape with 1–3 axes and a valid split of it.
fn shape_and_split() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    prop::collection::vec(1usize..12, 1..4).prop_flat_map(|dims| {
        let splits: Vec<_> = dims.iter().map(|&n| 1..=n).collect();
        (Just(dims), splits)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn tiles_cover_every_point_exactly_once((dims, split) in shape_and_split()) {
        let shape = Shape::new(&dims);
        let tiling = Tiling::new(&shape, &split).unwrap();
        prop_assert_eq!(tiling.n_tiles(), split.iter().product::<usize>());
        let mut owner = vec![usize::MAX; shape.len()];
        for k in 0..tiling.n_tiles() {
            let points = tiling.tile_points(k);
            prop_assert_eq!(points.len(), tiling.tile_shape(k).len());
            prop_assert!(points.windows(2).all(|w| w[0] < w[1]), "not increasing");
            for &p in points {
                prop_assert_eq!(owner[p], usize::MAX, "point {} in two tiles", p);
                owner[p] = k;
                prop_assert_eq!(tiling.tile_of(p), k);
            }
        }
        prop_assert!(owner.iter().all(|&k| k != usize::MAX), "a point in no tile");
    }

    #[test]
    fn tile_sizes_follow_array_split((dims, split) in shape_and_split()) {
        let tiling = Tiling::new(&Shape::new(&dims), &split).unwrap();
        for (axis, (&n, &s)) in dims.iter().zip(&split).enumerate() {
            // Sizes along this axis, read off the tiles at index 0 on every other axis.
            let stride: usize = split[axis + 1..].iter().product();
            let sizes: Vec<usize> = (0..s).map(|t| tiling.tile_shape(t * stride).dims()[axis]).collect();
            prop_assert_eq!(sizes.iter().sum::<usize>(), n);
            let expected: Vec<usize> = (0..s).map(|t| n / s + usize::from(t < n % s)).collect();
            prop_assert_eq!(sizes, expected);
        }
    }

    #[test]
    fn unpartition_inverts_partition(
        (dims, split) in shape_and_split(),
        channels in 0usize..4,
        offset in -5.0f64..5.0,
    ) {
        let shape = Shape::new(&dims);
        let tiling = Tiling::new(&shape, &split).unwrap();
        let field: Vec<f64> = (0..shape.len() * channels).map(|k| k as f64 * 0.5 + offset).collect();
        let tiles = tiling.partition(&field, channels);
        for (k, tile) in tiles.iter().enumerate() {
            prop_assert_eq!(tile.len(), tiling.tile_points(k).len() * channels);
        }
        prop_assert_eq!(tiling.unpartition(&tiles, channels), field);
    }
}

#[test]
fn partition_keeps_each_tile_in_row_major_order() {
    // 2 × 5 grid split [1, 2] → tiles of columns 0..3 and 3..5; values encode (t, x).
    let shape = Shape::new(&[2, 5]);
    let tiling = Tiling::new(&shape, &[1, 2]).unwrap();
    let field: Vec<f64> = (0..10).map(|p| (10 * (p / 5) + p % 5) as f64).collect();
    let tiles = tiling.partition(&field, 1);
    assert_eq!(tiles[0], vec![0.0, 1.0, 2.0, 10.0, 11.0, 12.0]);
    assert_eq!(tiles[1], vec![3.0, 4.0, 13.0, 14.0]);
}

#[test]
#[should_panic(expected = "need one field per tile")]
fn unpartition_with_missing_tiles_panics() {
    let tiling = Tiling::new(&Shape::new(&[4, 4]), &[2, 2]).unwrap();
    tiling.unpartition(&[vec![0.0; 4]], 1);
}
