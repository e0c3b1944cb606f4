"""The JAX / optax backend, driven through a real worker subprocess (jax is never imported here).

Skipped unless an interpreter with jax is available: ``conformance.frameworks.default_python
("jax")`` ($CONFORMANCE_JAX_PYTHON, this interpreter, .tox/jax). Numbers are checked against hand
values and the float64 oracle.
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

PYTHON = default_python("jax")
pytestmark = [pytest.mark.framework, pytest.mark.skipif(PYTHON is None, reason="no interpreter with jax (set CONFORMANCE_JAX_PYTHON)")]

# seed 000: Linear(3,2) zero init, cross-entropy on [0.2, 0.5, 0.2] -> class 0
W = np.array([[-0.1, -0.25, -0.1], [0.1, 0.25, 0.1]])
B = np.array([-0.5, 0.5])


@pytest.fixture(scope="module")
def worker():
    w = Worker("jax", workers()["jax"], "cpu", python=PYTHON)
    yield w
    w.close()


def injected(dtype="float32", extra_none=False):
    np_dtype = {"float64": np.float64, "float16": np.float16}.get(dtype, np.float32)
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


def test_hello_reports_version_x64_and_jaxs_own_gpu_reason(worker):
    info = worker.hello["info"]
    assert info["version"].count(".") >= 2
    assert "x64 True" in info["build"]
    assert info["devices"]["cpu"] is None
    gpu = info["devices"]["gpu"]  # None where jax has a GPU backend, else jax's own message
    assert gpu is None or ("jax.devices('gpu') raised" in gpu and "gpu" in gpu.split("raised", 1)[1])


def test_clip_by_global_norm_of_a_known_vector(worker):
    params = [{"name": "w", "shape": [2], "grad": np.array([3.0, 4.0], dtype=np.float32)}]
    got = run(worker, "optax.clip_by_global_norm", {"max_norm": 1.0}, params=params)
    assert got["raised"] is None and got["returned"] is None  # optax returns no norm
    np.testing.assert_allclose(got["grads"]["w"], [0.6, 0.8], rtol=1e-7)


@pytest.mark.parametrize("api", ["optax.clip_by_global_norm", "optax.clip_by_global_norm.via_sgd"])
def test_seed_000_float64_has_no_epsilon(worker, api):
    params = injected("float64", extra_none=True)
    got = run(worker, api, {"max_norm": 0.5}, "float64", params=params)
    assert got["raised"] is None
    assert got["grads"]["weight"][0, 0] == pytest.approx(-0.1 * 0.5 / 0.8154753215150045, rel=1e-12)
    no_eps = clipping.clip_grad_norm(grads_of(params), 0.5, eps=0.0)
    torch_like = clipping.clip_grad_norm(grads_of(params), 0.5)
    for i, name in enumerate(("weight", "bias")):
        np.testing.assert_allclose(got["grads"][name], no_eps.grads[i], rtol=1e-14)
        assert not np.allclose(got["grads"][name], torch_like.grads[i], rtol=1e-7, atol=0)
    assert got["grads"]["frozen"] is None  # left out of the pytree, comes back as no gradient


def test_float64_is_really_float64(worker):
    # 1 + 1e-12 is 1 in float32: only a float64 (x64) array keeps it
    params = [{"name": "w", "shape": [1], "grad": np.array([1.0 + 1e-12])}]
    got = run(worker, "optax.clip", {"max_delta": 2.0}, "float64", params=params)
    assert got["grads"]["w"][0] == 1.0 + 1e-12


def test_nan_norm_makes_every_gradient_nan(worker):
    # g_norm < max_norm is False for NaN, so every leaf is scaled: (t / NaN) * max_norm
    params = [{"name": "a", "shape": [2], "grad": np.array([1.0, np.nan], dtype=np.float32)},
              {"name": "b", "shape": [1], "grad": np.array([2.0], dtype=np.float32)}]
    got = run(worker, "optax.clip_by_global_norm", {"max_norm": 1.0}, params=params)
    assert np.isnan(got["grads"]["a"]).all() and np.isnan(got["grads"]["b"]).all()


def test_clip_is_symmetric_and_keeps_nan(worker):
    params = [{"name": "g", "shape": [4], "grad": np.array([3.0, -2.0, 0.1, np.nan], dtype=np.float32)}]
    got = run(worker, "optax.clip", {"max_delta": 1.0}, params=params)
    np.testing.assert_array_equal(got["grads"]["g"][:3], np.array([1.0, -1.0, 0.1], dtype=np.float32))
    assert math.isnan(got["grads"]["g"][3])


def test_bare_array_form_and_0d(worker):
    params = [{"name": "g", "shape": [], "grad": np.array(2.0, dtype=np.float32)}]
    got = run(worker, "optax.clip_by_global_norm", {"max_norm": 0.5}, form="tensor", params=params)
    assert got["grads"]["g"].shape == ()
    assert float(got["grads"]["g"]) == 0.5


def test_model_gradients_from_jax_grad(worker):
    rng = np.random.default_rng(7)
    layers = [{"type": "linear", "name": "0", "in": 3, "out": 4, "weight": rng.uniform(-0.5, 0.5, (4, 3)),
               "bias": np.array([0.1, -0.2, 0.0, 0.3])},
              {"type": "relu", "name": "1"},
              {"type": "linear", "name": "2", "in": 4, "out": 2, "weight": rng.uniform(-0.5, 0.5, (2, 4)),
               "bias": None}]
    loss = {"type": "cross_entropy", "reduction": "mean"}
    inputs = np.array([[0.2, 0.5, 0.2], [-1.0, 0.3, 0.7]])
    targets = np.array([0, 1], dtype=np.int64)
    model = {"layers": layers, "loss": loss, "inputs": inputs, "targets": targets}
    got = run(worker, "optax.clip", {"max_delta": 1e9}, "float64", model=model)
    want = network.forward_backward(layers, loss, inputs, targets).grads
    assert list(got["raw_grads"]) == ["0.weight", "0.bias", "2.weight"]
    for name, g in want.items():
        np.testing.assert_allclose(got["raw_grads"][name], g, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(got["grads"][name], g, rtol=1e-12, atol=1e-15)


def test_derivation_value_and_grad_with_aux(worker):
    # seed 003's Net: loss = mse(x @ w.T, 19) with x [1, 2, 3], w [2, 3, 4]: logits 20, loss 1,
    # d loss / d w = 2 * (20 - 19) * x = [[2, 4, 6]], d loss / d x = 2 * w = [[4, 6, 8]]
    fn = {"inputs": [["x", np.array([[1.0, 2.0, 3.0]])], ["y", np.array(19.0)]],
          "weights": [["fc.weight", np.array([[2.0, 3.0, 4.0]])]],
          "ops": [{"op": "linear", "args": ["x", "fc.weight"], "out": "fc"},
                  {"op": "squeeze", "args": ["fc"], "out": "logits"},
                  {"op": "mse", "args": ["logits", "y"], "out": "loss"}],
          "outputs": ["loss", "logits"]}
    got = worker.call({"kind": "derivation", "api": "jax.value_and_grad", "args": {"argnums": [0, 2], "has_aux": True},
                       "dtype": "float64", "device": "cpu", "repeat": 1, "function": fn}, timeout=120)
    assert got["raised"] is None
    np.testing.assert_array_equal(got["grads"]["x"], [[4.0, 6.0, 8.0]])
    np.testing.assert_array_equal(got["grads"]["fc.weight"], [[2.0, 4.0, 6.0]])
    assert float(got["values"]["loss"]) == 1.0 and float(got["values"]["logits"]) == 20.0
    # without has_aux, two outputs: jax refuses a non-scalar (tuple) output
    got = worker.call({"kind": "derivation", "api": "jax.grad", "args": {"argnums": [0], "has_aux": False},
                       "dtype": "float32", "device": "cpu", "repeat": 1, "function": fn}, timeout=120)
    assert got["raised"]["type"] == "TypeError"
    assert "scalar-output" in got["raised"]["message"]


@pytest.mark.parametrize("api, args", [("optax.clip_by_global_norm", {"max_norm": 0.5}),
                                       ("optax.clip_by_global_norm.via_sgd", {"max_norm": 0.5}),
                                       ("optax.clip", {"max_delta": 0.2}),
                                       ("optax.tree.norm", {"ord": 2.0})])
def test_compiled_mode_runs_under_jit_with_the_eager_numbers(worker, api, args):
    params = injected("float64", extra_none=True)
    eager = run(worker, api, args, "float64", params=params)
    jitted = run(worker, api, args, "float64", params=params, mode="compiled")
    assert jitted["raised"] is None
    for name in ("weight", "bias"):
        np.testing.assert_allclose(jitted["grads"][name], eager["grads"][name], rtol=1e-15)
    assert jitted["grads"]["frozen"] is None
    if api == "optax.tree.norm":
        assert jitted["returned"] == pytest.approx(0.8154753215150045, rel=1e-15)


def test_compiled_mode_refuses_a_disabled_jit(monkeypatch):
    """Under JAX_DISABLE_JIT=1 jax.jit runs the Python eagerly: the compiled cell says so
    (NotCompiled) instead of passing as compiled; the eager cell is unaffected."""
    monkeypatch.setenv("JAX_DISABLE_JIT", "1")
    w = Worker("jax", workers()["jax"], "cpu", python=PYTHON)
    try:
        params = injected("float64")
        out = run(w, "optax.clip_by_global_norm", {"max_norm": 0.5}, "float64", params=params, mode="compiled")
        assert out["raised"]["type"] == "NotCompiled"
        assert "jit is disabled" in out["raised"]["message"]
        assert run(w, "optax.clip_by_global_norm", {"max_norm": 0.5}, "float64", params=params)["raised"] is None
    finally:
        w.close()


CACHES_CHECK = r"""
import json, os, sys, tempfile
import numpy as np
from conformance.frameworks.jax import caches, worker  # worker: x64, and its cache directory
import jax
out = {"dir": jax.config.jax_compilation_cache_dir}
def job(n, api="optax.clip_by_global_norm", mode="eager"):
    g = np.arange(1.0, n + 1.0)
    return worker.run({"kind": "clipping", "api": api, "args": {"max_norm": 1.0}, "dtype": "float32",
                       "device": "cpu", "mode": mode, "params": [{"name": "w", "shape": [n], "grad": g}]})
