//! The residual language: parsing, checking and the tape's values, gradients and
//! Hessians against the same formulas written in Rust (and finite differences).

use num_dual::{Dual2SVec64, DualNum};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tessera_constraints::expr::{ExprError, Origin, Position, Scope, Tape, compile};

fn scope3() -> Scope {
    Scope::new()
        .term("u")
        .term("u_t")
        .term("u_xx")
        .constant("D", 5e-4)
        .constant("n_f", 0.874)
}

fn tape(text: &str) -> Tape {
    compile(text, Origin::default(), &scope3(), "residual").unwrap()
}

/// A definition that uses every operation, and the same formula in Rust.
const EVERYTHING: &str = "
let a = exp(u) * log(u_t) - sqrt(u_xx) / abs(u - 3)   # named intermediate
let b = sin(a) + cos(u_t) * tanh(u_xx)
let c = max(u, u_t) - min(u_xx, 0.5) + clamp(u, 0.2, 0.4) + max(0.1, u) - min(2, u_t)
b * c + u^2 + u_t^-3 + u_xx^n_f + u^u_t + 2^u_xx - 1/u + 3 - u_t + D/4 * u
a; -c ÷ 2 × u   # a second row; unicode operators
";

fn everything<D: DualNum<Primitive = f64> + Copy>(z: &[D]) -> [D; 3] {
    let (u, u_t, u_xx) = (z[0], z[1], z[2]);
    let mx = |a: D, b: D| if a.re() > b.re() { a } else { b };
    let mn = |a: D, b: D| if a.re() < b.re() { a } else { b };
    let k = D::from;
    let a = u.exp() * u_t.ln() - u_xx.sqrt() / (u - 3.0).abs();
    let b = a.sin() + u_t.cos() * u_xx.tanh();
    let c =
        mx(u, u_t) - mn(u_xx, k(0.5)) + mn(mx(u, k(0.2)), k(0.4)) + mx(k(0.1), u) - mn(k(2.0), u_t);
    let r0 = b * c
        + u.powi(2)
        + u_t.powi(-3)
        + u_xx.powf(0.874)
        + (u.ln() * u_t).exp()
        + (u_xx * 2f64.ln()).exp()
        - u.recip()
        + 3.0
        - u_t
        + u * (5e-4 / 4.0);
    [r0, a, -c / 2.0 * u]
}

fn random_points(n: usize, seed: u64) -> Vec<[f64; 3]> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| std::array::from_fn(|_| rng.random_range(0.05..1.5)))
        .collect()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

#[test]
fn tape_matches_the_rust_formula_in_value_gradient_and_hessian() {
    let tape = tape(EVERYTHING);
    assert_eq!(tape.n_outputs(), 3);
    for p in random_points(200, 1) {
        let z: Vec<Dual2SVec64<3>> = (0..3)
            .map(|j| Dual2SVec64::from_re(p[j]).derivative(j))
            .collect();
        let mut out = vec![Dual2SVec64::from_re(0.0); 3];
        tape.eval(&z, &mut out);
        let want = everything(&z);
        for (o, w) in out.iter().zip(&want) {
            assert!(rel(o.re, w.re) < 1e-13, "value {} vs {}", o.re, w.re);
            let (og, wg) = (o.v1.0.unwrap(), w.v1.0.unwrap());
            let (oh, wh) = (o.v2.0.unwrap(), w.v2.0.unwrap());
            for j in 0..3 {
                assert!(rel(og[j], wg[j]) < 1e-13 || (og[j] - wg[j]).abs() < 1e-13);
                for l in 0..3 {
                    let (x, y) = (oh[(j, l)], wh[(j, l)]);
                    assert!(rel(x, y) < 1e-12 || (x - y).abs() < 1e-12, "{x} vs {y}");
                }
            }
        }
    }
}

