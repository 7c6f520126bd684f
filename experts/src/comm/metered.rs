//! A communicator that measures what passes through another: wall time spent
//! inside collectives and bytes this rank sends, so a benchmark can say how
//! much of a step is communication without instrumenting the trainer.

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::{CommError, Communicator};

/// [`Communicator`] over `inner`, counting time and bytes sent.
///
/// The all-reduce goes through the measured all-to-all (it is built on it), so
/// it is counted too. Bytes are this rank's payload to other ranks (what it
/// sends to itself stays in memory); time is wall time inside the calls,
/// which includes waiting for slower ranks.
pub struct Metered<'c> {
    inner: &'c dyn Communicator,
    time: Cell<Duration>,
    bytes: Cell<u64>,
}

/// What a [`Metered`] communicator has counted since it was last reset.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Traffic {
    /// Seconds inside collectives.
    pub seconds: f64,
    /// Bytes sent to other ranks.
    pub bytes: u64,
}

impl<'c> Metered<'c> {
    /// Measures `inner`, from zero.
    pub fn new(inner: &'c dyn Communicator) -> Self {
        Self {
            inner,
            time: Cell::new(Duration::ZERO),
            bytes: Cell::new(0),
        }
    }

    /// What was counted so far, and restarts from zero.
    pub fn take(&self) -> Traffic {
        Traffic {
            seconds: self.time.take().as_secs_f64(),
            bytes: self.bytes.take(),
        }
    }

    fn timed<T>(&self, bytes: usize, call: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = call();
        self.time.set(self.time.get() + started.elapsed());
        self.bytes.set(self.bytes.get() + bytes as u64);
        out
    }

    /// Bytes this rank sends in a broadcast from `root` of `len` bytes: the
    /// root's payload to every other rank (as a flat tree would).
    fn broadcast_volume(&self, root: usize, len: usize) -> usize {
        if self.rank() == root {
            len * (self.size() - 1)
        } else {
            0
        }
    }
}

impl Communicator for Metered<'_> {
    fn rank(&self) -> usize {
        self.inner.rank()
    }

    fn size(&self) -> usize {
        self.inner.size()
    }

    fn all_to_all_v(&self, send: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, CommError> {
        let me = self.rank();
        let bytes = send
            .iter()
            .enumerate()
            .filter(|&(r, _)| r != me)
            .map(|(_, v)| 8 * v.len())
            .sum();
        self.timed(bytes, || self.inner.all_to_all_v(send))
    }

    fn broadcast_bytes(&self, root: usize, bytes: &mut Vec<u8>) -> Result<(), CommError> {
        let volume = self.broadcast_volume(root, bytes.len());
        self.timed(volume, || self.inner.broadcast_bytes(root, bytes))
    }

    fn gather(&self, root: usize, values: &[f64]) -> Result<Option<Vec<Vec<f64>>>, CommError> {
        let volume = if self.rank() == root {
            0
        } else {
            8 * values.len()
        };
        self.timed(volume, || self.inner.gather(root, values))
    }

    fn barrier(&self) -> Result<(), CommError> {
        self.timed(0, || self.inner.barrier())
    }

    fn abort(&self, code: i32, reason: &str) -> ! {
        self.inner.abort(code, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comm::Local;

    #[test]
    fn a_world_of_one_sends_nothing_and_forwards_every_call() {
        let metered = Metered::new(&Local);
        let mut v = vec![1.0, 2.0, 3.0];
        metered.all_reduce_sum(&mut v).unwrap();
        assert_eq!(v, [1.0, 2.0, 3.0]);
        assert_eq!(metered.all_to_all_v(&[vec![4.0]]).unwrap(), [vec![4.0]]);
        assert_eq!(metered.gather(0, &[5.0]).unwrap(), Some(vec![vec![5.0]]));
        let mut bytes = vec![7u8; 3];
        metered.broadcast_bytes(0, &mut bytes).unwrap();
        metered.barrier().unwrap();
        assert!(metered.all_to_all_v(&[]).is_err());
        let traffic = metered.take();
        assert_eq!(traffic.bytes, 0);
        assert!(traffic.seconds >= 0.0);
        assert_eq!(metered.take(), Traffic::default());
    }
}
