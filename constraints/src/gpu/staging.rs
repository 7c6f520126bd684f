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
    CudaContext, CudaEvent, CudaSlice, CudaStream, CudaView, DeviceRepr, DriverError, result, sys,
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

/// The values a staged copy moves: numbers, for which any bits are a valid
/// value (so a buffer's leftover bytes from one type are valid as another).
/// Sealed: implemented for the floating-point and integer types only.
pub trait Plain: sealed::Numeric + DeviceRepr + Copy + Send + Sync {}
impl<T: sealed::Numeric + DeviceRepr + Copy + Send + Sync> Plain for T {}

mod sealed {
    /// Types of which every bit pattern is a value.
    pub trait Numeric {}
    macro_rules! numeric {
        ($($t:ty),*) => { $(impl Numeric for $t {})* };
    }
    numeric!(f32, f64, i8, i16, i32, i64, u8, u16, u32, u64);
}

/// `values` copied to a new device array on `stream`.
///
/// Errors: the driver's.
pub fn upload<T: Plain>(stream: &Arc<CudaStream>, values: &[T]) -> Result<CudaSlice<T>, GpuError> {
    let copy = driver("copying to the device");
    let Some(mut buffers) = take(stream, size_of_val(values), Direction::Up) else {
        return stream.clone_htod(values).map_err(copy);
    };
    let copied = upload_through(stream, values, &mut buffers);
    buffers.settle(stream, copied.is_err());
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
    let Some(mut buffers) = take(stream, source.len() * size_of::<T>(), Direction::Down) else {
        let values = if source.is_empty() {
            Vec::new()
        } else {
            stream.clone_dtoh(source).map_err(&copy)?
        };
        // A copy to pageable memory returns once it is done on every driver
        // seen, but CUDA only says it "might be synchronous": the
        // synchronisation keeps the promise above from resting on that.
        stream.synchronize().map_err(copy)?;
        return Ok(values);
    };
    let copied = download_through(stream, source, &mut buffers);
    buffers.settle(stream, copied.is_err());
    copied.map_err(copy)
}

/// How fast copies of one size move between the host's memory and a GPU,
/// in GB/s (10⁹ bytes per second; the median of three copies each), through
/// the staging buffers and the driver's way, and whether the staged copies
/// gave back every bit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CopyRates {
    /// Bytes per copy.
    pub bytes: usize,
    /// Host to device through the staging buffers.
    pub up_staged: f64,
    /// Host to device from pageable memory, the driver's way.
    pub up_driver: f64,
    /// Device to host through the staging buffers.
    pub down_staged: f64,
    /// Device to host into pageable memory, the driver's way.
    pub down_driver: f64,
    /// Whether a staged copy up, then a driver's copy down, and a driver's
    /// copy up, then a staged copy down, each gave back the values' bits.
    pub exact: bool,
}

/// [`CopyRates`] of `bytes` (rounded down to whole doubles, at least one)
/// on `stream`'s device, whether or not `TESSERA_PAGEABLE_COPIES` is set.
///
/// Errors: the driver's, or no page-locked memory to be had
/// ([`GpuError::Unsupported`]).
pub fn measure(stream: &Arc<CudaStream>, bytes: usize) -> Result<CopyRates, GpuError> {
    let len = (bytes / size_of::<f64>()).max(1);
    // Distinct finite values (the top two bits clear), so that a chunk
    // copied to the wrong place shows.
    let values: Vec<f64> = (0..len as u64)
        .map(|i| f64::from_bits(i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 2))
        .collect();
    let gb_s = |seconds: f64| (len * size_of::<f64>()) as f64 / seconds / 1e9;
    let up = Taken::from_pool(stream.context(), Direction::Up);
    let down = Taken::from_pool(stream.context(), Direction::Down);
    let (Some(mut up), Some(mut down)) = (up, down) else {
        return Err(GpuError::Unsupported(
            "page-locked staging buffers (none could be allocated, or another copy holds them)"
                .into(),
        ));
    };
    let measured = (|| -> Result<CopyRates, DriverError> {
        let copy_up = median_seconds(stream, || upload_through(stream, &values, &mut up))?;
        let driver_up = median_seconds(stream, || stream.clone_htod(&values))?;
        let on = upload_through(stream, &values, &mut up)?;
        let staged_up_exact = same_bits(&stream.clone_dtoh(&on)?, &values);
        let plain = stream.clone_htod(&values)?;
        let view = plain.as_view();
        let copy_down = median_seconds(stream, || download_through(stream, &view, &mut down))?;
        let driver_down = median_seconds(stream, || stream.clone_dtoh(&view))?;
        let staged_down_exact = same_bits(&download_through(stream, &view, &mut down)?, &values);
        Ok(CopyRates {
            bytes: len * size_of::<f64>(),
            up_staged: gb_s(copy_up),
            up_driver: gb_s(driver_up),
            down_staged: gb_s(copy_down),
            down_driver: gb_s(driver_down),
            exact: staged_up_exact && staged_down_exact,
        })
    })();
    up.settle(stream, measured.is_err());
    down.settle(stream, measured.is_err());
    measured.map_err(driver("measuring the copies' rates"))
}

