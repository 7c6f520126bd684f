//! `--device`: where the model or the constraint layer's solves run.
//!
//! `cpu` (the default) runs on the CPU's threads; `cuda` or `cuda:N` runs on
//! GPU `N`. For a scenario's model ([`DeviceArg`]) the library decides what
//! runs there (the README's "GPUs"). For a constraint layer alone
//! ([`attach`]) every expert problem of a batch is solved at once with the
//! batched Levenberg–Marquardt and backward kernels, compiled at run time for
//! the PDE's definition (its emitted CUDA residual), so the GPU needs a PDE
//! defined in TOML. A binary built without the `cuda` feature says so instead
//! of running.

use tessera_constraints::{Pde, residual_term_count};
use tessera_experts::ConstraintLayer;
use tessera_scenarios::config::Method;
use tessera_scenarios::custom::CustomPde;
use tessera_scenarios::{AnyPde, Scenario};

use crate::error::ToolError;

pub use tessera_scenarios::Device;

/// `--device` of the commands that build a scenario's model (`train`, `run`,
/// `eval`, `predict`, `gradcheck`, `bench train-step`).
#[derive(Debug, Clone, clap::Args)]
pub struct DeviceArg {
    /// Where the model runs: cpu, cuda or cuda:N (a build with the `cuda`
    /// feature); overrides the scenario's `device`.
    #[arg(long, value_name = "DEVICE")]
    device: Option<Device>,
}

impl DeviceArg {
    /// The device given, if one was.
    pub fn chosen(&self) -> Option<Device> {
        self.device
    }

    /// `scenario` on the chosen device, if one was given. On a GPU where part
    /// of the constraint's work stays on the host (`placement_note`), says
    /// so on stderr, so that nobody times a step believing otherwise.
    pub fn apply(&self, scenario: &mut Scenario) {
        if let Some(device) = self.device {
            scenario.device = device;
        }
        // A build without the feature refuses the GPU instead (the model says why).
        if let Some(note) = placement_note(scenario).filter(|_| cfg!(feature = "cuda")) {
            eprintln!("note: {note}");
        }
    }
}

/// What of a hard-constrained model does not run on the scenario's GPU, if
/// anything: the experts' solves of a configuration no TOML definition
/// restates (the solver kernels compile a definition's residual); or, where
/// a residual term is not a stencil (Navier–Stokes' velocity from the
/// vorticity), the term rows at the sampled points, built on the host's
/// cores and copied up, with the assembly of `u`, the pull-back and the PDE
/// loss, which read them there.
fn placement_note(scenario: &Scenario) -> Option<String> {
    if scenario.device == Device::Cpu || scenario.constraint.method == Method::Soft {
        return None;
    }
    let device = scenario.device;
    // A PDE or a grid that does not build is the model's error to report.
    let pde = AnyPde::from_config(&scenario.pde, scenario.constraint.fd).ok()?;
    let definition = match pde.definition() {
        Ok(definition) => definition,
        Err(reason) => {
            return Some(format!(
                "on {device}, the backbone runs on the GPU; the experts' solves stay on the \
                 CPU, since {reason} (README, \"GPUs\")"
            ));
        }
    };
    let grid = scenario.grid().ok()?;
    let terms = definition.terms(&grid).ok()?;
    let n_residual = residual_term_count(definition.as_ref(), terms.len()).ok()?;
    let dense: Vec<&str> = terms[..n_residual]
        .iter()
        .filter(|t| !t.operator.is_local())
        .map(|t| t.name.as_str())
        .collect();
    (!dense.is_empty()).then(|| {
        format!(
            "on {device}, the experts' solves run on the GPU, but the terms {} are not stencils: \
             their rows at the sampled points are built on the host's cores and copied up, and \
             the assembly of u, the pull-back and the PDE loss stay there (README, \"GPUs\")",
            dense.join(", ")
        )
    })
}

/// Where `model`'s experts' solves run (`"gpu"`, `"cpu"`, or `"none"` for
/// the soft method) and where its PDE loss runs (`"gpu"` or `"cpu"`), for
/// reports: on a GPU either may stay on the CPU (README, "GPUs").
pub fn placement(model: &tessera_solver::Model) -> (&'static str, &'static str) {
    let solves = match model.constraint() {
        None => "none",
        Some(hard) if hard.layer().solves_on_gpu() => "gpu",
        Some(_) => "cpu",
    };
    let pde_loss = if model.pde_loss_on_gpu() {
        "gpu"
    } else {
        "cpu"
    };
    (solves, pde_loss)
}

