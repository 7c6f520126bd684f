//! `tessera devices`: what this build and this machine offer — the cargo
//! features built in, the CPU threads, the launcher's local rank, and with
//! the `cuda` feature the CUDA driver, the GPUs, NVRTC and NCCL — and, with
//! `--device`, a preflight check that the device runs Tessera.
//!
//! Why: a GPU job fails late and far from its cause when a library is
//! missing, a driver is older than the kernels' NVRTC, or a rank lands on the
//! wrong GPU. Under the job's launcher (`srun tessera devices --device cuda`)
//! every rank says which GPU it takes and whether the model's kernels
//! compile, load and agree with the CPU there, in seconds.
//!
//! The check builds a scenario's model on the device (which opens the GPU and
//! compiles and loads every kernel the model uses), predicts a few samples
//! there and on the CPU from the same initial weights, and compares the two:
//! the GPU must give the CPU's fields to [`AGREEMENT`]. A failure is the
//! command's error, so a job script can stop on it.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use serde::Serialize;
use tessera_scenarios::{Device, QUICKSTART, Scenario};
use tessera_solver::{Model, local_rank, sample_ics};

use crate::device::placement;
use crate::provenance::features;

/// The largest relative difference between the fields predicted on the
/// device and on the CPU that the check accepts (relative to the CPU
/// fields' largest magnitude): the tolerance the GPU tests hold twenty
/// training steps' losses to. Both run float64 from the same weights; the
/// solves stop at the same tolerances, so they differ by round-off unless a
/// kernel computes something else.
const AGREEMENT: f64 = 1e-8;

/// Initial conditions the check predicts.
const CHECK_SAMPLES: usize = 2;

/// Arguments of `tessera devices`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also check that this device runs Tessera (cpu, cuda or cuda:N): build
    /// a scenario's model there, predict with it and compare with the CPU;
    /// exit with an error if anything fails.
    #[arg(long, value_name = "DEVICE")]
    device: Option<Device>,
    /// The scenario whose model the check builds [default: the built-in
    /// quickstart].
    #[arg(long, requires = "device")]
    scenario: Option<PathBuf>,
    /// Scenario overrides `key=value` for the check, applied in order.
    #[arg(long = "set", value_name = "KEY=VALUE", requires = "device")]
    overrides: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// What `tessera devices` found.
#[derive(Debug, Serialize)]
struct Report {
    /// This tessera's version.
    version: &'static str,
    /// The optional cargo features built in.
    features: Vec<&'static str>,
    /// Threads the CPU work runs on.
    cpu_threads: usize,
    /// The launcher's local rank of this process, if it runs under one.
    local_rank: Option<usize>,
    /// The CUDA side (`null` in a build without the `cuda` feature).
    cuda: Option<cuda::Inventory>,
    /// The preflight check, with `--device`.
    check: Option<Check>,
}

/// The result of the preflight check.
#[derive(Debug, Serialize)]
struct Check {
    /// The device checked, as given.
    device: String,
    /// The scenario whose model was built.
    scenario: String,
    /// Where the experts' solves and the PDE loss run there (`gpu`, `cpu`,
    /// `none`).
    solves: &'static str,
    pde_loss: &'static str,
    /// Seconds to build the model on the device (on a GPU: opening it,
    /// compiling and loading the kernels).
    build_s: f64,
    /// Seconds of the prediction on the device.
    predict_s: f64,
    /// Samples predicted.
    samples: usize,
    /// Solves that converged, of all.
    converged: usize,
    solves_total: usize,
    /// Largest difference between the device's and the CPU's fields,
    /// relative to the CPU fields' largest magnitude.
    max_rel_diff: f64,
    /// The limit on it ([`AGREEMENT`]).
    limit: f64,
    /// On a GPU, how fast copies move between host and device there
    /// (`null` on the CPU).
    copies: Option<cuda::Copies>,
}

