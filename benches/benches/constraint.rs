//! The hard-constraint layer's forward and forward+backward on the paper's
//! diffusion–sorption setup: a 101×1024 grid, `N = 16`, terms `[u, u_t, u_xx, u_x]`
//! (reference finite differences), IC and BC rows for every expert, LM from
//! `ω = 1`, batch 1. Configurations: split `[1,4]` × 20 000 points, `[1,1]` ×
//! 20 000, and `[1,4]` × 2 500. The basis is a smooth synthetic one (products of
//! low sine/cosine modes around a positive level) standing in for an FNO's output.
//!
//! Run with `cargo bench -p tessera-benches --bench constraint`; the LM iteration
//! counts are printed once per configuration.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_experts::{ConstraintLayer, LayerConfig};
use tessera_meshes::Grid;
use tessera_scenarios::diffusion_sorption::pde::DiffusionSorption;

const NT: usize = 101;
const NX: usize = 1024;
const N: usize = 16;

/// `B[t, x, k] = 0.5 + 0.3·sin((k%4 + 1)πx + k)·cos((k/4)πt/T)`.
fn basis() -> Vec<f64> {
    let mut b = vec![0.0; NT * NX * N];
    for t in 0..NT {
        let tt = t as f64 / (NT - 1) as f64;
        for x in 0..NX {
            let xx = (x as f64 + 0.5) / NX as f64;
            for k in 0..N {
                let (kx, kt) = ((k % 4 + 1) as f64, (k / 4) as f64);
                b[(t * NX + x) * N + k] = 0.5
                    + 0.3
                        * (kx * std::f64::consts::PI * xx + k as f64).sin()
                        * (kt * std::f64::consts::PI * tt).cos();
            }
        }
    }
    b
}

fn bench(c: &mut Criterion) {
    let grid = Grid::uniform_tx(NT, NX, 500.0).expect("grid");
    let pde = Arc::new(DiffusionSorption::default());
    let b = basis();
    let ic = vec![0.1; NX];
    let u_bar: Vec<f64> = (0..NT * NX)
        .map(|p| ((p % 97) as f64 - 48.0) / 48.0)
        .collect();
    let mut group = c.benchmark_group("constraint");
    group.sample_size(10);
    for (name, split, points) in [
        ("1x4_20000", [1, 4], 20_000),
        ("1x1_20000", [1, 1], 20_000),
        ("1x4_2500", [1, 4], 2_500),
    ] {
        let layer =
            ConstraintLayer::new(pde.clone(), grid.clone(), LayerConfig::new(&split, points))
                .expect("layer");
        let fwd = layer.forward(&b, N, &[&ic], 0).expect("forward");
        let iterations: Vec<usize> = fwd.statuses.iter().map(|s| s.iterations).collect();
        let reasons: Vec<_> = fwd.statuses.iter().map(|s| s.reason).collect();
        eprintln!("{name}: LM iterations {iterations:?}, stop reasons {reasons:?}");
        group.bench_function(format!("fwd/{name}"), |bench| {
            bench.iter(|| black_box(layer.forward(black_box(&b), N, &[&ic], 0).expect("forward")))
        });
        group.bench_function(format!("fwd+bwd/{name}"), |bench| {
            bench.iter(|| {
                let f = layer.forward(black_box(&b), N, &[&ic], 0).expect("forward");
                black_box(layer.backward(&f, &b, &u_bar).expect("backward"))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
