//! The floating-point types the backbone runs in (`f32`, `f64`) and the one
//! activation it uses.
//!
//! The activation is GELU in its tanh form — `jax.nn.gelu`'s default, which the
//! reference FNO calls — `gelu(z) = ½ z (1 + tanh(√(2/π) (z + 0.044715 z³)))`.
//! Value and slope come from one place so the forward and backward passes of
//! every fused op agree to rounding.

use candle_core::WithDType;
use faer::traits::RealField;

/// A backbone scalar: a candle dtype that faer can multiply.
pub trait Real: WithDType + RealField + Copy + Send + Sync {
    /// `gelu(self)`.
    fn gelu(self) -> Self;

    /// `(gelu(self), gelu'(self))`, sharing the one `tanh`.
    fn gelu_with_slope(self) -> (Self, Self);
}

/// `tanh(u)` to within a few ulps (absolute), several times faster than libm's:
/// `tanh |u| = 1 − 2/(e^{2|u|} + 1)` with a branch-free `exp` (Cody–Waite
/// reduction by `ln 2`, degree-13 Taylor polynomial on `|r| ≤ ln2/2`, whose
/// truncation error `r¹⁴/14!` is below 1e-17). The GELU passes evaluate ~10⁸
/// of these per paper-scale training step, where libm's `tanh` dominated the
/// whole step. NaN propagates.
#[inline]
pub fn tanh(u: f64) -> f64 {
    if u.is_nan() {
        return u;
    }
    // tanh(20) rounds to 1 in f64; clamping keeps exp finite.
    let a = 2.0 * u.abs().min(20.0);
    let k = (a * std::f64::consts::LOG2_E).round();
    const LN2_HI: f64 = 6.931_471_803_691_238_2e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let r = (a - k * LN2_HI) - k * LN2_LO;
    let mut p = 1.0 / 6_227_020_800.0; // 1/13!
    for d in [
        479_001_600.0, 39_916_800.0, 3_628_800.0, 362_880.0, 40_320.0, 5_040.0, 720.0, 120.0,
        24.0, 6.0, 2.0, 1.0, 1.0,
    ] {
        p = p * r + 1.0 / d;
    }
    let e = p * f64::from_bits(((k as i64 + 1023) as u64) << 52);
    (1.0 - 2.0 / (e + 1.0)).copysign(u)
}

macro_rules! impl_real {
    ($t:ty) => {
        impl Real for $t {
            #[inline]
            fn gelu(self) -> Self {
                const K0: $t = 0.797_884_560_802_865_4; // √(2/π)
                const K1: $t = 0.044_715;
                let z = self;
                0.5 * z * (1.0 + tanh((K0 * (z + K1 * z * z * z)) as f64) as $t)
            }

            #[inline]
            fn gelu_with_slope(self) -> (Self, Self) {
                const K0: $t = 0.797_884_560_802_865_4;
                const K1: $t = 0.044_715;
                let z = self;
                let th = tanh((K0 * (z + K1 * z * z * z)) as f64) as $t;
                let value = 0.5 * z * (1.0 + th);
                let slope = 0.5 * (1.0 + th) + 0.5 * z * (1.0 - th * th) * K0 * (1.0 + 3.0 * K1 * z * z);
                (value, slope)
            }
        }
    };
}

impl_real!(f32);
impl_real!(f64);

#[cfg(test)]
mod tests {
    use super::*;

    /// The slope matches a central difference of the value; the value matches
    /// the closed form `½ z (1 + tanh(·))` evaluated independently with `erf`-free
    /// constants from their definitions.
    #[test]
    fn gelu_slope_matches_central_difference() {
        let k0 = (2.0 / std::f64::consts::PI).sqrt();
        for &z in &[-4.0, -1.3, -0.75, -0.1, 0.0, 0.2, 1.0, 2.5, 6.0] {
            let (v, s) = z.gelu_with_slope();
            let direct = 0.5 * z * (1.0 + (k0 * (z + 0.044715 * z * z * z)).tanh());
            assert!((v - direct).abs() <= 1e-15 * (1.0 + direct.abs()));
            assert_eq!(v, z.gelu());
            let h = 1e-6;
            let fd = ((z + h).gelu() - (z - h).gelu()) / (2.0 * h);
            assert!((s - fd).abs() < 1e-8, "z={z}: slope {s} vs fd {fd}");
        }
    }

    /// The fast `tanh` agrees with libm's to a few ulps over the whole range,
    /// including the saturated tails, signed zero and NaN.
    #[test]
    fn fast_tanh_matches_libm() {
        let mut u = -30.0;
        while u < 30.0 {
            let (a, b) = (tanh(u), u.tanh());
            assert!((a - b).abs() <= 4.0 * f64::EPSILON, "u={u}: {a} vs {b}");
            u += 0.003_7;
        }
        for &u in &[1e-300, -1e-12, 0.5 * std::f64::consts::LN_2, 700.0, -1e308] {
            assert!((tanh(u) - u.tanh()).abs() <= 4.0 * f64::EPSILON);
        }
        assert!(tanh(f64::NAN).is_nan());
        assert_eq!(tanh(f64::INFINITY), 1.0);
    }

    /// The f32 version agrees with the f64 one to single precision.
    #[test]
    fn f32_agrees_with_f64() {
        for i in -40..=40 {
            let z = i as f64 * 0.1;
            let (v64, s64) = z.gelu_with_slope();
            let (v32, s32) = (z as f32).gelu_with_slope();
            assert!((v64 - v32 as f64).abs() < 1e-5 * (1.0 + v64.abs()));
            assert!((s64 - s32 as f64).abs() < 1e-5 * (1.0 + s64.abs()));
        }
    }
}
