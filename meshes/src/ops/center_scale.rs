//! Centring and scaling level by level: for a field on `[t, x, y]`, every
//! channel's spatial mean removed at each time level and the level scaled by a
//! factor of `t` — the model form `S` of the Navier–Stokes experiment
//! (PI-HC-MoE's `basis_mollifier`: scale by `0.005·t/T`, remove the spatial
//! mean).
//!
//! Why an operator of its own rather than a zero-mode [`FourierMultiplier`]
//! composed with a [`Scale`](super::scale::Scale): the mean of a level is one sum, where the
//! multiplier transforms every channel of every level forward and back, and
//! the composition needs a second full field for its intermediate — both
//! costly where `S` acts on `N` basis channels of a fine grid (at 256² × 64
//! with 64 channels a field is 2 GiB). The mean is the arithmetic mean of the
//! level's points, which is the multiplier's zero mode on a uniform periodic
//! grid and needs no periodicity.
//!
//! [`FourierMultiplier`]: crate::FourierMultiplier

use crate::ops::{LinearOperator, check_field_lengths, check_weights};
use crate::{MeshError, Shape};

/// `out[l, q, c] = s_l · (in[l, q, c] − m_{l,c})` for every level `l` (a point
/// of the leading axes `..first`) and point `q` of its block (the axes
/// `first..`), where `m_{l,c}` is channel `c`'s mean over the block (zero
/// without centring) and `s_l` the level's factor (one without factors).
///
/// Self-adjoint: centring is an orthogonal projection on each block, and the
/// factor is constant there, so the two commute.
#[derive(Debug, Clone, PartialEq)]
pub struct CenterScale {
    shape: Shape,
    /// Points per level: the product of `dims[first..]`.
    block: usize,
    center: bool,
    /// One factor per level, or `None` for ones.
    factors: Option<Vec<f64>>,
}

impl CenterScale {
    /// Levels are the points of the axes before `first` (`first = 1` on
    /// `[t, x, y]`: the time levels); `center` removes each level's mean,
    /// `factors` (one per level) scale it.
    ///
    /// Errors: `first` not below the number of axes, a factor count other
    /// than the number of levels, or a factor that is NaN or infinite.
    pub fn new(
        shape: &Shape,
        first: usize,
        center: bool,
        factors: Option<Vec<f64>>,
    ) -> Result<Self, MeshError> {
        let dims = shape.dims();
        if first >= dims.len() {
            return Err(MeshError::AxisOutOfRange {
                axis: first,
                ndim: dims.len(),
            });
        }
        let levels: usize = dims[..first].iter().product();
        if let Some(factors) = &factors {
            let what = "level factors (one per point of the leading axes)";
            check_weights(what, "level factor", factors, levels)?;
        }
        Ok(Self {
            shape: shape.clone(),
            block: dims[first..].iter().product(),
            center,
            factors,
        })
    }
}

impl LinearOperator for CenterScale {
    fn shape(&self) -> &Shape {
        &self.shape
    }

    #[track_caller]
    fn apply(&self, input: &[f64], channels: usize, out: &mut [f64]) {
        check_field_lengths(&self.shape, input, channels, out);
        if channels == 0 {
            return;
        }
        let level_values = self.block * channels;
        let mut means = vec![0.0; channels];
        let levels = input
            .chunks_exact(level_values)
            .zip(out.chunks_exact_mut(level_values));
        for (l, (src, dst)) in levels.enumerate() {
            if self.center {
                means.fill(0.0);
                for point in src.chunks_exact(channels) {
                    means.iter_mut().zip(point).for_each(|(m, &v)| *m += v);
                }
                let inverse = 1.0 / self.block as f64;
                means.iter_mut().for_each(|m| *m *= inverse);
            }
            let factor = self.factors.as_ref().map_or(1.0, |f| f[l]);
            for (d, s) in dst
                .chunks_exact_mut(channels)
                .zip(src.chunks_exact(channels))
            {
                for ((d, &s), &m) in d.iter_mut().zip(s).zip(&means) {
                    *d = factor * (s - m);
                }
            }
        }
    }

    #[track_caller]
    fn apply_adjoint(&self, input: &[f64], channels: usize, out: &mut [f64]) {
        self.apply(input, channels, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_gives_typed_errors() {
        let shape = Shape::new(&[3, 4, 5]);
        assert_eq!(
            CenterScale::new(&shape, 3, true, None).err(),
            Some(MeshError::AxisOutOfRange { axis: 3, ndim: 3 })
        );
        assert!(matches!(
            CenterScale::new(&shape, 1, true, Some(vec![1.0; 4])),
            Err(MeshError::ShapeMismatch { .. })
        ));
        assert!(matches!(
            CenterScale::new(
                &shape,
                2,
                false,
                Some(vec![1.0; 11].into_iter().chain([f64::NAN]).collect())
            ),
            Err(MeshError::InvalidValue { .. })
        ));
        assert!(CenterScale::new(&shape, 2, false, Some(vec![1.0; 12])).is_ok());
    }
}
