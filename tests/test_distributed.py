"""The distributed kind (issue 15, docs/distributed.md): the `distributed:` block's checks, the
comparison of the ranks' shards with the oracle's slices, and, where torch is installed, the real
gloo rank groups: the bundled cases' verdicts, a rank that raises while its peer waits, a killed
rank and a hung one each ending one cell, and the reproduction snippet run as a script."""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conformance import registry
from conformance.frameworks import ranks
from conformance.kinds.distributed.oracle import chunk_bounds, clip_by_summed_shard_norms, shard
from conformance.plan import plan
from conformance.runner import Runner
from conformance.spec.load import load_paths, parse_text
from conftest import distributed_cell, run_rank_snippet

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "cases" / "distributed"

HEAD = "id: d\ntitle: d\nclip: {api: torch.nn.utils.clip_grad_norm_.distributed, args: {max_norm: 1.0}}\n"


def _errors(body: str) -> list:
    return [str(e) for e in parse_text(HEAD + body, "case.yaml").errors]


def test_the_block_names_the_file_line_and_field_of_each_problem():
    assert _errors("grads: {a: [[1.0, 2.0]]}\ndistributed: {world_size: 2, split: {b: 0}}\n") == [
        "case.yaml:5: distributed.split.b: no gradient 'b' in `grads:` (given: a)"]
    assert _errors("grads: {a: [1.0, 2.0]}\ndistributed:\n  split: {a: 1}\n") == [
        "case.yaml:6: distributed.split.a: a has 1 dimension(s): it cannot be split along dim 1"]
    assert _errors("grads: {a: 1.0}\ndistributed: {world_size: 2}\n") == [
        "case.yaml:4: grads.a: a has 0 dimension(s): it cannot be split along dim 0 (a 0-d gradient "
        "cannot be sharded: use `strategy: replicated`)"]
    assert _errors("grads: {a: [1.0]}\ndistributed: {world_size: 9}\n") == [
        "case.yaml:5: distributed.world_size: Input should be less than or equal to 8"]
    assert _errors("grads: {a: [1.0]}\ndistributed: {strategy: ddp}\n") == [
        "case.yaml:5: distributed.strategy: Input should be 'sharded' or 'replicated'"]
    assert _errors("grads: {a: [1.0]}\ndistributed: {strategy: replicated, split: {a: 0}}\n") == [
        "case.yaml:5: distributed.split: `split:` says how a `strategy: sharded` case cuts its "
        "gradients; a replicated one holds them whole"]


def test_no_grad_on_names_a_gradient_and_ranks_of_the_world():
    assert _errors("grads: {a: [1.0, 2.0]}\ndistributed: {no_grad_on: {c: [1]}}\n") == [
        "case.yaml:5: distributed.no_grad_on.c: no gradient 'c' in `grads:` to leave out"]
    assert _errors("grads: {a: [1.0, 2.0]}\ndistributed: {no_grad_on: {a: [2]}}\n") == [
        "case.yaml:5: distributed.no_grad_on.a: ranks [2] of a world of 2 (ranks 0 to 1)"]


def test_a_rank_without_a_gradient_counts_as_zeros_and_must_keep_none():
    cell, prepared = _prepared("dist-no-grad-on-rank-1")
    want = prepared.hooks.oracle(None)
    assert want.before[1].tolist() == [[3.0, 4.0, 5.0], [0.0, 0.0, 0.0]]  # rank 1's row of b: absent
    assert want.total_norm == 6.0  # max |a| = 6; the 8 was in rank 1's row
    got = _answers(cell, prepared, 2)
    got["ranks"][1]["grads"]["b"] = np.zeros((1, 3))
    assert "rank 1: b: gradient is set, expected None" in prepared.hooks.compare(want, got).problems
    got["ranks"][1]["grads"]["b"] = None
    assert prepared.hooks.compare(want, got).ok


def test_a_distributed_api_needs_a_distributed_case_and_back():
    res = parse_text(HEAD + "grads: {a: [1.0, 2.0]}\n", "case.yaml")
    assert not res.errors
    errs = [str(e) for e in plan(res.cases, registry.load()).errors]
    assert len(errs) == 1 and "is a distributed API: it needs `grads:`" in errs[0]


def test_chunk_bounds_are_torch_chunk_rows():
    assert chunk_bounds(4, 2) == [(0, 2), (2, 2)]
    assert chunk_bounds(1, 2) == [(0, 1), (1, 0)]
    assert chunk_bounds(7, 4) == [(0, 2), (2, 2), (4, 2), (6, 1)]
    assert chunk_bounds(5, 4) == [(0, 2), (2, 2), (4, 1), (5, 0)]  # the last rank holds none
    assert chunk_bounds(0, 2) == [(0, 0), (0, 0)]
    a = np.arange(12.0).reshape(3, 4)
    assert shard(a, 1, 2, 2).tolist() == [[2, 3], [6, 7], [10, 11]]


