//! The built-in PDEs restated as TOML definitions: the files in
//! `scenarios/pdes/`, built into the library, with a configuration's
//! constants. A back end that compiles a definition instead of calling Rust —
//! the GPU solver, whose residual is the definition's emitted CUDA C — runs a
//! built-in scenario through its definition.
//!
//! A configuration has a definition only where a shipped file restates it
//! exactly: the same residual, derivative stencils, initial-condition and
//! boundary rows. `solver/tests/custom_pde_training.rs` checks that by
//! training both with changed constants; a configuration no file restates is
//! an error that names the option, so a caller can keep the built-in.

use std::collections::BTreeMap;
use std::sync::Arc;

use tessera_meshes::ops::fd::FdScheme;

use crate::config::BoundaryPlacement;
use crate::custom::CustomPde;
use crate::navier_stokes::pde::Derivatives;
use crate::{AnyPde, ScenarioError};

/// `scenarios/pdes/diffusion-sorption.toml`: the reference stencils, face rows.
const DIFFUSION_SORPTION: &str = include_str!("../pdes/diffusion-sorption.toml");
/// `scenarios/pdes/navier-stokes.toml`: the reference derivative operators.
const NAVIER_STOKES: &str = include_str!("../pdes/navier-stokes.toml");

impl AnyPde {
    /// This PDE as a TOML definition with the same constants (a PDE defined in
    /// TOML is its own definition).
    ///
    /// Errors ([`ScenarioError::Unsupported`], naming the option): a
    /// configuration no shipped definition restates — diffusion–sorption with
    /// `boundary = "cell-centres"` or second-order stencils, Navier–Stokes
    /// with spectral derivatives, the heat and advection test problems.
    pub fn definition(&self) -> Result<Arc<CustomPde>, ScenarioError> {
        let (file, text, constants) = match self {
            Self::Custom(pde) => return Ok(Arc::clone(pde)),
            Self::DiffusionSorption(ds) => {
                if ds.fd() != FdScheme::Reference {
                    return Err(unrestated(
                        "diffusion-sorption",
                        "constraint.fd",
                        "second-order",
                    ));
                }
                if ds.boundary() != BoundaryPlacement::Faces {
                    return Err(unrestated(
                        "diffusion-sorption",
                        "pde.boundary",
                        "cell-centres",
                    ));
                }
                let p = ds.params();
                let constants = [
                    ("D", p.d),
                    ("phi", p.phi),
                    ("rho_s", p.rho_s),
                    ("k_f", p.k_f),
                    ("n_f", p.n_f),
                ];
                (
                    "diffusion-sorption.toml",
                    DIFFUSION_SORPTION,
                    constants.to_vec(),
                )
            }
            Self::NavierStokes(ns) => {
                if ns.derivatives() != Derivatives::Reference {
                    return Err(unrestated("navier-stokes", "constraint.fd", "second-order"));
                }
                ("navier-stokes.toml", NAVIER_STOKES, vec![("nu", ns.nu())])
            }
            Self::Heat(_) => return Err(unrestated("heat", "pde.kind", "heat")),
            Self::Advection(_) => return Err(unrestated("advection", "pde.kind", "advection")),
        };
        let constants: BTreeMap<String, f64> = constants
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let pde = CustomPde::with_parameters(text, file, &constants)
            .map_err(|e| ScenarioError::CustomPde(Box::new(e)))?;
        Ok(Arc::new(pde))
    }
}

/// The error of a built-in `kind` whose option `key = value` no shipped
/// definition restates.
fn unrestated(kind: &str, key: &str, value: &str) -> ScenarioError {
    ScenarioError::Unsupported {
        what: "a TOML definition (scenarios/pdes/)",
        pde: format!("{kind} with `{key} = \"{value}\"`"),
    }
}

#[cfg(test)]
mod tests {
    use tessera_constraints::Pde;
    use tessera_meshes::Grid;

    use super::*;
    use crate::config::{
        AdvectionParams, DiffusionSorptionParams, FdStencils, HeatParams, NavierStokesParams,
        PdeConfig,
    };

    fn pde(config: PdeConfig, fd: FdStencils) -> AnyPde {
        AnyPde::from_config(&config, fd).unwrap()
    }

