//! The GPU backbone's kernels compiled for the host (through
//! `tessera_constraints::gpu::HOST_SHIM`) behind an [`Executor`] that runs
//! them on the CPU, so that everything above a kernel launch — the product
//! kernel's tiling and split-K sums, the views, the whole FNO forward and
//! backward pass, in float64 and float32 — is checked against the CPU on
//! machines without a GPU: the products against naive sums, the network
//! against the CPU backbone (whose own gradients are checked against finite
//! differences in its unit tests).
#![cfg(feature = "cuda")]

mod host_kernels;
mod model_common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use host_kernels::{HostBuffer, HostExecutor};
use tessera_constraints::gpu::GpuError;
use tessera_solver::device::{DeviceBackbone, DeviceFno, Executor, Kernel, Ops, Precision, View};
use tessera_solver::{Adam, AdamConfig, Fno, FnoConfig, Model, SeededVars};

fn pseudo(n: usize, seed: f64) -> Vec<f64> {
    (0..n)
        .map(|i| ((i as f64 + 1.0) * seed).sin() + 0.25 * ((i as f64) * seed * 0.37).cos())
        .collect()
}

/// `Σ_k A[b,i,k]·B[b,k,j]` read through the views' strides, the slow way.
fn naive(
    count: usize,
    a: (&[f64], View),
    b: (&[f64], View),
    b_idx: usize,
    i: usize,
    j: usize,
) -> f64 {
    let ((ad, av), (bd, bv)) = (a, b);
    let _ = count;
    (0..av.cols)
        .map(|k| {
            ad[av.offset + b_idx * av.batch + i * av.row + k * av.col]
                * bd[bv.offset + b_idx * bv.batch + k * bv.row + j * bv.col]
        })
        .sum()
}

/// The product kernel against naive sums: several tiles with ragged edges,
/// transposed and shared (batch stride 0) operands, sub-blocks with row
/// strides, accumulation (`β ≠ 0`) and the split-K path with its ordered
/// reduction.
/// (count, m, n, k, transpose A, transpose B, share A, alpha, beta)
type ProductCase = (usize, usize, usize, usize, bool, bool, bool, f64, f64);

#[test]
fn the_product_kernel_matches_naive_sums() {
    let cases = [
        (1, 70, 67, 33, false, false, false, 1.0, 0.0),
        (3, 5, 9, 17, true, false, false, -0.5, 1.0),
        (4, 13, 6, 8, false, true, true, 2.0, 0.5),
        (2, 3, 4, 5000, true, false, false, 1.0, 0.0),
        (1, 2, 3, 9000, true, true, false, 0.75, -2.0),
    ];
    check_products(&HostExecutor::new(), &cases, 1e-13);
    // In float32: sums of rounded inputs, accumulated in float32.
    check_products(&HostExecutor::with(Precision::F32), &cases[..4], 1e-5);
}

/// Each case's product on `exec` against naive float64 sums of the values
/// `exec` stored, to `tol · 4√k` per element.
fn check_products(exec: &HostExecutor, cases: &[ProductCase], tol: f64) {
    let ops = Ops::new(exec);
    for (case, &(count, m, n, k, ta, tb, share, alpha, beta)) in cases.iter().enumerate() {
        let layout = |rows: usize, cols: usize, transposed: bool, pad: usize| {
            // Stored `[cols, rows + pad]` when transposed, else `[rows, cols + pad]`.
            let v = if transposed {
                View::dense(1, cols, rows).row_stride(rows + pad).t()
            } else {
                View::dense(1, rows, cols).row_stride(cols + pad)
            };
            let per = if transposed {
                cols * (rows + pad)
            } else {
                rows * (cols + pad)
            };
            (v.batch_stride(per), per)
        };
        let (mut av, a_per) = layout(m, k, ta, 2);
        if share {
            av = av.shared();
        }
        let (bv, b_per) = layout(k, n, tb, 1);
        let (cv, c_per) = layout(m, n, false, 3);
        let (ab, bb) = (
            exec.upload(&pseudo(1 + a_per * count, 0.31 + case as f64))
                .unwrap(),
            exec.upload(&pseudo(1 + b_per * count, 0.73 + case as f64))
                .unwrap(),
        );
        let mut cb = exec
            .upload(&pseudo(1 + c_per * count, 1.13 + case as f64))
            .unwrap();
        let stored = |buffer: &HostBuffer| exec.download(buffer).unwrap();
        let (a, b, c0) = (stored(&ab), stored(&bb), stored(&cb));
        ops.gemm(count, alpha, (&ab, av), (&bb, bv), beta, (&mut cb, cv))
            .unwrap();
        let c = exec.download(&cb).unwrap();
        let mut touched = vec![false; c.len()];
        for e in 0..count {
            for i in 0..m {
                for j in 0..n {
                    let at = cv.offset + e * cv.batch + i * cv.row + j * cv.col;
                    touched[at] = true;
                    let sum = naive(count, (&a, av), (&b, bv), e, i, j);
                    let expected = alpha * sum + beta * c0[at];
                    let scale = (k as f64).sqrt() * 4.0;
                    assert!(
                        (c[at] - expected).abs() <= tol * scale,
                        "case {case} [{e},{i},{j}]: {} vs {expected}",
                        c[at]
                    );
                }
            }
        }
        for (at, untouched) in touched.iter().enumerate().filter(|(_, t)| !**t) {
            let _ = untouched;
            assert_eq!(c[at], c0[at], "case {case}: element {at} outside C changed");
        }
    }
}

