//! Copies between the host's pageable memory and a GPU through page-locked
//! ("pinned") staging buffers.
//!
//! Why: the driver copies pageable memory through a small staging buffer of
//! its own, with one CPU thread. On the H200 node the solves' copies up ran
//! at about 5 GB/s (95 MB in 18 ms), and a paper-scale diffusion–sorption
//! step moves some 400 MB between host and device, so at that rate the bus
//! alone would take a quarter of the 0.25 s the step is meant to take. The
//! device's copy engines read and write page-locked memory directly, at the
//! bus's own rate (tens of GB/s on PCIe 5). Here a large copy goes through
//! two such buffers of [`CHUNK_BYTES`] in turn: while the copy engine moves
//! one chunk, the host's cores fill (or empty) the other.
//!
//! Copies under [`STAGED_MIN_BYTES`] go the driver's way: their time is
//! latency, not bandwidth. So does a copy made while another thread is using
//! the context's buffers (rather than wait for them), where page-locked
//! memory could not be allocated, and every copy when the environment sets
//! `TESSERA_PAGEABLE_COPIES=1` (to measure what the buffers gain). Each
//! context keeps its buffers, two each way (32 MiB of page-locked memory),
//! for the life of the process.

use std::mem::{size_of, size_of_val};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use cudarc::driver::{
    CudaContext, CudaEvent, CudaSlice, CudaStream, CudaView, DeviceRepr, DriverError,
    ValidAsZeroBits, result, sys,
};
use rayon::prelude::*;

use super::GpuError;
use super::device::driver;

/// Bytes of one staging buffer, and so of one chunk of a staged copy.
pub const CHUNK_BYTES: usize = 8 << 20;

/// The smallest copy that goes through the staging buffers.
pub const STAGED_MIN_BYTES: usize = 1 << 20;

/// Bytes one task copies between a chunk and the host's memory: a chunk is
/// spread over 16 tasks.
const PIECE_BYTES: usize = CHUNK_BYTES / 16;

// A chunk holds whole values of every plain type (up to 8 bytes) and whole
// pieces, and the smallest staged copy fits one chunk.
const _: () = assert!(CHUNK_BYTES.is_multiple_of(PIECE_BYTES) && PIECE_BYTES.is_multiple_of(8));
const _: () = assert!(STAGED_MIN_BYTES <= CHUNK_BYTES);

/// The values a staged copy moves: plain numbers, valid for any bits the
/// device writes.
pub trait Plain: DeviceRepr + ValidAsZeroBits + Copy + Send + Sync {}
impl<T: DeviceRepr + ValidAsZeroBits + Copy + Send + Sync> Plain for T {}

/// `values` copied to a new device array on `stream`.
///
/// Errors: the driver's.
pub fn upload<T: Plain>(stream: &Arc<CudaStream>, values: &[T]) -> Result<CudaSlice<T>, GpuError> {
    let copy = driver("copying to the device");
    let Some(mut buffers) = take(stream, size_of_val(values), Direction::Up) else {
        return stream.clone_htod(values).map_err(copy);
    };
    let copied = upload_through(stream, values, &mut buffers);
    give_back(stream.context(), Direction::Up, buffers);
    copied.map_err(copy)
}

/// The values of `source` copied back to the host; every copy queued on
/// `stream` before it (and so every kernel that writes `source`) has
/// finished when it returns.
///
/// Errors: the driver's.
pub fn download<T: Plain>(
    stream: &Arc<CudaStream>,
    source: &CudaView<'_, T>,
) -> Result<Vec<T>, GpuError> {
    let copy = driver("copying from the device");
    if source.is_empty() {
        return Ok(Vec::new());
    }
    let Some(mut buffers) = take(stream, source.len() * size_of::<T>(), Direction::Down) else {
        let values = stream.clone_dtoh(source).map_err(&copy)?;
        // A copy to pageable memory returns once it is done on every driver
        // seen, but CUDA only says it "might be synchronous": the
        // synchronisation keeps the promise above from resting on that.
        stream.synchronize().map_err(copy)?;
        return Ok(values);
    };
    let copied = download_through(stream, source, &mut buffers);
    give_back(stream.context(), Direction::Down, buffers);
    copied.map_err(copy)
}

