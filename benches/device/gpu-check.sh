#!/usr/bin/env bash
# The GPU checks in one call, for a lent GPU machine (no Rust toolchain there):
# `tessera devices` (what tessera sees, and its preflight check of the
# quickstart's model on the GPU against the CPU); issue 11's two goals (the
# constraint layer at the paper's diffusion–sorption scale, 4 × 20 000
# points, N = 16, batch 1, with the solves on the GPU against the CPU on the
# same problems, and the paper-scale diffusion–sorption training step at
# batch 6 on the GPU); the GPU test binaries (the constraint kernels and the
# PDE loss; the constraint layer on the GPU, its assembly of u and
# pull-back included, against the CPU layer; the FNO backbone on the GPU,
# float64 and float32, against the CPU backbone, and 20 training steps, Adam
# on the GPU, against the CPU's; the optimiser's kernels against the host
# optimiser; the NCCL communicator as a world of one rank); the layer at
# batch 6 and at Navier–Stokes scale (N = 64, 64³, batch 4); the training
# step with a float32 backbone, on the CPU side by side, and at
# Navier–Stokes scale (batch 4); the batch-1 layer and the
# diffusion–sorption step once more with the driver's pageable copies in
# place of the page-locked staging; the whole-model gradient check on the
# GPU; and last, each test binary that failed once more with NVRTC's fused
# multiply-adds off (TESSERA_NVRTC_FMAD=0), to tell rounding from a wrong
# kernel.
# Writes one JSON report and the logs under $OUT (default ./gpu-check-out),
# within a budget of $GPU_CHECK_BUDGET_S seconds (default 450, inside the
# device tool's 8-minute call): runs that would not fit are cut or skipped,
# and the report says which. On an H200 node the checks took 327 s
# (benches/README.md, "GPU"), before the pageable runs were added.
#
# Build here, on an x86-64 machine with the toolchain, then carry the folder:
#   benches/device/carry.sh .device
#   benches/device/gpu-check.sh .device
# CI runs it on a machine without a GPU and judges its output with
# plumbing-check.py, so that a lent machine's one call is not spent on a
# command line the CLI no longer takes.
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
# NCCL: the wheels ship only libnccl.so.2, and the loader asks for libnccl.so.
NCCL_LINK="$(mktemp -d)"
nccl_lib="$(find $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null) \
    -name 'libnccl.so.2' 2>/dev/null | head -1)"
if [ -n "$nccl_lib" ]; then
    ln -sf "$nccl_lib" "$NCCL_LINK/libnccl.so"
    export LD_LIBRARY_PATH="$NCCL_LINK:$LD_LIBRARY_PATH"
