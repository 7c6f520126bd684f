//! The Jacobian of a spectral discretisation, assembled from its structure.
//!
//! Why: a Fourier derivative couples every point of a line, so the
//! integrator's coloured differences need one evaluation of `f` per point
//! (128 per Jacobian on a 128-point Korteweg–de Vries line, most of its
//! solve). But every term is `z_d = D_d u_{c_d}` with `D_d` a circulant
//! along its axis (every axis is periodic), and `u_t` at a point depends on
//! that point's terms only, so
//!
//! `∂u_t(p, r)/∂u(q, c) = Σ_{d : c_d = c} g_{p,r,d} · D_d[p, q]`,
//! `g_{p,r,d} = ∂u_t(p, r)/∂z_d`:
//!
//! the factors `g` by forward differences of the pointwise solve (one more
//! solve per term at each point, no transform), and `D_d[p, q] = h_d(p − q)`
//! from the operator's response to one impulse, taken once. A term linear in
//! its `z_d` (the derivatives of KdV, Kuramoto–Sivashinsky, Burgers) gets
//! its factor to round-off. A dealiased discretisation's `f` is the
//! filtered `u_t`, so its rows are `P J`: each column of `J` filtered as a
//! field.

use std::sync::Arc;

use rustfft::num_complex::Complex64;
use tessera_meshes::{LinearOperator, Shape};

use super::spectral_filter::SpectralFilter;
use super::torus_fft::TorusFft;
use super::{BASIC, Discretisation, Scratch};
use crate::mol::jacobian::SQRT_EPS;
use crate::mol::{Derivative, MolError, MolPde};

/// The operators' impulse responses and eigenvalues.
pub(super) struct Circulants {
    /// Per entry of [`BASIC`] the terms need: `h(j)`, the response at grid
    /// index `j` to a unit impulse at point 0 (zero off the operator's line
    /// for a derivative; everywhere for the velocity from the vorticity).
    responses: Vec<Option<Vec<f64>>>,
    /// The same circulants' eigenvalues per wavenumber index `k` (a grid
    /// index): `σ(k) = Σ_j h(j) e^{−2πi k·j/n}`, as `D` maps the Fourier
    /// mode `e^{2πi k·p/n}` to `σ(k)` times itself.
    symbols: Vec<Option<Vec<Complex64>>>,
    shape: Shape,
}

impl Circulants {
    /// The responses of `operators` (aligned with [`BASIC`]) on a periodic
    /// grid of shape `shape`.
    pub(super) fn new(operators: &[Option<Arc<dyn LinearOperator>>], shape: &Shape) -> Self {
        let mut impulse = vec![0.0; shape.len()];
        impulse[0] = 1.0;
        let responses: Vec<Option<Vec<f64>>> = operators
            .iter()
            .map(|op| op.as_ref().map(|op| op.apply_to_vec(&impulse, 1)))
            .collect();
        let fft = TorusFft::new(shape.dims());
        let symbols = responses
            .iter()
            .map(|h| {
                h.as_ref().map(|h| {
                    let mut sigma: Vec<Complex64> =
                        h.iter().map(|&v| Complex64::new(v, 0.0)).collect();
                    fft.transform(&mut sigma, false);
                    sigma
                })
            })
            .collect();
        Self {
            responses,
            symbols,
            shape: shape.clone(),
        }
    }

    /// The eigenvalue of term operator `d` at wavenumber index `k` (flat).
    pub(super) fn symbol(&self, d: Derivative, k: usize) -> Complex64 {
        self.combine(d, Complex64::new(1.0, 0.0), |slot| {
            self.symbols[slot]
                .as_ref()
                .map_or_else(Complex64::default, |s| s[k])
        })
    }

    /// `D_d[p, q]` for points at grid indices `p` and `q`.
    fn entry(&self, d: Derivative, p: &[usize], q: &[usize]) -> f64 {
        let dims = self.shape.dims();
        let offset: Vec<usize> = (0..dims.len())
            .map(|a| (p[a] + dims[a] - q[a]) % dims[a])
            .collect();
        let j = self.shape.flat(&offset);
        self.combine(d, f64::from(p == q), |slot| {
            self.responses[slot].as_ref().map_or(0.0, |h| h[j])
        })
    }

