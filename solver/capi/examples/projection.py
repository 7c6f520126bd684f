"""The constraint layer from Python as a differentiable projection on numpy
arrays: project a pseudo-random basis B [T, X, N] for the initial condition
sin(pi x), then check, with the weights it returns, that each expert's field
B w_k meets the PDE at that expert's sampled points to the solver's
tolerance (within the solver's final residual and a millionth of the
unprojected field's), that a batch of two projects as the two one at a time,
that the backward pass matches central finite differences of the
projected field, and that a kept forward pass gives the same field and
gradient, and a gradient in the initial condition that matches central
finite differences too.

    python3 projection.py SCENARIO.toml
"""

import sys

import numpy as np

import tessera
from support import expect_error


def residual_at_points(layer, basis, weights):
    """max |F| at expert k's points of the field B w_k, over the experts."""
    worst = 0.0
    for k in range(layer.shape.n_experts):
        field = basis @ weights[k]
        f = layer.residual(field)
        worst = max(worst, np.abs(f.reshape(-1)[layer.points(k)]).max())
    return worst


def main(scenario):
    with tessera.ConstraintLayer(scenario) as layer:
        s = layer.shape
        rng = np.random.default_rng(12345)
        basis = rng.uniform(-1.0, 1.0, s.grid + (48,))
        x = (np.arange(s.nx) + 0.5) / s.nx
        ic = np.sin(np.pi * x)
        u, weights, statuses = layer.solve(basis, ic)
        assert u.shape == s.grid and weights.shape == (s.n_experts, 48)
        assert all(st.reason == "CONVERGED" for st in statuses), statuses
        before = residual_at_points(layer, basis, np.ones_like(weights))
        after = residual_at_points(layer, basis, weights)
        solver = max(st.final_residual for st in statuses)
        print(f"max |F| at the sampled points: {before:.3e} before, {after:.3e} after "
              f"(solver residual {solver:.3e})")
        assert after <= solver, "within the solver's residual"
        assert after <= 1e-6 * before, "at the solver's tolerance"

        # A batch of two: each as projected alone, bit for bit.
        other = rng.uniform(-1.0, 1.0, basis.shape)
        ic2 = np.cos(np.pi * x)
        u_b, w_b, _ = layer.solve(np.stack([basis, other]), np.stack([ic, ic2]))
        u2, w2, _ = layer.solve(other, ic2)
        assert np.array_equal(u_b[0], u) and np.array_equal(u_b[1], u2)
        assert np.array_equal(w_b[1], w2)
        print("a batch of two projects as the two alone")

        # Backward: <dL/dB, V> against central differences of <u_bar, u(B + eps V)>,
        # with 8 basis functions (overdetermined and well conditioned; with 48 the
        # tiny ridge makes the weights too sensitive for differences).
        small = basis[..., :8]
        u_bar = np.sin(1.3 * np.arange(s.field_len)).reshape(s.grid)
        grad = layer.backward(small, ic, u_bar)
        assert grad.shape == small.shape
        v = np.cos(0.7 * np.arange(small.size)).reshape(small.shape)
        eps = 1e-6
        plus = np.sum(layer.solve(small + eps * v, ic)[0] * u_bar)
        minus = np.sum(layer.solve(small - eps * v, ic)[0] * u_bar)
        numeric = (plus - minus) / (2 * eps)
        analytic = np.sum(grad * v)
        print(f"backward: {analytic:.10g}, finite differences {numeric:.10g}")
        assert abs(analytic - numeric) <= 1e-5 * max(1.0, abs(analytic)), "backward matches"

        # A kept forward pass: the solve's results, then the backward pass's bits
        # without solving again.
        forward = layer.forward(small, ic)
        u_small, w_small, _ = layer.solve(small, ic)
        assert np.array_equal(forward.u, u_small) and np.array_equal(forward.weights, w_small)
        assert np.array_equal(forward.backward(u_bar), grad), "kept backward"
        # In the initial condition too: the same basis gradient, and <dL/dic, d>
        # against central differences of <u_bar, u(ic + eps d)>.
        grad_b, grad_ic = forward.backward_with_ic(u_bar)
        assert np.array_equal(grad_b, grad) and grad_ic.shape == ic.shape
        d = np.sin(0.5 * np.arange(s.nx))
        plus = np.sum(layer.solve(small, ic + eps * d)[0] * u_bar)
        minus = np.sum(layer.solve(small, ic - eps * d)[0] * u_bar)
        numeric = (plus - minus) / (2 * eps)
        analytic = np.sum(grad_ic * d)
        print(f"backward in ic: {analytic:.10g}, finite differences {numeric:.10g}")
        assert abs(analytic) > 1e-8, "a vanishing gradient checks nothing"
        assert abs(analytic - numeric) <= 1e-5 * max(1.0, abs(analytic)), "ic backward matches"
        expect_error(ValueError, lambda: forward.backward(u_bar[1:]), "a u_bar of another shape")
        assert repr(forward) == f"Forward(u {u_small.shape}, weights {w_small.shape})", repr(forward)
        forward.close()
        assert repr(forward) == "Forward(closed)"
        expect_error(ValueError, lambda: forward.backward(u_bar), "a closed forward pass")
        assert f"grid {s.grid}" in repr(layer), repr(layer)
        print("kept forward: the solve's results and the backward pass's bits")

        e = expect_error(ValueError, lambda: layer.solve(basis[:-1], ic), "a basis of another grid")
        print(f"wrong grid: {e}")
    print("projection.py: all checks passed")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} SCENARIO")
    main(sys.argv[1])