    /// The residual of `pde` at term values given by name, on `grid`.
    fn residual(pde: &AnyPde, grid: &Grid, value: impl Fn(&str) -> f64) -> f64 {
        let terms = pde.terms(grid).unwrap();
        let used = pde.residual_terms().unwrap_or(terms.len());
        let z: Vec<f64> = terms[..used].iter().map(|t| value(&t.name)).collect();
        let coords = if pde.uses_coordinates() {
            vec![0.3; grid.ndim()]
        } else {
            Vec::new()
        };
        let mut out = [0.0];
        pde.residual(&z, &coords, &mut out);
        out[0]
    }

    /// The built-in residual and its definition's agree at arbitrary term
    /// values (`names` gives them by term, `a|b` where the two name a term
    /// differently), with constants other than the file's; the file's own
    /// constants would not.
    fn assert_restated(built_in: &AnyPde, grid: &Grid, names: &[&str]) {
        let definition = AnyPde::Custom(built_in.definition().unwrap());
        let shipped = AnyPde::Custom(Arc::new(match built_in {
            AnyPde::DiffusionSorption(_) => CustomPde::from_str(DIFFUSION_SORPTION, "ds").unwrap(),
            _ => CustomPde::from_str(NAVIER_STOKES, "ns").unwrap(),
        }));
        for (k, sample) in [
            [0.7, 2e-3, -3.0, 0.4, 1.5, -0.2],
            [1e-3, -0.5, 40.0, -7.0, 0.1, 2.0],
        ]
        .iter()
        .enumerate()
        {
            let value = |name: &str| {
                names
                    .iter()
                    .position(|n| n.split('|').any(|alias| alias == name))
                    .map_or(0.0, |i| sample[i])
            };
            let want = residual(built_in, grid, value);
            let got = residual(&definition, grid, value);
            assert!(
                (got - want).abs() <= 1e-14 * want.abs().max(1.0),
                "sample {k}: {got} vs {want}"
            );
            let file = residual(&shipped, grid, value);
            assert!(
                (file - want).abs() > 1e-6 * want.abs(),
                "sample {k}: the constants changed nothing"
            );
        }
    }

    #[test]
    fn a_definition_has_the_configurations_constants() {
        let params = DiffusionSorptionParams {
            d: 1e-2,
            phi: 0.35,
            rho_s: 2000.0,
            k_f: 4e-4,
            n_f: 0.8,
            ..DiffusionSorptionParams::default()
        };
        let ds = pde(PdeConfig::DiffusionSorption(params), FdStencils::Reference);
        assert_restated(
            &ds,
            &Grid::uniform_tx(4, 6, 500.0).unwrap(),
            &["u", "u_t", "u_xx", "u_x"],
        );
        let ns = pde(
            PdeConfig::NavierStokes(NavierStokesParams { nu: 3e-2 }),
            FdStencils::Reference,
        );
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/navier-stokes-small.toml");
        let grid = crate::Scenario::from_file(path).unwrap().grid().unwrap();
        assert_restated(&ns, &grid, &["w_t", "v_x", "v_y", "w_x", "w_y", "Δw|lap_w"]);
    }

    /// Every configuration without a restating file names its option.
    #[test]
    fn an_unrestated_configuration_names_its_option() {
        let centres = DiffusionSorptionParams {
            boundary: BoundaryPlacement::CellCentres,
            ..DiffusionSorptionParams::default()
        };
        let ds = DiffusionSorptionParams::default();
        for (config, fd, key) in [
            (
                PdeConfig::DiffusionSorption(centres),
                FdStencils::Reference,
                "pde.boundary",
            ),
            (
                PdeConfig::DiffusionSorption(ds),
                FdStencils::SecondOrder,
                "constraint.fd",
            ),
            (
                PdeConfig::NavierStokes(NavierStokesParams::default()),
                FdStencils::SecondOrder,
                "constraint.fd",
            ),
            (
                PdeConfig::Heat(HeatParams::default()),
                FdStencils::Reference,
                "pde.kind",
            ),
            (
                PdeConfig::Advection(AdvectionParams::default()),
                FdStencils::Reference,
                "pde.kind",
            ),
        ] {
            match pde(config.clone(), fd).definition() {
                Err(e @ ScenarioError::Unsupported { .. }) => {
                    assert!(e.to_string().contains(key), "{config:?}: {e}")
                }
                other => panic!("{config:?}: {other:?}"),
            }
        }
    }
}
