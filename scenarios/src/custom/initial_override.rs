//! New numbers for a definition's `[initial]` family, given by the scenario
//! (`[pde] initial = { amplitude = 0.25 }`, or on the command line
//! `--set pde.initial.amplitude=0.25`), as `[pde] parameters` gives new
//! values for its `[parameters]`.
//!
//! Why: a study of how a trained model copes with other initial conditions
//! (larger amplitudes, shorter length scales, wider ranges of a random
//! parameter) is a change of the data's distribution only, and copying the
//! definition file for each one left the PDE in several places. The override
//! takes numbers only (the `grf` family's `length_scale`, `amplitude` and
//! `mean`, an expression family's random parameters' distributions), not a
//! new `u0` or family: an expression is checked at its line and column in
//! the file it is written in, which an override on a command line has not
//! (write a new definition, or give its text as `pde.definition`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::error::CustomPdeError;
use super::pde::Builder;
use super::spec::{InitialSpec, RandomSpec};

/// The `[initial]` values a scenario replaces (see the module doc); what is
/// not given stays as the definition writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitialOverrides {
    /// New distributions for random parameters the definition declares,
    /// e.g. `random = { a1 = { uniform = [0.5, 2.0] } }`; each is still
    /// drawn in the place the definition writes it, so the others' draws do
    /// not move.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub random: BTreeMap<String, RandomSpec>,
    /// The `grf` family's length scale, in periods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length_scale: Option<f64>,
    /// The `grf` family's amplitude.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amplitude: Option<f64>,
    /// The `grf` family's mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
}

impl InitialOverrides {
    /// Whether nothing is replaced.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Writes these values into the definition's `[initial]` table.
    ///
    /// A random parameter's new distribution keeps the place of the one it
    /// replaces (draws follow the order written); a `grf` number takes the
    /// table's place, so a value the family refuses is reported at the
    /// table, with the value in the message.
    ///
    /// Errors: a definition without `[initial]`, a `grf` number for an
    /// expression family or a random parameter for a `grf` one, and a random
    /// parameter the definition does not declare.
    pub(super) fn apply(
        &self,
        builder: &Builder<'_>,
        initial: &mut Option<Spanned<InitialSpec>>,
    ) -> Result<(), CustomPdeError> {
        if self.is_empty() {
            return Ok(());
        }
        let Some(initial) = initial else {
            return Err(builder.invalid(
                0..0,
                "`pde.initial` overrides the [initial] table, and the definition has none",
            ));
        };
        let at = initial.span();
        let table = initial.get_mut();
        let grf = table.family.as_ref().is_some_and(|f| f.get_ref() == "grf");
        let numbers = [
            ("length_scale", self.length_scale, &mut table.length_scale),
            ("amplitude", self.amplitude, &mut table.amplitude),
            ("mean", self.mean, &mut table.mean),
        ];
        for (key, value, slot) in numbers {
            let Some(value) = value else { continue };
            if !grf {
                return Err(builder.invalid(
                    at.clone(),
                    format!(
                        "`pde.initial.{key}` = {value}: `{key}` is a key of the grf family, \
                         and this [initial] is an expression family"
                    ),
                ));
            }
            *slot = Some(Spanned::new(at.clone(), value));
        }
        for (name, &distribution) in &self.random {
            let Some(entry) = table.random.get_mut(name) else {
                let declared: Vec<&str> = table.random.keys().map(String::as_str).collect();
                let reason = if grf {
                    "the grf family has no random parameters".to_owned()
                } else {
                    format!("the definition's random parameters are {declared:?}")
                };
                return Err(builder.invalid(
                    at,
                    format!("`pde.initial.random.{name}` is not a random parameter: {reason}"),
                ));
            };
            *entry = Spanned::new(entry.span(), distribution);
        }
        Ok(())
    }
}
