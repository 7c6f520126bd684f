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

macro_rules! impl_real {
    ($t:ty) => {
        impl Real for $t {
            #[inline]
            fn gelu(self) -> Self {
                const K0: $t = 0.797_884_560_802_865_4; // √(2/π)
                const K1: $t = 0.044_715;
                let z = self;
                0.5 * z * (1.0 + (K0 * (z + K1 * z * z * z)).tanh())
            }

            #[inline]
            fn gelu_with_slope(self) -> (Self, Self) {
                const K0: $t = 0.797_884_560_802_865_4;
                const K1: $t = 0.044_715;
                let z = self;
                let th = (K0 * (z + K1 * z * z * z)).tanh();
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
