"""The copy-paste reproduction snippets reproduce their cells, on each framework.

For a sample of real cells of the bundled cases (injected gradients, models, reverse-direction
cells with torch targets, ``.via_sgd`` targets, derivation and training cells), the cell is run
through the real runner (planner, worker, classification) and its snippet is taken from the
runner's own code path. Every snippet then runs as a user's paste would: in a fresh interpreter
with only that framework and numpy, from an empty temporary directory, without PYTHONPATH and
with ``import conformance`` made impossible. Each snippet leaves ``result`` (float64 numpy, torch's
layout; see ``conformance/snippets.py``), which must equal what the worker returned for the cell, and a
snippet of a cell whose API raised must raise the same exception type.

The snippets of one framework run in one subprocess (one import of the framework), and one of
them once more on its own as ``python snippet.py``. Interpreters: with ``--backend`` the ones it
names (others are skipped); else ``conformance.frameworks.default_python`` or the project's
``.venv-<name>``, skipped with the reason when there is none (the unit env).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conformance import frameworks, registry
from conformance.plan import plan
from conformance.runner import Runner
from conformance.worker import WorkerPool
from conformance.spec.load import load_paths

pytestmark = pytest.mark.framework  # runs in the framework envs (tests/framework_mark.py)

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "cases"

# backend -> (case file, cell keyword in pytest -k syntax): the first cell matching is taken
SAMPLE = {
    "torch": [
        ("seeds/seed-000-injected.yaml", "clip_grad_norm_"),
        ("seeds/seed-000-clip-grad-norm.yaml", "clip_grad_norm_"),  # model: linear, cross-entropy
        ("models/matrix-models.yaml", "mx-model-conv-ce-b1"),
        ("models/matrix-models.yaml", "mx-model-embedding-mse-b4"),
        ("reverse/rev-ms-clipbynorm-per-tensor.yaml", "per_parameter and float16"),  # known
        ("reverse/rev-ms-clip-by-value.yaml", "torch.clamp and float16"),  # known
        ("reverse/rev-ms-clip-by-norm-nan.yaml", "clip_grad_norm_"),  # known: NaN norm
        ("sweeps/total-norm.yaml", "get_total_norm and float64"),  # returns the norm
        ("sweeps/clip-grads-with-norm.yaml", "float64"),
        ("matrix/norm-structure.yaml", "mx-struct-empty and float32"),  # shapes (0,) and (0, 10)
        ("matrix/norm-structure.yaml", "mx-struct-zero-dim and bfloat16"),
        ("matrix/norm-structure.yaml", "mx-struct-no-grad and float16"),  # parameters without grad
        ("matrix/norm-structure.yaml", "mx-struct-mixed-dtypes-f64 and float32"),
        ("matrix/norm-structure.yaml", "mx-struct-many-shapes and float32 and 2.0"),
        ("matrix/norm-nonfinite.yaml", "mx-norm-one-nan and float32 and True and 2.0"),  # raises
        ("matrix/norm-thresholds.yaml", "clip_grads_with_norm_ and float32 and inf"),  # total_norm=inf
        ("derivation/torch-grad.yaml", "torch.autograd.grad"),
        ("derivation/ms-grad.yaml", "derive-ms-value-and-grad-no-aux and grad_and_value"),  # raises
        ("derivation/seed-003-has-aux.yaml", "grad_and_value"),
        ("derivation/torch-backward.yaml", "torch.Tensor.backward"),
        ("training/train-sgd-groups.yaml", "float32"),
        ("training/train-scaler-overflow-skipped.yaml", "float32"),
        # a 784x32 layer: weights as their generator expression, not a 700 KB literal
        ("peers/paddle-gradient-clip.yaml", "peer-paddle-gradient-clip-static-globalnorm and not fp64 and float32 and clip_grad_norm_"),
    ],
    "paddle": [
        ("seeds/seed-000-injected.yaml", "ClipGradByGlobalNorm and not via_sgd"),
        ("seeds/seed-000-injected.yaml", "ClipGradByNorm.via_sgd"),
        ("seeds/seed-000-injected.yaml", "paddle.nn.utils.clip_grad_norm_"),  # returns the norm
        ("seeds/seed-001-clip-grad-value.yaml", "paddle"),
        ("models/matrix-models.yaml", "mx-model-mlp-tanh-ce-b4 and ClipGradByGlobalNorm.via_sgd and 3.0"),
        ("models/matrix-models.yaml", "mx-model-conv-ce-b1 and ClipGradByNorm and not via_sgd"),
        ("models/matrix-models.yaml", "mx-model-embedding-ce-b2 and clip_grad_norm_"),
        ("paddle/paddle-nonfinite-nan.yaml", "ClipGradByGlobalNorm"),
        ("matrix/norm-structure.yaml", "mx-struct-zero-dim and ClipGradByNorm and float32"),
        ("matrix/norm-structure.yaml", "mx-struct-no-grad and ClipGradByGlobalNorm.via_sgd and float64"),
        ("matrix/norm-structure.yaml", "mx-struct-mixed-dtypes-f64 and float32 and ClipGradByGlobalNorm"),
        ("matrix/norm-structure.yaml", "mx-struct-many-shapes and float32 and clip_grad_norm_ and 2.0"),
        ("derivation/paddle-grad.yaml", "paddle.grad"),
        ("derivation/torch-backward.yaml", "paddle.Tensor.backward"),
        ("derivation/torch-grad.yaml", "derive-torch-grad-unused-input and paddle.grad"),  # raises
        ("training/train-sgd-groups.yaml", "float32 and not grad_clip"),
        ("training/train-sgd-two-groups-clip.yaml", "float64 and grad_clip"),
        ("peers/paddle-gradient-clip.yaml", "peer-paddle-gradient-clip-static-globalnorm and not fp64 and float32 and ClipGradByGlobalNorm and not via_sgd"),
    ],
    "mindspore": [
        ("seeds/seed-000-injected.yaml", "clip_by_global_norm and not via_sgd"),
        ("seeds/seed-000-injected.yaml", "clip_by_global_norm.via_sgd"),
        ("seeds/seed-000-injected.yaml", "ClipByNorm"),
        ("seeds/seed-000-clip-grad-norm.yaml", "clip_by_norm"),  # model
        ("seeds/seed-001-clip-grad-value.yaml", "clip_by_value"),
        ("mindspore/ms-vector-norm-root.yaml", "vector_norm"),  # returns the norm
        ("mindspore/ms-model-conv.yaml", "mindspore"),
        ("matrix/norm-thresholds.yaml", "mx-threshold-inf and ClipByNorm and float32"),  # clip_norm=inf
        ("matrix/norm-structure.yaml", "mx-struct-zero-dim and clip_by_global_norm and float32"),  # 0-d -> [1]
        ("matrix/norm-structure.yaml", "mx-struct-one-tensor and clip_by_norm and float32"),  # one tensor
        ("matrix/norm-structure.yaml", "mx-struct-no-grad and clip_by_norm.via_sgd and float32"),
        ("matrix/norm-structure.yaml", "mx-struct-many-shapes and float16 and clip_by_global_norm"),
        ("models/matrix-models.yaml", "mx-model-embedding-mse-b4 and clip_by_global_norm"),
        ("mindspore/ms-norm-type-zero.yaml", "clip_by_norm and not via_sgd"),  # raises ZeroDivisionError
        ("derivation/ms-grad.yaml", "mindspore.grad"),
        ("derivation/seed-003-grad-table.yaml", "mindspore.grad"),
        ("derivation/seed-003-has-aux.yaml", "mindspore.value_and_grad"),
        ("training/train-scaler-dynamic-update.yaml", "DynamicLossScaler and 4.0"),
        ("training/train-accumulate-4.yaml", "float32"),
        ("peers/paddle-gradient-clip.yaml", "peer-paddle-gradient-clip-static-globalnorm and not fp64 and float32 and clip_by_global_norm and not via_sgd"),
    ],
    "tensorflow": [
        ("seeds/seed-000-injected.yaml", "tf.clip_by_global_norm and float32 and not compiled"),  # returns the norm
        ("seeds/seed-000-injected.yaml", "tf.clip_by_global_norm and float64 and compiled"),  # tf.function
        ("seeds/seed-000-clip-grad-norm.yaml", "SGD.global_clipnorm and compiled"),  # model, Keras step
        ("seeds/seed-001-clip-grad-value.yaml", "tf.clip_by_value and compiled"),
        ("tensorflow/keras-optimizer-test.yaml", "keras-test-clip-norm and not compiled"),
        ("models/matrix-models.yaml", "mx-model-mlp-relu-mse-b3 and tf.clip_by_global_norm and float32 and 1.0"),
        ("matrix/norm-structure.yaml", "mx-struct-no-grad and tf.clip_by_global_norm and float32 and compiled"),
        ("derivation/torch-grad.yaml", "derive-torch-grad-inputs-weights and float64"),  # GradientTape
        ("peers/paddle-gradient-clip.yaml", "peer-paddle-gradient-clip-static-globalnorm and not fp64 and float32 and tf.clip_by_global_norm and not compiled"),
    ],
    "jax": [
        ("seeds/seed-000-injected.yaml", "optax.clip_by_global_norm and float32 and not via_sgd and not compiled"),
        ("seeds/seed-000-injected.yaml", "optax.clip_by_global_norm.via_sgd and float64 and compiled"),  # jax.jit
        ("seeds/seed-000-clip-grad-norm.yaml", "optax.clip_by_global_norm and compiled"),  # model
        ("seeds/seed-001-clip-grad-value.yaml", "optax.clip and not compiled"),
        ("jax/optax-tree-norm-test.yaml", "optax-test-tree-norm-tree-b-dict-inf and float64 and compiled"),  # returns the norm
        ("matrix/norm-structure.yaml", "mx-struct-no-grad and optax.clip_by_global_norm and float32 and not compiled"),
        ("derivation/torch-grad.yaml", "derive-torch-grad-inputs-weights and float64"),  # jax.grad
        ("derivation/torch-grad.yaml", "derive-torch-grad-nonscalar-output and jax.grad"),  # raises
        ("peers/paddle-gradient-clip.yaml", "peer-paddle-gradient-clip-static-globalnorm and not fp64 and float32 and optax.clip_by_global_norm and not via_sgd and not compiled"),
    ],
}
# cells of both modes are planned: a keyword with "compiled" takes a compiled cell
#: backends without a bundled cell that raises and is still compared: every TensorFlow refusal
#: in the bundled cases is a declared gap (unsupported), which a sample cannot be
NOTHING_RAISES = {"tensorflow"}

# run by the subprocess: every snippet in its own namespace, the suite made unimportable
RUNNER = r'''
import json, runpy, sys, traceback
sys.modules["conformance"] = None  # a user's Python does not have the suite

def plain(v):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    import numpy as np
    a = np.asarray(v)
    if a.dtype != np.float64:
        raise TypeError(f"result holds {type(v).__name__} of dtype {a.dtype}, not float64 numpy")
    return {"shape": list(a.shape), "data": a.reshape(-1).tolist()}

for path in sys.argv[1:]:
    try:
        ns = runpy.run_path(path, run_name="__main__")
        out = {"result": plain(ns["result"])}
    except BaseException as e:
        out = {"raised": type(e).__name__, "message": str(e)[-500:], "traceback": traceback.format_exc()[-3000:]}
    print("SNIPPET-RESULT " + json.dumps({"path": path, **out}), flush=True)
'''


def _python(request, name):
    """(interpreter, None) or (None, why it is skipped)."""
    state = request.config._conformance
    if request.config.getoption("conformance_backend"):
        if name in state.pythons:
            return state.pythons[name], None
        return None, f"{name} is not selected with --backend"
    package = frameworks.discover()[name].package
    for python in (frameworks.default_python(name), ROOT / f".venv-{name}" / "bin" / "python"):
        if python and (python == sys.executable or frameworks._importable_by(str(python), package)):
            return str(python), None
    return None, (f"no interpreter with {name} (CONFORMANCE_{name.upper()}_PYTHON, this interpreter, "
                  f".tox/{name} or .venv-{name})")


class _Recorder:
    """The worker pool, remembering what each cell's worker call returned (by cell id)."""

    def __init__(self, pool):
        self.pool, self.modules, self.got = pool, pool.modules, {}

    def hello(self, backend, device):
        return self.pool.hello(backend, device)

    def get(self, backend, device, lane=""):
        worker, got = self.pool.get(backend, device, lane), self.got

        class Call:
            def call(self, job, timeout, label="", ahead=None):
                got[label] = worker.call(job, timeout=timeout, label=label)
                return got[label]
        return Call()


