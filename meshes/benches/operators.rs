//! One application of each operator at the paper's sizes (median times):
//! diffusion–sorption's 101 × 1024 grid with N = 16 basis functions (1.65 M values)
//! for finite differences along `t` and `x`, and Navier–Stokes' 64 × 64 × 64 grid
//! with N = 64 for the spectral operators. `Identity` (a plain copy) is the
//! memory-bandwidth baseline.
//!
//! Run: `cargo bench -p tessera-meshes --bench operators`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tessera_meshes::{
    FdScheme, FiniteDifference, FourierMultiplier, Grid, Identity, LinearOperator,
};

fn bench_fd(c: &mut Criterion) {
    let grid = Grid::uniform_tx(101, 1024, 500.0).unwrap();
    let channels = 16;
    let field: Vec<f64> = (0..grid.len() * channels)
        .map(|k| (k as f64 * 1e-3).sin())
        .collect();
    let mut out = vec![0.0; field.len()];
    let mut group = c.benchmark_group("fd 101x1024x16");
    let id = Identity::new(grid.shape());
    group.bench_function("copy (identity)", |b| {
        b.iter(|| id.apply(black_box(&field), channels, &mut out))
    });
    for (axis, name) in [(0, "t"), (1, "x")] {
        let d1 = FiniteDifference::first(&grid, axis, FdScheme::Reference).unwrap();
        let d2 = FiniteDifference::second(&grid, axis, FdScheme::Reference).unwrap();
        group.bench_function(format!("d/d{name} apply"), |b| {
            b.iter(|| d1.apply(black_box(&field), channels, &mut out))
        });
        group.bench_function(format!("d/d{name} adjoint"), |b| {
            b.iter(|| d1.apply_adjoint(black_box(&field), channels, &mut out))
        });
        group.bench_function(format!("d²/d{name}² apply"), |b| {
            b.iter(|| d2.apply(black_box(&field), channels, &mut out))
        });
    }
    group.finish();
}

fn bench_spectral(c: &mut Criterion) {
    let grid = Grid::uniform_txy(64, 64, 64, 5.0).unwrap();
    let channels = 64;
    let field: Vec<f64> = (0..grid.len() * channels)
        .map(|k| (k as f64 * 1e-3).sin())
        .collect();
    let mut out = vec![0.0; field.len()];
    let mut group = c.benchmark_group("spectral 64x64x64x64");
    group.sample_size(10);
    let id = Identity::new(grid.shape());
    group.bench_function("copy (identity)", |b| {
        b.iter(|| id.apply(black_box(&field), channels, &mut out))
    });
    let dx = FourierMultiplier::derivative(&grid, 1, 1).unwrap();
    let dy = FourierMultiplier::derivative(&grid, 2, 1).unwrap();
    let lap = FourierMultiplier::laplacian(&grid).unwrap();
    for (name, op) in [("d/dx", &dx), ("d/dy", &dy), ("laplacian", &lap)] {
        group.bench_function(format!("{name} apply"), |b| {
            b.iter(|| op.apply(black_box(&field), channels, &mut out))
        });
    }
    group.bench_function("laplacian adjoint", |b| {
        b.iter(|| lap.apply_adjoint(black_box(&field), channels, &mut out))
    });
    group.finish();
}

criterion_group!(benches, bench_fd, bench_spectral);
criterion_main!(benches);
