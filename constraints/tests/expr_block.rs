//! The block evaluator against the per-point one: values, gradients and
//! Hessians of [`Tape::eval_block`], [`Tape::eval_gradients_block`] and
//! [`Tape::eval_hessians_block`] equal [`Tape::eval`] on `f64`, `DualSVec64<d>`
//! and `Dual2SVec64<d>` to round-off, for every operation and branch, at block
//! sizes on and off the evaluator's chunk boundaries, with and without data
//! inputs (coordinates) that are not differentiated.

use num_dual::{Dual2SVec64, DualSVec64};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tessera_constraints::expr::{Origin, Scope, Tape, compile};

/// Block sizes: one point, around the chunks (a chunk is 64 points), and the
/// constraint layer's blocks of 256 and one past.
const SIZES: [usize; 8] = [1, 7, 63, 64, 65, 130, 256, 257];

/// Every operation and branch: `min`/`max` with slots and constants on either
/// side, `abs` on both signs, `pow` (slot exponent), `powf`, `powi`, a constant
/// base, a constant over a slot, and a slot used twice in one instruction.
const EVERYTHING: &str = "
let a = exp(u) * log(u_t) - sqrt(u_xx) / abs(u - 0.7)
let b = sin(a) + cos(u_t) * tanh(u_xx) + abs(u_t - 0.6) * u
let c = max(u, u_t) - min(u_xx, 0.5) + clamp(u, 0.2, 0.4) + max(0.1, u) - min(0.9, u_t)
b * c + u^2 + u_t^-3 + u_xx^n_f + u^u_t + 2^u_xx - 1/u + 3 - u_t + D/4 * u + u*u
a; -c / 2 * u; (max(u, 0) + 1e-6)^(n_f - 1) * u_xx / (1 + u)
";

fn scope(terms: &[&str]) -> Scope {
    terms
        .iter()
        .fold(Scope::new(), |s, t| s.term(*t))
        .constant("D", 5e-4)
        .constant("n_f", 0.874)
        .constant("nu", 1e-4)
}

fn tape(text: &str, terms: &[&str]) -> Tape {
    compile(text, Origin::default(), &scope(terms), "residual").unwrap()
}

/// A tape over `terms` followed by the data inputs `t` and `x`.
fn tape_with_coordinates(text: &str, terms: &[&str]) -> Tape {
    let scope = scope(terms).variable("t").variable("x");
    compile(text, Origin::default(), &scope, "residual").unwrap()
}

/// `n` points of `d` inputs in `(lo, hi)`, every seventh entry on a branch
/// point (0 and the constants the `min`/`max` compare with), so that ties are
/// exercised as well as both sides.
fn points(n: usize, d: usize, lo: f64, hi: f64, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ties = [0.0, 0.1, 0.2, 0.4, 0.5, 0.9];
    (0..n * d)
        .map(|i| {
            if i % 7 == 3 {
                ties[rng.random_range(0..ties.len())]
            } else {
                rng.random_range(lo..hi)
            }
        })
        .collect()
}

/// The per-point evaluations of a tape at some points, of one order (values,
/// first or second derivatives): values `[n, m]`, and the derivatives `[n, m,
/// d]` or `[n, m, d, d]` (empty for values).
struct Evaluation {
    values: Vec<f64>,
    derivatives: Vec<f64>,
}

