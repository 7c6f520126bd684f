"""Tessera from Python: the C ABI (libtessera.so) through ctypes, on numpy arrays.

``pip install ./solver/capi/python`` builds the library with cargo and installs
it with this module (and :mod:`tessera_jax`). Or build the library yourself
(``cargo build --release -p tessera-capi``, which writes
``target/release/libtessera.so``), put this file's folder on ``PYTHONPATH`` and
point ``TESSERA_LIB`` at the library (or keep it next to this file, or on the
loader's path)::

    import numpy as np
    import tessera

    with tessera.Model("runs/quickstart-moe-20261207-093000") as model:
        u = model.predict(u0)            # u0: [X] or [batch, X]; u: [(batch,) T, X]
        t, x = model.coordinates(0), model.coordinates(1)

    with tessera.ConstraintLayer("scenarios/quickstart.toml") as layer:
        u, weights, statuses = layer.solve(basis, u0)   # basis: [(batch,) T, X, N]
        basis_bar = layer.backward(basis, u0, u_bar)    # dL/dbasis, exactly (IFT)
        u_bar = layer.residual_backward(u, f_bar)       # dL/du for dL/dF of residual(u)
        with layer.forward(basis, u0) as fwd:           # a solve kept for its backward pass
            basis_bar = fwd.backward(u_bar)             # the same, without solving again

Every call returns or raises: a failed call raises :class:`TesseraError`
with the library's status and message (a missing run, NaN input, a shape the
handle does not take); the arrays are float64, C order, copied in as needed.
The library releases the GIL while it computes (ctypes does), so Python
threads may call one handle at once; each handle computes on its own pool of
threads (:func:`set_num_threads`). Results equal the CLI's (``tessera eval``
for :meth:`Model.predict`) bit for bit, whatever the batching.

The C header (``solver/capi/include/tessera.h``) is the reference for what
each call does; this module only maps arrays and errors.
"""

import ctypes
import ctypes.util
import importlib.machinery
import os

try:
    import numpy as np
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("the tessera module needs numpy (pip install numpy)") from e

__all__ = [
    "ConstraintLayer",
    "Forward",
    "Model",
    "Shape",
    "SolveStatus",
    "TesseraError",
    "set_num_threads",
    "version",
]

# TesseraStatus, in the header's order.
STATUS_NAMES = [
    "OK",
    "NULL_POINTER",
    "INVALID_HANDLE",
    "SHAPE_MISMATCH",
    "NON_FINITE",
    "IO",
    "INVALID_RUN",
    "INVALID_ARGUMENT",
    "SOLVE_FAILED",
    "INTERNAL",
    "DEVICE",
]
# TesseraStopReason, in the header's order.
STOP_REASONS = ["CONVERGED", "MAX_ITERATIONS", "NON_FINITE", "SINGULAR"]


class TesseraError(RuntimeError):
    """A call the library refused or could not complete.

    ``status`` is the ``TesseraStatus`` value, ``name`` its name without the
    prefix (``"NON_FINITE"``), ``message`` the library's description.
    """

    def __init__(self, status, message):
        self.status = status
        self.name = STATUS_NAMES[status] if status < len(STATUS_NAMES) else str(status)
        self.message = message
        super().__init__(f"{self.name}: {message}")


class Shape(ctypes.Structure):
    """Sizes of a model's or a constraint layer's arrays (``TesseraShape``)."""

    _fields_ = [
        ("n_dims", ctypes.c_size_t),
        ("nt", ctypes.c_size_t),
        ("nx", ctypes.c_size_t),
        ("ny", ctypes.c_size_t),
        ("ic_len", ctypes.c_size_t),
        ("field_len", ctypes.c_size_t),
        ("n_experts", ctypes.c_size_t),
        ("points_per_expert", ctypes.c_size_t),
        ("n_equations", ctypes.c_size_t),
        ("n_basis", ctypes.c_size_t),
    ]

    @property
    def space(self):
        """The shape of one initial condition: ``(X,)`` or ``(X, Y)``."""
        return (self.nx,) if self.n_dims == 2 else (self.nx, self.ny)

    @property
    def grid(self):
        """The shape of one field: ``(T, X)`` or ``(T, X, Y)``."""
        return (self.nt,) + self.space

    def __repr__(self):
        parts = [f"grid {self.grid}", f"{self.n_experts} experts"]
        if self.points_per_expert:
            parts[-1] += f" x {self.points_per_expert} points"
        if self.n_equations:
            parts.append(f"{self.n_equations} equation(s)")
        if self.n_basis:
            parts.append(f"N = {self.n_basis}")
        return f"Shape({', '.join(parts)})"


