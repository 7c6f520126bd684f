//! The integrator's Jacobian and the stage matrix `I − hγJ` made from it:
//! assembled on the system's sparsity pattern and factorised
//! (`stage_matrix.rs`), or applied as the system's operator and solved by
//! GMRES ([`MolSystem::jacobian_operator`]).
//!
//! Why here and not in the stepper: the two forms differ in how `J` is
//! obtained (coloured differences, the system's assembly, or its operator),
//! what it costs, and what a kept `J` is; the stepper only asks for the stage
//! matrix of a step and decides whether to keep `J` for the next.

use std::sync::Arc;

use crate::mol::jacobian::ColouredPattern;
use crate::mol::stage_matrix::{StageFactoriser, StageMatrix};
use crate::mol::{JacobianOperator, MolError, MolStats, MolSystem};

/// A Jacobian of at most this many colours (evaluations) is recomputed at
/// every accepted state: about what a step's Newton iterations cost (two per
/// stage), so keeping it would save little.
const JACOBIAN_CHEAP_COLOURS: usize = 10;

/// The form of `J` for one integration, and `J` when one is kept.
pub(crate) enum Linearisation<'s> {
    Assembled(Box<Assembled>),
    Operator {
        jacobian: Option<Arc<dyn JacobianOperator + 's>>,
    },
}

/// An assembled `J`'s pattern, the stage matrices' storage, and `J` when held.
pub(crate) struct Assembled {
    pattern: ColouredPattern,
    factoriser: StageFactoriser,
    jacobian: Option<Vec<Vec<f64>>>,
}

impl<'s> Linearisation<'s> {
    /// The form `system` offers, asked at the initial state `(t0, u0)`: an
    /// operator form starts with `J` at that state (counted in `stats`), an
    /// assembled one with its pattern coloured and analysed.
    pub fn new<S: MolSystem + ?Sized>(
        system: &'s S,
        t0: f64,
        u0: &[f64],
        stats: &mut MolStats,
    ) -> Result<Self, MolError> {
        Ok(match system.jacobian_operator(t0, u0) {
            Some(operator) => {
                stats.jacobians += 1;
                Self::Operator {
                    jacobian: Some(operator?),
                }
            }
            None => {
                let pattern = ColouredPattern::new(system)?;
                let factoriser = StageFactoriser::new(pattern.rows(), t0)?;
                Self::Assembled(Box::new(Assembled {
                    pattern,
                    factoriser,
                    jacobian: None,
                }))
            }
        })
    }

    /// Whether a Jacobian is held.
    pub fn has_jacobian(&self) -> bool {
        match self {
            Self::Assembled(assembled) => assembled.jacobian.is_some(),
            Self::Operator { jacobian } => jacobian.is_some(),
        }
    }

    /// Drops the Jacobian held: the next stage matrix takes a fresh one.
    pub fn forget(&mut self) {
        match self {
            Self::Assembled(assembled) => assembled.jacobian = None,
            Self::Operator { jacobian } => *jacobian = None,
        }
    }

    /// Whether `J` costs enough to be kept while Newton contracts fast with
    /// it: an operator's factors take a pointwise solve per term at every
    /// point, an assembled pattern of many colours one evaluation per colour.
    pub fn is_expensive(&self) -> bool {
        match self {
            Self::Assembled(assembled) => assembled.pattern.colours() > JACOBIAN_CHEAP_COLOURS,
            Self::Operator { .. } => true,
        }
    }

    /// `I − hγJ` for `hγ = hg` at the state `(t, u)` with `f = f(t, u)`,
    /// taking `J` there when none is held (counted in `stats`); the flag says
    /// whether it did.
    pub fn stage_matrix<S: MolSystem + ?Sized>(
        &mut self,
        system: &'s S,
        (t, u, f): (f64, &[f64], &[f64]),
        hg: f64,
        stats: &mut MolStats,
    ) -> Result<(StageMatrix<'s>, bool), MolError> {
        let fresh = !self.has_jacobian();
        if fresh {
            stats.jacobians += 1;
        }
        let matrix = match self {
            Self::Assembled(assembled) => {
                let Assembled {
                    pattern,
                    factoriser,
                    jacobian,
                } = &mut **assembled;
                let values = match jacobian.take() {
                    Some(kept) => kept,
                    None => match system.jacobian(t, u, pattern.rows()) {
                        Some(assembled) => assembled?,
                        None => {
                            stats.rhs_evaluations += pattern.colours();
                            pattern.jacobian(system, t, u, f)?
                        }
                    },
                };
                factoriser.factorise(hg, jacobian.insert(values), t)?
            }
            Self::Operator { jacobian } => {
                let operator = match jacobian {
                    Some(operator) => Arc::clone(operator),
                    None => {
                        let operator = system.jacobian_operator(t, u).ok_or_else(|| {
                            MolError::LinearSolve {
                                t,
                                reason: "the system no longer offers its Jacobian operator".into(),
                            }
                        })??;
                        *jacobian = Some(Arc::clone(&operator));
                        operator
                    }
                };
                StageMatrix::Krylov {
                    jacobian: operator,
                    hg,
                }
            }
        };
        Ok((matrix, fresh))
    }
}
