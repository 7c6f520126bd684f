//! The GPU's PDE loss of whole fields (`field.cu` with the value gather of
//! `gather.cu`, driven as `GpuFieldResidual` drives them) compiled for the
//! host through the shim, against the CPU's `FieldResidual`: each sample's
//! loss and its gradient in `u`, for the norm of the whole residual and for
//! per-level norms, with and without coordinates, with several equations.
#![cfg(feature = "cuda")]

mod common;

use std::sync::Arc;

use common::gpu::{
    SORPTION_RESIDUAL, TapePde, bytes_f64, bytes_i64, compile_and_run, gpu_or_skip, sorption_scope,
};
use tessera_constraints::expr::{Origin, Scope, compile, cuda};
use tessera_constraints::gpu::{GpuError, GpuLm, KernelShape, kernel, segment_scales};
use tessera_constraints::{ConstraintError, FieldResidual, Pde, Term};
use tessera_meshes::{
    Axis, FdScheme, FiniteDifference, Grid, Identity, LinearOperator, SparseRows,
};

/// Stage 1 computes the terms, the residual with its gradient and the
/// segments' sums of squares; stage 2, given the segments' scales, the
/// cotangent in the terms and its pull-back to `u` through the transposed
/// rows. Between them the test computes the scales as the library does.
const DRIVER: &str = r#"
static void put(FILE* o, const std::vector<double>& v, int64_t n) { fwrite(v.data(), sizeof(double), n, o); }
int main(int argc, char** argv) {
    if (argc != 3) return 2;
    FILE* f = fopen(argv[1], "rb");
    auto head = take<int64_t>(f, 8);
    const int64_t stage = head[0], samples = head[1], g = head[2], segments = head[3];
    const int64_t nnz = head[4], rows = head[5];
    const unsigned blocks = (unsigned)head[6], threads = (unsigned)head[7];
    const int64_t total = samples * g, D = TESSERA_D, M = TESSERA_M;
    auto starts = take<long long>(f, rows + 1);
    auto columns = take<int>(f, nnz);
    auto weights = take<double>(f, nnz);
    FILE* o = fopen(argv[2], "wb");
    if (stage == 1) {
        auto u = take<double>(f, total);
        auto coords = take<double>(f, g * TESSERA_C);
        std::vector<double> z(total * D), values(total * M), grads(total * M * D), sums(samples * segments);
        tessera_launch(blocks, threads, tessera_gather_values, (long long)samples, (long long)rows,
            (const long long*)starts.data(), (const int*)columns.data(), (const double*)weights.data(),
            (const double*)u.data(), (long long)g, z.data());
        tessera_launch(blocks, threads, tessera_field_residual, (long long)total, (long long)g,
            (const double*)z.data(), (const double*)coords.data(), values.data(), grads.data());
        tessera_launch((unsigned)(samples * segments), threads, tessera_segment_squares,
            (long long)(g / segments * M), (const double*)values.data(), sums.data());
        put(o, sums, samples * segments);
        put(o, values, total * M);
        put(o, grads, total * M * D);
    } else {
        auto scales = take<double>(f, samples * segments);
        auto values = take<double>(f, total * M);
        auto grads = take<double>(f, total * M * D);
        std::vector<double> z_bar(total * D), u_bar(total);
        tessera_launch(blocks, threads, tessera_field_cotangent, (long long)total, (long long)(g / segments),
            (const double*)scales.data(), (const double*)values.data(), (const double*)grads.data(), z_bar.data());
        tessera_launch(blocks, threads, tessera_gather_values, (long long)samples, (long long)rows,
            (const long long*)starts.data(), (const int*)columns.data(), (const double*)weights.data(),
            (const double*)z_bar.data(), (long long)(g * D), u_bar.data());
        put(o, u_bar, total);
    }
    fclose(f);
    fclose(o);
    return 0;
}
"#;

