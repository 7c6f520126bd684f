//! `training.freeze`: frozen variable groups keep their initial values through
//! training while the others learn, and groups that name nothing (or
//! everything) are refused with the groups that exist.

mod model_common;

use std::collections::BTreeMap;

use tessera_solver::{Adam, AdamConfig, Batch, Model, SolverError, Trainable, named_vars, update};

fn values(model: &Model) -> BTreeMap<String, Vec<u64>> {
    model
        .vars()
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(name, var)| {
            let v = var
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_dtype(candle_core::DType::F64);
            let bits = v
                .unwrap()
                .to_vec1::<f64>()
                .unwrap()
                .into_iter()
                .map(f64::to_bits);
            (name.clone(), bits.collect())
        })
        .collect()
}

fn model(freeze: &[&str]) -> Model {
    model_of(model_common::diffusion_sorption("moe", ""), freeze)
}

fn model_of(mut scenario: tessera_scenarios::Scenario, freeze: &[&str]) -> Model {
    scenario.training.freeze = freeze.iter().map(|g| (*g).to_owned()).collect();
    Model::new(&scenario).unwrap()
}

#[test]
fn frozen_groups_keep_their_values_and_the_rest_learns() {
    let mut model = model(&["lift", "head.fc2"]);
    let before = values(&model);
    let vars = named_vars(&model).unwrap();
    assert!(
        vars.keys()
            .all(|n| !n.starts_with("lift.") && !n.starts_with("head.fc2."))
    );
    assert!(vars.contains_key("head.fc1.weight"));
    let mut adam = Adam::new(AdamConfig::default());
    for seed in 0..2 {
        let batch = Batch {
            ics: (0..2).map(|b| vec![0.1 + 0.02 * b as f64; 16]).collect(),
            targets: None,
            seed,
        };
        update(&mut model, &batch, &vars, &mut adam, 1e-2, 1.0).unwrap();
    }
    let after = values(&model);
    for (name, v) in &before {
        let frozen = name.starts_with("lift.") || name.starts_with("head.fc2.");
        assert_eq!(&after[name] == v, frozen, "{name}: frozen {frozen}");
    }
}

#[test]
fn groups_that_name_nothing_or_everything_are_refused() {
    let err = named_vars(&model(&["fc0"])).unwrap_err();
    assert!(matches!(
        err,
        SolverError::InvalidConfig {
            key: "training.freeze",
            ..
        }
    ));
    let text = err.to_string();
    assert!(
        text.contains("fc0") && text.contains("head.fc1") && text.contains("lift"),
        "{text}"
    );
    // A group is whole segments: `lay` is not `layers`.
    assert!(named_vars(&model(&["lay"])).is_err());
    let everything = model_of(
        model_common::navier_stokes("soft"),
        &["lift", "layers", "head"],
    );
    let err = named_vars(&everything).unwrap_err();
    assert!(err.to_string().contains("every variable"), "{err}");
}
