//! Where the wall time of a device backbone's work goes: for its forward
//! passes, its backward passes and the Adam updates on the device, the
//! host's part, the copies and the kernels.
//!
//! Why: on a GPU the backbone's passes are as much the bus as the kernels
//! (a paper-scale diffusion–sorption step moves the basis, its gradient and
//! the parameters: hundreds of MB), and a step's phases time each pass
//! whole. Each part ends at a synchronisation of the stream, so a kernel's
//! time is not charged to the copy that waits for it (in every run, not
//! only in benchmarks: the host has nothing to overlap with these waits, as
//! what follows each one reads the device's result or queues after it).

use tessera_constraints::gpu::GpuTimes;

/// Seconds per part of a device backbone's calls, summed over calls (each
/// kind in the fields of a [`GpuTimes`]; its `rounds` stay zero).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BackboneTimes {
    /// Forward passes: `pack_s` checks the host's parameters against those
    /// the device keeps (and copies and uploads them when they changed; a
    /// pass outside training packs them into one tensor before that),
    /// `upload_s` the features and the pass's copy of the parameters,
    /// `kernel_s` the network, `download_s` the basis.
    pub forward: GpuTimes,
    /// Backward passes: `upload_s` the basis gradient, `kernel_s` the
    /// network's backward pass, `download_s` the parameter gradient where it
    /// comes to the host (outside training, and over several ranks for their
    /// sum; a single process's Adam on the device reads it there).
    pub backward: GpuTimes,
    /// Adam updates on the device: `kernel_s` the gradient's norm and the
    /// update, `download_s` the updated parameters, `pack_s` setting the
    /// host's variables from them.
    pub update: GpuTimes,
}

impl BackboneTimes {
    /// The mean seconds per call of each part, by name (`forward_params`,
    /// `forward_upload`, `forward_kernel`, `forward_download`,
    /// `backward_upload`, `backward_kernel`, `backward_download`,
    /// `update_kernel`, `update_download`, `update_set`); zero for a kind
    /// of call that did not happen.
    pub fn means(&self) -> Vec<(&'static str, f64)> {
        // `GpuTimes::means` lists pack, upload, kernel, download.
        let [(_, f_pack), (_, f_up), (_, f_kernel), (_, f_down)] = self.forward.means();
        let [_, (_, b_up), (_, b_kernel), (_, b_down)] = self.backward.means();
        let [(_, u_set), _, (_, u_kernel), (_, u_down)] = self.update.means();
        vec![
            ("forward_params", f_pack),
            ("forward_upload", f_up),
            ("forward_kernel", f_kernel),
            ("forward_download", f_down),
            ("backward_upload", b_up),
            ("backward_kernel", b_kernel),
            ("backward_download", b_down),
            ("update_kernel", u_kernel),
            ("update_download", u_down),
            ("update_set", u_set),
        ]
    }
}

impl std::ops::AddAssign for BackboneTimes {
    fn add_assign(&mut self, other: Self) {
        self.forward += other.forward;
        self.backward += other.backward;
        self.update += other.update;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_part_is_its_kinds_mean_per_call() {
        let times = BackboneTimes {
            forward: GpuTimes {
                calls: 2,
                pack_s: 1.0,
                upload_s: 2.0,
                kernel_s: 4.0,
                download_s: 8.0,
                rounds: 0,
            },
            backward: GpuTimes {
                calls: 4,
                upload_s: 1.0,
                kernel_s: 2.0,
                ..GpuTimes::default()
            },
            update: GpuTimes {
                calls: 1,
                pack_s: 3.0,
                kernel_s: 5.0,
                download_s: 7.0,
                ..GpuTimes::default()
            },
        };
        let mut sum = times;
        sum += times;
        assert_eq!(
            sum.means(),
            vec![
                ("forward_params", 0.5),
                ("forward_upload", 1.0),
                ("forward_kernel", 2.0),
                ("forward_download", 4.0),
                ("backward_upload", 0.25),
                ("backward_kernel", 0.5),
                ("backward_download", 0.0),
                ("update_kernel", 5.0),
                ("update_download", 7.0),
                ("update_set", 3.0),
            ]
        );
        assert!(
            BackboneTimes::default()
                .means()
                .iter()
                .all(|&(_, s)| s == 0.0)
        );
    }
}
