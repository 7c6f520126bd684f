//! Why a method-of-lines solve could not produce a trajectory.

use tessera_meshes::MeshError;

/// Errors of the method-of-lines reference solver: bad set-up (a definition the
/// discretisation cannot use) and typed integration failures.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MolError {
    /// A numeric setting is NaN, infinite or out of range.
    #[error("invalid {what}: {value} ({reason})")]
    InvalidValue {
        /// Which setting.
        what: &'static str,
        /// The value.
        value: f64,
        /// The valid range.
        reason: &'static str,
    },
    /// Array sizes that must agree do not.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    ShapeMismatch {
        /// Which array.
        what: &'static str,
        /// The shape required.
        expected: Vec<usize>,
        /// The shape found.
        got: Vec<usize>,
    },
    /// The boundary conditions of an axis cannot be discretised as given.
    #[error("boundary of spatial axis {axis}: {reason}")]
    Boundary {
        /// Spatial axis (0 = x, 1 = y).
        axis: usize,
        /// What is inconsistent.
        reason: &'static str,
    },
    /// A term the PDE declares cannot be built on this domain.
    #[error("term {index}: {reason}")]
    Term {
        /// Index of the term in the PDE's list.
        index: usize,
        /// Why.
        reason: &'static str,
    },
    /// A dealiasing rule on a discretisation with difference stencils (the
    /// rule filters Fourier modes, which only the spectral stencil has).
    #[error(
        "dealiasing (\"{rule}\") needs the spectral stencil (every axis periodic); this PDE's stencil is finite differences"
    )]
    DealiasingNeedsSpectral {
        /// The rule asked for, as a scenario writes it (`"2/3"`, `"1/2"`).
        rule: &'static str,
    },
    /// `∂F/∂u_t` is singular at a point: the residual does not determine `u_t`
    /// there (e.g. an elliptic row, or a coefficient that vanishes).
    #[error("∂F/∂u_t is singular at t = {t}, x = {point:?} (equation {equation})")]
    SingularTimeCoefficient {
        /// Time of the evaluation.
        t: f64,
        /// Spatial coordinates of the point.
        point: Vec<f64>,
        /// The equation whose pivot vanished.
        equation: usize,
    },
    /// The residual is not affine in `u_t` at a point (a curvature in `u_t`, or
    /// `F(u_t*) ≠ 0` at the solved `u_t*`), so `u_t = −F(0)/∂F/∂u_t` is wrong.
    #[error("the residual is not linear in u_t at t = {t}, x = {point:?} (equation {equation})")]
    NonlinearInTimeDerivative {
        /// Time of the evaluation.
        t: f64,
        /// Spatial coordinates of the point.
        point: Vec<f64>,
        /// The offending equation.
        equation: usize,
    },
    /// The state became non-finite or its max norm exceeded the bound.
    #[error("blow-up at t = {t}: max |u| = {norm}")]
    BlowUp {
        /// Time reached.
        t: f64,
        /// The max norm (NaN or ∞ for a non-finite state).
        norm: f64,
    },
    /// The error control asked for a step below the minimum.
    #[error("step size underflow at t = {t}: h = {h}")]
    StepSizeUnderflow {
        /// Time reached.
        t: f64,
        /// The rejected step size.
        h: f64,
    },
    /// Newton's iteration failed repeatedly although the step was cut each time.
    #[error("Newton failed {failures} times in a row at t = {t} (last h = {h})")]
    NewtonFailure {
        /// Time reached.
        t: f64,
        /// The last step size tried.
        h: f64,
        /// Consecutive failures.
        failures: usize,
    },
    /// The step budget ran out.
    #[error("more than {steps} steps needed (stopped at t = {t})")]
    TooManySteps {
        /// Time reached.
        t: f64,
        /// The budget.
        steps: usize,
    },
    /// The Newton matrix `I − hγJ` could not be factorised.
    #[error("factorising the Newton matrix at t = {t} failed: {reason}")]
    LinearSolve {
        /// Time reached.
        t: f64,
        /// The factorisation's message.
        reason: String,
    },
    /// An error from the mesh layer (operators on the solver grid).
    #[error(transparent)]
    Mesh(#[from] MeshError),
}
