"""Training-step cells end to end: real workers, oracle.training, classification.

torch runs here when installed; MindSpore and Paddle through their own interpreters
(``conformance.frameworks.default_python``: $CONFORMANCE_<NAME>_PYTHON ...), else those tests skip.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from conformance import frameworks, registry
from conformance.plan import plan
from conformance.runner import Runner
from conformance.worker import WorkerPool
from conformance.spec.load import load_paths

pytestmark = pytest.mark.framework  # runs in the framework envs (tests/framework_mark.py)

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "cases" / "training"


def _cells(reg, backend: str, keyword=None):
    loaded = load_paths([CASES])
    assert not loaded.errors
    p = plan(loaded.cases, reg, backends={backend}, device="cpu", keyword=keyword)
    assert not p.errors
    return p.cells


@pytest.mark.skipif(not frameworks.installed_here("torch"), reason="torch is not installed here")
def test_torch_training_cells_match_and_the_overflow_step_is_skipped(pool):
    reg = registry.load()
    runner = Runner(reg, pool)
    cells = _cells(reg, "torch")
    assert len(cells) >= 10
    recs = {c.id: runner.run(c) for c in cells}
    bad = [(i, r["status"], r["message"]) for i, r in recs.items() if r["status"] != "match"]
    assert not bad
    over = next(c for c in cells if c.case.id == "train-scaler-overflow-skipped")
    want = over.kind.prepare(runner, over).want.outputs
    assert want["skipped"].tolist() == [0.0, 1.0, 0.0]  # torch matched this, skip included
    assert want["scale"].tolist() == [2.0 ** 120, 2.0 ** 119, 2.0 ** 119]
    assert "param:0.weight" in recs[over.id]["params"] and "scale" in recs[over.id]["params"]


@pytest.mark.skipif(not frameworks.installed_here("torch"), reason="torch is not installed here")
def test_torch_gradscaler_refuses_float16_and_that_is_declared_unsupported(pool, tmp_path):
    text = (CASES / "train-scaler-fp16.yaml").read_text()
    text = "\n".join(line for line in text.splitlines() if not line.startswith("targets:"))
    (tmp_path / "fp16.yaml").write_text(text)
    loaded = load_paths([tmp_path])
    reg = registry.load()
    (cell,) = plan(loaded.cases, reg, backends={"torch"}, device="cpu").cells
    rec = Runner(reg, pool).run(cell)
    assert rec["status"] == "unsupported"
    assert "ValueError: Attempting to unscale FP16 gradients." in rec["message"]


def _python(name):
    python = frameworks.default_python(name)
    if python:
        return python
    venv = ROOT / f".venv-{name}" / "bin" / "python"
    return str(venv) if venv.exists() else None


def _run(name, reg, keyword=None):
    python = _python(name)
    if python is None:
        pytest.skip(f"no interpreter with {name} (set CONFORMANCE_{name.upper()}_PYTHON)")
    pool = WorkerPool(frameworks.workers(), {name: python})
    try:
        runner = Runner(reg, pool)
        return {c.id: runner.run(c) for c in _cells(reg, name, keyword)}
    finally:
        pool.close()



def test_paddle_training_cells():
    recs = _run("paddle", registry.load())
    assert all(r["status"] in ("match", "known", "unsupported") for r in recs.values()), recs
    s = {i: (r["status"], r["difference"]) for i, r in recs.items()}
    scaler = {i: v for i, v in s.items() if "GradScaler" in i and "float16" not in i}
    assert scaler and set(scaler.values()) == {("known", "paddle-gradscaler-disabled-on-cpu")}
    assert s["train-sgd-groups[paddle.optimizer.SGD-float32-cpu]"] == ("known", "paddle-sgd-group-lr-multiplies")
    assert s["train-accumulate-4[paddle.optimizer.SGD-float64-cpu]"] == ("match", None)
    assert s["train-accumulate-4[paddle.optimizer.SGD.grad_clip-float32-cpu]"] == ("match", None)
    assert s["train-sgd-two-groups-clip[paddle.optimizer.SGD.grad_clip-float64-cpu]"] == (
        "known", "paddle-grad-clip-per-group")
    assert s["train-sgd-two-groups-clip[paddle.optimizer.SGD-float64-cpu]"] == ("match", None)
    assert s["train-scaler-fp16[paddle.amp.GradScaler-float16-cpu]"][0] == "unsupported"
    assert "not compared: grad" in recs["train-accumulate-4[paddle.optimizer.SGD.grad_clip-float32-cpu]"]["message"]


def test_mindspore_training_cells():
    recs = _run("mindspore", registry.load())
    s = {i: (r["status"], r["difference"]) for i, r in recs.items()}
    assert all(st in ("match", "known", "unsupported") for st, _ in s.values()), recs
    assert s["train-scaler-overflow-skipped[mindspore.amp.DynamicLossScaler-float32-cpu]"] == ("match", None)
    assert s["train-scaler-overflow-skipped[mindspore.amp.StaticLossScaler-float32-cpu]"] == ("known", "ms-static-scaler-fixed")
    assert s["train-scaler-dynamic-update[mindspore.amp.DynamicLossScaler-float32-cpu-growth_factor=2.0]"] == ("match", None)
    assert s["train-scaler-dynamic-update[mindspore.amp.DynamicLossScaler-float32-cpu-growth_factor=4.0]"] == (
        "known", "ms-dynamic-scaler-backoff-divides")
    assert s["train-sgd-groups[mindspore.nn.SGD-float32-cpu]"] == ("match", None)
    assert s["train-sgd-groups[mindspore.nn.SGD-float64-cpu]"][0] == "unsupported"


def test_without_the_declared_difference_the_paddle_group_cell_is_a_mismatch(tmp_path):
    d = tmp_path / "reg"
    d.mkdir()
    for i, path in enumerate(frameworks.registry_files()):  # every framework's files, in one folder
        shutil.copy(path, d / f"{i:02d}-{path.parent.parent.name}-{path.name}")
    paddle = d / next(p.name for p in d.iterdir() if p.name.endswith("-paddle-training.yaml"))
    data = yaml.safe_load(paddle.read_text())
    for m in data["mappings"]:
        m["differences"] = [x for x in m.get("differences", []) if x["id"] != "paddle-sgd-group-lr-multiplies"]
    paddle.write_text(yaml.safe_dump(data))
    recs = _run("paddle", registry.load(str(d)), keyword="train-sgd-groups and float32 and not grad_clip")
    (rec,) = recs.values()
    assert rec["status"] == "mismatch"
    assert "param:0.weight" in rec["message"]