/// The element range of chunk `i` of a copy of `len` values, `per` to a
/// chunk.
fn chunk(i: usize, per: usize, len: usize) -> std::ops::Range<usize> {
    i * per..((i + 1) * per).min(len)
}

/// Values of `T` in one chunk.
fn per_chunk<T>() -> usize {
    CHUNK_BYTES / size_of::<T>()
}

fn upload_through<T: Plain>(
    stream: &Arc<CudaStream>,
    values: &[T],
    buffers: &mut [Pinned; 2],
) -> Result<CudaSlice<T>, DriverError> {
    // SAFETY: the copies below write every element before anything queued
    // after them on `stream` reads it.
    let mut out = unsafe { stream.alloc::<T>(values.len()) }?;
    let per = per_chunk::<T>();
    for i in 0..values.len().div_ceil(per) {
        let range = chunk(i, per, values.len());
        let buffer = &mut buffers[i % 2];
        let staged = buffer.values::<T>(range.len())?;
        staged
            .par_chunks_mut(PIECE_BYTES / size_of::<T>())
            .zip(values[range.clone()].par_chunks(PIECE_BYTES / size_of::<T>()))
            .for_each(|(to, from)| to.copy_from_slice(from));
        stream.memcpy_htod(&*staged, &mut out.slice_mut(range))?;
        buffer.event.record(stream)?;
    }
    Ok(out)
}

fn download_through<T: Plain>(
    stream: &Arc<CudaStream>,
    source: &CudaView<'_, T>,
    buffers: &mut [Pinned; 2],
) -> Result<Vec<T>, DriverError> {
    let (len, per) = (source.len(), per_chunk::<T>());
    let chunks = len.div_ceil(per);
    let fetch = |i: usize, buffer: &mut Pinned| -> Result<(), DriverError> {
        let range = chunk(i, per, len);
        let staged = buffer.values::<T>(range.len())?;
        stream.memcpy_dtoh(&source.slice(range), staged)?;
        buffer.event.record(stream)
    };
    for (i, buffer) in buffers.iter_mut().enumerate().take(chunks) {
        fetch(i, buffer)?;
    }
    let mut out = Vec::with_capacity(len);
    for i in 0..chunks {
        let range = chunk(i, per, len);
        let buffer = &mut buffers[i % 2];
        let staged = buffer.values::<T>(range.len())?;
        out.spare_capacity_mut()[range]
            .par_chunks_mut(PIECE_BYTES / size_of::<T>())
            .zip(staged.par_chunks(PIECE_BYTES / size_of::<T>()))
            .for_each(|(to, from)| {
                for (t, &f) in to.iter_mut().zip(from) {
                    t.write(f);
                }
            });
        if i + 2 < chunks {
            fetch(i + 2, buffer)?;
        }
    }
    // SAFETY: the chunks cover `0..len`, and each was written above.
    unsafe { out.set_len(len) };
    Ok(out)
}

/// One page-locked buffer of [`CHUNK_BYTES`], with the event recorded after
/// the last copy through it.
struct Pinned {
    ptr: *mut u8,
    event: CudaEvent,
}

// SAFETY: the buffer is host memory owned by this value alone, used by one
// thread at a time (a copy takes it out of the pool); `CudaEvent` is Send.
unsafe impl Send for Pinned {}

impl Pinned {
    /// A buffer in `context`'s page-locked memory with `flags` (those of
    /// `cuMemHostAlloc`), zeroed.
    fn new(context: &Arc<CudaContext>, flags: u32) -> Result<Self, DriverError> {
        let event = context.new_event(None)?;
        context.bind_to_thread()?;
        // SAFETY: allocates CHUNK_BYTES in the context bound above; `Drop`
        // frees it.
        let ptr = unsafe { result::malloc_host(CHUNK_BYTES, flags) }?.cast::<u8>();
        // SAFETY: `ptr` holds CHUNK_BYTES; zeroed once, so that every view
        // of it is of initialised values.
        unsafe { std::ptr::write_bytes(ptr, 0, CHUNK_BYTES) };
        Ok(Self { ptr, event })
    }

