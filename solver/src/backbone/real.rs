//! The floating-point types the backbone runs in: any candle dtype that faer
//! can multiply (`f32`, `f64`).

use std::sync::Arc;

use candle_core::WithDType;
use faer::traits::RealField;
use tessera_meshes::BufferPool;

use super::pools::Pools;

/// A backbone scalar: a candle dtype that faer can multiply.
pub trait Real: WithDType + RealField + Default {
    /// The pool of `pools` that holds buffers of this type.
    fn pool(pools: &Pools) -> &Arc<BufferPool<Self>>;
}

impl Real for f32 {
    fn pool(pools: &Pools) -> &Arc<BufferPool<Self>> {
        &pools.f32
    }
}

impl Real for f64 {
    fn pool(pools: &Pools) -> &Arc<BufferPool<Self>> {
        &pools.f64
    }
}
