//! The 2-D spectral method of lines (its Jacobian applied as an operator,
//! the stage systems solved by preconditioned GMRES) against the 1-D
//! spectral solve (a dense LU): a field that varies only along the diagonal,
//! `u(x, y) = v(x + y)` on the periodic unit square, stays so under a
//! rotation-free PDE, and on an `n × n` grid its samples are the 1-D grid's
//! `v` at index `(i + j) mod n`, on which the 2-D spectral derivatives act
//! exactly as the 1-D ones (`∂x = ∂y = ∂s`, `Δ = 2∂ss`). So the two
//! semi-discrete systems are the same ODE, and the two integrations must
//! agree to their tolerance — with nonlinear, space-varying factors on the
//! derivatives (Burgers) and on the value (Allen–Cahn), where the
//! preconditioner is not exact. And Navier–Stokes in vorticity form, the
//! shipped `navier-stokes-spectral.toml` with its velocity terms, against the
//! built-in pseudo-spectral solver (Crank–Nicolson and Heun, another code).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tessera_scenarios::custom::CustomPde;
use tessera_scenarios::mol::{
    Discretisation, InitialFamily, MolDomain, MolMethod, MolOptions, MolStats, SpatialAxis,
};
use tessera_scenarios::navier_stokes::reference_solver::ReferenceSolver;

const N: usize = 24;

/// A one-component definition with every space term spectral, periodic on
/// `space`, and the initial family `u0`.
fn definition(space: &str, residual: &str, terms: &str, u0: &str) -> String {
    let periodic = vec!["true"; space.split(", ").count()].join(", ");
    format!(
        "name = \"test\"\nspace = [{space}]\nperiodic = [{periodic}]\nstencil = \"spectral\"\n\
         residual = \"{residual}\"\n[parameters]\nnu = 0.01\n[terms]\nu = \"u\"\n\
         u_t = \"dt\"\n{terms}\n[[conditions]]\nat = \"initial\"\nrow = \"u\"\nrhs = \"u0\"\n\
         [initial]\nu0 = \"{u0}\"\n"
    )
}

/// Solves `text` on the periodic unit interval or square of `N` points per
/// axis from its initial family at `ts`: the output frames and statistics.
fn solve(text: &str, dims: usize, ts: &[f64]) -> (Vec<f64>, MolStats) {
    let pde = CustomPde::from_str(text, "test.toml").unwrap();
    let view = pde.mol().unwrap();
    let axis = SpatialAxis {
        lo: 0.0,
        hi: 1.0,
        points: N,
    };
    let domain = MolDomain::new(vec![axis; dims], 1).unwrap();
    let disc = Discretisation::new(&view, &domain).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let u0 = pde
        .initial_family()
        .unwrap()
        .sample(&mut rng, disc.solver_coordinates(), dims);
    let options = MolOptions {
        rtol: 1e-10,
        atol: 1e-12,
        ..MolOptions::default()
    };
    let solution = disc.solve(&u0, ts, &options).unwrap();
    (solution.frames, solution.stats)
}

/// The 2-D solve of `residual_2d` from `u0(x + y)` against the 1-D solve of
/// `residual_1d` from `u0(x)` (`u0` written in `S`): the largest difference over every frame, and
/// both solves' statistics.
fn diagonal_against_line(
    residual_2d: &str,
    terms_2d: &str,
    residual_1d: &str,
    terms_1d: &str,
    u0: &str,
) -> (f64, MolStats, MolStats) {
    let ts = [0.0, 0.1, 0.2];
    let (square, square_stats) = solve(
        &definition(
            "\"x\", \"y\"",
            residual_2d,
            terms_2d,
            &u0.replace('S', "(x + y)"),
        ),
        2,
        &ts,
    );
    let (line, line_stats) = solve(
        &definition("\"x\"", residual_1d, terms_1d, &u0.replace('S', "x")),
        1,
        &ts,
    );
    let mut worst = 0.0_f64;
    for (k, frame) in square.chunks_exact(N * N).enumerate() {
        for (p, value) in frame.iter().enumerate() {
            let (i, j) = (p / N, p % N);
            worst = worst.max((value - line[k * N + (i + j) % N]).abs());
        }
    }
    (worst, square_stats, line_stats)
}

