"""Paddle's compiled mode (docs/modes.md, conformance/frameworks/paddle/compiled.py), driven
through a real worker subprocess (paddle is never imported here): the clip inside
``paddle.jit.to_static(full_graph=True)`` and the ``*.via_sgd`` step as a static Program give the
oracle's numbers, Paddle's refusals come back as Paddle's own errors, a run that would be eager
is ``NotCompiled``, and compiled cells' reproduction snippets show and reproduce the compiled
call.

Skipped unless a Paddle interpreter is available (as tests/test_backend_paddle.py:
$CONFORMANCE_PADDLE_PYTHON, this interpreter, .tox/paddle, .venv-paddle).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conformance import frameworks, registry
from conformance.kinds.clipping import oracle
from conformance.plan import plan
from conformance.runner import Runner
from conformance.spec.load import load_paths
from conformance.worker import WorkerPool

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_paddle_compiled_{name}", ROOT / "tests" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_backend = _load("test_backend_paddle")  # its interpreter lookup
_repro = _load("test_repro_snippets")  # its snippet runner and checks
PYTHON = _backend.PYTHON
pytestmark = [pytest.mark.framework, pytest.mark.skipif(PYTHON is None, reason="no interpreter with paddle (set CONFORMANCE_PADDLE_PYTHON)")]

W, B = _backend.W, _backend.B  # seed 000's gradients
worker = _backend.worker  # the same module-scoped Paddle worker fixture


def _job(api, args, grads, dtype="float32", mode="compiled"):
    np_dtype = np.float64 if dtype == "float64" else np.float32
    params = [{"name": n, "shape": list(np.shape(g)) if g is not None else [1],
               "grad": None if g is None else np.asarray(g, dtype=np_dtype)} for n, g in grads.items()]
    return {"kind": "clipping", "api": api, "args": args, "dtype": dtype, "device": "cpu",
            "mode": mode, "params": params}


@pytest.mark.parametrize("api", ["paddle.nn.ClipGradByGlobalNorm", "paddle.nn.ClipGradByGlobalNorm.via_sgd"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compiled_global_norm_gives_the_oracle_numbers(worker, api, dtype):
    grads = {"weight": W, "bias": B, "frozen": None}
    got = worker.call(_job(api, {"clip_norm": 0.5}, grads, dtype), timeout=300)
    assert got["raised"] is None, got["raised"]
    want = oracle.clip_grad_norm([W, B], 0.5, eps=0.0, threshold="max_div")
    rtol = 1e-12 if dtype == "float64" else 1e-6  # a few roundings of the dtype against the float64 oracle
    np.testing.assert_allclose(got["grads"]["weight"], want.grads[0], rtol=rtol)
    np.testing.assert_allclose(got["grads"]["bias"], want.grads[1], rtol=rtol)
    assert got["grads"]["frozen"] is None
    # really clipped: the total norm 0.8154753 was brought down to 0.5
    assert np.sqrt(np.sum(got["grads"]["weight"] ** 2) + np.sum(got["grads"]["bias"] ** 2)) == pytest.approx(0.5)


@pytest.mark.parametrize("api", ["paddle.nn.ClipGradByNorm", "paddle.nn.ClipGradByNorm.via_sgd"])
def test_compiled_by_norm_clips_each_tensor(worker, api):
    grads = {"a": [3.0, 4.0], "b": [0.3, 0.4]}  # norms 5 and 0.5: only "a" is clipped to 1
    got = worker.call(_job(api, {"clip_norm": 1.0}, grads), timeout=300)
    assert got["raised"] is None, got["raised"]
    np.testing.assert_allclose(got["grads"]["a"], [0.6, 0.8], rtol=1e-6)
    np.testing.assert_allclose(got["grads"]["b"], [0.3, 0.4], rtol=1e-6)


def test_compiled_refusals_are_paddles_own_errors(worker):
    got = worker.call(_job("paddle.nn.utils.clip_grad_norm_", {"max_norm": 1.0}, {"w": [3.0, 4.0]}), timeout=300)
    assert got["raised"]["type"] == "RuntimeError"
    assert "this API can only run in dynamic mode" in got["raised"]["message"]
    got = worker.call(_job("paddle.nn.ClipGradByValue", {"max": 1.0, "min": -1.0}, {"w": [3.0, 4.0]}), timeout=300)
    assert got["raised"]["type"] == "NotImplementedError" and "_pir_clip" in got["raised"]["message"]
    got = worker.call(_job("paddle.nn.ClipGradByNorm", {"clip_norm": 1.0}, {"w": [3.0, 4.0]}, "float64"), timeout=300)
    assert got["raised"]["type"] == "TypeError"
    assert "Check data type error for op: clip_by_norm" in got["raised"]["message"]
    # the same jobs run eagerly: the first clips, the second is eager's own ClipGradByValue
    eager = worker.call(_job("paddle.nn.ClipGradByValue", {"max": 1.0, "min": -1.0}, {"w": [3.0, 4.0]},
                             mode="eager"), timeout=300)
    np.testing.assert_allclose(eager["grads"]["w"], [1.0, 1.0])


def test_compiled_without_any_gradient_is_not_compiled(worker):
    for api in ("paddle.nn.ClipGradByGlobalNorm", "paddle.nn.ClipGradByGlobalNorm.via_sgd"):
        got = worker.call(_job(api, {"clip_norm": 1.0}, {"w": None}), timeout=300)
        assert got["raised"]["type"] == "NotCompiled" and "nothing was compiled" in got["raised"]["message"]


def _in_paddle(tmp_path, code: str) -> subprocess.CompletedProcess:
    """``code`` as a script file (to_static reads its functions' source) in the paddle interpreter."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([PYTHON, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_dygraph_fallback_is_not_compiled(tmp_path):
    """With to_static switched off the converted function would run its Python eagerly (Paddle
    only warns): compiled.to_static raises NotCompiled; switched back on, the same call compiles."""
    r = _in_paddle(tmp_path, """
        import paddle
        from conformance.frameworks.paddle import compiled
        p = paddle.create_parameter([2], "float32", default_initializer=paddle.nn.initializer.Constant(0.0))
        clip = paddle.nn.ClipGradByGlobalNorm(1.0)
        def clip_step(grads):
            pairs = []
            for q, g in zip([p], grads):
                pairs.append((q, g))
            return [g for _, g in clip(pairs)]
        grads = [paddle.to_tensor([3.0, 4.0])]
        paddle.jit.enable_to_static(False)
        try:
            compiled.to_static("fallback", clip_step, grads)
            print("NO-RAISE")
        except compiled.NotCompiled as e:
            print("NOT-COMPILED", e)
        paddle.jit.enable_to_static(True)
        print("COMPILED", compiled.to_static("fallback", clip_step, grads)[0].numpy().tolist())
    """)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "NO-RAISE" not in r.stdout
    assert "NOT-COMPILED" in r.stdout and "ran in dygraph" in r.stdout, r.stdout
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("COMPILED"))
    np.testing.assert_allclose(json.loads(line.split(" ", 1)[1]), [0.6, 0.8], rtol=1e-6)


