//! NVRTC compiles each kernel source once per architecture in a process: a
//! second compile of the same source comes from the cache, and a source that
//! does not compile is an error every time. A test binary of its own, so
//! that no other test compiles while it counts.
#![cfg(feature = "cuda")]

use tessera_constraints::gpu::{GpuError, nvrtc, ptxas};

#[test]
fn a_source_compiles_once_per_architecture() {
    if ptxas::test_tools().is_none() {
        return;
    }
    let source =
        r#"extern "C" __global__ void tessera_probe(double* x) { x[threadIdx.x] *= 2.0; }"#;
    assert_eq!(nvrtc::compiled_sources(), 0);
    let first = nvrtc::compile(source, "compute_90").unwrap();
    let again = nvrtc::compile(source, "compute_90").unwrap();
    assert_eq!(
        nvrtc::compiled_sources(),
        1,
        "the second compile comes from the cache"
    );
    assert_eq!(first.to_src(), again.to_src());
    assert!(first.to_src().contains(".entry tessera_probe"));
    let ampere = nvrtc::compile(source, "compute_80").unwrap();
    assert_eq!(nvrtc::compiled_sources(), 2, "one entry per architecture");
    assert!(ampere.to_src().contains(".target sm_80"));
    for _ in 0..2 {
        assert!(matches!(
            nvrtc::compile("this is not C++", "compute_90"),
            Err(GpuError::Compile { .. })
        ));
    }
    assert_eq!(nvrtc::compiled_sources(), 2, "failures are not cached");
}
