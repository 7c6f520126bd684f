//! Accuracy of the spectral operators: exact (to rounding) on band-limited fields,
//! super-algebraic convergence on smooth periodic ones, and agreement with a naive
//! discrete-Fourier-transform oracle for an arbitrary multiplier.

use std::f64::consts::PI;

use rustfft::num_complex::Complex64;
use tessera_meshes::{Axis, FourierMultiplier, Grid, LinearOperator};

const LX: f64 = 2.0;
const LY: f64 = 3.0;

/// A `(t, x, y)` grid with periods `LX`, `LY` (not 1, so the `2π/L` scaling shows).
fn grid(nt: usize, nx: usize, ny: usize) -> Grid {
    Grid::new(vec![
        Axis::linspace("t", 0.0, 1.0, nt).unwrap(),
        Axis::periodic("x", 0.0, LX, nx).unwrap(),
        Axis::periodic("y", -1.0, LY - 1.0, ny).unwrap(),
    ])
    .unwrap()
}

/// Samples `f(t, x, y) · (1 + c)` on `grid` with `channels` channels.
fn sample(grid: &Grid, channels: usize, f: impl Fn(f64, f64, f64) -> f64) -> Vec<f64> {
    let coords = grid.coordinates();
    (0..grid.len() * channels)
        .map(|k| {
            let (p, c) = (k / channels, k % channels);
            let x = &coords[3 * p..3 * p + 3];
            f(x[0], x[1], x[2]) * (1.0 + c as f64)
        })
        .collect()
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).fold(0.0, |m, (a, b)| m.max((a - b).abs()))
}

/// Band-limited `ψ` (modes well below Nyquist on a 16 × 12 grid), and wavenumbers.
const KX: f64 = 2.0 * PI * 3.0 / LX;
const KY: f64 = 2.0 * PI * 2.0 / LY;
const KX1: f64 = 2.0 * PI / LX;

fn psi(t: f64, x: f64, y: f64) -> f64 {
    (1.0 + t) * (KX * x).sin() * (KY * y).cos() + (KX1 * x).cos() + 0.3
}

#[test]
fn derivatives_laplacian_and_inverse_are_exact_on_band_limited_fields() {
    let g = grid(3, 16, 12);
    let channels = 3;
    let f = sample(&g, channels, psi);
    let tol = |exact: &[f64]| 1e-12 * (1.0 + max_abs(exact)) * 16.0;
    let cases: Vec<(FourierMultiplier, Vec<f64>)> = vec![
        (
            FourierMultiplier::derivative(&g, 1, 1).unwrap(),
            sample(&g, channels, |t, x, y| {
                (1.0 + t) * KX * (KX * x).cos() * (KY * y).cos() - KX1 * (KX1 * x).sin()
            }),
        ),
        (
            FourierMultiplier::derivative(&g, 1, 2).unwrap(),
            sample(&g, channels, |t, x, y| {
                -(1.0 + t) * KX * KX * (KX * x).sin() * (KY * y).cos() - KX1 * KX1 * (KX1 * x).cos()
            }),
        ),
        (
            FourierMultiplier::derivative(&g, 2, 3).unwrap(),
            sample(&g, channels, |t, x, y| {
                (1.0 + t) * KY.powi(3) * (KX * x).sin() * (KY * y).sin()
            }),
        ),
        (FourierMultiplier::derivative(&g, 2, 0).unwrap(), f.clone()),
        (
            FourierMultiplier::partial(&g, &[(1, 1), (2, 1)]).unwrap(),
            sample(&g, channels, |t, x, y| {
                -(1.0 + t) * KX * KY * (KX * x).cos() * (KY * y).sin()
            }),
        ),
        (
            FourierMultiplier::partial(&g, &[(1, 2), (2, 1)]).unwrap(),
            sample(&g, channels, |t, x, y| {
                (1.0 + t) * KX * KX * KY * (KX * x).sin() * (KY * y).sin()
            }),
        ),
        (
            FourierMultiplier::laplacian(&g).unwrap(),
            sample(&g, channels, |t, x, y| {
                -(KX * KX + KY * KY) * (1.0 + t) * (KX * x).sin() * (KY * y).cos()
                    - KX1 * KX1 * (KX1 * x).cos()
            }),
        ),
        (
            // The zero mode (0.3) is dropped: the zero-mean solution.
            FourierMultiplier::inverse_laplacian(&g).unwrap(),
            sample(&g, channels, |t, x, y| {
                -(1.0 + t) * (KX * x).sin() * (KY * y).cos() / (KX * KX + KY * KY)
                    - (KX1 * x).cos() / (KX1 * KX1)
            }),
        ),
    ];
    for (op, exact) in cases {
        let got = op.apply_to_vec(&f, channels);
        assert!(
            max_diff(&got, &exact) <= tol(&exact),
            "{op:?}: error {:e}",
            max_diff(&got, &exact)
        );
    }
}

