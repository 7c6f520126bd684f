//! The whole-model gradient check: autograd gradients of the training loss with
//! respect to a random sample of backbone parameters, against finite
//! differences, for the soft, hard and mixture-of-experts models of a scenario;
//! and the prediction's gradient in its initial conditions (what data
//! assimilation with a trained model differentiates) along random directions.
//!
//! Every method is checked on an f64 copy of the scenario with tight
//! Levenberg–Marquardt tolerances (the implicit-function-theorem backward pass
//! is exact only at a stationary point), starting each solve from the same
//! weights (a warm start would move the start between evaluations), and without
//! the data loss (the check has initial conditions, no trajectories).
//!
//! Finite differences use the fourth-order central stencil
//! `(8(L(θ+h) − L(θ−h)) − (L(θ+2h) − L(θ−2h))) / 12h` on a ladder of steps
//! `h, h/√10, h/10, h/√1000`. The loss carries round-off of about `1e-11`
//! relative (the converged weights `ω*` are only that exact), which a small step
//! amplifies, while a large step suffers truncation where the loss curves
//! strongly; so the estimate is the mean of the two adjacent rungs that agree
//! best, a choice made from the finite differences alone. The relative
//! error of one entry is `|g − g_fd| / max(|g|, |g_fd|, 1e-6·max|∇L|)`: the floor
//! (a millionth of the largest gradient entry of the model) keeps entries whose
//! gradient is numerically zero from dividing noise by noise.
//!
//! **Stationarity.** The backward pass differentiates the stationarity
//! condition `Jᵀr = 0` of each solve, so its gradient is that of the forward
//! map only where the solve stopped at a stationary point: a solve that stops
//! with `‖Jᵀr‖` well above its round-off floor (about `1e-12` on the shipped
//! scenarios) gives an autograd gradient off by first order in `‖Jᵀr‖`, and a
//! forward map that jumps where the stopping point moves, which the finite
//! differences see as noise that grows like `1/h`. The report therefore gives,
//! per method, the largest `‖Jᵀr‖` of the solves at the unperturbed
//! parameters, so that a large error can be told apart from a
//! finite-difference artefact. (Measured: the `hard` method of
//! `scenarios/burgers-small.toml` had a solve that Levenberg–Marquardt declared
//! converged at `‖Jᵀr‖ ≈ 7e-7` — the cost of about 890 no longer resolved the
//! predicted decrease of 3e-14, and the Gauss–Newton step raised `‖Jᵀr‖` on this
//! nonzero-residual problem — and the check reported 7.8e-6 whatever the
//! tolerance; with the exact-Hessian Newton step of
//! [`tessera_constraints::LevenbergMarquardt`] it reaches 5e-13, and 1e-10.)

use std::f64::consts::PI;

use candle_core::{Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tessera_scenarios::Scenario;
use tessera_scenarios::config::{CustomParams, Dtype, InitWeights, Method, PdeConfig};
use tessera_scenarios::mol::InitialFamily;

use super::Model;
use crate::SolverError;
use crate::trainable::{Batch, Trainable};

/// Rungs of the finite-difference step ladder.
const LADDER: usize = 4;

/// Settings of [`gradcheck`].
#[derive(Debug, Clone, PartialEq)]
pub struct GradcheckOptions {
    /// Methods checked.
    pub methods: Vec<Method>,
    /// Parameter entries checked per method.
    pub checks: usize,
    /// Largest finite-difference step (absolute, in parameter units).
    pub step: f64,
    /// Levenberg–Marquardt `rtol = atol` for the check.
    pub tolerance: f64,
    /// Levenberg–Marquardt iteration limit for the check.
    pub max_iters: usize,
    /// Initial conditions per batch.
    pub batch: usize,
    /// Seed of the initial conditions, the sampled entries and the points.
    pub seed: u64,
    /// Random directions along which the prediction's gradient in the
    /// initial conditions is checked, per method (0: not checked).
    pub ic_directions: usize,
    /// Largest finite-difference step along those directions, relative to
    /// the largest initial value: the predictions curve more in the initial
    /// conditions than the loss in one parameter (Burgers' `moe` read 8e-3 with
    /// steps from 1e-2, truncation alone, and 4e-9 from 1e-4).
    pub ic_step: f64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        Self {
            methods: vec![Method::Soft, Method::Hard, Method::Moe],
            checks: 6,
            step: 1e-2,
            tolerance: 1e-13,
            max_iters: 500,
            batch: 2,
            seed: 0,
            ic_directions: 2,
            ic_step: 1e-4,
        }
    }
}

