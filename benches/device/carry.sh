#!/usr/bin/env bash
# Builds what gpu-check.sh runs on a lent GPU machine, which has no Rust
# toolchain: the `tessera` binary and the GPU test binaries, with feature
# `cuda` (and the experts' `nccl`), stripped into one folder (default
# .device) that the device tool carries with the source tree (64 MiB in
# all; stripped they are about 50 MiB, unstripped about 60).
#   benches/device/carry.sh .device        # here, x86-64 with the toolchain
#   benches/device/gpu-check.sh .device    # there
# One `cargo test --no-run` builds both: `device_cli` is the CLI's own test,
# so the binary it builds is the `tessera` those tests run, with the same
# features as the test binaries (CI's GPU test run has built them already,
# so there this only copies).
set -euo pipefail
DEST="${1:-.device}"
TESTS=(gpu_device gpu_field gpu_pull_back gpu_backbone gpu_optimiser nccl)
cargo test --release --workspace --features tessera/cuda,tessera-experts/nccl \
    --test device_cli "${TESTS[@]/#/--test=}" --no-run
mkdir -p "$DEST"
cp target/release/tessera "$DEST/"
for t in "${TESTS[@]}"; do
    # The newest build of each test (older ones linger in deps/).
    cp "$(ls -t target/release/deps/"$t"-* | grep -v '\.d$' | head -1)" "$DEST/$t"
done
strip "$DEST"/*
