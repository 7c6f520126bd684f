//! The backbone's activation, GELU in its tanh form — `jax.nn.gelu`'s default,
//! which the reference FNO calls:
//! `gelu(z) = ½ z (1 + tanh u)` with `u = √(2/π) (z + 0.044715 z³)` — as slice
//! kernels. They evaluate it as `z σ(2u)` with the logistic function
//! `σ(2u) = 1/(1 + e^{−2u}) = ½(1 + tanh u)`: the same function, one
//! exponential and one division, and no cancellation in the negative tail.
//!
//! A paper-scale training step evaluates ~10⁸ activations, so the kernels are
//! written to vectorise: branch-free, an inlined `exp`, run in parallel
//! chunks, and compiled for AVX-512 and for AVX2+FMA besides the build's
//! target, the best the CPU has chosen at run time (no build flags needed).
//! Value and slope come from the same formulas so forward and backward passes
//! agree to rounding.

use rayon::prelude::*;

use super::Real;

/// Elements per parallel chunk.
const CHUNK: usize = 1 << 14;
const K0: f64 = 0.797_884_560_802_865_4; // √(2/π)
const K1: f64 = 0.044_715;
/// Where [`exp`]'s argument is clamped: `e^±700` and every intermediate stay
/// normal numbers (subnormal results cost microcode assists on x86), and past
/// it the logistic function is 1 or below 1e-304 anyway.
const EXP_BOUND: f64 = 700.0;

/// `e^x` for `|x| ≤ 700` to within a couple of ulps (relative), branch-free:
/// Cody–Waite reduction `x = k ln2 + r` (the integer `k` found with the
/// `1.5·2⁵²` rounding trick), then a degree-13 Taylor polynomial on
/// `|r| ≤ ln2/2`, whose truncation error `r¹⁴/14!` is below 1e-17, evaluated
/// by Horner's rule with fused multiply–adds (one rounding per step, and half
/// the dependency chain of separate products and sums on the vectorised
/// path), and `2ᵏ` built in the exponent bits. NaN propagates.
#[inline(always)]
fn exp(x: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5·2⁵²
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let shifted = x * std::f64::consts::LOG2_E + MAGIC;
    let k = shifted - MAGIC;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let mut p: f64 = 1.0 / 6_227_020_800.0; // 1/13!
    for d in [
        479_001_600.0,
        39_916_800.0,
        3_628_800.0,
        362_880.0,
        40_320.0,
        5_040.0,
        720.0,
        120.0,
        24.0,
        6.0,
        2.0,
        1.0,
        1.0,
    ] {
        p = p.mul_add(r, 1.0 / d);
    }
    let k_bits = shifted.to_bits().wrapping_sub(MAGIC.to_bits());
    p * f64::from_bits(k_bits.wrapping_add(1023) << 52)
}

/// The logistic function `σ = 1/(1 + eʷ)` of `w = −2u`, which is
/// `½(1 + tanh u)`, with `eʷ`: `σ(1 − σ) = eʷσ²` without the cancellation of
/// `1 − σ`, and small values of `σ` keep full relative precision (the `tanh`
/// form loses them in `1 + tanh u`). `w` is clamped to `±`[`EXP_BOUND`] (a
/// comparison with NaN is false, so NaN passes through).
#[inline(always)]
fn logistic(w: f64) -> (f64, f64) {
    let w = if w > EXP_BOUND { EXP_BOUND } else { w };
    let w = if w < -EXP_BOUND { -EXP_BOUND } else { w };
    let e = exp(w);
    (1.0 / (1.0 + e), e)
}

/// `−2u` with `u = √(2/π)(z + 0.044715 z³)`, from `z²` (which the slope
/// reuses).
#[inline(always)]
fn minus_twice_u(z: f64, z2: f64) -> f64 {
    -2.0 * K0 * (K1 * z2).mul_add(z, z)
}

/// `gelu(z) = z σ(2u)`.
#[inline(always)]
pub fn gelu(z: f64) -> f64 {
    z * logistic(minus_twice_u(z, z * z)).0
}

