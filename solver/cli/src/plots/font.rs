//! The embedded font: DejaVu Sans (Bitstream Vera licence, see
//! `solver/cli/assets/DejaVuSans-LICENSE.txt`), registered with plotters as
//! `sans-serif` on first use, because the ab_glyph backend has no access to
//! system fonts (and we want none).

use std::path::Path;
use std::sync::OnceLock;

use plotters::style::{FontStyle, register_font};

use super::plot_error;
use crate::error::ToolError;

const DEJAVU_SANS: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// The family name plots use.
pub(super) const FAMILY: &str = "sans-serif";

/// Registers the font once; `path` names the plot in the (impossible in
/// practice) error of an unreadable embedded font.
pub(super) fn ensure(path: &Path) -> Result<(), ToolError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok =
        *REGISTERED.get_or_init(|| register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS).is_ok());
    if ok {
        Ok(())
    } else {
        Err(plot_error(path, "the embedded font could not be read"))
    }
}
