//! The `--pde NAME` argument: the registry's names as clap's possible values.

use clap::builder::{PossibleValuesParser, TypedValueParser};
use tessera_scenarios::PdeKind;

/// A parser that lists every PDE name in `--help` and in errors.
pub fn parser() -> impl TypedValueParser<Value = PdeKind> {
    parser_among(&PdeKind::ALL)
}

/// A parser that accepts (and lists) only `kinds`, for commands made for some
/// PDEs.
pub fn parser_among(kinds: &[PdeKind]) -> impl TypedValueParser<Value = PdeKind> {
    PossibleValuesParser::new(kinds.iter().map(|kind| kind.name())).try_map(|name| name.parse())
}
