"""The constraint layer as a JAX function (tessera_jax.projection), checked
against the library's own calls and against finite differences:

- eager, jit and vmap give the bits of tessera.ConstraintLayer.solve, and
  jax.grad the bits of ConstraintLayer.backward, from one solve (the kept
  forward pass);
- tessera_jax.residual gives the library's residual and its backward pass,
  and the paper's physics loss ||F(project(B))|| differentiates through both
  to match central differences (also on the 2-D layer);
- a lax.scan rollout's gradient is the library's, whether its solves were
  kept or dropped and solved again;
- a tiny network's parameter gradient through the layer (the chain rule that
  JAX applies around the layer's custom gradient) matches central finite
  differences of the loss, which use only forward solves;
- the statuses equal the library's; a float32 basis gives a float32 field
  near the float64 one; a basis of another grid and NaN input are errors;
- the gradient in the initial condition is the library's
  (Forward.backward_with_ic), summed over the samples that share it, and
  matches central differences (in 2-D through Navier–Stokes' offset);
- on a 2-D layer (SCENARIO_2D, Navier–Stokes), jit(vmap(grad)) gives the
  library's bits and matches central differences.

    python3 projection_jax.py SCENARIO.toml SCENARIO_2D.toml
"""

import logging
import sys

import numpy as np

import jax
import jax.numpy as jnp

import tessera
import tessera_jax
from support import expect_error

jax.config.update("jax_enable_x64", True)


class Counting:
    """A layer that counts the calls of its methods."""

    def __init__(self, layer):
        self.layer = layer
        self.calls = {}

    def __getattr__(self, name):
        attribute = getattr(self.layer, name)
        if not callable(attribute):
            return attribute

        def counted(*args):
            self.calls[name] = self.calls.get(name, 0) + 1
            return attribute(*args)

        return counted


