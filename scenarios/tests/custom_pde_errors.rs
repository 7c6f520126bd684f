//! Bad PDE definitions: each a typed error naming the file, the line and the
//! column of the mistake (never a panic, never a half-built PDE).

use tessera_constraints::Pde;
use tessera_constraints::expr::{ExprError, Position};
use tessera_meshes::Grid;
use tessera_scenarios::custom::{CustomPde, CustomPdeError};

/// A valid 1-D definition; tests replace one line of it.
const GOOD: &str = r#"name = "heat"
space = ["x"]
residual = '''
let flux = kappa * u_xx
u_t - flux
'''

[parameters]
kappa = 0.1

[terms]
u = "u"
u_t = "dt"
u_xx = "dxx"

[[conditions]]
at = "initial"
row = "u"
rhs = "u0"

[[conditions]]
at = "x-min"
kind = "dirichlet"
row = "u"

[[conditions]]
at = "x-max"
kind = "dirichlet"
row = "u"
"#;

/// `GOOD` with line `line` (1-based) replaced by `new`.
fn with_line(line: usize, new: &str) -> String {
    GOOD.lines()
        .enumerate()
        .map(|(i, l)| if i + 1 == line { new } else { l })
        .collect::<Vec<_>>()
        .join("\n")
}

fn error(text: &str) -> CustomPdeError {
    match CustomPde::from_str(text, "bad.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

fn at(line: usize, column: usize) -> Option<Position> {
    Some(Position { line, column })
}

#[test]
fn the_good_definition_is_accepted_and_runs() {
    let pde = CustomPde::from_str(GOOD, "good.toml").unwrap();
    let grid = Grid::uniform_tx(4, 6, 1.0).unwrap();
    let ic = [0.5; 6];
    // 6 initial rows, 3 rows on each boundary.
    assert_eq!(pde.linear_rows(&grid, &ic).unwrap().len(), 12);
    let mut out = [0.0];
    // The residual reads u_t and u_xx (u only enters the rows).
    assert_eq!(pde.residual_terms(), Some(2));
    pde.residual(&[2.0f64, 3.0], &[], &mut out);
    assert_eq!(out[0], 2.0 - 0.1 * 3.0);
}

#[test]
fn every_error_names_file_line_and_column() {
    // Expression errors inside a multi-line string: positions in the file.
    let e = error(&with_line(5, "u_t - flux * (u"));
    assert!(
        matches!(
            e,
            CustomPdeError::Expr {
                source: ExprError::Syntax { .. },
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.position(), at(5, 16));
    assert!(
        e.to_string().starts_with("bad.toml:5:16: syntax error"),
        "{e}"
    );

    let e = error(&with_line(5, "u_t - flux + v_x"));
    assert!(
        matches!(&e, CustomPdeError::Expr { source: ExprError::UnknownName { name, .. }, .. } if name == "v_x")
    );
    assert_eq!(e.position(), at(5, 14));

    let e = error(&with_line(4, "let flux = kappa * max(u_xx)"));
    assert!(
        matches!(
            e,
            CustomPdeError::Expr {
                source: ExprError::Arity { .. },
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.position(), at(4, 20));

    let e = error(&with_line(5, "u_t - flux / (kappa - 0.1)"));
    assert!(
        matches!(
            e,
            CustomPdeError::Expr {
                source: ExprError::DivisionByZero { .. },
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.position(), at(5, 12));

    let e = error(&with_line(5, "kappa * 2"));
    assert!(
        matches!(
            e,
            CustomPdeError::Expr {
                source: ExprError::NoTerm { .. },
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.position(), at(5, 1));

    // A NaN-producing parameter value: in the TOML, and through an expression.
    let e = error(&with_line(9, "kappa = nan"));
    assert!(matches!(e, CustomPdeError::Invalid { .. }), "{e}");
    assert_eq!(e.position(), at(9, 9));
    let e = error(&with_line(4, "let flux = sqrt(-kappa) * u_xx"));
    assert!(
        matches!(
            e,
            CustomPdeError::Expr {
                source: ExprError::NonFiniteConstant { .. },
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.position(), at(4, 12));

    // Schema and TOML errors.
    let e = error(&with_line(13, "u_t = \"dtt\""));
    assert!(e.to_string().contains("unknown operator `dtt`"), "{e}");
    assert_eq!(e.position(), at(13, 7));
    let e = error(&with_line(2, "space = [\"x\", \"z\"]"));
    assert_eq!(e.position(), at(2, 9));
    let e = error(&with_line(2, "space = [\"x\"]\nperiodic = [true, false]"));
    assert!(e.to_string().contains("`periodic` has 2 flag(s)"), "{e}");
    assert_eq!(e.position(), at(3, 12));
    let e = error(&with_line(
        14,
        "u_xx = { op = \"dxx\", stencil = \"spectral\" }",
    ));
    assert!(e.to_string().contains("periodic"), "{e}");
    assert_eq!(e.position(), at(14, 8));
    // The unknown key, then the `name` it leaves missing.
    let e = error(&with_line(1, "nme = \"heat\""));
    assert!(matches!(e, CustomPdeError::TomlSeveral { .. }), "{e}");
    assert_eq!(e.position().map(|p| p.line), Some(1));
    let e = error(&with_line(9, "kappa = 0.1 0.2"));
    assert!(matches!(e, CustomPdeError::Toml { .. }), "{e}");
    assert_eq!(e.position().map(|p| p.line), Some(9));

    // Condition rows: not linear, wrong kind, unknown place.
    let e = error(&with_line(18, "row = \"u * u\""));
    assert!(e.to_string().contains("linear"), "{e}");
    assert_eq!(e.position(), at(18, 7));
    let e = error(&with_line(23, "kind = \"neumann\""));
    assert!(e.to_string().contains("only derivative terms"), "{e}");
    assert_eq!(e.position(), at(24, 7));
    let e = error(&with_line(22, "at = \"x-middle\""));
    assert_eq!(e.position(), at(22, 6));
    let e = error(&with_line(19, "rhs = \"u0 + u\""));
    assert!(
        matches!(&e, CustomPdeError::Expr { source: ExprError::UnknownName { name, .. }, .. } if name == "u")
    );
    assert_eq!(e.position(), at(19, 13));
}

#[test]
fn missing_boundary_and_initial_rows_are_reported() {
    // Drop the x-max condition: u_xx on a bounded axis needs rows at both ends.
    let cut = GOOD.find("[[conditions]]\nat = \"x-max\"").unwrap();
    let e = error(&GOOD[..cut]);
    assert!(e.to_string().contains("x-min and x-max"), "{e}");
    assert_eq!(e.position(), at(3, 12));
    // Drop the initial condition.
    let start = GOOD.find("[[conditions]]\nat = \"initial\"").unwrap();
    let end = GOOD.find("[[conditions]]\nat = \"x-min\"").unwrap();
    let text = format!("{}{}", &GOOD[..start], &GOOD[end..]);
    assert!(error(&text).to_string().contains("no `initial` condition"));
}

#[test]
fn a_zero_initial_value_under_a_division_is_a_typed_error() {
    let text = with_line(18, "row = \"u / u0\"");
    let pde = CustomPde::from_str(&text, "div.toml").unwrap();
    let grid = Grid::uniform_tx(4, 6, 1.0).unwrap();
    let mut ic = [0.5; 6];
    ic[2] = 0.0;
    assert!(pde.linear_rows(&grid, &ic).is_err());
    // The wrong grid or initial-condition shape.
    assert!(pde.linear_rows(&grid, &ic[..5]).is_err());
    assert!(
        pde.terms(&Grid::uniform_txy(4, 6, 6, 1.0).unwrap())
            .is_err()
    );
}

/// Several unknown keys (top level, in an array of tables and in a term's
/// table) are named in one error, each with its line and column, found here
/// by searching the text; the header names the file alone.
#[test]
fn every_unknown_key_is_named_at_once() {
    let text = with_line(2, "space = [\"x\"]\nsapce = 1")
        .replacen("kind = ", "knd = ", 1)
        .replacen(
            "u_t = \"dt\"",
            "u_t = { op = \"dt\", stencl = \"reference\" }",
            1,
        );
    let find = |needle: &str| {
        let line = text.lines().position(|l| l.starts_with(needle)).unwrap();
        Position {
            line: line + 1,
            column: 1,
        }
    };
    let e = error(&text);
    assert!(matches!(e, CustomPdeError::TomlSeveral { .. }), "{e}");
    assert_eq!(e.position(), Some(find("sapce")));
    let shown = e.to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines[0], "bad.toml: 3 problems:", "{shown}");
    let term = text.lines().position(|l| l.contains("stencl")).unwrap() + 1;
    let column = text.lines().nth(term - 1).unwrap().find("stencl").unwrap() + 1;
    for (line, (key, at)) in lines[1..4].iter().zip([
        ("sapce", find("sapce")),
        ("stencl", Position { line: term, column }),
        ("knd", find("knd")),
    ]) {
        let expected = format!(
            "  line {}, column {}: unknown field `{key}`",
            at.line, at.column
        );
        assert!(line.starts_with(&expected), "{shown}");
    }
}

/// A term's table takes `op` and `stencil` only: a misspelt `stencil` used
/// to leave the term on the default stencil without a word.
#[test]
fn an_unknown_key_in_a_term_table_is_named() {
    let text = with_line(14, "u_xx = { op = \"dxx\", stencl = \"reference\" }");
    let e = error(&text);
    assert!(matches!(e, CustomPdeError::Toml { .. }), "{e}");
    let column = text.lines().nth(13).unwrap().find("stencl").unwrap() + 1;
    assert_eq!(e.position(), Some(Position { line: 14, column }), "{e}");
    assert!(
        e.to_string()
            .contains("unknown field `stencl`, expected `op` or `stencil`"),
        "{e}"
    );
    // Neither a string nor a table is a term.
    let e = error(&with_line(14, "u_xx = 3"));
    assert!(matches!(e, CustomPdeError::Toml { .. }), "{e}");
    assert!(e.to_string().contains("expected an operator"), "{e}");
}

/// A condition row whose coefficients are all zero constrains nothing: it is
/// refused at its row, not taken by the method of lines for a Robin row with
/// `α = β = 0` once data generation has begun.
#[test]
fn a_row_that_is_zero_in_every_term_is_refused_at_its_row() {
    for row in ["row = \"0*u\"", "row = \"u - u\""] {
        let e = error(&with_line(24, row));
        assert_eq!(e.position(), at(24, 7), "{row}: {e}");
        assert!(e.to_string().contains("zero in every term"), "{e}");
    }
}

/// A condition whose value is not finite at its points of a grid is named
/// (its file, its `at` and the point) before any solver meets it.
#[test]
fn a_condition_that_is_not_finite_on_the_grid_is_named_with_the_point() {
    let text = with_line(24, "row = \"u\"\nrhs = \"log(x - 1)\"");
    let pde = CustomPde::from_str(&text, "nan.toml").unwrap();
    let grid = Grid::uniform_tx(4, 6, 1.0).unwrap();
    let e = pde.check_condition_values(&grid).unwrap_err();
    assert_eq!(e.position(), at(22, 6), "{e}");
    let message = e.to_string();
    assert!(message.starts_with("nan.toml:22:6"), "{message}");
    assert!(
        message.contains("`x-min`") && message.contains("NaN"),
        "{message}"
    );
    assert!(
        message.contains("t = ") && message.contains("x = "),
        "{message}"
    );
    // The good definition's values are finite.
    let good = CustomPde::from_str(GOOD, "good.toml").unwrap();
    good.check_condition_values(&grid).unwrap();
}
