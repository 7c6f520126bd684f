//! [`integrate`]: the checks every integration starts with, the initial
//! state, and the method [`MolOptions::method`] chooses — including the
//! switch from the explicit to the implicit method that [`MolMethod::Auto`]
//! makes when the system turns out to be stiff.
//!
//! **Where the implicit method starts.** Not where the stiffness test fired
//! but at the output time before it (the initial state when it fires in the
//! first interval, as it does where the discretisation makes the system
//! stiff): that interval's explicit steps are thrown away, and SDIRK4 starts
//! as an implicit integration would, with [`first_step`]. Why: on a
//! dispersive PDE the explicit steps, held at the edge of their stability
//! region, leave the fastest modes (undamped there) at the size of the
//! tolerance, and from that state the implicit error estimate holds SDIRK4's
//! steps where it resolves them: on KdV (`kdv-small`) it took 9 490 steps
//! from where the test fired against 568 from the output before it, the
//! latter exactly the implicit method's own (benches/README.md, "`auto` on
//! dispersive PDEs").

use crate::mol::dormand_prince::{DormandPrince, Reached};
use crate::mol::sdirk::Sdirk;
use crate::mol::step_control::{checked, first_step};
use crate::mol::{MolError, MolMethod, MolOptions, MolStats, MolSystem};

/// A point of the trajectory: `t`, `u(t)` and `f(t, u)`.
#[derive(Debug, Clone)]
pub(crate) struct State {
    pub t: f64,
    pub u: Vec<f64>,
    pub f: Vec<f64>,
}

/// Integrates `du/dt = f(t, u)` from `u0` at `times[0]` and returns the state
/// at every time (row-major `[times.len(), system.len()]`, `u0` first).
///
/// Errors: invalid options, `u0` of the wrong length, times not finite and
/// strictly increasing, and the typed failures of the methods
/// ([`crate::mol::sdirk`], [`crate::mol::dormand_prince`]).
pub fn integrate<S: MolSystem + ?Sized>(
    system: &S,
    u0: &[f64],
    times: &[f64],
    options: &MolOptions,
) -> Result<(Vec<f64>, MolStats), MolError> {
    options.validate()?;
    let n = system.len();
    if u0.len() != n {
        return Err(MolError::ShapeMismatch {
            what: "initial state",
            expected: vec![n],
            got: vec![u0.len()],
        });
    }
    if times.is_empty() || times.iter().any(|t| !t.is_finite()) {
        return Err(MolError::InvalidValue {
            what: "number of finite output times",
            value: times.len() as f64,
            reason: "need at least one, all finite",
        });
    }
    if let Some(w) = times.windows(2).find(|w| w[1] <= w[0]) {
        return Err(MolError::InvalidValue {
            what: "output time",
            value: w[1],
            reason: "output times must increase strictly",
        });
    }
    let mut f = vec![0.0; n];
    system.rhs(times[0], u0, &mut f)?;
    let stats = MolStats {
        rhs_evaluations: 1,
        ..MolStats::default()
    };
    checked(times[0], u0, options.max_norm)?;
    if f.iter().any(|v| !v.is_finite()) {
        return Err(MolError::BlowUp {
            t: times[0],
            norm: f64::NAN,
        });
    }
    let h = first_step(options, u0, &f);
    let state = State {
        t: times[0],
        u: u0.to_vec(),
        f,
    };
    let mut integrator = match options.method {
        MolMethod::Implicit => Integrator::Implicit(Sdirk::new(system, options, state, h, stats)?),
        MolMethod::Explicit | MolMethod::Auto => {
            let detect = options.method == MolMethod::Auto;
            Integrator::Explicit(DormandPrince::new(system, options, state, h, stats, detect))
        }
    };
    let mut frames = Vec::with_capacity(times.len() * n);
    frames.extend_from_slice(u0);
    for &target in &times[1..] {
        integrator.advance_to(system, options, target)?;
        frames.extend_from_slice(&integrator.state().u);
    }
    Ok((frames, integrator.stats()))
}

/// The method advancing the state now.
enum Integrator<'s, S: MolSystem + ?Sized> {
    Explicit(DormandPrince<'s, S>),
    Implicit(Sdirk<'s, S>),
}

impl<'s, S: MolSystem + ?Sized> Integrator<'s, S> {
    /// Steps until the state is at `target`; where the explicit method
    /// reports stiffness, solves again from the interval's start implicitly
    /// (module docs).
    fn advance_to(
        &mut self,
        system: &'s S,
        options: &MolOptions,
        target: f64,
    ) -> Result<(), MolError> {
        loop {
            match self {
                Self::Implicit(sdirk) => return sdirk.advance_to(target),
                Self::Explicit(explicit) => {
                    let start = explicit.state.clone();
                    if explicit.advance_to(target)? == Reached::Target {
                        return Ok(());
                    }
                    let mut stats = explicit.stats;
                    stats.switched_at = Some(start.t);
                    let h = first_step(options, &start.u, &start.f);
                    *self = Self::Implicit(Sdirk::new(system, options, start, h, stats)?);
                }
            }
        }
    }

    fn state(&self) -> &State {
        match self {
            Self::Explicit(explicit) => &explicit.state,
            Self::Implicit(sdirk) => &sdirk.state,
        }
    }

    fn stats(&self) -> MolStats {
        match self {
            Self::Explicit(explicit) => explicit.stats,
            Self::Implicit(sdirk) => sdirk.stats,
        }
    }
}