/// One checked parameter entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntryCheck {
    /// `soft`, `hard` or `moe`.
    pub method: String,
    /// Variable name (`layers.2.spectral.re`, …).
    pub name: String,
    /// Flat index into the variable.
    pub index: usize,
    /// Autograd gradient.
    pub autograd: f64,
    /// Finite-difference gradient.
    pub finite_difference: f64,
    /// Relative error (see the module docs).
    pub rel_err: f64,
}

/// Summary of one method.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodCheck {
    /// `soft`, `hard` or `moe`.
    pub method: String,
    /// Loss at the unperturbed parameters.
    pub loss: f64,
    /// Largest relative error of the method's entries.
    pub max_rel_err: f64,
    /// Solves (over all evaluations) that did not converge.
    pub failed_solves: usize,
    /// The largest `‖Jᵀr‖` at which a solve stopped, at the unperturbed
    /// parameters (0 for the soft method; see the module docs).
    pub stationarity: f64,
    /// Largest relative error of the prediction's gradient in the initial
    /// conditions ([`Model::infer_backward`]) along the checked directions
    /// (0 when none are checked).
    pub ic_max_rel_err: f64,
}

/// The report of [`gradcheck`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GradcheckReport {
    /// The scenario's name.
    pub scenario: String,
    /// Largest relative error over all methods.
    pub max_rel_err: f64,
    /// Largest relative error of the prediction's gradient in the initial
    /// conditions over all methods.
    pub ic_max_rel_err: f64,
    /// Per method.
    pub methods: Vec<MethodCheck>,
    /// Every checked entry.
    pub checks: Vec<EntryCheck>,
}

/// The name a scenario file uses for `method`.
fn method_name(method: Method) -> &'static str {
    match method {
        Method::Soft => "soft",
        Method::Hard => "hard",
        Method::Moe => "moe",
    }
}

