//! A perceptually uniform colour map (an approximation of matplotlib's viridis:
//! nine anchors, interpolated linearly), so heat maps read well in greyscale.

use plotters::style::RGBColor;

/// Approximately viridis at 0, 1/8, …, 1.
const ANCHORS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
];

/// The colour of `value` on the scale `[lo, hi]` (clamped; a flat scale maps to
/// the middle colour).
pub(super) fn viridis(value: f64, lo: f64, hi: f64) -> RGBColor {
    let s = if hi > lo {
        ((value - lo) / (hi - lo)).clamp(0.0, 1.0)
    } else {
        0.5
    };
    let position = s * (ANCHORS.len() - 1) as f64;
    let i = (position.floor() as usize).min(ANCHORS.len() - 2);
    let f = position - i as f64;
    let mix = |a: u8, b: u8| (f64::from(a) + f * (f64::from(b) - f64::from(a))).round() as u8;
    let (a, b) = (ANCHORS[i], ANCHORS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}