fn check(name: &str, (worst, square, line): (f64, MolStats, MolStats)) {
    println!("{name}: largest difference {worst:e}\n  2-D {square:?}\n  1-D {line:?}");
    // The 1-D line is factorised densely; the square went through GMRES.
    assert_eq!(line.linear_iterations, 0);
    assert!(square.linear_iterations > 0);
    // The same ODE, integrated with the same steps (GMRES solves to 1e-10
    // leave Newton where the LU does): they agreed to 3e-14. A wrong factor
    // or axis in the operator shows at the size of the change (0.01–0.1).
    assert!(worst < 1e-11, "{name}: {worst:e}");
}

#[test]
fn burgers_along_the_diagonal_is_the_line_solution() {
    // u_t + u (u_x + u_y) = ν Δu; along s = x + y: v_t + 2 v v_s = 2ν v_ss.
    check(
        "burgers",
        diagonal_against_line(
            "u_t + u * (u_x + u_y) - nu * lap",
            "u_x = \"dx\"\nu_y = \"dy\"\nlap = \"laplacian\"",
            "u_t + 2 * u * u_x - 2 * nu * u_xx",
            "u_x = \"dx\"\nu_xx = \"dxx\"",
            "0.5 * sin(2 * pi * S) + 0.2 * cos(4 * pi * S) + 0.1",
        ),
    );
}

#[test]
fn allen_cahn_along_the_diagonal_is_the_line_solution() {
    // u_t = ν Δu + 10 (u − u³); along s: v_t = 2ν v_ss + 10 (v − v³).
    check(
        "allen-cahn",
        diagonal_against_line(
            "u_t - nu * lap - 10 * (u - u^3)",
            "lap = \"laplacian\"",
            "u_t - 2 * nu * u_xx - 10 * (u - u^3)",
            "u_xx = \"dxx\"",
            "0.8 * sin(2 * pi * S) + 0.3 * cos(6 * pi * S)",
        ),
    );
}

#[test]
fn navier_stokes_matches_the_pseudo_spectral_solver() {
    // w_t + v·∇w = νΔw, v = (∂y ψ, −∂x ψ), −Δψ = w, from a draw of the
    // definition's own Gaussian random field (ℓ = 0.8 of the period: its
    // modes above the reference's 2/3-rule cut-off carry ~1e-14 of its
    // energy, so dealiasing or not hardly matters by t = 1).
    let text = include_str!("../pdes/navier-stokes-spectral.toml").replace("1e-4", "1e-2");
    let pde = CustomPde::from_str(&text, "navier-stokes-spectral.toml").unwrap();
    let view = pde.mol().unwrap();
    let axis = SpatialAxis {
        lo: 0.0,
        hi: 1.0,
        points: N,
    };
    let disc = Discretisation::new(&view, &MolDomain::new(vec![axis; 2], 1).unwrap()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let w0 = pde
        .initial_family()
        .unwrap()
        .sample(&mut rng, disc.solver_coordinates(), 2);
    let ts = [0.0, 0.5, 1.0];
    let reference = ReferenceSolver::new(1e-2, N, 1e-4)
        .unwrap()
        .solve(&w0, &ts)
        .unwrap();
    let size = w0.iter().fold(0.0_f64, |m, w| m.max(w.abs()));
    for method in [MolMethod::Implicit, MolMethod::Explicit, MolMethod::Auto] {
        let options = MolOptions {
            rtol: 1e-10,
            atol: 1e-12,
            method,
            ..MolOptions::default()
        };
        let mol = disc.solve(&w0, &ts, &options).unwrap();
        let change = mol.frames[2 * N * N..]
            .iter()
            .zip(&w0)
            .map(|(w, w0)| (w - w0).abs())
            .fold(0.0, f64::max);
        let worst = mol
            .frames
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        println!(
            "navier-stokes, {method:?}: largest difference {worst:e} (|w| ≤ {size:.3}, changed by {change:.3}), {:?}",
            mol.stats
        );
        // They agreed to 4e-9 (the reference's steps of 1e-4 are second
        // order); a velocity of the wrong sign or axis is off by the change
        // itself.
        assert!(worst < 1e-7 * size, "{method:?}: {worst:e}");
        if method == MolMethod::Implicit {
            assert!(mol.stats.linear_iterations > 0);
        } else {
            // Not stiff at ν = 0.01 on 24²: Auto never leaves the explicit
            // method.
            assert_eq!(mol.stats.explicit_steps, mol.stats.steps);
            assert_eq!(mol.stats.jacobians, 0);
        }
    }
}
