//! Adam, clipping, schedules and the per-step draws against hand derivations
//! and an independent scalar implementation.

use std::collections::BTreeMap;

use super::batches::{eval_seed, step_draw};
use super::clip::{clip_scale, global_norm};
use super::deadline::Deadline;
use super::schedule::learning_rate;
use super::{Adam, AdamConfig};
use crate::SolverError;
use candle_core::{Device, Tensor, Var};
use tessera_scenarios::config::{Schedule, TrainingConfig};

fn var(values: &[f64]) -> Var {
    Var::from_tensor(&Tensor::new(values, &Device::Cpu).unwrap()).unwrap()
}

fn values(var: &Var) -> Vec<f64> {
    var.as_tensor().to_vec1().unwrap()
}

fn grads(pairs: &[(&str, &[f64])]) -> BTreeMap<String, Tensor> {
    pairs
        .iter()
        .map(|(n, g)| (n.to_string(), Tensor::new(*g, &Device::Cpu).unwrap()))
        .collect()
}

/// Adam written out on plain scalars (Kingma & Ba, Algorithm 1, with ε outside
/// the square root as in optax): the oracle for the tensor implementation.
struct ScalarAdam {
    m: f64,
    v: f64,
    t: i32,
}

impl ScalarAdam {
    fn step(&mut self, x: f64, g: f64, lr: f64) -> f64 {
        let c = AdamConfig::default();
        self.t += 1;
        self.m = c.beta1 * self.m + (1.0 - c.beta1) * g;
        self.v = c.beta2 * self.v + (1.0 - c.beta2) * g * g;
        let m_hat = self.m / (1.0 - c.beta1.powi(self.t));
        let v_hat = self.v / (1.0 - c.beta2.powi(self.t));
        x - lr * m_hat / (v_hat.sqrt() + c.eps)
    }
}

#[test]
fn first_adam_step_moves_each_weight_by_lr_times_the_gradient_sign() {
    // Hand derivation: m1 = (1-β1) g, v1 = (1-β2) g², so m̂ = g, v̂ = g² and the
    // update is lr · g / (|g| + ε).
    let x = var(&[1.0, -2.0, 0.5]);
    let vars = BTreeMap::from([("x".to_string(), x.clone())]);
    let g = [0.3, -4.0, 1e-3];
    let mut adam = Adam::new(AdamConfig::default());
    adam.step(&vars, &grads(&[("x", &g)]), 0.01).unwrap();
    let eps = AdamConfig::default().eps;
    let expected: Vec<f64> = [1.0, -2.0, 0.5]
        .iter()
        .zip(g)
        .map(|(x, g)| x - 0.01 * g / (g.abs() + eps))
        .collect();
    for (got, want) in values(&x).iter().zip(&expected) {
        assert!((got - want).abs() < 1e-15, "{got} vs {want}");
    }
}

#[test]
fn adam_follows_the_scalar_recurrence_on_a_quadratic() {
    // f(x) = ½ a (x − c)², gradient a (x − c), with a varying learning rate and
    // a second variable that never gets a gradient (its moments decay to zero
    // updates: it must not move).
    let (a, c) = (3.0, 0.7);
    let x = var(&[2.0]);
    let idle = var(&[5.0]);
    let vars = BTreeMap::from([
        ("x".to_string(), x.clone()),
        ("idle".to_string(), idle.clone()),
    ]);
    let mut adam = Adam::new(AdamConfig::default());
    let mut oracle = ScalarAdam {
        m: 0.0,
        v: 0.0,
        t: 0,
    };
    let mut expected = 2.0;
    for step in 0..50 {
        let lr = 0.05 / (1.0 + step as f64);
        let g = a * (values(&x)[0] - c);
        expected = oracle.step(expected, a * (expected - c), lr);
        adam.step(&vars, &grads(&[("x", &[g])]), lr).unwrap();
        let got = values(&x)[0];
        assert!(
            (got - expected).abs() < 1e-12,
            "step {step}: {got} vs {expected}"
        );
    }
    assert_eq!(values(&idle), vec![5.0]);
    assert_eq!(adam.count(), 50);
}

