//! A [`Tape`] run over a block of points: each instruction over a chunk of
//! points at once, instead of the whole tape at one point.
//!
//! Why: the per-point interpreter ([`Tape::eval`]) dispatches every
//! instruction, and moves whole dual numbers (value, `d` gradient entries,
//! `d²` Hessian entries) through its register file, at every point. Here the
//! registers are structure-of-arrays — per slot, one array of 64 points for
//! each carried component — so an instruction is dispatched once per chunk and
//! its chain-rule loops run over contiguous lanes, which vectorise.
//!
//! **One semantics.** An instruction's value and its local partial derivatives
//! in its (at most two distinct) operands come from the definition the
//! per-point evaluator runs (`Op::apply_with`), on small dual numbers in those
//! operands: `f64` for values; `Dual64` seeded in each operand for first
//! derivatives; `Dual2_64` (one operand) or `Dual2SVec64<2>` (two) for second
//! derivatives. The block evaluator only adds the chain rule
//! `y' = φ_a a' + φ_b b'`,
//! `y'' = φ_a a'' + φ_b b'' + φ_aa a'a'ᵀ + φ_ab (a'b'ᵀ + b'a'ᵀ) + φ_bb b'b'ᵀ`,
//! which is what the dual numbers compute, up to the order of the roundings.
//! One difference at singular points: a dual number carries every entry, so a
//! structural zero times an infinite partial (the gradient of `sqrt(u_xx)` at
//! `u_xx = 0`, in the direction of `u`) is NaN there, where the block
//! evaluator, which skips structural zeros, keeps the entry 0; the infinite
//! entry of the same row is in both.
//!
//! **Only the entries that can be nonzero.** Input `j` has the unit gradient
//! `e_j`, and an instruction's gradient can be nonzero only where one of its
//! operands' is (its Hessian: where theirs are, plus the outer product of the
//! gradients' patterns for a nonlinear instruction). These patterns are bit
//! masks, worked out once per call from the tape alone; only the entries they
//! name are computed and stored (diffusion–sorption's `R(u)` carries one
//! gradient entry and one Hessian entry instead of 3 and 9).
//!
//! **Affine instructions** (sums, differences, scalings by constants,
//! constants) have partials that do not depend on the point: they are taken
//! once per call, from the same definition on dual numbers, and the value is
//! computed as the affine form, a loop that vectorises.

use num_dual::{Dual2_64, Dual2SVec64, Dual64, DualSVec64};

use super::tape::{Op, Slot, Tape};

/// Points per chunk: the registers of a chunk stay in the L1/L2 cache, and the
/// lane loops are long enough to amortise an instruction's dispatch.
const LANES: usize = 64;

/// The most inputs the derivative evaluators take (the constraint layer's
/// limit on residual terms): gradient patterns are bit masks over inputs and
/// Hessian patterns bit masks over the `d(d+1)/2 ≤ 36` pairs `j ≤ l`.
pub const MAX_BLOCK_INPUTS: usize = 8;

/// A set of gradient entries (bit `j`) or Hessian entries (bit `pair(j, l)`).
type Mask = u64;

/// What is carried per point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Order {
    Value,
    Gradient,
    Hessian,
}

/// The outputs of a block evaluation; layouts as in
/// [`crate::pointwise`]: `values` `[n, m]`, `grads` `[n, m, d]`, `hessians`
/// `[n, m, d, d]` (empty when not asked for).
struct Outputs<'a> {
    values: &'a mut [f64],
    grads: &'a mut [f64],
    hessians: &'a mut [f64],
}

/// Index of the Hessian entry `(j, l)`, `j ≤ l`, in the packed upper triangle.
fn pair(d: usize, j: usize, l: usize) -> usize {
    j * d - j * (j + 1) / 2 + l
}

/// The bits set in `mask`, lowest first.
fn bits(mut mask: Mask) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let j = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            j
        })
    })
}

/// Whether `mask` holds `bit`.
fn has(mask: Mask, bit: usize) -> bool {
    mask >> bit & 1 == 1
}

/// The Hessian pattern `g gᵀ` of a nonlinear function of entries `g`.
fn outer(d: usize, g: Mask) -> Mask {
    let mut h = 0;
    for j in bits(g) {
        for l in bits(g >> j << j) {
            h |= 1 << pair(d, j, l);
        }
    }
    h
}