/// `(gelu(z), gelu'(z))`, sharing one exponential:
/// `gelu' = σ + 2 z u'·σ(1 − σ)` with `u' = √(2/π)(1 + 3·0.044715 z²)`.
#[inline(always)]
pub fn gelu_with_slope(z: f64) -> (f64, f64) {
    let z2 = z * z;
    let (s, e) = logistic(minus_twice_u(z, z2));
    let twice_z_du = (2.0 * K0 * z) * (3.0 * K1).mul_add(z2, 1.0);
    (z * s, (twice_z_du * (e * s)).mul_add(s, s))
}

#[inline(always)]
fn map_kernel<T: Real>(z: &[T], out: &mut [T]) {
    for (o, &v) in out.iter_mut().zip(z) {
        *o = T::from_f64(gelu(v.to_f64()));
    }
}

#[inline(always)]
fn in_place_kernel<T: Real>(z: &mut [T]) {
    for v in z.iter_mut() {
        *v = T::from_f64(gelu(v.to_f64()));
    }
}

#[inline(always)]
fn slope_kernel<T: Real>(z: &[T], g: &mut [T]) {
    for (g, &v) in g.iter_mut().zip(z) {
        *g *= T::from_f64(gelu_with_slope(v.to_f64()).1);
    }
}

#[inline(always)]
fn both_kernel<T: Real>(z: &[T], values: &mut [T], slopes: &mut [T]) {
    for ((v, s), &x) in values.iter_mut().zip(slopes.iter_mut()).zip(z) {
        let (value, slope) = gelu_with_slope(x.to_f64());
        *v = T::from_f64(value);
        *s = T::from_f64(slope);
    }
}

/// The instruction sets the kernels are compiled for, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isa {
    /// AVX-512 (F and DQ): eight lanes, measured 2.1× the AVX2 kernel's
    /// throughput on an AMD EPYC (Zen 4) core.
    Avx512,
    /// AVX2 with FMA: four lanes.
    Avx2,
    /// Whatever the build targets.
    Portable,
}

/// The best instruction set this CPU runs (detected at run time, so one
/// binary uses AVX-512 where it exists without build flags).
fn isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        use std::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512dq") && has!("avx2") && has!("fma") {
            return Isa::Avx512;
        }
        if has!("avx2") && has!("fma") {
            return Isa::Avx2;
        }
    }
    Isa::Portable
}

