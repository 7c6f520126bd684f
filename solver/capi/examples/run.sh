#!/usr/bin/env bash
# Builds and runs the C and Fortran examples of the C ABI against a freshly
# trained tiny run, under valgrind, linked both ways (shared and static), then
# the Python module's examples against the shared library.
#
#   solver/capi/examples/run.sh TESSERA_BINARY LIB_DIR
#
# TESSERA_BINARY: the release `tessera` CLI; LIB_DIR: the directory holding
# libtessera.so and libtessera.a (e.g. target/release). Needs gcc, gfortran
# and valgrind. Set TESSERA_NO_VALGRIND=1 to run without valgrind.
set -euo pipefail

tessera=$(realpath "$1")
lib_dir=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
include="$here/../include"
scenario="$here/../../examples/tiny.toml"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== training a tiny run in $work"
"$tessera" generate "$scenario" --split test --out "$work/test.safetensors" --quiet
"$tessera" train "$scenario" --out "$work/run" --quiet
"$tessera" eval "$work/run" --data "$work/test.safetensors" --quiet > /dev/null
samples=3 # data.test_samples of tiny.toml
mkdir -p "$work/corrupt"
cp "$work/run/config.toml" "$work/corrupt/"
head -c 200 "$work/run/checkpoint.safetensors" > "$work/corrupt/checkpoint.safetensors"

valgrind=()
if [[ -z "${TESSERA_NO_VALGRIND:-}" ]]; then
    valgrind=(valgrind --quiet --error-exitcode=1 --leak-check=full
              --errors-for-leak-kinds=definite,indirect,possible
              --suppressions="$here/valgrind.supp")
fi

cflags=(-O2 -g -Wall -Wextra -ffp-contract=off -I"$include")
for mode in shared static; do
    if [[ $mode == shared ]]; then
        link=(-L"$lib_dir" -ltessera -Wl,-rpath,"$lib_dir" -lpthread -lm)
    else
        link=("$lib_dir/libtessera.a" -lpthread -ldl -lm)
    fi
    bin="$work/$mode"
    mkdir -p "$bin"
    echo "== building the examples ($mode)"
    gcc "${cflags[@]}" "$here/predict.c" -o "$bin/predict" "${link[@]}"
    gcc "${cflags[@]}" "$here/bad_calls.c" -o "$bin/bad_calls" "${link[@]}"
    gcc "${cflags[@]}" "$here/projection.c" -o "$bin/projection" "${link[@]}"
    gfortran -O2 -g -ffp-contract=off -J"$bin" "$here/tessera.f90" "$here/predict.f90" \
        -o "$bin/predict_f" "${link[@]}"
    echo "== running ($mode)"
    "${valgrind[@]}" "$bin/predict" "$work/run" "$work/test.safetensors" "$samples"
    "${valgrind[@]}" "$bin/bad_calls" "$work/run" "$work/corrupt" "$scenario"
    "${valgrind[@]}" "$bin/projection" "$here/projection.toml"
    "${valgrind[@]}" "$bin/predict_f" "$work/run" "$work/test.safetensors"
done
# The Python module (solver/capi/python/tessera.py, ctypes and numpy) against
# the shared library: the same checks as predict.c and projection.c; then
# tessera_jax.py's with JAX. Each is skipped without its packages unless
# TESSERA_REQUIRE_PYTHON=1 (CI sets it).
require() {
    if [[ -n "${TESSERA_REQUIRE_PYTHON:-}" ]]; then
        echo "python3 with $1 is required (TESSERA_REQUIRE_PYTHON is set)" >&2
        exit 1
    fi
    echo "== skipping the $2 examples: no python3 with $1"
}
export TESSERA_LIB="$lib_dir/libtessera.so" PYTHONPATH="$here/../python"
if python3 -c "import numpy" 2>/dev/null; then
    echo "== running the Python examples"
    python3 "$here/predict.py" "$work/run" "$work/test.safetensors" "$samples"
    python3 "$here/projection.py" "$here/projection.toml"
else
    require numpy Python
fi
if python3 -c "import numpy, jax" 2>/dev/null; then
    echo "== running the JAX example"
    python3 "$here/projection_jax.py" "$here/projection.toml"
else
    require "numpy and jax" JAX
fi
echo "== C ABI examples: all passed"
