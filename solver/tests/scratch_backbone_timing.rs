// TEMPORARY measurement scaffold (removed before hand-off).
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use tessera_solver::backbone::{Fno, FnoConfig, SeededVars};

fn rss() -> String {
    std::fs::read_to_string("/proc/self/status").unwrap().lines().filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS")).collect::<Vec<_>>().join(" ")
}

#[test]
#[ignore]
fn paper_scale() {
    let dtype = if std::env::var("F32").is_ok() { DType::F32 } else { DType::F64 };
    let b: usize = std::env::var("B").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let cfg = FnoConfig { in_features: 3, widths: vec![32, 64, 64, 64, 64, 64], modes: vec![8, 8], fc_dim: 128, out_dim: 16, activate_last_layer: true };
    let vars = VarMap::new();
    let fno = Fno::new(cfg, SeededVars::builder(&vars, 0, dtype)).unwrap();
    let n = b * 101 * 1024 * 3;
    let x = Tensor::from_vec((0..n).map(|i| (i as f64 * 1e-3).sin()).collect::<Vec<_>>(), (b, 101, 1024, 3), &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
    for _ in 0..4 {
        let t0 = std::time::Instant::now();
        let out = fno.forward(&x).unwrap();
        let t1 = t0.elapsed();
        let loss = out.sqr().unwrap().sum_all().unwrap();
        let g = loss.backward().unwrap();
        drop(g);
        println!("fwd {:?} total {:?} {}", t1, t0.elapsed(), rss());
    }
}
