//! Adam's moments on the GPU of a backbone that runs there (feature `cuda`):
//! they move there at the first update there and stay, so a step moves no
//! optimiser state; they come back when the state is saved
//! ([`Adam::state`]) or when an update on the host follows. The arithmetic is
//! the host's, operation for operation (the `tessera_adam` kernel).

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use candle_core::{DType, Device, Shape, Tensor};

use super::{Adam, Moments, Rates};
use crate::SolverError;
use crate::device::{AdamScalars, DeviceGradient, DeviceMoments, DeviceParams, NetworkOnDevice};

/// A trained variable's place in a device network's packed parameters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PackedVar {
    /// The variable's name (the optimiser's key).
    pub name: String,
    /// Its values in the packed vector.
    pub range: Range<usize>,
    /// Its shape.
    pub shape: Shape,
    /// Its dtype (the moments' on the host).
    pub dtype: DType,
}

/// The moments of `vars` on `network`'s device.
#[derive(Debug)]
pub(crate) struct OnDevice {
    network: Arc<dyn NetworkOnDevice>,
    moments: DeviceMoments,
    vars: Vec<PackedVar>,
}

impl OnDevice {
    /// The moments per variable, read back.
    pub(super) fn host_moments(&self) -> Result<BTreeMap<String, Moments>, SolverError> {
        let [m, v] = self.network.moment_values(&self.moments)?;
        self.vars
            .iter()
            .map(|var| {
                let tensor = |values: &[f64]| -> candle_core::Result<Tensor> {
                    Tensor::from_slice(&values[var.range.clone()], var.shape.clone(), &Device::Cpu)?
                        .to_dtype(var.dtype)
                };
                let moments = Moments {
                    m: tensor(&m)?,
                    v: tensor(&v)?,
                };
                Ok((var.name.clone(), moments))
            })
            .collect()
    }
}

impl Adam {
    /// One update of `vars` on the device with the kept `gradient` (already
    /// summed over ranks), scaled by `scale` first (clipping), with learning
    /// rate `lr`: the packed parameters after it, on the host and on the
    /// device. The moments move to the device first if they are not there
    /// for these variables.
    ///
    /// Errors: a variable outside the packed parameters, host moments of
    /// another size, or the device's.
    pub(crate) fn step_on_device(
        &mut self,
        network: &Arc<dyn NetworkOnDevice>,
        gradient: DeviceGradient,
        vars: &[PackedVar],
        lr: f64,
        scale: f64,
    ) -> Result<(Vec<f64>, DeviceParams), SolverError> {
        let here = self.device.as_ref().is_some_and(|d| {
            Arc::ptr_eq(&d.network, network) && d.vars == vars && d.moments.len() == gradient.len()
        });
        if !here {
            self.fetch_moments()?;
            self.device = Some(self.upload(network, vars, gradient.len())?);
            for var in vars {
                self.moments.remove(&var.name);
            }
        }
        let count = self.count + 1;
        let rates = Rates::new(&self.config, count, lr);
        let scalars = AdamScalars {
            scale,
            beta1: rates.beta1,
            one_minus_beta1: rates.one_minus_beta1,
            beta2: rates.beta2,
            one_minus_beta2: rates.one_minus_beta2,
            unbias1: rates.unbias1,
            unbias2: rates.unbias2,
            eps: rates.eps,
            lr: rates.lr,
        };
        let segments: Vec<Range<usize>> = vars.iter().map(|v| v.range.clone()).collect();
        let device = self.device.as_mut().expect("uploaded above");
        let params = network.adam(gradient, &mut device.moments, &segments, &scalars)?;
        self.count = count;
        Ok(params)
    }

    /// The host moments of `vars` (zero where there are none yet) packed into
    /// vectors of `len` and uploaded to `network`'s device.
    fn upload(
        &self,
        network: &Arc<dyn NetworkOnDevice>,
        vars: &[PackedVar],
        len: usize,
    ) -> Result<OnDevice, SolverError> {
        let (mut m, mut v) = (vec![0.0; len], vec![0.0; len]);
        for var in vars {
            if var.range.end > len {
                return Err(SolverError::ShapeMismatch {
                    what: "a trained variable's place in the device network's parameters",
                    expected: vec![len],
                    got: vec![var.range.end],
                });
            }
            let Some(moments) = self.moments.get(&var.name) else {
                continue;
            };
            for (moment, packed) in [(&moments.m, &mut m), (&moments.v, &mut v)] {
                let values = moment
                    .to_dtype(DType::F64)?
                    .flatten_all()?
                    .to_vec1::<f64>()?;
                if values.len() != var.range.len() {
                    return Err(SolverError::ShapeMismatch {
                        what: "Adam moments (the variable's size)",
                        expected: vec![var.range.len()],
                        got: vec![values.len()],
                    });
                }
                packed[var.range.clone()].copy_from_slice(&values);
            }
        }
        Ok(OnDevice {
            network: Arc::clone(network),
            moments: network.upload_moments(&m, &v)?,
            vars: vars.to_vec(),
        })
    }

    /// Brings moments on a device back to the host (for an update there).
    pub(super) fn fetch_moments(&mut self) -> Result<(), SolverError> {
        if let Some(device) = &self.device {
            let moments = device.host_moments()?;
            self.moments.extend(moments);
            self.device = None;
        }
        Ok(())
    }
}
