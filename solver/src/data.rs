//! Training initial conditions and test trajectories for a scenario: loaded
//! from `data.train_file` / `data.test_file` when named, else generated with the
//! reference solver ([`tessera_scenarios::dataset::generate`]) and, when
//! `data.cache_dir` is set, cached there under a name that hashes every setting
//! the data depends on (so a changed setting never reuses stale data).
//!
//! A generated training split holds only the initial conditions unless a
//! data loss (`training.loss.data > 0`) reads the trajectories: physics-only
//! training reads nothing else of it, and at the paper scales the
//! trajectories were most of a run's setup (Navier–Stokes: 4000 solves at
//! 256², about 15 hours of a 2-core machine and 12 GB; diffusion–sorption:
//! 8000 trajectories, 6.6 GB in memory). The initial conditions are drawn
//! as the generator draws them ([`tessera_scenarios::dataset::initial_conditions`]),
//! so a run trains on the same values either way.

use std::borrow::Cow;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tessera_meshes::Grid;
use tessera_scenarios::config::{GridConfig, PdeConfig, ReferenceConfig};
use tessera_scenarios::dataset::{Generation, Part, Split, generate, initial_conditions};
use tessera_scenarios::{Dataset, Scenario};

use crate::SolverError;
pub(crate) use restriction::Restriction;

/// Trajectories on one grid (the model's, or one of `eval.resolutions` for a
/// few samples at a time), in f64, row-major `[t, x, (y)]`; the first
/// frame of each is its initial condition. Samples made by
/// [`Samples::initial_only`] hold that frame alone.
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    dims: Vec<usize>,
    /// Time levels each sample holds: `dims[0]`, or 1 for initial
    /// conditions only.
    levels: usize,
    trajectories: Vec<Vec<f64>>,
}

impl Samples {
    /// Samples of grid shape `dims = [nt, nx, (ny)]`; every trajectory must have
    /// `Π dims` finite values.
    pub fn new(dims: Vec<usize>, trajectories: Vec<Vec<f64>>) -> Result<Self, SolverError> {
        let levels = dims.first().copied().unwrap_or_default();
        Self::holding(dims, levels, trajectories)
    }

    /// Samples of grid shape `dims = [nt, nx, (ny)]` of which only the
    /// initial conditions are known (each `Π dims[1..]` finite values): what
    /// physics-only training reads. [`Samples::trajectories`] is an error for
    /// them; the rest works as for whole trajectories.
    pub fn initial_only(dims: Vec<usize>, initial: Vec<Vec<f64>>) -> Result<Self, SolverError> {
        Self::holding(dims, 1, initial)
    }

    /// Samples of `dims` holding their first `levels` time levels.
    fn holding(
        dims: Vec<usize>,
        levels: usize,
        trajectories: Vec<Vec<f64>>,
    ) -> Result<Self, SolverError> {
        if dims.len() < 2 {
            return Err(SolverError::ShapeMismatch {
                what: "sample grid [nt, nx, (ny)]",
                expected: vec![0, 0],
                got: dims,
            });
        }
        let len = levels * dims[1..].iter().product::<usize>();
        for trajectory in &trajectories {
            if trajectory.len() != len {
                return Err(SolverError::ShapeMismatch {
                    what: "trajectory",
                    expected: dims.clone(),
                    got: vec![trajectory.len()],
                });
            }
            let count = trajectory.iter().filter(|v| !v.is_finite()).count();
            if count > 0 {
                return Err(SolverError::NonFinite {
                    what: "trajectory",
                    count,
                });
            }
        }
        Ok(Self {
            dims,
            levels,
            trajectories,
        })
    }

    /// The first `count` samples of `dataset` on `grid`. The dataset's time
    /// levels must be the grid's, each of its spatial sizes a multiple of
    /// the grid's: a finer set is restricted by its coordinates, to every
    /// `k`-th point (a periodic axis) or the means of `k` cells (a
    /// cell-centred one: what the generator writes for its own coarser grid).
    ///
    /// Errors: sizes that do not fit or too few samples
    /// ([`SolverError::ShapeMismatch`]); coordinates that are not the
    /// grid's — another `t_max`, domain or layout
    /// ([`SolverError::DatasetGrid`]).
    pub fn from_dataset(dataset: &Dataset, grid: &Grid, count: usize) -> Result<Self, SolverError> {
        Self::from_dataset_range(dataset, grid, 0..count)
    }

    /// Samples `range` of `dataset` on `grid`, by the rule of
    /// [`Samples::from_dataset`]: a part of a stored test split, converted to
    /// f64 only while it is evaluated.
    pub fn from_dataset_range(
        dataset: &Dataset,
        grid: &Grid,
        range: Range<usize>,
    ) -> Result<Self, SolverError> {
        let restriction = Restriction::of_dataset(dataset, grid)?;
        let Some(stored) = dataset.trajectories().get(range.clone()) else {
            return Err(SolverError::ShapeMismatch {
                what: "number of samples in the dataset (at least the end of those read)",
                expected: vec![range.end],
                got: vec![dataset.len()],
            });
        };
        let trajectories = stored.iter().map(|t| restriction.apply(t)).collect();
        Self::new(grid_dims(grid), trajectories)
    }

