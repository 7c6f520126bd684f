//! Expert parallelism: the solves of a batch split over the ranks of a group
//! (threads standing in for processes) give every rank the single-process
//! forward pass bit for bit, for any group size and placement.

#[path = "../../constraints/tests/common/pdes.rs"]
mod pdes;

use std::sync::Arc;

use pdes::SorptionLike;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tessera_experts::comm::{CommError, Communicator, Threads};
use tessera_experts::placement::balance;
use tessera_experts::{ConstraintLayer, ExpertShard, ExpertsError, Forward, LayerConfig};
use tessera_meshes::Grid;

const BATCH: usize = 3;
const N: usize = 4;

fn layer() -> ConstraintLayer<SorptionLike> {
    let grid = Grid::uniform_tx(8, 16, 1.0).unwrap();
    let mut config = LayerConfig::new(&[1, 4], 20);
    config.seed = 5;
    ConstraintLayer::new(Arc::new(SorptionLike), grid, config).unwrap()
}

fn inputs() -> (Vec<f64>, Vec<Vec<f64>>) {
    let mut r = ChaCha8Rng::seed_from_u64(2);
    let basis = (0..BATCH * 8 * 16 * N)
        .map(|_| r.random_range(0.2..1.0))
        .collect();
    let ics = (0..BATCH)
        .map(|_| (0..16).map(|_| r.random_range(0.05..0.2)).collect())
        .collect();
    (basis, ics)
}

fn bits(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.to_bits()).collect()
}

fn assert_identical(a: &Forward, b: &Forward) {
    assert_eq!(bits(&a.u), bits(&b.u));
    assert_eq!(bits(&a.weights), bits(&b.weights));
    assert_eq!(a.statuses, b.statuses);
}

#[test]
fn every_rank_gets_the_single_process_forward_pass() {
    let layer = layer();
    let (basis, ics) = inputs();
    let ics: Vec<&[f64]> = ics.iter().map(Vec::as_slice).collect();
    let single = layer.forward(&basis, N, &ics, 9).unwrap();
    assert!(single.all_converged());
    let skewed = [40.0, 1.0, 1.0, 1.0];
    for ranks in 1..=3 {
        for owners in [
            balance(&[1.0; 4], ranks),
            balance(&skewed, ranks),
            vec![ranks - 1; 4],
        ] {
            let results = Threads::run(ranks, |comm| {
                let shard = ExpertShard::new(comm, 0..ranks, owners.clone()).unwrap();
                layer.forward_sharded(&basis, N, &ics, 9, &shard).unwrap()
            });
            for forward in &results {
                assert_identical(forward, &single);
            }
            // The backward pass runs on every rank from the same data.
            let u_bar: Vec<f64> = (0..single.u.len()).map(|i| (i as f64).sin()).collect();
            let expected = layer.backward(&single, &basis, &u_bar).unwrap();
            assert_eq!(
                bits(&layer.backward(&results[0], &basis, &u_bar).unwrap()),
                bits(&expected)
            );
        }
    }
}

#[test]
fn groups_inside_a_larger_world_exchange_only_among_themselves() {
    let layer = layer();
    let (basis, ics) = inputs();
    let ics: Vec<&[f64]> = ics.iter().map(Vec::as_slice).collect();
    let single = layer.forward(&basis, N, &ics, 4).unwrap();
    // Ranks 0–1 and 2–3 are two groups; the second solves another batch.
    let other: Vec<f64> = basis.iter().map(|b| b * 0.9).collect();
    let single_other = layer.forward(&other, N, &ics, 4).unwrap();
    let results = Threads::run(4, |comm| {
        let group = if comm.rank() < 2 { 0..2 } else { 2..4 };
        let shard = ExpertShard::new(comm, group, balance(&[1.0; 4], 2)).unwrap();
        let basis = if comm.rank() < 2 { &basis } else { &other };
        layer.forward_sharded(basis, N, &ics, 4, &shard).unwrap()
    });
    for (rank, forward) in results.iter().enumerate() {
        assert_identical(forward, if rank < 2 { &single } else { &single_other });
    }
}

#[test]
fn shards_that_do_not_fit_are_refused() {
    let layer = layer();
    let (basis, ics) = inputs();
    let ics: Vec<&[f64]> = ics.iter().map(Vec::as_slice).collect();
    Threads::run(2, |comm| {
        let outside = ExpertShard::new(comm, 0..1, vec![0; 4]).err();
        let bad_owner = ExpertShard::new(comm, 0..2, vec![0, 1, 2, 0]).err();
        let expected_outside =
            (comm.rank() == 1).then_some(ExpertsError::Comm(CommError::NoSuchRank {
                rank: 1,
                size: 1,
            }));
        assert_eq!(outside, expected_outside);
        assert_eq!(
            bad_owner,
            Some(ExpertsError::Comm(CommError::NoSuchRank {
                rank: 2,
                size: 2
            }))
        );
        let three = ExpertShard::new(comm, 0..2, vec![0, 1, 0]).unwrap();
        let err = layer.forward_sharded(&basis, N, &ics, 0, &three).err();
        assert!(
            matches!(err, Some(ExpertsError::ShapeMismatch { .. })),
            "{err:?}"
        );
    });
}
