//! Exactness of every operator's adjoint: `⟨D a, b⟩ = ⟨a, Dᵀ b⟩` on random data,
//! for random shapes, axes and channel counts.
//!
//! The mismatch is measured relative to `‖Da‖‖b‖ + ‖a‖‖Dᵀb‖`, the size the two inner
//! products can have (Cauchy–Schwarz), so cancellation in a small inner product
//! cannot hide or fake an error.

use std::f64::consts::PI;
use std::sync::Arc;

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rustfft::num_complex::Complex64;
use tessera_meshes::{
    Axis, CenterScale, Compose, FdScheme, FiniteDifference, FourierMultiplier, Grid, Identity,
    LinearCombination, LinearOperator, Scale, Shape,
};

const TOLERANCE: f64 = 1e-12;

fn random_field(len: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// The relative adjoint mismatch of `op` on random fields drawn from `seed`.
fn adjoint_mismatch(op: &dyn LinearOperator, channels: usize, seed: u64) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let len = op.shape().len() * channels;
    let a = random_field(len, &mut rng);
    let b = random_field(len, &mut rng);
    let da = op.apply_to_vec(&a, channels);
    let dtb = op.apply_adjoint_to_vec(&b, channels);
    let scale = norm(&da) * norm(&b) + norm(&a) * norm(&dtb);
    if scale == 0.0 {
        return 0.0;
    }
    (dot(&da, &b) - dot(&a, &dtb)).abs() / scale
}

fn scheme() -> impl Strategy<Value = FdScheme> {
    prop_oneof![
        Just(FdScheme::Reference),
        Just(FdScheme::SecondOrder),
        Just(FdScheme::Periodic)
    ]
}

/// A grid with `dims` points per axis, each axis periodic or bounded as `periodic` says
/// (periods and spans differ per axis so wavenumber scaling is exercised).
fn grid(dims: &[usize], periodic: &[bool]) -> Grid {
    let axes = dims
        .iter()
        .zip(periodic)
        .enumerate()
        .map(|(a, (&n, &p))| {
            let end = 1.0 + 0.75 * a as f64;
            if p {
                Axis::periodic("p", -0.5, end, n).unwrap()
            } else {
                Axis::linspace("b", 0.0, end, n).unwrap()
            }
        })
        .collect();
    Grid::new(axes).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn finite_differences_have_exact_adjoints(
        dims in prop::collection::vec(4usize..10, 1..4),
        axis_pick in 0usize..3,
        scheme in scheme(),
        second in any::<bool>(),
        spacing in 0.01f64..2.0,
        channels in 1usize..5,
        seed in any::<u64>(),
    ) {
        let shape = Shape::new(&dims);
        let axis = axis_pick % dims.len();
        let op = if second {
            FiniteDifference::second_with_spacing(&shape, axis, scheme, spacing)
        } else {
            FiniteDifference::first_with_spacing(&shape, axis, scheme, spacing)
        }
        .unwrap();
        let mismatch = adjoint_mismatch(&op, channels, seed);
        prop_assert!(mismatch <= TOLERANCE, "mismatch {mismatch:e}");
    }

    #[test]
    fn spectral_operators_have_exact_adjoints(
        dims in prop::collection::vec(2usize..10, 1..4),
        periodic_mask in 1u8..8,
        kind in 0usize..4,
        order in 0u32..5,
        phase in -3.0f64..3.0,
        channels in 1usize..6,
        seed in any::<u64>(),
    ) {
        let periodic: Vec<bool> = (0..dims.len()).map(|a| periodic_mask & (1 << a) != 0).collect();
        prop_assume!(periodic.iter().any(|&p| p));
        let g = grid(&dims, &periodic);
        let spectral: Vec<usize> = (0..dims.len()).filter(|&a| periodic[a]).collect();
        let op = match kind {
            0 => FourierMultiplier::derivative(&g, spectral[spectral.len() - 1], order),
            1 => FourierMultiplier::laplacian(&g),
            2 => FourierMultiplier::inverse_laplacian(&g),
            // A multiplier with no symmetry at all: the symmetrisation must still give
            // an operator whose adjoint is exact.
            _ => FourierMultiplier::new(&g, &spectral, |k| {
                let s: f64 = k.iter().enumerate().map(|(i, k)| (i as f64 + 1.3) * k).sum();
                Complex64::from_polar(1.0 + 0.1 * s.abs(), s * 0.7 + phase)
            }),
        }
        .unwrap();
        let mismatch = adjoint_mismatch(&op, channels, seed);
        prop_assert!(mismatch <= TOLERANCE, "mismatch {mismatch:e}");
    }

    #[test]
    fn level_centring_and_scaling_has_an_exact_adjoint(
        dims in prop::collection::vec(1usize..8, 1..4),
        first_pick in 0usize..3,
        center in any::<bool>(),
        factors in prop::collection::vec(-3.0f64..3.0, 1..64),
        scaled in any::<bool>(),
        channels in 1usize..5,
        seed in any::<u64>(),
    ) {
        let shape = Shape::new(&dims);
        let first = first_pick % dims.len();
        let levels: usize = dims[..first].iter().product();
        let factors = scaled.then(|| factors.iter().cycle().take(levels).copied().collect());
        let op = CenterScale::new(&shape, first, center, factors).unwrap();
        let mismatch = adjoint_mismatch(&op, channels, seed);
        prop_assert!(mismatch <= TOLERANCE, "mismatch {mismatch:e}");
    }

    #[test]
    fn combinators_have_exact_adjoints(
        dims in prop::collection::vec(4usize..9, 2..4),
        coefficients in prop::collection::vec(-3.0f64..3.0, 3),
        channels in 1usize..4,
        seed in any::<u64>(),
    ) {
        let periodic = vec![true; dims.len()];
        let g = grid(&dims, &periodic);
        let shape = g.shape();
        let weights: Vec<f64> = (0..shape.len()).map(|p| (p as f64 * 0.37).sin() + 1.5).collect();
        let scale: Arc<dyn LinearOperator> = Arc::new(Scale::new(shape, weights).unwrap());
        let dt: Arc<dyn LinearOperator> =
            Arc::new(FiniteDifference::first(&g, 0, FdScheme::SecondOrder).unwrap());
        let dx: Arc<dyn LinearOperator> = Arc::new(FourierMultiplier::derivative(&g, 1, 1).unwrap());
        let id: Arc<dyn LinearOperator> = Arc::new(Identity::new(shape));
        let product: Arc<dyn LinearOperator> =
            Arc::new(Compose::new(vec![dx.clone(), scale.clone(), dt.clone()]).unwrap());
        let combination: Arc<dyn LinearOperator> = Arc::new(
            LinearCombination::new(vec![
                (coefficients[0], id.clone()),
                (coefficients[1], product.clone()),
                (coefficients[2], scale.clone()),
            ])
            .unwrap(),
        );
        let nested = Compose::new(vec![combination.clone(), dt, combination.clone()]).unwrap();
        for op in [id.as_ref(), scale.as_ref(), product.as_ref(), combination.as_ref(), &nested] {
            let mismatch = adjoint_mismatch(op, channels, seed);
            prop_assert!(mismatch <= TOLERANCE, "{op:?}: mismatch {mismatch:e}");
        }
    }
}

