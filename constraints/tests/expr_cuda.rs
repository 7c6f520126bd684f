//! The emitted CUDA C, compiled for the host (`__device__` defined away) with
//! the system C++ compiler the `cc` crate finds, against the CPU evaluator:
//! values, gradients and Hessians to 1e-13.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use num_dual::Dual2SVec64;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tessera_constraints::expr::{Origin, Scope, Tape, compile, cuda};

/// A host program around the emitted source: reads points (`d` variables and
/// `c` data values each) from stdin and prints value, gradient and Hessian of
/// every row, bit-exact (`%a`).
fn shim(source: &str, name: &str, d: usize, c: usize, m: usize) -> String {
    let n = d + c;
    format!(
        "#define __device__\n#include <stdio.h>\n{source}\n\
int main() {{\n  double z[{n}], v[{m}], g[{m} * {d}], h[{m} * {d} * {d}];\n\
  for (;;) {{\n    for (int k = 0; k < {n}; ++k) if (scanf(\"%la\", &z[k]) != 1) return 0;\n\
    tessera_{name}_hessian(z, z + {d}, v, g, h);\n\
    for (int e = 0; e < {m}; ++e) printf(\"%a \", v[e]);\n\
    for (int e = 0; e < {m} * {d}; ++e) printf(\"%a \", g[e]);\n\
    for (int e = 0; e < {m} * {d} * {d}; ++e) printf(\"%a \", h[e]);\n\
    printf(\"\\n\");\n  }}\n}}\n"
    )
}

/// Compiles `program` with the C++ compiler `cc` would use and runs it on
/// `input`, returning its stdout.
fn compile_and_run(program: &str, tag: &str, input: &str) -> String {
    let dir = std::env::temp_dir().join(format!("tessera-cuda-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (src, exe) = (dir.join("shim.cpp"), dir.join("shim"));
    std::fs::write(&src, program).unwrap();

    let status = common::host_cxx()
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .arg("-lm")
        .status()
        .expect("a C++ compiler runs");
    assert!(status.success(), "the emitted source does not compile");
    let mut child = Command::new(&exe)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    std::fs::remove_dir_all(&dir).ok();
    String::from_utf8(out.stdout).unwrap()
}

/// Parses C's `%a` output (`0x1.8p+1`, `-0x0p+0`, `inf`, `nan`).
fn parse_hex(s: &str) -> f64 {
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let v = if let Some(body) = s.strip_prefix("0x") {
        let (mant, exp) = body.split_once('p').unwrap();
        let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
        let mut m = u64::from_str_radix(int, 16).unwrap() as f64;
        for (k, c) in frac.chars().enumerate() {
            m += c.to_digit(16).unwrap() as f64 * 16f64.powi(-(k as i32 + 1));
        }
        m * 2f64.powi(exp.parse::<i32>().unwrap())
    } else {
        s.parse::<f64>().unwrap()
    };
    if neg { -v } else { v }
}

/// The C `%a` text of `x` (exact).
fn hex(x: f64) -> String {
    if x == 0.0 {
        return "0x0p+0".into();
    }
    let bits = x.abs().to_bits();
    let (e, m) = ((bits >> 52) as i64, bits & ((1 << 52) - 1));
    let sign = if x < 0.0 { "-" } else { "" };
    if e == 0 {
        format!("{sign}0x0.{m:013x}p-1022")
    } else {
        format!("{sign}0x1.{m:013x}p{:+}", e - 1023)
    }
}

/// Checks the emitted source against [`Tape::eval_with_data`] at `points`,
/// each `D` variables followed by the tape's remaining inputs as data.
fn check<const D: usize>(tape: &Tape, name: &str, points: &[Vec<f64>]) {
    let (m, c) = (tape.n_outputs(), tape.n_inputs() - D);
    let input: String = points
        .iter()
        .map(|p| p.iter().map(|&x| hex(x)).collect::<Vec<_>>().join(" ") + "\n")
        .collect();
    let program = shim(&cuda::emit(name, tape, c), name, D, c, m);
    let output = compile_and_run(&program, name, &input);
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), points.len(), "one line per point");
    for (p, line) in points.iter().zip(lines) {
        let got: Vec<f64> = line.split_whitespace().map(parse_hex).collect();
        let z: Vec<Dual2SVec64<D>> = (0..D)
            .map(|j| Dual2SVec64::from_re(p[j]).derivative(j))
            .collect();
        let mut out = vec![Dual2SVec64::from_re(0.0); m];
        tape.eval_with_data(&z, &p[D..], &mut out);
        let mut want = Vec::new();
        want.extend(out.iter().map(|o| o.re));
        for o in &out {
            want.extend((0..D).map(|j| o.v1.0.map_or(0.0, |g| g[j])));
        }
        for o in &out {
            want.extend((0..D * D).map(|k| o.v2.0.map_or(0.0, |h| h[(k / D, k % D)])));
        }
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-13 * w.abs().max(1e-3 * scale),
                "{name} entry {k}: C {g} vs Rust {w}"
            );
        }
    }
}