    /// A term's value from the [`BASIC`] operators' (by slot): `identity`
    /// for `u`, the sum of the second derivatives for the Laplacian.
    fn combine<T: std::ops::Add<Output = T> + Default>(
        &self,
        d: Derivative,
        identity: T,
        basic: impl Fn(usize) -> T,
    ) -> T {
        let slot = |b: Derivative| {
            BASIC
                .iter()
                .position(|&x| x == b)
                .map_or_else(T::default, &basic)
        };
        match d {
            Derivative::Value => identity,
            Derivative::Laplacian if self.shape.dims().len() == 2 => {
                slot(Derivative::Dxx) + slot(Derivative::Dyy)
            }
            Derivative::Laplacian => slot(Derivative::Dxx),
            d => slot(d),
        }
    }
}

impl<P: MolPde> Discretisation<'_, P> {
    /// `∂f/∂u` at `(t, u)` aligned with `rows`, as the module docs derive.
    pub(super) fn spectral_jacobian(
        &self,
        circulants: &Circulants,
        t: f64,
        u: &[f64],
        rows: &[Vec<usize>],
    ) -> Result<Vec<Vec<f64>>, MolError> {
        let m = self.components;
        let terms = self.terms.len();
        let points = self.shape.len();
        let gains = self.gains(t, u)?;
        let index: Vec<Vec<usize>> = (0..points).map(|p| self.shape.unflat(p)).collect();
        let assembled = rows
            .iter()
            .enumerate()
            .map(|(row, columns)| {
                let (p, r) = self.unknowns[row];
                let g = &gains[(p * m + r) * terms..][..terms];
                columns
                    .iter()
                    .map(|&column| {
                        let (q, c) = self.unknowns[column];
                        self.terms
                            .iter()
                            .zip(g)
                            .filter(|(term, _)| term.component == c)
                            .map(|(term, &g)| {
                                g * circulants.entry(term.derivative, &index[p], &index[q])
                            })
                            .sum()
                    })
                    .collect()
            })
            .collect();
        Ok(match &self.filter {
            Some(filter) => filtered(filter, m, rows, assembled),
            None => assembled,
        })
    }

    /// The factors `g_{p,r,d} = ∂u_t(p, r)/∂z_d` at `(t, u)`,
    /// `[points, components, terms]` (zero at points without unknowns).
    pub(super) fn gains(&self, t: f64, u: &[f64]) -> Result<Vec<f64>, MolError> {
        let m = self.components;
        let terms = self.terms.len();
        let points = self.shape.len();
        let fields = self.fields(t, u);
        let mut z = vec![0.0; points * terms];
        for (p, zp) in z.chunks_exact_mut(terms).enumerate() {
            self.term_values(&fields, p, zp);
        }
        // As the coloured differences do: √ε relative to the entry, never
        // below √ε times the term's size over the grid.
        let size: Vec<f64> = (0..terms)
            .map(|d| {
                z.chunks_exact(terms)
                    .fold(1e-10_f64, |s, zp| s.max(zp[d].abs()))
            })
            .collect();
        let mut gains = vec![0.0; points * m * terms];
        let mut scratch = Scratch::new(m, terms);
        let (mut base, mut shifted) = (vec![0.0; m], vec![0.0; m]);
        let mut perturbed = vec![0.0; terms];
        for p in (0..points).filter(|&p| self.has_unknowns(p)) {
            let zp = &z[p * terms..(p + 1) * terms];
            self.time_derivative(t, p, zp, &mut base, &mut scratch)?;
            for d in 0..terms {
                perturbed.copy_from_slice(zp);
                let delta = SQRT_EPS * zp[d].abs().max(size[d]);
                perturbed[d] += delta;
                self.time_derivative(t, p, &perturbed, &mut shifted, &mut scratch)?;
                for r in 0..m {
                    gains[(p * m + r) * terms + d] = (shifted[r] - base[r]) / delta;
                }
            }
        }
        Ok(gains)
    }
}

