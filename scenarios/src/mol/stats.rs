//! What the time integrator reports: the counts of one integration
//! ([`MolStats`]) and of a dataset's integrations together ([`MolSummary`]).

use serde::Serialize;

use crate::mol::MolMethod;

/// What an integration cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct MolStats {
    /// Accepted steps (of both methods; the explicit steps that
    /// [`MolMethod::Auto`] threw away when it switched included).
    pub steps: usize,
    /// Of these, the steps taken by the explicit method
    /// ([`MolMethod::Explicit`], or [`MolMethod::Auto`] until it found the
    /// system stiff).
    pub explicit_steps: usize,
    /// Of the explicit steps, those the stiffness test found bounded by
    /// stability rather than accuracy ([`crate::mol::dormand_prince`]): most
    /// of them means the system is stiff on this grid, where the implicit
    /// method usually takes far fewer steps.
    pub held_by_stability: usize,
    /// Steps rejected by the error test.
    pub rejected: usize,
    /// Steps cut because Newton did not converge.
    pub newton_failures: usize,
    /// Newton iterations over all stages.
    pub newton_iterations: usize,
    /// Right-hand-side evaluations (those of coloured-difference Jacobians
    /// included).
    pub rhs_evaluations: usize,
    /// Jacobian evaluations.
    pub jacobians: usize,
    /// GMRES iterations over all stage solves (a system with a Jacobian
    /// operator, [`crate::mol::MolSystem::jacobian_operator`]; 0 where
    /// `I − hγJ` is factorised).
    pub linear_iterations: usize,
    /// Where [`MolMethod::Auto`]'s implicit method started: the output time
    /// before the stiffness test fired, from which it solved again; `None`
    /// when it did not switch (or another method ran).
    pub switched_at: Option<f64>,
}

impl MolStats {
    /// Adds `other`'s counts to these; `switched_at` is left as it is (a time
    /// of one integration has no sum).
    fn add_counts(&mut self, other: &MolStats) {
        self.steps += other.steps;
        self.explicit_steps += other.explicit_steps;
        self.held_by_stability += other.held_by_stability;
        self.rejected += other.rejected;
        self.newton_failures += other.newton_failures;
        self.newton_iterations += other.newton_iterations;
        self.rhs_evaluations += other.rhs_evaluations;
        self.jacobians += other.jacobians;
        self.linear_iterations += other.linear_iterations;
    }
}

/// What the integrations of a dataset's samples cost together: which method
/// ran and, for [`MolMethod::Auto`], in how many samples and where it
/// switched, so a user can tell whether the choice of integrator fits the
/// PDE (README, "Time stepping").
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MolSummary {
    /// The method asked for.
    pub method: MolMethod,
    /// Integrations summed.
    pub samples: usize,
    /// Their counts added up (`switched_at` is `None`).
    pub total: MolStats,
    /// Integrations in which [`MolMethod::Auto`] switched to the implicit
    /// method.
    pub switched: usize,
    /// The earliest and the latest of those switches' times.
    pub switch_times: Option<(f64, f64)>,
}

impl MolSummary {
    /// The summary of the integrations `stats`, run with `method`.
    pub fn new(method: MolMethod, stats: &[MolStats]) -> Self {
        let mut total = MolStats::default();
        let mut switch_times: Option<(f64, f64)> = None;
        let mut switched = 0;
        for s in stats {
            total.add_counts(s);
            if let Some(t) = s.switched_at {
                switched += 1;
                switch_times = Some(match switch_times {
                    Some((lo, hi)) => (lo.min(t), hi.max(t)),
                    None => (t, t),
                });
            }
        }
        Self {
            method,
            samples: stats.len(),
            total,
            switched,
            switch_times,
        }
    }
}

/// One line, e.g. `auto over 2 samples: 62 steps (31 Dormand–Prince, then
/// SDIRK4 in 2 of 2 from t = 0.0000 … 0.5000), 3 rejected, 1234 right-hand
/// sides, 4 Jacobians, 87 Newton iterations (0 failures)`, or for the
/// explicit method `… 3947 steps (2110 held by stability), …`.
impl std::fmt::Display for MolSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.total;
        let method = match self.method {
            MolMethod::Implicit => "implicit (SDIRK4)",
            MolMethod::Explicit => "explicit (Dormand–Prince 5(4))",
            MolMethod::Auto => "auto",
        };
        write!(
            f,
            "{method} over {} sample{}: {} steps",
            self.samples,
            if self.samples == 1 { "" } else { "s" },
            s.steps
        )?;
        if self.method == MolMethod::Explicit {
            write!(f, " ({} held by stability)", s.held_by_stability)?;
        }
        if self.method == MolMethod::Auto {
            write!(f, " ({} Dormand–Prince", s.explicit_steps)?;
            match self.switch_times {
                Some((lo, hi)) => {
                    write!(f, ", then SDIRK4 in {} of {} ", self.switched, self.samples)?;
                    if lo == hi {
                        write!(f, "from t = {lo:.4})")?;
                    } else {
                        write!(f, "from t = {lo:.4} … {hi:.4})")?;
                    }
                }
                None => write!(f, "; not found stiff)")?,
            }
        }
        write!(
            f,
            ", {} rejected, {} right-hand sides",
            s.rejected, s.rhs_evaluations
        )?;
        if s.steps > s.explicit_steps {
            write!(
                f,
                ", {} Jacobians, {} Newton iterations ({} failures)",
                s.jacobians, s.newton_iterations, s.newton_failures
            )?;
        }
        if s.linear_iterations > 0 {
            write!(f, ", {} GMRES iterations", s.linear_iterations)?;
        }
        Ok(())
    }
}