class SolveStatus(ctypes.Structure):
    """Why one expert's Levenberg–Marquardt solve stopped (``TesseraSolveStatus``)."""

    _fields_ = [
        ("reason_code", ctypes.c_int),
        ("iterations", ctypes.c_uint64),
        ("initial_residual", ctypes.c_double),
        ("final_residual", ctypes.c_double),
        ("gradient_norm", ctypes.c_double),
    ]

    @property
    def reason(self):
        """``"CONVERGED"``, ``"MAX_ITERATIONS"``, ``"NON_FINITE"`` or ``"SINGULAR"``."""
        return STOP_REASONS[self.reason_code]

    def __repr__(self):
        return (
            f"SolveStatus({self.reason}, {self.iterations} iterations, "
            f"residual {self.initial_residual:.3g} -> {self.final_residual:.3g})"
        )


def _library_path():
    """``TESSERA_LIB``, else the library next to this file (``libtessera.so``, or
    ``_libtessera`` with the interpreter's extension suffix, as ``pip install``
    puts it), else the loader's."""
    given = os.environ.get("TESSERA_LIB")
    if given:
        return given
    here = os.path.dirname(os.path.abspath(__file__))
    names = ["libtessera.so"] + ["_libtessera" + s for s in importlib.machinery.EXTENSION_SUFFIXES]
    for name in names:
        beside = os.path.join(here, name)
        if os.path.exists(beside):
            return beside
    found = ctypes.util.find_library("tessera")
    if found:
        return found
    raise OSError(
        "libtessera.so not found: install this module with pip install ./solver/capi/python, "
        "or build the library (cargo build --release -p tessera-capi) and set TESSERA_LIB "
        "to target/release/libtessera.so"
    )


_SIZE = ctypes.c_size_t
_DOUBLES = ctypes.POINTER(ctypes.c_double)
_HANDLE = ctypes.c_void_p


def _load():
    lib = ctypes.CDLL(_library_path())
    signatures = {
        "tessera_version": ([], ctypes.c_char_p),
        "tessera_last_error": ([ctypes.c_char_p, _SIZE], _SIZE),
        "tessera_set_num_threads": ([_SIZE], ctypes.c_int),
        "tessera_model_load_on": (
            [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(_HANDLE)],
            ctypes.c_int,
        ),
        "tessera_model_free": ([_HANDLE], ctypes.c_int),
        "tessera_model_shape": ([_HANDLE, ctypes.POINTER(Shape)], ctypes.c_int),
        "tessera_model_coordinates": ([_HANDLE, _SIZE, _DOUBLES, _SIZE], ctypes.c_int),
        "tessera_model_predict": (
            [_HANDLE, _DOUBLES, _SIZE, _DOUBLES, _SIZE, ctypes.POINTER(SolveStatus), _SIZE],
            ctypes.c_int,
        ),
        "tessera_model_forward": (
            [_HANDLE, _DOUBLES, _SIZE, _DOUBLES, _SIZE, ctypes.POINTER(SolveStatus), _SIZE,
             ctypes.POINTER(_HANDLE)],
            ctypes.c_int,
        ),
        "tessera_model_forward_backward": (
            [_HANDLE, _DOUBLES, _SIZE, _DOUBLES, _SIZE],
            ctypes.c_int,
        ),
        "tessera_model_forward_free": ([_HANDLE], ctypes.c_int),
        "tessera_constraint_create": (
            [ctypes.c_char_p, ctypes.POINTER(_SIZE), _SIZE, ctypes.POINTER(_HANDLE)],
            ctypes.c_int,
        ),
        "tessera_constraint_free": ([_HANDLE], ctypes.c_int),
        "tessera_constraint_shape": ([_HANDLE, ctypes.POINTER(Shape)], ctypes.c_int),
        "tessera_constraint_points": (
            [_HANDLE, _SIZE, ctypes.POINTER(_SIZE), _SIZE],
            ctypes.c_int,
        ),
        "tessera_constraint_solve": (
            [_HANDLE, _DOUBLES, _SIZE, _SIZE, _DOUBLES, _SIZE, _DOUBLES, _SIZE, _DOUBLES, _SIZE,
             ctypes.POINTER(SolveStatus), _SIZE],
            ctypes.c_int,
        ),
        "tessera_constraint_backward": (
            [_HANDLE, _DOUBLES, _SIZE, _SIZE, _DOUBLES, _SIZE, _DOUBLES, _SIZE, _DOUBLES, _SIZE],
            ctypes.c_int,
        ),
        "tessera_constraint_forward": (
            [_HANDLE, _DOUBLES, _SIZE, _SIZE, _DOUBLES, _SIZE, _DOUBLES, _SIZE, _DOUBLES, _SIZE,
             ctypes.POINTER(SolveStatus), _SIZE, ctypes.POINTER(_HANDLE)],
            ctypes.c_int,
        ),
        "tessera_forward_backward": ([_HANDLE, _DOUBLES, _SIZE, _DOUBLES, _SIZE], ctypes.c_int),
        "tessera_forward_backward_ic": (
            [_HANDLE, _DOUBLES, _SIZE, _DOUBLES, _SIZE, _DOUBLES, _SIZE],
            ctypes.c_int,
        ),
        "tessera_constraint_residual_backward": (
            [_HANDLE, _DOUBLES, _SIZE, _DOUBLES, _SIZE, _DOUBLES, _SIZE],
            ctypes.c_int,
        ),
        "tessera_forward_free": ([_HANDLE], ctypes.c_int),
        "tessera_constraint_residual": (
            [_HANDLE, _DOUBLES, _SIZE, _DOUBLES, _SIZE],
            ctypes.c_int,
        ),
    }
    for name, (args, result) in signatures.items():
        function = getattr(lib, name)
        function.argtypes = args
        function.restype = result
    return lib


