//! The single-process communicator: a world of one rank, where every
//! collective is the identity.

use super::{CommError, Communicator};

/// A world of one rank (the default build, and every run without a launcher).
#[derive(Debug, Clone, Copy, Default)]
pub struct Local;

fn check_root(root: usize) -> Result<(), CommError> {
    if root == 0 {
        Ok(())
    } else {
        Err(CommError::NoSuchRank {
            rank: root,
            size: 1,
        })
    }
}

impl Communicator for Local {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn all_to_all_v(&self, send: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, CommError> {
        if send.len() != 1 {
            return Err(CommError::PerRank {
                what: "all-to-all send buffers",
                size: 1,
                got: send.len(),
            });
        }
        Ok(send.to_vec())
    }

    fn broadcast_bytes(&self, root: usize, _bytes: &mut Vec<u8>) -> Result<(), CommError> {
        check_root(root)
    }

    fn gather(&self, root: usize, values: &[f64]) -> Result<Option<Vec<Vec<f64>>>, CommError> {
        check_root(root)?;
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
