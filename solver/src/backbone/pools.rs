//! The buffers the CPU backbone keeps from pass to pass, one pool per
//! precision ([`Pools`]).
//!
//! Why: a training step's fields have the same sizes every step, and each
//! is as large as the grid times a layer's width (at the paper's
//! diffusion–sorption scale, batch 6, 160–320 MB in f64). Allocated afresh,
//! every one was first zeroed, a pass over its memory on one thread before
//! the layer's kernels overwrote it (9 % of a training benchmark's CPU
//! time; benches/README.md, "Backbone fields from pools"). Taken from a
//! pool, a field is only written.

use std::sync::Arc;

use tessera_meshes::BufferPool;

/// One [`BufferPool`] per precision the backbone computes in; a clone shares
/// them.
#[derive(Debug, Default, Clone)]
pub struct Pools {
    pub(super) f32: Arc<BufferPool<f32>>,
    pub(super) f64: Arc<BufferPool<f64>>,
}

impl Pools {
    /// Frees the buffers waiting to be reused (see
    /// [`BufferPool::release`]).
    pub(super) fn release(&self) {
        self.f32.release();
        self.f64.release();
    }

    /// Number of buffers waiting to be reused, both precisions.
    #[cfg(test)]
    pub(super) fn free_buffers(&self) -> usize {
        self.f32.free_buffers() + self.f64.free_buffers()
    }
}