def _cells(backend):
    reg = registry.load()
    out = []
    for path, keyword in SAMPLE[backend]:
        loaded = load_paths([CASES / path])
        assert not loaded.errors, loaded.errors
        cells = plan(loaded.cases, reg, backends={backend}, device="cpu", keyword=keyword, mode="all").cells
        assert cells, f"{path}: no {backend} cell matches {keyword!r}"
        out.append(cells[0])
    return reg, out


def _snippet(runner, cell, rec) -> str:
    """The snippet the runner attaches to this cell (what its kind prepared)."""
    text = cell.kind.prepare(runner, cell).snippet()
    if rec.get("reproduce") is not None:  # the one attached to a known/mismatch/error record
        assert rec["reproduce"] == text
    return text


def _array(v):
    return None if v is None else np.asarray(v["data"], dtype=np.float64).reshape(v["shape"])


def _wanted(cell, got) -> dict:
    """What the worker returned for the cell, as the snippet's ``result`` holds it."""
    if cell.case.step is not None:
        return {"params": {k[len("param:"):]: v for k, v in got["outputs"].items() if k.startswith("param:")}}
    grads = {n: g for n, g in (got.get("grads") or {}).items() if g is not None}
    if cell.case.function is not None:
        return {"grads": grads, "values": got.get("values")}
    return {"grads": grads, "returned": got.get("returned")}