impl Args {
    /// Prints the report; with `--device`, fails when the check does.
    pub fn run(self) -> anyhow::Result<()> {
        let check = match self.device {
            None => None,
            Some(device) => Some(self.check(device)?),
        };
        let report = Report {
            version: env!("CARGO_PKG_VERSION"),
            features: features(),
            cpu_threads: rayon::current_num_threads(),
            local_rank: local_rank()?,
            cuda: cuda::inventory(),
            check,
        };
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print_text(&report);
        }
        if let Some(copies) = report.check.as_ref().and_then(|c| c.copies.as_ref())
            && !copies.exact()
        {
            bail!("copies through the page-locked staging buffers did not give back every bit");
        }
        // NaN (garbage, or fields of another shape) fails too.
        if let Some(check) = &report.check
            && (check.max_rel_diff.is_nan() || check.max_rel_diff > check.limit)
        {
            bail!(
                "on {}, the fields differ from the CPU's by {:.3e} (relative), above {:.0e}",
                check.device,
                check.max_rel_diff,
                check.limit
            );
        }
        Ok(())
    }

    /// Builds the scenario's model on `device` and on the CPU, predicts the
    /// same initial conditions with both, and compares.
    fn check(&self, device: Device) -> anyhow::Result<Check> {
        let mut scenario = match &self.scenario {
            Some(path) => Scenario::from_file(path)
                .with_context(|| format!("reading the scenario {}", path.display()))?,
            None => Scenario::from_str(QUICKSTART, "quickstart.toml")?,
        };
        scenario.set_all(&self.overrides)?;
        scenario.device = Device::Cpu;
        let on_cpu = Model::new(&scenario)?;
        scenario.device = device;
        let start = Instant::now();
        let model = Model::new(&scenario)
            .with_context(|| format!("building {}'s model on {device}", scenario.name))?;
        let build_s = start.elapsed().as_secs_f64();
        let ics = sample_ics(&scenario, CHECK_SAMPLES, scenario.seed)?;
        let start = Instant::now();
        let predicted = model
            .infer(&ics, 0)
            .with_context(|| format!("predicting on {device}"))?;
        let predict_s = start.elapsed().as_secs_f64();
        let expected = on_cpu.infer(&ics, 0)?;
        let (solves, pde_loss) = placement(&model);
        let copies = cuda::copies(device)?;
        Ok(Check {
            device: device.to_string(),
            scenario: scenario.name.clone(),
            solves,
            pde_loss,
            build_s,
            predict_s,
            samples: ics.len(),
            converged: predicted.statuses.iter().filter(|s| s.converged()).count(),
            solves_total: predicted.statuses.len(),
            max_rel_diff: relative_difference(&predicted.fields, &expected.fields),
            limit: AGREEMENT,
            copies,
        })
    }
}

/// `max |a − b| / max |b|` over all fields (NaN when any value is not
/// finite, or the fields' shapes differ).
fn relative_difference(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    let same_shape = a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.len() == y.len());
    let values = || a.iter().flatten().zip(b.iter().flatten());
    if !same_shape || values().any(|(x, y)| !x.is_finite() || !y.is_finite()) {
        return f64::NAN;
    }
    let diff = values().map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    let scale = b.iter().flatten().map(|y| y.abs()).fold(0.0, f64::max);
    if scale > 0.0 { diff / scale } else { diff }
}

/// The report as lines of text.
fn print_text(report: &Report) {
    let features = if report.features.is_empty() {
        "none".to_owned()
    } else {
        report.features.join(", ")
    };
    println!("tessera {} (features: {features})", report.version);
    println!("CPU: {} threads", report.cpu_threads);
    match report.local_rank {
        Some(rank) => println!("launcher: local rank {rank}"),
        None => println!("launcher: none (a single process)"),
    }
    match &report.cuda {
        Some(inventory) => inventory.print(),
        None => {
            println!("CUDA: not built in (cargo build --release --features cuda; README, \"GPUs\")")
        }
    }
    if let Some(c) = &report.check {
        println!(
            "check on {}: {}'s model built in {:.2} s (solves on {}, PDE loss on {}); \
             {} samples predicted in {:.3} s, {}/{} solves converged; fields within {:.2e} of \
             the CPU's (limit {:.0e})",
            c.device,
            c.scenario,
            c.build_s,
            c.solves,
            c.pde_loss,
            c.samples,
            c.predict_s,
            c.converged,
            c.solves_total,
            c.max_rel_diff,
            c.limit
        );
        if let Some(copies) = &c.copies {
            copies.print();
        }
    }
}

/// The CUDA side of the report: what the driver, NVRTC and NCCL say.
#[cfg(feature = "cuda")]
mod cuda {
    use serde::Serialize;
    use tessera_constraints::gpu::{
        Gpu, GpuError, architecture_for, driver_version, nvrtc, staging,
    };
    use tessera_scenarios::Device;

