#!/usr/bin/env bash
# Builds and runs the C, C++ and Fortran examples of the C ABI against a freshly
# trained tiny run, under valgrind, linked both ways (shared and static), then
# the Python modules' examples against the shared library and against the
# package pip builds.
#
#   solver/capi/examples/run.sh TESSERA_BINARY LIB_DIR
#
# TESSERA_BINARY: the release `tessera` CLI; LIB_DIR: the directory holding
# libtessera.so and libtessera.a (e.g. target/release). Needs gcc, gfortran
# (with g++) and valgrind. Set TESSERA_NO_VALGRIND=1 to run without valgrind.
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
# Solves driven to round-off for the examples' finite-difference checks of a
# prediction's gradient in its initial conditions: where a solve stops then
# moves the fields by about 1e-10 between nearby initial conditions (the
# default tolerance, 1e-4, would swamp the differences), which steps of 1e-5
# keep out of them to about 1e-6.
"$tessera" train "$scenario" --out "$work/run" --quiet --set constraint.rtol=1e-14 \
    --set constraint.atol=1e-15 --set constraint.max_iters=500
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

# The Fortran module binds every function the header declares.
declared=$(grep -oE '^[a-z].* \**tessera_[a-z_]+\(' "$include/tessera.h" |
    grep -oE 'tessera_[a-z_]+' | sort -u)
bound=$(grep -oE 'name="tessera_[a-z_]+"' "$here/tessera.f90" | grep -oE 'tessera_[a-z_]+' | sort -u)
unbound=$(comm -23 <(echo "$declared") <(echo "$bound"))
if [[ -n "$unbound" ]]; then
    echo "tessera.f90 has no interface for: $unbound" >&2
    exit 1
fi
echo "== tessera.f90 binds all $(echo "$declared" | wc -l) functions of tessera.h"

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
    g++ -std=c++17 -Wpedantic "${cflags[@]}" "$here/embed.cpp" -o "$bin/embed_cpp" "${link[@]}"
    gfortran -O2 -g -ffp-contract=off -J"$bin" "$here/tessera.f90" "$here/predict.f90" \
        -o "$bin/predict_f" "${link[@]}"
    gfortran -O2 -g -ffp-contract=off -J"$bin" "$here/tessera.f90" "$here/projection.f90" \
        -o "$bin/projection_f" "${link[@]}"
    echo "== running ($mode)"
    "${valgrind[@]}" "$bin/predict" "$work/run" "$work/test.safetensors" "$samples"
    "${valgrind[@]}" "$bin/bad_calls" "$work/run" "$work/corrupt" "$scenario"
    "${valgrind[@]}" "$bin/projection" "$here/projection.toml"
    "${valgrind[@]}" "$bin/embed_cpp" "$work/run" "$here/projection.toml"
    "${valgrind[@]}" "$bin/predict_f" "$work/run" "$work/test.safetensors"
    "${valgrind[@]}" "$bin/projection_f" "$here/projection.toml"
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
    echo "== running the JAX examples"
    python3 "$here/projection_jax.py" "$here/projection.toml" "$here/projection-2d.toml"
    python3 "$here/inverse_jax.py" "$here/inverse.toml"
    python3 "$here/assimilate_jax.py" "$work/run" "$work/test.safetensors"
else
    require "numpy and jax" JAX
fi
# The package as pip installs it (solver/capi/python/pyproject.toml: cargo
# builds the library, which the modules then find beside themselves, with
# no TESSERA_LIB, and the command-line tool). The build fetches
# setuptools-rust from the package index.
unset TESSERA_LIB
if python3 -c "import numpy" 2>/dev/null &&
    python3 -m pip install --quiet --no-deps --target "$work/site" "$here/../python"; then
    echo "== running the Python examples against the pip-installed package"
    export PYTHONPATH="$work/site"
    python3 -c "import importlib.metadata as m, tessera
assert tessera._library_path().startswith('$work/site/'), tessera._library_path()
assert tessera.version() == m.version('tessera'), (tessera.version(), m.version('tessera'))
print('package', m.version('tessera'), 'with', tessera._library_path())"
    python3 "$here/predict.py" "$work/run" "$work/test.safetensors" "$samples"
    python3 "$here/projection.py" "$here/projection.toml"
    cli=$("$work/site/bin/tessera" --version)
    package=$(python3 -c "import importlib.metadata as m; print(m.version('tessera'))")
    if [[ "$cli" != "tessera $package" ]]; then
        echo "the package's tessera script says '$cli', expected 'tessera $package'" >&2
        exit 1
    fi
    echo "the package's command-line tool: $cli"
else
    require "numpy and pip (with the package index)" "pip-installed package"
fi
echo "== C ABI examples: all passed"
