//! The mixture's passes over the whole grid (`tiles.cu`) compiled for the
//! host through the shim, on the arrays the GPU solver uploads (`Tiles`,
//! `PullBackRows`, the transpose of the terms' rows), against the
//! definitions evaluated here another way: `u` and `ω̄` point by point over
//! the owners, and `F̄` by scattering every row gradient onto the grid and
//! applying each operator's own adjoint.
#![cfg(feature = "cuda")]

mod common;

use std::sync::Arc;

use common::gpu::sorption_stencils;
use common::tiles::{Launch, TilesCase, assert_close};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tessera_constraints::gpu::{GpuError, PullBackRows, Tiles};
use tessera_meshes::{Grid, Identity, LinearOperator, SparseRows};

/// A linear row of one expert: `Σ_j coeffs[j].1 · (D_{coeffs[j].0} F)(point)`.
struct Linear {
    point: usize,
    coeffs: Vec<(usize, f64)>,
}

/// Random data of `samples` samples for `K` experts on a small grid, with
/// residual terms `u`, `u_t`, `u_xx` and a fourth operator, `u_x`, that only
/// the linear rows read.
struct Setup {
    g: usize,
    n: usize,
    samples: usize,
    /// `d` residual terms, then the linear rows' extra ones.
    operators: Vec<Arc<dyn LinearOperator>>,
    owners: Vec<usize>,
    n_experts: usize,
    /// Per expert: sampled points (in its tile, repeats allowed).
    points: Vec<Vec<usize>>,
    /// Per expert: linear rows (anywhere on the grid).
    linear: Vec<Vec<Linear>>,
    fields: Vec<f64>,
    omega: Vec<f64>,
    lambda: Vec<f64>,
    offsets: Option<Vec<f64>>,
    u_bar: Vec<f64>,
    term_omega: Vec<f64>,
    term_lambda: Vec<f64>,
    linear_omega: Vec<f64>,
    linear_lambda: Vec<f64>,
}

const D: usize = 3;

fn values(rng: &mut ChaCha8Rng, len: usize) -> Vec<f64> {
    common::uniform(rng, len, 1.0)
}

impl Setup {
    fn new(seed: u64, n: usize, with_offsets: bool) -> Self {
        let mut rng = common::rng(seed);
        let grid = Grid::uniform_tx(5, 7, 1.0).unwrap();
        let g = grid.len();
        let operators = sorption_stencils(&grid);
        // Three experts owning scattered points (the kernels need no
        // rectangles), every expert at least one.
        let n_experts = 3;
        let owners: Vec<usize> = (0..g)
            .map(|q| {
                if q < n_experts {
                    q
                } else {
                    rng.random_range(0..n_experts)
                }
            })
            .collect();
        let points: Vec<Vec<usize>> = (0..n_experts)
            .map(|k| {
                let tile: Vec<usize> = (0..g).filter(|&q| owners[q] == k).collect();
                let mut pts: Vec<usize> = (0..6)
                    .map(|_| tile[rng.random_range(0..tile.len())])
                    .collect();
                pts.push(pts[0]);
                pts
            })
            .collect();
        let linear: Vec<Vec<Linear>> = (0..n_experts)
            .map(|k| {
                (0..k + 2)
                    .map(|i| Linear {
                        point: if i == 0 { 0 } else { rng.random_range(0..g) },
                        coeffs: vec![
                            (i % 2, rng.random_range(-1.0..1.0)),
                            (3, rng.random_range(-1.0..1.0)),
                        ],
                    })
                    .collect()
            })
            .collect();
        let samples = 2;
        let s: usize = points.iter().map(Vec::len).sum();
        let l: usize = linear.iter().map(Vec::len).sum();
        let problems = samples * n_experts;
        Self {
            g,
            n,
            samples,
            operators,
            owners,
            n_experts,
            points,
            linear,
            fields: values(&mut rng, samples * g * n),
            omega: values(&mut rng, problems * n),
            lambda: values(&mut rng, problems * n),
            offsets: with_offsets.then(|| values(&mut rng, samples * g)),
            u_bar: values(&mut rng, samples * g),
            term_omega: values(&mut rng, samples * s * D),
            term_lambda: values(&mut rng, samples * s * D),
            linear_omega: values(&mut rng, samples * l),
            linear_lambda: values(&mut rng, samples * l),
        }
    }

