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

use tessera_experts::ConstraintLayer;
use tessera_scenarios::custom::CustomPde;
use tessera_scenarios::{AnyPde, Scenario};

use crate::error::ToolError;

pub use tessera_scenarios::Device;

/// `--device` of the commands that build a scenario's model (`train`, `run`,
/// `eval`, `gradcheck`, `bench train-step`).
#[derive(Debug, Clone, clap::Args)]
pub struct DeviceArg {
    /// Where the model runs: cpu, cuda or cuda:N (a build with the `cuda`
    /// feature); overrides the scenario's `device`.
    #[arg(long, value_name = "DEVICE")]
    device: Option<Device>,
}

impl DeviceArg {
    /// `scenario` on the chosen device, if one was given.
    pub fn apply(&self, scenario: &mut Scenario) {
        if let Some(device) = self.device {
            scenario.device = device;
        }
    }
}

/// `layer` with its solves on `device`, for the PDE of `definition` with
/// `n_basis` basis functions.
///
/// Errors: a GPU without a definition to compile, a binary without the
/// `cuda` feature, no driver or no such GPU, a kernel that does not compile.
pub fn attach(
    device: Device,
    layer: ConstraintLayer<AnyPde>,
    definition: Option<&CustomPde>,
    n_basis: usize,
) -> Result<ConstraintLayer<AnyPde>, ToolError> {
    let Device::Cuda(ordinal) = device else {
        return Ok(layer);
    };
    let Some(definition) = definition else {
        return Err(ToolError::Device(format!(
            "--device {device} solves a PDE defined in TOML (its residual is compiled for the \
             GPU): pass --pde-file, e.g. scenarios/pdes/diffusion-sorption.toml"
        )));
    };
    on_gpu(layer, definition, ordinal, n_basis)
}

#[cfg(feature = "cuda")]
fn on_gpu(
    layer: ConstraintLayer<AnyPde>,
    definition: &CustomPde,
    ordinal: usize,
    n_basis: usize,
) -> Result<ConstraintLayer<AnyPde>, ToolError> {
    use tessera_constraints::gpu::{Gpu, GpuLm};
    let gpu = Gpu::open(ordinal)?;
    let solver = GpuLm::new(
        &gpu,
        &definition.emit_cuda(),
        definition.name(),
        definition.gpu_shape(n_basis),
    )?;
    Ok(layer.with_gpu(std::sync::Arc::new(solver)))
}

#[cfg(not(feature = "cuda"))]
fn on_gpu(
    _layer: ConstraintLayer<AnyPde>,
    _definition: &CustomPde,
    ordinal: usize,
    _n_basis: usize,
) -> Result<ConstraintLayer<AnyPde>, ToolError> {
    Err(ToolError::Device(format!(
        "--device cuda:{ordinal}: this tessera was built without the `cuda` feature \
         (cargo build --release --features cuda)"
    )))
}
