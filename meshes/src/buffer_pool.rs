//! Large buffers kept from one pass to the next.
//!
//! Why: at the Navier–Stokes paper scale a sample's full-grid field (`S B`, a
//! composed operator's intermediate) is 134 MB and the
//! backbone head's hidden activation at batch 4 is 2 GiB. glibc serves
//! blocks that large with `mmap` (on a worker thread's arena above its 64 MiB
//! heaps whatever the tuning, on any thread above the tuning's mmap
//! threshold) and unmaps them on free, so every step paid for the kernel to
//! fault in and zero the same pages again (benches/README.md, "Full-grid
//! fields kept between passes" and "The head's hidden activation and
//! composed operators' intermediates kept"). Taken from a pool, a later pass
//! only overwrites them. A pool holds at most as many buffers as were in use
//! at once, and none longer than its limit
//! ([`BufferPool::keeping_at_most`]).

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard};

/// Buffers a pass hands back for the next (see the module doc). Shared
/// behind an [`Arc`] so a buffer can outlive the borrow that took it (a
/// backbone op keeps one from its forward to its backward pass).
pub struct BufferPool<T> {
    free: Mutex<Vec<Vec<T>>>,
    /// The longest buffer (in values) the pool keeps; a longer one is freed
    /// when dropped.
    max_kept: usize,
}

/// A pool that keeps every buffer.
impl<T> Default for BufferPool<T> {
    fn default() -> Self {
        Self::keeping_at_most(usize::MAX)
    }
}

/// The number and total capacity of the free buffers, not their values
/// (which can be gigabytes).
impl<T> std::fmt::Debug for BufferPool<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let free = self.lock();
        f.debug_struct("BufferPool")
            .field("free_buffers", &free.len())
            .field("capacity", &free.iter().map(Vec::capacity).sum::<usize>())
            .finish()
    }
}

impl<T: Copy + Default> BufferPool<T> {
    /// `len` zeros (`T::default()`), in the smallest free buffer that holds
    /// them if any.
    pub fn zeros(self: &Arc<Self>, len: usize) -> Pooled<T> {
        let mut values = self.take(len);
        values.clear();
        values.resize(len, T::default());
        self.wrap(values)
    }

    /// `len` values, whatever the buffer's last user left in them (no pass
    /// over the memory): for a caller that writes every one before reading.
    pub fn recycled(self: &Arc<Self>, len: usize) -> Pooled<T> {
        let mut values = self.take(len);
        values.truncate(len);
        values.resize(len, T::default());
        self.wrap(values)
    }

    /// The smallest free buffer of capacity `len` or more, else an empty one.
    fn take(&self, len: usize) -> Vec<T> {
        let mut free = self.lock();
        let best = (free.iter().enumerate())
            .filter(|(_, b)| b.capacity() >= len)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i);
        best.map(|i| free.swap_remove(i)).unwrap_or_default()
    }

    fn wrap(self: &Arc<Self>, values: Vec<T>) -> Pooled<T> {
        Pooled {
            values,
            pool: Some(Arc::clone(self)),
        }
    }
}

impl<T> BufferPool<T> {
    /// A pool that keeps buffers of up to `max_len` values and frees longer
    /// ones when they are dropped: for buffers that, that large, would sit
    /// idle holding memory between uses.
    pub fn keeping_at_most(max_len: usize) -> Self {
        Self {
            free: Mutex::default(),
            max_kept: max_len,
        }
    }

    /// Frees the buffers waiting to be reused (those in use come back as
    /// usual): for an owner whose passes are over, e.g. a trained model
    /// before an evaluation at other resolutions.
    pub fn release(&self) {
        self.lock().clear();
    }

