mod common;
use common::pdes::*;
use tessera_constraints::*;
#[test]
fn dbg() {
    let z = [0.9, 0.3, 500.0, 2.0];
    let mut v = [0.0]; let mut g = [0.0;4]; let mut h = [0.0;16];
    pointwise::hessians(&SorptionLike, 4, &z, &mut v, &mut g, &mut h);
    let mut g1 = [0.0;4]; let mut v1=[0.0];
    pointwise::gradients(&SorptionLike, 4, &z, &mut v1, &mut g1);
    println!("{v:?} {g:?} {g1:?} {h:?}");
    for k in 0..4 { let e = 1e-6*(z[k] as f64).abs().max(1.0);
      let mut a = z; a[k]+=e; let mut b = z; b[k]-=e;
      let mut fa=[0.0]; let mut fb=[0.0];
      pointwise::values(&SorptionLike,4,&a,&mut fa); pointwise::values(&SorptionLike,4,&b,&mut fb);
      println!("fd {:e}", (fa[0]-fb[0])/(2.0*e));
    }
}
