//! PDEs as data: the pointwise residual written as text, parsed once, checked,
//! and compiled to a [`Tape`] that runs on any dual-number type — so value,
//! gradient and Hessian in the terms come from the one definition, as they do
//! for a residual written in Rust — and that [`cuda`] turns into CUDA C.
//!
//! # The language
//!
//! A definition is a list of statements separated by newlines or `;`; `#`
//! starts a comment. `let name = expr` names an intermediate (so `R(u)` is
//! written once); every other statement is one residual row (several rows make a
//! system). Expressions:
//!
//! ```text
//! expr      := product (("+" | "-") product)*
//! product   := unary (("*" | "/") unary)*
//! unary     := "-" unary | power
//! power     := atom ("^" unary)?            # right-associative; -x^2 = -(x^2)
//! atom      := NUMBER | NAME | NAME "(" expr ("," expr)* ")" | "(" expr ")"
//! ```
//!
//! `−`, `×`/`·` and `÷` may stand for `-`, `*` and `/`. Functions: `exp`, `log`
//! (natural), `sqrt`, `abs`, `sin`, `cos`, `tanh` of one argument, `min`, `max`
//! of two (a tie takes the second argument, so `max(u, 0)` at `u = 0` is the
//! constant 0), `clamp(a, lo, hi) = min(max(a, lo), hi)`. Names are the terms,
//! parameters and variables of a [`Scope`], then earlier `let`s.
//!
//! The checker rejects, at the line and column in the file: syntax errors,
//! unknown names and functions, wrong numbers of arguments, a `let` that
//! shadows a name, a division by the constant 0, a constant sub-expression that
//! is NaN or infinite with the given parameter values, and a row that does not
//! depend on any term.

pub mod block;
pub mod compile;
pub mod cuda;
pub mod error;
mod lexer;
mod parser;
pub mod tape;

pub use compile::{Scope, compile};
pub use error::{ExprError, Origin, Position};
pub use tape::Tape;
