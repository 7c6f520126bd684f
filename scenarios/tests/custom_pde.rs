//! The shipped TOML definitions of diffusion–sorption (both boundary
//! placements) and Navier–Stokes (both derivative options) against
//! the built-in Rust PDEs: terms, residual values, gradients and Hessians on
//! random inputs, condition rows and the model form; and a residual that reads
//! its points' coordinates, through the field residual and an expert's problem.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tessera_constraints::{
    ConstraintError, ExpertProblem, FieldResidual, Pde, ProblemSize, pointwise, residual_term_count,
};
use tessera_meshes::{Axis, FdScheme, Grid};
use tessera_scenarios::config::{BoundaryPlacement, DiffusionSorptionParams, NavierStokesParams};
use tessera_scenarios::custom::CustomPde;
use tessera_scenarios::diffusion_sorption::pde::DiffusionSorption;
use tessera_scenarios::navier_stokes::pde::{Derivatives, NavierStokes};

fn shipped(name: &str) -> CustomPde {
    let path = format!("{}/pdes/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    CustomPde::from_file(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// `|a − b| ≤ tol·max(|b|, scale)`: relative, with the scale of the block the
/// entry belongs to standing in where an entry is zero.
fn assert_close(what: &str, a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * y.abs().max(1e-3 * scale),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

/// Values, gradients and Hessians of both PDEs at the same `n` points.
fn compare_pointwise<A: Pde, B: Pde>(custom: &A, builtin: &B, d: usize, z: &[f64]) {
    assert_eq!(custom.n_equations(), builtin.n_equations());
    let n = z.len() / d;
    let m = builtin.n_equations();
    let (cv, cg, ch) = hessians_of(custom, d, z);
    let (bv, bg, bh) = hessians_of(builtin, d, z);
    for p in 0..n {
        let (g, h) = (
            p * m * d..(p + 1) * m * d,
            p * m * d * d..(p + 1) * m * d * d,
        );
        assert_close("gradient", &cg[g.clone()], &bg[g], 1e-13);
        assert_close("hessian", &ch[h.clone()], &bh[h], 1e-13);
    }
    assert_values(&cv, &bv, &bg, z, d);
    // The gradient-only path (what Levenberg–Marquardt runs) too.
    let (mut v1, mut g1, mut v2, mut g2) = (
        vec![0.0; n * m],
        vec![0.0; n * m * d],
        vec![0.0; n * m],
        vec![0.0; n * m * d],
    );
    pointwise::gradients(custom, d, z, &[], &mut v1, &mut g1);
    pointwise::gradients(builtin, d, z, &[], &mut v2, &mut g2);
    assert_values(&v1, &v2, &g2, z, d);
    assert_close("gradient (gradient path)", &g1, &g2, 1e-13);
}

/// Values, gradients and Hessians of `pde` at the points `z` (`[n, d]`).
fn hessians_of<P: Pde>(pde: &P, d: usize, z: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let nm = z.len() / d * pde.n_equations();
    let (mut v, mut g, mut h) = (vec![0.0; nm], vec![0.0; nm * d], vec![0.0; nm * d * d]);
    pointwise::hessians(pde, d, z, &[], &mut v, &mut g, &mut h);
    (v, g, h)
}

/// Residual values to 1e-13 relative to their scale: a value is a sum of parts
/// that may cancel, so its scale is the size of the parts,
/// `|F| + Σ_j |∂F/∂z_j · z_j|` (the sum's condition).
fn assert_values(got: &[f64], want: &[f64], grads: &[f64], z: &[f64], d: usize) {
    let m = want.len() / (z.len() / d);
    for (k, (x, y)) in got.iter().zip(want).enumerate() {
        let p = k / m;
        let parts: f64 = (0..d)
            .map(|j| (grads[k * d + j] * z[p * d + j]).abs())
            .sum();
        assert!(
            (x - y).abs() <= 1e-13 * (y.abs() + parts),
            "value {k}: {x} vs {y}"
        );
    }
}

/// Each term operator of both PDEs applied to the same random field.
fn compare_terms<A: Pde, B: Pde>(custom: &A, builtin: &B, grid: &Grid, rng: &mut ChaCha8Rng) {
    let (ct, bt) = (custom.terms(grid).unwrap(), builtin.terms(grid).unwrap());
    assert_eq!(ct.len(), bt.len());
    let size = grid.shape().len();
    let field: Vec<f64> = (0..size).map(|_| rng.random_range(-1.0..1.0)).collect();
    for (c, b) in ct.iter().zip(&bt) {
        let (mut oc, mut ob) = (vec![0.0; size], vec![0.0; size]);
        c.operator.apply(&field, 1, &mut oc);
        b.operator.apply(&field, 1, &mut ob);
        assert_close(&format!("term {} vs {}", c.name, b.name), &oc, &ob, 1e-13);
    }
    let n = ct.len();
    assert_eq!(
        residual_term_count(custom, n).unwrap(),
        residual_term_count(builtin, n).unwrap()
    );
}

/// Both shipped diffusion–sorption files, the face rows and the paper's
/// code's cell-centre rows, against the built-in with that placement.
#[test]
fn diffusion_sorption_toml_is_the_builtin() {
    for (file, boundary) in [
        ("diffusion-sorption", BoundaryPlacement::Faces),
        (
            "diffusion-sorption-cell-centres",
            BoundaryPlacement::CellCentres,
        ),
    ] {
        let params = DiffusionSorptionParams {
            boundary,
            ..DiffusionSorptionParams::default()
        };
        let builtin = DiffusionSorption::new(params, FdScheme::Reference).unwrap();
        assert_diffusion_sorption_restated(&shipped(file), &builtin);
    }
}

/// Terms, residual, gradients and Hessians, rows and model form of `custom`
/// are the built-in's.
fn assert_diffusion_sorption_restated(custom: &CustomPde, builtin: &DiffusionSorption) {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let grid = Grid::uniform_tx(7, 12, 500.0).unwrap();
    compare_terms(custom, builtin, &grid, &mut rng);
    // u on both sides of the max(u, 0) branch; u_t, u_xx of both signs.
    let z: Vec<f64> = (0..3 * 400)
        .map(|k| match k % 3 {
            0 => rng.random_range(-0.5..1.5),
            1 => rng.random_range(-1e-2..1e-2),
            _ => rng.random_range(-50.0..50.0),
        })
        .collect();
    compare_pointwise(custom, builtin, 3, &z);
    let ic: Vec<f64> = (0..12).map(|_| rng.random_range(0.1..1.0)).collect();
    let (cr, br) = (
        custom.linear_rows(&grid, &ic).unwrap(),
        builtin.linear_rows(&grid, &ic).unwrap(),
    );
    assert_eq!(cr.len(), br.len());
    for (c, b) in cr.iter().zip(&br) {
        assert_eq!(c.point, b.point);
        assert_eq!(c.coeffs.len(), b.coeffs.len());
        for (&(cj, cv), &(bj, bv)) in c.coeffs.iter().zip(&b.coeffs) {
            assert_eq!(cj, bj);
            assert_close("row coefficient", &[cv], &[bv], 1e-13);
        }
        assert_close("row rhs", &[c.rhs], &[b.rhs], 1e-13);
    }
    assert!(custom.solution_map(&grid).unwrap().is_none());
    assert!(custom.solution_offset(&grid, &ic).unwrap().is_none());
    // The built-in's typed error on a zero initial value has its counterpart.
    let mut zero = ic.clone();
    zero[3] = 0.0;
    assert!(custom.linear_rows(&grid, &zero).is_err());
}

/// Both shipped Navier–Stokes files, the reference code's operators and the
/// spectral ones, against the built-in with those derivatives.
#[test]
fn navier_stokes_toml_is_the_builtin() {
    for (file, derivatives) in [
        ("navier-stokes", Derivatives::Reference),
        ("navier-stokes-spectral", Derivatives::Spectral),
    ] {
        let builtin = NavierStokes::new(NavierStokesParams::default(), derivatives).unwrap();
        assert_navier_stokes_restated(&shipped(file), &builtin);
    }
}

/// Terms, residual, gradients and Hessians, rows and model form of `custom`
/// are the built-in's.
fn assert_navier_stokes_restated(custom: &CustomPde, builtin: &NavierStokes) {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let grid = Grid::uniform_txy(5, 8, 8, 3.0).unwrap();
    compare_terms(custom, builtin, &grid, &mut rng);
    let z: Vec<f64> = (0..6 * 300).map(|_| rng.random_range(-3.0..3.0)).collect();
    compare_pointwise(custom, builtin, 6, &z);
    let ic: Vec<f64> = (0..64).map(|_| rng.random_range(-1.0..1.0)).collect();
    assert!(custom.linear_rows(&grid, &ic).unwrap().is_empty());
    let size = grid.shape().len();
    let field: Vec<f64> = (0..size).map(|_| rng.random_range(-1.0..1.0)).collect();
    let (cm, bm) = (
        custom.solution_map(&grid).unwrap().unwrap(),
        builtin.solution_map(&grid).unwrap().unwrap(),
    );
    let (mut oc, mut ob) = (vec![0.0; size], vec![0.0; size]);
    cm.apply(&field, 1, &mut oc);
    bm.apply(&field, 1, &mut ob);
    assert_close("solution map", &oc, &ob, 1e-13);
    assert_eq!(
        custom.solution_offset(&grid, &ic).unwrap(),
        builtin.solution_offset(&grid, &ic).unwrap()
    );
}

/// The residual of a defined system is evaluated row by row, on any number
/// type: Burgers-like two-row system against the same formula in Rust.
#[test]
fn systems_give_one_row_per_statement() {
    let text = r#"
name = "two-rows"
space = ["x"]
periodic = [true]
stencil = "periodic"
residual = "u_t + u * u_x - nu * u_xx; tanh(u_x) * u_t"
[parameters]
nu = 0.01
[terms]
u = "u"
u_t = "dt"
u_x = "dx"
u_xx = "dxx"
[solution]
offset = "initial"
"#;
    let pde = CustomPde::from_str(text, "two-rows.toml").unwrap();
    assert_eq!(pde.n_equations(), 2);
    let z = [0.3f64, -0.2, 0.7, 1.1];
    let mut out = [0.0; 2];
    pde.residual(&z, &[], &mut out);
    let want = [z[1] + z[0] * z[2] - 0.01 * z[3], z[2].tanh() * z[1]];
    assert_close("system", &out, &want, 1e-15);
}

/// The block evaluator (what [`pointwise`] runs for a defined PDE) against the
/// per-point one on the same definition, at block sizes around its chunks of
/// 64 points and the solver's blocks of 256.
fn compare_block_and_per_point(pde: &CustomPde, d: usize, z: &[f64]) {
    let m = pde.n_equations();
    for n in [1, 5, 63, 64, 65, 200, 256, 257] {
        let z = &z[..n * d];
        let (mut v, mut vp) = (vec![0.0; n * m], vec![0.0; n * m]);
        pointwise::values(pde, d, z, &[], &mut v);
        pointwise::values_per_point(pde, d, z, &[], &mut vp);
        let (mut g, mut gp) = (vec![0.0; n * m * d], vec![0.0; n * m * d]);
        let (mut h, mut hp) = (vec![0.0; n * m * d * d], vec![0.0; n * m * d * d]);
        pointwise::hessians_per_point(pde, d, z, &[], &mut vp, &mut gp, &mut hp);
        assert_values(&v, &vp, &gp, z, d);
        pointwise::hessians(pde, d, z, &[], &mut v, &mut g, &mut h);
        assert_values(&v, &vp, &gp, z, d);
        assert_close("gradient (block, Hessian path)", &g, &gp, 1e-13);
        assert_close("hessian (block)", &h, &hp, 1e-13);
        pointwise::gradients_per_point(pde, d, z, &[], &mut vp, &mut gp);
        pointwise::gradients(pde, d, z, &[], &mut v, &mut g);
        assert_values(&v, &vp, &gp, z, d);
        assert_close("gradient (block)", &g, &gp, 1e-13);
    }
}

#[test]
fn block_evaluation_of_the_shipped_definitions_is_the_per_point_one() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // u on both sides of max(u, 0), and on it.
    let z: Vec<f64> = (0..3 * 257)
        .map(|k| match k % 3 {
            0 if k % 11 == 0 => 0.0,
            0 => rng.random_range(-0.5..1.5),
            1 => rng.random_range(-1e-2..1e-2),
            _ => rng.random_range(-50.0..50.0),
        })
        .collect();
    compare_block_and_per_point(&shipped("diffusion-sorption"), 3, &z);
    let z: Vec<f64> = (0..6 * 257).map(|_| rng.random_range(-3.0..3.0)).collect();
    compare_block_and_per_point(&shipped("navier-stokes"), 6, &z);
}

/// The forced heat equation of `fixtures/forced-heat.toml`, whose residual
/// reads `t` and `x`, and its manufactured solution `e^{−t} sin πx + t·x`.
fn forced() -> (std::sync::Arc<CustomPde>, impl Fn(f64, f64) -> f64) {
    let text = include_str!("fixtures/forced-heat.toml");
    let pde = CustomPde::from_str(text, "forced-heat.toml").unwrap();
    let exact = |t: f64, x: f64| (-t).exp() * (std::f64::consts::PI * x).sin() + t * x;
    (std::sync::Arc::new(pde), exact)
}

fn forced_grid(nt: usize, nx: usize) -> Grid {
    Grid::new(vec![
        Axis::linspace("t", 0.0, 0.5, nt).unwrap(),
        Axis::linspace("x", 0.0, 1.0, nx).unwrap(),
    ])
    .unwrap()
}

#[test]
fn the_field_residual_of_the_manufactured_solution_vanishes_at_second_order() {
    // The residual's coordinates must be each grid point's own: any other
    // pairing leaves an O(1) residual of the exact solution.
    let (pde, exact) = forced();
    assert!(pde.uses_coordinates());
    let norms: Vec<f64> = [1, 2, 4]
        .iter()
        .map(|&r| {
            let grid = forced_grid(10 * r + 1, 10 * r + 1);
            let u: Vec<f64> = grid
                .coordinates()
                .chunks_exact(2)
                .map(|p| exact(p[0], p[1]))
                .collect();
            let f = FieldResidual::new(pde.clone(), &grid)
                .unwrap()
                .residual(&u)
                .unwrap();
            f.iter().fold(0.0f64, |m, v| m.max(v.abs()))
        })
        .collect();
    println!("max |F| of the exact solution: {norms:?}");
    for w in norms.windows(2) {
        let order = (w[0] / w[1]).log2();
        assert!(order > 1.8, "order {order} ({norms:?})");
    }
}

#[test]
fn the_field_residual_over_many_blocks_is_one_pass_over_the_points() {
    // 33 × 301 points: the field residual's parallel blocks of points end
    // inside time levels and the last is ragged. The residual must be what
    // one pass over every point with its own terms and coordinates gives,
    // bit for bit, and the gradients must put each point's cotangent at that
    // point: directional central differences of ⟨F̄, F(u)⟩ and ‖F(u)‖.
    let (pde, _) = forced();
    let grid = forced_grid(33, 301);
    let residual = FieldResidual::new(pde.clone(), &grid).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut random =
        |n: usize| -> Vec<f64> { (0..n).map(|_| rng.random_range(-1.0..1.0)).collect() };
    let (u, dir) = (random(grid.len()), random(grid.len()));
    let f = residual.residual(&u).unwrap();

    let terms = pde.terms(&grid).unwrap();
    let d = residual_term_count(pde.as_ref(), terms.len()).unwrap();
    let mut z = vec![0.0; grid.len() * d];
    let mut applied = vec![0.0; grid.len()];
    for (j, term) in terms[..d].iter().enumerate() {
        term.operator.apply(&u, 1, &mut applied);
        for (zp, &v) in z.chunks_exact_mut(d).zip(&applied) {
            zp[j] = v;
        }
    }
    let mut one_pass = vec![0.0; grid.len()];
    pointwise::values(pde.as_ref(), d, &z, &grid.coordinates(), &mut one_pass);
    if let Some(p) = (0..f.len()).find(|&p| f[p].to_bits() != one_pass[p].to_bits()) {
        panic!("point {p}: {} in blocks, {} in one pass", f[p], one_pass[p]);
    }

    let f_bar = random(f.len());
    let along = |g: &[f64]| g.iter().zip(&dir).map(|(a, b)| a * b).sum::<f64>();
    let moved = |h: f64| -> Vec<f64> { u.iter().zip(&dir).map(|(x, v)| x + h * v).collect() };
    let h = 1e-4;
    let central = |of: &dyn Fn(&[f64]) -> f64| (of(&moved(h)) - of(&moved(-h))) / (2.0 * h);
    let inner = |v: &[f64]| along_residual(&residual.residual(v).unwrap(), &f_bar);
    let (fd, vjp) = (central(&inner), along(&residual.vjp(&u, &f_bar).unwrap()));
    assert!((vjp - fd).abs() <= 1e-8 * fd.abs(), "vjp {vjp} vs {fd}");
    let norm = |v: &[f64]| residual.norm(v).unwrap();
    let (value, gradient) = residual.norm_and_gradient(&u).unwrap();
    assert_eq!(value, norm(&u));
    let (fd, grad) = (central(&norm), along(&gradient));
    assert!(
        (grad - fd).abs() <= 1e-7 * fd.abs(),
        "gradient {grad} vs {fd}"
    );
}

/// `⟨F, F̄⟩`.
fn along_residual(f: &[f64], f_bar: &[f64]) -> f64 {
    f.iter().zip(f_bar).map(|(a, b)| a * b).sum()
}

#[test]
fn an_expert_problem_evaluates_at_its_points_coordinates() {
    // The problem's PDE rows at sampled points (coordinates gathered per
    // point) equal the field residual of `u = Bω` at those points.
    let (pde, _) = forced();
    let grid = forced_grid(9, 13);
    let terms = pde.terms(&grid).unwrap();
    let d = residual_term_count(pde.as_ref(), terms.len()).unwrap();
    let (n, len) = (3, grid.len());
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let basis: Vec<Vec<f64>> = (0..n)
        .map(|_| (0..len).map(|_| rng.random_range(-1.0..1.0)).collect())
        .collect();
    let omega = [0.7, -0.4, 1.3];
    let points = [0, 5, 17, 40, 64, 99, len - 1];
    let mut term_rows = vec![0.0; points.len() * d * n];
    let mut applied = vec![0.0; len];
    for (j, term) in terms[..d].iter().enumerate() {
        for (c, column) in basis.iter().enumerate() {
            term.operator.apply(column, 1, &mut applied);
            for (k, &p) in points.iter().enumerate() {
                term_rows[(k * d + j) * n + c] = applied[p];
            }
        }
    }
    let size = ProblemSize {
        n_basis: n,
        n_terms: d,
        n_equations: 1,
    };
    let coords = grid.coordinates();
    let gathered: Vec<f64> = points
        .iter()
        .flat_map(|&p| &coords[2 * p..2 * p + 2])
        .copied()
        .collect();
    let bare = ExpertProblem::new(
        size,
        term_rows,
        vec![0.0; points.len() * d],
        Vec::new(),
        Vec::new(),
        0.0,
    )
    .unwrap();
    // Without its coordinates the problem is refused, not evaluated at garbage.
    assert!(matches!(
        bare.residual(pde.as_ref(), &omega),
        Err(ConstraintError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        bare.clone().with_coordinates(vec![0.0; 3]),
        Err(ConstraintError::ShapeMismatch { .. })
    ));
    let mut nan = gathered.clone();
    nan[3] = f64::NAN;
    assert!(matches!(
        bare.clone().with_coordinates(nan),
        Err(ConstraintError::NonFinite { .. })
    ));
    let problem = bare.with_coordinates(gathered).unwrap();
    let rows = problem.residual(pde.as_ref(), &omega).unwrap();

    let u: Vec<f64> = (0..len)
        .map(|p| basis.iter().zip(omega).map(|(b, w)| b[p] * w).sum())
        .collect();
    let field = FieldResidual::new(pde.clone(), &grid)
        .unwrap()
        .residual(&u)
        .unwrap();
    let want: Vec<f64> = points.iter().map(|&p| field[p]).collect();
    assert_close("PDE rows", &rows[..points.len()], &want, 1e-12);
}
