//! Scenario config files: one TOML file describes a whole experiment (PDE,
//! grid, data, backbone, constraint, training, evaluation), so that a run is
//! reproducible from the file alone (it is saved into every run directory).
//!
//! Every table rejects unknown keys, so a typo is an error rather than a silently
//! ignored setting. Omitted settings take the paper's values (PI-HC-MoE, ICLR
//! 2024, diffusion–sorption setup; see `REFERENCE-NOTES.md`). Values that depend
//! on the grid's dimension (`model.modes`, `constraint.experts`) have no default.
//!
//! ```toml
//! name = "diffusion-sorption-small"
//! seed = 3
//! [pde]
//! kind = "diffusion-sorption"        # or "navier-stokes", "heat", "advection"
//! [grid]
//! nt = 51
//! nx = 128
//! t_max = 500.0
//! [data]
//! train_samples = 64
//! test_samples = 16
//! [model]
//! modes = [8, 8]
//! [constraint]
//! experts = [1, 4]
//! points = 1000
//! ```

use std::collections::BTreeMap;
use std::num::IntErrorKind::{NegOverflow, PosOverflow};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tessera_meshes::Grid;

use crate::ScenarioError;
use crate::custom::{CustomPde, InitialOverrides};
use crate::device::Device;
use crate::mol::{Dealias, MolMethod};
use crate::unknown_keys::{listed, unknown_keys};
use crate::validation::{DIM_MISMATCH, invalid};

/// A complete experiment description, as read from a scenario TOML file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Free-text name (used for run directories and plot titles).
    pub name: String,
    /// Master seed for data generation, initialisation and point sampling:
    /// at most [`MAX_SEED`].
    #[serde(default = "default_seed", deserialize_with = "deserialize_seed")]
    pub seed: u64,
    /// Where the model runs: `"cpu"` (default), `"cuda"` or `"cuda:N"`.
    #[serde(default, skip_serializing_if = "Device::is_cpu")]
    pub device: Device,
    /// The PDE and its physical constants.
    pub pde: PdeConfig,
    /// The space–time grid the model works on.
    pub grid: GridConfig,
    /// Training/test data: sizes, files, reference-solver settings.
    pub data: DataConfig,
    /// The backbone network.
    #[serde(default)]
    pub model: ModelConfig,
    /// The constraint layer (soft, hard, or mixture of experts).
    #[serde(default)]
    pub constraint: ConstraintConfig,
    /// The optimiser and its schedule.
    #[serde(default)]
    pub training: TrainingConfig,
    /// Evaluation on the test set.
    #[serde(default)]
    pub eval: EvalConfig,
    /// How ranks share the work in a multi-process run (absent: all
    /// data-parallel).
    #[serde(default, skip_serializing_if = "ParallelConfig::is_unset")]
    pub parallel: ParallelConfig,
}

fn default_seed() -> u64 {
    // The paper's config (REFERENCE-NOTES §1: "seed 3").
    3
}

/// The largest seed, `i64::MAX`: TOML's integers are 64-bit signed, so a
/// larger one is no TOML integer — it cannot be given with `--set`, and a
/// scenario holding it could not be written back into a TOML table (a
/// run's `config.toml`, the table `--set` edits) nor read by other TOML
/// readers. [`Scenario::validate`] refuses more.
pub const MAX_SEED: u64 = i64::MAX as u64;

/// What a seed must be, as errors say it.
pub(crate) fn seed_range() -> String {
    format!("an integer in 0..={MAX_SEED}")
}

/// A seed as [`u64`] reads one, but an error names [`seed_range`] (not
/// "u64"). The upper bound is [`Scenario::validate`]'s, which names the key
/// and its value.
fn deserialize_seed<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    struct Seed;
    impl serde::de::Visitor<'_> for Seed {
        type Value = u64;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str(&seed_range())
        }

        fn visit_u64<E: serde::de::Error>(self, seed: u64) -> Result<u64, E> {
            Ok(seed)
        }

        fn visit_i64<E: serde::de::Error>(self, seed: i64) -> Result<u64, E> {
            u64::try_from(seed)
                .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(seed), &self))
        }
    }
    deserializer.deserialize_u64(Seed)
}

/// Which PDE, with its constants (defaults: the paper's values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PdeConfig {
    /// 1-D diffusion–sorption (PDEBench; PI-HC-MoE §4.1).
    DiffusionSorption(DiffusionSorptionParams),
    /// 2-D Navier–Stokes in vorticity form on the periodic unit square.
    NavierStokes(NavierStokesParams),
    /// 1-D heat equation `u_t = κ u_xx` (a small test problem).
    Heat(HeatParams),
    /// 1-D linear advection `u_t + c u_x = 0` (a small test problem).
    Advection(AdvectionParams),
    /// A PDE defined in TOML (see [`crate::custom`] and the README's "Your own
    /// PDE").
    Custom(CustomParams),
}

/// A PDE defined in TOML: where its definition is and the rectangle it is
/// posed on.
///
/// ```toml
/// [pde]
/// kind = "custom"
/// file = "pdes/burgers.toml"     # relative to the scenario file
/// domain = [[0.0, 1.0]]          # [lo, hi] per space axis
/// parameters = { nu = 0.02 }     # optional: new values for the definition's parameters
/// initial = { amplitude = 0.25 } # optional: new numbers for its [initial] family
/// ```
///
/// Loading the scenario reads `file` into `definition`, and a run directory's
/// `config.toml` carries the definition's text, so that a run can be resumed,
/// evaluated or embedded without the original file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomParams {
    /// The definition file, relative to the scenario file (an override's
    /// `--set pde.file=…`, relative to the working directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The definition's text (takes precedence over `file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
    /// `[lo, hi]` of each space axis: a bounded axis holds `linspace(lo, hi,
    /// n)` (both ends are grid points, where boundary rows sit), a periodic one
    /// `lo + i·(hi − lo)/n`.
    pub domain: Vec<[f64; 2]>,
    /// New values for some of the definition's `[parameters]` (e.g. a larger
    /// viscosity for a coarse grid), so one definition serves several
    /// experiments.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, f64>,
    /// New numbers for the definition's `[initial]` family (a `grf`
    /// field's length scale, amplitude or mean, random parameters'
    /// distributions), so one definition serves studies of other initial
    /// conditions ([`InitialOverrides`]).
    #[serde(default, skip_serializing_if = "InitialOverrides::is_empty")]
    pub initial: InitialOverrides,
}

