"""End to end through the real torch backend: backends vs oracle, classification, crash handling,
and the CLI's exit codes. Skipped where torch is not installed (the `unit` tox environment)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import frameworks, registry, results
from conformance.runner import Runner
from conformance.worker import WorkerPool
from conftest import torch_cells

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "cases"
REGISTRY = ROOT / "conformance" / "frameworks" / "torch" / "registry"

pytestmark = [pytest.mark.framework, pytest.mark.skipif(not frameworks.installed_here("torch"), reason="torch is not installed here")]


def test_every_bundled_torch_cell_matches_the_oracle(pool):
    reg = registry.load()
    # the distributed cases have their own test of every cell (tests/test_distributed.py), which
    # pins their statuses one by one: not run a second time here
    cells = [c for c in torch_cells([CASES], reg) if c.kind.name != "distributed"]
    assert len(cells) >= 100
    runner = Runner(reg, pool)
    recs = list(runner.stream(cells))  # as `conformance run` runs them
    # torch-sourced cells must match, or be `known` by one of the differences declared on torch's
    # identity mappings (its own deviations from the documented formula: overflow in the input
    # dtype, half-precision coefficients, summation order; shown by cases/matrix and cases/sizes); a MindSpore/Paddle source
    # (cases/reverse) may be `known` by any declared difference. Likewise `unsupported`: by a gap
    # declared on torch's identity mappings (torch raising where its documentation does not say
    # so: cases/found), or by any declared gap for a MindSpore/Paddle source
    own = {d.id for m in reg.mappings if m.source == m.target and m.source.startswith("torch.")
           for d in [*m.differences, *m.numerics]}  # numerics: its summation order (cases/sizes)
    own_gaps = tuple(u.reason for m in reg.mappings if m.source == m.target and m.source.startswith("torch.")
                     for u in m.unsupported)
    bad = [(r["id"], r["status"], r["message"]) for r in recs
           if r["status"] != "match" and not (r["status"] == "known" and (
               not r["source_api"].startswith("torch.") or r["difference"] in own))
           and not (r["status"] == "unsupported" and (
               not r["source_api"].startswith("torch.") or r["message"].startswith(own_gaps)))]
    assert not bad
    assert any(r["status"] == "known" and r["difference"] in own for r in recs)
    seed = next(r for r in recs if r["case"] == "seed-000-linear-clip-grad-norm")
    assert seed["total_norm"]["got"] == pytest.approx(0.8154753, abs=1e-6)
    # the raw (pre-clip) gradients of model cases are compared too
    assert "before clipping: 0.weight" in seed["params"]


def _registry_copy(tmp_path, edit) -> registry.Registry:
    d = tmp_path / "reg"
    d.mkdir()
    text = (REGISTRY / "clipping.yaml").read_text()
    (d / "torch.yaml").write_text(edit(text))
    return registry.load(str(d))


def test_a_wrong_oracle_variant_turns_cells_into_mismatches(pool, tmp_path):
    # torch nests per-tensor norms; a flat oracle disagrees for norm_type 0 (counts differ)
    reg = _registry_copy(tmp_path, lambda t: t.replace(
        "knobs: {scope: global, nesting: nested, eps: 1.0e-6, threshold: clamp}",
        "knobs: {scope: global, nesting: flat, eps: 1.0e-6, threshold: clamp}"))
    cells = torch_cells([CASES / "sweeps" / "clip-grad-norm-norm-types.yaml"], reg,
                   keyword="torch.nn.utils.clip_grad_norm_ and float64")
    recs = {c.variant.sweep["norm_type"]: Runner(reg, pool).run(c) for c in cells}
    assert recs[0.0]["status"] == "mismatch"
    assert "returned norm 3.0 != expected 49.0" in recs[0.0]["message"]
    assert recs[2.0]["status"] == "match"  # nesting does not change a 2-norm
    assert "torch.nn.utils.clip_grad_norm_(params" in recs[0.0]["reproduce"]


def test_a_declared_difference_makes_a_cell_known(pool, tmp_path):
    # pretend the source's oracle has eps 0.25; a declared difference with torch's real
    # eps (1e-6) then explains what torch does, so the cell is `known`, naming the difference
    def edit(t):
        t = t.replace("knobs: {scope: global, nesting: nested, eps: 1.0e-6, threshold: clamp}",
                      "knobs: {scope: global, nesting: nested, eps: 0.25, threshold: clamp}")
        return t.replace(
            "    notes: torch against the oracle of its own documented formula.\n    differences:\n",
            "    notes: torch against the oracle of its own documented formula.\n"
            "    differences:\n"
            "      - id: test-eps\n"
            "        text: torch adds 1e-6, not 0.25\n"
            "        when: {dtype: [float64]}\n"
            "        variant: {eps: 1.0e-6}\n")

    reg = _registry_copy(tmp_path, edit)
    cells = torch_cells([CASES / "seeds" / "seed-000-injected.yaml"], reg, keyword="torch.nn.utils.clip_grad_norm_")
    recs = {c.dtype: Runner(reg, pool).run(c) for c in cells}
    assert recs["float64"]["status"] == "known"
    assert recs["float64"]["difference"] == "test-eps"
    assert recs["float64"]["max_rel_err"] > 0.1  # how large the difference measured
    assert recs["float32"]["status"] == "mismatch"  # the difference is declared for float64 only


def test_a_killed_worker_gives_one_error_cell_and_the_run_goes_on(tmp_path):
    reg = registry.load()
    cells = torch_cells([CASES / "sweeps" / "clip-grad-value.yaml"], reg)
    p = WorkerPool(frameworks.workers(), {"torch": sys.executable})
    try:
        runner = Runner(reg, p)
        recs = []
        for i, c in enumerate(cells):
            if i == 5:
                os.kill(p.get("torch", "cpu").pid, signal.SIGKILL)
            recs.append(runner.run(c))
        errors = [r for r in recs if r["status"] == "error"]
        assert len(errors) == 1 and errors[0]["id"] == cells[5].id
        assert "SIGKILL" in errors[0]["message"]
        assert all(r["status"] == "match" for r in recs if r is not errors[0])
        assert p.get("torch", "cpu").starts == 2
    finally:
        p.close()


def _cli(*args, cwd=ROOT, timeout=300):
    return subprocess.run([sys.executable, "-m", "conformance.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_run_writes_results_and_report(tmp_path):
    out = tmp_path / "out"
    r = _cli("run", str(CASES / "seeds"), "--backend", "torch", "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    doc = results.load(out / "results.json")
    statuses = {x["status"] for x in doc["results"]}
    assert statuses == {"match", "skipped"}  # skipped: the gpu cells on this machine
    assert doc["backends"]["torch"]["version"].startswith("2.")
    assert (out / "index.html").read_text().count("seed-000-linear-clip-grad-norm") >= 1
    assert not (out / "results.jsonl").exists()  # a finished run keeps results.json only


def test_cli_run_no_report_writes_results_only_and_report_renders_them_later(tmp_path):
    out = tmp_path / "out"
    r = _cli("run", str(CASES / "seeds" / "seed-001-clip-grad-value.yaml"), "--backend", "torch",
             "--device", "cpu", "--out", str(out), "--no-report")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (out / "results.json").is_file() and not (out / "index.html").exists()
    r = _cli("report", str(out / "results.json"), "--out", str(tmp_path / "html"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "seed-001" in (tmp_path / "html" / "index.html").read_text()


def test_cli_broken_case_file_is_reported_and_the_others_still_run(tmp_path):
    d = tmp_path / "cases"
    shutil.copytree(CASES / "seeds", d)
    (d / "broken.yaml").write_text(
        "id: broken\ntitle: x\ngrads: {w: [1.0]}\nclip:\n  api: torch.nn.utils.clip_grad_norm_\n"
        "  args: {max_nrom: 1.0}\n")
    out = tmp_path / "out"
    r = _cli("run", str(d), "--backend", "torch", "--device", "cpu", "--out", str(out))
    assert r.returncode == 2
    assert f"{d / 'broken.yaml'}:6: clip.args.max_nrom:" in r.stderr
    assert "did you mean 'max_norm'?" in r.stderr
    doc = results.load(out / "results.json")
    assert len(doc["results"]) > 0 and all(x["status"] == "match" for x in doc["results"])


def test_cli_validate_and_usage_errors(tmp_path):
    bad = tmp_path / "cases" / "typo.yaml"
    bad.parent.mkdir()
    bad.write_text("id: t\ntitle: x\ngrads: {w: [1.0]}\nclip: {api: torch.nn.utils.clip_grad_norm_, "
                   "args: {max_norm: 1}}\ndtyps: [float32]\n")
    r = _cli("validate", str(bad))
    assert r.returncode == 2
    assert f"{bad}:5: dtyps: unknown field (did you mean 'dtypes'?)" in r.stderr
    assert _cli("validate").returncode == 0
    assert _cli("run", "--backend", "nosuch").returncode == 2


def test_shipped_schema_is_current():
    r = _cli("schema")
    assert json.loads(r.stdout) == json.loads((CASES / "case.schema.json").read_text())


def test_pytest_xdist_workers_write_one_results_file(tmp_path):
    pytest.importorskip("xdist")
    out = tmp_path / "res" / "results.json"
    r = subprocess.run([sys.executable, "-m", "pytest", str(CASES / "seeds"), "-n", "2", "-q",
                        "-p", "no:cacheprovider", "--backend", "torch", "--results", str(out),
                        "--report", str(tmp_path / "html")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    doc = results.load(out)
    ids = [x["id"] for x in doc["results"]]
    assert len(ids) == len(set(ids)) == 12  # 6 torch cpu cells + their 6 gpu twins
    assert {x["status"] for x in doc["results"] if x["device"] == "cpu"} == {"match"}
    assert doc["backends"]["torch"]["version"].startswith("2.")
    assert (tmp_path / "html" / "index.html").exists()
    assert "6 passed, 6 skipped" in r.stdout


def _torch_job(api, args, grads: dict, form="list", dtype="float64"):
    import numpy as np
    return {"kind": "clipping", "api": api, "args": args, "dtype": dtype, "device": "cpu", "form": form,
            "params": [{"name": n, "shape": [len(g)], "grad": np.asarray(g, dtype=np.float64 if dtype == "float64" else np.float32)}
                       for n, g in grads.items()]}


def test_the_bare_tensor_form_reaches_torch(pool):
    """`form: tensor` passes the first parameter itself: given two, torch clips only that one
    (norm 5 of [3, 4]); the list form clips both by their total norm (sqrt(125))."""
    worker = pool.get("torch", "cpu")
    grads = {"a": [3.0, 4.0], "b": [10.0]}
    bare = worker.call(_torch_job("torch.nn.utils.clip_grad_norm_", {"max_norm": 1.0}, grads, "tensor"), timeout=60)
    assert bare["returned"] == pytest.approx(5.0)
    assert bare["grads"]["a"].tolist() == pytest.approx([0.6, 0.8], abs=1e-6) and bare["grads"]["b"].tolist() == [10.0]
    listed = worker.call(_torch_job("torch.nn.utils.clip_grad_norm_", {"max_norm": 1.0}, grads), timeout=60)
    assert listed["returned"] == pytest.approx(125 ** 0.5)


def test_a_tensor_bound_reaches_torch_clamp_in_its_own_dtype(pool):
    """A float16 Tensor bound 0.3 clamps float32 gradients at 0.300048828125 (its float16
    value); the number 0.3 would give float32 0.3."""
    worker = pool.get("torch", "cpu")
    job = _torch_job("torch.clamp", {"min": {"tensor": 0.3, "dtype": "float16"}, "max": None}, {"w": [0.1, 0.5]},
                     dtype="float32")
    got = worker.call(job, timeout=60)
    assert got["grads"]["w"].tolist() == [0.300048828125, 0.5]
