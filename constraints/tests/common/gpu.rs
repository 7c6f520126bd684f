//! Residual definitions and problem batches shared by the GPU tests (host
//! shim, NVRTC, device): each definition is compiled once to a tape, which the
//! CPU solver runs through [`TapePde`] and [`cuda::emit`] turns into the
//! kernel's residual, so both back ends solve the same problems.
#![allow(dead_code)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use num_dual::DualNum;
use tessera_constraints::expr::{Origin, Scope, Tape, compile, cuda};
use tessera_constraints::gpu::{Gpu, GpuError, KernelShape};
use tessera_constraints::{ConstraintError, ExpertProblem, LinearRow, Pde, Term};
use tessera_meshes::{FdScheme, FiniteDifference, Grid, Identity, LinearOperator};

use super::{Parts, quadratic_parts, rng, sorption_parts, uniform};

/// A PDE whose pointwise residual is a compiled tape (terms are not needed:
/// the tests build problems directly).
pub struct TapePde {
    pub tape: Tape,
    pub n_coordinates: usize,
    /// The terms on one grid, for tests of whole fields (empty where the
    /// tests build problems directly).
    pub terms: Vec<Term>,
}

impl Pde for TapePde {
    fn terms(&self, _grid: &Grid) -> Result<Vec<Term>, ConstraintError> {
        Ok(self.terms.clone())
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
                terms: Vec::new(),
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

    /// The case with one more linear row in every problem: no coefficients
    /// and right-hand side `constant`, so a residual of `−constant` that no
    /// `ω` changes (problems without coordinates).
    pub fn with_constant_residual(mut self, constant: f64) -> Self {
        for problem in &mut self.problems {
            let n = problem.n_basis();
            let linear = [problem.linear(), &vec![0.0; n]].concat();
            let rhs = [problem.linear_rhs(), &[constant]].concat();
            *problem = ExpertProblem::new(
                problem.size(),
                problem.term_rows().to_vec(),
                problem.offsets().to_vec(),
                linear,
                rhs,
                problem.ridge(),
            )
            .expect("valid parts");
        }
        self
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

/// Diffusion–sorption's residual with the paper's constants, over the terms
/// of [`sorption_scope`].
pub const SORPTION_RESIDUAL: &str = "let R = 1 + (1 - phi)/phi * rho_s * k_f * n_f * (max(u, 0) + 1e-6)^(n_f - 1)\n\
     u_t - u_xx * D / R";

/// The terms `terms` (which must name `u`, `u_t` and `u_xx`) with
/// diffusion–sorption's constants.
pub fn sorption_scope(terms: &[&str]) -> Scope {
    terms
        .iter()
        .fold(Scope::new(), |s, &t| s.term(t))
        .constant("D", 5e-4)
        .constant("phi", 0.29)
        .constant("rho_s", 2880.0)
        .constant("k_f", 3.5e-4)
        .constant("n_f", 0.874)
}

/// GPU 0, or `None` with a skip notice when there is no driver.
pub fn gpu_or_skip() -> Option<Gpu> {
    let gpu = Gpu::open_if_present(0).expect("a CUDA driver is present but GPU 0 does not open");
    if gpu.is_none() {
        println!("skipped: {}", GpuError::NoDriver);
    }
    gpu
}

/// Diffusion–sorption with the paper's constants (terms `u, u_t, u_xx, u_x`;
/// `u_x` only for boundary rows), problems of varying size with linear rows.
pub fn sorption(n_basis: usize) -> Case {
    let scope = sorption_scope(&["u", "u_t", "u_xx", "u_x"]);
    let text = SORPTION_RESIDUAL;
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

/// The diffusion–sorption case's four terms (`u`, `u_t`, `u_xx`, `u_x`) on
/// `grid`, as stencils.
pub fn sorption_stencils(grid: &Grid) -> Vec<Arc<dyn LinearOperator>> {
    vec![
        Arc::new(Identity::new(grid.shape())),
        Arc::new(FiniteDifference::first(grid, 0, FdScheme::Reference).unwrap()),
        Arc::new(FiniteDifference::second(grid, 1, FdScheme::Reference).unwrap()),
        Arc::new(FiniteDifference::first(grid, 1, FdScheme::Reference).unwrap()),
    ]
}

/// Little-endian bytes of doubles, for the host drivers' input files.
pub fn bytes_f64(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Little-endian bytes of 64-bit integers.
pub fn bytes_i64(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// What every host driver reads its input with, after the shim:
/// `take<T>(file, n)`, `n` values of `T` (one zero when `n` is 0, so that a
/// kernel argument still has an address).
const DRIVER_INPUT: &str = r#"
#include <stdint.h>
template <typename T> static std::vector<T> take(FILE* f, int64_t n) {
    std::vector<T> v(n > 0 ? n : 1);
    if (n > 0 && fread(v.data(), sizeof(T), n, f) != (size_t)n) { fprintf(stderr, "short read\n"); exit(2); }
    return v;
}
"#;

/// Compiles the host shim, `kernels` and `driver` (a `main` that reads its
/// input file with `take` and writes doubles to its output file), runs it on
/// `input` and returns the doubles it wrote.
pub fn compile_and_run(kernels: &str, driver: &str, input: &[u8], tag: &str) -> Vec<f64> {
    try_compile_and_run(kernels, driver, input, tag)
        .unwrap_or_else(|stderr| panic!("the host kernel failed: {stderr}"))
}

/// [`compile_and_run`], with a run that fails as its exit status and
/// standard error (a program that does not compile still panics).
pub fn try_compile_and_run(
    kernels: &str,
    driver: &str,
    input: &[u8],
    tag: &str,
) -> Result<Vec<f64>, String> {
    let shim = tessera_constraints::gpu::HOST_SHIM;
    let program = format!("{shim}\n{kernels}\n{DRIVER_INPUT}\n{driver}");
    // Tests run in parallel: one folder per call.
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "tessera-gpu-host-{tag}-{}-{call}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (src, exe) = (dir.join("kernel.cpp"), dir.join("kernel"));
    std::fs::write(&src, &program).unwrap();

    let out = super::host_cxx()
        .arg("-std=c++17")
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .arg("-lm")
        .output()
        .expect("a C++ compiler runs");
    assert!(
        out.status.success(),
        "the kernel does not compile for the host:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (input_file, output) = (dir.join("batch.bin"), dir.join("out.bin"));
    std::fs::write(&input_file, input).unwrap();
    let run = Command::new(&exe)
        .arg(&input_file)
        .arg(&output)
        .output()
        .unwrap();
    let result = if run.status.success() {
        Ok(std::fs::read(&output)
            .unwrap()
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect())
    } else {
        Err(format!(
            "{}: {}",
            run.status,
            String::from_utf8_lossy(&run.stderr)
        ))
    };
    std::fs::remove_dir_all(&dir).ok();
    result
}
