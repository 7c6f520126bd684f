//! The checker and compiler: names resolved against a [`Scope`], parameters
//! folded in as constants, every error a typed [`ExprError`] at its place in the
//! file, and the result lowered to a [`Tape`] (common sub-expressions shared, dead
//! `let`s dropped, slots reused once their value is dead).

use std::collections::HashMap;

use super::error::{ExprError, Origin};
use super::parser::{BinaryOp, Expr, Node, Statement, parse};
use super::tape::{self, Function, Instruction, Op, Slot, Tape};

/// The names a definition may use: terms (the inputs the solver differentiates
/// in), further input variables (coordinates, the initial value at a point) and
/// constants (parameters, folded in when compiling).
#[derive(Debug, Clone, Default)]
pub struct Scope {
    terms: Vec<String>,
    variables: Vec<String>,
    constants: Vec<(String, f64)>,
}

impl Scope {
    /// An empty scope.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a term: the next input, one a row must depend on.
    pub fn term(mut self, name: impl Into<String>) -> Self {
        self.terms.push(name.into());
        self
    }

    /// Adds an input variable that is not a term (read after all terms).
    pub fn variable(mut self, name: impl Into<String>) -> Self {
        self.variables.push(name.into());
        self
    }

    /// Adds a named constant.
    pub fn constant(mut self, name: impl Into<String>, value: f64) -> Self {
        self.constants.push((name.into(), value));
        self
    }

    /// The inputs of a tape compiled in this scope: terms, then variables.
    pub fn n_inputs(&self) -> usize {
        self.terms.len() + self.variables.len()
    }

    fn lookup(&self, name: &str) -> Option<(Value, &'static str)> {
        if let Some(i) = self.terms.iter().position(|t| t == name) {
            return Some((Value::Input(i), "a term"));
        }
        if let Some(i) = self.variables.iter().position(|t| t == name) {
            return Some((Value::Input(self.terms.len() + i), "a variable"));
        }
        self.constants
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, v)| (Value::Const(v), "a parameter"))
    }

    fn hint(&self) -> String {
        let list = |names: Vec<&str>| {
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        };
        format!(
            "terms: {}; parameters: {}; variables: {}",
            list(self.terms.iter().map(String::as_str).collect()),
            list(self.constants.iter().map(|(n, _)| n.as_str()).collect()),
            list(self.variables.iter().map(String::as_str).collect()),
        )
    }
}

/// The functions of the language, for messages.
const FUNCTIONS: &str = "exp, log, sqrt, abs, sin, cos, tanh, min, max, clamp";

/// Parses, checks and compiles `text` (starting at `origin` in its file) in
/// `scope`. Every statement that is not a `let` is one output row; `what` names
/// a row in messages (`"residual"`, `"boundary row"`). When `scope` has terms,
/// every row must depend on one; without terms (a right-hand side, a profile)
/// rows may be constants.
pub fn compile(
    text: &str,
    origin: Origin,
    scope: &Scope,
    what: &'static str,
) -> Result<Tape, ExprError> {
    let statements = parse(text, origin)?;
    let mut builder = Builder::new(scope.n_inputs(), scope.terms.len());
    let mut lets: HashMap<String, Value> = HashMap::new();
    let mut rows = Vec::new();
    let at = |offset| origin.position(text, offset);
    for statement in &statements {
        match statement {
            Statement::Let {
                name,
                offset,
                value,
            } => {
                let clash = scope
                    .lookup(name)
                    .map(|(_, what)| what)
                    .or(lets.contains_key(name).then_some("an earlier `let`"));
                if let Some(what) = clash {
                    return Err(ExprError::Redefined {
                        at: at(*offset),
                        name: name.clone(),
                        what,
                    });
                }
                let v = builder.lower(value, scope, &lets, text, origin)?;
                lets.insert(name.clone(), v);
            }
            Statement::Row { value, start } => {
                let v = builder.lower(value, scope, &lets, text, origin)?;
                // Without terms in scope (a right-hand side) any value will do.
                match v {
                    Value::Input(i) if builder.on_term[i] || scope.terms.is_empty() => rows.push(i),
                    Value::Const(c) if scope.terms.is_empty() => {
                        let Value::Input(i) = builder.emit(Op::Const(c)) else {
                            unreachable!("emit returns an SSA value")
                        };
                        rows.push(i);
                    }
                    _ => {
                        return Err(ExprError::NoTerm {
                            at: at(*start),
                            what,
                        });
                    }
                }
            }
        }
    }
    if rows.is_empty() {
        return Err(ExprError::Empty { at: at(0), what });
    }
    builder.finish(&rows).ok_or(ExprError::TooLarge {
        at: at(0),
        what: "more than 2^32 slots",
    })
}

/// A value during compilation: a folded constant or an SSA value (inputs are
/// the first SSA values).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value {
    Const(f64),
    Input(usize),
}

/// SSA values under construction; slots in the [`Op`]s are SSA ids here.
struct Builder {
    n_inputs: usize,
    /// The defining operation of every non-input SSA value.
    ops: Vec<Op>,
    /// Whether each SSA value (inputs first) depends on a term.
    on_term: Vec<bool>,
    /// Operations already emitted, keyed by their `Debug` text (exact: `f64`
    /// prints round-trip), so a repeated sub-expression is computed once.
    seen: HashMap<String, usize>,
}

