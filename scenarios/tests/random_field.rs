//! The periodic Gaussian random field: zero mean, the kernel's covariance,
//! reproducible from its seed.

use tessera_scenarios::navier_stokes::PeriodicGrf;
use tessera_scenarios::navier_stokes::random_field::kernel;

#[test]
fn samples_are_mean_free_and_reproducible() {
    let grf = PeriodicGrf::new(16, 0.8).unwrap();
    let a = grf.sample(5, 3);
    assert_eq!(a, grf.sample(5, 3));
    assert_ne!(a, grf.sample(5, 4));
    assert_ne!(a, grf.sample(6, 3));
    let mean = a.iter().sum::<f64>() / a.len() as f64;
    assert!(mean.abs() < 1e-14, "{mean}");
}

#[test]
fn empirical_covariance_matches_the_kernel() {
    let n = 8;
    let points = n * n;
    let grf = PeriodicGrf::new(n, 0.8).unwrap();
    let samples = 4000;
    let mut cov = vec![0.0; points * points];
    for s in 0..samples {
        let w = grf.sample(1, s as u64);
        for p in 0..points {
            for q in 0..points {
                cov[p * points + q] += w[p] * w[q] / samples as f64;
            }
        }
    }
    // Removing the mean projects the covariance: K' = P K P with P = I − 11ᵀ/n.
    let coord = |p: usize| [(p / n) as f64 / n as f64, (p % n) as f64 / n as f64];
    let k = |p: usize, q: usize| {
        let (a, b) = (coord(p), coord(q));
        kernel(&[a[0] - b[0], a[1] - b[1]], 0.8)
    };
    let row_mean: Vec<f64> = (0..points)
        .map(|p| (0..points).map(|q| k(p, q)).sum::<f64>() / points as f64)
        .collect();
    let total_mean = row_mean.iter().sum::<f64>() / points as f64;
    let mut worst: f64 = 0.0;
    let mut scale: f64 = 0.0;
    for p in 0..points {
        for q in 0..points {
            let expected = k(p, q) - row_mean[p] - row_mean[q] + total_mean;
            let diag = (k(p, p) - 2.0 * row_mean[p] + total_mean).max(0.0);
            scale = scale.max(diag);
            worst = worst.max((cov[p * points + q] - expected).abs());
        }
    }
    // Sampling error of a covariance estimate: about σ²·√(2/samples) ≈ 0.022σ²;
    // allow five standard errors.
    println!("max |empirical − kernel| covariance = {worst:e} (variance {scale:e})");
    assert!(
        worst < 5.0 * scale * (2.0 / samples as f64).sqrt(),
        "{worst} vs {scale}"
    );
}

/// The kernel is 1 at zero displacement for every length scale, even one
/// whose square underflows to 0 (where `exp(−2·0/ℓ²)` was NaN and every
/// draw an all-zero field): such a field is the white noise of any length
/// scale far below the grid spacing, draw for draw.
#[test]
fn a_length_scale_whose_square_underflows_draws_white_noise() {
    let tiny = f64::from_bits(1);
    assert_eq!(tiny * tiny, 0.0);
    assert_eq!(kernel(&[0.0, 0.0], tiny), 1.0);
    assert_eq!(kernel(&[0.25, 0.0], tiny), 0.0);
    let white = PeriodicGrf::new(16, 1e-100).unwrap().sample(5, 3);
    for length_scale in [1e-300, tiny] {
        assert_eq!(
            PeriodicGrf::new(16, length_scale).unwrap().sample(5, 3),
            white
        );
    }
    let variance = white.iter().map(|w| w * w).sum::<f64>() / white.len() as f64;
    assert!(variance.is_finite() && variance > 0.1, "{variance}");
}