def test_summed_shard_norms_add_the_shards_norms():
    """Paddle's sharded L2 norm (oracle.clip_by_summed_shard_norms): a gradient whose two shards
    have norms 3 and 4 counts 7, not 5; L1 is exact either way; a replicated one counts whole."""
    a = np.array([[3.0, 0.0], [0.0, 4.0]])
    b = np.array([12.0])
    r = clip_by_summed_shard_norms([a, b], 1.0, 2.0, dims=[0, None], world_size=2)
    assert math.isclose(r.total_norm, math.hypot(7.0, 12.0), rel_tol=1e-15)  # not hypot(5, 12) = 13
    np.testing.assert_allclose(r.grads[0], a / (math.hypot(7.0, 12.0) + 1e-6), rtol=1e-15)
    one = clip_by_summed_shard_norms([a, b], 1.0, 1.0, dims=[0, None], world_size=2)
    assert one.total_norm == 19.0  # 3 + 4 + 12: the L1 norm, exact
    whole = clip_by_summed_shard_norms([a], 1.0, 2.0, dims=[None], world_size=2)
    assert math.isclose(whole.total_norm, 5.0, rel_tol=1e-15)
    bad = clip_by_summed_shard_norms([np.array([np.inf, 1.0])], 1.0, 2.0, True, dims=[0], world_size=2)
    assert bad.raises == "RuntimeError"


def _cells(*cases):
    """The torch cells of the bundled distributed cases (of ``cases`` only, where given)."""
    loaded = load_paths([str(CASES)])
    assert not loaded.errors
    p = plan(loaded.cases, registry.load(), backends={"torch"}, device="cpu")
    assert not p.errors
    return [c for c in p.cells if not cases or c.case.id in cases]


def _prepared(case: str, *parts: str):
    """The first torch cell of ``case`` whose id holds every one of ``parts``, prepared."""
    return distributed_cell("torch", case, *parts)


def _answers(cell, prepared, world: int) -> dict:
    """What a correct framework answers: each rank the oracle's chunk of every gradient."""
    want, names = prepared.want, [p["name"] for p in prepared.job["params"]]
    split = prepared.job["distributed"]["split"]
    answers = []
    for r in range(world):
        grads, offsets = {}, {}
        for n, g in zip(names, want.grads):
            if n in split and g is not None:
                offset, length = chunk_bounds(g.shape[split[n]], world)[r]
                grads[n], offsets[n] = shard(g, split[n], offset, length), offset
            else:
                grads[n] = g
        answers.append({"grads": grads, "offsets": offsets, "returned": want.total_norm, "raised": None})
    return {"ranks": answers, "raised": None}


def test_the_oracle_slices_agree_and_every_departure_is_named():
    cell, prepared = _prepared("dist-sharded-world-4-uneven", "norm_type=2.0")
    assert prepared.job["distributed"] == {"world_size": 4, "strategy": "sharded", "split": {"a": 0, "b": 0},
                                           "no_grad_on": {}, "start_limit": cell.kind.start_time}
    got = _answers(cell, prepared, 4)
    assert prepared.hooks.compare(prepared.want, got).ok
    # rank 2 says its shard of `a` starts one row later: rows missing, and its values are off
    bad = _answers(cell, prepared, 4)
    bad["ranks"][2]["offsets"]["a"] = 5
    problems = prepared.hooks.compare(prepared.want, bad).problems
    assert any(p.startswith("rank 2: a: ") and "elements differ" in p for p in problems)
    assert "a: rank 2's shard starts at row 5 of dim 0, but the ranks before it end at row 4" in problems
    # rank 3 returns another total norm
    bad = _answers(cell, prepared, 4)
    bad["ranks"][3]["returned"] = prepared.want.total_norm * 1.01
    problems = prepared.hooks.compare(prepared.want, bad).problems
    assert f"rank 3: returned norm {bad['ranks'][3]['returned']!r} != expected {prepared.want.total_norm!r}" in problems
    assert any(p.startswith("the ranks return different total norms: rank 0 ") for p in problems)
    # a rank missing
    bad = _answers(cell, prepared, 4)
    del bad["ranks"][3]
    assert "3 ranks answered; the world size is 4" in prepared.hooks.compare(prepared.want, bad).problems


