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
//! Read through a map of the file whose pages are given back as each tensor
//! is read, and restored one variable at a time into the model's own, so
//! that a load holds one copy of what it keeps, not the file's bytes or a
//! second copy of the variables as well; an evaluation or an embedding
//! keeps only the model's ([`Checkpoint::load_model`]), not the optimiser's
//! moments, twice the parameters' size (at the Navier–Stokes paper scale
//! the file is 3.2 GB, the variables 1.07 GB).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::safetensors::Load;
use candle_core::{DType, Device, Tensor};

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
#[derive(Debug)]
pub struct Checkpoint {
    /// The run's totals at the checkpoint.
    pub totals: Totals,
    /// Processes that trained the run up to this checkpoint (see
    /// [`Checkpoint::ranks`]).
    ranks: usize,
    /// The file it was read from, for errors.
    path: PathBuf,
    adam_count: u64,
    /// The file's bytes, checked; the variables and moments are read from
    /// them when they are restored.
    bytes: FileBytes,
    /// The tensors the load checked: the optimiser's moments only with
    /// [`Keep::Everything`].
    keep: Keep,
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
        match Self::load(latest) {
            Ok(checkpoint) => Ok(ResumePoint {
                checkpoint,
                path: latest.to_owned(),
                passed_over: None,
            }),
            Err(error) => match Self::load(previous) {
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
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| SolverError::io(path, e))?;
        Self::parse(path, FileBytes::Mapped(map), keep)
    }

    /// Parses the bytes of a checkpoint file (`path` names it in errors), e.g.
    /// bytes that rank 0 read and broadcast to the other ranks, to resume
    /// from.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self, SolverError> {
        Self::parse(path, FileBytes::Owned(bytes), Keep::Everything)
    }

    /// Reads the metadata and checks every tensor `keep` names against its
    /// checksum, so that a damaged file is refused here (and a resume can
    /// pass it over) rather than when the model is half restored; the
    /// variables and moments themselves are read when they are restored.
    fn parse(path: &Path, bytes: FileBytes, keep: Keep) -> Result<Self, SolverError> {
        let bad = |reason: String| SolverError::Checkpoint {
            path: path.to_owned(),
            reason,
        };
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes.as_slice())
            .map_err(|source| safetensors_error(path, source))?;
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
        let mut extra = Vec::new();
        if keep != Keep::Nothing {
            let tensors = safetensors::SafeTensors::deserialize(bytes.as_slice())
                .map_err(|source| safetensors_error(path, source))?;
            let checked = metadata.keys().any(|k| k.starts_with(CRC32));
            for (key, view) in tensors.iter() {
                let kept = if key.starts_with(ADAM) {
                    keep == Keep::Everything
                } else if key.starts_with(VAR) || key.starts_with(EXTRA) {
                    true
                } else {
                    return Err(bad(format!("unexpected tensor `{key}`")));
                };
                if !kept {
                    continue;
                }
                if checked {
                    let recorded = field(&format!("{CRC32}{key}"))?;
                    let found = crc32(view.data());
                    if *recorded != found {
                        return Err(bad(format!(
                            "tensor `{key}` is damaged: its bytes' CRC-32 is {found}, \
                             the checkpoint recorded {recorded}"
                        )));
                    }
                }
                if let Some(name) = key.strip_prefix(EXTRA) {
                    let values = view.load(&Device::Cpu)?.to_vec1::<f64>()?;
                    extra.push((name.to_owned(), values));
                }
                bytes.release(view.data());
            }
            extra.sort_by(|a, b| a.0.cmp(&b.0));
        }
        Ok(Self {
            totals,
            ranks,
            path: path.to_owned(),
            adam_count,
            bytes,
            keep,
            extra,
        })
    }

    /// The file's tensors, as views of its bytes.
    fn tensors(&self) -> Result<safetensors::SafeTensors<'_>, SolverError> {
        safetensors::SafeTensors::deserialize(self.bytes.as_slice())
            .map_err(|source| safetensors_error(&self.path, source))
    }

    /// One tensor of the file, read into memory of its own; the file's pages
    /// it was read from are given back.
    fn tensor(&self, view: &safetensors::tensor::TensorView<'_>) -> Result<Tensor, SolverError> {
        let tensor = view.load(&Device::Cpu)?;
        self.bytes.release(view.data());
        Ok(tensor)
    }

    /// Overwrites `model`'s variables and extra state with the checkpoint's. The
    /// variable names, shapes and dtypes must match exactly (a checkpoint of a
    /// different model is an error, never a partial load). The variables are
    /// read one at a time, each straight into the model's, so that restoring
    /// holds one variable more than the model, not the checkpoint's copy of
    /// them all.
    pub fn restore_model<M: Trainable + ?Sized>(
        &self,
        model: &mut M,
        path: &Path,
    ) -> Result<(), SolverError> {
        let mismatch = |reason: String| SolverError::Checkpoint {
            path: path.to_owned(),
            reason,
        };
        let tensors = self.tensors()?;
        let saved: BTreeMap<&str, _> = tensors
            .iter()
            .filter_map(|(key, view)| Some((key.strip_prefix(VAR)?, view)))
            .collect();
        {
            let vars = model.vars().data().lock().map_err(|_| poisoned(path))?;
            if vars.len() != saved.len() {
                return Err(mismatch(format!(
                    "the model has {} variables, the checkpoint {}",
                    vars.len(),
                    saved.len()
                )));
            }
            // Every variable checked before any is set.
            let mut pairs = Vec::with_capacity(vars.len());
            for (name, var) in vars.iter() {
                let view = saved
                    .get(name.as_str())
                    .ok_or_else(|| mismatch(format!("variable `{name}` missing")))?;
                let dtype = DType::try_from(view.dtype()).ok();
                if view.shape() != var.dims() || dtype != Some(var.dtype()) {
                    return Err(mismatch(format!(
                        "variable `{name}`: model {:?} {:?}, checkpoint {:?} {:?}",
                        var.dims(),
                        var.dtype(),
                        view.shape(),
                        view.dtype()
                    )));
                }
                pairs.push((var, view));
            }
            for (var, view) in pairs {
                var.set(&self.tensor(view)?)?;
            }
        }
        model.restore_extra_state(&self.extra)
    }

    /// The optimiser as it was at the checkpoint; an error for a checkpoint
    /// read without it ([`Checkpoint::load_model`]).
    pub fn adam(&self, config: AdamConfig) -> Result<Adam, SolverError> {
        if self.keep != Keep::Everything {
            return Err(SolverError::Checkpoint {
                path: self.path.clone(),
                reason: "read without the optimiser's state (Checkpoint::load_model)".into(),
            });
        }
        let tensors = self.tensors()?;
        let state = tensors
            .iter()
            .filter(|(key, _)| key.starts_with(ADAM))
            .map(|(key, view)| Ok((key.to_owned(), self.tensor(&view)?)))
            .collect::<Result<Vec<_>, SolverError>>()?;
        Adam::restore(config, self.adam_count, state)
    }
}

