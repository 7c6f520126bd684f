//! Full-grid buffers kept from one forward pass to the next.
//!
//! Why: a non-local term (a spectral operator) and a solution map are applied
//! to the whole basis of a sample, `[grid points, N]` values: at the
//! Navier–Stokes paper scale 134 MB per field, several per sample and step.
//! Allocated afresh, such a block comes from a worker thread's arena, which
//! glibc serves with `mmap` above its 64 MiB heaps whatever the tuning, so every
//! step paid for the kernel to fault in and zero the same pages again, more or
//! less from run to run with which arena a thread had (benches/README.md,
//! "Full-grid fields kept between passes"). Kept here, a later pass only
//! overwrites them. The pool holds at most as many buffers as one pass had in
//! use at once.

use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard};

/// Buffers a pass hands back for the next (see the module doc).
#[derive(Debug, Default)]
pub(crate) struct FieldPool {
    free: Mutex<Vec<Vec<f64>>>,
}

impl FieldPool {
    /// `len` zeros, in the smallest free buffer that holds them if any.
    pub(crate) fn zeros(&self, len: usize) -> PooledField<'_> {
        let kept = {
            let mut free = self.lock();
            let best = (free.iter().enumerate())
                .filter(|(_, b)| b.capacity() >= len)
                .min_by_key(|(_, b)| b.capacity())
                .map(|(i, _)| i);
            best.map(|i| free.swap_remove(i))
        };
        let mut values = kept.unwrap_or_default();
        values.clear();
        values.resize(len, 0.0);
        PooledField {
            values,
            pool: Some(self),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Vec<f64>>> {
        // A list of buffers: a panic elsewhere cannot leave it inconsistent.
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A field's values, returned to its pool (if it has one) when dropped.
#[derive(Debug)]
pub(crate) struct PooledField<'a> {
    values: Vec<f64>,
    pool: Option<&'a FieldPool>,
}

impl PooledField<'_> {
    /// `len` zeros in a fresh buffer of no pool.
    pub(crate) fn fresh(len: usize) -> Self {
        Self {
            values: vec![0.0; len],
            pool: None,
        }
    }
}

impl Deref for PooledField<'_> {
    type Target = [f64];

    fn deref(&self) -> &[f64] {
        &self.values
    }
}

impl DerefMut for PooledField<'_> {
    fn deref_mut(&mut self) -> &mut [f64] {
        &mut self.values
    }
}

/// A sample's field: read where it lies, or computed into a pool's buffer.
#[derive(Debug)]
pub(crate) enum Field<'a> {
    Borrowed(&'a [f64]),
    Pooled(PooledField<'a>),
}

impl Deref for Field<'_> {
    type Target = [f64];

    fn deref(&self) -> &[f64] {
        match self {
            Field::Borrowed(values) => values,
            Field::Pooled(field) => field,
        }
    }
}

impl Drop for PooledField<'_> {
    fn drop(&mut self) {
        if let Some(pool) = self.pool {
            pool.lock().push(std::mem::take(&mut self.values));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A buffer comes back zeroed whatever the last pass left in it, the
    /// smallest that fits is reused, and the pool never holds more buffers
    /// than were in use at once.
    #[test]
    fn buffers_come_back_zeroed_and_the_pool_stays_bounded() {
        let pool = FieldPool::default();
        for _ in 0..3 {
            let mut big = pool.zeros(1000);
            let mut small = pool.zeros(10);
            assert!(big.iter().chain(small.iter()).all(|&v| v == 0.0));
            assert_eq!((big.len(), small.len()), (1000, 10));
            big.fill(7.0);
            small.fill(-1.0);
            drop((big, small));
            assert_eq!(pool.lock().len(), 2);
        }
        let small = pool.zeros(5);
        assert!(small.values.capacity() < 1000, "the small buffer was taken");
        drop(small);
        let fresh = PooledField::fresh(4);
        drop(fresh);
        assert_eq!(pool.lock().len(), 2);
    }
}
