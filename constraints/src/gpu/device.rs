//! The GPU and the batched solve on it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DriverError, LaunchArgs,
    LaunchConfig, PushKernelArg, sys,
};

use super::field::GpuFieldResidual;
use super::gather::{AtPoints, GatheredProblem, RowGather};
use super::kernel::{self, Batch, CHUNK_POINTS, KernelShape, STATUS_LEN, THREADS};
use super::tiles::DeviceTiles;
use super::times::{GpuTimes, SolveTimes, Stopwatch};
use super::{GpuError, nvrtc, staging};
use crate::{
    ConstraintError, ExpertProblem, HessianMode, LevenbergMarquardt, LmSolution, RowGradient,
};
use tessera_meshes::SparseRows;

/// One GPU, with the stream its work is queued on.
pub struct Gpu {
    context: Arc<CudaContext>,
    stream: Arc<CudaStream>,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("ordinal", &self.context.ordinal())
            .finish()
    }
}

/// Makes `stream`'s context current on this thread before an owner of
/// device arrays drops them. cudarc binds the context in every call but an
/// array's drop, so an array dropped on a thread that never used the device
/// (a host program's, say, dropping a layer's forward pass) would not be
/// freed, and the next call on the device would report that failure. The
/// owners of arrays that outlive the call that made them bind first; a
/// failure is kept for the next call to report, as cudarc keeps its drops'.
pub fn bind_for_drop(stream: &CudaStream) {
    let context = stream.context();
    context.record_err(context.bind_to_thread());
}

/// The map of a driver error to [`GpuError::from_driver`]'s, for `what`.
pub(super) fn driver(what: &'static str) -> impl Fn(DriverError) -> GpuError {
    move |e| GpuError::from_driver(what, e)
}

/// The virtual architecture NVRTC compiles for on a device of compute
/// capability `(major, minor)`: one of [`nvrtc::ARCHITECTURES`], the newest
/// the device runs. A device newer than Hopper (Blackwell, 10.x and 12.x)
/// gets Hopper's PTX, which its driver compiles for it when the module is
/// loaded (PTX runs on every later architecture); the register checks of
/// the test suites cover Ampere and Hopper only.
///
/// Errors: a device older than Ampere ([`GpuError::Unsupported`]): the
/// kernels are built and checked for 8.0 and later.
pub fn architecture_for((major, minor): (i32, i32)) -> Result<&'static str, GpuError> {
    match major {
        9.. => Ok("compute_90"),
        8 => Ok("compute_80"),
        _ => Err(GpuError::Unsupported(format!(
            "compute capability {major}.{minor} (the kernels are built for 8.0 and later)"
        ))),
    }
}

/// The newest CUDA version the installed driver supports, `(major, minor)`:
/// PTX from a newer NVRTC does not load (the kernels are compiled with
/// NVRTC 13.0, so the driver must say 13.0 or later).
///
/// Errors: no driver ([`GpuError::NoDriver`]), or the driver's own error.
pub fn driver_version() -> Result<(i32, i32), GpuError> {
    if !Gpu::driver_present() {
        return Err(GpuError::NoDriver);
    }
    let mut version = 0;
    // SAFETY: the library is present (checked above) and the call only
    // writes the integer it is given.
    unsafe { sys::cuDriverGetVersion(&mut version) }
        .result()
        .map_err(driver("reading the driver's version"))?;
    Ok((version / 1000, version % 1000 / 10))
}

/// Whether a driver supporting CUDA `driver` loads the PTX NVRTC `nvrtc`
/// writes: PTX carries its ISA version, which a driver older than the
/// compiler rejects with a bare "unsupported PTX version". Checked before
/// loading, so the error says which side to update.
///
/// Errors: [`GpuError::DriverTooOld`].
pub fn driver_loads_ptx_of(driver: (i32, i32), nvrtc: (i32, i32)) -> Result<(), GpuError> {
    if driver >= nvrtc {
        return Ok(());
    }
    Err(GpuError::DriverTooOld { driver, nvrtc })
}

impl Gpu {
    /// Whether the CUDA driver library can be loaded here (a GPU machine).
    pub fn driver_present() -> bool {
        // SAFETY: only probes for the library with `dlopen`; nothing is called.
        unsafe { cudarc::driver::sys::is_culib_present() }
    }

