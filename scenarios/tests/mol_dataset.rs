//! Datasets from the method-of-lines solver: the built-in generators' layout,
//! trajectories that match the closed form of each drawn initial condition,
//! reproducible draws, disjoint splits, a file round trip, and the summary of
//! what the integrations cost.

use num_dual::DualNum;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::f64::consts::PI;
use tessera_scenarios::dataset::{Generation, Split};
use tessera_scenarios::mol::{
    Boundary, Derivative, Discretisation, MolDomain, MolMethod, MolOptions, MolPde, MolStats,
    MolSummary, MolTerm, PointValues, Side, generate,
};
use tessera_scenarios::{Dataset, ScenarioError};

const NU: f64 = 0.2;

/// `u_t = ν u_xx`, `u = 0` at both ends.
struct Heat;

impl MolPde for Heat {
    fn terms(&self) -> Vec<MolTerm> {
        vec![MolTerm::new(0, Derivative::Dxx)]
    }
    fn residual<D: DualNum<Primitive = f64> + Copy>(&self, at: &PointValues<'_, D>, out: &mut [D]) {
        out[0] = at.u_t[0] - at.z[0] * NU;
    }
    fn boundary(&self, _: Side, _: usize) -> Boundary {
        Boundary::dirichlet()
    }
}

/// `a·sin(πx)` with `a ~ U(0.5, 1.5)`.
fn family(rng: &mut ChaCha8Rng, coordinates: &[f64], dims: usize) -> Vec<f64> {
    let a = rng.random_range(0.5..1.5);
    coordinates
        .chunks_exact(dims)
        .map(|x| a * (PI * x[0]).sin())
        .collect()
}

fn make(split: Split, samples: usize) -> Result<Dataset, ScenarioError> {
    let domain = MolDomain::interval(0.0, 1.0, 17, 4).unwrap();
    let times: Vec<f64> = (0..=5).map(|i| 0.05 * i as f64).collect();
    let options = MolOptions {
        rtol: 1e-9,
        atol: 1e-11,
        ..MolOptions::default()
    };
    let generation = Generation {
        samples,
        seed: 7,
        split,
        quiet: true,
    };
    generate(
        &Heat,
        &domain,
        &times,
        &family,
        &options,
        &generation,
        "pde = \"heat\"".into(),
    )
    .map(|(data, _)| data)
}

#[test]
fn generated_trajectories_follow_the_closed_form_of_their_initial_condition() {
    let data = make(Split::Train, 3).unwrap();
    assert_eq!(data.dims(), vec![6, 17]);
    assert_eq!(data.len(), 3);
    assert!(data.y().is_none());
    assert_eq!(data.config(), "pde = \"heat\"");
    let x = data.x().to_vec();
    assert!((x[8] - 0.5).abs() < 1e-15 && x[0] == 0.0 && x[16] == 1.0);
    for i in 0..data.len() {
        let traj = data.trajectory(i);
        // The amplitude is the initial value at x = 1/2.
        let a = f64::from(traj[8]);
        assert!((0.5..1.5).contains(&a));
        for (k, &t) in data.t().iter().enumerate() {
            for (j, &xj) in x.iter().enumerate() {
                let exact = a * (PI * xj).sin() * (-PI * PI * NU * t).exp();
                // f32 storage and the O(h²) error at h = 1/64.
                let got = f64::from(traj[k * x.len() + j]);
                assert!((got - exact).abs() < 2e-4, "t {t} x {xj}: {got} vs {exact}");
            }
        }
    }
}

#[test]
fn draws_are_reproducible_and_the_splits_differ() {
    let a = make(Split::Train, 2).unwrap();
    let b = make(Split::Train, 2).unwrap();
    let test = make(Split::Test, 2).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.trajectory(0), test.trajectory(0));
    assert_ne!(a.trajectory(0), a.trajectory(1));
    // One sample alone is the first sample of a larger set.
    let one = make(Split::Train, 1).unwrap();
    assert_eq!(one.trajectory(0), a.trajectory(0));
}

