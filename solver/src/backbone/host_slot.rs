//! Where the CPU backbone's backward pass leaves its packed parameter
//! gradient for a trainer that armed it, instead of sending it through
//! candle's graph to the variables.
//!
//! Why: the network op reads its parameters packed into one vector. Built as
//! a `cat` of the flattened variables, that vector is a node of the graph,
//! and candle's backward pass then hands each variable its gradient as a
//! zeroed tensor of its size plus the narrowed packed gradient, twice (once
//! through the `cat`, once through the flattening): at the Navier–Stokes
//! paper scale (134 M parameters) four fresh gigabyte-sized buffers and two
//! full-size sums per step, which took about a fifth of a two-core CPU step,
//! most of it faulting in fresh pages. Armed, a forward pass ties the op to a
//! one-element anchor variable instead, its passes read the variables where
//! they lie, and its backward pass writes the
//! gradient into a buffer the trainer hands back after the update. The
//! trainer reads each variable's gradient as a view of it
//! ([`HostGradientSlot::gradients`]), the same values the graph would have
//! given. An unarmed slot changes nothing: gradient checks, evaluation and
//! the per-sample path (`parallel.reproducible`) use the graph as before.
//! The GPU back end's slot (feature `cuda`) does the same on the device.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};

use candle_core::{DType, Device, Tensor, TensorId, Var};

use super::storage::{Writable, guarded, with_values_mut};

/// A backbone's gradient slot on the host (see the module doc).
#[derive(Debug)]
pub struct HostGradientSlot {
    /// Each variable's tensor id and its values in the packed vector.
    ranges: Vec<(TensorId, Range<usize>)>,
    dtype: DType,
    anchor: Var,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    armed: bool,
    /// The gradient the armed backward passes left (summed, for several).
    gradient: Option<Tensor>,
    /// A gradient buffer handed back after an update, for the next step.
    spare: Option<Tensor>,
}

impl HostGradientSlot {
    /// An idle slot for a network whose variables (by their tensors' ids)
    /// sit at `ranges` of the packed vector, in `dtype`.
    ///
    /// Errors: a dtype candle cannot hold.
    pub(crate) fn new(
        ranges: Vec<(TensorId, Range<usize>)>,
        dtype: DType,
    ) -> candle_core::Result<Self> {
        Ok(Self {
            ranges,
            dtype,
            anchor: Var::zeros(1, dtype, &Device::Cpu)?,
            state: Mutex::new(State::default()),
        })
    }

    /// Number of packed parameters.
    fn len(&self) -> usize {
        self.ranges.last().map_or(0, |(_, r)| r.end)
    }

    /// Where the variable whose tensor has id `id` sits in the packed vector.
    pub fn range_of(&self, id: TensorId) -> Option<Range<usize>> {
        range_in(&self.ranges, id)
    }

    /// Keeps the next backward passes' gradient here until the returned
    /// guard is dropped.
    pub fn arm(self: &Arc<Self>) -> ArmedHostSlot {
        self.lock().armed = true;
        ArmedHostSlot(Arc::clone(self))
    }

    /// Whether a forward pass should tie itself to the anchor.
    pub(crate) fn is_armed(&self) -> bool {
        self.lock().armed
    }

    /// What an armed forward pass ties its output to in place of the
    /// parameters: a variable of one element, the backbone's dtype.
    pub(crate) fn anchor(&self) -> &Var {
        &self.anchor
    }

    /// Runs `write` on a packed gradient buffer (the spare, or a fresh one)
    /// and leaves the result here, added to a gradient already here (a
    /// second backward pass in one step adds, as the graph would).
    ///
    /// Errors: the slot is not armed, or candle's.
    pub(crate) fn fill<T: Writable>(
        &self,
        write: impl FnOnce(&mut [T]) -> candle_core::Result<()>,
    ) -> candle_core::Result<()> {
        // The slot's lock is not held while the backward pass runs.
        let spare = {
            let mut state = self.lock();
            if !state.armed {
                candle_core::bail!("fno: a backward pass of an armed forward pass after its step");
            }
            state.spare.take()
        };
        let buffer = match spare {
            Some(b) => b,
            None => Tensor::zeros(self.len(), self.dtype, &Device::Cpu)?,
        };
        with_values_mut(&buffer, write)??;
        let mut state = self.lock();
        state.gradient = Some(match state.gradient.take() {
            None => buffer,
            Some(earlier) => {
                add_into::<T>(&earlier, &buffer)?;
                earlier
            }
        });
        Ok(())
    }

