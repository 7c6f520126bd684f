//! Dealiasing of spectral discretisations ([`Dealias`]).
//!
//! Why: a pseudo-spectral method forms nonlinear terms point by point, and
//! on `n` points a product of waves `k₁ + k₂` beyond the grid's highest
//! wavenumber lands on `k₁ + k₂ − n`, a mode that was never in the product.
//! Left in, that aliased energy gathers in the highest modes, which nothing
//! damps in a dispersive or inviscid PDE (the Zakharov–Kuznetsov data on a
//! 32² grid: README, "Your own PDE"). Orszag's rule removes it: keep only
//! wavenumbers `|k| < n/(p + 1)` along each axis in `u_t` (and in the initial
//! field), and every product of `p` kept modes that wraps lands outside the
//! kept band, where the filter drops it (S. A. Orszag, "On the elimination
//! of aliasing in finite-difference schemes by filtering high-wavenumber
//! components", J. Atmos. Sci. 28, 1971). For `p = 2` that is the familiar
//! 2/3 rule; a cubic term needs `p = 3`, half the band. The semi-discrete
//! system is then the Galerkin truncation of the PDE: its quadratic
//! invariants (the energy of Burgers, KdV and Zakharov–Kuznetsov) are kept
//! exactly, where aliasing breaks them.

use serde::{Deserialize, Serialize};

/// Which Fourier modes a spectral discretisation keeps in `u_t`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Dealias {
    /// Every mode (the plain pseudo-spectral method).
    #[default]
    #[serde(rename = "none")]
    None,
    /// `|k| < n/3` on each axis: exact for quadratic nonlinearities.
    #[serde(rename = "2/3")]
    TwoThirds,
    /// `|k| < n/4` on each axis: exact for cubic nonlinearities.
    #[serde(rename = "1/2")]
    Half,
}

impl Dealias {
    /// Whether this is [`Dealias::None`] (the default, which a scenario's
    /// serialised settings, and so its data cache's name, leave out).
    pub fn is_none(&self) -> bool {
        *self == Self::None
    }

    /// The rule as a scenario writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::TwoThirds => "2/3",
            Self::Half => "1/2",
        }
    }

    /// The degree `p` of the polynomial nonlinearity whose products the rule
    /// keeps free of aliasing (`None` without a rule).
    pub fn degree(self) -> Option<usize> {
        match self {
            Self::None => None,
            Self::TwoThirds => Some(2),
            Self::Half => Some(3),
        }
    }

    /// The highest wavenumber `k_max` kept on an axis of `n` points: the
    /// largest with `(p + 1)·k_max < n`, so that `p` kept wavenumbers sum to
    /// at most `p·k_max < n − k_max` and a sum that wraps (by `n`) lands
    /// beyond `−k_max`; `⌊n/2⌋` without a rule.
    pub fn highest(self, n: usize) -> usize {
        self.degree()
            .map_or(n / 2, |p| n.saturating_sub(1) / (p + 1))
    }

    /// Whether grid index `j` of an axis of `n` points, the wavenumber
    /// `k = j` or `j − n` (whichever is nearer zero), is kept:
    /// `|k| ≤ k_max` ([`Dealias::highest`]).
    pub fn keeps(self, j: usize, n: usize) -> bool {
        j.min(n - j) <= self.highest(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kept band by brute force: no product of `p` kept wavenumbers
    /// aliases onto a kept one, and the band is the widest that holds
    /// (one more wavenumber and some product does), on grids of 4 to 40
    /// points, odd and even.
    #[test]
    fn the_kept_band_is_the_widest_free_of_aliasing() {
        // Whether some sum of `p` wavenumbers in `[−k_max, k_max]` exceeds
        // the grid's band and wraps onto a wavenumber in `[−k_max, k_max]`.
        let aliases = |p: i64, k_max: i64, n: i64| {
            let sums = -p * k_max..=p * k_max;
            sums.into_iter().any(|s| {
                let wrapped = s.rem_euclid(n);
                let k = if wrapped > n / 2 {
                    wrapped - n
                } else {
                    wrapped
                };
                let beyond = s != k;
                beyond && k.abs() <= k_max
            })
        };
        for rule in [Dealias::TwoThirds, Dealias::Half] {
            let p = rule.degree().unwrap() as i64;
            for n in 4..=40usize {
                let kept: Vec<usize> = (0..n).filter(|&j| rule.keeps(j, n)).collect();
                let k_max = kept.iter().map(|&j| j.min(n - j)).max().unwrap() as i64;
                // The kept indices are exactly the band |k| ≤ k_max.
                assert_eq!(kept.len() as i64, 2 * k_max + 1, "{rule:?}, n = {n}");
                assert!(!aliases(p, k_max, n as i64), "{rule:?}, n = {n}");
                assert!(aliases(p, k_max + 1, n as i64), "{rule:?}, n = {n}");
            }
        }
        assert!((0..17).all(|j| Dealias::None.keeps(j, 17)));
    }

    #[test]
    fn the_rules_read_as_their_fractions() {
        #[derive(Deserialize)]
        struct Holder {
            dealias: Dealias,
        }
        let read = |text: &str| toml::from_str::<Holder>(text).map(|h| h.dealias);
        assert_eq!(read(r#"dealias = "2/3""#).unwrap(), Dealias::TwoThirds);
        assert_eq!(read(r#"dealias = "1/2""#).unwrap(), Dealias::Half);
        assert_eq!(read(r#"dealias = "none""#).unwrap(), Dealias::None);
        for rule in [Dealias::None, Dealias::TwoThirds, Dealias::Half] {
            let text = format!("dealias = \"{}\"", rule.name());
            assert_eq!(read(&text).unwrap(), rule);
        }
        let err = read(r#"dealias = "3/4""#).unwrap_err().to_string();
        assert!(err.contains("2/3") && err.contains("1/2"), "{err}");
    }
}
