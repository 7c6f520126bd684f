//! Whether an expression family's draws close up smoothly where a periodic
//! axis wraps.
//!
//! Why: a solver on a periodic axis sees a draw's periodic extension, and a
//! family written without it in mind (a lone sech² soliton on a finite
//! period, `x² cos πx` on `[−1, 1)`) jumps in value or slope where the period
//! closes. A difference stencil sees a local kink there; a Fourier
//! derivative spreads it over the whole line, and a dispersive PDE radiates
//! it as short waves: a jump of 2e-3 in the Korteweg–de Vries family once
//! shipped here put those waves into its ground truth and made the solve
//! sixty times slower. The check draws the family at both ends of the
//! period (the same point of the circle) and compares values and central
//! slopes; for a periodic draw both agree to round-off, whatever the step.
//! A `grf` family is periodic by construction and is not checked.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::initial::{ExpressionFamily, InitialCondition};
use super::pde::CustomPde;

/// Draws compared (a fixed stream: the check is deterministic).
const DRAWS: usize = 16;
/// Positions across the other axis of a 2-D domain, and points along each
/// axis for the draws' largest value.
const POINTS: usize = 16;
/// The central difference's step, as a fraction of the period.
const STEP: f64 = 1e-4;
/// A jump in value above this fraction of the draws' largest value is not
/// round-off.
const VALUE_TOL: f64 = 1e-6;
/// A jump in slope above this fraction of (largest value / period) is not
/// round-off either.
const SLOPE_TOL: f64 = 1e-4;

/// How a family's draws meet where one periodic axis wraps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seam {
    /// The space axis (0 = x, 1 = y).
    pub axis: usize,
    /// The largest `|u(lo) − u(hi)|` over the draws and positions.
    pub value_jump: f64,
    /// The largest difference of the central slopes there.
    pub slope_jump: f64,
    /// The draws' largest `|u|` (at the points checked and a grid across
    /// the domain).
    pub largest: f64,
    /// The axis' period `hi − lo`.
    pub period: f64,
}

impl Seam {
    /// Whether the values meet to round-off.
    pub fn closes_in_value(&self) -> bool {
        self.value_jump <= VALUE_TOL * self.largest
    }

    /// Whether the slopes meet to round-off.
    pub fn closes_in_slope(&self) -> bool {
        self.slope_jump * self.period <= SLOPE_TOL * self.largest
    }

    /// The axis' name.
    fn name(&self) -> &'static str {
        ["x", "y"][self.axis.min(1)]
    }

    /// One line for `tessera pde check`: how the draws meet.
    pub fn describe(&self) -> String {
        let verdict = match (self.closes_in_value(), self.closes_in_slope()) {
            (true, true) => "periodic",
            (true, false) => "kinked where it wraps",
            (false, _) => "NOT continuous where it wraps",
        };
        format!(
            "{}: {verdict} ({DRAWS} draws: values {:.1e} and slopes {:.1e} apart, largest value {:.3})",
            self.name(),
            self.value_jump,
            self.slope_jump,
            self.largest
        )
    }

    /// A warning for a solver with (`spectral`) or without Fourier
    /// derivatives, if this seam harms it: a jump in value harms every
    /// stencil, a kink a spectral one.
    pub fn warning(&self, spectral: bool) -> Option<String> {
        let axis = self.name();
        if !self.closes_in_value() {
            Some(format!(
                "the initial family's draws jump by up to {:.1e} (largest value {:.3}) where the \
                 periodic {axis} wraps: every solver sees a step there; make each draw periodic \
                 (sum a localised shape over its images one period to either side)",
                self.value_jump, self.largest
            ))
        } else if spectral && !self.closes_in_slope() {
            Some(format!(
                "the initial family's slope jumps by up to {:.1e} (largest value {:.3}, period \
                 {}) where the periodic {axis} wraps: Fourier derivatives spread that kink over \
                 the whole line",
                self.slope_jump, self.largest, self.period
            ))
        } else {
            None
        }
    }
}

impl CustomPde {
    /// How the draws of the definition's `[initial]` family meet on each
    /// periodic axis of `domain` (`[lo, hi]` per space axis): none without a
    /// family or for a `grf` one.
    pub fn seams(&self, domain: &[[f64; 2]]) -> Vec<Seam> {
        match self.initial_family() {
            Some(InitialCondition::Expression(family)) => {
                family.seams(domain, &self.periodic_axes()[1..])
            }
            _ => Vec::new(),
        }
    }
}

