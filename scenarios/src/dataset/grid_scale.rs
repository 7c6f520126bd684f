//! Energy piling up at the grid's scale in periodic data: the check that
//! spectral ground truth resolves what it computes.
//!
//! A resolved spectral solution's spectrum falls towards the grid's highest
//! modes. Where it rises again at the last shell, energy is arriving there
//! that the discretisation does not carry away: a field steepening beyond the
//! grid, or a collocated product aliasing into an even grid's Nyquist modes,
//! on which every odd derivative vanishes (so a dispersive PDE neither
//! disperses nor advects them; see `FourierMultiplier::partial` in
//! `tessera-meshes`). The data then hold grid-scale noise the PDE does not
//! describe. Dealiasing (`data.reference.dealias`, [`crate::mol::Dealias`])
//! removes the aliasing, an odd size has no Nyquist mode; a finer solver
//! grid or a gentler field resolves the rest.

use rustfft::num_complex::Complex64;

use super::Dataset;
use crate::mol::Dealias;
use crate::mol::discretisation::torus_fft::TorusFft;

/// A last shell holding less than this share of a frame's energy (the mean
/// left out) is round-off, whatever its ratio to the shell below: float32
/// data carry about 1e-14 per mode.
pub const SHARE_FLOOR: f64 = 1e-8;

/// A last shell above this many times the energy of the shell below is a
/// rising spectrum. Resolved fields stay below one (the shipped spectral
/// scenarios' worst frame: 0.73, Navier–Stokes vorticity on its output grid).
pub const RISE: f64 = 2.0;

/// The worst frame of a dataset: where the last shell of modes (those at the
/// highest wavenumber the data can hold on some axis: `⌊n_a/2⌋`, or the
/// dealiasing rule's last kept one) holds the largest share of
/// the frame's energy among the frames whose last shell rises above the
/// shell below (the modes one wavenumber short of it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GridScalePileUp {
    /// The sample.
    pub sample: usize,
    /// The frame's time.
    pub time: f64,
    /// The last shell's share of the frame's energy (the mean left out).
    pub share: f64,
    /// The last shell's energy over that of the shell below.
    pub rise: f64,
}

impl std::fmt::Display for GridScalePileUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "energy piles up at the grid's scale: the highest Fourier modes hold {:.1e} of sample {}'s energy at t = {:.4}, {:.0}× the modes below them (aliasing into an even grid's Nyquist modes, or a field steeper than the grid; `data.reference.dealias = \"2/3\"` removes the aliasing of quadratic terms, an odd size has no Nyquist mode, `data.reference.refinement` resolves more)",
            self.share, self.sample, self.time, self.rise
        )
    }
}

/// The dataset's worst pile-up ([`GridScalePileUp`]) where some frame's last
/// shell holds more than [`SHARE_FLOOR`] of its energy at more than
/// [`RISE`] times the shell below; `None` where none does. The data are
/// taken as periodic on every space axis (spectral ground truth), solved on
/// a grid `refinement` times finer with `dealias`: a rule keeps no mode
/// beyond its band, so a field too steep for the grid piles up at the
/// band's edge instead, and that is the last shell here (on a refined
/// solver grid the band may reach past the data's `⌊n/2⌋`, which then is).
pub fn grid_scale_pile_up(
    dataset: &Dataset,
    dealias: Dealias,
    refinement: usize,
) -> Option<GridScalePileUp> {
    let dims = dataset.dims();
    let space = &dims[1..];
    let highest: Vec<usize> = space
        .iter()
        .map(|&n| dealias.highest(n * refinement.max(1)).min(n / 2))
        .collect();
    let frame = space.iter().product::<usize>();
    let fft = TorusFft::new(space);
    let mut worst: Option<GridScalePileUp> = None;
    for sample in 0..dataset.len() {
        let frames = dataset.trajectory(sample).chunks_exact(frame);
        for (&time, values) in dataset.t().iter().zip(frames) {
            let (share, rise) = last_shell(values, space, &highest, &fft);
            let flagged = share > SHARE_FLOOR && rise > RISE;
            if flagged && worst.is_none_or(|w| share > w.share) {
                worst = Some(GridScalePileUp {
                    sample,
                    time,
                    share,
                    rise,
                });
            }
        }
    }
    worst
}