/// Defines `$name(isa, args…)`: `$kernel(args…)` compiled for each [`Isa`]
/// (the kernels are `#[inline(always)]`, so each copy is vectorised for its
/// instruction set). Every copy evaluates the same scalar formulas
/// element by element, so all give the same bits.
macro_rules! dispatched {
    ($name:ident => $kernel:ident($($arg:ident: $ty:ty),*)) => {
        fn $name<T: Real>(isa: Isa, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
                fn avx512<T: Real>($($arg: $ty),*) {
                    $kernel($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2<T: Real>($($arg: $ty),*) {
                    $kernel($($arg),*)
                }
                match isa {
                    // SAFETY: `isa()` found these features on this CPU.
                    Isa::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above.
                    Isa::Avx2 => return unsafe { avx2($($arg),*) },
                    Isa::Portable => {}
                }
            }
            let _ = isa;
            $kernel($($arg),*)
        }
    };
}

dispatched!(map_chunk => map_kernel(z: &[T], out: &mut [T]));
dispatched!(in_place_chunk => in_place_kernel(z: &mut [T]));
dispatched!(slope_chunk => slope_kernel(z: &[T], g: &mut [T]));
dispatched!(both_chunk => both_kernel(z: &[T], values: &mut [T], slopes: &mut [T]));

/// `out = gelu(z)` elementwise.
///
/// # Panics
/// If the slices differ in length.
#[track_caller]
pub fn gelu_into<T: Real>(z: &[T], out: &mut [T]) {
    assert_eq!(z.len(), out.len(), "gelu: input and output lengths");
    let isa = isa();
    out.par_chunks_mut(CHUNK)
        .zip(z.par_chunks(CHUNK))
        .for_each(|(o, z)| map_chunk(isa, z, o));
}

/// `z = gelu(z)` elementwise: for a pass that has no further use for the
/// pre-activation (inference), no second field.
pub fn gelu_in_place<T: Real>(z: &mut [T]) {
    let isa = isa();
    z.par_chunks_mut(CHUNK).for_each(|z| in_place_chunk(isa, z));
}

/// `gelu(z)` elementwise, as a new vector.
pub fn gelu_vec<T: Real>(z: &[T]) -> Vec<T> {
    let mut out = vec![T::zero(); z.len()];
    gelu_into(z, &mut out);
    out
}

/// `g *= gelu'(z)` elementwise: the chain rule through the activation.
///
/// # Panics
/// If the slices differ in length.
#[track_caller]
pub fn times_slope<T: Real>(z: &[T], g: &mut [T]) {
    assert_eq!(z.len(), g.len(), "gelu: input and gradient lengths");
    let isa = isa();
    g.par_chunks_mut(CHUNK)
        .zip(z.par_chunks(CHUNK))
        .for_each(|(g, z)| slope_chunk(isa, z, g));
}

/// `(gelu(z), gelu'(z))` elementwise into given buffers (every entry
/// overwritten), from one exponential per element: the backward pass needs
/// both the activation (for weight gradients) and its slope (for the input
/// gradient), and the exponential dominates the cost.
///
/// # Panics
/// If the slices differ in length.
#[track_caller]
pub fn gelu_and_slope_into<T: Real>(z: &[T], values: &mut [T], slopes: &mut [T]) {
    assert_eq!(z.len(), values.len(), "gelu: input and value lengths");
    assert_eq!(z.len(), slopes.len(), "gelu: input and slope lengths");
    let isa = isa();
    values
        .par_chunks_mut(CHUNK)
        .zip(slopes.par_chunks_mut(CHUNK))
        .zip(z.par_chunks(CHUNK))
        .for_each(|((v, s), z)| both_chunk(isa, z, v, s));
}

/// `g *= slopes` elementwise (the chain rule with slopes from
/// [`gelu_and_slope_into`]).
///
/// # Panics
/// If the slices differ in length.
#[track_caller]
pub fn times<T: Real>(g: &mut [T], slopes: &[T]) {
    assert_eq!(g.len(), slopes.len(), "gelu: gradient and slope lengths");
    g.par_chunks_mut(CHUNK)
        .zip(slopes.par_chunks(CHUNK))
        .for_each(|(g, s)| g.iter_mut().zip(s).for_each(|(g, &s)| *g *= s));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In place, the same bits as into a new vector, over several chunks.
    #[test]
    fn gelu_in_place_equals_gelu_vec() {
        let z: Vec<f64> = (0..3 * CHUNK + 17)
            .map(|k| ((k as f64) * 0.37).sin() * 6.0)
            .collect();
        let mut in_place = z.clone();
        gelu_in_place(&mut in_place);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&in_place), bits(&gelu_vec(&z)));
    }

    /// The value matches the closed form evaluated with libm's `tanh` and,
    /// relatively, its logistic form with libm's `exp` (the deep negative
    /// tail, where `1 + tanh` cancels, included); the slope matches a
    /// central difference of the value.
    #[test]
    fn gelu_matches_closed_forms_and_slope_central_difference() {
        for &z in &[-4.0, -1.3, -0.75, -0.1, 0.0, 0.2, 1.0, 2.5, 6.0] {
            let (v, s) = gelu_with_slope(z);
            let direct = 0.5 * z * (1.0 + (K0 * (z + K1 * z * z * z)).tanh());
            assert!((v - direct).abs() <= 1e-15 * (1.0 + direct.abs()));
            assert_eq!(v, gelu(z));
            let h = 1e-6;
            let fd = (gelu(z + h) - gelu(z - h)) / (2.0 * h);
            assert!((s - fd).abs() < 1e-8, "z={z}: slope {s} vs fd {fd}");
        }
        let mut z = -20.0;
        while z < 8.0 {
            let w = -2.0 * K0 * (z + K1 * z * z * z);
            let logistic = z / (1.0 + w.exp());
            // `eʷ` has condition number `|w|`: the rounding of `w` alone moves
            // it by `|w|` ulps.
            let tol = 8.0 * (1.0 + w.abs()) * f64::EPSILON * logistic.abs();
            assert!((gelu(z) - logistic).abs() <= tol, "z={z}");
            z += 0.011;
        }
        assert!(gelu(f64::NAN).is_nan() && gelu_with_slope(f64::NAN).1.is_nan());
        assert_eq!((gelu(1e6), gelu_with_slope(1e6).1), (1e6, 1.0));
        assert!(gelu(-1e6) <= 0.0 && gelu(-1e6) > -1e-290);
    }

    /// The fast `exp` agrees with libm's to two ulps (relative) over its
    /// whole range, tiny arguments and the bounds included; NaN propagates.
    #[test]
    fn fast_exp_matches_libm() {
        let mut x = -EXP_BOUND;
        while x <= EXP_BOUND {
            let (a, b) = (exp(x), x.exp());
            assert!((a - b).abs() <= 2.0 * f64::EPSILON * b, "x={x}: {a} vs {b}");
            x += 0.013_7;
        }
        for &x in &[1e-300, -1e-12, 0.5 * std::f64::consts::LN_2, 0.0, -0.0] {
            assert!((exp(x) - x.exp()).abs() <= 2.0 * f64::EPSILON * x.exp());
        }
        assert!(exp(f64::NAN).is_nan());
    }

    /// Every instruction set this CPU has gives the scalar functions' bits,
    /// in f64 and f32 (a ragged chunk included).
    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let z: Vec<f64> = (0..1_003).map(|i| (i as f64 * 0.37).sin() * 9.0).collect();
        let z32: Vec<f32> = z.iter().map(|&v| v as f32).collect();
        let best = isa();
        let all = [Isa::Avx512, Isa::Avx2, Isa::Portable];
        let usable = &all[all.iter().position(|&i| i == best).unwrap()..];
        for &isa in usable {
            let mut out = vec![0.0; z.len()];
            map_chunk(isa, &z, &mut out);
            let mut g = vec![3.0; z.len()];
            slope_chunk(isa, &z, &mut g);
            let (mut values, mut slopes) = (vec![0.0; z.len()], vec![0.0; z.len()]);
            both_chunk(isa, &z, &mut values, &mut slopes);
            for i in 0..z.len() {
                let (value, slope) = gelu_with_slope(z[i]);
                assert_eq!(out[i].to_bits(), gelu(z[i]).to_bits(), "{isa:?} {i}");
                assert_eq!(g[i].to_bits(), (3.0 * slope).to_bits(), "{isa:?} {i}");
                assert_eq!((values[i], slopes[i]), (value, slope), "{isa:?} {i}");
            }
            let mut out32 = vec![0.0f32; z.len()];
            map_chunk(isa, &z32, &mut out32);
            for (o, &v) in out32.iter().zip(&z32) {
                assert_eq!(o.to_bits(), (gelu(v as f64) as f32).to_bits(), "{isa:?}");
            }
        }
    }

    /// The slice kernels (vectorised path included) equal the scalar functions
    /// bit for bit, in f64 and f32, across chunk boundaries.
    #[test]
    fn slice_kernels_match_scalar() {
        let z: Vec<f64> = (0..(CHUNK + 37))
            .map(|i| (i as f64 * 0.013).sin() * 5.0)
            .collect();
        let out = gelu_vec(&z);
        let mut g = vec![2.0; z.len()];
        times_slope(&z, &mut g);
        for i in 0..z.len() {
            assert_eq!(out[i], gelu(z[i]));
            assert_eq!(g[i], 2.0 * gelu_with_slope(z[i]).1);
        }
        let z32: Vec<f32> = z.iter().map(|&v| v as f32).collect();
        let out32 = gelu_vec(&z32);
        for (o, &v) in out32.iter().zip(&z32) {
            assert_eq!(*o, gelu(v as f64) as f32);
        }
        let (mut values, mut slopes) = (vec![0.0; z.len()], vec![0.0; z.len()]);
        gelu_and_slope_into(&z, &mut values, &mut slopes);
        let mut g2 = vec![2.0; z.len()];
        times(&mut g2, &slopes);
        assert_eq!(values, out);
        assert_eq!(g2, g);
        // Into buffers that held anything: every entry overwritten.
        let (mut dirty_values, mut dirty_slopes) = (vec![f64::NAN; z.len()], vec![7.0; z.len()]);
        gelu_and_slope_into(&z, &mut dirty_values, &mut dirty_slopes);
        assert_eq!((dirty_values, dirty_slopes), (values, slopes));
        let mut nan = vec![f64::NAN, 1.0];
        let copy = nan.clone();
        gelu_into(&copy, &mut nan);
        assert!(nan[0].is_nan() && nan[1].is_finite());
    }
}