    /// Grid shape `[nt, nx, (ny)]`.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.trajectories.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.trajectories.is_empty()
    }

    /// All trajectories.
    ///
    /// Errors: samples that hold their initial conditions only
    /// ([`SolverError::InitialConditionsOnly`]).
    pub fn trajectories(&self) -> Result<&[Vec<f64>], SolverError> {
        if self.holds_trajectories() {
            Ok(&self.trajectories)
        } else {
            Err(SolverError::InitialConditionsOnly)
        }
    }

    /// Whether the samples hold whole trajectories, not only their initial
    /// conditions.
    pub fn holds_trajectories(&self) -> bool {
        self.levels == self.dims[0]
    }

    /// The time levels each sample holds and their values, for a transfer
    /// that rebuilds the samples ([`Samples::from_parts`]).
    pub(crate) fn parts(&self) -> (usize, &[Vec<f64>]) {
        (self.levels, &self.trajectories)
    }

    /// Samples of `dims` whose values hold their first `levels` time levels
    /// (all of them or 1), as [`Samples::parts`] gave them.
    ///
    /// Errors: another number of levels, or values of another size.
    pub(crate) fn from_parts(
        dims: Vec<usize>,
        levels: usize,
        values: Vec<Vec<f64>>,
    ) -> Result<Self, SolverError> {
        if levels != 1 && Some(&levels) != dims.first() {
            return Err(SolverError::ShapeMismatch {
                what: "time levels held (1 or all)",
                expected: dims,
                got: vec![levels],
            });
        }
        Self::holding(dims, levels, values)
    }

    /// The same samples cut to their first `levels` time levels (the training
    /// window of a temporal-extrapolation run). Errors if `levels` is 0 or more
    /// than the samples have.
    pub fn first_levels(&self, levels: usize) -> Result<Self, SolverError> {
        if levels == 0 || levels > self.dims[0] {
            return Err(SolverError::ShapeMismatch {
                what: "time levels kept (1 to the samples' own)",
                expected: vec![self.dims[0]],
                got: vec![levels],
            });
        }
        let mut dims = self.dims.clone();
        dims[0] = levels;
        let held = if self.holds_trajectories() { levels } else { 1 };
        let len = held * dims[1..].iter().product::<usize>();
        let trajectories = self
            .trajectories
            .iter()
            .map(|t| t[..len].to_vec())
            .collect();
        Ok(Self {
            dims,
            levels: held,
            trajectories,
        })
    }

    /// The initial condition (first frame) of sample `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    #[track_caller]
    pub fn initial_condition(&self, i: usize) -> &[f64] {
        let frame: usize = self.dims[1..].iter().product();
        &self.trajectories[i][..frame]
    }

    /// The root mean square of sample `i`'s initial condition: its amplitude,
    /// which for a constant initial value (diffusion–sorption's `u0`) is that
    /// value, so errors can be read against it.
    ///
    /// # Panics
    /// If `i` is out of range.
    pub fn initial_rms(&self, i: usize) -> f64 {
        let frame = self.initial_condition(i);
        (frame.iter().map(|v| v * v).sum::<f64>() / frame.len() as f64).sqrt()
    }

    /// The initial conditions of samples `indices`, owned (a model batch).
    ///
    /// # Panics
    /// If an index is out of range.
    #[track_caller]
    pub fn initial_conditions(&self, indices: &[usize]) -> Vec<Vec<f64>> {
        indices
            .iter()
            .map(|&i| self.initial_condition(i).to_vec())
            .collect()
    }
}

/// The sizes `[nt, nx, (ny)]` of `grid`.
pub(crate) fn grid_dims(grid: &Grid) -> Vec<usize> {
    grid.axes().iter().map(|a| a.len()).collect()
}

/// The training and test samples of a run.
#[derive(Debug, Clone)]
pub struct RunData {
    /// `data.train_samples` training samples: the trainer reads their initial
    /// conditions, and their trajectories only for the optional data loss
    /// (without one, a generated split holds the initial conditions only).
    pub train: Samples,
    /// `data.test_samples` held-out trajectories.
    pub test: Samples,
    /// With `eval.resolutions`: the same test trajectories as stored (float32,
    /// at the largest of those resolutions), which the evaluation restricts
    /// to each resolution a few samples at a time. `None` without
    /// `eval.resolutions`, when the evaluation can read them again (see
    /// [`RunData::load`]), and on every rank but 0 of a multi-rank run (rank
    /// 0 alone evaluates, so the broadcast leaves it out);
    /// [`RunData::stored_test`] is what the evaluation reads.
    pub stored_test: Option<Dataset>,
}

