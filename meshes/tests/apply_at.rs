//! `apply_at` of every operator against the rows of its full `apply`: random
//! point sets (sorted, unsorted, with repeats, always holding the first and last
//! grid points), 1 and 3 channels, a row stride above the channel count, and
//! entries between rows left untouched.

use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tessera_meshes::{
    Compose, FdScheme, FiniteDifference, FourierMultiplier, Grid, Identity, LinearCombination,
    LinearOperator, Scale, Shape, ops::gather_rows,
};

const TOLERANCE: f64 = 1e-14;

/// What `out` holds before `apply_at`: entries between rows must keep it.
const UNTOUCHED: f64 = -12345.5;

fn random_field(len: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// Point sets of a grid of `len` points: sorted and distinct, shuffled, and with
/// repeats; each holds the first and the last point.
fn point_sets(len: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<usize>> {
    let count = (len / 3).max(2);
    let mut sorted: Vec<usize> = (0..len).collect();
    sorted.shuffle(rng);
    sorted.truncate(count);
    sorted.extend([0, len - 1]);
    sorted.sort_unstable();
    sorted.dedup();
    let mut shuffled = sorted.clone();
    shuffled.shuffle(rng);
    let mut repeated: Vec<usize> = (0..count).map(|_| rng.random_range(0..len)).collect();
    repeated.extend([len - 1, 0, len - 1, 0]);
    repeated.shuffle(rng);
    vec![sorted, shuffled, repeated]
}

/// Checks `apply_at` of `op` against the gathered rows of `apply` for every point
/// set and for 1 and 3 channels.
fn check(name: &str, op: &dyn LinearOperator, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let len = op.shape().len();
    for channels in [1, 3] {
        let stride = channels + 2;
        let input = random_field(len * channels, &mut rng);
        let full = op.apply_to_vec(&input, channels);
        for points in point_sets(len, &mut rng) {
            let mut out = vec![UNTOUCHED; points.len() * stride];
            op.apply_at(&input, channels, &points, &mut out, stride);
            for (i, &p) in points.iter().enumerate() {
                let row = &out[i * stride..(i + 1) * stride];
                for (c, &got) in row[..channels].iter().enumerate() {
                    let expected = full[p * channels + c];
                    assert!(
                        (got - expected).abs() <= TOLERANCE * expected.abs(),
                        "{name}, {channels} channels: point {p} channel {c}: {got:e} vs {expected:e}"
                    );
                }
                assert!(
                    row[channels..].iter().all(|&v| v == UNTOUCHED),
                    "{name}: entries between rows were written"
                );
            }
        }
    }
}

fn fd_operators(shape: &Shape) -> Vec<(String, Arc<dyn LinearOperator>)> {
    let mut ops: Vec<(String, Arc<dyn LinearOperator>)> = Vec::new();
    for axis in 0..shape.ndim() {
        for scheme in [
            FdScheme::Reference,
            FdScheme::SecondOrder,
            FdScheme::Periodic,
        ] {
            let h = 0.1 + 0.05 * axis as f64;
            ops.push((
                format!("first {scheme:?} axis {axis}"),
                Arc::new(FiniteDifference::first_with_spacing(shape, axis, scheme, h).unwrap()),
            ));
            ops.push((
                format!("second {scheme:?} axis {axis}"),
                Arc::new(FiniteDifference::second_with_spacing(shape, axis, scheme, h).unwrap()),
            ));
        }
    }
    ops
}

#[test]
fn finite_differences_on_every_axis_of_2d_and_3d_grids() {
    for (g, shape) in [Shape::new(&[7, 9]), Shape::new(&[5, 6, 7])]
        .iter()
        .enumerate()
    {
        for (i, (name, op)) in fd_operators(shape).iter().enumerate() {
            assert!(op.is_local(), "{name}");
            check(name, op.as_ref(), (100 * g + i) as u64);
        }
    }
}

#[test]
fn identity_and_scale() {
    let shape = Shape::new(&[4, 5, 3]);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let identity = Identity::new(&shape);
    let scale = Scale::new(&shape, random_field(shape.len(), &mut rng)).unwrap();
    assert!(identity.is_local() && scale.is_local());
    check("identity", &identity, 2);
    check("scale", &scale, 3);
}

/// A spectral operator's `apply_at` transforms one block at a time (the points
/// an FFT over its axes touches: a time level for axes 1 and 2, a line for
/// axis 2 alone): its rows against the full apply's, including point sets
/// inside one block, where the other blocks are skipped.
#[test]
fn spectral_operators_transform_block_by_block() {
    for (g, grid) in [
        Grid::uniform_txy(3, 8, 6, 1.0).unwrap(),
        Grid::uniform_txy(4, 5, 7, 2.0).unwrap(),
    ]
    .iter()
    .enumerate()
    {
        let twisted = |k: &[f64]| rustfft::num_complex::Complex64::new(k[0] - 0.5, k[1] * k[0]);
        let ops = [
            FourierMultiplier::derivative(grid, 1, 1).unwrap(),
            FourierMultiplier::derivative(grid, 2, 2).unwrap(),
            FourierMultiplier::derivative(grid, 2, 1).unwrap(),
            FourierMultiplier::laplacian(grid).unwrap(),
            FourierMultiplier::inverse_laplacian(grid).unwrap(),
            FourierMultiplier::new(grid, &[1, 2], twisted).unwrap(),
        ];
        for (i, op) in ops.iter().enumerate() {
            assert!(!op.is_local());
            let seed = (10 * g + i) as u64;
            check(&format!("grid {g}, spectral {i}"), op, seed);
            check_inside_one_block(op, seed);
        }
    }
}

/// `apply_at` at points of the middle time level only, unsorted and repeated,
/// against the full apply: exact, as the same arithmetic runs block for block.
fn check_inside_one_block(op: &FourierMultiplier, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dims = op.shape().dims().to_vec();
    let level = dims[1] * dims[2];
    let channels = 3;
    let input = random_field(op.shape().len() * channels, &mut rng);
    let full = op.apply_to_vec(&input, channels);
    let points: Vec<usize> = (0..level / 2)
        .map(|_| level + rng.random_range(0..level))
        .collect();
    let mut out = vec![UNTOUCHED; points.len() * channels];
    op.apply_at(&input, channels, &points, &mut out, channels);
    let mut expected = vec![0.0; out.len()];
    gather_rows(&full, channels, &points, &mut expected, channels);
    assert_eq!(out, expected);
}

#[test]
fn combinations_and_compositions() {
    let grid = Grid::uniform_txy(4, 6, 5, 1.0).unwrap();
    let shape = grid.shape();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let dx: Arc<dyn LinearOperator> =
        Arc::new(FiniteDifference::second(&grid, 1, FdScheme::Periodic).unwrap());
    let dy: Arc<dyn LinearOperator> =
        Arc::new(FiniteDifference::first(&grid, 2, FdScheme::SecondOrder).unwrap());
    let dt: Arc<dyn LinearOperator> =
        Arc::new(FiniteDifference::first(&grid, 0, FdScheme::Reference).unwrap());
    let scale: Arc<dyn LinearOperator> =
        Arc::new(Scale::new(shape, random_field(shape.len(), &mut rng)).unwrap());
    let identity: Arc<dyn LinearOperator> = Arc::new(Identity::new(shape));
    let spectral: Arc<dyn LinearOperator> =
        Arc::new(FourierMultiplier::derivative(&grid, 1, 1).unwrap());

    let local = LinearCombination::new(vec![
        (0.7, dx.clone()),
        (-1.3, dy.clone()),
        (2.0, identity.clone()),
        (0.25, scale.clone()),
    ])
    .unwrap();
    assert!(local.is_local());
    check("local combination", &local, 20);
    let mixed = LinearCombination::new(vec![(1.5, spectral.clone()), (-0.5, dt.clone())]).unwrap();
    assert!(!mixed.is_local());
    check("combination with a spectral part", &mixed, 21);
    let single = LinearCombination::sum(vec![dy.clone()]).unwrap();
    check("one-part combination", &single, 22);

    for (i, factors) in [
        vec![dt.clone(), scale.clone()],
        vec![scale, dx, dy],
        vec![spectral, identity, dt],
    ]
    .into_iter()
    .enumerate()
    {
        let product = Compose::new(factors).unwrap();
        check(&format!("composition {i}"), &product, 30 + i as u64);
    }
}

#[test]
fn no_points_and_no_channels_write_nothing() {
    let shape = Shape::new(&[4, 5]);
    let op = FiniteDifference::first_with_spacing(&shape, 1, FdScheme::Reference, 0.5).unwrap();
    let input = vec![1.0; shape.len()];
    let mut out: Vec<f64> = Vec::new();
    op.apply_at(&input, 1, &[], &mut out, 1);
    let mut out = vec![UNTOUCHED; 4];
    op.apply_at(&[], 0, &[3, 7], &mut out, 2);
    assert!(out.iter().all(|&v| v == UNTOUCHED));
}

#[test]
fn gather_rows_copies_rows_with_a_stride() {
    let field: Vec<f64> = (0..12).map(f64::from).collect();
    let mut out = vec![UNTOUCHED; 8];
    gather_rows(&field, 3, &[3, 0], &mut out, 5);
    assert_eq!(&out[..3], &[9.0, 10.0, 11.0]);
    assert_eq!(&out[5..], &[0.0, 1.0, 2.0]);
    assert!(out[3..5].iter().all(|&v| v == UNTOUCHED));
}

fn fd() -> FiniteDifference {
    FiniteDifference::first_with_spacing(&Shape::new(&[4, 5]), 0, FdScheme::Reference, 0.5).unwrap()
}

#[test]
#[should_panic(expected = "point 20 out of range")]
fn point_out_of_range_panics() {
    fd().apply_at(&[0.0; 20], 1, &[3, 20], &mut [0.0; 2], 1);
}

#[test]
#[should_panic(expected = "does not match shape")]
fn wrong_input_length_panics() {
    fd().apply_at(&[0.0; 19], 1, &[3], &mut [0.0; 1], 1);
}

#[test]
#[should_panic(expected = "row stride 1 is below the 2 channels")]
fn stride_below_channels_panics() {
    fd().apply_at(&[0.0; 40], 2, &[3], &mut [0.0; 2], 1);
}

#[test]
#[should_panic(expected = "cannot hold 2 rows")]
fn short_output_panics() {
    // Row 1 at stride 3 needs 3 + 2 values.
    fd().apply_at(&[0.0; 40], 2, &[3, 4], &mut [0.0; 4], 3);
}

#[test]
#[should_panic(expected = "point 40 out of range")]
fn default_apply_at_checks_points_too() {
    let grid = Grid::uniform_txy(2, 4, 4, 1.0).unwrap();
    let op = FourierMultiplier::laplacian(&grid).unwrap();
    op.apply_at(&[0.0; 32], 1, &[20, 40], &mut [0.0; 2], 1);
}