impl ExpressionFamily {
    /// One [`Seam`] per periodic axis of `domain` (`[lo, hi]` per space axis,
    /// `periodic` one flag per space axis); none for a domain of another
    /// dimension than the family's.
    pub fn seams(&self, domain: &[[f64; 2]], periodic: &[bool]) -> Vec<Seam> {
        let dims = domain.len();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let draws: Vec<Vec<f64>> = (0..DRAWS).map(|_| self.draw(&mut rng)).collect();
        if self.value(&vec![0.0; dims], &draws[0]).is_none() {
            return Vec::new();
        }
        let at = |point: &[f64], draw: &[f64]| self.value(point, draw).unwrap_or(f64::NAN);
        let inside = |axis: usize, i: usize| {
            let [lo, hi] = domain[axis];
            lo + (hi - lo) * (i as f64 + 0.5) / POINTS as f64
        };
        // The largest value over a grid across the domain, for the scale.
        let grid: Vec<Vec<f64>> = match dims {
            1 => (0..POINTS).map(|i| vec![inside(0, i)]).collect(),
            2 => (0..POINTS * POINTS)
                .map(|k| vec![inside(0, k / POINTS), inside(1, k % POINTS)])
                .collect(),
            _ => return Vec::new(),
        };
        let mut largest = 0.0_f64;
        for draw in &draws {
            for point in &grid {
                largest = largest.max(at(point, draw).abs());
            }
        }
        (0..dims)
            .filter(|&axis| periodic.get(axis) == Some(&true))
            .map(|axis| {
                let [lo, hi] = domain[axis];
                let h = STEP * (hi - lo);
                let mut seam = Seam {
                    axis,
                    value_jump: 0.0,
                    slope_jump: 0.0,
                    largest,
                    period: hi - lo,
                };
                let across = if dims == 2 { POINTS } else { 1 };
                for draw in &draws {
                    for j in 0..across {
                        let point = |along: f64| {
                            let mut p = vec![along; dims];
                            if dims == 2 {
                                p[1 - axis] = inside(1 - axis, j);
                            }
                            p
                        };
                        let u = |along: f64| at(&point(along), draw);
                        let (u_lo, u_hi) = (u(lo), u(hi));
                        let slope_lo = (u(lo + h) - u(lo - h)) / (2.0 * h);
                        let slope_hi = (u(hi + h) - u(hi - h)) / (2.0 * h);
                        seam.largest = seam.largest.max(u_lo.abs()).max(u_hi.abs());
                        seam.value_jump = worse(seam.value_jump, (u_lo - u_hi).abs());
                        seam.slope_jump = worse(seam.slope_jump, (slope_lo - slope_hi).abs());
                    }
                }
                seam
            })
            .collect()
    }
}

/// The larger of two jumps, a NaN one (a draw not finite there) infinite.
fn worse(so_far: f64, jump: f64) -> f64 {
    if jump.is_nan() {
        f64::INFINITY
    } else {
        so_far.max(jump)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A definition on `space` (every axis periodic) whose family is `u0`
    /// with `a` uniform on [1, 2].
    fn seams_of(space: &str, u0: &str, domain: &[[f64; 2]]) -> Vec<Seam> {
        let axes = space.split(", ").count();
        let text = format!(
            "name = \"seams\"\nspace = [{space}]\nperiodic = [{}]\nstencil = \"spectral\"\n\
             residual = \"u_t - u_xx\"\n[terms]\nu_t = {{ op = \"dt\", stencil = \"second-order\" }}\n\
             u_xx = \"dxx\"\n[[conditions]]\nat = \"initial\"\nrow = \"u\"\nrhs = \"u0\"\n\
             [initial]\nu0 = \"{u0}\"\n[initial.random]\na = {{ uniform = [1.0, 2.0] }}\n",
            vec!["true"; axes].join(", ")
        );
        let text = text.replace("[terms]\n", "[terms]\nu = \"u\"\n");
        CustomPde::from_str(&text, "seams.toml")
            .unwrap_or_else(|e| panic!("{e}"))
            .seams(domain)
    }

    #[test]
    fn a_ramp_jumps_by_its_rise_and_keeps_its_slope() {
        // u0 = 2x on [0, 1): u(1) − u(0) = 2 exactly, the slope 2 at both ends.
        let seams = seams_of("\"x\"", "2 * x + 0 * a", &[[0.0, 1.0]]);
        assert_eq!(seams.len(), 1);
        let seam = seams[0];
        assert!((seam.value_jump - 2.0).abs() < 1e-12, "{seam:?}");
        assert!(seam.slope_jump < 1e-9, "{seam:?}");
        assert!((seam.largest - 2.0).abs() < 1e-12, "{seam:?}");
        assert!(!seam.closes_in_value() && seam.closes_in_slope());
        assert!(seam.warning(false).unwrap().contains("jump by up to 2.0e0"));
    }

    #[test]
    fn a_kink_across_y_and_a_closed_x_are_told_apart() {
        // a·sin(2πx)·y(2 − y) on [0, 1) × [0, 2): along x a whole period;
        // along y zero at both ends, but the slope a·sin(2πx)·(2 − 2y) is
        // +2a·sin(2πx) at y = 0 and −2a·sin(2πx) at y = 2.
        let seams = seams_of(
            "\"x\", \"y\"",
            "a * sin(2 * pi * x) * y * (2 - y)",
            &[[0.0, 1.0], [0.0, 2.0]],
        );
        let (x, y) = (seams[0], seams[1]);
        assert_eq!((x.axis, y.axis), (0, 1));
        assert!(x.closes_in_value() && x.closes_in_slope(), "{x:?}");
        assert!(y.closes_in_value() && !y.closes_in_slope(), "{y:?}");
        // |4a sin(2πx)| at the 16 positions across x: at most 8, and above 4
        // at those near x = 1/4 for any draw of a ≥ 1.
        assert!(y.slope_jump > 4.0 && y.slope_jump <= 8.0, "{y:?}");
        assert!(y.warning(false).is_none());
        assert!(y.warning(true).unwrap().contains("slope jumps"));
    }

    #[test]
    fn a_domain_of_another_dimension_has_no_seams() {
        assert!(seams_of("\"x\"", "a * x", &[[0.0, 1.0], [0.0, 1.0]]).is_empty());
    }
}
