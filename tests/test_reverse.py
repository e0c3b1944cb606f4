"""The reverse direction (issue 3): a MindSpore or Paddle API as the case's source, torch as the
target, through conformance.runner with the real torch worker. Skipped where torch is missing."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from conformance import frameworks, registry
from conformance.runner import Runner
from conftest import torch_cells

ROOT = Path(__file__).resolve().parents[1]
REVERSE = ROOT / "cases" / "reverse"

pytestmark = [pytest.mark.framework, pytest.mark.skipif(not frameworks.installed_here("torch"), reason="torch is not installed here")]


def _run(pool, path: Path, keyword=None) -> dict:
    reg = registry.load()
    cells = torch_cells([path], reg, keyword)
    assert cells
    runner = Runner(reg, pool)
    return {c.id: runner.run(c) for c in cells}


def test_mindspore_sourced_seed_case_on_torch_is_match_or_known_eps(pool):
    recs = _run(pool, REVERSE / "rev-ms-global-norm-seed000.yaml")
    by_dtype = {r["dtype"]: r for r in recs.values()}
    assert set(by_dtype) == {"float32", "float64"}
    for r in recs.values():
        assert r["source_api"] == "mindspore.ops.clip_by_global_norm"
        assert r["api"] == "torch.nn.utils.clip_grad_norm_"
        assert r["args"] == {"max_norm": 0.5}  # clip_norm translated into torch's terms
    # float32: torch's extra 1e-6 is inside the tolerance; the case's literal numbers hold
    assert by_dtype["float32"]["status"] == "match", by_dtype["float32"]["message"]
    # float64: the missing epsilon of the MindSpore source shows, and is explained by name
    f64 = by_dtype["float64"]
    assert f64["status"] == "known", f64["message"]
    assert f64["difference"] == "torch-from-ms-global-norm-eps"
    assert 1e-8 < f64["max_rel_err"] < 1e-5  # ~1e-6 / 0.8154753: a real, small difference
    assert f64["params"]["bias"] is not None
    # the source's oracle is MindSpore's own rule, the global L2 norm of the seed gradients
    assert f64["total_norm"]["want"] == pytest.approx(math.sqrt(0.665), rel=1e-12)


def test_mindspore_nan_source_is_known_on_torch(pool):
    recs = _run(pool, REVERSE / "rev-ms-nan.yaml")
    assert {r["status"] for r in recs.values()} == {"known"}
    assert {r["difference"] for r in recs.values()} == {"torch-from-ms-global-norm-nan-propagates"}


def test_per_tensor_sources_run_on_the_torch_composite(pool):
    recs = _run(pool, REVERSE / "rev-ms-clipbynorm-per-tensor.yaml",
                keyword="per_parameter")
    assert {r["api"] for r in recs.values()} == {"torch.nn.utils.clip_grad_norm_.per_parameter"}
    by_dtype = {r["dtype"]: r for r in recs.values()}
    assert by_dtype["float32"]["status"] == "match", by_dtype["float32"]["message"]
    assert by_dtype["float16"]["status"] == "match", by_dtype["float16"]["message"]
    assert by_dtype["float64"]["status"] == "known"
    assert by_dtype["float64"]["difference"] == "torch-from-ms-clipbynorm-eps"


def test_every_reverse_torch_cell_is_match_or_known(pool):
    """... or unsupported where torch's symmetric clip_grad_value_ cannot express the source's
    asymmetric bounds (declared: never compared)."""
    recs = _run(pool, REVERSE)
    inexpressible = [i for i, r in recs.items() if r["status"] == "unsupported"]
    bad = [(i, r["status"], r["message"]) for i, r in recs.items()
           if r["status"] not in ("match", "known") and not (
               r["status"] == "unsupported" and r["message"].startswith("asymmetric (or one-sided) bounds"))]
    assert not bad
    assert any(r["status"] == "known" for r in recs.values())
    assert inexpressible and all("clip_grad_value_" in i for i in inexpressible)
