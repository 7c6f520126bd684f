//! Datasets for any [`MolPde`]: the same [`Dataset`] (and so the same files)
//! the built-in generators write, made by the method-of-lines solver.
//!
//! Reproducibility follows [`crate::dataset::generate()`]: sample `i` draws its
//! initial condition from `ChaCha8Rng::seed_from_u64(seed)` on the split's
//! stream `i`, so samples are independent of the thread count and the splits
//! never share initial conditions.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::ScenarioError;
use crate::dataset::generate::progress;
use crate::dataset::{Dataset, Generation};
use crate::mol::{Discretisation, MolDomain, MolOptions, MolPde, MolStats, MolSummary};

/// A family of initial conditions to draw samples from.
pub trait InitialFamily: Sync {
    /// One draw on the solver grid: `coordinates` holds the solver points'
    /// coordinates (`[points, dims]`, row-major), the result one value per
    /// point and component (`[points, components]`).
    fn sample(&self, rng: &mut ChaCha8Rng, coordinates: &[f64], dims: usize) -> Vec<f64>;
}

impl<F> InitialFamily for F
where
    F: Fn(&mut ChaCha8Rng, &[f64], usize) -> Vec<f64> + Sync,
{
    fn sample(&self, rng: &mut ChaCha8Rng, coordinates: &[f64], dims: usize) -> Vec<f64> {
        self(rng, coordinates, dims)
    }
}

/// Solves `pde` on `domain` from `options.samples` draws of `family` and
/// returns the trajectories at `times` on the output grid, with `config` (the
/// text that defined the run) stored alongside, and what the integrations
/// cost together.
///
/// Errors: no samples, a PDE of several components (a [`Dataset`] holds one
/// field per sample), a family returning the wrong number of values, and any
/// solver failure (naming the sample).
pub fn generate<P: MolPde>(
    pde: &P,
    domain: &MolDomain,
    times: &[f64],
    family: &dyn InitialFamily,
    solver: &MolOptions,
    options: &Generation,
    config: String,
) -> Result<(Dataset, MolSummary), ScenarioError> {
    if options.samples == 0 {
        return Err(ScenarioError::InvalidValue {
            what: "number of samples",
            value: 0.0,
            reason: "must be at least 1",
        });
    }
    let discretisation = one_field(pde, domain)?;
    let bar = progress(options.samples, options.quiet, "generating");
    let samples = (0..options.samples)
        .into_par_iter()
        .map(|i| {
            let u0 = draw(&discretisation, domain, family, options, i);
            let solution =
                discretisation
                    .solve(&u0, times, solver)
                    .map_err(|source| ScenarioError::Mol {
                        sample: Some(i),
                        source,
                    })?;
            bar.inc(1);
            let frames = solution.frames.into_iter().map(|v| v as f32).collect();
            Ok((frames, solution.stats))
        })
        .collect::<Result<Vec<(Vec<f32>, MolStats)>, ScenarioError>>()?;
    bar.finish_and_clear();
    let (samples, stats): (Vec<_>, Vec<_>) = samples.into_iter().unzip();
    let mut axes = discretisation.output_axes().into_iter();
    let x = axes.next().unwrap_or_default();
    let dataset = Dataset::new(times.to_vec(), x, axes.next(), config, samples)?;
    Ok((dataset, MolSummary::new(solver.method, &stats)))
}

/// The initial conditions of the samples [`generate`] would solve, on the
/// output grid (`[output points]`, in the `f32` a [`Dataset`] holds): the
/// first frame of each of its trajectories, without integrating.
///
/// Errors: as [`generate`], but for the solver's.
pub fn initial_conditions<P: MolPde>(
    pde: &P,
    domain: &MolDomain,
    family: &dyn InitialFamily,
    options: &Generation,
) -> Result<Vec<Vec<f32>>, ScenarioError> {
    let discretisation = one_field(pde, domain)?;
    (0..options.samples)
        .into_par_iter()
        .map(|i| {
            let mut u0 = draw(&discretisation, domain, family, options, i);
            // What the solve does first: the size check and dealiasing.
            discretisation
                .dealias_field(&mut u0)
                .map_err(|source| ScenarioError::Mol {
                    sample: Some(i),
                    source,
                })?;
            let frame = discretisation.restrict_field(&u0);
            Ok(frame.into_iter().map(|v| v as f32).collect())
        })
        .collect()
}

/// `pde` discretised on `domain`.
///
/// Errors: the discretisation's, and a PDE of several components (a
/// [`Dataset`] holds one field per sample).
fn one_field<'a, P: MolPde>(
    pde: &'a P,
    domain: &MolDomain,
) -> Result<Discretisation<'a, P>, ScenarioError> {
    let discretisation = Discretisation::new(pde, domain)?;
    if discretisation.components() != 1 {
        return Err(ScenarioError::Unsupported {
            what: "a dataset of one field per sample",
            pde: format!("a PDE of {} components", discretisation.components()),
        });
    }
    Ok(discretisation)
}

/// Sample `i`'s draw of `family` on the solver grid.
fn draw<P: MolPde>(
    discretisation: &Discretisation<'_, P>,
    domain: &MolDomain,
    family: &dyn InitialFamily,
    options: &Generation,
    i: usize,
) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    rng.set_stream(options.stream(i));
    let coordinates = discretisation.solver_coordinates();
    family.sample(&mut rng, coordinates, domain.axes().len())
}