impl CustomParams {
    /// The definition, parsed and checked; errors point into the definition
    /// file (or into the inline text, named `origin`).
    ///
    /// Errors: no definition (neither `file` was read nor `definition` given),
    /// and every error of [`CustomPde::from_str`].
    pub fn pde(&self, origin: &str) -> Result<CustomPde, ScenarioError> {
        let text = self
            .definition
            .as_deref()
            .ok_or_else(|| ScenarioError::ConfigInvalid {
                origin: origin.to_owned(),
                key: "pde.file".to_owned(),
                value: "absent".to_owned(),
                reason: "a custom PDE needs `file` (or the definition's text as `definition`)"
                    .to_owned(),
            })?;
        let name = self.file.as_ref().map_or_else(
            || format!("{origin} [pde.definition]"),
            |f| f.display().to_string(),
        );
        CustomPde::with_overrides(text, &name, &self.parameters, &self.initial, None)
            .map_err(|e| ScenarioError::CustomPde(Box::new(e)))
    }

    /// Reads `file` (relative to `base`) into `definition` unless the text is
    /// already there.
    fn load_definition(&mut self, base: &Path) -> Result<(), ScenarioError> {
        if let (None, Some(file)) = (&self.definition, &self.file) {
            let path = base.join(file);
            let text =
                crate::text_file::read_text(&path).map_err(|e| ScenarioError::io(&path, e))?;
            self.file = Some(path);
            self.definition = Some(text);
        }
        Ok(())
    }
}

/// Diffusion–sorption constants `u_t = D/R(u) u_xx`,
/// `R = 1 + (1−φ)/φ · ρ_s · k_f · n_f · u^(n_f−1)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiffusionSorptionParams {
    /// Effective diffusion coefficient `D` (paper: 5e-4).
    #[serde(rename = "D")]
    pub d: f64,
    /// Porosity `φ` (paper: 0.29).
    pub phi: f64,
    /// Bulk density `ρ_s` (paper: 2880).
    pub rho_s: f64,
    /// Freundlich constant `k_f` (code of the paper: 3.5e-4).
    pub k_f: f64,
    /// Freundlich exponent `n_f` (paper: 0.874).
    pub n_f: f64,
    /// Where the boundary rows impose the boundary conditions (`[pde] boundary`);
    /// a constraint choice rather than a constant, kept here so that a run's
    /// `config.toml` and metadata record it with the PDE it shapes.
    pub boundary: BoundaryPlacement,
}

/// Where diffusion–sorption's boundary rows sit (scenario key `[pde] boundary`).
///
/// The grid's `x` points are cell centres, half a cell inside the domain, so a
/// row on the first or last point does not say what the boundary condition
/// says. See [`crate::diffusion_sorption::pde`] for the rows of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum BoundaryPlacement {
    /// At the faces `x = 0` and `x = 1`, reached from the boundary cell centre by
    /// a half-cell Taylor step, with the finite-volume scheme's form of the
    /// right condition (the ground truth's own boundary conditions).
    #[default]
    Faces,
    /// At the first and last cell centres, as the paper's code places them
    /// (kept for fidelity checks against the reference).
    CellCentres,
}

impl Default for DiffusionSorptionParams {
    fn default() -> Self {
        // PI-HC-MoE §4.1 and its code; PDEBench configs/diff-sorp.yaml.
        Self {
            d: 5e-4,
            phi: 0.29,
            rho_s: 2880.0,
            k_f: 3.5e-4,
            n_f: 0.874,
            boundary: BoundaryPlacement::Faces,
        }
    }
}

/// Navier–Stokes constants.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NavierStokesParams {
    /// Kinematic viscosity `ν` (paper: 1e-4, "Re 1e4").
    pub nu: f64,
}

impl Default for NavierStokesParams {
    fn default() -> Self {
        Self { nu: 1e-4 }
    }
}

/// Heat-equation constants.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeatParams {
    /// Diffusivity `κ` (not from the paper: a value that makes a visible decay on
    /// the unit interval over unit time).
    pub kappa: f64,
}

impl Default for HeatParams {
    fn default() -> Self {
        Self { kappa: 0.1 }
    }
}

/// Advection constants.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdvectionParams {
    /// Transport speed `c` (not from the paper: one period of the unit interval
    /// per unit time).
    pub speed: f64,
}

impl Default for AdvectionParams {
    fn default() -> Self {
        Self { speed: 1.0 }
    }
}

