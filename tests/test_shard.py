"""--shard K/N: every cell in exactly one shard, whole cases, balanced by measured cell cost,
deterministic; N machines' results merged are one whole run's (CLI), and the pytest plugin
deselects the same way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import registry, results, shard
from conformance.plan import plan
from conformance.spec.load import load_paths

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "tests" / "toy_framework"
MARK = "# yaml-language-server: $schema=../case.schema.json\n"


def test_parse():
    assert shard.parse("2/3") == (2, 3) and shard.parse(" 1 / 1 ") == (1, 1)
    for bad in ("0/3", "4/3", "x", "1/0", "", "1/2/3"):
        with pytest.raises(ValueError, match="K/N"):
            shard.parse(bad)


@pytest.fixture(scope="module")
def bundled_cells():
    loaded = load_paths([ROOT / "cases"])
    p = plan(loaded.cases, registry.load(), backends={"torch", "mindspore", "paddle"}, mode="all")
    assert not p.errors and len(p.cells) > 20000
    return p.cells


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_every_cell_in_exactly_one_shard_whole_cases_balanced(bundled_cells, n):
    shards = [shard.select(bundled_cells, k, n) for k in range(1, n + 1)]
    ids = [c.id + c.backend for s in shards for c in s]
    assert sorted(ids) == sorted(c.id + c.backend for c in bundled_cells)  # a partition
    owner = {}
    for k, s in enumerate(shards):
        for c in s:
            assert owner.setdefault((str(c.source.path), c.case.id), k) == k  # whole cases
    cost = lambda cells: sum(shard.cost_of(c) for c in cells)  # noqa: E731
    per_case: dict = {}
    for c in bundled_cells:
        key = (str(c.source.path), c.case.id)
        per_case[key] = per_case.get(key, 0.0) + shard.cost_of(c)
    biggest_case = max(per_case.values())
    loads = [cost(s) for s in shards]
    assert max(loads) - min(loads) <= biggest_case  # greedy LPT's bound
    assert [c.id for c in shard.select(bundled_cells, 1, n)] == [c.id for c in shards[0]]  # deterministic


def test_compiled_cells_weigh_what_they_cost():
    groups = {"eager-case": 100 * 16.5, "compiled-case": 10 * 307.0, "small": 5.0}
    assert shard.assign(groups, 2) == {"compiled-case": 0, "eager-case": 1, "small": 1}


def _conformance(*args, cwd):
    env = dict(os.environ, CONFORMANCE_FRAMEWORKS_PATH=str(TOY), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "conformance.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd, env=env)


CASES = "".join(f"""---
id: shard-{i}
title: t{i}
dtypes: [float32, float64]
devices: [cpu]
grads: {{w: [{i}.0, 4.0], b: [0.5]}}
clip: {{api: torch.nn.utils.clip_grad_norm_, args: {{max_norm: 1.0}}}}
targets: [toy.clip_grad_norm]
""" for i in range(1, 7))


def test_the_merged_shards_are_the_whole_run(tmp_path):
    (tmp_path / "c.yaml").write_text(MARK + CASES)
    runs = {}
    for name, extra in (("whole", ()), ("s1", ("--shard", "1/3")), ("s2", ("--shard", "2/3")), ("s3", ("--shard", "3/3"))):
        r = _conformance("run", tmp_path / "c.yaml", "--backend", "toy", "--device", "cpu", "--out", tmp_path / name,
                         "--no-report", *extra, cwd=tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        runs[name] = results.load(tmp_path / name / "results.json")
    sizes = [len(runs[s]["results"]) for s in ("s1", "s2", "s3")]
    assert sum(sizes) == len(runs["whole"]["results"]) == 12 and min(sizes) >= 4 - 2
    merged = results.merge([runs["s1"], runs["s2"], runs["s3"]])

    def outcome(doc):
        return {r["id"]: (r["status"], r["difference"], r["max_abs_err"], r["max_rel_err"]) for r in doc["results"]}

    assert outcome(merged) == outcome(runs["whole"])
    r = _conformance("report", *(tmp_path / s / "results.json" for s in ("s1", "s2", "s3")), "--out",
                     tmp_path / "merged", cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "merged" / "index.html").exists(), r.stderr
    bad = _conformance("run", tmp_path / "c.yaml", "--backend", "toy", "--shard", "4/3", "--out", tmp_path / "x",
                       cwd=tmp_path)
    assert bad.returncode == 2 and "K/N" in bad.stderr


def test_the_plugin_deselects_the_other_shards(tmp_path):
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "c.yaml").write_text(MARK + CASES)
    env = dict(os.environ, CONFORMANCE_FRAMEWORKS_PATH=str(TOY), PYTHONPATH=str(ROOT))

    def collected(*extra):
        r = subprocess.run([sys.executable, "-m", "pytest", "cases", "--conformance-backend", "toy",
                            "--conformance-device", "cpu", "--collect-only", "-q", "-p", "no:cacheprovider",
                            "--rootdir", str(tmp_path), *extra], cwd=tmp_path, capture_output=True, text=True,
                           timeout=300, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        return {line for line in r.stdout.splitlines() if "::" in line}

    whole = collected()
    parts = [collected("--conformance-shard", f"{k}/2") for k in (1, 2)]
    assert len(whole) == 12 and parts[0] | parts[1] == whole and not parts[0] & parts[1] and all(parts)


def test_a_backend_alone_on_two_cores_runs_on_two_workers_each_with_whole_cases(bundled_cells, monkeypatch):
    from collections import defaultdict

    from conformance import cli

    groups = defaultdict(list)
    for c in bundled_cells:
        if c.device == "cpu" and c.mode == "eager":
            groups[(c.backend, c.device, c.mode)].append(c)
    paddle = {("paddle", "cpu", "eager"): groups[("paddle", "cpu", "eager")]}
    monkeypatch.setattr(cli, "_cores", lambda: 2)
    lanes = cli._lanes(paddle)
    assert [lane for _, lane, _ in lanes] == ["", "2"]  # its distributed and sized cases: minutes of work
    parts = [cells for _, _, cells in lanes]
    assert sorted(c.id for p in parts for c in p) == sorted(c.id for c in paddle[("paddle", "cpu", "eager")])
    cases = [{c.case.id for c in p} for p in parts]
    assert not cases[0] & cases[1]  # whole cases: a case's inputs and oracle answers stay in one worker
    costs = [sum(map(shard.cost_of, p)) for p in parts]
    assert abs(costs[0] - costs[1]) < 0.2 * sum(costs)
    # three backends on two cores: one worker each, as before; --workers says otherwise
    assert [lane for _, lane, _ in cli._lanes(groups)] == ["", "", ""]
    assert len(cli._lanes(groups, workers=2)) == 6
    assert [lane for _, lane, _ in cli._lanes(paddle, workers=1)] == [""]
    # thirteen thousand cheap cells stay on one worker: this process's share of a cell is most of it
    cheap = {k: [c for c in g if c.kind.name != "distributed"] for k, g in paddle.items()}
    assert [lane for _, lane, _ in cli._lanes(cheap)] == [""]
    monkeypatch.setattr(cli, "_cores", lambda: 1)
    assert len(cli._lanes(paddle)) == 1
