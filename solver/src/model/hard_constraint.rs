//! The hard-constraint step of the `hard` and `moe` methods: basis in, constrained
//! solution out, differentiable in the basis through the constraint layer's
//! implicit-function-theorem backward pass (entered into candle's graph with
//! the backbone's pass as one node, [`BasisPass`]).
//!
//! With `constraint.init = "warm"` every solve of a step starts from the mean of
//! the previous step's solutions over all samples and experts: the layer takes
//! one starting vector for all its solves.
//!
//! Under expert parallelism the ranks of a group split the solves by expert,
//! placed by the iterations each expert took in the previous step
//! ([`tessera_experts::placement`]); every rank gets every solution, so the
//! placement changes the speed, never a bit of the result.

use std::sync::Arc;

use candle_core::Tensor;
use tessera_constraints::StopReason;
use tessera_experts::{ConstraintLayer, ExpertShard, ExpertsError, Forward, placement};
use tessera_meshes::Grid;
use tessera_scenarios::Scenario;
use tessera_scenarios::config::InitWeights;

use super::constrained_pass::BasisPass;
use super::placement::SolveDevice;
use super::setup;
use crate::SolverError;
use crate::parallel::DataShard;
use crate::phases::{Phase, PhaseClock};
use tessera_scenarios::AnyPde;

/// What the solves of one call did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SolveStats {
    /// Number of solves (`batch × experts`).
    pub solves: usize,
    /// Solves whose status is not converged.
    pub failed: usize,
    /// Mean Levenberg–Marquardt iterations.
    pub iterations_mean: f64,
}

/// The constraint layer of a scenario, with its warm-start state.
pub struct HardConstraint {
    scenario: Scenario,
    pde: Arc<AnyPde>,
    grid: Grid,
    layer: Arc<ConstraintLayer<AnyPde>>,
    n_basis: usize,
    warm: Option<Vec<f64>>,
    /// Per expert, the Levenberg–Marquardt iterations of its solves in the last
    /// step (equal before the first): what the expert placement balances.
    costs: Vec<f64>,
    /// Where the solves run (every rebuilt layer runs there too).
    device: SolveDevice,
    /// The model's clock: the layer's backward passes add their time to it.
    phases: Arc<PhaseClock>,
}

/// Key of the warm-start weights in the model's extra state.
pub const WARM_KEY: &str = "constraint.warm_start";

impl HardConstraint {
    /// Frees the buffers the layer keeps between passes (see
    /// [`Model::release_kept_buffers`](crate::Model::release_kept_buffers)).
    pub fn release_kept_buffers(&self) {
        self.layer.release_kept_buffers();
    }

    /// The layer for `scenario` (method `hard` or `moe`); its backward passes
    /// add their wall time to `phases`.
    pub fn new(
        scenario: &Scenario,
        pde: Arc<AnyPde>,
        grid: Grid,
        phases: Arc<PhaseClock>,
    ) -> Result<Self, SolverError> {
        let device = SolveDevice::new(scenario, &pde)?;
        let layer = device.attach(Self::build(scenario, &pde, &grid, None)?);
        let costs = vec![1.0; layer.n_experts()];
        Ok(Self {
            scenario: scenario.clone(),
            pde,
            grid,
            layer,
            n_basis: scenario.model.n_basis,
            warm: None,
            costs,
            device,
            phases,
        })
    }

    fn build(
        scenario: &Scenario,
        pde: &Arc<AnyPde>,
        grid: &Grid,
        warm: Option<&[f64]>,
    ) -> Result<ConstraintLayer<AnyPde>, SolverError> {
        let config = setup::layer_config(scenario, warm)?;
        Ok(ConstraintLayer::new(Arc::clone(pde), grid.clone(), config)?)
    }

    /// The constraint layer.
    pub fn layer(&self) -> &ConstraintLayer<AnyPde> {
        &self.layer
    }

    /// The warm-start weights, if any.
    pub fn warm(&self) -> Option<&[f64]> {
        self.warm.as_deref()
    }

    /// Sets the warm-start weights (`N` finite values) and rebuilds the layer.
    pub fn set_warm(&mut self, weights: Vec<f64>) -> Result<(), SolverError> {
        if weights.len() != self.n_basis {
            return Err(SolverError::ShapeMismatch {
                what: "warm-start weights [N]",
                expected: vec![self.n_basis],
                got: vec![weights.len()],
            });
        }
        let count = weights.iter().filter(|w| !w.is_finite()).count();
        if count > 0 {
            return Err(SolverError::NonFinite {
                what: "warm-start weights",
                count,
            });
        }
        let layer = Self::build(&self.scenario, &self.pde, &self.grid, Some(&weights))?;
        self.layer = self.device.attach(layer);
        self.warm = Some(weights);
        Ok(())
    }

