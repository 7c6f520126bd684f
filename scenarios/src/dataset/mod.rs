//! Datasets of trajectories: in memory, and on disk in PDEBench's layout.
//!
//! A [`Dataset`] holds, per sample, the trajectory on the grid with the initial
//! condition as its first frame (PDEBench's convention), plus the grid
//! coordinates and the config text that produced it. Values are stored as
//! `f32`, PDEBench's precision (reference solutions are computed in `f64` and
//! rounded once); a paper-scale diffusion–sorption set (8000 × 101 × 1024) is
//! 3.3 GB this way.
//!
//! Files: `.h5` (cargo feature `hdf5`) in PDEBench's layout — one group per
//! sample named `0000`, `0001`, …, each with `data` (float32
//! `[nt, nx, 1]` or `[nt, nx, ny, 1]`), `grid/x`, `grid/t` (and `grid/y`), and a
//! string attribute `config`; datasets lzf-compressed. `.safetensors` (always
//! available) holds the same content under the same names: tensors
//! `0000/data`, `0000/grid/x`, `0000/grid/t` (`0000/grid/y`) and metadata key
//! `0000/config`. Every write goes to a temporary file in the target's directory
//! and is renamed into place, so an error never leaves a partial file under the
//! target name.

mod atomic;
pub mod generate;
pub mod grid_scale;
#[cfg(feature = "hdf5")]
mod hdf5;
mod safetensors;
pub mod validate;

use std::path::Path;

use crate::ScenarioError;

pub use generate::{Generation, Split, generate, generate_with_summary, initial_conditions};
pub use validate::{SolverCheck, validate_solver};

/// Trajectories on one grid, row-major `[t, x, (y)]` per sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    t: Vec<f64>,
    x: Vec<f64>,
    y: Option<Vec<f64>>,
    config: String,
    samples: Vec<Vec<f32>>,
}

impl Dataset {
    /// A dataset from its grid coordinates, the config text that made it, and
    /// its trajectories (each `t.len() · x.len() · (y.len())` values, the first
    /// frame being the initial condition). Rejects mismatched sizes and
    /// non-finite values.
    pub fn new(
        t: Vec<f64>,
        x: Vec<f64>,
        y: Option<Vec<f64>>,
        config: String,
        samples: Vec<Vec<f32>>,
    ) -> Result<Self, ScenarioError> {
        let dataset = Self {
            t,
            x,
            y,
            config,
            samples,
        };
        for (what, axis) in [
            ("grid/t", Some(&dataset.t)),
            ("grid/x", Some(&dataset.x)),
            ("grid/y", dataset.y.as_ref()),
        ] {
            if let Some(axis) = axis {
                check_finite(what, axis.iter().copied())?;
                if axis.len() < 2 {
                    return Err(ScenarioError::ShapeMismatch {
                        what: format!("{what} (at least 2 points)"),
                        expected: vec![2],
                        got: vec![axis.len()],
                    });
                }
            }
        }
        let len: usize = dataset.dims().iter().product();
        for (i, sample) in dataset.samples.iter().enumerate() {
            let what = || format!("sample {}", sample_name(i));
            if sample.len() != len {
                return Err(ScenarioError::ShapeMismatch {
                    what: what(),
                    expected: dataset.dims(),
                    got: vec![sample.len()],
                });
            }
            check_finite(&what(), sample.iter().map(|&v| f64::from(v)))?;
        }
        Ok(dataset)
    }