/// `P J` from `J`'s rows (`columns[row]` the unknowns of `values[row]`): each
/// column of `J` filtered as a field of `m` components. With a filter every
/// row reaches every unknown (`Discretisation::spectral_reach`), so `P J`'s
/// entries fall where `J`'s are.
fn filtered(
    filter: &SpectralFilter,
    m: usize,
    columns: &[Vec<usize>],
    values: Vec<Vec<f64>>,
) -> Vec<Vec<f64>> {
    let n = columns.len();
    let mut dense = vec![0.0; n * n];
    for (row, (cols, vals)) in columns.iter().zip(&values).enumerate() {
        for (&col, &v) in cols.iter().zip(vals) {
            dense[col * n + row] = v;
        }
    }
    for column in dense.chunks_exact_mut(n) {
        filter.apply(column, m);
    }
    columns
        .iter()
        .enumerate()
        .map(|(row, cols)| {
            debug_assert_eq!(cols.len(), n, "a dealiased row reaches every unknown");
            cols.iter().map(|&col| dense[col * n + row]).collect()
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use num_dual::DualNum;

    use crate::mol::jacobian::ColouredPattern;
    use crate::mol::{
        Boundary, Dealias, Derivative, Discretisation, MolDomain, MolPde, MolSystem, MolTerm,
        PointValues, Side, SpatialAxis, Stencil,
    };

    /// Two components on a periodic square, coupled through every kind of
    /// term the circulants hold (value, first, Laplacian, third and fourth
    /// derivatives, on both axes), through `∂F/∂u_t` and nonlinearly.
    pub(crate) struct Coupled;

    impl MolPde for Coupled {
        fn components(&self) -> usize {
            2
        }
        fn terms(&self) -> Vec<MolTerm> {
            vec![
                MolTerm::new(0, Derivative::Value),
                MolTerm::new(0, Derivative::Dx),
                MolTerm::new(1, Derivative::Value),
                MolTerm::new(1, Derivative::Laplacian),
                MolTerm::new(1, Derivative::Dyyy),
                MolTerm::new(0, Derivative::Dxxxx),
            ]
        }
        fn stencil(&self) -> Stencil {
            Stencil::Spectral
        }
        fn residual<D: DualNum<Primitive = f64> + Copy>(
            &self,
            at: &PointValues<'_, D>,
            out: &mut [D],
        ) {
            let z = at.z;
            out[0] = at.u_t[0] + at.u_t[1] * 0.3 + z[0] * z[1] - z[3] * 0.1 + z[5] * 0.01;
            out[1] = at.u_t[1] * (z[0] * z[0] + 1.0) - z[0] * z[2] * 0.2 + z[4] * 0.01 + z[0].sin();
        }
        fn boundary(&self, _: Side, _: usize) -> Boundary {
            Boundary::Periodic
        }
    }

    /// [`Coupled`] on an 8 × 8 periodic square, its spectral derivatives
    /// dealiased by `rule` (the 2/3 rule keeps `|k| ≤ 2` of the 8 points'
    /// wavenumbers), and a state varying on both axes, or, `varying =
    /// false`, a constant one (the same factors at every point).
    pub(crate) fn coupled_with(
        varying: bool,
        rule: Dealias,
    ) -> (Discretisation<'static, Coupled>, Vec<f64>) {
        let axis = SpatialAxis {
            lo: 0.0,
            hi: 1.0,
            points: 8,
        };
        let domain = MolDomain::new(vec![axis, axis], 1).unwrap().dealiased(rule);
        let disc = Discretisation::new(&Coupled, &domain).unwrap();
        let field = disc
            .sample(|x| {
                let (a, b) = (std::f64::consts::TAU * x[0], std::f64::consts::TAU * x[1]);
                if varying {
                    vec![
                        0.5 + a.sin() * b.cos(),
                        (a + 2.0 * b).cos() - 0.3 * (2.0 * a).sin(),
                    ]
                } else {
                    vec![0.7, -0.4]
                }
            })
            .unwrap();
        let u = disc.unknowns_of(&field).unwrap();
        (disc, u)
    }

    #[test]
    fn the_assembled_jacobian_is_the_coloured_differences_one() {
        for rule in [Dealias::None, Dealias::TwoThirds] {
            assembled_against_differences(rule);
        }
    }

    /// [`the_assembled_jacobian_is_the_coloured_differences_one`] with `rule`
    /// (dealiased: `P J` against the differences of the filtered `f`).
    fn assembled_against_differences(rule: Dealias) {
        let (disc, u) = coupled_with(true, rule);
        let t = 0.4;
        let mut f0 = vec![0.0; u.len()];
        disc.rhs(t, &u, &mut f0).unwrap();
        let pattern = ColouredPattern::new(&disc).unwrap();
        let differences = pattern.jacobian(&disc, t, &u, &f0).unwrap();
        let assembled = disc.jacobian(t, &u, pattern.rows()).unwrap().unwrap();
        let size = differences
            .iter()
            .flatten()
            .fold(0.0_f64, |m, v| m.max(v.abs()));
        let worst = differences
            .iter()
            .flatten()
            .zip(assembled.iter().flatten())
            .map(|(d, a)| (d - a).abs())
            .fold(0.0, f64::max);
        // Forward differences of √ε carry errors of about √ε times the
        // entries' size; a wrong sign, axis or offset of any circulant is O(1)
        // of it.
        println!("{rule:?}: assembled against coloured differences: {worst:e} of {size:e}");
        assert!(worst < 1e-6 * size, "{worst:e} of {size:e}");
    }
}