    /// How many GPUs the driver sees (`CUDA_VISIBLE_DEVICES` applies).
    ///
    /// Errors: no driver ([`GpuError::NoDriver`]), or the driver's own error.
    pub fn count() -> Result<usize, GpuError> {
        if !Self::driver_present() {
            return Err(GpuError::NoDriver);
        }
        let n = CudaContext::device_count().map_err(driver("counting the devices"))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// GPU number `ordinal` (`--device cuda:N`).
    ///
    /// Errors: no driver ([`GpuError::NoDriver`]: the probe runs first, since
    /// the driver bindings panic when the library is missing), or the driver's
    /// own error (no such device, out of memory, …).
    pub fn open(ordinal: usize) -> Result<Self, GpuError> {
        if !Self::driver_present() {
            return Err(GpuError::NoDriver);
        }
        let context = CudaContext::new(ordinal).map_err(driver("opening the device"))?;
        let stream = context.default_stream();
        let gpu = Self { context, stream };
        gpu.keep_freed_memory()?;
        Ok(gpu)
    }

    /// Lets the default pool keep the memory its arrays free. The pool's
    /// release threshold is 0 by default, so at every synchronisation it
    /// returns freed memory to the driver, and the next step maps its
    /// arrays (the backbone's activations, the solves' scratch: GiBs at the
    /// paper's scales) afresh; with no threshold, a step reuses the last
    /// step's memory, as the caching allocators of the ML frameworks do.
    fn keep_freed_memory(&self) -> Result<(), GpuError> {
        self.set_pool_attribute(
            sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
            u64::MAX,
            "setting the memory pool's release threshold",
        )
    }

    /// Sets one of the default pool's `cuuint64_t` attributes, where the
    /// device has pools.
    fn set_pool_attribute(
        &self,
        attribute: sys::CUmemPool_attribute,
        mut value: u64,
        what: &'static str,
    ) -> Result<(), GpuError> {
        let Some(pool) = self.default_pool()? else {
            return Ok(());
        };
        // SAFETY: the attributes this is called with are `cuuint64_t`s,
        // read from `value`.
        unsafe { sys::cuMemPoolSetAttribute(pool, attribute, (&raw mut value).cast()) }
            .result()
            .map_err(driver(what))
    }

    /// [`Gpu::open`], or `None` on a machine without a CUDA driver: for
    /// programs and tests that use a GPU where there is one.
    ///
    /// Errors: as [`Gpu::open`] where a driver is present.
    pub fn open_if_present(ordinal: usize) -> Result<Option<Self>, GpuError> {
        match Self::open(ordinal) {
            Ok(gpu) => Ok(Some(gpu)),
            Err(GpuError::NoDriver) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The device's name, as the driver reports it.
    pub fn name(&self) -> Result<String, GpuError> {
        self.context
            .name()
            .map_err(driver("reading the device name"))
    }

    /// The device's compute capability `(major, minor)`.
    pub fn compute_capability(&self) -> Result<(i32, i32), GpuError> {
        self.context
            .compute_capability()
            .map_err(driver("reading the compute capability"))
    }

    /// The virtual architecture NVRTC compiles for on this device
    /// ([`architecture_for`] of its compute capability).
    ///
    /// Errors: a device older than Ampere, or a driver failure.
    pub fn architecture(&self) -> Result<&'static str, GpuError> {
        architecture_for(self.compute_capability()?)
    }

    /// `source` compiled with NVRTC for this device's architecture
    /// ([`Gpu::architecture`]) and loaded here; `what` names the kernels in
    /// errors.
    ///
    /// Errors: no NVRTC, a compile error, an unsupported device, a driver
    /// older than NVRTC ([`GpuError::DriverTooOld`]), or the driver's own
    /// error.
    pub fn compile_and_load(
        &self,
        source: &str,
        what: &'static str,
    ) -> Result<Arc<CudaModule>, GpuError> {
        driver_loads_ptx_of(driver_version()?, nvrtc::version()?)?;
        let ptx = nvrtc::compile(source, self.architecture()?)?;
        self.context.load_module(ptx).map_err(driver(what))
    }

    /// The device's memory, in bytes.
    pub fn total_memory(&self) -> Result<usize, GpuError> {
        self.context
            .total_mem()
            .map_err(driver("reading the device's memory size"))
    }

    /// The device's default memory pool, which the stream-ordered
    /// allocations of every array on this device come from; `None` where the
    /// device has no pools (its arrays are then allocated outside any).
    fn default_pool(&self) -> Result<Option<sys::CUmemoryPool>, GpuError> {
        if !self.context.has_async_alloc() {
            return Ok(None);
        }
        let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
        // SAFETY: `pool` is a valid place for the handle, and the device
        // belongs to this live context.
        unsafe { sys::cuDeviceGetDefaultMemPool(&mut pool, self.context.cu_device()) }
            .result()
            .map_err(driver("finding the device's memory pool"))?;
        Ok(Some(pool))
    }

    /// The most bytes this process's arrays on the device held at once since
    /// the last [`Gpu::reset_memory_peak`] (or since the device was opened):
    /// the default pool's high-water mark of memory in use, which a report
    /// of a step's memory needs and no sampling between launches sees.
    /// `None` where the device has no memory pools.
    ///
    /// Errors: the driver's.
    pub fn memory_peak(&self) -> Result<Option<u64>, GpuError> {
        let Some(pool) = self.default_pool()? else {
            return Ok(None);
        };
        let mut bytes: u64 = 0;
        // SAFETY: the attribute is a `cuuint64_t`, written to `bytes`.
        unsafe {
            sys::cuMemPoolGetAttribute(
                pool,
                sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH,
                (&raw mut bytes).cast(),
            )
        }
        .result()
        .map_err(driver("reading the memory pool's peak"))?;
        Ok(Some(bytes))
    }

    /// Starts [`Gpu::memory_peak`] again from the memory in use now.
    ///
    /// Errors: the driver's.
    pub fn reset_memory_peak(&self) -> Result<(), GpuError> {
        // The driver only takes zero here.
        self.set_pool_attribute(
            sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH,
            0,
            "resetting the memory pool's peak",
        )
    }

    /// The driver context, for modules of other kernels on this device.
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.context
    }

    /// The stream every kernel on this device is queued on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }
}

/// The batched Levenberg–Marquardt solver of one residual and its
/// implicit-function-theorem backward pass, compiled and loaded on one GPU.
pub struct GpuLm {
    pub(super) stream: Arc<CudaStream>,
    /// `lm.cu`'s and `lm_step.cu`'s kernels, as [`kernel::LM_FUNCTIONS`].
    lm: [CudaFunction; 4],
    gather: CudaFunction,
    gather_values: CudaFunction,
    /// `field.cu`'s kernels, for [`GpuLm::field_residual`].
    field: [CudaFunction; 3],
    /// `tiles.cu`'s kernels, for [`GpuLm::assemble`] and [`GpuLm::pull_back`].
    pub(super) tiles: [CudaFunction; 4],
    pub(super) shape: KernelShape,
    /// Where the calls' time went since the last [`GpuLm::take_times`].
    times: Mutex<SolveTimes>,
}

/// The most blocks a grid-stride kernel (the gathers, the PDE loss's
/// pointwise kernels, the passes over the grid) launches: its loop covers the rest, and more blocks
/// than the device can hold at once only add scheduling.
pub(super) const MAX_STRIDED_BLOCKS: usize = 1 << 16;

/// Blocks of a grid-stride launch over `total` items: at least one, at
/// most [`MAX_STRIDED_BLOCKS`].
pub(super) fn strided_blocks(total: usize) -> usize {
    total.div_ceil(THREADS).clamp(1, MAX_STRIDED_BLOCKS)
}

/// The most blocks of a one-dimensional grid: CUDA's limit on `gridDim.x`.
const MAX_GRID_BLOCKS: usize = (1 << 31) - 1;

/// `blocks` grid blocks, [`THREADS`] threads each.
///
/// Errors: more than CUDA's 2³¹ − 1 blocks ([`GpuError::Unsupported`]),
/// which a cast to the driver's 32 bits would silently cut.
pub(super) fn launch_config(blocks: usize) -> Result<LaunchConfig, GpuError> {
    if blocks > MAX_GRID_BLOCKS {
        return Err(GpuError::Unsupported(format!(
            "a launch of {blocks} blocks (CUDA takes at most 2³¹ − 1)"
        )));
    }
    Ok(LaunchConfig {
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (THREADS as u32, 1, 1),
        shared_mem_bytes: 0,
    })
}

/// Rounds of the solve queued between two reads of its `pending` flags.
///
/// Why 8: a round whose problems are all done costs two empty launches
/// (microseconds), a read costs a synchronisation; the paper's
/// diffusion–sorption solves take some 5 to 40 rounds.
const ROUNDS_PER_CHECK: usize = 8;

/// A batch's inputs on the device.
struct Inputs {
    point_start: CudaSlice<i64>,
    linear_start: CudaSlice<i64>,
    rows: CudaSlice<f64>,
    offsets: CudaSlice<f64>,
    coords: CudaSlice<f64>,
    linear: CudaSlice<f64>,
    rhs: CudaSlice<f64>,
    ridge: CudaSlice<f64>,
}

/// How a batch's problems are cut into chunks of [`CHUNK_POINTS`] points
/// and linear rows, one block each in the solver's sums (see `lm.cu`).
struct Chunks {
    problems: i32,
    count: usize,
    start: CudaSlice<i64>,
}

/// The solver's per-point scratch: residual values, linear residuals,
/// Jacobian rows (see `lm.cu`).
struct PointScratch {
    values: CudaSlice<f64>,
    linres: CudaSlice<f64>,
    jac: CudaSlice<f64>,
}

impl PointScratch {
    /// As the per-point kernels take them, in order.
    fn push<'a>(&'a mut self, launch: &mut LaunchArgs<'a>) {
        launch
            .arg(&mut self.values)
            .arg(&mut self.linres)
            .arg(&mut self.jac);
    }
}

