//! One trajectory on the output grid: discretise, integrate on the solver
//! grid, inject at the output points.

use crate::mol::{Discretisation, MolError, MolOptions, MolPde, MolStats, integrate};

/// A solved trajectory on the output grid.
#[derive(Debug, Clone, PartialEq)]
pub struct MolSolution {
    /// Row-major `[times, output points (x, then y), components]`; the first
    /// frame is the initial condition.
    pub frames: Vec<f64>,
    /// What the integration cost.
    pub stats: MolStats,
}

impl<P: MolPde> Discretisation<'_, P> {
    /// Solves from the solver-grid field `u0` (`[points, components]`, e.g.
    /// from [`Discretisation::sample`]) at `times[0]` and returns the solution
    /// at every time on the output grid. Dirichlet nodes take their boundary
    /// data from `times[1]` on; the first frame is `u0` as given, but for the
    /// modes a dealiasing rule drops ([`Discretisation::dealias_field`]).
    ///
    /// Errors: `u0` of the wrong size, and every error of [`integrate`].
    pub fn solve(
        &self,
        u0: &[f64],
        times: &[f64],
        options: &MolOptions,
    ) -> Result<MolSolution, MolError> {
        let mut start = u0.to_vec();
        self.dealias_field(&mut start)?;
        let unknowns = self.unknowns_of(&start)?;
        let (states, stats) = integrate(self, &unknowns, times, options)?;
        let mut frames = self.restrict_field(&start);
        // A domain has at least 3 points per axis, so an interior node and
        // with it an unknown always exists.
        for (state, &t) in states
            .chunks_exact(unknowns.len().max(1))
            .zip(times)
            .skip(1)
        {
            frames.extend(self.restrict(t, state));
        }
        Ok(MolSolution { frames, stats })
    }
}