/// The share of `values`' energy (`[x, (y)]`, the mean left out) in the last
/// shell of modes (those at wavenumber `highest[a]` on some axis `a`, none
/// beyond it), and its ratio to the shell below (infinite when that one is
/// empty). Modes beyond `highest` on some axis are left out: a dealiasing
/// rule removed them.
fn last_shell(values: &[f32], space: &[usize], highest: &[usize], fft: &TorusFft) -> (f64, f64) {
    let mut spectrum: Vec<Complex64> = values
        .iter()
        .map(|&v| Complex64::new(f64::from(v), 0.0))
        .collect();
    fft.transform(&mut spectrum, false);
    let (mut total, mut last, mut below) = (0.0, 0.0, 0.0);
    for (i, c) in spectrum.iter().enumerate().skip(1) {
        // How many wavenumbers mode `i` lies inside the highest one, along
        // the axis where it is closest to it (`None` beyond it).
        let mut rest = i;
        let mut inside = Some(usize::MAX);
        for (&n, &h) in space.iter().zip(highest).rev() {
            let j = rest % n;
            rest /= n;
            let k = j.min(n - j);
            inside = inside.and_then(|d| h.checked_sub(k).map(|gap| d.min(gap)));
        }
        let Some(inside) = inside else { continue };
        let energy = c.norm_sqr();
        total += energy;
        match inside {
            0 => last += energy,
            1 => below += energy,
            _ => {}
        }
    }
    if total == 0.0 {
        return (0.0, 0.0);
    }
    let rise = if below > 0.0 {
        last / below
    } else {
        f64::INFINITY
    };
    (last / total, rise)
}

#[cfg(test)]
mod tests {
    use std::f64::consts::TAU;

    use super::*;

    /// A dataset of one sample, frames `f(t index, x, y)` on `nx × ny` points
    /// (`ny = 0`: 1-D) at t = 0, 1.
    fn dataset(nx: usize, ny: usize, f: impl Fn(usize, usize, usize) -> f64) -> Dataset {
        let ys = (ny > 0).then(|| (0..ny).map(|j| j as f64 / ny as f64).collect());
        let mut values = Vec::new();
        for t in 0..2 {
            for i in 0..nx {
                for j in 0..ny.max(1) {
                    values.push(f(t, i, j) as f32);
                }
            }
        }
        let xs = (0..nx).map(|i| i as f64 / nx as f64).collect();
        Dataset::new(vec![0.0, 1.0], xs, ys, String::new(), vec![values]).unwrap()
    }

    #[test]
    fn a_nyquist_mode_beside_a_long_wave_has_its_closed_form_share() {
        // A sin(2πx) + B cos(πj) on 16 points: the wave's DFT energy is
        // 2 (A n/2)², the Nyquist mode's (B n)², so its share is
        // B² / (A²/2 + B²); the shell below is empty but for round-off.
        let (a, b) = (1.0, 0.01);
        let data = dataset(16, 0, |t, i, _| {
            let x = i as f64 / 16.0;
            a * (TAU * x).sin()
                + if t == 1 {
                    b * (-1.0f64).powi(i as i32)
                } else {
                    0.0
                }
        });
        let pile = grid_scale_pile_up(&data, Dealias::None, 1).unwrap();
        let expected = b * b / (a * a / 2.0 + b * b);
        assert_eq!((pile.sample, pile.time), (0, 1.0));
        assert!(
            (pile.share / expected - 1.0).abs() < 1e-5,
            "{pile:?} vs {expected}"
        );
        // The shell below holds the float32 rounding of the wave alone.
        assert!(pile.rise > 1e10, "{pile:?}");
    }