/// The solver's scratch (see `lm.cu`).
struct Scratch {
    points: PointScratch,
    mats: CudaSlice<f64>,
    partials: CudaSlice<f64>,
    state: CudaSlice<f64>,
    pending: CudaSlice<f64>,
}

/// A batch on the device: inputs, weights and scratch.
pub(super) struct Uploaded {
    stream: Arc<CudaStream>,
    inputs: Inputs,
    chunks: Chunks,
    pub(super) omega: CudaSlice<f64>,
    scratch: Scratch,
}

impl Inputs {
    /// The per-point kernels' first parameters (`tessera_lm_accumulate`'s
    /// and `tessera_ift_rows`'): the inputs but the ridge, then the chunks.
    fn push_points<'a>(&'a self, chunks: &'a Chunks, launch: &mut LaunchArgs<'a>) {
        launch
            .arg(&self.point_start)
            .arg(&self.linear_start)
            .arg(&self.rows)
            .arg(&self.offsets)
            .arg(&self.coords)
            .arg(&self.linear)
            .arg(&self.rhs)
            .arg(&chunks.problems)
            .arg(&chunks.start)
            .arg(&CHUNK_POINTS_I64);
    }
}

/// [`CHUNK_POINTS`] as the kernels' `long long`.
const CHUNK_POINTS_I64: i64 = CHUNK_POINTS as i64;

/// A solve's Levenberg–Marquardt settings, as `tessera_lm_step` takes them.
struct Settings {
    rtol: f64,
    atol: f64,
    tau: f64,
    max_iterations: i32,
}

/// `values` copied to the device; a zero-length array becomes one zero, since
/// a kernel argument still needs a valid pointer.
pub(super) fn upload<T: staging::Plain + Default>(
    stream: &Arc<CudaStream>,
    values: &[T],
) -> Result<CudaSlice<T>, GpuError> {
    if values.is_empty() {
        staging::upload(stream, &[T::default()])
    } else {
        staging::upload(stream, values)
    }
}

impl Uploaded {
    /// `batch` on the device, with its term rows `rows` already there
    /// ([`GpuLm::term_rows`]).
    fn new(
        stream: &Arc<CudaStream>,
        batch: &Batch,
        rows: CudaSlice<f64>,
    ) -> Result<Self, GpuError> {
        let up = |v: &[f64]| upload(stream, v);
        let [values, linres, jac, mats, partials, state] = batch.scratch_lengths(CHUNK_POINTS);
        let zeros = |len: usize| {
            stream
                .alloc_zeros::<f64>(len.max(1))
                .map_err(driver("allocating the solver's scratch"))
        };
        let chunk_start = batch.chunk_start(CHUNK_POINTS);
        let count = *chunk_start.last().unwrap_or(&0) as usize;
        // Both are grid sizes: CUDA takes at most 2³¹ − 1 blocks.
        let (Ok(problems), Ok(_)) = (i32::try_from(batch.len()), i32::try_from(count)) else {
            return Err(GpuError::Unsupported(format!(
                "a batch of {} problems in {count} chunks (at most 2³¹ − 1 each)",
                batch.len()
            )));
        };
        Ok(Self {
            stream: stream.clone(),
            inputs: Inputs {
                point_start: upload(stream, &batch.point_start)?,
                linear_start: upload(stream, &batch.linear_start)?,
                rows,
                offsets: up(&batch.offsets)?,
                coords: up(&batch.coordinates)?,
                linear: up(&batch.linear)?,
                rhs: up(&batch.linear_rhs)?,
                ridge: up(&batch.ridge)?,
            },
            chunks: Chunks {
                problems,
                count,
                start: upload(stream, &chunk_start)?,
            },
            omega: up(&batch.omega)?,
            scratch: Scratch {
                points: PointScratch {
                    values: zeros(values)?,
                    linres: zeros(linres)?,
                    jac: zeros(jac)?,
                },
                mats: zeros(mats)?,
                partials: zeros(partials)?,
                state: zeros(state)?,
                pending: zeros(batch.len())?,
            },
        })
    }