impl PdeConfig {
    /// The `data.reference` keys each kind's reference solver reads, by
    /// [`PdeConfig::kind`]; heat and advection have none, their data come
    /// from files.
    pub const REFERENCE_KEYS: [(&'static str, &'static [&'static str]); 5] = [
        ("diffusion-sorption", &["rtol", "nx"]),
        ("navier-stokes", &["resolution", "dt"]),
        ("heat", &[]),
        ("advection", &[]),
        ("custom", &["rtol", "refinement", "integrator", "dealias"]),
    ];

    /// The `data.reference` keys this kind's reference solver reads
    /// ([`PdeConfig::REFERENCE_KEYS`]).
    pub fn reference_keys(&self) -> &'static [&'static str] {
        Self::reference_keys_of(self.kind())
    }

    /// The `data.reference` keys of the kind named `kind` (none for a name
    /// that is no kind).
    pub fn reference_keys_of(kind: &str) -> &'static [&'static str] {
        Self::REFERENCE_KEYS
            .iter()
            .find(|(name, _)| *name == kind)
            .map_or(&[], |(_, keys)| keys)
    }

    /// The kind's name as written in files (`"diffusion-sorption"`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::DiffusionSorption(_) => "diffusion-sorption",
            Self::NavierStokes(_) => "navier-stokes",
            Self::Heat(_) => "heat",
            Self::Advection(_) => "advection",
            Self::Custom(_) => "custom",
        }
    }

    /// Number of spatial dimensions of the PDE (of a custom PDE: the axes of
    /// its `domain`, checked against its definition).
    pub fn space_dims(&self) -> usize {
        match self {
            Self::NavierStokes(_) => 2,
            Self::Custom(p) => p.domain.len(),
            _ => 1,
        }
    }
}

/// The grid the model sees: `nt` time levels `linspace(0, t_max, nt)` and `nx`
/// (× `ny`) spatial points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridConfig {
    /// Number of time levels, the initial one included.
    pub nt: usize,
    /// Points along `x`.
    pub nx: usize,
    /// Points along `y` (2-D PDEs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ny: Option<usize>,
    /// Final time.
    pub t_max: f64,
}

/// Where data comes from and how ground truth is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Number of training initial conditions.
    pub train_samples: usize,
    /// Number of test trajectories.
    pub test_samples: usize,
    /// Load training ICs/trajectories from this `.safetensors`/`.h5` file instead
    /// of generating them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_file: Option<PathBuf>,
    /// Load test trajectories from this file instead of generating them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_file: Option<PathBuf>,
    /// Directory where generated datasets are cached between runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<PathBuf>,
    /// Reference-solver settings used to generate ground truth.
    #[serde(default)]
    pub reference: ReferenceConfig,
}

/// Settings of the reference numerical solvers that generate ground truth.
/// Each PDE kind's solver reads some of them
/// ([`PdeConfig::reference_keys`]); the numbers are options, absent unless
/// written, so that a key its kind does not read is refused only where the
/// user set it (the defaults are the accessors').
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceConfig {
    /// Diffusion–sorption and custom PDEs: relative tolerance of the adaptive
    /// time integration. Absent: 1e-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtol: Option<f64>,
    /// Diffusion–sorption: solver cells (a multiple of `grid.nx`; the solution is
    /// cell-averaged onto the grid). Absent: `grid.nx`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nx: Option<usize>,
    /// Navier–Stokes: solver resolution per axis (a multiple of `grid.nx` and
    /// `grid.ny`; the solution is subsampled onto the grid). Absent: `grid.nx`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<usize>,
    /// Navier–Stokes: largest time step (each output interval is split into equal
    /// steps no longer than this). Absent: 1e-3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dt: Option<f64>,
    /// Custom PDEs: the method-of-lines solver refines every space axis of
    /// the grid by this factor (the output is injected back onto the grid).
    /// Absent: 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refinement: Option<usize>,
    /// Custom PDEs: the method of lines' time integrator — `"implicit"` (the
    /// default: SDIRK4, for stiff PDEs), `"explicit"` (Dormand–Prince 5(4),
    /// for PDEs that are not stiff, such as nearly inviscid flow) or
    /// `"auto"` (explicit until its stiffness test fires, then implicit).
    #[serde(default, skip_serializing_if = "MolMethod::is_implicit")]
    pub integrator: MolMethod,
    /// Custom PDEs with the spectral stencil: Orszag's dealiasing of the
    /// method of lines — `"none"` (the default), `"2/3"` (exact for
    /// quadratic terms such as `u u_x`) or `"1/2"` (cubic terms), the
    /// Fourier modes kept in `u_t` and in the initial field
    /// ([`crate::mol::Dealias`]).
    #[serde(default, skip_serializing_if = "Dealias::is_none")]
    pub dealias: Dealias,
}

impl ReferenceConfig {
    /// The relative tolerance (default 1e-8).
    pub fn rtol(&self) -> f64 {
        self.rtol.unwrap_or(1e-8)
    }

    /// The Navier–Stokes solver's largest step (default: that of
    /// Neural-Spectral-Methods' NS generator, REFERENCE-NOTES §5).
    pub fn dt(&self) -> f64 {
        self.dt.unwrap_or(1e-3)
    }

    /// The method of lines' refinement factor (default 4).
    pub fn refinement(&self) -> usize {
        self.refinement.unwrap_or(4)
    }

    /// Every setting with its default written in: what the data depend on,
    /// whether or not the user wrote the default (a cache key).
    pub fn resolved(&self) -> Self {
        Self {
            rtol: Some(self.rtol()),
            dt: Some(self.dt()),
            refinement: Some(self.refinement()),
            ..self.clone()
        }
    }

