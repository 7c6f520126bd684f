//! Datasets from the method-of-lines solver: the built-in generators' layout,
//! trajectories that match the closed form of each drawn initial condition,
//! reproducible draws, disjoint splits, and a file round trip.

use num_dual::DualNum;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::f64::consts::PI;
use tessera_scenarios::dataset::{Generation, Split};
use tessera_scenarios::mol::{
    Boundary, Derivative, MolDomain, MolOptions, MolPde, MolTerm, PointValues, Side, generate,
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
    );
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