/// A residual on a grid, with the CUDA C of its definition.
struct Case {
    name: &'static str,
    grid: Grid,
    pde: Arc<TapePde>,
    cuda: String,
}

fn term(name: &str, operator: Arc<dyn LinearOperator>) -> Term {
    Term {
        name: name.into(),
        operator,
    }
}

impl Case {
    fn new(
        name: &'static str,
        grid: Grid,
        scope: Scope,
        text: &str,
        terms: Vec<Term>,
        n_coordinates: usize,
    ) -> Self {
        let tape = compile(text, Origin::default(), &scope, "residual").expect("valid definition");
        let cuda = cuda::emit(name, &tape, n_coordinates);
        let pde = Arc::new(TapePde {
            tape,
            n_coordinates,
            terms,
        });
        Self {
            name,
            grid,
            pde,
            cuda,
        }
    }

    /// Diffusion–sorption with the paper's constants on a `(t, x)` grid,
    /// its derivatives the reference's one-sided stencils at the ends.
    fn sorption() -> Self {
        let grid = Grid::uniform_tx(6, 9, 1.0).unwrap();
        let scope = sorption_scope(&["u", "u_t", "u_xx"]);
        let terms = vec![
            term("u", Arc::new(Identity::new(grid.shape()))),
            term(
                "u_t",
                Arc::new(FiniteDifference::first(&grid, 0, FdScheme::Reference).unwrap()),
            ),
            term(
                "u_xx",
                Arc::new(FiniteDifference::second(&grid, 1, FdScheme::Reference).unwrap()),
            ),
        ];
        Self::new(
            "diffusion-sorption",
            grid,
            scope,
            SORPTION_RESIDUAL,
            terms,
            0,
        )
    }

    /// Two equations of one field whose coefficients read the point's
    /// coordinates `(t, x)`, with periodic stencils in `x`.
    fn system() -> Self {
        let grid = Grid::new(vec![
            Axis::linspace("t", 0.0, 0.5, 5).unwrap(),
            Axis::periodic("x", 0.0, 1.0, 8).unwrap(),
        ])
        .unwrap();
        let scope = Scope::new()
            .term("u")
            .term("u_t")
            .term("u_x")
            .variable("t")
            .variable("x");
        let text = "u_t + sin(3 * x) * u^2 - t * u_x\nu_x - t * u^3 + x";
        let terms = vec![
            term("u", Arc::new(Identity::new(grid.shape()))),
            term(
                "u_t",
                Arc::new(FiniteDifference::first(&grid, 0, FdScheme::SecondOrder).unwrap()),
            ),
            term(
                "u_x",
                Arc::new(FiniteDifference::first(&grid, 1, FdScheme::Periodic).unwrap()),
            ),
        ];
        Self::new("system", grid, scope, text, terms, 2)
    }

    fn shape(&self) -> KernelShape {
        KernelShape {
            n_basis: 4,
            n_terms: self.pde.terms.len(),
            n_equations: self.pde.n_equations(),
            n_coordinates: self.pde.n_coordinates,
        }
    }

    /// The terms' rows at every grid point, point-major, as the layer
    /// exports them for the GPU.
    fn rows(&self) -> SparseRows {
        let mut rows = SparseRows::new(self.grid.len());
        for p in 0..self.grid.len() {
            for t in &self.pde.terms {
                rows.push_row(t.operator.as_ref(), p, 1.0).unwrap();
            }
        }
        rows
    }