fi
status=0
# An error's report without its backtrace (anyhow prints one for an error
# when RUST_BACKTRACE is set; a panic's still comes with RUST_BACKTRACE).
export RUST_LIB_BACKTRACE=0
# The call's budget in seconds (default 450): the device tool stops a command
# at its limit and keeps only the files written by then, so each run is cut
# to what is left of the budget, a run with less than 15 s left is skipped,
# and the report below is always written.
BUDGET="${GPU_CHECK_BUDGET_S:-450}"
# run NAME SECONDS CMD…: CMD's output to NAME (a test's stderr with it, a
# command's to NAME.err), bounded by SECONDS or what is left of the budget,
# so that one hang cannot take the whole call; its wall time and exit status
# (124: stopped at its limit) to times.txt, or "skipped".
run() {
    local name=$1 limit=$2 start=$SECONDS rc=0
    shift 2
    local left=$((BUDGET - SECONDS))
    if [ "$left" -lt 15 ]; then
        echo "$name skipped" >>"$OUT/times.txt"
        status=1
        return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    if [ "${name##*.}" = log ]; then
        timeout "$limit" "$@" >"$OUT/$name" 2>&1 || rc=$?
    else
        timeout "$limit" "$@" >"$OUT/$name" 2>"$OUT/${name%.*}.err" || rc=$?
    fi
    [ "$rc" = 0 ] || status=1
    echo "$name $((SECONDS - start)) $rc" >>"$OUT/times.txt"
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$OUT/gpu.txt" 2>&1
# What tessera sees (driver, GPUs, NVRTC) and its preflight check: the
# quickstart's model built on the GPU, its predictions against the CPU's.
run devices.json 60 "$BIN/tessera" devices --json
run devices-check.json 120 "$BIN/tessera" devices --device cuda --json

bench() { # NAME SECONDS RUNS ARGS…: one side-by-side benchmark, its JSON kept as NAME.json
    local name=$1 limit=$2 runs=$3
    shift 3
    run "$name.json" "$limit" "$BIN/tessera" bench constraint --device cuda --runs "$runs" --json "$@"
}
step() { # NAME ARGS…: one training-step benchmark, its JSON kept as NAME.json
    local name=$1
    shift
    run "$name.json" 150 "$BIN/tessera" bench train-step --runs 5 --json "$@"
}
# Issue 11's two goals first, so that a hang further on cannot cost them:
# the layer at 4 × 20 000 points, batch 1, and the paper-scale
# diffusion–sorption step at batch 6, float64.
bench ds-batch1 60 5 --pde diffusion-sorption --batch 1
step ds-step-gpu --scenario scenarios/diffusion-sorption.toml --batch 6 --device cuda

# gpu_tests NAME [FILTER]: one GPU test binary, its output kept as NAME.log;
# a binary whose tests fail (not one stopped at its limit) is kept in
# FAILED_TESTS with its filter, for the rerun without fused multiply-adds
# below.
FAILED_TESTS=()
gpu_tests() {
    run "$1.log" 150 "$BIN/$1" --nocapture --test-threads=1 ${2:+"$2"}
    case "$(tail -1 "$OUT/times.txt")" in
        *" 0" | *" 124" | *skipped) ;;
        *) FAILED_TESTS+=("$1 ${2:-}") ;;
    esac
}
gpu_tests gpu_device
# Only the PDE loss's, the layer's, the backbone's and the optimiser's tests
# that need the GPU: the others compile the kernels for the host, which needs
# a C++ compiler (CI runs them).
for t in gpu_field gpu_pull_back gpu_backbone gpu_optimiser; do
    gpu_tests $t on_a_gpu
done
gpu_tests nccl

bench ds-batch6 60 5 --pde diffusion-sorption --batch 6
# Navier–Stokes at N = 64: five runs of the CPU layer and the three GPU
# layers took over two minutes on an H200 node (16 cores); two runs each.
bench ns-batch4 240 2 --pde navier-stokes --basis 64 --batch 4

step ds-step-gpu-f32 --scenario scenarios/diffusion-sorption.toml --batch 6 --device cuda --set model.dtype=f32
step ds-step-cpu --scenario scenarios/diffusion-sorption.toml --batch 6
step ns-step-gpu --scenario scenarios/navier-stokes.toml --batch 4 --device cuda
# The batch-1 layer and the diffusion–sorption step again with every copy
# between host and device the driver's own, from pageable memory, instead of
# through the page-locked staging buffers (README, "GPUs"): what they gain.
run ds-batch1-pageable.json 60 env TESSERA_PAGEABLE_COPIES=1 "$BIN/tessera" bench constraint \
    --device cuda --runs 5 --json --pde diffusion-sorption --batch 1
run ds-step-gpu-pageable.json 150 env TESSERA_PAGEABLE_COPIES=1 "$BIN/tessera" bench train-step \
    --runs 5 --json --scenario scenarios/diffusion-sorption.toml --batch 6 --device cuda

# The whole model's gradient against finite differences with the model on the
# GPU (backbone and experts' solves): the built-in diffusion–sorption, solved
# through its restating definition, and Burgers, a TOML definition.
run gradcheck-ds.json 120 "$BIN/tessera" gradcheck --scenario scenarios/quickstart.toml --device cuda --json
run gradcheck-burgers.json 120 "$BIN/tessera" gradcheck --scenario scenarios/burgers-small.toml --device cuda --json

