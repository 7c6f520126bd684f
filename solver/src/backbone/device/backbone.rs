//! The device network behind the CPU's autograd: [`DeviceBackbone`] builds
//! (and keeps) one [`DeviceFno`] per grid shape, and [`NetworkOnDevice`] is
//! what [`crate::backbone::Fno`] holds to run its forward and backward passes
//! there — features, parameters (unless the device still holds them from
//! the last pass or update) and the output gradient go up, the basis and
//! the parameter gradient come back (or, in training, the gradient stays for
//! Adam on the device); everything in between stays on the device, including
//! the activations the backward pass needs.

use std::any::Any;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use tessera_constraints::gpu::{GpuError, GpuTimes, Stopwatch};

use super::executor::{Executor, Precision};
use super::network::{DeviceFno, ForwardPass};
use super::optimiser::{AdamScalars, DeviceGradient, DeviceMoments, OnExecutor};
use super::resident::DeviceParams;
use super::times::BackboneTimes;
use crate::backbone::FnoConfig;

/// A forward pass kept on the device for its backward pass.
pub struct DevicePass(Box<dyn Any + Send>);

impl std::fmt::Debug for DevicePass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DevicePass")
    }
}

/// What the FNO needs from a device: its forward and backward pass on host
/// arrays, and what the trainer needs to run Adam there on the gradient the
/// backward pass leaves on the device (see the `optimiser` module beside this one);
/// type-erased, so the backbone holds any executor.
pub trait NetworkOnDevice: Send + Sync + std::fmt::Debug {
    /// The precision the network computes in (the backbone's dtype must be
    /// this one).
    fn precision(&self) -> Precision;

    /// The packed parameters `params` on the device, for passes to read
    /// (a backbone keeps them there between passes).
    fn upload_params(&self, params: &[f64]) -> Result<DeviceParams, GpuError>;

    /// The outputs `[batch, grid…, N]` of `config` on a grid of point shape
    /// `grid` for `features` and the packed `params` on the device (the pass
    /// reads a copy of them, which its Adam update may overwrite), and the
    /// pass to differentiate.
    fn forward(
        &self,
        config: &FnoConfig,
        grid: &[usize],
        features: &[f64],
        params: &DeviceParams,
    ) -> Result<(Vec<f64>, DevicePass), GpuError>;

    /// The packed parameter gradient for the output gradient `grad_out`,
    /// left on the device with the pass's parameters
    /// ([`NetworkOnDevice::gradient_values`] brings it back).
    fn backward_on_device(
        &self,
        pass: DevicePass,
        grad_out: &[f64],
    ) -> Result<DeviceGradient, GpuError>;

    /// [`NetworkOnDevice::backward_on_device`] and the features' gradient
    /// (`[batch, grid…, in_features]`, on the host): a prediction
    /// differentiated in its initial condition.
    fn backward_with_features(
        &self,
        pass: DevicePass,
        grad_out: &[f64],
    ) -> Result<(DeviceGradient, Vec<f64>), GpuError>;

    /// A kept gradient's values.
    fn gradient_values(&self, gradient: &DeviceGradient) -> Result<Vec<f64>, GpuError>;

    /// Replaces a kept gradient's values (with their sum over ranks).
    fn set_gradient_values(
        &self,
        gradient: &mut DeviceGradient,
        values: &[f64],
    ) -> Result<(), GpuError>;

    /// `Σ g²` over each of `segments` of a kept gradient, in f64.
    fn squared_norms(
        &self,
        gradient: &DeviceGradient,
        segments: &[Range<usize>],
    ) -> Result<Vec<f64>, GpuError>;

    /// Adam's moments of every packed parameter, uploaded.
    fn upload_moments(&self, m: &[f64], v: &[f64]) -> Result<DeviceMoments, GpuError>;

    /// The moments' values, first then second.
    fn moment_values(&self, moments: &DeviceMoments) -> Result<[Vec<f64>; 2], GpuError>;

    /// Adds `times` to what [`NetworkOnDevice::take_times`] reports (for
    /// the parts of a pass or an update timed outside the network).
    fn record(&self, times: BackboneTimes);

    /// Where the passes and updates on this device spent their time since
    /// the last call (or since the start), and starts counting again.
    fn take_times(&self) -> BackboneTimes;