_lib = _load()


def _check(status):
    """Raises the thread's last error for a status that is not OK."""
    if status != 0:
        length = _lib.tessera_last_error(None, 0)
        buffer = ctypes.create_string_buffer(length + 1)
        _lib.tessera_last_error(buffer, length + 1)
        raise TesseraError(status, buffer.value.decode("utf-8", "replace"))


def _doubles(array):
    """``array`` as contiguous float64, and a pointer to it (the array must be kept alive)."""
    a = np.ascontiguousarray(array, dtype=np.float64)
    return a, a.ctypes.data_as(_DOUBLES)


def _batched(array, inner, what):
    """``array`` of shape ``inner`` or ``(batch,) + inner``: the batched view and whether
    it had a batch axis."""
    a = np.asarray(array)
    inner = tuple(inner)
    if a.shape == inner:
        return a.reshape((1,) + inner), False
    if a.ndim == len(inner) + 1 and a.shape[1:] == inner and a.shape[0] > 0:
        return a, True
    raise ValueError(f"{what} has shape {a.shape}; expected {inner} or (batch,) + {inner}")


def version():
    """The library's version."""
    return _lib.tessera_version().decode()


def set_num_threads(n):
    """Worker threads of each handle created afterwards (0: ``RAYON_NUM_THREADS``, else
    one per core)."""
    _check(_lib.tessera_set_num_threads(n))


class _Handle:
    """Frees the library's handle once: on :meth:`close`, at the end of a ``with``
    block, or when collected."""

    _free = None

    def __init__(self):
        self._handle = _HANDLE()

    def close(self):
        if self._handle:
            _check(type(self)._free(self._handle))
            self._handle = _HANDLE()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - nothing to report to at collection
            pass

    def _live(self):
        if not self._handle:
            raise ValueError(f"this {type(self).__name__} is closed")
        return self._handle

    def __repr__(self):
        state = self._describe() if self._handle else "closed"
        return f"{type(self).__name__}({state})"

    def _describe(self):
        return f"{self._source!r}, {self.shape!r}"


