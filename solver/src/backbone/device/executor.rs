//! Where the backbone's kernels run: the [`Executor`] trait, which a GPU
//! implements ([`super::CudaExecutor`]) and which the tests implement on the
//! host (the kernels compiled with `tessera_constraints::gpu::HOST_SHIM`), so
//! that everything above a kernel launch is checked on machines without a GPU.

use tessera_constraints::gpu::GpuError;

/// The CUDA C++ source of every backbone kernel, in the precision the macro
/// `TESSERA_REAL` names (double unless defined; see [`Precision::source`]).
pub const SOURCE: &str = include_str!("kernels.cu");

/// The precision of a device network's arrays and arithmetic: float64 (the
/// paper's setting, the default) or float32, for a backbone with
/// `model.dtype = "f32"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Precision {
    /// `double`.
    F64,
    /// `float`.
    F32,
}

impl Precision {
    /// Bytes per element.
    pub fn bytes(self) -> u64 {
        match self {
            Precision::F64 => 8,
            Precision::F32 => 4,
        }
    }

    /// The C type of an element.
    pub fn c_type(self) -> &'static str {
        match self {
            Precision::F64 => "double",
            Precision::F32 => "float",
        }
    }

    /// [`SOURCE`] compiled in this precision.
    pub fn source(self) -> String {
        format!("#define TESSERA_REAL {}\n{SOURCE}", self.c_type())
    }
}

/// The kernels of [`SOURCE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// `tessera_gemm`: strided, batched, split-K `C = αAB + βC`.
    Gemm,
    /// `tessera_gemm_reduce`: the split-K slices added in order.
    GemmReduce,
    /// `tessera_gelu`: `out = gelu(z)`.
    Gelu,
    /// `tessera_gelu_backward`: `g *= gelu'(z)`.
    GeluBackward,
    /// `tessera_fill_rows`: every row of an array set to a bias.
    FillRows,
    /// `tessera_column_sums`: the sum over rows of an array.
    ColumnSums,
    /// `tessera_adam`: one Adam update of parameters and moments in place.
    Adam,
    /// `tessera_squares`: blocks' partial sums of squares.
    Squares,
}

impl Kernel {
    /// Every kernel, in declaration order (so `ALL[k as usize] == k`).
    pub const ALL: [Kernel; 8] = [
        Kernel::Gemm,
        Kernel::GemmReduce,
        Kernel::Gelu,
        Kernel::GeluBackward,
        Kernel::FillRows,
        Kernel::ColumnSums,
        Kernel::Adam,
        Kernel::Squares,
    ];

    /// The kernel's entry point in [`SOURCE`].
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Gemm => "tessera_gemm",
            Kernel::GemmReduce => "tessera_gemm_reduce",
            Kernel::Gelu => "tessera_gelu",
            Kernel::GeluBackward => "tessera_gelu_backward",
            Kernel::FillRows => "tessera_fill_rows",
            Kernel::ColumnSums => "tessera_column_sums",
            Kernel::Adam => "tessera_adam",
            Kernel::Squares => "tessera_squares",
        }
    }

    /// Threads per block: every kernel is written for 256 (the product's
    /// 16 × 16 layout of 4 × 4 register tiles, the reductions' shared arrays).
    pub fn threads(self) -> u32 {
        256
    }
}

/// One kernel argument, passed by value as the driver passes it: a device
/// address (a pointer parameter), a `long long` or a `real` (a `double` or a
/// `float`: the executor passes it in its [`Precision`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arg {
    /// A device address.
    Ptr(u64),
    /// A `long long`.
    Int(i64),
    /// A `real`, in the executor's precision.
    Real(f64),
}

/// A device array of `real`s.
pub trait DeviceArray {
    /// Number of elements.
    fn len(&self) -> usize;

    /// Whether the array has no elements.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Memory and kernel launches on one device, in one stream and one
/// [`Precision`]: launches run in order, and a download waits for every
/// launch before it. The host side speaks `f64`; arrays on the device hold
/// the executor's precision (a float32 executor rounds on upload).
pub trait Executor {
    /// An array on the device.
    type Buffer: DeviceArray;

    /// The precision of the arrays and of the kernels.
    fn precision(&self) -> Precision;

    /// A zeroed array of `len` elements.
    fn zeros(&self, len: usize) -> Result<Self::Buffer, GpuError>;

    /// A copy of `data` on the device, in the executor's precision.
    fn upload(&self, data: &[f64]) -> Result<Self::Buffer, GpuError>;

    /// A copy of `buffer` on the device.
    fn copy(&self, buffer: &Self::Buffer) -> Result<Self::Buffer, GpuError>;

    /// A copy of `buffer` on the host, after every queued launch.
    fn download(&self, buffer: &Self::Buffer) -> Result<Vec<f64>, GpuError>;

    /// Waits for every queued copy and launch (so that a report can tell
    /// the kernels' time from the copies').
    fn synchronize(&self) -> Result<(), GpuError>;

    /// The device address of `buffer`'s first element.
    fn address(&self, buffer: &Self::Buffer) -> u64;

    /// Queues `kernel` on `blocks` blocks of [`Kernel::threads`] threads.
    ///
    /// # Safety
    /// `args` must match the kernel's parameters in number, order and type,
    /// and every address with the sizes passed must stay inside live buffers
    /// of this executor (the callers in the `ops` module beside this one check their views).
    unsafe fn launch(&self, kernel: Kernel, blocks: u32, args: &[Arg]) -> Result<(), GpuError>;
}
