//! Checkpoints: one `.safetensors` file holding the model's variables
//! (`var/<name>`), the Adam moments (`adam/m/<name>`, `adam/v/<name>`) and the
//! model's extra state (`extra/<name>`, f64), with the step, the Adam count and
//! the run's totals in the file's metadata. Written through a temporary file
//! and a rename, so a kill mid-write leaves the previous checkpoint intact.
//!
//! Each tensor's bytes have their CRC-32 in the metadata
//! (`crc32/<tensor>`), checked for every tensor a load keeps, so a file
//! damaged after it was written (a flipped bit on a disk, a bad copy) is an
//! error naming the tensor, not a model that quietly predicts something else.
//! Files written before the checksums load unchecked.
//!
//! Read through a map of the file, so that a load holds one copy of the
//! tensors it keeps, not the file's bytes as well; an evaluation or an
//! embedding keeps only the model's ([`Checkpoint::load_model`]), not the
//! optimiser's moments, twice the parameters' size (at the Navier–Stokes
//! paper scale the file is 3.2 GB, the variables 1.07 GB).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::safetensors::Load;
use candle_core::{Device, Tensor};

use super::adam::{Adam, AdamConfig};
use super::run_dir::replace_keeping;
use crate::SolverError;
use crate::trainable::Trainable;

const FORMAT: &str = "tessera-checkpoint-1";
const VAR: &str = "var/";
const EXTRA: &str = "extra/";
const ADAM: &str = "adam/";
/// Metadata key prefix of a tensor's checksum.
const CRC32: &str = "crc32/";

/// Where a run stands: what a checkpoint records besides tensors.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Totals {
    /// Updates done.
    pub step: usize,
    /// Training seconds so far.
    pub seconds: f64,
    /// Solves whose status was not `converged`, and all solves, so far.
    pub failed_solves: usize,
    pub solves: usize,
}

/// A loaded checkpoint.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The run's totals at the checkpoint.
    pub totals: Totals,
    /// Processes that trained the run up to this checkpoint (see
    /// [`Checkpoint::ranks`]).
    ranks: usize,
    /// The file it was read from, for errors.
    path: PathBuf,
    adam_count: u64,
    vars: BTreeMap<String, Tensor>,
    /// Adam's moments; `None` where the load left them out.
    adam: Option<Vec<(String, Tensor)>>,
    extra: Vec<(String, Vec<f64>)>,
}

/// Where a run resumes: [`Checkpoint::resume_point`].
#[derive(Debug)]
pub struct ResumePoint {
    /// The checkpoint read.
    pub checkpoint: Checkpoint,
    /// Its file.
    pub path: PathBuf,
    /// Why the latest checkpoint was passed over for the one before it;
    /// `None` where the latest was read.
    pub passed_over: Option<SolverError>,
}

/// Which tensors of a checkpoint file a load keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Keep {
    /// Variables, extra state and the optimiser's moments: to resume.
    Everything,
    /// Variables and extra state: to predict.
    Model,
    /// No tensor: the metadata alone.
    Nothing,
}

impl Checkpoint {
    /// Saves `model`'s variables and extra state, `adam`'s state and `totals`
    /// to `path` atomically and durably, recording that `ranks` processes
    /// trained it; with `previous`, the checkpoint `path` held before is then
    /// found there. At every moment `path` names a whole checkpoint, and a
    /// new one reaches the disk before the rename that publishes it.
    pub fn save<M: Trainable + ?Sized>(
        path: &Path,
        previous: Option<&Path>,
        model: &M,
        adam: &Adam,
        totals: Totals,
        ranks: usize,
    ) -> Result<(), SolverError> {
        let mut tensors: Vec<(String, Tensor)> = model
            .vars()
            .data()
            .lock()
            .map_err(|_| poisoned(path))?
            .iter()
            .map(|(name, var)| (format!("{VAR}{name}"), var.as_tensor().clone()))
            .collect();
        // Written before `adam` can step again: its moments need no copy.
        tensors.extend(adam.lent_state()?);
        for (name, values) in model.extra_state() {
            let len = values.len();
            let tensor = Tensor::from_vec(values, len, &Device::Cpu)?;
            tensors.push((format!("{EXTRA}{name}"), tensor));
        }
        let mut metadata = HashMap::from([
            ("format".to_owned(), FORMAT.to_owned()),
            ("step".to_owned(), totals.step.to_string()),
            ("seconds".to_owned(), totals.seconds.to_string()),
            ("failed_solves".to_owned(), totals.failed_solves.to_string()),
            ("solves".to_owned(), totals.solves.to_string()),
            ("adam_count".to_owned(), adam.count().to_string()),
            ("ranks".to_owned(), ranks.to_string()),
        ]);
        for (name, tensor) in &tensors {
            let bytes = safetensors::View::data(tensor);
            metadata.insert(format!("{CRC32}{name}"), crc32(&bytes));
        }
        replace_keeping(path, previous, |tmp| {
            safetensors::serialize_to_file(tensors, Some(metadata), tmp).map_err(|source| {
                SolverError::Safetensors {
                    path: tmp.to_owned(),
                    source,
                }
            })
        })
    }