    /// Reads a `.safetensors` or (with the `hdf5` feature) `.h5`/`.hdf5` file.
    /// Every error names the file.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, ScenarioError> {
        Self::read_part(path, Part::ALL)
    }

    /// Reads `part` of a file ([`Dataset::read`]): the leading samples and
    /// time levels only, the rest of the file untouched — a reader that
    /// evaluates 16 samples, or takes initial conditions, of a split of
    /// gigabytes reads what it uses. Checks (shapes, finite values) apply to
    /// what is read.
    pub fn read_part(path: impl AsRef<Path>, part: Part) -> Result<Self, ScenarioError> {
        let path = path.as_ref();
        match Format::of(path)? {
            Format::Safetensors => safetensors::read(path, part),
            #[cfg(feature = "hdf5")]
            Format::Hdf5 => hdf5::read(path, part),
        }
        .map_err(|e| e.in_file(path))
    }

    /// Writes atomically (temporary file, then rename) in the format named by
    /// the extension.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), ScenarioError> {
        let path = path.as_ref();
        let format = Format::of(path)?;
        atomic::write(path, |tmp| match format {
            Format::Safetensors => safetensors::write(self, tmp),
            #[cfg(feature = "hdf5")]
            Format::Hdf5 => hdf5::write(self, tmp),
        })
    }

    /// The error [`Dataset::write`] would give for `path`'s extension, found
    /// before the work of filling the file (a command checks its output's
    /// name first).
    pub fn check_format(path: impl AsRef<Path>) -> Result<(), ScenarioError> {
        Format::of(path.as_ref()).map(|_| ())
    }

    /// The grid shape `[nt, nx, (ny)]`.
    pub fn dims(&self) -> Vec<usize> {
        let mut dims = vec![self.t.len(), self.x.len()];
        dims.extend(self.y.as_ref().map(Vec::len));
        dims
    }

    /// Output times.
    pub fn t(&self) -> &[f64] {
        &self.t
    }

    /// `x` coordinates.
    pub fn x(&self) -> &[f64] {
        &self.x
    }

    /// `y` coordinates (2-D data only).
    pub fn y(&self) -> Option<&[f64]> {
        self.y.as_deref()
    }

    /// The config text the data was generated with (TOML for our files, Hydra
    /// YAML in PDEBench's).
    pub fn config(&self) -> &str {
        &self.config
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Trajectory `i`, `[nt, nx, (ny)]`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    #[track_caller]
    pub fn trajectory(&self, i: usize) -> &[f32] {
        &self.samples[i]
    }

    /// The initial condition of sample `i` (its first frame), `[nx, (ny)]`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    #[track_caller]
    pub fn initial_condition(&self, i: usize) -> &[f32] {
        let frame = self.samples[i].len() / self.t.len();
        &self.samples[i][..frame]
    }

    /// All trajectories.
    pub fn trajectories(&self) -> &[Vec<f32>] {
        &self.samples
    }

    /// Keeps the first `count` samples (all of them if there are fewer):
    /// what a reader that evaluates only those holds.
    pub fn truncate(&mut self, count: usize) {
        self.samples.truncate(count);
    }
}

/// Which part of a file [`Dataset::read_part`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// The first this many samples, or all of them where the file has fewer
    /// (`None`: all).
    pub samples: Option<usize>,
    /// The first this many time levels of each (`None`: all; at least two,
    /// a dataset's least, and at most the file's).
    pub levels: Option<usize>,
}

impl Part {
    /// The whole file.
    pub const ALL: Self = Self {
        samples: None,
        levels: None,
    };

    /// The first `samples` samples, every level of each.
    pub const fn first_samples(samples: usize) -> Self {
        Self {
            samples: Some(samples),
            levels: None,
        }
    }

    /// How many of `have` samples to read.
    fn samples_of(&self, have: usize) -> usize {
        self.samples.map_or(have, |n| n.min(have))
    }

    /// How many of `have` time levels to read.
    fn levels_of(&self, have: usize) -> usize {
        self.levels.map_or(have, |n| n.max(2).min(have))
    }
}

/// PDEBench's sample group name: the index with at least four digits.
pub fn sample_name(i: usize) -> String {
    format!("{i:04}")
}

fn check_finite(what: &str, values: impl Iterator<Item = f64>) -> Result<(), ScenarioError> {
    for (index, value) in values.enumerate() {
        if !value.is_finite() {
            return Err(ScenarioError::NonFinite {
                what: what.to_owned(),
                index,
                value,
            });
        }
    }
    Ok(())
}

/// File formats, chosen by extension.
#[derive(Debug, Clone, Copy)]
enum Format {
    Safetensors,
    #[cfg(feature = "hdf5")]
    Hdf5,
}

impl Format {
    fn of(path: &Path) -> Result<Self, ScenarioError> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext.to_ascii_lowercase().as_str() {
            "safetensors" => Ok(Self::Safetensors),
            #[cfg(feature = "hdf5")]
            "h5" | "hdf5" => Ok(Self::Hdf5),
            _ => Err(ScenarioError::UnsupportedFormat {
                path: path.to_owned(),
                reason: if cfg!(feature = "hdf5") {
                    "expected .safetensors, .h5 or .hdf5".into()
                } else {
                    "expected .safetensors (.h5 needs the `hdf5` cargo feature)".into()
                },
            }),
        }
    }
}