    /// Number of buffers waiting to be reused.
    pub fn free_buffers(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Vec<T>>> {
        // A list of buffers: a panic elsewhere cannot leave it inconsistent.
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A buffer's values, returned to its pool (if it has one) when dropped.
pub struct Pooled<T> {
    values: Vec<T>,
    pool: Option<Arc<BufferPool<T>>>,
}

/// The length and whether the buffer goes back to a pool, not the values.
impl<T> std::fmt::Debug for Pooled<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pooled")
            .field("len", &self.values.len())
            .field("pooled", &self.pool.is_some())
            .finish()
    }
}

impl<T: Copy + Default> Pooled<T> {
    /// `len` zeros in a fresh buffer of no pool.
    pub fn fresh(len: usize) -> Self {
        Self {
            values: vec![T::default(); len],
            pool: None,
        }
    }
}

/// A buffer of no pool, freed when dropped: for a value that takes the
/// place of pooled ones.
impl<T> From<Vec<T>> for Pooled<T> {
    fn from(values: Vec<T>) -> Self {
        Self { values, pool: None }
    }
}

impl<T> Deref for Pooled<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.values
    }
}

impl<T> DerefMut for Pooled<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.values
    }
}

impl<T> Drop for Pooled<T> {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take()
            && self.values.capacity() <= pool.max_kept
        {
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
        let pool = Arc::new(BufferPool::<f64>::default());
        for _ in 0..3 {
            let mut big = pool.zeros(1000);
            let mut small = pool.zeros(10);
            assert!(big.iter().chain(small.iter()).all(|&v| v == 0.0));
            assert_eq!((big.len(), small.len()), (1000, 10));
            big.fill(7.0);
            small.fill(-1.0);
            drop((big, small));
            assert_eq!(pool.free_buffers(), 2);
        }
        let small = pool.zeros(5);
        assert!(small.values.capacity() < 1000, "the small buffer was taken");
        drop(small);
        let fresh = Pooled::<f64>::fresh(4);
        drop(fresh);
        drop(Pooled::from(vec![1.0; 2000]));
        assert_eq!(pool.free_buffers(), 2);
        let in_use = pool.zeros(7);
        pool.release();
        assert_eq!(pool.free_buffers(), 0);
        drop(in_use);
        assert_eq!(pool.free_buffers(), 1);
        // Debug output names sizes, never values (buffers can be gigabytes).
        let kept = pool.zeros(3);
        let shown = format!("{pool:?} {kept:?}");
        assert!(
            shown.contains("free_buffers: 0") && shown.contains("len: 3"),
            "{shown}"
        );
    }

    /// A recycled buffer has the requested length and reuses the kept
    /// memory (so it keeps what was written there, which its caller
    /// overwrites); one longer than any kept is a new zeroed buffer.
    #[test]
    fn recycled_buffers_reuse_the_memory_they_were_given() {
        let pool = Arc::new(BufferPool::<f32>::default());
        let mut first = pool.recycled(8);
        first.fill(3.0);
        let address = first.as_ptr();
        drop(first);
        let again = pool.recycled(6);
        assert_eq!((again.len(), again.as_ptr()), (6, address));
        assert!(again.iter().all(|&v| v == 3.0));
        drop(again);
        let longer = pool.recycled(12);
        assert_eq!(longer.len(), 12);
        assert!(longer.iter().all(|&v| v == 0.0));
        drop(longer);
        assert_eq!(pool.free_buffers(), 2);
    }

    /// A pool with a limit keeps the buffers up to it and frees longer ones.
    #[test]
    fn a_limited_pool_frees_longer_buffers() {
        let pool = Arc::new(BufferPool::<f64>::keeping_at_most(100));
        let (kept, freed) = (pool.zeros(100), pool.zeros(101));
        drop((kept, freed));
        assert_eq!(pool.free_buffers(), 1);
        let again = pool.zeros(101);
        assert_eq!(pool.free_buffers(), 1, "the kept buffer is too short");
        drop(again);
        assert_eq!(pool.free_buffers(), 1);
        let reused = pool.zeros(60);
        assert_eq!(pool.free_buffers(), 0);
        drop(reused);
        assert_eq!(pool.free_buffers(), 1);
    }
}