    /// The keys the user set, with their values as shown in errors: the
    /// options given, and the integrator and dealiasing where not the
    /// default.
    pub fn set_keys(&self) -> Vec<(&'static str, String)> {
        let shown = |v: Option<String>, key| v.map(|v| (key, v));
        [
            shown(self.rtol.map(|v| v.to_string()), "rtol"),
            shown(self.nx.map(|v| v.to_string()), "nx"),
            shown(self.resolution.map(|v| v.to_string()), "resolution"),
            shown(self.dt.map(|v| v.to_string()), "dt"),
            shown(self.refinement.map(|v| v.to_string()), "refinement"),
            shown(
                (!self.integrator.is_implicit())
                    .then(|| format!("{:?}", self.integrator).to_lowercase()),
                "integrator",
            ),
            shown(
                (!self.dealias.is_none()).then(|| self.dealias.name().to_owned()),
                "dealias",
            ),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

impl Default for ReferenceConfig {
    fn default() -> Self {
        Self {
            rtol: None,
            nx: None,
            resolution: None,
            dt: None,
            refinement: None,
            integrator: MolMethod::Implicit,
            dealias: Dealias::None,
        }
    }
}

/// The backbone architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Backbone {
    /// Fourier neural operator: 2-D over `(t, x)`, 3-D over `(t, x, y)`.
    #[default]
    Fno,
}

/// Floating-point type of the backbone (constraint solves are always f64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Dtype {
    /// Double precision (the paper runs JAX in float64).
    #[default]
    F64,
    /// Single precision.
    F32,
}

/// How the initial condition enters the backbone's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum IcFeatures {
    /// Its value at each point, as the reference feeds its FNO.
    #[default]
    Value,
    /// Its value and its natural logarithm, two channels. The sorption term
    /// of diffusion–sorption varies as `u^(n_f − 1)`, so a small initial value
    /// changes the dynamics by more than its size tells a linear lifting;
    /// needs a positive initial condition.
    ValueAndLog,
}

impl IcFeatures {
    /// The backbone's input channels for the initial condition.
    pub fn channels(self) -> usize {
        match self {
            Self::Value => 1,
            Self::ValueAndLog => 2,
        }
    }
}

/// Backbone settings (defaults: the paper's diffusion–sorption FNO).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Architecture family.
    #[serde(default)]
    pub backbone: Backbone,
    /// Lifting width, then one width per Fourier layer (the reference's `layers`).
    #[serde(default = "default_widths")]
    pub widths: Vec<usize>,
    /// Fourier modes kept per axis `(t, x, (y))`, the same in every layer. No
    /// default: its length is the grid's dimension.
    #[serde(default)]
    pub modes: Vec<usize>,
    /// Width of the projection layer.
    #[serde(default = "default_fc_dim")]
    pub fc_dim: usize,
    /// Number of basis functions `N` (the soft method outputs 1 regardless).
    #[serde(default = "default_n_basis")]
    pub n_basis: usize,
    /// Whether the last Fourier layer is followed by the activation.
    #[serde(default)]
    pub activate_last_layer: bool,
    /// The backbone's floating-point type.
    #[serde(default)]
    pub dtype: Dtype,
    /// The initial condition's input channels.
    #[serde(default)]
    pub ic_features: IcFeatures,
}

fn default_widths() -> Vec<usize> {
    vec![32, 64, 64, 64, 64, 64]
}

fn default_fc_dim() -> usize {
    128
}

fn default_n_basis() -> usize {
    16
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            backbone: Backbone::default(),
            widths: default_widths(),
            modes: Vec::new(),
            fc_dim: default_fc_dim(),
            n_basis: default_n_basis(),
            activate_last_layer: false,
            dtype: Dtype::default(),
            ic_features: IcFeatures::default(),
        }
    }
}

/// How the PDE is imposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// PI-SC: the PDE residual is only a loss term.
    Soft,
    /// PI-HC: one global constrained least-squares solve.
    Hard,
    /// PI-HC-MoE: one constrained solve per tile.
    #[default]
    Moe,
}

/// Initial weights `ω` of each Levenberg–Marquardt solve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum InitWeights {
    /// All ones (the paper's diffusion–sorption code).
    #[default]
    Ones,
    /// All zeros (the paper's Navier–Stokes code).
    Zeros,
    /// The previous training step's solution for the same expert.
    Warm,
}

/// Which initial/boundary-condition rows an expert's problem includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RowScope {
    /// Every expert gets all IC/BC rows of the full grid (the paper's code).
    #[default]
    Global,
    /// An expert gets only the rows inside its tile.
    Local,
}

/// The Hessian used by the implicit-function-theorem backward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum HessianKind {
    /// `JᵀJ + Σ r_p ∇²r_p`.
    #[default]
    Exact,
    /// `JᵀJ` only.
    GaussNewton,
}

/// Which finite-difference stencils define the derivative terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum FdStencils {
    /// The stencils of the paper's code.
    #[default]
    Reference,
    /// Second-order central stencils throughout.
    SecondOrder,
}

/// Constraint-layer settings (defaults: the paper's diffusion–sorption values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConstraintConfig {
    /// Soft, hard or mixture of experts.
    #[serde(default)]
    pub method: Method,
    /// Tile split `[s_t, s_x, (s_y)]`; ignored (all ones) for `hard`. No default:
    /// its length is the grid's dimension.
    #[serde(default)]
    pub experts: Vec<usize>,
    /// Points sampled per expert.
    #[serde(default = "default_points")]
    pub points: usize,
    /// Ridge weight `ρ` of the rows `ρ·ω`.
    #[serde(default = "default_tol")]
    pub ridge: f64,
    /// Levenberg–Marquardt relative tolerance.
    #[serde(default = "default_tol")]
    pub rtol: f64,
    /// Levenberg–Marquardt absolute tolerance.
    #[serde(default = "default_tol")]
    pub atol: f64,
    /// Levenberg–Marquardt iteration limit.
    #[serde(default = "default_max_iters")]
    pub max_iters: usize,
    /// Initial weights.
    #[serde(default)]
    pub init: InitWeights,
    /// Global or tile-local IC/BC rows.
    #[serde(default)]
    pub rows: RowScope,
    /// Hessian of the backward pass.
    #[serde(default)]
    pub hessian: HessianKind,
    /// Derivative stencils.
    #[serde(default)]
    pub fd: FdStencils,
}

