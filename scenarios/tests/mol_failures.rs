//! Typed errors of the method-of-lines solver: definitions it cannot
//! discretise, residuals not affine in `u_t` (and affine ones whose large
//! terms cancel, which are not), and failures while integrating.

use num_dual::DualNum;
use tessera_meshes::MeshError;
use tessera_scenarios::mol::domain::MIN_POINTS;
use tessera_scenarios::mol::{
    Boundary, Derivative, Discretisation, MolDomain, MolError, MolMethod, MolOptions, MolPde,
    MolTerm, PointValues, Side, SpatialAxis, Stencil,
};

/// Which residual to use: `u_t·a(u_t) − u_xx − r(u)`.
#[derive(Clone, Copy)]
enum Kind {
    /// `u_t − u_xx` (well-posed).
    Heat,
    /// `u_xx` alone: no `u_t`.
    NoTimeDerivative,
    /// `u_t + u_t² − u_xx`: curvature in `u_t`.
    Quadratic,
    /// `u_t + u_t³ − u_xx`: no curvature at `u_t = 0`, but not affine.
    Cubic,
    /// `u_t − u_xx − u²`: blows up from a constant 2 at `t = 1/2`.
    Explosive,
    /// `c u + u_t − c u − u_xx`, `c` = 1e10: the heat equation, whose two
    /// large terms cancel to a round-off (up to 2e-6) far above the tolerance
    /// of `F`'s value at the solved `u_t`.
    Cancelling,
}

struct Test {
    kind: Kind,
    low: Boundary,
    high: Boundary,
}

impl Test {
    fn new(kind: Kind) -> Self {
        Self {
            kind,
            low: Boundary::neumann(),
            high: Boundary::neumann(),
        }
    }
}

impl MolPde for Test {
    fn terms(&self) -> Vec<MolTerm> {
        vec![
            MolTerm::new(0, Derivative::Value),
            MolTerm::new(0, Derivative::Dxx),
        ]
    }
    fn residual<D: DualNum<Primitive = f64> + Copy>(&self, at: &PointValues<'_, D>, out: &mut [D]) {
        let v = at.u_t[0];
        out[0] = match self.kind {
            Kind::Heat => v - at.z[1],
            Kind::NoTimeDerivative => at.z[1],
            Kind::Quadratic => v + v * v - at.z[1],
            Kind::Cubic => v + v * v * v - at.z[1],
            Kind::Explosive => v - at.z[1] - at.z[0] * at.z[0],
            // Summed left to right: `u_t` is added to the large term first.
            Kind::Cancelling => at.z[0] * 1e10 + v - at.z[0] * 1e10 - at.z[1],
        };
    }
    fn boundary(&self, side: Side, _: usize) -> Boundary {
        if side == Side::XLow {
            self.low
        } else {
            self.high
        }
    }
}

fn solve(pde: &Test, options: &MolOptions, t_end: f64) -> Result<(), MolError> {
    solution(pde, options, t_end).map(|_| ())
}

/// The frames at 0 and `t_end` from `2 + sin 3x` on 11 points.
fn solution(pde: &Test, options: &MolOptions, t_end: f64) -> Result<Vec<f64>, MolError> {
    let domain = MolDomain::interval(0.0, 1.0, 11, 1)?;
    let disc = Discretisation::new(pde, &domain)?;
    let u0 = disc.sample(|x| vec![2.0 + (3.0 * x[0]).sin()])?;
    Ok(disc.solve(&u0, &[0.0, t_end], options)?.frames)
}

#[test]
fn a_residual_without_u_t_is_singular() {
    let err = solve(
        &Test::new(Kind::NoTimeDerivative),
        &MolOptions::default(),
        1.0,
    );
    assert!(
        matches!(
            err,
            Err(MolError::SingularTimeCoefficient { equation: 0, .. })
        ),
        "{err:?}"
    );
}

#[test]
fn residuals_not_affine_in_u_t_are_rejected() {
    for kind in [Kind::Quadratic, Kind::Cubic] {
        let err = solve(&Test::new(kind), &MolOptions::default(), 1.0);
        assert!(
            matches!(err, Err(MolError::NonlinearInTimeDerivative { .. })),
            "{err:?}"
        );
    }
}

#[test]
fn an_affine_residual_whose_terms_cancel_is_not_rejected() {
    // F at the solved u_t is the round-off of the cancelled terms (up to 2e-6
    // against u_t ≈ 9, where the value test asks for 2e-7): the derivatives
    // there, free of those terms, show F affine. u_t itself comes from F and
    // its slope at u_t = 0, where the terms cancel exactly: the heat
    // equation's solution bit for bit.
    for method in [MolMethod::Implicit, MolMethod::Explicit] {
        let options = MolOptions {
            method,
            ..MolOptions::default()
        };
        let heat = solution(&Test::new(Kind::Heat), &options, 0.1).unwrap();
        let cancelling = solution(&Test::new(Kind::Cancelling), &options, 0.1)
            .unwrap_or_else(|e| panic!("{method:?}: {e}"));
        let worst = heat
            .iter()
            .zip(&cancelling)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        println!("{method:?}: cancelling terms against heat: {worst:e}");
        assert_eq!(worst, 0.0, "{method:?}");
    }
}