/// A view that reaches past its buffer is an error before any launch.
#[test]
fn a_view_outside_its_buffer_is_refused() {
    let exec = HostExecutor::new();
    let ops = Ops::new(&exec);
    let (a, b) = (exec.zeros(6).unwrap(), exec.zeros(6).unwrap());
    let mut c = exec.zeros(3).unwrap();
    let err = ops
        .gemm(
            1,
            1.0,
            (&a, View::dense(0, 2, 3)),
            (&b, View::dense(0, 3, 2)),
            0.0,
            (&mut c, View::dense(0, 2, 2)),
        )
        .unwrap_err();
    assert!(err.to_string().contains("product result"), "{err}");
    assert_eq!(exec.launches.load(Ordering::Relaxed), 0);
}

/// Tolerances (outputs, gradient) on the host: both sides sum in different
/// orders, nothing else differs.
const HOST: (f64, f64) = (1e-12, 1e-11);
/// A float32 network against the float64 CPU backbone: float32's rounding
/// (6e-8 per operation) grown through the layers' sums (measured on the host:
/// 4.6e-7 and 4.7e-7).
const SINGLE: (f64, f64) = (1e-5, 1e-5);
/// The same on a GPU, whose test grid sums over 20 times as many points.
const SINGLE_GPU: (f64, f64) = (1e-5, 1e-4);
/// On a GPU, the agreement: forward 1e-10, gradients 1e-8.
const GPU: (f64, f64) = (1e-10, 1e-8);

/// The paper's FNO widths and modes with `out_dim` outputs.
fn wide(out_dim: usize) -> FnoConfig {
    FnoConfig {
        in_features: 4,
        widths: vec![32, 64, 64, 64],
        modes: vec![8, 8],
        fc_dim: 128,
        out_dim,
        activate_last_layer: false,
    }
}

fn config(ndim: usize, activate_last_layer: bool) -> FnoConfig {
    FnoConfig {
        in_features: 3,
        widths: vec![4, 5, 3],
        modes: if ndim == 2 { vec![2, 3] } else { vec![1, 2, 2] },
        fc_dim: 6,
        out_dim: 2,
        activate_last_layer,
    }
}

/// The device network on `exec` against the CPU backbone with the same
/// packed parameters: outputs, and the parameter and features gradients of
/// `L = Σ out ⊙ R` for a fixed `R`, each to `tol` (outputs, gradients)
/// relative to its largest entry.
fn compare_with_cpu<E: Executor + Clone>(
    exec: &E,
    config: FnoConfig,
    shape: &[usize],
    seed: u64,
    tol: (f64, f64),
) where
    E::Buffer: std::fmt::Debug,
{
    let vars = VarMap::new();
    let fno = Fno::new(config.clone(), SeededVars::builder(&vars, seed, DType::F64)).unwrap();
    let n: usize = shape.iter().product();
    let features = Tensor::from_vec(pseudo(n, 0.37), shape, &Device::Cpu).unwrap();
    let packed = Var::from_tensor(&fno.packed_parameters().unwrap()).unwrap();
    let out = fno.forward_packed(&features, packed.as_tensor()).unwrap();
    let r = pseudo(out.elem_count(), 1.3);
    let loss = (&out * Tensor::from_vec(r.clone(), out.shape(), &Device::Cpu).unwrap())
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    let cpu_grad: Vec<f64> = grads.get(packed.as_tensor()).unwrap().to_vec1().unwrap();
    let cpu_out: Vec<f64> = out.flatten_all().unwrap().to_vec1().unwrap();
    let params: Vec<f64> = packed.as_tensor().to_vec1().unwrap();

    let grid = &shape[1..shape.len() - 1];
    let device = DeviceFno::new(exec.clone(), &config, grid).unwrap();
    assert_eq!(device.n_params(), params.len(), "the packed layouts agree");
    let x = exec
        .upload(&features.flatten_all().unwrap().to_vec1::<f64>().unwrap())
        .unwrap();
    let p = exec.upload(&params).unwrap();
    let (y, pass) = device.forward(&x, &p).unwrap();
    let gpu_out = exec.download(&y).unwrap();
    let r_up = exec.upload(&r).unwrap();
    let g = device.backward(pass, &x, &p, &r_up).unwrap();
    let gpu_grad = exec.download(&g).unwrap();
    // Again, with the features' gradient: the same parameter gradient.
    let (_, pass) = device.forward(&x, &p).unwrap();
    let (g, gx) = device.backward_with_features(pass, &x, &p, &r_up).unwrap();
    assert_same_bits("parameter gradient", &exec.download(&g).unwrap(), &gpu_grad);
    let gpu_features_grad = exec.download(&gx).unwrap();
    let x_var = Var::from_tensor(&features).unwrap();
    let out = fno
        .forward_packed(x_var.as_tensor(), &packed.as_tensor().detach())
        .unwrap();
    let loss = (&out * Tensor::from_vec(r.clone(), out.shape(), &Device::Cpu).unwrap())
        .unwrap()
        .sum_all()
        .unwrap();
    let cpu_features_grad: Vec<f64> = loss
        .backward()
        .unwrap()
        .get(x_var.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();

    let close = |what: &str, a: &[f64], b: &[f64], tol: f64| {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(scale > 1e-3, "{what}: a non-trivial comparison");
        let worst = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f64, f64::max);
        println!(
            "{:?} {what}: worst difference {:.1e} of the largest entry",
            exec.precision(),
            worst / scale
        );
        assert!(
            worst <= tol * scale,
            "{what}: worst difference {worst:e} of {scale:e}"
        );
    };
    close("outputs", &gpu_out, &cpu_out, tol.0);
    close("parameter gradient", &gpu_grad, &cpu_grad, tol.1);
    close(
        "features gradient",
        &gpu_features_grad,
        &cpu_features_grad,
        tol.1,
    );
}

