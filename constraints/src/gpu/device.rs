//! The GPU and the batched solve on it.

use std::sync::Arc;

use cudarc::driver::{
    CudaContext, CudaFunction, CudaStream, DriverError, LaunchConfig, PushKernelArg,
};

use super::kernel::{self, Batch, KernelShape, STATUS_LEN, THREADS};
use super::{GpuError, nvrtc};
use crate::{ExpertProblem, LevenbergMarquardt, LmSolution};

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

fn driver(what: &'static str) -> impl Fn(DriverError) -> GpuError {
    move |e| GpuError::Driver {
        what,
        message: e.to_string(),
    }
}

impl Gpu {
    /// Whether the CUDA driver library can be loaded here (a GPU machine).
    pub fn driver_present() -> bool {
        // SAFETY: only probes for the library with `dlopen`; nothing is called.
        unsafe { cudarc::driver::sys::is_culib_present() }
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
        Ok(Self { context, stream })
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
}

/// The batched Levenberg–Marquardt solver of one residual, compiled and loaded
/// on one GPU.
pub struct GpuLm {
    stream: Arc<CudaStream>,
    function: CudaFunction,
    shape: KernelShape,
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
        let arch = match gpu.compute_capability()? {
            (9, _) => "compute_90",
            (8, _) => "compute_80",
            (major, minor) => {
                return Err(GpuError::Unsupported(format!(
                    "compute capability {major}.{minor} (the kernels are built for 8.x and 9.x)"
                )));
            }
        };
        let ptx = nvrtc::compile(&source, arch)?;
        let module = gpu
            .context
            .load_module(ptx)
            .map_err(driver("loading the kernel"))?;
        let function = module
            .load_function(kernel::LM_FUNCTION)
            .map_err(driver("finding the kernel"))?;
        Ok(Self {
            stream: gpu.stream.clone(),
            function,
            shape,
        })
    }

    /// Solves every problem at once, each with `lm`'s settings and initial
    /// guess, one thread block per problem; returns the solutions in order.
    ///
    /// Errors: problems that do not match the compiled shape, or a driver
    /// failure. Numerical trouble is each solution's status, as on the CPU.
    pub fn solve(
        &self,
        lm: &LevenbergMarquardt,
        problems: &[&ExpertProblem],
    ) -> Result<Vec<LmSolution>, GpuError> {
        let batch = Batch::pack(lm, problems)?;
        if batch.shape != self.shape {
            return Err(GpuError::Unsupported(format!(
                "problems of shape {:?} for a kernel compiled for {:?}",
                batch.shape, self.shape
            )));
        }
        let s = &self.stream;
        let up = |v: &[f64]| {
            // A zero-length array still needs a valid pointer.
            let v = if v.is_empty() { &[0.0][..] } else { v };
            s.clone_htod(v)
                .map_err(driver("copying a batch to the device"))
        };
        let starts = |v: &[i64]| {
            s.clone_htod(v)
                .map_err(driver("copying a batch to the device"))
        };
        let (point_start, linear_start) =
            (starts(&batch.point_start)?, starts(&batch.linear_start)?);
        let (rows, offsets, coords) = (
            up(&batch.term_rows)?,
            up(&batch.offsets)?,
            up(&batch.coordinates)?,
        );
        let (linear, rhs, ridge) = (
            up(&batch.linear)?,
            up(&batch.linear_rhs)?,
            up(&batch.ridge)?,
        );
        let mut omega = up(&batch.omega)?;
        let zeros = |len: usize| {
            s.alloc_zeros::<f64>(len.max(1))
                .map_err(driver("allocating the solver's scratch"))
        };
        let mut status = zeros(batch.len() * STATUS_LEN)?;
        let [values_len, linres_len, jac_len, mats_len] = batch.scratch_lengths();
        let (mut values, mut linres) = (zeros(values_len)?, zeros(linres_len)?);
        let (mut jac, mut mats) = (zeros(jac_len)?, zeros(mats_len)?);
        let (rtol, atol, tau) = (lm.rtol(), lm.atol(), lm.initial_damping());
        let max_iterations = i32::try_from(lm.max_iterations()).unwrap_or(i32::MAX);
        let config = LaunchConfig {
            grid_dim: (batch.len() as u32, 1, 1),
            block_dim: (THREADS as u32, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut launch = s.launch_builder(&self.function);
        launch
            .arg(&point_start)
            .arg(&linear_start)
            .arg(&rows)
            .arg(&offsets)
            .arg(&coords)
            .arg(&linear)
            .arg(&rhs)
            .arg(&ridge)
            .arg(&rtol)
            .arg(&atol)
            .arg(&tau)
            .arg(&max_iterations)
            .arg(&mut omega)
            .arg(&mut status)
            .arg(&mut values)
            .arg(&mut linres)
            .arg(&mut jac)
            .arg(&mut mats);
        // SAFETY: the arguments match `tessera_lm_solve`'s parameters in order
        // and type, every array has the length `lm.cu` documents for this
        // batch (`Batch::scratch_lengths`), and the grid has one block per
        // problem.
        unsafe { launch.launch(config) }.map_err(driver("launching the solver"))?;
        let omega = s.clone_dtoh(&omega).map_err(driver("copying ω* back"))?;
        let status = s
            .clone_dtoh(&status)
            .map_err(driver("copying the statuses back"))?;
        kernel::solutions(&omega, &status, self.shape.n_basis)
    }
}
