"""The derivation backends against the float64 oracle, through real worker subprocesses (no
framework is imported here): torch always (skipped where it is not installed), MindSpore and
Paddle where an interpreter with them is found ($CONFORMANCE_<NAME>_PYTHON, this interpreter,
or .tox/<name>), else skipped with the reason. Also the whole cases/derivation/ suite per
backend: no `mismatch`, no `error`, and the declared differences named where they should be."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from conformance import frameworks, registry
from conformance.kinds.derivation import oracle as d
from conformance.plan import plan
from conformance.runner import Runner
from conformance.worker import WorkerPool
from conformance.spec.load import load_paths

pytestmark = pytest.mark.framework  # runs in the framework envs (tests/framework_mark.py)

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "cases" / "derivation"


def _python(name):
    if name == "torch":
        return sys.executable if frameworks.installed_here("torch") else None
    return frameworks.default_python(name)


def _fn(rng, dtype=np.float64):
    """tanh(linear(x)) @ v with a bias, mean; a second output sum(h); inputs and weights."""
    return {"inputs": [["x", rng.normal(size=(3, 4)).astype(dtype)], ["c", np.asarray(0.5, dtype)]],
            "weights": [["W", (rng.normal(size=(2, 4)) * 0.5).astype(dtype)],
                        ["b", rng.normal(size=(2,)).astype(dtype)],
                        ["v", rng.normal(size=(2, 1)).astype(dtype)]],
            "ops": [{"op": "linear", "args": ["x", "W", "b"], "out": "pre"},
                    {"op": "tanh", "args": ["pre"], "out": "h"},
                    {"op": "matmul", "args": ["h", "v"], "out": "s"},
                    {"op": "mul", "args": ["s", "c"], "out": "sc"},
                    {"op": "mean", "args": ["sc"], "out": "loss"},
                    {"op": "sum", "args": ["h"], "out": "hsum"}],
            "outputs": ["loss", "hsum"]}


JOBS = {  # backend -> (api, args, oracle call)
    "torch": [("torch.autograd.grad", {"outputs": ["loss"], "inputs": ["x", "c", "W", "b", "v"], "allow_unused": False},
               lambda fn: d.autograd_grad(fn, ["loss"], ["x", "c", "W", "b", "v"])),
              ("torch.Tensor.backward", {"output": "loss", "repeat": 2},
               lambda fn: d.tensor_backward(fn, "loss", repeat=2)),
              ("torch.func.grad_and_value", {"argnums": [0, 2, 3], "has_aux": True},
               lambda fn: d.value_and_grad(fn, 0, ["W", "b"], has_aux=True))],
    "mindspore": [("mindspore.grad", {"grad_position": [0, 1], "weights": ["W", "b", "v"], "has_aux": False},
                   lambda fn: d.mindspore_grad(fn, (0, 1), True, has_aux=False)),
                  ("mindspore.value_and_grad", {"grad_position": None, "weights": ["v"], "has_aux": True},
                   lambda fn: d.value_and_grad(fn, None, ["v"], has_aux=True))],
    "paddle": [("paddle.grad", {"outputs": ["loss", "hsum"], "inputs": ["W", "x"], "allow_unused": False},
                lambda fn: d.autograd_grad(fn, ["loss", "hsum"], ["W", "x"])),
               ("paddle.Tensor.backward", {"output": "loss", "repeat": 3},
                lambda fn: d.tensor_backward(fn, "loss", repeat=3))],
}


@pytest.fixture(scope="module", params=["torch", "mindspore", "paddle"])
def worker_pool(request):
    name = request.param
    python = _python(name)
    if python is None:
        pytest.skip(f"no interpreter with {name} (set CONFORMANCE_{name.upper()}_PYTHON)")
    p = WorkerPool(frameworks.workers(), {name: python})
    yield name, p
    p.close()


def test_each_derivation_api_agrees_with_the_oracle_in_float64(worker_pool):
    name, p = worker_pool
    for api, args, oracle in JOBS[name]:
        fn = _fn(np.random.default_rng(7))
        job = {"kind": "derivation", "api": api, "args": args, "dtype": "float64", "device": "cpu",
               "repeat": 1, "function": fn}
        if "repeat" in args:
            job["repeat"] = args["repeat"]
        got = p.get(name, "cpu").call(job, timeout=120)
        want = oracle(fn)
        assert got["raised"] is None, (api, got["raised"])
        assert set(got["grads"]) == set(want.grads), api
        for n, g in want.grads.items():
            np.testing.assert_allclose(got["grads"][n], g, rtol=1e-10, atol=1e-12, err_msg=f"{api} {n}")
            assert got["grads"][n].shape == g.shape, (api, n)
        if want.values is not None and api != "mindspore.grad":
            for n, v in want.values.items():
                np.testing.assert_allclose(got["values"][n], v, rtol=1e-10, atol=1e-12, err_msg=f"{api} value {n}")


def test_an_api_the_backend_does_not_know_is_a_runner_error(worker_pool):
    from conformance.worker import BackendError

    name, p = worker_pool
    job = {"kind": "derivation", "api": f"{name}.no_such_grad", "args": {}, "dtype": "float32",
           "device": "cpu", "repeat": 1, "function": _fn(np.random.default_rng(0), np.float32)}
    with pytest.raises(BackendError, match="NotImplementedError"):
        p.get(name, "cpu").call(job, timeout=120)


#: cell id -> the declared difference that must explain it (the evidence of each finding)
EXPECTED_KNOWN = {
    "derive-torch-grad-unused-input[mindspore.grad-float32-cpu]": "ms-grad-unused-zeros",
    "derive-torch-grad-unused-input[paddle.grad-float32-cpu]": "paddle-grad-unused-valueerror",
    "derive-torch-grad-nonscalar-output[mindspore.grad-float32-cpu]": "ms-grad-nonscalar-ones",
    "derive-torch-grad-nonscalar-output[paddle.grad-float32-cpu]": "paddle-grad-nonscalar-ones",
    "derive-torch-grad-empty-inputs[mindspore.grad-float32-cpu]": "ms-grad-nothing-selected-valueerror",
    "derive-torch-grad-empty-inputs[paddle.grad-float32-cpu]": "paddle-grad-empty-inputs-assertion",
    "derive-torch-backward-twice[mindspore.grad-float32-cpu]": "ms-grad-no-accumulation",
    "derive-torch-backward-unused-leaf[mindspore.grad-float32-cpu]": "ms-grad-unused-leaf-zeros",
    "derive-torch-backward-nonscalar[paddle.Tensor.backward-float32-cpu]": "paddle-backward-nonscalar-ones",
    "derive-torch-backward-nonscalar[mindspore.grad-float32-cpu]": "ms-grad-backward-nonscalar-ones",
    "derive-ms-grad-no-aux-vector-output[torch.autograd.grad-float32-cpu]": "torch-grad-nonscalar-raises",
    "derive-ms-grad-unused-input[torch.autograd.grad-float32-cpu]": "torch-grad-unused-none",
    "derive-ms-grad-unused-input[paddle.grad-float32-cpu]": "paddle-grad-unused-none",
    "seed-003-grad-both-none[torch.autograd.grad-float32-cpu]": "torch-grad-nothing-selected-runtimeerror",
    "seed-003-grad-both-none[paddle.grad-float32-cpu]": "paddle-grad-nothing-selected-assertion",
    "derive-ms-value-and-grad-no-aux[torch.func.grad_and_value-float32-cpu]": "torch-func-nonscalar-raises",
    "derive-ms-value-and-grad-both-none[torch.func.grad_and_value-float32-cpu]": "torch-func-nothing-selected",
    "derive-paddle-grad-nonscalar-output[torch.autograd.grad-float32-cpu]": "torch-grad-from-paddle-nonscalar-raises",
    "derive-paddle-grad-unused-input[torch.autograd.grad-float32-cpu]": "torch-grad-from-paddle-unused-runtimeerror",
    "derive-paddle-grad-unused-input[mindspore.grad-float32-cpu]": "ms-grad-from-paddle-unused-zeros",
}


def test_every_derivation_case_runs_clean_on_the_backend(worker_pool):
    name, p = worker_pool
    reg = registry.load()
    loaded = load_paths([CASES])
    assert not loaded.errors
    cells = plan(loaded.cases, reg, backends={name}, device="cpu").cells
    assert cells
    runner = Runner(reg, p)
    recs = {c.id: runner.run(c) for c in cells}
    bad = {i: (r["status"], r["message"]) for i, r in recs.items()
           if r["status"] in ("mismatch", "error", "skipped")}
    assert not bad
    for cid, diff in EXPECTED_KNOWN.items():
        if cid in recs:
            assert (recs[cid]["status"], recs[cid]["difference"]) == ("known", diff), cid
    # every identity cell agrees with its own API's oracle; seed 003's table matches its numbers
    for r in recs.values():
        if r["api"] == r["source_api"]:
            assert r["status"] in ("match", "unsupported"), (r["id"], r["message"])
    if name == "mindspore":
        seed = recs["seed-003-value-and-grad[mindspore.value_and_grad-float32-cpu]"]
        assert seed["status"] == "match" and "value logits" in seed["params"]
    if name == "paddle":
        assert recs["derive-torch-grad-inputs-weights[paddle.grad-float16-cpu]"]["status"] == "unsupported"


GRAD_API = {  # backend -> (api, args for "every name, the sum of both outputs")
    "torch": ("torch.autograd.grad", {"outputs": ["loss", "aux"], "inputs": ["x", "s", "t", "W", "b", "M"],
                                      "allow_unused": False}),
    "mindspore": ("mindspore.grad", {"grad_position": [0, 1, 2], "weights": ["W", "b", "M"], "has_aux": False}),
    "paddle": ("paddle.grad", {"outputs": ["loss", "aux"], "inputs": ["x", "s", "t", "W", "b", "M"],
                               "allow_unused": False}),
}


def test_every_op_of_the_vocabulary_agrees_with_the_oracle(worker_pool):
    """Broadcasting add, constants on either side, pow, matmul, linear with bias, tanh, squeeze,
    mse against a broadcast target, mean and sum: each framework's op against the oracle's."""
    from test_derivation_oracle import every_op

    name, p = worker_pool
    fn = every_op(np.random.default_rng(3))
    api, args = GRAD_API[name]
    job = {"kind": "derivation", "api": api, "args": args, "dtype": "float64", "device": "cpu",
           "repeat": 1, "function": fn}
    got = p.get(name, "cpu").call(job, timeout=120)
    assert got["raised"] is None, got["raised"]
    grads, _, _ = d.gradients(fn, ["loss", "aux"], ["x", "s", "t", "W", "b", "M"])
    for n, g in grads.items():
        np.testing.assert_allclose(got["grads"][n], g, rtol=1e-10, atol=1e-12, err_msg=f"{api} {n}")
