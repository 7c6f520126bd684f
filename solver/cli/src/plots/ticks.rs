//! Tick labels of a logarithmic axis. plotters prints its log-axis key points
//! with `f64`'s shortest round-trip form, so a tick computed as
//! `10^-3` shows its binary noise ("0.0010000000000000002"); these labels are
//! rounded to three significant digits and written as a reader writes them.

/// The label of tick value `v`: plain decimals from 0.1 up to below 1000
/// (`0.1`, `0.25`, `1`, `20`, `500`), scientific notation outside it (`1e-3`,
/// `2.5e-2`, `1e3`), with trailing zeros dropped.
pub fn log_tick_label(v: f64) -> String {
    // `{:.2e}` rounds correctly to three significant digits, in decimal.
    let scientific = format!("{v:.2e}");
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        return scientific; // NaN, inf
    };
    let Ok(exponent) = exponent.parse::<i32>() else {
        return scientific;
    };
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(magnitude) => ("-", magnitude),
        None => ("", mantissa),
    };
    let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
    if !(-1..3).contains(&exponent) {
        return format!("{sign}{mantissa}e{exponent}");
    }
    // Shift the decimal point of the digits by `exponent` (-1, 0, 1 or 2).
    let digits: String = mantissa.chars().filter(|&c| c != '.').collect();
    let point = (exponent + 1) as usize;
    let plain = if point == 0 {
        format!("0.{digits}")
    } else if point >= digits.len() {
        format!("{digits}{}", "0".repeat(point - digits.len()))
    } else {
        format!("{}.{}", &digits[..point], &digits[point..])
    };
    format!("{sign}{plain}")
}

#[cfg(test)]
mod tests {
    use super::log_tick_label;

    #[test]
    fn decades_read_as_written_by_hand() {
        // 10^k as plotters computes it, binary noise included.
        let labels: Vec<String> = (-4..=4).map(|k| log_tick_label(10f64.powi(k))).collect();
        assert_eq!(
            labels,
            [
                "1e-4", "1e-3", "1e-2", "0.1", "1", "10", "100", "1e3", "1e4"
            ]
        );
    }

    #[test]
    fn other_ticks_keep_three_significant_digits() {
        for (v, label) in [
            (0.30000000000000004, "0.3"),
            (0.25, "0.25"),
            (0.125, "0.125"),
            (2.0, "2"),
            (2.5, "2.5"),
            (20.0, "20"),
            (500.0, "500"),
            (123.456, "123"),
            (999.9, "1e3"),
            (1234.5, "1.23e3"),
            (2.5e-2, "2.5e-2"),
            (0.0010000000000000002, "1e-3"),
            (5e-7, "5e-7"),
            (-0.5, "-0.5"),
            (-3e-5, "-3e-5"),
        ] {
            assert_eq!(log_tick_label(v), label, "{v:e}");
        }
    }
}