/// The median of three timings of `copy`, each from an idle stream to the
/// end of everything it queued.
fn median_seconds<R>(
    stream: &CudaStream,
    mut copy: impl FnMut() -> Result<R, DriverError>,
) -> Result<f64, DriverError> {
    let mut times = Vec::with_capacity(3);
    for _ in 0..3 {
        stream.synchronize()?;
        let start = std::time::Instant::now();
        let result = copy()?;
        stream.synchronize()?;
        times.push(start.elapsed().as_secs_f64());
        drop(result);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[1])
}

fn same_bits(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
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
    buffers: &mut Taken,
) -> Result<CudaSlice<T>, DriverError> {
    // SAFETY: the copies below write every element before anything queued
    // after them on `stream` reads it.
    let mut out = unsafe { stream.alloc::<T>(values.len()) }?;
    let (per, first) = (per_chunk::<T>(), buffers.turn());
    let chunks = values.len().div_ceil(per);
    for i in 0..chunks {
        let range = chunk(i, per, values.len());
        // Waits for the copy of chunk i − 2 out of this buffer.
        let buffer = buffers.at(first + i);
        let staged = buffer.values::<T>(range.len())?;
        staged
            .par_chunks_mut(PIECE_BYTES / size_of::<T>())
            .zip(values[range.clone()].par_chunks(PIECE_BYTES / size_of::<T>()))
            .for_each(|(to, from)| to.copy_from_slice(from));
        stream.memcpy_htod(&*staged, &mut out.slice_mut(range))?;
        buffer.event.record(stream)?;
    }
    buffers.set_turn(first + chunks);
    Ok(out)
}

fn download_through<T: Plain>(
    stream: &Arc<CudaStream>,
    source: &CudaView<'_, T>,
    buffers: &mut Taken,
) -> Result<Vec<T>, DriverError> {
    let (len, per, first) = (source.len(), per_chunk::<T>(), buffers.turn());
    let chunks = len.div_ceil(per);
    let mut out = Vec::with_capacity(len);
    for step in download_steps(first, chunks) {
        match step {
            Step::Fetch { chunk: i, buffer } => {
                let range = chunk(i, per, len);
                let buffer = buffers.at(buffer);
                let staged = buffer.values::<T>(range.len())?;
                stream.memcpy_dtoh(&source.slice(range), staged)?;
                buffer.event.record(stream)?;
            }
            Step::Read { chunk: i, buffer } => {
                let range = chunk(i, per, len);
                // Waits for this chunk's copy into the buffer.
                let staged = buffers.at(buffer).values::<T>(range.len())?;
                out.spare_capacity_mut()[range]
                    .par_chunks_mut(PIECE_BYTES / size_of::<T>())
                    .zip(staged.par_chunks(PIECE_BYTES / size_of::<T>()))
                    .for_each(|(to, from)| {
                        for (t, &f) in to.iter_mut().zip(from) {
                            t.write(f);
                        }
                    });
            }
        }
    }
    buffers.set_turn(first + chunks);
    // SAFETY: the steps read every chunk, and the chunks cover `0..len`.
    unsafe { out.set_len(len) };
    Ok(out)
}

/// One step of a staged download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Queue the copy of chunk `chunk` into buffer `buffer`.
    Fetch { chunk: usize, buffer: usize },
    /// Wait for that copy, then copy the chunk out of the buffer.
    Read { chunk: usize, buffer: usize },
}