    /// The residual's terms at every grid point, as the layer sends them.
    fn term_rows(&self) -> SparseRows {
        let mut rows = SparseRows::new(self.g);
        for q in 0..self.g {
            for op in &self.operators[..D] {
                rows.push_row(op.as_ref(), q, 1.0).unwrap();
            }
        }
        rows
    }

    fn pull_back_rows(&self) -> PullBackRows {
        let points: Vec<&[usize]> = self.points.iter().map(Vec::as_slice).collect();
        let linear: Vec<SparseRows> = self
            .linear
            .iter()
            .map(|rows| {
                let mut sparse = SparseRows::new(self.g);
                for row in rows {
                    let parts: Vec<(&dyn LinearOperator, f64)> = row
                        .coeffs
                        .iter()
                        .map(|&(j, c)| (self.operators[j].as_ref(), c))
                        .collect();
                    sparse.push_sum(&parts, row.point).unwrap();
                }
                sparse
            })
            .collect();
        PullBackRows::new(&points, &linear).unwrap()
    }

    /// Row `k` of `[problems, N]` values for sample `b`.
    fn of<'a>(&self, v: &'a [f64], b: usize, k: usize) -> &'a [f64] {
        &v[(b * self.n_experts + k) * self.n..][..self.n]
    }

    /// `u`, `ω̄` and `F̄` by their definitions.
    fn expected(&self) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let (g, n, kk) = (self.g, self.n, self.n_experts);
        let mut u = vec![0.0; self.samples * g];
        let mut bar = vec![0.0; self.samples * kk * n];
        let mut f_bar = vec![0.0; self.samples * g * n];
        let s_total: usize = self.points.iter().map(Vec::len).sum();
        let l_total: usize = self.linear.iter().map(Vec::len).sum();
        for b in 0..self.samples {
            let field = &self.fields[b * g * n..][..g * n];
            for q in 0..g {
                let k = self.owners[q];
                let w = self.of(&self.omega, b, k);
                let dot: f64 = (0..n).map(|c| field[q * n + c] * w[c]).sum();
                let s0 = self.offsets.as_ref().map_or(0.0, |s| s[b * g + q]);
                u[b * g + q] = s0 + dot;
                for c in 0..n {
                    bar[(b * kk + k) * n + c] += self.u_bar[b * g + q] * field[q * n + c];
                    f_bar[(b * g + q) * n + c] += self.u_bar[b * g + q] * w[c];
                }
            }
            // Every row gradient α·ω + β·λ scattered at its point, per term,
            // then each term's adjoint applied with N channels.
            let mut scattered = vec![vec![0.0; g * n]; self.operators.len()];
            let mut add = |j: usize, point: usize, k: usize, alpha: f64, beta: f64| {
                let (w, l) = (self.of(&self.omega, b, k), self.of(&self.lambda, b, k));
                for c in 0..n {
                    scattered[j][point * n + c] += alpha * w[c] + beta * l[c];
                }
            };
            let (mut s, mut r) = (b * s_total, b * l_total);
            for k in 0..kk {
                for &p in &self.points[k] {
                    for j in 0..D {
                        let i = s * D + j;
                        add(j, p, k, self.term_omega[i], self.term_lambda[i]);
                    }
                    s += 1;
                }
                for row in &self.linear[k] {
                    for &(j, c) in &row.coeffs {
                        let (alpha, beta) = (self.linear_omega[r], self.linear_lambda[r]);
                        add(j, row.point, k, c * alpha, c * beta);
                    }
                    r += 1;
                }
            }
            for (op, field) in self.operators.iter().zip(&scattered) {
                let pulled = op.apply_adjoint_to_vec(field, n);
                for (o, x) in f_bar[b * g * n..][..g * n].iter_mut().zip(&pulled) {
                    *o += x;
                }
            }
        }
        (u, bar, f_bar)
    }
}