def main(scenario):
    with tessera.ConstraintLayer(scenario) as layer:
        s = layer.shape
        rng = np.random.default_rng(2024)
        n = 8  # overdetermined and well conditioned, for finite differences
        basis = rng.uniform(-1.0, 1.0, s.grid + (n,))
        x = (np.arange(s.nx) + 0.5) / s.nx
        ic = np.sin(np.pi * x)
        u_ref, _, statuses = layer.solve(basis, ic)
        project = tessera_jax.projection(layer)

        u = project(basis, ic)
        assert u.dtype == jnp.float64 and u.shape == s.grid
        assert np.array_equal(np.asarray(u), u_ref), "eager: the library's solve"
        assert np.array_equal(np.asarray(jax.jit(project)(basis, ic)), u_ref), "jit"

        # vmap over a batch, with its own and with one shared initial condition.
        other = rng.uniform(-1.0, 1.0, basis.shape)
        ic2 = np.cos(np.pi * x)
        bases, ics = np.stack([basis, other]), np.stack([ic, ic2])
        u_batch = layer.solve(bases, ics)[0]
        assert np.array_equal(np.asarray(jax.vmap(project)(bases, ics)), u_batch), "vmap"
        shared = layer.solve(bases, np.stack([ic, ic]))[0]
        vmapped = jax.vmap(project, in_axes=(0, None))(bases, ic)
        assert np.array_equal(np.asarray(vmapped), shared), "vmap, shared ic"
        assert np.array_equal(np.asarray(project(bases, ics)), u_batch), "leading axes"
        print("eager, jit, vmap and leading axes: the library's solve, bit for bit")

        # jax.grad of <u_bar, u> is the library's backward pass.
        u_bar = np.sin(1.3 * np.arange(s.field_len)).reshape(s.grid)
        grad = jax.grad(lambda b: jnp.sum(project(b, ic) * u_bar))(basis)
        assert np.array_equal(np.asarray(grad), layer.backward(basis, ic, u_bar)), "grad"
        batch_grad = jax.jit(jax.vmap(jax.grad(lambda b, c: jnp.sum(project(b, c) * u_bar))))
        expected = layer.backward(bases, ics, np.stack([u_bar, u_bar]))
        assert np.array_equal(np.asarray(batch_grad(bases, ics)), expected), "jit(vmap(grad))"
        print("grad, jit(vmap(grad)): the library's backward pass, bit for bit")

        # A gradient solves once: the forward rule keeps its solve for the backward
        # rule. A vjp called twice, and one whose solve was dropped (more than `keep`
        # solves waiting), solve again and give the same bits.
        counting = Counting(layer)
        kept_project = tessera_jax.projection(counting, keep=2)
        kept_grad = jax.grad(lambda b: jnp.sum(kept_project(b, ic) * u_bar))(basis)
        assert np.array_equal(np.asarray(kept_grad), np.asarray(grad))
        assert counting.calls == {"forward": 1}, counting.calls
        _, vjp = jax.vjp(lambda b: kept_project(b, ic), basis)
        for _ in range(2):
            assert np.array_equal(np.asarray(vjp(u_bar)[0]), np.asarray(grad))
        assert counting.calls == {"forward": 2, "backward": 1}, counting.calls
        _, first = jax.vjp(lambda b: kept_project(b, ic), basis)
        for _ in range(2):
            jax.vjp(lambda b: kept_project(b, ic), other)
        assert np.array_equal(np.asarray(first(u_bar)[0]), np.asarray(grad))
        assert counting.calls == {"forward": 5, "backward": 2}, counting.calls
        print("a gradient solves once; a dropped or reused solve is solved again, same bits")

        # In the initial condition: the library's bits (with the basis's, from one
        # solve), a dropped solve solved again with the same bits, the sum over the
        # samples for an ic shared by a batch, and central differences.
        with layer.forward(basis, ic) as forward:
            want_b, want_ic = forward.backward_with_ic(u_bar)
        counting = Counting(layer)
        kept_project = tessera_jax.projection(counting, keep=1)
        both = lambda b, c: jnp.sum(kept_project(b, c) * u_bar)
        g_b, g_ic = jax.grad(both, argnums=(0, 1))(basis, ic)
        assert np.array_equal(np.asarray(g_b), want_b) and np.array_equal(np.asarray(g_ic), want_ic)
        assert counting.calls == {"forward": 1}, counting.calls
        _, first = jax.vjp(lambda c: kept_project(basis, c), ic)
        jax.vjp(lambda c: kept_project(other, c), ic)
        assert np.array_equal(np.asarray(first(u_bar)[0]), want_ic), "ic, solved again"
        with layer.forward(bases, np.stack([ic, ic])) as forward:
            want_shared = forward.backward_with_ic(np.stack([u_bar, u_bar]))[1]
        want_shared = want_shared[0] + want_shared[1]
        shared = lambda c: jnp.sum(project(bases, c) * u_bar)
        assert np.array_equal(np.asarray(jax.grad(shared)(ic)), want_shared), "leading axes"
        shared_vmap = lambda c: jnp.sum(jax.vmap(project, in_axes=(0, None))(bases, c) * u_bar)
        assert np.array_equal(np.asarray(jax.jit(jax.grad(shared_vmap))(ic)), want_shared), "vmap"
        d = np.sin(0.5 * np.arange(s.nx))
        eps = 1e-6
        on_ic = lambda c: float(jnp.sum(project(basis, c) * u_bar))
        numeric = (on_ic(ic + eps * d) - on_ic(ic - eps * d)) / (2 * eps)
        analytic = float(np.sum(want_ic * d))
        print(f"gradient in ic: {analytic:.10g}, finite differences {numeric:.10g}")
        assert abs(analytic) > 1e-8, "a vanishing gradient checks nothing"
        assert abs(analytic - numeric) <= 1e-5 * max(1.0, abs(analytic)), "ic gradient"
        print("grad in ic: the library's bits, batched and broadcast, and central differences")

        # A rollout under lax.scan: 6 solves wait for their backward passes, which
        # run in reverse; with keep=2 the first four are dropped and solved again.
        steps = np.stack([basis, other] * 3)
        expected = layer.backward(steps, np.stack([ic] * 6), np.stack([u_bar] * 6))
        for keep, resolved in [(8, 0), (2, 4)]:
            counting = Counting(layer)
            rollout_project = tessera_jax.projection(counting, keep=keep)

            def rollout(bs):
                step = lambda c, b: (c + jnp.sum(rollout_project(b, ic) * u_bar), None)
                return jax.lax.scan(step, 0.0, bs)[0]

            rollout_grad = jax.jit(jax.grad(rollout))(steps)
            assert np.array_equal(np.asarray(rollout_grad), expected), f"scan, keep={keep}"
            assert counting.calls.get("backward", 0) == resolved, (keep, counting.calls)
        print("lax.scan rollout: the library's gradient; solves dropped beyond `keep` re-solved")

        # A tiny network: basis = tanh(features @ W), trained towards a target field.
        features = np.stack(
            [np.broadcast_to(v, s.grid) for v in np.meshgrid(
                np.linspace(0, 1, s.nt), x, indexing="ij")] + [np.ones(s.grid)], axis=-1)
        target = np.exp(-np.linspace(0, 1, s.nt))[:, None] * ic[None, :]

        def loss(w):
            field = project(jnp.tanh(features @ w), ic)
            return jnp.mean((field - target) ** 2)

        w = rng.normal(0.0, 1.0, (features.shape[-1], n))
        analytic_grad = jax.jit(jax.grad(loss))(w)
        direction = rng.normal(0.0, 1.0, w.shape)
        v_basis = rng.normal(0.0, 1.0, basis.shape)
        eps = 1e-6
        numeric = (loss(w + eps * direction) - loss(w - eps * direction)) / (2 * eps)
        analytic = float(jnp.sum(analytic_grad * direction))
        print(f"network gradient: {analytic:.10g}, finite differences {float(numeric):.10g}")
        assert abs(analytic - numeric) <= 1e-6 * max(1.0, abs(analytic)), "chain rule"

        # The PDE residual: the library's values and backward pass, and the paper's
        # physics loss ||F(project(B))|| differentiated through both layers.
        pde_residual = tessera_jax.residual(layer)
        f = jax.jit(pde_residual)(u_ref)
        assert np.array_equal(np.asarray(f), layer.residual(u_ref)), "residual"
        f_bar = np.cos(0.3 * np.arange(f.size)).reshape(f.shape)
        r_grad = jax.grad(lambda v: jnp.sum(pde_residual(v) * f_bar))(u_ref)
        assert np.array_equal(np.asarray(r_grad), layer.residual_backward(u_ref, f_bar))
        physics = lambda b: jnp.linalg.norm(pde_residual(project(b, ic)))
        p_grad = jax.jit(jax.grad(physics))(basis)
        p_numeric = (physics(basis + eps * v_basis) - physics(basis - eps * v_basis)) / (2 * eps)
        p_analytic = float(jnp.sum(p_grad * v_basis))
        print(f"physics loss gradient: {p_analytic:.10g}, finite differences {float(p_numeric):.10g}")
        assert abs(p_analytic - p_numeric) <= 1e-6 * max(1.0, abs(p_analytic)), "physics loss"

        # Statuses.
        u2, status = tessera_jax.projection(layer, return_status=True)(basis, ic)
        assert np.array_equal(np.asarray(u2), u_ref)
        assert status["reason"].shape == (s.n_experts,)
        assert [int(r) for r in status["reason"]] == [st.reason_code for st in statuses]
        assert [int(i) for i in status["iterations"]] == [st.iterations for st in statuses]
        assert np.array_equal(np.asarray(status["final_residual"]),
                              [st.final_residual for st in statuses])
        print(f"statuses: {[tessera.STOP_REASONS[int(r)] for r in status['reason']]}")

        # float32 in, float32 out; the solves run in float64.
        u32 = project(basis.astype(np.float32), ic)
        assert u32.dtype == jnp.float32
        err32 = np.abs(np.asarray(u32, np.float64) - u_ref).max() / np.abs(u_ref).max()
        print(f"float32 basis: relative difference {err32:.2e} from float64")
        assert err32 < 1e-4

        e = expect_error(ValueError, lambda: project(basis[:-1], ic), "a basis of another grid")
        print(f"wrong grid: {e}")
        bad = basis.copy()
        bad[0, 0, 0] = np.nan
        # JAX logs a failed callback's traceback besides raising; the raise is checked.
        logging.getLogger("jax._src.callback").setLevel(logging.CRITICAL)
        e = expect_error(Exception, lambda: jax.block_until_ready(project(bad, ic)), "NaN input")
        assert "NON_FINITE" in str(e), str(e)
        print("NaN input: raised with the library's NON_FINITE status")


