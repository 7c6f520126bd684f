//! What rank 0 reads once and the other ranks receive: the run's data (so it
//! is generated or read once, never K times over the same cache file) and the
//! checkpoint bytes on resume (so the ranks need no shared file system).

use tessera_experts::comm::Communicator;

use super::ParallelError;
use crate::SolverError;
use crate::data::{RunData, Samples};

/// The run's data on every rank: `load` runs on rank 0 only and its result is
/// broadcast, but for the stored test split, which rank 0 keeps (it alone
/// evaluates). A failure of `load` is rank 0's error (the caller's abort path
/// ends the other ranks, which wait in the broadcast).
pub fn broadcast_run_data(
    comm: &dyn Communicator,
    load: impl FnOnce() -> Result<RunData, SolverError>,
) -> Result<RunData, SolverError> {
    if comm.size() == 1 {
        return load();
    }
    let (mut packed, stored_test) = if comm.rank() == 0 {
        let data = load()?;
        let mut packed = pack(&data.train);
        packed.extend(pack(&data.test));
        (packed, data.stored_test)
    } else {
        (Vec::new(), None)
    };
    comm.broadcast(0, &mut packed)
        .map_err(ParallelError::from)?;
    let (train, rest) = unpack(&packed)?;
    let (test, _) = unpack(rest)?;
    Ok(RunData {
        train,
        test,
        stored_test,
    })
}

/// `[ndims, dims…, levels held, count, values…]`; sizes are exact in f64.
fn pack(samples: &Samples) -> Vec<f64> {
    let (levels, values) = samples.parts();
    let mut out = vec![samples.dims().len() as f64];
    out.extend(samples.dims().iter().map(|&d| d as f64));
    out.push(levels as f64);
    out.push(samples.len() as f64);
    for t in values {
        out.extend_from_slice(t);
    }
    out
}

fn unpack(packed: &[f64]) -> Result<(Samples, &[f64]), SolverError> {
    let bad = || -> SolverError {
        ParallelError::Comm(tessera_experts::comm::CommError::Transport {
            op: "data broadcast",
            reason: "the received samples are truncated".into(),
        })
        .into()
    };
    let ndims = *packed.first().ok_or_else(bad)? as usize;
    let dims: Vec<usize> = packed
        .get(1..=ndims)
        .ok_or_else(bad)?
        .iter()
        .map(|&d| d as usize)
        .collect();
    let levels = *packed.get(ndims + 1).ok_or_else(bad)? as usize;
    let count = *packed.get(ndims + 2).ok_or_else(bad)? as usize;
    let len = levels * dims.iter().skip(1).product::<usize>();
    let start = ndims + 3;
    let end = start + count * len;
    let values = packed.get(start..end).ok_or_else(bad)?;
    let values = values.chunks(len.max(1)).map(<[f64]>::to_vec).collect();
    Ok((Samples::from_parts(dims, levels, values)?, &packed[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whole trajectories and initial conditions alone come back as they
    /// went, one after the other in one buffer.
    #[test]
    fn packed_samples_unpack_to_themselves() {
        let whole = Samples::new(vec![2, 3], vec![vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]).unwrap();
        let initial =
            Samples::initial_only(vec![2, 3], vec![vec![0.5, 1.5, 2.5], vec![-1.0, 0.0, 1.0]])
                .unwrap();
        let mut packed = pack(&initial);
        packed.extend(pack(&whole));
        let (first, rest) = unpack(&packed).unwrap();
        let (second, rest) = unpack(rest).unwrap();
        assert_eq!((first, second), (initial, whole));
        assert!(rest.is_empty());
        let (_, truncated) = unpack(&packed[..packed.len() - 1]).unwrap();
        assert!(unpack(truncated).is_err());
    }
}
