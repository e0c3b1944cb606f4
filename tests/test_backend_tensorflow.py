"""The TensorFlow backend, driven through a real worker subprocess (tensorflow is never imported
here).

Skipped unless an interpreter with tensorflow is available: ``conformance.frameworks.default_python
("tensorflow")`` ($CONFORMANCE_TENSORFLOW_PYTHON, this interpreter, .tox/tensorflow). Numbers are
checked against hand values and the float64 oracle.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from conformance.frameworks import default_python, workers
from conformance.kinds.clipping import oracle as clipping
from conformance.oracle import network
from conformance.worker import Worker

PYTHON = default_python("tensorflow")
pytestmark = [pytest.mark.framework, pytest.mark.skipif(
    PYTHON is None, reason="no interpreter with tensorflow (set CONFORMANCE_TENSORFLOW_PYTHON)")]

# seed 000: Linear(3,2) zero init, cross-entropy on [0.2, 0.5, 0.2] -> class 0
W = np.array([[-0.1, -0.25, -0.1], [0.1, 0.25, 0.1]])
B = np.array([-0.5, 0.5])
KERAS = "tf.keras.optimizers.SGD."


@pytest.fixture(scope="module")
def worker():
    w = Worker("tensorflow", workers()["tensorflow"], "cpu", python=PYTHON)
    yield w
    w.close()


def params_of(*grads, dtype="float32"):
    np_dtype = {"float64": np.float64, "float16": np.float16}.get(dtype, np.float32)
    return [{"name": f"p{i}", "shape": list(np.shape(g)) if g is not None else [1],
             "grad": None if g is None else np.asarray(g, dtype=np_dtype)} for i, g in enumerate(grads)]


def run(worker, api, args, dtype="float32", **body):
    return worker.call({"kind": "clipping", "api": api, "args": args, "dtype": dtype, "device": "cpu", **body},
                       timeout=120)


def test_hello_reports_version_one_thread_and_tfs_own_gpu_reason(worker):
    info = worker.hello["info"]
    assert info["version"].startswith("2.")
    assert "keras 3." in info["build"]
    assert info["threads"] == 1
    assert info["devices"]["cpu"] is None
    gpu = info["devices"]["gpu"]  # None where TF sees a GPU, else its own account
    assert gpu is None or gpu.startswith("tf.config.list_physical_devices('GPU') is empty")
    assert set(info["apis"]["clipping"]) >= {"tf.clip_by_global_norm", "tf.clip_by_norm",
                                             "tf.clip_by_value", KERAS + "global_clipnorm"}


def test_clip_by_global_norm_of_a_known_vector_returns_its_norm(worker):
    # TF's testClipByGlobalNormSupportsNone: global norm 5, clip_norm 4 -> scaled by 0.8
    out = run(worker, "tf.clip_by_global_norm", {"clip_norm": 4.0},
              params=params_of([[-2.0, 0.0, 0.0], [4.0, 0.0, 0.0]], None, [1.0, -2.0]))
    assert out["raised"] is None
    assert out["returned"] == 5.0
    np.testing.assert_allclose(out["grads"]["p0"], [[-1.6, 0.0, 0.0], [3.2, 0.0, 0.0]], rtol=1e-6)
    assert out["grads"]["p1"] is None
    np.testing.assert_allclose(out["grads"]["p2"], [0.8, -1.6], rtol=1e-6)


def test_float64_global_norm_has_no_epsilon(worker):
    # [3, 4] and [12]: norm 13, clip 6.5 -> exactly half (torch would give 6.5 / (13 + 1e-6))
    out = run(worker, "tf.clip_by_global_norm", {"clip_norm": 6.5}, dtype="float64",
              params=params_of([3.0, 4.0], [12.0], dtype="float64"))
    assert out["grads"]["p0"].tolist() == [1.5, 2.0] and out["grads"]["p1"].tolist() == [6.0]
    torch_like = clipping.clip_grad_norm([np.array([3.0, 4.0]), np.array([12.0])], 6.5)
    assert abs(torch_like.grads[0][0] - 1.5) > 1e-8  # the difference tf-global-norm-no-eps is real


def test_infinite_global_norm_makes_every_gradient_nan(worker):
    out = run(worker, "tf.clip_by_global_norm", {"clip_norm": 6.0},
              params=params_of([[-2.0, 0.0, math.inf]], [1.0, -2.0]))
    assert out["returned"] == math.inf
    assert np.isnan(out["grads"]["p0"]).all() and np.isnan(out["grads"]["p1"]).all()


def test_float16_l2_loss_halves_tiny_squares_to_zero(worker):
    # tf.nn.l2_loss sums square(x) * 0.5 in float16: 0.0002**2 / 2 is below float16's range
    out = run(worker, "tf.clip_by_global_norm", {"clip_norm": 1.0e-4}, dtype="float16",
              params=params_of([0.0002, 0.0002], dtype="float16"))
    assert out["returned"] == 0.0
    np.testing.assert_array_equal(out["grads"]["p0"], np.float16(0.0002).astype(np.float64) * np.ones(2))


def test_clip_by_norm_per_tensor_and_clip_by_value_min_last(worker):
    out = run(worker, "tf.clip_by_norm", {"clip_norm": 4.0},
              params=params_of([[-3.0, 0.0, 0.0], [4.0, 0.0, 0.0]], [0.1, 0.0]))
    np.testing.assert_allclose(out["grads"]["p0"], [[-2.4, 0.0, 0.0], [3.2, 0.0, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(out["grads"]["p1"], [0.1, 0.0], rtol=1e-6)  # its own norm: untouched
    out = run(worker, "tf.clip_by_value", {"clip_value_min": 1.0, "clip_value_max": -1.0},
              params=params_of([-5.0, 0.5, 5.0]))
    assert out["grads"]["p0"].tolist() == [1.0, 1.0, 1.0]  # min > max: every element min


@pytest.mark.parametrize("option,value,want", [
    ("global_clipnorm", 6.5, [[1.5, 2.0], [6.0]]),
    ("clipnorm", 2.5, [[1.5, 2.0], [2.5]]),
    ("clipvalue", 3.5, [[3.0, 3.5], [3.5]]),
    ("clipnorm", 0.0, [[3.0, 4.0], [12.0]]),  # Keras clips only above 0
])
def test_keras_sgd_step_reads_back_the_clipped_gradient(worker, option, value, want):
    out = run(worker, KERAS + option, {option: value}, params=params_of([3.0, 4.0], None, [12.0]))
    assert out["raised"] is None
    np.testing.assert_allclose(out["grads"]["p0"], want[0], rtol=1e-6)
    assert out["grads"]["p1"] is None
    np.testing.assert_allclose(out["grads"]["p2"], want[1], rtol=1e-6)


def test_keras_without_any_gradient_raises_its_own_error(worker):
    out = run(worker, KERAS + "clipnorm", {"clipnorm": 1.0}, params=params_of(None))
    assert out["raised"]["type"] == "ValueError"
    assert "No gradients provided for any variable" in out["raised"]["message"]


def test_model_gradients_from_gradient_tape(worker):
    # seed 000: Linear(3,2) zero init, cross-entropy -> W, B; clip_by_global_norm(0.5)
    model = {"layers": [{"type": "linear", "name": "0", "in": 3, "out": 2, "weight": np.zeros((2, 3)),
                         "bias": np.zeros(2)}],
             "loss": {"type": "cross_entropy"}, "inputs": np.array([[0.2, 0.5, 0.2]]), "targets": np.array([0])}
    out = run(worker, "tf.clip_by_global_norm", {"clip_norm": 0.5}, model=model)
    np.testing.assert_allclose(out["raw_grads"]["0.weight"], W, rtol=1e-6)
    np.testing.assert_allclose(out["raw_grads"]["0.bias"], B, rtol=1e-6)
    norm = math.sqrt((W ** 2).sum() + (B ** 2).sum())
    assert out["returned"] == pytest.approx(norm, rel=1e-6)
    np.testing.assert_allclose(out["grads"]["0.weight"], W * 0.5 / norm, rtol=1e-6)


def test_conv2d_and_flatten_gradients_match_the_oracle_network(worker):
    rng = np.random.default_rng(3)
    layers = [{"type": "conv2d", "name": "0", "in": 2, "out": 3, "kernel": [2, 2], "stride": [1, 2],
               "padding": [1, 0], "weight": rng.standard_normal((3, 2, 2, 2)), "bias": rng.standard_normal(3)},
              {"type": "tanh", "name": "1"}, {"type": "flatten", "name": "2"},
              {"type": "linear", "name": "3", "in": 3 * 4 * 2, "out": 2, "weight": rng.standard_normal((2, 24)),
               "bias": None}]
    x = rng.standard_normal((2, 2, 3, 4))
    y = np.array([1, 0])
    loss = {"type": "cross_entropy"}
    want = network.forward_backward(layers, loss, x, y).grads
    out = run(worker, "tf.clip_by_norm", {"clip_norm": 1.0e6}, dtype="float64",
              model={"layers": layers, "loss": loss, "inputs": x, "targets": y})
    assert set(out["raw_grads"]) == set(want)
    for name, g in want.items():
        np.testing.assert_allclose(out["raw_grads"][name], g, rtol=1e-10, atol=1e-12)


def test_derivation_tape_gradient_none_and_zero_for_an_unconnected_source(worker):
    # TF's testUnconnectedGradientsDefault / testUnconnectedGradientsZeros: z = y * 2
    fn = {"inputs": [["x", np.ones((2, 2))], ["y", np.array(3.0)]], "weights": [],
          "ops": [{"op": "mul", "args": ["y", 2.0], "out": "z"}], "outputs": ["z"]}
    job = {"kind": "derivation", "dtype": "float32", "device": "cpu", "repeat": 1, "function": fn,
           "args": {"outputs": ["z"], "inputs": ["x", "y"], "allow_unused": False}}
    out = worker.call({**job, "api": "tf.GradientTape.gradient"}, timeout=120)
    assert out["raised"] is None and out["grads"]["x"] is None and out["grads"]["y"] == 2.0
    out = worker.call({**job, "api": "tf.GradientTape.gradient.unconnected_zero"}, timeout=120)
    assert out["grads"]["x"].tolist() == [[0.0, 0.0], [0.0, 0.0]] and out["grads"]["y"] == 2.0
    # a non-scalar target is differentiated through its sum: d sum(x * w) / dx = w
    fn = {"inputs": [["x", np.array([1.0, 2.0, 3.0])]], "weights": [["w", np.array([0.5, -1.0, 2.0])]],
          "ops": [{"op": "mul", "args": ["x", "w"], "out": "y"}], "outputs": ["y"]}
    out = worker.call({**job, "function": fn, "api": "tf.GradientTape.gradient",
                       "args": {"outputs": ["y"], "inputs": ["x", "w"], "allow_unused": False}}, timeout=120)
    assert out["grads"]["x"].tolist() == [0.5, -1.0, 2.0] and out["grads"]["w"].tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("api, args", [("tf.clip_by_global_norm", {"clip_norm": 4.0}),
                                       ("tf.clip_by_norm", {"clip_norm": 1.0}),
                                       ("tf.clip_by_value", {"clip_value_min": -0.5, "clip_value_max": 1.5}),
                                       (KERAS + "global_clipnorm", {"global_clipnorm": 4.0}),
                                       (KERAS + "clipnorm", {"clipnorm": 1.0})])
def test_compiled_mode_runs_in_tf_function_with_the_oracle_numbers(worker, api, args):
    params = params_of([[-2.0, 0.0, 0.0], [4.0, 0.0, 0.0]], None, [1.0, -2.0], dtype="float64")
    eager = run(worker, api, args, "float64", params=params)
    compiled = run(worker, api, args, "float64", params=params, mode="compiled")
    again = run(worker, api, args, "float64", params=params, mode="compiled")  # the cached function
    assert compiled["raised"] is None and again["raised"] is None
    grads = [None if p["grad"] is None else np.asarray(p["grad"], np.float64) for p in params]
    if api.endswith("global_norm") or api.endswith("global_clipnorm"):
        want = clipping.clip_grad_norm(grads, next(iter(args.values())), eps=0.0).grads
    elif api.endswith("clip_by_value"):
        want = [None if g is None else np.clip(g, -0.5, 1.5) for g in grads]
    else:
        want = [None if g is None else clipping.clip_grad_norm([g], 1.0, eps=0.0).grads[0] for g in grads]
    for i, w in enumerate(want):
        for out in (eager, compiled, again):
            if w is None:
                assert out["grads"][f"p{i}"] is None
            else:
                # float64 throughout: a few roundings from the exact oracle, nothing more
                np.testing.assert_allclose(out["grads"][f"p{i}"], w, rtol=1e-12)
    if api == "tf.clip_by_global_norm":
        assert compiled["returned"] == eager["returned"] == 5.0


def test_compiled_mode_refuses_functions_that_run_eagerly():
    """With tf.config.run_functions_eagerly(True) a tf.function runs its Python eagerly: the
    compiled call raises NotCompiled instead of passing as compiled."""
    import os
    import subprocess

    script = ("import tensorflow as tf\n"
              "from conformance.frameworks.tensorflow import compiled\n"
              "fn = lambda gs, args: [g * 2 for g in gs]\n"
              "print(float(compiled.cached('x', fn, {})([tf.constant(1.0)])[0]))\n"
              "tf.config.run_functions_eagerly(True)\n"
              "try:\n"
              "    compiled.cached('y', fn, {})([tf.constant(1.0)])\n"
              "except compiled.NotCompiled as e:\n"
              "    print('NotCompiled:', e)\n")
    out = subprocess.run([PYTHON, "-c", script], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "2.0"
    assert lines[1].startswith("NotCompiled: tf.config.run_functions_eagerly(True) is on")