    /// Each sample's loss over `segments` segments and its gradient, from the
    /// host-compiled kernels: `blocks` blocks of `threads` threads.
    fn host_loss(
        &self,
        u: &[f64],
        segments: usize,
        [blocks, threads]: [usize; 2],
    ) -> (Vec<f64>, Vec<f64>) {
        let source = kernel::lm_source(&self.cuda, self.name, self.shape()).expect("source");
        let (g, d, m) = (
            self.grid.len(),
            self.pde.terms.len(),
            self.pde.n_equations(),
        );
        let samples = u.len() / g;
        let total = samples * g;
        let tag = format!("{}-{segments}-{blocks}x{threads}", self.name);
        let input = |stage: i64, rows: &SparseRows, tail: &[&[f64]]| {
            let head = [
                stage,
                samples as i64,
                g as i64,
                segments as i64,
                rows.nnz() as i64,
                rows.len() as i64,
                blocks as i64,
                threads as i64,
            ];
            let mut out = bytes_i64(&head);
            let starts: Vec<i64> = rows.row_start().iter().map(|&s| s as i64).collect();
            out.extend(bytes_i64(&starts));
            out.extend(
                rows.columns()
                    .iter()
                    .flat_map(|&c| (c as i32).to_le_bytes()),
            );
            out.extend(bytes_f64(rows.weights()));
            for part in tail {
                out.extend(bytes_f64(part));
            }
            out
        };
        let rows = self.rows();
        let coordinates = if self.pde.n_coordinates > 0 {
            self.grid.coordinates()
        } else {
            Vec::new()
        };
        let first = compile_and_run(
            &source,
            DRIVER,
            &input(1, &rows, &[u, &coordinates]),
            &format!("{tag}-1"),
        );
        let (sums, rest) = first.split_at(samples * segments);
        let (values, grads) = rest.split_at(total * m);
        assert_eq!(grads.len(), total * m * d);
        let (losses, scales) = segment_scales(sums, segments).expect("finite sums");
        let gradient = compile_and_run(
            &source,
            DRIVER,
            &input(2, &rows.transpose(), &[&scales, values, grads]),
            &format!("{tag}-2"),
        );
        (losses, gradient)
    }
}

/// The CPU's loss of one sample over `segments` segments, `Σ_s ‖F_s‖/√S`,
/// and its gradient.
fn cpu_loss(residual: &FieldResidual<TapePde>, u: &[f64], segments: usize) -> (f64, Vec<f64>) {
    if segments == 1 {
        return residual.norm_and_gradient(u).unwrap();
    }
    let scale = 1.0 / (segments as f64).sqrt();
    residual
        .loss_and_gradient(u, |f| {
            let mut value = 0.0;
            let mut f_bar = Vec::with_capacity(f.len());
            for segment in f.chunks(f.len() / segments) {
                let norm = segment.iter().map(|x| x * x).sum::<f64>().sqrt();
                value += norm * scale;
                f_bar.extend(segment.iter().map(|x| x / norm * scale));
            }
            (value, f_bar)
        })
        .unwrap()
}

/// The losses and gradients of `run` (fields, segments) against the CPU's,
/// for three samples and both kinds of segments.
fn compare(case: &Case, what: &str, run: impl Fn(&[f64], usize) -> (Vec<f64>, Vec<f64>)) {
    let g = case.grid.len();
    let samples = 3;
    let mut rng = common::rng(5);
    // Away from zero, where diffusion–sorption's `max(u, 0)` has its kink.
    let u: Vec<f64> = common::uniform(&mut rng, samples * g, 0.4)
        .into_iter()
        .map(|x| 0.6 + x)
        .collect();
    let residual = FieldResidual::new(Arc::clone(&case.pde), &case.grid).unwrap();
    let levels = case.grid.shape().dims()[0];
    for segments in [1, levels] {
        let expected: Vec<(f64, Vec<f64>)> = u
            .chunks(g)
            .map(|ub| cpu_loss(&residual, ub, segments))
            .collect();
        let size = expected
            .iter()
            .flat_map(|(_, grad)| grad)
            .fold(0.0_f64, |m, v| m.max(v.abs()));
        let (losses, gradient) = run(&u, segments);
        assert_eq!((losses.len(), gradient.len()), (samples, samples * g));
        let what = format!("{} {what} over {segments} segments", case.name);
        for (b, ((loss, grad), (want, want_grad))) in losses
            .iter()
            .zip(gradient.chunks(g))
            .zip(&expected)
            .enumerate()
        {
            assert!(
                (loss - want).abs() <= 1e-13 * want.abs(),
                "{what}: sample {b}: loss {loss} vs {want}"
            );
            for (p, (x, y)) in grad.iter().zip(want_grad).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-13 * size,
                    "{what}: sample {b} point {p}: {x:e} vs {y:e}"
                );
            }
        }
    }
}