/// One instruction, prepared for the chunks.
#[derive(Debug, Clone, Copy)]
struct Step {
    dst: usize,
    /// The instruction reading its distinct operands from slots 0 and 1.
    local: Op,
    /// The distinct operand slots; `arity` of them are meaningful.
    args: [usize; 2],
    arity: usize,
    /// The affine form of an affine instruction.
    affine: Option<Affine>,
    /// Gradient and Hessian patterns of the operands and of the result.
    grad: [Mask; 2],
    hess: [Mask; 2],
    out_grad: Mask,
    out_hess: Mask,
}

impl Op {
    /// Whether the operation is affine in its slot operands, so that its
    /// partials are the same at every point.
    fn is_affine(&self) -> bool {
        matches!(
            self,
            Op::Const(_)
                | Op::Add(..)
                | Op::Sub(..)
                | Op::AddConst(..)
                | Op::ConstSub(..)
                | Op::MulConst(..)
                | Op::DivConst(..)
                | Op::Neg(_)
        )
    }
}

/// An affine instruction as `c + φ_a a + φ_b b`, with `c`, `φ_a`, `φ_b` taken
/// from its definition on dual numbers at `a = b = 0`. Its value is computed
/// in this form, which vectorises (`1·a + c` and `a − b` are exact; `a · (1/c)`
/// for `a / c` is within an ulp).
#[derive(Debug, Clone, Copy)]
struct Affine {
    constant: f64,
    partials: [f64; 2],
}

/// The instructions with their operand and result patterns, and the patterns
/// of every slot after the last instruction (those of the outputs).
struct Plan {
    steps: Vec<Step>,
    grad: Vec<Mask>,
    hess: Vec<Mask>,
}

impl Plan {
    /// The plan for carrying `order` in the first `d` inputs (the others are
    /// data: their patterns are empty); below `order`, all patterns are empty.
    fn new(tape: &Tape, order: Order, d: usize) -> Self {
        let mut grad: Vec<Mask> = vec![0; tape.n_slots];
        let mut hess: Vec<Mask> = vec![0; tape.n_slots];
        if order >= Order::Gradient {
            for (j, g) in grad.iter_mut().enumerate().take(d) {
                *g = 1 << j;
            }
        }
        let steps = tape
            .code
            .iter()
            .map(|ins| {
                let mut args = [0; 2];
                let mut arity = 0;
                for r in ins.op.reads() {
                    let r = r as usize;
                    if !args[..arity].contains(&r) {
                        args[arity] = r;
                        arity += 1;
                    }
                }
                let local = ins.op.map_slots(|s| u32::from(s as usize != args[0]));
                let affine = local.is_affine().then(|| {
                    let x = [0, 1].map(|i| DualSVec64::<2>::from_re(0.0).derivative(i));
                    let y = local.apply_with(|i| x[i as usize]);
                    Affine {
                        constant: y.re,
                        partials: y.eps.0.map_or([0.0; 2], |e| [e[0], e[1]]),
                    }
                });
                let operand = |masks: &[Mask], i: usize| if i < arity { masks[args[i]] } else { 0 };
                let g = [operand(&grad, 0), operand(&grad, 1)];
                let h = [operand(&hess, 0), operand(&hess, 1)];
                let out_grad = g[0] | g[1];
                let curvature = order == Order::Hessian && affine.is_none();
                let out_hess = h[0] | h[1] | if curvature { outer(d, out_grad) } else { 0 };
                let dst = ins.dst as usize;
                grad[dst] = out_grad;
                hess[dst] = out_hess;
                Step {
                    dst,
                    local,
                    args,
                    arity,
                    affine,
                    grad: g,
                    hess: h,
                    out_grad,
                    out_hess,
                }
            })
            .collect();
        Self { steps, grad, hess }
    }
}

/// The local values and partials of one instruction over a chunk's lanes.
struct Local {
    value: [f64; LANES],
    /// `φ_a, φ_b`
    first: [[f64; LANES]; 2],
    /// `φ_aa, φ_ab, φ_bb`
    second: [[f64; LANES]; 3],
}

/// Lanes of zeros: the operand an instruction does not have.
static ZERO: [f64; LANES] = [0.0; LANES];

/// `y = p · x`, lane by lane.
#[inline(always)]
fn set_product(y: &mut [f64], p: &[f64], x: &[f64]) {
    for ((y, p), x) in y.iter_mut().zip(p).zip(x) {
        *y = p * x;
    }
}

/// `y += p · x`, lane by lane.
#[inline(always)]
fn add_product(y: &mut [f64], p: &[f64], x: &[f64]) {
    for ((y, p), x) in y.iter_mut().zip(p).zip(x) {
        *y += p * x;
    }
}

