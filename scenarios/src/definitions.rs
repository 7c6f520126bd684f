//! The built-in PDEs restated as TOML definitions: the files in
//! `scenarios/pdes/`, built into the library, with a configuration's
//! constants. A back end that compiles a definition instead of calling Rust —
//! the GPU solver, whose residual is the definition's emitted CUDA C — runs a
//! built-in scenario through its definition.
//!
//! A configuration has a definition only where a shipped file restates it
//! exactly: the same residual, derivative stencils, initial-condition and
//! boundary rows. Diffusion–sorption has one file per boundary placement and
//! Navier–Stokes one per derivative option; diffusion–sorption's
//! second-order stencils (and the heat equation's) are the same file read
//! with that default stencil, since the residual and rows do not change with
//! the stencils. Every configuration a scenario can describe has its file;
//! `solver/tests/custom_pde_training.rs` checks each by training both with
//! changed constants.

use std::collections::BTreeMap;
use std::sync::Arc;

use tessera_meshes::ops::fd::FdScheme;

use crate::config::BoundaryPlacement;
use crate::custom::{CustomPde, InitialOverrides};
use crate::navier_stokes::pde::Derivatives;
use crate::{AnyPde, ScenarioError};

/// `scenarios/pdes/diffusion-sorption.toml`: the reference stencils, face rows.
const DIFFUSION_SORPTION: &str = include_str!("../pdes/diffusion-sorption.toml");
/// `scenarios/pdes/diffusion-sorption-cell-centres.toml`: the reference
/// stencils, the paper's code's rows at the first and last cell centres.
const DIFFUSION_SORPTION_CELL_CENTRES: &str =
    include_str!("../pdes/diffusion-sorption-cell-centres.toml");
/// `scenarios/pdes/navier-stokes.toml`: the reference derivative operators.
const NAVIER_STOKES: &str = include_str!("../pdes/navier-stokes.toml");
/// `scenarios/pdes/navier-stokes-spectral.toml`: spectral in space,
/// second-order in time.
const NAVIER_STOKES_SPECTRAL: &str = include_str!("../pdes/navier-stokes-spectral.toml");
/// `scenarios/pdes/heat.toml`: the reference stencils.
const HEAT: &str = include_str!("../pdes/heat.toml");
/// `scenarios/pdes/advection.toml`: the built-in's one scheme.
const ADVECTION: &str = include_str!("../pdes/advection.toml");

