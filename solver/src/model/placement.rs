//! Where a model's parts run, from the scenario's `device`: on a GPU
//! (feature `cuda`) the backbone's passes run there, and so do the
//! constraint layer's solves and backward passes, whose kernels compile the
//! PDE's TOML definition (a built-in PDE's restating definition, see
//! [`solved_pde`]), and the PDE loss, with the same kernels
//! (`PhysicsLoss::on_gpu`; for the soft method, whose model has no solves,
//! [`soft_pde`] and [`SolveDevice::for_loss`]). Where the layer gathers its
//! term rows there, the assembly of `u` and the pull-back to the basis run
//! there too (`ConstraintLayer::with_gpu`); the other losses stay on the
//! host. Without the feature, a GPU is a typed error.

use std::sync::Arc;

use tessera_constraints::{Pde, residual_term_count};
use tessera_experts::ConstraintLayer;
use tessera_meshes::Grid;
use tessera_scenarios::{AnyPde, Device, Scenario};

use crate::SolverError;

/// The device the backbone's passes run on (`None`: the CPU).
#[cfg(feature = "cuda")]
pub(crate) fn backbone_device(
    scenario: &Scenario,
) -> Result<Option<Arc<dyn crate::device::NetworkOnDevice>>, SolverError> {
    use crate::device::Precision;
    let precision = match scenario.model.dtype {
        tessera_scenarios::config::Dtype::F64 => Precision::F64,
        tessera_scenarios::config::Dtype::F32 => Precision::F32,
    };
    match crate::parallel::gpu_ordinal(scenario.device)? {
        None => Ok(None),
        Some(ordinal) => Ok(Some(crate::device::cuda_backbone(ordinal, precision)?)),
    }
}

/// The CPU, or the typed error of a build without the `cuda` feature.
#[cfg(not(feature = "cuda"))]
pub(crate) fn backbone_device(scenario: &Scenario) -> Result<(), SolverError> {
    cpu_only(scenario.device)
}

/// `Ok` for the CPU; for a GPU, the typed error of a build without the
/// `cuda` feature.
#[cfg(not(feature = "cuda"))]
fn cpu_only(device: Device) -> Result<(), SolverError> {
    match device {
        Device::Cpu => Ok(()),
        device => Err(SolverError::InvalidConfig {
            key: "device",
            value: device.to_string(),
            reason: "this tessera was built without the `cuda` feature \
                     (cargo build --release --features cuda)"
                .into(),
        }),
    }
}

/// The PDE whose solves run on `device`: on a GPU, a built-in PDE becomes the
/// TOML definition that restates it ([`AnyPde::definition`]), because the
/// solver kernels compile a definition's emitted residual; the two train
/// alike to round-off. Every configuration a scenario can describe has its
/// definition; one without (none today) would stay built-in, its solves on
/// the CPU, and the CLI would say so. The CPU keeps the built-in.
pub(crate) fn solved_pde(device: Device, pde: AnyPde) -> AnyPde {
    if device == Device::Cpu {
        return pde;
    }
    match pde.definition() {
        Ok(definition) => AnyPde::Custom(definition),
        Err(_) => pde,
    }
}

/// The PDE of a soft-constraint model on `device`, whose only physics is its
/// PDE loss: on a GPU, the definition that restates a built-in PDE
/// ([`AnyPde::definition`]) where every term its residual reads is a stencil
/// on `grid`, so that the loss runs there with that definition's kernels
/// (`PhysicsLoss::on_gpu`); else, and on the CPU, the PDE itself.
///
/// Errors: a definition whose terms do not build on `grid`.
pub(crate) fn soft_pde(device: Device, grid: &Grid, pde: AnyPde) -> Result<AnyPde, SolverError> {
    if device == Device::Cpu {
        return Ok(pde);
    }
    let Ok(definition) = pde.definition() else {
        return Ok(pde);
    };
    let restated = AnyPde::Custom(definition);
    let terms = restated.terms(grid)?;
    let n_residual = residual_term_count(&restated, terms.len())?;
    let local = terms[..n_residual].iter().all(|t| t.operator.is_local());
    Ok(if local { restated } else { pde })
}

/// Where a constraint layer's solves run.
#[derive(Default)]
pub(crate) struct SolveDevice {
    #[cfg(feature = "cuda")]
    gpu: Option<Arc<tessera_constraints::gpu::GpuLm>>,
}

impl SolveDevice {
    /// The solver for `scenario`'s device and `pde`: its GPU kernels when the
    /// scenario runs on a GPU and the PDE is a TOML definition, else the CPU.
    ///
    /// Errors: no driver, no NVRTC, or a kernel that does not compile; a GPU
    /// in a build without the `cuda` feature.
    pub(crate) fn new(scenario: &Scenario, pde: &AnyPde) -> Result<Self, SolverError> {
        Self::with_basis(scenario, pde, scenario.model.n_basis)
    }

    /// The kernels of `pde`'s residual on `scenario`'s GPU for the PDE loss of
    /// a model without solves (the soft method), compiled for one basis
    /// function since the loss reads none; the CPU where [`SolveDevice::new`]
    /// would be.
    ///
    /// Errors: as [`SolveDevice::new`].
    #[cfg(feature = "cuda")]
    pub(crate) fn for_loss(scenario: &Scenario, pde: &AnyPde) -> Result<Self, SolverError> {
        Self::with_basis(scenario, pde, 1)
    }

    /// The solver for `n_basis` basis functions (see [`SolveDevice::new`]).
    #[cfg_attr(not(feature = "cuda"), allow(unused_variables))]
    fn with_basis(scenario: &Scenario, pde: &AnyPde, n_basis: usize) -> Result<Self, SolverError> {
        #[cfg(not(feature = "cuda"))]
        cpu_only(scenario.device)?;
        #[cfg(feature = "cuda")]
        if let (Some(ordinal), AnyPde::Custom(definition)) =
            (crate::parallel::gpu_ordinal(scenario.device)?, pde)
        {
            use tessera_constraints::gpu::{Gpu, GpuLm};
            let gpu = Gpu::open(ordinal)?;
            let solver = GpuLm::new(
                &gpu,
                &definition.emit_cuda(),
                definition.name(),
                definition.gpu_shape(n_basis),
            )?;
            return Ok(Self {
                gpu: Some(Arc::new(solver)),
            });
        }
        Ok(Self::default())
    }

    /// The GPU solver, if the solves run on a GPU.
    #[cfg(feature = "cuda")]
    pub(crate) fn gpu_solver(&self) -> Option<&tessera_constraints::gpu::GpuLm> {
        self.gpu.as_deref()
    }

    /// `layer` with its solves here.
    pub(crate) fn attach(&self, layer: ConstraintLayer<AnyPde>) -> Arc<ConstraintLayer<AnyPde>> {
        #[cfg(feature = "cuda")]
        if let Some(gpu) = &self.gpu {
            return Arc::new(layer.with_gpu(Arc::clone(gpu)));
        }
        Arc::new(layer)
    }
}