    /// The first `len` values of the buffer as `T`, once the last copy
    /// through it has finished.
    fn values<T: Plain>(&mut self, len: usize) -> Result<&mut [T], DriverError> {
        assert!(
            len * size_of::<T>() <= CHUNK_BYTES,
            "a chunk fits its buffer"
        );
        self.event.synchronize()?;
        // SAFETY: the memory is initialised (zeroed at allocation, then only
        // written with values of plain types, valid for any bits), page
        // aligned, and borrowed mutably with `self`; no copy is in flight.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.ptr.cast::<T>(), len) })
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let context = self.event.context();
        context.record_err(self.event.synchronize());
        // SAFETY: allocated by `malloc_host`, and no copy is in flight.
        context.record_err(unsafe { result::free_host(self.ptr.cast()) });
    }
}

#[derive(Clone, Copy)]
enum Direction {
    Up,
    Down,
}

impl Direction {
    /// Write-combined memory for copies up: the host only writes it, and
    /// the device reads it faster over PCIe; cached memory for copies down,
    /// which the host reads.
    fn flags(self) -> u32 {
        match self {
            Direction::Up => sys::CU_MEMHOSTALLOC_WRITECOMBINED,
            Direction::Down => 0,
        }
    }
}

/// One direction's buffers of a context.
enum Slot {
    Free([Pinned; 2]),
    InUse,
    Unavailable,
}

/// The buffers of one context, by its handle.
struct Pool {
    context: usize,
    up: Slot,
    down: Slot,
}

static POOLS: Mutex<Vec<Pool>> = Mutex::new(Vec::new());

/// Whether large copies go through the staging buffers (not turned off by
/// `TESSERA_PAGEABLE_COPIES=1`).
fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| !matches!(std::env::var("TESSERA_PAGEABLE_COPIES").as_deref(), Ok("1")))
}

/// The buffers of `stream`'s context for a copy of `bytes` that way, taken
/// out of the pool (allocated at the first call); `None` when the copy goes
/// the driver's way.
fn take(stream: &CudaStream, bytes: usize, direction: Direction) -> Option<[Pinned; 2]> {
    if bytes < STAGED_MIN_BYTES || !enabled() {
        return None;
    }
    let context = stream.context();
    let mut pools = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
    let key = context.cu_ctx() as usize;
    let index = match pools.iter().position(|p| p.context == key) {
        Some(i) => i,
        None => {
            pools.push(Pool {
                context: key,
                up: Slot::InUse,
                down: Slot::InUse,
            });
            let pool = pools.last_mut().expect("just pushed");
            pool.up = allocate(context, Direction::Up);
            pool.down = allocate(context, Direction::Down);
            pools.len() - 1
        }
    };
    let slot = match direction {
        Direction::Up => &mut pools[index].up,
        Direction::Down => &mut pools[index].down,
    };
    match std::mem::replace(slot, Slot::InUse) {
        Slot::Free(buffers) => Some(buffers),
        other => {
            *slot = other;
            None
        }
    }
}

/// Two buffers for `direction` in `context`, or `Unavailable` where
/// page-locked memory cannot be had.
fn allocate(context: &Arc<CudaContext>, direction: Direction) -> Slot {
    let flags = direction.flags();
    match (Pinned::new(context, flags), Pinned::new(context, flags)) {
        (Ok(a), Ok(b)) => Slot::Free([a, b]),
        _ => Slot::Unavailable,
    }
}

/// Returns `buffers` to the pool of `context`.
fn give_back(context: &Arc<CudaContext>, direction: Direction, buffers: [Pinned; 2]) {
    let mut pools = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
    let key = context.cu_ctx() as usize;
    if let Some(pool) = pools.iter_mut().find(|p| p.context == key) {
        match direction {
            Direction::Up => pool.up = Slot::Free(buffers),
            Direction::Down => pool.down = Slot::Free(buffers),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_a_copy_once_in_order() {
        for (len, per) in [
            (1usize, 4usize),
            (4, 4),
            (5, 4),
            (17, 4),
            (3 * 1024 + 7, 1024),
        ] {
            let ranges: Vec<_> = (0..len.div_ceil(per)).map(|i| chunk(i, per, len)).collect();
            assert_eq!(ranges.first().map(|r| r.start), Some(0));
            assert_eq!(ranges.last().map(|r| r.end), Some(len));
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].end, pair[1].start, "{len} by {per}");
            }
            assert!(ranges.iter().all(|r| !r.is_empty() && r.len() <= per));
        }
    }
}