def test_the_empty_shard_fact_follows_the_chunk_rule():
    facts = {c.id: c.facts() for c in _cells("dist-empty-shard", "dist-sharded-norm-types")}
    assert {f["distributed.empty_shard"] for i, f in facts.items() if i.startswith("dist-empty-shard")} == {True}
    assert {f["distributed.empty_shard"] for i, f in facts.items() if i.startswith("dist-sharded")} == {False}


# ---- the real torch rank groups -------------------------------------------------------------------

def _torch_distributed():
    pytest.importorskip("torch")
    from conformance.frameworks.torch import distributed
    return distributed


@pytest.fixture(autouse=True, scope="module")
def _close_rank_groups():
    """The groups the tests below start in this process: stopped, their store folders removed."""
    yield
    ranks.close_all()


@pytest.mark.framework
def test_the_bundled_distributed_cases_on_torch(pool):
    _torch_distributed()
    reg = registry.load()
    runner = Runner(reg, pool, {})
    by_status = {}
    for cell in _cells():
        rec = runner.run(cell)
        by_status.setdefault(rec["status"], []).append((cell.id, rec.get("difference"), rec.get("message")))
    assert set(by_status) <= {"match", "known"}, by_status
    known = {i: d for i, d, _ in by_status.get("known", [])}
    api = "torch.nn.utils.clip_grad_norm_.distributed"
    # p = +-inf with rank 1's shard empty raises there
    assert {i for i, d in known.items() if d == "torch-distributed-empty-shard-inf-norm-raises"} == {
        f"dist-empty-shard[{api}-float32-cpu-norm_type=-inf]", f"dist-empty-shard[{api}-float32-cpu-norm_type=inf]"}
    # DDP and FSDP2 average the ranks' gradients: a summed loss's gradient is divided by the world size
    assert {i for i, d in known.items() if d == "torch-data-parallel-averages-summed-losses"} == {
        f"dist-model-ce-sum-{s}[{api}-float32-cpu-norm_type={p}]" for s in ("ddp", "fsdp2") for p in ("2.0", "inf")}
    assert len(known) == 6
    # the same cells under a mean loss agree with one process (gradients before the clip included)
    assert sum(i.startswith("dist-model-mlp-mean-") for i, _, _ in by_status["match"]) == 16
    assert len(by_status["match"]) == len(_cells()) - 6


def test_the_averaging_variant_divides_what_the_ranks_clip():
    cell, prepared = _prepared("dist-model-ce-sum-fsdp2", "norm_type=2.0")
    plain, halved = prepared.hooks.oracle(None), prepared.hooks.oracle({"grad_divisor": "world_size"})
    assert math.isclose(halved.total_norm, plain.total_norm / 2, rel_tol=1e-12)
    for a, b in zip(plain.before, halved.before):
        np.testing.assert_allclose(b, a / 2, rtol=1e-15)
    assert math.isclose(plain.total_norm, 4.254046143435117, rel_tol=1e-9)  # measured: 2.127 on two ranks


def _job(case: str, *parts: str) -> dict:
    return _prepared(case, *parts)[1].job


@pytest.mark.framework
def test_a_rank_that_raises_ends_the_cell_in_seconds_and_the_group_is_replaced():
    distributed = _torch_distributed()
    job = _job("dist-empty-shard", "norm_type=inf")
    start = time.monotonic()
    out = distributed.run(job)
    took = time.monotonic() - start
    assert out["raised"]["type"] == "RuntimeError"
    assert out["raised"]["message"].startswith("rank 1: _foreach_norm cannot compute the infinity norm on an empty tensor")
    assert "still in a collective" in out["ranks"][0]["pending"]  # rank 0 waited for rank 1
    assert took < ranks.CELL_LIMIT, took  # the grace, not the collective timeout
    assert ranks.group(distributed.rank_main, 2) is None  # replaced before the next cell
    ok = distributed.run(_job("dist-empty-shard", "norm_type=2.0"))
    assert ok["raised"] is None and math.isclose(ok["ranks"][1]["returned"], ok["ranks"][0]["returned"])
    assert ok["ranks"][1]["grads"]["b"].shape == (0, 3) and ok["ranks"][1]["offsets"]["b"] == 1