/// A checkpoint file's bytes: mapped, or held (bytes rank 0 read and
/// broadcast).
enum FileBytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl FileBytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Self::Mapped(map) => map,
            Self::Owned(bytes) => bytes,
        }
    }

    /// Gives back the pages of `data`, a part of these bytes, once read.
    /// The pages of a mapped file that were read count in the process's
    /// resident set until the map goes, so a load that reads the whole file
    /// would otherwise hold a second copy of every tensor it keeps (the
    /// optimiser's moments are twice the parameters); the kernel reads them
    /// again if they are used again. Held bytes stay.
    fn release(&self, data: &[u8]) {
        #[cfg(unix)]
        if let Self::Mapped(map) = self {
            let offset = data.as_ptr() as usize - map.as_ptr() as usize;
            // SAFETY: the map is read-only and shared, of a file that does
            // not change while it lives (see `Checkpoint::read`): dropping
            // its pages changes no byte it shows, a later read faults the
            // same bytes in from the file.
            let released = unsafe {
                map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, data.len())
            };
            // Only memory is at stake: a refusal leaves the pages mapped.
            drop(released);
        }
        #[cfg(not(unix))]
        let _ = data;
    }
}

impl std::fmt::Debug for FileBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, len) = match self {
            Self::Mapped(map) => ("mapped", map.len()),
            Self::Owned(bytes) => ("held", bytes.len()),
        };
        write!(f, "{len} bytes, {kind}")
    }
}

fn safetensors_error(path: &Path, source: safetensors::SafeTensorError) -> SolverError {
    SolverError::Safetensors {
        path: path.to_owned(),
        source,
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
