//! The optimiser's kernels (`tessera_adam`, `tessera_squares`) against the
//! host optimiser: Adam's parameters and moments bit for bit, in float64 and
//! float32, over several updates with and without a clip scale, touching
//! only the trained ranges of the packed vector; the squared norms against
//! plain sums. Compiled for the host (every machine) and, where there is one,
//! on a GPU (skipped, saying why, without a CUDA driver).
#![cfg(feature = "cuda")]

mod host_kernels;

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var};
use host_kernels::HostExecutor;
use tessera_solver::device::{AdamScalars, CudaExecutor, Executor, Kernel, Ops, Precision};
use tessera_solver::{Adam, AdamConfig};

/// `n` values in about [-1, 1], different for each `seed`.
fn wave(n: usize, seed: f64) -> Vec<f64> {
    (0..n)
        .map(|i| (seed * 1.7 + i as f64 * 0.61).sin() * (1.0 + (i % 7) as f64 * 0.1))
        .collect()
}

/// Update `step`'s scalars as the host optimiser forms them from its
/// configuration (optax's bias corrections `1 / (1 − βᵗ)`).
fn scalars(config: &AdamConfig, step: i32, lr: f64, scale: f64) -> AdamScalars {
    AdamScalars {
        scale,
        beta1: config.beta1,
        one_minus_beta1: 1.0 - config.beta1,
        beta2: config.beta2,
        one_minus_beta2: 1.0 - config.beta2,
        unbias1: 1.0 / (1.0 - config.beta1.powi(step)),
        unbias2: 1.0 / (1.0 - config.beta2.powi(step)),
        eps: config.eps,
        lr,
    }
}

fn bits(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.to_bits()).collect()
}

fn values(tensor: &Tensor) -> Vec<f64> {
    tensor
        .to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// Both precisions on the host, each kernel's launches counted.
#[test]
fn the_adam_kernel_gives_the_host_optimisers_bits() {
    for precision in [Precision::F64, Precision::F32] {
        let exec = HostExecutor::with(precision);
        check_adam(&exec);
        assert_eq!(
            exec.launched(Kernel::Adam),
            6,
            "one launch per range and update"
        );
    }
}

#[test]
fn the_squares_kernel_sums_each_range() {
    for precision in [Precision::F64, Precision::F32] {
        check_squares(&HostExecutor::with(precision));
    }
}

/// The same checks on a GPU, both precisions.
#[test]
fn the_optimiser_kernels_on_a_gpu_match_the_host() {
    let Some(gpu) = host_kernels::gpu_or_skip() else {
        return;
    };
    for precision in [Precision::F64, Precision::F32] {
        let exec = CudaExecutor::new(&gpu, precision).expect("the backbone's kernels load");
        check_adam(&exec);
        check_squares(&exec);
    }
}

/// Two variables packed with untrained values around them (`a` at 0..1000,
/// `b` at 1200..3200 of 3300), three updates, the second clipped: the kernel
/// on the packed vector and the host optimiser on the variables give the same
/// bits, and the untrained values do not move.
fn check_adam<E: Executor>(exec: &E) {
    let precision = exec.precision();
    let dtype = match precision {
        Precision::F64 => DType::F64,
        Precision::F32 => DType::F32,
    };
    let ops = Ops::new(exec);
    let config = AdamConfig::default();
    let ranges = [("a", 0..1000, vec![1000]), ("b", 1200..3200, vec![40, 50])];
    let start = wave(3300, 0.3);
    let vars: BTreeMap<String, Var> = ranges
        .iter()
        .map(|(name, range, shape)| {
            let t = Tensor::from_slice(&start[range.clone()], shape.as_slice(), &Device::Cpu)
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            (name.to_string(), Var::from_tensor(&t).unwrap())
        })
        .collect();
    let mut adam = Adam::new(config);
    let mut params = exec.upload(&start).unwrap();
    let mut m = exec.zeros(3300).unwrap();
    let mut v = exec.zeros(3300).unwrap();
    for (step, (lr, scale)) in [(1e-3, 1.0), (2e-3, 0.37), (5e-4, 1.0)]
        .into_iter()
        .enumerate()
    {
        let packed_grad = wave(3300, 2.0 + step as f64);
        let grad = exec.upload(&packed_grad).unwrap();
        let mut grads = BTreeMap::new();
        for (name, range, shape) in &ranges {
            let g = Tensor::from_slice(&packed_grad[range.clone()], shape.as_slice(), &Device::Cpu)
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            let g = if scale == 1.0 {
                g
            } else {
                g.affine(scale, 0.0).unwrap()
            };
            grads.insert(name.to_string(), g);
        }
        adam.step(&vars, &grads, lr).unwrap();
        let s = scalars(&config, step as i32 + 1, lr, scale);
        for (_, range, _) in &ranges {
            ops.adam(range.clone(), &mut params, &grad, (&mut m, &mut v), &s)
                .unwrap();
        }
        let device = exec.download(&params).unwrap();
        for (name, range, _) in &ranges {
            assert_eq!(
                bits(&device[range.clone()]),
                bits(&values(vars[*name].as_tensor())),
                "{precision:?}, update {}: parameters of {name}",
                step + 1
            );
        }
        let rounded = exec.download(&exec.upload(&start).unwrap()).unwrap();
        for untrained in [1000..1200, 3200..3300] {
            assert_eq!(
                bits(&device[untrained.clone()]),
                bits(&rounded[untrained]),
                "{precision:?}: untrained values moved"
            );
        }
    }
    let state: BTreeMap<String, Tensor> = adam.state().unwrap().into_iter().collect();
    for (moment, buffer) in [("m", &m), ("v", &v)] {
        let device = exec.download(buffer).unwrap();
        for (name, range, _) in &ranges {
            assert_eq!(
                bits(&device[range.clone()]),
                bits(&values(&state[&format!("adam/{moment}/{name}")])),
                "{precision:?}: moment {moment} of {name}"
            );
        }
    }
}

/// The blocks' sums of squares add up to the plain sum of each range, in
/// float64 and (squares summed in double, blocks' sums rounded) float32.
fn check_squares<E: Executor>(exec: &E) {
    let precision = exec.precision();
    let tol = match precision {
        Precision::F64 => 1e-14,
        Precision::F32 => 1e-6,
    };
    let ops = Ops::new(exec);
    let data = wave(5000, 0.9);
    let x = exec.upload(&data).unwrap();
    let stored = exec.download(&x).unwrap();
    let per_block = 300;
    let ranges = [0..1, 7..4000, 4000..4999];
    let mut out = exec.zeros(20).unwrap();
    let mut at = 0;
    let mut blocks = Vec::new();
    for range in &ranges {
        let n = ops
            .squares((&x, range.clone()), per_block, (&mut out, at))
            .unwrap();
        assert_eq!(n, range.len().div_ceil(per_block));
        blocks.push(at..at + n);
        at += n;
    }
    let sums = exec.download(&out).unwrap();
    for (range, blocks) in ranges.iter().zip(blocks) {
        let expected: f64 = stored[range.clone()].iter().map(|v| v * v).sum();
        let got: f64 = sums[blocks].iter().sum();
        assert!(
            (got - expected).abs() <= tol * expected,
            "{precision:?} {range:?}: {got} vs {expected}"
        );
    }
    let err = ops
        .squares((&x, 4990..5001), per_block, (&mut out, 0))
        .unwrap_err();
    assert!(err.to_string().contains("squared values"), "{err}");
}
