//! NVRTC compiles each kernel source once per architecture and contraction
//! in a process: a second compile of the same source comes from the cache,
//! and a source that does not compile is an error every time. A test binary
//! of its own, so that no other test compiles while it counts. Also: which
//! architecture a GPU gets, the NVRTC version this process loads, and the
//! switch that turns fused multiply-adds off.
#![cfg(feature = "cuda")]

use tessera_constraints::gpu::nvrtc::Contraction;
use tessera_constraints::gpu::{GpuError, architecture_for, driver_loads_ptx_of, nvrtc, ptxas};

/// Ampere gets Ampere's PTX, Hopper and every later GPU Hopper's (which
/// their drivers compile further), an older GPU none.
#[test]
fn each_compute_capability_gets_the_newest_architecture_it_runs() {
    for (capability, arch) in [
        ((8, 0), "compute_80"),
        ((8, 6), "compute_80"),
        ((8, 9), "compute_80"),
        ((9, 0), "compute_90"),
        ((10, 0), "compute_90"),
        ((12, 0), "compute_90"),
    ] {
        assert_eq!(
            architecture_for(capability).unwrap(),
            arch,
            "{capability:?}"
        );
        assert!(nvrtc::ARCHITECTURES.contains(&arch));
    }
    for capability in [(7, 5), (7, 0), (6, 1)] {
        let err = architecture_for(capability).unwrap_err();
        assert!(
            matches!(&err, GpuError::Unsupported(why) if why.contains("8.0 and later")),
            "{capability:?}: {err}"
        );
    }
}

/// The version NVRTC reports is the one the kernels are built with (13.0,
/// whose PTX the GPU machines' drivers load), or NVRTC is missing.
#[test]
fn nvrtc_reports_its_version() {
    match nvrtc::version() {
        Ok((major, minor)) => assert_eq!((major, minor), (13, 0)),
        Err(e) => {
            assert_eq!(e, GpuError::NoNvrtc);
            assert!(ptxas::test_tools().is_none(), "NVRTC missing: skipped");
        }
    }
}

/// The contraction is part of the cache's key, and it is what NVRTC
/// applied: the same multiply-add compiles to one `fma` fused and to a
/// rounded product and a rounded sum separate.
#[test]
fn a_source_compiles_once_per_architecture_and_contraction() {
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

    let multiply_add = r#"extern "C" __global__ void tessera_probe(double* x, const double* a, const double* b) {
        x[threadIdx.x] = a[threadIdx.x] * b[threadIdx.x] + x[threadIdx.x];
    }"#;
    let fused = nvrtc::compile_with(multiply_add, "compute_90", Contraction::Fused)
        .unwrap()
        .to_src();
    let separate = nvrtc::compile_with(multiply_add, "compute_90", Contraction::Separate)
        .unwrap()
        .to_src();
    assert_eq!(nvrtc::compiled_sources(), 4, "one entry per contraction");
    assert!(fused.contains("fma.rn.f64"), "{fused}");
    assert!(!separate.contains("fma."), "{separate}");
    assert!(
        separate.contains("mul.rn.f64") && separate.contains("add.rn.f64"),
        "{separate}"
    );
    assert_eq!(
        nvrtc::compile(source, "compute_90").unwrap().to_src(),
        first.to_src(),
        "the process's contraction (fused unless {} says 0) is a key like the others",
        nvrtc::FMAD_VARIABLE
    );
    assert_eq!(nvrtc::compiled_sources(), 4);
}

/// `TESSERA_NVRTC_FMAD` is 0 or 1 or unset; a misspelt value is an error
/// that names the variable, not a diagnostic that silently did nothing.
#[test]
fn the_fmad_switch_reads_zero_or_one_and_refuses_the_rest() {
    assert_eq!(Contraction::parse(None), Ok(Contraction::Fused));
    assert_eq!(Contraction::parse(Some("1")), Ok(Contraction::Fused));
    assert_eq!(Contraction::parse(Some("0")), Ok(Contraction::Separate));
    for value in ["", "false", "off", "00", " 0"] {
        let err = Contraction::parse(Some(value)).unwrap_err();
        assert!(
            matches!(&err, GpuError::Unsupported(why) if why.contains(nvrtc::FMAD_VARIABLE)),
            "{value:?}: {err}"
        );
    }
}

/// A driver loads the PTX of an NVRTC of its own CUDA version or older;
/// an older driver is a typed error that names both versions.
#[test]
fn an_older_driver_than_nvrtc_is_refused_by_name() {
    for (driver, compiler) in [((13, 0), (13, 0)), ((13, 1), (13, 0)), ((14, 0), (13, 2))] {
        assert!(driver_loads_ptx_of(driver, compiler).is_ok(), "{driver:?}");
    }
    for (driver, compiler) in [((12, 8), (13, 0)), ((13, 0), (13, 1))] {
        let err = driver_loads_ptx_of(driver, compiler).unwrap_err();
        let text = err.to_string();
        let named = |(major, minor): (i32, i32)| text.contains(&format!("CUDA {major}.{minor}"));
        assert!(
            matches!(err, GpuError::DriverTooOld { .. }) && named(driver),
            "{text}"
        );
        assert!(
            text.contains(&format!("NVRTC {}.{}", compiler.0, compiler.1)),
            "{text}"
        );
    }
}