    /// Processes (MPI ranks) that trained the run up to this checkpoint. A run
    /// resumed under another count continues to rounding, not bit for bit:
    /// the gradient sums are taken in another order.
    pub fn ranks(&self) -> usize {
        self.ranks
    }

    /// Reads a checkpoint written by [`Checkpoint::save`], to resume from.
    pub fn load(path: &Path) -> Result<Self, SolverError> {
        Self::read(path, Keep::Everything)
    }

    /// The checkpoint a run resumes from: the latest, at `latest`, or where
    /// that cannot be read (missing, truncated, damaged), the one before it
    /// at `previous`, if that can, with the reason the latest was passed over.
    ///
    /// Errors: the latest's, when neither can be read.
    pub fn resume_point(latest: &Path, previous: &Path) -> Result<ResumePoint, SolverError> {
        Self::resume_point_by(latest, previous, Self::load)
    }

    /// [`Checkpoint::resume_point`] with each file read by `load` (e.g. one
    /// that keeps the bytes it parsed, to broadcast them).
    pub fn resume_point_by(
        latest: &Path,
        previous: &Path,
        mut load: impl FnMut(&Path) -> Result<Self, SolverError>,
    ) -> Result<ResumePoint, SolverError> {
        match load(latest) {
            Ok(checkpoint) => Ok(ResumePoint {
                checkpoint,
                path: latest.to_owned(),
                passed_over: None,
            }),
            Err(error) => match load(previous) {
                Ok(checkpoint) => Ok(ResumePoint {
                    checkpoint,
                    path: previous.to_owned(),
                    passed_over: Some(error),
                }),
                Err(_) => Err(error),
            },
        }
    }

    /// Reads the model's part of a checkpoint (variables and extra state),
    /// to predict with: the optimiser's moments are not read, and
    /// [`Checkpoint::adam`] is an error.
    pub fn load_model(path: &Path) -> Result<Self, SolverError> {
        Self::read(path, Keep::Model)
    }

    /// The number of processes that trained the run up to the checkpoint at
    /// `path` ([`Checkpoint::ranks`]), from its metadata alone.
    pub fn ranks_at(path: &Path) -> Result<usize, SolverError> {
        Ok(Self::read(path, Keep::Nothing)?.ranks)
    }

