//! A field's Fourier modes outside a [`Dealias`] rule dropped: what a
//! dealiased spectral discretisation applies to `u_t`, to its Jacobian's
//! rows and to the initial field (`mol/dealias.rs` says why).

use rustfft::num_complex::Complex64;

use super::torus_fft::TorusFft;
use crate::mol::Dealias;

/// The kept modes of a periodic grid and its transforms.
pub(super) struct SpectralFilter {
    /// Per flat wavenumber index (row-major, as the grid), whether kept.
    kept: Vec<bool>,
    fft: TorusFft,
}

impl SpectralFilter {
    /// The filter of `rule` on a periodic grid of `dims` points, `None` for
    /// [`Dealias::None`].
    pub(super) fn new(rule: Dealias, dims: &[usize]) -> Option<Self> {
        if rule.is_none() {
            return None;
        }
        let len: usize = dims.iter().product();
        let kept = (0..len)
            .map(|flat| {
                let mut rest = flat;
                dims.iter().rev().all(|&n| {
                    let j = rest % n;
                    rest /= n;
                    rule.keeps(j, n)
                })
            })
            .collect();
        Some(Self {
            kept,
            fft: TorusFft::new(dims),
        })
    }

    /// Whether the mode at flat wavenumber index `k` is kept.
    pub(super) fn keeps(&self, k: usize) -> bool {
        self.kept[k]
    }

    /// Drops the modes outside the rule from each of the `m` components of
    /// `field` (`[points, m]`, interleaved).
    pub(super) fn apply(&self, field: &mut [f64], m: usize) {
        let points = self.kept.len();
        debug_assert_eq!(field.len(), points * m);
        let scale = 1.0 / points as f64;
        let mut spectrum = vec![Complex64::default(); points];
        for c in 0..m {
            for (s, &v) in spectrum.iter_mut().zip(field.iter().skip(c).step_by(m)) {
                *s = Complex64::new(v, 0.0);
            }
            self.fft.transform(&mut spectrum, false);
            for (s, &keep) in spectrum.iter_mut().zip(&self.kept) {
                if !keep {
                    *s = Complex64::default();
                }
            }
            self.fft.transform(&mut spectrum, true);
            for (v, s) in field.iter_mut().skip(c).step_by(m).zip(&spectrum) {
                *v = s.re * scale;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::f64::consts::TAU;

    use super::*;

    /// A sum of modes on a 9 × 8 grid, two components: the filter leaves
    /// exactly the kept ones, a second pass changes nothing.
    #[test]
    fn keeps_the_band_and_nothing_else() {
        let dims = [9, 8];
        // (k_x, k_y, amplitude): the 2/3 rule keeps |k_x| ≤ 2 (3·3 = 9 is
        // not below 9) and |k_y| ≤ 2 (3·3 > 8).
        let modes = [
            (0, 0, 0.5, true),
            (2, -2, 1.0, true),
            (-1, 2, 0.7, true),
            (3, 0, 0.9, false),
            (0, 3, 0.4, false),
            (4, 4, 0.3, false),
            (2, 3, 0.6, false),
        ];
        let field_of = |keep_all: bool, c: usize| -> Vec<f64> {
            (0..72)
                .map(|p| {
                    let (i, j) = ((p / 8) as f64, (p % 8) as f64);
                    modes
                        .iter()
                        .filter(|m| keep_all || m.3)
                        .map(|&(kx, ky, a, _)| {
                            let phase = TAU * (kx as f64 * i / 9.0 + ky as f64 * j / 8.0);
                            a * (phase + c as f64).cos()
                        })
                        .sum()
                })
                .collect()
        };
        let interleave = |a: Vec<f64>, b: Vec<f64>| -> Vec<f64> {
            a.into_iter().zip(b).flat_map(|(x, y)| [x, y]).collect()
        };
        let filter = SpectralFilter::new(Dealias::TwoThirds, &dims).unwrap();
        let mut field = interleave(field_of(true, 0), field_of(true, 1));
        filter.apply(&mut field, 2);
        let expected = interleave(field_of(false, 0), field_of(false, 1));
        let worst = field
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-14, "{worst:e}");
        let once = field.clone();
        filter.apply(&mut field, 2);
        assert!(field.iter().zip(&once).all(|(a, b)| (a - b).abs() < 1e-15));
        assert!(SpectralFilter::new(Dealias::None, &dims).is_none());
    }
}
