//! The network op with its backward pass timed: candle calls an op's backward
//! from inside the graph's traversal, so the only place that sees exactly the
//! backbone's share of a step's backward pass is the op itself. Wraps the CPU
//! network op and the device one alike.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use crate::phases::{Phase, PhaseClock};

/// `op`, its backward pass adding its wall time to
/// [`Phase::BackboneBackward`].
pub(crate) struct TimedBackward<Op> {
    op: Op,
    clock: Arc<PhaseClock>,
}

impl<Op> TimedBackward<Op> {
    pub(crate) fn new(op: Op, clock: Arc<PhaseClock>) -> Self {
        Self { op, clock }
    }
}

impl<Op: CustomOp2> CustomOp2 for TimedBackward<Op> {
    fn name(&self) -> &'static str {
        self.op.name()
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.op.cpu_fwd(s1, l1, s2, l2)
    }

    fn bwd(
        &self,
        arg1: &Tensor,
        arg2: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        self.clock.time(Phase::BackboneBackward, || {
            self.op.bwd(arg1, arg2, res, grad_res)
        })
    }
}