impl RunData {
    /// Loads or generates both splits (see the module docs). `quiet` hides the
    /// generator's progress bar.
    ///
    /// The stored test split is held only when nothing can give it back
    /// later: read from `data.test_file` or the cache, it is read again for
    /// the evaluation ([`RunData::stored_test`]) rather than held through
    /// the training (at the Navier–Stokes paper scale, 100 trajectories at
    /// 256², 1.7 GB for the days a training takes).
    pub fn load(scenario: &Scenario, quiet: bool) -> Result<Self, SolverError> {
        let (test, stored_test) = Self::load_test(scenario, quiet)?;
        Ok(Self {
            train: Samples::load(scenario, Split::Train, quiet)?,
            test,
            stored_test: stored_test.filter(|_| !test_split_on_disk(scenario)),
        })
    }

    /// Drops the training split (keeping its grid): for a run whose training
    /// is over, before its evaluation, which reads the test split only (with
    /// a data loss the split holds whole trajectories, the largest data a
    /// run holds).
    pub fn release_training_split(&mut self) {
        self.train = Samples {
            dims: self.train.dims.clone(),
            levels: self.train.levels,
            trajectories: Vec::new(),
        };
    }

    /// The stored test split the evaluation at `eval.resolutions` reads:
    /// the one held, or read again from the file or cache it came from
    /// (see [`RunData::load`]); `None` without `eval.resolutions`.
    pub fn stored_test(
        &self,
        scenario: &Scenario,
        quiet: bool,
    ) -> Result<Option<Cow<'_, Dataset>>, SolverError> {
        if let Some(held) = &self.stored_test {
            return Ok(Some(Cow::Borrowed(held)));
        }
        if scenario.eval.resolutions.is_empty() {
            return Ok(None);
        }
        // As `Samples::test_pair` keeps it, without the grid's copy again.
        let count = scenario.data.test_samples;
        let stored = first_samples(dataset(scenario, Split::Test, count, quiet)?, count)?;
        Ok(Some(Cow::Owned(stored)))
    }

    /// The test split alone, on the grid and, with `eval.resolutions`, as
    /// stored (see [`Samples::test_pair`]): what an evaluation reads.
    pub fn load_test(
        scenario: &Scenario,
        quiet: bool,
    ) -> Result<(Samples, Option<Dataset>), SolverError> {
        let count = scenario.data.test_samples;
        let dataset = dataset(scenario, Split::Test, count, quiet)?;
        Samples::test_pair(scenario, dataset, count)
    }

    /// Both splits cut to `scenario`'s training window
    /// ([`Scenario::training_levels`]): what the model trains and validates on
    /// (without the stored test split, which only the evaluation reads). The
    /// data themselves when the window is the whole grid: no copy (the
    /// paper-scale diffusion–sorption test split alone is 830 MB).
    pub fn training_window(&self, scenario: &Scenario) -> Result<Cow<'_, Self>, SolverError> {
        let levels = scenario.training_levels();
        if levels == self.test.dims()[0] && levels == self.train.dims()[0] {
            return Ok(Cow::Borrowed(self));
        }
        Ok(Cow::Owned(Self {
            train: self.train.first_levels(levels)?,
            test: self.test.first_levels(levels)?,
            stored_test: None,
        }))
    }
}

impl Samples {
    /// One split, on the scenario's grid: read from the scenario's file for it,
    /// or from its cache, or generated.
    /// A training split that no data loss reads the trajectories of, and no
    /// file holds, is its initial conditions only (see the module docs).
    pub fn load(scenario: &Scenario, split: Split, quiet: bool) -> Result<Self, SolverError> {
        let count = match split {
            Split::Train => scenario.data.train_samples,
            Split::Test => scenario.data.test_samples,
        };
        let initial_only = split == Split::Train
            && scenario.data.train_file.is_none()
            && scenario.training.loss.data == 0.0;
        if initial_only {
            let initial = initial_conditions(scenario, &generation(scenario, split, quiet))?
                .into_iter()
                .map(|frame| frame.into_iter().map(f64::from).collect())
                .collect();
            return Self::initial_only(scenario.dims(), initial);
        }
        Self::from_dataset(
            &dataset(scenario, split, count, quiet)?,
            &scenario.grid()?,
            count,
        )
    }

    /// Reads `path` as test data for `scenario` (the `eval --data` option): all
    /// its samples, or `eval.samples` of them if it has more; on the grid and,
    /// with `eval.resolutions`, as stored (see [`Samples::test_pair`]).
    pub fn load_test_file(
        scenario: &Scenario,
        path: &Path,
    ) -> Result<(Self, Option<Dataset>), SolverError> {
        let part = Part::first_samples(scenario.eval_samples());
        let dataset = Dataset::read_part(path, part)?;
        let count = dataset.len();
        Self::test_pair(scenario, dataset, count)
    }