def files():
    return sum(len(f) for _, _, f in os.walk(out["dir"]))
start = caches.resident()
first = [job(n)["grads"]["w"].tolist() for n in range(3, 23)]
out["grown"] = caches.resident() - start
out["files"] = files()
out["not_past"] = caches.bound(limit=1 << 50)
high = caches.resident()
out["dropped"] = caches.bound(limit=high - 1)
out["freed"] = high - caches.resident()
again = [job(n)["grads"]["w"].tolist() for n in range(3, 23)]
out["same"] = again == first
out["files_after"] = files()  # read back, not compiled again: no new entries
jitted = [job(n, mode="compiled")["grads"]["w"].tolist() for n in (5, 6)]
out["jit_files"] = files() - out["files_after"]
# each compiled job is a new jax.jit function, which jax's memory caches never match: the
# second time, the executable comes from the directory (the same numbers, no new entries)
out["jit_same"] = [job(n, mode="compiled")["grads"]["w"].tolist() for n in (5, 6)] == jitted
out["jit_files_again"] = files() - out["files_after"] - out["jit_files"]
print(json.dumps(out))
"""


def test_the_workers_compilation_caches_are_bounded_and_kept_on_disk(tmp_path):
    # jax/caches.py: past the limit the worker drops JAX's executables and hands the memory back;
    # each executable is also in the worker's own persistent cache, so a dropped one is read
    # back, not compiled again (the same numbers; no new cache entries)
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "TMPDIR": str(tmp_path)}  # as a Worker's own
    out = subprocess.run([PYTHON, "-c", CACHES_CHECK], capture_output=True, text=True, cwd=root, env=env,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(got["dir"]).parent == tmp_path and Path(got["dir"]).name.startswith("jax-compilation-cache-")
    assert got["grown"] > 64 << 20, got  # 20 gradient shapes: measured ~13 MB each
    assert got["files"] >= 20
    assert got["not_past"] is False and got["dropped"] is True
    assert got["freed"] > got["grown"] // 2, got
    assert got["same"] and got["files_after"] == got["files"]
    assert got["jit_files"] >= 2 and got["jit_same"] and got["jit_files_again"] == 0
