//! Where the wall time of the GPU solver's calls goes: packing on the host,
//! copies to the device, the kernel, copies back.
//!
//! Why: a GPU constraint layer's time is as much the bus as the kernel (at
//! the paper's diffusion–sorption scale the problems are some 200 MB a
//! step), and a report that only times whole calls cannot say which to work
//! on. Each part ends at a synchronisation of the stream, so a kernel's time
//! is not charged to the copy that waits for it.

use std::time::Instant;

/// Seconds spent in each part of a kind of call, summed over calls.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GpuTimes {
    /// Calls summed.
    pub calls: usize,
    /// Packing the problems into the kernel's arrays (a backward pass on a
    /// kept batch packs nothing).
    pub pack_s: f64,
    /// Copies to the device and allocations there, and for problems whose
    /// term rows are gathered on the device ([`super::RowGather`]) the
    /// gather kernel that builds them, and in their backward pass the
    /// kernels that sum the experts' `ω̄` ([`super::GpuLm::pull_back`]).
    pub upload_s: f64,
    /// The kernel, from its launch to its end.
    pub kernel_s: f64,
    /// Copies back to the host.
    pub download_s: f64,
    /// Rounds of the solver's kernels queued (see `lm.cu`): a solve's,
    /// counting those queued after its last problem was done, or a
    /// backward pass's two.
    pub rounds: usize,
}

impl GpuTimes {
    /// The parts by name (`pack`, `upload`, `kernel`, `download`), each the
    /// mean seconds per call (zero without calls).
    pub fn means(&self) -> [(&'static str, f64); 4] {
        let per_call = |s: f64| {
            if self.calls > 0 {
                s / self.calls as f64
            } else {
                0.0
            }
        };
        [
            ("pack", per_call(self.pack_s)),
            ("upload", per_call(self.upload_s)),
            ("kernel", per_call(self.kernel_s)),
            ("download", per_call(self.download_s)),
        ]
    }

    /// The mean rounds per call (zero without calls).
    pub fn rounds_per_call(&self) -> f64 {
        if self.calls > 0 {
            self.rounds as f64 / self.calls as f64
        } else {
            0.0
        }
    }
}

impl std::ops::AddAssign for GpuTimes {
    fn add_assign(&mut self, other: Self) {
        self.calls += other.calls;
        self.pack_s += other.pack_s;
        self.upload_s += other.upload_s;
        self.kernel_s += other.kernel_s;
        self.download_s += other.download_s;
        self.rounds += other.rounds;
    }
}

/// The two kinds of call of a [`super::GpuLm`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SolveTimes {
    /// Levenberg–Marquardt solves.
    pub solve: GpuTimes,
    /// Implicit-function-theorem backward passes.
    pub backward: GpuTimes,
}

/// Laps of one call: each [`Stopwatch::lap`] returns the seconds since the
/// previous one (or since the start).
#[derive(Debug)]
pub struct Stopwatch(Instant);

impl Stopwatch {
    /// A stopwatch started now.
    pub fn start() -> Self {
        Self(Instant::now())
    }

    /// Seconds since the last lap (or the start).
    pub fn lap(&mut self) -> f64 {
        let now = Instant::now();
        let seconds = now.duration_since(self.0).as_secs_f64();
        self.0 = now;
        seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_divide_by_the_calls_and_laps_add_up() {
        let times = GpuTimes {
            calls: 4,
            pack_s: 2.0,
            upload_s: 1.0,
            kernel_s: 0.5,
            download_s: 0.0,
            rounds: 10,
        };
        assert_eq!(
            times.means(),
            [
                ("pack", 0.5),
                ("upload", 0.25),
                ("kernel", 0.125),
                ("download", 0.0)
            ]
        );
        assert_eq!(times.rounds_per_call(), 2.5);
        assert!(GpuTimes::default().means().iter().all(|&(_, s)| s == 0.0));
        assert_eq!(GpuTimes::default().rounds_per_call(), 0.0);
        let mut sum = times;
        sum += times;
        assert_eq!((sum.calls, sum.pack_s, sum.download_s), (8, 4.0, 0.0));
        assert_eq!(sum.rounds, 20);
        assert_eq!(sum.means(), times.means());
        let started = Instant::now();
        let mut watch = Stopwatch::start();
        let laps = watch.lap() + watch.lap();
        assert!(laps >= 0.0 && laps <= started.elapsed().as_secs_f64());
    }
}
