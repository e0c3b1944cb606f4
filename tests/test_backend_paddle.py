"""The Paddle backend, driven through a real worker subprocess (paddle is never imported here).

Skipped unless a Paddle interpreter is available: ``conformance.frameworks.default_python
("paddle")`` ($CONFORMANCE_PADDLE_PYTHON, this interpreter, .tox/paddle), else the project's
``.venv-paddle/bin/python``. Every number is checked against the float64 oracle.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conformance.frameworks import default_python, workers
from conformance.kinds.clipping import oracle as clipping
from conformance.oracle import network
from conformance.worker import Worker

ROOT = Path(__file__).resolve().parents[1]


def _paddle_python():
    python = default_python("paddle")
    if python:
        return python
    fallback = ROOT / ".venv-paddle" / "bin" / "python"
    if fallback.exists():
        code = "import importlib.util, sys; sys.exit(importlib.util.find_spec('paddle') is None)"
        try:
            if subprocess.run([str(fallback), "-c", code], capture_output=True, timeout=60).returncode == 0:
                return str(fallback)
        except (OSError, subprocess.SubprocessError):
            pass
    return None


PYTHON = _paddle_python()
pytestmark = [pytest.mark.framework, pytest.mark.skipif(PYTHON is None, reason="no interpreter with paddle (set CONFORMANCE_PADDLE_PYTHON)")]

# seed 000: Linear(3,2) zero init, cross-entropy on [0.2, 0.5, 0.2] -> class 0
W = np.array([[-0.1, -0.25, -0.1], [0.1, 0.25, 0.1]])
B = np.array([-0.5, 0.5])


@pytest.fixture(scope="module")
def worker():
    w = Worker("paddle", workers()["paddle"], "cpu", python=PYTHON)
    yield w
    w.close()


def injected(dtype="float32", extra_none=False):
    np_dtype = np.float64 if dtype == "float64" else np.float32
    params = [{"name": "weight", "shape": [2, 3], "grad": W.astype(np_dtype)},
              {"name": "bias", "shape": [2], "grad": B.astype(np_dtype)}]
    if extra_none:
        params.append({"name": "frozen", "shape": [4], "grad": None})
    return params


def grads_of(params):
    return [None if p["grad"] is None else np.asarray(p["grad"], dtype=np.float64) for p in params]


def run(worker, api, args, dtype="float32", **body):
    return worker.call({"kind": "clipping", "api": api, "args": args, "dtype": dtype, "device": "cpu", **body},
                       timeout=120)


def test_hello_reports_version_and_devices(worker):
    info = worker.hello["info"]
    assert info["version"].count(".") >= 2
    assert info["devices"]["cpu"] is None
    assert "gpu" in info["devices"]  # None on a CUDA build with a device, else the reason


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_seed_000_clip_grad_norm(worker, dtype):
    params = injected(dtype, extra_none=True)
    got = run(worker, "paddle.nn.utils.clip_grad_norm_", {"max_norm": 0.5, "norm_type": 2.0,
                                                            "error_if_nonfinite": False}, dtype, params=params)
    assert got["raised"] is None
    want = clipping.clip_grad_norm(grads_of(params), 0.5)
    assert got["returned"] == pytest.approx(0.8154753, abs=1e-6)
    assert got["returned"] == pytest.approx(want.total_norm, rel=1e-6)
    rtol = 1e-12 if dtype == "float64" else 1e-6
    np.testing.assert_allclose(got["grads"]["weight"], want.grads[0], rtol=rtol)
    np.testing.assert_allclose(got["grads"]["bias"], want.grads[1], rtol=rtol)
    assert got["grads"]["weight"][0, 0] == pytest.approx(-0.0613138638, abs=1e-8)
    assert got["grads"]["frozen"] is None  # a parameter without a gradient keeps none


@pytest.mark.parametrize("api", ["paddle.nn.ClipGradByNorm", "paddle.nn.ClipGradByNorm.via_sgd"])
def test_clip_grad_by_norm_is_per_tensor(worker, api):
    params = injected("float32")
    got = run(worker, api, {"clip_norm": 0.5}, params=params)
    assert got["raised"] is None
    # the weight's own norm (0.406) is under 0.5: unchanged; the bias (norm 0.707) -> norm 0.5
    assert np.linalg.norm(W) < 0.5
    np.testing.assert_allclose(got["grads"]["weight"], W.astype(np.float32), rtol=0, atol=0)
    np.testing.assert_allclose(got["grads"]["bias"], [-0.5 / math.sqrt(2), 0.5 / math.sqrt(2)], rtol=1e-6)
    assert np.linalg.norm(got["grads"]["bias"]) == pytest.approx(0.5, rel=1e-6)
    want = clipping.clip_grad_norm(grads_of(params), 0.5, scope="per_tensor", threshold="clamp", eps=0.0)
    for name, w in zip(("weight", "bias"), want.grads):
        np.testing.assert_allclose(got["grads"][name], w, rtol=1e-6)
    # ... and not torch's global clip
    torch_like = clipping.clip_grad_norm(grads_of(params), 0.5)
    assert not np.allclose(got["grads"]["weight"], torch_like.grads[0], rtol=1e-3)


def test_linear_layout_is_translated(worker):
    rng = np.random.default_rng(7)
    weight = rng.uniform(-0.5, 0.5, size=(2, 3))  # torch layout [out, in]; Paddle stores [in, out]
    bias = np.array([0.1, -0.2])
    layers = [{"type": "linear", "name": "0", "in": 3, "out": 2, "weight": weight, "bias": bias}]
    loss = {"type": "cross_entropy", "reduction": "mean"}
    inputs = np.array([[0.2, 0.5, 0.2], [-1.0, 0.3, 0.7]])
    targets = np.array([0, 1], dtype=np.int64)
    model = {"layers": layers, "loss": loss, "inputs": inputs, "targets": targets}
    got = run(worker, "paddle.nn.utils.clip_grad_value_", {"clip_value": 1e9}, "float64", model=model)
    want = network.forward_backward(layers, loss, inputs, targets).grads
    assert list(got["raw_grads"]) == ["0.weight", "0.bias"]
    assert got["raw_grads"]["0.weight"].shape == (2, 3)
    np.testing.assert_allclose(got["raw_grads"]["0.weight"], want["0.weight"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got["raw_grads"]["0.bias"], want["0.bias"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got["grads"]["0.weight"], want["0.weight"], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("api", ["paddle.nn.ClipGradByGlobalNorm", "paddle.nn.ClipGradByGlobalNorm.via_sgd"])
def test_global_norm_without_epsilon_direct_and_through_sgd(worker, api):
    params = injected("float64", extra_none=True)
    got = run(worker, api, {"clip_norm": 0.5}, "float64", params=params)
    assert got["raised"] is None
    no_eps = clipping.clip_grad_norm(grads_of(params), 0.5, eps=0.0)
    torch_like = clipping.clip_grad_norm(grads_of(params), 0.5)
    for i, name in enumerate(("weight", "bias")):
        np.testing.assert_allclose(got["grads"][name], no_eps.grads[i], rtol=1e-13)
        # torch's 1e-6 epsilon makes a relative 1.2e-6 difference, visible in float64
        assert not np.allclose(got["grads"][name], torch_like.grads[i], rtol=1e-7, atol=0)
    assert got["grads"]["frozen"] is None


def test_optimizer_path_on_a_model_with_nonzero_weights(worker):
    # seed 003: Dense(3,1) weight [2,3,4], MSE against 19: gradient [[2, 4, 6]], norm 7.48
    layers = [{"type": "linear", "name": "fc", "in": 3, "out": 1, "weight": np.array([[2.0, 3.0, 4.0]]),
               "bias": None}]
    model = {"layers": layers, "loss": {"type": "mse", "reduction": "mean"},
             "inputs": np.array([[1.0, 2.0, 3.0]]), "targets": np.array([[19.0]])}
    got = run(worker, "paddle.nn.ClipGradByGlobalNorm.via_sgd", {"clip_norm": 1.0}, "float64", model=model)
    g = np.array([[2.0, 4.0, 6.0]])
    np.testing.assert_allclose(got["raw_grads"]["fc.weight"], g, rtol=1e-12)
    np.testing.assert_allclose(got["grads"]["fc.weight"], g / np.linalg.norm(g), rtol=1e-12)


@pytest.mark.parametrize("api", ["paddle.nn.ClipGradByValue", "paddle.nn.ClipGradByValue.via_sgd",
                                 "paddle.nn.utils.clip_grad_value_"])
def test_value_clipping(worker, api):
    params = injected("float32")
    args = {"clip_value": 0.2} if api.endswith("clip_grad_value_") else {"max": 0.2, "min": -0.2}
    got = run(worker, api, args, params=params)
    want = clipping.clip_grad_value(grads_of(params), 0.2)
    np.testing.assert_allclose(got["grads"]["weight"], want.grads[0], rtol=1e-6)
    np.testing.assert_allclose(got["grads"]["bias"], want.grads[1], rtol=1e-6)


def test_unsupported_cells_raise_with_paddles_own_error(worker):
    params = [{"name": "w", "shape": [2], "grad": np.array([3.0, 4.0], dtype=np.float16)}]
    got = run(worker, "paddle.nn.utils.clip_grad_norm_", {"max_norm": 1.0}, "float16", params=params)
    assert got["raised"] and "float16" in got["raised"]["message"]
    params = injected("float32")
    got = run(worker, "paddle.nn.utils.clip_grad_norm_", {"max_norm": 0.5, "norm_type": 3.0}, params=params)
    assert got["raised"]["type"] == "ValueError"
    got = run(worker, "paddle.nn.ClipGradByNorm", {"clip_norm": 0.5}, "float64", params=injected("float64"))
    assert got["raised"] and "float32" in got["raised"]["message"]  # CPU kernel: float32 only


PARAMETER_CHECK = r"""
import json
import numpy as np
import paddle
from conformance.frameworks.paddle.tensors import parameter
ATTRS = ("stop_gradient", "persistable", "trainable", "is_leaf", "need_clip", "optimize_attr",
         "regularizer", "do_model_average", "is_distributed", "grad")