    /// A library's version (or a GPU's architecture), or why it cannot be
    /// used: `{"available": …}` or `{"unavailable": "why"}` in JSON.
    #[derive(Debug, Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Availability<T> {
        Available(T),
        Unavailable(String),
    }

    impl<T, E: std::fmt::Display> From<Result<T, E>> for Availability<T> {
        fn from(result: Result<T, E>) -> Self {
            match result {
                Ok(value) => Self::Available(value),
                Err(e) => Self::Unavailable(e.to_string()),
            }
        }
    }

    /// `major.minor` of a version pair.
    fn dotted((major, minor): (i32, i32)) -> String {
        format!("{major}.{minor}")
    }

    /// What this machine offers a CUDA build.
    #[derive(Debug, Serialize)]
    pub(super) struct Inventory {
        /// The CUDA version the driver supports, or why there is none.
        driver: Availability<String>,
        /// Every GPU the driver sees (`CUDA_VISIBLE_DEVICES` applies).
        gpus: Vec<GpuInfo>,
        /// The GPU `device = "cuda"` gives this process (its local rank's).
        this_process_gpu: Option<usize>,
        /// NVRTC's version, or why it cannot be loaded.
        nvrtc: Availability<String>,
        /// Whether NVRTC fuses multiply-adds (`"fused"`, the default) or
        /// not (`"separate"`, with `TESSERA_NVRTC_FMAD=0`), or why that
        /// variable cannot be read: so that a report says which kernels
        /// its figures came from.
        nvrtc_contraction: Availability<&'static str>,
        /// NCCL's version or why it cannot be loaded (`null` in a build
        /// without the `nccl` feature).
        nccl: Option<Availability<String>>,
    }

    /// One GPU.
    #[derive(Debug, Serialize)]
    struct GpuInfo {
        ordinal: usize,
        name: String,
        compute_capability: String,
        memory_mib: u64,
        /// The architecture the kernels are compiled for there, or why
        /// there is none.
        architecture: Availability<&'static str>,
    }

    /// The inventory of this machine.
    pub(super) fn inventory() -> Option<Inventory> {
        let gpus = Gpu::count()
            .map(|n| (0..n).map(gpu_info).collect::<Vec<_>>())
            .unwrap_or_default();
        let this_process_gpu = tessera_solver::gpu_ordinal(Device::Cuda(None))
            .ok()
            .flatten()
            .filter(|_| !gpus.is_empty());
        Some(Inventory {
            driver: driver_version().map(dotted).into(),
            gpus,
            this_process_gpu,
            nvrtc: nvrtc::version().map(dotted).into(),
            nvrtc_contraction: nvrtc::Contraction::of_process()
                .map(|c| match c {
                    nvrtc::Contraction::Fused => "fused",
                    nvrtc::Contraction::Separate => "separate",
                })
                .into(),
            nccl: nccl(),
        })
    }

    /// GPU number `ordinal`, or what went wrong reading it (in its name).
    fn gpu_info(ordinal: usize) -> GpuInfo {
        let read = || -> Result<GpuInfo, GpuError> {
            let gpu = Gpu::open(ordinal)?;
            let capability = gpu.compute_capability()?;
            Ok(GpuInfo {
                ordinal,
                name: gpu.name()?,
                compute_capability: format!("{}.{}", capability.0, capability.1),
                memory_mib: (gpu.total_memory()? / (1024 * 1024)) as u64,
                architecture: architecture_for(capability).into(),
            })
        };
        read().unwrap_or_else(|e| GpuInfo {
            ordinal,
            name: format!("(cannot be opened: {e})"),
            compute_capability: String::new(),
            memory_mib: 0,
            architecture: Availability::Unavailable(e.to_string()),
        })
    }

    /// Bytes of each copy whose rate the check measures: large enough for
    /// the bus's rate, not its latency, to decide.
    const COPY_BYTES: usize = 64 << 20;

    /// How fast copies move between host and GPU (GB/s), through the
    /// page-locked staging buffers and the driver's way.
    #[derive(Debug, Serialize)]
    pub(super) struct Copies {
        bytes: usize,
        up_staged_gb_s: f64,
        up_driver_gb_s: f64,
        down_staged_gb_s: f64,
        down_driver_gb_s: f64,
        /// Whether the staged copies gave back every bit (the check fails
        /// otherwise).
        exact: bool,
    }

    impl Copies {
        pub(super) fn exact(&self) -> bool {
            self.exact
        }

        pub(super) fn print(&self) {
            println!(
                "copies of {} MiB: up {:.1} GB/s staged, {:.1} the driver's way; \
                 down {:.1} staged, {:.1} the driver's way{}",
                self.bytes >> 20,
                self.up_staged_gb_s,
                self.up_driver_gb_s,
                self.down_staged_gb_s,
                self.down_driver_gb_s,
                if self.exact { "" } else { " (NOT bit-exact)" }
            );
        }
    }

    /// The copy rates of `device`'s GPU; `None` for the CPU.
    pub(super) fn copies(device: Device) -> anyhow::Result<Option<Copies>> {
        let Some(ordinal) = tessera_solver::gpu_ordinal(device)? else {
            return Ok(None);
        };
        let gpu = Gpu::open(ordinal)?;
        let rates = staging::measure(gpu.stream(), COPY_BYTES)?;
        Ok(Some(Copies {
            bytes: rates.bytes,
            up_staged_gb_s: rates.up_staged,
            up_driver_gb_s: rates.up_driver,
            down_staged_gb_s: rates.down_staged,
            down_driver_gb_s: rates.down_driver,
            exact: rates.exact,
        }))
    }

    #[cfg(feature = "nccl")]
    fn nccl() -> Option<Availability<String>> {
        let version = tessera_experts::comm::nccl_version()
            .map(|(major, minor, patch)| format!("{major}.{minor}.{patch}"));
        Some(version.into())
    }

    #[cfg(not(feature = "nccl"))]
    fn nccl() -> Option<Availability<String>> {
        None
    }

    impl Inventory {
        /// The inventory as lines of text.
        pub(super) fn print(&self) {
            let line = |what: &str, found: &Availability<String>| match found {
                Availability::Available(version) => println!("{what}: {version}"),
                Availability::Unavailable(reason) => println!("{what}: not available: {reason}"),
            };
            line("CUDA driver", &self.driver);
            for g in &self.gpus {
                let arch = match &g.architecture {
                    Availability::Available(arch) => format!("kernels for {arch}"),
                    Availability::Unavailable(reason) => format!("not usable: {reason}"),
                };
                println!(
                    "GPU {}: {}, compute capability {}, {} MiB, {arch}",
                    g.ordinal, g.name, g.compute_capability, g.memory_mib
                );
            }
            if let Some(ordinal) = self.this_process_gpu {
                println!("this process's GPU (device = \"cuda\"): {ordinal}");
            }
            line("NVRTC", &self.nvrtc);
            match &self.nvrtc_contraction {
                Availability::Available(how) => println!(
                    "NVRTC multiply-adds: {how} ({}=0 separates them, 1 fuses them)",
                    nvrtc::FMAD_VARIABLE
                ),
                Availability::Unavailable(reason) => println!("NVRTC multiply-adds: {reason}"),
            }
            match &self.nccl {
                Some(found) => line("NCCL", found),
                None => println!("NCCL: not built in (--features nccl)"),
            }
        }
    }
}