#[test]
fn blow_up_is_reported_near_the_blow_up_time() {
    // u' = u² from u ≥ 1 blows up by t = 1 at the latest.
    for method in [MolMethod::Implicit, MolMethod::Explicit] {
        let options = MolOptions {
            max_norm: 1e6,
            method,
            ..MolOptions::default()
        };
        match solve(&Test::new(Kind::Explosive), &options, 2.0) {
            Err(MolError::BlowUp { t, norm }) => {
                assert!(t > 0.1 && t < 1.0, "{method:?}: t = {t}");
                assert!(norm > 1e6);
            }
            other => panic!("{method:?}: expected a blow-up, got {other:?}"),
        }
        // Without a norm bound the step size collapses instead.
        let unbounded = MolOptions {
            max_norm: f64::MAX,
            method,
            ..MolOptions::default()
        };
        let err = solve(&Test::new(Kind::Explosive), &unbounded, 2.0);
        assert!(
            matches!(
                err,
                Err(MolError::StepSizeUnderflow { .. }
                    | MolError::NewtonFailure { .. }
                    | MolError::BlowUp { .. })
            ),
            "{method:?}: {err:?}"
        );
    }
}

#[test]
fn the_step_budget_is_enforced() {
    for method in [MolMethod::Implicit, MolMethod::Explicit, MolMethod::Auto] {
        let options = MolOptions {
            max_steps: 3,
            rtol: 1e-10,
            atol: 1e-12,
            method,
            ..MolOptions::default()
        };
        let err = solve(&Test::new(Kind::Heat), &options, 1.0);
        assert!(
            matches!(err, Err(MolError::TooManySteps { steps: 3, .. })),
            "{method:?}: {err:?}"
        );
    }
}

#[test]
fn bad_settings_and_definitions_are_typed_errors() {
    let heat = Test::new(Kind::Heat);
    for options in [
        MolOptions {
            rtol: 0.0,
            ..MolOptions::default()
        },
        MolOptions {
            atol: f64::NAN,
            ..MolOptions::default()
        },
        MolOptions {
            fixed_step: Some(-1.0),
            ..MolOptions::default()
        },
        MolOptions {
            max_steps: 0,
            ..MolOptions::default()
        },
    ] {
        assert!(matches!(
            solve(&heat, &options, 1.0),
            Err(MolError::InvalidValue { .. })
        ));
    }
    assert!(matches!(
        MolDomain::interval(1.0, 0.0, 11, 1),
        Err(MolError::InvalidValue { .. })
    ));
    assert!(matches!(
        MolDomain::interval(0.0, 1.0, MIN_POINTS - 1, 1),
        Err(MolError::Mesh(MeshError::TooSmall { min: MIN_POINTS, got, .. })) if got == MIN_POINTS - 1
    ));
    assert!(MolDomain::interval(0.0, 1.0, MIN_POINTS, 1).is_ok());
    assert!(matches!(
        MolDomain::interval(0.0, 1.0, 11, 0),
        Err(MolError::InvalidValue { .. })
    ));
    // Periodic on one side only.
    let half_periodic = Test {
        low: Boundary::Periodic,
        ..Test::new(Kind::Heat)
    };
    assert!(matches!(
        solve(&half_periodic, &MolOptions::default(), 1.0),
        Err(MolError::Boundary { axis: 0, .. })
    ));
    // α = β = 0.
    let empty_robin = Test {
        high: Boundary::Robin {
            alpha: 0.0,
            beta: 0.0,
        },
        ..Test::new(Kind::Heat)
    };
    assert!(matches!(
        solve(&empty_robin, &MolOptions::default(), 1.0),
        Err(MolError::Boundary { axis: 0, .. })
    ));
    // Output times that do not increase.
    let domain = MolDomain::interval(0.0, 1.0, 11, 1).unwrap();
    let disc = Discretisation::new(&heat, &domain).unwrap();
    let u0 = disc.sample(|_| vec![1.0]).unwrap();
    assert!(matches!(
        disc.solve(&u0, &[0.0, 0.5, 0.5], &MolOptions::default()),
        Err(MolError::InvalidValue { .. })
    ));
    // An initial condition of the wrong size.
    assert!(matches!(
        disc.solve(&u0[1..], &[0.0, 0.5], &MolOptions::default()),
        Err(MolError::ShapeMismatch { .. })
    ));
    // One diffusion term, discretised as asked.
    struct Diffusion(Derivative, Stencil);
    impl MolPde for Diffusion {
        fn terms(&self) -> Vec<MolTerm> {
            vec![MolTerm::new(0, self.0)]
        }
        fn stencil(&self) -> Stencil {
            self.1
        }
        fn residual<D: DualNum<Primitive = f64> + Copy>(
            &self,
            at: &PointValues<'_, D>,
            out: &mut [D],
        ) {
            out[0] = at.u_t[0] - at.z[0];
        }
        fn boundary(&self, _: Side, _: usize) -> Boundary {
            Boundary::dirichlet()
        }
    }
    // A y derivative on a 1-D domain; spectral stencils on a bounded axis.
    for pde in [
        Diffusion(Derivative::Dyy, Stencil::FiniteDifference),
        Diffusion(Derivative::Dxx, Stencil::Spectral),
    ] {
        assert!(matches!(
            Discretisation::new(&pde, &domain),
            Err(MolError::Term { index: 0, .. })
        ));
    }
    // The same term on a bounded axis with finite differences is fine.
    assert!(
        Discretisation::new(
            &Diffusion(Derivative::Dxx, Stencil::FiniteDifference),
            &domain
        )
        .is_ok()
    );
    assert!(matches!(
        MolDomain::new(
            vec![
                SpatialAxis {
                    lo: 0.0,
                    hi: 1.0,
                    points: 4
                };
                3
            ],
            1
        ),
        Err(MolError::ShapeMismatch { .. })
    ));
}