/// `y += p · x · w`, lane by lane.
#[inline(always)]
fn add_product3(y: &mut [f64], p: &[f64], x: &[f64], w: &[f64]) {
    for (((y, p), x), w) in y.iter_mut().zip(p).zip(x).zip(w) {
        *y += p * x * w;
    }
}

impl Tape {
    /// Runs the tape at `n` points: the inputs are `z`, `[n, d]`, followed by
    /// `data`, `[n, c]` with `d + c = n_inputs` (the split matters only for
    /// derivatives: `data`, e.g. the points' coordinates, is never
    /// differentiated); `values` receives `[n, n_outputs]`. The same numbers as
    /// [`Tape::eval`] on `f64`, an instruction at a time over chunks of points
    /// (see [`crate::expr::block`]).
    ///
    /// # Panics
    /// If the slice lengths are wrong.
    pub fn eval_block(&self, z: &[f64], data: &[f64], values: &mut [f64]) {
        self.run_block(
            Order::Value,
            z,
            data,
            Outputs {
                values,
                grads: &mut [],
                hessians: &mut [],
            },
        );
    }

    /// Values and gradients in the `d` inputs `z` at `n` points (`grads` is
    /// `[n, n_outputs, d]`; inputs as in [`Tape::eval_block`]): what
    /// [`Tape::eval`] computes on `DualSVec64<d>` seeded with the unit vectors
    /// (the `data` inputs as constants), up to round-off.
    ///
    /// # Panics
    /// If the slice lengths are wrong or `d` is above [`MAX_BLOCK_INPUTS`].
    pub fn eval_gradients_block(
        &self,
        z: &[f64],
        data: &[f64],
        values: &mut [f64],
        grads: &mut [f64],
    ) {
        self.run_block(
            Order::Gradient,
            z,
            data,
            Outputs {
                values,
                grads,
                hessians: &mut [],
            },
        );
    }

    /// Values, gradients and Hessians in the `d` inputs `z` at `n` points
    /// (`hessians` is `[n, n_outputs, d, d]`): what [`Tape::eval`] computes on
    /// `Dual2SVec64<d>`, up to round-off.
    ///
    /// # Panics
    /// As [`Tape::eval_gradients_block`].
    pub fn eval_hessians_block(
        &self,
        z: &[f64],
        data: &[f64],
        values: &mut [f64],
        grads: &mut [f64],
        hessians: &mut [f64],
    ) {
        self.run_block(
            Order::Hessian,
            z,
            data,
            Outputs {
                values,
                grads,
                hessians,
            },
        );
    }

    fn run_block(&self, order: Order, z: &[f64], data: &[f64], out: Outputs<'_>) {
        let m = self.outputs.len();
        // The points are counted by the values (a tape may have no inputs).
        let n = out.values.len() / m.max(1);
        assert_eq!(out.values.len(), n * m, "wrong number of values");
        if n == 0 {
            return;
        }
        let (d, c) = (z.len() / n, data.len() / n);
        assert!(
            z.len() == n * d && data.len() == n * c && d + c == self.n_inputs,
            "the inputs are not {} values per point",
            self.n_inputs
        );
        assert!(
            order == Order::Value || d <= MAX_BLOCK_INPUTS,
            "{d} inputs: derivatives over blocks take at most {MAX_BLOCK_INPUTS}"
        );
        let per_point = |k: usize| if order >= Order::Gradient { k } else { 0 };
        assert_eq!(
            out.grads.len(),
            n * m * per_point(d),
            "wrong number of gradient entries"
        );
        let per_point = |k: usize| if order == Order::Hessian { k } else { 0 };
        assert_eq!(
            out.hessians.len(),
            n * m * per_point(d * d),
            "wrong number of Hessian entries"
        );

        let plan = Plan::new(self, order, d);
        let n_comp = match order {
            Order::Value => 1,
            Order::Gradient => 1 + d,
            Order::Hessian => 1 + d + d * (d + 1) / 2,
        };
        let mut chunk = Chunk {
            order,
            d,
            regs: vec![vec![0.0; n_comp * LANES]; self.n_slots],
            result: vec![0.0; n_comp * LANES],
            local: Box::new(Local {
                value: [0.0; LANES],
                first: [[0.0; LANES]; 2],
                second: [[0.0; LANES]; 3],
            }),
        };
        let mut out = out;
        for start in (0..n).step_by(LANES) {
            let len = LANES.min(n - start);
            chunk.load(&z[start * d..(start + len) * d], len);
            chunk.load_data(&data[start * c..(start + len) * c], len);
            for step in &plan.steps {
                chunk.execute(step, len);
            }
            chunk.store(self, &plan, start, len, &mut out);
        }
    }
}