    /// A zeroed device array of `len` doubles (at least one).
    pub(super) fn zeros(&self, len: usize) -> Result<CudaSlice<f64>, GpuError> {
        self.stream
            .alloc_zeros::<f64>(len.max(1))
            .map_err(driver("allocating an output"))
    }

    /// Copies the first `len` doubles of `slice` back (all of them if it
    /// holds fewer).
    pub(super) fn download(
        &self,
        slice: &CudaSlice<f64>,
        len: usize,
    ) -> Result<Vec<f64>, GpuError> {
        staging::download(&self.stream, &slice.slice(..len.min(slice.len())))
    }
}

impl GpuLm {
    /// Compiles the solver for the residual `residual` (the CUDA C of the
    /// definition `name`, from [`crate::expr::cuda::emit`]) and `shape`, for
    /// `gpu`'s architecture, and loads it there.
    pub fn new(
        gpu: &Gpu,
        residual: &str,
        name: &str,
        shape: KernelShape,
    ) -> Result<Self, GpuError> {
        let source = kernel::lm_source(residual, name, shape)?;
        let module = gpu.compile_and_load(&source, "loading the solver's kernels")?;
        let find = |name| {
            module
                .load_function(name)
                .map_err(driver("finding a kernel"))
        };
        let [accumulate, step, ift_step, ift_rows] = kernel::LM_FUNCTIONS;
        let [residual, squares, cotangent] = kernel::FIELD_FUNCTIONS;
        let [assemble, parts, sum, pull_back] = kernel::TILES_FUNCTIONS;
        Ok(Self {
            stream: gpu.stream.clone(),
            lm: [
                find(accumulate)?,
                find(step)?,
                find(ift_step)?,
                find(ift_rows)?,
            ],
            gather: find(kernel::GATHER_FUNCTION)?,
            gather_values: find(kernel::GATHER_VALUES_FUNCTION)?,
            field: [find(residual)?, find(squares)?, find(cotangent)?],
            tiles: [find(assemble)?, find(parts)?, find(sum)?, find(pull_back)?],
            shape,
            times: Mutex::new(SolveTimes::default()),
        })
    }

    /// The PDE loss of whole fields with this solver's residual
    /// ([`GpuFieldResidual`]): `terms` are the residual's terms at every grid
    /// point as sparse rows (`[grid points, d]` rows over the grid), and
    /// `coordinates` the grid's (`[grid points, C]`, empty when the residual
    /// reads none). Both go to the device once.
    ///
    /// Errors: rows or coordinates that do not match the compiled shape, or a
    /// driver failure.
    pub fn field_residual(
        &self,
        terms: &SparseRows,
        coordinates: &[f64],
    ) -> Result<GpuFieldResidual, GpuError> {
        GpuFieldResidual::new(
            &self.stream,
            self.gather_values.clone(),
            self.field.clone(),
            self.shape,
            terms,
            coordinates,
        )
    }

