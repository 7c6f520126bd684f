//! Giving the heap's free memory back between the phases of a run.
//!
//! The `tessera` tool tunes glibc's allocator never to trim the heap, so that
//! a training step reuses the pages the previous step freed instead of
//! faulting them in again. Between phases that need different buffers (the
//! training, then an evaluation at 64², then at 128², then at 256²) that
//! policy keeps each phase's peak for nothing while the next adds its own.

/// Gives the heap's free memory back to the kernel (glibc's `malloc_trim`):
/// every arena's free pages, not only the top of the heap. Allocations in use
/// stay as they are; a later phase faults in what it needs afresh. A no-op
/// without glibc.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only returns free heap pages to the kernel; it
    // is thread-safe and leaves every allocation in use as it is.
    unsafe {
        libc::malloc_trim(0);
    }
}