impl AnyPde {
    /// This PDE as a TOML definition with the same constants and stencils (a
    /// PDE defined in TOML is its own definition).
    ///
    /// Errors: periodic stencils on diffusion–sorption's or the heat
    /// equation's bounded axis, which no file restates
    /// ([`ScenarioError::Unsupported`], naming the option; their
    /// constructors refuse them, so no built-in value reaches this).
    pub fn definition(&self) -> Result<Arc<CustomPde>, ScenarioError> {
        let (file, text, constants, stencil) = match self {
            Self::Custom(pde) => return Ok(Arc::clone(pde)),
            Self::DiffusionSorption(ds) => {
                let (file, text) = match ds.boundary() {
                    BoundaryPlacement::Faces => ("diffusion-sorption.toml", DIFFUSION_SORPTION),
                    BoundaryPlacement::CellCentres => (
                        "diffusion-sorption-cell-centres.toml",
                        DIFFUSION_SORPTION_CELL_CENTRES,
                    ),
                };
                let stencil = match ds.fd() {
                    FdScheme::Reference => None,
                    FdScheme::SecondOrder => Some("second-order"),
                    FdScheme::Periodic => {
                        return Err(unrestated(
                            "diffusion-sorption",
                            "constraint.fd",
                            "periodic",
                        ));
                    }
                };
                let p = ds.params();
                let constants = [
                    ("D", p.d),
                    ("phi", p.phi),
                    ("rho_s", p.rho_s),
                    ("k_f", p.k_f),
                    ("n_f", p.n_f),
                ];
                (file, text, constants.to_vec(), stencil)
            }
            Self::NavierStokes(ns) => {
                let (file, text) = match ns.derivatives() {
                    Derivatives::Reference => ("navier-stokes.toml", NAVIER_STOKES),
                    Derivatives::Spectral => {
                        ("navier-stokes-spectral.toml", NAVIER_STOKES_SPECTRAL)
                    }
                };
                (file, text, vec![("nu", ns.nu())], None)
            }
            Self::Heat(heat) => {
                let stencil = match heat.fd() {
                    FdScheme::Reference => None,
                    FdScheme::SecondOrder => Some("second-order"),
                    FdScheme::Periodic => {
                        return Err(unrestated("heat", "constraint.fd", "periodic"));
                    }
                };
                ("heat.toml", HEAT, vec![("kappa", heat.kappa())], stencil)
            }
            Self::Advection(advection) => (
                "advection.toml",
                ADVECTION,
                vec![("c", advection.speed())],
                None,
            ),
        };
        let constants: BTreeMap<String, f64> = constants
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let pde = CustomPde::with_overrides(
            text,
            file,
            &constants,
            &InitialOverrides::default(),
            stencil,
        )
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
            AnyPde::DiffusionSorption(ds) if ds.boundary() == BoundaryPlacement::CellCentres => {
                CustomPde::from_str(DIFFUSION_SORPTION_CELL_CENTRES, "ds").unwrap()
            }
            AnyPde::DiffusionSorption(_) => CustomPde::from_str(DIFFUSION_SORPTION, "ds").unwrap(),
            AnyPde::NavierStokes(ns) if ns.derivatives() == Derivatives::Spectral => {
                CustomPde::from_str(NAVIER_STOKES_SPECTRAL, "ns").unwrap()
            }
            AnyPde::Heat(_) => CustomPde::from_str(HEAT, "heat").unwrap(),
            AnyPde::Advection(_) => CustomPde::from_str(ADVECTION, "advection").unwrap(),
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
        for boundary in [BoundaryPlacement::Faces, BoundaryPlacement::CellCentres] {
            let params = DiffusionSorptionParams { boundary, ..params };
            let ds = pde(PdeConfig::DiffusionSorption(params), FdStencils::Reference);
            assert_restated(
                &ds,
                &Grid::uniform_tx(4, 6, 500.0).unwrap(),
                &["u", "u_t", "u_xx", "u_x"],
            );
        }
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/navier-stokes-small.toml");
        let grid = crate::Scenario::from_file(path).unwrap().grid().unwrap();
        for fd in [FdStencils::Reference, FdStencils::SecondOrder] {
            let ns = pde(PdeConfig::NavierStokes(NavierStokesParams { nu: 3e-2 }), fd);
            assert_restated(&ns, &grid, &["w_t", "v_x", "v_y", "w_x", "w_y", "Δw|lap_w"]);
        }
        let tx = Grid::uniform_tx(4, 6, 1.0).unwrap();
        for fd in [FdStencils::Reference, FdStencils::SecondOrder] {
            let heat = pde(PdeConfig::Heat(HeatParams { kappa: 0.37 }), fd);
            assert_restated(&heat, &tx, &["u", "u_t", "u_xx"]);
        }
        let advection = pde(
            PdeConfig::Advection(AdvectionParams { speed: -0.6 }),
            FdStencils::Reference,
        );
        let periodic = Grid::new(vec![
            tessera_meshes::Axis::linspace("t", 0.0, 1.0, 4).unwrap(),
            tessera_meshes::Axis::periodic("x", 0.0, 1.0, 6).unwrap(),
        ])
        .unwrap();
        assert_restated(&advection, &periodic, &["u", "u_t", "u_x"]);
    }

    /// Term values by term name, and rows as (point, right-hand side,
    /// nonzero coefficients by term name), sorted by point and name: what
    /// two restatements share whatever order they give their terms in (a
    /// definition puts the residual's first).
    type Restatement = (
        BTreeMap<String, Vec<f64>>,
        Vec<(usize, f64, Vec<(String, f64)>)>,
    );

    /// The term values of `pde` on a field of `grid`, and its rows for the
    /// initial condition `ic`.
    fn terms_and_rows(pde: &AnyPde, grid: &Grid, ic: &[f64]) -> Restatement {
        let n = grid.shape().len();
        let field: Vec<f64> = (0..n).map(|i| (0.37 * i as f64).sin().exp()).collect();
        let terms = pde.terms(grid).unwrap();
        let values = terms
            .iter()
            .map(|term| {
                let mut out = vec![0.0; n];
                term.operator.apply(&field, 1, &mut out);
                (term.name.clone(), out)
            })
            .collect();
        let mut rows: Vec<_> = pde
            .linear_rows(grid, ic)
            .unwrap()
            .into_iter()
            .map(|row| {
                let mut coeffs: Vec<(String, f64)> = row
                    .coeffs
                    .iter()
                    .filter(|&&(_, c)| c != 0.0)
                    .map(|&(j, c)| (terms[j].name.clone(), c))
                    .collect();
                coeffs.sort_by(|a, b| a.0.cmp(&b.0));
                (row.point, row.rhs, coeffs)
            })
            .collect();
        rows.sort_by_key(|r| r.0);
        (values, rows)
    }