#[test]
fn the_2d_network_matches_the_cpu_backbone() {
    let exec = HostExecutor::new();
    compare_with_cpu(&exec, config(2, false), &[2, 6, 8, 3], 11, HOST);
    compare_with_cpu(&exec, config(2, true), &[1, 7, 10, 3], 12, HOST);
    // Channel widths past one product tile, on a grid small enough for the
    // shim (each of its barriers switches through 256 fibers).
    let wide_on_host = FnoConfig {
        widths: vec![32, 64],
        modes: vec![4, 4],
        ..wide(16)
    };
    compare_with_cpu(&exec, wide_on_host, &[1, 8, 16, 4], 14, HOST);
}

/// A float32 network against the float64 CPU backbone with the same
/// parameters: as close as float32 allows.
#[test]
fn a_float32_network_matches_the_cpu_backbone_to_single_precision() {
    let exec = HostExecutor::with(Precision::F32);
    compare_with_cpu(&exec, config(2, true), &[2, 6, 8, 3], 11, SINGLE);
    compare_with_cpu(&exec, config(3, false), &[1, 4, 5, 6, 3], 13, SINGLE);
}

#[test]
fn the_3d_network_matches_the_cpu_backbone() {
    compare_with_cpu(
        &HostExecutor::new(),
        config(3, false),
        &[2, 4, 5, 6, 3],
        13,
        HOST,
    );
}

/// The same comparisons on a GPU, at the tiny sizes and at a grid with
/// several product tiles and split-K weight gradients (skipped, saying why,
/// without a CUDA driver).
#[test]
fn the_network_on_a_gpu_matches_the_cpu_backbone() {
    use tessera_solver::device::CudaExecutor;
    let Some(gpu) = host_kernels::gpu_or_skip() else {
        return;
    };
    let exec = CudaExecutor::new(&gpu, Precision::F64).expect("the backbone's kernels load");
    compare_with_cpu(&exec, config(2, false), &[2, 6, 8, 3], 11, GPU);
    compare_with_cpu(&exec, config(2, true), &[1, 7, 10, 3], 12, GPU);
    compare_with_cpu(&exec, config(3, false), &[2, 4, 5, 6, 3], 13, GPU);
    compare_with_cpu(&exec, wide(16), &[3, 51, 128, 4], 14, GPU);
    let single = CudaExecutor::new(&gpu, Precision::F32).expect("the float32 kernels load");
    compare_with_cpu(&single, config(2, true), &[2, 6, 8, 3], 11, SINGLE);
    compare_with_cpu(&single, wide(16), &[3, 51, 128, 4], 14, SINGLE_GPU);
}

/// An array larger than the GPU is the typed out-of-memory error, with the
/// device's memory read when it happened and the settings to lower, and
/// the device stays usable (skipped, saying why, without a CUDA driver).
#[test]
fn running_out_of_memory_on_a_gpu_says_what_to_lower() {
    use tessera_solver::device::CudaExecutor;
    let Some(gpu) = host_kernels::gpu_or_skip() else {
        return;
    };
    let total = gpu.total_memory().unwrap();
    let exec = CudaExecutor::new(&gpu, Precision::F64).expect("the backbone's kernels load");
    let Err(err) = exec.zeros(2 * total / 8) else {
        panic!("twice the GPU's memory was allocated");
    };
    match &err {
        GpuError::OutOfMemory {
            free_total: Some((free, reported)),
            ..
        } => assert!(*reported == total && free < reported, "{err}"),
        other => panic!("not the out-of-memory error: {other}"),
    }
    assert!(err.to_string().contains("training.batch_size"), "{err}");
    let small = exec.upload(&[1.0, 2.0, 3.0]).unwrap();
    assert_eq!(exec.download(&small).unwrap(), [1.0, 2.0, 3.0]);
}