/// Without the `cuda` feature there is no CUDA side to report.
#[cfg(not(feature = "cuda"))]
mod cuda {
    /// Never built: the report's `cuda` is `null`.
    #[derive(Debug, serde::Serialize)]
    pub(super) enum Inventory {}

    impl Inventory {
        pub(super) fn print(&self) {
            match *self {}
        }
    }

    pub(super) fn inventory() -> Option<Inventory> {
        None
    }

    /// Never built: the check's `copies` is `null`.
    #[derive(Debug, serde::Serialize)]
    pub(super) enum Copies {}

    impl Copies {
        pub(super) fn exact(&self) -> bool {
            match *self {}
        }

        pub(super) fn print(&self) {
            match *self {}
        }
    }

    /// No GPU to measure in a build without `cuda` (a GPU device fails
    /// before the check gets here).
    pub(super) fn copies(_: tessera_scenarios::Device) -> anyhow::Result<Option<Copies>> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_difference_is_relative_to_the_largest_value_and_refuses_garbage() {
        let b = vec![vec![2.0, -4.0], vec![1.0]];
        let a = vec![vec![2.0, -4.0 + 1e-9], vec![1.0 - 2e-9]];
        let d = relative_difference(&a, &b);
        // The largest difference (2e-9, to the rounding of 1 − 2e-9) over
        // the largest magnitude (4).
        assert!((d - 2e-9 / 4.0).abs() < 1e-15, "{d}");
        assert_eq!(relative_difference(&b, &b), 0.0);
        assert!(relative_difference(&[vec![f64::NAN, 0.0], vec![1.0]], &b).is_nan());
        assert!(
            relative_difference(&[vec![2.0]], &b).is_nan(),
            "shapes differ"
        );
    }
}