impl Builder {
    fn new(n_inputs: usize, n_terms: usize) -> Self {
        Self {
            n_inputs,
            ops: Vec::new(),
            on_term: (0..n_inputs).map(|i| i < n_terms).collect(),
            seen: HashMap::new(),
        }
    }

    fn emit(&mut self, op: Op) -> Value {
        let key = format!("{op:?}");
        if let Some(&id) = self.seen.get(&key) {
            return Value::Input(id);
        }
        let id = self.n_inputs + self.ops.len();
        let on_term = op.reads().any(|s| self.on_term[s as usize]);
        self.ops.push(op);
        self.on_term.push(on_term);
        self.seen.insert(key, id);
        Value::Input(id)
    }

    fn lower(
        &mut self,
        node: &Node,
        scope: &Scope,
        lets: &HashMap<String, Value>,
        text: &str,
        origin: Origin,
    ) -> Result<Value, ExprError> {
        let at = origin.position(text, node.offset);
        let value = match &node.expr {
            Expr::Number(x) => Value::Const(*x),
            Expr::Name(name) => match lets.get(name) {
                Some(&v) => v,
                None => match scope.lookup(name) {
                    Some((v, _)) => v,
                    None => {
                        return Err(ExprError::UnknownName {
                            at,
                            name: name.clone(),
                            hint: scope.hint(),
                        });
                    }
                },
            },
            Expr::Neg(a) => match self.lower(a, scope, lets, text, origin)? {
                Value::Const(c) => Value::Const(-c),
                Value::Input(a) => self.emit(Op::Neg(slot(a))),
            },
            Expr::Binary(op, a, b) => {
                let a = self.lower(a, scope, lets, text, origin)?;
                let b = self.lower(b, scope, lets, text, origin)?;
                self.binary(*op, a, b, at)?
            }
            Expr::Call(name, args) => {
                let args = args
                    .iter()
                    .map(|a| self.lower(a, scope, lets, text, origin))
                    .collect::<Result<Vec<_>, _>>()?;
                self.call(name, &args, at)?
            }
        };
        match value {
            Value::Const(c) if !c.is_finite() => Err(ExprError::NonFiniteConstant { at, value: c }),
            v => Ok(v),
        }
    }

    fn binary(
        &mut self,
        op: BinaryOp,
        a: Value,
        b: Value,
        at: super::error::Position,
    ) -> Result<Value, ExprError> {
        use Value::{Const, Input};
        if op == BinaryOp::Div && b == Const(0.0) {
            return Err(ExprError::DivisionByZero { at });
        }
        Ok(match (op, a, b) {
            (BinaryOp::Add, Const(a), Const(b)) => Const(a + b),
            (BinaryOp::Sub, Const(a), Const(b)) => Const(a - b),
            (BinaryOp::Mul, Const(a), Const(b)) => Const(a * b),
            (BinaryOp::Div, Const(a), Const(b)) => Const(a / b),
            (BinaryOp::Pow, Const(a), Const(b)) => Const(match integer(b) {
                Some(n) => a.powi(n),
                None => a.powf(b),
            }),
            (BinaryOp::Add, Input(a), Input(b)) => self.emit(Op::Add(slot(a), slot(b))),
            (BinaryOp::Add, Input(a), Const(c)) | (BinaryOp::Add, Const(c), Input(a)) => {
                self.emit(Op::AddConst(slot(a), c))
            }
            (BinaryOp::Sub, Input(a), Input(b)) => self.emit(Op::Sub(slot(a), slot(b))),
            (BinaryOp::Sub, Input(a), Const(c)) => self.emit(Op::AddConst(slot(a), -c)),
            (BinaryOp::Sub, Const(c), Input(a)) => self.emit(Op::ConstSub(c, slot(a))),
            (BinaryOp::Mul, Input(a), Input(b)) => self.emit(Op::Mul(slot(a), slot(b))),
            (BinaryOp::Mul, Input(a), Const(c)) | (BinaryOp::Mul, Const(c), Input(a)) => {
                self.emit(Op::MulConst(slot(a), c))
            }
            (BinaryOp::Div, Input(a), Input(b)) => self.emit(Op::Div(slot(a), slot(b))),
            (BinaryOp::Div, Input(a), Const(c)) => self.emit(Op::DivConst(slot(a), c)),
            (BinaryOp::Div, Const(c), Input(a)) => self.emit(Op::ConstDiv(c, slot(a))),
            (BinaryOp::Pow, Input(a), Input(b)) => self.emit(Op::Pow(slot(a), slot(b))),
            (BinaryOp::Pow, Input(a), Const(c)) => match integer(c) {
                Some(n) => self.emit(Op::Powi(slot(a), n)),
                None => self.emit(Op::Powf(slot(a), c)),
            },
            (BinaryOp::Pow, Const(c), Input(b)) => {
                if !(c > 0.0 && c.is_finite()) {
                    return Err(ExprError::NonFiniteConstant { at, value: c.ln() });
                }
                self.emit(Op::ConstPow(c, slot(b)))
            }
        })
    }

