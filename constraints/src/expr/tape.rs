//! The compiled form of a residual definition: a flat list of instructions over
//! numbered slots, run once per point on any dual-number type (or an
//! instruction at a time over a block of points: [`super::block`]).
//!
//! Each instruction writes one slot from earlier slots and constants (the
//! definition's parameters are folded in as constants when it is compiled).
//! Slots `0..n_inputs` hold the inputs (the terms, then any further variables);
//! [`Tape::n_slots`] is small because a slot is reused once its value is dead, so
//! the whole register file of one point lives on the stack.
//!
//! Instructions with a constant operand are kept apart from those with two slot
//! operands: `D · c` costs a scaling of the dual parts where `D · D` costs the
//! product rule (and, for second-order duals, a Hessian outer product) — the same
//! distinction the compiled Rust residuals make by writing `z · ν`.

use num_dual::DualNum;

/// A slot index.
pub type Slot = u32;

/// A function of one argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// `exp`
    Exp,
    /// `log` (natural)
    Ln,
    /// `sqrt`
    Sqrt,
    /// `abs`, with the derivative of `x` for `x ≥ 0` and of `−x` below.
    Abs,
    /// `sin`
    Sin,
    /// `cos`
    Cos,
    /// `tanh`
    Tanh,
}

impl Function {
    /// The function named `name` in the language.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "exp" => Self::Exp,
            "log" => Self::Ln,
            "sqrt" => Self::Sqrt,
            "abs" => Self::Abs,
            "sin" => Self::Sin,
            "cos" => Self::Cos,
            "tanh" => Self::Tanh,
            _ => return None,
        })
    }

    /// The name in the language (and in C).
    pub fn name(self) -> &'static str {
        match self {
            Self::Exp => "exp",
            Self::Ln => "log",
            Self::Sqrt => "sqrt",
            Self::Abs => "abs",
            Self::Sin => "sin",
            Self::Cos => "cos",
            Self::Tanh => "tanh",
        }
    }

    /// `f(a)` on any number type.
    #[inline(always)]
    pub fn apply<D: DualNum<Primitive = f64> + Copy>(self, a: D) -> D {
        match self {
            Self::Exp => a.exp(),
            Self::Ln => a.ln(),
            Self::Sqrt => a.sqrt(),
            Self::Abs => {
                if a.re() < 0.0 {
                    -a
                } else {
                    a
                }
            }
            Self::Sin => a.sin(),
            Self::Cos => a.cos(),
            Self::Tanh => a.tanh(),
        }
    }
}

/// `max(a, b)`: ties take `b` (and its derivatives), so `max(u, 0)` at `u = 0`
/// is the constant 0 — the convention of `jnp.where(u > 0, u, 0)`.
#[inline(always)]
pub fn max<D: DualNum<Primitive = f64> + Copy>(a: D, b: D) -> D {
    if a.re() > b.re() { a } else { b }
}

/// `min(a, b)`: ties take `b`.
#[inline(always)]
pub fn min<D: DualNum<Primitive = f64> + Copy>(a: D, b: D) -> D {
    if a.re() < b.re() { a } else { b }
}

/// `a^b` for a non-constant exponent: `exp(b·ln a)`.
#[inline(always)]
pub fn pow<D: DualNum<Primitive = f64> + Copy>(a: D, b: D) -> D {
    (a.ln() * b).exp()
}

/// One operation; `S` operands are slots, `f64` operands constants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    /// The constant `c` (a row that is a constant, e.g. a right-hand side).
    Const(f64),
    /// `a + b`
    Add(Slot, Slot),
    /// `a − b`
    Sub(Slot, Slot),
    /// `a · b`
    Mul(Slot, Slot),
    /// `a / b`
    Div(Slot, Slot),
    /// `a + c`
    AddConst(Slot, f64),
    /// `c − a`
    ConstSub(f64, Slot),
    /// `a · c`
    MulConst(Slot, f64),
    /// `a / c`
    DivConst(Slot, f64),
    /// `c / a`
    ConstDiv(f64, Slot),
    /// `−a`
    Neg(Slot),
    /// `a^n`, integer `n`
    Powi(Slot, i32),
    /// `a^c`, constant non-integer `c`
    Powf(Slot, f64),
    /// `a^b`
    Pow(Slot, Slot),
    /// `c^b`
    ConstPow(f64, Slot),
    /// `f(a)`
    Call(Function, Slot),
    /// `max(a, b)`
    Max(Slot, Slot),
    /// `min(a, b)`
    Min(Slot, Slot),
    /// `max(a, c)`
    MaxConst(Slot, f64),
    /// `min(a, c)`
    MinConst(Slot, f64),
    /// `max(c, a)` (ties take `a`)
    ConstMax(f64, Slot),
    /// `min(c, a)` (ties take `a`)
    ConstMin(f64, Slot),
}