/// Adam as a chain of whole-tensor candle operations, the form the one-pass
/// update replaced: the oracle for its bits.
fn tensor_adam_step(
    p: &Tensor,
    g: &Tensor,
    (m, v): (&Tensor, &Tensor),
    t: i32,
    lr: f64,
) -> (Tensor, Tensor, Tensor) {
    let AdamConfig { beta1, beta2, eps } = AdamConfig::default();
    let (c1, c2) = (1.0 - beta1.powi(t), 1.0 - beta2.powi(t));
    let m = (m.affine(beta1, 0.0).unwrap() + g.affine(1.0 - beta1, 0.0).unwrap()).unwrap();
    let v = (v.affine(beta2, 0.0).unwrap() + g.sqr().unwrap().affine(1.0 - beta2, 0.0).unwrap())
        .unwrap();
    let m_hat = m.affine(1.0 / c1, 0.0).unwrap();
    let denom = v
        .affine(1.0 / c2, 0.0)
        .unwrap()
        .sqrt()
        .unwrap()
        .affine(1.0, eps)
        .unwrap();
    let update = (m_hat / denom).unwrap().affine(lr, 0.0).unwrap();
    ((p - update).unwrap(), m, v)
}

#[test]
fn one_pass_adam_gives_the_bits_of_the_tensor_form_in_f32_and_f64() {
    use candle_core::DType;
    // Several parallel chunks, a ragged last one, and a variable without a
    // gradient; gradients spanning many magnitudes, zeros and both signs.
    let n = 40_000;
    for dtype in [DType::F64, DType::F32] {
        let x0: Vec<f64> = (0..n).map(|i| ((i as f64) * 0.37).sin() * 3.0).collect();
        let make = |v: &[f64]| {
            Tensor::new(v, &Device::Cpu)
                .unwrap()
                .to_dtype(dtype)
                .unwrap()
        };
        let x = Var::from_tensor(&make(&x0)).unwrap();
        let idle = Var::from_tensor(&make(&[1.5, -2.5])).unwrap();
        let vars = BTreeMap::from([
            ("x".to_string(), x.clone()),
            ("idle".to_string(), idle.clone()),
        ]);
        let mut adam = Adam::new(AdamConfig::default());
        let (mut p, mut m, mut v) = (make(&x0), make(&vec![0.0; n]), make(&vec![0.0; n]));
        for step in 1..=4 {
            let g: Vec<f64> = (0..n)
                .map(|i| match i % 7 {
                    0 => 0.0,
                    k => ((i * step) as f64).cos() * 10f64.powi(k as i32 - 4),
                })
                .collect();
            let g = make(&g);
            let lr = 1e-3 * step as f64;
            // Clipped on even steps: the oracle scales the gradient first,
            // as clipping by global norm does on tensors.
            let clip = (step % 2 == 0).then_some(0.37);
            let grads = BTreeMap::from([("x".to_string(), g.clone())]);
            adam.step_clipped(&vars, &grads, lr, clip).unwrap();
            let g = match clip {
                Some(s) => g.affine(s, 0.0).unwrap(),
                None => g,
            };
            (p, m, v) = tensor_adam_step(&p, &g, (&m, &v), step as i32, lr);
            let bits = |t: &Tensor| -> Vec<u64> {
                let t = t.to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
                t.iter().map(|x| x.to_bits()).collect()
            };
            assert_eq!(bits(x.as_tensor()), bits(&p), "{dtype:?} step {step}");
            let state: BTreeMap<String, Tensor> = adam.state().unwrap().into_iter().collect();
            assert_eq!(bits(&state["adam/m/x"]), bits(&m), "{dtype:?} step {step}");
            assert_eq!(bits(&state["adam/v/x"]), bits(&v), "{dtype:?} step {step}");
            assert_eq!(x.as_tensor().dtype(), dtype);
        }
        assert_eq!(
            idle.as_tensor()
                .to_dtype(DType::F64)
                .unwrap()
                .to_vec1::<f64>()
                .unwrap(),
            vec![1.5, -2.5]
        );
    }
}

