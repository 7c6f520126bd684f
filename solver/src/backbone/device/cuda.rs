//! The [`Executor`] of an NVIDIA GPU: the kernels compiled by NVRTC for the
//! device's architecture in one [`Precision`], arrays in its memory, launches
//! on its stream.

use std::sync::Arc;

use cudarc::driver::{CudaFunction, CudaSlice, CudaStream, DevicePtr, LaunchConfig, PushKernelArg};
use tessera_constraints::gpu::{Gpu, GpuError, bind_for_drop, staging};

use super::executor::{Arg, DeviceArray, Executor, Kernel, Precision};

/// An array in GPU memory (at least one element is allocated, so that an
/// empty array still has an address).
pub struct CudaBuffer {
    slice: Slice,
    len: usize,
}

/// The elements of a [`CudaBuffer`], in its executor's precision.
enum Slice {
    F64(CudaSlice<f64>),
    F32(CudaSlice<f32>),
}

impl std::fmt::Debug for CudaBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaBuffer")
            .field("len", &self.len)
            .finish()
    }
}

impl Drop for CudaBuffer {
    fn drop(&mut self) {
        bind_for_drop(match &self.slice {
            Slice::F64(s) => s.stream(),
            Slice::F32(s) => s.stream(),
        });
    }
}

impl DeviceArray for CudaBuffer {
    fn len(&self) -> usize {
        self.len
    }
}

/// The backbone's kernels loaded on one GPU (clones share them).
#[derive(Clone)]
pub struct CudaExecutor {
    precision: Precision,
    stream: Arc<CudaStream>,
    /// One function per [`Kernel::ALL`] entry.
    functions: Vec<CudaFunction>,
}

fn driver(what: &'static str) -> impl Fn(cudarc::driver::DriverError) -> GpuError {
    move |e| GpuError::from_driver(what, e)
}

impl CudaExecutor {
    /// Compiles the kernels in `precision` for `gpu` and loads them there.
    ///
    /// Errors: no NVRTC, an unsupported architecture, or a driver failure.
    pub fn new(gpu: &Gpu, precision: Precision) -> Result<Self, GpuError> {
        let module = gpu.compile_and_load(&precision.source(), "loading the backbone's kernels")?;
        let functions = Kernel::ALL
            .iter()
            .map(|k| {
                module
                    .load_function(k.name())
                    .map_err(driver("finding a backbone kernel"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            precision,
            stream: gpu.stream().clone(),
            functions,
        })
    }

    fn function(&self, kernel: Kernel) -> &CudaFunction {
        // `functions` follows `Kernel::ALL`, which lists the variants in order.
        &self.functions[kernel as usize]
    }
}

impl Executor for CudaExecutor {
    type Buffer = CudaBuffer;

    fn precision(&self) -> Precision {
        self.precision
    }

    fn zeros(&self, len: usize) -> Result<CudaBuffer, GpuError> {
        let n = len.max(1);
        let slice = match self.precision {
            Precision::F64 => self.stream.alloc_zeros::<f64>(n).map(Slice::F64),
            Precision::F32 => self.stream.alloc_zeros::<f32>(n).map(Slice::F32),
        }
        .map_err(driver("allocating device memory"))?;
        Ok(CudaBuffer { slice, len })
    }

    fn upload(&self, data: &[f64]) -> Result<CudaBuffer, GpuError> {
        let len = data.len();
        let data = if data.is_empty() { &[0.0][..] } else { data };
        let slice = match self.precision {
            Precision::F64 => Slice::F64(staging::upload(&self.stream, data)?),
            Precision::F32 => {
                let rounded: Vec<f32> = data.iter().map(|&v| v as f32).collect();
                Slice::F32(staging::upload(&self.stream, &rounded)?)
            }
        };
        Ok(CudaBuffer { slice, len })
    }

    fn copy(&self, buffer: &CudaBuffer) -> Result<CudaBuffer, GpuError> {
        let slice = match &buffer.slice {
            Slice::F64(s) => self.stream.clone_dtod(s).map(Slice::F64),
            Slice::F32(s) => self.stream.clone_dtod(s).map(Slice::F32),
        }
        .map_err(driver("copying on the device"))?;
        Ok(CudaBuffer {
            slice,
            len: buffer.len,
        })
    }

    fn download(&self, buffer: &CudaBuffer) -> Result<Vec<f64>, GpuError> {
        let len = buffer.len;
        match &buffer.slice {
            Slice::F64(s) => staging::download(&self.stream, &s.slice(..len)),
            Slice::F32(s) => staging::download(&self.stream, &s.slice(..len))
                .map(|v| v.into_iter().map(f64::from).collect()),
        }
    }

    fn synchronize(&self) -> Result<(), GpuError> {
        self.stream
            .synchronize()
            .map_err(driver("waiting for the device"))
    }

    fn address(&self, buffer: &CudaBuffer) -> u64 {
        match &buffer.slice {
            Slice::F64(s) => s.device_ptr(&self.stream).0,
            Slice::F32(s) => s.device_ptr(&self.stream).0,
        }
    }

    unsafe fn launch(&self, kernel: Kernel, blocks: u32, args: &[Arg]) -> Result<(), GpuError> {
        let function = self.function(kernel);
        // Reals in the kernels' precision, kept alive until the launch.
        let singles: Vec<f32> = args
            .iter()
            .map(|a| match a {
                Arg::Real(r) => *r as f32,
                _ => 0.0,
            })
            .collect();
        let mut launch = self.stream.launch_builder(function);
        for (arg, single) in args.iter().zip(&singles) {
            match arg {
                Arg::Ptr(p) => launch.arg(p),
                Arg::Int(i) => launch.arg(i),
                Arg::Real(r) if self.precision == Precision::F64 => launch.arg(r),
                Arg::Real(_) => launch.arg(single),
            };
        }
        let config = LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (kernel.threads(), 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the caller guarantees that `args` match the kernel's
        // parameters and stay inside live buffers (`Executor::launch`).
        unsafe { launch.launch(config) }
            .map(|_| ())
            .map_err(driver("launching a backbone kernel"))
    }
}
