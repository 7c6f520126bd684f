"""An inverse problem through the constraint layer: recover the initial
condition of the heat equation from observations of the field, with the
gradient in the initial condition (tessera_jax.projection differentiates in
``ic``) and BFGS.

A twin experiment: a fixed basis of separable functions sin(kπx)·t^j
(k = 1..8, j = 0..3) projected for a known initial condition gives the
"observed" field at every other grid point of the later half of the time
levels; starting from u0 = 0, BFGS minimises the squared misfit of the
projected field there. The truth lies in the span the basis can carry
(three sine modes), so the recovery must reproduce the observations to
round-off and the initial condition to the solver's tolerance, although no
observation sees t < 0.1, by when diffusion has damped the third mode to
e^(-0.9) ≈ 0.4 of its start.

    python3 inverse_jax.py SCENARIO.toml      (inverse.toml: heat, 11 × 32)
"""

import sys
import time

import numpy as np

import jax
import jax.numpy as jnp
import jax.scipy.optimize

import tessera
import tessera_jax

jax.config.update("jax_enable_x64", True)


def main(scenario):
    with tessera.ConstraintLayer(scenario) as layer:
        nt, nx = layer.shape.grid
        t = np.linspace(0.0, 1.0, nt)[:, None, None, None]
        x = np.linspace(0.0, 1.0, nx)[None, :, None, None]
        k = np.arange(1, 9)[None, None, :, None]
        j = np.arange(4)[None, None, None, :]
        # sin(kπx) meets the boundary rows u(t, 0) = u(t, 1) = 0.
        basis = (np.sin(k * np.pi * x) * t**j).reshape(nt, nx, -1)
        project = jax.jit(tessera_jax.projection(layer))

        xs = np.linspace(0.0, 1.0, nx)
        truth = np.sin(np.pi * xs) + 0.5 * np.sin(2 * np.pi * xs) - 0.3 * np.sin(3 * np.pi * xs)
        seen = (slice(nt // 2, None), slice(None, None, 2))
        observed = project(basis, truth)[seen]

        def misfit(u0):
            return jnp.sum((project(basis, u0)[seen] - observed) ** 2)

        start = jnp.zeros(nx)
        began = time.perf_counter()
        result = jax.scipy.optimize.minimize(
            jax.jit(misfit), start, method="BFGS", options={"maxiter": 500, "gtol": 1e-10}
        )
        seconds = time.perf_counter() - began
        recovered = np.asarray(result.x)
        error = np.linalg.norm(recovered - truth) / np.linalg.norm(truth)
        first, last = float(misfit(start)), float(result.fun)
        print(f"BFGS: {int(result.nit)} iterations in {seconds:.1f} s, misfit {first:.3e} -> "
              f"{last:.3e}")
        print(f"recovered initial condition: relative error {error:.2e} (the start's: 1)")
        assert bool(result.success), f"BFGS stopped with status {int(result.status)}"
        assert last <= 1e-16 * first, "the observations are reproduced to round-off"
        assert error <= 1e-6, "the initial condition is recovered"
    print("inverse_jax.py: all checks passed")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} SCENARIO")
    main(sys.argv[1])