def _check(cell, got, out) -> list:
    """Problems of one snippet's outcome against the worker's result for its cell."""
    if got.get("raised"):
        want = got["raised"]["type"]
        if out.get("raised") != want:
            return [f"the worker raised {want}; the snippet " +
                    (f"raised {out['raised']}: {out['message']}" if "raised" in out else "returned")]
        return []
    if "raised" in out:
        return [f"the snippet raised {out['raised']}: {out['message']}\n{out['traceback']}"]
    res, want = out["result"], _wanted(cell, got)
    problems = []
    for part, expected in want.items():
        if part == "returned":
            if (expected is None) != (res.get("returned") is None) or (
                    expected is not None and not np.array_equal(expected, res["returned"], equal_nan=True)):
                problems.append(f"returned {res.get('returned')!r}, the worker {expected!r}")
            continue
        have = {k: _array(v) for k, v in (res.get(part) or {}).items() if v is not None}
        expected = expected or {}
        if set(have) != set(expected):
            problems.append(f"{part}: names {sorted(have)}, the worker's {sorted(expected)}")
            continue
        for name, a in expected.items():
            if have[name].shape != np.shape(a):
                problems.append(f"{part}[{name}]: shape {list(have[name].shape)}, the worker's {list(np.shape(a))}")
            elif not np.array_equal(have[name], a, equal_nan=True):
                diff = np.abs(have[name] - a)
                problems.append(f"{part}[{name}]: {int(np.sum(~(diff == 0)))} elements differ from the "
                                f"worker's (max abs diff {np.nanmax(diff)}); got {have[name].ravel()[:6]}, "
                                f"the worker {np.ravel(a)[:6]}")
    if not any(want[p] for p in want if p != "returned") and want.get("returned") is None:
        problems.append("nothing compared: the worker returned no numbers")
    return problems


