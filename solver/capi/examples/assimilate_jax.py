"""Data assimilation with a trained model: the initial concentration of a
diffusion–sorption run estimated from observations of its later half, by
gradient descent through the trained surrogate (tessera_jax.surrogate: the
FNO backbone and the hard-constraint layer, differentiated in the initial
condition).

First the surrogate's gradient is checked: its fields and solve statuses equal
Model.predict's bit for bit, jax.grad equals ModelForward.backward's bits (also
under vmap and jit), and both match central differences of the predictions. Then a twin
experiment per test trajectory: the observations are the model's own
prediction from that trajectory's initial condition (every other point of
the later half of the time levels), the unknown is the initial
concentration's level (the test set's initial conditions are uniform), and
BFGS starts from another trajectory's level. A twin experiment tests the
assimilation itself (the observations are consistent with the model);
assimilating measurements adds the model's own error, which for a surrogate
trained for three steps is large.

    python3 assimilate_jax.py RUN_DIR TEST_DATA.safetensors
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


def main(run_dir, data):
    tessera.set_num_threads(2)
    with tessera.Model(run_dir) as model:
        s = model.shape
        samples = 3
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
        seen = (slice(nt // 2, None), slice(None, None, 2))
        for a in range(samples):
            level = ics[a, 0]
            assert np.all(ics[a] == level), "the test set's initial conditions are uniform"
            observed = predict(ics[a])[seen]

            # The level as exp(z): a concentration stays positive.
            def misfit(z):
                return jnp.sum((predict(jnp.exp(z) * jnp.ones(nx))[seen] - observed) ** 2)

            b = (a + 1) % samples
            start = jnp.log(ics[b, :1])
            began = time.perf_counter()
            result = jax.scipy.optimize.minimize(
                jax.jit(misfit), start, method="BFGS", options={"maxiter": 100, "gtol": 1e-14}
            )
            seconds = time.perf_counter() - began
            found = float(jnp.exp(result.x[0]))
            error = abs(found - level) / level
            first, last = float(misfit(start)), float(result.fun)
            print(f"trajectory {a}: initial level {level:.10g}, from {ics[b, 0]:.6g} BFGS found "
                  f"{found:.10g} (relative error {error:.1e}) in {int(result.nit)} iterations, "
                  f"{seconds:.1f} s; misfit {first:.3e} -> {last:.3e}")
            assert last <= 1e-12 * first, "the observations are reproduced"
            assert error <= 1e-8, "the initial level is recovered"
    print("assimilate_jax.py: all checks passed")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} RUN_DIR TEST_DATA")
    main(sys.argv[1], sys.argv[2])