fn default_points() -> usize {
    20_000
}

fn default_tol() -> f64 {
    1e-4
}

fn default_max_iters() -> usize {
    100
}

impl Default for ConstraintConfig {
    fn default() -> Self {
        Self {
            method: Method::default(),
            experts: Vec::new(),
            points: default_points(),
            ridge: default_tol(),
            rtol: default_tol(),
            atol: default_tol(),
            max_iters: default_max_iters(),
            init: InitWeights::default(),
            rows: RowScope::default(),
            hessian: HessianKind::default(),
            fd: FdStencils::default(),
        }
    }
}

/// Learning-rate schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// `lr · decay^floor(step/every)`, floored at `lr_floor` (the paper, DS).
    #[default]
    Staircase,
    /// Smooth decay to `lr · final_factor` over `steps` (the paper, NS).
    Exponential,
    /// `lr` throughout.
    Constant,
}

/// Weights of the loss terms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossWeights {
    /// PDE residual on the full grid.
    pub pde: f64,
    /// Initial-condition mismatch.
    pub ic: f64,
    /// Boundary-condition mismatch.
    pub bc: f64,
    /// Mismatch with ground-truth trajectories (0: physics only, as in the paper).
    pub data: f64,
}

impl Default for LossWeights {
    fn default() -> Self {
        Self {
            pde: 1.0,
            ic: 1.0,
            bc: 1.0,
            data: 0.0,
        }
    }
}

/// How the PDE loss gathers the residual of a trajectory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PdeNorm {
    /// `‖F‖₂` over the whole grid, as the reference computes it.
    #[default]
    Grid,
    /// `Σ_l ‖F_l‖₂ / √L` over the `L` time levels: equal to the grid norm
    /// when every level's residual has the same size, below it otherwise.
    /// Each level pulls with the same strength, where the grid norm takes its
    /// gradient's direction from the largest residuals — on
    /// diffusion–sorption those of the first two levels, where the boundary
    /// switches on in a layer no time step resolves and even the truth leaves
    /// most of its residual.
    Levels,
}

/// Training settings (defaults: the paper's diffusion–sorption values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingConfig {
    /// Optimiser steps.
    pub steps: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Initial learning rate.
    pub lr: f64,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Staircase factor per `every` steps.
    pub decay: f64,
    /// Staircase period in steps.
    pub every: usize,
    /// Staircase lower bound on the learning rate.
    pub lr_floor: f64,
    /// Exponential schedule: final learning rate as a fraction of `lr`.
    pub final_factor: f64,
    /// Global gradient-norm clip; 0 disables clipping.
    pub clip_norm: f64,
    /// Loss-term weights.
    pub loss: LossWeights,
    /// How the PDE loss gathers a trajectory's residual.
    pub pde_norm: PdeNorm,
    /// Steps between checkpoints.
    pub checkpoint_every: usize,
    /// Keep the checkpoint before the latest beside it
    /// (`checkpoint.previous.safetensors`), for a resume to fall back to when
    /// the latest cannot be read (a damaged disk or copy). `false` halves the
    /// disk a run's checkpoints take (3.2 GB each at the Navier–Stokes paper
    /// scale).
    pub keep_previous_checkpoint: bool,
    /// Steps between validations.
    pub validate_every: usize,
    /// Test samples used per validation.
    pub validate_samples: usize,
    /// Temporal extrapolation (the paper's diffusion–sorption test: train on
    /// `t ≤ 400`, test on `t > 400`): the model trains on the time levels
    /// `t ≤ horizon` only (data and grid truncated there) and is evaluated on the
    /// whole grid, with errors reported separately for both windows. In the
    /// scenario's time units; must lie in `(0, t_max)`. Absent: train on the
    /// whole grid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub horizon: Option<f64>,
    /// Variable groups kept at their initial values, each named by the leading
    /// segments of its variables' names (`lift`, `layers.0`, `head`,
    /// `head.fc1`). The reference implementation never trains its FNO's
    /// lifting and projection layers: `fc0`, `fc1` and `fc2` are
    /// `jax.vmap`-wrapped modules, which equinox treats as static fields, so
    /// only the Fourier layers learn. `["lift", "head"]` reproduces that.
    /// Empty: every variable trains.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub freeze: Vec<String>,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            steps: 4000,
            batch_size: 6,
            lr: 1e-3,
            schedule: Schedule::default(),
            decay: 0.5,
            every: 800,
            lr_floor: 1e-4,
            final_factor: 1e-3,
            clip_norm: 1.0,
            loss: LossWeights::default(),
            pde_norm: PdeNorm::default(),
            checkpoint_every: 500,
            keep_previous_checkpoint: true,
            validate_every: 200,
            validate_samples: 16,
            horizon: None,
            freeze: Vec::new(),
        }
    }
}

/// Evaluation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Test trajectories evaluated; absent: all `data.test_samples`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<usize>,
    /// Spatial resolutions to evaluate at (each divides the reference solver's
    /// resolution); empty: the grid's own.
    pub resolutions: Vec<usize>,
    /// Number of test samples plotted.
    pub plots: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            samples: None,
            resolutions: Vec::new(),
            plots: 4,
        }
    }
}