fn run(setup: &Setup, launches: &[Launch], tag: &str) {
    let (u, bar, f_bar) = setup.expected();
    let tiles = Tiles::new(&setup.owners, setup.n_experts).unwrap();
    let adjoint = setup.term_rows().transpose();
    let rows = setup.pull_back_rows();
    let case = TilesCase {
        n: setup.n,
        d: D,
        samples: setup.samples,
        tiles: &tiles,
        adjoint: &adjoint,
        rows: &rows,
        fields: &setup.fields,
        omega: &setup.omega,
        lambda: &setup.lambda,
        offsets: setup.offsets.as_deref(),
        u_bar: &setup.u_bar,
        term_omega: &setup.term_omega,
        term_lambda: &setup.term_lambda,
        linear_omega: &setup.linear_omega,
        linear_lambda: &setup.linear_lambda,
    };
    for &launch in launches {
        let name = format!("{tag}-{launch:?}");
        let got = case.run(launch, &format!("tiles-{tag}"));
        assert_close(&format!("{name}: u"), &got.u, &u, 1e-13);
        assert_close(&format!("{name}: ω̄"), &got.omega_bar, &bar, 1e-13);
        assert_close(&format!("{name}: F̄"), &got.f_bar, &f_bar, 1e-13);
    }
}

#[test]
fn the_grid_passes_match_their_definitions_for_any_launch() {
    // One thread for everything; a grid-stride loop over a few odd blocks;
    // ω̄ in one chunk of N threads, in more chunks than a tile has points,
    // and with threads that are not a multiple of N.
    let launch = |blocks, threads, chunks, part_threads| Launch {
        blocks,
        threads,
        chunks,
        part_threads,
    };
    let launches = [
        launch(1, 1, 1, 4),
        launch(3, 7, 4, 64),
        launch(5, 32, 32, 30),
    ];
    run(&Setup::new(1, 4, true), &launches, "offsets");
    run(&Setup::new(2, 3, false), &launches[1..], "no-offsets");
}

#[test]
fn tiles_and_pull_back_rows_check_what_they_are_given() {
    let tiles = Tiles::new(&[1, 0, 1, 2, 0], 3).unwrap();
    assert_eq!(tiles.start, [0, 2, 4, 5]);
    assert_eq!(tiles.points, [1, 4, 0, 2, 3]);
    assert_eq!((tiles.n_experts(), tiles.n_grid()), (3, 5));
    for (owners, experts) in [(&[0, 3][..], 3), (&[][..], 1), (&[0][..], 0)] {
        assert!(
            matches!(Tiles::new(owners, experts), Err(GpuError::Unsupported(_))),
            "{owners:?} of {experts} experts"
        );
    }

    let grid = Grid::uniform_tx(3, 4, 1.0).unwrap();
    let mut linear = SparseRows::new(grid.len());
    linear
        .push_sum(&[(&Identity::new(grid.shape()), 2.0)], 5)
        .unwrap();
    let rows =
        PullBackRows::new(&[&[3, 7, 3], &[]], &[linear.clone(), SparseRows::new(12)]).unwrap();
    // Point 3 is sampled twice (indices 0 and 2), point 7 once.
    let (start, sampled) = rows.sampled();
    assert_eq!(&start[3..9], [0, 2, 2, 2, 2, 3]);
    assert_eq!(sampled, [0, 2, 1]);
    let (adjoint, experts) = rows.linear_adjoint();
    assert_eq!(adjoint, linear.transpose());
    assert_eq!(experts, [0]);
    let bad: [(&[&[usize]], Vec<SparseRows>); 3] = [
        (&[&[12]], vec![SparseRows::new(12)]),
        (&[&[1], &[2]], vec![SparseRows::new(12)]),
        (
            &[&[1], &[2]],
            vec![SparseRows::new(12), SparseRows::new(11)],
        ),
    ];
    for (points, linear) in bad {
        assert!(
            matches!(
                PullBackRows::new(points, &linear),
                Err(GpuError::Unsupported(_))
            ),
            "{points:?}"
        );
    }
}
