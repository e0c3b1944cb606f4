"""benchmarks/overhead.py without running a framework: the generated cases expand, by the
suite's planner, to exactly N cells of each backend's own two clipping APIs, in the documented
mix, and every bare script is valid Python that imports nothing of the suite."""

from __future__ import annotations

import ast
import importlib.util
from collections import Counter
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "overhead.py"


def _module():
    spec = importlib.util.spec_from_file_location("bench_overhead", PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


overhead = _module()


@pytest.mark.parametrize("backend", overhead.ORDER)
@pytest.mark.parametrize("n", [1, 2, 7, 33])
def test_cases_expand_to_exactly_n_cells_of_the_backend(tmp_path, backend, n):
    cells = overhead.write_cases(tmp_path, backend, n)
    assert len(cells) == n
    got = overhead.planned(tmp_path, backend)
    apis = {overhead.APIS[backend][w][0] for w in ("norm", "value")}
    assert sum(got.values()) == n
    assert {b for b, _, _ in got} == {backend} and {d for _, d, _ in got} == {"cpu"}
    assert {a for _, _, a in got} <= apis


def test_mix_counts_sum_to_n_and_follow_the_shares(tmp_path):
    for n in (1, 3, 500, 2000, 8001):
        counts = overhead.mix_counts(n)
        assert sum(counts) == n
        for c, entry in zip(counts, overhead.MIX):
            assert abs(c - n * entry[3]) < 1
    cells = overhead.write_cases(tmp_path, "jax", 2000)
    mix = Counter(("model" if c["model"] else "injected", c["which"]) for c in cells)
    assert mix == {("injected", "norm"): 1400, ("injected", "value"): 400,
                   ("model", "norm"): 100, ("model", "value"): 100}
    assert {c["dtype"] for c in cells} == set(overhead.DTYPES)


def test_bare_scripts_parse_and_use_no_suite_code():
    assert set(overhead.BARE) == set(overhead.ORDER) == set(overhead.APIS)
    for backend, source in overhead.BARE.items():
        tree = ast.parse(source, filename=f"bare_{backend}.py")
        imported = {a.name.split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, (ast.Import, ast.ImportFrom))
                    for a in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])}
        assert "conformance" not in imported, backend
        for which in ("norm", "value"):
            api = overhead.APIS[backend][which][0]
            assert api.rsplit(".", 1)[-1] in source, (backend, api)


def test_replay_backend_answers_in_order_and_raises_recorded_errors(tmp_path):
    """benchmarks/mainside.py's replayed worker: the n-th call gets the n-th recorded answer
    through the real worker protocol (shared parts included), a recorded error is a BackendError."""
    import numpy as np

    from conformance import wire
    from conformance.worker import BackendError, Worker

    grad = np.arange(6, dtype=np.float32).reshape(2, 3)
    answers = [{"result": {"grads": {"w": grad}, "returned": 1.5}}, {"error": ["ValueError", "boom"]},
               {"result": {"grads": {"w": grad * 2}, "returned": None}}]
    path = tmp_path / "torch.replay"
    path.write_bytes(wire.encode({"backend": "torch", "info": {"version": "9", "devices": {"cpu": None}},
                                  "answers": answers}))
    job = {"kind": "clipping", "params": [{"name": "w", "grad": grad}],
           wire.SHARE: {"key": "k", "fields": ["params"]}}
    with Worker("torch", "replay_backend", "cpu", paths=[str(PATH.parent)], env={"REPLAY_FILE": str(path)}) as w:
        assert w.hello["info"]["version"] == "9" and w.hello["backend"] == "torch"
        first = w.call(job, timeout=10, ahead=job)
        np.testing.assert_array_equal(first["grads"]["w"], grad)
        assert first["returned"] == 1.5
        with pytest.raises(BackendError, match="ValueError: boom"):
            w.call(job, timeout=10)
        np.testing.assert_array_equal(w.call(job, timeout=10)["grads"]["w"], grad * 2)
