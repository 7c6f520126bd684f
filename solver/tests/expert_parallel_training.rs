//! Multi-rank training steps, with threads standing in for MPI ranks: a group
//! that splits the experts' solves trains bit for bit as one process, adding
//! an expert axis to a data-parallel run changes no bit either, and with
//! `parallel.reproducible` data-parallel runs repeat the single-process run
//! bit for bit while agreeing with the default (batched) step to rounding.

mod model_common;

use tessera_experts::comm::{Communicator, Threads};
use tessera_solver::{Adam, AdamConfig, Batch, DataShard, Layout, Model, named_vars, update_shard};

const STEPS: usize = 3;

/// Per step the loss, then every variable value, all as bits, of a few steps
/// of the tiny diffusion–sorption (`ns = false`) or Navier–Stokes scenario.
fn train(shard: &DataShard<'_>, ns: bool) -> (Vec<u64>, Vec<u64>) {
    train_with(shard, ns, false)
}

fn train_with(shard: &DataShard<'_>, ns: bool, reproducible: bool) -> (Vec<u64>, Vec<u64>) {
    let (mut scenario, points) = if ns {
        (model_common::navier_stokes("moe"), 64)
    } else {
        (
            model_common::diffusion_sorption("moe", "init = \"warm\""),
            16,
        )
    };
    scenario.parallel.reproducible = reproducible;
    let mut model = Model::new(&scenario).unwrap();
    let vars = named_vars(&model).unwrap();
    let mut adam = Adam::new(AdamConfig::default());
    let mut losses = Vec::new();
    for step in 0..STEPS {
        let ics = (0..scenario.training.batch_size)
            .map(|b| {
                (0..points)
                    .map(|x| 0.1 + 0.05 * ((b + step + 1) as f64 * (x as f64 + 0.5)).sin())
                    .collect()
            })
            .collect();
        let batch = Batch {
            ics,
            targets: None,
            seed: step as u64,
        };
        let record = update_shard(&mut model, &batch, &vars, &mut adam, 1e-3, 1.0, shard).unwrap();
        assert!(record.solves > 0 && record.lm_iterations_mean > 0.0);
        losses.push(record.loss.to_bits());
    }
    let values = vars
        .values()
        .flat_map(|v| {
            v.as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap()
        })
        .map(f64::to_bits)
        .collect();
    (losses, values)
}

fn train_on_threads(data: usize, experts: usize, ns: bool) -> Vec<(Vec<u64>, Vec<u64>)> {
    reproducible_on_threads(data, experts, ns, false)
}

fn reproducible_on_threads(
    data: usize,
    experts: usize,
    ns: bool,
    reproducible: bool,
) -> Vec<(Vec<u64>, Vec<u64>)> {
    Threads::run(data * experts, |comm| {
        let layout = Layout { data, experts };
        train_with(
            &DataShard::new(comm as &dyn Communicator, layout),
            ns,
            reproducible,
        )
    })
}

#[test]
fn expert_ranks_train_bit_for_bit_as_one_process() {
    // Diffusion–sorption has 2 experts, Navier–Stokes 4 (over 2 and 3 ranks).
    for (ns, ranks) in [(false, 2), (true, 2), (true, 3)] {
        let single = train(&DataShard::whole(), ns);
        for rank in train_on_threads(1, ranks, ns) {
            assert_eq!(
                rank,
                single,
                "{} on {ranks} expert ranks",
                if ns { "NS" } else { "DS" }
            );
        }
    }
}

#[test]
fn an_expert_axis_leaves_a_data_parallel_run_unchanged() {
    let data_parallel = train_on_threads(2, 1, false);
    assert_eq!(data_parallel[0], data_parallel[1]);
    for rank in train_on_threads(2, 2, false) {
        assert_eq!(rank, data_parallel[0]);
    }
}

#[test]
fn reproducible_data_parallel_runs_repeat_one_process_bit_for_bit() {
    for ns in [false, true] {
        let single = train_with(&DataShard::whole(), ns, true);
        for (data, experts) in [(2, 1), (2, 2)] {
            for rank in reproducible_on_threads(data, experts, ns, true) {
                assert_eq!(rank, single, "{data} × {experts} ranks, NS {ns}");
            }
        }
        // Against the default step (the batch through the backbone at once,
        // one backward pass): the same losses to rounding.
        let batched = train(&DataShard::whole(), ns);
        for (a, b) in single.0.iter().zip(&batched.0) {
            let (a, b) = (f64::from_bits(*a), f64::from_bits(*b));
            assert!((a - b).abs() <= 1e-9 * a.abs(), "NS {ns}: {a} vs {b}");
        }
    }
}