/// The `[parallel]` table: the two axes of a multi-rank run, with world size
/// `data × experts`. An absent size is whatever the world size leaves for it
/// (both absent: every rank is data-parallel); single-process runs ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ParallelConfig {
    /// Ranks that split the batch (each runs the backbone on its share).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<usize>,
    /// Ranks that split the experts (each solves its experts for the batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experts: Option<usize>,
    /// Makes a training step's bits independent of how many data ranks share
    /// the batch, so a run on any number of ranks (and a resume on another)
    /// repeats the single-process run bit for bit. Floating-point sums change
    /// with their order: by default a rank runs the backbone on its block of
    /// samples at once (matrix products block by rows) and the ranks' gradient
    /// sums are added in rank order. With `reproducible`, the backbone runs
    /// and back-propagates one sample at a time and the per-sample gradients
    /// are added in global sample order (a chain through the data ranks), at
    /// the price of one backward pass per sample, `P` doubles held per local
    /// sample and `D − 1` sequential messages per step. Single-process runs
    /// take the same path, so they are comparable.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reproducible: bool,
}

impl ParallelConfig {
    /// Whether the table says nothing (it is then left out of a saved config).
    pub fn is_unset(&self) -> bool {
        *self == Self::default()
    }
}

impl Scenario {
    /// Reads, parses and validates a scenario file. Errors name the file.
    /// A custom PDE's `file` is read relative to the scenario file's directory.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ScenarioError> {
        let path = path.as_ref();
        let text = crate::text_file::read_text(path).map_err(|e| ScenarioError::io(path, e))?;
        let base = path.parent().unwrap_or(Path::new(""));
        Self::parse(&text, &path.display().to_string(), base)
    }

    /// Reads a `config.toml` that a run saved: [`Scenario::from_file`], except
    /// that what a run saved before a later change of the format reads as it
    /// did then, so an old run evaluates and resumes as it trained:
    ///
    /// - `[pde] boundary` of diffusion–sorption: runs saved before the key
    ///   existed put their boundary rows at the cell centres.
    /// - `[data.reference]` keys the PDE's kind does not read: runs saved
    ///   before such keys were refused wrote every default, read or not.
    pub fn from_run_config(path: impl AsRef<Path>) -> Result<Self, ScenarioError> {
        let path = path.as_ref();
        let text = crate::text_file::read_text(path).map_err(|e| ScenarioError::io(path, e))?;
        let base = path.parent().unwrap_or(Path::new(""));
        let origin = path.display().to_string();
        let Ok(mut table) = text.parse::<toml::Table>() else {
            return Self::parse(&text, &origin, base);
        };
        if !migrate_run_config(&mut table) {
            return Self::parse(&text, &origin, base);
        }
        match toml::to_string(&table) {
            Ok(migrated) => Self::parse(&migrated, &origin, base),
            Err(_) => Self::parse(&text, &origin, base),
        }
    }

    /// Parses and validates scenario text; `origin` names it in errors (a file
    /// name, or e.g. `"<built-in>"`). A custom PDE's `file` is read relative to
    /// the working directory.
    pub fn from_str(text: &str, origin: &str) -> Result<Self, ScenarioError> {
        Self::parse(text, origin, Path::new(""))
    }

    fn parse(text: &str, origin: &str, base: &Path) -> Result<Self, ScenarioError> {
        let mut scenario: Self = toml::from_str(text).map_err(|e| {
            // One problem keeps the parser's report (the line quoted); unknown
            // keys and what follows them are all listed (see `unknown_keys`).
            let problems = unknown_keys::<Self>(text);
            let message = match problems.len() {
                0 | 1 => e.to_string(),
                _ => listed(&problems),
            };
            ScenarioError::ConfigParse {
                origin: origin.to_owned(),
                message,
            }
        })?;
        if let PdeConfig::Custom(params) = &mut scenario.pde {
            params.load_definition(base)?;
        }
        scenario.validate_as(origin)?;
        Ok(scenario)
    }

    /// The scenario as TOML text that [`Scenario::from_str`] reads back to an equal
    /// value (defaults written out), for saving into run directories.
    pub fn to_toml_string(&self) -> String {
        // Serialising plain structs, enums, numbers and strings cannot fail.
        toml::to_string(self).expect("a scenario always serialises to TOML")
    }

    /// Applies one `dotted.key=value` override (the CLI's `--set`), validated
    /// exactly like a file: `value` is parsed as a TOML value (a bare word that is
    /// not valid TOML, like `soft`, is taken as a string), written at the dotted
    /// key of the scenario's TOML table, and the whole table is deserialised and
    /// validated again. On error the scenario is unchanged.
    pub fn set(&mut self, assignment: &str) -> Result<(), ScenarioError> {
        self.set_all(&[assignment])
    }

    /// Applies overrides in order as [`Scenario::set`] does, but validates
    /// once, after the last: settings that bound each other change together,
    /// in any order (`eval.samples=1` with `eval.plots=1`, `data.test_samples=1`
    /// with `training.validate_samples=1`), where one at a time the first
    /// would be refused. A malformed override or a value of the wrong type is
    /// named on its own (all such overrides at once); a failed validation
    /// names them all. On error the scenario is unchanged.
    pub fn set_all<S: AsRef<str>>(&mut self, assignments: &[S]) -> Result<(), ScenarioError> {
        let mut updated = self.clone();
        let mut rejected = Vec::new();
        // A change of `pde.kind` first: it resets the `pde` table (see
        // `with_override`), which would drop the new kind's constants set
        // before it.
        let kind_first = (assignments.iter()).filter(|a| changes_kind(a.as_ref()));
        let rest = (assignments.iter()).filter(|a| !changes_kind(a.as_ref()));
        for assignment in kind_first.chain(rest) {
            match updated.with_override(assignment.as_ref()) {
                Ok(next) => updated = next,
                Err(e) => rejected.push(e),
            }
        }
        if rejected.len() > 1 {
            return Err(ScenarioError::OverridesRejected { errors: rejected });
        }
        if let Some(e) = rejected.pop() {
            return Err(e);
        }
        // `pde.definition`, or a whole `pde` table (whose text, if any, was given).
        let text_given = (assignments.iter()).any(|a| {
            let key = a.as_ref().split_once('=').map(|(k, _)| k.trim());
            matches!(key, Some("pde.definition" | "pde"))
        });
        updated.read_changed_definition(self, text_given)?;
        let origin: Vec<String> = (assignments.iter())
            .map(|a| format!("--set {}", a.as_ref()))
            .collect();
        updated.validate_as(&origin.join(" "))?;
        *self = updated;
        Ok(())
    }

    /// Reads the definition of a custom PDE whose `file` the overrides
    /// changed (or that they made custom) from that file, unless they also
    /// gave its text (`pde.definition`, which takes precedence): the text
    /// read with the old file would otherwise stand for the new one. The path
    /// is taken as given, relative to the working directory like every path
    /// on a command line.
    fn read_changed_definition(
        &mut self,
        before: &Scenario,
        text_given: bool,
    ) -> Result<(), ScenarioError> {
        let PdeConfig::Custom(params) = &mut self.pde else {
            return Ok(());
        };
        if let PdeConfig::Custom(old) = &before.pde
            && old.file != params.file
            && !text_given
        {
            params.definition = None;
        }
        params.load_definition(Path::new(""))
    }

    /// The scenario with `assignment` written into its TOML table and read
    /// back, not yet validated (see [`Scenario::set`]).
    fn with_override(&self, assignment: &str) -> Result<Self, ScenarioError> {
        let fail = |reason: String| ScenarioError::Override {
            text: assignment.to_owned(),
            reason,
        };
        let (key, raw) = assignment
            .split_once('=')
            .ok_or_else(|| fail("expected `dotted.key=value`".into()))?;
        let (key, raw) = (key.trim(), raw.trim());
        let segments: Vec<&str> = key.split('.').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(fail(format!("malformed key `{key}`")));
        }
        let value = parse_toml_value(raw).map_err(|e| fail(format!("key `{key}`: {e}")))?;
        let mut table =
            toml::Table::try_from(self).expect("a scenario always serialises to a TOML table");
        let (leaf, parents) = segments.split_last().expect("split yields one segment");
        let mut node = &mut table;
        for (depth, segment) in parents.iter().enumerate() {
            let entry = node
                .entry(segment.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            node = entry.as_table_mut().ok_or_else(|| {
                fail(format!(
                    "`{}` is a value, not a table",
                    segments[..=depth].join(".")
                ))
            })?;
        }
        if segments == ["pde", "kind"] && node.get("kind") != Some(&value) {
            // The table holds the old kind's constants, its defaults filled in
            // when the scenario was read: none of them is the new kind's. The
            // new kind starts from its own defaults; its constants follow as
            // further overrides (`--set pde.nu=…`).
            node.clear();
        }
        node.insert(leaf.to_string(), value);
        table
            .try_into()
            .map_err(|e: toml::de::Error| fail(format!("key `{key}`: {}", e.message().trim_end())))
    }

    /// Cross-field checks (sizes positive, split length = grid dimension, points
    /// per expert ≤ tile size, …). [`Scenario::from_str`] and [`Scenario::set`] call
    /// it; call it again after changing fields directly. One invalid setting is
    /// a [`ScenarioError::ConfigInvalid`]; several are all named at once in a
    /// [`ScenarioError::ConfigInvalidSeveral`].
    pub fn validate(&self) -> Result<(), ScenarioError> {
        self.validate_as(&self.name)
    }

    /// The grid dimensions `[nt, nx, (ny)]`.
    pub fn dims(&self) -> Vec<usize> {
        let g = &self.grid;
        let mut dims = vec![g.nt, g.nx];
        dims.extend(g.ny);
        dims
    }

    /// The model's grid: `t = linspace(0, t_max, nt)`; for diffusion–sorption and
    /// heat `nx` cell centres on `(0, 1)` (PDEBench's finite-volume layout); for
    /// advection a periodic `x` on `[0, 1)`; for Navier–Stokes a periodic unit
    /// square.
    pub fn grid(&self) -> Result<Grid, ScenarioError> {
        let g = &self.grid;
        let grid = match (&self.pde, g.ny) {
            (PdeConfig::NavierStokes(_), Some(ny)) => Grid::uniform_txy(g.nt, g.nx, ny, g.t_max)?,
            (PdeConfig::Custom(p), _) => custom_grid(p, &self.name, g)?,
            (PdeConfig::Advection(_), None) => Grid::new(vec![
                tessera_meshes::Axis::linspace("t", 0.0, g.t_max, g.nt)?,
                tessera_meshes::Axis::periodic("x", 0.0, 1.0, g.nx)?,
            ])?,
            (_, None) => Grid::uniform_tx(g.nt, g.nx, g.t_max)?,
            (_, Some(_)) => {
                let ny = g.ny.unwrap_or(0);
                return Err(invalid(&self.name, "grid.ny", ny, DIM_MISMATCH));
            }
        };
        Ok(grid)
    }

    /// The tile split actually used: `constraint.experts` for `moe`, all ones for
    /// `hard` and `soft` (one global problem, or none).
    pub fn expert_split(&self) -> Vec<usize> {
        match self.constraint.method {
            Method::Moe => self.constraint.experts.clone(),
            Method::Hard | Method::Soft => vec![1; self.dims().len()],
        }
    }

    /// Number of backbone outputs: 1 for the soft method, `n_basis` otherwise.
    pub fn backbone_outputs(&self) -> usize {
        match self.constraint.method {
            Method::Soft => 1,
            Method::Hard | Method::Moe => self.model.n_basis,
        }
    }

    /// Time levels the model trains on: those with `t ≤ training.horizon`
    /// (all `nt` without a horizon). A horizon between two levels keeps the
    /// earlier one, so training never sees a time past the horizon.
    pub fn training_levels(&self) -> usize {
        let g = &self.grid;
        match self.training.horizon {
            None => g.nt,
            Some(horizon) => {
                let dt = g.t_max / (g.nt - 1) as f64;
                // The relative slack keeps a horizon on a level (400 of
                // linspace(0, 500, 51)) on it despite rounding in `horizon / dt`.
                ((horizon / dt) * (1.0 + 1e-9)).floor() as usize + 1
            }
        }
    }

    /// The scenario the model trains on: the grid cut to its first
    /// [`Scenario::training_levels`] (`t_max` the last of them) and no horizon.
    /// Equal to `self` without a horizon.
    pub fn training_scenario(&self) -> Self {
        let mut training = self.clone();
        let levels = self.training_levels();
        if levels != self.grid.nt {
            let dt = self.grid.t_max / (self.grid.nt - 1) as f64;
            training.grid.nt = levels;
            training.grid.t_max = dt * (levels - 1) as f64;
        }
        training.training.horizon = None;
        training
    }

    /// Factor on the backbone's normalised time coordinate: the grid's time
    /// over the trained window's, `(nt − 1) / (levels − 1)`. The backbone sees
    /// `t / t_trained`, so a time means the same input in training (`[0, 1]`) and
    /// in an extrapolating evaluation (up to this factor); 1 without a horizon.
    pub fn time_feature_scale(&self) -> f64 {
        (self.grid.nt - 1) as f64 / (self.training_levels() - 1) as f64
    }

    /// Number of test trajectories evaluated (`eval.samples`, default all).
    pub fn eval_samples(&self) -> usize {
        self.eval.samples.unwrap_or(self.data.test_samples)
    }

    /// Diffusion–sorption reference-solver cells (`data.reference.nx`, default
    /// `grid.nx`).
    pub fn reference_nx(&self) -> usize {
        self.data.reference.nx.unwrap_or(self.grid.nx)
    }

    /// Navier–Stokes reference-solver resolution (`data.reference.resolution`,
    /// default `grid.nx`).
    pub fn reference_resolution(&self) -> usize {
        self.data.reference.resolution.unwrap_or(self.grid.nx)
    }
}