@pytest.mark.framework
def test_a_killed_rank_is_a_runner_error_and_the_next_cell_runs():
    distributed = _torch_distributed()
    job = _job("dist-sharded-norm-types", "float32", "norm_type=2.0")
    assert distributed.run(job)["raised"] is None
    group = ranks.group(distributed.rank_main, 2)
    pid = group.procs[1].pid
    os.kill(pid, signal.SIGSTOP)  # it cannot answer before it is killed, during the cell
    killer = threading.Timer(1.0, os.kill, (pid, signal.SIGKILL))
    killer.start()
    with pytest.raises(RuntimeError, match=r"a rank process died: rank 1 \(exit code -9\)"):
        distributed.run(job)
    killer.join()
    assert not any(p.is_alive() for p in group.procs)
    assert distributed.run(job)["raised"] is None  # a fresh group


@pytest.mark.framework
def test_the_ranks_are_forks_of_one_server_that_imported_torch_once():
    """``PRELOAD``: torch's ranks start as forks of a forkserver that imported torch once (a group
    start measured 0.025 s, against 1.3 s for spawned ranks that each import torch), so they
    are its children, not this process's; a group started later comes from the same server."""
    distributed = _torch_distributed()
    job = _job("dist-sharded-norm-types", "float32", "norm_type=2.0")
    assert distributed.run(job)["raised"] is None
    group = ranks.group(distributed.rank_main, 2)
    parents = {_parent(p.pid) for p in group.procs}
    assert len(parents) == 1 and os.getpid() not in parents, parents
    again = ranks.RankGroup(distributed.rank_main, 2, None, distributed.PRELOAD)
    try:
        assert {_parent(p.pid) for p in again.procs} == parents
    finally:
        again.close()


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


@pytest.mark.framework
def test_a_hung_rank_is_a_runner_error_after_the_cell_limit(monkeypatch):
    distributed = _torch_distributed()
    job = _job("dist-sharded-norm-types", "float32", "norm_type=2.0")
    assert distributed.run(job)["raised"] is None
    monkeypatch.setattr(ranks, "CELL_LIMIT", 3.0)
    group = ranks.group(distributed.rank_main, 2)
    os.kill(group.procs[0].pid, signal.SIGSTOP)  # rank 1 then waits for it in a collective
    try:
        with pytest.raises(TimeoutError, match=r"no answer within 3 s from rank 0 \(no answer\), rank 1"):
            distributed.run(job)
    finally:
        if group.procs[0].is_alive():
            os.kill(group.procs[0].pid, signal.SIGCONT)
    assert not any(p.is_alive() for p in group.procs)  # killed, both
    monkeypatch.undo()  # a fresh group's first cell takes over 3 s on two busy cores (measured)
    assert distributed.run(job)["raised"] is None


@pytest.mark.framework
def test_the_snippet_runs_as_a_script_and_prints_every_rank(tmp_path):
    _torch_distributed()
    run_rank_snippet(_prepared("dist-sharded-split-dim-1", "norm_type=inf")[1], tmp_path)


@pytest.mark.framework
@pytest.mark.parametrize("case", ["dist-model-mlp-mean-ddp", "dist-model-mlp-mean-fsdp2"])
def test_a_model_cases_snippet_runs_ddp_or_fully_shard_and_prints_every_rank(case, tmp_path):
    # the network on every rank, wrapped in DistributedDataParallel or fully_shard, each rank's
    # chunk of the batch: with a mean loss the averaged gradients are the whole batch's, so each
    # rank returns the oracle's total norm (until 2026-12-06 these snippets failed to build)
    _torch_distributed()
    cell, prepared = _prepared(case, "norm_type=2.0")
    text = prepared.snippet()
    assert cell.case.model is not None and ("DistributedDataParallel" in text or "fully_shard" in text), text[:300]
    run_rank_snippet(prepared, tmp_path)


# ---- rank supervision without a framework (ranks.py) ----------------------------------------------

def fake_rank_main(rank, world_size, scratch, conn):
    """A rank for the supervision tests: job ``{"raise": r, "exit": r, "after": s, "block": r,
    "work": r}``: rank ``raise`` raises at once; rank ``exit`` leaves with code 3 after ``after``
    seconds of CPU time (computing: a rank asleep would be waiting for a peer, ``ranks.QUIET``);
    rank ``block`` waits for a message no peer sends (as in a collective a peer never entered);
    rank ``work`` computes for ``after`` seconds of CPU time, then raises "late"."""
    def compute(seconds):
        end = time.process_time() + seconds
        while time.process_time() < end:
            pass

    def answer(job):
        if rank == job.get("exit"):
            compute(job["after"])
            os._exit(3)
        if rank == job.get("raise"):
            return {"raised": {"type": "RuntimeError", "message": "boom"}}
        if rank == job.get("block"):
            threading.Event().wait()
        if rank == job.get("work"):
            compute(job["after"])
            return {"raised": {"type": "RuntimeError", "message": "late"}}
        return {"raised": None, "returned": float(rank)}
    ranks.serve(conn, answer)