#[test]
fn hex_round_trips() {
    for x in [1.0, -0.1, 3e-300, 5e-324, 1e300, -2.5] {
        assert_eq!(parse_hex(&hex(x)), x);
    }
}

#[test]
fn emitted_diffusion_sorption_matches_the_cpu_evaluator() {
    let scope = Scope::new()
        .term("u")
        .term("u_t")
        .term("u_xx")
        .constant("D", 5e-4)
        .constant("phi", 0.29)
        .constant("rho_s", 2880.0)
        .constant("k_f", 3.5e-4)
        .constant("n_f", 0.874);
    let text = "let R = 1 + (1 - phi)/phi * rho_s * k_f * n_f * (max(u, 0) + 1e-6)^(n_f - 1)\n\
                u_t - u_xx * D / R";
    let tape = compile(text, Origin::default(), &scope, "residual").unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let points: Vec<Vec<f64>> = (0..200)
        .map(|_| {
            vec![
                rng.random_range(-0.5..1.5),
                rng.random_range(-0.01..0.01),
                rng.random_range(-50.0..50.0),
            ]
        })
        .collect();
    check::<3>(&tape, "diffusion_sorption", &points);
}

#[test]
fn emitted_code_of_every_operation_matches_the_cpu_evaluator() {
    let scope = Scope::new()
        .term("a")
        .term("b")
        .term("c")
        .constant("p", 0.874);
    let text = "
let s = exp(a) * log(b) - sqrt(c) / abs(a - 3) + sin(a) * cos(b) - tanh(c)
let q = max(a, b) - min(c, 0.5) + clamp(a, 0.2, 0.4) + max(0.1, a) - min(2, b)
s * q + a^2 + b^-3 + c^p + a^b + 2^c - 1/a + 3 - b + a/7 - (-c)
q; -s";
    let tape = compile(text, Origin::default(), &scope, "residual").unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let points: Vec<Vec<f64>> = (0..200)
        .map(|_| (0..3).map(|_| rng.random_range(0.05..1.5)).collect())
        .collect();
    check::<3>(&tape, "everything", &points);
}

#[test]
fn emitted_code_reads_coordinates_as_constants() {
    // A forced reaction–diffusion residual whose coefficients vary in t and x:
    // the coordinates enter values, and the derivatives only through the terms.
    let scope = Scope::new()
        .term("u")
        .term("u_t")
        .term("u_xx")
        .variable("t")
        .variable("x")
        .constant("nu", 0.3);
    let text = "let f = sin(3 * x) * exp(-t)\n\
                u_t - nu * (1 + x^2) * u_xx + t * u^3 - f";
    let tape = compile(text, Origin::default(), &scope, "residual").unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let points: Vec<Vec<f64>> = (0..200)
        .map(|_| (0..5).map(|_| rng.random_range(-1.0..1.0)).collect())
        .collect();
    check::<3>(&tape, "forced", &points);
}
