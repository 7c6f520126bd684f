//! `device`: where a scenario's model runs — `"cpu"` (the default), `"cuda"`
//! for this process's GPU, or `"cuda:N"` for GPU `N` (a build with the `cuda`
//! feature; see the README's "GPUs" for what runs where). One scenario file
//! serves a single process and a multi-GPU launch alike: with `"cuda"`, each
//! of several processes on a node takes the GPU of its local rank.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Device {
    /// The CPU's threads.
    #[default]
    Cpu,
    /// `cuda:N`: GPU number `N`; `cuda` (`None`): this process's GPU, see
    /// [`Device::gpu`].
    Cuda(Option<usize>),
}

impl Device {
    /// Whether this is the CPU (the default, left out of saved configs).
    pub fn is_cpu(&self) -> bool {
        *self == Self::Cpu
    }

    /// The GPU this process uses on a node with `gpus` GPUs, as the `local_rank`-th
    /// process a launcher started there (`None`: a single process): the named
    /// one, or for `cuda` GPU `local_rank mod gpus` — one process per GPU, and
    /// several per GPU round-robin when there are more processes than GPUs.
    /// `None` for the CPU.
    pub fn gpu(self, local_rank: Option<usize>, gpus: usize) -> Option<usize> {
        match self {
            Self::Cpu => None,
            Self::Cuda(Some(n)) => Some(n),
            Self::Cuda(None) => Some(local_rank.unwrap_or(0) % gpus.max(1)),
        }
    }
}

impl FromStr for Device {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(None)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(|n| Self::Cuda(Some(n)))
                .ok_or_else(|| format!("`{s}` is not a device: cpu, cuda or cuda:N")),
        }
    }
}

impl TryFrom<String> for Device {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Device> for String {
    fn from(d: Device) -> Self {
        d.to_string()
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(None) => write!(f, "cuda"),
            Self::Cuda(Some(n)) => write!(f, "cuda:{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_and_print_back() {
        for (text, device) in [
            ("cpu", Device::Cpu),
            ("cuda", Device::Cuda(None)),
            ("cuda:0", Device::Cuda(Some(0))),
            ("cuda:3", Device::Cuda(Some(3))),
        ] {
            assert_eq!(text.parse::<Device>().unwrap(), device);
            assert_eq!(device.to_string().parse::<Device>().unwrap(), device);
        }
        assert_eq!(Device::Cuda(Some(3)).to_string(), "cuda:3");
        assert_eq!(Device::Cuda(None).to_string(), "cuda");
        for bad in ["gpu", "cuda:", "cuda:x", "cuda:-1", "CPU"] {
            let err = bad.parse::<Device>().unwrap_err();
            assert!(err.contains("cpu, cuda or cuda:N"), "{bad}: {err}");
        }
    }

    /// The scenario key: read from a file, set with `--set`, written back
    /// only when not the CPU, and a bad value names the key.
    #[test]
    fn the_scenario_key_reads_sets_and_round_trips() {
        let text = |device: &str| {
            format!(
                "name = \"d\"\n{device}[pde]\nkind = \"heat\"\n[grid]\nnt = 8\nnx = 16\n\
                 t_max = 1.0\n[data]\ntrain_samples = 8\ntest_samples = 16\n[model]\n\
                 modes = [2, 3]\n[constraint]\nexperts = [1, 2]\npoints = 16\n"
            )
        };
        let mut s = crate::Scenario::from_str(&text(""), "<test>").unwrap();
        assert_eq!(s.device, Device::Cpu);
        assert!(!s.to_toml_string().contains("device"));
        let gpu = crate::Scenario::from_str(&text("device = \"cuda:1\"\n"), "<test>").unwrap();
        assert_eq!(gpu.device, Device::Cuda(Some(1)));
        let back = crate::Scenario::from_str(&gpu.to_toml_string(), "<test>").unwrap();
        assert_eq!(back.device, Device::Cuda(Some(1)));
        s.set("device=cuda").unwrap();
        assert_eq!(s.device, Device::Cuda(None));
        let back = crate::Scenario::from_str(&s.to_toml_string(), "<test>").unwrap();
        assert_eq!(back.device, Device::Cuda(None));
        let err = s.set("device=gpu").unwrap_err().to_string();
        assert!(err.contains("cpu, cuda or cuda:N"), "{err}");
        let err = crate::Scenario::from_str(&text("device = \"tpu\"\n"), "<test>")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tpu"), "{err}");
    }

    /// `cuda` is one GPU per local rank, round-robin past the node's GPUs;
    /// `cuda:N` is GPU N whatever the rank.
    #[test]
    fn each_local_rank_takes_its_own_gpu() {
        let any = Device::Cuda(None);
        assert_eq!(any.gpu(None, 4), Some(0), "a single process");
        let ranks: Vec<_> = (0..6).map(|r| any.gpu(Some(r), 4).unwrap()).collect();
        assert_eq!(ranks, [0, 1, 2, 3, 0, 1]);
        assert_eq!(
            any.gpu(Some(3), 0),
            Some(0),
            "no GPU: the open fails, not this"
        );
        assert_eq!(Device::Cuda(Some(2)).gpu(Some(5), 4), Some(2));
        assert_eq!(Device::Cpu.gpu(Some(1), 4), None);
    }
}
