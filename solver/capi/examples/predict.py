"""Loads a trained run through the Python module (the C ABI by ctypes),
predicts the test set's initial conditions one at a time and as one batch,
and checks each prediction's relative L2 error against the truth equals what
`tessera eval` wrote to summary.json (to 1e-12); then predicts from 4 Python
threads at once (the library runs without the GIL) and checks the results
equal the single-threaded ones bit for bit, checks a kept prediction's gradient
in its initial conditions against finite differences, and that bad calls raise
TesseraError with the library's status.

    python3 predict.py RUN_DIR TEST_DATA.safetensors SAMPLES
"""

import json
import struct
import sys
import threading

import numpy as np

import tessera
from support import expect_error


def read_tensor(path, name):
    """The float32 tensor `name` of a safetensors file ("0000/data",
    "0000/grid/x") as float64, flat."""
    with open(path, "rb") as f:
        raw = f.read()
    (header_len,) = struct.unpack("<Q", raw[:8])
    entry = json.loads(raw[8:8 + header_len])[name]
    assert entry["dtype"] == "F32", entry
    begin, end = entry["data_offsets"]
    return np.frombuffer(raw[8 + header_len + begin:8 + header_len + end], "<f4").astype(np.float64)


def read_samples(path, count, field_len):
    """The first `count` trajectories of a dataset file, float64, flat."""
    out = [read_tensor(path, f"{b:04d}/data") for b in range(count)]
    assert all(d.size == field_len for d in out), field_len
    return np.stack(out)


def relative_l2(p, t):
    """‖p − t‖₂ / ‖t‖₂, summed in the order `tessera eval` sums."""
    diff = 0.0
    for d in (p - t).tolist():
        diff += d * d
    norm = 0.0
    for v in t.tolist():
        norm += v * v
    return (diff / norm) ** 0.5


def check_ic_gradient(model, ics):
    """A kept prediction (Model.forward) equals predict's bit for bit, and its gradient
    in the initial conditions matches central differences of the predictions."""
    with model.forward(ics) as forward:
        assert np.array_equal(forward.fields, model.predict(ics)), "forward equals predict"
        i = np.arange(forward.fields.size)
        fields_bar = np.sin(1.3 * i).reshape(forward.fields.shape)
        ic_bar = forward.backward(fields_bar)
        assert ic_bar.shape == ics.shape, ic_bar.shape
        assert np.array_equal(ic_bar, forward.backward(fields_bar)), "a second pass agrees"
    direction = np.sin(0.71 * np.arange(ics.size)).reshape(ics.shape)
    eps = 1e-5  # the solves stop near 1e-12: smaller steps see that, not the derivative
    loss = lambda sign: np.sum(model.predict(ics + sign * eps * direction) * fields_bar)
    numeric = (loss(1) - loss(-1)) / (2 * eps)
    analytic = np.sum(ic_bar * direction)
    print(f"d/d ic of the prediction: {analytic:.10g} (finite differences {numeric:.10g})")
    assert abs(analytic - numeric) <= 1e-5 * max(abs(analytic), abs(numeric)), "gradient"
    assert abs(analytic) > 1e-6, "a vanishing gradient tests nothing"
    e = expect_error(ValueError, lambda: forward.backward(fields_bar), "a closed forward")
    print(f"closed forward: {e}")


def main(run_dir, data, samples):
    tessera.set_num_threads(2)
    with open(f"{run_dir}/summary.json") as f:
        eval_rel_l2 = json.load(f)["rel_l2"]
    with tessera.Model(run_dir) as model:
        s = model.shape
        print(f"tessera {tessera.version()} (Python): grid {s.grid}, {s.n_experts} experts, "
              f"{s.n_basis} basis functions")
        # The grid's coordinates are those the data file was written with.
        for axis, name in enumerate("txy"[: s.n_dims]):
            stored = read_tensor(data, f"0000/grid/{name}")
            mine = model.coordinates(axis)
            assert np.allclose(mine, stored, rtol=1e-6, atol=1e-6), (name, mine, stored)
            print(f"{name}: {mine.size} coordinates from {mine[0]:g} to {mine[-1]:g}, "
                  "as in the data file")
        e = expect_error(tessera.TesseraError, lambda: model.coordinates(s.n_dims), "a fourth axis")
        assert e.name == "SHAPE_MISMATCH", e
        truth = read_samples(data, samples, s.field_len).reshape((samples,) + s.grid)
        ics = truth[:, 0]
        single = []
        worst = 0.0
        for b in range(samples):
            u, statuses = model.predict(ics[b], return_status=True)
            assert u.shape == s.grid, u.shape
            assert len(statuses) == s.n_experts
            mine = relative_l2(u.ravel(), truth[b].ravel())
            diff = abs(mine - eval_rel_l2[b])
            worst = max(worst, diff)
            print(f"sample {b}: rel L2 {mine:.17g} (tessera eval {eval_rel_l2[b]:.17g}), "
                  f"expert 0: {statuses[0]}")
            assert diff <= 1e-12 * eval_rel_l2[b], "rel L2 equals tessera eval's"
            single.append(u)
        single = np.stack(single)
        print(f"max |rel L2 - eval| = {worst:.3g}")
        batch = model.predict(ics)
        assert batch.shape == (samples,) + s.grid
        assert np.array_equal(batch, single), "batch equals one at a time"

        results = [None] * 4

        def job(i):
            results[i] = model.predict(ics)

        threads = [threading.Thread(target=job, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(np.array_equal(r, single) for r in results), "threads agree"
        print("4 Python threads at once: results equal")

        check_ic_gradient(model, ics[:2])

        # Bad calls raise, with the library's status and message.
        bad = ics[0].copy()
        bad[0] = np.nan
        e = expect_error(tessera.TesseraError, lambda: model.predict(bad), "NaN input")
        assert e.name == "NON_FINITE", e
        print(f"NaN input: {e}")
        e = expect_error(ValueError, lambda: model.predict(np.zeros(s.ic_len + 1)), "a wrong shape")
        print(f"wrong shape: {e}")
    e = expect_error(tessera.TesseraError, lambda: tessera.Model(f"{run_dir}/no-such-run"),
                     "a missing run")
    assert e.name in ("IO", "INVALID_RUN"), e
    print(f"missing run: {e}")
    closed = tessera.Model(run_dir)
    closed.close()
    closed.close()  # twice is fine
    e = expect_error(ValueError, lambda: closed.predict(ics[0]), "a closed model")
    print(f"closed model: {e}")
    print("predict.py: all checks passed")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(f"usage: {sys.argv[0]} RUN_DIR TEST_DATA SAMPLES")
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