    /// `definition`'s term values and rows on `grid` for the initial
    /// condition `ic` are `built_in`'s (each row with the same point,
    /// coefficients and right-hand side to round-off); returns the
    /// built-in's.
    fn assert_same_terms_and_rows(
        built_in: &AnyPde,
        definition: &AnyPde,
        grid: &Grid,
        ic: &[f64],
        what: &str,
    ) -> Restatement {
        let (want_terms, want_rows) = terms_and_rows(built_in, grid, ic);
        let (terms, rows) = terms_and_rows(definition, grid, ic);
        assert_eq!(terms, want_terms, "{what}: term values");
        assert_eq!(rows.len(), want_rows.len(), "{what}");
        for (row, want) in rows.iter().zip(&want_rows) {
            assert_eq!(row.0, want.0, "{what}: points");
            assert!(
                (row.1 - want.1).abs() <= 1e-15,
                "{what}: {row:?} vs {want:?}"
            );
            assert_eq!(row.2.len(), want.2.len(), "{what}: {row:?} vs {want:?}");
            for ((name, c), (want_name, w)) in row.2.iter().zip(&want.2) {
                assert!(
                    name == want_name && (c - w).abs() <= 1e-15 * w.abs(),
                    "{what}: {row:?} vs {want:?}"
                );
            }
        }
        (want_terms, want_rows)
    }

    /// Every diffusion–sorption configuration has a definition with the
    /// built-in's derivative stencils and initial and boundary rows: the
    /// boundary placement chooses the file, the stencils its default stencil.
    /// The four configurations differ from each other, so each comparison
    /// sees what its options change.
    #[test]
    fn every_diffusion_sorption_configuration_is_restated() {
        let grid = Grid::uniform_tx(5, 7, 500.0).unwrap();
        let ic: Vec<f64> = (0..7).map(|i| 0.2 + 0.1 * f64::from(i)).collect();
        let mut seen: Vec<Restatement> = Vec::new();
        for boundary in [BoundaryPlacement::Faces, BoundaryPlacement::CellCentres] {
            for fd in [FdStencils::Reference, FdStencils::SecondOrder] {
                let params = DiffusionSorptionParams {
                    boundary,
                    ..DiffusionSorptionParams::default()
                };
                let built_in = pde(PdeConfig::DiffusionSorption(params), fd);
                let definition = AnyPde::Custom(built_in.definition().unwrap());
                let what = format!("{boundary:?}, {fd:?}");
                let restatement =
                    assert_same_terms_and_rows(&built_in, &definition, &grid, &ic, &what);
                assert!(
                    !seen.contains(&restatement),
                    "{what} is another configuration's"
                );
                seen.push(restatement);
            }
        }
    }

    /// The heat equation, with either stencils, and advection have
    /// definitions with the built-ins' stencils and rows; the heat
    /// equation's two stencils differ, so the comparison sees the option.
    #[test]
    fn the_heat_and_advection_test_problems_are_restated() {
        let grid = Grid::uniform_tx(5, 7, 1.0).unwrap();
        let ic: Vec<f64> = (0..7).map(|i| (0.9 * f64::from(i)).sin()).collect();
        let mut seen = Vec::new();
        for fd in [FdStencils::Reference, FdStencils::SecondOrder] {
            let built_in = pde(PdeConfig::Heat(HeatParams { kappa: 0.2 }), fd);
            let definition = AnyPde::Custom(built_in.definition().unwrap());
            let what = format!("heat, {fd:?}");
            let (terms, _) = assert_same_terms_and_rows(&built_in, &definition, &grid, &ic, &what);
            assert!(!seen.contains(&terms), "{what} is the other stencil's");
            seen.push(terms);
        }
        let periodic = Grid::new(vec![
            tessera_meshes::Axis::linspace("t", 0.0, 1.0, 5).unwrap(),
            tessera_meshes::Axis::periodic("x", 0.0, 1.0, 7).unwrap(),
        ])
        .unwrap();
        let built_in = pde(
            PdeConfig::Advection(AdvectionParams { speed: 0.7 }),
            FdStencils::Reference,
        );
        let definition = AnyPde::Custom(built_in.definition().unwrap());
        assert_same_terms_and_rows(&built_in, &definition, &periodic, &ic, "advection");
    }

    /// Every configuration a scenario can describe — each kind with each
    /// `constraint.fd`, diffusion–sorption with each boundary placement —
    /// has its definition.
    #[test]
    fn every_configuration_has_a_definition() {
        let ds = |boundary| {
            PdeConfig::DiffusionSorption(DiffusionSorptionParams {
                boundary,
                ..DiffusionSorptionParams::default()
            })
        };
        for config in [
            ds(BoundaryPlacement::Faces),
            ds(BoundaryPlacement::CellCentres),
            PdeConfig::NavierStokes(NavierStokesParams::default()),
            PdeConfig::Heat(HeatParams::default()),
            PdeConfig::Advection(AdvectionParams::default()),
        ] {
            for fd in [FdStencils::Reference, FdStencils::SecondOrder] {
                if let Err(e) = pde(config.clone(), fd).definition() {
                    panic!("{config:?}, {fd:?}: {e}");
                }
            }
        }
    }
}