/// Shapes that do not fit the network are typed errors, not launches.
#[test]
fn mismatched_inputs_are_refused() {
    let exec = HostExecutor::new();
    let config = config(2, false);
    let device = DeviceFno::new(exec.clone(), &config, &[6, 8]).unwrap();
    let p = exec.zeros(device.n_params()).unwrap();
    let bad_features = exec.zeros(6 * 8 * 3 + 1).unwrap();
    let err = device.forward(&bad_features, &p).err().unwrap();
    assert!(err.to_string().contains("feature values"), "{err}");
    let x = exec.zeros(6 * 8 * 3).unwrap();
    let short = exec.zeros(device.n_params() - 1).unwrap();
    let err = device.forward(&x, &short).err().unwrap();
    assert!(err.to_string().contains("packed parameters"), "{err}");
    let too_many_modes = FnoConfig {
        modes: vec![4, 3],
        ..config
    };
    assert!(DeviceFno::new(exec.clone(), &too_many_modes, &[6, 8]).is_err());
    assert_eq!(
        exec.launches.load(Ordering::Relaxed),
        0,
        "nothing was launched"
    );
    // A backward pass through another batch's forward pass is refused.
    let (_, pass) = device.forward(&x, &p).unwrap();
    let two = exec.zeros(2 * 6 * 8 * 3).unwrap();
    let err = device
        .backward(pass, &two, &p, &exec.zeros(2 * 6 * 8 * 2).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("for a forward pass of"), "{err}");
    // So is a pass of another network, even of the same shape.
    let twin = DeviceFno::new(exec.clone(), &self::config(2, false), &[6, 8]).unwrap();
    let (_, pass) = twin.forward(&x, &p).unwrap();
    let grad = exec.zeros(6 * 8 * 2).unwrap();
    let err = device.backward(pass, &x, &p, &grad).unwrap_err();
    assert!(err.to_string().contains("another network"), "{err}");
}