#[test]
fn a_gradient_or_moment_of_another_size_is_an_error() {
    let x = var(&[1.0, 2.0]);
    let vars = BTreeMap::from([("x".to_string(), x.clone())]);
    let mut adam = Adam::new(AdamConfig::default());
    let err = adam
        .step(&vars, &grads(&[("x", &[1.0, 2.0, 3.0])]), 0.1)
        .unwrap_err();
    assert!(matches!(err, SolverError::ShapeMismatch { .. }), "{err}");
    assert_eq!(adam.count(), 0, "a rejected step is not counted");
    let short = Tensor::new(&[0.0f64], &Device::Cpu).unwrap();
    let mut adam = Adam::restore(
        AdamConfig::default(),
        1,
        [
            ("adam/m/x".to_string(), short.clone()),
            ("adam/v/x".to_string(), short),
        ],
    )
    .unwrap();
    let err = adam
        .step(&vars, &grads(&[("x", &[1.0, 2.0])]), 0.1)
        .unwrap_err();
    assert!(matches!(err, SolverError::ShapeMismatch { .. }), "{err}");
    assert_eq!(values(&x), vec![1.0, 2.0], "nothing moves on an error");
    assert_eq!(
        (adam.count(), adam.state().unwrap().len()),
        (1, 2),
        "the state is kept"
    );
}

#[test]
fn restored_adam_continues_identically() {
    let run = |split: Option<usize>| -> Vec<f64> {
        let x = var(&[1.0, 2.0]);
        let vars = BTreeMap::from([("x".to_string(), x.clone())]);
        let mut adam = Adam::new(AdamConfig::default());
        for step in 0..6 {
            if Some(step) == split {
                adam = Adam::restore(AdamConfig::default(), adam.count(), adam.state().unwrap())
                    .unwrap();
            }
            let v = values(&x);
            let g = [v[0] * v[0] - 0.5, (v[1] - 1.0).sin()];
            adam.step(&vars, &grads(&[("x", &g)]), 0.1).unwrap();
        }
        values(&x)
    };
    assert_eq!(run(None), run(Some(3)));
}

/// The optimiser updates its moments in place: the state handed out for a
/// checkpoint must not move with later steps.
#[test]
fn saved_state_is_a_snapshot() {
    let x = var(&[1.0, 2.0]);
    let vars = BTreeMap::from([("x".to_string(), x.clone())]);
    let mut adam = Adam::new(AdamConfig::default());
    adam.step(&vars, &grads(&[("x", &[0.5, -1.0])]), 0.1)
        .unwrap();
    let saved = adam.state().unwrap();
    let before: Vec<Vec<f64>> = saved.iter().map(|(_, t)| t.to_vec1().unwrap()).collect();
    adam.step(&vars, &grads(&[("x", &[3.0, 4.0])]), 0.1)
        .unwrap();
    let after: Vec<Vec<f64>> = saved.iter().map(|(_, t)| t.to_vec1().unwrap()).collect();
    assert_eq!(before, after);
    let now: Vec<Vec<f64>> = adam
        .state()
        .unwrap()
        .iter()
        .map(|(_, t)| t.to_vec1().unwrap())
        .collect();
    assert_ne!(now, before, "the optimiser's own moments moved");
}

#[test]
fn unpaired_moments_are_rejected() {
    let t = Tensor::new(&[1.0f64], &Device::Cpu).unwrap();
    let err = Adam::restore(
        AdamConfig::default(),
        1,
        [("adam/m/x".to_string(), t.clone())],
    )
    .unwrap_err();
    assert!(matches!(err, SolverError::InvalidConfig { .. }), "{err}");
    let err = Adam::restore(AdamConfig::default(), 1, [("other".to_string(), t)]).unwrap_err();
    assert!(matches!(err, SolverError::InvalidConfig { .. }), "{err}");
}

#[test]
fn clipping_scales_to_the_limit_only_above_it() {
    // Global norm of {[3], [4]} is 5.
    let g = grads(&[("a", &[3.0]), ("b", &[4.0])]);
    let norm = global_norm(&g).unwrap();
    assert_eq!(norm, 5.0);
    assert_eq!(clip_scale(norm, 1.0, 2).unwrap(), Some(0.2));
    for limit in [5.0, 10.0, 0.0] {
        assert_eq!(clip_scale(norm, limit, 2).unwrap(), None, "limit {limit}");
    }
    let nan = global_norm(&grads(&[("a", &[f64::NAN])])).unwrap();
    let err = clip_scale(nan, 1.0, 1).unwrap_err();
    assert!(matches!(err, SolverError::NonFinite { .. }), "{err}");
}

