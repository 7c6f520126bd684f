#!/usr/bin/env python3
"""gpu-check.sh's plumbing, judged from its output on a machine without a GPU.

A lent GPU machine gives one call of gpu-check.sh (README, "GPUs"): a command
line the CLI no longer takes, a scenario file that moved, a missing test
binary or a report that is not written would spend it. The CLI reads its
arguments, scenario and overrides before it looks for a driver, so without a
GPU every GPU command must stop at the typed "no CUDA driver found" error and
nothing else; every GPU test must say it is skipped, and why; the CPU runs
must finish; nothing may be cut for the budget; and the report must hold the
runs its goals are read from.

Usage: plumbing-check.py OUT (the folder gpu-check.sh wrote). Exits 1 with
one line per fault.
"""
import json
import pathlib
import sys

NO_DRIVER = "no CUDA driver found"
# The runs whose figures report.json's goals and staging comparison read.
GOAL_RUNS = ("ds-batch1", "ds-step-gpu", "ds-batch1-pageable", "ds-step-gpu-pageable")


def on_a_gpu(entry):
    """Whether a run's JSON says it ran on a GPU: a step on a `cuda` device,
    or a constraint layer with a GPU memory peak."""
    if isinstance(entry, list):
        return any(layer.get("gpu_peak_mib") is not None for layer in entry)
    return isinstance(entry, dict) and str(entry.get("device", "")).startswith("cuda")


def faults(out):
    report = json.loads((out / "report.json").read_text())
    runs = [line.split() for line in (out / "times.txt").read_text().splitlines()]
    if report["skipped"]:
        yield f"cut for the budget: {report['skipped']}"
    if report["goals"]:
        yield f"goals measured without a GPU: {report['goals']}"
    for name, *result in runs:
        stem, kind = name.rsplit(".", 1)
        if kind == "log":
            log = (out / name).read_text(errors="replace")
            tests = [l for l in log.splitlines() if l.startswith("test ") and " ... " in l]
            if result[-1] != "0" or not tests:
                yield f"{name}: exit {result[-1]}, {len(tests)} tests: {log[-300:]!r}"
            for line in tests:
                if f"skipped: {NO_DRIVER}" not in line:
                    yield f"{name}: not skipped for want of a driver: {line}"
        elif result[-1] != "0":
            entry = report["benchmarks"].get(stem, {})
            if NO_DRIVER not in str(entry.get("error", "")):
                yield f"{name}: exit {result[-1]}, not for want of a driver: {entry}"
        elif on_a_gpu(report["benchmarks"].get(stem)):
            yield f"{name}: says it ran on a GPU, on a machine without one"
    for stem in GOAL_RUNS:
        if stem not in report["benchmarks"]:
            yield f"{stem}: no run of this name, which the report's goals read"
    for path in out.glob("*-nofma.log"):
        yield f"{path.name}: a rerun without fused multiply-adds, so a test failed"


def main():
    found = list(faults(pathlib.Path(sys.argv[1])))
    for fault in found:
        print(f"plumbing-check: {fault}")
    if found:
        sys.exit(1)
    print("plumbing-check: every GPU command stopped for want of a driver, every GPU test "
          "was skipped, the CPU runs finished and the report is complete")


if __name__ == "__main__":
    main()
