//! Exact pointwise derivatives of a PDE residual `F(z)` in its terms `z`, from the
//! one generic [`Pde::residual`] evaluated on forward-mode dual numbers.
//!
//! [`values`], [`gradients`] and [`hessians`] check the layouts and hand the
//! whole block of points to the PDE's block methods
//! ([`Pde::residual_gradients_block`], …): by default those run the
//! `*_per_point` functions here, and a PDE with an interpreted residual runs its
//! tape an instruction at a time over the block instead.
//!
//! Per point, the number of terms `d` is small (at most [`MAX_TERMS`]), so every
//! kernel dispatches once per batch of points on `d` to code monomorphised for
//! that `d` (`DualSVec64<d>` for gradients, `Dual2SVec64<d>` for Hessians). Those
//! numbers live on the stack: nothing allocates per point.
//!
//! Layouts (row-major, one block per point): `z` is `[n, d]`, values `[n, m]`,
//! gradients `[n, m, d]`, Hessians `[n, m, d, d]` with `m = n_equations`; the
//! points' coordinates `coords` are `[n, ndim]` for a PDE that
//! [reads them](Pde::uses_coordinates) and empty otherwise.

use num_dual::{Dual2SVec64, DualSVec64};

use crate::Pde;

/// The largest number of terms a PDE may declare (the const-generic dispatch
/// covers `1..=MAX_TERMS`).
pub const MAX_TERMS: usize = 8;

/// Residual values `F(z)` at `n` points: `z` is `[n, d]`, `values` is `[n, m]`.
///
/// # Panics
/// If `d` is 0 or the slice lengths disagree with `d` and `pde.n_equations()`.
#[track_caller]
pub fn values<P: Pde + ?Sized>(pde: &P, d: usize, z: &[f64], coords: &[f64], values: &mut [f64]) {
    check_lengths(pde, d, z, coords, values, &[], 0);
    pde.residual_values_block(d, z, coords, values);
}

/// Values and gradients `∂F/∂z_j` at `n` points (`grads` is `[n, m, d]`).
///
/// # Panics
/// If `d` is 0 or above [`MAX_TERMS`], or the slice lengths disagree.
#[track_caller]
pub fn gradients<P: Pde + ?Sized>(
    pde: &P,
    d: usize,
    z: &[f64],
    coords: &[f64],
    values: &mut [f64],
    grads: &mut [f64],
) {
    check_terms(d);
    check_lengths(pde, d, z, coords, values, grads, d);
    pde.residual_gradients_block(d, z, coords, values, grads);
}

/// Values, gradients and Hessians `∂²F/∂z_j∂z_l` at `n` points (`hessians` is
/// `[n, m, d, d]`).
///
/// # Panics
/// As [`gradients`], or if `hessians` has the wrong length.
#[track_caller]
pub fn hessians<P: Pde + ?Sized>(
    pde: &P,
    d: usize,
    z: &[f64],
    coords: &[f64],
    values: &mut [f64],
    grads: &mut [f64],
    hessians: &mut [f64],
) {
    check_terms(d);
    check_lengths(pde, d, z, coords, values, grads, d);
    check_lengths(pde, d, z, coords, values, hessians, d * d);
    pde.residual_hessians_block(d, z, coords, values, grads, hessians);
}

/// [`values`] by [`Pde::residual`] on `f64`, point by point (the default of
/// [`Pde::residual_values_block`]).
///
/// # Panics
/// As [`values`].
#[track_caller]
pub fn values_per_point<P: Pde + ?Sized>(
    pde: &P,
    d: usize,
    z: &[f64],
    coords: &[f64],
    values: &mut [f64],
) {
    check_lengths(pde, d, z, coords, values, &[], 0);
    let m = pde.n_equations();
    for ((zp, xp), out) in z
        .chunks_exact(d)
        .zip(per_point(coords, z.len() / d))
        .zip(values.chunks_exact_mut(m))
    {
        pde.residual::<f64>(zp, xp, out);
    }
}

/// [`gradients`] by [`Pde::residual`] on `DualSVec64<d>`, point by point (the
/// default of [`Pde::residual_gradients_block`]).
///
/// # Panics
/// As [`gradients`].
#[track_caller]
pub fn gradients_per_point<P: Pde + ?Sized>(
    pde: &P,
    d: usize,
    z: &[f64],
    coords: &[f64],
    values: &mut [f64],
    grads: &mut [f64],
) {
    check_lengths(pde, d, z, coords, values, grads, d);
    match d {
        1 => gradients_n::<P, 1>(pde, z, coords, values, grads),
        2 => gradients_n::<P, 2>(pde, z, coords, values, grads),
        3 => gradients_n::<P, 3>(pde, z, coords, values, grads),
        4 => gradients_n::<P, 4>(pde, z, coords, values, grads),
        5 => gradients_n::<P, 5>(pde, z, coords, values, grads),
        6 => gradients_n::<P, 6>(pde, z, coords, values, grads),
        7 => gradients_n::<P, 7>(pde, z, coords, values, grads),
        8 => gradients_n::<P, 8>(pde, z, coords, values, grads),
        _ => panic!("{d} terms: supported are 1..={MAX_TERMS}"),
    }
}

