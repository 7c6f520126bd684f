//! `initial_conditions` gives, without the reference solver, the first frame
//! of every trajectory `generate` writes: bit for bit, for each kind of
//! generator (diffusion–sorption, Navier–Stokes at a finer solver
//! resolution, a PDE defined in TOML on a refined method-of-lines grid, one
//! dealiased), in both splits.

use std::path::PathBuf;

use tessera_scenarios::dataset::{Generation, Split, generate, initial_conditions};
use tessera_scenarios::{Scenario, ScenarioError};

fn shipped(file: &str) -> Scenario {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(file);
    let mut scenario = Scenario::from_file(path).unwrap();
    // The first frame does not depend on how far the solve runs.
    scenario.grid.t_max /= 50.0;
    scenario
}

#[test]
fn initial_conditions_are_the_generated_first_frames() {
    let dealiased = ["data.reference.dealias=2/3"];
    for (file, settings) in [
        ("diffusion-sorption-small.toml", &[][..]),
        ("navier-stokes-medium.toml", &[]),
        ("burgers-small.toml", &[]),
        ("kuramoto-sivashinsky-small.toml", &[]),
        ("kuramoto-sivashinsky-small.toml", &dealiased),
        ("allen-cahn-2d-small.toml", &[]),
        ("cahn-hilliard-small.toml", &[]),
    ] {
        let mut scenario = shipped(file);
        scenario.set_all(settings).unwrap();
        for split in [Split::Train, Split::Test] {
            let options = Generation {
                samples: 3,
                quiet: true,
                ..Generation::for_split(&scenario, split)
            };
            let dataset = generate(&scenario, &options).unwrap();
            let ics = initial_conditions(&scenario, &options).unwrap();
            assert_eq!(ics.len(), 3, "{file} {split}");
            for (i, ic) in ics.iter().enumerate() {
                assert_eq!(
                    ic,
                    dataset.initial_condition(i),
                    "{file} {split} sample {i}"
                );
            }
            // Distinct samples: the draws follow the sample's stream.
            assert_ne!(ics[0], ics[1], "{file} {split}");
        }
    }
}

#[test]
fn no_samples_is_an_error() {
    let scenario = shipped("diffusion-sorption-small.toml");
    let options = Generation {
        samples: 0,
        ..Generation::for_split(&scenario, Split::Train)
    };
    assert!(matches!(
        initial_conditions(&scenario, &options),
        Err(ScenarioError::InvalidValue { .. })
    ));
}