/// The register file of one chunk: per slot, component `c` at lane `k` at
/// `c · LANES + k`; component 0 is the value, `1 + j` the gradient entry `j`,
/// `1 + d + pair(j, l)` the Hessian entry `(j, l)`.
struct Chunk {
    order: Order,
    d: usize,
    regs: Vec<Vec<f64>>,
    /// The result of the instruction being run, swapped with its slot's
    /// registers once done (the slot may be one of its operands).
    result: Vec<f64>,
    local: Box<Local>,
}

/// The lanes of component `comp` of one slot's registers.
fn lanes(regs: &[f64], comp: usize) -> &[f64] {
    &regs[comp * LANES..(comp + 1) * LANES]
}

/// [`lanes`], to write.
fn lanes_mut(regs: &mut [f64], comp: usize) -> &mut [f64] {
    &mut regs[comp * LANES..(comp + 1) * LANES]
}

impl Chunk {
    /// The inputs into slots `0..d`, each with its unit gradient.
    fn load(&mut self, z: &[f64], len: usize) {
        let d = self.d;
        for (j, regs) in self.regs.iter_mut().enumerate().take(d) {
            for (v, p) in lanes_mut(regs, 0)
                .iter_mut()
                .zip(z.chunks_exact(d))
                .take(len)
            {
                *v = p[j];
            }
            if self.order >= Order::Gradient {
                lanes_mut(regs, 1 + j).fill(1.0);
            }
        }
    }

    /// The data inputs into slots `d..d + c`, values only: their patterns are
    /// empty, so no derivative entry of theirs is ever read.
    fn load_data(&mut self, data: &[f64], len: usize) {
        let Some(c) = data.len().checked_div(len).filter(|&c| c > 0) else {
            return;
        };
        for (j, regs) in self.regs.iter_mut().skip(self.d).take(c).enumerate() {
            for (v, p) in lanes_mut(regs, 0).iter_mut().zip(data.chunks_exact(c)) {
                *v = p[j];
            }
        }
    }

    fn execute(&mut self, step: &Step, len: usize) {
        self.local_partials(step, len);
        let Chunk {
            order,
            d,
            regs,
            result,
            local,
            ..
        } = self;
        let d = *d;
        let operand = |i: usize, comp: usize| {
            if i < step.arity {
                &lanes(&regs[step.args[i]], comp)[..len]
            } else {
                &ZERO[..len]
            }
        };
        let [pa, pb] = local.first.each_ref().map(|p| &p[..len]);
        lanes_mut(result, 0)[..len].copy_from_slice(&local.value[..len]);
        if *order >= Order::Gradient {
            let [ga, gb] = step.grad;
            for j in bits(step.out_grad) {
                let y = &mut lanes_mut(result, 1 + j)[..len];
                if has(ga, j) {
                    set_product(y, pa, operand(0, 1 + j));
                    if has(gb, j) {
                        add_product(y, pb, operand(1, 1 + j));
                    }
                } else {
                    set_product(y, pb, operand(1, 1 + j));
                }
            }
        }
        if *order == Order::Hessian {
            let [paa, pab, pbb] = local.second.each_ref().map(|p| &p[..len]);
            let [ga, gb] = step.grad;
            for j in 0..d {
                for l in j..d {
                    let p = pair(d, j, l);
                    if !has(step.out_hess, p) {
                        continue;
                    }
                    let y = &mut lanes_mut(result, 1 + d + p)[..len];
                    y.fill(0.0);
                    if has(step.hess[0], p) {
                        add_product(y, pa, operand(0, 1 + d + p));
                    }
                    if has(step.hess[1], p) {
                        add_product(y, pb, operand(1, 1 + d + p));
                    }
                    if step.affine.is_some() {
                        continue;
                    }
                    let (aj, al) = (operand(0, 1 + j), operand(0, 1 + l));
                    let (bj, bl) = (operand(1, 1 + j), operand(1, 1 + l));
                    if has(ga, j) && has(ga, l) {
                        add_product3(y, paa, aj, al);
                    }
                    if has(ga, j) && has(gb, l) {
                        add_product3(y, pab, aj, bl);
                    }
                    if has(gb, j) && has(ga, l) {
                        add_product3(y, pab, bj, al);
                    }
                    if has(gb, j) && has(gb, l) {
                        add_product3(y, pbb, bj, bl);
                    }
                }
            }
        }
        // The slot's registers become the result's: the value and the entries
        // that can be nonzero are current, the others are never read.
        std::mem::swap(&mut regs[step.dst], result);
    }