#[test]
fn a_generated_dataset_survives_a_file_round_trip() {
    let data = make(Split::Train, 2).unwrap();
    let dir = std::env::temp_dir().join(format!("tessera-mol-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("heat.safetensors");
    data.write(&path).unwrap();
    let back = Dataset::read(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    // Coordinates are stored as f32, like the values.
    assert_eq!(back.trajectories(), data.trajectories());
    assert_eq!(back.config(), data.config());
    for (a, b) in back
        .t()
        .iter()
        .chain(back.x())
        .zip(data.t().iter().chain(data.x()))
    {
        assert!((a - b).abs() <= 1e-7 * b.abs());
    }
}

#[test]
fn bad_requests_are_typed_errors() {
    assert!(matches!(
        make(Split::Train, 0),
        Err(ScenarioError::InvalidValue { .. })
    ));
    struct Two;
    impl MolPde for Two {
        fn components(&self) -> usize {
            2
        }
        fn terms(&self) -> Vec<MolTerm> {
            vec![MolTerm::new(1, Derivative::Dxx)]
        }
        fn residual<D: DualNum<Primitive = f64> + Copy>(
            &self,
            at: &PointValues<'_, D>,
            out: &mut [D],
        ) {
            out[0] = at.u_t[0];
            out[1] = at.u_t[1] - at.z[0];
        }
        fn boundary(&self, _: Side, _: usize) -> Boundary {
            Boundary::dirichlet()
        }
    }
    let domain = MolDomain::interval(0.0, 1.0, 5, 1).unwrap();
    let generation = Generation {
        samples: 1,
        seed: 0,
        split: Split::Train,
        quiet: true,
    };
    let two = |_: &mut ChaCha8Rng, c: &[f64], _: usize| vec![0.0; 2 * c.len()];
    assert!(matches!(
        generate(
            &Two,
            &domain,
            &[0.0, 1.0],
            &two,
            &MolOptions::default(),
            &generation,
            String::new()
        ),
        Err(ScenarioError::Unsupported { .. })
    ));
    // A family that returns too few values fails on its sample, typed.
    let short = |_: &mut ChaCha8Rng, _: &[f64], _: usize| vec![0.0; 3];
    let err = generate(
        &Heat,
        &domain,
        &[0.0, 1.0],
        &short,
        &MolOptions::default(),
        &generation,
        String::new(),
    )
    .map(|(data, _)| data);
    assert!(
        matches!(
            err,
            Err(ScenarioError::Mol {
                sample: Some(0),
                source: tessera_scenarios::mol::MolError::ShapeMismatch { .. }
            })
        ),
        "{err:?}"
    );
}

#[test]
fn the_summary_adds_up_the_samples_integrations_and_where_auto_switched() {
    // Every sample starts from the same field (the family ignores its draw),
    // so the summary must be `samples` times one direct solve's counts. The
    // grid (65 points, ν = 0.2, eigenvalues to about −3300) at a loose
    // tolerance makes the explicit steps stability-bound, so `auto` switches.
    let domain = MolDomain::interval(0.0, 1.0, 17, 4).unwrap();
    let times: Vec<f64> = (0..=5).map(|i| 0.05 * i as f64).collect();
    let options = MolOptions {
        method: MolMethod::Auto,
        ..MolOptions::default()
    };
    let same = |_: &mut ChaCha8Rng, c: &[f64], dims: usize| {
        c.chunks_exact(dims).map(|x| (PI * x[0]).sin()).collect()
    };
    let discretisation = Discretisation::new(&Heat, &domain).unwrap();
    let u0 = discretisation.sample(|x| vec![(PI * x[0]).sin()]).unwrap();
    let one = discretisation.solve(&u0, &times, &options).unwrap().stats;
    let switched_at = one.switched_at.expect("auto switches on this grid");
    assert!(one.explicit_steps > 0 && one.steps > one.explicit_steps);
    let samples = 3;
    let generation = Generation {
        samples,
        seed: 7,
        split: Split::Train,
        quiet: true,
    };
    let (_, summary) = generate(
        &Heat,
        &domain,
        &times,
        &same,
        &options,
        &generation,
        String::new(),
    )
    .unwrap();
    assert_eq!(summary.method, MolMethod::Auto);
    assert_eq!(summary.samples, samples);
    assert_eq!(summary.switched, samples);
    assert_eq!(summary.switch_times, Some((switched_at, switched_at)));
    let t = &summary.total;
    assert_eq!(t.steps, samples * one.steps);
    assert_eq!(t.explicit_steps, samples * one.explicit_steps);
    assert_eq!(t.rejected, samples * one.rejected);
    assert_eq!(t.rhs_evaluations, samples * one.rhs_evaluations);
    assert_eq!(t.jacobians, samples * one.jacobians);
    assert_eq!(t.newton_iterations, samples * one.newton_iterations);
    assert_eq!(t.switched_at, None);
    let line = summary.to_string();
    println!("{line}");
    assert!(line.starts_with("auto over 3 samples: "), "{line}");
    assert!(line.contains("then SDIRK4 in 3 of 3 from t = "), "{line}");
}

#[test]
fn the_summary_spans_the_switch_times_and_counts_samples_that_never_switched() {
    let stats = |steps, switched_at| MolStats {
        steps,
        explicit_steps: steps / 2,
        held_by_stability: steps / 4,
        rhs_evaluations: 10 * steps,
        switched_at,
        ..MolStats::default()
    };
    let summary = MolSummary::new(
        MolMethod::Auto,
        &[stats(4, Some(0.5)), stats(6, None), stats(8, Some(0.125))],
    );
    assert_eq!(summary.samples, 3);
    assert_eq!(summary.switched, 2);
    assert_eq!(summary.switch_times, Some((0.125, 0.5)));
    assert_eq!(summary.total.steps, 18);
    assert_eq!(summary.total.explicit_steps, 2 + 3 + 4);
    assert_eq!(summary.total.held_by_stability, 1 + 1 + 2);
    assert_eq!(summary.total.rhs_evaluations, 180);
    assert!(
        summary
            .to_string()
            .contains("then SDIRK4 in 2 of 3 from t = 0.1250 … 0.5000")
    );
    // An explicit run neither switches nor reports Newton's counts; it says
    // how many of its steps stability held.
    let explicit = MolSummary::new(
        MolMethod::Explicit,
        &[MolStats {
            steps: 5,
            explicit_steps: 5,
            held_by_stability: 3,
            rhs_evaluations: 31,
            ..MolStats::default()
        }],
    );
    assert_eq!(explicit.switch_times, None);
    assert_eq!(
        explicit.to_string(),
        "explicit (Dormand–Prince 5(4)) over 1 sample: 5 steps (3 held by stability), 0 rejected, \
         31 right-hand sides"
    );
}
