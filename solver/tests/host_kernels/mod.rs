//! The GPU backbone's kernels compiled for the host (through
//! `tessera_constraints::gpu::HOST_SHIM`) behind an [`Executor`] that runs
//! them on the CPU: what the GPU tests without a GPU run on.
#![allow(dead_code)]

use std::ffi::{CString, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tessera_constraints::gpu::{Gpu, GpuError, HOST_SHIM};
use tessera_solver::device::{Arg, DeviceArray, Executor, Kernel, Precision};

/// GPU 0, or `None` after saying that the test is skipped and why (no CUDA
/// driver); any other failure to open it fails the test.
pub fn gpu_or_skip() -> Option<Gpu> {
    let gpu = Gpu::open_if_present(0).expect("a GPU machine opens its GPU");
    if gpu.is_none() {
        println!("skipped: {}", GpuError::NoDriver);
    }
    gpu
}

/// The kernels as a shared library loaded into the test process.
pub struct Library(*mut c_void);

// SAFETY: the handle is only passed to `dlsym`, which is thread-safe.
unsafe impl Send for Library {}
unsafe impl Sync for Library {}

type HostLaunch = unsafe extern "C" fn(u32, u32, *mut *mut c_void);

/// Compiles the kernels in `precision` with the shim and one
/// `host_<kernel>(blocks, threads, params)` entry per kernel, once per test
/// binary and precision.
pub fn library(precision: Precision) -> &'static Library {
    static LIBRARIES: [OnceLock<Library>; 2] = [OnceLock::new(), OnceLock::new()];
    LIBRARIES[precision as usize].get_or_init(|| {
        let mut program = format!("{HOST_SHIM}\n{}\n", precision.source());
        for k in Kernel::ALL {
            let name = k.name();
            program.push_str(&format!(
                "extern \"C\" void host_{name}(unsigned b, unsigned t, void** p) \
                 {{ tessera_launch_params(b, t, {name}, p); }}\n"
            ));
        }
        static BUILDS: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tessera-gpu-backbone-{}-{}",
            std::process::id(),
            BUILDS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (src, lib) = (dir.join("kernels.cpp"), dir.join("libkernels.so"));
        std::fs::write(&src, program).unwrap();
        let target = "x86_64-unknown-linux-gnu";
        let out = cc::Build::new()
            .cpp(true)
            .target(target)
            .host(target)
            .opt_level(2)
            .cargo_metadata(false)
            .get_compiler()
            .to_command()
            .args(["-std=c++17", "-shared", "-fPIC", "-fno-strict-aliasing"])
            .arg(&src)
            .arg("-o")
            .arg(&lib)
            .output()
            .expect("a C++ compiler runs");
        assert!(
            out.status.success(),
            "the kernels do not compile for the host:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = CString::new(lib.to_str().unwrap()).unwrap();
        // SAFETY: loads the library just built; its constructors are the C++
        // runtime's.
        let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        assert!(!handle.is_null(), "dlopen of the host kernels");
        Library(handle)
    })
}

/// An array in host memory that kernels write through its address, in its
/// executor's precision (owned through a raw pointer: the kernels write it
/// while Rust holds only shared references).
#[derive(Debug)]
pub struct HostBuffer {
    ptr: *mut c_void,
    len: usize,
    precision: Precision,
}

impl HostBuffer {
    fn new(data: &[f64], precision: Precision) -> Self {
        let ptr = match precision {
            Precision::F64 => Box::into_raw(Box::<[f64]>::from(data)) as *mut c_void,
            Precision::F32 => {
                let single: Box<[f32]> = data.iter().map(|&v| v as f32).collect();
                Box::into_raw(single) as *mut c_void
            }
        };
        Self {
            ptr,
            len: data.len(),
            precision,
        }
    }

    fn to_vec(&self) -> Vec<f64> {
        // SAFETY: `ptr` holds `len` initialised elements of the precision
        // until drop.
        unsafe {
            match self.precision {
                Precision::F64 => {
                    std::slice::from_raw_parts(self.ptr as *const f64, self.len).to_vec()
                }
                Precision::F32 => std::slice::from_raw_parts(self.ptr as *const f32, self.len)
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect(),
            }
        }
    }
}

// SAFETY: the buffer owns its memory; the executor serialises the launches
// that write it.
unsafe impl Send for HostBuffer {}
unsafe impl Sync for HostBuffer {}

impl Drop for HostBuffer {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `Box::into_raw` of a slice of `len` elements
        // of the precision.
        unsafe {
            match self.precision {
                Precision::F64 => drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                    self.ptr as *mut f64,
                    self.len,
                ))),
                Precision::F32 => drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                    self.ptr as *mut f32,
                    self.len,
                ))),
            }
        }
    }
}

