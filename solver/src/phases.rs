//! Where a training step's time goes: wall time per phase (backbone forward
//! and backward, the experts' solves and their backward pass, the losses, the
//! optimiser), accumulated by the model as a step runs.
//!
//! Why: a step mixes host and device work — the backbone and the solves on a
//! GPU, the rest on the CPU — and one median step time cannot say which part
//! to move next or which grows with the sampled points. `tessera bench
//! train-step` reports these phases next to the step time. The phases do not
//! overlap; what they leave out of a step (tensor conversions, the graph's
//! own backward traversal, gathering fields between ranks) is the step minus
//! their sum.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// One timed part of a training step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The backbone's forward pass (features to basis).
    BackboneForward,
    /// The experts' Levenberg–Marquardt solves, their problems included (and,
    /// when ranks split the experts, the exchange of their solutions).
    Solves,
    /// The losses and their gradient in `u`.
    Losses,
    /// The constraint layer's backward pass: the implicit-function-theorem
    /// solves and the pull-back to the basis.
    ConstraintBackward,
    /// The backbone's backward pass (basis gradient to parameter gradient).
    BackboneBackward,
    /// The gradient all-reduce between ranks, clipping and Adam.
    Optimiser,
}

impl Phase {
    /// Every phase, in the order a step runs them.
    pub const ALL: [Phase; 6] = [
        Phase::BackboneForward,
        Phase::Solves,
        Phase::Losses,
        Phase::ConstraintBackward,
        Phase::BackboneBackward,
        Phase::Optimiser,
    ];

    /// The phase's name in reports (`snake_case`).
    pub fn name(self) -> &'static str {
        match self {
            Phase::BackboneForward => "backbone_forward",
            Phase::Solves => "solves",
            Phase::Losses => "losses",
            Phase::ConstraintBackward => "constraint_backward",
            Phase::BackboneBackward => "backbone_backward",
            Phase::Optimiser => "optimiser",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Nanoseconds per phase since the last [`PhaseClock::take`], shared by the
/// parts of a model that run them (atomics: a phase may be timed on any
/// thread; concurrent calls add their wall times).
#[derive(Debug, Default)]
pub struct PhaseClock {
    nanos: [AtomicU64; Phase::ALL.len()],
}

/// Seconds per phase, indexed as [`Phase::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PhaseTimes {
    /// Seconds spent in each phase of [`Phase::ALL`].
    pub seconds: [f64; Phase::ALL.len()],
}

impl PhaseTimes {
    /// The seconds spent in `phase`.
    pub fn get(&self, phase: Phase) -> f64 {
        self.seconds[phase.index()]
    }

    /// The seconds of all phases together.
    pub fn total(&self) -> f64 {
        self.seconds.iter().sum()
    }
}

impl PhaseClock {
    /// Runs `f`, adding its wall time to `phase`.
    pub fn time<T>(&self, phase: Phase, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = f();
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.nanos[phase.index()].fetch_add(nanos, Ordering::Relaxed);
        out
    }

    /// The times accumulated since the last call, and starts again from zero.
    pub fn take(&self) -> PhaseTimes {
        let mut times = PhaseTimes::default();
        for (s, n) in times.seconds.iter_mut().zip(&self.nanos) {
            *s = n.swap(0, Ordering::Relaxed) as f64 * 1e-9;
        }
        times
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_phase_gets_its_own_wall_time_and_take_resets() {
        let clock = PhaseClock::default();
        let value = clock.time(Phase::Solves, || {
            std::thread::sleep(Duration::from_millis(20));
            7
        });
        assert_eq!(value, 7);
        clock.time(Phase::Losses, || {
            std::thread::sleep(Duration::from_millis(5))
        });
        clock.time(Phase::Losses, || {
            std::thread::sleep(Duration::from_millis(5))
        });
        let times = clock.take();
        // Sleeps last at least as long as asked.
        assert!(times.get(Phase::Solves) >= 0.020, "{times:?}");
        assert!(times.get(Phase::Losses) >= 0.010, "{times:?}");
        for phase in [Phase::BackboneForward, Phase::Optimiser] {
            assert_eq!(times.get(phase), 0.0);
        }
        assert_eq!(clock.take().total(), 0.0);
        let names: Vec<_> = Phase::ALL.iter().map(|p| p.name()).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        for (i, phase) in Phase::ALL.iter().enumerate() {
            assert_eq!(phase.index(), i);
        }
    }
}