    /// The value and the partials `φ_a, φ_b` (and `φ_aa, φ_ab, φ_bb`) of the
    /// instruction at every lane, from its definition (`Op::apply_with`) on
    /// dual numbers in its operands, or from its affine form.
    fn local_partials(&mut self, step: &Step, len: usize) {
        let regs = &self.regs;
        let value = |i: usize| {
            if i < step.arity {
                lanes(&regs[step.args[i]], 0)
            } else {
                &ZERO
            }
        };
        let (a, b) = (&value(0)[..len], &value(1)[..len]);
        let op = step.local;
        let local = &mut self.local;
        let v = &mut local.value[..len];
        let [pa, pb] = &mut local.first;
        let (pa, pb) = (&mut pa[..len], &mut pb[..len]);
        match (step.affine, self.order) {
            (Some(affine), _) => {
                let [ca, cb] = affine.partials;
                v.fill(affine.constant);
                if step.arity >= 1 {
                    add_product(v, &[ca; LANES][..len], a);
                }
                if step.arity == 2 {
                    add_product(v, &[cb; LANES][..len], b);
                }
                pa.fill(ca);
                pb.fill(cb);
            }
            (None, Order::Value) => {
                for k in 0..len {
                    v[k] = op.apply_with(|i| if i == 0 { a[k] } else { b[k] });
                }
            }
            // One operand: scalar dual numbers, which carry no pattern of
            // nonzero entries and so no branches.
            (None, Order::Gradient) if step.arity <= 1 => {
                for k in 0..len {
                    let y = op.apply_with(|_| Dual64::from_re(a[k]).derivative());
                    (v[k], pa[k]) = (y.re, y.eps);
                }
            }
            (None, Order::Hessian) if step.arity <= 1 => {
                let paa = &mut local.second[0][..len];
                for k in 0..len {
                    let y = op.apply_with(|_| Dual2_64::from_re(a[k]).derivative());
                    (v[k], pa[k], paa[k]) = (y.re, y.v1, y.v2);
                }
            }
            // Two operands: once seeded in each (scalar dual numbers again;
            // one `DualSVec64<2>` costs more than both).
            (None, Order::Gradient) => {
                for k in 0..len {
                    let seeded = |i: Slot, s: Slot| {
                        let x = if i == 0 { a[k] } else { b[k] };
                        Dual64::new(x, if i == s { 1.0 } else { 0.0 })
                    };
                    let y = op.apply_with(|i| seeded(i, 0));
                    (v[k], pa[k]) = (y.re, y.eps);
                    pb[k] = op.apply_with(|i| seeded(i, 1)).eps;
                }
            }
            (None, Order::Hessian) => {
                let [paa, pab, pbb] = &mut local.second;
                for k in 0..len {
                    let x = [
                        Dual2SVec64::<2>::from_re(a[k]).derivative(0),
                        Dual2SVec64::<2>::from_re(b[k]).derivative(1),
                    ];
                    let y = op.apply_with(|i| x[i as usize]);
                    v[k] = y.re;
                    [pa[k], pb[k]] = y.v1.0.map_or([0.0; 2], |e| [e[0], e[1]]);
                    [paa[k], pab[k], pbb[k]] =
                        y.v2.0
                            .map_or([0.0; 3], |h| [h[(0, 0)], h[(0, 1)], h[(1, 1)]]);
                }
            }
        }
    }

    /// The outputs of the chunk's `len` points, starting at point `start`.
    fn store(&self, tape: &Tape, plan: &Plan, start: usize, len: usize, out: &mut Outputs<'_>) {
        let (d, m) = (self.d, tape.outputs.len());
        for (o, &slot) in tape.outputs.iter().enumerate() {
            let slot = slot as usize;
            let regs = &self.regs[slot];
            for (k, &v) in lanes(regs, 0)[..len].iter().enumerate() {
                out.values[(start + k) * m + o] = v;
            }
            if self.order >= Order::Gradient {
                for j in 0..d {
                    let lanes = has(plan.grad[slot], j).then(|| lanes(regs, 1 + j));
                    for k in 0..len {
                        out.grads[((start + k) * m + o) * d + j] = lanes.map_or(0.0, |g| g[k]);
                    }
                }
            }
            if self.order == Order::Hessian {
                for j in 0..d {
                    for l in 0..d {
                        let p = pair(d, j.min(l), j.max(l));
                        let lanes = has(plan.hess[slot], p).then(|| lanes(regs, 1 + d + p));
                        for k in 0..len {
                            out.hessians[((start + k) * m + o) * d * d + j * d + l] =
                                lanes.map_or(0.0, |h| h[k]);
                        }
                    }
                }
            }
        }
    }
}