    /// Solves for `basis` values (`[batch, grid points, N]`, f64) and checks that
    /// every solve produced usable weights (a non-finite or singular solve is an
    /// error: its part of `u` would be garbage).
    pub fn solve(
        &self,
        basis: &[f64],
        ics: &[Vec<f64>],
        stream: u64,
    ) -> Result<(Forward, SolveStats), SolverError> {
        self.solve_with(basis, ics, stream, None)
    }

    /// [`HardConstraint::solve`], the solves split by `experts` if given.
    fn solve_with(
        &self,
        basis: &[f64],
        ics: &[Vec<f64>],
        stream: u64,
        experts: Option<&ExpertShard<'_>>,
    ) -> Result<(Forward, SolveStats), SolverError> {
        let refs: Vec<&[f64]> = ics.iter().map(Vec::as_slice).collect();
        let forward = match experts {
            None => self.layer.forward(basis, self.n_basis, &refs, stream)?,
            Some(shard) => self
                .layer
                .forward_sharded(basis, self.n_basis, &refs, stream, shard)?,
        };
        let k = self.layer.n_experts();
        for (i, status) in forward.statuses.iter().enumerate() {
            if matches!(status.reason, StopReason::NonFinite | StopReason::Singular) {
                return Err(ExpertsError::ExpertFailed {
                    sample: i / k,
                    expert: i % k,
                    reason: status.reason,
                }
                .into());
            }
        }
        let solves = forward.statuses.len();
        let stats = SolveStats {
            solves,
            failed: forward.statuses.iter().filter(|s| !s.converged()).count(),
            iterations_mean: forward
                .statuses
                .iter()
                .map(|s| s.iterations as f64)
                .sum::<f64>()
                / solves as f64,
        };
        Ok((forward, stats))
    }

    /// The solves of this rank's share of a batch split by `shard`: `values`
    /// is the basis (`[batch, grid points, N]`, f64) of the samples `ics`. The
    /// returned statistics and the warm-start mean (which becomes the next
    /// call's start) are those of the whole batch, the mean summed in global
    /// sample order, so every rank continues alike whatever the layout. With an
    /// expert group, its ranks split the solves.
    pub fn solve_shard(
        &mut self,
        values: &[f64],
        ics: &[Vec<f64>],
        stream: u64,
        shard: &DataShard<'_>,
    ) -> Result<(Forward, SolveStats), SolverError> {
        let experts = match shard.expert_group() {
            None => None,
            Some((comm, group)) => Some(ExpertShard::new(
                comm,
                group.clone(),
                placement::balance(&self.costs, group.len()),
            )?),
        };
        let (forward, _) = self.solve_with(values, ics, stream, experts.as_ref())?;
        let k = self.layer.n_experts();
        self.costs = (0..k)
            .map(|e| {
                let sample = forward.statuses.iter().skip(e).step_by(k);
                sample.map(|s| s.iterations as f64).sum()
            })
            .collect();
        let statuses = &forward.statuses;
        let mut totals = [
            statuses.len() as f64,
            statuses.iter().filter(|s| !s.converged()).count() as f64,
            statuses.iter().map(|s| s.iterations as f64).sum::<f64>(),
        ];
        shard.sum(&mut totals)?;
        let stats = SolveStats {
            solves: totals[0] as usize,
            failed: totals[1] as usize,
            iterations_mean: totals[2] / totals[0],
        };
        if self.scenario.constraint.init == InitWeights::Warm {
            let count = totals[0];
            let mut mean = vec![0.0; self.n_basis];
            for w in shard.gather_fields(&forward.weights)?.chunks(self.n_basis) {
                mean.iter_mut().zip(w).for_each(|(m, x)| *m += x / count);
            }
            self.set_warm(mean)?;
        }
        Ok((forward, stats))
    }

    /// [`HardConstraint::solve_shard`] of the basis the backbone's `pass`
    /// computed, returning the constrained solution `[batch, grid points]`
    /// (f64) as one node of the graph with that pass: differentiable in the
    /// backbone's parameters through the layer's backward pass and the
    /// backbone's ([`BasisPass`]).
    pub(super) fn apply(
        &mut self,
        pass: BasisPass,
        ics: &[Vec<f64>],
        stream: u64,
        shard: &DataShard<'_>,
    ) -> Result<(Tensor, SolveStats), SolverError> {
        // The basis's values are read where the backbone's pass left them,
        // here and in the backward pass: they are tens of MiB per step.
        let (forward, stats) =
            pass.with_basis(|basis| self.solve_shard(basis, ics, stream, shard))?;
        let u = forward.u.clone();
        let layer = Arc::clone(&self.layer);
        let phases = Arc::clone(&self.phases);
        let basis_bar = move |pass: &BasisPass, u_bar: &[f64]| {
            pass.with_basis(|basis| {
                phases.time(Phase::ConstraintBackward, || {
                    Ok(layer.backward(&forward, basis, u_bar)?)
                })
            })
        };
        let out = pass.into_node(u, (ics.len(), self.grid.len()), basis_bar)?;
        Ok((out, stats))
    }
}