/// The per-point values, gradients and Hessians of `tape` at `z` (with the
/// data inputs `data`, `[n, c]`), each from [`Tape::eval_with_data`] on its
/// own number type (`f64`, `DualSVec64<D>`, `Dual2SVec64<D>`): their values can
/// differ, e.g. `powf` on dual numbers is `x^(c−1)·x`, NaN at `x = 0` where
/// `0^c` is 0.
fn per_point<const D: usize>(tape: &Tape, z: &[f64], data: &[f64]) -> [Evaluation; 3] {
    let (m, c) = (tape.n_outputs(), tape.n_inputs() - D);
    let mut out = [(); 3].map(|_| Evaluation {
        values: Vec::new(),
        derivatives: Vec::new(),
    });
    for (k, p) in z.chunks_exact(D).enumerate() {
        let xp = &data[k * c..(k + 1) * c];
        let mut values = vec![0.0; m];
        tape.eval_with_data(p, xp, &mut values);
        out[0].values.extend(&values);
        let x: Vec<DualSVec64<D>> = (0..D)
            .map(|j| DualSVec64::from_re(p[j]).derivative(j))
            .collect();
        let mut first = vec![DualSVec64::from_re(0.0); m];
        tape.eval_with_data(&x, xp, &mut first);
        let x: Vec<Dual2SVec64<D>> = (0..D)
            .map(|j| Dual2SVec64::from_re(p[j]).derivative(j))
            .collect();
        let mut second = vec![Dual2SVec64::from_re(0.0); m];
        tape.eval_with_data(&x, xp, &mut second);
        for (f, s) in first.iter().zip(&second) {
            out[1].values.push(f.re);
            out[1]
                .derivatives
                .extend((0..D).map(|j| f.eps.0.map_or(0.0, |e| e[j])));
            out[2].values.push(s.re);
            out[2]
                .derivatives
                .extend((0..D).map(|j| s.v1.0.map_or(0.0, |e| e[j])));
            let h = s.v2.0;
            out[2]
                .derivatives
                .extend((0..D * D).map(|k| h.map_or(0.0, |h| h[(k / D, k % D)])));
        }
    }
    out
}

/// Entry by entry, `x` (block) equals `y` (per point) to `tol` relative, or
/// both are the same non-finite number. One exception, row by row (a row: the
/// entries of one output at one point): where the per-point evaluation has a
/// non-finite entry, the block's row need only have one too. Dual numbers carry
/// every entry, so a structural zero times an infinity (the gradient of
/// `sqrt(u_xx)` at `u_xx = 0`, times an entry that is 0) is NaN there; the
/// block evaluator skips structural zeros and keeps such entries finite and
/// right, while the row's infinite entry still marks the point as singular.
#[track_caller]
fn assert_rows_close(what: &str, x: &[f64], y: &[f64], row: usize, tol: f64) {
    assert_eq!(x.len(), y.len());
    for (r, (xr, yr)) in x.chunks(row).zip(y.chunks(row)).enumerate() {
        if yr.iter().any(|y| !y.is_finite()) && xr.iter().any(|x| !x.is_finite()) {
            continue;
        }
        for (x, y) in xr.iter().zip(yr) {
            let same = x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan());
            assert!(
                same || (x - y).abs() <= tol * y.abs(),
                "{what}, row {r}: block {x} vs per point {y} (rows {xr:?} vs {yr:?})"
            );
        }
    }
}

/// The block evaluations of `tape` equal the per-point ones, for every block
/// size, with points drawn from `(lo, hi)`; inputs after the first `D` are data.
fn check<const D: usize>(tape: &Tape, lo: f64, hi: f64, tol: f64) {
    let (m, c) = (tape.n_outputs(), tape.n_inputs() - D);
    for (seed, &n) in SIZES.iter().enumerate() {
        let z = points(n, D, lo, hi, seed as u64);
        let data = points(n, c, lo, hi, 100 + seed as u64);
        let [v, g, h] = per_point::<D>(tape, &z, &data);

        let mut values = vec![f64::NAN; n * m];
        tape.eval_block(&z, &data, &mut values);
        assert_rows_close("value", &values, &v.values, 1, tol);

        let (mut values, mut grads) = (vec![f64::NAN; n * m], vec![f64::NAN; n * m * D]);
        tape.eval_gradients_block(&z, &data, &mut values, &mut grads);
        assert_rows_close("value (first order)", &values, &g.values, 1, tol);
        assert_rows_close("gradient", &grads, &g.derivatives, D, tol);

        let mut values = vec![f64::NAN; n * m];
        let mut grads = vec![f64::NAN; n * m * D];
        let mut hessians = vec![f64::NAN; n * m * D * D];
        tape.eval_hessians_block(&z, &data, &mut values, &mut grads, &mut hessians);
        assert_rows_close("value (second order)", &values, &h.values, 1, tol);
        let both: Vec<f64> = grads
            .chunks(D)
            .zip(hessians.chunks(D * D))
            .flat_map(|(g, h)| g.iter().chain(h).copied())
            .collect();
        assert_rows_close(
            "gradient and Hessian",
            &both,
            &h.derivatives,
            D + D * D,
            tol,
        );
    }
}

