//! `--device`: where the constraint layer's solves run.
//!
//! `cpu` (the default) solves on the CPU's threads; `cuda` or `cuda:N` solves
//! every expert problem of a batch at once on GPU `N` with the batched
//! Levenberg–Marquardt and backward kernels, compiled at run time for the PDE's definition
//! (its emitted CUDA residual), so the GPU needs a PDE defined in TOML. A
//! binary built without the `cuda` feature says so instead of solving.

use std::str::FromStr;

use tessera_experts::ConstraintLayer;
use tessera_scenarios::AnyPde;
use tessera_scenarios::custom::CustomPde;

use crate::error::ToolError;

/// Where the solves run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// The CPU's threads.
    #[default]
    Cpu,
    /// GPU number `N`.
    Cuda(usize),
}

impl FromStr for Device {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| format!("`{s}` is not a device: cpu, cuda or cuda:N")),
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl Device {
    /// `layer` with its solves on this device, for the PDE of
    /// `definition` with `n_basis` basis functions.
    ///
    /// Errors: a GPU without a definition to compile, a binary without the
    /// `cuda` feature, no driver or no such GPU, a kernel that does not
    /// compile.
    pub fn attach(
        self,
        layer: ConstraintLayer<AnyPde>,
        definition: Option<&CustomPde>,
        n_basis: usize,
    ) -> Result<ConstraintLayer<AnyPde>, ToolError> {
        let Self::Cuda(ordinal) = self else {
            return Ok(layer);
        };
        let Some(definition) = definition else {
            return Err(ToolError::Device(format!(
                "--device {self} solves a PDE defined in TOML (its residual is compiled for the \
                 GPU): pass --pde-file, e.g. scenarios/pdes/diffusion-sorption.toml"
            )));
        };
        on_gpu(layer, definition, ordinal, n_basis)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_and_print_back() {
        for (text, device) in [
            ("cpu", Device::Cpu),
            ("cuda", Device::Cuda(0)),
            ("cuda:3", Device::Cuda(3)),
        ] {
            assert_eq!(text.parse::<Device>().unwrap(), device);
        }
        assert_eq!(Device::Cuda(3).to_string(), "cuda:3");
        for bad in ["gpu", "cuda:", "cuda:x", "cuda:-1", "CPU"] {
            let err = bad.parse::<Device>().unwrap_err();
            assert!(err.contains("cpu, cuda or cuda:N"), "{bad}: {err}");
        }
    }
}