impl DeviceArray for HostBuffer {
    fn len(&self) -> usize {
        self.len
    }
}

/// The kernels run on the host, one launch at a time (the shim's blocks
/// share its statics).
#[derive(Clone)]
pub struct HostExecutor {
    precision: Precision,
    /// Kernel launches so far.
    pub launches: Arc<AtomicUsize>,
    /// Launches so far of each kernel, in [`Kernel::ALL`] order.
    per_kernel: Arc<Vec<AtomicUsize>>,
    /// The length of every upload so far.
    uploads: Arc<Mutex<Vec<usize>>>,
}

impl HostExecutor {
    pub fn new() -> Self {
        Self::with(Precision::F64)
    }

    pub fn with(precision: Precision) -> Self {
        Self {
            precision,
            launches: Arc::new(AtomicUsize::new(0)),
            per_kernel: Arc::new(Kernel::ALL.iter().map(|_| AtomicUsize::new(0)).collect()),
            uploads: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Uploads so far of exactly `len` values (by this executor and its
    /// clones).
    pub fn uploads_of(&self, len: usize) -> usize {
        self.uploads
            .lock()
            .unwrap()
            .iter()
            .filter(|&&n| n == len)
            .count()
    }

    /// Launches of `kernel` so far (by this executor and its clones).
    pub fn launched(&self, kernel: Kernel) -> usize {
        self.per_kernel[kernel as usize].load(Ordering::Relaxed)
    }
}

static LAUNCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Executor for HostExecutor {
    type Buffer = HostBuffer;

    fn precision(&self) -> Precision {
        self.precision
    }

    fn zeros(&self, len: usize) -> Result<HostBuffer, GpuError> {
        Ok(HostBuffer::new(&vec![0.0; len], self.precision))
    }

    fn upload(&self, data: &[f64]) -> Result<HostBuffer, GpuError> {
        self.uploads.lock().unwrap().push(data.len());
        Ok(HostBuffer::new(data, self.precision))
    }

    fn copy(&self, buffer: &HostBuffer) -> Result<HostBuffer, GpuError> {
        Ok(HostBuffer::new(&buffer.to_vec(), self.precision))
    }

    fn download(&self, buffer: &HostBuffer) -> Result<Vec<f64>, GpuError> {
        Ok(buffer.to_vec())
    }

    fn synchronize(&self) -> Result<(), GpuError> {
        Ok(())
    }

    fn address(&self, buffer: &HostBuffer) -> u64 {
        buffer.ptr as u64
    }

    unsafe fn launch(&self, kernel: Kernel, blocks: u32, args: &[Arg]) -> Result<(), GpuError> {
        let name = CString::new(format!("host_{}", kernel.name())).unwrap();
        // SAFETY: looks up a symbol of the library built above.
        let symbol = unsafe { libc::dlsym(library(self.precision).0, name.as_ptr()) };
        assert!(!symbol.is_null(), "{} in the host library", kernel.name());
        // SAFETY: every `host_*` entry has this signature.
        let launch: HostLaunch = unsafe { std::mem::transmute(symbol) };
        // Each value in its own 8 bytes, which the kernel reads from the start
        // (a float in the low half: little-endian).
        let mut values: Vec<u64> = args
            .iter()
            .map(|a| match (*a, self.precision) {
                (Arg::Ptr(p), _) => p,
                (Arg::Int(i), _) => i as u64,
                (Arg::Real(r), Precision::F64) => r.to_bits(),
                (Arg::Real(r), Precision::F32) => u64::from((r as f32).to_bits()),
            })
            .collect();
        let mut params: Vec<*mut c_void> = values
            .iter_mut()
            .map(|v| v as *mut u64 as *mut c_void)
            .collect();
        let _one_at_a_time = LAUNCH.lock().unwrap_or_else(|e| e.into_inner());
        self.launches.fetch_add(1, Ordering::Relaxed);
        self.per_kernel[kernel as usize].fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract (`Executor::launch`): the arguments
        // match the kernel's parameters and stay inside live buffers.
        unsafe { launch(blocks, kernel.threads(), params.as_mut_ptr()) };
        Ok(())
    }
}
