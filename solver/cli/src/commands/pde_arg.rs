//! The `--pde NAME` argument: the registry's names as clap's possible values.

use clap::builder::{PossibleValuesParser, TypedValueParser};
use tessera_scenarios::PdeKind;

/// A parser that lists every PDE name in `--help` and in errors.
pub fn parser() -> impl TypedValueParser<Value = PdeKind> {
    PossibleValuesParser::new(PdeKind::ALL.map(PdeKind::name)).try_map(|name| name.parse())
}