/// Smooth random initial conditions that suit the scenario's PDE:
/// diffusion–sorption a constant in `(0.02, 0.2)` (PDEBench's kind of IC, kept
/// away from zero because its IC rows divide by it); heat a sine series vanishing
/// at the ends; advection and Navier–Stokes a few low periodic modes (mean-free
/// for Navier–Stokes).
pub fn sample_ics(
    scenario: &Scenario,
    batch: usize,
    seed: u64,
) -> Result<Vec<Vec<f64>>, SolverError> {
    if let PdeConfig::Custom(params) = &scenario.pde {
        return custom_ics(scenario, params, batch, seed);
    }
    let grid = scenario.grid()?;
    let normalised: Vec<Vec<f64>> = grid.axes()[1..].iter().map(|a| a.normalised()).collect();
    let periodic: Vec<Vec<f64>> = grid.axes()[1..]
        .iter()
        .map(|a| {
            let (x0, len) = (a.coords()[0], a.length());
            a.coords().iter().map(|x| (x - x0) / len).collect()
        })
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ics = (0..batch)
        .map(|_| {
            let a: [f64; 3] = [
                rng.random_range(-1.0..1.0),
                rng.random_range(-1.0..1.0),
                rng.random_range(-1.0..1.0),
            ];
            match &scenario.pde {
                PdeConfig::DiffusionSorption(_) => {
                    vec![0.02 + 0.18 * rng.random::<f64>(); normalised[0].len()]
                }
                PdeConfig::Heat(_) => normalised[0]
                    .iter()
                    .map(|x| a[0] * (PI * x).sin() + 0.5 * a[1] * (2.0 * PI * x).sin())
                    .collect(),
                PdeConfig::Advection(_) => periodic[0]
                    .iter()
                    .map(|x| a[0] * (2.0 * PI * x).sin() + a[1] * (2.0 * PI * x).cos() + a[2])
                    .collect(),
                PdeConfig::Custom(_) => unreachable!("custom PDEs return above"),
                PdeConfig::NavierStokes(_) => periodic[0]
                    .iter()
                    .flat_map(|&x| {
                        periodic[1].iter().map(move |&y| {
                            a[0] * (2.0 * PI * x).sin() * (2.0 * PI * y).cos()
                                + a[1] * (2.0 * PI * (x + y)).cos()
                                + a[2] * (4.0 * PI * y).sin()
                        })
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(ics)
}

/// Initial conditions of a PDE defined in TOML: draws of its `[initial]`
/// family on the grid's points (the data it is trained on), or without a
/// family `1 + ¼·(a sin 2πx̂ + b cos 2πx̂ …)` on the normalised coordinates,
/// kept away from zero in case the definition's rows divide by `u0`.
fn custom_ics(
    scenario: &Scenario,
    params: &CustomParams,
    batch: usize,
    seed: u64,
) -> Result<Vec<Vec<f64>>, SolverError> {
    let pde = params.pde(&scenario.name)?;
    let grid = scenario.grid()?;
    let space = &grid.axes()[1..];
    let points: Vec<Vec<f64>> = match space {
        [x] => x.coords().iter().map(|&x| vec![x]).collect(),
        [x, y] => x
            .coords()
            .iter()
            .flat_map(|&x| y.coords().iter().map(move |&y| vec![x, y]))
            .collect(),
        _ => Vec::new(),
    };
    let coordinates: Vec<f64> = points.concat();
    let normalised: Vec<Vec<f64>> = points
        .iter()
        .map(|p| {
            p.iter()
                .zip(space)
                .map(|(&v, a)| (v - a.coords()[0]) / a.length())
                .collect()
        })
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let family = pde.initial_family();
    let ics = (0..batch)
        .map(|_| match &family {
            Some(family) => family.sample(&mut rng, &coordinates, space.len()),
            None => {
                let a: [f64; 3] = std::array::from_fn(|_| rng.random_range(-1.0..1.0));
                normalised
                    .iter()
                    .map(|p| {
                        let phase: f64 = 2.0 * PI * p.iter().sum::<f64>();
                        1.0 + 0.25 * (a[0] * phase.sin() + a[1] * phase.cos() + a[2])
                    })
                    .collect()
            }
        })
        .collect();
    Ok(ics)
}

/// The check's copy of `scenario` for `method` (see the module docs).
fn check_scenario(
    scenario: &Scenario,
    method: Method,
    options: &GradcheckOptions,
) -> Result<Scenario, SolverError> {
    let mut s = scenario.clone();
    s.constraint.method = method;
    s.model.dtype = Dtype::F64;
    s.constraint.rtol = options.tolerance;
    s.constraint.atol = options.tolerance;
    s.constraint.max_iters = options.max_iters;
    if s.constraint.init == InitWeights::Warm {
        s.constraint.init = InitWeights::Ones;
    }
    s.training.loss.data = 0.0;
    s.training.batch_size = options.batch.clamp(1, s.data.train_samples);
    s.validate()?;
    Ok(s)
}

/// Runs the check for every method of `options`.
///
/// Errors: the scenario cannot build a model for a method (e.g. `moe` without
/// `constraint.experts`), a failed solve, or `options.checks == 0`.
pub fn gradcheck(
    scenario: &Scenario,
    options: &GradcheckOptions,
) -> Result<GradcheckReport, SolverError> {
    let positive = |h: f64| h.is_finite() && h > 0.0;
    if options.checks == 0 || !positive(options.step) || !positive(options.ic_step) {
        return Err(SolverError::InvalidConfig {
            key: "gradcheck",
            value: format!(
                "checks {}, step {}, ic step {}",
                options.checks, options.step, options.ic_step
            ),
            reason: "needs at least one check and positive steps".into(),
        });
    }
    let ics = sample_ics(scenario, options.batch.max(1), options.seed)?;
    let batch = Batch {
        ics,
        targets: None,
        seed: options.seed,
    };
    let mut methods = Vec::new();
    let mut checks = Vec::new();
    for &method in &options.methods {
        let s = check_scenario(scenario, method, options)?;
        let mut model = Model::new(&s)?;
        let (summary, entries) = check_method(&mut model, &batch, method, options)?;
        methods.push(summary);
        checks.extend(entries);
    }
    Ok(GradcheckReport {
        scenario: scenario.name.clone(),
        max_rel_err: methods.iter().map(|m| m.max_rel_err).fold(0.0, f64::max),
        ic_max_rel_err: methods.iter().map(|m| m.ic_max_rel_err).fold(0.0, f64::max),
        methods,
        checks,
    })
}

fn check_method(
    model: &mut Model,
    batch: &Batch,
    method: Method,
    options: &GradcheckOptions,
) -> Result<(MethodCheck, Vec<EntryCheck>), SolverError> {
    let step = model.loss(batch)?;
    let mut failed = step.failed_solves;
    let loss = step.total.to_scalar::<f64>()?;
    let stationarity = model
        .infer(&batch.ics, batch.seed)?
        .statuses
        .iter()
        .map(|s| s.gradient_norm)
        .fold(0.0, f64::max);
    let grads = step.total.backward()?;
    let mut vars: Vec<(String, Var)> = model
        .vars()
        .data()
        .lock()
        .map_err(|_| SolverError::InvalidConfig {
            key: "variables",
            value: "lock".into(),
            reason: "the variable store was poisoned by a panic".into(),
        })?
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let mut gradients = Vec::with_capacity(vars.len());
    for (_, var) in &vars {
        let g = match grads.get(var.as_tensor()) {
            Some(g) => g.flatten_all()?.to_vec1::<f64>()?,
            None => vec![0.0; var.elem_count()],
        };
        gradients.push(g);
    }
    let g_max = gradients
        .iter()
        .flatten()
        .fold(0.0f64, |m, g| m.max(g.abs()));
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ 0x6772_6164);
    let mut entries = Vec::with_capacity(options.checks);
    for _ in 0..options.checks {
        let v = rng.random_range(0..vars.len());
        let (name, var) = &vars[v];
        let index = rng.random_range(0..var.elem_count());
        let original = var.as_tensor().flatten_all()?.to_vec1::<f64>()?;
        let mut eval = |offset: f64| -> Result<f64, SolverError> {
            let mut values = original.clone();
            values[index] += offset;
            var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu)?)?;
            let step = model.loss(batch)?;
            failed += step.failed_solves;
            Ok(step.total.to_scalar::<f64>()?)
        };
        let fd = ladder(options.step, &mut eval)?;
        var.set(&Tensor::from_vec(original, var.shape(), &Device::Cpu)?)?;
        let autograd = gradients[v][index];
        let rel_err = relative_error(autograd, fd, 1e-6 * g_max);
        entries.push(EntryCheck {
            method: method_name(method).to_owned(),
            name: name.clone(),
            index,
            autograd,
            finite_difference: fd,
            rel_err,
        });
    }
    let ic_max_rel_err = check_ic_gradient(model, batch, options, &mut rng)?;
    let summary = MethodCheck {
        method: method_name(method).to_owned(),
        loss,
        max_rel_err: entries.iter().map(|e| e.rel_err).fold(0.0, f64::max),
        failed_solves: failed,
        stationarity,
        ic_max_rel_err,
    };
    Ok((summary, entries))
}

/// The largest relative error of the prediction's gradient in the initial
/// conditions, `⟨∇_{u₀}⟨f̄, u⟩, δ⟩` for a random field cotangent `f̄`, along
/// `options.ic_directions` random directions `δ`, against the ladder's
/// finite differences of `⟨f̄, u(u₀ + hδ)⟩` from `options.ic_step`.
fn check_ic_gradient(
    model: &Model,
    batch: &Batch,
    options: &GradcheckOptions,
    rng: &mut ChaCha8Rng,
) -> Result<f64, SolverError> {
    if options.ic_directions == 0 {
        return Ok(0.0);
    }
    let ics = &batch.ics;
    let (inference, kept) = model.infer_kept(ics, batch.seed)?;
    let fields_bar: Vec<f64> = (0..inference.fields.iter().map(Vec::len).sum())
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let ic_bar = model.infer_backward(&kept, &fields_bar)?;
    let scale = ics.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    let step = options.ic_step * if scale > 0.0 { scale } else { 1.0 };
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let mut worst = 0.0f64;
    for _ in 0..options.ic_directions {
        let direction: Vec<f64> = (0..ic_bar.len())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let mut eval = |offset: f64| -> Result<f64, SolverError> {
            let mut moved = ics.clone();
            for (v, d) in moved.iter_mut().flatten().zip(&direction) {
                *v += offset * d;
            }
            let fields = model.infer(&moved, batch.seed)?.fields;
            Ok(fields
                .iter()
                .flatten()
                .zip(&fields_bar)
                .map(|(u, w)| u * w)
                .sum())
        };
        let fd = ladder(step, &mut eval)?;
        let autograd: f64 = ic_bar.iter().zip(&direction).map(|(g, d)| g * d).sum();
        let floor = 1e-6 * norm(&ic_bar) * norm(&direction);
        worst = worst.max(relative_error(autograd, fd, floor));
    }
    Ok(worst)
}

/// The fourth-order central difference of `eval` at 0 on the ladder of
/// steps from `step` down (see the module docs): the mean of the two
/// adjacent rungs that agree best.
fn ladder(
    step: f64,
    eval: &mut impl FnMut(f64) -> Result<f64, SolverError>,
) -> Result<f64, SolverError> {
    let mut estimates = Vec::with_capacity(LADDER);
    for rung in 0..LADDER {
        let h = step * 10f64.powf(-0.5 * rung as f64);
        let fd = (8.0 * (eval(h)? - eval(-h)?) - (eval(2.0 * h)? - eval(-2.0 * h)?)) / (12.0 * h);
        estimates.push(fd);
    }
    Ok(estimates
        .windows(2)
        .min_by(|a, b| (a[0] - a[1]).abs().total_cmp(&(b[0] - b[1]).abs()))
        .map_or(estimates[0], |pair| 0.5 * (pair[0] + pair[1])))
}

/// `|autograd − fd| / max(|autograd|, |fd|, floor)`; a non-finite gradient
/// is an infinite error (NaN must not vanish in a maximum).
fn relative_error(autograd: f64, fd: f64, floor: f64) -> f64 {
    let scale = autograd.abs().max(fd.abs()).max(floor);
    match (autograd - fd).abs() / scale {
        _ if scale == 0.0 => 0.0,
        e if e.is_nan() => f64::INFINITY,
        e => e,
    }
}
