//! Unit tests that reach into private modules, and the fixtures they share with
//! the integration tests under `tests/` (included from there, so each exists
//! once).

#[path = "../../tests/model_common/mod.rs"]
pub(crate) mod model_common;
pub(crate) mod model_methods;
#[path = "../../tests/train_support/mod.rs"]
pub(crate) mod train_support;