def _fake_job(**what) -> dict:
    return {"distributed": {"world_size": 2}, **what}


def test_a_peer_that_exits_after_a_raise_is_its_consequence():
    out = ranks.run(fake_rank_main, _fake_job(**{"raise": 1, "exit": 0, "after": 0.5}))
    assert out["raised"] == {"type": "RuntimeError", "message": "rank 1: boom"}
    assert out["ranks"][0] == {"pending": "exited (code 3) after a peer raised"}
    assert ranks.group(fake_rank_main, 2) is None  # replaced before the next cell
    assert ranks.run(fake_rank_main, _fake_job())["ranks"][1]["returned"] == 1.0


def test_a_group_gone_quiet_after_a_raise_ends_before_the_grace(monkeypatch):
    """Rank 0 waits for a message that rank 1, which raised, never sends: once every thread of
    both is asleep with no CPU time spent for ``QUIET`` s, the cell ends, with the verdict the
    whole grace gives (the grace itself where /proc cannot tell)."""
    job = _fake_job(**{"raise": 1, "block": 0})
    ranks.run(fake_rank_main, _fake_job())  # the group started (spawned ranks), not timed
    start = time.monotonic()
    out = ranks.run(fake_rank_main, job)
    took = time.monotonic() - start
    assert out["raised"] == {"type": "RuntimeError", "message": "rank 1: boom"}
    assert out["ranks"][0] == {"pending": "still in a collective after a peer raised (killed)"}
    assert ranks.QUIET <= took < ranks.RAISE_GRACE / 2, took
    monkeypatch.setattr(ranks, "_asleep", lambda procs: None)  # not Linux: the whole grace
    ranks.run(fake_rank_main, _fake_job())
    start = time.monotonic()
    assert ranks.run(fake_rank_main, job) == out
    assert time.monotonic() - start >= ranks.RAISE_GRACE


def test_a_rank_still_computing_after_a_peer_raised_is_waited_for():
    """Rank 1 raises at once; rank 0 computes for 0.6 s of CPU time (never asleep) and raises too: the lowest
    raising rank is the verdict, as with the whole grace."""
    ranks.run(fake_rank_main, _fake_job())
    out = ranks.run(fake_rank_main, _fake_job(**{"raise": 1, "work": 0, "after": 0.6}))
    assert out["raised"] == {"type": "RuntimeError", "message": "rank 0: late"}


def test_a_death_before_any_raise_is_a_runner_error():
    with pytest.raises(RuntimeError, match=r"a rank process died: rank 0 \(exit code 3\)"):
        ranks.run(fake_rank_main, _fake_job(**{"exit": 0, "after": 0.0}))


def never_ready_rank_main(rank, world_size, scratch, conn):
    """A rank that never joins (a framework that cannot start its group here)."""
    time.sleep(60)


def test_a_group_that_cannot_start_costs_two_starts_then_errors_at_once(monkeypatch):
    monkeypatch.setattr(ranks, "START_LIMIT", 1.0)
    job = _fake_job()
    for _ in range(ranks.START_ATTEMPTS):
        with pytest.raises(RuntimeError, match=r"did not start within 1 s: rank 0 \(no answer\), rank 1 \(no answer\)"):
            ranks.run(never_ready_rank_main, job)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"not started: the last 2 starts of this group failed; the last: the 2 rank"):
        ranks.run(never_ready_rank_main, job)
    assert time.monotonic() - start < 0.5
    ranks.close_all()  # forgets the failures: the next cell tries again
    with pytest.raises(RuntimeError, match="did not start within 1 s"):
        ranks.run(never_ready_rank_main, job)
    ranks.close_all()


def test_a_distributed_cell_gets_the_start_time_beyond_the_runner_timeout():
    """The runner's timeout for a distributed cell covers its rank group's start (300 s), which
    the job carries to ranks.py: a slow start is not a killed worker (measured: MindSpore's ranks
    took over 120 s to start beside a `make report` at load average 17)."""
    calls = []

    class Pool:
        modules = {"torch": "conformance.frameworks.torch.worker"}

        def get(self, *where):
            return self

        def call(self, job, timeout, label):
            calls.append((timeout, job["distributed"]["start_limit"]))
            return {"ranks": [], "raised": None}

    cell = _cells("dist-replicated")[0]
    runner = Runner(registry.load(), Pool(), {}, timeout=120.0)
    runner.backends["torch"] = {"version": "x", "unavailable": {}}  # (as a worker's hello gives)
    runner.run(cell)
    assert calls == [(420.0, 300.0)]