#[test]
fn velocity_from_vorticity_on_the_unit_square() {
    // ψ band-limited; w = −Δψ; u = ∂_y ψ, v = −∂_x ψ from û = i k_y ŵ/|k|², v̂ = −i k_x ŵ/|k|².
    let g = Grid::uniform_txy(2, 16, 16, 1.0).unwrap();
    let (a, b) = (2.0 * PI * 2.0, 2.0 * PI * 3.0);
    let stream =
        |_: f64, x: f64, y: f64| (a * x).sin() * (b * y).cos() + 0.5 * (b * x + a * y).cos();
    let w = sample(&g, 2, |t, x, y| (a * a + b * b) * stream(t, x, y));
    let u_exact = sample(&g, 2, |_, x, y| {
        -b * (a * x).sin() * (b * y).sin() - 0.5 * a * (b * x + a * y).sin()
    });
    let v_exact = sample(&g, 2, |_, x, y| {
        -a * (a * x).cos() * (b * y).cos() + 0.5 * b * (b * x + a * y).sin()
    });
    let velocity = |component: usize, sign: f64| {
        FourierMultiplier::new(&g, &[1, 2], move |k| {
            let k2 = k[0] * k[0] + k[1] * k[1];
            let m = if k2 == 0.0 {
                0.0
            } else {
                sign * k[component] / k2
            };
            Complex64::new(0.0, m)
        })
        .unwrap()
    };
    let u = velocity(1, 1.0).apply_to_vec(&w, 2);
    let v = velocity(0, -1.0).apply_to_vec(&w, 2);
    assert!(max_diff(&u, &u_exact) <= 1e-12 * max_abs(&u_exact) * 16.0);
    assert!(max_diff(&v, &v_exact) <= 1e-12 * max_abs(&v_exact) * 16.0);
    // Divergence-free.
    let dx = FourierMultiplier::derivative(&g, 1, 1)
        .unwrap()
        .apply_to_vec(&u, 2);
    let dy = FourierMultiplier::derivative(&g, 2, 1)
        .unwrap()
        .apply_to_vec(&v, 2);
    let div: Vec<f64> = dx.iter().zip(&dy).map(|(a, b)| a + b).collect();
    assert!(max_abs(&div) <= 1e-11 * max_abs(&w));
}

#[test]
fn inverse_laplacian_inverts_the_laplacian_up_to_the_mean() {
    let g = grid(2, 10, 9);
    let f = sample(&g, 2, |t, x, y| {
        ((3.0 * x + t).sin() * 7.0 + y * y * x).exp().sin()
    });
    let lap = FourierMultiplier::laplacian(&g).unwrap();
    let inv = FourierMultiplier::inverse_laplacian(&g).unwrap();
    let round_trip = lap.apply_to_vec(&inv.apply_to_vec(&f, 2), 2);
    // Expected: f minus its mean over (x, y), per time level and channel.
    let plane = 10 * 9;
    let mut expected = f.clone();
    for (slab, out) in f.chunks(plane * 2).zip(expected.chunks_mut(plane * 2)) {
        for c in 0..2 {
            let mean: f64 = slab.iter().skip(c).step_by(2).sum::<f64>() / plane as f64;
            out.iter_mut().skip(c).step_by(2).for_each(|v| *v -= mean);
        }
    }
    assert!(max_diff(&round_trip, &expected) <= 1e-12 * max_abs(&f) * 100.0);
}

