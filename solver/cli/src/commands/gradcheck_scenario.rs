//! `tessera gradcheck --scenario FILE`: the whole model's autograd gradient
//! (backbone through the constraint layer and the losses) against finite
//! differences, for the soft, hard and mixture-of-experts methods, and the
//! prediction's gradient in its initial conditions (see
//! [`tessera_solver::gradcheck`]).

use std::path::PathBuf;

use tessera_scenarios::Scenario;
use tessera_scenarios::config::Method;

use tessera_solver::{GradcheckOptions, gradcheck};

use crate::device::DeviceArg;

/// Settings of the whole-model gradient check, filled by `tessera gradcheck
/// --scenario` (see [`super::gradcheck`]).
#[derive(Debug)]
pub struct Args {
    /// Scenario file (TOML).
    pub scenario: PathBuf,
    /// Scenario overrides `key=value`, applied in order.
    pub overrides: Vec<String>,
    /// Where the model runs (`--device`).
    pub device: DeviceArg,
    /// Parameter entries checked per method.
    pub checks: usize,
    /// Largest finite-difference step (the check tries it and three smaller ones).
    pub step: f64,
    /// Levenberg–Marquardt tolerance for the check (rtol = atol).
    pub tol: f64,
    /// Initial conditions per batch.
    pub batch: usize,
    /// Seed of the initial conditions, the checked entries and the points.
    pub seed: u64,
    /// Print the report as JSON (`max_rel_err`, `ic_max_rel_err`, `methods`,
    /// `checks`).
    pub json: bool,
}

impl Args {
    /// Runs the check on all three methods and prints the report.
    pub fn run(self) -> anyhow::Result<()> {
        let mut scenario = Scenario::from_file(&self.scenario)?;
        scenario.set_all(&self.overrides)?;
        self.device.apply(&mut scenario);
        let options = GradcheckOptions {
            methods: vec![Method::Soft, Method::Hard, Method::Moe],
            checks: self.checks,
            step: self.step,
            tolerance: self.tol,
            batch: self.batch,
            seed: self.seed,
            ..GradcheckOptions::default()
        };
        let report = gradcheck(&scenario, &options)?;
        if self.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            for m in &report.methods {
                println!(
                    "{:>4}: loss {:.6e}, max relative error {:.3e} over {} entries, {:.3e} for the prediction in its initial conditions, {} unconverged solves, largest ‖Jᵀr‖ at a solution {:.1e}",
                    m.method,
                    m.loss,
                    m.max_rel_err,
                    self.checks,
                    m.ic_max_rel_err,
                    m.failed_solves,
                    m.stationarity
                );
            }
            println!(
                "max relative error {:.3e}; in the initial conditions {:.3e}",
                report.max_rel_err, report.ic_max_rel_err
            );
        }
        Ok(())
    }
}
