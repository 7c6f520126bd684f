"""Data assimilation with a trained model: the initial concentration of a
diffusion–sorption run estimated from later observations, by gradient
descent through the trained surrogate (tessera_jax.surrogate: the FNO
backbone and the hard-constraint layer, differentiated in the initial
condition).

First the surrogate's gradient is checked: its fields and solve statuses equal
Model.predict's bit for bit, jax.grad equals ModelForward.backward's bits (also
under vmap and jit), and both match central differences of the predictions
(which needs solves driven to round-off, as run.sh trains its run). Then a
twin experiment per test trajectory: the observations are the model's own
prediction from that trajectory's initial condition, at every other point
of the time levels after the first up to the middle one (later the inflow
at x = 0 fills the domain and the field hardly depends on its start), the
unknown is the initial concentration's level (the test set's initial
conditions are uniform), and BFGS starts from another trajectory's level.
A twin experiment tests the assimilation itself (the observations are
consistent with the model). Last, the same estimate from the truth's own
fields at the same points: there the model's error enters (for the tiny run
that run.sh trains for three steps, a large one), and the script reports
how far the estimated levels are from the true ones. The finite-difference
check holds where the prediction is smooth in its initial condition; the
sorption isotherm's u^0.874 is not at u = 0, which a trained model's field
may cross (on the quickstart's model, near x = 1).

    python3 assimilate_jax.py RUN_DIR TEST_DATA.safetensors [SAMPLES]
"""

import sys
import time

import numpy as np

import jax
import jax.numpy as jnp
import jax.scipy.optimize

import tessera
import tessera_jax
from predict import read_samples
from support import expect_error

jax.config.update("jax_enable_x64", True)


def check_gradient(model, predict, ics):
    """The surrogate against the library: fields, gradients (plain, jit, vmap) and
    central differences."""
    fields = predict(ics)
    assert np.array_equal(np.asarray(fields), model.predict(ics)), "fields equal predict's"
    bar = np.sin(1.3 * np.arange(fields.size)).reshape(fields.shape)
    loss = lambda ic: jnp.sum(predict(ic) * bar)
    with model.forward(ics) as forward:
        expected = forward.backward(bar)
    for name, grad in [("grad", jax.grad(loss)), ("jit(grad)", jax.jit(jax.grad(loss)))]:
        assert np.array_equal(np.asarray(grad(ics)), expected), f"{name} equals backward's bits"
    each = jax.vmap(jax.grad(lambda ic, b: jnp.sum(predict(ic) * b)))(ics, bar)
    assert np.array_equal(np.asarray(each), expected), "vmap equals the batch's bits"
    fields, status = tessera_jax.surrogate(model, return_status=True)(ics)
    _, statuses = model.predict(ics, return_status=True)
    assert np.array_equal(np.asarray(fields), model.predict(ics)), "fields with the status"
    for key, attribute in [("reason", "reason_code"), ("iterations", "iterations"),
                           ("final_residual", "final_residual")]:
        mine = [[getattr(s, attribute) for s in row] for row in statuses]
        assert np.array_equal(np.asarray(status[key]), mine), f"status {key}"
    direction = np.sin(0.71 * np.arange(ics.size)).reshape(ics.shape)
    eps = 1e-5  # the solves stop near 1e-12: smaller steps see that, not the derivative
    numeric = (loss(ics + eps * direction) - loss(ics - eps * direction)) / (2 * eps)
    analytic = np.sum(expected * direction)
    print(f"d/d ic through the surrogate: {analytic:.10g} "
          f"(finite differences {float(numeric):.10g})")
    assert abs(analytic - numeric) <= 1e-5 * abs(analytic), "gradient"
    assert abs(analytic) > 1e-6, "a vanishing gradient tests nothing"


def estimate_level(predict, observed, seen, nx, start):
    """The uniform initial level whose prediction best fits ``observed`` (the fields at
    ``seen``), by BFGS from ``start``: the level, BFGS's result, the seconds it took and
    the misfit before and after. The level is exp(z), so a concentration stays
    positive."""

    def misfit(z):
        return jnp.sum((predict(jnp.exp(z) * jnp.ones(nx))[seen] - observed) ** 2)

    z0 = jnp.log(jnp.array([start]))
    began = time.perf_counter()
    result = jax.scipy.optimize.minimize(
        jax.jit(misfit), z0, method="BFGS", options={"maxiter": 100, "gtol": 1e-14}
    )
    seconds = time.perf_counter() - began
    found = float(jnp.exp(result.x[0]))
    return found, result, seconds, float(misfit(z0)), float(result.fun)


def main(run_dir, data, samples):
    tessera.set_num_threads(2)
    with tessera.Model(run_dir) as model:
        s = model.shape
        truth = read_samples(data, samples, s.field_len).reshape((samples,) + s.grid)
        ics = truth[:, 0]
        predict = jax.jit(tessera_jax.surrogate(model))
        check_gradient(model, predict, ics[:2])
        e = expect_error(ValueError, lambda: predict(np.zeros(s.ic_len + 1)), "a wrong shape")
        print(f"wrong shape: {e}")
        e = expect_error(Exception, lambda: predict(np.full(s.ic_len, np.nan)), "NaN input")
        assert "non-finite" in str(e), e
        print("NaN input raises, with the library's message")

        nt, nx = s.grid
        seen = (slice(1, max(nt // 2, 2)), slice(None, None, 2))
        levels = ics[:, 0]
        assert np.all(ics == levels[:, None]), "the test set's initial conditions are uniform"
        # The twin experiment: the model's own prediction observed.
        for a in range(samples):
            b = (a + 1) % samples
            found, result, seconds, first, last = estimate_level(
                predict, predict(ics[a])[seen], seen, nx, levels[b]
            )
            error = abs(found - levels[a]) / levels[a]
            print(f"trajectory {a}: initial level {levels[a]:.10g}, from {levels[b]:.6g} BFGS "
                  f"found {found:.10g} (relative error {error:.1e}) in {int(result.nit)} "
                  f"iterations, {seconds:.1f} s; misfit {first:.3e} -> {last:.3e}")
            assert last <= 1e-12 * first, "the observations are reproduced"
            assert error <= 1e-8, "the initial level is recovered"
        # The truth observed: the model's own error enters the estimate.
        errors = []
        for a in range(samples):
            b = (a + 1) % samples
            found, _, _, first, last = estimate_level(
                predict, truth[a][seen], seen, nx, levels[b]
            )
            assert np.isfinite(found) and last <= first, "the misfit fell"
            errors.append(abs(found - levels[a]) / levels[a])
        print(f"from the truth's observations: the initial level within {np.mean(errors):.2e} "
              f"relative on average (worst {np.max(errors):.2e}) over {samples} trajectories")
    print("assimilate_jax.py: all checks passed")


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(f"usage: {sys.argv[0]} RUN_DIR TEST_DATA [SAMPLES]")
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) == 4 else 3)