    /// The first `count` test trajectories of `dataset` on the scenario's grid
    /// and, when the scenario evaluates at `eval.resolutions`, the dataset
    /// itself cut to those `count` (read once, as stored; the evaluation
    /// restricts it to each resolution a few samples at a time).
    pub fn test_pair(
        scenario: &Scenario,
        dataset: Dataset,
        count: usize,
    ) -> Result<(Self, Option<Dataset>), SolverError> {
        let grid = Self::from_dataset(&dataset, &scenario.grid()?, count)?;
        let stored = (!scenario.eval.resolutions.is_empty())
            .then(|| first_samples(dataset, count))
            .transpose()?;
        Ok((grid, stored))
    }
}

/// The first `count` samples of `dataset`, which must have them.
fn first_samples(mut dataset: Dataset, count: usize) -> Result<Dataset, SolverError> {
    if dataset.len() < count {
        return Err(SolverError::ShapeMismatch {
            what: "number of samples in the dataset",
            expected: vec![count],
            got: vec![dataset.len()],
        });
    }
    dataset.truncate(count);
    Ok(dataset)
}

/// Whether the test split is read from a file (`data.test_file`, or the
/// cache, which loading it writes), so that reading it again costs no solve.
fn test_split_on_disk(scenario: &Scenario) -> bool {
    scenario.data.test_file.is_some() || scenario.data.cache_dir.is_some()
}

/// One split as stored: read from the scenario's file for it (its first
/// `count` samples: a user's file may hold many more), or from its cache, or
/// generated.
fn dataset(
    scenario: &Scenario,
    split: Split,
    count: usize,
    quiet: bool,
) -> Result<Dataset, SolverError> {
    let file = match split {
        Split::Train => &scenario.data.train_file,
        Split::Test => &scenario.data.test_file,
    };
    match (file, &scenario.data.cache_dir) {
        (Some(path), _) => {
            let dataset = Dataset::read_part(path, Part::first_samples(count))?;
            if dataset.len() < count {
                return Err(SolverError::DataFileTooShort {
                    path: path.clone(),
                    key: match split {
                        Split::Train => "data.train_samples",
                        Split::Test => "data.test_samples",
                    },
                    needed: count,
                    found: dataset.len(),
                });
            }
            Ok(dataset)
        }
        (None, Some(dir)) => cached(scenario, split, dir, quiet),
        (None, None) => Ok(generate(scenario, &generation(scenario, split, quiet))?),
    }
}

fn generation(scenario: &Scenario, split: Split, quiet: bool) -> Generation {
    let mut options = Generation::for_split(scenario, split);
    options.quiet = quiet;
    options
}

/// The cached dataset of `split`, generated and written on first use.
fn cached(
    scenario: &Scenario,
    split: Split,
    dir: &Path,
    quiet: bool,
) -> Result<Dataset, SolverError> {
    let path = cache_path(scenario, split, dir);
    if path.exists() {
        return Ok(Dataset::read(&path)?);
    }
    let dataset = generate(scenario, &generation(scenario, split, quiet))?;
    std::fs::create_dir_all(dir).map_err(|e| SolverError::io(dir, e))?;
    dataset.write(&path)?;
    Ok(dataset)
}

/// Everything a generated split depends on.
#[derive(Serialize)]
struct CacheKey<'a> {
    split: String,
    seed: u64,
    samples: usize,
    pde: &'a PdeConfig,
    grid: &'a GridConfig,
    reference: ReferenceConfig,
    /// A 2-D test split is written at the largest evaluation resolution.
    resolutions: &'a [usize],
}

/// `<dir>/<name>-<split>-<hash of the CacheKey>.safetensors`.
pub(crate) fn cache_path(scenario: &Scenario, split: Split, dir: &Path) -> PathBuf {
    let options = Generation::for_split(scenario, split);
    let key = CacheKey {
        split: split.to_string(),
        seed: options.seed,
        samples: options.samples,
        pde: &scenario.pde,
        grid: &scenario.grid,
        reference: scenario.data.reference.resolved(),
        resolutions: &scenario.eval.resolutions,
    };
    // Serialising plain config structs to JSON cannot fail.
    let text = serde_json::to_string(&key).expect("config structs serialise to JSON");
    dir.join(format!(
        "{}-{split}-{:016x}.safetensors",
        scenario.name,
        fnv1a(text.as_bytes())
    ))
}

/// 64-bit FNV-1a: a hash that, unlike `std`'s, is specified and stable across
/// Rust versions, so cache names stay valid.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

mod restriction;
#[cfg(test)]
pub(crate) mod tests;
