//! The NCCL communicator on a real GPU, as a world of one rank (NCCL allows
//! one rank per GPU): every collective goes through NCCL's grouped sends and
//! receives to the rank itself, and must give what the single-rank `Local`
//! gives, bit for bit, for empty, small and large blocks. On a machine without
//! a CUDA driver every test here says it is skipped and why. A world of
//! several ranks needs a GPU per rank, which no machine these tests run on
//! has.
#![cfg(feature = "nccl")]

use tessera_constraints::gpu::{Gpu, GpuError};
use tessera_experts::comm::{CommError, Communicator, Local, Nccl};

/// NCCL on GPU 0 for a world of one rank, or `None` with a skip notice when
/// there is no driver. A driver without NCCL is a failure: a GPU machine
/// that runs these tests must provide libnccl.so.
fn world() -> Option<Nccl> {
    let Some(gpu) = Gpu::open_if_present(0).expect("a GPU machine opens GPU 0") else {
        println!("skipped: {}", GpuError::NoDriver);
        return None;
    };
    Some(Nccl::new(&Local, gpu.stream().clone()).expect("NCCL starts"))
}

/// Values whose bits a lossy path would change: signs, subnormals, large
/// exponents, non-terminating binary fractions.
fn values(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let x = (i as f64 + 0.1) / 3.0;
            match i % 4 {
                0 => x,
                1 => -x * 1e300,
                2 => f64::MIN_POSITIVE / (i as f64 + 2.0),
                _ => 1.0 / (x + 7.0),
            }
        })
        .collect()
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn all_to_all_and_all_reduce_match_a_single_rank() {
    let Some(nccl) = world() else { return };
    assert_eq!((nccl.rank(), nccl.size()), (0, 1));
    for n in [0, 1, 7, 1 << 20] {
        let send = vec![values(n)];
        let got = nccl.all_to_all_v(&send).expect("all-to-all");
        let want = Local.all_to_all_v(&send).expect("local all-to-all");
        assert_eq!(got.len(), 1, "{n} values: one block per rank");
        assert_eq!(bits(&got[0]), bits(&want[0]), "{n} values: all-to-all");

        let mut summed = values(n);
        nccl.all_reduce_sum(&mut summed).expect("all-reduce");
        assert_eq!(bits(&summed), bits(&values(n)), "{n} values: all-reduce");
    }
}

#[test]
fn broadcast_gather_and_barrier_match_a_single_rank() {
    let Some(nccl) = world() else { return };
    for n in [0, 3, 100_000] {
        let message: Vec<u8> = (0..n).map(|i| (i * 37 % 251) as u8).collect();
        let mut bytes = message.clone();
        nccl.broadcast_bytes(0, &mut bytes).expect("broadcast");
        assert_eq!(bytes, message, "{n} bytes: broadcast");

        let mut floats = values(n);
        nccl.broadcast(0, &mut floats).expect("broadcast of floats");
        assert_eq!(bits(&floats), bits(&values(n)), "{n} values: broadcast");

        let gathered = nccl.gather(0, &values(n)).expect("gather");
        let gathered = gathered.expect("rank 0 is the root");
        assert_eq!(gathered.len(), 1);
        assert_eq!(bits(&gathered[0]), bits(&values(n)), "{n} values: gather");
    }
    nccl.barrier().expect("barrier");
}

#[test]
fn bad_arguments_are_errors_not_hangs() {
    let Some(nccl) = world() else { return };
    assert_eq!(
        nccl.all_to_all_v(&[vec![1.0], vec![2.0]]),
        Err(CommError::PerRank {
            what: "all-to-all send buffers",
            size: 1,
            got: 2
        })
    );
    let no_rank = Err(CommError::NoSuchRank { rank: 1, size: 1 });
    assert_eq!(nccl.broadcast_bytes(1, &mut vec![1, 2]), no_rank);
    assert_eq!(nccl.gather(1, &[1.0]).map(|_| ()), no_rank);
    // The world still works after the refused calls.
    assert_eq!(
        nccl.all_to_all_v(&[vec![4.0]]).expect("all-to-all"),
        vec![vec![4.0]]
    );
}