#[test]
fn even_derivatives_keep_the_nyquist_mode_and_odd_ones_drop_it() {
    let g = grid(2, 8, 6);
    // Two channels, so a multiplier that is not real-preserving would also leak
    // between the paired channels.
    let nyquist_x = sample(&g, 2, |_, x, _| (PI * 8.0 * x / LX).cos());
    let k_nyq = PI * 8.0 / LX;
    let second = FourierMultiplier::derivative(&g, 1, 2)
        .unwrap()
        .apply_to_vec(&nyquist_x, 2);
    let expected: Vec<f64> = nyquist_x.iter().map(|v| -k_nyq * k_nyq * v).collect();
    assert!(max_diff(&second, &expected) <= 1e-12 * k_nyq * k_nyq);
    let first = FourierMultiplier::derivative(&g, 1, 1)
        .unwrap()
        .apply_to_vec(&nyquist_x, 2);
    assert!(max_abs(&first) <= 1e-12 * k_nyq);
}

/// A mixed derivative is the product of the one-axis derivatives, Nyquist
/// modes included: on a field holding every mode of an 8 × 6 grid, `∂x∂y`
/// equals `∂x` after `∂y` to rounding (both drop the modes at either axis's
/// Nyquist wavenumber), in either order.
#[test]
fn a_mixed_derivative_is_the_product_of_the_one_axis_ones() {
    let g = grid(2, 8, 6);
    let f = sample(&g, 2, |t, x, y| {
        (1.0 + t) * (3.1 * x + 0.7).sin().exp() * (1.3 * (2.0 * PI * y / LY).cos() + 0.2 * y).cos()
    });
    let dx = FourierMultiplier::derivative(&g, 1, 1).unwrap();
    let dy = FourierMultiplier::derivative(&g, 2, 1).unwrap();
    let dxx = FourierMultiplier::derivative(&g, 1, 2).unwrap();
    for (orders, factors) in [
        (vec![(1, 1), (2, 1)], vec![&dx, &dy]),
        (vec![(1, 1), (2, 1)], vec![&dy, &dx]),
        (vec![(1, 2), (2, 1)], vec![&dxx, &dy]),
    ] {
        let mixed = FourierMultiplier::partial(&g, &orders).unwrap();
        let by_parts = factors
            .iter()
            .fold(f.clone(), |u, op| op.apply_to_vec(&u, 2));
        let got = mixed.apply_to_vec(&f, 2);
        assert!(
            max_diff(&got, &by_parts) <= 1e-12 * max_abs(&by_parts),
            "{orders:?}: {:e}",
            max_diff(&got, &by_parts)
        );
        assert!(max_abs(&got) > 1.0, "{orders:?}: a vanishing field");
    }
    assert!(FourierMultiplier::partial(&g, &[(2, 1), (1, 1)]).is_err());
}