/// How much of a GPU layer's work runs on the device ([`attach`]), so that
/// a benchmark can compare the paths on the same problems: the default (as
/// in training) builds the problems' term rows there from the basis where
/// every term is a stencil, and then assembles `u` and pulls the gradients
/// back there too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermRows {
    /// Term rows gathered on the device, `u` and the pull-back there.
    Gathered,
    /// Term rows gathered on the device, `u` and the pull-back on the host.
    GatheredPassesOnHost,
    /// Term rows built on the host (and `u` and the pull-back there).
    FromHost,
}

/// `layer` with its solves on `device`, for the PDE of `definition` with
/// `n_basis` basis functions, its term rows built as `rows` says.
///
/// Errors: a GPU without a definition to compile, a binary without the
/// `cuda` feature, no driver or no such GPU, a kernel that does not compile.
pub fn attach(
    device: Device,
    layer: ConstraintLayer<AnyPde>,
    definition: Option<&CustomPde>,
    n_basis: usize,
    rows: TermRows,
) -> Result<ConstraintLayer<AnyPde>, ToolError> {
    if device.is_cpu() {
        return Ok(layer);
    }
    let Some(definition) = definition else {
        return Err(ToolError::Device(format!(
            "--device {device} solves a PDE defined in TOML (its residual is compiled for the \
             GPU): pass --pde-file, e.g. scenarios/pdes/diffusion-sorption.toml"
        )));
    };
    on_gpu(layer, definition, device, n_basis, rows)
}

#[cfg(feature = "cuda")]
fn on_gpu(
    layer: ConstraintLayer<AnyPde>,
    definition: &CustomPde,
    device: Device,
    n_basis: usize,
    rows: TermRows,
) -> Result<ConstraintLayer<AnyPde>, ToolError> {
    use tessera_constraints::gpu::{Gpu, GpuLm};
    let ordinal = tessera_solver::gpu_ordinal(device)?.unwrap_or_default();
    let gpu = Gpu::open(ordinal)?;
    let solver = GpuLm::new(
        &gpu,
        &definition.emit_cuda(),
        definition.name(),
        definition.gpu_shape(n_basis),
    )?;
    let layer = layer.with_gpu(std::sync::Arc::new(solver));
    Ok(match rows {
        TermRows::Gathered => layer,
        TermRows::GatheredPassesOnHost => layer.with_grid_passes_on_host(),
        TermRows::FromHost => layer.with_term_rows_from_host(),
    })
}

#[cfg(not(feature = "cuda"))]
fn on_gpu(
    _layer: ConstraintLayer<AnyPde>,
    _definition: &CustomPde,
    device: Device,
    _n_basis: usize,
    _rows: TermRows,
) -> Result<ConstraintLayer<AnyPde>, ToolError> {
    Err(ToolError::Device(format!(
        "--device {device}: this tessera was built without the `cuda` feature \
         (cargo build --release --features cuda)"
    )))
}

/// Where a layer's GPU solves and backward passes spent their calls, per
/// call ([`tessera_constraints::gpu::GpuTimes`]).
#[derive(Debug, Clone, PartialEq)]
pub struct GpuSolveParts {
    /// Mean seconds of each part: `solve_pack`, `solve_upload`,
    /// `solve_kernel`, `solve_download`, then the same for `backward_`.
    pub seconds: std::collections::BTreeMap<String, f64>,
    /// Mean rounds of the solver's kernels (`solve`, `backward`): what the
    /// kernel seconds are spread over.
    pub rounds: std::collections::BTreeMap<String, f64>,
}

/// [`GpuSolveParts`] of `layer` since the last call, and starts counting
/// again; `None` when its solves run on the CPU.
pub fn gpu_solve_parts(layer: &ConstraintLayer<AnyPde>) -> Option<GpuSolveParts> {
    #[cfg(feature = "cuda")]
    {
        let times = layer.gpu_solver()?.take_times();
        let calls = [("solve", times.solve), ("backward", times.backward)];
        Some(GpuSolveParts {
            seconds: calls
                .iter()
                .flat_map(|(call, t)| {
                    t.means()
                        .map(|(part, seconds)| (format!("{call}_{part}"), seconds))
                })
                .collect(),
            rounds: calls
                .iter()
                .map(|(call, t)| (call.to_string(), t.rounds_per_call()))
                .collect(),
        })
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = layer;
        None
    }
}

