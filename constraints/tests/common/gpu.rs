//! Residual definitions and problem batches shared by the GPU tests (host
//! shim, NVRTC, device): each definition is compiled once to a tape, which the
//! CPU solver runs through [`TapePde`] and [`cuda::emit`] turns into the
//! kernel's residual, so both back ends solve the same problems.
#![allow(dead_code)]

use num_dual::DualNum;
use tessera_constraints::expr::{Origin, Scope, Tape, compile, cuda};
use tessera_constraints::gpu::KernelShape;
use tessera_constraints::{ConstraintError, ExpertProblem, LinearRow, Pde, Term};
use tessera_meshes::Grid;

use super::{Parts, quadratic_parts, rng, sorption_parts, uniform};

/// A PDE whose pointwise residual is a compiled tape (terms are not needed:
/// the tests build problems directly).
pub struct TapePde {
    pub tape: Tape,
    pub n_coordinates: usize,
}

impl Pde for TapePde {
    fn terms(&self, _grid: &Grid) -> Result<Vec<Term>, ConstraintError> {
        Ok(Vec::new())
    }

    fn linear_rows(&self, _grid: &Grid, _ic: &[f64]) -> Result<Vec<LinearRow>, ConstraintError> {
        Ok(Vec::new())
    }

    fn n_equations(&self) -> usize {
        self.tape.n_outputs()
    }

    fn uses_coordinates(&self) -> bool {
        self.n_coordinates > 0
    }

    fn residual<D: DualNum<Primitive = f64> + Copy>(&self, z: &[D], coords: &[f64], out: &mut [D]) {
        self.tape.eval_with_data(z, coords, out);
    }
}

/// A residual definition with its CUDA C and a batch of problems for it.
pub struct Case {
    pub name: &'static str,
    pub pde: TapePde,
    pub cuda: String,
    pub problems: Vec<ExpertProblem>,
}

impl Case {
    fn definition(
        name: &'static str,
        scope: Scope,
        text: &str,
        n_coordinates: usize,
    ) -> (TapePde, String) {
        let tape = compile(text, Origin::default(), &scope, "residual").expect("valid definition");
        let cuda = cuda::emit(name, &tape, n_coordinates);
        (
            TapePde {
                tape,
                n_coordinates,
            },
            cuda,
        )
    }

    /// The kernel shape of this case's problems.
    pub fn shape(&self) -> KernelShape {
        let size = self.problems[0].size();
        KernelShape {
            n_basis: size.n_basis,
            n_terms: size.n_terms,
            n_equations: size.n_equations,
            n_coordinates: self.pde.n_coordinates,
        }
    }

    pub fn refs(&self) -> Vec<&ExpertProblem> {
        self.problems.iter().collect()
    }
}

/// A random problem: `points` points of `[d, m]` terms and equations, term
/// rows and offsets uniform within `±scales`, `linear` rows, the paper's ridge.
fn random_parts(
    seed: u64,
    points: usize,
    n_basis: usize,
    [d, m]: [usize; 2],
    linear: usize,
    scales: [f64; 2],
) -> Parts {
    let mut r = rng(seed);
    Parts {
        size: tessera_constraints::ProblemSize {
            n_basis,
            n_terms: d,
            n_equations: m,
        },
        term_rows: uniform(&mut r, points * d * n_basis, scales[0]),
        offsets: uniform(&mut r, points * d, scales[1]),
        linear: uniform(&mut r, linear * n_basis, 1.0),
        linear_rhs: uniform(&mut r, linear, 1.0),
        ridge: 1e-4,
    }
}

/// Diffusion–sorption with the paper's constants (terms `u, u_t, u_xx, u_x`;
/// `u_x` only for boundary rows), problems of varying size with linear rows.
pub fn sorption(n_basis: usize) -> Case {
    let scope = Scope::new()
        .term("u")
        .term("u_t")
        .term("u_xx")
        .term("u_x")
        .constant("D", 5e-4)
        .constant("phi", 0.29)
        .constant("rho_s", 2880.0)
        .constant("k_f", 3.5e-4)
        .constant("n_f", 0.874);
    let text = "let R = 1 + (1 - phi)/phi * rho_s * k_f * n_f * (max(u, 0) + 1e-6)^(n_f - 1)\n\
                u_t - u_xx * D / R";
    let (pde, cuda) = Case::definition("diffusion-sorption", scope, text, 0);
    let problems = [(1, 200, 6), (2, 150, 0), (3, 320, 12), (4, 40, 3)]
        .into_iter()
        .map(|(seed, points, linear)| sorption_parts(seed, points, n_basis, linear).build())
        .collect();
    Case {
        name: "diffusion-sorption",
        pde,
        cuda,
        problems,
    }
}

/// A vorticity-transport residual shaped like Navier–Stokes (8 terms,
/// quadratic).
pub fn transport(n_basis: usize) -> Case {
    let scope = ["w", "w_t", "w_x", "w_y", "u", "v", "w_xx", "w_yy"]
        .into_iter()
        .fold(Scope::new(), |s, t| s.term(t))
        .constant("nu", 1e-2);
    let text = "w_t + u * w_x - v * w_y - nu * (w_xx + w_yy)";
    let (pde, cuda) = Case::definition("transport", scope, text, 0);
    let problems = [(11, 180, 4), (12, 250, 0), (13, 90, 9)]
        .into_iter()
        .map(|(seed, points, linear)| quadratic_parts(seed, points, n_basis, linear).build())
        .collect();
    Case {
        name: "transport",
        pde,
        cuda,
        problems,
    }
}

/// A two-equation system whose coefficients read the point's coordinates
/// `(t, x)`: several rows per point and data inputs in the kernel.
pub fn system(n_basis: usize) -> Case {
    let scope = Scope::new()
        .term("a")
        .term("a_t")
        .term("b")
        .term("b_t")
        .variable("t")
        .variable("x");
    let text = "a_t - b + sin(3 * x) * a^2\nb_t + a - t * b^3";
    let (pde, cuda) = Case::definition("system", scope, text, 2);
    let problems = [(21, 160, 5), (22, 210, 2)]
        .into_iter()
        .map(|(seed, points, linear)| {
            let coordinates = uniform(&mut rng(seed + 100), points * 2, 1.0);
            random_parts(seed, points, n_basis, [4, 2], linear, [0.5, 0.3])
                .build()
                .with_coordinates(coordinates)
                .expect("coordinates")
        })
        .collect();
    Case {
        name: "system",
        pde,
        cuda,
        problems,
    }
}

/// A residual bounded away from zero (`exp(a) + b² + 1 ≥ 1`, plus a
/// sign-changing part): every minimum has a large residual, so `JᵀJ` is far
/// from the Hessian and tight solves end in the round-off regime, where the
/// solver tries Gauss–Newton and Newton steps.
pub fn curved(n_basis: usize) -> Case {
    let scope = Scope::new().term("a").term("b");
    let text = "exp(a) + b * b + 1 - 0.5 * a * b";
    let (pde, cuda) = Case::definition("curved", scope, text, 0);
    let problems = [(31, 60, 2), (32, 120, 0), (33, 45, 4)]
        .into_iter()
        .map(|(seed, points, linear)| {
            random_parts(seed, points, n_basis, [2, 1], linear, [1.0, 1.0]).build()
        })
        .collect();
    Case {
        name: "curved",
        pde,
        cuda,
        problems,
    }
}