    /// One Adam update of the parameters in `segments` (the trained
    /// variables) with the kept gradient; returns the packed parameters
    /// after it (the others as the pass had them), on the host and on the
    /// device.
    fn adam(
        &self,
        gradient: DeviceGradient,
        moments: &mut DeviceMoments,
        segments: &[Range<usize>],
        scalars: &AdamScalars,
    ) -> Result<(Vec<f64>, DeviceParams), GpuError>;
}

/// One executor's networks, built on first use for each (config, grid).
pub struct DeviceBackbone<E: Executor> {
    exec: E,
    networks: Mutex<Vec<Arc<Network<E>>>>,
    times: Mutex<BackboneTimes>,
}

struct Network<E: Executor> {
    config: FnoConfig,
    grid: Vec<usize>,
    fno: DeviceFno<E>,
}

/// A pass with the uploaded inputs it was computed from.
struct Kept<E: Executor> {
    network: Arc<Network<E>>,
    features: E::Buffer,
    params: E::Buffer,
    pass: ForwardPass<E::Buffer>,
}

impl<E: Executor> std::fmt::Debug for DeviceBackbone<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceBackbone")
    }
}

impl<E: Executor> DeviceBackbone<E> {
    /// The backbone on `exec`.
    pub fn new(exec: E) -> Self {
        Self {
            exec,
            networks: Mutex::new(Vec::new()),
            times: Mutex::new(BackboneTimes::default()),
        }
    }

    fn times(&self) -> std::sync::MutexGuard<'_, BackboneTimes> {
        // The times are plain numbers: a panic elsewhere cannot break them.
        self.times.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn network(&self, config: &FnoConfig, grid: &[usize]) -> Result<Arc<Network<E>>, GpuError>
    where
        E: Clone,
    {
        let mut networks = self
            .networks
            .lock()
            .map_err(|_| GpuError::Unsupported("device backbone lock poisoned".into()))?;
        if let Some(n) = networks
            .iter()
            .find(|n| n.config == *config && n.grid == grid)
        {
            return Ok(Arc::clone(n));
        }
        let network = Arc::new(Network {
            config: config.clone(),
            grid: grid.to_vec(),
            fno: DeviceFno::new(self.exec.clone(), config, grid)?,
        });
        networks.push(Arc::clone(&network));
        Ok(network)
    }
}

impl<E> DeviceBackbone<E>
where
    E: Executor + Clone + Send + Sync + 'static,
    E::Buffer: Send + Sync + 'static,
{
    /// The backward pass of a kept `pass` for `grad_out`: the parameter
    /// gradient left on the device, and the features' when `features_wanted`.
    fn pass_back(
        &self,
        pass: DevicePass,
        grad_out: &[f64],
        features_wanted: bool,
    ) -> Result<(DeviceGradient, Option<E::Buffer>), GpuError> {
        let kept = pass
            .0
            .downcast::<Kept<E>>()
            .map_err(|_| GpuError::Unsupported("a forward pass of another device".into()))?;
        let Kept {
            network,
            features,
            params,
            pass,
        } = *kept;
        let mut watch = Stopwatch::start();
        let grad = self.exec.upload(grad_out)?;
        self.exec.synchronize()?;
        let upload_s = watch.lap();
        let (grads, features_grad) = if features_wanted {
            let (grads, gx) = network
                .fno
                .backward_with_features(pass, &features, &params, &grad)?;
            (grads, Some(gx))
        } else {
            (network.fno.backward(pass, &features, &params, &grad)?, None)
        };
        self.exec.synchronize()?;
        self.times().backward += GpuTimes {
            calls: 1,
            upload_s,
            kernel_s: watch.lap(),
            ..GpuTimes::default()
        };
        Ok((
            OnExecutor(&self.exec).gradient(params, grads),
            features_grad,
        ))
    }
}