impl Op {
    /// The slots it reads.
    pub fn reads(&self) -> impl Iterator<Item = Slot> {
        let (a, b) = match *self {
            Self::Const(_) => (None, None),
            Self::Add(a, b)
            | Self::Sub(a, b)
            | Self::Mul(a, b)
            | Self::Div(a, b)
            | Self::Pow(a, b)
            | Self::Max(a, b)
            | Self::Min(a, b) => (Some(a), Some(b)),
            Self::AddConst(a, _)
            | Self::ConstSub(_, a)
            | Self::MulConst(a, _)
            | Self::DivConst(a, _)
            | Self::ConstDiv(_, a)
            | Self::Neg(a)
            | Self::Powi(a, _)
            | Self::Powf(a, _)
            | Self::ConstPow(_, a)
            | Self::Call(_, a)
            | Self::MaxConst(a, _)
            | Self::MinConst(a, _)
            | Self::ConstMax(_, a)
            | Self::ConstMin(_, a) => (Some(a), None),
        };
        a.into_iter().chain(b)
    }

    /// The same operation reading `map(slot)` for every slot.
    pub(crate) fn map_slots(self, map: impl Fn(Slot) -> Slot) -> Self {
        match self {
            Self::Const(c) => Self::Const(c),
            Self::Add(a, b) => Self::Add(map(a), map(b)),
            Self::Sub(a, b) => Self::Sub(map(a), map(b)),
            Self::Mul(a, b) => Self::Mul(map(a), map(b)),
            Self::Div(a, b) => Self::Div(map(a), map(b)),
            Self::Pow(a, b) => Self::Pow(map(a), map(b)),
            Self::Max(a, b) => Self::Max(map(a), map(b)),
            Self::Min(a, b) => Self::Min(map(a), map(b)),
            Self::AddConst(a, c) => Self::AddConst(map(a), c),
            Self::ConstSub(c, a) => Self::ConstSub(c, map(a)),
            Self::MulConst(a, c) => Self::MulConst(map(a), c),
            Self::DivConst(a, c) => Self::DivConst(map(a), c),
            Self::ConstDiv(c, a) => Self::ConstDiv(c, map(a)),
            Self::Neg(a) => Self::Neg(map(a)),
            Self::Powi(a, n) => Self::Powi(map(a), n),
            Self::Powf(a, c) => Self::Powf(map(a), c),
            Self::ConstPow(c, a) => Self::ConstPow(c, map(a)),
            Self::Call(f, a) => Self::Call(f, map(a)),
            Self::MaxConst(a, c) => Self::MaxConst(map(a), c),
            Self::MinConst(a, c) => Self::MinConst(map(a), c),
            Self::ConstMax(c, a) => Self::ConstMax(c, map(a)),
            Self::ConstMin(c, a) => Self::ConstMin(c, map(a)),
        }
    }

    /// The value of the operation with slots read from `r`.
    #[inline(always)]
    fn apply<D: DualNum<Primitive = f64> + Copy>(&self, r: &[D]) -> D {
        self.apply_with(|i| r[i as usize])
    }

    /// The value of the operation with slot `i` read as `s(i)`: the one
    /// definition of every operation, for the per-point register file and for
    /// the block evaluator's operands (which it passes by value, keeping them
    /// in registers).
    #[inline(always)]
    pub(super) fn apply_with<D: DualNum<Primitive = f64> + Copy>(
        &self,
        s: impl Fn(Slot) -> D,
    ) -> D {
        match *self {
            Self::Const(c) => D::from(c),
            Self::Add(a, b) => s(a) + s(b),
            Self::Sub(a, b) => s(a) - s(b),
            Self::Mul(a, b) => s(a) * s(b),
            Self::Div(a, b) => s(a) / s(b),
            Self::AddConst(a, c) => s(a) + c,
            Self::ConstSub(c, a) => -s(a) + c,
            Self::MulConst(a, c) => s(a) * c,
            Self::DivConst(a, c) => s(a) / c,
            Self::ConstDiv(c, a) => D::from(c) / s(a),
            Self::Neg(a) => -s(a),
            Self::Powi(a, n) => s(a).powi(n),
            Self::Powf(a, c) => s(a).powf(c),
            Self::Pow(a, b) => pow(s(a), s(b)),
            Self::ConstPow(c, b) => (s(b) * c.ln()).exp(),
            Self::Call(f, a) => f.apply(s(a)),
            Self::Max(a, b) => max(s(a), s(b)),
            Self::Min(a, b) => min(s(a), s(b)),
            Self::MaxConst(a, c) => max(s(a), D::from(c)),
            Self::MinConst(a, c) => min(s(a), D::from(c)),
            Self::ConstMax(c, a) => max(D::from(c), s(a)),
            Self::ConstMin(c, a) => min(D::from(c), s(a)),
        }
    }
}

