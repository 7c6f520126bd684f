//! Making datasets: sample initial conditions, run the reference solver on
//! every sample in parallel (rayon), collect the trajectories.
//!
//! Initial conditions:
//! - diffusion–sorption: spatially constant `u0 ~ U(0, 0.2)` (PDEBench's
//!   `gen_diff_sorp.py`);
//! - Navier–Stokes: the periodic Gaussian random field of
//!   [`crate::navier_stokes::random_field`], sampled at the solver resolution.
//!
//! Reproducibility: sample `i` draws from `ChaCha8Rng::seed_from_u64(seed)` on
//! stream `i` (training split) or `2⁶² + i` (test split), so any sample can be
//! regenerated alone, the result does not depend on the thread count, and the
//! two splits never share initial conditions.
//!
//! Resolution: the training split is written on the scenario's grid. The test
//! split of a 2-D scenario is written at the largest of `eval.resolutions`
//! (and the grid), so that evaluation can subsample it to each resolution (the
//! paper's Navier–Stokes test set is 256², evaluated at 64², 128², 256²).

use std::fmt;
use std::str::FromStr;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::Dataset;
use crate::config::{CustomParams, PdeConfig, Scenario};
use crate::dataset::grid_scale::grid_scale_pile_up;
use crate::mol::{self, InitialFamily, MolDomain, MolOptions, MolSummary, SpatialAxis};
use crate::navier_stokes::PeriodicGrf;
use crate::navier_stokes::random_field::LENGTH_SCALE;
use crate::{ScenarioError, diffusion_sorption, navier_stokes};

/// Upper bound of PDEBench's constant initial concentration `U(0, 0.2)`.
const DS_IC_MAX: f64 = 0.2;
/// First random stream of the test split.
const TEST_STREAM: u64 = 1 << 62;

/// Which part of the data a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Training initial conditions (and their trajectories).
    Train,
    /// Held-out test trajectories.
    Test,
}

impl FromStr for Split {
    type Err = ScenarioError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "train" => Ok(Self::Train),
            "test" => Ok(Self::Test),
            other => Err(ScenarioError::Override {
                text: other.to_owned(),
                reason: "split must be `train` or `test`".into(),
            }),
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Train => "train",
            Self::Test => "test",
        })
    }
}

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct Generation {
    /// Number of samples.
    pub samples: usize,
    /// Seed of the initial conditions.
    pub seed: u64,
    /// Training or test split (different random streams and, in 2-D, resolution).
    pub split: Split,
    /// Suppress the progress bar (it is also hidden when stderr is not a terminal).
    pub quiet: bool,
}

impl Generation {
    /// The scenario's own sizes and seed for `split`.
    pub fn for_split(scenario: &Scenario, split: Split) -> Self {
        Self {
            samples: match split {
                Split::Train => scenario.data.train_samples,
                Split::Test => scenario.data.test_samples,
            },
            seed: scenario.seed,
            split,
            quiet: false,
        }
    }

    pub(crate) fn stream(&self, index: usize) -> u64 {
        match self.split {
            Split::Train => index as u64,
            Split::Test => TEST_STREAM + index as u64,
        }
    }
}

/// A progress bar on stderr, or a hidden one.
pub(crate) fn progress(len: usize, quiet: bool, message: &'static str) -> ProgressBar {
    let target = if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(Some(len as u64), target).with_message(message);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{elapsed_precise}] {bar:40} {pos}/{len} (eta {eta})")
    {
        bar.set_style(style);
    }
    bar
}

/// Generates `options.samples` trajectories of the scenario's PDE with its
/// reference solver.
pub fn generate(scenario: &Scenario, options: &Generation) -> Result<Dataset, ScenarioError> {
    generate_with_summary(scenario, options).map(|(dataset, _)| dataset)
}