class Model(_Handle):
    """A trained run (``tessera run``/``tessera train``'s directory), loaded for prediction
    on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``)."""

    _free = staticmethod(lambda h: _lib.tessera_model_free(h))

    def __init__(self, run_dir, device="cpu"):
        super().__init__()
        _check(
            _lib.tessera_model_load_on(
                os.fsencode(run_dir), device.encode(), ctypes.byref(self._handle)
            )
        )
        self._source = os.fspath(run_dir)
        self.shape = Shape()
        _check(_lib.tessera_model_shape(self._handle, ctypes.byref(self.shape)))

    def coordinates(self, axis):
        """Where a predicted field's values lie along ``axis`` (0: its time levels, 1: x,
        2: y), as ``tessera generate`` writes the scenario's grid."""
        s = self.shape
        lengths = [s.nt, s.nx, s.ny][: s.n_dims]
        n = lengths[axis] if 0 <= axis < len(lengths) else 1
        out = np.empty(n)
        _check(_lib.tessera_model_coordinates(self._live(), axis, out.ctypes.data_as(_DOUBLES), n))
        return out

    def predict(self, ic, return_status=False):
        """The constrained fields for initial conditions ``ic`` (``[X]``/``[X, Y]``, or a
        batch of them): ``[T, X(, Y)]`` per condition, with the batch axis if ``ic`` had
        one; with ``return_status``, also each expert's solve, ``[batch][K]``."""
        u, statuses, _ = self._predict(ic, keep=False)
        return (u, statuses) if return_status else u

    def forward(self, ic):
        """:meth:`predict` (the same fields, bit for bit) kept for its gradient in the
        initial conditions: a :class:`ModelForward` with ``fields``, ``statuses`` and
        ``backward``. For data assimilation and inverse problems with a trained model."""
        u, statuses, handle = self._predict(ic, keep=True)
        return ModelForward(handle, u, statuses, np.shape(ic))

    def _predict(self, ic, keep):
        """The fields and statuses for ``ic``, and with ``keep`` the kept prediction's
        handle."""
        s = self.shape
        batch, batched = _batched(ic, s.space, "ic")
        n = batch.shape[0]
        ic_array, ic_ptr = _doubles(batch)
        out = np.empty((n,) + s.grid)
        statuses = (SolveStatus * (n * s.n_experts))()
        args = (self._live(), ic_ptr, ic_array.size, out.ctypes.data_as(_DOUBLES), out.size,
                statuses, len(statuses))
        handle = _HANDLE()
        if keep:
            _check(_lib.tessera_model_forward(*args, ctypes.byref(handle)))
        else:
            _check(_lib.tessera_model_predict(*args))
        k = s.n_experts
        per_sample = [list(statuses[b * k:(b + 1) * k]) for b in range(n)]
        if batched:
            return out, per_sample, handle
        return out[0], per_sample[0], handle


