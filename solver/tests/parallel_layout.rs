//! The `[parallel]` table: sizes resolved against a world, and every bad
//! setting refused with a clear error before any work (in the scenario for
//! what needs no world size, at launch for the rest).

use tessera_scenarios::Scenario;
use tessera_solver::{Layout, ParallelError};

/// A PI-HC-MoE scenario with 4 experts and a batch of 4.
fn scenario(parallel: &str) -> Result<Scenario, tessera_scenarios::ScenarioError> {
    let text = format!(
        r#"
name = "layout"
[pde]
kind = "diffusion-sorption"
[grid]
nt = 8
nx = 16
t_max = 500.0
[data]
train_samples = 8
test_samples = 2
[model]
modes = [2, 3]
[constraint]
method = "moe"
experts = [1, 4]
points = 8
[training]
batch_size = 4
validate_samples = 1
[eval]
plots = 1
{parallel}
"#
    );
    Scenario::from_str(&text, "<layout>")
}

fn layout(parallel: &str, world: usize) -> Result<Layout, ParallelError> {
    Layout::resolve(&scenario(parallel).unwrap(), world)
}

#[test]
fn absent_sizes_make_every_rank_data_parallel() {
    for world in [1, 2, 4] {
        assert_eq!(
            layout("", world).unwrap(),
            Layout {
                data: world,
                experts: 1
            }
        );
    }
    let given = layout("[parallel]\ndata = 2", 2).unwrap();
    assert_eq!((given.data, given.experts), (2, 1));
}

#[test]
fn expert_ranks_take_what_the_data_ranks_leave() {
    for (table, world, expected) in [
        ("[parallel]\nexperts = 2", 2, (1, 2)),
        ("[parallel]\nexperts = 2", 4, (2, 2)),
        ("[parallel]\ndata = 2", 4, (2, 2)),
        ("[parallel]\nexperts = 4", 4, (1, 4)),
    ] {
        let got = layout(table, world).unwrap();
        assert_eq!((got.data, got.experts), expected, "{table} on {world}");
    }
    let l = Layout {
        data: 2,
        experts: 3,
    };
    assert_eq!(
        (0..6).map(|r| l.group(r)).collect::<Vec<_>>(),
        [0..3, 0..3, 0..3, 3..6, 3..6, 3..6]
    );
    assert_eq!(
        (0..6).map(|r| l.leads_group(r)).collect::<Vec<_>>(),
        [true, false, false, true, false, false]
    );
}

#[test]
fn sizes_that_do_not_fit_the_world_or_batch_are_refused() {
    for (table, world, expected) in [
        ("[parallel]\ndata = 2", 3, "does not divide the world"),
        (
            "[parallel]\ndata = 1\nexperts = 1",
            2,
            "must equal the world",
        ),
        ("", 3, "do not divide training.batch_size"),
        (
            "[parallel]\nexperts = 2",
            6,
            "do not divide training.batch_size",
        ),
    ] {
        let err = layout(table, world).unwrap_err();
        assert!(matches!(err, ParallelError::Layout { .. }), "{err:?}");
        assert!(
            err.to_string().contains(expected),
            "{table} on {world}: {err}"
        );
    }
}

#[test]
fn the_scenario_refuses_what_needs_no_world_size() {
    let err = scenario("[parallel]\ndata = 3").unwrap_err().to_string();
    assert!(
        err.contains("parallel.data") && err.contains("batch_size"),
        "{err}"
    );
    let err = scenario("[parallel]\nexperts = 5").unwrap_err().to_string();
    assert!(
        err.contains("parallel.experts") && err.contains("(4)"),
        "{err}"
    );
    let err = scenario("[parallel]\ndata = 0").unwrap_err().to_string();
    assert!(err.contains("parallel.data"), "{err}");
}

#[test]
fn set_overrides_the_table_and_round_trips() {
    let mut s = scenario("").unwrap();
    assert!(!s.to_toml_string().contains("[parallel]"));
    s.set("parallel.data=2").unwrap();
    assert_eq!(s.parallel.data, Some(2));
    let back = Scenario::from_str(&s.to_toml_string(), "<round trip>").unwrap();
    assert_eq!(back, s);
    assert!(s.set("parallel.data=3").is_err());
    assert_eq!(s.parallel.data, Some(2), "a refused --set changes nothing");
}
