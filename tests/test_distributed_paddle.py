"""Paddle's distributed clipping on real gloo rank groups (issue 15, docs/distributed.md), where
Paddle is installed: the sharded L2 norm that sums the shards' norms (the declared
``paddle-distributed-clip-grad-norm-sums-shard-norms``), ClipGradByGlobalNorm reducing the
global norm right, an empty shard raising on its rank in seconds, and the reproduction snippet
run as a script."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from conformance.frameworks import ranks
from conftest import distributed_cell, run_rank_snippet

pytestmark = pytest.mark.framework  # runs in the framework envs (tests/framework_mark.py)

pytest.importorskip("paddle")
from conformance.frameworks.paddle import distributed  # noqa: E402  (after the skip: imports paddle)

NORM = "paddle.nn.utils.clip_grad_norm_.distributed"
GLOBAL = "paddle.nn.ClipGradByGlobalNorm.distributed"


@pytest.fixture(autouse=True, scope="module")
def _close_rank_groups():
    yield
    ranks.close_all()


def _prepared(case: str, *parts: str):
    return distributed_cell("paddle", case, *parts)


def _returned(out: dict) -> list:
    assert out["raised"] is None, out["raised"]
    return [r["returned"] for r in out["ranks"]]


def test_sharded_l2_norm_sums_the_shards_norms():
    cell, prepared = _prepared("dist-sharded-norm-types", NORM, "float64", "norm_type=2.0")
    summed = prepared.hooks.oracle({"shard_norms": "summed"})
    got = _returned(distributed.run(prepared.job))
    assert got[0] == got[1]
    assert math.isclose(got[0], summed.total_norm, rel_tol=1e-12), (got, summed.total_norm)
    assert got[0] > prepared.want.total_norm * 1.2  # the true norm is much smaller (measured 1.29x)


def test_sharded_l1_and_inf_norms_are_the_one_process_ones():
    for p in ("norm_type=1.0", "norm_type=inf"):
        cell, prepared = _prepared("dist-sharded-norm-types", NORM, "float64", p)
        got = _returned(distributed.run(prepared.job))
        assert math.isclose(got[0], prepared.want.total_norm, rel_tol=1e-12) and got[0] == got[1]


def test_clip_grad_by_global_norm_reduces_the_global_norm_across_ranks():
    cell, prepared = _prepared("dist-sharded-norm-types", GLOBAL, "float64", "norm_type=2.0")
    out = distributed.run(prepared.job)
    assert out["raised"] is None
    want = prepared.hooks.oracle({"threshold": "max_div", "eps": 0.0})  # no epsilon, as in one process
    for r, rank in enumerate(out["ranks"]):
        g, offset = rank["grads"]["a"], rank["offsets"]["a"]
        np.testing.assert_allclose(g, want.grads[0][offset:offset + g.shape[0]], rtol=1e-12, atol=0)
        assert rank["returned"] is None


def test_an_empty_shard_raises_on_its_rank_in_seconds():
    cell, prepared = _prepared("dist-empty-shard", NORM, "norm_type=2.0")
    start = time.monotonic()
    out = distributed.run(prepared.job)
    assert time.monotonic() - start < ranks.CELL_LIMIT
    assert out["raised"]["message"].startswith("rank 1: setting up the shards: (PreconditionNotMet) Tensor holds no memory")
    assert "pending" in out["ranks"][0]  # killed after the grace, or exited on its own after the raise
    ok = _prepared("dist-sharded-norm-types", NORM, "float64", "norm_type=1.0")[1]
    assert distributed.run(ok.job)["raised"] is None  # a fresh group


def test_the_snippet_runs_as_a_script_and_prints_every_rank(tmp_path):
    run_rank_snippet(_prepared("dist-sharded-split-dim-1", NORM, "norm_type=inf")[1], tmp_path)