@pytest.mark.parametrize("backend", list(SAMPLE))
def test_snippets_reproduce_their_cells(backend, request, tmp_path):
    python, why = _python(request, backend)
    if python is None:
        pytest.skip(why)
    reg, cells = _cells(backend)
    pool = WorkerPool({backend: frameworks.workers()[backend]}, {backend: python})
    recorder = _Recorder(pool)
    try:
        runner = Runner(reg, recorder)
        paths, statuses = [], {}
        for i, cell in enumerate(cells):
            rec = runner.run(cell)
            statuses[cell.id] = rec["status"]
            assert rec["status"] not in ("unsupported", "skipped", "error"), \
                f"sample cell {cell.id} is {rec['status']} ({rec['message']}): choose another"
            text = _snippet(runner, cell, rec)
            assert not re.search(r"^\s*(import|from)\s+conformance\b", text, re.M), text
            path = tmp_path / f"snippet_{i:02d}.py"
            path.write_text(text)
            paths.append(path.name)
    finally:
        pool.close()
    (tmp_path / "run_snippets.py").write_text(RUNNER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([python, "run_snippets.py", *paths], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    outs = [json.loads(line[len("SNIPPET-RESULT "):]) for line in r.stdout.splitlines()
            if line.startswith("SNIPPET-RESULT ")]
    assert [o["path"] for o in outs] == paths, r.stderr[-3000:]
    raised = [bool(recorder.got[c.id].get("raised")) for c in cells]
    assert (backend in NOTHING_RAISES or any(raised)) and not all(raised), \
        "the sample should hold cells that raise and cells that return"
    failures = []
    for cell, path, out in zip(cells, paths, outs):
        for problem in _check(cell, recorder.got[cell.id], out):
            failures.append(f"{cell.id} ({statuses[cell.id]}, {path}): {problem}")
    assert not failures, "\n".join(failures)

    # one snippet exactly as pasted: `python snippet.py` in a clean directory, no wrapper
    first = next(p for p, c in zip(paths, cells) if not recorder.got[c.id].get("raised"))
    r = subprocess.run([python, first], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "returned:" in r.stdout or "grad" in r.stdout, r.stdout[-2000:]