/// [`hessians`] by [`Pde::residual`] on `Dual2SVec64<d>`, point by point (the
/// default of [`Pde::residual_hessians_block`]).
///
/// # Panics
/// As [`hessians`].
#[track_caller]
pub fn hessians_per_point<P: Pde + ?Sized>(
    pde: &P,
    d: usize,
    z: &[f64],
    coords: &[f64],
    values: &mut [f64],
    grads: &mut [f64],
    hessians: &mut [f64],
) {
    check_lengths(pde, d, z, coords, values, grads, d);
    check_lengths(pde, d, z, coords, values, hessians, d * d);
    match d {
        1 => hessians_n::<P, 1>(pde, z, coords, values, grads, hessians),
        2 => hessians_n::<P, 2>(pde, z, coords, values, grads, hessians),
        3 => hessians_n::<P, 3>(pde, z, coords, values, grads, hessians),
        4 => hessians_n::<P, 4>(pde, z, coords, values, grads, hessians),
        5 => hessians_n::<P, 5>(pde, z, coords, values, grads, hessians),
        6 => hessians_n::<P, 6>(pde, z, coords, values, grads, hessians),
        7 => hessians_n::<P, 7>(pde, z, coords, values, grads, hessians),
        8 => hessians_n::<P, 8>(pde, z, coords, values, grads, hessians),
        _ => panic!("{d} terms: supported are 1..={MAX_TERMS}"),
    }
}

#[track_caller]
fn check_terms(d: usize) {
    assert!(
        (1..=MAX_TERMS).contains(&d),
        "{d} terms: supported are 1..={MAX_TERMS}"
    );
}

#[track_caller]
fn check_lengths<P: Pde + ?Sized>(
    pde: &P,
    d: usize,
    z: &[f64],
    coords: &[f64],
    values: &[f64],
    per_equation: &[f64],
    block: usize,
) {
    assert!(
        d > 0 && z.len().is_multiple_of(d),
        "z is not a whole number of points"
    );
    let n = z.len() / d;
    assert!(
        coords.is_empty() || (n > 0 && coords.len().is_multiple_of(n)),
        "coordinates are not a whole number per point"
    );
    let m = pde.n_equations();
    assert_eq!(values.len(), n * m, "values buffer has the wrong length");
    assert_eq!(
        per_equation.len(),
        n * m * block,
        "derivative buffer has the wrong length"
    );
}

/// The coordinates of each of `n` points: `coords` in `n` equal rows, or `n`
/// empty rows when it is empty.
fn per_point(coords: &[f64], n: usize) -> impl Iterator<Item = &[f64]> {
    let width = coords.len().checked_div(n).unwrap_or(0);
    (0..n).map(move |p| &coords[p * width..(p + 1) * width])
}

fn gradients_n<P: Pde + ?Sized, const D: usize>(
    pde: &P,
    z: &[f64],
    coords: &[f64],
    values: &mut [f64],
    grads: &mut [f64],
) {
    let m = pde.n_equations();
    let mut zd = [DualSVec64::<D>::from_re(0.0); D];
    let mut out = vec![DualSVec64::<D>::from_re(0.0); m];
    for (((zp, xp), vp), gp) in z
        .chunks_exact(D)
        .zip(per_point(coords, z.len() / D))
        .zip(values.chunks_exact_mut(m))
        .zip(grads.chunks_exact_mut(m * D))
    {
        for (j, (zj, &x)) in zd.iter_mut().zip(zp).enumerate() {
            *zj = DualSVec64::from_re(x).derivative(j);
        }
        pde.residual(&zd, xp, &mut out);
        for ((o, v), g) in out.iter().zip(vp.iter_mut()).zip(gp.chunks_exact_mut(D)) {
            *v = o.re;
            match &o.eps.0 {
                Some(e) => g.iter_mut().enumerate().for_each(|(j, gj)| *gj = e[j]),
                None => g.fill(0.0),
            }
        }
    }
}

fn hessians_n<P: Pde + ?Sized, const D: usize>(
    pde: &P,
    z: &[f64],
    coords: &[f64],
    values: &mut [f64],
    grads: &mut [f64],
    hessians: &mut [f64],
) {
    let m = pde.n_equations();
    let mut zd = [Dual2SVec64::<D>::from_re(0.0); D];
    let mut out = vec![Dual2SVec64::<D>::from_re(0.0); m];
    for ((((zp, xp), vp), gp), hp) in z
        .chunks_exact(D)
        .zip(per_point(coords, z.len() / D))
        .zip(values.chunks_exact_mut(m))
        .zip(grads.chunks_exact_mut(m * D))
        .zip(hessians.chunks_exact_mut(m * D * D))
    {
        for (j, (zj, &x)) in zd.iter_mut().zip(zp).enumerate() {
            *zj = Dual2SVec64::from_re(x).derivative(j);
        }
        pde.residual(&zd, xp, &mut out);
        for (((o, v), g), h) in out
            .iter()
            .zip(vp.iter_mut())
            .zip(gp.chunks_exact_mut(D))
            .zip(hp.chunks_exact_mut(D * D))
        {
            *v = o.re;
            match &o.v1.0 {
                Some(e) => g.iter_mut().enumerate().for_each(|(j, gj)| *gj = e[j]),
                None => g.fill(0.0),
            }
            match &o.v2.0 {
                Some(e) => h
                    .iter_mut()
                    .enumerate()
                    .for_each(|(k, hk)| *hk = e[(k / D, k % D)]),
                None => h.fill(0.0),
            }
        }
    }
}