/// [`generate`], and for a PDE defined in TOML what its method-of-lines
/// integrations cost ([`MolSummary`]: which integrator ran, and where
/// `auto` switched); `None` for the built-in reference solvers.
pub fn generate_with_summary(
    scenario: &Scenario,
    options: &Generation,
) -> Result<(Dataset, Option<MolSummary>), ScenarioError> {
    check_request(scenario, options)?;
    let config = scenario.to_toml_string();
    // The method-of-lines generator draws its own progress bar.
    if let PdeConfig::Custom(params) = &scenario.pde {
        let (dataset, summary) = generate_custom(scenario, params, options, config)?;
        return Ok((dataset, Some(summary)));
    }
    let grid = scenario.grid()?;
    let t = grid.axis(0).coords().to_vec();
    let bar = progress(options.samples, options.quiet, "generating");
    let run = |solve: &(dyn Fn(usize) -> Result<Vec<f64>, ScenarioError> + Sync)| {
        (0..options.samples)
            .into_par_iter()
            .map(|i| {
                let trajectory = solve(i)?;
                bar.inc(1);
                Ok(trajectory.into_iter().map(|v| v as f32).collect())
            })
            .collect::<Result<Vec<Vec<f32>>, ScenarioError>>()
    };
    let dataset = match &scenario.pde {
        PdeConfig::DiffusionSorption(params) => {
            let solver = diffusion_sorption::ReferenceSolver::new(
                params,
                scenario.reference_nx(),
                scenario.data.reference.rtol(),
            )?;
            let nx = scenario.grid.nx;
            let samples =
                run(&|i| solver.solve_on_grid(&vec![ds_initial_value(options, i); nx], &t))?;
            Dataset::new(t, grid.axis(1).coords().to_vec(), None, config, samples)?
        }
        PdeConfig::NavierStokes(params) => {
            let (resolution, m) = ns_resolutions(scenario, options.split);
            let solver = navier_stokes::ReferenceSolver::new(
                params.nu,
                resolution,
                scenario.data.reference.dt(),
            )?;
            let grf = PeriodicGrf::new(resolution, LENGTH_SCALE)?;
            let samples = run(&|i| {
                let w0 = grf.sample(options.seed, options.stream(i));
                solver
                    .solve_on_grid(&w0, resolution, resolution, &t)
                    .and_then(|fine| subsample_frames(&fine, resolution, m))
            })?;
            let coords: Vec<f64> = (0..m).map(|i| i as f64 / m as f64).collect();
            Dataset::new(t, coords.clone(), Some(coords), config, samples)?
        }
        other => {
            return Err(ScenarioError::Unsupported {
                what: "a reference solver",
                pde: other.kind().to_owned(),
            });
        }
    };
    bar.finish_and_clear();
    Ok((dataset, None))
}

/// Ground truth for a PDE defined in TOML: its `[initial]` family solved by
/// the method of lines on the scenario's domain, refined by
/// `data.reference.refinement`, to `data.reference.rtol`.
fn generate_custom(
    scenario: &Scenario,
    params: &CustomParams,
    options: &Generation,
    config: String,
) -> Result<(Dataset, MolSummary), ScenarioError> {
    let t = scenario.grid()?.axis(0).coords().to_vec();
    with_custom(scenario, params, |pde, mol, domain, family| {
        let spectral = mol::MolPde::stencil(mol) == mol::Stencil::Spectral;
        if !options.quiet {
            let warnings = pde.seams(&params.domain).into_iter();
            for warning in warnings.filter_map(|seam| seam.warning(spectral)) {
                eprintln!("warning: {}: {warning}", scenario.name);
            }
        }
        let generated = mol::generate(
            mol,
            domain,
            &t,
            family,
            &mol_options(scenario),
            options,
            config,
        )?;
        if spectral
            && !options.quiet
            && let Some(pile_up) = grid_scale_pile_up(
                &generated.0,
                scenario.data.reference.dealias,
                scenario.data.reference.refinement(),
            )
        {
            eprintln!("warning: {}: {pile_up}", scenario.name);
        }
        Ok(generated)
    })
}

/// `run` on a PDE defined in TOML: the definition, its method-of-lines
/// form, the scenario's domain refined by `data.reference.refinement`, and
/// its `[initial]` family.
///
/// Errors: a definition without an `[initial]` family or that does not
/// compile, and `run`'s.
fn with_custom<R>(
    scenario: &Scenario,
    params: &CustomParams,
    run: impl FnOnce(
        &crate::custom::CustomPde,
        &crate::custom::CustomMol<'_>,
        &MolDomain,
        &dyn InitialFamily,
    ) -> Result<R, ScenarioError>,
) -> Result<R, ScenarioError> {
    let pde = params.pde(&scenario.name)?;
    let family = pde
        .initial_family()
        .ok_or_else(|| ScenarioError::Unsupported {
            what: "data generation without an [initial] family in the definition",
            pde: pde.name().to_owned(),
        })?;
    let points = &scenario.dims()[1..];
    let domain = mol_domain(
        scenario,
        params,
        points,
        scenario.data.reference.refinement(),
    )?;
    let mol = pde
        .mol()
        .map_err(|e| ScenarioError::CustomPde(Box::new(e)))?;
    run(&pde, &mol, &domain, family)
}