def describe(p):
    values = p.astype("float32").numpy() if p.dtype == paddle.bfloat16 else p.numpy()
    return {"type": type(p).__qualname__, "shape": list(p.shape), "dtype": str(p.dtype),
            "place": str(p.place), "values": np.asarray(values, dtype=np.float64).tolist(),
            "attrs": {a: repr(getattr(p, a)) for a in ATTRS},
            "dict": sorted(vars(p))}
out = []
zero = paddle.nn.initializer.Constant(0.0)
for shape in ([], [0], [3], [2, 3]):
    for dtype in ("float64", "float32", "float16", "bfloat16"):
        want = paddle.create_parameter(shape=list(shape), dtype=dtype, default_initializer=zero)
        out.append([shape, dtype, describe(parameter(shape, dtype)), describe(want)])
print(json.dumps(out))
"""


def test_parameter_is_what_create_parameter_makes():
    # the worker's cheap zero parameter (tensors.parameter) against paddle.create_parameter's:
    # the same class, shape, dtype, place, zeros and every attribute the clip APIs and
    # optimizers read (need_clip, trainable, optimize_attr, ...); only the generated name differs
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([PYTHON, "-c", PARAMETER_CHECK], capture_output=True, text=True, cwd=ROOT,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(rows) == 16
    for shape, dtype, got, want in rows:
        assert got == want, (shape, dtype)
        assert got["type"] == "EagerParamBase" and got["attrs"]["need_clip"] == "True"
