"""Tessera's constraint layer, and a trained model, as JAX functions with their
exact gradients.

:func:`projection` turns a :class:`tessera.ConstraintLayer` into a function
``u = project(basis, ic)`` that JAX can ``jit``, ``vmap`` and differentiate
with respect to ``basis`` and ``ic``: the forward pass is the library's solve (every
expert's float64 Levenberg–Marquardt problem), the backward pass its
implicit-function-theorem gradient, both run on the host's cores through
``jax.pure_callback``. A network written in JAX that outputs a basis trains
through the hard constraint as the paper's reference implementation does::

    import jax
    import tessera, tessera_jax                    # pip install "./solver/capi/python[jax]"

    jax.config.update("jax_enable_x64", True)      # float64, the paper's setting
    layer = tessera.ConstraintLayer("scenarios/quickstart.toml")
    project = tessera_jax.projection(layer)

    def loss(params, ic, u_true):
        u = project(network(params, ic), ic)       # basis [..., T, X, N] -> u [..., T, X]
        return jnp.mean((u - u_true) ** 2)

    grads = jax.jit(jax.grad(loss))(params, ic, u_true)

Shapes: ``basis`` is ``[..., T, X, (Y), N]`` for any ``N`` and any leading
batch axes; ``ic`` is ``[..., X, (Y)]`` with the same leading axes, or none
(one initial condition for every basis). ``u`` has the basis's leading axes
and grid, and its dtype: a float32 basis gives a float32 ``u`` (the solves
still run in float64).

The gradient in ``ic`` (inverse problems, data assimilation, a learned
initial state) comes from the same backward pass: the initial condition
reaches the field through the rows it builds and the offset of models that
build it in (:meth:`tessera.Forward.backward_with_ic`). It is computed only
where JAX asks for it; an ``ic`` broadcast over the basis's leading axes gets
the sum over them.

:func:`residual` makes the layer's PDE residual of any field a differentiable
JAX function too, so the paper's physics loss ``‖F(u)‖₂`` of the projected
field, and its gradient, come from JAX.

:func:`surrogate` turns a trained model (:class:`tessera.Model`) into
``fields = predict(ic)``, differentiable in ``ic`` through the backbone and the
constraint layer: data assimilation with a trained surrogate::

    predict = jax.jit(tessera_jax.surrogate(tessera.Model("runs/quickstart-moe-…")))
    misfit = lambda u0: jnp.sum((predict(u0)[later] - observed) ** 2)
    u0 = jax.scipy.optimize.minimize(misfit, guess, method="BFGS").x

``projection(layer, return_status=True)`` returns ``(u, status)``, where
``status`` holds, per expert (``[..., K]``), the solve's ``reason`` (an index
into :data:`tessera.STOP_REASONS`; 0 is converged), ``iterations`` and
``final_residual``. A call the library refuses (NaN input, a failed solve in
the backward pass) raises; inside ``jit`` JAX reports it as a
``JaxRuntimeError`` whose message holds the library's.

Under differentiation the forward pass keeps its solve (:meth:`tessera.
ConstraintLayer.forward`) for the backward pass, so a gradient costs one solve
and one backward pass. At most ``keep`` solves wait for their backward pass
(a solve whose gradient is never asked for, as in ``jax.vjp`` without calling
the result, is dropped after ``keep`` newer ones); a backward pass that finds
its solve gone solves again, which gives the same bits (the solves are
deterministic).
"""

import collections
import threading

import numpy as np

try:
    import jax
    import jax.numpy as jnp
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("tessera_jax needs JAX (pip install jax)") from e

import tessera

__all__ = ["projection", "residual", "surrogate"]


class _Kept:
    """Kept forward passes by token, oldest first, at most ``limit`` of them."""

    def __init__(self, limit):
        self.limit = limit
        self.forwards = collections.OrderedDict()
        self.last = 0
        self.lock = threading.Lock()

    def put(self, forward):
        with self.lock:
            self.last = self.last % (2**31 - 1) + 1  # an int32 token, never 0
            self.forwards[self.last] = forward
            dropped = []
            while len(self.forwards) > self.limit:
                dropped.append(self.forwards.popitem(last=False)[1])
            token = self.last
        for forward in dropped:
            forward.close()
        return token

    def take(self, token):
        with self.lock:
            return self.forwards.pop(token, None)