/// The steps of a download of `chunks` chunks, chunk `i` through buffer
/// `(first + i) % 2`: the first two chunks are queued, then each is read
/// as soon as its copy is done, and the chunk two ahead is queued into the
/// buffer that frees, so that the device fills one buffer while the host
/// empties the other.
fn download_steps(first: usize, chunks: usize) -> impl Iterator<Item = Step> {
    let buffer = move |chunk: usize| (first + chunk) % 2;
    let fetch = move |chunk: usize| Step::Fetch {
        chunk,
        buffer: buffer(chunk),
    };
    let ahead = move |chunk: usize| (chunk + 2 < chunks).then(|| fetch(chunk + 2));
    (0..chunks.min(2))
        .map(fetch)
        .chain((0..chunks).flat_map(move |chunk| {
            let read = Step::Read {
                chunk,
                buffer: buffer(chunk),
            };
            std::iter::once(read).chain(ahead(chunk))
        }))
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
        // of it is of initialised bytes.
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
        // SAFETY: the bytes are initialised (zeroed at allocation, then only
        // written with numbers, which have no padding) and any bits are a
        // value of the numeric `T` ([`Plain`] is sealed); the memory is page
        // aligned and borrowed mutably with `self`; no copy is in flight.
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

/// A context's two buffers one way, and which of them the next chunk goes
/// through: consecutive copies alternate, so that a copy of one chunk does
/// not wait for the last chunk of the copy before it.
struct Pair {
    buffers: [Pinned; 2],
    turn: usize,
}

/// One direction's buffers of a context.
enum Slot {
    /// Not yet allocated (or the last try failed for a reason that may pass).
    Missing,
    Free(Pair),
    InUse,
    /// The driver had no page-locked memory to give.
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

/// The buffers of `stream`'s context for a copy of `bytes` that way;
/// `None` when the copy goes the driver's way.
fn take(stream: &CudaStream, bytes: usize, direction: Direction) -> Option<Taken> {
    if bytes < STAGED_MIN_BYTES || !enabled() {
        return None;
    }
    Taken::from_pool(stream.context(), direction)
}

/// A context's buffers one way, out of the pool while a copy uses them;
/// dropping it (a copy's end, or a panic in it) puts them back.
struct Taken {
    context: Arc<CudaContext>,
    direction: Direction,
    pair: Option<Pair>,
}

impl Taken {
    /// `context`'s buffers for `direction` (allocated at the first call);
    /// `None` while another copy uses them, or where they cannot be had.
    fn from_pool(context: &Arc<CudaContext>, direction: Direction) -> Option<Self> {
        let mut pools = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
        let key = context.cu_ctx() as usize;
        let index = match pools.iter().position(|p| p.context == key) {
            Some(i) => i,
            None => {
                pools.push(Pool {
                    context: key,
                    up: Slot::Missing,
                    down: Slot::Missing,
                });
                pools.len() - 1
            }
        };
        let slot = match direction {
            Direction::Up => &mut pools[index].up,
            Direction::Down => &mut pools[index].down,
        };
        let pair = match std::mem::replace(slot, Slot::InUse) {
            Slot::Free(pair) => pair,
            Slot::Missing => match allocate(context, direction) {
                Ok(pair) => pair,
                Err(still) => {
                    *slot = still;
                    return None;
                }
            },
            other => {
                *slot = other;
                return None;
            }
        };
        Some(Self {
            context: context.clone(),
            direction,
            pair: Some(pair),
        })
    }

    /// The buffer the next copy's first chunk goes through.
    fn turn(&self) -> usize {
        self.pair.as_ref().map_or(0, |pair| pair.turn)
    }

    /// Makes buffer `i % 2` the next copy's first.
    fn set_turn(&mut self, i: usize) {
        if let Some(pair) = self.pair.as_mut() {
            pair.turn = i % 2;
        }
    }

    /// Buffer `i % 2`.
    fn at(&mut self, i: usize) -> &mut Pinned {
        let pair = self
            .pair
            .as_mut()
            .expect("taken buffers are held until dropped");
        &mut pair.buffers[i % 2]
    }

    /// Ends a copy: after a failed one, waits for the copies it queued, whose
    /// events may not have been recorded, so that the buffers' events again
    /// cover everything in flight through them; then drops them back into
    /// the pool.
    fn settle(self, stream: &CudaStream, failed: bool) {
        if failed {
            stream.context().record_err(stream.synchronize());
        }
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        let Some(pair) = self.pair.take() else {
            return;
        };
        let mut pools = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
        let key = self.context.cu_ctx() as usize;
        if let Some(pool) = pools.iter_mut().find(|p| p.context == key) {
            match self.direction {
                Direction::Up => pool.up = Slot::Free(pair),
                Direction::Down => pool.down = Slot::Free(pair),
            }
        }
    }
}

/// Two buffers for `direction` in `context`; else the slot to leave: still
/// `Missing` (a later copy tries again) unless the driver was out of
/// page-locked memory, then `Unavailable`.
fn allocate(context: &Arc<CudaContext>, direction: Direction) -> Result<Pair, Slot> {
    let flags = direction.flags();
    let both = Pinned::new(context, flags).and_then(|a| Ok([a, Pinned::new(context, flags)?]));
    match both {
        Ok(buffers) => Ok(Pair { buffers, turn: 0 }),
        Err(DriverError(sys::cudaError_enum::CUDA_ERROR_OUT_OF_MEMORY)) => Err(Slot::Unavailable),
        Err(_) => Err(Slot::Missing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_reads_every_chunk_in_order_and_never_refills_a_buffer_unread() {
        for first in [0, 1] {
            for chunks in 0..7 {
                // What each buffer holds: the chunk queued into it and not
                // yet read.
                let mut held: [Option<usize>; 2] = [None, None];
                let (mut read, mut fetched) = (Vec::new(), Vec::new());
                for step in download_steps(first, chunks) {
                    match step {
                        Step::Fetch { chunk, buffer } => {
                            assert_eq!(buffer, (first + chunk) % 2);
                            assert_eq!(held[buffer], None, "chunk {chunk} over an unread one");
                            held[buffer] = Some(chunk);
                            fetched.push(chunk);
                        }
                        Step::Read { chunk, buffer } => {
                            assert_eq!(held[buffer], Some(chunk), "chunk {chunk} read");
                            held[buffer] = None;
                            // The device is already copying the next chunk.
                            if chunk + 1 < chunks {
                                assert_eq!(held[1 - buffer], Some(chunk + 1));
                            }
                            read.push(chunk);
                        }
                    }
                }
                let all: Vec<usize> = (0..chunks).collect();
                assert_eq!(
                    (&read, &fetched),
                    (&all, &all),
                    "first {first}, {chunks} chunks"
                );
            }
        }
    }

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