/// One instruction: `slots[dst] = op(slots)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Instruction {
    /// The slot written.
    pub dst: Slot,
    /// What is computed.
    pub op: Op,
}

/// A compiled definition: inputs in slots `0..n_inputs`, outputs read from
/// [`Tape::outputs`] after the instructions ran.
#[derive(Debug, Clone, PartialEq)]
pub struct Tape {
    pub(crate) n_inputs: usize,
    pub(crate) n_slots: usize,
    pub(crate) code: Vec<Instruction>,
    pub(crate) outputs: Vec<Slot>,
    pub(crate) used_inputs: Vec<bool>,
}

/// The largest register file kept on the stack; longer definitions use the heap.
const STACK_SLOTS: usize = 64;

impl Tape {
    /// Number of inputs (terms first, then variables).
    pub fn n_inputs(&self) -> usize {
        self.n_inputs
    }

    /// Number of outputs (residual rows).
    pub fn n_outputs(&self) -> usize {
        self.outputs.len()
    }

    /// Number of slots of the register file (inputs included).
    pub fn n_slots(&self) -> usize {
        self.n_slots
    }

    /// The instructions, in execution order.
    pub fn instructions(&self) -> &[Instruction] {
        &self.code
    }

    /// The slots holding the outputs after the instructions ran.
    pub fn outputs(&self) -> &[Slot] {
        &self.outputs
    }

    /// Whether any output depends on input `i`.
    pub fn uses_input(&self, i: usize) -> bool {
        self.used_inputs.get(i).copied().unwrap_or(false)
    }

    /// Runs the tape at one point: `inputs` has [`Tape::n_inputs`] values, `out`
    /// receives [`Tape::n_outputs`] values.
    ///
    /// # Panics
    /// If the slice lengths are wrong.
    #[inline]
    pub fn eval<D: DualNum<Primitive = f64> + Copy>(&self, inputs: &[D], out: &mut [D]) {
        self.eval_with_data(inputs, &[], out);
    }

    /// [`Tape::eval`] with the inputs split in two: `z` (numbers of type `D`,
    /// the ones a derivative is taken in) followed by `data` (plain values,
    /// lifted as constants: the coordinates of a point), `z.len() + data.len()`
    /// of them in all.
    ///
    /// # Panics
    /// If the slice lengths are wrong.
    #[inline]
    pub fn eval_with_data<D: DualNum<Primitive = f64> + Copy>(
        &self,
        z: &[D],
        data: &[f64],
        out: &mut [D],
    ) {
        assert_eq!(
            z.len() + data.len(),
            self.n_inputs,
            "wrong number of inputs"
        );
        assert_eq!(out.len(), self.outputs.len(), "wrong number of outputs");
        // The register file is sized by dispatch so that a short definition
        // copies a few slots per point, not `STACK_SLOTS`.
        match self.n_slots {
            0..=4 => self.run::<D, 4>(z, data, out),
            5..=8 => self.run::<D, 8>(z, data, out),
            9..=16 => self.run::<D, 16>(z, data, out),
            17..=STACK_SLOTS => self.run::<D, STACK_SLOTS>(z, data, out),
            _ => {
                let mut slots = vec![D::zero(); self.n_slots];
                self.execute(&mut slots, z, data, out);
            }
        }
    }

    #[inline(always)]
    fn run<D: DualNum<Primitive = f64> + Copy, const R: usize>(
        &self,
        z: &[D],
        data: &[f64],
        out: &mut [D],
    ) {
        let mut slots = [D::zero(); R];
        self.execute(&mut slots, z, data, out);
    }

    #[inline(always)]
    fn execute<D: DualNum<Primitive = f64> + Copy>(
        &self,
        slots: &mut [D],
        z: &[D],
        data: &[f64],
        out: &mut [D],
    ) {
        slots[..z.len()].copy_from_slice(z);
        for (slot, &x) in slots[z.len()..].iter_mut().zip(data) {
            *slot = D::from(x);
        }
        for ins in &self.code {
            let value = ins.op.apply(slots);
            slots[ins.dst as usize] = value;
        }
        for (o, &s) in out.iter_mut().zip(&self.outputs) {
            *o = slots[s as usize];
        }
    }
}