/// Where `model`'s backbone on a GPU spent its passes and Adam updates
/// since the last call, each part's mean seconds per call by name
/// ([`tessera_solver::device::BackboneTimes::means`]), and starts counting
/// again; `None` when the backbone runs on the CPU.
pub fn gpu_backbone_parts(
    model: &tessera_solver::Model,
) -> Option<std::collections::BTreeMap<String, f64>> {
    #[cfg(feature = "cuda")]
    {
        let times = model.backbone_device()?.take_times();
        Some(
            times
                .means()
                .into_iter()
                .map(|(part, seconds)| (part.to_string(), seconds))
                .collect(),
        )
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = model;
        None
    }
}

/// This process's peak GPU memory over a stretch of work, for reports
/// (`bench train-step`): the driver's high-water mark of the arrays in use
/// ([`tessera_constraints::gpu::Gpu::memory_peak`]), from
/// [`MemoryPeak::start`] on.
pub struct MemoryPeak {
    #[cfg(feature = "cuda")]
    gpu: Option<tessera_constraints::gpu::Gpu>,
}

impl MemoryPeak {
    /// Starts measuring on `device`'s GPU (nothing to measure on the CPU).
    ///
    /// Errors: no driver or no such GPU, or the driver's.
    pub fn start(device: Device) -> Result<Self, ToolError> {
        #[cfg(feature = "cuda")]
        {
            let gpu = match tessera_solver::gpu_ordinal(device)? {
                None => None,
                Some(ordinal) => {
                    let gpu = tessera_constraints::gpu::Gpu::open(ordinal)?;
                    gpu.reset_memory_peak()?;
                    Some(gpu)
                }
            };
            Ok(Self { gpu })
        }
        #[cfg(not(feature = "cuda"))]
        {
            // Without the feature the model has refused a GPU already.
            let _ = device;
            Ok(Self {})
        }
    }

    /// The peak since [`MemoryPeak::start`], in MiB: `None` on the CPU, or
    /// on a GPU without memory pools.
    ///
    /// Errors: the driver's.
    pub fn mib(&self) -> Result<Option<f64>, ToolError> {
        #[cfg(feature = "cuda")]
        if let Some(gpu) = &self.gpu {
            return Ok(gpu.memory_peak()?.map(|b| b as f64 / (1024.0 * 1024.0)));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(file: &str) -> Scenario {
        let path = format!("{}/../../scenarios/{file}", env!("CARGO_MANIFEST_DIR"));
        Scenario::from_file(path).unwrap()
    }

    /// The note appears exactly for a GPU, a hard constraint and a residual
    /// term that is not a stencil: Navier–Stokes' velocity, with either
    /// derivative option (with spectral derivatives, its derivatives too).
    #[test]
    fn the_note_says_what_stays_on_the_cpu() {
        for (fd, dense) in [
            ("reference", "v_x, v_y"),
            ("second-order", "v_x, v_y, w_x, w_y, lap_w"),
        ] {
            let mut ns = scenario("navier-stokes-small.toml");
            ns.set(&format!("constraint.fd={fd}")).unwrap();
            assert_eq!(placement_note(&ns), None, "the CPU needs no note");
            ns.device = Device::Cuda(Some(1));
            let note = placement_note(&ns).unwrap();
            assert!(
                note.contains("cuda:1")
                    && note.contains("solves run on the GPU")
                    && note.contains(&format!("the terms {dense} are not stencils"))
                    && note.contains("built on the host's cores"),
                "{fd}: {note}"
            );
            ns.set("constraint.method=soft").unwrap();
            assert_eq!(placement_note(&ns), None, "soft has no solves");
        }
        // A definition's spectral derivatives (KdV's) are not stencils either.
        let mut kdv = scenario("kdv-small.toml");
        kdv.device = Device::Cuda(None);
        let note = placement_note(&kdv).unwrap();
        assert!(
            note.contains("the terms u_x, u_xxx are not stencils"),
            "{note}"
        );
        // Every other configuration's residual terms are stencils.
        for (file, set) in [
            ("quickstart.toml", "pde.boundary=faces"),
            ("quickstart.toml", "pde.boundary=cell-centres"),
            ("diffusion-sorption.toml", "constraint.fd=second-order"),
            ("burgers-small.toml", "constraint.method=moe"),
            ("allen-cahn-small.toml", "constraint.method=hard"),
        ] {
            let mut scenario = scenario(file);
            scenario.device = Device::Cuda(None);
            scenario.set(set).unwrap();
            assert_eq!(
                placement_note(&scenario),
                None,
                "{file} with {set} runs its constraint's passes on the GPU"
            );
        }
    }
}