/// The check above must be able to fail: an operator whose "adjoint" is not the
/// transpose is caught.
#[test]
fn adjoint_check_detects_a_wrong_adjoint() {
    #[derive(Debug)]
    struct NotSelfAdjoint(FiniteDifference);
    impl LinearOperator for NotSelfAdjoint {
        fn shape(&self) -> &Shape {
            self.0.shape()
        }
        fn apply(&self, input: &[f64], channels: usize, out: &mut [f64]) {
            self.0.apply(input, channels, out);
        }
        fn apply_adjoint(&self, input: &[f64], channels: usize, out: &mut [f64]) {
            self.0.apply(input, channels, out);
        }
    }
    let shape = Shape::new(&[8, 5]);
    let d = FiniteDifference::first_with_spacing(&shape, 0, FdScheme::Reference, 0.1).unwrap();
    assert!(adjoint_mismatch(&NotSelfAdjoint(d), 2, 1) > 1e-3);
}

/// Odd spectral derivatives are antisymmetric (`Dᵀ = −D`) once the Nyquist mode is
/// zeroed — a direct check of why it is zeroed.
#[test]
fn odd_spectral_derivative_is_antisymmetric() {
    let g = grid(&[3, 8, 6], &[false, true, true]);
    let d = FourierMultiplier::derivative(&g, 2, 3).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let a = random_field(g.len() * 3, &mut rng);
    let forward = d.apply_to_vec(&a, 3);
    let backward = d.apply_adjoint_to_vec(&a, 3);
    let scale = norm(&forward);
    for (f, b) in forward.iter().zip(&backward) {
        assert!((f + b).abs() <= 1e-13 * scale);
    }
    // And the Nyquist mode (−1)^j along y has no third derivative.
    let nyquist: Vec<f64> = (0..g.len()).map(|p| (PI * (p % 6) as f64).cos()).collect();
    let out = d.apply_to_vec(&nyquist, 1);
    assert!(out.iter().all(|v| v.abs() < 1e-10));
}