    /// Each of `vars`' gradient in `packed` (a gradient this slot left), as
    /// views of it shaped like the variable.
    ///
    /// Errors: a variable outside the packed vector, or candle's.
    pub fn gradients(
        &self,
        packed: &Tensor,
        vars: &BTreeMap<String, Var>,
    ) -> candle_core::Result<BTreeMap<String, Tensor>> {
        vars.iter()
            .map(|(name, var)| {
                let Some(range) = self.range_of(var.as_tensor().id()) else {
                    candle_core::bail!("fno: variable {name} is not one of the backbone's")
                };
                let view = packed.narrow(0, range.start, range.len())?;
                Ok((name.clone(), view.reshape(var.shape())?))
            })
            .collect()
    }

    /// Hands back a gradient taken from the slot (its views dropped), for the
    /// next step's backward pass to write into.
    pub fn recycle(&self, gradient: Tensor) {
        if gradient.elem_count() == self.len() && gradient.dtype() == self.dtype {
            self.lock().spare = Some(gradient);
        }
    }

    /// Frees the gradient buffer kept for the next step (a later backward
    /// pass allocates afresh): for a network whose training is over, so that
    /// an evaluation does not carry a parameter-sized buffer (1.1 GB at the
    /// Navier–Stokes paper scale).
    pub(crate) fn release(&self) {
        self.lock().spare = None;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is plain values: a panic elsewhere cannot break it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where the variable whose tensor has id `id` sits among `ranges` (a
/// slot's, host or device).
pub(crate) fn range_in(ranges: &[(TensorId, Range<usize>)], id: TensorId) -> Option<Range<usize>> {
    ranges
        .iter()
        .find(|(t, _)| *t == id)
        .map(|(_, r)| r.clone())
}

/// `total += more`, elementwise.
fn add_into<T: Writable>(total: &Tensor, more: &Tensor) -> candle_core::Result<()> {
    let held = more.storage_and_layout();
    let more = guarded::<T>(&held)?;
    with_values_mut(total, |t: &mut [T]| {
        t.iter_mut().zip(more).for_each(|(t, &m)| *t += m);
    })
}

/// An armed [`HostGradientSlot`]; dropping it disarms the slot (and drops a
/// gradient not taken).
#[derive(Debug)]
pub struct ArmedHostSlot(Arc<HostGradientSlot>);

impl ArmedHostSlot {
    /// The packed gradient the backward passes left, if any did.
    pub fn take(&self) -> Option<Tensor> {
        self.0.lock().gradient.take()
    }

    /// The slot.
    pub fn slot(&self) -> &HostGradientSlot {
        &self.0
    }
}

impl Drop for ArmedHostSlot {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.armed = false;
        state.gradient = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_released_slot_keeps_no_spare_gradient() {
        let var = Tensor::zeros(4, DType::F64, &Device::Cpu).unwrap();
        let slot = Arc::new(HostGradientSlot::new(vec![(var.id(), 0..4)], DType::F64).unwrap());
        let armed = slot.arm();
        slot.fill::<f64>(|g| {
            g.fill(1.5);
            Ok(())
        })
        .unwrap();
        slot.recycle(armed.take().unwrap());
        assert!(slot.lock().spare.is_some());
        slot.release();
        assert!(slot.lock().spare.is_none());
        // The next backward pass writes into a fresh buffer.
        slot.fill::<f64>(|g| {
            assert_eq!(g, &[0.0; 4]);
            Ok(())
        })
        .unwrap();
        assert!(armed.take().is_some());
    }
}