# A test binary that failed runs again with NVRTC's fused multiply-adds off
# (README, "GPUs": when the GPU and the CPU disagree), as NAME-nofma.log: a
# failure that goes away was decided by rounding, one that stays is not.
for failed in "${FAILED_TESTS[@]}"; do
    read -r t filter <<<"$failed"
    run "$t-nofma.log" 150 env TESSERA_NVRTC_FMAD=0 "$BIN/$t" --nocapture --test-threads=1 ${filter:+"$filter"}
done

# One report: the test summary lines and every benchmark's layers.
python3 - "$OUT" <<'PY' >"$OUT/report.json"
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
# Every test binary's log, and its rerun's (the only *.log files run writes).
logs = [(f.name, f.read_text(errors="replace")) for f in sorted(out.glob("*.log"))]
runs = [l.split() for l in (out / "times.txt").read_text().splitlines()]
report = {
    "gpu": (out / "gpu.txt").read_text(errors="replace").strip(),
    "seconds": {w[0]: int(w[1]) for w in runs if w[1] != "skipped"},
    "failed": {w[0]: int(w[2]) for w in runs if w[1] != "skipped" and w[2] != "0"},
    "skipped": [w[0] for w in runs if w[1] == "skipped"],
    "gpu_tests": [f"{name}: {l}" for name, log in logs for l in log.splitlines()
                  if l.startswith("test result") or "skipped" in l or "panicked" in l
                  or "FAILED" in l],
    "benchmarks": {},
}
for f in sorted(out.glob("*.json")):
    if f.name == "report.json":
        continue
    try:
        report["benchmarks"][f.stem] = json.loads(f.read_text())
    except ValueError:
        err = (out / (f.stem + ".err")).read_text(errors="replace")
        # The error is where a command stops (last), a panic's message first.
        report["benchmarks"][f.stem] = {"error": err if len(err) <= 2000 else err[:1000] + "\n…\n" + err[-1000:]}
# Issue 11's two goals on one GPU, float64, first: the paper-scale
# diffusion–sorption step at batch 6 and the constraint layer's forward and
# backward pass at 4 × 20 000 points (the first GPU layer of the batch-1
# benchmark: every pass on the device).
def step_s(name):
    return report["benchmarks"].get(name, {}).get("step_median_s")
def layer_ms(name):
    layers = report["benchmarks"].get(name)
    gpu = [l for l in layers if l.get("gpu_peak_mib") is not None] if isinstance(layers, list) else []
    return 1e3 * gpu[0]["fwd_bwd_median_s"] if gpu else None
goals, staging = {}, {}
if step_s("ds-step-gpu") is not None:
    goals["ds_step_batch6_s"] = {"measured": step_s("ds-step-gpu"), "goal": 0.25}
if layer_ms("ds-batch1") is not None:
    goals["layer_batch1_fwd_bwd_ms"] = {"measured": layer_ms("ds-batch1"), "goal": 10}
# The same two with the driver's pageable copies instead of the staging.
if step_s("ds-step-gpu-pageable") is not None:
    staging["ds_step_batch6_s"] = {"staged": step_s("ds-step-gpu"), "pageable": step_s("ds-step-gpu-pageable")}
if layer_ms("ds-batch1-pageable") is not None:
    staging["layer_batch1_fwd_bwd_ms"] = {"staged": layer_ms("ds-batch1"), "pageable": layer_ms("ds-batch1-pageable")}
# And the rates of 64 MiB copies both ways, from the preflight check.
copies = (report["benchmarks"].get("devices-check", {}).get("check") or {}).get("copies")
if copies:
    staging["copies_gb_s"] = copies
report = {"goals": goals, "staging": staging, **report}
print(json.dumps(report, indent=1))
PY
exit $status
