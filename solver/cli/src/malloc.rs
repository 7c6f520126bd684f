//! Allocator tuning for the training loop (glibc only; opt out with
//! `TESSERA_MALLOC_TUNING=0`).
//!
//! candle allocates a fresh buffer for every tensor op, and at paper scale those
//! buffers are tens of MiB. glibc serves blocks that large with `mmap` and
//! returns them with `munmap` on free, so every op pays for the kernel to fault
//! in and zero the same pages again: measured on a 2-core machine, that was about
//! a third of a paper-scale diffusion–sorption training step (1.89 s → 1.18 s
//! median, peak memory unchanged at ~920 MiB). Keeping large blocks on the heap
//! and not trimming it lets freed pages be reused.
//!
//! What depends on the machine is derived from the number of worker threads
//! (`RAYON_NUM_THREADS`, else the available cores — what the rayon pool uses):
//!
//! - **arenas** (`M_ARENA_MAX`): one per worker thread (at least 2), so
//!   threads allocating at once do not queue on an arena's lock; glibc's own
//!   limit (8 per core) would let untrimmed arenas multiply far beyond the
//!   threads that use them. On the measured 2-core machine this is the 2 that
//!   gave the numbers above.
//! - **top pad** (`M_TOP_PAD`, the slack each heap growth adds): 512 MiB shared
//!   by the arenas, between 64 MiB (the largest heap a secondary arena can
//!   have) and 256 MiB (the measured setting), so the address space held in
//!   reserve stays bounded as arenas multiply.
//!
//! Fixed: no `mmap` below 1 GiB and no trimming (the point of the tuning).
//! "No trimming" is glibc's `-1` (the largest size): `c_int::MAX` still
//! trimmed a heap whose free top grew past 2 GiB, which the Navier–Stokes
//! paper scale at batch 4 does every step (its layer outputs are 0.5 GB
//! each), so every step faulted in gigabytes afresh (benches/README.md,
//! "Never trimming the heap"). Between a run's phases the kept heap is
//! given back explicitly (`tessera_solver::release_free_memory`).

/// The environment variable that turns the tuning off (`0`, `off`, `false`).
pub const OPT_OUT: &str = "TESSERA_MALLOC_TUNING";

const MIB: usize = 1 << 20;

/// Allocator parameters for a number of worker threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tuning {
    arenas: usize,
    top_pad: usize,
    mmap_threshold: usize,
}

impl Tuning {
    fn for_threads(threads: usize) -> Self {
        let arenas = threads.max(2);
        Self {
            arenas,
            top_pad: (512 * MIB / arenas).clamp(64 * MIB, 256 * MIB),
            mmap_threshold: 1 << 30,
        }
    }
}

/// Whether the value of [`OPT_OUT`] (if set) leaves the tuning on.
fn enabled(value: Option<&str>) -> bool {
    !matches!(
        value.map(|v| v.trim().to_ascii_lowercase()).as_deref(),
        Some("0" | "off" | "false" | "no")
    )
}

/// The rayon pool's thread count: `RAYON_NUM_THREADS` when it is a positive
/// number, else the available cores.
fn worker_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&n: &usize| n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1)
}

/// Applies the tuning unless [`OPT_OUT`] turns it off. Call once at program
/// start, before other threads exist. A no-op on targets without glibc.
pub fn tune_for_training() {
    if !enabled(std::env::var(OPT_OUT).ok().as_deref()) {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let tuning = Tuning::for_threads(worker_threads());
        let int = |v: usize| libc::c_int::try_from(v).unwrap_or(libc::c_int::MAX);
        // SAFETY: `mallopt` only changes allocator parameters; it is called
        // before any other thread exists, and every value is in range for its
        // parameter (at most `c_int::MAX`; the trim threshold's -1 is glibc's
        // "never", read as the largest `size_t`).
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, int(tuning.mmap_threshold));
            libc::mallopt(libc::M_TRIM_THRESHOLD, -1);
            libc::mallopt(libc::M_TOP_PAD, int(tuning.top_pad));
            libc::mallopt(libc::M_ARENA_MAX, int(tuning.arenas));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_threads_give_the_measured_setting() {
        let t = Tuning::for_threads(2);
        assert_eq!(
            (t.arenas, t.top_pad, t.mmap_threshold),
            (2, 256 * MIB, 1 << 30)
        );
        assert_eq!(Tuning::for_threads(1), t);
    }

    #[test]
    fn more_threads_get_more_arenas_and_share_the_pad() {
        let t = Tuning::for_threads(4);
        assert_eq!((t.arenas, t.top_pad), (4, 128 * MIB));
        let t = Tuning::for_threads(64);
        assert_eq!((t.arenas, t.top_pad), (64, 64 * MIB));
    }

    #[test]
    fn opt_out_values() {
        for off in ["0", "off", "FALSE", " no "] {
            assert!(!enabled(Some(off)), "{off}");
        }
        for on in [None, Some("1"), Some("on"), Some("")] {
            assert!(enabled(on), "{on:?}");
        }
    }
}