/// Each of `options.samples` samples' initial condition on the grid
/// [`generate`] writes the split at (`[x, (y)]`, in the `f32` a [`Dataset`]
/// holds): the first frame of each trajectory `generate` would return, bit
/// for bit, without running the reference solver. What physics-only
/// training reads of its split: at the Navier–Stokes paper scale, 4000
/// trajectories cost about 15 hours of a 2-core machine and 12 GB, their
/// initial conditions seconds and 65 MB.
///
/// Errors: as [`generate`].
pub fn initial_conditions(
    scenario: &Scenario,
    options: &Generation,
) -> Result<Vec<Vec<f32>>, ScenarioError> {
    check_request(scenario, options)?;
    let to_f32 = |frame: Vec<f64>| frame.into_iter().map(|v| v as f32).collect();
    match &scenario.pde {
        PdeConfig::Custom(params) => with_custom(scenario, params, |_, mol, domain, family| {
            mol::initial_conditions(mol, domain, family, options)
        }),
        PdeConfig::DiffusionSorption(_) => Ok((0..options.samples)
            .map(|i| vec![ds_initial_value(options, i) as f32; scenario.grid.nx])
            .collect()),
        PdeConfig::NavierStokes(_) => {
            let (resolution, m) = ns_resolutions(scenario, options.split);
            let grf = PeriodicGrf::new(resolution, LENGTH_SCALE)?;
            (0..options.samples)
                .into_par_iter()
                .map(|i| {
                    let w0 = grf.sample(options.seed, options.stream(i));
                    subsample_frames(&w0, resolution, m).map(to_f32)
                })
                .collect()
        }
        other => Err(ScenarioError::Unsupported {
            what: "a reference solver",
            pde: other.kind().to_owned(),
        }),
    }
}

/// Errors unless `options` asks for at least one sample of a valid scenario.
fn check_request(scenario: &Scenario, options: &Generation) -> Result<(), ScenarioError> {
    if options.samples == 0 {
        return Err(ScenarioError::InvalidValue {
            what: "number of samples",
            value: 0.0,
            reason: "must be at least 1",
        });
    }
    scenario.validate()
}

/// Sample `i`'s constant diffusion–sorption initial value, `U(0, 0.2)`.
fn ds_initial_value(options: &Generation, i: usize) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    rng.set_stream(options.stream(i));
    DS_IC_MAX * rng.random::<f64>()
}

/// The Navier–Stokes solver's resolution and the one `split` is written at.
fn ns_resolutions(scenario: &Scenario, split: Split) -> (usize, usize) {
    let m = match split {
        Split::Train => scenario.grid.nx,
        Split::Test => scenario
            .eval
            .resolutions
            .iter()
            .copied()
            .chain([scenario.grid.nx])
            .max()
            .unwrap_or(scenario.grid.nx),
    };
    (scenario.reference_resolution().max(m), m)
}

/// The method-of-lines settings of a scenario: `data.reference.rtol`, an
/// absolute tolerance a hundred times smaller (fields of order one), and
/// `data.reference.integrator`.
pub(crate) fn mol_options(scenario: &Scenario) -> MolOptions {
    let reference = &scenario.data.reference;
    MolOptions {
        rtol: reference.rtol(),
        atol: reference.rtol() * 1e-2,
        method: reference.integrator,
        ..MolOptions::default()
    }
}

/// The method-of-lines domain of a custom PDE: its `domain` intervals with
/// `points` output points each, refined by `refinement`, dealiased as
/// `data.reference.dealias` says.
pub(crate) fn mol_domain(
    scenario: &Scenario,
    params: &CustomParams,
    points: &[usize],
    refinement: usize,
) -> Result<MolDomain, ScenarioError> {
    let axes = params
        .domain
        .iter()
        .zip(points)
        .map(|(&[lo, hi], &points)| SpatialAxis { lo, hi, points })
        .collect();
    Ok(MolDomain::new(axes, refinement)?.dealiased(scenario.data.reference.dealias))
}

/// Every `n/m`-th point of each `n × n` frame.
fn subsample_frames(frames: &[f64], n: usize, m: usize) -> Result<Vec<f64>, ScenarioError> {
    if m == 0 || !n.is_multiple_of(m) {
        return Err(ScenarioError::ShapeMismatch {
            what: format!("output resolution (must divide the solver resolution {n})"),
            expected: vec![n],
            got: vec![m],
        });
    }
    let s = n / m;
    Ok(frames
        .chunks_exact(n * n)
        .flat_map(|frame| (0..m).flat_map(move |i| (0..m).map(move |j| frame[i * s * n + j * s])))
        .collect())
}
