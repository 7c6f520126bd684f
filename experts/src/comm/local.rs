//! The single-process communicator: a world of one rank, where every
//! collective is the identity.

use super::{CommError, Communicator};

/// A world of one rank (the default build, and every run without a launcher).
#[derive(Debug, Clone, Copy, Default)]
pub struct Local;

impl Communicator for Local {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn all_to_all_v(&self, send: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, CommError> {
        CommError::check_per_rank("all-to-all send buffers", 1, send.len())?;
        Ok(send.to_vec())
    }

    fn broadcast_bytes(&self, root: usize, _bytes: &mut Vec<u8>) -> Result<(), CommError> {
        CommError::check_rank(root, 1)
    }

    fn gather(&self, root: usize, values: &[f64]) -> Result<Option<Vec<Vec<f64>>>, CommError> {
        CommError::check_rank(root, 1)?;
        Ok(Some(vec![values.to_vec()]))
    }

    fn barrier(&self) -> Result<(), CommError> {
        Ok(())
    }

    fn abort(&self, code: i32, reason: &str) -> ! {
        eprintln!("rank 0: {reason}");
        std::process::exit(code)
    }
}