    fn read(path: &Path, keep: Keep) -> Result<Self, SolverError> {
        let file = std::fs::File::open(path).map_err(|e| SolverError::io(path, e))?;
        // SAFETY: checkpoints are replaced by a rename, never written in
        // place, so the mapped file does not change while the map lives
        // (only a file truncated by hand meanwhile would fault).
        let bytes = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| SolverError::io(path, e))?;
        Self::parse(path, &bytes, keep)
    }

    /// Parses the bytes of a checkpoint file (`path` names it in errors), e.g.
    /// bytes that rank 0 read and broadcast to the other ranks.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, SolverError> {
        Self::parse(path, bytes, Keep::Everything)
    }

    fn parse(path: &Path, bytes: &[u8], keep: Keep) -> Result<Self, SolverError> {
        let bad = |reason: String| SolverError::Checkpoint {
            path: path.to_owned(),
            reason,
        };
        let safetensors_error = |source| SolverError::Safetensors {
            path: path.to_owned(),
            source,
        };
        let (_, header) =
            safetensors::SafeTensors::read_metadata(bytes).map_err(safetensors_error)?;
        let metadata = header.metadata().clone().unwrap_or_default();
        if metadata.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(bad(format!("not a {FORMAT} file")));
        }
        let field = |key: &str| {
            metadata
                .get(key)
                .ok_or_else(|| bad(format!("metadata `{key}` missing")))
        };
        let number = |key: &str| {
            field(key)?
                .parse::<usize>()
                .map_err(|e| bad(format!("metadata `{key}`: {e}")))
        };
        let totals = Totals {
            step: number("step")?,
            seconds: field("seconds")?
                .parse()
                .map_err(|e| bad(format!("metadata `seconds`: {e}")))?,
            failed_solves: number("failed_solves")?,
            solves: number("solves")?,
        };
        let adam_count = number("adam_count")? as u64;
        // Checkpoints written before multi-rank training record no count.
        let ranks = match metadata.get("ranks") {
            Some(_) => number("ranks")?,
            None => 1,
        };
        let mut checkpoint = Self {
            totals,
            ranks,
            path: path.to_owned(),
            adam_count,
            vars: BTreeMap::new(),
            adam: (keep == Keep::Everything).then(Vec::new),
            extra: Vec::new(),
        };
        if keep == Keep::Nothing {
            return Ok(checkpoint);
        }
        let tensors = safetensors::SafeTensors::deserialize(bytes).map_err(safetensors_error)?;
        let checked = metadata.keys().any(|k| k.starts_with(CRC32));
        let verify = |key: &str, data: &[u8]| {
            if !checked {
                return Ok(());
            }
            let recorded = field(&format!("{CRC32}{key}"))?;
            let found = crc32(data);
            if *recorded == found {
                Ok(())
            } else {
                Err(bad(format!(
                    "tensor `{key}` is damaged: its bytes' CRC-32 is {found}, \
                     the checkpoint recorded {recorded}"
                )))
            }
        };
        for (key, view) in tensors.iter() {
            let kept = key.starts_with(VAR)
                || key.starts_with(EXTRA)
                || (key.starts_with(ADAM) && checkpoint.adam.is_some());
            if kept {
                verify(key, view.data())?;
            }
            if let Some(name) = key.strip_prefix(VAR) {
                checkpoint
                    .vars
                    .insert(name.to_owned(), view.load(&Device::Cpu)?);
            } else if let Some(name) = key.strip_prefix(EXTRA) {
                let values = view.load(&Device::Cpu)?.to_vec1::<f64>()?;
                checkpoint.extra.push((name.to_owned(), values));
            } else if key.starts_with(ADAM) {
                if let Some(adam) = &mut checkpoint.adam {
                    adam.push((key.to_owned(), view.load(&Device::Cpu)?));
                }
            } else {
                return Err(bad(format!("unexpected tensor `{key}`")));
            }
        }
        checkpoint.extra.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(checkpoint)
    }

    /// Overwrites `model`'s variables and extra state with the checkpoint's. The
    /// variable names, shapes and dtypes must match exactly (a checkpoint of a
    /// different model is an error, never a partial load).
    pub fn restore_model<M: Trainable + ?Sized>(
        &self,
        model: &mut M,
        path: &Path,
    ) -> Result<(), SolverError> {
        let mismatch = |reason: String| SolverError::Checkpoint {
            path: path.to_owned(),
            reason,
        };
        {
            let vars = model.vars().data().lock().map_err(|_| poisoned(path))?;
            if vars.len() != self.vars.len() {
                return Err(mismatch(format!(
                    "the model has {} variables, the checkpoint {}",
                    vars.len(),
                    self.vars.len()
                )));
            }
            // Every variable checked before any is set.
            let mut pairs = Vec::with_capacity(vars.len());
            for (name, var) in vars.iter() {
                let saved = self
                    .vars
                    .get(name)
                    .ok_or_else(|| mismatch(format!("variable `{name}` missing")))?;
                if saved.shape() != var.shape() || saved.dtype() != var.dtype() {
                    return Err(mismatch(format!(
                        "variable `{name}`: model {:?} {:?}, checkpoint {:?} {:?}",
                        var.shape(),
                        var.dtype(),
                        saved.shape(),
                        saved.dtype()
                    )));
                }
                pairs.push((var, saved));
            }
            for (var, saved) in pairs {
                var.set(saved)?;
            }
        }
        model.restore_extra_state(&self.extra)
    }

    /// The optimiser as it was at the checkpoint; an error for a checkpoint
    /// read without it ([`Checkpoint::load_model`]).
    pub fn adam(&self, config: AdamConfig) -> Result<Adam, SolverError> {
        let Some(adam) = &self.adam else {
            return Err(SolverError::Checkpoint {
                path: self.path.clone(),
                reason: "read without the optimiser's state (Checkpoint::load_model)".into(),
            });
        };
        Adam::restore(config, self.adam_count, adam.iter().cloned())
    }
}

/// A tensor's checksum as the metadata holds it: CRC-32 (the zlib/PNG
/// polynomial), eight hex digits.
fn crc32(bytes: &[u8]) -> String {
    format!("{:08x}", crc32fast::hash(bytes))
}

fn poisoned(path: &Path) -> SolverError {
    SolverError::Checkpoint {
        path: PathBuf::from(path),
        reason: "the model's variable map is poisoned by an earlier panic".into(),
    }
}
