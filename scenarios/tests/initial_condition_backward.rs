//! Every built-in PDE's derivative in the initial condition
//! (`Pde::initial_condition_backward`, derived by hand) equals that of its
//! TOML definition (dual numbers through the definition's condition tapes,
//! the offset summed over time), on the same grid for the same cotangents;
//! cotangents that do not fit the rows or the offset are typed errors.

use tessera_constraints::{ConstraintError, LinearRowBar, Pde};
use tessera_meshes::{Axis, Grid};
use tessera_scenarios::AnyPde;
use tessera_scenarios::config::{
    AdvectionParams, BoundaryPlacement, DiffusionSorptionParams, FdStencils, HeatParams,
    NavierStokesParams, PdeConfig,
};

/// Cotangents of `pde`'s rows for `ic` as functions of each row's point and
/// each coefficient's term name (so two PDEs that order their rows and
/// terms differently get the same ones), and of the offset, if any.
fn cotangents(pde: &AnyPde, grid: &Grid, ic: &[f64]) -> (Vec<LinearRowBar>, Option<Vec<f64>>) {
    let terms = pde.terms(grid).unwrap();
    let name_code = |name: &str| name.bytes().map(f64::from).sum::<f64>();
    let rows = pde
        .linear_rows(grid, ic)
        .unwrap()
        .iter()
        .map(|row| LinearRowBar {
            coeffs: row
                .coeffs
                .iter()
                .map(|&(j, _)| (0.3 * row.point as f64 + name_code(&terms[j].name)).sin())
                .collect(),
            rhs: (0.7 * row.point as f64).cos(),
        })
        .collect();
    let offset = pde
        .solution_offset(grid, ic)
        .unwrap()
        .map(|s0| (0..s0.len()).map(|i| (1.1 * i as f64).sin()).collect());
    (rows, offset)
}

fn ic_gradient(pde: &AnyPde, grid: &Grid, ic: &[f64]) -> Vec<f64> {
    let (rows, offset) = cotangents(pde, grid, ic);
    pde.initial_condition_backward(grid, ic, &rows, offset.as_deref())
        .unwrap()
}

/// The built-in and its definition agree, and the gradient is not zero.
fn assert_restated(config: PdeConfig, fd: FdStencils, grid: &Grid, ic: &[f64]) {
    let built_in = AnyPde::from_config(&config, fd).unwrap();
    let definition = AnyPde::Custom(built_in.definition().unwrap());
    let want = ic_gradient(&built_in, grid, ic);
    let got = ic_gradient(&definition, grid, ic);
    assert_eq!(want.len(), ic.len());
    assert!(want.iter().any(|x| x.abs() > 1e-3), "{config:?}: {want:?}");
    for (g, w) in got.iter().zip(&want) {
        assert!(
            (g - w).abs() <= 1e-13 * w.abs().max(1.0),
            "{config:?}: {got:?} vs {want:?}"
        );
    }
}

#[test]
fn built_ins_differentiate_in_the_initial_condition_as_their_definitions() {
    let tx = Grid::uniform_tx(5, 7, 1.0).unwrap();
    let ic: Vec<f64> = (0..7).map(|i| 0.2 + 0.1 * f64::from(i)).collect();
    for boundary in [BoundaryPlacement::Faces, BoundaryPlacement::CellCentres] {
        let params = DiffusionSorptionParams {
            boundary,
            ..DiffusionSorptionParams::default()
        };
        let ds = PdeConfig::DiffusionSorption(params);
        assert_restated(ds, FdStencils::Reference, &tx, &ic);
    }
    let heat = PdeConfig::Heat(HeatParams { kappa: 0.2 });
    assert_restated(heat, FdStencils::SecondOrder, &tx, &ic);
    let periodic = Grid::new(vec![
        Axis::linspace("t", 0.0, 1.0, 5).unwrap(),
        Axis::periodic("x", 0.0, 1.0, 7).unwrap(),
    ])
    .unwrap();
    let advection = PdeConfig::Advection(AdvectionParams { speed: 0.7 });
    assert_restated(advection, FdStencils::Reference, &periodic, &ic);
    let txy = Grid::new(vec![
        Axis::linspace("t", 0.0, 1.0, 4).unwrap(),
        Axis::periodic("x", 0.0, 1.0, 6).unwrap(),
        Axis::periodic("y", 0.0, 1.0, 6).unwrap(),
    ])
    .unwrap();
    let ic2: Vec<f64> = (0..36).map(|i| (0.4 * f64::from(i)).sin()).collect();
    let ns = PdeConfig::NavierStokes(NavierStokesParams::default());
    assert_restated(ns, FdStencils::Reference, &txy, &ic2);
}

#[test]
fn cotangents_that_do_not_fit_are_typed_errors() {
    let tx = Grid::uniform_tx(5, 7, 1.0).unwrap();
    let ic = vec![0.5; 7];
    let heat = AnyPde::from_config(
        &PdeConfig::Heat(HeatParams::default()),
        FdStencils::Reference,
    )
    .unwrap();
    let (rows, _) = cotangents(&heat, &tx, &ic);
    let shape = |result: Result<Vec<f64>, ConstraintError>| {
        matches!(result, Err(ConstraintError::ShapeMismatch { .. }))
    };
    // One row short, a coefficient too many, an offset the PDE does not have.
    assert!(shape(heat.initial_condition_backward(
        &tx,
        &ic,
        &rows[1..],
        None
    )));
    let mut wide = rows.clone();
    wide[3].coeffs.push(1.0);
    assert!(shape(
        heat.initial_condition_backward(&tx, &ic, &wide, None)
    ));
    let offset = vec![0.0; tx.len()];
    assert!(shape(heat.initial_condition_backward(
        &tx,
        &ic,
        &rows,
        Some(&offset)
    )));
    assert!(
        heat.initial_condition_backward(&tx, &ic, &rows, None)
            .is_ok()
    );
}
