//! Shared helpers for the Criterion benchmarks in `benches/`.