/// The host-compiled kernels against the CPU with one thread, and with a
/// grid-stride loop over three blocks of seven threads (a block size that
/// is not a power of two, for the norms' tree).
fn compare_on_the_host(case: &Case) {
    for launch in [[1, 1], [3, 7]] {
        compare(case, &format!("{launch:?}"), |u, segments| {
            case.host_loss(u, segments, launch)
        });
    }
}

#[test]
fn the_sorption_loss_matches_the_cpu_field_residual() {
    compare_on_the_host(&Case::sorption());
}

#[test]
fn a_two_equation_loss_with_coordinates_matches_the_cpu_field_residual() {
    compare_on_the_host(&Case::system());
}

#[test]
fn the_loss_on_a_gpu_matches_the_cpu_field_residual() {
    let Some(gpu) = gpu_or_skip() else { return };
    for case in [Case::sorption(), Case::system()] {
        let solver = GpuLm::new(&gpu, &case.cuda, case.name, case.shape()).expect("kernel loads");
        let coordinates = if case.pde.n_coordinates > 0 {
            case.grid.coordinates()
        } else {
            Vec::new()
        };
        let field = solver
            .field_residual(&case.rows(), &coordinates)
            .expect("field residual");
        assert_eq!(field.n_points(), case.grid.len());
        compare(&case, "on the GPU", |u, segments| {
            let loss = field.loss_and_gradient(u, segments).unwrap().unwrap();
            (loss.losses, loss.gradient)
        });
        let mut bad = vec![0.5; 2 * case.grid.len()];
        bad[7] = f64::NAN;
        assert_eq!(
            field.loss_and_gradient(&bad, 1).unwrap(),
            Err(ConstraintError::NonFinite { what: "field u" })
        );
        for (u, segments) in [(vec![0.5; 5], 1), (bad.clone(), 0), (bad.clone(), 7)] {
            assert!(
                matches!(
                    field.loss_and_gradient(&u, segments),
                    Err(GpuError::Unsupported(_))
                ),
                "{} values over {segments} segments",
                u.len()
            );
        }
        assert!(matches!(
            solver.field_residual(&case.rows(), &[1.0]),
            Err(GpuError::Unsupported(_))
        ));
    }
}

#[test]
fn segment_scales_are_the_norms_reciprocals_over_the_root_of_the_count() {
    // Norms 3 and 4 in one sample of two segments, 0 and 5 in another.
    let (losses, scales) = segment_scales(&[9.0, 16.0, 0.0, 25.0], 2).unwrap();
    let root = 2.0_f64.sqrt();
    let expected_losses = [7.0 / root, 5.0 / root];
    let expected_scales = [
        1.0 / (3.0 * root),
        1.0 / (4.0 * root),
        0.0,
        1.0 / (5.0 * root),
    ];
    for (got, want) in losses.iter().zip(expected_losses) {
        assert!((got - want).abs() <= 1e-15 * want, "{got} vs {want}");
    }
    for (got, want) in scales.iter().zip(expected_scales) {
        assert!((got - want).abs() <= 1e-15 * want, "{got} vs {want}");
    }
    assert_eq!(segment_scales(&[4.0], 1), Some((vec![2.0], vec![0.5])));
    assert_eq!(segment_scales(&[1.0, f64::NAN], 1), None);
    assert_eq!(segment_scales(&[f64::INFINITY], 1), None);
    assert_eq!(segment_scales(&[1.0], 0), None);
}