def _status_arrays(statuses, lead, k, dtype):
    """Each solve's ``reason`` code, ``iterations`` and ``final_residual`` (in
    ``dtype``), ``[..., K]``, from the library's statuses ``[batch][K]``."""
    reason = np.array([[s.reason_code for s in row] for row in statuses], np.int32)
    iterations = np.array([[s.iterations for s in row] for row in statuses], np.int32)
    final = np.array([[s.final_residual for s in row] for row in statuses])
    return (
        reason.reshape(lead + (k,)),
        iterations.reshape(lead + (k,)),
        final.reshape(lead + (k,)).astype(dtype, copy=False),
    )


def _status_shapes(lead, k, dtype):
    """What :func:`_status_arrays` returns, as JAX shapes."""
    return (
        jax.ShapeDtypeStruct(lead + (k,), jnp.int32),
        jax.ShapeDtypeStruct(lead + (k,), jnp.int32),
        jax.ShapeDtypeStruct(lead + (k,), dtype),
    )


def projection(layer, return_status=False, keep=8):
    """``project(basis, ic)``: ``layer``'s projection as a differentiable JAX function
    (see the module's documentation). ``layer`` must stay open while it is used;
    ``keep`` bounds the solves held for their backward pass."""
    shape = layer.shape
    grid, space = tuple(shape.grid), tuple(shape.space)
    k = shape.n_experts
    kept = _Kept(keep)

    def check(basis, ic):
        if not jnp.issubdtype(basis.dtype, jnp.floating):
            raise TypeError(f"basis must be a real floating array, not {basis.dtype}")
        lead = basis.shape[: basis.ndim - len(grid) - 1]
        if basis.ndim < len(grid) + 1 or basis.shape[len(lead):-1] != grid:
            raise ValueError(
                f"basis has shape {basis.shape}; expected (..., {', '.join(map(str, grid))}, N)"
            )
        if ic.shape not in (space, lead + space):
            raise ValueError(f"ic has shape {ic.shape}; expected {space} or {lead + space}")
        return lead

    def batch(basis, ic):
        """The library's batch: every leading index of ``basis`` (and of ``ic``,
        broadcast) one sample."""
        lead = basis.shape[: basis.ndim - len(grid) - 1]
        b = np.reshape(basis, (-1,) + grid + (basis.shape[-1],))
        return lead, b, np.reshape(np.broadcast_to(ic, lead + space), (-1,) + space)

    def host_solve(basis, ic, keep_it):
        """Callback: the solve, and the token of its kept forward pass (0 if not kept)."""
        lead, b, c = batch(basis, ic)
        if keep_it:
            forward = layer.forward(b, c)
            u, statuses, token = forward.u, forward.statuses, kept.put(forward)
        else:
            u, _, statuses = layer.solve(b, c)
            token = 0
        return (
            u.reshape(lead + grid).astype(basis.dtype, copy=False),
            *_status_arrays(statuses, lead, k, basis.dtype),
            np.full(lead, token, np.int32),
        )

    # One function object each, so JAX's caches see the same callback every call.
    def host_solve_kept(basis, ic):
        return host_solve(basis, ic, True)

    def host_solve_plain(basis, ic):
        return host_solve(basis, ic, False)

    def host_backward(basis, ic, token, u_bar, with_ic):
        """Callback: the kept forward pass's backward pass, or a solve and its
        backward pass where none is kept for these inputs; with ``with_ic``, the
        initial conditions' gradient too, summed over the leading axes ``ic`` was
        broadcast along (those of ``basis`` past ``ic``'s own)."""
        u_bar = np.reshape(u_bar, (-1,) + grid)
        like_basis = lambda g: g.reshape(basis.shape).astype(basis.dtype, copy=False)
        tokens = np.unique(token)
        forward = kept.take(int(tokens[0])) if tokens.size == 1 else None
        if forward is None or forward.u.shape != u_bar.shape:
            if forward is not None:
                forward.close()
            _, b, c = batch(basis, ic)
            if not with_ic:
                return like_basis(layer.backward(b, c, u_bar))
            forward = layer.forward(b, c)
        with forward:
            if not with_ic:
                return like_basis(forward.backward(u_bar))
            g, g_ic = forward.backward_with_ic(u_bar)
        lead = basis.shape[: basis.ndim - len(grid) - 1]
        own = ic.ndim - len(space)
        g_ic = g_ic.reshape(lead + space).sum(axis=tuple(range(own, len(lead))))
        return like_basis(g), g_ic.astype(ic.dtype, copy=False)

    def host_backward_basis(basis, ic, token, u_bar):
        return host_backward(basis, ic, token, u_bar, False)

    def host_backward_both(basis, ic, token, u_bar):
        return host_backward(basis, ic, token, u_bar, True)

    def solve(basis, ic, keep_it):
        lead = check(basis, ic)
        result = (
            jax.ShapeDtypeStruct(lead + grid, basis.dtype),
            *_status_shapes(lead, k, basis.dtype),
            jax.ShapeDtypeStruct(lead, jnp.int32),
        )
        u, reason, iterations, final, token = jax.pure_callback(
            host_solve_kept if keep_it else host_solve_plain, result, basis, ic,
            vmap_method="broadcast_all",
        )
        status = {"reason": reason, "iterations": iterations, "final_residual": final}
        return (u, status), token

    @jax.custom_vjp
    def project(basis, ic):
        return solve(basis, ic, keep_it=False)[0]

    def project_fwd(basis, ic):
        # With symbolic zeros each primal says whether it is being differentiated;
        # whether ic is travels to the backward rule as the residual's structure
        # (() or None: residuals hold arrays, and neither is one).
        out, token = solve(basis.value, ic.value, keep_it=True)
        return out, (basis.value, ic.value, token, () if ic.perturbed else None)

    def project_bwd(saved, cotangents):
        basis, ic, token, wrt_ic = saved
        u_bar = cotangents[0]
        if type(u_bar) is jax.custom_derivatives.SymbolicZero:
            return jnp.zeros_like(basis), (None if wrt_ic is None else jnp.zeros_like(ic))
        basis_bar = jax.ShapeDtypeStruct(basis.shape, basis.dtype)
        args = (basis, ic, token, u_bar.astype(basis.dtype, copy=False))
        if wrt_ic is None:
            grad = jax.pure_callback(
                host_backward_basis, basis_bar, *args, vmap_method="broadcast_all"
            )
            return grad, None
        ic_bar = jax.ShapeDtypeStruct(ic.shape, ic.dtype)
        return jax.pure_callback(
            host_backward_both, (basis_bar, ic_bar), *args, vmap_method="broadcast_all"
        )

    project.defvjp(project_fwd, project_bwd, symbolic_zeros=True)

    def apply(basis, ic):
        basis, ic = jnp.asarray(basis), jnp.asarray(ic)
        if not jnp.issubdtype(ic.dtype, jnp.floating):
            ic = ic.astype(basis.dtype, copy=False)
        u, status = project(basis, ic)
        return (u, status) if return_status else u

    apply.__doc__ = (
        f"u = project(basis, ic): basis [..., {', '.join(map(str, grid))}, N], "
        f"ic [..., {', '.join(map(str, space))}]"
    )
    return apply