/// The kernels compile with NVRTC for Ampere and Hopper and assemble with
/// `ptxas` without spills (skipped, saying why, without the CUDA tools).
#[test]
fn the_kernels_compile_and_assemble_for_ampere_and_hopper() {
    use tessera_constraints::gpu::{nvrtc, ptxas};
    // The CUDA executor finds a kernel's function at `kernel as usize`.
    for (i, k) in Kernel::ALL.iter().enumerate() {
        assert_eq!(*k as usize, i, "{}", k.name());
    }
    let Some(ptxas) = ptxas::test_tools() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("tessera-backbone-ptxas-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let builds = nvrtc::ARCHITECTURES.into_iter().zip(ptxas::MACHINES);
    for ((arch, sm), precision) in builds.flat_map(|b| [(b, Precision::F64), (b, Precision::F32)]) {
        let ptx = nvrtc::compile(&precision.source(), arch)
            .unwrap_or_else(|e| panic!("{arch} {precision:?}: {e}"));
        let Some(ptxas) = &ptxas else { continue };
        let usage = ptxas::assemble(ptxas, &ptx.to_src(), sm, &dir, sm)
            .unwrap_or_else(|e| panic!("{sm}: {e}"));
        let mut names: Vec<&str> = usage.iter().map(|k| k.name.as_str()).collect();
        names.sort();
        let mut expected: Vec<&str> = Kernel::ALL.iter().map(|k| k.name()).collect();
        expected.sort();
        assert_eq!(names, expected, "{sm}: every kernel and only those");
        for k in &usage {
            println!(
                "{sm} {precision:?} {}: {} registers, spills {}/{} bytes",
                k.name, k.registers, k.spill_stores, k.spill_loads
            );
            assert_eq!(
                (k.spill_stores, k.spill_loads),
                (0, 0),
                "{sm} {}: spills",
                k.name
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A float32 backbone runs on a float32 device only, and trains there like
/// the float32 CPU backbone (the two sum in different orders; the experts'
/// solves are float64 on both). Measured: loss parts 4.2e-5, gradient norm
/// 2.6e-4 apart — float32's 5e-7 in the basis, grown as in the float64 test
/// below by solves that stop at the solver's tolerance, not at round-off.
#[test]
fn a_float32_backbone_trains_on_a_float32_device() {
    let mut scenario = model_common::diffusion_sorption("moe", "");
    scenario.set("model.dtype=f32").unwrap();
    let (cpu, _) = train_steps(Model::new(&scenario).unwrap(), &scenario, 3);
    let mut model = Model::new(&scenario).unwrap();
    let double = DeviceBackbone::new(HostExecutor::new());
    let err = model.run_backbone_on(Some(Arc::new(double))).unwrap_err();
    assert!(err.to_string().contains("model.dtype"), "{err}");
    let single = DeviceBackbone::new(HostExecutor::with(Precision::F32));
    model.run_backbone_on(Some(Arc::new(single))).unwrap();
    let (dev, _) = train_steps(model, &scenario, 3);
    assert_same_steps("float32", &cpu, &dev, (2e-4, 2e-3));
    let mut f64_model = Model::new(&model_common::diffusion_sorption("moe", "")).unwrap();
    let single = DeviceBackbone::new(HostExecutor::with(Precision::F32));
    let err = f64_model
        .run_backbone_on(Some(Arc::new(single)))
        .unwrap_err();
    assert!(err.to_string().contains("F32"), "{err}");
}

/// Training steps with the backbone on the (host-run) device, Adam and the
/// clipping there too, give the CPU backbone's steps: every loss part to 1e-8
/// (measured: 5.6e-10 for diffusion–sorption, whose solves may stop an
/// iteration apart, 2e-15 for Navier–Stokes), the gradient norm, the final
/// variables and Adam's moments to 1e-7 (moments 1e-6: the second is a
/// square), over a few Adam updates of the mixture-of-experts models (2-D
/// diffusion–sorption, 3-D Navier–Stokes).
#[test]
fn training_steps_with_the_backbone_on_the_device_match_the_cpu() {
    let ds = model_common::diffusion_sorption("moe", "");
    let ns = model_common::navier_stokes("moe");
    for scenario in [ds, ns] {
        let mut cpu_model = Model::new(&scenario).unwrap();
        let mut cpu_adam = Adam::new(AdamConfig::default());
        let cpu = run_steps(&mut cpu_model, &scenario, 0..4, &mut cpu_adam);
        let (mut on_device, exec) = on_host_device(Model::new(&scenario).unwrap());
        let mut adam = Adam::new(AdamConfig::default());
        let dev = run_steps(&mut on_device, &scenario, 0..4, &mut adam);
        let trained = tessera_solver::named_vars(&on_device).unwrap().len();
        assert_eq!(
            exec.launched(Kernel::Adam),
            4 * trained,
            "{}: Adam ran on the device, one launch per variable and step",
            scenario.name
        );
        assert_same_steps(&scenario.name, &cpu, &dev, (1e-8, 1e-7));
        // Looser than the losses: Adam divides each gradient entry by its own
        // running size, so an entry whose gradient is round-off moves by a
        // learning-rate-sized step in a direction set by that round-off.
        assert_close(
            &format!("{}: variables after training", scenario.name),
            &var_values(&on_device),
            &var_values(&cpu_model),
            1e-7,
        );
        // Each moment over all variables (some variables' gradients are
        // round-off, e.g. Navier–Stokes's output bias, whose mean is removed).
        let moments = |adam: &Adam, which: &str| -> Vec<f64> {
            adam.state()
                .unwrap()
                .into_iter()
                .filter(|(name, _)| name.starts_with(which))
                .flat_map(|(_, t)| t.flatten_all().unwrap().to_vec1::<f64>().unwrap())
                .collect()
        };
        for which in ["adam/m/", "adam/v/"] {
            assert_close(
                &format!("{}: {which}", scenario.name),
                &moments(&adam, which),
                &moments(&cpu_adam, which),
                1e-6,
            );
        }
    }
}

/// The device keeps the parameters its Adam update leaves there: the first
/// pass uploads them and no later step does (Adam's two moments go up once),
/// nor a forward pass outside training; a variable changed on the host
/// between steps is uploaded again, and the run goes on as the CPU's with
/// the same change.
#[test]
fn the_device_keeps_the_updated_parameters_until_a_variable_changes_on_the_host() {
    let scenario = model_common::diffusion_sorption("moe", "");
    let mut cpu = Model::new(&scenario).unwrap();
    let (mut dev, exec) = on_host_device(Model::new(&scenario).unwrap());
    let p: usize = tessera_solver::named_vars(&cpu)
        .unwrap()
        .values()
        .map(|v| v.elem_count())
        .sum();
    let (mut cpu_adam, mut dev_adam) = (
        Adam::new(AdamConfig::default()),
        Adam::new(AdamConfig::default()),
    );
    let mut cpu_steps = run_steps(&mut cpu, &scenario, 0..3, &mut cpu_adam);
    let mut dev_steps = run_steps(&mut dev, &scenario, 0..3, &mut dev_adam);
    assert_eq!(
        exec.uploads_of(p),
        3,
        "the parameters at the first pass, Adam's moments at the first update"
    );
    // One forward pass, one backward pass and one update per step, each
    // part timed in its own kind of call.
    let times = {
        use tessera_solver::Trainable;
        dev.gradient_slot().unwrap().network().take_times()
    };
    let calls = [times.forward, times.backward, times.update].map(|t| t.calls);
    assert_eq!(calls, [3, 3, 3], "forward, backward, update calls");
    for (part, seconds) in [
        ("parameters' check", times.forward.pack_s),
        ("forward kernels", times.forward.kernel_s),
        ("backward kernels", times.backward.kernel_s),
        ("Adam", times.update.kernel_s),
        ("setting the variables", times.update.pack_s),
    ] {
        assert!(seconds > 0.0, "{part}: {seconds}");
    }
    let ics = tessera_solver::sample_ics(&scenario, 2, 7).unwrap();
    let basis = |m: &Model| -> Vec<f64> {
        m.backbone(&ics)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    assert_close("basis after training", &basis(&dev), &basis(&cpu), 1e-7);
    assert_eq!(exec.uploads_of(p), 3, "a forward pass reads the kept ones");
    for model in [&cpu, &dev] {
        let vars = tessera_solver::named_vars(model).unwrap();
        let (_, var) = vars
            .iter()
            .find(|(name, _)| name.ends_with("head.fc2.bias"))
            .expect("the output layer's bias");
        let mut values: Vec<f64> = var.as_tensor().to_vec1().unwrap();
        values[0] += 0.25;
        var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap())
            .unwrap();
    }
    cpu_steps.extend(run_steps(&mut cpu, &scenario, 3..5, &mut cpu_adam));
    dev_steps.extend(run_steps(&mut dev, &scenario, 3..5, &mut dev_adam));
    assert_same_steps(
        "a variable set between steps",
        &cpu_steps,
        &dev_steps,
        (1e-8, 1e-7),
    );
    assert_eq!(exec.uploads_of(p), 4, "the changed parameters, once");
}

/// Forward passes of one model on the device from rayon tasks at once (as
/// several threads may predict with one model), all reading the kept
/// parameters, give each the sequential pass's bits, and all finish (a
/// watchdog fails the test rather than letting a deadlock hang it).
#[test]
fn concurrent_forward_passes_on_the_device_neither_block_nor_differ() {
    use rayon::prelude::*;
    let scenario = model_common::diffusion_sorption("moe", "");
    let (model, _) = on_host_device(Model::new(&scenario).unwrap());
    let ics = tessera_solver::sample_ics(&scenario, 1, 3).unwrap();
    let pass = move |model: &Model| -> Vec<f64> {
        let basis = model.backbone(&ics).unwrap();
        basis.flatten_all().unwrap().to_vec1().unwrap()
    };
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let alone = pass(&model);
        let passes: Vec<Vec<f64>> = (0..8).into_par_iter().map(|_| pass(&model)).collect();
        sender.send((alone, passes)).unwrap();
    });
    let (alone, passes) = receiver
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the passes finish (a deadlock otherwise)");
    for pass in &passes {
        assert_same_bits("a concurrent pass", pass, &alone);
    }
}

/// `a` and `b` hold the same bits (the message counts the values that differ).
fn assert_same_bits(what: &str, a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let differ = a
        .iter()
        .zip(b)
        .filter(|(x, y)| x.to_bits() != y.to_bits())
        .count();
    assert_eq!(differ, 0, "{what}: {differ} of {} values differ", a.len());
}

/// The largest difference between `a` and `b`, at most `tol` of `b`'s
/// largest entry.
fn assert_close(what: &str, a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f64, f64::max);
    println!(
        "{what}: worst difference {:.1e} of the largest entry",
        worst / scale
    );
    assert!(
        worst <= tol * scale,
        "{what}: differ by {worst:e} of {scale:e}"
    );
}

/// Adam's moments read back from the device (a checkpoint's) and restored
/// continue the run bit for bit: three updates, a save and a restore, two
/// more, against five in one go.
#[test]
fn adam_moments_on_the_device_resume_bit_for_bit() {
    let scenario = model_common::diffusion_sorption("moe", "");
    let (mut once, _) = on_host_device(Model::new(&scenario).unwrap());
    let mut adam = Adam::new(AdamConfig::default());
    let straight = run_steps(&mut once, &scenario, 0..5, &mut adam);
    let (mut resumed, _) = on_host_device(Model::new(&scenario).unwrap());
    let mut adam = Adam::new(AdamConfig::default());
    let mut records = run_steps(&mut resumed, &scenario, 0..3, &mut adam);
    let mut adam =
        Adam::restore(AdamConfig::default(), adam.count(), adam.state().unwrap()).unwrap();
    records.extend(run_steps(&mut resumed, &scenario, 3..5, &mut adam));
    let loss_bits = |r: &[tessera_solver::StepRecord]| -> Vec<u64> {
        r.iter().map(|r| r.loss.to_bits()).collect()
    };
    assert_eq!(loss_bits(&records), loss_bits(&straight));
    assert_same_bits("variables", &var_values(&resumed), &var_values(&once));
}

/// Frozen groups keep their values bit for bit with Adam on the device,
/// and the others train as on the CPU.
#[test]
fn frozen_groups_stay_put_with_adam_on_the_device() {
    let mut scenario = model_common::diffusion_sorption("moe", "");
    scenario.training.freeze = vec!["lift".into(), "head.fc2".into()];
    let all_values = |m: &Model| -> std::collections::BTreeMap<String, Vec<u64>> {
        use tessera_solver::Trainable;
        m.vars()
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(name, var)| {
                let v: Vec<f64> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
                (name.clone(), v.iter().map(|x| x.to_bits()).collect())
            })
            .collect()
    };
    let (cpu, _) = train_steps(Model::new(&scenario).unwrap(), &scenario, 3);
    let (mut model, exec) = on_host_device(Model::new(&scenario).unwrap());
    let before = all_values(&model);
    let mut adam = Adam::new(AdamConfig::default());
    let dev = run_steps(&mut model, &scenario, 0..3, &mut adam);
    assert!(exec.launched(Kernel::Adam) > 0, "Adam ran on the device");
    assert_same_steps("frozen groups", &cpu, &dev, (1e-8, 1e-7));
    let after = all_values(&model);
    for (name, values) in &before {
        let frozen = name.starts_with("lift.") || name.starts_with("head.fc2.");
        assert_eq!(after[name] == *values, frozen, "{name}: frozen {frozen}");
    }
}

/// With `parallel.reproducible` each sample's gradient comes back to the
/// host (they are added in sample order there), so Adam stays on the host,
/// and the steps are still the CPU's.
#[test]
fn the_reproducible_step_keeps_adam_on_the_host() {
    let mut scenario = model_common::diffusion_sorption("moe", "");
    scenario.parallel.reproducible = true;
    let (cpu, _) = train_steps(Model::new(&scenario).unwrap(), &scenario, 2);
    let (model, exec) = on_host_device(Model::new(&scenario).unwrap());
    let (dev, _) = train_steps(model, &scenario, 2);
    assert_eq!(exec.launched(Kernel::Adam), 0);
    assert!(
        exec.launched(Kernel::Gemm) > 0,
        "the backbone ran on the device"
    );
    assert_same_steps("reproducible", &cpu, &dev, (1e-8, 1e-7));
}

/// Two data-parallel ranks (threads standing in for processes), each with
/// its backbone and Adam on its own device: the gradient is summed over the
/// ranks on the host, both ranks apply the same update bit for bit, and the
/// run follows the CPU's two-rank run.
#[test]
fn data_parallel_ranks_run_adam_on_their_devices() {
    use tessera_experts::comm::{Communicator, Threads};
    use tessera_solver::{DataShard, Layout};
    let scenario = model_common::diffusion_sorption("moe", "");
    let run = |device: bool| {
        Threads::run(2, |comm| {
            let shard = DataShard::new(
                comm as &dyn Communicator,
                Layout {
                    data: 2,
                    experts: 1,
                },
            );
            let model = Model::new(&scenario).unwrap();
            let (mut model, exec) = if device {
                let (model, exec) = on_host_device(model);
                (model, Some(exec))
            } else {
                (model, None)
            };
            let vars = tessera_solver::named_vars(&model).unwrap();
            let mut adam = Adam::new(AdamConfig::default());
            let records: Vec<_> = (0..3u64)
                .map(|k| {
                    let batch = tessera_solver::Batch {
                        ics: tessera_solver::sample_ics(&scenario, 2, 100 + k).unwrap(),
                        targets: None,
                        seed: k,
                    };
                    let update = tessera_solver::update_shard;
                    update(&mut model, &batch, &vars, &mut adam, 1e-3, 1.0, &shard).unwrap()
                })
                .collect();
            if let Some(exec) = exec {
                assert!(exec.launched(Kernel::Adam) > 0, "Adam ran on the device");
            }
            (records, var_values(&model))
        })
    };
    let cpu = run(false);
    let dev = run(true);
    assert_same_bits("the two ranks' variables", &dev[0].1, &dev[1].1);
    assert_same_steps("two data ranks", &cpu[0].0, &dev[0].0, (1e-8, 1e-7));
    assert_close("two data ranks: variables", &dev[0].1, &cpu[0].1, 1e-7);
}

/// On a GPU, 20 Adam steps of the tiny diffusion–sorption MoE model with
/// everything the device runs there — the backbone and, its PDE given as the
/// shipped TOML definition, the experts' solves and backward passes and the
/// PDE loss — against
/// the CPU's built-in model: every loss part to 1e-8, the gradient norm to
/// 1e-6 (skipped, saying why, without a CUDA driver).
#[test]
fn twenty_training_steps_on_a_gpu_match_the_cpu() {
    use tessera_scenarios::Device;
    if !tessera_constraints::gpu::Gpu::driver_present() {
        println!("skipped: {}", GpuError::NoDriver);
        return;
    }
    let mut scenario = model_common::diffusion_sorption("moe", "");
    let (cpu, _) = train_steps(Model::new(&scenario).unwrap(), &scenario, 20);
    // The built-in PDE on a GPU: solved there through its restating definition.
    scenario.device = Device::Cuda(None);
    let model = Model::new(&scenario).unwrap();
    assert!(model.constraint().unwrap().layer().solves_on_gpu());
    assert!(model.pde_loss_on_gpu());
    let (gpu, _) = train_steps(model, &scenario, 20);
    assert_same_steps("diffusion-sorption on a GPU", &cpu, &gpu, (1e-8, 1e-6));
    assert_ne!(
        cpu[0].loss, cpu[19].loss,
        "the comparison spans real training"
    );
}

/// On a GPU, 20 Adam steps of the tiny diffusion–sorption model trained with
/// the soft method: the backbone there, and the PDE loss with the kernels of
/// the shipped definition that restates the PDE, against the CPU's built-in
/// model: every loss part to 1e-8, the gradient norm to 1e-6 (skipped,
/// saying why, without a CUDA driver).
#[test]
fn twenty_soft_constraint_steps_on_a_gpu_match_the_cpu() {
    use tessera_scenarios::Device;
    if !tessera_constraints::gpu::Gpu::driver_present() {
        println!("skipped: {}", GpuError::NoDriver);
        return;
    }
    let mut scenario = model_common::diffusion_sorption("soft", "");
    let (cpu, _) = train_steps(Model::new(&scenario).unwrap(), &scenario, 20);
    scenario.device = Device::Cuda(None);
    let model = Model::new(&scenario).unwrap();
    assert!(model.constraint().is_none());
    assert!(model.pde_loss_on_gpu());
    let (gpu, _) = train_steps(model, &scenario, 20);
    assert_same_steps("the soft method on a GPU", &cpu, &gpu, (1e-8, 1e-6));
    assert_ne!(
        cpu[0].loss, cpu[19].loss,
        "the comparison spans real training"
    );
}

/// Every loss part of two runs' steps to `tol.0` relative, the gradient norm
/// to `tol.1`. The gradient is looser: it passes through the experts'
/// solutions, which two runs whose bases differ by round-off reach to the
/// solver's tolerance, not to round-off (they may stop an iteration apart).
fn assert_same_steps(
    what: &str,
    reference: &[tessera_solver::StepRecord],
    other: &[tessera_solver::StepRecord],
    tol: (f64, f64),
) {
    assert_eq!(reference.len(), other.len());
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(1e-300);
    let (mut losses, mut gradient) = (0.0f64, 0.0f64);
    for (c, d) in reference.iter().zip(other) {
        losses = [(d.loss, c.loss), (d.pde, c.pde), (d.ic, c.ic), (d.bc, c.bc)]
            .iter()
            .fold(losses, |m, &(a, b)| m.max(rel(a, b)));
        gradient = gradient.max(rel(d.grad_norm, c.grad_norm));
    }
    println!(
        "{what}: {} steps, largest relative difference of a loss part {losses:.1e}, \
         of the gradient norm {gradient:.1e}",
        reference.len()
    );
    for (c, d) in reference.iter().zip(other) {
        for (part, a, b, tol) in [
            ("loss", d.loss, c.loss, tol.0),
            ("pde", d.pde, c.pde, tol.0),
            ("ic", d.ic, c.ic, tol.0),
            ("bc", d.bc, c.bc, tol.0),
            ("grad_norm", d.grad_norm, c.grad_norm, tol.1),
        ] {
            assert!(
                rel(a, b) <= tol,
                "{what}, step {}: {part} {a} vs {b}",
                c.step
            );
        }
    }
}

/// `steps` Adam updates of `model` (learning rate 1e-3, clip 1) on batches of
/// two of `scenario`'s initial conditions drawn from the step number: the
/// step records and the variables afterwards.
fn train_steps(
    mut model: Model,
    scenario: &tessera_scenarios::Scenario,
    steps: usize,
) -> (Vec<tessera_solver::StepRecord>, Vec<f64>) {
    let mut adam = Adam::new(AdamConfig::default());
    let records = run_steps(&mut model, scenario, 0..steps as u64, &mut adam);
    (records, var_values(&model))
}

/// Updates number `steps` of [`train_steps`] with `adam`.
fn run_steps(
    model: &mut Model,
    scenario: &tessera_scenarios::Scenario,
    steps: std::ops::Range<u64>,
    adam: &mut Adam,
) -> Vec<tessera_solver::StepRecord> {
    use tessera_solver::{Batch, named_vars, sample_ics, update};
    let vars = named_vars(&*model).unwrap();
    steps
        .map(|k| {
            let batch = Batch {
                ics: sample_ics(scenario, 2, 100 + k).unwrap(),
                targets: None,
                seed: k,
            };
            update(model, &batch, &vars, adam, 1e-3, 1.0).unwrap()
        })
        .collect()
}

/// A prediction differentiated in its initial conditions with the backbone
/// on the (host-run) device runs the backbone's backward pass there and
/// gives the CPU backbone's gradient, to 1e-8 of its largest entry
/// (diffusion–sorption with the logarithm's feature channel, and 3-D
/// Navier–Stokes, two samples each).
#[test]
fn initial_condition_gradients_on_the_device_match_the_cpu() {
    let mut ds = model_common::diffusion_sorption("moe", "");
    ds.set("model.ic_features=\"value-and-log\"").unwrap();
    for scenario in [ds, model_common::navier_stokes("moe")] {
        let ics = tessera_solver::sample_ics(&scenario, 2, 7).unwrap();
        let gradient = |model: &Model| {
            let (inference, kept) = model.infer_kept(&ics, 3).unwrap();
            let n = inference.fields.concat().len();
            let fields_bar = pseudo(n, 0.9);
            (
                inference.fields.concat(),
                model.infer_backward(&kept, &fields_bar).unwrap(),
            )
        };
        let (cpu_fields, cpu) = gradient(&Model::new(&scenario).unwrap());
        let (on_device, exec) = on_host_device(Model::new(&scenario).unwrap());
        let (fields, dev) = gradient(&on_device);
        let products = exec.launched(Kernel::Gemm);
        let (inference, kept) = on_device.infer_kept(&ics, 3).unwrap();
        let forward_products = exec.launched(Kernel::Gemm) - products;
        let fields_bar = pseudo(inference.fields.concat().len(), 0.9);
        on_device.infer_backward(&kept, &fields_bar).unwrap();
        assert!(
            exec.launched(Kernel::Gemm) - products > 2 * forward_products,
            "{}: the backward pass's products ran on the device",
            scenario.name
        );
        assert_close(
            &format!("{}: fields", scenario.name),
            &fields,
            &cpu_fields,
            1e-10,
        );
        assert_close(&format!("{}: ic gradient", scenario.name), &dev, &cpu, 1e-8);
    }
}

/// Every trained variable's values, in name order.
fn var_values(model: &Model) -> Vec<f64> {
    tessera_solver::named_vars(model)
        .unwrap()
        .values()
        .flat_map(|v| {
            v.as_tensor()
                .to_dtype(DType::F64)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap()
        })
        .collect()
}

/// `model` with its backbone on a (host-run) float64 device, and that
/// device's executor (to count its launches).
fn on_host_device(mut model: Model) -> (Model, HostExecutor) {
    let exec = HostExecutor::new();
    let backbone = DeviceBackbone::new(exec.clone());
    model.run_backbone_on(Some(Arc::new(backbone))).unwrap();
    (model, exec)
}