class ConstraintLayer(_Handle):
    """The constraint layer of a scenario file (its ``[pde]``, ``[grid]`` and
    ``[constraint]``) as a projection of the caller's basis; ``dims`` (``(T, X)`` or
    ``(T, X, Y)``) replaces the scenario's grid size."""

    _free = staticmethod(lambda h: _lib.tessera_constraint_free(h))

    def __init__(self, scenario_path, dims=None):
        super().__init__()
        dims = tuple(dims or ())
        array = (_SIZE * len(dims))(*dims)
        _check(
            _lib.tessera_constraint_create(
                os.fsencode(scenario_path),
                array if dims else None,
                len(dims),
                ctypes.byref(self._handle),
            )
        )
        self._source = os.fspath(scenario_path)
        self.shape = Shape()
        _check(_lib.tessera_constraint_shape(self._handle, ctypes.byref(self.shape)))

    def points(self, expert):
        """Expert ``expert``'s sampled points: sorted flat indices into a field."""
        out = (_SIZE * self.shape.points_per_expert)()
        _check(_lib.tessera_constraint_points(self._live(), expert, out, len(out)))
        return np.array(out, dtype=np.int64)

    def _inputs(self, basis, ic):
        s = self.shape
        b = np.asarray(basis)
        if b.ndim < 1:
            raise ValueError("basis needs a trailing axis of basis functions")
        n_basis = b.shape[-1]
        basis_b, batched = _batched(b, s.grid + (n_basis,), "basis")
        ic_b, _ = _batched(ic, s.space, "ic")
        if ic_b.shape[0] != basis_b.shape[0]:
            raise ValueError(
                f"{basis_b.shape[0]} bases and {ic_b.shape[0]} initial conditions"
            )
        return basis_b, ic_b, n_basis, batched

    def solve(self, basis, ic):
        """Projects ``basis`` (``[(batch,) T, X(, Y), N]``) onto the constraints for the
        initial conditions ``ic``: the field ``u`` ``[(batch,) T, X(, Y)]``, each expert's
        weights ``[(batch,) K, N]`` and solve statuses ``[batch][K]``."""
        return self._solve(basis, ic, keep=False)[:3]

    def forward(self, basis, ic):
        """:meth:`solve`, kept for its backward pass: a :class:`Forward` with ``u``,
        ``weights`` and ``statuses`` whose :meth:`Forward.backward` does not solve
        again."""
        *result, handle = self._solve(basis, ic, keep=True)
        u = result[0]
        ic_shape = u.shape[: u.ndim - len(self.shape.grid)] + self.shape.space
        return Forward(handle, *result, ic_shape)

    def _solve(self, basis, ic, keep):
        s = self.shape
        basis_b, ic_b, n_basis, batched = self._inputs(basis, ic)
        n, k = basis_b.shape[0], s.n_experts
        basis_a, basis_p = _doubles(basis_b)
        ic_a, ic_p = _doubles(ic_b)
        u = np.empty((n,) + s.grid)
        weights = np.empty((n, k, n_basis))
        statuses = (SolveStatus * (n * k))()
        args = (
            self._live(), basis_p, basis_a.size, n_basis, ic_p, ic_a.size,
            u.ctypes.data_as(_DOUBLES), u.size, weights.ctypes.data_as(_DOUBLES),
            weights.size, statuses, len(statuses),
        )
        handle = _HANDLE()
        if keep:
            _check(_lib.tessera_constraint_forward(*args, ctypes.byref(handle)))
        else:
            _check(_lib.tessera_constraint_solve(*args))
        per_sample = [list(statuses[b * k:(b + 1) * k]) for b in range(n)]
        if batched:
            return u, weights, per_sample, handle
        return u[0], weights[0], per_sample[0], handle

    def backward(self, basis, ic, u_bar):
        """``∂L/∂basis`` for ``u_bar = ∂L/∂u`` at :meth:`solve`'s solution for the same
        ``basis`` and ``ic``, through the implicit function theorem."""
        s = self.shape
        basis_b, ic_b, n_basis, batched = self._inputs(basis, ic)
        u_bar_b, _ = _batched(u_bar, s.grid, "u_bar")
        if u_bar_b.shape[0] != basis_b.shape[0]:
            raise ValueError(f"{basis_b.shape[0]} bases and {u_bar_b.shape[0]} u_bar fields")
        basis_a, basis_p = _doubles(basis_b)
        ic_a, ic_p = _doubles(ic_b)
        u_bar_a, u_bar_p = _doubles(u_bar_b)
        out = np.empty(basis_a.shape)
        _check(
            _lib.tessera_constraint_backward(
                self._live(), basis_p, basis_a.size, n_basis, ic_p, ic_a.size, u_bar_p,
                u_bar_a.size, out.ctypes.data_as(_DOUBLES), out.size,
            )
        )
        return out if batched else out[0]

    def residual(self, u):
        """The PDE residual of fields ``u`` (``[(batch,) T, X(, Y)]``) at every point:
        ``[(batch,) T, X(, Y), m]`` for ``m`` equations."""
        s = self.shape
        u_b, batched = _batched(u, s.grid, "u")
        u_a, u_p = _doubles(u_b)
        out = np.empty(u_a.shape + (s.n_equations,))
        _check(
            _lib.tessera_constraint_residual(
                self._live(), u_p, u_a.size, out.ctypes.data_as(_DOUBLES), out.size
            )
        )
        return out if batched else out[0]

    def residual_backward(self, u, f_bar):
        """``∂L/∂u`` (shaped like ``u``) for ``f_bar = ∂L/∂F`` shaped like
        :meth:`residual`'s result: a physics loss of the residual, differentiated."""
        s = self.shape
        u_b, batched = _batched(u, s.grid, "u")
        f_b, _ = _batched(f_bar, s.grid + (s.n_equations,), "f_bar")
        if f_b.shape[0] != u_b.shape[0]:
            raise ValueError(f"{u_b.shape[0]} fields and {f_b.shape[0]} cotangents")
        u_a, u_p = _doubles(u_b)
        f_a, f_p = _doubles(f_b)
        out = np.empty(u_a.shape)
        _check(
            _lib.tessera_constraint_residual_backward(
                self._live(), u_p, u_a.size, f_p, f_a.size, out.ctypes.data_as(_DOUBLES), out.size
            )
        )
        return out if batched else out[0]


