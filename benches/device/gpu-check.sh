#!/usr/bin/env bash
# The GPU checks in one call, for a lent GPU machine (no Rust toolchain there):
# the GPU test binary, then the constraint-layer benchmark with the forward
# solves on the GPU against the CPU on the same problems, at the paper's
# diffusion–sorption scale (4 × 20 000 points, N = 16, batch 1 and 6) and
# Navier–Stokes scale (4 × 20 000 points, N = 64, 64³, batch 4). Writes one
# JSON report and the logs under $OUT (default ./gpu-check-out).
#
# Build here, on an x86-64 machine with the toolchain, then carry BIN:
#   cargo build --release -p tessera --features cuda
#   cargo test --release -p tessera-constraints --features cuda --test gpu_device --no-run
#   mkdir -p .device && cp target/release/tessera .device/ &&
#     cp "$(ls -t target/release/deps/gpu_device-* | grep -v '\.d$' | head -1)" .device/gpu_device
#   benches/device/gpu-check.sh .device
set -uo pipefail
BIN="${1:-.device}"
OUT="${OUT:-gpu-check-out}"
mkdir -p "$OUT"
# The CUDA libraries of the machine's Python wheels (NVRTC for the kernels;
# the driver itself comes with the system).
for lib in $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null); do
    if [ -d "$lib/nvidia/cu13/lib" ]; then
        export LD_LIBRARY_PATH="$lib/nvidia/cu13/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    fi
done
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$OUT/gpu.txt" 2>&1

status=0
"$BIN/gpu_device" --nocapture --test-threads=1 >"$OUT/gpu_device.log" 2>&1 || status=1

bench() { # NAME ARGS…: one side-by-side benchmark, its JSON kept as NAME.json
    local name=$1
    shift
    "$BIN/tessera" bench constraint --device cuda --runs 5 --json "$@" >"$OUT/$name.json" 2>"$OUT/$name.err" || status=1
}
bench ds-batch1 --pde diffusion-sorption --pde-file scenarios/pdes/diffusion-sorption.toml --batch 1
bench ds-batch6 --pde diffusion-sorption --pde-file scenarios/pdes/diffusion-sorption.toml --batch 6
bench ns-batch4 --pde navier-stokes --pde-file scenarios/pdes/navier-stokes.toml --basis 64 --batch 4

# One report: the test summary line and every benchmark's two layers.
python3 - "$OUT" <<'PY' >"$OUT/report.json"
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
log = (out / "gpu_device.log").read_text(errors="replace")
report = {
    "gpu": (out / "gpu.txt").read_text(errors="replace").strip(),
    "gpu_tests": [l for l in log.splitlines() if l.startswith("test result") or "skipped" in l],
    "benchmarks": {},
}
for f in sorted(out.glob("*.json")):
    if f.name == "report.json":
        continue
    try:
        report["benchmarks"][f.stem] = json.loads(f.read_text())
    except ValueError:
        report["benchmarks"][f.stem] = {"error": (out / (f.stem + ".err")).read_text(errors="replace")[-2000:]}
print(json.dumps(report, indent=1))
PY
exit $status
