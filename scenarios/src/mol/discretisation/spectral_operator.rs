//! The Jacobian of a spectral discretisation as an operator, and its
//! preconditioner: on a 2-D grid, and on a 1-D line of at least
//! `KRYLOV_FROM_UNKNOWNS` unknowns, where a dense LU's `n³` outgrows it.
//!
//! Why: `J = Σ_d G_d D_d` (`spectral_jacobian.rs`: `G_d` the pointwise
//! factors `∂u_t/∂z_d`, `D_d` the terms' circulants). In 2-D every point
//! couples its whole row and column (every point, through the velocity
//! from the vorticity), and a sparse LU of `I − hγJ` fills in towards a
//! dense one, whose cost grows far faster than the grid (benches/README.md,
//! "2-D spectral grids"). Applied, `J x` costs one evaluation of the terms
//! on `x` (FFTs) and a pass over the factors; the stage systems are then
//! solved by GMRES.
//!
//! **Preconditioner.** The factors replaced by their means over the grid:
//! `P = I − hγ Σ_d Ḡ_d D_d` with `Ḡ_d` an `m × m` block per term. This is the
//! circulant nearest to `J` in the Frobenius norm — each of its diagonals
//! is the mean of `J`'s (T. F. Chan, "An optimal circulant preconditioner for
//! Toeplitz systems", SIAM J. Sci. Stat. Comput. 9, 1988) — so it is diagonal
//! in Fourier space, one `m × m` system per wavenumber, solved exactly by two
//! FFTs per component. It holds the stiff part exactly wherever that part
//! has constant coefficients (diffusion, dispersion, hyperdiffusion in
//! every PDE shipped), and is `I − hγJ` itself for a linear PDE with
//! constant coefficients (GMRES then converges in one iteration, or two:
//! the factors come from forward differences).

use rustfft::num_complex::Complex64;

use super::spectral_jacobian::Circulants;
use super::torus_fft::TorusFft;
use super::{Discretisation, solve_small};
use crate::mol::{JacobianOperator, MolError, MolPde};

/// `J` at one state of a spectral discretisation.
pub(super) struct SpectralOperator<'d, 'a, P: MolPde> {
    discretisation: &'d Discretisation<'a, P>,
    t: f64,
    /// `[points, components, terms]`, as [`Discretisation::gains`].
    gains: Vec<f64>,
    /// `Σ_d Ḡ_d σ_d(k)` per wavenumber, `[modes, m, m]` (row `r`: the
    /// equation, column `c`: the component the terms differentiate).
    symbol: Vec<Complex64>,
    fft: TorusFft,
}

impl<'d, 'a, P: MolPde> SpectralOperator<'d, 'a, P> {
    /// `J` of `discretisation` at `(t, u)`.
    pub(super) fn new(
        discretisation: &'d Discretisation<'a, P>,
        circulants: &Circulants,
        t: f64,
        u: &[f64],
    ) -> Result<Self, MolError> {
        let gains = discretisation.gains(t, u)?;
        let m = discretisation.components;
        let terms = &discretisation.terms;
        let shape = &discretisation.shape;
        let points = shape.len();
        let mut mean = vec![0.0; m * terms.len()];
        for g in gains.chunks_exact(m * terms.len()) {
            for (total, v) in mean.iter_mut().zip(g) {
                *total += v / points as f64;
            }
        }
        let mut symbol = vec![Complex64::default(); points * m * m];
        for (k, block) in symbol.chunks_exact_mut(m * m).enumerate() {
            for (d, term) in terms.iter().enumerate() {
                let sigma = circulants.symbol(term.derivative, k);
                for r in 0..m {
                    block[r * m + term.component] += mean[r * terms.len() + d] * sigma;
                }
            }
        }
        Ok(Self {
            discretisation,
            t,
            gains,
            symbol,
            fft: TorusFft::new(shape.dims()),
        })
    }
}

impl<P: MolPde> JacobianOperator for SpectralOperator<'_, '_, P> {
    fn apply(&self, x: &[f64], out: &mut [f64]) {
        let disc = self.discretisation;
        let (m, terms) = (disc.components, disc.terms.len());
        // Every axis is periodic: no Dirichlet data or ghosts enter the
        // fields, which are therefore linear in `x`.
        let fields = disc.fields(self.t, x);
        let mut z = vec![0.0; terms];
        for (p, out_p) in out.chunks_exact_mut(m).enumerate() {
            disc.term_values(&fields, p, &mut z);
            for (r, o) in out_p.iter_mut().enumerate() {
                let g = &self.gains[(p * m + r) * terms..][..terms];
                *o = g.iter().zip(&z).map(|(g, z)| g * z).sum();
            }
        }
        if let Some(filter) = &disc.filter {
            filter.apply(out, m);
        }
    }