/// The grid of a custom PDE: time, then each space axis over its `domain`
/// interval, periodic where the definition says so.
fn custom_grid(p: &CustomParams, origin: &str, g: &GridConfig) -> Result<Grid, ScenarioError> {
    use tessera_meshes::Axis;
    let pde = p.pde(origin)?;
    let mut axes = vec![Axis::linspace("t", 0.0, g.t_max, g.nt)?];
    let points = [Some(g.nx), g.ny];
    for (axis, ((&[lo, hi], &periodic), n)) in p
        .domain
        .iter()
        .zip(&pde.periodic_axes()[1..])
        .zip(points)
        .enumerate()
    {
        let name = ["x", "y"][axis];
        let n = n.unwrap_or(0);
        axes.push(match periodic {
            true => Axis::periodic(name, lo, hi, n)?,
            false => Axis::linspace(name, lo, hi, n)?,
        });
    }
    Ok(Grid::new(axes)?)
}

/// Rewrites a saved run config's table as [`Scenario::from_run_config`]
/// says; whether anything changed.
fn migrate_run_config(table: &mut toml::Table) -> bool {
    let mut changed = false;
    let kind = (table.get("pde"))
        .and_then(|pde| pde.get("kind"))
        .and_then(toml::Value::as_str)
        .map(str::to_owned);
    if let Some(pde) = table.get_mut("pde").and_then(toml::Value::as_table_mut)
        && kind.as_deref() == Some("diffusion-sorption")
        && !pde.contains_key("boundary")
    {
        pde.insert("boundary".into(), "cell-centres".into());
        changed = true;
    }
    let reference = (table.get_mut("data"))
        .and_then(toml::Value::as_table_mut)
        .and_then(|data| data.get_mut("reference"))
        .and_then(toml::Value::as_table_mut);
    if let (Some(reference), Some(kind)) = (reference, kind) {
        let read = PdeConfig::reference_keys_of(&kind);
        let unread = |key: &str| {
            !read.contains(&key)
                && (PdeConfig::REFERENCE_KEYS.iter()).any(|(_, keys)| keys.contains(&key))
        };
        let before = reference.len();
        reference.retain(|key, _| !unread(key));
        changed |= reference.len() != before;
    }
    changed
}

/// Whether an override sets `pde.kind`.
fn changes_kind(assignment: &str) -> bool {
    assignment
        .split_once('=')
        .is_some_and(|(key, _)| key.trim() == "pde.kind")
}

/// A `--set` value: TOML if it parses as a TOML value, else the raw text as a
/// string (so `method=soft` works without shell-quoted quotes). An integer
/// beyond TOML's 64-bit signed ones is an error instead: taken as a string
/// it would be refused as "invalid type: string", not for its size.
fn parse_toml_value(raw: &str) -> Result<toml::Value, String> {
    if let Some(value) = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
    {
        return Ok(value);
    }
    // Without TOML's digit separators, which `parse` does not know.
    match raw.replace('_', "").parse::<i64>() {
        Err(e) if matches!(e.kind(), PosOverflow | NegOverflow) => Err(format!(
            "{raw} is outside TOML's integers, {}..={}",
            i64::MIN,
            i64::MAX
        )),
        _ => Ok(toml::Value::String(raw.to_owned())),
    }
}