    fn call(
        &mut self,
        name: &str,
        args: &[Value],
        at: super::error::Position,
    ) -> Result<Value, ExprError> {
        use Value::{Const, Input};
        let (function, expected): (&'static str, usize) = match name {
            "min" => ("min", 2),
            "max" => ("max", 2),
            "clamp" => ("clamp", 3),
            _ => match Function::from_name(name) {
                Some(f) => (f.name(), 1),
                None => {
                    return Err(ExprError::UnknownFunction {
                        at,
                        name: name.to_owned(),
                        known: FUNCTIONS,
                    });
                }
            },
        };
        if args.len() != expected {
            return Err(ExprError::Arity {
                at,
                function,
                expected,
                got: args.len(),
            });
        }
        Ok(match (name, args) {
            ("min" | "max", &[a, b]) => self.extremum(name == "max", a, b),
            ("clamp", &[a, lo, hi]) => {
                let low = self.extremum(true, a, lo);
                self.extremum(false, low, hi)
            }
            (_, &[Const(c)]) => Const(Function::from_name(name).map_or(c, |f| f.apply(c))),
            (_, &[Input(a)]) => match Function::from_name(name) {
                Some(f) => self.emit(Op::Call(f, slot(a))),
                None => Input(a),
            },
            _ => unreachable!("arity checked above"),
        })
    }

    /// `max(a, b)` when `is_max`, else `min(a, b)`.
    fn extremum(&mut self, is_max: bool, a: Value, b: Value) -> Value {
        use Value::{Const, Input};
        match (a, b) {
            (Const(a), Const(b)) if is_max => Const(tape::max(a, b)),
            (Const(a), Const(b)) => Const(tape::min(a, b)),
            (Input(a), Input(b)) if is_max => self.emit(Op::Max(slot(a), slot(b))),
            (Input(a), Input(b)) => self.emit(Op::Min(slot(a), slot(b))),
            (Input(a), Const(c)) if is_max => self.emit(Op::MaxConst(slot(a), c)),
            (Input(a), Const(c)) => self.emit(Op::MinConst(slot(a), c)),
            (Const(c), Input(a)) if is_max => self.emit(Op::ConstMax(c, slot(a))),
            (Const(c), Input(a)) => self.emit(Op::ConstMin(c, slot(a))),
        }
    }

    /// Drops dead values and assigns slots (reusing a slot once its value is
    /// dead); `None` if there are more than `u32::MAX` slots.
    fn finish(self, rows: &[usize]) -> Option<Tape> {
        let n = self.n_inputs + self.ops.len();
        let mut live = vec![false; n];
        for &r in rows {
            live[r] = true;
        }
        for (k, op) in self.ops.iter().enumerate().rev() {
            if live[self.n_inputs + k] {
                op.reads().for_each(|s| live[s as usize] = true);
            }
        }
        // The last instruction reading each value; outputs live to the end.
        let mut last_use = vec![None; n];
        for (k, op) in self.ops.iter().enumerate() {
            if live[self.n_inputs + k] {
                op.reads().for_each(|s| last_use[s as usize] = Some(k));
            }
        }
        for &r in rows {
            last_use[r] = Some(usize::MAX);
        }
        let mut slot_of: Vec<Slot> = vec![0; n];
        for (i, s) in slot_of.iter_mut().enumerate().take(self.n_inputs) {
            *s = Slot::try_from(i).ok()?;
        }
        let mut free: Vec<Slot> = (0..self.n_inputs)
            .filter(|&i| last_use[i].is_none())
            .map(|i| slot_of[i])
            .collect();
        let mut n_slots = self.n_inputs;
        let mut code = Vec::new();
        for (k, op) in self.ops.iter().enumerate() {
            let id = self.n_inputs + k;
            if !live[id] {
                continue;
            }
            let op = op.map_slots(|s| slot_of[s as usize]);
            for read in self.ops[k].reads() {
                if last_use[read as usize] == Some(k) && !free.contains(&slot_of[read as usize]) {
                    free.push(slot_of[read as usize]);
                }
            }
            let dst = match free.pop() {
                Some(s) => s,
                None => {
                    n_slots += 1;
                    Slot::try_from(n_slots - 1).ok()?
                }
            };
            slot_of[id] = dst;
            code.push(Instruction { dst, op });
        }
        Some(Tape {
            n_inputs: self.n_inputs,
            n_slots,
            code,
            outputs: rows.iter().map(|&r| slot_of[r]).collect(),
            used_inputs: live[..self.n_inputs].to_vec(),
        })
    }
}

/// `x` as an `i32` when it is an integer of moderate size (so `u^2` is `powi`).
fn integer(x: f64) -> Option<i32> {
    (x.fract() == 0.0 && x.abs() <= 64.0).then_some(x as i32)
}

/// An SSA id as a slot number (ids are bounded by the number of operations, far
/// below `u32::MAX` for any text that fits in memory).
fn slot(id: usize) -> Slot {
    Slot::try_from(id).unwrap_or(Slot::MAX)
}