    fn precondition(&self, hg: f64, x: &mut [f64]) {
        let m = self.discretisation.components;
        let points = x.len() / m;
        let mut spectra: Vec<Vec<Complex64>> = (0..m)
            .map(|c| {
                let mut s: Vec<Complex64> = x
                    .iter()
                    .skip(c)
                    .step_by(m)
                    .map(|&v| Complex64::new(v, 0.0))
                    .collect();
                self.fft.transform(&mut s, false);
                s
            })
            .collect();
        let mut block = vec![Complex64::default(); m * m];
        let mut rhs = vec![Complex64::default(); m];
        let filter = self.discretisation.filter.as_ref();
        for (k, symbol) in self.symbol.chunks_exact(m * m).enumerate() {
            // A mode the dealiasing drops has no `u_t`: `I − hγPJ` is the
            // identity there.
            if filter.is_some_and(|f| !f.keeps(k)) {
                continue;
            }
            for (i, (b, s)) in block.iter_mut().zip(symbol).enumerate() {
                *b = Complex64::new(f64::from(i / m == i % m), 0.0) - hg * s;
            }
            for (c, v) in rhs.iter_mut().enumerate() {
                *v = spectra[c][k];
            }
            // A singular block (hγ on an eigenvalue of the mean operator)
            // leaves its wavenumber as it is: GMRES still converges.
            if solve_small(m, &mut block, &mut rhs, |c: Complex64| c.l1_norm()).is_ok() {
                for (c, v) in rhs.iter().enumerate() {
                    spectra[c][k] = *v;
                }
            }
        }
        let scale = 1.0 / points as f64;
        for (c, spectrum) in spectra.iter_mut().enumerate() {
            self.fft.transform(spectrum, true);
            for (v, s) in x.iter_mut().skip(c).step_by(m).zip(spectrum.iter()) {
                *v = s.re * scale;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::spectral_jacobian::tests::coupled_with;
    use crate::mol::jacobian::ColouredPattern;
    use crate::mol::{Dealias, MolSystem};

    fn probe(n: usize) -> Vec<f64> {
        (0..n).map(|i| (i as f64 * 0.83).sin() + 0.2).collect()
    }

    fn largest(v: &[f64]) -> f64 {
        v.iter().fold(0.0_f64, |m, x| m.max(x.abs()))
    }

    /// The dealiasing rules the tests run with: none, and the 2/3 rule
    /// (`P J` in the rows, the operator and the preconditioner).
    const RULES: [Dealias; 2] = [Dealias::None, Dealias::TwoThirds];

    #[test]
    fn applies_the_assembled_jacobian() {
        for rule in RULES {
            applies_the_assembled_jacobian_with(rule);
        }
    }

    fn applies_the_assembled_jacobian_with(rule: Dealias) {
        // The rows are checked against coloured differences
        // (spectral_jacobian.rs); the operator must multiply as they do.
        let (disc, u) = coupled_with(true, rule);
        let t = 0.4;
        let pattern = ColouredPattern::new(&disc).unwrap();
        let rows = disc.jacobian(t, &u, pattern.rows()).unwrap().unwrap();
        let operator = disc.jacobian_operator(t, &u).unwrap().unwrap();
        let x = probe(u.len());
        let mut applied = vec![0.0; x.len()];
        operator.apply(&x, &mut applied);
        let product: Vec<f64> = pattern
            .rows()
            .iter()
            .zip(&rows)
            .map(|(columns, values)| columns.iter().zip(values).map(|(&j, v)| v * x[j]).sum())
            .collect();
        let worst = applied
            .iter()
            .zip(&product)
            .map(|(a, p)| (a - p).abs())
            .fold(0.0, f64::max);
        println!(
            "{rule:?}: operator against rows: {worst:e} of {:e}",
            largest(&product)
        );
        assert!(worst < 1e-12 * largest(&product), "{worst:e}");
    }

    #[test]
    fn with_uniform_factors_the_preconditioner_is_the_stage_inverse() {
        // A constant state: the factors are the same at every point, so the
        // mean operator is J and P⁻¹ must undo I − hγJ, formed here through
        // `apply` (the terms' own transforms, not the symbols). Two coupled
        // components and all five kinds of circulant exercise the m × m
        // blocks and every symbol; with varying factors it must not.
        let hg = 0.37;
        let cases = RULES
            .into_iter()
            .flat_map(|rule| [(rule, false, true), (rule, true, false)]);
        for (rule, varying, expect_exact) in cases {
            let (disc, u) = coupled_with(varying, rule);
            let operator = disc.jacobian_operator(0.4, &u).unwrap().unwrap();
            let x = probe(u.len());
            let mut stage = vec![0.0; x.len()];
            operator.apply(&x, &mut stage);
            for (s, xi) in stage.iter_mut().zip(&x) {
                *s = xi - hg * *s;
            }
            operator.precondition(hg, &mut stage);
            let worst = stage
                .iter()
                .zip(&x)
                .map(|(s, xi)| (s - xi).abs())
                .fold(0.0, f64::max);
            println!("{rule:?}, varying {varying}: P⁻¹(I − hγJ)x − x = {worst:e}");
            assert_eq!(worst < 1e-11 * largest(&x), expect_exact, "{worst:e}");
        }
    }
}