#[test]
fn every_operation_and_branch_matches_the_per_point_evaluation() {
    let t = tape(EVERYTHING, &["u", "u_t", "u_xx"]);
    assert_eq!(t.n_outputs(), 4);
    check::<3>(&t, 0.05, 1.5, 1e-13);
}

#[test]
fn negative_and_out_of_domain_inputs_give_the_same_numbers() {
    // Both sides of every branch, and logs, roots and powers of negative
    // numbers: NaN where the per-point evaluation gives NaN.
    let t = tape(EVERYTHING, &["u", "u_t", "u_xx"]);
    check::<3>(&t, -1.5, 1.5, 1e-13);
}

#[test]
fn diffusion_sorption_residual_matches() {
    let t = tape(
        "let R = 1 + (1 - 0.29)/0.29 * 2880 * 3.5e-4 * n_f * (max(u, 0) + 1e-6)^(n_f - 1)\nu_t - u_xx * D / R",
        &["u", "u_t", "u_xx"],
    );
    check::<3>(&t, -0.2, 1.2, 1e-13);
}

#[test]
fn navier_stokes_residual_matches() {
    let t = tape(
        "w_t + (v_x * w_x + v_y * w_y) - lap_w * nu",
        &["w_t", "v_x", "v_y", "w_x", "w_y", "lap_w"],
    );
    check::<6>(&t, -2.0, 2.0, 1e-13);
}

#[test]
fn a_term_the_residual_does_not_read_has_zero_derivatives() {
    let t = tape("u_t - u_xx * D", &["u", "u_t", "u_xx"]);
    check::<3>(&t, -1.0, 1.0, 0.0);
    let z = [0.3, 0.2, 0.1];
    let (mut v, mut g, mut h) = ([0.0], [f64::NAN; 3], [f64::NAN; 9]);
    t.eval_hessians_block(&z, &[], &mut v, &mut g, &mut h);
    assert_eq!(g, [0.0, 1.0, -5e-4]);
    assert_eq!(h, [0.0; 9]);
}

#[test]
fn coordinates_enter_values_but_are_never_differentiated() {
    // Coordinates in a nonlinear coefficient, a source and a product with a
    // term: the block evaluator agrees with dual numbers that hold them as
    // constants, for every operation of EVERYTHING with `t`, `x` mixed in.
    let t = tape_with_coordinates(
        "let k = exp(-t) * (1 + x^2)\nu_t - k * u_xx + sin(x) * u^2 - t * x",
        &["u", "u_t", "u_xx"],
    );
    check::<3>(&t, -1.0, 1.0, 1e-13);
    let t = tape_with_coordinates(
        &format!(
            "{}; t * x * u + max(t, u) - min(x, u_t)",
            EVERYTHING.trim_end()
        ),
        &["u", "u_t", "u_xx"],
    );
    check::<3>(&t, 0.05, 1.5, 1e-13);

    // By hand: F = u_t − x·u_xx − t at (u, u_t, u_xx) = (0.3, 0.2, 0.1),
    // (t, x) = (2, 5): value 0.2 − 0.5 − 2, gradient (0, 1, −5), no curvature.
    let t = tape_with_coordinates("u_t - x * u_xx - t", &["u", "u_t", "u_xx"]);
    let (mut v, mut g, mut h) = ([0.0], [f64::NAN; 3], [f64::NAN; 9]);
    t.eval_hessians_block(&[0.3, 0.2, 0.1], &[2.0, 5.0], &mut v, &mut g, &mut h);
    assert_eq!(v, [0.2 - 0.5 - 2.0]);
    assert_eq!(g, [0.0, 1.0, -5.0]);
    assert_eq!(h, [0.0; 9]);
}