class Forward(_Handle):
    """A solve kept for its backward pass (:meth:`ConstraintLayer.forward`): ``u``,
    ``weights`` and ``statuses`` as :meth:`ConstraintLayer.solve` returns them, and
    :meth:`backward` (and :meth:`backward_with_ic`). It holds the solved problems and a
    copy of the basis until it is closed (or collected); it outlives its layer."""

    _free = staticmethod(lambda h: _lib.tessera_forward_free(h))

    def __init__(self, handle, u, weights, statuses, ic_shape):
        super().__init__()
        self._handle = handle
        self.u, self.weights, self.statuses = u, weights, statuses
        self._ic_shape = ic_shape

    def _describe(self):
        return f"u {self.u.shape}, weights {self.weights.shape}"

    def _u_bar(self, u_bar):
        u_bar_a = np.asarray(u_bar)
        if u_bar_a.shape != self.u.shape:
            raise ValueError(f"u_bar has shape {u_bar_a.shape}; expected {self.u.shape}")
        return _doubles(u_bar_a)

    def backward(self, u_bar):
        """``∂L/∂basis`` for ``u_bar = ∂L/∂u`` (shaped like ``u``): the values of
        :meth:`ConstraintLayer.backward` for the forward call's inputs, without solving
        again."""
        u_bar_a, u_bar_p = self._u_bar(u_bar)
        out = np.empty(self.u.shape + (self.weights.shape[-1],))
        _check(
            _lib.tessera_forward_backward(
                self._live(), u_bar_p, u_bar_a.size, out.ctypes.data_as(_DOUBLES), out.size
            )
        )
        return out

    def backward_with_ic(self, u_bar):
        """``(∂L/∂basis, ∂L/∂ic)`` for ``u_bar = ∂L/∂u``: :meth:`backward`'s gradient
        and the initial conditions', shaped like the forward call's ``ic``. An initial
        condition reaches the field through the rows it builds and the offset of models
        that build it in; for inverse problems and data assimilation."""
        u_bar_a, u_bar_p = self._u_bar(u_bar)
        basis_bar = np.empty(self.u.shape + (self.weights.shape[-1],))
        ic_bar = np.empty(self._ic_shape)
        _check(
            _lib.tessera_forward_backward_ic(
                self._live(), u_bar_p, u_bar_a.size, basis_bar.ctypes.data_as(_DOUBLES),
                basis_bar.size, ic_bar.ctypes.data_as(_DOUBLES), ic_bar.size,
            )
        )
        return basis_bar, ic_bar


class ModelForward(_Handle):
    """A trained model's prediction kept for its gradient in the initial conditions
    (:meth:`Model.forward`): ``fields`` and ``statuses`` as :meth:`Model.predict` returns
    them, and :meth:`backward`. It holds each sample's basis and solved problems until it
    is closed (or collected); it outlives its model."""

    _free = staticmethod(lambda h: _lib.tessera_model_forward_free(h))

    def __init__(self, handle, fields, statuses, ic_shape):
        super().__init__()
        self._handle = handle
        self.fields, self.statuses = fields, statuses
        self._ic_shape = ic_shape

    def _describe(self):
        return f"fields {self.fields.shape}"

    def backward(self, fields_bar):
        """``∂L/∂ic`` (shaped like the forward call's ``ic``) for ``fields_bar = ∂L/∂fields``
        (shaped like ``fields``): through the constraint layer, whose rows read the
        initial condition, and through the backbone, whose features hold it. May be
        called any number of times, from any thread."""
        bar = np.asarray(fields_bar)
        if bar.shape != self.fields.shape:
            raise ValueError(f"fields_bar has shape {bar.shape}; expected {self.fields.shape}")
        bar_a, bar_p = _doubles(bar)
        ic_bar = np.empty(self._ic_shape)
        _check(
            _lib.tessera_model_forward_backward(
                self._live(), bar_p, bar_a.size, ic_bar.ctypes.data_as(_DOUBLES), ic_bar.size
            )
        )
        return ic_bar