/// The norm is the tensor form's, bit for bit: each variable's widened
/// squares summed (`sqr().sum_all()`), the sums added in name order.
#[test]
fn global_norm_gives_the_bits_of_the_tensor_form() {
    use candle_core::DType;
    let values = |n: usize, seed: f64| -> Vec<f64> {
        (0..n)
            .map(|i| ((i as f64) * seed).sin() * 10f64.powi((i % 9) as i32 - 4))
            .collect()
    };
    let mut g = grads(&[("b", &values(70_001, 0.37)), ("a", &values(3, 1.1))]);
    let f32_grad = Tensor::new(values(5_000, 0.77).as_slice(), &Device::Cpu)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    g.insert("c".into(), f32_grad);
    let tensor_form = g
        .values()
        .map(|t| {
            t.to_dtype(DType::F64)
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        })
        .fold(0.0, |total: f64, s| total + s)
        .sqrt();
    assert_eq!(global_norm(&g).unwrap().to_bits(), tensor_form.to_bits());
}

#[test]
fn staircase_halves_every_period_down_to_the_floor() {
    // The paper's diffusion–sorption schedule (the defaults).
    let t = TrainingConfig::default();
    for (step, lr) in [
        (0, 1e-3),
        (799, 1e-3),
        (800, 5e-4),
        (1600, 2.5e-4),
        (2400, 1.25e-4),
        (3200, 1e-4),
        (3999, 1e-4),
    ] {
        let got = learning_rate(&t, step);
        assert!((got - lr).abs() < 1e-18, "step {step}: {got} vs {lr}");
    }
}

#[test]
fn exponential_decays_geometrically_to_the_final_factor() {
    let t = TrainingConfig {
        schedule: Schedule::Exponential,
        steps: 1000,
        final_factor: 1e-3,
        ..TrainingConfig::default()
    };
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b;
    assert!(close(learning_rate(&t, 0), 1e-3));
    assert!(close(learning_rate(&t, 1000), 1e-6));
    // Halfway: the geometric mean of the two ends.
    assert!(close(learning_rate(&t, 500), (1e-3f64 * 1e-6).sqrt()));
    let constant = TrainingConfig {
        schedule: Schedule::Constant,
        ..TrainingConfig::default()
    };
    assert_eq!(learning_rate(&constant, 3999), constant.lr);
}

#[test]
fn step_draws_are_reproducible_distinct_and_vary_by_step() {
    let a = step_draw(3, 17, 64, 6);
    assert_eq!(a, step_draw(3, 17, 64, 6));
    let mut sorted = a.indices.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 6);
    assert!(sorted.iter().all(|&i| i < 64));
    assert_ne!(a, step_draw(3, 18, 64, 6));
    assert_ne!(a, step_draw(4, 17, 64, 6));
    // Over many steps every sample is drawn.
    let mut seen = [false; 64];
    for step in 0..200 {
        for i in step_draw(3, step, 64, 6).indices {
            seen[i] = true;
        }
    }
    assert!(seen.iter().all(|&s| s));
    assert_eq!(eval_seed(3), eval_seed(3));
    assert_ne!(eval_seed(3), eval_seed(4));
}

#[test]
fn a_deadline_stops_when_a_step_and_a_save_no_longer_fit() {
    let now = std::time::Instant::now();
    let secs = std::time::Duration::from_secs;
    let mut deadline = Deadline::new(now + secs(100));
    // Nothing measured yet: nothing to wait for.
    assert!(!deadline.next_step_overruns(now));
    deadline.step_took(secs(30));
    // Before a save is measured it is taken to cost a step: 30 + 30 ≤ 100.
    assert!(!deadline.next_step_overruns(now));
    assert!(!deadline.next_step_overruns(now + secs(40)));
    assert!(deadline.next_step_overruns(now + secs(41)));
    // A measured save replaces that guess; a faster step leaves the slowest.
    deadline.save_took(secs(5));
    deadline.step_took(secs(10));
    assert!(!deadline.next_step_overruns(now + secs(65)));
    assert!(deadline.next_step_overruns(now + secs(66)));
    // Past the deadline it always stops.
    assert!(deadline.next_step_overruns(now + secs(200)));
}
