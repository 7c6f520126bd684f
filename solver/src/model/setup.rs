//! Translating a scenario's settings into the pieces of the model: the PDE with
//! its derivative operators, the backbone's architecture and the constraint
//! layer's configuration. Kept apart from the model so the mapping from config
//! keys to library types reads in one place.

use candle_core::DType;
use tessera_constraints::{HessianMode, InitialGuess, LevenbergMarquardt};
use tessera_experts::{LayerConfig, RowScope};
use tessera_scenarios::config::{Dtype, HessianKind, InitWeights, RowScope as ScenarioRows};
use tessera_scenarios::{AnyPde, Scenario};

use crate::SolverError;
use crate::backbone::FnoConfig;

/// The scenario's PDE with its constants and the derivative stencils of
/// `constraint.fd` (see [`AnyPde::from_config`]).
pub fn pde_of(scenario: &Scenario) -> Result<AnyPde, SolverError> {
    Ok(AnyPde::from_config(&scenario.pde, scenario.constraint.fd)?)
}

/// The backbone's dtype.
pub fn dtype_of(scenario: &Scenario) -> DType {
    match scenario.model.dtype {
        Dtype::F64 => DType::F64,
        Dtype::F32 => DType::F32,
    }
}

/// The FNO for the scenario: input features are the normalised coordinates of
/// every grid axis plus the broadcast initial condition (one or two channels,
/// `model.ic_features`); outputs are the basis (one channel for the soft
/// method).
pub fn fno_config(scenario: &Scenario) -> FnoConfig {
    let m = &scenario.model;
    FnoConfig {
        in_features: m.ic_features.channels() + scenario.dims().len(),
        widths: m.widths.clone(),
        modes: m.modes.clone(),
        fc_dim: m.fc_dim,
        out_dim: scenario.backbone_outputs(),
        activate_last_layer: m.activate_last_layer,
    }
}

/// The constraint layer's settings for `hard` and `moe`: the tile split, points,
/// ridge, Levenberg–Marquardt tolerances and start, row scope and Hessian.
/// `warm` is the start of a warm-started solve (`constraint.init = "warm"`;
/// `None` before the first step, which then starts from ones).
pub fn layer_config(scenario: &Scenario, warm: Option<&[f64]>) -> Result<LayerConfig, SolverError> {
    let c = &scenario.constraint;
    let initial = match (c.init, warm) {
        (InitWeights::Zeros, _) => InitialGuess::Zeros,
        (InitWeights::Warm, Some(w)) => InitialGuess::Given(w.to_vec()),
        (InitWeights::Ones | InitWeights::Warm, _) => InitialGuess::Ones,
    };
    let lm = LevenbergMarquardt::default()
        .with_rtol(c.rtol)?
        .with_atol(c.atol)?
        .with_max_iterations(c.max_iters)?
        .with_initial(initial)?;
    Ok(LayerConfig {
        split: scenario.expert_split(),
        points_per_expert: c.points,
        row_scope: match c.rows {
            ScenarioRows::Global => RowScope::Global,
            ScenarioRows::Local => RowScope::Local,
        },
        lm,
        hessian: match c.hessian {
            HessianKind::Exact => HessianMode::Exact,
            HessianKind::GaussNewton => HessianMode::GaussNewton,
        },
        ridge: c.ridge,
        seed: scenario.seed,
    })
}