    /// Where the wall time of the solves and backward passes went since the
    /// last call (or since the solver was built), and starts again.
    pub fn take_times(&self) -> SolveTimes {
        std::mem::take(&mut *self.times.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Adds to the times of the solves or backward passes (`part`).
    pub(super) fn record(&self, part: fn(&mut SolveTimes) -> &mut GpuTimes, add: GpuTimes) {
        *part(&mut self.times.lock().unwrap_or_else(PoisonError::into_inner)) += add;
    }

    /// Waits for everything queued on the stream: the end of a timed part.
    pub(super) fn synchronize(&self) -> Result<(), GpuError> {
        self.stream
            .synchronize()
            .map_err(driver("waiting for the device"))
    }

    /// Queues one round of the solver's sums over points: every chunk of
    /// `on` evaluated where its problem's state asks.
    fn accumulate(&self, on: &mut Uploaded) -> Result<(), GpuError> {
        let Uploaded {
            inputs,
            chunks,
            scratch,
            ..
        } = on;
        let mut launch = self.stream.launch_builder(&self.lm[0]);
        inputs.push_points(chunks, &mut launch);
        launch.arg(&scratch.state);
        scratch.points.push(&mut launch);
        launch.arg(&mut scratch.partials);
        // SAFETY: the arguments match `tessera_lm_accumulate`'s parameters
        // in order and type, every array has the length `lm.cu` documents
        // for this batch (`Batch::scratch_lengths` and `Batch::chunk_start`
        // with `CHUNK_POINTS`), and the grid has one block per chunk.
        unsafe { launch.launch(launch_config(chunks.count)?) }
            .map_err(driver("launching the solver's sums"))?;
        Ok(())
    }

    /// Queues one round of the solve's decisions; with `start`, its first,
    /// which reads the initial weights from `on.omega`. Done problems write
    /// their solutions there and their statuses into `status` (`[K, 5]`).
    fn lm_step(
        &self,
        on: &mut Uploaded,
        settings: &Settings,
        start: bool,
        status: &mut CudaSlice<f64>,
    ) -> Result<(), GpuError> {
        let Uploaded {
            inputs,
            chunks,
            omega,
            scratch,
            ..
        } = on;
        let start = i32::from(start);
        let mut launch = self.stream.launch_builder(&self.lm[1]);
        launch
            .arg(&inputs.ridge)
            .arg(&chunks.start)
            .arg(&settings.rtol)
            .arg(&settings.atol)
            .arg(&settings.tau)
            .arg(&settings.max_iterations)
            .arg(&start)
            .arg(omega)
            .arg(status)
            .arg(&mut scratch.state)
            .arg(&mut scratch.mats)
            .arg(&scratch.partials)
            .arg(&mut scratch.pending);
        // SAFETY: as in `accumulate`, for `tessera_lm_step`'s parameters;
        // `status` holds `[K, 5]`, and the grid has one block per problem.
        unsafe { launch.launch(launch_config(chunks.problems as usize)?) }
            .map_err(driver("launching the solver's steps"))?;
        Ok(())
    }

    /// Queues rounds of the solve on `on` until none of its problems asks
    /// for another evaluation, reading the `pending` flags every
    /// [`ROUNDS_PER_CHECK`] rounds.
    ///
    /// Returns the rounds queued.
    ///
    /// Errors: a driver failure, or problems still pending after more
    /// rounds than `settings` allow (one evaluation to start, then per
    /// iteration at most four: the damped trial and, in the round-off
    /// regime, the Gauss–Newton trial, the exact Hessian and the Newton
    /// trial), which would be a defect of the kernel.
    fn rounds(
        &self,
        on: &mut Uploaded,
        settings: &Settings,
        status: &mut CudaSlice<f64>,
    ) -> Result<usize, GpuError> {
        let most = (settings.max_iterations as usize)
            .saturating_mul(4)
            .saturating_add(1);
        let mut done = 0usize;
        loop {
            for _ in 0..ROUNDS_PER_CHECK {
                self.accumulate(on)?;
                self.lm_step(on, settings, false, status)?;
            }
            done += ROUNDS_PER_CHECK;
            let problems = on.chunks.problems as usize;
            let pending = on.download(&on.scratch.pending, problems)?;
            let left = pending.iter().filter(|&&p| p != 0.0).count();
            if left == 0 {
                return Ok(done);
            }
            if done > most {
                return Err(GpuError::Driver {
                    what: "solving a batch",
                    message: format!(
                        "{left} of {problems} problems still iterating after {done} rounds \
                         (at most {most} with {} iterations)",
                        settings.max_iterations
                    ),
                });
            }
        }
    }

    /// Queues one round of the backward pass's decisions at the weights
    /// `on.omega` for the upstream gradients `bar`; `start` 1 (exact
    /// Hessian) or 2 (Gauss–Newton) for the first, else 0.
    fn ift_step(
        &self,
        on: &mut Uploaded,
        start: i32,
        bar: &CudaSlice<f64>,
        out: &mut BackwardOutputs,
    ) -> Result<(), GpuError> {
        let Uploaded {
            inputs,
            chunks,
            omega,
            scratch,
            ..
        } = on;
        let mut launch = self.stream.launch_builder(&self.lm[2]);
        launch
            .arg(&inputs.ridge)
            .arg(&chunks.start)
            .arg(&start)
            .arg(&*omega)
            .arg(bar)
            .arg(&mut out.lambda)
            .arg(&mut out.state)
            .arg(&mut scratch.state)
            .arg(&mut scratch.mats)
            .arg(&scratch.partials);
        // SAFETY: as in `accumulate`, for `tessera_ift_step`'s parameters;
        // ω̄ and λ hold `[K, N]`, the results `[K]`, and the grid has one
        // block per problem.
        unsafe { launch.launch(launch_config(chunks.problems as usize)?) }
            .map_err(driver("launching the backward pass"))?;
        Ok(())
    }

    /// Queues the backward pass's per-point outputs into `out`, after its
    /// rounds.
    fn ift_rows(&self, on: &mut Uploaded, out: &mut BackwardOutputs) -> Result<(), GpuError> {
        let Uploaded {
            inputs,
            chunks,
            omega,
            scratch,
            ..
        } = on;
        let mut launch = self.stream.launch_builder(&self.lm[3]);
        inputs.push_points(chunks, &mut launch);
        launch.arg(&*omega).arg(&out.lambda).arg(&out.state);
        scratch.points.push(&mut launch);
        launch
            .arg(&mut out.term_omega)
            .arg(&mut out.term_lambda)
            .arg(&mut out.linear_omega)
            .arg(&mut out.linear_lambda);
        // SAFETY: as in `accumulate`, for `tessera_ift_rows`' parameters;
        // the outputs hold `[ΣP, d]` and `[ΣR]`.
        unsafe { launch.launch(launch_config(chunks.count)?) }
            .map_err(driver("launching the backward pass's rows"))?;
        Ok(())
    }

    /// Solves every problem at once, each with `lm`'s settings and initial
    /// guess, in rounds of the kernels of `lm.cu`; returns the solutions in
    /// order.
    ///
    /// Errors: problems that do not match the compiled shape, or a driver
    /// failure. Numerical trouble is each solution's status, as on the CPU.
    pub fn solve(
        &self,
        lm: &LevenbergMarquardt,
        problems: &[&ExpertProblem],
    ) -> Result<Vec<LmSolution>, GpuError> {
        self.solve_kept(lm, problems)
            .map(|(solutions, _)| solutions)
    }

    /// [`GpuLm::solve`], with the batch left on the device for its backward
    /// pass ([`GpuLm::differentiate_solved`]).
    ///
    /// Why: a training step differentiates exactly the problems it solved,
    /// and at the paper's diffusion–sorption scale (batch 6, 4 experts of
    /// 20 000 points, N = 16) their term rows are about 180 MB; packing and
    /// uploading them a second time for the backward pass would cost more
    /// than the pass itself. The kept batch holds that device memory until
    /// it is dropped.
    ///
    /// Errors: as [`GpuLm::solve`].
    pub fn solve_kept(
        &self,
        lm: &LevenbergMarquardt,
        problems: &[&ExpertProblem],
    ) -> Result<(Vec<LmSolution>, SolvedBatch), GpuError> {
        let watch = Stopwatch::start();
        let batch = Batch::pack(lm, problems)?;
        self.solve_packed(lm, batch, None, watch)
    }

    /// [`GpuLm::solve_kept`] of problems whose term rows `gather` builds on
    /// the device from its fields, at its points, from the residual's terms
    /// at every grid point that `tiles` hold: `problems` are the gather's
    /// samples' problems in order (sample, then expert), and the gather's
    /// points are one sample's experts' points in the batch's order
    /// (expert, then point).
    ///
    /// Errors: as [`GpuLm::solve`], and a gather whose points do not match
    /// the problems' or whose grid is not the tiles'.
    pub fn solve_kept_gathered(
        &self,
        lm: &LevenbergMarquardt,
        problems: &[&GatheredProblem],
        tiles: &DeviceTiles,
        gather: &RowGather<'_>,
    ) -> Result<(Vec<LmSolution>, SolvedBatch), GpuError> {
        let watch = Stopwatch::start();
        let batch = Batch::pack(lm, problems)?;
        self.solve_packed(lm, batch, Some((tiles, gather)), watch)
    }

    /// `batch`'s term rows on the device: copied up, or built there by
    /// `gather` from `tiles`' terms (the gather must name exactly the
    /// batch's points, across its samples), with the fields they were
    /// built from.
    fn term_rows(
        &self,
        batch: &Batch,
        gather: Option<(&DeviceTiles, &RowGather<'_>)>,
    ) -> Result<(CudaSlice<f64>, Option<KeptFields>), GpuError> {
        let Some((tiles, g)) = gather else {
            return Ok((upload(&self.stream, &batch.term_rows)?, None));
        };
        let (n, d) = (self.shape.n_basis, self.shape.n_terms);
        let points = g.points().len();
        if batch.total_points() != g.samples() * points
            || g.n_basis() != n
            || tiles.n_terms() != d
            || tiles.n_grid() != g.n_grid()
        {
            return Err(GpuError::Unsupported(format!(
                "a gather of {} samples × {points} points on {} grid points with N = {} for \
                 {} points × {d} terms with N = {n}, from tiles of {} grid points × {} terms",
                g.samples(),
                g.n_grid(),
                g.n_basis(),
                batch.total_points(),
                tiles.n_grid(),
                tiles.n_terms()
            )));
        }
        let on_device = upload(&self.stream, &g.device_points())?;
        let fields = upload(&self.stream, g.fields())?;
        let at = AtPoints {
            points: &on_device,
            count: points,
            terms: d,
        };
        let term_rows = tiles.terms().gather(
            &self.stream,
            &self.gather,
            n,
            g.samples(),
            Some(at),
            &fields,
        )?;
        let kept = KeptFields {
            values: fields,
            samples: g.samples(),
            n_grid: g.n_grid(),
        };
        Ok((term_rows, Some(kept)))
    }

    /// Uploads `batch` (its term rows copied or gathered), solves it and
    /// keeps it on the device; `watch` started before the packing.
    fn solve_packed(
        &self,
        lm: &LevenbergMarquardt,
        batch: Batch,
        gather: Option<(&DeviceTiles, &RowGather<'_>)>,
        mut watch: Stopwatch,
    ) -> Result<(Vec<LmSolution>, SolvedBatch), GpuError> {
        if batch.shape != self.shape {
            return Err(GpuError::Unsupported(format!(
                "problems of shape {:?} for a kernel compiled for {:?}",
                batch.shape, self.shape
            )));
        }
        let pack_s = watch.lap();
        let (rows, fields) = self.term_rows(&batch, gather)?;
        let mut on = Uploaded::new(&self.stream, &batch, rows)?;
        let mut status = on.zeros(batch.len() * STATUS_LEN)?;
        self.synchronize()?;
        let upload_s = watch.lap();
        let settings = Settings {
            rtol: lm.rtol(),
            atol: lm.atol(),
            tau: lm.initial_damping(),
            max_iterations: i32::try_from(lm.max_iterations()).unwrap_or(i32::MAX),
        };
        self.lm_step(&mut on, &settings, true, &mut status)?;
        let rounds = self.rounds(&mut on, &settings, &mut status)?;
        let kernel_s = watch.lap();
        let omega = on.download(&on.omega, batch.omega.len())?;
        let status = on.download(&status, batch.len() * STATUS_LEN)?;
        let download_s = watch.lap();
        self.record(
            |t| &mut t.solve,
            GpuTimes {
                calls: 1,
                pack_s,
                upload_s,
                kernel_s,
                download_s,
                rounds,
            },
        );
        let solutions = kernel::solutions(&omega, &status, self.shape.n_basis)?;
        let kept = SolvedBatch {
            shape: batch.shape,
            point_start: batch.point_start,
            linear_start: batch.linear_start,
            omega,
            fields,
            on: Mutex::new(on),
        };
        Ok((solutions, kept))
    }

    /// The backward pass of every job at once (as the CPU's
    /// [`crate::Sensitivity::row_gradient`]): problem `k` at its solution
    /// `omegas[k]` with upstream gradient `omega_bars[k]`, the Hessian by
    /// `mode`.
    ///
    /// Errors: the outer result as [`GpuLm::solve`]'s (and lengths that do not
    /// match); the inner one per problem, as the CPU's: non-finite data, ω*,
    /// ω̄ or Hessian ([`ConstraintError::NonFinite`]), or a λ that is not
    /// finite ([`ConstraintError::Singular`]).
    pub fn differentiate(
        &self,
        mode: HessianMode,
        problems: &[&ExpertProblem],
        omegas: &[&[f64]],
        omega_bars: &[&[f64]],
    ) -> Result<Vec<Result<RowGradient, ConstraintError>>, GpuError> {
        let mut watch = Stopwatch::start();
        let mut batch = Batch::pack(&LevenbergMarquardt::default(), problems)?;
        let n = self.shape.n_basis;
        if batch.shape != self.shape
            || omegas.len() != problems.len()
            || omegas.iter().any(|v| v.len() != n)
        {
            return Err(GpuError::Unsupported(format!(
                "a backward batch of {} problems with {} ω* for a kernel of shape {:?}",
                problems.len(),
                omegas.len(),
                self.shape
            )));
        }
        batch.omega = omegas.concat();
        let pack_s = watch.lap();
        let rows = upload(&self.stream, &batch.term_rows)?;
        let mut on = Uploaded::new(&self.stream, &batch, rows)?;
        self.synchronize()?;
        let upload_s = watch.lap();
        self.record(
            |t| &mut t.backward,
            GpuTimes {
                pack_s,
                upload_s,
                ..GpuTimes::default()
            },
        );
        let at = Solutions {
            point_start: &batch.point_start,
            linear_start: &batch.linear_start,
            omega: &batch.omega,
        };
        self.backward_on(mode, &mut on, &at, omega_bars)
    }

    /// [`GpuLm::differentiate`] of the batch `solved` kept on the device, at
    /// its solutions: only the upstream gradients `omega_bars` (one per
    /// problem, in the order they were solved) are uploaded.
    ///
    /// Errors: as [`GpuLm::differentiate`]; a batch solved by a kernel of
    /// another shape, or not one `ω̄` per problem, is refused.
    pub fn differentiate_solved(
        &self,
        mode: HessianMode,
        solved: &SolvedBatch,
        omega_bars: &[&[f64]],
    ) -> Result<Vec<Result<RowGradient, ConstraintError>>, GpuError> {
        if solved.shape != self.shape {
            return Err(GpuError::Unsupported(format!(
                "a batch solved for shape {:?} differentiated by a kernel of shape {:?}",
                solved.shape, self.shape
            )));
        }
        let (mut on, at) = solved.lock();
        self.backward_on(mode, &mut on, &at, omega_bars)
    }

    /// Launches the backward pass on the batch `on` (its weights are the
    /// solutions `at.omega`) and reads back one row gradient per problem.
    fn backward_on(
        &self,
        mode: HessianMode,
        on: &mut Uploaded,
        at: &Solutions<'_>,
        omega_bars: &[&[f64]],
    ) -> Result<Vec<Result<RowGradient, ConstraintError>>, GpuError> {
        let (n, d) = (self.shape.n_basis, self.shape.n_terms);
        let k = at.point_start.len() - 1;
        if omega_bars.len() != k || omega_bars.iter().any(|v| v.len() != n) {
            return Err(GpuError::Unsupported(format!(
                "{} ω̄ for a backward batch of {k} problems with N = {n}",
                omega_bars.len()
            )));
        }
        let mut watch = Stopwatch::start();
        let bars = omega_bars.concat();
        let bar = upload(&self.stream, &bars)?;
        let out = self.launch_backward(mode, on, at, &bar, &mut watch)?;
        let (p, r) = (at.point_start[k] as usize, at.linear_start[k] as usize);
        let lambda = on.download(&out.lambda, k * n)?;
        let state = on.download(&out.state, k)?;
        let term_omega = on.download(&out.term_omega, p * d)?;
        let term_lambda = on.download(&out.term_lambda, p * d)?;
        let linear_omega = on.download(&out.linear_omega, r)?;
        let linear_lambda = on.download(&out.linear_lambda, r)?;
        self.record_backward_download(watch);
        Ok((0..k)
            .map(|j| {
                let points = at.point_start[j] as usize * d..at.point_start[j + 1] as usize * d;
                let rows = at.linear_start[j] as usize..at.linear_start[j + 1] as usize;
                backward_state(state[j], &bars[j * n..(j + 1) * n])?;
                Ok(RowGradient {
                    omega: at.omega[j * n..(j + 1) * n].to_vec(),
                    lambda: lambda[j * n..(j + 1) * n].to_vec(),
                    term_omega: term_omega[points.clone()].to_vec(),
                    term_lambda: term_lambda[points].to_vec(),
                    linear_omega: linear_omega[rows.clone()].to_vec(),
                    linear_lambda: linear_lambda[rows].to_vec(),
                })
            })
            .collect())
    }

    /// Runs the backward pass on the batch `on` at the solutions
    /// `at.omega` for the upstream gradients `bar` (`[K, N]`, on the
    /// device) and waits for it; its outputs stay on the device. `watch`
    /// started with the call: the copies and the kernel are recorded.
    pub(super) fn launch_backward(
        &self,
        mode: HessianMode,
        on: &mut Uploaded,
        at: &Solutions<'_>,
        bar: &CudaSlice<f64>,
        watch: &mut Stopwatch,
    ) -> Result<BackwardOutputs, GpuError> {
        let (n, d) = (self.shape.n_basis, self.shape.n_terms);
        let k = at.point_start.len() - 1;
        let (p, r) = (at.point_start[k] as usize, at.linear_start[k] as usize);
        // `tessera_ift_step`'s start: 1 with the exact Hessian, 2 Gauss–Newton.
        let start = if mode == HessianMode::Exact { 1 } else { 2 };
        let mut out = BackwardOutputs {
            lambda: on.zeros(k * n)?,
            state: on.zeros(k)?,
            term_omega: on.zeros(p * d)?,
            term_lambda: on.zeros(p * d)?,
            linear_omega: on.zeros(r)?,
            linear_lambda: on.zeros(r)?,
        };
        self.synchronize()?;
        let upload_s = watch.lap();
        // Two rounds: the evaluation at ω*, then the exact Hessian's term
        // (a round of no-ops with the Gauss–Newton Hessian).
        const ROUNDS: usize = 2;
        self.ift_step(on, start, bar, &mut out)?;
        for _ in 0..ROUNDS {
            self.accumulate(on)?;
            self.ift_step(on, 0, bar, &mut out)?;
        }
        self.ift_rows(on, &mut out)?;
        self.synchronize()?;
        let kernel_s = watch.lap();
        self.record(
            |t| &mut t.backward,
            GpuTimes {
                upload_s,
                kernel_s,
                rounds: ROUNDS,
                ..GpuTimes::default()
            },
        );
        Ok(out)
    }

    /// Ends a backward call's times: one call, whose copies back took the
    /// time since `watch`'s last lap.
    pub(super) fn record_backward_download(&self, mut watch: Stopwatch) {
        self.record(
            |t| &mut t.backward,
            GpuTimes {
                calls: 1,
                download_s: watch.lap(),
                ..GpuTimes::default()
            },
        );
    }
}

/// What the backward pass leaves on the device: `λ` `[K, N]`, each
/// problem's state `[K]`, and the coefficients of `ω*` and `λ` in the term
/// rows' (`[P, d]`) and the linear rows' (`[R]`) gradients.
pub(super) struct BackwardOutputs {
    pub(super) lambda: CudaSlice<f64>,
    pub(super) state: CudaSlice<f64>,
    pub(super) term_omega: CudaSlice<f64>,
    pub(super) term_lambda: CudaSlice<f64>,
    pub(super) linear_omega: CudaSlice<f64>,
    pub(super) linear_lambda: CudaSlice<f64>,
}

/// A problem's outcome from the backward pass's `result` and its upstream
/// gradient `bar`, as the CPU reports it: `Ok` when done, else non-finite
/// data, ω* or ω̄ ([`ConstraintError::NonFinite`]), or a λ that is not
/// finite although ω̄ is ([`ConstraintError::Singular`]).
pub(super) fn backward_state(state: f64, bar: &[f64]) -> Result<(), ConstraintError> {
    let bar_finite = bar.iter().all(|x| x.is_finite());
    match state {
        0.0 if bar_finite => Ok(()),
        2.0 if bar_finite => Err(ConstraintError::Singular {
            what: "IFT Hessian",
        }),
        _ => Err(ConstraintError::NonFinite {
            what: "expert problem, ω* or ω̄ for the backward pass",
        }),
    }
}

/// Where a batch's problems start and the weights they are differentiated at.
pub(super) struct Solutions<'a> {
    pub(super) point_start: &'a [i64],
    pub(super) linear_start: &'a [i64],
    /// `[K, N]`, as on the device.
    pub(super) omega: &'a [f64],
}

/// A batch solved by [`GpuLm::solve_kept`], left on the device: its problems
/// as uploaded and its solutions in place, for [`GpuLm::differentiate_solved`].
pub struct SolvedBatch {
    pub(super) shape: KernelShape,
    pub(super) point_start: Vec<i64>,
    pub(super) linear_start: Vec<i64>,
    /// The solutions `[K, N]`, as read back after the solve.
    pub(super) omega: Vec<f64>,
    /// The fields the term rows were gathered from, when they were.
    pub(super) fields: Option<KeptFields>,
    /// Behind a lock: a backward pass writes the batch's scratch.
    pub(super) on: Mutex<Uploaded>,
}

/// The fields `[samples, grid points, N]` a batch's term rows were gathered
/// from, kept on the device with it: what the passes over the whole grid
/// (`tiles.cu`) read.
pub(super) struct KeptFields {
    pub(super) values: CudaSlice<f64>,
    pub(super) samples: usize,
    pub(super) n_grid: usize,
}

impl SolvedBatch {
    /// The batch as the solve left it on the device, and its solutions:
    /// locked, since a backward pass writes the batch's scratch (which it
    /// rewrites before reading, so a poisoned lock leaves nothing stale).
    pub(super) fn lock(&self) -> (MutexGuard<'_, Uploaded>, Solutions<'_>) {
        let on = self.on.lock().unwrap_or_else(PoisonError::into_inner);
        let at = Solutions {
            point_start: &self.point_start,
            linear_start: &self.linear_start,
            omega: &self.omega,
        };
        (on, at)
    }

    /// Whether the batch's term rows were gathered on the device from
    /// fields it kept ([`GpuLm::solve_kept_gathered`]): the batches
    /// [`GpuLm::assemble`] and [`GpuLm::pull_back`] take.
    pub fn kept_fields(&self) -> bool {
        self.fields.is_some()
    }

    /// Number of problems.
    pub fn len(&self) -> usize {
        self.point_start.len() - 1
    }

    /// Whether the batch holds no problem (never: an empty batch is not solved).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for SolvedBatch {
    fn drop(&mut self) {
        let on = self.on.get_mut().unwrap_or_else(PoisonError::into_inner);
        bind_for_drop(&on.stream);
    }
}

impl std::fmt::Debug for SolvedBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SolvedBatch")
            .field("shape", &self.shape)
            .field("problems", &self.len())
            .field("kept_fields", &self.kept_fields())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grid of more blocks than CUDA takes is an error, not a launch of
    /// the count's low 32 bits.
    #[test]
    fn a_launch_of_more_blocks_than_cuda_takes_is_refused() {
        let most = launch_config(MAX_GRID_BLOCKS).unwrap();
        assert_eq!(most.grid_dim, (u32::MAX >> 1, 1, 1));
        assert_eq!(most.block_dim, (THREADS as u32, 1, 1));
        for blocks in [MAX_GRID_BLOCKS + 1, 1 << 32, (1 << 32) + 5] {
            let err = launch_config(blocks).unwrap_err();
            assert!(
                matches!(&err, GpuError::Unsupported(why) if why.contains(&blocks.to_string())),
                "{err}"
            );
        }
    }
}
