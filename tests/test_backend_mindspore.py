"""The MindSpore backend, driven through a worker subprocess (mindspore is never imported here).

Skipped unless an interpreter that can import mindspore is found: $CONFORMANCE_MINDSPORE_PYTHON,
this interpreter, .tox/mindspore/bin/python (conformance.frameworks.default_python), else
.venv-mindspore/bin/python at the repository root. Numbers are checked against the float64
oracle and against the values printed in MindSpore's own documentation (seeds 000, 001, 003).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conformance import frameworks
from conformance.kinds.clipping import oracle as clipping
from conformance.oracle import network
from conformance.worker import Worker

ROOT = Path(__file__).resolve().parents[1]


def _mindspore_python():
    python = frameworks.default_python("mindspore")
    if python:
        return python
    candidate = ROOT / ".venv-mindspore" / "bin" / "python"
    if candidate.exists() and frameworks._importable_by(str(candidate), "mindspore"):
        return str(candidate)
    return None


PYTHON = _mindspore_python()
pytestmark = [pytest.mark.framework, pytest.mark.skipif(PYTHON is None, reason="no interpreter with mindspore (set CONFORMANCE_MINDSPORE_PYTHON)")]


@pytest.fixture(scope="module")
def worker():
    w = Worker("mindspore", frameworks.workers()["mindspore"], "cpu", python=PYTHON)
    yield w
    w.close()


def _call(worker, job):
    return worker.call(job, timeout=120)


def _injected(api, args, grads: dict, dtype="float32"):
    cast = np.float64 if dtype == "float64" else np.float32
    params = [{"name": n, "shape": list(np.shape(g)) if g is not None else [1],
               "grad": None if g is None else np.asarray(g, dtype=cast)} for n, g in grads.items()]
    return {"kind": "clipping", "api": api, "args": args, "dtype": dtype, "device": "cpu", "params": params}


def _model(api, args, layers, loss, inputs, targets, dtype="float32"):
    cast = np.float64 if dtype == "float64" else np.float32

    def carry(a):
        if a is None:
            return None
        a = np.asarray(a)
        return a.astype(np.int64) if a.dtype.kind in "iu" else a.astype(cast)

    job_layers = [{k: (carry(v) if isinstance(v, np.ndarray) else v) for k, v in layer.items()} for layer in layers]
    return {"kind": "clipping", "api": api, "args": args, "dtype": dtype, "device": "cpu",
            "model": {"layers": job_layers, "loss": loss, "inputs": carry(inputs), "targets": carry(targets)}}


SEED_W = np.array([[-0.1, -0.25, -0.1], [0.1, 0.25, 0.1]])
SEED_B = np.array([-0.5, 0.5])
SEED_LAYERS = [{"type": "linear", "name": "0", "in": 3, "out": 2,
                "weight": np.zeros((2, 3)), "bias": np.zeros(2)}]
SEED_X = np.array([[0.2, 0.5, 0.2]])
SEED_Y = np.array([0])


def test_hello_reports_version_and_devices(worker):
    info = worker.hello["info"]
    assert info["version"].split(".")[0] == "2"
    assert info["devices"]["cpu"] is None
    assert set(info["devices"]) == {"cpu", "gpu"}
    assert info["devices"]["gpu"] is None or isinstance(info["devices"]["gpu"], str)


def test_seed_000_injected_through_clip_by_norm(worker):
    got = _call(worker, _injected("mindspore.ops.clip_by_norm", {"max_norm": 0.5, "norm_type": 2.0},
                                  {"weight": SEED_W, "bias": SEED_B}))
    assert got["raised"] is None
    # printed on MindSpore's clip_by_norm mapping page (seed 000)
    assert got["grads"]["weight"][0, 0] == pytest.approx(-6.13138638e-02, abs=1e-9)
    assert got["grads"]["bias"][0] == pytest.approx(-3.06569308e-01, abs=1e-8)
    want = clipping.clip_grad_norm([SEED_W, SEED_B], 0.5)
    np.testing.assert_allclose(got["grads"]["weight"], want.grads[0], rtol=1.3e-6, atol=1e-5)
    np.testing.assert_allclose(got["grads"]["bias"], want.grads[1], rtol=1.3e-6, atol=1e-5)


def test_seed_000_model_raw_gradients_then_clip_by_norm(worker):
    got = _call(worker, _model("mindspore.ops.clip_by_norm", {"max_norm": 0.5}, SEED_LAYERS,
                               {"type": "cross_entropy", "reduction": "mean"}, SEED_X, SEED_Y))
    assert list(got["raw_grads"]) == ["0.weight", "0.bias"]
    np.testing.assert_allclose(got["raw_grads"]["0.weight"], SEED_W, atol=1e-7)
    np.testing.assert_allclose(got["raw_grads"]["0.bias"], SEED_B, atol=1e-7)
    assert got["grads"]["0.weight"][0, 1] == pytest.approx(-1.53284654e-01, abs=1e-8)


def test_seed_001_through_clip_by_value(worker):
    args = {"clip_value_min": -0.1, "clip_value_max": 0.1}
    got = _call(worker, _model("mindspore.ops.clip_by_value", args, SEED_LAYERS,
                               {"type": "cross_entropy", "reduction": "mean"}, SEED_X, SEED_Y))
    want = clipping.clip_grad_value([SEED_W, SEED_B], 0.1)
    np.testing.assert_allclose(got["grads"]["0.weight"], want.grads[0], atol=1e-7)
    np.testing.assert_allclose(got["grads"]["0.bias"], want.grads[1], atol=1e-7)
    np.testing.assert_allclose(got["grads"]["0.weight"], [[-0.1, -0.1, -0.1], [0.1, 0.1, 0.1]], atol=1e-7)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_seed_003_raw_gradient_via_mindspore_grad(worker, dtype):
    layers = [{"type": "linear", "name": "fc", "in": 3, "out": 1, "weight": np.array([[2.0, 3.0, 4.0]]),
               "bias": None}]
    got = _call(worker, _model("mindspore.ops.clip_by_norm", {"max_norm": 10.0}, layers,
                               {"type": "mse", "reduction": "mean"}, np.array([[1.0, 2.0, 3.0]]),
                               np.array([[19.0]]), dtype))
    assert list(got["raw_grads"]) == ["fc.weight"]
    np.testing.assert_allclose(got["raw_grads"]["fc.weight"], [[2.0, 4.0, 6.0]], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["grads"]["fc.weight"], [[2.0, 4.0, 6.0]], atol=1e-6)  # norm 7.48 < 10


def test_cross_entropy_layout_and_int_labels_match_the_oracle(worker):
    # non-square Dense weight [out=4, in=2] (a transposed layout would fail to build or differ),
    # three samples whose labels are not sorted (int64 in the job, int32 for MindSpore)
    rng = np.random.default_rng(3)
    layers = [{"type": "linear", "name": "0", "in": 2, "out": 4, "weight": rng.normal(size=(4, 2)),
               "bias": rng.normal(size=4)}]
    x, y = rng.normal(size=(3, 2)), np.array([3, 0, 2])
    loss = {"type": "cross_entropy", "reduction": "sum"}
    want = network.forward_backward(layers, loss, x, y).grads
    got = _call(worker, _model("mindspore.ops.clip_by_norm", {"max_norm": 100.0}, layers, loss, x, y))
    assert list(got["raw_grads"]) == ["0.weight", "0.bias"]
    for name in ("0.weight", "0.bias"):
        np.testing.assert_allclose(got["raw_grads"][name], want[name], rtol=1e-5, atol=1e-6)


def test_float64_cross_entropy_is_reported_as_raised(worker):
    # MindSpore 2.10's nn.CrossEntropyLoss takes float16/float32 logits only: the backend reports
    # the failure as ``raised`` (declarable as unsupported), not as a worker error
    got = _call(worker, _model("mindspore.ops.clip_by_norm", {"max_norm": 0.5}, SEED_LAYERS,
                               {"type": "cross_entropy", "reduction": "mean"}, SEED_X, SEED_Y, "float64"))
    assert got["raised"]["type"] == "TypeError" and "CrossEntropyLoss" in got["raised"]["message"]
    assert got["raw_grads"] is None


def test_conv_net_raw_gradients_match_the_oracle(worker):
    rng = np.random.default_rng(4)
    layers = [
        {"type": "conv2d", "name": "0", "in": 2, "out": 3, "kernel": [3, 2], "stride": [2, 1],
         "padding": [1, 0], "weight": rng.normal(size=(3, 2, 3, 2)) * 0.5, "bias": rng.normal(size=3)},
        {"type": "tanh", "name": "1"},
        {"type": "flatten", "name": "2"},
        {"type": "linear", "name": "head", "in": 3 * 3 * 3, "out": 2, "weight": rng.normal(size=(2, 27)) * 0.2,
         "bias": None},
    ]
    x, y = rng.normal(size=(2, 2, 5, 4)), rng.normal(size=(2, 2))
    loss = {"type": "mse", "reduction": "mean"}
    want = network.forward_backward(layers, loss, x, y).grads
    got = _call(worker, _model("mindspore.ops.clip_by_norm", {"max_norm": 1e6}, layers, loss, x, y))
    assert list(got["raw_grads"]) == ["0.weight", "0.bias", "head.weight"]
    for name, g in want.items():
        np.testing.assert_allclose(got["raw_grads"][name], g, rtol=1e-4, atol=1e-5)


def test_a_parameter_without_gradient_comes_back_none(worker):
    got = _call(worker, _injected("mindspore.ops.clip_by_global_norm", {"clip_norm": 0.5},
                                  {"w": SEED_W, "frozen": None, "b": SEED_B}, "float64"))
    assert got["grads"]["frozen"] is None
    want = clipping.clip_grad_norm([SEED_W, None, SEED_B], 0.5, eps=0.0)  # no epsilon in MindSpore
    np.testing.assert_allclose(got["grads"]["w"], want.grads[0], rtol=1e-7, atol=1e-7)


def test_total_norm_composite_returns_the_norm(worker):
    got = _call(worker, _injected("mindspore.ops.vector_norm", {"ord": 3.0}, {"w": SEED_W, "b": SEED_B}, "float64"))
    want = clipping.get_total_norm([SEED_W, SEED_B], 3.0)
    # float64, yet only ~3e-8 relative: MindSpore's vector_norm loses precision for p = 3 (within
    # the suite's float64 rtol of 1e-7, so the sweep cells still match)
    assert got["returned"] == pytest.approx(want.total_norm, rel=1e-7)
    np.testing.assert_array_equal(got["grads"]["w"], SEED_W)


def test_an_unsupported_dtype_is_reported_as_raised_and_does_not_leak_into_the_next_job(worker):
    grads = {"w": np.array([[0.5, -2.0]]), "b": np.array([3.0, -0.01])}
    got = _call(worker, _injected("mindspore.ops.clip_by_value", {"clip_value_min": -0.1, "clip_value_max": 0.1},
                                  grads, "bfloat16"))
    assert got["raised"]["type"] == "TypeError" and "Unsupported data type" in got["raised"]["message"]
    # PyNative is asynchronous: the second tensor's failure must not surface in this next job
    got = _call(worker, _injected("mindspore.ops.clamp", {"min": -0.1, "max": 0.1}, grads, "float16"))
    assert got["raised"] is None
    np.testing.assert_allclose(got["grads"]["b"], [0.1, -0.01], atol=1e-4)


def test_norm_type_zero_raises_zero_division(worker):
    got = _call(worker, _injected("mindspore.ops.clip_by_norm", {"max_norm": 0.5, "norm_type": 0.0},
                                  {"w": SEED_W}))
    assert got["raised"]["type"] == "ZeroDivisionError"


def test_via_sgd_applies_the_clipped_gradients_to_zero_parameters(worker):
    # the training-loop form: ops.clip_by_global_norm, then nn.SGD(lr=1.0) on zero parameters
    got = _call(worker, _model("mindspore.ops.clip_by_global_norm.via_sgd", {"clip_norm": 0.5}, SEED_LAYERS,
                               {"type": "cross_entropy", "reduction": "mean"}, SEED_X, SEED_Y))
    assert got["raised"] is None
    want = clipping.clip_grad_norm([SEED_W, SEED_B], 0.5, eps=0.0)
    np.testing.assert_allclose(got["raw_grads"]["0.weight"], SEED_W, atol=1e-7)
    np.testing.assert_allclose(got["grads"]["0.weight"], want.grads[0], rtol=1.3e-6, atol=1e-6)
    np.testing.assert_allclose(got["grads"]["0.bias"], want.grads[1], rtol=1.3e-6, atol=1e-6)
    # nn.SGD has no float64 kernel: reported as raised (declared unsupported in the registry)
    got = _call(worker, _injected("mindspore.ops.clip_by_norm.via_sgd", {"max_norm": 0.5},
                                  {"w": SEED_W, "none": None}, "float64"))
    assert got["raised"]["type"] == "TypeError" and "SGD" in got["raised"]["message"]


def test_the_bare_tensor_form_and_tensor_bounds_reach_mindspore(worker):
    """`form: tensor`: ops.clip_by_norm of the first gradient alone (norm 5 of [3, 4]; the
    tuple form scales both by the total norm); a float16 Tensor bound clips at its float16 value."""
    job = _injected("mindspore.ops.clip_by_norm", {"max_norm": 1.0}, {"a": [3.0, 4.0]}, "float64")
    got = _call(worker, {**job, "form": "tensor"})
    # 1 / (5 + 1e-6) * [3, 4]: clip_by_norm's epsilon moves the exact [0.6, 0.8] by 2e-7 relative
    np.testing.assert_allclose(got["grads"]["a"], [0.6, 0.8], rtol=1e-5)
    job = _injected("mindspore.ops.clip_by_value", {"clip_value_min": {"tensor": 0.3, "dtype": "float16"},
                                                   "clip_value_max": None}, {"w": [0.1, 0.5]})
    got = _call(worker, job)
    assert got["grads"]["w"].tolist() == [0.300048828125, 0.5]
    job = _injected("mindspore.nn.ClipByNorm", {"clip_norm": {"tensor": 0.1, "dtype": "float64"}}, {"w": [3.0, 4.0]})
    assert _call(worker, job)["raised"]["type"] == "TypeError"


def test_failed_grads_do_not_break_a_later_bare_tensor_job():
    """Two float64 cross-entropy jobs (ms.grad raises inside the forward) used to leave
    MindSpore's PyNative executor unable to index a Tensor: the next bare-Tensor
    clip_by_global_norm raised TypeError. The worker resets the executor after a failed call
    (docs/matrix_evidence/ms_grad_executor_state.py). A fresh worker: no earlier job may hide it."""
    w = Worker("mindspore", frameworks.workers()["mindspore"], "cpu", python=PYTHON)
    try:
        for _ in range(2):
            got = _call(w, _model("mindspore.ops.clip_by_norm", {"max_norm": 0.5}, SEED_LAYERS,
                                  {"type": "cross_entropy", "reduction": "mean"}, SEED_X, SEED_Y, "float64"))
            assert got["raised"]["type"] == "TypeError"
        job = _injected("mindspore.ops.clip_by_global_norm", {"clip_norm": 1.0}, {"x": [3.0, 4.0]})
        got = _call(w, {**job, "form": "tensor"})
        assert got["raised"] is None, got["raised"]
        # float32 [3, 4] * 1 / 5: one rounding of each product (rtol 1e-6 is 8 float32 ulps)
        np.testing.assert_allclose(got["grads"]["x"], [0.6, 0.8], rtol=1e-6)
    finally:
        w.close()


# ---- compiled mode (docs/modes.md): the clipping call inside mindspore.jit(fullgraph=True) ----

def test_compiled_clip_by_global_norm_gives_the_oracle_numbers(worker):
    grads = {"w": [[3.0, 4.0]], "b": [12.0]}
    got = _call(worker, {**_injected("mindspore.ops.clip_by_global_norm", {"clip_norm": 1.0, "use_norm": None}, grads),
                         "mode": "compiled"})
    assert got["raised"] is None, got["raised"]
    want = clipping.clip_grad_norm([np.array(g, dtype=np.float64) for g in grads.values()], 1.0, eps=0.0,
                                   threshold="max_div")
    for (name, _), w in zip(grads.items(), want.grads):
        np.testing.assert_allclose(got["grads"][name], w, rtol=1e-6)


def test_compiled_norm_type_zero_raises_graph_modes_own_error(worker):
    """PyNative raises ZeroDivisionError from clip_func._old_norm's 1. / p; graph mode raises
    ValueError while building the graph (the registry declares both)."""
    job = _injected("mindspore.ops.clip_by_norm", {"max_norm": 1.0, "norm_type": 0.0, "error_if_nonfinite": False},
                    {"w": [[3.0, 4.0]]})
    assert _call(worker, job)["raised"]["type"] == "ZeroDivisionError"
    got = _call(worker, {**job, "mode": "compiled"})["raised"]
    assert got["type"] == "ValueError" and "The divisor could not be zero" in got["message"]


def test_compiled_clip_by_value_with_infinite_bounds_keeps_nan_where_pynative_gives_the_bound(worker):
    """A compiled-vs-eager difference the suite found (docs/modes.md): with bounds -inf and inf,
    PyNative's clip_by_value turns a NaN element into clip_value_min (-inf); graph mode keeps it
    NaN, as torch.clamp does. With finite bounds both give the lower bound."""
    job = _injected("mindspore.ops.clip_by_value", {"clip_value_min": -float("inf"), "clip_value_max": float("inf")},
                    {"w": [[float("nan"), 3.0]]})
    eager = _call(worker, job)["grads"]["w"]
    compiled = _call(worker, {**job, "mode": "compiled"})["grads"]["w"]
    assert eager.tolist() == [[-float("inf"), 3.0]]
    assert np.isnan(compiled[0, 0]) and compiled[0, 1] == 3.0
    finite = {**job, "args": {"clip_value_min": -1.0, "clip_value_max": 1.0}}
    assert _call(worker, {**finite, "mode": "compiled"})["grads"]["w"].tolist() == [[-1.0, 1.0]]