    #[test]
    fn a_falling_spectrum_is_not_flagged() {
        // Modes 1 … 7 of 16 at amplitudes 2^−k, then nothing at 8: resolved.
        let data = dataset(16, 0, |_, i, _| {
            let x = i as f64 / 16.0;
            (1..8)
                .map(|k| 0.5f64.powi(k) * (TAU * k as f64 * x).cos())
                .sum()
        });
        assert_eq!(grid_scale_pile_up(&data, Dealias::None, 1), None);
    }

    #[test]
    fn the_last_shell_of_a_2d_grid_holds_each_axis_highest_wavenumber() {
        // On 7 × 12 (highest wavenumbers 3 and 6) the modes (k_x, k_y) =
        // (3, 1) and (1, 6) lie in the last shell, (2, 1) and (1, 5) in the
        // one below, (1, 1) further in. Each cosine of amplitude a has DFT
        // energy 2 (a n/2)² (n = 84 points; its two modes (k, −k) differ,
        // since k_x ≠ 0): shares of the total in proportion to a², rise
        // (a₁² + a₂²) / (a₃² + a₄²).
        let (a1, a2, a3, a4, a5) = (0.1, 0.02, 0.05, 0.04, 1.0);
        let data = dataset(7, 12, |_, i, j| {
            let (x, y) = (i as f64 / 7.0, j as f64 / 12.0);
            let wave = |kx: f64, ky: f64| (TAU * (kx * x + ky * y)).cos();
            a1 * wave(3.0, 1.0)
                + a2 * wave(1.0, 6.0)
                + a3 * wave(2.0, 1.0)
                + a4 * wave(1.0, 5.0)
                + a5 * wave(1.0, 1.0)
        });
        let pile = grid_scale_pile_up(&data, Dealias::None, 1).unwrap();
        let (last, below) = (a1 * a1 + a2 * a2, a3 * a3 + a4 * a4);
        let total = last + below + a5 * a5;
        assert!((pile.share / (last / total) - 1.0).abs() < 1e-5, "{pile:?}");
        assert!((pile.rise / (last / below) - 1.0).abs() < 1e-5, "{pile:?}");
        // Below the floor of round-off, a rise is not flagged.
        let faint = dataset(7, 12, |_, i, j| {
            let (x, y) = (i as f64 / 7.0, j as f64 / 12.0);
            1e-5 * (TAU * (3.0 * x + y)).cos() + (TAU * (x + y)).cos()
        });
        assert_eq!(grid_scale_pile_up(&faint, Dealias::None, 1), None);
    }

    #[test]
    fn with_a_dealiasing_rule_the_last_shell_is_the_band_s_edge() {
        // On 32 points the 2/3 rule keeps |k| ≤ 10. Modes 1 … 9 falling as
        // 2^−k and mode 10 at amplitude a: its share is a²/(Σ 4^−k + a²)
        // and its rise a²/4^−9 over mode 9. Without the rule the last shell
        // is 16, empty: nothing is flagged. Solved on a grid refined 2×,
        // the rule keeps |k| ≤ 21 of 64 and the data's 16 is the edge again.
        let a = 0.01;
        let data = dataset(32, 0, |_, i, _| {
            let x = i as f64 / 32.0;
            let falling: f64 = (1..10)
                .map(|k| 0.5f64.powi(k) * (TAU * k as f64 * x).cos())
                .sum();
            falling + a * (TAU * 10.0 * x).sin()
        });
        let pile = grid_scale_pile_up(&data, Dealias::TwoThirds, 1).unwrap();
        let below: f64 = (1..10).map(|k| 0.25f64.powi(k)).sum();
        let share = a * a / (below + a * a);
        assert!((pile.share / share - 1.0).abs() < 1e-4, "{pile:?}");
        let rise = a * a / 0.25f64.powi(9);
        assert!((pile.rise / rise - 1.0).abs() < 1e-4, "{pile:?}");
        assert_eq!(grid_scale_pile_up(&data, Dealias::None, 1), None);
        assert_eq!(grid_scale_pile_up(&data, Dealias::TwoThirds, 2), None);
    }
}