impl<E> NetworkOnDevice for DeviceBackbone<E>
where
    E: Executor + Clone + Send + Sync + 'static,
    E::Buffer: Send + Sync + 'static,
{
    fn precision(&self) -> Precision {
        self.exec.precision()
    }

    fn upload_params(&self, params: &[f64]) -> Result<DeviceParams, GpuError> {
        Ok(DeviceParams::new(self.exec.upload(params)?, params.len()))
    }

    fn forward(
        &self,
        config: &FnoConfig,
        grid: &[usize],
        features: &[f64],
        params: &DeviceParams,
    ) -> Result<(Vec<f64>, DevicePass), GpuError> {
        let mut watch = Stopwatch::start();
        let network = self.network(config, grid)?;
        let params = params
            .array::<E::Buffer>()
            .ok_or_else(|| GpuError::Unsupported("parameters on another device".into()))?;
        let params = self.exec.copy(params)?;
        let features = self.exec.upload(features)?;
        self.exec.synchronize()?;
        let upload_s = watch.lap();
        let (out, pass) = network.fno.forward(&features, &params)?;
        self.exec.synchronize()?;
        let kernel_s = watch.lap();
        let out = self.exec.download(&out)?;
        self.times().forward += GpuTimes {
            calls: 1,
            upload_s,
            kernel_s,
            download_s: watch.lap(),
            ..GpuTimes::default()
        };
        let kept = Kept {
            network,
            features,
            params,
            pass,
        };
        Ok((out, DevicePass(Box::new(kept))))
    }

    fn backward_on_device(
        &self,
        pass: DevicePass,
        grad_out: &[f64],
    ) -> Result<DeviceGradient, GpuError> {
        let (gradient, _) = self.pass_back(pass, grad_out, false)?;
        Ok(gradient)
    }

    fn backward_with_features(
        &self,
        pass: DevicePass,
        grad_out: &[f64],
    ) -> Result<(DeviceGradient, Vec<f64>), GpuError> {
        let (gradient, features_grad) = self.pass_back(pass, grad_out, true)?;
        let features_grad = features_grad.expect("asked for");
        let mut watch = Stopwatch::start();
        let values = self.exec.download(&features_grad)?;
        self.times().backward.download_s += watch.lap();
        Ok((gradient, values))
    }

    fn gradient_values(&self, gradient: &DeviceGradient) -> Result<Vec<f64>, GpuError> {
        let mut watch = Stopwatch::start();
        let values = OnExecutor(&self.exec).gradient_values(gradient)?;
        self.times().backward.download_s += watch.lap();
        Ok(values)
    }

    fn set_gradient_values(
        &self,
        gradient: &mut DeviceGradient,
        values: &[f64],
    ) -> Result<(), GpuError> {
        OnExecutor(&self.exec).set_gradient_values(gradient, values)
    }

    fn squared_norms(
        &self,
        gradient: &DeviceGradient,
        segments: &[Range<usize>],
    ) -> Result<Vec<f64>, GpuError> {
        let mut watch = Stopwatch::start();
        let norms = OnExecutor(&self.exec).squared_norms(gradient, segments)?;
        self.times().update.kernel_s += watch.lap();
        Ok(norms)
    }

    fn upload_moments(&self, m: &[f64], v: &[f64]) -> Result<DeviceMoments, GpuError> {
        OnExecutor(&self.exec).upload_moments(m, v)
    }

    fn moment_values(&self, moments: &DeviceMoments) -> Result<[Vec<f64>; 2], GpuError> {
        OnExecutor(&self.exec).moment_values(moments)
    }

    fn adam(
        &self,
        gradient: DeviceGradient,
        moments: &mut DeviceMoments,
        segments: &[Range<usize>],
        scalars: &AdamScalars,
    ) -> Result<(Vec<f64>, DeviceParams), GpuError> {
        let mut watch = Stopwatch::start();
        let params = OnExecutor(&self.exec).adam(gradient, moments, segments, scalars)?;
        self.exec.synchronize()?;
        let kernel_s = watch.lap();
        let values = self.exec.download(&params)?;
        self.times().update += GpuTimes {
            calls: 1,
            kernel_s,
            download_s: watch.lap(),
            ..GpuTimes::default()
        };
        let len = values.len();
        Ok((values, DeviceParams::new(params, len)))
    }

    fn record(&self, times: BackboneTimes) {
        *self.times() += times;
    }

    fn take_times(&self) -> BackboneTimes {
        std::mem::take(&mut *self.times())
    }
}
