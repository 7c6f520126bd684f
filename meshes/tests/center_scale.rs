//! [`CenterScale`] against what it replaces: the zero mode of a Fourier
//! multiplier over the trailing periodic axes removed, then a [`Scale`] along
//! `t` (the same map on a uniform periodic grid, computed by FFTs); and the
//! defining property that a centred level has zero mean in every channel.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rustfft::num_complex::Complex64;
use tessera_meshes::{Axis, CenterScale, Compose, FourierMultiplier, Grid, LinearOperator, Scale};

fn random(len: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    (0..len).map(|_| rng.random_range(-2.0..2.0)).collect()
}

/// The zero-mode-free multiplier over axes `1..` of `grid`.
fn spectral_centring(grid: &Grid) -> FourierMultiplier {
    let axes: Vec<usize> = (1..grid.ndim()).collect();
    FourierMultiplier::new(grid, &axes, |k| {
        let zero = k.iter().all(|&k| k == 0.0);
        Complex64::new(if zero { 0.0 } else { 1.0 }, 0.0)
    })
    .unwrap()
}

#[test]
fn equals_the_spectral_centring_then_the_scale_along_t() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for grid in [
        Grid::uniform_txy(4, 6, 5, 1.0).unwrap(),
        Grid::uniform_txy(3, 8, 8, 2.0).unwrap(),
        Grid::new(vec![
            Axis::linspace("t", 0.0, 1.0, 5).unwrap(),
            Axis::periodic("x", 0.0, 3.0, 7).unwrap(),
        ])
        .unwrap(),
    ] {
        let shape = grid.shape();
        let nt = shape.dims()[0];
        let profile = random(nt, &mut rng);
        let scale = Scale::along_axis(shape, 0, &profile).unwrap();
        let cases: [(bool, bool, Arc<dyn LinearOperator>); 3] = [
            (
                true,
                true,
                Arc::new(
                    Compose::new(vec![
                        Arc::new(spectral_centring(&grid)),
                        Arc::new(scale.clone()),
                    ])
                    .unwrap(),
                ),
            ),
            (true, false, Arc::new(spectral_centring(&grid))),
            (false, true, Arc::new(scale)),
        ];
        for (center, scaled, oracle) in cases {
            let op = CenterScale::new(shape, 1, center, scaled.then(|| profile.clone())).unwrap();
            for channels in [1, 2, 5] {
                let input = random(shape.len() * channels, &mut rng);
                let got = op.apply_to_vec(&input, channels);
                let expected = oracle.apply_to_vec(&input, channels);
                let worst = got
                    .iter()
                    .zip(&expected)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                assert!(
                    worst < 1e-13,
                    "{:?} center {center} scaled {scaled}: {worst:e}",
                    shape.dims()
                );
            }
        }
    }
}

#[test]
fn centred_levels_have_zero_mean_and_constants_vanish() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let grid = Grid::uniform_txy(3, 5, 4, 1.0).unwrap();
    let shape = grid.shape();
    let (channels, block) = (3, 20);
    let op = CenterScale::new(shape, 1, true, Some(vec![0.5, -2.0, 3.0])).unwrap();
    let out = op.apply_to_vec(&random(shape.len() * channels, &mut rng), channels);
    for level in out.chunks_exact(block * channels) {
        for c in 0..channels {
            let sum: f64 = level.iter().skip(c).step_by(channels).sum();
            assert!(sum.abs() < 1e-13, "channel {c}: {sum:e}");
        }
    }
    // A field constant on each level is centred to zero.
    let constant: Vec<f64> = (0..shape.len()).map(|p| (p / block) as f64 + 1.5).collect();
    assert!(
        op.apply_to_vec(&constant, 1)
            .iter()
            .all(|v| v.abs() < 1e-15)
    );
}