def residual(layer):
    """``F = pde_residual(u)``: ``layer``'s PDE residual of fields ``u`` (``[..., T, X, (Y)]``)
    at every grid point, ``[..., T, X, (Y), m]``, as a JAX function differentiable in
    ``u`` (its backward pass is the library's, ``ConstraintLayer.residual_backward``).
    With :func:`projection` it gives the paper's physics loss from JAX::

        loss = jnp.linalg.norm(pde_residual(project(basis, ic)))
    """
    shape = layer.shape
    grid, m = tuple(shape.grid), shape.n_equations

    def lead_of(u):
        lead = u.shape[: u.ndim - len(grid)]
        if u.ndim < len(grid) or u.shape[len(lead):] != grid:
            raise ValueError(f"u has shape {u.shape}; expected (..., {', '.join(map(str, grid))})")
        return lead

    def host_residual(u):
        lead = u.shape[: u.ndim - len(grid)]
        f = layer.residual(np.reshape(u, (-1,) + grid))
        return f.reshape(lead + grid + (m,)).astype(u.dtype, copy=False)

    def host_backward(u, f_bar):
        u_b = np.reshape(u, (-1,) + grid)
        g = layer.residual_backward(u_b, np.reshape(f_bar, u_b.shape + (m,)))
        return g.reshape(u.shape).astype(u.dtype, copy=False)

    def evaluate(u):
        result = jax.ShapeDtypeStruct(lead_of(u) + grid + (m,), u.dtype)
        return jax.pure_callback(host_residual, result, u, vmap_method="broadcast_all")

    @jax.custom_vjp
    def pde_residual(u):
        return evaluate(u)

    def pde_residual_fwd(u):
        return evaluate(u), u

    def pde_residual_bwd(u, f_bar):
        result = jax.ShapeDtypeStruct(u.shape, u.dtype)
        return (
            jax.pure_callback(
                host_backward, result, u, f_bar.astype(u.dtype), vmap_method="broadcast_all"
            ),
        )

    pde_residual.defvjp(pde_residual_fwd, pde_residual_bwd)

    def apply(u):
        u = jnp.asarray(u)
        if not jnp.issubdtype(u.dtype, jnp.floating):
            raise TypeError(f"u must be a real floating array, not {u.dtype}")
        return pde_residual(u)

    apply.__doc__ = f"F = pde_residual(u): u [..., {', '.join(map(str, grid))}] -> F [..., m = {m}]"
    return apply


