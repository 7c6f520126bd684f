//! The floating-point types the backbone runs in: any candle dtype that faer
//! can multiply (`f32`, `f64`).

use candle_core::WithDType;
use faer::traits::RealField;

/// A backbone scalar: a candle dtype that faer can multiply.
pub trait Real: WithDType + RealField {}

impl<T: WithDType + RealField> Real for T {}