/// `1/(1.5 + sin 2πx)` is analytic but not band-limited: its Fourier coefficients
/// decay like `0.38^|m|`, so the spectral error falls faster than any power of `n`
/// (the observed algebraic order grows with each refinement).
#[test]
fn spectral_derivative_converges_super_algebraically_on_smooth_fields() {
    let f = |x: f64| 1.0 / (1.5 + (2.0 * PI * x).sin());
    let df = |x: f64| -2.0 * PI * (2.0 * PI * x).cos() / (1.5 + (2.0 * PI * x).sin()).powi(2);
    let errors: Vec<f64> = [8, 16, 32, 64]
        .iter()
        .map(|&n| {
            let g = Grid::new(vec![Axis::periodic("x", 0.0, 1.0, n).unwrap()]).unwrap();
            let x = g.axis(0).coords();
            let field: Vec<f64> = x.iter().map(|&x| f(x)).collect();
            let out = FourierMultiplier::derivative(&g, 0, 1)
                .unwrap()
                .apply_to_vec(&field, 1);
            x.iter()
                .zip(&out)
                .fold(0.0_f64, |m, (&x, v)| m.max((v - df(x)).abs()))
        })
        .collect();
    let orders: Vec<f64> = errors.windows(2).map(|e| (e[0] / e[1]).log2()).collect();
    assert!(
        orders.windows(2).all(|o| o[1] > o[0] + 2.0) && orders[0] > 3.0,
        "orders {orders:?} (errors {errors:?}) do not grow"
    );
    assert!(errors[3] < 1e-9, "errors {errors:?}");
}

/// An arbitrary (non-symmetric) multiplier against a naive DFT oracle: the operator
/// must equal `Re F⁻¹ m F` channel by channel, whatever the pairing of channels.
#[test]
fn arbitrary_multiplier_matches_the_real_part_of_a_naive_dft() {
    let (nx, ny, channels) = (6, 5, 3);
    let g = Grid::new(vec![
        Axis::linspace("t", 0.0, 1.0, 2).unwrap(),
        Axis::periodic("x", 0.0, LX, nx).unwrap(),
        Axis::periodic("y", 0.0, LY, ny).unwrap(),
    ])
    .unwrap();
    let m = |k: &[f64]| Complex64::new((k[0] * 0.9 + 0.2).cos() + k[1], (k[0] - 2.0 * k[1]).sin());
    let op = FourierMultiplier::new(&g, &[1, 2], m).unwrap();
    let field: Vec<f64> = (0..g.len() * channels)
        .map(|k| ((k * 7919) % 113) as f64 / 50.0 - 1.0)
        .collect();
    let got = op.apply_to_vec(&field, channels);
    let freq = |j: usize, n: usize, l: f64| {
        // numpy's fftfreq order: the Nyquist mode of an even n counts as −n/2.
        let m = if j <= (n - 1) / 2 {
            j as f64
        } else {
            j as f64 - n as f64
        };
        2.0 * PI * m / l
    };
    let plane = nx * ny;
    for t in 0..2 {
        for c in 0..channels {
            let value = |x: usize, y: usize| field[((t * plane) + x * ny + y) * channels + c];
            for x in 0..nx {
                for y in 0..ny {
                    // Re Σ_k m(k) f̂(k) e^{2πi(jx/nx + jy/ny)} / N, with f̂ the plain DFT.
                    let mut sum = Complex64::new(0.0, 0.0);
                    for jx in 0..nx {
                        for jy in 0..ny {
                            let mut hat = Complex64::new(0.0, 0.0);
                            for x2 in 0..nx {
                                for y2 in 0..ny {
                                    let phase = -2.0
                                        * PI
                                        * ((jx * x2) as f64 / nx as f64
                                            + (jy * y2) as f64 / ny as f64);
                                    hat += value(x2, y2) * Complex64::from_polar(1.0, phase);
                                }
                            }
                            let phase = 2.0
                                * PI
                                * ((jx * x) as f64 / nx as f64 + (jy * y) as f64 / ny as f64);
                            let k = [freq(jx, nx, LX), freq(jy, ny, LY)];
                            sum += m(&k) * hat * Complex64::from_polar(1.0, phase);
                        }
                    }
                    let expected = sum.re / plane as f64;
                    let index = ((t * plane) + x * ny + y) * channels + c;
                    assert!(
                        (got[index] - expected).abs() <= 1e-12 * 10.0,
                        "t {t} c {c} ({x}, {y}): {} vs {expected}",
                        got[index]
                    );
                }
            }
        }
    }
}