def check_2d(scenario):
    """A 2-D layer whose PDE builds the initial condition into the field
    (Navier–Stokes' solution map): the library's bits for u and for the
    gradient under jit(vmap(grad)) with a shared ic, and the gradient against
    central differences."""
    with tessera.ConstraintLayer(scenario) as layer:
        s = layer.shape
        rng = np.random.default_rng(7)
        bases = rng.uniform(-1.0, 1.0, (2,) + s.grid + (12,))
        y, x = np.meshgrid(*(np.arange(n) / n for n in s.space), indexing="ij")
        ic = np.sin(2 * np.pi * x) * np.cos(2 * np.pi * y)
        project = tessera_jax.projection(layer)
        u = jax.jit(jax.vmap(project, in_axes=(0, None)))(bases, ic)
        assert u.shape == (2,) + s.grid
        assert np.array_equal(np.asarray(u), layer.solve(bases, np.stack([ic, ic]))[0])
        u_bar = np.cos(0.9 * np.arange(s.field_len)).reshape(s.grid)
        grad = jax.jit(jax.vmap(jax.grad(lambda b: jnp.sum(project(b, ic) * u_bar))))(bases)
        expected = layer.backward(bases, np.stack([ic, ic]), np.stack([u_bar, u_bar]))
        assert np.array_equal(np.asarray(grad), expected), "2-D jit(vmap(grad))"
        direction = rng.normal(0.0, 1.0, s.grid + (12,))
        eps = 1e-6
        dot = lambda b: float(jnp.sum(project(b, ic) * u_bar))
        numeric = (dot(bases[0] + eps * direction) - dot(bases[0] - eps * direction)) / (2 * eps)
        analytic = float(np.sum(np.asarray(grad[0]) * direction))
        print(f"2-D ({s.grid}): gradient {analytic:.10g}, finite differences {numeric:.10g}")
        assert abs(analytic - numeric) <= 1e-5 * max(1.0, abs(analytic)), "2-D gradient"
        pde_residual = tessera_jax.residual(layer)
        physics = lambda b: jnp.linalg.norm(pde_residual(project(b, ic)))
        p_grad = jax.grad(physics)(bases[0])
        p_numeric = (physics(bases[0] + eps * direction) - physics(bases[0] - eps * direction)) / (
            2 * eps)
        p_analytic = float(jnp.sum(p_grad * direction))
        print(f"2-D physics loss gradient: {p_analytic:.10g}, finite differences "
              f"{float(p_numeric):.10g}")
        assert abs(p_analytic - p_numeric) <= 1e-5 * max(1.0, abs(p_analytic)), "2-D physics"
        # The initial condition enters as the solution's offset: its gradient.
        g_ic = jax.jit(jax.grad(lambda c: jnp.sum(project(bases[0], c) * u_bar)))(ic)
        d = rng.normal(0.0, 1.0, ic.shape)
        on_ic = lambda c: float(jnp.sum(project(bases[0], c) * u_bar))
        numeric = (on_ic(ic + eps * d) - on_ic(ic - eps * d)) / (2 * eps)
        analytic = float(np.sum(np.asarray(g_ic) * d))
        print(f"2-D gradient in ic: {analytic:.10g}, finite differences {numeric:.10g}")
        assert abs(analytic - numeric) <= 1e-5 * max(1.0, abs(analytic)), "2-D ic gradient"


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} SCENARIO SCENARIO_2D")
    main(sys.argv[1])
    check_2d(sys.argv[2])
    print("projection_jax.py: all checks passed")
