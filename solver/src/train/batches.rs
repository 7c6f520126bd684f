//! Which training samples and which seed a step uses, as pure functions of the
//! scenario seed and the step number: a resumed run draws exactly what an
//! uninterrupted one would, with no generator state in the checkpoint.
//!
//! Each step draws from `ChaCha8Rng::seed_from_u64(seed)` on its own stream
//! (the same scheme as the dataset generator's per-sample streams), in a range
//! of streams disjoint from the ones the validation and evaluation use.

use rand::seq::index;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// First stream of the per-step batch draws.
const BATCH_STREAMS: u64 = 1 << 60;
/// Stream of the seed that fixes the sampled points of validation and evaluation.
const EVAL_STREAM: u64 = (1 << 61) - 1;

fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// What update `step` draws.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepDraw {
    /// `batch_size` distinct indices into the training samples.
    pub indices: Vec<usize>,
    /// The [`crate::trainable::Batch::seed`] of the step.
    pub seed: u64,
}

/// The draws of update `step` (0-based) from `samples` training samples: the
/// indices without replacement, then the batch seed, on the step's own stream.
///
/// # Panics
/// If `batch_size > samples` (the scenario's validation rules this out).
#[track_caller]
pub fn step_draw(seed: u64, step: usize, samples: usize, batch_size: usize) -> StepDraw {
    let mut rng = rng(seed, BATCH_STREAMS + step as u64);
    let indices = index::sample(&mut rng, samples, batch_size).into_vec();
    StepDraw {
        indices,
        seed: rng.next_u64(),
    }
}

/// The seed of the sampled points used by validation and evaluation, the same
/// at every validation so the curve shows the model's change only.
pub fn eval_seed(seed: u64) -> u64 {
    rng(seed, EVAL_STREAM).next_u64()
}