def test_an_empty_program_is_not_compiled(tmp_path):
    r = _in_paddle(tmp_path, """
        import paddle
        from conformance.frameworks.paddle import compiled
        def same(grads):
            return grads
        try:
            compiled.to_static("same", same, [paddle.to_tensor([3.0, 4.0])])
            print("NO-RAISE")
        except compiled.NotCompiled as e:
            print("NOT-COMPILED", e)
    """)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "NOT-COMPILED" in r.stdout and "no operation" in r.stdout, r.stdout


# ---- compiled cells of the bundled cases, their snippets ------------------------------------

SAMPLE = [
    ("seeds/seed-000-injected.yaml", "ClipGradByGlobalNorm and not via_sgd and compiled"),
    ("seeds/seed-000-injected.yaml", "ClipGradByNorm.via_sgd and compiled"),
    ("models/matrix-models.yaml", "mx-model-mlp-tanh-ce-b4 and ClipGradByGlobalNorm.via_sgd and 3.0 and compiled"),
    ("matrix/norm-structure.yaml", "mx-struct-zero-dim and ClipGradByNorm and float32 and not via_sgd and compiled"),
    ("matrix/norm-structure.yaml", "mx-struct-mixed-dtypes-f64 and float32 and ClipGradByGlobalNorm.via_sgd and compiled"),
    ("seeds/seed-001-clip-grad-value.yaml", "paddle.nn.utils.clip_grad_value_ and compiled"),  # raises
]


def test_compiled_cells_pass_and_their_snippets_reproduce_them(tmp_path):
    reg = registry.load()
    cells = []
    for path, keyword in SAMPLE:
        loaded = load_paths([ROOT / "cases" / path])
        assert not loaded.errors, loaded.errors
        found = plan(loaded.cases, reg, backends={"paddle"}, device="cpu", keyword=keyword, mode="compiled").cells
        assert found, f"{path}: no compiled paddle cell matches {keyword!r}"
        cells.append(found[0])
    pool = WorkerPool({"paddle": frameworks.workers()["paddle"]}, {"paddle": PYTHON})
    recorder = _repro._Recorder(pool)
    paths = []
    try:
        runner = Runner(reg, recorder)
        for i, cell in enumerate(cells):
            rec = runner.run(cell)
            assert rec["mode"] == "compiled"
            assert rec["status"] in ("match", "known", "unsupported"), (cell.id, rec["status"], rec.get("message"))
            text = cell.kind.prepare(runner, cell).snippet()
            assert "paddle.jit.to_static(" in text or "paddle.static.Program()" in text, text
            path = tmp_path / f"snippet_{i:02d}.py"
            path.write_text(text)
            paths.append(path.name)
    finally:
        pool.close()
    assert {recorder.got[c.id]["raised"] is None for c in cells} == {True, False}  # both kinds
    (tmp_path / "run_snippets.py").write_text(_repro.RUNNER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([PYTHON, "run_snippets.py", *paths], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    outs = [json.loads(line[len("SNIPPET-RESULT "):]) for line in r.stdout.splitlines()
            if line.startswith("SNIPPET-RESULT ")]
    assert [o["path"] for o in outs] == paths, r.stderr[-3000:]
    failures = [f"{cell.id} ({path}): {problem}" for cell, path, out in zip(cells, paths, outs)
                for problem in _repro._check(cell, recorder.got[cell.id], out)]
    assert not failures, "\n".join(failures)