def surrogate(model, return_status=False, keep=8):
    """``predict(ic)``: a trained model's prediction (:meth:`tessera.Model.predict`) as a
    JAX function differentiable in its initial conditions ``ic`` (``[..., X, (Y)]``,
    any leading axes; fields ``[..., T, X, (Y)]`` in ``ic``'s dtype), for data
    assimilation and inverse problems: which initial state explains later
    observations? The gradient runs through the constraint layer, whose rows read the
    initial condition, and through the backbone, whose features hold it
    (:meth:`tessera.ModelForward.backward`). ``model`` must stay open while it is
    used; as for :func:`projection`, ``keep`` bounds the predictions held for their
    backward pass, and ``return_status=True`` returns ``(fields, status)``."""
    shape = model.shape
    grid, space = tuple(shape.grid), tuple(shape.space)
    k = shape.n_experts
    kept = _Kept(keep)

    def lead_of(ic):
        lead = ic.shape[: ic.ndim - len(space)]
        if ic.ndim < len(space) or ic.shape[len(lead):] != space:
            raise ValueError(f"ic has shape {ic.shape}; expected (..., {', '.join(map(str, space))})")
        return lead

    def host_predict(ic, keep_it):
        """Callback: the prediction, and the token of its kept forward pass (0 if not
        kept)."""
        lead = ic.shape[: ic.ndim - len(space)]
        c = np.reshape(ic, (-1,) + space)
        if keep_it:
            forward = model.forward(c)
            fields, statuses, token = forward.fields, forward.statuses, kept.put(forward)
        else:
            fields, statuses = model.predict(c, return_status=True)
            token = 0
        return (
            fields.reshape(lead + grid).astype(ic.dtype, copy=False),
            *_status_arrays(statuses, lead, k, ic.dtype),
            np.full(lead, token, np.int32),
        )

    def host_predict_kept(ic):
        return host_predict(ic, True)

    def host_predict_plain(ic):
        return host_predict(ic, False)

    def host_backward(ic, token, fields_bar):
        """Callback: the kept prediction's backward pass, or a prediction and its
        backward pass where none is kept for these inputs."""
        c = np.reshape(ic, (-1,) + space)
        bar = np.reshape(fields_bar, (-1,) + grid)
        tokens = np.unique(token)
        forward = kept.take(int(tokens[0])) if tokens.size == 1 else None
        if forward is None or forward.fields.shape != bar.shape:
            if forward is not None:
                forward.close()
            forward = model.forward(c)
        with forward:
            return forward.backward(bar).reshape(ic.shape).astype(ic.dtype, copy=False)

    def run(ic, keep_it):
        lead = lead_of(ic)
        result = (
            jax.ShapeDtypeStruct(lead + grid, ic.dtype),
            *_status_shapes(lead, k, ic.dtype),
            jax.ShapeDtypeStruct(lead, jnp.int32),
        )
        fields, reason, iterations, final, token = jax.pure_callback(
            host_predict_kept if keep_it else host_predict_plain, result, ic,
            vmap_method="broadcast_all",
        )
        status = {"reason": reason, "iterations": iterations, "final_residual": final}
        return (fields, status), token

    @jax.custom_vjp
    def predict(ic):
        return run(ic, keep_it=False)[0]

    def predict_fwd(ic):
        out, token = run(ic, keep_it=True)
        return out, (ic, token)

    def predict_bwd(saved, cotangents):
        ic, token = saved
        fields_bar = cotangents[0].astype(ic.dtype, copy=False)
        result = jax.ShapeDtypeStruct(ic.shape, ic.dtype)
        return (
            jax.pure_callback(
                host_backward, result, ic, token, fields_bar, vmap_method="broadcast_all"
            ),
        )

    predict.defvjp(predict_fwd, predict_bwd)

    def apply(ic):
        ic = jnp.asarray(ic)
        if not jnp.issubdtype(ic.dtype, jnp.floating):
            raise TypeError(f"ic must be a real floating array, not {ic.dtype}")
        fields, status = predict(ic)
        return (fields, status) if return_status else fields

    apply.__doc__ = (
        f"fields = predict(ic): ic [..., {', '.join(map(str, space))}] -> "
        f"fields [..., {', '.join(map(str, grid))}]"
    )
    return apply