#[test]
fn gradient_matches_central_differences() {
    let tape = tape(EVERYTHING);
    let h = 1e-6;
    for p in random_points(20, 2) {
        let z: Vec<Dual2SVec64<3>> = (0..3)
            .map(|j| Dual2SVec64::from_re(p[j]).derivative(j))
            .collect();
        let mut out = vec![Dual2SVec64::from_re(0.0); 3];
        tape.eval(&z, &mut out);
        for j in 0..3 {
            let value_at = |dx: f64| {
                let mut q = p;
                q[j] += dx;
                let mut o = [0.0; 3];
                tape.eval(&q, &mut o);
                o
            };
            let (plus, minus) = (value_at(h), value_at(-h));
            for e in 0..3 {
                let fd = (plus[e] - minus[e]) / (2.0 * h);
                let exact = out[e].v1.0.unwrap()[j];
                assert!(
                    (fd - exact).abs() < 1e-5 * (1.0 + exact.abs()),
                    "{fd} vs {exact}"
                );
            }
        }
    }
}

#[test]
fn shared_subexpressions_are_computed_once_and_slots_reused() {
    // R(u) written twice costs the same as written once.
    let once = tape("let R = 1 + 3*(max(u, 0) + 1e-6)^(n_f - 1)\nu_t - D*u_xx/R");
    let twice = tape(
        "u_t - D*u_xx/(1 + 3*(max(u, 0) + 1e-6)^(n_f - 1)) + 0*(1 + 3*(max(u, 0) + 1e-6)^(n_f - 1))",
    );
    assert!(twice.instructions().len() <= once.instructions().len() + 2);
    // Unused lets compile to nothing.
    let dead = tape("let unused = exp(u) * sin(u_t)\nu_t - u_xx");
    assert_eq!(dead.instructions().len(), 1);
    assert!(once.n_slots() <= 5, "{} slots", once.n_slots());
    assert!(!dead.uses_input(0) && dead.uses_input(1) && dead.uses_input(2));
}

#[test]
fn parameters_fold_to_constants() {
    // Left-associative: the constants come first to fold into one.
    let t = tape("(1 - 0.29)/0.29 * 2880 * 3.5e-4 * n_f * u");
    assert_eq!(t.instructions().len(), 1);
    let mut out = [0.0];
    t.eval(&[2.0, 0.0, 0.0], &mut out);
    assert_eq!(
        out[0],
        2.0 * ((1.0 - 0.29) / 0.29 * 2880.0 * 3.5e-4 * 0.874)
    );
    // Written the other way round, each factor is one scaling.
    assert_eq!(tape("u * (1 - 0.29)/0.29 * 2880").instructions().len(), 3);
}

fn error(text: &str) -> ExprError {
    let origin = Origin {
        line: 7,
        column: 12,
    };
    compile(text, origin, &scope3(), "residual").unwrap_err()
}

fn at(line: usize, column: usize) -> Position {
    Position { line, column }
}

#[test]
fn errors_name_what_is_wrong_where() {
    let e = error("u_t - D*v_xx");
    assert!(
        matches!(&e, ExprError::UnknownName { name, .. } if name == "v_xx"),
        "{e}"
    );
    assert_eq!(e.position(), at(7, 20));
    assert!(e.to_string().contains("terms: u, u_t, u_xx"), "{e}");

    let e = error("u_t\n  - foo(u)");
    assert!(matches!(&e, ExprError::UnknownFunction { name, .. } if name == "foo"));
    assert_eq!(e.position(), at(8, 5));

    let e = error("max(u)");
    assert!(matches!(
        e,
        ExprError::Arity {
            function: "max",
            expected: 2,
            got: 1,
            ..
        }
    ));
    assert_eq!(e.position(), at(7, 12));

    let e = error("u_t / (n_f - 0.874)");
    assert!(matches!(e, ExprError::DivisionByZero { .. }), "{e}");
    assert_eq!(e.position(), at(7, 16));

    let e = error("u_t + log(n_f - 1)");
    assert!(matches!(e, ExprError::NonFiniteConstant { .. }), "{e}");
    assert_eq!(e.position(), at(7, 18));

    let e = error("let r = u\n D * 2");
    assert!(
        matches!(
            e,
            ExprError::NoTerm {
                what: "residual",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.position(), at(8, 2));

    let e = error("let D = u\nD");
    assert!(
        matches!(
            e,
            ExprError::Redefined {
                what: "a parameter",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.position(), at(7, 16));

    let e = error("let r = u  # only a let");
    assert!(matches!(e, ExprError::Empty { .. }), "{e}");

    let e = error("u_t - (u_xx");
    assert!(matches!(e, ExprError::Syntax { .. }), "{e}");
    assert_eq!(e.position(), at(7, 23));
}
